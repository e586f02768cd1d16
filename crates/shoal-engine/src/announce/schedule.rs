//! When a torrent announces next and with which event: the policy of the announce loop
//! as a plain struct, `now` passed in, so it runs on simulated time in its tests.
//!
//! A round (one pass over the BEP 12 tiers, see [`super::announce_tiers_via`]) ends
//! either answered by some tracker or with every tracker failed. The rules:
//! - Answered: the next round waits the tracker's interval ([`next_announce`]: sooner for
//!   a lone downloader, never before `min interval`), and the failure streak ends.
//! - All failed (refused, timed out, HTTP error, a `failure reason`, a UDP timeout): the
//!   next round comes after an exponential back-off, 15 s, 30 s, 60 s, ..., capped at the
//!   last interval a tracker gave (30 minutes if none did, and never more), instead of a
//!   full interval, so an outage of a few seconds costs seconds, not half an hour. The
//!   tier rules come first: a round fails only after every tracker was tried.
//! - Events are per tracker: `started` to every tracker that has not answered us since
//!   it last failed. One never contacted never knew us, and one that failed may have
//!   restarted and forgotten us; so the very announce that finds a tracker back is a
//!   `started`, and it learns our address at once, with no extra request. A tracker that
//!   answers with a `failure reason` has not taken us: it counts as failed, so it neither
//!   ends the back-off nor is spared the `started`. `completed`, once owed, goes first.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shoal_proto::tracker::{AnnounceEvent, AnnounceResponse};

/// The wait after the first failed round; each further one doubles it.
pub(crate) const FIRST_RETRY: Duration = Duration::from_secs(15);
/// The longest wait after failed rounds, whatever the interval.
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(30 * 60);
/// The shortest wait between rounds (a tracker asking for an interval of 0 or 1 s).
const MIN_WAIT: Duration = Duration::from_secs(5);
/// Longest wait added to an `Instant`, so an absurd interval cannot overflow it.
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The announce policy of one torrent (see the module doc).
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Rounds in a row in which no tracker answered.
    failures: u32,
    /// The interval of the last answer: the cap of the back-off.
    interval: Option<Duration>,
    /// Trackers that answered since they last failed, so they hold our address.
    registered: HashSet<String>,
    /// `completed` is owed to the trackers: the download finished and no tracker has
    /// answered an announce of it yet.
    completed_owed: bool,
    /// When the next round is due.
    next: Instant,
}

impl Schedule {
    /// A schedule whose first round is due at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Schedule {
            failures: 0,
            interval: None,
            registered: HashSet::new(),
            completed_owed: false,
            next: now,
        }
    }

    /// When the next round is due.
    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// Rounds in a row in which no tracker answered.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The download finished: `completed` is owed, and due at `now` (an event is
    /// announced when it happens, whatever the interval).
    pub(crate) fn completed(&mut self, now: Instant) {
        self.completed_owed = true;
        self.next = now;
    }

    /// The user asked for a round now (a forced reannounce): it is due at `now`, even
    /// before the tracker's interval or the back-off ends, as qBittorrent's "force
    /// reannounce" does. The events stay per tracker (a registered tracker gets a plain
    /// announce, `completed` stays owed), and the failure streak is kept, so the round
    /// after a failed forced one still backs off.
    pub(crate) fn reannounce(&mut self, now: Instant) {
        self.next = self.next.min(now);
    }

    /// The event to send to `url` in this round.
    pub(crate) fn event_for(&self, url: &str) -> AnnounceEvent {
        if self.completed_owed {
            AnnounceEvent::Completed
        } else if self.registered.contains(url) {
            AnnounceEvent::None
        } else {
            AnnounceEvent::Started
        }
    }

    /// Records one tracker's outcome in a round: whether it answered (a `failure
    /// reason` is not an answer).
    pub(crate) fn tracker_outcome(&mut self, url: &str, answered: bool) {
        if answered {
            self.registered.insert(url.to_string());
        } else {
            self.registered.remove(url);
        }
    }

    /// A round ended with `resp` at `now`; `alone`: downloading with no peer. Returns
    /// when the next round is due.
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        resp: &AnnounceResponse,
        alone: bool,
    ) -> Instant {
        self.failures = 0;
        self.completed_owed = false;
        self.interval = Some(Duration::from_secs(u64::from(resp.interval)));
        self.next = later(now, next_announce(resp, alone));
        self.next
    }

    /// A round ended at `now` with no tracker answering. Returns when the next round is
    /// due: the back-off.
    pub(crate) fn failed(&mut self, now: Instant) -> Instant {
        self.failures = self.failures.saturating_add(1);
        self.next = later(now, self.backoff());
        self.next
    }

    /// The wait after the current failure streak: 15 s doubled per further failure,
    /// capped at the last interval (within 5 s and 30 minutes).
    fn backoff(&self) -> Duration {
        let cap = self
            .interval
            .unwrap_or(MAX_RETRY)
            .clamp(MIN_WAIT, MAX_RETRY);
        let doublings = self.failures.saturating_sub(1).min(16);
        FIRST_RETRY.saturating_mul(1 << doublings).min(cap)
    }
}

