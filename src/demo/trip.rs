//! The point-to-point trip (issue 17, docs/transport.md): a Sichuan bus carries workers to a
//! Zhejiang factory through Anhui, "from car door to factory door".
//!
//! Sichuan's labour platform (an organizer) creates the trip and boards a dozen workers by their
//! codes: one is refused because their status ends before the planned arrival, one because
//! another bus's manifest holds them. The manifest is sealed (version 1). Anhui's border post
//! checks the vehicle with one scan: PASS. Sichuan revokes one worker's code after departure;
//! once Anhui has synced, the next check is STOP naming the seat. The worker is taken off at the
//! stop and version 2 sealed: PASS again, and version 1 shown afterwards is STOP superseded. At
//! the factory gate Zhejiang's receiver checks version 2 in, confirms each worker by their code
//! (one is missing, one is put under health observation) and signs the handover receipt, which
//! reaches Sichuan: the trip is delivered there, with the checks Anhui reported.

use std::io::Write;
use std::time::{Duration, Instant};

use super::federation::{issue_for, rpc, sync, Federation};
use super::table::Table;
use super::{DemoError, ANHUI, SICHUAN, ZHEJIANG};
use crate::proto;
use crate::proto::arrival_service_client::ArrivalServiceClient;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::proto::trip_service_client::TripServiceClient;
use crate::status::HealthStatus;
use crate::synthetic::Resident;

/// Planned length of the ride, in seconds (26 h: the rides of 2020 took 20 to 26 hours).
const RIDE_SECS: u64 = 26 * 3600;
/// How long a worker's status holds, in seconds, for everyone but the one refused for it.
const STATUS_VALID_SECS: u64 = 7 * 24 * 3600;
/// The refused worker's status holds 12 hours: less than the ride.
const SHORT_STATUS_SECS: u64 = 12 * 3600;

