//! Values given on the command line that several commands take: document types, points in
//! time, status mappings, a code or standard input.

use std::time::Duration;

use clap::ValueEnum;

use super::CliError;
use crate::identity::DocumentType;
use crate::node::convert;
use crate::proto;
use crate::status::HealthStatus;

/// Document types on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DocType {
    /// Resident identity card (GB 11643, checked).
    IdCard,
    /// Passport.
    Passport,
    /// Mainland Travel Permit for Hong Kong and Macao residents.
    HkMacaoPermit,
    /// Mainland Travel Permit for Taiwan residents.
    TaiwanPermit,
    /// Foreigner's Permanent Residence ID Card.
    ForeignerResidence,
    /// Other.
    Other,
}

impl From<DocType> for DocumentType {
    fn from(d: DocType) -> Self {
        match d {
            DocType::IdCard => DocumentType::ResidentIdentityCard,
            DocType::Passport => DocumentType::Passport,
            DocType::HkMacaoPermit => DocumentType::HkMacaoTravelPermit,
            DocType::TaiwanPermit => DocumentType::TaiwanTravelPermit,
            DocType::ForeignerResidence => DocumentType::ForeignerPermanentResidence,
            DocType::Other => DocumentType::Other,
        }
    }
}

/// Parses `green=green,yellow=red` (or `none`) into status mappings.
///
/// # Errors
/// [`CliError::Usage`] naming the flag.
pub fn parse_status_map(flag: &str, s: &str) -> Result<Vec<proto::StatusMapping>, CliError> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|pair| {
            let (a, b) = pair.split_once('=').ok_or_else(|| {
                CliError::Usage(format!(
                    "{flag}: {pair:?} is not ISSUED=COUNTS_AS, e.g. yellow=red"
                ))
            })?;
            let a: HealthStatus = a
                .parse()
                .map_err(|e| CliError::Usage(format!("{flag}: {e}")))?;
            let b: HealthStatus = b
                .parse()
                .map_err(|e| CliError::Usage(format!("{flag}: {e}")))?;
            Ok(proto::StatusMapping {
                issued: convert::status_to_proto(Some(a)),
                counts_as: convert::status_to_proto(Some(b)),
            })
        })
        .collect()
}

/// A point in time given on the command line: RFC 3339 with its offset from UTC, `Z` or e.g.
/// `+08:00` for Beijing time (`2026-12-01T08:00:00+08:00` is `2026-12-01T00:00:00Z`); a space
/// may stand for the `T`. A time without an offset is refused rather than guessed: read as UTC,
/// a Beijing operator's `08:00` would be 16:00 their time (clap value parser).
pub(super) fn point_in_time(s: &str) -> Result<std::time::SystemTime, String> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    let with_t = match t.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &t[..10], &t[11..]),
        _ => t.to_string(),
    };
    match time::OffsetDateTime::parse(&with_t, &Rfc3339) {
        Ok(when) => {
            let secs = u64::try_from(when.unix_timestamp())
                .map_err(|_| "before 1970-01-01T00:00:00Z".to_string())?;
            Ok(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        }
        Err(e) if humantime::parse_rfc3339_weak(t).is_ok() => Err(format!(
            "{e}: give the offset from UTC, e.g. {t}Z for UTC or {t}+08:00 for Beijing time"
        )),
        Err(e) => Err(format!(
            "{e}: expected RFC 3339 such as 2026-12-01T08:00:00+08:00 or 2026-12-01T00:00:00Z"
        )),
    }
}

/// Seconds since the Unix epoch of `t` (0 before it).
pub(super) fn secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The code argument, or standard input (at most 64 KiB) when it is `-`.
///
/// # Errors
/// [`CliError::Usage`] when stdin cannot be read, or when the code is empty (only white space):
/// that is a mistake on the command line, not a code to check (and no audit record).
pub(super) fn code_or_stdin(code: String) -> Result<String, CliError> {
    if code != "-" {
        if code.trim().is_empty() {
            return Err(CliError::Usage(
                "CODE is empty: give the code string, or - to read it from standard input".into(),
            ));
        }
        return Ok(code);
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 65_536), &mut s)
        .map_err(|e| CliError::Usage(format!("reading the code from stdin: {e}")))?;
    if s.trim().is_empty() {
        return Err(CliError::Usage(
            "standard input held no code (CODE is -): nothing was checked".into(),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::point_in_time;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> Result<std::time::SystemTime, String> {
        Ok(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn a_point_in_time_takes_its_offset_and_refuses_none() {
        // 2026-12-01T00:00:00Z is 1,796,083,200 s after the epoch.
        assert_eq!(point_in_time("2026-12-01T00:00:00Z"), at(1_796_083_200));
        assert_eq!(
            point_in_time("2026-12-01T08:00:00+08:00"),
            at(1_796_083_200)
        );
        assert_eq!(
            point_in_time("2026-12-01 08:00:00+08:00"),
            at(1_796_083_200)
        );
        assert_eq!(
            point_in_time("2026-11-30T19:00:00-05:00"),
            at(1_796_083_200)
        );
        assert_eq!(point_in_time("2026-12-01T00:00:00.9Z"), at(1_796_083_200));
        let none = point_in_time("2026-12-01T08:00:00").unwrap_err();
        assert!(
            none.contains("2026-12-01T08:00:00+08:00 for Beijing time"),
            "{none}"
        );
        let junk = point_in_time("yesterday").unwrap_err();
        assert!(junk.contains("expected RFC 3339"), "{junk}");
        let early = point_in_time("1969-12-31T23:59:59Z").unwrap_err();
        assert!(early.contains("before 1970"), "{early}");
    }
}