/// How long to wait after a successful announce. While alone and downloading
/// (`alone`), ask again sooner (30 s, or the interval if shorter) so peers that
/// started after us are found, but never before the tracker's `min interval`. A
/// seeder waits the full interval: whoever starts later learns its address from the
/// tracker and connects to it (and a node seeding 1000 torrents would otherwise
/// announce 33 times a second).
pub(crate) fn next_announce(resp: &AnnounceResponse, alone: bool) -> Duration {
    let interval = u64::from(resp.interval.max(1));
    if !alone {
        return Duration::from_secs(interval);
    }
    let min = u64::from(resp.min_interval.unwrap_or(0));
    Duration::from_secs(interval.min(30).max(min).max(5))
}

/// Which trackers the next round contacts, at the earliest: in tier order, every one up
/// to the one that `answered` (moved to the front of its tier by then), or all of them
/// when none did. The others are reached only if those fail.
pub(crate) fn contacted_next<'a>(tiers: &'a [Vec<String>], answered: Option<&str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    for url in tiers.iter().flatten() {
        out.push(url.as_str());
        if Some(url.as_str()) == answered {
            break;
        }
    }
    out
}

/// `now + wait`, bounded so it cannot overflow.
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(MAX_WAIT)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://t.example/announce";

    fn resp(interval: u32, min_interval: Option<u32>) -> AnnounceResponse {
        AnnounceResponse {
            interval,
            min_interval,
            ..AnnounceResponse::default()
        }
    }

    fn secs(from: Instant, to: Instant) -> u64 {
        to.duration_since(from).as_secs()
    }

    /// Fails `n` rounds in a row, each at the moment the previous one was due; returns
    /// the waits.
    fn fail_rounds(s: &mut Schedule, now: &mut Instant, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                s.tracker_outcome(URL, false);
                let next = s.failed(*now);
                let wait = secs(*now, next);
                *now = next;
                wait
            })
            .collect()
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

    #[test]
    fn failed_rounds_back_off_from_15_s_doubling_to_30_minutes() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = Schedule::new(now);
        let waits = fail_rounds(&mut s, &mut now, 10);
        assert_eq!(
            waits,
            [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800],
            "no tracker ever answered: the cap is 30 minutes"
        );
        assert_eq!(s.failures(), 10);
        // A long outage stays at the cap, without overflow.
        let waits = fail_rounds(&mut s, &mut now, 100);
        assert!(waits.iter().all(|&w| w == 1800), "{waits:?}");
    }

    #[test]
    fn the_back_off_is_capped_at_the_trackers_interval() {
        let mut now = Instant::now();
        let mut s = Schedule::new(now);
        s.tracker_outcome(URL, true);
        now = s.answered(now, &resp(100, None), false);
        assert_eq!(fail_rounds(&mut s, &mut now, 5), [15, 30, 60, 100, 100]);

        // An interval above 30 minutes still caps at 30 minutes; a tiny one at 5 s.
        let mut s = Schedule::new(now);
        s.answered(now, &resp(7200, None), false);
        assert_eq!(fail_rounds(&mut s, &mut now, 9)[7..], [1800, 1800]);
        let mut s = Schedule::new(now);
        s.answered(now, &resp(1, None), false);
        assert_eq!(fail_rounds(&mut s, &mut now, 2), [5, 5]);
    }

    #[test]
    fn an_answer_resets_the_back_off() {
        let mut now = Instant::now();
        let mut s = Schedule::new(now);
        assert_eq!(fail_rounds(&mut s, &mut now, 4), [15, 30, 60, 120]);
        s.tracker_outcome(URL, true);
        let next = s.answered(now, &resp(1800, None), false);
        assert_eq!(secs(now, next), 1800);
        assert_eq!(s.failures(), 0);
        now = next;
        // The next outage starts again at 15 s.
        assert_eq!(fail_rounds(&mut s, &mut now, 2), [15, 30]);
    }

    #[test]
    fn the_announce_that_finds_a_tracker_back_is_started_and_goes_out_when_due() {
        let mut now = Instant::now();
        let mut s = Schedule::new(now);
        assert_eq!(s.event_for(URL), AnnounceEvent::Started);
        s.tracker_outcome(URL, true);
        now = s.answered(now, &resp(1800, None), false);
        assert_eq!(s.event_for(URL), AnnounceEvent::None, "regular re-announce");

        // The tracker goes down: the re-announce fails, and every retry is `started`,
        // since a tracker that restarted forgot us.
        fail_rounds(&mut s, &mut now, 3);
        assert_eq!(s.event_for(URL), AnnounceEvent::Started);
        assert_eq!(s.next(), now, "the retry is due now, not after an interval");

        // It answers: from then on regular announces at its interval.
        s.tracker_outcome(URL, true);
        let next = s.answered(now, &resp(1800, None), false);
        assert_eq!(secs(now, next), 1800);
        assert_eq!(s.event_for(URL), AnnounceEvent::None);
    }

    #[test]
    fn a_failure_reason_is_not_an_answer() {
        let mut now = Instant::now();
        let mut s = Schedule::new(now);
        s.tracker_outcome(URL, true);
        now = s.answered(now, &resp(1800, None), false);
        // The tracker is up but refuses (`failure reason`): the round failed, so the
        // back-off goes on doubling and the tracker, which did not take us, gets
        // `started` next.
        assert_eq!(fail_rounds(&mut s, &mut now, 4), [15, 30, 60, 120]);
        assert_eq!(s.event_for(URL), AnnounceEvent::Started);
    }

    #[test]
    fn min_interval_is_respected_after_an_answer_that_ends_a_streak() {
        let mut now = Instant::now();
        let mut s = Schedule::new(now);
        fail_rounds(&mut s, &mut now, 2);
        s.tracker_outcome(URL, true);
        // A lone downloader would ask again after 30 s, but the tracker said 120.
        let next = s.answered(now, &resp(1800, Some(120)), true);
        assert_eq!(secs(now, next), 120);
    }

    #[test]
    fn a_reannounce_makes_the_next_round_due_now_and_keeps_the_events() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        s.tracker_outcome("http://a", true);
        s.answered(t0, &resp(1800, None), false);
        assert_eq!(secs(t0, s.next()), 1800);
        let t1 = t0 + Duration::from_secs(60);
        s.reannounce(t1);
        assert_eq!(s.next(), t1);
        assert_eq!(s.event_for("http://a"), AnnounceEvent::None);
        assert_eq!(s.event_for("http://b"), AnnounceEvent::Started);
        // A failure streak is kept: the round after a failed forced one backs off.
        s.failed(t1);
        s.failed(t1);
        let t2 = t1 + Duration::from_secs(1);
        s.reannounce(t2);
        assert_eq!(s.next(), t2);
        assert_eq!(secs(t2, s.failed(t2)), 60);
    }

    #[test]
    fn events_are_per_tracker() {
        let (a, b) = ("http://a/announce", "http://b/announce");
        let now = Instant::now();
        let mut s = Schedule::new(now);
        // A fails, B (next in the tier) answers: B heard `started`, A must still.
        s.tracker_outcome(a, false);
        s.tracker_outcome(b, true);
        s.answered(now, &resp(1800, None), false);
        assert_eq!(s.event_for(b), AnnounceEvent::None);
        assert_eq!(s.event_for(a), AnnounceEvent::Started);
    }

    #[test]
    fn completed_is_owed_until_a_tracker_answers_it() {
        let mut now = Instant::now();
        let mut s = Schedule::new(now);
        s.tracker_outcome(URL, true);
        s.answered(now, &resp(1800, None), false);
        now += Duration::from_secs(100);
        s.completed(now);
        assert_eq!(s.next(), now, "an event goes out when it happens");
        assert_eq!(s.event_for(URL), AnnounceEvent::Completed);
        fail_rounds(&mut s, &mut now, 2);
        assert_eq!(s.event_for(URL), AnnounceEvent::Completed);
        s.tracker_outcome(URL, true);
        s.answered(now, &resp(1800, None), false);
        assert_eq!(s.event_for(URL), AnnounceEvent::None);
    }

    #[test]
    fn the_next_round_contacts_trackers_up_to_the_one_that_answered() {
        let tiers = vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string(), "d".to_string()],
        ];
        assert_eq!(contacted_next(&tiers, None), ["a", "b", "c", "d"]);
        assert_eq!(contacted_next(&tiers, Some("a")), ["a"]);
        assert_eq!(contacted_next(&tiers, Some("c")), ["a", "b", "c"]);
    }
}
