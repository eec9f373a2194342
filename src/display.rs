//! Times for people. Everything a person reads (the printed card, the checkpoint page, the CLI's
//! tables, verdict lines and audit CSV) shows a time in the node's display time zone, a fixed
//! offset from UTC (`display_utc_offset` in hcmr.toml, `+08:00` by default: Beijing time, used in
//! all of China, which has no daylight saving), written with its offset so that it is never
//! ambiguous and can be pasted back into any `--from`/`--until`. The API, stored records and
//! logs stay in UTC ([`UnixTime`]: seconds since the Unix epoch).
//!
//! [`display_time`] is the one formatting function.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::UnixTime;

/// The offset from UTC in which times are shown to people: `+08:00` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DisplayOffset(time::UtcOffset);

/// The setting's name in hcmr.toml, for messages.
pub const SETTING: &str = "display_utc_offset";

impl DisplayOffset {
    /// Beijing time, UTC+08:00: the default.
    pub const BEIJING: DisplayOffset = DisplayOffset(match time::UtcOffset::from_hms(8, 0, 0) {
        Ok(o) => o,
        Err(_) => time::UtcOffset::UTC,
    });

    /// UTC itself (`+00:00`).
    pub const UTC: DisplayOffset = DisplayOffset(time::UtcOffset::UTC);

    /// The offset, as the `time` crate has it.
    pub fn utc_offset(self) -> time::UtcOffset {
        self.0
    }

    /// Whether this is the default (`+08:00`), e.g. to leave it out of a written config.
    pub fn is_default(&self) -> bool {
        *self == DisplayOffset::default()
    }
}

impl Default for DisplayOffset {
    fn default() -> Self {
        DisplayOffset::BEIJING
    }
}

/// `+08:00`, `-05:00`, `+05:30`: sign, hours and minutes.
impl fmt::Display for DisplayOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, _) = self.0.as_hms();
        let sign = if h < 0 || m < 0 { '-' } else { '+' };
        write!(f, "{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    }
}

/// Why a display offset was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an offset from UTC: write it as +08:00 (Beijing time), from -12:00 to +14:00"
)]
pub struct OffsetError(String);

/// Parses `+HH:MM` or `-HH:MM` (`Z` for `+00:00`), from `-12:00` to `+14:00`, the offsets in use
/// on Earth.
impl FromStr for DisplayOffset {
    type Err = OffsetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || OffsetError(s.to_string());
        let t = s.trim();
        if t.eq_ignore_ascii_case("z") {
            return Ok(DisplayOffset::UTC);
        }
        let b = t.as_bytes();
        if b.len() != 6 || b[3] != b':' || !matches!(b[0], b'+' | b'-') {
            return Err(bad());
        }
        let digits = |r: std::ops::Range<usize>| -> Result<i8, OffsetError> {
            let d = &t[r];
            if !d.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            d.parse().map_err(|_| bad())
        };
        let (h, m) = (digits(1..3)?, digits(4..6)?);
        if m > 59 {
            return Err(bad());
        }
        let minutes = i32::from(h) * 60 + i32::from(m);
        let minutes = if b[0] == b'-' { -minutes } else { minutes };
        if !(-12 * 60..=14 * 60).contains(&minutes) {
            return Err(bad());
        }
        let sign = if b[0] == b'-' { -1 } else { 1 };
        time::UtcOffset::from_hms(sign * h, sign * m, 0)
            .map(DisplayOffset)
            .map_err(|_| bad())
    }
}

impl Serialize for DisplayOffset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// As [`FromStr`]; the error names the setting.
impl<'de> Deserialize<'de> for DisplayOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("{SETTING}: {e}")))
    }
}

/// A time for people: RFC 3339 in the display offset, whole seconds, with the offset written
/// out (`2026-12-04T11:43:00+08:00` for 2026-12-04T03:43:00Z at `+08:00`). Total: a time the calendar cannot hold (after the year 9999, only ever
/// from a hostile input) is shown as its number of seconds.
pub fn display_time(t: UnixTime, offset: DisplayOffset) -> String {
    let t = t.secs();
    let local = i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|utc| utc.checked_to_offset(offset.0))
        .filter(|l| (0..=9999).contains(&l.year()));
    match local {
        Some(l) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{offset}",
            l.year(),
            u8::from(l.month()),
            l.day(),
            l.hour(),
            l.minute(),
            l.second()
        ),
        None => format!("{t} s after the Unix epoch"),
    }
}

