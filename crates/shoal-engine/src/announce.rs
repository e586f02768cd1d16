//! Tracker client: HTTP announces (BEP 3, compact BEP 23) and UDP announces (BEP 15)
//! over multi-tracker tiers (BEP 12); the URL scheme picks the transport, so a tier may
//! mix `http://` and `udp://` trackers. The announce task of a torrent sends `started`,
//! re-announces at the tracker's interval (sooner while downloading without peers), sends
//! `completed` once and `stopped` on shutdown, and hands every peer address it learns
//! to the torrent. When no tracker answers it retries after an exponential back-off
//! from 15 s, and sends `started` to a tracker that failed since it last answered (it may
//! have restarted and forgotten us): `schedule.rs` holds these rules. The user can ask
//! for a round now ([`crate::TorrentHandle::reannounce`]). It owns a
//! [`udp::UdpClient`], so UDP connection ids are reused between its announces.

pub mod http;
mod schedule;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use schedule::{contacted_next, Schedule};
use shoal_proto::tracker::{
    announce_url, AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerError,
};
use thiserror::Error;
use tokio::time::Instant;
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
    seen: impl FnMut(&str, &Result<AnnounceResponse, AnnounceError>),
) -> Result<(AnnounceResponse, String), AnnounceError> {
    announce_tiers_by(udp, tiers, req, |_| req.event, seen).await
}

/// [`announce_tiers_via`], sending each tracker the event `event_for` its URL gives.
async fn announce_tiers_by(
    udp: &mut UdpClient,
    tiers: &mut [Vec<String>],
    req: &AnnounceRequest,
    event_for: impl Fn(&str) -> AnnounceEvent,
    mut seen: impl FnMut(&str, &Result<AnnounceResponse, AnnounceError>),
) -> Result<(AnnounceResponse, String), AnnounceError> {
    let mut last_err = AnnounceError::Http("no trackers".into());
    let mut req = req.clone();
    for tier in tiers.iter_mut() {
        for i in 0..tier.len() {
            let url = tier[i].clone();
            req.event = event_for(&url);
            let r = announce_one_via(udp, &url, &req).await;
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

/// The announce loop of one torrent; returns after sending `stopped` on cancel. When
/// and with which event it announces is [`Schedule`]'s.
pub(crate) async fn run(shared: Arc<Shared>, mut tiers: Vec<Vec<String>>) {
    if tiers.iter().all(Vec::is_empty) {
        return;
    }
    // A torrent complete at start never owes `completed`.
    let mut completed_sent = shared.is_seeding();
    let mut schedule = Schedule::new(Instant::now().into_std());
    let mut udp = UdpClient::default();
    loop {
        let req = shared.announce_request(AnnounceEvent::None);
        let mut outcomes = Vec::new();
        let record = |url: &str, r: &Result<AnnounceResponse, AnnounceError>| {
            outcomes.push((url.to_string(), r.is_ok()));
            shared.tracker_result(
                url,
                match r {
                    Ok(a) => Ok((a.complete, a.incomplete, a.warning.clone())),
                    Err(e) => Err(e.to_string()),
                },
            )
        };
        let event_for = |url: &str| schedule.event_for(url);
        let round = announce_tiers_by(&mut udp, &mut tiers, &req, event_for, record).await;
        for (url, answered) in &outcomes {
            schedule.tracker_outcome(url, *answered);
        }
        let now = Instant::now().into_std();
        let answered = match round {
            Ok((resp, url)) => {
                if let Some(w) = &resp.warning {
                    warn!(%url, "tracker warning: {w}");
                }
                debug!(%url, peers = resp.peers.len(), "announced");
                shared.add_peers(&resp.peers, crate::torrent::PeerSource::Tracker);
                let alone = !shared.is_seeding() && shared.peer_count() == 0;
                schedule.answered(now, &resp, alone);
                Some(url)
            }
            Err(e) => {
                let next = schedule.failed(now);
                let wait = next.saturating_duration_since(now).as_secs();
                info!(
                    failures = schedule.failures(),
                    "announce failed: {e}; retrying in {wait} s"
                );
                None
            }
        };
        let next = Instant::from_std(schedule.next());
        shared.trackers_due(
            &contacted_next(&tiers, answered.as_deref()),
            schedule.next(),
        );
        // Connection ids that will be stale when we wake are not worth their sockets.
        udp.expire(next);
        let completed = shared.completed_notify();
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = completed.notified(), if !completed_sent => {
                completed_sent = true;
                schedule.completed(Instant::now().into_std());
            }
            _ = shared.reannounce_notify().notified() => {
                schedule.reannounce(Instant::now().into_std());
            }
            _ = shared.cancel.cancelled() => break,
        }
        if !completed_sent && shared.is_seeding() {
            completed_sent = true;
            schedule.completed(Instant::now().into_std());
        }
    }
    shared.trackers_due(&[], Instant::now().into_std());
    let req = shared.announce_request(AnnounceEvent::Stopped);
    let stop = announce_tiers_via(&mut udp, &mut tiers, &req, |_, _| {});
    let _ = tokio::time::timeout(Duration::from_secs(3), stop).await;
}
