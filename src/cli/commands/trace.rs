//! `hcmr trace subject`: trace a case to their fellow travellers (docs/tracing.md section 3),
//! here and at every peer whose agreement lets this province trace there. The document number
//! goes to the node only; it is neither printed nor logged.

use clap::{Subcommand, ValueEnum};

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{point_in_time, secs, DocType};
use crate::cli::CliError;
use crate::identity::DocumentType;
use crate::proto;
use crate::proto::trace_service_client::TraceServiceClient;

/// How a case was classified by its issuing province.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaseClassArg {
    /// A confirmed case.
    Confirmed,
    /// An asymptomatic infection.
    Asymptomatic,
    /// A suspected case.
    Suspected,
}

impl From<CaseClassArg> for proto::CaseClass {
    fn from(c: CaseClassArg) -> Self {
        match c {
            CaseClassArg::Confirmed => proto::CaseClass::Confirmed,
            CaseClassArg::Asymptomatic => proto::CaseClass::Asymptomatic,
            CaseClassArg::Suspected => proto::CaseClass::Suspected,
        }
    }
}

/// How the answer is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// Lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// Tracing subcommands (caller role tracer).
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// The trips listing a case, here and at every peer whose agreement allows tracing, with
    /// each trip's fellow travellers and who counts as a contact.
    #[command(
        after_help = "Example:\n  hcmr trace subject --doc-type id-card --doc-number 51130419900101123X \\\n    --since 2026-11-20T00:00:00+08:00 --rows 3 --format json"
    )]
    Subject {
        /// The node to ask (the case's issuing province's).
        #[command(flatten)]
        node: NodeArg,
        /// The case's document type.
        #[arg(long, value_enum, default_value = "id-card")]
        doc_type: DocType,
        /// The case's document number (only its keyed hash leaves the node; never printed).
        #[arg(long)]
        doc_number: String,
        /// Trips departing from this time, RFC 3339 with its offset; default 28 days ago.
        #[arg(long, value_parser = point_in_time)]
        since: Option<std::time::SystemTime>,
        /// Trips departing before this time, RFC 3339 with its offset; default now.
        #[arg(long, value_parser = point_in_time)]
        until: Option<std::time::SystemTime>,
        /// Rows either side of the case's row that count as contacts (1 to 99).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=99))]
        rows: u32,
        /// Seats per row, seat 1 to N being row 1 (1 to 99).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=99))]
        seats_per_row: u32,
        /// Everyone on board counts (a vehicle without seat plan, a closed carriage).
        #[arg(long)]
        whole_vehicle: bool,
        /// The case's classification, carried by the notices (needed with --notify).
        #[arg(long, value_enum)]
        case_class: Option<CaseClassArg>,
        /// Send exposure notices to the contacts' issuing provinces (with --case-class).
        #[arg(long, requires = "case_class")]
        notify: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: TraceFormat,
    },
}

/// Runs `hcmr trace ...`.
pub(crate) async fn exec(c: TraceCommand) -> Result<(), CliError> {
    match c {
        TraceCommand::Subject {
            node,
            doc_type,
            doc_number,
            since,
            until,
            rows,
            seats_per_row,
            whole_vehicle,
            case_class,
            notify,
            format,
        } => {
            let doc: DocumentType = doc_type.into();
            let r = TraceServiceClient::new(channel(&node).await?)
                .trace_subject(proto::TraceSubjectRequest {
                    document_type: i32::from(doc.to_u8()),
                    document_number: doc_number,
                    since: since.map_or(0, secs),
                    until: until.map_or(0, secs),
                    rule: Some(proto::ContactRule {
                        rows,
                        seats_per_row,
                        whole_vehicle,
                    }),
                    case_class: case_class
                        .map_or(proto::CaseClass::Unspecified, proto::CaseClass::from)
                        as i32,
                    send_notices: notify,
                })
                .await?
                .into_inner();
            match format {
                TraceFormat::Json => out!("{}", trace_json(&r)),
                TraceFormat::Text => print_trace(&r),
            }
            Ok(())
        }
    }
}

/// `-` for an empty list, else its items joined by commas.
fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn print_trace(r: &proto::TraceSubjectResponse) {
    out!(
        "subject {}: {} trip{} (contacts: {})",
        r.subject_prefix,
        r.trips.len(),
        if r.trips.len() == 1 { "" } else { "s" },
        r.rule
    );
    out!(
        "provinces answered: {}; did not answer: {}; not asked (no tracing term): {}",
        list(&r.answered),
        list(&r.not_answered),
        list(&r.not_asked)
    );
    if r.trips.is_empty() {
        out!(
            "no trip lists this subject (a trace finds this province's own residents: the hash is \
             keyed with this province's subject key, so another province's resident is traced by \
             their own province)"
        );
    }
    for t in &r.trips {
        let contacts = t.fellows.iter().filter(|f| f.contact).count();
        out!(
            "trip {} version {} of {}: {} from {} to {}{}, departs {}, arrives {}; held by {}",
            t.trip_id,
            t.version,
            t.origin_province,
            t.vehicle,
            t.origin,
            t.destination,
            if t.transit.is_empty() {
                String::new()
            } else {
                format!(" through {}", t.transit.join(", "))
            },
            api_time(t.departure),
            api_time(t.arrival),
            list(&t.held_by)
        );
        out!(
            "  the case: seat {}{}; {} other{} on board, {} contact{}",
            t.case_seat,
            if t.case_crew { " (crew)" } else { "" },
            t.fellows.len(),
            if t.fellows.len() == 1 { "" } else { "s" },
            contacts,
            if contacts == 1 { "" } else { "s" }
        );
        for f in &t.fellows {
            out!(
                "  seat {:>2} {:<9} issuer {} subject {} cti {}  distance {:>2} rows {:>2}  {}",
                f.seat,
                if f.crew { "crew" } else { "passenger" },
                f.issuer,
                f.subject_prefix,
                f.cti_prefix,
                f.distance,
                f.rows_apart,
                if f.contact { "CONTACT" } else { "-" }
            );
        }
    }
    if r.notices_queued > 0 {
        out!("exposure notices queued: {}", r.notices_queued);
    }
}

fn trace_json(r: &proto::TraceSubjectResponse) -> serde_json::Value {
    use serde_json::json;
    json!({
        "subject_prefix": r.subject_prefix,
        "rule": r.rule,
        "answered": r.answered,
        "not_answered": r.not_answered,
        "not_asked": r.not_asked,
        "notices_queued": r.notices_queued,
        "trips": r.trips.iter().map(|t| json!({
            "trip_id": t.trip_id,
            "origin_province": t.origin_province,
            "held_by": t.held_by,
            "version": t.version,
            "vehicle": t.vehicle,
            "origin": t.origin,
            "destination": t.destination,
            "transit": t.transit,
            "departure": t.departure,
            "arrival": t.arrival,
            "case_seat": t.case_seat,
            "case_crew": t.case_crew,
            "fellows": t.fellows.iter().map(|f| json!({
                "issuer": f.issuer,
                "subject_prefix": f.subject_prefix,
                "cti_prefix": f.cti_prefix,
                "seat": f.seat,
                "crew": f.crew,
                "distance": f.distance,
                "rows_apart": f.rows_apart,
                "contact": f.contact,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
