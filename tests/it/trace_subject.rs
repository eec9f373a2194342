//! Tracing a case across three real nodes (issue 18 section 2): a Sichuan resident rides a
//! Sichuan bus (checked at the Anhui border) and, later, an Anhui bus to Zhejiang. Sichuan
//! traces them: its own trip and Anhui's, each with the fellow travellers and who counts as a
//! contact; Anhui's copy of the Sichuan trip (from its border check) is merged into one trip
//! held by both. Zhejiang, whose agreement has no tracing term, is not asked, and its direct
//! FindTrips at Anhui is refused and audited; a subject on no trip answers no trips; with Anhui
//! down, the answer says Anhui did not answer.

use std::time::{Duration, Instant};

use hcmr::node::NodeHandle;
use hcmr::proto;
use hcmr::proto::trace_service_client::TraceServiceClient;
use hcmr::proto::trip_service_client::TripServiceClient;

use crate::common::*;

const SC: u32 = 510000;
const AH: u32 = 340000;
const ZJ: u32 = 330000;

pub(crate) async fn trips(n: &NodeHandle) -> TripServiceClient<hcmr::client::NodeChannel> {
    TripServiceClient::new(channel(n).await)
}

pub(crate) async fn tracer(n: &NodeHandle) -> TraceServiceClient<hcmr::client::NodeChannel> {
    TraceServiceClient::new(channel(n).await)
}

/// Concludes an agreement proposed by `proposer` with every status counting as issued both
/// ways; `request` sets the manifest and tracing terms.
pub(crate) async fn agree(
    proposer: &NodeHandle,
    acceptor: &NodeHandle,
    request: proto::CreateAgreementRequest,
) {
    let all = [(G, G), (Y, Y), (R, R)];
    let now = hcmr::unix_now();
    let created = operator(proposer)
        .await
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: acceptor.endpoint.clone(),
            expected_peer_kid: kid_of(acceptor).await,
            peer_codes_here: map(&all),
            our_codes_there: map(&all),
            max_code_age_secs: 3600,
            effective_from: (now - 10).secs(),
            effective_until: (now + 86_400).secs(),
            ..request
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    let accepted = approve(acceptor, &created.id).await;
    assert_eq!(accepted.state, proto::AgreementState::Concluded as i32);
}

