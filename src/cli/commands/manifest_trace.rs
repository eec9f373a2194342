//! `hcmr manifest trace`: a trip's chain of signed events (docs/tracing.md section 2), from a
//! node (TraceTrip, as a tracer) as text, JSON or CSV; or, with `--verify FILE`, a chain
//! exported as JSON checked offline against a trust bundle: every event's signature under a key
//! the bundle holds for its recorder. Exits 1 when an event does not verify.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, ValueEnum};

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::{args, CliError};
use crate::manifest::{snapshot_keys, verify_chain, ChainItem, ChainKind, TripId};
use crate::proto;
use crate::proto::trace_service_client::TraceServiceClient;

/// Largest chain file read by `--verify`, in bytes: a chain of a few hundred events is well
/// under a megabyte.
const MAX_CHAIN_FILE: u64 = 8 * 1024 * 1024;

/// How `hcmr manifest trace` prints the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// One line per event, its details indented.
    Text,
    /// One JSON object: `trip_id`, `held_by` and `events`, each with `signed` in base64 (what
    /// `--verify` reads).
    Json,
    /// A header, then one line per event (RFC 4180).
    Csv,
}

/// Arguments of `hcmr manifest trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The node to ask, with a tracer's token (ignored with --verify).
    #[command(flatten)]
    node: NodeArg,
    /// The trip (16 hex digits).
    #[arg(required_unless_present = "verify", conflicts_with = "verify")]
    trip: Option<String>,
    /// How to print the chain.
    #[arg(long, value_enum, default_value = "text")]
    format: TraceFormat,
    /// Verify a chain exported with --format json, offline, with --bundle (no node is asked).
    #[arg(long, value_name = "FILE", requires = "bundle")]
    verify: Option<PathBuf>,
    /// With --verify: the trust bundle file whose keys verify the events.
    #[arg(long, value_name = "BUNDLE", requires = "verify")]
    bundle: Option<PathBuf>,
    /// With --verify: the exporting node's key or kid (hex), as `hcmr bundle export` printed it.
    #[arg(long, value_name = "KID_OR_KEY", requires = "verify")]
    trust: Option<String>,
    /// With --verify: the oldest bundle accepted, e.g. 1d.
    #[arg(long, default_value = "1d", value_parser = args::duration)]
    max_bundle_age: Duration,
}

/// Runs `hcmr manifest trace`.
///
/// # Errors
/// [`CliError::Failed`] when an event of a chain verified offline does not verify (after
/// printing every event's outcome); [`CliError::Usage`] for a file that is not a chain or a bad
/// bundle argument; the node's errors.
pub async fn run(a: TraceArgs) -> Result<(), CliError> {
    if let (Some(file), Some(bundle)) = (&a.verify, &a.bundle) {
        return verify_file(file, bundle, a.trust.as_deref(), a.max_bundle_age);
    }
    let trip = a.trip.clone().unwrap_or_default();
    let r = TraceServiceClient::new(channel(&a.node).await?)
        .trace_trip(proto::TraceTripRequest { trip_id: trip })
        .await?
        .into_inner();
    match a.format {
        TraceFormat::Text => print_text(&r),
        TraceFormat::Json => out!("{}", to_json(&r)),
        TraceFormat::Csv => print_csv(&r),
    }
    Ok(())
}

/// A kind's name (`boarded`, `handed_over`, ...), `kind_N` for one this build does not know.
fn kind_name(k: i32) -> String {
    u64::try_from(k)
        .ok()
        .and_then(ChainKind::from_number)
        .map_or_else(|| format!("kind_{k}"), |k| k.as_str().to_string())
}

fn print_text(r: &proto::TraceTripResponse) {
    out!(
        "trip {} as held by {}: {} events",
        r.trip_id,
        r.held_by,
        r.events.len()
    );
    for e in &r.events {
        let check = if e.verified {
            "verified".to_string()
        } else {
            format!("NOT VERIFIED: {}", e.fault)
        };
        out!(
            "{}  {}  {:<11}  {}  [{check}]",
            api_time(e.at),
            e.recorded_by,
            kind_name(e.kind),
            e.summary
        );
        for d in &e.details {
            out!("    {d}");
        }
    }
}

