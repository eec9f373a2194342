//! `hcmr manifest`: trips at their origin (docs/transport.md), as an organizer: create a trip,
//! board people by their codes, seal the manifest, cancel, list and show. Each subcommand calls
//! the running node's TripService; `hcmr manifest check`, the checkpoint's scan, is in
//! `manifest_check.rs`.

use clap::{Args, Subcommand, ValueEnum};

use crate::cli::display::{api_time, status_name, DISPLAY_OFFSET};
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{code_or_stdin, point_in_time, secs};
use crate::cli::{output, CliError};
use crate::proto;
use crate::proto::trip_service_client::TripServiceClient;
use crate::proto::TripState;

/// Manifest subcommands (more join them: the checkpoint's and the receiver's).
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Create a trip (nothing signed yet); prints its id.
    Create(CreateArgs),
    /// Board a passenger or crew member by their health code (decided as `hcmr verify` is);
    /// a refusal prints its reason and exits 1.
    Board {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
        /// The person's code string, or - to read it from standard input.
        code: String,
        /// Seat, 1 to 99 [default: the lowest free].
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=99))]
        seat: u32,
        /// A crew member (driver, escort, conductor) rather than a passenger.
        #[arg(long)]
        crew: bool,
    },
    /// Take a person off a trip (after a seal, the next seal carries the change).
    Remove {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
        /// The seat to free, 1 to 99.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=99))]
        seat: u32,
        /// Why (1 to 200 bytes; no personal data).
        #[arg(long)]
        reason: String,
    },
    /// Sign the manifest as it stands (a new version supersedes the last); prints the manifest
    /// string for the windshield card's QR code.
    Seal {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
        /// Print the manifest string alone (for scripts).
        #[arg(long)]
        quiet: bool,
        /// Also write the windshield card (A4, Chinese and English: the QR code, plate, route,
        /// planned times in the display offset, headcount) to this new file: .pdf for a PDF,
        /// anything else a 300 dpi PNG. An existing file is refused, never overwritten.
        #[arg(long)]
        card: Option<std::path::PathBuf>,
    },
    /// Cancel a trip never sealed (its people may board another).
    Cancel {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
    },
    /// Trips of this origin, newest first.
    List {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Only trips in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Most trips to print.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON (one array of trips).
        #[arg(long)]
        json: bool,
    },
    /// One trip: its state, people, checks reported and handover.
    Show {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Checkpoint: check a vehicle by its manifest (one scan: PASS, or STOP with every reason by
    /// seat), at a node as a verifier or offline with a trust bundle; exits 3 on STOP.
    #[command(after_help = crate::cli::EXIT_CODES)]
    Check(super::manifest_check::CheckArgs),
    /// Tracer: a trip's chain of signed events (docs/tracing.md section 2), from creation to
    /// handover, as the node holds it; or, with --verify FILE --bundle BUNDLE, a chain exported
    /// as JSON checked offline (exits 1 when an event does not verify).
    Trace(super::manifest_trace::TraceArgs),
}

/// Arguments of `hcmr manifest create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The node to ask.
    #[command(flatten)]
    node: NodeArg,
    /// Plate ("川R·12345") or train and carriage ("G1234/05"), at most 16 bytes.
    #[arg(long)]
    vehicle: String,
    /// GB/T 2260 county code of the departure, in the node's province (e.g. 511304).
    #[arg(long)]
    origin: String,
    /// GB/T 2260 code of the destination, in another province (e.g. 330212).
    #[arg(long)]
    destination: String,
    /// Destination place (employer or reception station), at most 24 bytes.
    #[arg(long)]
    place: String,
    /// Provinces passed through, in order (GB/T 2260; repeat or separate by commas).
    #[arg(long, value_delimiter = ',')]
    transit: Vec<String>,
    /// Planned departure, RFC 3339 with its offset (2026-12-03T08:00:00+08:00).
    #[arg(long, value_parser = point_in_time)]
    departure: std::time::SystemTime,
    /// Planned arrival, RFC 3339 with its offset; after departure, at most 72 h later.
    #[arg(long, value_parser = point_in_time)]
    arrival: std::time::SystemTime,
    /// The escort's masked name (e.g. "王*"); never a full name.
    #[arg(long)]
    escort: String,
}

/// Trip states on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    /// Boarding; never sealed.
    Open,
    /// Sealed; no check reported.
    Sealed,
    /// Checks reported.
    InTransit,
    /// Handed over at the destination.
    Delivered,
    /// Refused at the destination.
    Refused,
    /// No handover by the planned arrival plus the grace period.
    Overdue,
    /// Cancelled before any seal.
    Cancelled,
}

impl From<StateArg> for TripState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Open => TripState::Open,
            StateArg::Sealed => TripState::Sealed,
            StateArg::InTransit => TripState::InTransit,
            StateArg::Delivered => TripState::Delivered,
            StateArg::Refused => TripState::Refused,
            StateArg::Overdue => TripState::Overdue,
            StateArg::Cancelled => TripState::Cancelled,
        }
    }
}