/// `text` (a message of the API, which writes times in UTC as `2026-12-01T00:00:00Z`, see
/// [`UnixTime`]'s `Display`) with each such time shown by [`display_time`] in `offset` instead: for
/// a person reading a verdict's detail. Anything else in `text` is kept as it is.
pub fn localize_times(text: &str, offset: DisplayOffset) -> String {
    use time::format_description::well_known::Rfc3339;
    const LEN: usize = "2026-12-01T00:00:00Z".len();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let (mut i, mut copied) = (0, 0);
    while i + LEN <= b.len() {
        let t = (b[i + 4] == b'-' && b[i + 10] == b'T' && b[i + LEN - 1] == b'Z')
            .then(|| text.get(i..i + LEN))
            .flatten()
            .and_then(|s| time::OffsetDateTime::parse(s, &Rfc3339).ok())
            .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
            .map(UnixTime::from_secs);
        match t {
            Some(t) => {
                out.push_str(&text[copied..i]);
                out.push_str(&display_time(t, offset));
                i += LEN;
                copied = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_offset_with_the_offset() {
        let beijing = DisplayOffset::default();
        assert_eq!(beijing.to_string(), "+08:00");
        // 2026-12-04T03:43:00Z
        assert_eq!(
            display_time(UnixTime::from_secs(1_796_355_780), beijing),
            "2026-12-04T11:43:00+08:00"
        );
        assert_eq!(
            display_time(UnixTime::from_secs(1_796_355_780), DisplayOffset::UTC),
            "2026-12-04T03:43:00+00:00"
        );
        let ny: DisplayOffset = "-05:00".parse().unwrap();
        assert_eq!(
            display_time(UnixTime::from_secs(1_796_355_780), ny),
            "2026-12-03T22:43:00-05:00"
        );
        let india: DisplayOffset = "+05:30".parse().unwrap();
        assert_eq!(india.to_string(), "+05:30");
        assert_eq!(
            display_time(UnixTime::from_secs(0), india),
            "1970-01-01T05:30:00+05:30"
        );
        // The edges: total, never a panic.
        assert_eq!(
            display_time(
                UnixTime::from_secs(crate::code::MAX_TIME),
                DisplayOffset::UTC
            ),
            "9999-12-31T23:59:59+00:00"
        );
        assert_eq!(
            display_time(UnixTime::from_secs(crate::code::MAX_TIME), beijing),
            format!("{} s after the Unix epoch", crate::code::MAX_TIME)
        );
        assert_eq!(
            display_time(UnixTime::from_secs(u64::MAX), beijing),
            "18446744073709551615 s after the Unix epoch"
        );
    }

    #[test]
    fn a_shown_time_reads_back_as_the_same_instant() {
        use time::format_description::well_known::Rfc3339;
        for t in [0u64, 1_796_355_780, 4_107_542_399] {
            let shown = display_time(UnixTime::from_secs(t), DisplayOffset::default());
            let back = time::OffsetDateTime::parse(&shown, &Rfc3339).unwrap();
            assert_eq!(back.unix_timestamp(), i64::try_from(t).unwrap(), "{shown}");
        }
    }

    #[test]
    fn times_in_a_message_are_shown_in_the_offset() {
        let b = DisplayOffset::default();
        assert_eq!(
            localize_times("status held until 2026-12-04T03:43:00Z", b),
            "status held until 2026-12-04T11:43:00+08:00"
        );
        assert_eq!(
            localize_times(
                "kid 7b withdrawn at 1970-01-01T00:00:00Z; issued 2026-12-04T03:43:00Z.",
                b
            ),
            "kid 7b withdrawn at 1970-01-01T08:00:00+08:00; issued 2026-12-04T11:43:00+08:00."
        );
        for same in [
            "",
            "no time",
            "2026-12-04T03:43:00+08:00",
            "2026-13-04T03:43:00Z",
            "签名 2026",
        ] {
            assert_eq!(localize_times(same, b), same);
        }
    }

    #[test]
    fn offsets_parse_strictly() {
        for ok in ["+08:00", "-12:00", "+14:00", "+00:00", "Z", " +08:00 "] {
            assert!(ok.parse::<DisplayOffset>().is_ok(), "{ok}");
        }
        for bad in [
            "8", "+8:00", "+0800", "UTC+8", "+15:00", "-13:00", "+08:60", "", "+0a:00",
        ] {
            let e = bad.parse::<DisplayOffset>().unwrap_err().to_string();
            assert!(e.contains("+08:00"), "{bad}: {e}");
        }
    }
}
