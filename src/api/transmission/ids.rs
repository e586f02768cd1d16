//! Transmission's integer torrent ids and the `ids` argument.
//!
//! Transmission numbers torrents from 1 as it meets them; the numbers are stable while
//! it runs and never reused. [`IdMap`] does the same for the node's torrents (oldest
//! first at the first call), and remembers removals for a minute, which is what
//! `"ids": "recently-active"` reports back as `removed`.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use shoal_proto::InfoHash;

/// How long a removed id is reported by `recently-active`, and how recent activity
/// must be to count (Transmission's `RecentlyActiveSeconds`).
pub const RECENT_SECS: i64 = 60;

/// Integer ids of the torrents seen so far.
#[derive(Debug)]
pub struct IdMap {
    by_hash: HashMap<InfoHash, i64>,
    by_id: BTreeMap<i64, InfoHash>,
    next: i64,
    /// Ids removed and when (Unix seconds).
    removed: Vec<(i64, i64)>,
    /// When each torrent was last seen moving data (Unix seconds).
    active: HashMap<InfoHash, i64>,
}

impl Default for IdMap {
    fn default() -> Self {
        IdMap {
            by_hash: HashMap::new(),
            by_id: BTreeMap::new(),
            next: 1,
            removed: Vec::new(),
            active: HashMap::new(),
        }
    }
}

impl IdMap {
    /// Brings the map up to date with the node's torrents (oldest first): new ones get
    /// the next ids, gone ones are remembered as removed at `now`.
    pub fn sync(&mut self, hashes: &[InfoHash], now: i64) {
        for h in hashes {
            if !self.by_hash.contains_key(h) {
                self.by_hash.insert(*h, self.next);
                self.by_id.insert(self.next, *h);
                self.next += 1;
            }
        }
        if self.by_hash.len() > hashes.len() {
            let keep: std::collections::HashSet<&InfoHash> = hashes.iter().collect();
            let gone: Vec<(InfoHash, i64)> = self
                .by_hash
                .iter()
                .filter(|(h, _)| !keep.contains(h))
                .map(|(h, id)| (*h, *id))
                .collect();
            for (h, id) in gone {
                self.by_hash.remove(&h);
                self.by_id.remove(&id);
                self.active.remove(&h);
                self.removed.push((id, now));
            }
        }
        self.removed.retain(|(_, at)| now - at <= RECENT_SECS);
    }

    /// The id of `hash` (0 when it was never synced: Transmission has no id 0).
    pub fn id(&self, hash: &InfoHash) -> i64 {
        self.by_hash.get(hash).copied().unwrap_or(0)
    }

    /// Records that `hash` moved data at `now`.
    pub fn touch(&mut self, hash: InfoHash, now: i64) {
        self.active.insert(hash, now);
    }

    /// When `hash` was last seen moving data.
    pub fn last_active(&self, hash: &InfoHash) -> Option<i64> {
        self.active.get(hash).copied()
    }

    /// Ids removed in the last minute.
    pub fn removed_recently(&self) -> Vec<i64> {
        self.removed.iter().map(|(id, _)| *id).collect()
    }

    /// The torrents `sel` names, in id order, without duplicates; ids and hashes that
    /// name no torrent are skipped, as Transmission does. `recent` decides which
    /// torrents count as recently active.
    pub fn select(&self, sel: &Selector, recent: impl Fn(&InfoHash) -> bool) -> Vec<InfoHash> {
        let mut ids: Vec<i64> = match sel {
            Selector::All => self.by_id.keys().copied().collect(),
            Selector::RecentlyActive => self
                .by_id
                .iter()
                .filter(|(_, h)| recent(h))
                .map(|(id, _)| *id)
                .collect(),
            Selector::List(refs) => refs
                .iter()
                .filter_map(|r| match r {
                    IdRef::Num(n) => self.by_id.contains_key(n).then_some(*n),
                    IdRef::Hash(h) => self.by_hash.get(h).copied(),
                })
                .collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids.iter()
            .filter_map(|id| self.by_id.get(id).copied())
            .collect()
    }
}

/// One torrent named in `ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRef {
    /// Transmission's integer id.
    Num(i64),
    /// An info-hash.
    Hash(InfoHash),
}

/// Which torrents a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `ids` absent: every torrent.
    All,
    /// `"recently-active"`.
    RecentlyActive,
    /// A number, a hash, or a list of them. Entries that are neither (a malformed
    /// hash) name no torrent, as in Transmission.
    List(Vec<IdRef>),
}

impl Selector {
    /// Parses the `ids` argument.
    pub fn parse(ids: Option<&Value>) -> Selector {
        match ids {
            None | Some(Value::Null) => Selector::All,
            Some(Value::String(s)) if s == "recently-active" => Selector::RecentlyActive,
            Some(Value::Array(list)) => Selector::List(list.iter().filter_map(id_ref).collect()),
            Some(one) => Selector::List(id_ref(one).into_iter().collect()),
        }
    }
}

/// A number (integral, also as a float) or a 40-character hex hash.
fn id_ref(v: &Value) -> Option<IdRef> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(IdRef::Num),
        Value::String(s) => InfoHash::from_hex(s.trim()).map(IdRef::Hash),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn ids_are_assigned_in_order_and_never_reused() {
        let mut m = IdMap::default();
        m.sync(&[h(1), h(2)], 100);
        assert_eq!((m.id(&h(1)), m.id(&h(2))), (1, 2));
        m.sync(&[h(2)], 110);
        assert_eq!(m.id(&h(1)), 0);
        assert_eq!(m.removed_recently(), vec![1]);
        m.sync(&[h(2), h(1), h(3)], 120);
        assert_eq!((m.id(&h(2)), m.id(&h(1)), m.id(&h(3))), (2, 3, 4));
        m.sync(&[h(2), h(1), h(3)], 120 + RECENT_SECS);
        assert!(m.removed_recently().is_empty());
    }

    #[test]
    fn ids_argument_forms() {
        assert_eq!(Selector::parse(None), Selector::All);
        assert_eq!(
            Selector::parse(Some(&json!("recently-active"))),
            Selector::RecentlyActive
        );
        assert_eq!(
            Selector::parse(Some(&json!(3))),
            Selector::List(vec![IdRef::Num(3)])
        );
        let hex = h(0xab).to_hex();
        assert_eq!(
            Selector::parse(Some(&json!([1, 2.0, hex.to_uppercase(), "nonsense", null]))),
            Selector::List(vec![IdRef::Num(1), IdRef::Num(2), IdRef::Hash(h(0xab))])
        );
        assert_eq!(
            Selector::parse(Some(&json!(hex))),
            Selector::List(vec![IdRef::Hash(h(0xab))])
        );
    }

    #[test]
    fn select_skips_unknown_and_dedups() {
        let mut m = IdMap::default();
        m.sync(&[h(1), h(2), h(3)], 0);
        let sel = Selector::List(vec![
            IdRef::Num(3),
            IdRef::Hash(h(1)),
            IdRef::Num(1),
            IdRef::Num(99),
            IdRef::Hash(h(9)),
        ]);
        assert_eq!(m.select(&sel, |_| false), vec![h(1), h(3)]);
        assert_eq!(m.select(&Selector::All, |_| false), vec![h(1), h(2), h(3)]);
        assert_eq!(
            m.select(&Selector::RecentlyActive, |x| *x == h(2)),
            vec![h(2)]
        );
    }
}