/// Creates a trip at `n`, boards `codes` in seat order (the first as crew) and seals it;
/// returns the trip id and the manifest.
pub(crate) async fn bus(
    n: &NodeHandle,
    origin: &str,
    vehicle: &str,
    departure: u64,
    transit: &[&str],
    codes: &[&proto::IssueHealthCodeResponse],
) -> (String, String) {
    let trip = trips(n)
        .await
        .create_manifest(proto::CreateManifestRequest {
            vehicle: vehicle.into(),
            origin: origin.into(),
            destination: "330212".into(),
            place: "宁波某电子厂".into(),
            transit: transit.iter().map(|t| t.to_string()).collect(),
            departure,
            arrival: departure + 12 * 3600,
            escort: "王*".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    for (i, c) in codes.iter().enumerate() {
        let r = trips(n)
            .await
            .board_person(proto::BoardPersonRequest {
                trip_id: trip.clone(),
                code: c.code.clone(),
                seat: 0,
                crew: i == 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.boarded, "{vehicle} seat {}: {r:?}", i + 1);
    }
    let sealed = trips(n)
        .await
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    (trip, sealed.manifest)
}

fn trace_request(document_number: &str) -> proto::TraceSubjectRequest {
    proto::TraceSubjectRequest {
        document_type: proto::DocumentType::ResidentIdentityCard as i32,
        document_number: document_number.into(),
        since: 0,
        until: 0,
        // One row either side, two seats a row.
        rule: Some(proto::ContactRule {
            rows: 1,
            seats_per_row: 2,
            whole_vehicle: false,
        }),
        case_class: proto::CaseClass::Confirmed as i32,
        send_notices: false,
    }
}

/// The fellows of a traced trip as (seat, issuer, crew, distance, rows apart, contact).
fn fellows(t: &proto::TracedTrip) -> Vec<(u32, &str, bool, u32, u32, bool)> {
    t.fellows
        .iter()
        .map(|f| {
            (
                f.seat,
                f.issuer.as_str(),
                f.crew,
                f.distance,
                f.rows_apart,
                f.contact,
            )
        })
        .collect()
}

/// The trace records of `n`'s audit log, once `enough` holds of them (bounded: 10 s; the audit
/// writer stores a batch every 200 ms).
async fn trace_records(
    n: &NodeHandle,
    enough: impl Fn(&[proto::AuditRecord]) -> bool,
) -> Vec<proto::AuditRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records: Vec<proto::AuditRecord> = audit_records(n)
            .await
            .into_iter()
            .filter(|r| r.trace.is_some())
            .collect();
        if enough(&records) || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn action(r: &proto::AuditRecord) -> proto::TraceAction {
    proto::TraceAction::try_from(r.trace.as_ref().unwrap().action).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_traced_across_provinces_with_fellow_travellers_refusals_and_a_peer_down() {
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
    // Anhui passes Sichuan's buses through and answers Sichuan's traces; Zhejiang takes
    // Anhui's buses in; Sichuan and Zhejiang recognize each other's codes, no tracing.
    agree(
        &sc,
        &ah,
        proto::CreateAgreementRequest {
            our_manifests_transit: true,
            our_tracing: true,
            ..Default::default()
        },
    )
    .await;
    agree(&sc, &zj, proto::CreateAgreementRequest::default()).await;
    agree(
        &ah,
        &zj,
        proto::CreateAgreementRequest {
            our_manifests_arrival: true,
            ..Default::default()
        },
    )
    .await;
    // The terms as listed: tracing in the direction Sichuan -> Anhui only.
    let listed = agreements(&sc).await;
    let tracing: Vec<(String, String, bool)> = listed
        .iter()
        .flat_map(|a| a.directions.iter())
        .map(|d| {
            (
                d.issuer_province.clone(),
                d.verifier_province.clone(),
                d.tracing,
            )
        })
        .filter(|(_, _, t)| *t)
        .collect();
    assert_eq!(tracing, [("510000".into(), "340000".into(), true)]);
    sync_now(&sc).await;
    sync_now(&ah).await;
    sync_now(&zj).await;

    // The case, five more Sichuan residents and seven Anhui residents.
    let case_number = document_number("511304", 700);
    let case = issue(&sc, subject("罗德明", "511304", 700), G, 3600).await;
    let mut sichuan = Vec::new();
    for (i, name) in ["何师傅", "杨小燕", "蒲建军", "邓春梅", "李文"]
        .iter()
        .enumerate()
    {
        sichuan.push(issue(&sc, subject(name, "511304", 710 + i as u16), G, 3600).await);
    }
    let mut anhui = Vec::new();
    for (i, name) in ["张师傅", "王芳", "刘强", "陈静", "赵磊", "孙丽", "周杰"]
        .iter()
        .enumerate()
    {
        anhui.push(issue(&ah, subject(name, "340104", 720 + i as u16), G, 3600).await);
    }
    let now = clock.now();
    // The Sichuan bus: a Sichuan driver, the case in seat 2, an Anhui resident in seat 3.
    let sc_seats = [
        &sichuan[0],
        &case,
        &anhui[6],
        &sichuan[1],
        &sichuan[2],
        &sichuan[3],
        &sichuan[4],
    ];
    let (sc_trip, sc_manifest) = bus(
        &sc,
        "511304",
        "川R·12345",
        (now + 60).secs(),
        &["340000"],
        &sc_seats,
    )
    .await;
    // The Anhui bus, two hours later: an Anhui driver, the case in seat 4.
    let ah_seats = [
        &anhui[0], &anhui[1], &anhui[2], &case, &anhui[3], &anhui[4], &anhui[5],
    ];
    let (ah_trip, _) = bus(
        &ah,
        "340104",
        "皖A·54321",
        (now + 7200).secs(),
        &[],
        &ah_seats,
    )
    .await;
    // The Sichuan bus passes the Anhui border: Anhui now holds its manifest too.
    clock.set(now + 3600);
    let pass = codes(&ah)
        .await
        .verify_manifest(proto::VerifyManifestRequest {
            manifest: sc_manifest.clone(),
            checkpoint_id: "皖-G42".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pass.pass, "{pass:?}");

    // Both buses have left: Sichuan traces the case.
    clock.set(now + 3 * 3600);
    let r = tracer(&sc)
        .await
        .trace_subject(trace_request(&case_number))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.subject_prefix.len(), 8, "{r:?}");
    assert_eq!(r.answered, ["340000"]);
    assert!(r.not_answered.is_empty(), "{r:?}");
    assert_eq!(r.not_asked, ["330000"]);
    assert_eq!(r.notices_queued, 0);
    assert_eq!(r.rule, "within 1 row, 2 seats a row; crew always");
    let ids: Vec<&str> = r.trips.iter().map(|t| t.trip_id.as_str()).collect();
    assert_eq!(ids, [sc_trip.as_str(), ah_trip.as_str()], "by departure");

    let t = &r.trips[0];
    assert_eq!(t.origin_province, "510000");
    assert_eq!(
        t.held_by,
        ["340000", "510000"],
        "Sichuan's own, and Anhui's check"
    );
    assert_eq!((t.version, t.vehicle.as_str()), (1, "川R·12345"));
    assert_eq!(
        (t.origin.as_str(), t.destination.as_str()),
        ("511304", "330212")
    );
    assert_eq!(t.transit, ["340000"]);
    assert_eq!(t.departure, (now + 60).secs());
    assert_eq!((t.case_seat, t.case_crew), (2, false));
    // Seat 2 is row 1; seats 3-4 row 2 (1 apart); 5-6 row 3 and 7 row 4 are not contacts; the
    // driver always is.
    assert_eq!(
        fellows(t),
        [
            (1, "510000", true, 1, 0, true),
            (3, "340000", false, 1, 1, true),
            (4, "510000", false, 2, 1, true),
            (5, "510000", false, 3, 2, false),
            (6, "510000", false, 4, 2, false),
            (7, "510000", false, 5, 3, false),
        ]
    );
    // What the manifest holds of each: the first 6 bytes of the code's cti, never more.
    assert_eq!(t.fellows[1].cti_prefix, anhui[6].cti[..12]);
    assert_eq!(t.fellows[0].cti_prefix, sichuan[0].cti[..12]);
    assert!(t.fellows.iter().all(|f| f.subject_prefix.len() == 8));

    let t = &r.trips[1];
    assert_eq!(t.origin_province, "340000");
    assert_eq!(t.held_by, ["340000"]);
    assert_eq!(t.vehicle, "皖A·54321");
    assert_eq!(t.departure, (now + 7200).secs());
    assert_eq!((t.case_seat, t.case_crew), (4, false));
    // Seat 4 is row 2: rows 1 to 3 count (seats 1 to 6), seat 7 (row 4) does not.
    assert_eq!(
        fellows(t),
        [
            (1, "340000", true, 3, 1, true),
            (2, "340000", false, 2, 1, true),
            (3, "340000", false, 1, 0, true),
            (5, "340000", false, 1, 1, true),
            (6, "340000", false, 2, 1, true),
            (7, "340000", false, 3, 2, false),
        ]
    );

    // The audit logs: the trace and the query at Sichuan, the answer at Anhui.
    let at_sc = trace_records(&sc, |r| r.len() >= 2).await;
    let subject = at_sc
        .iter()
        .find(|r| action(r) == proto::TraceAction::Subject)
        .unwrap();
    let st = subject.trace.as_ref().unwrap();
    assert_eq!((st.asked_by.as_str(), st.count), ("test", 2));
    assert_eq!(st.subject_prefix, r.subject_prefix);
    let sent = at_sc
        .iter()
        .find(|r| action(r) == proto::TraceAction::QuerySent)
        .unwrap();
    assert_eq!(sent.issuer_province, "340000");
    assert_eq!(sent.verdict, proto::Verdict::Recognized as i32);
    assert_eq!(sent.trace.as_ref().unwrap().count, 2);
    let at_ah = trace_records(&ah, |r| !r.is_empty()).await;
    assert_eq!(at_ah.len(), 1, "{at_ah:?}");
    assert_eq!(action(&at_ah[0]), proto::TraceAction::QueryAnswered);
    assert_eq!(at_ah[0].issuer_province, "510000");
    let answered = at_ah[0].trace.as_ref().unwrap();
    assert_eq!(
        (
            answered.asked_by.as_str(),
            answered.count,
            answered.refusal.as_str()
        ),
        ("510000", 2, "")
    );

    // Zhejiang has no tracing term at Anhui: its FindTrips is refused, and audited there.
    let refused = federation_as(&ah, &tls_identity_of(&zj))
        .await
        .find_trips(proto::FindTripsRequest {
            subject_prefix: hex::decode(&r.subject_prefix).unwrap(),
            since: 0,
            until: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("330000"),
        "{}",
        refused.message()
    );
    let at_ah = trace_records(&ah, |r| r.len() >= 2).await;
    let from_zj = at_ah
        .iter()
        .find(|r| r.issuer_province == "330000")
        .unwrap();
    assert_eq!(action(from_zj), proto::TraceAction::QueryAnswered);
    assert_eq!(from_zj.verdict, proto::Verdict::NotRecognized as i32);
    assert_eq!(from_zj.trace.as_ref().unwrap().refusal, refused.message());

    // A subject on no trip: no trips, not an error.
    let nobody = tracer(&sc)
        .await
        .trace_subject(trace_request(&document_number("511304", 799)))
        .await
        .unwrap()
        .into_inner();
    assert!(nobody.trips.is_empty(), "{nobody:?}");
    assert_eq!(nobody.answered, ["340000"]);

    // Anhui down: the answer says so, and Sichuan's own trip is still found.
    ah.shutdown().await.unwrap();
    let partial = tracer(&sc)
        .await
        .trace_subject(trace_request(&case_number))
        .await
        .unwrap()
        .into_inner();
    assert!(partial.answered.is_empty(), "{partial:?}");
    assert_eq!(partial.not_answered, ["340000"]);
    assert_eq!(partial.not_asked, ["330000"]);
    assert_eq!(partial.trips.len(), 1);
    assert_eq!(partial.trips[0].trip_id, sc_trip);
    assert_eq!(partial.trips[0].held_by, ["510000"]);
    let at_sc = trace_records(&sc, |r| {
        r.iter().any(|r| {
            action(r) == proto::TraceAction::QuerySent
                && !r.trace.as_ref().unwrap().refusal.is_empty()
        })
    })
    .await;
    let failed = at_sc
        .iter()
        .find(|r| {
            action(r) == proto::TraceAction::QuerySent
                && !r.trace.as_ref().unwrap().refusal.is_empty()
        })
        .unwrap();
    assert_eq!(failed.issuer_province, "340000");
    assert_eq!(failed.verdict, proto::Verdict::NotRecognized as i32);

    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

/// Runs `hcmr ARGS` against `n` as the test caller, off the runtime's workers.
async fn hcmr_cli(n: &NodeHandle, args: &[&str]) -> (bool, String, String) {
    let mut c = cli(n);
    c.args(args);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcmr_trace_subject_prints_the_trip_without_the_number_and_a_caller_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&init_node(dir.path(), SC).await, &clock).await;
    let case_number = document_number("511304", 800);
    let case = issue(&sc, subject("罗德明", "511304", 800), G, 3600).await;
    let mut others = Vec::new();
    for i in 0..3u16 {
        others.push(issue(&sc, subject("何师傅", "511304", 801 + i), G, 3600).await);
    }
    let now = clock.now();
    // The case is the driver: everyone on board counts.
    let (trip, _) = bus(
        &sc,
        "511304",
        "川R·12345",
        (now + 60).secs(),
        &[],
        &[&case, &others[0], &others[1], &others[2]],
    )
    .await;
    clock.set(now + 600);

    let (ok, out, err) = hcmr_cli(
        &sc,
        &[
            "trace",
            "subject",
            "--doc-number",
            &case_number,
            "--rows",
            "1",
            "--format",
            "json",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(!out.contains(&case_number) && !err.contains(&case_number));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rule"], "within 1 row, 4 seats a row; crew always");
    assert_eq!(v["not_asked"], serde_json::json!([]));
    assert_eq!(v["trips"].as_array().unwrap().len(), 1);
    let t = &v["trips"][0];
    assert_eq!(t["trip_id"], trip.as_str());
    assert_eq!(t["held_by"], serde_json::json!(["510000"]));
    assert_eq!(
        (t["case_seat"].as_u64(), t["case_crew"].as_bool()),
        (Some(1), Some(true))
    );
    let seats: Vec<(u64, bool)> = t["fellows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["seat"].as_u64().unwrap(), f["contact"].as_bool().unwrap()))
        .collect();
    assert_eq!(seats, [(2, true), (3, true), (4, true)]);

    // In words: the trip's line and one line a seat.
    let (ok, out, err) = hcmr_cli(&sc, &["trace", "subject", "--doc-number", &case_number]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("trip {trip} version 1 of 510000")),
        "{out}"
    );
    assert!(
        out.contains("the case: seat 1 (crew); 3 others on board, 3 contacts"),
        "{out}"
    );
    assert!(!out.contains(&case_number));

    // Ten traces a minute per caller: two by the CLI, eight more, then RESOURCE_EXHAUSTED.
    for i in 0..8 {
        tracer(&sc)
            .await
            .trace_subject(trace_request(&case_number))
            .await
            .unwrap_or_else(|e| panic!("trace {}: {e:?}", i + 3));
    }
    let over = tracer(&sc)
        .await
        .trace_subject(trace_request(&case_number))
        .await
        .unwrap_err();
    assert_eq!(over.code(), tonic::Code::ResourceExhausted, "{over:?}");
    // Audited: ten traces served, one refused.
    let records = trace_records(&sc, |r| r.len() >= 11).await;
    let served = records
        .iter()
        .filter(|r| r.verdict == proto::Verdict::Recognized as i32);
    assert_eq!(served.count(), 10);
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.verdict == proto::Verdict::NotRecognized as i32)
        .collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    assert_eq!(action(refused[0]), proto::TraceAction::Subject);
    assert_eq!(refused[0].trace.as_ref().unwrap().refusal, over.message());
    // `hcmr audit` shows them, with the prefix and never the number.
    let (ok, out, err) = hcmr_cli(&sc, &["audit", "--csv"]).await;
    assert!(ok, "{out}{err}");
    let prefix = &refused[0].trace.as_ref().unwrap().subject_prefix;
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("TRACE:subject"))
        .collect();
    assert_eq!(lines.len(), 11, "{out}");
    assert!(
        lines[0].ends_with(&format!(",SERVED,TRACE:subject,subject {prefix} x1,")),
        "{out}"
    );
    assert!(
        lines[10].ends_with(&format!(",REFUSED,TRACE:subject,subject {prefix} x0,")),
        "{out}"
    );
    assert!(lines.iter().all(|l| l.contains(",test,grpc,,")), "{out}");
    assert!(!out.contains(&case_number));
    // The next minute, again.
    clock.set(now + 660);
    tracer(&sc)
        .await
        .trace_subject(trace_request(&case_number))
        .await
        .unwrap();
    // A bad document number names its field.
    let bad = tracer(&sc)
        .await
        .trace_subject(trace_request("51130419900101123"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().starts_with("document_number"),
        "{}",
        bad.message()
    );
    sc.shutdown().await.unwrap();
}
