//! Per-torrent controls over the node's queue, seeding rules, download order and
//! announces: `setShareLimits`, `topPrio`/`bottomPrio`/`increasePrio`/`decreasePrio`,
//! `setForceStart`, `toggleSequentialDownload`, `toggleFirstLastPiecePrio`,
//! `reannounce`.
//!
//! As in qBittorrent, each takes `hashes` (`all` or `|`-separated), skips unknown
//! hashes, and answers 200 with an empty body whatever happens to each torrent; the
//! queue moves answer 409 when queueing is off. A magnet still fetching its metadata
//! has no queue place, limits or order in the node yet, so these skip it (logged),
//! and `reannounce` skips torrents that do not run (there is no announce task to
//! wake); `reannounce`'s `urls` (only these trackers) is not supported: the whole
//! torrent announces.

use axum::extract::State;
use axum::response::Response;
use shoal_proto::InfoHash;

use super::{text, Params, Qbt, QbtError, QbtResult};
use crate::node::queue::{LimitsPatch, QueueError, QueueMove};

/// The limits of `setShareLimits` (and `torrents/add`): qBittorrent's `ratioLimit`,
/// `seedingTimeLimit` and `inactiveSeedingTimeLimit` (minutes; -2 global, -1 none),
/// which are the node's own convention. `need`: whether the three are required (400
/// when one is missing); a value that is not a number is a 400 either way.
pub fn limits_patch(p: &Params, need: bool) -> QbtResult<LimitsPatch> {
    let num = |key: &str| -> QbtResult<Option<f64>> {
        let v = if need { Some(p.need(key)?) } else { p.get(key) };
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| QbtError::bad(format!("{key} must be a number"))),
        }
    };
    Ok(LimitsPatch {
        ratio_limit: num("ratioLimit")?,
        seed_time_limit: num("seedingTimeLimit")?,
        seed_idle_limit: num("inactiveSeedingTimeLimit")?,
        // Speed limits are not share limits; `setShareLimits` leaves them alone.
        max_down: None,
        max_up: None,
    })
}

pub async fn set_share_limits(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hashes = p.hashes(&q.node)?;
    let patch = limits_patch(&p, true)?;
    for h in hashes {
        if let Err(e) = q.node.set_seed_limits(h, patch.clone()).await {
            tracing::info!(%h, "qBittorrent API: cannot set share limits: {e}");
        }
    }
    Ok(text(""))
}

/// The order in which to move `hashes` (each with its queue position) so their
/// relative order survives a multi-torrent move, as qBittorrent's does: towards the
/// head the head-most moves first for `up`, the tail-most first for `top` (each
/// lands in front of the ones already moved).
pub fn move_order(mut hashes: Vec<(InfoHash, i64)>, mv: QueueMove) -> Vec<InfoHash> {
    hashes.sort_by_key(|(_, pos)| *pos);
    if matches!(mv, QueueMove::Top | QueueMove::Down) {
        hashes.reverse();
    }
    hashes.into_iter().map(|(h, _)| h).collect()
}

/// `topPrio`, `bottomPrio`, `increasePrio` (towards the head), `decreasePrio`.
async fn prio(q: &Qbt, p: &Params, mv: QueueMove) -> QbtResult<Response> {
    let hashes = p.hashes(&q.node)?;
    if !q.node.settings().auto.queueing_enabled {
        return Err(QbtError::conflict("Torrent queueing must be enabled"));
    }
    let placed = hashes
        .into_iter()
        .filter_map(|h| Some((h, q.node.summary(h)?.auto.queue_position)))
        .collect();
    for h in move_order(placed, mv) {
        match q.node.queue_move(h, mv).await {
            Ok(()) => {}
            Err(QueueError::Disabled) => {
                return Err(QbtError::conflict("Torrent queueing must be enabled"))
            }
            Err(e) => tracing::info!(%h, "qBittorrent API: cannot move in the queue: {e}"),
        }
    }
    Ok(text(""))
}

