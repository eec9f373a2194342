//! A point-to-point trip across three real nodes (issue 17): Sichuan (origin) seals a bus's
//! manifest, Anhui (transit) checks it at its border, Sichuan revokes a passenger, Anhui's next
//! check stops the vehicle naming the seat, a version 2 supersedes version 1, and Zhejiang
//! (destination) takes the bus in and signs the handover receipt while Sichuan is stopped; the
//! receipt waits in Zhejiang's outbox and reaches Sichuan once it is back. Sichuan's view of the
//! trip then holds every check Anhui reported and the receipt.

use std::time::{Duration, Instant};

use hcmr::agreement::ManifestTerms;
use hcmr::node::NodeHandle;
use hcmr::proto;
use hcmr::proto::arrival_service_client::ArrivalServiceClient;
use hcmr::proto::trip_service_client::TripServiceClient;

use crate::common::*;

const SC: u32 = 510000;
const AH: u32 = 340000;
const ZJ: u32 = 330000;

async fn trips(n: &NodeHandle) -> TripServiceClient<hcmr::client::NodeChannel> {
    TripServiceClient::new(channel(n).await)
}

async fn gate(n: &NodeHandle) -> ArrivalServiceClient<hcmr::client::NodeChannel> {
    ArrivalServiceClient::new(channel(n).await)
}

