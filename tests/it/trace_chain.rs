//! A trip's chain across three real nodes (issue 18, docs/tracing.md section 2): Sichuan (origin)
//! creates a trip, boards three workers and seals it; Anhui (transit) checks it; Zhejiang
//! (destination) checks it in and hands it over. TraceTrip at Sichuan lists every signed event
//! from creation to handover, in order, with who recorded it, each verified; at Zhejiang, what
//! Zhejiang holds. The chain exported as JSON verifies offline with Sichuan's trust bundle, and
//! not once one byte of one event is changed.

use std::time::{Duration, Instant};

use base64::Engine as _;
use hcmr::agreement::ManifestTerms;
use hcmr::node::NodeHandle;
use hcmr::proto;
use hcmr::proto::arrival_service_client::ArrivalServiceClient;
use hcmr::proto::trace_service_client::TraceServiceClient;
use hcmr::proto::trip_service_client::TripServiceClient;
use hcmr::proto::TripEventKind as K;

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

async fn trace(n: &NodeHandle, trip: &str) -> Result<proto::TraceTripResponse, tonic::Status> {
    TraceServiceClient::new(channel(n).await)
        .trace_trip(proto::TraceTripRequest {
            trip_id: trip.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The chain at `n` once `done` holds of it (bounded: 40 s, the outbox's backoff reaches 15 s).
async fn trace_until(
    n: &NodeHandle,
    trip: &str,
    done: impl Fn(&proto::TraceTripResponse) -> bool,
) -> proto::TraceTripResponse {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let r = trace(n, trip).await.unwrap();
        if done(&r) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn kinds(r: &proto::TraceTripResponse) -> Vec<(K, String)> {
    r.events
        .iter()
        .map(|e| (K::try_from(e.kind).unwrap(), e.recorded_by.clone()))
        .collect()
}

/// Runs the `hcmr` command `c` on the blocking pool: its exit code and standard output.
async fn run(mut c: std::process::Command) -> (Option<i32>, String) {
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    (o.status.code(), format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trips_chain_from_three_provinces_verifies_at_the_origin_and_offline() {
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
    for n in [&sc, &ah, &zj] {
        sync_now(n).await;
    }
    // Sichuan's trust bundle, for the offline check at the end: its own keys and its peers'.
    let exported = operator(&sc)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    let bundle = dir.path().join("sichuan.bundle");
    std::fs::write(&bundle, &exported.bundle).unwrap();
    let kid = hex::encode(&exported.kid);

    // Created, three boarded, sealed.
    let now = clock.now();
    let people: Vec<proto::Subject> = ["何师傅", "罗德明", "杨小燕"]
        .iter()
        .zip(400u16..)
        .map(|(name, seq)| subject(name, "511304", seq))
        .collect();
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
    for (i, p) in people.iter().enumerate() {
        let code = issue(&sc, p.clone(), G, 600).await.code;
        let r = trips(&sc)
            .await
            .board_person(proto::BoardPersonRequest {
                trip_id: trip.clone(),
                code,
                seat: 0,
                crew: i == 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.boarded, "{r:?}");
    }
    let v1 = trips(&sc)
        .await
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    // Anhui checks the bus at its border.
    clock.set(now + 4 * 3600);
    let pass = codes(&ah)
        .await
        .verify_manifest(proto::VerifyManifestRequest {
            manifest: v1.manifest.clone(),
            checkpoint_id: "皖-G42".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pass.pass, "{pass:?}");

    // Zhejiang checks the trip in, confirms the three and hands over.
    clock.set(now + 20 * 3600);
    let checked_in = gate(&zj)
        .await
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest: v1.manifest.clone(),
            checkpoint_id: "厂门".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(checked_in.verdict.unwrap().pass);
    for (seat, p) in people.iter().enumerate() {
        let code = issue(&sc, p.clone(), G, 600).await.code;
        gate(&zj)
            .await
            .confirm_person(proto::ConfirmPersonRequest {
                trip_id: trip.clone(),
                seat: seat as u32 + 1,
                code,
                missing: false,
                measure: if seat == 1 {
                    proto::HandoverMeasure::HealthObservation as i32
                } else {
                    proto::HandoverMeasure::None as i32
                },
                reason: if seat == 1 {
                    "37.6℃".into()
                } else {
                    String::new()
                },
            })
            .await
            .unwrap();
    }
    gate(&zj)
        .await
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap();

    // At the origin: the whole chain, in order, each event verified.
    let chain = trace_until(&sc, &trip, |r| {
        let k = kinds(r);
        k.iter().any(|(k, _)| *k == K::Checked)
            && k.iter().any(|(k, _)| *k == K::Arrived)
            && k.iter().any(|(k, _)| *k == K::HandedOver)
    })
    .await;
    let (sc_s, ah_s, zj_s) = (
        "510000".to_string(),
        "340000".to_string(),
        "330000".to_string(),
    );
    assert_eq!(
        kinds(&chain),
        [
            (K::Created, sc_s.clone()),
            (K::Boarded, sc_s.clone()),
            (K::Boarded, sc_s.clone()),
            (K::Boarded, sc_s.clone()),
            (K::Sealed, sc_s.clone()),
            (K::Checked, ah_s),
            (K::Arrived, zj_s.clone()),
            (K::HandedOver, zj_s.clone()),
        ],
        "{chain:#?}"
    );
    assert_eq!(
        (chain.trip_id.as_str(), chain.held_by.as_str()),
        (trip.as_str(), "510000")
    );
    for e in &chain.events {
        assert!(e.verified, "{e:?}");
        assert!(e.fault.is_empty());
    }
    let seats: Vec<u32> = chain.events[1..4].iter().map(|e| e.seat).collect();
    assert_eq!(seats, [1, 2, 3]);
    assert_eq!(
        chain.events[1].summary,
        "boarded seat 1 (crew): green, issuer 510000"
    );
    assert_eq!(chain.events[4].version, 1);
    assert_eq!(chain.events[4].signed, base45_cose(&v1.manifest));
    assert_eq!(chain.events[5].summary, "PASS at 340000 皖-G42, version 1");
    assert_eq!(chain.events[5].at, (now + 4 * 3600).secs());
    assert_eq!(
        chain.events[6].summary,
        "arrived: version 1 checked in by 330000 at 厂门"
    );
    assert_eq!(
        chain.events[7].details,
        [
            "seat 1: present, no measure",
            "seat 2: present, health observation (37.6℃)",
            "seat 3: present, no measure",
        ]
    );
    // Audited at the origin as TRIP_CHAIN, by the caller.
    let deadline = Instant::now() + Duration::from_secs(10);
    let audited = loop {
        let found = audit_records(&sc).await.into_iter().find_map(|r| {
            r.trace
                .filter(|t| t.action == proto::TraceAction::TripChain as i32 && t.count == 8)
        });
        if found.is_some() || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let audited = audited.expect("a TRIP_CHAIN audit record");
    assert_eq!(
        (audited.trip_id.as_str(), audited.asked_by.as_str()),
        (trip.as_str(), "caller test")
    );
    assert!(audited.refusal.is_empty());

    // At the destination: its check-in, the version it saw, its receipt.
    let there = trace(&zj, &trip).await.unwrap();
    assert_eq!(
        kinds(&there),
        [
            (K::Sealed, sc_s),
            (K::Arrived, zj_s.clone()),
            (K::HandedOver, zj_s),
        ]
    );
    assert!(there.events.iter().all(|e| e.verified), "{there:?}");
    assert_eq!(there.held_by, "330000");
    // Anhui holds nothing of it; a bad id names the field.
    assert_eq!(
        trace(&ah, &trip).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let bad = trace(&sc, "not-a-trip").await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("trip_id"), "{}", bad.message());

    // The CLI: text, CSV and JSON; the JSON verifies offline with the bundle.
    let mut c = cli(&sc);
    c.args(["manifest", "trace", &trip]);
    let (code, text) = run(c).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("handed_over"), "{text}");
    assert!(
        text.contains("    seat 2: present, health observation (37.6℃)"),
        "{text}"
    );
    let mut c = cli(&sc);
    c.args(["manifest", "trace", &trip, "--format", "csv"]);
    let (code, csv) = run(c).await;
    assert_eq!(code, Some(0), "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 9, "{csv}");
    assert!(lines[0].starts_with("trip_id,kind,at,"));
    assert!(lines[6].contains(",checked,"), "{csv}");
    let mut c = cli(&sc);
    c.args(["manifest", "trace", &trip, "--format", "json"]);
    let (code, json) = run(c).await;
    assert_eq!(code, Some(0), "{json}");
    let mut exported: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(exported["events"].as_array().unwrap().len(), 8);
    assert_eq!(exported["events"][7]["kind"], "handed_over");
    let file = dir.path().join("chain.json");
    std::fs::write(&file, exported.to_string()).unwrap();
    let offline = |file: &std::path::Path| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"));
        c.args(["manifest", "trace", "--verify"])
            .arg(file)
            .arg("--bundle")
            .arg(&bundle)
            .args(["--trust", &kid]);
        c
    };
    let (code, out) = run(offline(&file)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("all 8 events verify"), "{out}");
    assert!(out.contains("event 6: ok: checked by 340000"), "{out}");
    // One byte of the second boarding's signature flipped: that event fails, by name.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut signed = b64
        .decode(exported["events"][2]["signed"].as_str().unwrap())
        .unwrap();
    let last = signed.len() - 1;
    signed[last] ^= 0x01;
    exported["events"][2]["signed"] = b64.encode(&signed).into();
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, exported.to_string()).unwrap();
    let (code, out) = run(offline(&forged)).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("event 3: FAIL: boarded by 510000: the signature does not verify"),
        "{out}"
    );
    assert!(out.contains("event 2: ok: boarded by 510000"), "{out}");
    assert!(out.contains("1 of 8 events do not verify"), "{out}");
    for n in [sc, ah, zj] {
        n.shutdown().await.unwrap();
    }
}

/// The COSE bytes of a manifest string.
fn base45_cose(manifest: &str) -> Vec<u8> {
    hcmr::manifest::SignedManifest::decode(manifest)
        .unwrap()
        .cose_bytes()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_and_a_cancellation_are_signed_events_of_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SC).await).await;
    let now = hcmr::unix_now();
    let trip = trips(&sc)
        .await
        .create_manifest(proto::CreateManifestRequest {
            vehicle: "川A·00001".into(),
            origin: "510104".into(),
            destination: "330212".into(),
            place: "宁波某电子厂".into(),
            transit: vec![],
            departure: (now + 3600).secs(),
            arrival: (now + 10 * 3600).secs(),
            escort: "李*".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    for seq in [500u16, 501] {
        let code = issue(&sc, subject("乘客", "510104", seq), G, 600)
            .await
            .code;
        let r = trips(&sc)
            .await
            .board_person(proto::BoardPersonRequest {
                trip_id: trip.clone(),
                code,
                seat: 0,
                crew: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.boarded, "{r:?}");
    }
    trips(&sc)
        .await
        .remove_person(proto::RemovePersonRequest {
            trip_id: trip.clone(),
            seat: 2,
            reason: "did not come".into(),
        })
        .await
        .unwrap();
    trips(&sc)
        .await
        .cancel_manifest(proto::CancelManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap();
    let chain = trace(&sc, &trip).await.unwrap();
    let got: Vec<(K, u32, &str)> = chain
        .events
        .iter()
        .map(|e| (K::try_from(e.kind).unwrap(), e.seat, e.summary.as_str()))
        .collect();
    assert_eq!(
        got[1..],
        [
            (K::Boarded, 1, "boarded seat 1: green, issuer 510000"),
            (K::Boarded, 2, "boarded seat 2: green, issuer 510000"),
            (K::Removed, 2, "removed seat 2: did not come"),
            (K::Cancelled, 0, "cancelled"),
        ]
    );
    assert_eq!(got[0].0, K::Created);
    assert!(
        got[0]
            .2
            .starts_with("created: 川A·00001 from 510104 to 330212"),
        "{}",
        got[0].2
    );
    assert!(chain
        .events
        .iter()
        .all(|e| e.verified && e.recorded_by == "510000"));
    // Each is the core's trip event, signed by this node.
    let e = hcmr::manifest::SignedTripEvent::decode(&chain.events[3].signed).unwrap();
    assert_eq!(e.event.kind(), hcmr::manifest::EventKind::Removed);
    assert_eq!(e.event.trip_id.to_string(), trip);
    // An unknown trip is NOT_FOUND, and audited as refused.
    let none = trace(&sc, "0123456789abcdef").await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::NotFound, "{none:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        let found = audit_records(&sc).await.into_iter().find_map(|r| {
            r.trace
                .filter(|t| t.trip_id == "0123456789abcdef")
                .map(|t| (t.action, t.refusal, r.verdict))
        });
        if found.is_some() || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (action, why, verdict) = refusal.expect("the refused trace is audited");
    assert_eq!(action, proto::TraceAction::TripChain as i32);
    assert_eq!(
        why,
        "NotFound: this node holds nothing of trip 0123456789abcdef"
    );
    assert_eq!(verdict, proto::Verdict::NotRecognized as i32);
    sc.shutdown().await.unwrap();
}