pub async fn top_prio(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    prio(&q, &p, QueueMove::Top).await
}

pub async fn bottom_prio(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    prio(&q, &p, QueueMove::Bottom).await
}

pub async fn increase_prio(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    prio(&q, &p, QueueMove::Up).await
}

pub async fn decrease_prio(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    prio(&q, &p, QueueMove::Down).await
}

/// `setForceStart` (`value`: `true` forces, anything else returns the torrent to the
/// queue's rule, as qBittorrent reads it).
pub async fn set_force_start(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hashes = p.hashes(&q.node)?;
    p.need("value")?;
    let on = p.flag("value").unwrap_or(false);
    for h in hashes {
        if let Err(e) = q.node.set_force_start(h, on).await {
            tracing::info!(%h, "qBittorrent API: cannot set force start: {e}");
        }
    }
    Ok(text(""))
}

/// Which part of the download order a toggle flips.
#[derive(Clone, Copy)]
enum OrderPart {
    Sequential,
    FirstLast,
}

async fn toggle(q: &Qbt, p: &Params, part: OrderPart) -> QbtResult<Response> {
    for h in p.hashes(&q.node)? {
        let Some(s) = q.node.summary(h) else { continue };
        let r = match part {
            OrderPart::Sequential => q.node.set_order(h, Some(!s.order.sequential), None),
            OrderPart::FirstLast => q.node.set_order(h, None, Some(!s.order.first_last_piece)),
        }
        .await;
        match r {
            Ok(Some(_)) => {}
            Ok(None) => tracing::info!(%h, "qBittorrent API: no download order before metadata"),
            Err(e) => tracing::warn!(%h, "qBittorrent API: cannot save the order: {e:#}"),
        }
    }
    Ok(text(""))
}

pub async fn toggle_sequential(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    toggle(&q, &p, OrderPart::Sequential).await
}

pub async fn toggle_first_last(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    toggle(&q, &p, OrderPart::FirstLast).await
}

pub async fn reannounce(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    for h in p.hashes(&q.node)? {
        if !super::super::torrents::reannounce_now(&q.node, h) {
            tracing::info!(%h, "qBittorrent API: not running, nothing to reannounce");
        }
    }
    Ok(text(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn h(b: u8) -> InfoHash {
        InfoHash::from_hex(&format!("{b:02x}").repeat(20)).unwrap()
    }

    fn params(kv: &[(&str, &str)]) -> Params {
        Params(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn multi_torrent_moves_keep_their_relative_order() {
        let sel = vec![(h(1), 4), (h(2), 2)];
        assert_eq!(move_order(sel.clone(), QueueMove::Top), vec![h(1), h(2)]);
        assert_eq!(move_order(sel.clone(), QueueMove::Up), vec![h(2), h(1)]);
        assert_eq!(move_order(sel.clone(), QueueMove::Bottom), vec![h(2), h(1)]);
        assert_eq!(move_order(sel, QueueMove::Down), vec![h(1), h(2)]);
    }

    #[test]
    fn share_limits_parameters() {
        let p = params(&[
            ("ratioLimit", "1.5"),
            ("seedingTimeLimit", "-2"),
            ("inactiveSeedingTimeLimit", "-1"),
        ]);
        let l = limits_patch(&p, true).unwrap();
        assert_eq!(
            (l.ratio_limit, l.seed_time_limit, l.seed_idle_limit),
            (Some(1.5), Some(-2.0), Some(-1.0))
        );
        // setShareLimits needs all three; torrents/add takes any.
        assert!(limits_patch(&params(&[("ratioLimit", "1")]), true).is_err());
        let some = limits_patch(&params(&[("ratioLimit", "1")]), false).unwrap();
        assert_eq!((some.ratio_limit, some.seed_time_limit), (Some(1.0), None));
        let bad = params(&[
            ("ratioLimit", "x"),
            ("seedingTimeLimit", "1"),
            ("inactiveSeedingTimeLimit", "1"),
        ]);
        assert!(limits_patch(&bad, true).is_err());
    }
}
