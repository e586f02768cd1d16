//! Scrape (BEP 48): per-torrent seeder, leecher and completion counts.
//!
//! A request with no `info_hash` asks for every torrent (a "full scrape"); trackers may
//! cap or refuse it. Responses list torrents under `files`, keyed by the raw 20-byte
//! info-hash, in ascending byte order.

use super::{
    decode_id, failure_of, get_u32, put_bytes, put_int, query_pairs, unescape, TrackerError,
};
use crate::bencode::{self, Value};
use crate::ids::InfoHash;
use crate::urlenc::encode;

/// Most info-hashes one scrape request may name.
pub const MAX_SCRAPE_HASHES: usize = 256;

/// The scrape URL for an announce URL: the last path segment must start with
/// `announce`, which becomes `scrape` (`/x/announce.php?k=1` -> `/x/scrape.php?k=1`).
/// `None` when the tracker does not follow that convention and so has no scrape.
pub fn scrape_url(announce_url: &str) -> Option<String> {
    let query_at = announce_url.find('?').unwrap_or(announce_url.len());
    let before_query = &announce_url[..query_at];
    let path_start = match before_query.find("://") {
        Some(i) => i + 3 + before_query[i + 3..].find('/')?,
        None => 0,
    };
    let slash = before_query.rfind('/').filter(|&s| s >= path_start)?;
    let segment = &before_query[slash + 1..];
    let rest = segment.strip_prefix("announce")?;
    Some(format!(
        "{}scrape{rest}{}",
        &announce_url[..=slash],
        &announce_url[query_at..]
    ))
}

/// Query of `GET /scrape`: the torrents asked about (empty means all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// Requested torrents, in request order.
    pub info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// The query string (without `?`).
    pub fn to_query(&self) -> String {
        let parts: Vec<String> = self
            .info_hashes
            .iter()
            .map(|h| format!("info_hash={}", encode(&h.0)))
            .collect();
        parts.join("&")
    }

    /// Parses the query of `GET /scrape`: zero or more `info_hash` parameters, at most
    /// [`MAX_SCRAPE_HASHES`]. Other parameters are ignored.
    pub fn from_query(query: &[u8]) -> Result<ScrapeRequest, TrackerError> {
        let mut info_hashes = Vec::new();
        for (raw_key, raw_value) in query_pairs(query) {
            if &*unescape(raw_key)? != b"info_hash" {
                continue;
            }
            if info_hashes.len() == MAX_SCRAPE_HASHES {
                return Err(TrackerError::TooManyInfoHashes {
                    max: MAX_SCRAPE_HASHES,
                });
            }
            info_hashes.push(InfoHash(decode_id("info_hash", raw_value)?));
        }
        Ok(ScrapeRequest { info_hashes })
    }
}

/// Counts for one torrent in a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever reported (`event=completed`).
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// A successful scrape response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// Torrents and their counts. Encoding sorts and de-duplicates by info-hash.
    pub files: Vec<(InfoHash, ScrapeStats)>,
}

impl ScrapeResponse {
    /// The bencoded response, `files` keys in ascending raw-byte order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.files.len() * 90);
        self.encode_into(&mut out);
        out
    }

    /// Like [`ScrapeResponse::encode`], appending to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut sorted: Vec<&(InfoHash, ScrapeStats)> = self.files.iter().collect();
        // InfoHash orders by its raw bytes, which is the bencode key order.
        sorted.sort_by_key(|(h, _)| *h);
        sorted.dedup_by_key(|(h, _)| *h);
        out.extend_from_slice(b"d5:filesd");
        for (hash, stats) in sorted {
            put_bytes(out, &hash.0);
            out.push(b'd');
            put_bytes(out, b"complete");
            put_int(out, stats.complete.into());
            put_bytes(out, b"downloaded");
            put_int(out, stats.downloaded.into());
            put_bytes(out, b"incomplete");
            put_int(out, stats.incomplete.into());
            out.push(b'e');
        }
        out.extend_from_slice(b"ee");
    }

    /// Parses a tracker's scrape reply. A `failure reason` becomes
    /// [`TrackerError::Failure`]; entries whose key is not 20 bytes are rejected.
    pub fn parse(buf: &[u8]) -> Result<ScrapeResponse, TrackerError> {
        let v = bencode::decode(buf)?;
        if v.as_dict().is_none() {
            return Err(TrackerError::Malformed("not a dictionary"));
        }
        if let Some(failure) = failure_of(&v) {
            return Err(failure);
        }
        let files = match v.get("files") {
            None => return Ok(ScrapeResponse::default()),
            Some(f) => f
                .as_dict()
                .ok_or(TrackerError::Malformed("files is not a dictionary"))?,
        };
        let files = files
            .iter()
            .map(|(key, stats)| {
                let hash = <[u8; 20]>::try_from(*key)
                    .map_err(|_| TrackerError::Malformed("files key is not a 20-byte info-hash"))?;
                Ok((InfoHash(hash), stats_of(stats)?))
            })
            .collect::<Result<_, TrackerError>>()?;
        Ok(ScrapeResponse { files })
    }
}

