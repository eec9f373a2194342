//! `hcmr audit`: the audit log of verifications.

use clap::{Args, ValueEnum};

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{point_in_time, secs};
use crate::cli::CliError;
use crate::proto;
use crate::province::Province;

/// Arguments of `hcmr audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The node to ask.
    #[command(flatten)]
    node: NodeArg,
    /// From this time, RFC 3339 with its offset (2026-11-29T08:00:00+08:00 or
    /// 2026-11-29T00:00:00Z).
    #[arg(long, value_parser = point_in_time)]
    from: Option<std::time::SystemTime>,
    /// Until this time (exclusive), RFC 3339 with its offset.
    #[arg(long, value_parser = point_in_time)]
    until: Option<std::time::SystemTime>,
    /// Only codes of this issuing province (GB/T 2260).
    #[arg(long)]
    issuer: Option<String>,
    /// Only this verdict.
    #[arg(long, value_enum)]
    verdict: Option<VerdictArg>,
    /// Counts per issuing province and verdict for one UTC day (YYYY-MM-DD) instead of records.
    #[arg(long, value_name = "DAY", conflicts_with_all = ["from", "until"])]
    summary: Option<String>,
    /// Print CSV (time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash,replica). A manifest
    /// check has verdict PASS or STOP, reason `MANIFEST:` and its reasons (`revoked@3;...`), and
    /// `trip ID vN` for the hash; a traceability record SERVED or REFUSED, `TRACE:` and its
    /// action (`TRACE:query_answered`), and `subject PREFIX xN` (or `trip ID xN`) for the hash.
    /// `replica` is the verify replica that made the record (empty: this node); the table
    /// shows it as `[replica NAME]` at the end of the line.
    #[arg(long)]
    csv: bool,
    /// Most records to print, oldest first (fetched in pages of at most 10,000); when more
    /// match, the token to continue with is printed on standard error. Not with --summary,
    /// which counts every record of its day.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "summary")]
    limit: u32,
    /// Continue after an earlier listing: the token it printed when more followed (with the
    /// same --until, --issuer and --verdict).
    #[arg(long, conflicts_with_all = ["from", "summary"])]
    page_token: Option<String>,
}

/// Verdicts on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    /// Recognized.
    Recognized,
    /// Not recognized.
    NotRecognized,
}

