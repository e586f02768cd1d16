//! The queue's order and per-torrent controls: positions (1 is the head; new torrents
//! join at the end), moves (`top`, `bottom`, `up`, `down`), force start and the
//! per-torrent seeding limits. What starts when is decided in `super::runs`.
//!
//! Positions are kept dense (1..=n over every torrent, seeds and downloads alike)
//! and saved in `torrent_rules`.

use std::collections::HashMap;

use serde::Deserialize;
use shoal_proto::InfoHash;

use super::entry::Entry;
use super::lifecycle::set_intent;
use super::rules::TorrentAuto;
use super::runs::schedule_locked;
use super::Node;
use crate::store::rules::{self, RulesRow};
use crate::store::torrents::Intent;

/// A move in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueMove {
    /// To the head.
    Top,
    /// To the end.
    Bottom,
    /// One place towards the head.
    Up,
    /// One place towards the end.
    Down,
}

/// New per-torrent seeding limits (absent: unchanged; -2 global, -1 none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    /// Share ratio.
    pub ratio_limit: Option<f64>,
    /// Seeding time, minutes.
    pub seed_time_limit: Option<f64>,
    /// Time without upload, minutes.
    pub seed_idle_limit: Option<f64>,
    /// Own download limit, bytes per second (0: none); see `super::speed`.
    pub max_down: Option<u64>,
    /// Own upload limit, bytes per second (0: none).
    pub max_up: Option<u64>,
}

/// Why a queue request was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// `queueing_enabled` is off (qBittorrent answers 409 too).
    #[error("queueing is off: turn queueing_enabled on in the settings to order torrents")]
    Disabled,
    /// No such torrent.
    #[error("no such torrent")]
    Unknown,
    /// A limit is not a number.
    #[error("{0} must be a number: -2 for the global setting, -1 for none")]
    Invalid(&'static str),
    /// The database failed.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// Hashes in queue order.
fn order(map: &HashMap<InfoHash, Entry>) -> Vec<InfoHash> {
    let mut v: Vec<(&InfoHash, &Entry)> = map.iter().collect();
    v.sort_by_key(|(_, e)| (e.auto.queue_position, e.added_at));
    v.into_iter().map(|(h, _)| *h).collect()
}

/// Moves the item at `i` of `o` (which must be in range).
fn apply_move<T>(o: &mut Vec<T>, i: usize, mv: QueueMove) {
    let h = o.remove(i);
    let to = match mv {
        QueueMove::Top => 0,
        QueueMove::Bottom => o.len(),
        QueueMove::Up => i.saturating_sub(1),
        QueueMove::Down => (i + 1).min(o.len()),
    };
    o.insert(to, h);
}

/// Numbers the torrents 1..=n in `order`; returns the rows that changed.
fn renumber(map: &mut HashMap<InfoHash, Entry>, order: &[InfoHash]) -> Vec<RulesRow> {
    let mut changed = Vec::new();
    for (i, h) in order.iter().enumerate() {
        let Some(e) = map.get_mut(h) else { continue };
        let pos = i as i64 + 1;
        if e.auto.queue_position != pos {
            e.auto.queue_position = pos;
            changed.push(e.auto.row(h));
        }
    }
    changed
}

async fn save(node: &Node, rows: Vec<RulesRow>) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    node.store().call(move |c| rules::save_many(c, &rows)).await
}

/// Puts a just added torrent at the end of the queue and saves its row. Caller holds
/// `ops`.
pub(crate) async fn added(node: &Node, hash: InfoHash) {
    let row = {
        let mut map = node.torrents();
        let last = map
            .iter()
            .filter(|(h, _)| **h != hash)
            .map(|(_, e)| e.auto.queue_position)
            .max()
            .unwrap_or(0);
        let Some(e) = map.get_mut(&hash) else { return };
        e.auto.queue_position = last + 1;
        e.auto.row(&hash)
    };
    if let Err(e) = save(node, vec![row]).await {
        tracing::warn!(torrent = %hash, "cannot save its queue position: {e:#}");
    }
}

/// Gives the listed torrents their stored rules; torrents without a row go after the
/// others, oldest first.
pub(crate) async fn restore(node: &Node) {
    let rows = match node.store().call(|c| rules::load_all(c)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read the torrents' rules: {e:#}");
            return;
        }
    };
    let changed = {
        let mut map = node.torrents();
        for (h, e) in map.iter_mut() {
            e.auto = match rows.get(&h.to_hex()) {
                Some(r) => TorrentAuto::from_row(r),
                None => TorrentAuto {
                    queue_position: i64::MAX,
                    ..TorrentAuto::default()
                },
            };
        }
        let o = order(&map);
        renumber(&mut map, &o)
    };
    if let Err(e) = save(node, changed).await {
        tracing::warn!("cannot save queue positions: {e:#}");
    }
}

