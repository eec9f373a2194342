//! Points in time: [`UnixTime`], whole seconds since 1970-01-01T00:00:00Z (UTC), as every format
//! of hcmr carries them (CWT NumericDate, RFC 8392 section 2, without fractions).
//!
//! Durations stay plain `u64` seconds (fields and parameters named `*_secs`, ages, skews): the
//! formats carry them so, and a time plus a duration is a [`UnixTime`] again. Leap seconds are
//! not counted, as in POSIX time and RFC 8392.
//!
//! The wire and storage formats (CBOR, protobuf, sled keys) carry the bare number:
//! [`UnixTime::secs`] writes it and [`UnixTime::from_secs`] reads it. Any `u64` is a
//! `UnixTime`; the decoders refuse times after [`UnixTime::MAX`] where a time is shown to people.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::{Duration, SystemTime};

use crate::code::MAX_TIME;

/// A point in time: whole seconds since 1970-01-01T00:00:00Z (UTC), leap seconds not counted.
///
/// Ordered, hashable, and [`Default`] (the epoch). Shown ([`fmt::Display`]) as RFC 3339 in UTC
/// with whole seconds (`2025-06-15T15:06:40Z`); [`fmt::Debug`] shows the number and the date.
///
/// `t + secs` and `t - secs` (a `u64` of seconds) overflow as `u64` arithmetic does (a panic in
/// debug builds): for times from outside, use [`UnixTime::checked_add`] or
/// [`UnixTime::saturating_add`]. The time between two points is
/// [`UnixTime::saturating_since`] (or [`UnixTime::checked_since`]), in seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// The latest time the formats accept (9999-12-31T23:59:59Z, [`MAX_TIME`]): the last with a
    /// four-digit RFC 3339 year. Decoders refuse later times wherever a time is shown.
    pub const MAX: UnixTime = UnixTime(MAX_TIME);

    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> UnixTime {
        UnixTime(secs)
    }

    /// Seconds since the epoch: what the formats carry.
    pub const fn secs(self) -> u64 {
        self.0
    }

    /// `secs` seconds later; `None` past `u64::MAX` seconds.
    pub const fn checked_add(self, secs: u64) -> Option<UnixTime> {
        match self.0.checked_add(secs) {
            Some(t) => Some(UnixTime(t)),
            None => None,
        }
    }

    /// `secs` seconds later, at most `u64::MAX` seconds after the epoch (not [`UnixTime::MAX`]:
    /// a deadline that far is simply never reached).
    pub const fn saturating_add(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// `secs` seconds earlier; `None` before the epoch.
    pub const fn checked_sub(self, secs: u64) -> Option<UnixTime> {
        match self.0.checked_sub(secs) {
            Some(t) => Some(UnixTime(t)),
            None => None,
        }
    }

    /// `secs` seconds earlier, or the epoch.
    pub const fn saturating_sub(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self`; 0 when `earlier` is not earlier.
    pub const fn saturating_since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds from `earlier` to `self`; `None` when `earlier` is later.
    pub const fn checked_since(self, earlier: UnixTime) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// The whole second of a system time (rounded down); `None` before the epoch.
    pub fn from_system_time(t: SystemTime) -> Option<UnixTime> {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| UnixTime(d.as_secs()))
    }

    /// As a system time; `None` where `SystemTime` cannot hold it.
    pub fn to_system_time(self) -> Option<SystemTime> {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(self.0))
    }
}

impl fmt::Display for UnixTime {
    /// RFC 3339, UTC, whole seconds (`2026-11-29T10:00:00Z`). RFC 3339 has four-digit years: a
    /// time after [`UnixTime::MAX`] (only ever from a hostile input; decoders refuse them) is
    /// shown as its number of seconds (`253402300800 s after the Unix epoch`), never a panic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment (`{:<20}`) apply as they do to a string.
        match self.to_system_time().filter(|_| *self <= UnixTime::MAX) {
            Some(t) => f.pad(&humantime::format_rfc3339_seconds(t).to_string()),
            None => f.pad(&format!("{} s after the Unix epoch", self.0)),
        }
    }
}

impl fmt::Debug for UnixTime {
    /// `UnixTime(1750000000 = 2025-06-15T15:06:40Z)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self > UnixTime::MAX {
            write!(f, "UnixTime({})", self.0)
        } else {
            write!(f, "UnixTime({} = {self})", self.0)
        }
    }
}

impl Add<u64> for UnixTime {
    type Output = UnixTime;
    /// `secs` seconds later; overflows as `u64` addition does.
    fn add(self, secs: u64) -> UnixTime {
        UnixTime(self.0 + secs)
    }
}

impl AddAssign<u64> for UnixTime {
    fn add_assign(&mut self, secs: u64) {
        self.0 += secs;
    }
}

impl Sub<u64> for UnixTime {
    type Output = UnixTime;
    /// `secs` seconds earlier; overflows as `u64` subtraction does.
    fn sub(self, secs: u64) -> UnixTime {
        UnixTime(self.0 - secs)
    }
}

impl SubAssign<u64> for UnixTime {
    fn sub_assign(&mut self, secs: u64) {
        self.0 -= secs;
    }
}

#[cfg(test)]
mod tests {
    use super::UnixTime;

    #[test]
    fn display_is_rfc3339_and_total() {
        assert_eq!(UnixTime::EPOCH.to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UnixTime::from_secs(1_750_000_000).to_string(),
            "2025-06-15T15:06:40Z"
        );
        assert_eq!(UnixTime::MAX.to_string(), "9999-12-31T23:59:59Z");
        assert_eq!(
            UnixTime::from_secs(u64::MAX).to_string(),
            "18446744073709551615 s after the Unix epoch"
        );
        assert_eq!(
            format!("{:?}", UnixTime::from_secs(1_750_000_000)),
            "UnixTime(1750000000 = 2025-06-15T15:06:40Z)"
        );
        assert_eq!(
            format!("{:?}", UnixTime::from_secs(u64::MAX)),
            "UnixTime(18446744073709551615)"
        );
        assert_eq!(
            format!("{:>22}|", UnixTime::EPOCH),
            "  1970-01-01T00:00:00Z|"
        );
    }

    #[test]
    fn arithmetic_is_in_seconds_and_saturates_or_checks_at_the_ends() {
        let t = UnixTime::from_secs(100);
        assert_eq!((t + 20).secs(), 120);
        assert_eq!((t - 20).secs(), 80);
        assert_eq!(t.checked_sub(101), None);
        assert_eq!(t.saturating_sub(101), UnixTime::EPOCH);
        assert_eq!(UnixTime::from_secs(u64::MAX).checked_add(1), None);
        assert_eq!(
            UnixTime::from_secs(u64::MAX - 1).saturating_add(5).secs(),
            u64::MAX
        );
        assert_eq!((t + 30).saturating_since(t), 30);
        assert_eq!(t.saturating_since(t + 30), 0);
        assert_eq!(t.checked_since(t + 30), None);
        assert_eq!(UnixTime::MAX.secs(), crate::code::MAX_TIME);
    }

    #[test]
    fn system_time_round_trips_whole_seconds() {
        let t = UnixTime::from_secs(1_750_000_000);
        let st = t.to_system_time().unwrap() + std::time::Duration::from_millis(999);
        assert_eq!(UnixTime::from_system_time(st), Some(t));
        let before = std::time::SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert_eq!(UnixTime::from_system_time(before), None);
    }
}