/// `hcmr audit`: records as a table or CSV, or one day's counts.
pub(crate) async fn exec(a: AuditArgs) -> Result<(), CliError> {
    use proto::operator_service_client::OperatorServiceClient;
    let (from, until) = match &a.summary {
        Some(day) => {
            // One instruction: the day's own form, not the RFC 3339 advice of --from.
            let usage = |why: &str| {
                CliError::Usage(format!(
                    "--summary {day:?}: {why}give a UTC day YYYY-MM-DD from 1970 on, e.g. 2026-12-01"
                ))
            };
            let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")
                .map_err(|e| CliError::Failed(format!("the day format: {e}")))?;
            let date = time::Date::parse(day.trim(), &format).map_err(|e| match e {
                time::error::Parse::TryFromParsed(_) => usage("no such day; "),
                _ => usage(""),
            })?;
            let s = u64::try_from(date.midnight().assume_utc().unix_timestamp())
                .map_err(|_| usage("before 1970; "))?;
            (s, s + 86_400)
        }
        None => (a.from.map_or(0, secs), a.until.map_or(0, secs)),
    };
    if until != 0 && from >= until {
        return Err(CliError::Usage(format!(
            "--from {} is not before --until {}: no record can match",
            api_time(from),
            api_time(until)
        )));
    }
    let verdict = |v: i32| {
        if v == proto::Verdict::Recognized as i32 {
            "RECOGNIZED"
        } else {
            "NOT_RECOGNIZED"
        }
    };
    let reason = |r: i32| {
        proto::Reason::try_from(r)
            .map(|x| x.as_str_name().trim_start_matches("REASON_"))
            .unwrap_or("?")
    };
    // A manifest check: PASS or STOP, its reasons by seat, and the trip where a code's hash goes.
    // A traceability record (docs/tracing.md): SERVED or REFUSED, `TRACE:` and its action, and
    // the subject prefix or trip with the count where a code's hash goes.
    let shown_verdict = |rec: &proto::AuditRecord| match (&rec.manifest, verdict(rec.verdict)) {
        (None, "RECOGNIZED") if rec.trace.is_some() => "SERVED",
        (None, _) if rec.trace.is_some() => "REFUSED",
        (None, v) => v,
        (Some(_), "RECOGNIZED") => "PASS",
        (Some(_), _) => "STOP",
    };
    let shown_reason = |rec: &proto::AuditRecord| match &rec.manifest {
        None if rec.trace.is_some() => trace_action(rec.trace.as_ref()),
        None => reason(rec.reason).to_string(),
        Some(m) => manifest_reasons(m),
    };
    let shown_subject = |rec: &proto::AuditRecord| match (&rec.manifest, &rec.trace) {
        (None, Some(t)) => trace_subject(t),
        (None, None) => rec.cti_hash.clone(),
        (Some(m), _) if m.trip_id.is_empty() => "trip ?".to_string(),
        (Some(m), _) => format!(
            "trip {} v{}{}",
            m.trip_id,
            m.version,
            if m.signature_verified {
                ""
            } else {
                " (unverified)"
            }
        ),
    };
    let mut client = OperatorServiceClient::new(channel(&a.node).await?);
    // Every record of the summary's day; else at most --limit. A page at a time, printed as it
    // comes, so no more than a page is held.
    let want = if a.summary.is_some() {
        u64::MAX
    } else {
        u64::from(a.limit)
    };
    let mut token = a.page_token.clone().unwrap_or_default();
    let mut shown: u64 = 0;
    let mut counts: std::collections::BTreeMap<(String, &str), u64> = Default::default();
    if a.csv && a.summary.is_none() {
        out!("time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash,replica");
    }
    loop {
        let page_size = u32::try_from(want - shown).unwrap_or(u32::MAX);
        let r = client
            .list_audit_records(proto::ListAuditRecordsRequest {
                from,
                until,
                issuer_province: a.issuer.clone().unwrap_or_default(),
                verdict: match a.verdict {
                    None => 0,
                    Some(VerdictArg::Recognized) => proto::Verdict::Recognized as i32,
                    Some(VerdictArg::NotRecognized) => proto::Verdict::NotRecognized as i32,
                },
                limit: page_size,
                page_token: std::mem::take(&mut token),
            })
            .await?
            .into_inner();
        shown += r.records.len() as u64;
        for rec in &r.records {
            if a.summary.is_some() {
                *counts
                    .entry((rec.issuer_province.clone(), shown_verdict(rec)))
                    .or_default() += 1;
            } else if a.csv {
                out!(
                    "{},{},{},{},{},{},{},{}",
                    api_time(rec.time),
                    csv_field(&rec.checkpoint_id),
                    rec.via,
                    rec.issuer_province,
                    shown_verdict(rec),
                    shown_reason(rec),
                    shown_subject(rec),
                    csv_field(&rec.replica)
                );
            } else {
                // Which machine checked: a verify replica's records end with its name.
                let by = if rec.replica.is_empty() {
                    String::new()
                } else {
                    format!("  [replica {}]", rec.replica)
                };
                out!(
                    "{}  {:<20} {:<4} {:<7} {:<15} {:<26} {}{by}",
                    api_time(rec.time),
                    rec.checkpoint_id,
                    rec.via,
                    rec.issuer_province,
                    shown_verdict(rec),
                    shown_reason(rec),
                    shown_subject(rec)
                );
            }
        }
        // Ends: each page moves past the records it returned, and the log is finite.
        if r.next_page_token.is_empty() {
            break;
        }
        if r.records.is_empty() {
            return Err(CliError::Failed(
                "the node returned an empty page with a next_page_token".into(),
            ));
        }
        if shown >= want {
            note!(
                "{shown} record{} shown, oldest first; more follow: --page-token {} for the next \
                 (with the same --until, --issuer and --verdict)",
                if shown == 1 { "" } else { "s" },
                r.next_page_token
            );
            break;
        }
        token = r.next_page_token;
    }
    // An empty listing says so (as `agreement list` does), rather than printing nothing.
    if shown == 0 && a.summary.is_none() {
        let filtered = a.from.is_some()
            || a.until.is_some()
            || a.issuer.is_some()
            || a.verdict.is_some()
            || a.page_token.is_some();
        let what = if filtered {
            "no audit records match"
        } else {
            "no audit records (no verifications yet)"
        };
        if a.csv {
            eprintln!("{what}");
        } else {
            out!("{what}");
        }
    }
    if let Some(day) = &a.summary {
        if a.csv {
            out!("issuer_province,verdict,count");
        } else {
            out!("{day} (UTC): {shown} verifications");
        }
        for ((issuer, v), n) in counts {
            let name = issuer
                .parse::<Province>()
                .map(|p| p.name_en())
                .unwrap_or("(undecodable)");
            if a.csv {
                out!("{issuer},{v},{n}");
            } else {
                out!("  {issuer:<7} {name:<14} {v:<15} {n}");
            }
        }
    }
    Ok(())
}

/// A traceability record's trip and subject prefix (never more of a person) for the subject
/// column, with the count: `trip 7e7e7e7e7e7e7e7e subject 1a2b3c4d x1`.
fn trace_subject(t: &proto::TraceRecord) -> String {
    let mut parts = Vec::new();
    if !t.trip_id.is_empty() {
        parts.push(format!("trip {}", t.trip_id));
    }
    if !t.subject_prefix.is_empty() {
        parts.push(format!("subject {}", t.subject_prefix));
    }
    parts.push(format!("x{}", t.count));
    parts.join(" ")
}

/// A traceability record's action for the reason column: `TRACE:` and the action in lower case
/// (`TRACE:query_answered`).
fn trace_action(t: Option<&proto::TraceRecord>) -> String {
    let action = t
        .and_then(|t| proto::TraceAction::try_from(t.action).ok())
        .map(|a| {
            a.as_str_name()
                .trim_start_matches("TRACE_ACTION_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "?".into());
    format!("TRACE:{action}")
}

/// A manifest check's reasons for the reason column: `MANIFEST` and each reason's identifier
/// (`revoked@3` for a seat), joined by `;` (no comma, for the CSV); `MANIFEST` alone for a PASS.
fn manifest_reasons(m: &proto::ManifestCheckRecord) -> String {
    let mut out = "MANIFEST".to_string();
    for (i, r) in m.reasons.iter().enumerate() {
        out.push(if i == 0 { ':' } else { ';' });
        out.push_str(
            &proto::ManifestReason::try_from(r.reason)
                .map(|x| {
                    x.as_str_name()
                        .trim_start_matches("MANIFEST_REASON_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|_| "?".into()),
        );
        if r.seat != 0 {
            out.push_str(&format!("@{}", r.seat));
        }
    }
    out
}

/// A CSV field: quoted when it holds a comma, quote or line break (RFC 4180); a field that
/// a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return; OWASP "CSV injection") gets a leading `'`, so it opens as text. Checkpoint ids are
/// chosen by callers, and a crafted page link can set one.
pub(super) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("gate-3"), "gate-3");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("gate-=1"), "gate-=1");
    }
}