impl Node {
    /// Moves a torrent in the queue and starts what may then start.
    pub async fn queue_move(&self, hash: InfoHash, mv: QueueMove) -> Result<(), QueueError> {
        if !self.settings().auto.queueing_enabled {
            return Err(QueueError::Disabled);
        }
        let _ops = self.inner().ops.lock().await;
        let changed = {
            let mut map = self.torrents();
            let mut o = order(&map);
            let i = o
                .iter()
                .position(|h| *h == hash)
                .ok_or(QueueError::Unknown)?;
            apply_move(&mut o, i, mv);
            renumber(&mut map, &o)
        };
        save(self, changed).await.map_err(QueueError::Internal)?;
        schedule_locked(self).await;
        Ok(())
    }

    /// Reorders the whole queue with `f` (given every torrent in queue order; it may
    /// only permute them), saves the new positions and starts what may then start.
    /// Unlike [`Node::queue_move`] this works with queueing off: Transmission keeps
    /// and moves queue positions whether or not its queues are enabled.
    pub async fn queue_reorder(&self, f: impl FnOnce(&mut Vec<InfoHash>)) -> anyhow::Result<()> {
        let _ops = self.inner().ops.lock().await;
        let changed = {
            let mut map = self.torrents();
            let mut o = order(&map);
            f(&mut o);
            renumber(&mut map, &o)
        };
        save(self, changed).await?;
        schedule_locked(self).await;
        Ok(())
    }

    /// Sets or clears force start; setting it also resumes a paused torrent.
    pub async fn set_force_start(&self, hash: InfoHash, on: bool) -> Result<(), QueueError> {
        let _ops = self.inner().ops.lock().await;
        let (row, paused) = {
            let mut map = self.torrents();
            let e = map.get_mut(&hash).ok_or(QueueError::Unknown)?;
            e.auto.force_start = on;
            if on {
                e.auto.stop_reason = None;
            }
            (e.auto.row(&hash), e.intent == Intent::Paused)
        };
        save(self, vec![row]).await.map_err(QueueError::Internal)?;
        if on && paused {
            set_intent(self, hash, Intent::Active, None)
                .await
                .map_err(QueueError::Internal)?;
        }
        schedule_locked(self).await;
        Ok(())
    }

    /// Sets a torrent's own seeding limits.
    pub async fn set_seed_limits(&self, hash: InfoHash, p: LimitsPatch) -> Result<(), QueueError> {
        for (k, v) in [
            ("ratio_limit", p.ratio_limit),
            ("seed_time_limit", p.seed_time_limit),
            ("seed_idle_limit", p.seed_idle_limit),
        ] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(QueueError::Invalid(k));
            }
        }
        let _ops = self.inner().ops.lock().await;
        let row = {
            let mut map = self.torrents();
            let e = map.get_mut(&hash).ok_or(QueueError::Unknown)?;
            let a = &mut e.auto;
            a.ratio_limit = p.ratio_limit.unwrap_or(a.ratio_limit);
            a.seed_time_limit = p.seed_time_limit.unwrap_or(a.seed_time_limit);
            a.seed_idle_limit = p.seed_idle_limit.unwrap_or(a.seed_idle_limit);
            a.row(&hash)
        };
        save(self, vec![row]).await.map_err(QueueError::Internal)
    }

    /// Forgets why the rules stopped a torrent (the user resumes it).
    pub(crate) async fn clear_stop_reason(&self, hash: InfoHash) {
        let row = {
            let mut map = self.torrents();
            let Some(e) = map.get_mut(&hash) else { return };
            if e.auto.stop_reason.take().is_none() {
                return;
            }
            e.auto.row(&hash)
        };
        let _ = save(self, vec![row]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(n: usize, i: usize, mv: QueueMove) -> Vec<usize> {
        let mut o: Vec<usize> = (0..n).collect();
        apply_move(&mut o, i, mv);
        o
    }

    #[test]
    fn moves_reorder_and_stop_at_the_ends() {
        assert_eq!(moved(4, 2, QueueMove::Top), vec![2, 0, 1, 3]);
        assert_eq!(moved(4, 1, QueueMove::Bottom), vec![0, 2, 3, 1]);
        assert_eq!(moved(4, 2, QueueMove::Up), vec![0, 2, 1, 3]);
        assert_eq!(moved(4, 0, QueueMove::Up), vec![0, 1, 2, 3]);
        assert_eq!(moved(4, 1, QueueMove::Down), vec![0, 2, 1, 3]);
        assert_eq!(moved(4, 3, QueueMove::Down), vec![0, 1, 2, 3]);
    }
}
