//! `hcmr exposure`: the exposure notices this node took in for its province's residents
//! (docs/tracing.md section 5), as the province's platform (role tracer) reads them to decide,
//! resident by resident, what to do. hcmr changes no status by itself.

use clap::{Subcommand, ValueEnum};

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{point_in_time, secs};
use crate::cli::CliError;
use crate::proto;
use crate::proto::trace_service_client::TraceServiceClient;

/// Exposure notice subcommands.
#[derive(Debug, Subcommand)]
pub enum ExposureCommand {
    /// Notices received, newest first: the trip, its date, the resident's seat and distance
    /// to the case, the case's class, and the resident's keyed subject hash (16 hex digits when
    /// matched with the issued-code log, else the 8 the manifest held).
    List {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Only notices received from this time, RFC 3339 with its offset
        /// (2026-11-29T08:00:00+08:00 or 2026-11-29T00:00:00Z).
        #[arg(long, value_parser = point_in_time)]
        since: Option<std::time::SystemTime>,
        /// Most notices to print.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// Output: a line per notice, or one JSON array.
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A line per notice.
    Text,
    /// One JSON array of notices, as the API gives them (times in seconds since the Unix
    /// epoch, UTC).
    Json,
}

fn case_class(v: i32) -> &'static str {
    match proto::CaseClass::try_from(v).unwrap_or(proto::CaseClass::Unspecified) {
        proto::CaseClass::Confirmed => "confirmed",
        proto::CaseClass::Asymptomatic => "asymptomatic",
        proto::CaseClass::Suspected => "suspected",
        proto::CaseClass::Unspecified => "-",
    }
}

fn notice_json(n: &proto::ExposureNoticeView) -> serde_json::Value {
    serde_json::json!({
        "notice_id": n.notice_id,
        "from_province": n.from_province,
        "trip_id": n.trip_id,
        "trip_origin": n.trip_origin,
        "departure": n.departure,
        "seat": n.seat,
        "distance": n.distance,
        "crew": n.crew,
        "case_class": case_class(n.case_class),
        "subject_hash": n.subject_hash,
        "cti_prefix": n.cti_prefix,
        "matched": n.matched,
        "received_at": n.received_at,
    })
}

/// Runs `hcmr exposure ...`.
pub(crate) async fn exec(c: ExposureCommand) -> Result<(), CliError> {
    match c {
        ExposureCommand::List {
            node,
            since,
            limit,
            format,
        } => {
            let mut c = TraceServiceClient::new(channel(&node).await?);
            let mut all = Vec::new();
            let mut page_token = String::new();
            // Bounded: each page holds at least one notice, and at most `limit` are kept.
            loop {
                let r = c
                    .list_exposure_notices(proto::ListExposureNoticesRequest {
                        since: since.map_or(0, secs),
                        page_size: limit.min(1000),
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(r.notices);
                if r.next_page_token.is_empty() || all.len() >= limit as usize {
                    break;
                }
                page_token = r.next_page_token;
            }
            all.truncate(limit as usize);
            if format == FormatArg::Json {
                let v: Vec<_> = all.iter().map(notice_json).collect();
                out!("{}", serde_json::Value::Array(v));
                return Ok(());
            }
            for n in &all {
                out!(
                    "{}  from {}  trip {} (origin {}, departing {})  seat {}{}  {} seat(s) from the case ({})  subject {}{}  received {}",
                    n.notice_id,
                    n.from_province,
                    n.trip_id,
                    n.trip_origin,
                    api_time(n.departure),
                    n.seat,
                    if n.crew { " (crew)" } else { "" },
                    n.distance,
                    case_class(n.case_class),
                    n.subject_hash,
                    if n.matched { "" } else { " (not in the issued-code log)" },
                    api_time(n.received_at),
                );
            }
            Ok(())
        }
    }
}
