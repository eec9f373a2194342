//! `hcmr arrival`: trips at their destination (docs/transport.md section 6), as a receiver (the
//! employer or reception station): check a manifest in, confirm each person or mark them
//! missing with the measure taken, complete the handover (a signed receipt for the origin), or
//! refuse the vehicle; list the trips checked in. Each subcommand calls the running node's
//! ArrivalService.

use clap::{Subcommand, ValueEnum};

use crate::cli::display::{api_time, status_name};
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::code_or_stdin;
use crate::cli::CliError;
use crate::proto;
use crate::proto::arrival_service_client::ArrivalServiceClient;
use crate::proto::HandoverMeasure;

/// Arrival subcommands.
#[derive(Debug, Subcommand)]
pub enum ArrivalCommand {
    /// Check an arriving trip in by its manifest (the windshield card's QR code): PASS prints
    /// the seats to confirm; STOP prints every reason, records nothing and exits 1.
    CheckIn {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The manifest string ("HCMRT1:..."), or - to read it from standard input.
        manifest: String,
        /// The reception point (factory gate, station), at most 64 characters.
        #[arg(long, default_value = "")]
        checkpoint: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Confirm one person by scanning their code (it must be recognized here and be the
    /// seat's person), or mark them missing; with the measure taken.
    Confirm {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
        /// The seat, 1 to 99.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=99))]
        seat: u32,
        /// The person's code string, or - to read it from standard input; not with --missing.
        #[arg(required_unless_present = "missing", conflicts_with = "missing")]
        code: Option<String>,
        /// The person is not there (give --reason).
        #[arg(long)]
        missing: bool,
        /// The measure taken.
        #[arg(long, value_enum, default_value = "none")]
        measure: MeasureArg,
        /// Why (required for a measure other than none and with --missing), at most 200 bytes;
        /// no personal data.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Sign the handover receipt once every seat is confirmed or missing, and send it to the
    /// origin (stored first; retried until the origin acknowledges). Again: the same receipt.
    Handover {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The trip (16 hex digits).
        trip: String,
        /// A note on the handover, at most 200 bytes.
        #[arg(long, default_value = "")]
        note: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the vehicle: a signed refusal with its reason, sent to the origin like a receipt.
    Refuse {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The manifest string ("HCMRT1:..."), or - to read it from standard input.
        manifest: String,
        /// Why (1 to 200 bytes; no personal data).
        #[arg(long)]
        reason: String,
        /// The reception point, at most 64 characters.
        #[arg(long, default_value = "")]
        checkpoint: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Trips checked in (or refused) here, newest first.
    List {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Most trips to print.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON (one array of arrivals).
        #[arg(long)]
        json: bool,
    },
}

/// Measures on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MeasureArg {
    /// No measure (the person is well).
    None,
    /// Health observation.
    Observation,
    /// Quarantine.
    Quarantine,
    /// Sent to hospital.
    Hospital,
}

impl From<MeasureArg> for HandoverMeasure {
    fn from(m: MeasureArg) -> Self {
        match m {
            MeasureArg::None => HandoverMeasure::None,
            MeasureArg::Observation => HandoverMeasure::HealthObservation,
            MeasureArg::Quarantine => HandoverMeasure::Quarantine,
            MeasureArg::Hospital => HandoverMeasure::SentToHospital,
        }
    }
}

/// A measure as people write it.
fn measure_name(v: i32) -> &'static str {
    match HandoverMeasure::try_from(v).unwrap_or(HandoverMeasure::None) {
        HandoverMeasure::None => "none",
        HandoverMeasure::HealthObservation => "observation",
        HandoverMeasure::Quarantine => "quarantine",
        HandoverMeasure::SentToHospital => "hospital",
    }
}

async fn client(
    node: &NodeArg,
) -> Result<ArrivalServiceClient<crate::client::NodeChannel>, CliError> {
    Ok(ArrivalServiceClient::new(channel(node).await?))
}

/// Runs `hcmr arrival ...`.
pub(crate) async fn exec(c: ArrivalCommand) -> Result<(), CliError> {
    match c {
        ArrivalCommand::CheckIn {
            node,
            manifest,
            checkpoint,
            json,
        } => {
            let r = client(&node)
                .await?
                .check_in_manifest(proto::CheckInManifestRequest {
                    manifest: code_or_stdin(manifest)?,
                    checkpoint_id: checkpoint,
                })
                .await?
                .into_inner();
            let v = r.verdict.clone().unwrap_or_default();
            if json {
                out!("{}", check_in_json(&r));
            } else {
                print_check_in(&r, &v);
            }
            if v.pass {
                Ok(())
            } else {
                Err(CliError::Failed(format!(
                    "STOP: trip not checked in ({})",
                    v.explanation
                )))
            }
        }
        ArrivalCommand::Confirm {
            node,
            trip,
            seat,
            code,
            missing,
            measure,
            reason,
        } => {
            let code = match code {
                Some(c) => code_or_stdin(c)?,
                None => String::new(),
            };
            let r = client(&node)
                .await?
                .confirm_person(proto::ConfirmPersonRequest {
                    trip_id: trip.clone(),
                    seat,
                    code,
                    missing,
                    measure: HandoverMeasure::from(measure) as i32,
                    reason,
                })
                .await?
                .into_inner();
            let p = r.person.unwrap_or_default();
            out!(
                "seat {} of trip {trip}: {}, measure {}{}; {} to go",
                p.seat,
                if p.present { "present" } else { "missing" },
                measure_name(p.measure),
                if p.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.reason)
                },
                match r.remaining {
                    1 => "1 seat".to_string(),
                    n => format!("{n} seats"),
                }
            );
            Ok(())
        }
        ArrivalCommand::Handover {
            node,
            trip,
            note,
            json,
        } => {
            let r = client(&node)
                .await?
                .complete_handover(proto::CompleteHandoverRequest {
                    trip_id: trip.clone(),
                    note,
                })
                .await?
                .into_inner();
            let h = r.receipt.unwrap_or_default();
            if json {
                out!("{}", handover_json(&h, r.delivered));
                return Ok(());
            }
            out!(
                "trip {trip} version {} handed over at {}: {} of {} present; {}",
                h.version,
                api_time(h.received_at),
                h.people.iter().filter(|p| p.present).count(),
                h.people.len(),
                delivery(r.delivered)
            );
            print_people(&h.people);
            Ok(())
        }
        ArrivalCommand::Refuse {
            node,
            manifest,
            reason,
            checkpoint,
            json,
        } => {
            let r = client(&node)
                .await?
                .refuse_vehicle(proto::RefuseVehicleRequest {
                    manifest: code_or_stdin(manifest)?,
                    reason,
                    checkpoint_id: checkpoint,
                })
                .await?
                .into_inner();
            let h = r.refusal.unwrap_or_default();
            if json {
                out!("{}", handover_json(&h, r.delivered));
                return Ok(());
            }
            out!(
                "vehicle refused (version {}) at {}: {}; {}",
                h.version,
                api_time(h.received_at),
                h.reason,
                delivery(r.delivered)
            );
            Ok(())
        }
        ArrivalCommand::List { node, limit, json } => {
            let mut c = client(&node).await?;
            let mut all = Vec::new();
            let mut page_token = String::new();
            // Bounded: each page holds at least one arrival, and at most `limit` are kept.
            loop {
                let r = c
                    .list_arrivals(proto::ListArrivalsRequest {
                        page_size: limit.min(1000),
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(r.arrivals);
                if r.next_page_token.is_empty() || all.len() >= limit as usize {
                    break;
                }
                page_token = r.next_page_token;
            }
            all.truncate(limit as usize);
            if json {
                let v: Vec<_> = all.iter().map(arrival_json).collect();
                out!("{}", serde_json::Value::Array(v));
                return Ok(());
            }
            for a in &all {
                let state = match &a.handover {
                    None => "checked in",
                    Some(h) if h.refused => "refused",
                    Some(_) => "handed over",
                };
                out!(
                    "{}  {:<11}  v{}  {}  from {}  checked in {}  {}/{} confirmed{}",
                    a.trip_id,
                    state,
                    a.version,
                    a.vehicle,
                    a.origin_province,
                    api_time(a.checked_in_at),
                    a.confirmed,
                    a.listed,
                    match (&a.handover, a.delivered) {
                        (None, _) => "",
                        (Some(_), true) => "  delivered",
                        (Some(_), false) => "  pending",
                    }
                );
            }
            Ok(())
        }
    }
}

fn delivery(delivered: bool) -> &'static str {
    if delivered {
        "the origin acknowledged it"
    } else {
        "queued: sent when the origin answers"
    }
}

fn print_check_in(r: &proto::CheckInManifestResponse, v: &proto::VerifyManifestResponse) {
    if r.already_handed_over {
        out!(
            "trip {} was already handed over or refused here: nothing changed",
            v.trip_id
        );
    }
    out!("{}", v.explanation);
    if !v.trip_id.is_empty() {
        out!(
            "trip {} version {}: {} {} passengers, {} crew, from {} to {} {}",
            v.trip_id,
            v.version,
            v.vehicle,
            v.passengers,
            v.crew,
            v.origin,
            v.destination,
            v.place
        );
    }
    for s in &v.reasons {
        let seat = if s.seat == 0 {
            String::new()
        } else {
            format!("seat {}: ", s.seat)
        };
        let reason = proto::ManifestReason::try_from(s.reason)
            .map(|x| x.as_str_name().trim_start_matches("MANIFEST_REASON_"))
            .unwrap_or("?");
        out!("  {seat}{reason}: {}", s.detail);
    }
    for p in &r.people {
        out!(
            "  seat {:>2}  {}  {}  issued by {}  cti {}…",
            p.seat,
            if p.crew { "crew     " } else { "passenger" },
            status_name(p.status),
            p.issuer_province,
            p.cti
        );
    }
}

fn print_people(people: &[proto::HandoverPerson]) {
    for p in people {
        out!(
            "  seat {:>2}  {}  {}{}",
            p.seat,
            if p.present { "present" } else { "missing" },
            measure_name(p.measure),
            if p.reason.is_empty() {
                String::new()
            } else {
                format!("  {}", p.reason)
            }
        );
    }
}

fn check_in_json(r: &proto::CheckInManifestResponse) -> serde_json::Value {
    use serde_json::json;
    let v = r.verdict.clone().unwrap_or_default();
    json!({
        "pass": v.pass,
        "trip_id": v.trip_id,
        "version": v.version,
        "role": v.role,
        "passengers": v.passengers,
        "crew": v.crew,
        "vehicle": v.vehicle,
        "origin": v.origin,
        "destination": v.destination,
        "place": v.place,
        "explanation": v.explanation,
        "reasons": v.reasons.iter().map(|s| json!({
            "reason": s.reason,
            "seat": s.seat,
            "issuer_province": s.issuer_province,
            "detail": s.detail,
        })).collect::<Vec<_>>(),
        "already_handed_over": r.already_handed_over,
        "people": r.people.iter().map(|p| json!({
            "seat": p.seat,
            "crew": p.crew,
            "issuer_province": p.issuer_province,
            "status": status_name(p.status),
            "cti": p.cti,
        })).collect::<Vec<_>>(),
    })
}

fn handover_json(h: &proto::HandoverView, delivered: bool) -> serde_json::Value {
    use serde_json::json;
    json!({
        "destination_province": h.destination_province,
        "version": h.version,
        "received_at": h.received_at,
        "refused": h.refused,
        "reason": h.reason,
        "people": h.people.iter().map(|p| json!({
            "seat": p.seat,
            "present": p.present,
            "measure": measure_name(p.measure),
            "reason": p.reason,
        })).collect::<Vec<_>>(),
        "signed": hex::encode(&h.signed),
        "delivered": delivered,
    })
}

fn arrival_json(a: &proto::ArrivalView) -> serde_json::Value {
    use serde_json::json;
    json!({
        "trip_id": a.trip_id,
        "origin_province": a.origin_province,
        "version": a.version,
        "vehicle": a.vehicle,
        "checked_in_at": a.checked_in_at,
        "confirmed": a.confirmed,
        "listed": a.listed,
        "handover": a.handover.as_ref().map(|h| handover_json(h, a.delivered)),
        "delivered": a.delivered,
    })
}
