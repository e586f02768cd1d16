//! Tracker client: HTTP announces (BEP 3, compact BEP 23) and UDP announces (BEP 15)
//! over multi-tracker tiers (BEP 12); the URL scheme picks the transport, so a tier may
//! mix `http://` and `udp://` trackers. The announce task of a torrent sends `started`,
//! re-announces at the tracker's interval (sooner while downloading without peers), sends
//! `completed` once and `stopped` on shutdown, and hands every peer address it learns
//! to the torrent. It owns a [`udp::UdpClient`], so UDP connection ids are reused
//! between its announces.

pub mod http;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use shoal_proto::tracker::{
    announce_url, AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerError,
};
use thiserror::Error;
use tracing::{debug, info, warn};
use udp::UdpClient;

use crate::torrent::Shared;

/// Why an announce failed.
#[derive(Debug, Error)]
pub enum AnnounceError {
    /// A scheme Shoal does not speak (`https://`, `wss://`).
    #[error(
        "unsupported URL {0:?}: trackers are reached over http:// or udp://, catalogs over http://"
    )]
    Unsupported(String),
    /// The URL cannot be parsed.
    #[error("bad tracker URL {0:?}")]
    BadUrl(String),
    /// Network error.
    #[error("cannot reach tracker: {0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("tracker did not answer in time")]
    Timeout,
    /// Non-200 or malformed HTTP.
    #[error("{0}")]
    Http(String),
    /// The tracker's body was a refusal or malformed; a UDP `error` reply is a
    /// [`TrackerError::Failure`] carrying the tracker's message.
    #[error("{0}")]
    Tracker(#[from] TrackerError),
    /// A UDP tracker's reply that is not valid BEP 15.
    #[error("{0}")]
    Udp(String),
}

/// Announces `event` to the first tracker of `tiers` that answers, moving it to the
/// front of its tier (BEP 12). Returns the response and the URL that answered.
pub async fn announce_tiers(
    tiers: &mut [Vec<String>],
    req: &AnnounceRequest,
) -> Result<(AnnounceResponse, String), AnnounceError> {
    announce_tiers_with(tiers, req, |_, _| {}).await
}

/// [`announce_tiers`], reporting every attempt's outcome to `seen`.
pub async fn announce_tiers_with(
    tiers: &mut [Vec<String>],
    req: &AnnounceRequest,
    seen: impl FnMut(&str, &Result<AnnounceResponse, AnnounceError>),
) -> Result<(AnnounceResponse, String), AnnounceError> {
    announce_tiers_via(&mut UdpClient::default(), tiers, req, seen).await
}

/// [`announce_tiers_with`], announcing to `udp://` trackers through `udp` (whose cached
/// connection ids then carry over to the next call).
pub async fn announce_tiers_via(
    udp: &mut UdpClient,
    tiers: &mut [Vec<String>],
    req: &AnnounceRequest,
    mut seen: impl FnMut(&str, &Result<AnnounceResponse, AnnounceError>),
) -> Result<(AnnounceResponse, String), AnnounceError> {
    let mut last_err = AnnounceError::Http("no trackers".into());
    for tier in tiers.iter_mut() {
        for i in 0..tier.len() {
            let url = tier[i].clone();
            let r = announce_one_via(udp, &url, req).await;
            seen(&url, &r);
            match r {
                Ok(resp) => {
                    let t = tier.remove(i);
                    tier.insert(0, t);
                    return Ok((resp, url));
                }
                Err(e) => {
                    debug!(%url, "announce failed: {e}");
                    last_err = e;
                }
            }
        }
    }
    Err(last_err)
}

/// One announce to one tracker URL, over HTTP or UDP by its scheme (a UDP announce
/// here starts with a fresh connect; see [`announce_one_via`]).
pub async fn announce_one(
    url: &str,
    req: &AnnounceRequest,
) -> Result<AnnounceResponse, AnnounceError> {
    announce_one_via(&mut UdpClient::default(), url, req).await
}

