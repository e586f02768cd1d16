//! Transmission's per-torrent seeding modes and queue moves over the node's numbers.
//!
//! Transmission keeps a mode (0 global, 1 the torrent's own limit, 2 unlimited) and a
//! limit per torrent; the node keeps one number (`-2` global, `-1` none, else the
//! limit, see `crate::node::rules`). So a limit sent without mode 1 while the torrent
//! is not in mode 1 has nowhere to live and is refused (transmission-remote always
//! sends the mode with it).

use shoal_proto::InfoHash;

/// `TR_RATIOLIMIT_GLOBAL` / `TR_IDLELIMIT_GLOBAL`.
pub const MODE_GLOBAL: i64 = 0;
/// `TR_RATIOLIMIT_SINGLE` / `TR_IDLELIMIT_SINGLE`.
pub const MODE_SINGLE: i64 = 1;
/// `TR_RATIOLIMIT_UNLIMITED` / `TR_IDLELIMIT_UNLIMITED`.
pub const MODE_UNLIMITED: i64 = 2;

/// The node's "use the global setting".
const NODE_GLOBAL: f64 = crate::node::rules::USE_GLOBAL;
/// The node's "no limit".
const NODE_NONE: f64 = -1.0;

/// Transmission's (mode, limit) for the node's per-torrent value `own` under the
/// limit shown in mode 0 `global` (the node-wide one, or the saved one when that is
/// off); in mode 2 the limit shown is 0.
pub fn to_mode(own: f64, global: f64) -> (i64, f64) {
    if own == NODE_GLOBAL {
        (MODE_GLOBAL, global)
    } else if own < 0.0 {
        (MODE_UNLIMITED, 0.0)
    } else {
        (MODE_SINGLE, own)
    }
}

/// Why a mode change was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ModeError {
    /// Not 0, 1 or 2.
    #[error("{0} must be 0 (global), 1 (this torrent's limit) or 2 (unlimited)")]
    BadMode(&'static str),
    /// A negative or non-finite limit.
    #[error("{0} must be a number of 0 or more")]
    BadLimit(&'static str),
    /// A limit without mode 1 for a torrent not in mode 1.
    #[error(
        "{0} alone cannot be kept: this node stores one limit per torrent; send the \
         mode 1 (single) with it"
    )]
    Orphan(&'static str),
}

/// The node's new per-torrent value from Transmission's `mode` and `limit` (either
/// may be absent), given the current value `own`; `None`: nothing to change.
/// `default` is the limit taken by mode 1 sent alone for a torrent with none of its
/// own. `names`: the mode and limit keys, for errors.
pub fn from_mode(
    mode: Option<i64>,
    limit: Option<f64>,
    own: f64,
    default: f64,
    names: (&'static str, &'static str),
) -> Result<Option<f64>, ModeError> {
    if let Some(l) = limit {
        if !l.is_finite() || l < 0.0 {
            return Err(ModeError::BadLimit(names.1));
        }
    }
    let value = match mode {
        None => match limit {
            None => return Ok(None),
            Some(l) if own >= 0.0 => l,
            // Asking again for the value shown is accepted (clients send whole forms).
            Some(l) if l == to_mode(own, default).1 => return Ok(None),
            Some(_) => return Err(ModeError::Orphan(names.1)),
        },
        Some(MODE_GLOBAL) => NODE_GLOBAL,
        Some(MODE_UNLIMITED) => NODE_NONE,
        Some(MODE_SINGLE) => match limit {
            Some(l) => l,
            None if own >= 0.0 => own,
            None => default,
        },
        Some(_) => return Err(ModeError::BadMode(names.0)),
    };
    Ok((value != own).then_some(value))
}

/// A queue move of Transmission's `queue-move-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Top,
    Up,
    Down,
    Bottom,
}

impl Move {
    /// From the method name.
    pub fn parse(method: &str) -> Option<Move> {
        Some(match method {
            "queue-move-top" => Move::Top,
            "queue-move-up" => Move::Up,
            "queue-move-down" => Move::Down,
            "queue-move-bottom" => Move::Bottom,
            _ => return None,
        })
    }
}

