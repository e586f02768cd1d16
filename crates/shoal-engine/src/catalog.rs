//! Client of a Shoal tracker's catalog: publish a torrent, search by name or id
//! prefix, fetch a `.torrent` by info-hash.
//!
//! The catalog lives beside the tracker's announce endpoint: for
//! `http://host:port/announce` it is `http://host:port/{publish,search,torrent/<id>}`
//! (see `shoal_proto::catalog`, which defines the JSON shared with the tracker). A
//! fetched `.torrent` is checked against the info-hash asked for, so a tracker cannot
//! hand out a different torrent than the one chosen.

use shoal_proto::catalog::{base_url, PublishReply, SearchHit, SearchResults, DEFAULT_PER_PAGE};
use shoal_proto::metainfo::{Metainfo, MetainfoError};
use shoal_proto::urlenc::encode;
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;

use crate::announce::{http, AnnounceError};

/// Why a catalog request failed.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The tracker URL does not end in `/announce`, so the catalog cannot be located.
    #[error("tracker URL {0:?} does not end in /announce; give the tracker's announce URL")]
    NotACatalogUrl(String),
    /// Network, timeout or non-200 answer.
    #[error("catalog request failed: {0}")]
    Http(#[from] AnnounceError),
    /// The tracker answered something that is not the expected JSON.
    #[error("the tracker's catalog answered malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The fetched `.torrent` does not parse.
    #[error("the tracker served an invalid .torrent: {0}")]
    BadTorrent(#[from] MetainfoError),
    /// The fetched `.torrent` is another torrent than the one asked for.
    #[error("the tracker served torrent {got} when {wanted} was asked for")]
    WrongTorrent {
        /// Asked for.
        wanted: InfoHash,
        /// Received.
        got: InfoHash,
    },
}

fn base(tracker_announce_url: &str) -> Result<&str, CatalogError> {
    base_url(tracker_announce_url)
        .ok_or_else(|| CatalogError::NotACatalogUrl(tracker_announce_url.to_string()))
}

/// Publishes `torrent_bytes` (a `.torrent` file) to the tracker's catalog. Publishing
/// the same torrent again succeeds with `created: false`.
pub async fn publish(
    tracker_announce_url: &str,
    torrent_bytes: &[u8],
    peer_id: Option<PeerId>,
) -> Result<PublishReply, CatalogError> {
    let mut url = format!("{}/publish", base(tracker_announce_url)?);
    if let Some(p) = peer_id {
        url.push_str("?peer_id=");
        url.push_str(&encode(&p.0));
    }
    let body = http::post(&url, "application/x-bittorrent", torrent_bytes).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// One page (from 1) of search results for `query`: words matched against torrent
/// and file names, or an info-hash prefix of 4 or more hex digits.
pub async fn search_page(
    tracker_announce_url: &str,
    query: &str,
    page: u32,
    per_page: u32,
) -> Result<SearchResults, CatalogError> {
    let url = format!(
        "{}/search?q={}&page={}&per_page={per_page}",
        base(tracker_announce_url)?,
        encode(query.as_bytes()),
        page.max(1)
    );
    let body = http::get(&url).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// The hits of one page (from 1) of search results, best first.
pub async fn search(
    tracker_announce_url: &str,
    query: &str,
    page: u32,
) -> Result<Vec<SearchHit>, CatalogError> {
    Ok(
        search_page(tracker_announce_url, query, page, DEFAULT_PER_PAGE)
            .await?
            .hits,
    )
}

/// The `.torrent` of a published torrent, checked to be the one asked for.
pub async fn fetch_torrent(
    tracker_announce_url: &str,
    info_hash: &InfoHash,
) -> Result<Vec<u8>, CatalogError> {
    let url = format!(
        "{}/torrent/{}",
        base(tracker_announce_url)?,
        info_hash.to_hex()
    );
    let bytes = http::get(&url).await?;
    let meta = Metainfo::from_bytes(&bytes)?;
    if meta.info_hash != *info_hash {
        return Err(CatalogError::WrongTorrent {
            wanted: *info_hash,
            got: meta.info_hash,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::metainfo::InfoBuilder;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves one canned 200 response per connection and records request heads.
    async fn fake_tracker(replies: Vec<Vec<u8>>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/announce", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for body in replies {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let n = s.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(&body).await.unwrap();
            }
            seen
        });
        (url, task)
    }

    fn torrent() -> (Vec<u8>, InfoHash) {
        let info = InfoBuilder {
            name: "x".into(),
            piece_length: 16384,
            files: vec![(vec!["x".into()], 1)],
            single_file: true,
            private: false,
        }
        .encode(&[[0; 20]]);
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(&info);
        t.push(b'e');
        (t, InfoHash::of(&info))
    }

    #[tokio::test]
    async fn publish_search_fetch_against_a_fake_tracker() {
        let (bytes, hash) = torrent();
        let hit = SearchHit {
            name: "x".into(),
            id: hash.to_hex(),
            size: 1,
            file_count: 1,
            seeders: 1,
            leechers: 0,
            completed: 0,
            published: 5,
        };
        let results = SearchResults {
            total: 1,
            page: 1,
            per_page: 20,
            hits: vec![hit.clone()],
        };
        let reply = PublishReply {
            id: hash.to_hex(),
            name: "x".into(),
            created: true,
        };
        let (url, server) = fake_tracker(vec![
            serde_json::to_vec(&reply).unwrap(),
            serde_json::to_vec(&results).unwrap(),
            bytes.clone(),
            torrent_other(),
        ])
        .await;
        let got = publish(&url, &bytes, Some(PeerId([b'a'; 20])))
            .await
            .unwrap();
        assert_eq!(got, reply);
        assert_eq!(search(&url, "big file", 1).await.unwrap(), [hit]);
        assert_eq!(fetch_torrent(&url, &hash).await.unwrap(), bytes);
        assert!(matches!(
            fetch_torrent(&url, &hash).await,
            Err(CatalogError::WrongTorrent { .. })
        ));
        let seen = server.await.unwrap();
        assert!(seen[0].starts_with("POST /publish?peer_id=aaaa"));
        assert!(seen[0].contains(&format!("Content-Length: {}", bytes.len())));
        assert!(seen[0].ends_with(std::str::from_utf8(&bytes).unwrap()));
        assert!(seen[1].starts_with("GET /search?q=big%20file&page=1&per_page=20 "));
        assert!(seen[2].starts_with(&format!("GET /torrent/{} ", hash.to_hex())));
    }

    fn torrent_other() -> Vec<u8> {
        let info = InfoBuilder {
            name: "other".into(),
            piece_length: 16384,
            files: vec![(vec!["other".into()], 1)],
            single_file: true,
            private: false,
        }
        .encode(&[[0; 20]]);
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(&info);
        t.push(b'e');
        t
    }

    #[tokio::test]
    async fn urls_must_be_announce_urls() {
        assert!(matches!(
            search("http://h:1/scrape", "x", 1).await,
            Err(CatalogError::NotACatalogUrl(_))
        ));
    }
}