/// [`announce_one`], announcing to a `udp://` tracker through `udp`.
pub async fn announce_one_via(
    udp: &mut UdpClient,
    url: &str,
    req: &AnnounceRequest,
) -> Result<AnnounceResponse, AnnounceError> {
    if is_udp(url) {
        return udp.announce(url, req).await;
    }
    let body = http::get(&announce_url(url, req)).await?;
    Ok(AnnounceResponse::parse(&body)?)
}

/// Whether `url` names a BEP 15 tracker.
fn is_udp(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("udp://"))
}

/// How long to wait after a successful announce. While alone and downloading
/// (`alone`), ask again sooner (30 s, or the interval if shorter) so peers that
/// started after us are found, but never before the tracker's `min interval`. A
/// seeder waits the full interval: whoever starts later learns its address from the
/// tracker and connects to it (and a node seeding 1000 torrents would otherwise
/// announce 33 times a second).
fn next_announce(resp: &AnnounceResponse, alone: bool) -> Duration {
    let interval = u64::from(resp.interval.max(1));
    if !alone {
        return Duration::from_secs(interval);
    }
    let min = u64::from(resp.min_interval.unwrap_or(0));
    Duration::from_secs(interval.min(30).max(min).max(5))
}

/// The announce loop of one torrent; returns after sending `stopped` on cancel.
pub(crate) async fn run(shared: Arc<Shared>, mut tiers: Vec<Vec<String>>) {
    if tiers.iter().all(Vec::is_empty) {
        return;
    }
    let mut event = AnnounceEvent::Started;
    let mut completed_sent = shared.is_seeding();
    let mut failures = 0u32;
    let mut udp = UdpClient::default();
    loop {
        let req = shared.announce_request(event);
        let record = |url: &str, r: &Result<AnnounceResponse, AnnounceError>| {
            shared.tracker_result(
                url,
                match r {
                    Ok(a) => Ok((a.complete, a.incomplete, a.warning.clone())),
                    Err(e) => Err(e.to_string()),
                },
            )
        };
        let wait = match announce_tiers_via(&mut udp, &mut tiers, &req, record).await {
            Ok((resp, url)) => {
                failures = 0;
                if let Some(w) = &resp.warning {
                    warn!(%url, "tracker warning: {w}");
                }
                debug!(%url, peers = resp.peers.len(), "announced");
                shared.add_peers(&resp.peers, crate::torrent::PeerSource::Tracker);
                event = AnnounceEvent::None;
                let alone = !shared.is_seeding() && shared.peer_count() == 0;
                next_announce(&resp, alone)
            }
            Err(e) => {
                failures += 1;
                info!("announce failed: {e}");
                Duration::from_secs((15u64 << failures.min(5)).min(300))
            }
        };
        // Connection ids that will be stale when we wake are not worth their sockets.
        udp.expire(tokio::time::Instant::now() + wait);
        let completed = shared.completed_notify();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = completed.notified(), if !completed_sent => {
                completed_sent = true;
                event = AnnounceEvent::Completed;
            }
            _ = shared.cancel.cancelled() => break,
        }
        if !completed_sent && shared.is_seeding() {
            completed_sent = true;
            event = AnnounceEvent::Completed;
        }
    }
    let req = shared.announce_request(AnnounceEvent::Stopped);
    let stop = announce_tiers_via(&mut udp, &mut tiers, &req, |_, _| {});
    let _ = tokio::time::timeout(Duration::from_secs(3), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(interval: u32, min_interval: Option<u32>) -> AnnounceResponse {
        AnnounceResponse {
            interval,
            min_interval,
            ..AnnounceResponse::default()
        }
    }

    #[test]
    fn a_lone_downloader_announces_sooner_but_never_before_min_interval() {
        let secs = |r, alone| next_announce(&r, alone).as_secs();
        assert_eq!(secs(resp(1800, None), false), 1800);
        assert_eq!(secs(resp(1800, None), true), 30);
        assert_eq!(secs(resp(1800, Some(60)), true), 60);
        assert_eq!(secs(resp(1800, Some(10)), true), 30);
        assert_eq!(secs(resp(20, None), true), 20);
        assert_eq!(secs(resp(1, Some(0)), true), 5);
        assert_eq!(secs(resp(0, None), false), 1);
    }
}