fn stats_of(v: &Value<'_>) -> Result<ScrapeStats, TrackerError> {
    if v.as_dict().is_none() {
        return Err(TrackerError::Malformed("files entry is not a dictionary"));
    }
    Ok(ScrapeStats {
        complete: get_u32(v, "complete")?.unwrap_or(0),
        downloaded: get_u32(v, "downloaded")?.unwrap_or(0),
        incomplete: get_u32(v, "incomplete")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke;
    use proptest::prelude::*;

    #[test]
    fn scrape_urls() {
        let cases = [
            ("http://t.example/announce", Some("http://t.example/scrape")),
            (
                "http://t.example/x/announce",
                Some("http://t.example/x/scrape"),
            ),
            (
                "http://t.example/announce.php",
                Some("http://t.example/scrape.php"),
            ),
            (
                "http://t.example/announce?x2%0644",
                Some("http://t.example/scrape?x2%0644"),
            ),
            (
                "http://t.example/announce?x=2/4",
                Some("http://t.example/scrape?x=2/4"),
            ),
            ("http://t.example/a", None),
            ("http://t.example/announce/x", None),
            ("http://t.example/x%064announce", None),
            ("http://announce.example", None),
            ("http://announce.example/", None),
            ("udp://t:80/announce", Some("udp://t:80/scrape")),
        ];
        for (input, want) in cases {
            assert_eq!(scrape_url(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn request_round_trip_and_errors() {
        let req = ScrapeRequest {
            info_hashes: vec![InfoHash([1; 20]), InfoHash([b'%'; 20])],
        };
        assert_eq!(
            ScrapeRequest::from_query(req.to_query().as_bytes()),
            Ok(req)
        );
        assert_eq!(ScrapeRequest::from_query(b""), Ok(ScrapeRequest::default()));
        assert_eq!(
            ScrapeRequest::from_query(b"info_hash=short")
                .unwrap_err()
                .to_string(),
            "info_hash must be 20 bytes, got 5; send the raw 20 bytes percent-encoded"
        );
        let many = ScrapeRequest {
            info_hashes: vec![InfoHash([2; 20]); MAX_SCRAPE_HASHES + 1],
        };
        assert_eq!(
            ScrapeRequest::from_query(many.to_query().as_bytes()),
            Err(TrackerError::TooManyInfoHashes {
                max: MAX_SCRAPE_HASHES
            })
        );
    }

    #[test]
    fn bep48_example_encoding() {
        let stats = |c, d, i| ScrapeStats {
            complete: c,
            downloaded: d,
            incomplete: i,
        };
        let resp = ScrapeResponse {
            files: vec![
                (InfoHash(*b"yyyyyyyyyyyyyyyyyyyy"), stats(12, 0, 1)),
                (InfoHash(*b"xxxxxxxxxxxxxxxxxxxx"), stats(11, 13772, 19)),
                (InfoHash(*b"yyyyyyyyyyyyyyyyyyyy"), stats(12, 0, 1)),
            ],
        };
        let enc = resp.encode();
        assert_eq!(
            enc,
            &b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxd8:completei11e10:downloadedi13772e10:incompletei19e\
               e20:yyyyyyyyyyyyyyyyyyyyd8:completei12e10:downloadedi0e10:incompletei1eeee"[..]
        );
        let parsed = ScrapeResponse::parse(&enc).unwrap();
        assert_eq!(parsed.files.len(), 2);
        assert_eq!(parsed.files[0].1, stats(11, 13772, 19));
        assert_eq!(
            ScrapeResponse::parse(&ScrapeResponse::default().encode()),
            Ok(ScrapeResponse::default())
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            ScrapeResponse::parse(b"d14:failure reason6:no waye"),
            Err(TrackerError::Failure("no way".into()))
        );
        assert_eq!(
            ScrapeResponse::parse(b"d5:filesd3:abcdeee"),
            Err(TrackerError::Malformed(
                "files key is not a 20-byte info-hash"
            ))
        );
        assert_eq!(
            ScrapeResponse::parse(b"d5:filesi1ee"),
            Err(TrackerError::Malformed("files is not a dictionary"))
        );
        let enc = ScrapeResponse {
            files: vec![(InfoHash([3; 20]), ScrapeStats::default())],
        }
        .encode();
        for i in 0..enc.len() {
            assert!(ScrapeResponse::parse(&enc[..i]).is_err());
        }
    }

    fn sample_response() -> Vec<u8> {
        let stats = ScrapeStats {
            complete: 5,
            downloaded: 50,
            incomplete: 10,
        };
        ScrapeResponse {
            files: vec![(InfoHash([b'e'; 20]), stats), (InfoHash([b'd'; 20]), stats)],
        }
        .encode()
    }

    fn sample_query() -> Vec<u8> {
        ScrapeRequest {
            info_hashes: vec![InfoHash([1; 20]), InfoHash([b'%'; 20])],
        }
        .to_query()
        .into_bytes()
    }

    #[test]
    fn every_prefix_is_safe() {
        let (q, r) = (sample_query(), sample_response());
        for i in 0..=q.len() {
            let _ = ScrapeRequest::from_query(&q[..i]);
        }
        for i in 0..=r.len() {
            let _ = ScrapeResponse::parse(&r[..i]);
        }
    }

    proptest! {
        #[test]
        fn mutated_inputs_never_panic(edits in smoke::edits()) {
            let _ = ScrapeRequest::from_query(&smoke::mutate(&sample_query(), &edits));
            if let Ok(r) = ScrapeResponse::parse(&smoke::mutate(&sample_response(), &edits)) {
                prop_assert!(ScrapeResponse::parse(&r.encode()).is_ok());
            }
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ScrapeRequest::from_query(&b);
            let _ = ScrapeResponse::parse(&b);
        }
    }
}