/// The chain as JSON: what `--verify` reads back.
pub fn to_json(r: &proto::TraceTripResponse) -> serde_json::Value {
    use serde_json::json;
    json!({
        "trip_id": r.trip_id,
        "held_by": r.held_by,
        "events": r.events.iter().map(|e| json!({
            "kind": kind_name(e.kind),
            "at": e.at,
            "time": crate::rfc3339(e.at),
            "recorded_by": e.recorded_by,
            "seat": e.seat,
            "version": e.version,
            "summary": e.summary,
            "details": e.details,
            "verified": e.verified,
            "fault": e.fault,
            "signed": base64::engine::general_purpose::STANDARD.encode(&e.signed),
        })).collect::<Vec<_>>(),
    })
}

fn print_csv(r: &proto::TraceTripResponse) {
    use super::audit::csv_field;
    out!("trip_id,kind,at,time,recorded_by,seat,version,verified,summary,details,signed");
    for e in &r.events {
        out!(
            "{},{},{},{},{},{},{},{},{},{},{}",
            r.trip_id,
            kind_name(e.kind),
            e.at,
            crate::rfc3339(e.at),
            e.recorded_by,
            e.seat,
            e.version,
            e.verified,
            csv_field(&e.summary),
            csv_field(&e.details.join("; ")),
            base64::engine::general_purpose::STANDARD.encode(&e.signed)
        );
    }
}

/// The items of a chain file, in file order; an event that cannot be read is a fault naming
/// it, kept in its place.
fn read_chain(
    file: &std::path::Path,
) -> Result<(TripId, Vec<Result<ChainItem, String>>), CliError> {
    let usage = |why: String| CliError::Usage(format!("--verify {}: {why}", file.display()));
    let bytes =
        crate::fsutil::read_capped(file, MAX_CHAIN_FILE).map_err(|e| usage(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| usage(format!("not JSON: {e}")))?;
    let trip = v
        .get("trip_id")
        .and_then(|t| t.as_str())
        .and_then(|t| hex::decode(t).ok())
        .and_then(|b| b.try_into().ok())
        .map(TripId)
        .ok_or_else(|| usage("no trip_id of 16 hex digits: not a chain `hcmr manifest trace --format json` wrote".into()))?;
    let events = v
        .get("events")
        .and_then(|e| e.as_array())
        .ok_or_else(|| usage("no events array".into()))?;
    let items = events
        .iter()
        .map(|e| {
            let kind = e
                .get("kind")
                .and_then(|k| k.as_str())
                .and_then(ChainKind::parse)
                .ok_or("its kind is missing or unknown")?;
            let signed = match (e.get("signed"), e.get("signed_hex")) {
                (Some(s), _) => s
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .ok_or("signed is not base64")?,
                (None, Some(h)) => h
                    .as_str()
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or("signed_hex is not hex")?,
                (None, None) => return Err("it has no signed bytes".to_string()),
            };
            Ok(ChainItem { kind, signed })
        })
        .collect();
    Ok((trip, items))
}

/// `--verify FILE --bundle BUNDLE`: every event of the file verified under the bundle's keys.
fn verify_file(
    file: &std::path::Path,
    bundle: &std::path::Path,
    trust: Option<&str>,
    max_age: Duration,
) -> Result<(), CliError> {
    let (trip, read) = read_chain(file)?;
    let (snapshot, _) = super::verify::open_bundle("--bundle", bundle, trust, max_age)?;
    let mut failed = 0usize;
    let mut items = Vec::new();
    let mut positions = Vec::new();
    for (i, r) in read.iter().enumerate() {
        match r {
            Ok(item) => {
                items.push(item.clone());
                positions.push(i);
            }
            Err(why) => {
                failed += 1;
                out!("event {}: FAIL: {why}", i + 1);
            }
        }
    }
    let total = read.len();
    if items.is_empty() {
        return Err(CliError::Failed(format!(
            "trip {trip}: no event of the {total} in the file can be verified"
        )));
    }
    let report = verify_chain(trip, &items, |p| snapshot_keys(&snapshot, p))
        .map_err(|e| CliError::Failed(format!("trip {trip}: {e}")))?;
    for e in &report.entries {
        let n = positions[e.index] + 1;
        let who = e
            .content
            .as_ref()
            .and_then(|c| c.recorder().ok())
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        match &e.outcome {
            Ok(()) => out!("event {n}: ok: {} by {who}", e.kind.as_str()),
            Err(f) => {
                failed += 1;
                out!("event {n}: FAIL: {} by {who}: {f}", e.kind.as_str());
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "trip {trip}: {failed} of {total} events do not verify"
        )));
    }
    out!("trip {trip}: all {total} events verify");
    Ok(())
}
