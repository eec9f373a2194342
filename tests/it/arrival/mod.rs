//! Arrival at a trip's destination (docs/transport.md section 6), across two real nodes: Sichuan
//! seals a trip to a Zhejiang factory under an agreement whose terms let Zhejiang's receivers
//! take Sichuan's manifests in; the factory gate checks it in, confirms people (by code, missing,
//! under observation), completes the handover while Sichuan is down (the receipt waits) and
//! Sichuan gets it once restarted; refusals, replays and role checks.

use crate::common;

use common::*;
use hcmr::agreement::ManifestTerms;
use hcmr::callers::Role;
use hcmr::client::NodeChannel;
use hcmr::clock::Clock;
use hcmr::manifest::{Measure, Outcome, SignedReceipt};
use hcmr::node::{Config, NodeHandle};
use hcmr::proto;
use hcmr::proto::arrival_service_client::ArrivalServiceClient;
use hcmr::proto::trip_service_client::TripServiceClient;
use tonic::Code;

mod cli;
mod crash;
mod versions;

const SICHUAN: u32 = 510000;
const ZHEJIANG: u32 = 330000;
const MEASURE_NONE: i32 = proto::HandoverMeasure::None as i32;
const OBSERVATION: i32 = proto::HandoverMeasure::HealthObservation as i32;

/// Adds caller `name` with `roles` to a stopped node; returns its token.
async fn add_caller(config: &std::path::Path, name: &str, roles: &[Role]) -> String {
    let c = Config::load(config).unwrap();
    hcmr::node::add_caller_offline(&c, name, roles)
        .await
        .unwrap()
        .to_string()
}

/// Two nodes on one manual clock: Sichuan (origin, with an organizer) and Zhejiang (destination,
/// with a receiver and a verifier), under an agreement by which Zhejiang recognizes Sichuan's
/// green and yellow codes and takes its manifests in on arrival.
struct Scene {
    _dir: tempfile::TempDir,
    sc_cfg: std::path::PathBuf,
    zj_cfg: std::path::PathBuf,
    clock: Clock,
    sc: NodeHandle,
    zj: NodeHandle,
    organizer: String,
    receiver: String,
    verifier: String,
    /// A receiver at Sichuan, which is not the trips' destination.
    sc_receiver: String,
}

async fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let zj_cfg = init_node(dir.path(), ZHEJIANG).await;
    let organizer = add_caller(&sc_cfg, "labour-bureau", &[Role::Organizer]).await;
    let sc_receiver = add_caller(&sc_cfg, "sc-gate", &[Role::Receiver]).await;
    let receiver = add_caller(&zj_cfg, "factory-gate", &[Role::Receiver]).await;
    let verifier = add_caller(&zj_cfg, "scanner", &[Role::Verifier]).await;
    let clock = Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    // Sichuan restarts on the same port, where Zhejiang's outbox finds it.
    pin_listen(&sc_cfg, &sc);
    let zj = start_on(&zj_cfg, &clock).await;
    conclude_with_manifests(
        &zj,
        &sc,
        &[(G, G), (Y, Y)],
        &[(G, G)],
        ManifestTerms::arrival(),
        ManifestTerms::none(),
    )
    .await;
    Scene {
        _dir: dir,
        sc_cfg,
        zj_cfg,
        clock,
        sc,
        zj,
        organizer,
        receiver,
        verifier,
        sc_receiver,
    }
}

async fn arrivals(n: &NodeHandle, token: &str) -> ArrivalServiceClient<NodeChannel> {
    ArrivalServiceClient::new(channel_as(n, Some(token)).await)
}