/// A state as people write it (`in-transit`).
fn state_name(v: i32) -> &'static str {
    match TripState::try_from(v).unwrap_or(TripState::Unspecified) {
        TripState::Unspecified => "-",
        TripState::Open => "open",
        TripState::Sealed => "sealed",
        TripState::InTransit => "in-transit",
        TripState::Delivered => "delivered",
        TripState::Refused => "refused",
        TripState::Overdue => "overdue",
        TripState::Cancelled => "cancelled",
    }
}

/// A boarding refusal as people write it.
fn refusal_name(v: i32) -> &'static str {
    use proto::BoardingRefusal as B;
    match B::try_from(v).unwrap_or(B::Unspecified) {
        B::Unspecified => "-",
        B::NotRecognized => "not recognized",
        B::StatusNotGreen => "status not green",
        B::StatusEndsBeforeArrival => "status ends before arrival",
        B::OnAnotherManifest => "on another manifest",
        B::AlreadyOnThisManifest => "already on this manifest",
        B::SeatTaken => "seat taken",
        B::ManifestFull => "manifest full",
    }
}

async fn client(node: &NodeArg) -> Result<TripServiceClient<crate::client::NodeChannel>, CliError> {
    Ok(TripServiceClient::new(channel(node).await?))
}

/// Runs `hcmr manifest ...`.
pub(crate) async fn exec(c: ManifestCommand) -> Result<(), CliError> {
    match c {
        ManifestCommand::Create(a) => {
            let r = client(&a.node)
                .await?
                .create_manifest(proto::CreateManifestRequest {
                    vehicle: a.vehicle,
                    origin: a.origin,
                    destination: a.destination,
                    place: a.place,
                    transit: a.transit,
                    departure: secs(a.departure),
                    arrival: secs(a.arrival),
                    escort: a.escort,
                })
                .await?
                .into_inner();
            out!("{}", r.trip_id);
            Ok(())
        }
        ManifestCommand::Board {
            node,
            trip,
            code,
            seat,
            crew,
        } => {
            let r = client(&node)
                .await?
                .board_person(proto::BoardPersonRequest {
                    trip_id: trip,
                    code: code_or_stdin(code)?,
                    seat,
                    crew,
                })
                .await?
                .into_inner();
            if r.boarded {
                let who = r
                    .person
                    .as_ref()
                    .and_then(|p| p.subject.as_ref())
                    .map(|s| s.masked_name.clone())
                    .unwrap_or_default();
                out!("boarded {who} in seat {}", r.seat);
                return Ok(());
            }
            let other = if r.other_trip_id.is_empty() {
                String::new()
            } else {
                format!(" (trip {})", r.other_trip_id)
            };
            Err(CliError::Failed(format!(
                "not boarded: {}{other}: {}",
                refusal_name(r.refusal),
                r.detail
            )))
        }
        ManifestCommand::Remove {
            node,
            trip,
            seat,
            reason,
        } => {
            client(&node)
                .await?
                .remove_person(proto::RemovePersonRequest {
                    trip_id: trip.clone(),
                    seat,
                    reason,
                })
                .await?;
            out!("seat {seat} of trip {trip} is free; seal again to sign the change");
            Ok(())
        }
        ManifestCommand::Seal {
            node,
            trip,
            quiet,
            card,
        } => {
            // Opened before the node is asked: a path that cannot be written changes nothing.
            let file = card
                .as_deref()
                .map(|p| output::OutputFile::reserve("--card", p, output::Kind::New))
                .transpose()?;
            let r = client(&node)
                .await?
                .seal_manifest(proto::SealManifestRequest {
                    trip_id: trip.clone(),
                })
                .await?
                .into_inner();
            if !quiet {
                out!(
                    "sealed trip {trip} version {} at {}: {} characters, QR version {}-M",
                    r.version,
                    api_time(r.sealed_at),
                    r.characters,
                    r.qr_version
                );
            }
            out!("{}", r.manifest);
            if let (Some(file), Some(path)) = (file, card) {
                let failed = |e: String| {
                    CliError::Failed(format!(
                        "--card {}: {e}; the manifest was sealed (version {}, printed above)",
                        path.display(),
                        r.version
                    ))
                };
                let offset = DISPLAY_OFFSET.get().copied().unwrap_or_default();
                let (pdf, png) = crate::card::windshield_card(&r.manifest, offset)
                    .map_err(|e| failed(e.to_string()))?;
                let pdf_wanted = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
                file.write(if pdf_wanted { &pdf } else { &png })
                    .map_err(|e| failed(e.to_string()))?;
                note!("wrote the windshield card {}", path.display());
            }
            Ok(())
        }
        ManifestCommand::Check(a) => super::manifest_check::run(a).await,
        ManifestCommand::Trace(a) => super::manifest_trace::run(a).await,
        ManifestCommand::Cancel { node, trip } => {
            client(&node)
                .await?
                .cancel_manifest(proto::CancelManifestRequest {
                    trip_id: trip.clone(),
                })
                .await?;
            out!("trip {trip} cancelled");
            Ok(())
        }
        ManifestCommand::List {
            node,
            state,
            limit,
            json,
        } => {
            let mut c = client(&node).await?;
            let mut trips = Vec::new();
            let mut page_token = String::new();
            // Bounded: each page holds at least one trip, and at most `limit` are kept.
            loop {
                let r = c
                    .list_manifests(proto::ListManifestsRequest {
                        state: state.map_or(0, |s| TripState::from(s) as i32),
                        page_size: limit.min(1000),
                        page_token,
                    })
                    .await?
                    .into_inner();
                trips.extend(r.manifests);
                if r.next_page_token.is_empty() || trips.len() >= limit as usize {
                    break;
                }
                page_token = r.next_page_token;
            }
            trips.truncate(limit as usize);
            if json {
                let all: Vec<_> = trips.iter().map(view_json).collect();
                out!("{}", serde_json::Value::Array(all));
                return Ok(());
            }
            for t in &trips {
                out!(
                    "{}  {:<10}  v{}  {}  {} -> {} {}  departs {}  arrives {}",
                    t.trip_id,
                    state_name(t.state),
                    t.version,
                    t.vehicle,
                    t.origin,
                    t.destination,
                    t.place,
                    api_time(t.departure),
                    api_time(t.arrival)
                );
            }
            Ok(())
        }
        ManifestCommand::Show { node, trip, json } => {
            let t = client(&node)
                .await?
                .get_manifest(proto::GetManifestRequest { trip_id: trip })
                .await?
                .into_inner();
            if json {
                out!("{}", view_json(&t));
                return Ok(());
            }
            show(&t);
            Ok(())
        }
    }
}

