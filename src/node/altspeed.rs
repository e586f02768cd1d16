//! Alternative speed limits (the "turtle"): `alt_max_up`/`alt_max_down` replace
//! `max_up`/`max_down` while `alt_enabled` is on or, with `alt_schedule_enabled`, while
//! the local time is within the weekly schedule (days, begin and end minute, as
//! Transmission's `alt-speed-time-*`; an end before the begin runs past midnight, the
//! span belonging to the day it begins).
//!
//! One task checks every second and sets the session's run-time limits when the
//! limits in effect change; `PATCH /api/settings` applies them at once through
//! [`apply`]. The clock is passed in ([`LocalTime`]) so the schedule is unit-tested.

use std::time::Duration;

use super::Node;
use crate::config::automation::AutoSettings;
use crate::config::Settings;

/// How often the schedule is checked.
const TICK: Duration = Duration::from_secs(1);

/// A moment of the local week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 Sunday ... 6 Saturday.
    pub weekday: u8,
    /// Minutes after midnight, 0-1439.
    pub minute: u32,
}

impl LocalTime {
    /// Now in the system's time zone (`localtime_r`); `None` if it fails.
    pub fn now() -> Option<LocalTime> {
        let t: libc::time_t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs()
            .try_into()
            .ok()?;
        // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid
        // for the call, and it touches nothing else (unlike localtime).
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::localtime_r(&t, &mut tm) };
        if r.is_null() {
            return None;
        }
        Some(LocalTime {
            weekday: u8::try_from(tm.tm_wday).ok()? % 7,
            minute: u32::try_from(tm.tm_hour * 60 + tm.tm_min).ok()?,
        })
    }
}

/// Whether the schedule of `a` covers `t`.
pub fn in_schedule(a: &AutoSettings, t: LocalTime) -> bool {
    let on_day = |d: u8| a.alt_schedule_days & (1 << (d % 7)) != 0;
    let (begin, end) = (a.alt_schedule_begin, a.alt_schedule_end);
    if begin <= end {
        on_day(t.weekday) && (begin..end).contains(&t.minute)
    } else {
        // Past midnight: the evening part on a scheduled day, the morning part on the
        // day after one.
        (t.minute >= begin && on_day(t.weekday)) || (t.minute < end && on_day((t.weekday + 6) % 7))
    }
}

/// Whether the alternative limits are in effect at `t` (unknown time: only by hand).
pub fn is_active(a: &AutoSettings, t: Option<LocalTime>) -> bool {
    a.alt_enabled || (a.alt_schedule_enabled && t.is_some_and(|t| in_schedule(a, t)))
}

/// The (up, down) limits in effect.
pub fn effective(s: &Settings, alt: bool) -> (u64, u64) {
    if alt {
        (s.auto.alt_max_up, s.auto.alt_max_down)
    } else {
        (s.max_up, s.max_down)
    }
}

/// Whether the alternative limits are in effect now.
pub fn active(node: &Node) -> bool {
    is_active(&node.settings().auto, LocalTime::now())
}

/// The (up, down) limits in effect now.
pub fn limits(node: &Node) -> (u64, u64) {
    let s = node.settings();
    effective(&s, is_active(&s.auto, LocalTime::now()))
}

/// Sets the session's limits to those in effect for `s` now.
pub fn apply(node: &Node, s: &Settings) {
    let alt = is_active(&s.auto, LocalTime::now());
    let (up, down) = effective(s, alt);
    node.session().set_limits(up, down);
}

/// Applies the limits in effect every [`TICK`] until the node stops (setting them
/// only when they change, so a limit set by hand in between stays until then).
pub(crate) async fn run(node: Node) {
    let cancel = node.inner().cancel.clone();
    let mut last = None;
    loop {
        let s = node.settings();
        let now = is_active(&s.auto, LocalTime::now());
        let limits = effective(&s, now);
        if last != Some((now, limits)) {
            apply(&node, &s);
            tracing::info!(
                up = limits.0,
                down = limits.1,
                alternative = now,
                "speed limits in effect"
            );
            last = Some((now, limits));
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(days: u8, begin: u32, end: u32) -> AutoSettings {
        AutoSettings {
            alt_schedule_enabled: true,
            alt_schedule_days: days,
            alt_schedule_begin: begin,
            alt_schedule_end: end,
            ..AutoSettings::default()
        }
    }

    fn at(weekday: u8, minute: u32) -> LocalTime {
        LocalTime { weekday, minute }
    }

    #[test]
    fn a_day_span_covers_its_days_from_begin_to_before_end() {
        let a = sched(0b011_1110, 9 * 60, 17 * 60); // weekdays, 09:00-17:00
        assert!(in_schedule(&a, at(1, 9 * 60)));
        assert!(in_schedule(&a, at(5, 17 * 60 - 1)));
        assert!(!in_schedule(&a, at(5, 17 * 60)));
        assert!(!in_schedule(&a, at(3, 8 * 60 + 59)));
        assert!(!in_schedule(&a, at(0, 12 * 60))); // Sunday
        assert!(!in_schedule(&a, at(6, 12 * 60))); // Saturday
    }

    #[test]
    fn a_span_past_midnight_belongs_to_the_day_it_begins() {
        let a = sched(1 << 5, 22 * 60, 6 * 60); // Friday 22:00 - Saturday 06:00
        assert!(in_schedule(&a, at(5, 23 * 60)));
        assert!(in_schedule(&a, at(6, 5 * 60)));
        assert!(!in_schedule(&a, at(6, 6 * 60)));
        assert!(!in_schedule(&a, at(6, 23 * 60)));
        assert!(!in_schedule(&a, at(5, 5 * 60))); // Friday morning: Thursday's span
                                                  // Saturday night wraps to Sunday (weekday 0).
        let sat = sched(1 << 6, 22 * 60, 6 * 60);
        assert!(in_schedule(&sat, at(0, 60)));
        assert!(!in_schedule(&sat, at(1, 60)));
    }

    #[test]
    fn by_hand_or_by_schedule() {
        let mut a = sched(0x7f, 0, 60);
        assert!(is_active(&a, Some(at(2, 30))));
        assert!(!is_active(&a, Some(at(2, 90))));
        assert!(!is_active(&a, None));
        a.alt_enabled = true;
        assert!(is_active(&a, Some(at(2, 90))));
        a.alt_enabled = false;
        a.alt_schedule_enabled = false;
        assert!(!is_active(&a, Some(at(2, 30))));
        // begin == end: an empty span.
        assert!(!in_schedule(&sched(0x7f, 60, 60), at(2, 60)));
        // 00:00 to 24:00: the whole day.
        assert!(in_schedule(&sched(1 << 2, 0, 1440), at(2, 1439)));
        assert!(!in_schedule(&sched(1 << 2, 0, 1440), at(3, 0)));
    }
}