/// A worker of the trip and what happens to them.
struct Worker {
    resident: Resident<'static>,
    /// The issuing province.
    from: u32,
    /// What boarding must answer.
    boarding: Boarding,
    /// What happens at the factory gate.
    arrival: Arrival,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boarding {
    /// Boarded (crew when true).
    Boards { crew: bool },
    /// Refused: the status ends before arrival.
    StatusEnds,
    /// Refused: already on the other bus.
    OnAnotherBus,
    /// Boarded, then revoked by Sichuan after departure and taken off at the stop.
    RevokedOnTheWay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Present, no measure.
    Well,
    /// Not there at the gate.
    Missing,
    /// Present, under health observation (a cough on the bus).
    Observation,
    /// Never reaches the gate (refused at boarding, or taken off).
    NotThere,
}

fn w(
    name: &'static str,
    address: &'static str,
    birth: &'static str,
    from: u32,
    boarding: Boarding,
    arrival: Arrival,
) -> Worker {
    Worker {
        resident: Resident {
            name,
            address,
            birth,
            seq: 31,
        },
        from,
        boarding,
        arrival,
    }
}

/// The trip's people: a driver, a dozen workers (one an Anhui resident who works in Sichuan).
fn workers() -> Vec<Worker> {
    use Arrival::*;
    use Boarding::*;
    let boards = Boards { crew: false };
    vec![
        w(
            "何师傅",
            "511304",
            "19750302",
            SICHUAN,
            Boards { crew: true },
            Well,
        ),
        w("罗德明", "511304", "19880415", SICHUAN, boards, Well),
        w("杨小燕", "511304", "19920807", SICHUAN, boards, Well),
        w("蒲建军", "511321", "19850112", SICHUAN, boards, Observation),
        w("邓春梅", "511321", "19900923", SICHUAN, boards, Well),
        w(
            "唐志强",
            "511322",
            "19830619",
            SICHUAN,
            RevokedOnTheWay,
            NotThere,
        ),
        w("赵丽君", "511322", "19950228", SICHUAN, boards, Missing),
        w(
            "冯国华",
            "511323",
            "19870704",
            SICHUAN,
            StatusEnds,
            NotThere,
        ),
        w(
            "谢永福",
            "511323",
            "19910516",
            SICHUAN,
            OnAnotherBus,
            NotThere,
        ),
        w("曾晓红", "511324", "19931030", SICHUAN, boards, Well),
        w("秦海波", "511324", "19860201", SICHUAN, boards, Well),
        w("余德才", "511325", "19840825", SICHUAN, boards, Well),
        w("汪淑芬", "340822", "19890311", ANHUI, boards, Well),
    ]
}

/// Every person of the trip: (full name, GB 11643 document number), for the privacy check.
pub(super) fn people() -> Vec<(String, String)> {
    workers()
        .iter()
        .map(|w| (w.resident.name.to_string(), w.resident.document_number()))
        .collect()
}

/// One expectation of the trip, printed as a line and counted in the tally.
fn expect(
    table: &mut Table<'_, impl Write>,
    what: &str,
    got: String,
    want: &str,
) -> Result<(), DemoError> {
    let ok = got == want;
    table.outcome.trip_checks += 1;
    table.outcome.trip_mismatches += usize::from(!ok);
    let line = format!(
        "  {:<44} {:<40}{}",
        what,
        got,
        if ok {
            String::new()
        } else {
            format!("  MISMATCH: expected {want}")
        }
    );
    writeln!(table.out, "{}", line.trim_end())?;
    Ok(())
}

/// A vehicle verdict in one word and its reasons: `PASS 11 (10+1)` or
/// `STOP revoked@5,superseded`.
fn vehicle(v: &proto::VerifyManifestResponse) -> String {
    if v.pass {
        return format!(
            "PASS {} ({}+{})",
            v.passengers + v.crew,
            v.passengers,
            v.crew
        );
    }
    let reasons: Vec<String> = v
        .reasons
        .iter()
        .map(|r| {
            let name = proto::ManifestReason::try_from(r.reason)
                .map(|x| {
                    x.as_str_name()
                        .trim_start_matches("MANIFEST_REASON_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|_| r.reason.to_string());
            if r.seat > 0 {
                format!("{name}@{}", r.seat)
            } else {
                name
            }
        })
        .collect();
    format!("STOP {}", reasons.join(","))
}

async fn check_at(
    fed: &Federation,
    at: u32,
    manifest: &str,
    checkpoint: &str,
) -> Result<proto::VerifyManifestResponse, DemoError> {
    Ok(HealthCodeServiceClient::new(fed.connect(at).await?)
        .verify_manifest(proto::VerifyManifestRequest {
            manifest: manifest.to_string(),
            checkpoint_id: checkpoint.to_string(),
        })
        .await
        .map_err(rpc("VerifyManifest"))?
        .into_inner())
}

/// Runs the trip and prints it under the verdict table; every outcome that differs from the
/// scenario is counted in `trip_mismatches`.
///
/// # Errors
/// [`DemoError`] when a call fails outright.
pub(super) async fn point_to_point(
    fed: &Federation,
    table: &mut Table<'_, impl Write>,
) -> Result<String, DemoError> {
    writeln!(
        table.out,
        "\npoint-to-point trip: Sichuan (Suining) -> Anhui border -> Zhejiang (Ningbo factory):"
    )?;
    // Anhui and Zhejiang hold Sichuan's feed as it is now.
    sync(fed, ANHUI).await?;
    sync(fed, ZHEJIANG).await?;
    let now = crate::unix_now();
    let workers = workers();
    let mut codes = Vec::new();
    for w in &workers {
        let valid = if w.boarding == Boarding::StatusEnds {
            SHORT_STATUS_SECS
        } else {
            STATUS_VALID_SECS
        };
        let r = issue_for(fed, w.from, &w.resident, HealthStatus::Green, valid, 600).await?;
        codes.push((r.code, r.cti));
    }

    let mut trips = TripServiceClient::new(fed.connect(SICHUAN).await?);
    let create = |vehicle: &str| proto::CreateManifestRequest {
        vehicle: vehicle.to_string(),
        origin: "510903".into(),
        destination: "330212".into(),
        place: "宁波某电子厂".into(),
        transit: vec!["340000".into()],
        departure: (now - 600).secs(),
        arrival: (now + RIDE_SECS).secs(),
        escort: "李*".into(),
    };
    let trip = trips
        .create_manifest(create("川J·20417"))
        .await
        .map_err(rpc("CreateManifest"))?
        .into_inner()
        .trip_id;
    let other = trips
        .create_manifest(create("川J·20418"))
        .await
        .map_err(rpc("CreateManifest"))?
        .into_inner()
        .trip_id;
    let board = |trip: &str, code: &str, crew: bool| proto::BoardPersonRequest {
        trip_id: trip.to_string(),
        code: code.to_string(),
        seat: 0,
        crew,
    };
    // The worker the other bus holds boards it first.
    for (w, (code, _)) in workers.iter().zip(&codes) {
        if w.boarding == Boarding::OnAnotherBus {
            trips
                .board_person(board(&other, code, false))
                .await
                .map_err(rpc("BoardPerson"))?;
        }
    }
    let mut seats = Vec::new();
    for (w, (code, cti)) in workers.iter().zip(&codes) {
        let crew = matches!(w.boarding, Boarding::Boards { crew: true });
        let r = trips
            .board_person(board(&trip, code, crew))
            .await
            .map_err(rpc("BoardPerson"))?
            .into_inner();
        let got = if r.boarded {
            format!("boarded, seat {}", r.seat)
        } else {
            proto::BoardingRefusal::try_from(r.refusal)
                .map(|x| {
                    x.as_str_name()
                        .trim_start_matches("BOARDING_REFUSAL_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default()
        };
        let want = match w.boarding {
            Boarding::StatusEnds => "status_ends_before_arrival".to_string(),
            Boarding::OnAnotherBus => "on_another_manifest".to_string(),
            _ => format!("boarded, seat {}", seats.len() + 1),
        };
        if r.boarded {
            seats.push((r.seat, w, code.clone(), cti.clone()));
        }
        let who = format!(
            "board {} ({})",
            crate::identity::mask_name(w.resident.name).unwrap_or_default(),
            if w.from == ANHUI {
                "Anhui code"
            } else {
                "Sichuan code"
            }
        );
        expect(table, &who, got, &want)?;
    }

    let v1 = trips
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .map_err(rpc("SealManifest"))?
        .into_inner();
    writeln!(
        table.out,
        "  sealed version {}: {} characters, one QR code of version {} (level M)",
        v1.version, v1.characters, v1.qr_version
    )?;
    let (passengers, crew) = (seats.len() - 1, 1);
    let pass_all = format!("PASS {} ({passengers}+{crew})", passengers + crew);
    let r = check_at(fed, ANHUI, &v1.manifest, "皖苏界-G40").await?;
    expect(table, "Anhui border, version 1", vehicle(&r), &pass_all)?;

    // Sichuan revokes a worker's code after departure; Anhui learns it at its next sync.
    let (revoked_seat, cti) = seats
        .iter()
        .find(|(_, w, _, _)| w.boarding == Boarding::RevokedOnTheWay)
        .map(|(seat, _, _, cti)| (*seat, cti.clone()))
        .ok_or_else(|| DemoError::Scenario("the revoked worker was not boarded".into()))?;
    HealthCodeServiceClient::new(fed.connect(SICHUAN).await?)
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti })
        .await
        .map_err(rpc("RevokeHealthCode"))?;
    sync(fed, ANHUI).await?;
    let r = check_at(fed, ANHUI, &v1.manifest, "皖浙界-G50").await?;
    expect(
        table,
        "Anhui, after Sichuan revoked one code",
        vehicle(&r),
        &format!("STOP revoked@{revoked_seat}"),
    )?;

    // Taken off at the stop: version 2.
    trips
        .remove_person(proto::RemovePersonRequest {
            trip_id: trip.clone(),
            seat: revoked_seat,
            reason: "taken off at the stop for care".into(),
        })
        .await
        .map_err(rpc("RemovePerson"))?;
    let v2 = trips
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .map_err(rpc("SealManifest"))?
        .into_inner();
    let pass_v2 = format!("PASS {} ({}+{crew})", passengers, passengers - 1);
    let r = check_at(fed, ANHUI, &v2.manifest, "皖浙界-G50").await?;
    expect(
        table,
        "Anhui, version 2 without that seat",
        vehicle(&r),
        &pass_v2,
    )?;
    let r = check_at(fed, ANHUI, &v1.manifest, "皖浙界-G50").await?;
    expect(
        table,
        "Anhui, version 1 shown again",
        vehicle(&r),
        &format!("STOP superseded,revoked@{revoked_seat}"),
    )?;

    // The factory gate.
    let mut gate = ArrivalServiceClient::new(fed.connect(ZHEJIANG).await?);
    let r = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: v2.manifest.clone(),
            checkpoint_id: "宁波厂门".into(),
        })
        .await
        .map_err(rpc("CheckInManifest"))?
        .into_inner();
    let verdict = r.verdict.unwrap_or_default();
    expect(
        table,
        "Zhejiang factory gate, check-in",
        vehicle(&verdict),
        &pass_v2,
    )?;
    for (seat, w, code, _) in &seats {
        if *seat == revoked_seat {
            continue;
        }
        let (missing, measure, reason) = match w.arrival {
            Arrival::Missing => (
                true,
                proto::HandoverMeasure::None,
                "did not get off at the gate",
            ),
            Arrival::Observation => (
                false,
                proto::HandoverMeasure::HealthObservation,
                "cough on the bus",
            ),
            _ => (false, proto::HandoverMeasure::None, ""),
        };
        // Version 2's seats are its entries in order: those behind the one who left move up.
        let seat = if *seat > revoked_seat {
            seat - 1
        } else {
            *seat
        };
        gate.confirm_person(proto::ConfirmPersonRequest {
            trip_id: trip.clone(),
            seat,
            code: if missing { String::new() } else { code.clone() },
            missing,
            measure: measure as i32,
            reason: reason.into(),
        })
        .await
        .map_err(rpc("ConfirmPerson"))?;
    }
    let done = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: "handed over to the factory's health officer".into(),
        })
        .await
        .map_err(rpc("CompleteHandover"))?
        .into_inner();
    let receipt = done.receipt.unwrap_or_default();
    let present = receipt.people.iter().filter(|p| p.present).count();
    let observed = receipt
        .people
        .iter()
        .filter(|p| p.measure == proto::HandoverMeasure::HealthObservation as i32)
        .count();
    expect(
        table,
        "handover receipt signed by Zhejiang",
        format!(
            "{present} present, {} missing, {observed} under observation",
            receipt.people.len() - present
        ),
        &format!(
            "{} present, 1 missing, 1 under observation",
            seats.len() - 2
        ),
    )?;

    // Sichuan sees the receipt (delivered at once, or by the outbox within seconds).
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let v = trips
            .get_manifest(proto::GetManifestRequest {
                trip_id: trip.clone(),
            })
            .await
            .map_err(rpc("GetManifest"))?
            .into_inner();
        let delivered = v.state == proto::TripState::Delivered as i32;
        if (delivered && v.checks.len() >= 4) || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let state = proto::TripState::try_from(view.state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("TRIP_STATE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    expect(
        table,
        "Sichuan's view of the trip",
        format!("{state}, {} checks reported", view.checks.len()),
        "delivered, 4 checks reported",
    )?;
    Ok(trip)
}

/// The passenger who becomes a case after the trip.
const CASE: &str = "余德才";

/// After the trip, one passenger becomes a case (issue 18, docs/tracing.md): Sichuan's platform
/// reads the trip's chain of signed events, then traces the case (rule: within 1 row, 4 seats a
/// row; crew always) here and at Anhui and Zhejiang, which allow Sichuan to trace; the contacts
/// get exposure notices, at Sichuan's platform for its residents and at Anhui's for the Anhui
/// worker. Every outcome that differs from the scenario is counted in `trip_mismatches`.
///
/// # Errors
/// [`DemoError`] when a call fails outright.
pub(super) async fn trace_case(
    fed: &Federation,
    table: &mut Table<'_, impl Write>,
    trip: &str,
) -> Result<(), DemoError> {
    use crate::proto::trace_service_client::TraceServiceClient;
    writeln!(
        table.out,
        "\nfull traceability: the trip's chain, then {} becomes a confirmed case:",
        crate::identity::mask_name(CASE).unwrap_or_default()
    )?;
    let mut sc = TraceServiceClient::new(fed.connect(SICHUAN).await?);
    let chain = sc
        .trace_trip(proto::TraceTripRequest {
            trip_id: trip.to_string(),
        })
        .await
        .map_err(rpc("TraceTrip"))?
        .into_inner();
    let count =
        |k: proto::TripEventKind| chain.events.iter().filter(|e| e.kind == k as i32).count();
    use proto::TripEventKind as K;
    let by: Vec<String> = {
        let mut p: Vec<String> = chain.events.iter().map(|e| e.recorded_by.clone()).collect();
        p.sort();
        p.dedup();
        p
    };
    // Created, 11 boarded, 1 removed, 2 seals, 4 checks by Anhui, the arrival and the receipt.
    expect(
        table,
        "Sichuan's chain of the trip (TraceTrip)",
        format!(
            "{} events by {}, {} verified",
            chain.events.len(),
            by.join("+"),
            chain.events.iter().filter(|e| e.verified).count()
        ),
        "21 events by 330000+340000+510000, 21 verified",
    )?;
    expect(
        table,
        "  of which",
        format!(
            "{} boarded, {} sealed, {} checked, {} handed over",
            count(K::Boarded),
            count(K::Sealed),
            count(K::Checked),
            count(K::HandedOver)
        ),
        "11 boarded, 2 sealed, 4 checked, 1 handed over",
    )?;

    let case = workers()
        .into_iter()
        .find(|w| w.resident.name == CASE)
        .ok_or_else(|| DemoError::Scenario("the case is not among the workers".into()))?;
    let traced = sc
        .trace_subject(proto::TraceSubjectRequest {
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: case.resident.document_number(),
            since: 0,
            until: 0,
            rule: Some(proto::ContactRule {
                rows: 1,
                seats_per_row: 4,
                whole_vehicle: false,
            }),
            case_class: proto::CaseClass::Confirmed as i32,
            send_notices: true,
        })
        .await
        .map_err(rpc("TraceSubject"))?
        .into_inner();
    let mut held: Vec<String> = traced
        .trips
        .iter()
        .flat_map(|t| t.held_by.clone())
        .collect();
    held.sort();
    held.dedup();
    let seat = traced.trips.first().map_or(0, |t| t.case_seat);
    let mut answered = traced.answered.clone();
    answered.sort();
    expect(
        table,
        "Sichuan traces the case (TraceSubject)",
        format!(
            "{} trip, seat {seat}, held by {}; asked {}",
            traced.trips.len(),
            held.join("+"),
            answered.join("+")
        ),
        "1 trip, seat 9, held by 330000+340000+510000; asked 330000+340000",
    )?;
    let contacts: Vec<&proto::FellowTraveller> = traced
        .trips
        .iter()
        .flat_map(|t| t.fellows.iter())
        .filter(|f| f.contact)
        .collect();
    let seats: Vec<String> = contacts.iter().map(|f| f.seat.to_string()).collect();
    let anhui: Vec<String> = contacts
        .iter()
        .filter(|f| f.issuer == ANHUI.to_string())
        .map(|f| f.seat.to_string())
        .collect();
    writeln!(table.out, "  rule: {}", traced.rule)?;
    expect(
        table,
        "contacts",
        format!(
            "seats {} (Anhui code: seat {})",
            seats.join(","),
            anhui.join(",")
        ),
        "seats 1,5,6,7,8,10 (Anhui code: seat 10)",
    )?;
    expect(
        table,
        "exposure notices queued",
        traced.notices_queued.to_string(),
        "6",
    )?;

    // Each platform reads the notices for its residents: Sichuan's at once, Anhui's once
    // Sichuan's outbox delivered it (within seconds).
    let list = |n: u32| async move {
        Ok::<_, DemoError>(
            TraceServiceClient::new(fed.connect(n).await?)
                .list_exposure_notices(proto::ListExposureNoticesRequest::default())
                .await
                .map_err(rpc("ListExposureNotices"))?
                .into_inner()
                .notices,
        )
    };
    let mine = list(SICHUAN).await?;
    expect(
        table,
        "Sichuan's platform: its residents' notices",
        format!(
            "{}, {} matched to a code it issued",
            mine.len(),
            mine.iter().filter(|n| n.matched).count()
        ),
        "5, 5 matched to a code it issued",
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let theirs = loop {
        let got = list(ANHUI).await?;
        if !got.is_empty() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let got = match theirs.as_slice() {
        [n] => format!(
            "from {}, seat {}, {} seat(s) from the case, {}",
            n.from_province,
            n.seat,
            n.distance,
            if n.matched { "matched" } else { "not matched" }
        ),
        other => format!("{} notices", other.len()),
    };
    expect(
        table,
        "Anhui's platform: its resident's notice",
        got,
        "from 510000, seat 10, 1 seat(s) from the case, matched",
    )?;
    Ok(())
}
