//! Exposure notices from a trace, end to end over real gRPC across three nodes (issue 18
//! sections 2 and 5): a confirmed Sichuan case on a Sichuan bus, with an Anhui resident, a
//! Zhejiang resident and Sichuan residents near them and two passengers far away. Sichuan and
//! Anhui agree the tracing term both ways; Sichuan and Zhejiang recognize each other's codes
//! without it. With Anhui's node down, Sichuan traces the case and sends notices: its own
//! residents' are listed at once, matched with the full keyed subject hash; Anhui's waits in
//! the trip outbox and is listed at Anhui after its restart; Zhejiang gets none, and nor do
//! the far passengers.

use std::time::{Duration, Instant};

use hcmr::node::NodeHandle;
use hcmr::proto;

use crate::common::*;
use crate::trace_subject::{agree, bus, tracer};

const SC: u32 = 510000;
const AH: u32 = 340000;
const ZJ: u32 = 330000;

/// The exposure notices `n` lists for its platform.
async fn notices(n: &NodeHandle) -> Vec<proto::ExposureNoticeView> {
    tracer(n)
        .await
        .list_exposure_notices(proto::ListExposureNoticesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .notices
}

/// A notice as (seat, distance, crew, from, trip, origin, case class, matched, subject hash).
type Seen = (u32, u32, bool, String, String, String, i32, bool, String);

fn seen(v: &proto::ExposureNoticeView) -> Seen {
    (
        v.seat,
        v.distance,
        v.crew,
        v.from_province.clone(),
        v.trip_id.clone(),
        v.trip_origin.clone(),
        v.case_class,
        v.matched,
        v.subject_hash.clone(),
    )
}

/// The subject prefix (8 hex digits) of the fellow traveller in `seat`.
fn seat_prefix(fellows: &[proto::FellowTraveller], seat: u32) -> String {
    fellows
        .iter()
        .find(|f| f.seat == seat)
        .unwrap()
        .subject_prefix
        .clone()
}

/// The served trace records of `action` in `n`'s audit log as (province, subject prefix), once
/// there are `least` of them (bounded: 10 s; the audit writer stores a batch every 200 ms).
async fn notice_audit(
    n: &NodeHandle,
    action: proto::TraceAction,
    least: usize,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<(String, String)> = audit_records(n)
            .await
            .into_iter()
            .filter_map(|r| r.trace.map(|t| (t, r.issuer_province)))
            .filter(|(t, _)| t.action == action as i32 && t.refusal.is_empty())
            .map(|(t, p)| (p, t.subject_prefix))
            .collect();
        if found.len() >= least || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_case_notifies_its_contacts_at_home_and_at_a_peer_that_was_down() {
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
    // Sichuan and Anhui: each answers the other's traces and takes its notices.
    agree(
        &sc,
        &ah,
        proto::CreateAgreementRequest {
            our_tracing: true,
            peer_tracing: true,
            ..Default::default()
        },
    )
    .await;
    // Sichuan and Zhejiang: codes recognized both ways, no tracing.
    agree(&sc, &zj, proto::CreateAgreementRequest::default()).await;
    let mut tracing: Vec<(String, String)> = agreements(&sc)
        .await
        .iter()
        .flat_map(|a| a.directions.iter())
        .filter(|d| d.tracing)
        .map(|d| (d.issuer_province.clone(), d.verifier_province.clone()))
        .collect();
    tracing.sort();
    assert_eq!(
        tracing,
        [
            ("340000".to_string(), "510000".to_string()),
            ("510000".to_string(), "340000".to_string())
        ]
    );
    sync_now(&sc).await;
    sync_now(&ah).await;
    sync_now(&zj).await;

    let case_number = document_number("511304", 900);
    let case = issue(&sc, subject("罗德明", "511304", 900), G, 3600).await;
    let driver = issue(&sc, subject("何师傅", "511304", 901), G, 3600).await;
    let sc_near = issue(&sc, subject("杨小燕", "511304", 902), G, 3600).await;
    let sc_far = issue(&sc, subject("蒲建军", "511304", 903), G, 3600).await;
    let ah_near = issue(&ah, subject("王芳", "340104", 904), G, 3600).await;
    let ah_far = issue(&ah, subject("刘强", "340104", 905), G, 3600).await;
    let zj_near = issue(&zj, subject("陈静", "330212", 906), G, 3600).await;
    // Full keyed subject hashes: 16 hex digits.
    let hash =
        |r: &proto::IssueHealthCodeResponse| r.subject.as_ref().unwrap().subject_hash.clone();
    assert_eq!(hash(&sc_near).len(), 16);

    // One seat a row, so that a row is a seat: the case in seat 2; the Anhui resident 1 seat
    // away, the Zhejiang resident 2, the Sichuan resident 3 (all within 3 rows); the driver
    // (crew, always a contact); the far passengers 4 and 5 seats away.
    let now = clock.now();
    let (trip, _) = bus(
        &sc,
        "511304",
        "川R·67890",
        (now + 60).secs(),
        &[],
        &[
            &driver, &case, &ah_near, &zj_near, &sc_near, &ah_far, &sc_far,
        ],
    )
    .await;
    clock.set(now + 3 * 3600);

    // Anhui goes down, on a port it will serve on again.
    pin_listen(&ah_cfg, &ah);
    ah.shutdown().await.unwrap();
    assert!(notices(&sc).await.is_empty());

    let r = tracer(&sc)
        .await
        .trace_subject(proto::TraceSubjectRequest {
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: case_number.clone(),
            since: 0,
            until: 0,
            rule: Some(proto::ContactRule {
                rows: 3,
                seats_per_row: 1,
                whole_vehicle: false,
            }),
            case_class: proto::CaseClass::Confirmed as i32,
            send_notices: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.answered.is_empty(), "{r:?}");
    assert_eq!(r.not_answered, ["340000"], "Anhui is asked, and is down");
    assert_eq!(r.not_asked, ["330000"]);
    assert_eq!(r.rule, "within 3 rows, 1 seat a row; crew always");
    assert_eq!(r.trips.len(), 1);
    let t = &r.trips[0];
    assert_eq!((t.trip_id.as_str(), t.case_seat), (trip.as_str(), 2));
    let contacts: Vec<(u32, &str, u32, bool)> = t
        .fellows
        .iter()
        .map(|f| (f.seat, f.issuer.as_str(), f.distance, f.contact))
        .collect();
    assert_eq!(
        contacts,
        [
            (1, "510000", 1, true),
            (3, "340000", 1, true),
            (4, "330000", 2, true),
            (5, "510000", 3, true),
            (6, "340000", 4, false),
            (7, "510000", 5, false),
        ]
    );
    // Four contacts; Zhejiang's has no notice (no tracing term): the driver, the Sichuan
    // resident (stored here) and the Anhui resident (queued for Anhui).
    assert_eq!(r.notices_queued, 3, "{r:?}");

    // Sichuan's own residents are listed at once, matched with their full keyed hash.
    let confirmed = proto::CaseClass::Confirmed as i32;
    let mut at_sc: Vec<Seen> = notices(&sc).await.iter().map(seen).collect();
    at_sc.sort();
    let sc_seen = |seat, distance, crew, r: &proto::IssueHealthCodeResponse| -> Seen {
        (
            seat,
            distance,
            crew,
            "510000".into(),
            trip.clone(),
            "510000".into(),
            confirmed,
            true,
            hash(r),
        )
    };
    assert_eq!(
        at_sc,
        [sc_seen(1, 1, true, &driver), sc_seen(5, 3, false, &sc_near)]
    );
    let listed = notices(&sc).await;
    let near = listed.iter().find(|v| v.seat == 5).unwrap();
    assert_eq!(near.cti_prefix, sc_near.cti[..12]);
    assert_eq!(near.departure, (now + 60).secs());
    assert!(listed.iter().all(|v| v.seat != 7), "the far one: no notice");

    // Anhui comes back with its data: the notice waiting in Sichuan's outbox reaches it
    // (bounded: the outbox retries at most every 15 s; 30 s in all).
    let ah = start_on(&ah_cfg, &clock).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut at_ah = Vec::new();
    while Instant::now() < deadline {
        at_ah = notices(&ah).await;
        if !at_ah.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let at_ah: Vec<Seen> = at_ah.iter().map(seen).collect();
    assert_eq!(
        at_ah,
        [(
            3,
            1,
            false,
            "510000".to_string(),
            trip.clone(),
            "510000".to_string(),
            confirmed,
            true,
            hash(&ah_near),
        )],
        "only the near Anhui resident, not the far one"
    );
    // Zhejiang got nothing.
    assert!(notices(&zj).await.is_empty());
    // Audited at both ends: three notices sent by Sichuan (none to Zhejiang), the one taken in
    // at Anhui from Sichuan.
    let mut sent = notice_audit(&sc, proto::TraceAction::NoticeSent, 3).await;
    sent.sort();
    let mut expected: Vec<(String, String)> = [("340000", 3), ("510000", 1), ("510000", 5)]
        .iter()
        .map(|&(p, seat)| (p.to_string(), seat_prefix(&t.fellows, seat)))
        .collect();
    expected.sort();
    assert_eq!(sent, expected);
    let received = notice_audit(&ah, proto::TraceAction::NoticeReceived, 1).await;
    assert_eq!(
        received,
        [("510000".to_string(), seat_prefix(&t.fellows, 3))]
    );

    for n in [sc, ah, zj] {
        n.shutdown().await.unwrap();
    }
    // As Sichuan's issued-code log holds them: the full keyed subject hash it listed.
    let store =
        hcmr::store::Store::open(&hcmr::node::config::Config::load(&sc_cfg).unwrap().data_dir)
            .unwrap();
    let cti: [u8; 16] = hex::decode(&sc_near.cti).unwrap().try_into().unwrap();
    let logged = store.issued(&cti).unwrap().unwrap();
    assert_eq!(hex::encode(logged.subject_hash.0), hash(&sc_near));
    assert_eq!(store.trip_outbox_len(), 0, "delivered and acknowledged");
}
