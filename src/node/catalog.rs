//! The node's side of the trackers' catalogs: publishing shared torrents, searching
//! over every configured tracker, and fetching a `.torrent` by id.

use serde::Serialize;
use shoal_engine::catalog;
use shoal_proto::catalog::SearchHit;
use shoal_proto::InfoHash;

use super::Node;

/// Search results merged over the node's trackers.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReply {
    pub results: Vec<SearchHit>,
    pub page: u32,
}

impl Node {
    /// Publishes a `.torrent` to every tracker's catalog (failures are logged).
    pub async fn publish(&self, torrent: Vec<u8>) {
        for url in self.settings().trackers {
            if let Err(e) = catalog::publish(&url, &torrent, Some(self.peer_id())).await {
                tracing::warn!(tracker = %url, "cannot publish to the catalog: {e}");
            }
        }
    }

    /// One page (from 0) of results for `q`, merged over the trackers (first wins on
    /// duplicates). Fails only when every tracker failed.
    pub async fn search(&self, q: &str, page: u32) -> anyhow::Result<SearchReply> {
        let trackers = self.settings().trackers;
        let mut results: Vec<SearchHit> = Vec::new();
        let mut last_err = None;
        let mut any_ok = false;
        for url in &trackers {
            match catalog::search(url, q, page.saturating_add(1)).await {
                Ok(hits) => {
                    any_ok = true;
                    for h in hits {
                        if !results.iter().any(|r| r.id == h.id) {
                            results.push(h);
                        }
                    }
                }
                Err(e) => last_err = Some(format!("{url}: {e}")),
            }
        }
        if !any_ok {
            if let Some(e) = last_err {
                anyhow::bail!("no tracker catalog answered: {e}");
            }
        }
        Ok(SearchReply { results, page })
    }

    /// Resolves a full id or a prefix through the catalogs and fetches its `.torrent`.
    pub async fn fetch(&self, id: &str, extra_trackers: &[String]) -> anyhow::Result<Vec<u8>> {
        let id = id.trim().to_ascii_lowercase();
        let mut trackers = extra_trackers.to_vec();
        trackers.extend(self.settings().trackers);
        let hash = match InfoHash::from_hex(&id) {
            Some(h) => h,
            None => {
                let found = self.search(&id, 0).await?;
                let matching: Vec<&SearchHit> = found
                    .results
                    .iter()
                    .filter(|h| h.id.starts_with(&id))
                    .collect();
                match matching.as_slice() {
                    [one] => InfoHash::from_hex(&one.id)
                        .ok_or_else(|| anyhow::anyhow!("the catalog returned a bad id"))?,
                    [] => anyhow::bail!("no torrent {id:?} in the trackers' catalogs"),
                    _ => anyhow::bail!("{id:?} matches several torrents: give more characters"),
                }
            }
        };
        let mut last_err = anyhow::anyhow!("no tracker configured to fetch {id} from");
        for url in &trackers {
            match catalog::fetch_torrent(url, &hash).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => last_err = anyhow::anyhow!("{url}: {e}"),
            }
        }
        Err(last_err.context(format!(
            "the metadata of {} is not in any tracker catalog the node uses",
            hash.to_hex()
        )))
    }
}