/// A trip sealed at Sichuan for Ningbo (Zhejiang) with the people of `codes` in seats 1, 2, ...;
/// returns the trip id and the manifest string.
async fn sealed_trip(s: &Scene, vehicle: &str, codes: &[String]) -> (String, String) {
    let mut trips = TripServiceClient::new(channel_as(&s.sc, Some(&s.organizer)).await);
    let now = s.clock.now().secs();
    let trip_id = trips
        .create_manifest(proto::CreateManifestRequest {
            vehicle: vehicle.into(),
            origin: "511304".into(),
            destination: "330200".into(),
            place: "宁波市某电子厂".into(),
            transit: vec!["340000".into()],
            departure: now + 600,
            arrival: now + 26 * 3600,
            escort: "张*三".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    for (i, code) in codes.iter().enumerate() {
        let b = trips
            .board_person(proto::BoardPersonRequest {
                trip_id: trip_id.clone(),
                code: code.clone(),
                seat: i as u32 + 1,
                crew: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(b.boarded, "seat {}: {b:?}", i + 1);
    }
    let sealed = trips
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sealed.version, 1);
    (trip_id, sealed.manifest)
}

/// Codes issued at Sichuan for `n` residents (sequence numbers from `first`).
async fn sc_codes(s: &Scene, first: u16, n: u16) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        let r = issue(&s.sc, subject("王建国", "510104", first + i), G, 86_400).await;
        out.push(r.code);
    }
    out
}

fn confirm(
    trip: &str,
    seat: u32,
    code: &str,
    measure: i32,
    reason: &str,
) -> proto::ConfirmPersonRequest {
    proto::ConfirmPersonRequest {
        trip_id: trip.into(),
        seat,
        code: code.into(),
        missing: false,
        measure,
        reason: reason.into(),
    }
}

fn missing(trip: &str, seat: u32, reason: &str) -> proto::ConfirmPersonRequest {
    proto::ConfirmPersonRequest {
        trip_id: trip.into(),
        seat,
        code: String::new(),
        missing: true,
        measure: MEASURE_NONE,
        reason: reason.into(),
    }
}

/// The public key of Zhejiang's current signing key, as its GetNodeInfo shows it.
async fn zj_key(n: &NodeHandle) -> hcmr::keys::PublicKey {
    let info = federation(n)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    hcmr::node::convert::key_from_proto("keys", &info.keys[0]).unwrap()
}

/// The origin's view of a trip (GetManifest as its organizer).
async fn origin_view(organizer: &str, sc: &NodeHandle, trip: &str) -> proto::ManifestView {
    TripServiceClient::new(channel_as(sc, Some(organizer)).await)
        .get_manifest(proto::GetManifestRequest {
            trip_id: trip.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_is_checked_in_confirmed_and_its_receipt_reaches_the_origin_after_a_restart() {
    let s = scene().await;
    let codes = sc_codes(&s, 301, 3).await;
    let stranger = sc_codes(&s, 399, 1).await.remove(0);
    let (trip, manifest) = sealed_trip(&s, "川R·12345", &codes).await;
    let mut gate = arrivals(&s.zj, &s.receiver).await;

    let c = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: manifest.clone(),
            checkpoint_id: "宁波厂门1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let v = c.verdict.unwrap();
    assert!(v.pass, "{v:?}");
    assert_eq!(
        (v.trip_id.as_str(), v.version, v.passengers, v.role.as_str()),
        (trip.as_str(), 1, 3, "arrival")
    );
    assert!(v.signature_verified);
    assert!(!c.already_handed_over);
    let seats: Vec<(u32, &str)> = c
        .people
        .iter()
        .map(|p| (p.seat, p.issuer_province.as_str()))
        .collect();
    assert_eq!(seats, vec![(1, "510000"), (2, "510000"), (3, "510000")]);

    // Errors: an unknown trip, a seat the manifest does not list, another person's code, a
    // measure without its reason; none is recorded.
    let e = gate
        .confirm_person(confirm("00112233445566ff", 1, &codes[0], MEASURE_NONE, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = gate
        .confirm_person(confirm(&trip, 9, &codes[0], MEASURE_NONE, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("seat: 9 is not a seat"), "{e:?}");
    let e = gate
        .confirm_person(confirm(&trip, 3, &stranger, MEASURE_NONE, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("does not match seat 3"), "{e:?}");
    let e = gate
        .confirm_person(confirm(&trip, 3, &codes[2], OBSERVATION, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("reason:"), "{e:?}");
    let e = gate
        .confirm_person(confirm(&trip, 3, &codes[2], OBSERVATION, "fever \u{202e}x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("reason:"), "{e:?}");

    // Seat 1 by its code; the handover waits for the other seats.
    let r = gate
        .confirm_person(confirm(&trip, 1, &codes[0], MEASURE_NONE, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.remaining, 2);
    assert!(r.person.unwrap().present);
    // The code scanned at the gate is audited under the gate's checkpoint id from the check-in.
    // (The audit writer stores records in batches: a bounded wait.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let codes_audited = loop {
        let records: Vec<proto::AuditRecord> = audit_records(&s.zj)
            .await
            .into_iter()
            .filter(|r| r.manifest.is_none() && r.trace.is_none())
            .collect();
        if records.iter().any(|r| r.checkpoint_id == "宁波厂门1")
            || std::time::Instant::now() > deadline
        {
            break records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        codes_audited
            .iter()
            .any(|r| r.checkpoint_id == "宁波厂门1" && r.issuer_province == "510000"),
        "{codes_audited:?}"
    );
    assert!(
        codes_audited.iter().all(|r| r.checkpoint_id != "unnamed"),
        "{codes_audited:?}"
    );
    let e = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("seats 2, 3 are not confirmed"),
        "{e:?}"
    );
    // Seat 2 missing; seat 3 by a new code of the same person, under health observation.
    let r = gate
        .confirm_person(missing(&trip, 2, "left the bus at the Anhui service area"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.remaining, 1);
    let renewed = issue(&s.sc, subject("王建国", "510104", 303), G, 86_400)
        .await
        .code;
    let r = gate
        .confirm_person(confirm(
            &trip,
            3,
            &renewed,
            OBSERVATION,
            "37.4 °C at the gate",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.remaining, 0);
    let p = r.person.unwrap();
    assert_eq!((p.seat, p.present, p.measure), (3, true, OBSERVATION));

    // Sichuan is down at the handover: the receipt is signed, stored and queued.
    s.sc.shutdown().await.unwrap();
    let h = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: "2 of 3 arrived".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!h.delivered, "the origin is down");
    let receipt = h.receipt.unwrap();
    assert!(!receipt.refused);
    assert_eq!(
        (receipt.destination_province.as_str(), receipt.version),
        ("330000", 1)
    );
    let outcomes: Vec<(u32, bool, i32, &str)> = receipt
        .people
        .iter()
        .map(|p| (p.seat, p.present, p.measure, p.reason.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, true, MEASURE_NONE, ""),
            (
                2,
                false,
                MEASURE_NONE,
                "left the bus at the Anhui service area"
            ),
            (3, true, OBSERVATION, "37.4 °C at the gate"),
        ]
    );
    // The signed bytes are a receipt of section 6, by Zhejiang's key.
    let signed = SignedReceipt::decode(&receipt.signed).unwrap();
    assert!(signed.verify_signature(&zj_key(&s.zj).await));
    let r = &signed.receipt;
    assert_eq!(r.trip_id.to_string(), trip);
    assert_eq!((r.version, r.outcome), (1, Outcome::Delivered));
    assert_eq!(r.reason.as_str(), "2 of 3 arrived");
    assert!(!r.people[1].present);
    assert_eq!(r.people[2].measure, Measure::Observation);

    // A second CompleteHandover answers the same receipt; a check-in again is a replay.
    let again = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: "another note".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.receipt.unwrap().signed, receipt.signed);
    assert!(!again.delivered);
    let c = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: manifest.clone(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(c.already_handed_over);
    let e = gate
        .confirm_person(missing(&trip, 1, "gone"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // The arrival as listed: still pending while Sichuan is down.
    let list = gate
        .list_arrivals(proto::ListArrivalsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.arrivals.len(), 1);
    let a = &list.arrivals[0];
    assert_eq!(
        (
            a.trip_id.as_str(),
            a.origin_province.as_str(),
            a.vehicle.as_str()
        ),
        (trip.as_str(), "510000", "川R·12345")
    );
    assert_eq!((a.confirmed, a.listed, a.delivered), (3, 3, false));
    assert_eq!(a.handover.as_ref().unwrap().signed, receipt.signed);

    // Sichuan restarts: the outbox delivers the receipt (bounded polling), and Sichuan shows it.
    let sc = start_on(&s.sc_cfg, &s.clock).await;
    let mut delivered = false;
    for _ in 0..300 {
        let list = gate
            .list_arrivals(proto::ListArrivalsRequest::default())
            .await
            .unwrap()
            .into_inner();
        if list.arrivals[0].delivered {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "the receipt reached Sichuan after its restart");
    let view = origin_view(&s.organizer, &sc, &trip).await;
    assert_eq!(view.state, proto::TripState::Delivered as i32, "{view:?}");
    assert_eq!(view.handover.unwrap().signed, receipt.signed);
    let again = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.delivered);
    assert_eq!(again.receipt.unwrap().signed, receipt.signed);
    sc.shutdown().await.unwrap();
    s.zj.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_vehicle_gets_one_signed_refusal_and_nothing_more() {
    let s = scene().await;
    let codes = sc_codes(&s, 401, 2).await;
    let (trip, manifest) = sealed_trip(&s, "川R·54321", &codes).await;
    let mut gate = arrivals(&s.zj, &s.receiver).await;

    let refuse = |reason: &str| proto::RefuseVehicleRequest {
        manifest: manifest.clone(),
        reason: reason.into(),
        checkpoint_id: "宁波厂门2".into(),
    };
    let e = gate.refuse_vehicle(refuse("")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("reason:"), "{e:?}");

    // Refused without a check-in: signed, and delivered at once (Sichuan is up).
    let r = gate
        .refuse_vehicle(refuse("dormitory not ready"))
        .await
        .unwrap()
        .into_inner();
    let refusal = r.refusal.unwrap();
    assert!(refusal.refused);
    assert!(refusal.people.is_empty());
    assert_eq!(refusal.reason, "dormitory not ready");
    let signed = SignedReceipt::decode(&refusal.signed).unwrap();
    assert!(signed.verify_signature(&zj_key(&s.zj).await));
    assert_eq!(signed.receipt.outcome, Outcome::Refused);
    assert_eq!(signed.receipt.reason.as_str(), "dormitory not ready");
    assert!(r.delivered, "Sichuan acknowledged the refusal");
    let view = origin_view(&s.organizer, &s.sc, &trip).await;
    assert_eq!(view.state, proto::TripState::Refused as i32, "{view:?}");

    // Again: the same refusal; the trip can be neither checked in nor handed over.
    let again = gate
        .refuse_vehicle(refuse("another reason"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.refusal.unwrap().signed, refusal.signed);
    let c = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: manifest.clone(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(c.already_handed_over);
    let e = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("was refused here"), "{e:?}");
    let list = gate
        .list_arrivals(proto::ListArrivalsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.arrivals.len(), 1);
    assert!(list.arrivals[0].delivered);
    assert!(list.arrivals[0].handover.as_ref().unwrap().refused);

    // A second trip checked in a minute later: pages of one, newest first.
    s.clock.set(s.clock.now() + 60);
    let more = sc_codes(&s, 451, 1).await;
    let (second, manifest2) = sealed_trip(&s, "川R·54322", &more).await;
    let c = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: manifest2,
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(c.verdict.unwrap().pass);
    let page = |token: String| proto::ListArrivalsRequest {
        page_size: 1,
        page_token: token,
    };
    let first = gate
        .list_arrivals(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.arrivals.len(), 1);
    assert_eq!(first.arrivals[0].trip_id, second);
    assert!(first.arrivals[0].handover.is_none());
    assert!(!first.next_page_token.is_empty());
    let next = gate
        .list_arrivals(page(first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.arrivals.len(), 1);
    assert_eq!(next.arrivals[0].trip_id, trip);
    assert!(next.next_page_token.is_empty());
    let e = gate.list_arrivals(page("zz".into())).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    s.sc.shutdown().await.unwrap();
    s.zj.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_misdirected_manifest_records_nothing_and_other_roles_are_denied() {
    let s = scene().await;
    let codes = sc_codes(&s, 501, 1).await;
    let (_, manifest) = sealed_trip(&s, "川R·11111", &codes).await;
    let mut gate = arrivals(&s.zj, &s.receiver).await;

    // The same content re-signed by a key Zhejiang does not trust: STOP, nothing recorded; a
    // refusal of it is refused.
    let decoded = hcmr::manifest::SignedManifest::decode(&manifest).unwrap();
    let forged = hcmr::manifest::sign(&decoded.manifest, &hcmr::keys::NodeKey::generate());
    let c = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: forged.clone(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let v = c.verdict.unwrap();
    assert!(!v.pass);
    assert!(!v.signature_verified);
    assert_eq!(
        v.reasons[0].reason,
        proto::ManifestReason::UnknownKey as i32,
        "{v:?}"
    );
    assert!(c.people.is_empty());
    let e = gate
        .refuse_vehicle(proto::RefuseVehicleRequest {
            manifest: forged,
            reason: "forged".into(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Not a manifest at all.
    let c = gate
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: "HCMRT1:NOTBASE45!".into(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let v = c.verdict.unwrap();
    assert_eq!(
        (v.pass, v.reasons[0].reason, v.trip_id.as_str()),
        (false, proto::ManifestReason::Malformed as i32, "")
    );
    let list = gate
        .list_arrivals(proto::ListArrivalsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.arrivals.is_empty(), "{list:?}");

    // Sichuan's node is not the destination: it says where to check the trip in.
    let e = arrivals(&s.sc, &s.sc_receiver)
        .await
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: manifest.clone(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("goes to province 330000"), "{e:?}");

    // A verifier at Zhejiang and an organizer at Sichuan are denied.
    for (n, token) in [(&s.zj, &s.verifier), (&s.sc, &s.organizer)] {
        let e = arrivals(n, token)
            .await
            .list_arrivals(proto::ListArrivalsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = arrivals(n, token)
            .await
            .check_in_manifest(proto::CheckInManifestRequest {
                manifest: manifest.clone(),
                checkpoint_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    s.sc.shutdown().await.unwrap();
    s.zj.shutdown().await.unwrap();
}
