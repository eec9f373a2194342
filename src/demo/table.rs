//! The printed verdict table and access-check lines, with their running tally.

use std::io::Write;

use super::{DemoError, DemoOutcome};
use crate::node::convert;
use crate::proto;
use crate::province::Province;
use crate::status::HealthStatus;

/// The verdict table and its running tally.
pub(super) struct Table<'a, W: Write> {
    /// Where the table is printed.
    pub(super) out: &'a mut W,
    /// The tally so far.
    pub(super) outcome: DemoOutcome,
}

impl<'a, W: Write> Table<'a, W> {
    /// Prints the header of the verdict table to `out`.
    pub(super) fn new(out: &'a mut W) -> Result<Self, DemoError> {
        let header = format!(
            "{}{}{}{}{}{}{}reason",
            pad("worker", 9),
            pad("ID (masked)", 20),
            pad("from", 11),
            pad("to", 11),
            pad("issued", 8),
            pad("here", 7),
            pad("verdict", 16),
        );
        writeln!(out, "{header}")?;
        writeln!(out, "{}", "-".repeat(width(&header) + 24))?;
        Ok(Table {
            out,
            outcome: DemoOutcome {
                checks: 0,
                recognized: 0,
                mismatches: 0,
                access_checks: 0,
                access_mismatches: 0,
                trip_checks: 0,
                trip_mismatches: 0,
            },
        })
    }

    /// One access check: what was tried, the status it got, the status expected.
    pub(super) fn access(
        &mut self,
        what: &str,
        got: tonic::Code,
        want: tonic::Code,
    ) -> Result<(), DemoError> {
        self.outcome.access_checks += 1;
        self.outcome.access_mismatches += usize::from(got != want);
        let name = |c: tonic::Code| match c {
            tonic::Code::Ok => "served".to_string(),
            tonic::Code::Unauthenticated => "UNAUTHENTICATED".to_string(),
            tonic::Code::PermissionDenied => "PERMISSION_DENIED".to_string(),
            other => format!("{other:?}"),
        };
        let mark = if got == want { "" } else { "  <-- expected " };
        writeln!(
            self.out,
            "  {}{}{mark}{}",
            pad(what, 56),
            name(got),
            if got == want {
                String::new()
            } else {
                name(want)
            }
        )?;
        Ok(())
    }

    /// One verdict: printed as a row, counted, and compared with `expect`.
    pub(super) fn row(
        &mut self,
        from: u32,
        to: u32,
        issued: HealthStatus,
        r: &proto::VerifyHealthCodeResponse,
        expect: Result<HealthStatus, proto::Reason>,
        note: &str,
    ) -> Result<(), DemoError> {
        let recognized = r.verdict == proto::Verdict::Recognized as i32;
        let got = if recognized {
            convert::status_from_proto(r.local_status).ok_or(proto::Reason::Unspecified)
        } else {
            Err(proto::Reason::try_from(r.reason).unwrap_or(proto::Reason::Unspecified))
        };
        let ok = got == expect;
        self.outcome.checks += 1;
        self.outcome.recognized += usize::from(recognized);
        self.outcome.mismatches += usize::from(!ok);
        let subject = r.subject.clone().unwrap_or_default();
        let prov = |p: u32| Province::from_code(p).map(|p| p.name_en()).unwrap_or("?");
        let reason = proto::Reason::try_from(r.reason)
            .map(|x| {
                x.as_str_name()
                    .trim_start_matches("REASON_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        writeln!(
            self.out,
            "{}{}{}{}{}{}{}{}{}{}",
            pad(&subject.masked_name, 9),
            pad(&subject.masked_document_number, 20),
            pad(prov(from), 11),
            pad(prov(to), 11),
            pad(issued.as_str(), 8),
            pad(
                convert::status_from_proto(r.local_status).map_or("-", HealthStatus::as_str),
                7
            ),
            pad(
                if recognized {
                    "RECOGNIZED"
                } else {
                    "NOT RECOGNIZED"
                },
                16
            ),
            reason,
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            },
            if ok {
                String::new()
            } else {
                format!("   <-- MISMATCH: expected {expect:?}")
            }
        )?;
        Ok(())
    }
}

/// Display width of a string in a terminal: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// `s` padded with spaces to `w` terminal columns.
pub(super) fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}