/// `manifest show` as text.
fn show(t: &proto::ManifestView) {
    out!("trip {}: {}", t.trip_id, state_name(t.state));
    out!("vehicle {}, escort {}", t.vehicle, t.escort);
    out!(
        "from {} to {} {}{}",
        t.origin,
        t.destination,
        t.place,
        if t.transit.is_empty() {
            String::new()
        } else {
            format!(" through {}", t.transit.join(", "))
        }
    );
    out!(
        "departs {}, arrives {}",
        api_time(t.departure),
        api_time(t.arrival)
    );
    if t.version == 0 {
        out!("never sealed");
    } else {
        out!(
            "version {} sealed at {}{}",
            t.version,
            api_time(t.sealed_at),
            if t.changed_since_seal {
                " (changed since: seal again)"
            } else {
                ""
            }
        );
    }
    for p in &t.people {
        let s = p.subject.clone().unwrap_or_default();
        out!(
            "  seat {:>2}  {}  {}  {}  {}  issued by {}",
            p.seat,
            if p.crew { "crew     " } else { "passenger" },
            status_name(p.status),
            s.masked_name,
            s.masked_document_number,
            p.issuer_province
        );
    }
    for c in &t.checks {
        out!(
            "  checked at {} by {} {}: {} (version {})",
            api_time(c.checked_at),
            c.checker_province,
            c.checkpoint,
            if c.pass { "PASS" } else { "STOP" },
            c.version
        );
    }
    if let Some(h) = &t.handover {
        out!(
            "  {} by {} at {} (version {}){}",
            if h.refused { "refused" } else { "handed over" },
            h.destination_province,
            api_time(h.received_at),
            h.version,
            if h.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", h.reason)
            }
        );
    }
}

/// A trip as JSON (field names as in the proto).
fn view_json(t: &proto::ManifestView) -> serde_json::Value {
    use serde_json::json;
    json!({
        "trip_id": t.trip_id,
        "state": state_name(t.state),
        "vehicle": t.vehicle,
        "origin": t.origin,
        "destination": t.destination,
        "place": t.place,
        "transit": t.transit,
        "departure": t.departure,
        "arrival": t.arrival,
        "escort": t.escort,
        "created_at": t.created_at,
        "version": t.version,
        "manifest": t.manifest,
        "sealed_at": t.sealed_at,
        "changed_since_seal": t.changed_since_seal,
        "people": t.people.iter().map(|p| {
            let s = p.subject.clone().unwrap_or_default();
            json!({
                "seat": p.seat,
                "crew": p.crew,
                "issuer_province": p.issuer_province,
                "status": status_name(p.status),
                "cti": p.cti,
                "iat": p.iat,
                "boarded_at": p.boarded_at,
                "masked_name": s.masked_name,
                "masked_document_number": s.masked_document_number,
            })
        }).collect::<Vec<_>>(),
        "checks": t.checks.iter().map(|c| json!({
            "checker_province": c.checker_province,
            "checkpoint": c.checkpoint,
            "checked_at": c.checked_at,
            "version": c.version,
            "pass": c.pass,
            "reasons": c.reasons.iter().map(|r| json!({
                "reason": r.reason,
                "seat": r.seat,
                "issuer_province": r.issuer_province,
                "detail": r.detail,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "handover": t.handover.as_ref().map(|h| json!({
            "destination_province": h.destination_province,
            "version": h.version,
            "received_at": h.received_at,
            "refused": h.refused,
            "reason": h.reason,
            "people": h.people.iter().map(|p| json!({
                "seat": p.seat,
                "present": p.present,
                "measure": p.measure,
                "reason": p.reason,
            })).collect::<Vec<_>>(),
        })),
    })
}