async fn check(n: &NodeHandle, manifest: &str, at: &str) -> proto::VerifyManifestResponse {
    codes(n)
        .await
        .verify_manifest(proto::VerifyManifestRequest {
            manifest: manifest.to_string(),
            checkpoint_id: at.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The reasons of a STOP as (reason, seat).
fn reasons(v: &proto::VerifyManifestResponse) -> Vec<(proto::ManifestReason, u32)> {
    v.reasons
        .iter()
        .map(|r| (proto::ManifestReason::try_from(r.reason).unwrap(), r.seat))
        .collect()
}

/// Sichuan's view of the trip, once `done` holds of it (bounded: 40 s, the outbox's backoff
/// reaches 15 s).
async fn origin_view(
    n: &NodeHandle,
    trip: &str,
    done: impl Fn(&proto::ManifestView) -> bool,
) -> proto::ManifestView {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let v = trips(n)
            .await
            .get_manifest(proto::GetManifestRequest {
                trip_id: trip.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_from_car_door_to_factory_door_across_three_provinces() {
    let dir = tempfile::tempdir().unwrap();
    let (sc_cfg, ah_cfg, zj_cfg) = (
        init_node(dir.path(), SC).await,
        init_node(dir.path(), AH).await,
        init_node(dir.path(), ZJ).await,
    );
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let ah = start_on(&ah_cfg, &clock).await;
    let zj = start_on(&zj_cfg, &clock).await;
    // Anhui passes Sichuan's trips through; Zhejiang takes them in. Codes count as issued.
    let all = [(G, G), (Y, Y), (R, R)];
    conclude_with_manifests(
        &sc,
        &ah,
        &all,
        &all,
        ManifestTerms::none(),
        ManifestTerms::transit(),
    )
    .await;
    conclude_with_manifests(
        &sc,
        &zj,
        &all,
        &all,
        ManifestTerms::none(),
        ManifestTerms::arrival(),
    )
    .await;
    sync_now(&ah).await;
    sync_now(&zj).await;

    // Five Sichuan workers board; the first is the driver.
    let now = clock.now();
    let people: Vec<proto::Subject> = ["何师傅", "罗德明", "杨小燕", "蒲建军", "邓春梅"]
        .iter()
        .zip(300u16..)
        .map(|(name, seq)| subject(name, "511304", seq))
        .collect();
    let mut workers = Vec::new();
    for p in &people {
        workers.push(issue(&sc, p.clone(), G, 600).await);
    }
    let trip = trips(&sc)
        .await
        .create_manifest(proto::CreateManifestRequest {
            vehicle: "川R·12345".into(),
            origin: "511304".into(),
            destination: "330212".into(),
            place: "宁波某电子厂".into(),
            transit: vec!["340000".into()],
            departure: (now + 60).secs(),
            arrival: (now + 20 * 3600).secs(),
            escort: "王*".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    for (i, w) in workers.iter().enumerate() {
        let r = trips(&sc)
            .await
            .board_person(proto::BoardPersonRequest {
                trip_id: trip.clone(),
                code: w.code.clone(),
                seat: 0,
                crew: i == 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.boarded, "worker {i}: {r:?}");
        assert_eq!(r.seat, i as u32 + 1);
    }
    let v1 = trips(&sc)
        .await
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.version, 1);
    assert!(v1.manifest.starts_with("HCMRT1:"), "{}", v1.manifest);

    // The Anhui border: one scan, the green lane.
    clock.set(now + 4 * 3600);
    let pass = check(&ah, &v1.manifest, "皖-G42").await;
    assert!(pass.pass, "{pass:?}");
    assert_eq!((pass.passengers, pass.crew), (4, 1));
    assert_eq!(pass.trip_id, trip);
    assert_eq!(pass.vehicle, "川R·12345");
    assert_eq!(pass.transit, ["340000"]);
    assert_eq!(pass.role, "transit");

    // Sichuan revokes seat 3's code after departure; Anhui syncs and stops the bus.
    codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: workers[2].cti.clone(),
        })
        .await
        .unwrap();
    sync_now(&ah).await;
    let stop = check(&ah, &v1.manifest, "皖-G50").await;
    assert!(!stop.pass);
    assert_eq!(reasons(&stop), [(proto::ManifestReason::Revoked, 3)]);
    assert_eq!(stop.reasons[0].issuer_province, "510000");

    // Seat 3 leaves at the stop: version 2 passes, version 1 is superseded at Anhui.
    trips(&sc)
        .await
        .remove_person(proto::RemovePersonRequest {
            trip_id: trip.clone(),
            seat: 3,
            reason: "left at the stop for care".into(),
        })
        .await
        .unwrap();
    let v2 = trips(&sc)
        .await
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    let pass2 = check(&ah, &v2.manifest, "皖-G50").await;
    assert!(pass2.pass, "{pass2:?}");
    assert_eq!((pass2.passengers, pass2.crew), (3, 1));
    let old = check(&ah, &v1.manifest, "皖-G50").await;
    assert!(
        reasons(&old).contains(&(proto::ManifestReason::Superseded, 0)),
        "{old:?}"
    );

    // Sichuan sees the trip in transit with Anhui's four checks.
    let view = origin_view(&sc, &trip, |v| v.checks.len() >= 4).await;
    assert_eq!(view.state, proto::TripState::InTransit as i32, "{view:?}");
    // The four checks, in whatever order the outbox delivered them.
    let mut verdicts: Vec<(String, bool, u64)> = view
        .checks
        .iter()
        .map(|c| (c.checker_province.clone(), c.pass, c.version))
        .collect();
    verdicts.sort();
    assert_eq!(
        verdicts,
        [
            ("340000".to_string(), false, 1),
            ("340000".to_string(), false, 1),
            ("340000".to_string(), true, 1),
            ("340000".to_string(), true, 2),
        ]
    );

    // The factory gate, with Sichuan's node stopped during the handover. The workers show their
    // codes of the day (the same people: the seat's subject matches).
    clock.set(now + 20 * 3600);
    let mut today = Vec::new();
    for p in &people {
        today.push(issue(&sc, p.clone(), G, 600).await.code);
    }
    let checked_in = gate(&zj)
        .await
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: v2.manifest.clone(),
            checkpoint_id: "厂门".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let verdict = checked_in.verdict.unwrap();
    assert!(verdict.pass, "{verdict:?}");
    assert_eq!(verdict.role, "arrival");
    let seats: Vec<u32> = checked_in.people.iter().map(|p| p.seat).collect();
    assert_eq!(seats, [1, 2, 3, 4]);
    pin_listen(&sc_cfg, &sc);
    sc.shutdown().await.unwrap();
    // The manifest's seats are its entries in order: after seat 3 left, the fourth and fifth
    // workers are seats 3 and 4 of version 2.
    for (seat, worker, missing, measure) in [
        (1, 0, false, proto::HandoverMeasure::None),
        (2, 1, false, proto::HandoverMeasure::HealthObservation),
        (3, 3, true, proto::HandoverMeasure::None),
        (4, 4, false, proto::HandoverMeasure::None),
    ] {
        let code = if missing {
            String::new()
        } else {
            today[worker].clone()
        };
        gate(&zj)
            .await
            .confirm_person(proto::ConfirmPersonRequest {
                trip_id: trip.clone(),
                seat,
                code,
                missing,
                measure: measure as i32,
                reason: if missing || measure != proto::HandoverMeasure::None {
                    "as observed at the gate".into()
                } else {
                    String::new()
                },
            })
            .await
            .unwrap();
    }
    let done = gate(&zj)
        .await
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!done.delivered, "Sichuan is down: the receipt waits");
    let receipt = done.receipt.unwrap();
    assert_eq!(receipt.version, 2);
    assert_eq!(receipt.destination_province, "330000");
    let outcomes: Vec<(u32, bool, i32)> = receipt
        .people
        .iter()
        .map(|p| (p.seat, p.present, p.measure))
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, true, 0),
            (2, true, proto::HandoverMeasure::HealthObservation as i32),
            (3, false, 0),
            (4, true, 0),
        ]
    );

    // Sichuan comes back: the receipt arrives, and the trip is delivered there.
    let sc = start_on(&sc_cfg, &clock).await;
    let view = origin_view(&sc, &trip, |v| v.handover.is_some()).await;
    assert_eq!(view.state, proto::TripState::Delivered as i32, "{view:?}");
    let handover = view.handover.unwrap();
    assert_eq!(handover.destination_province, "330000");
    assert!(!handover.refused);
    assert_eq!(handover.people.len(), 4);
    assert_eq!(handover.signed, receipt.signed);
    assert_eq!(view.checks.len(), 4);

    // A second handover of the delivered trip changes nothing.
    let again = gate(&zj)
        .await
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.receipt.unwrap().signed, receipt.signed);
    let replay = gate(&zj)
        .await
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: v2.manifest.clone(),
            checkpoint_id: "厂门".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(replay.already_handed_over);
    for n in [sc, ah, zj] {
        n.shutdown().await.unwrap();
    }
}