/// Applies `mv` to the `chosen` torrents of `order` as Transmission does for a set:
/// they keep their order among themselves; up and down move each by one place
/// without passing another chosen one at an end.
pub fn apply(order: &mut Vec<InfoHash>, chosen: &[InfoHash], mv: Move) {
    let picked: Vec<InfoHash> = order
        .iter()
        .filter(|h| chosen.contains(h))
        .copied()
        .collect();
    match mv {
        Move::Top | Move::Bottom => {
            order.retain(|h| !chosen.contains(h));
            if mv == Move::Top {
                order.splice(0..0, picked);
            } else {
                order.extend(picked);
            }
        }
        Move::Up => {
            for i in 1..order.len() {
                if chosen.contains(&order[i]) && !chosen.contains(&order[i - 1]) {
                    order.swap(i, i - 1);
                }
            }
        }
        Move::Down => {
            for i in (0..order.len().saturating_sub(1)).rev() {
                if chosen.contains(&order[i]) && !chosen.contains(&order[i + 1]) {
                    order.swap(i, i + 1);
                }
            }
        }
    }
}

/// Puts `hash` at index `to` of `order` (clamped to the end): `torrent-set`'s
/// `queuePosition`.
pub fn place(order: &mut Vec<InfoHash>, hash: InfoHash, to: usize) {
    let Some(i) = order.iter().position(|h| *h == hash) else {
        return;
    };
    order.remove(i);
    let to = to.min(order.len());
    order.insert(to, hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: (&str, &str) = ("seedRatioMode", "seedRatioLimit");

    #[test]
    fn node_values_map_to_transmission_modes() {
        assert_eq!(to_mode(-2.0, 1.5), (MODE_GLOBAL, 1.5));
        assert_eq!(to_mode(-1.0, 1.5), (MODE_UNLIMITED, 0.0));
        assert_eq!(to_mode(0.75, 1.5), (MODE_SINGLE, 0.75));
        assert_eq!(to_mode(0.0, 1.5), (MODE_SINGLE, 0.0));
    }

    #[test]
    fn transmission_modes_map_to_node_values() {
        assert_eq!(from_mode(Some(0), None, 1.0, 2.0, N), Ok(Some(-2.0)));
        assert_eq!(from_mode(Some(2), Some(3.0), 1.0, 2.0, N), Ok(Some(-1.0)));
        assert_eq!(from_mode(Some(1), Some(0.5), -2.0, 2.0, N), Ok(Some(0.5)));
        // Mode 1 alone keeps its own limit, or takes the default.
        assert_eq!(from_mode(Some(1), None, 0.5, 2.0, N), Ok(None));
        assert_eq!(from_mode(Some(1), None, -1.0, 2.0, N), Ok(Some(2.0)));
        // A limit alone changes a torrent in mode 1 ...
        assert_eq!(from_mode(None, Some(4.0), 0.5, 2.0, N), Ok(Some(4.0)));
        // ... and is refused otherwise, unless it is the value shown.
        assert_eq!(
            from_mode(None, Some(4.0), -2.0, 2.0, N),
            Err(ModeError::Orphan("seedRatioLimit"))
        );
        assert_eq!(from_mode(None, Some(2.0), -2.0, 2.0, N), Ok(None));
        assert_eq!(from_mode(None, Some(0.0), -1.0, 2.0, N), Ok(None));
        assert_eq!(
            from_mode(Some(3), None, -1.0, 2.0, N),
            Err(ModeError::BadMode("seedRatioMode"))
        );
        assert_eq!(
            from_mode(Some(1), Some(-1.0), -1.0, 2.0, N),
            Err(ModeError::BadLimit("seedRatioLimit"))
        );
        assert_eq!(from_mode(None, None, -1.0, 2.0, N), Ok(None));
    }

    fn h(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn moved(chosen: &[u8], mv: Move) -> Vec<u8> {
        let mut o: Vec<InfoHash> = (0..5).map(h).collect();
        let c: Vec<InfoHash> = chosen.iter().map(|n| h(*n)).collect();
        apply(&mut o, &c, mv);
        o.iter().map(|x| x.0[0]).collect()
    }

    #[test]
    fn queue_moves_keep_the_chosen_in_their_order() {
        assert_eq!(moved(&[3, 1], Move::Top), vec![1, 3, 0, 2, 4]);
        assert_eq!(moved(&[1, 3], Move::Bottom), vec![0, 2, 4, 1, 3]);
        assert_eq!(moved(&[0, 2], Move::Up), vec![0, 2, 1, 3, 4]);
        assert_eq!(moved(&[0, 1], Move::Up), vec![0, 1, 2, 3, 4]);
        assert_eq!(moved(&[2, 4], Move::Down), vec![0, 1, 3, 2, 4]);
        assert_eq!(moved(&[3, 4], Move::Down), vec![0, 1, 2, 3, 4]);
        let mut o: Vec<InfoHash> = (0..4).map(h).collect();
        place(&mut o, h(0), 2);
        assert_eq!(o, vec![h(1), h(2), h(0), h(3)]);
        place(&mut o, h(1), 99);
        assert_eq!(o, vec![h(2), h(0), h(3), h(1)]);
    }
}
