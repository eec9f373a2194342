//! Exposure notices (docs/tracing.md section 5) between real nodes: Sichuan and Zhejiang with
//! an agreement, Anhui without one. A notice Zhejiang's node signs for a Sichuan resident is
//! taken in once over `SubmitTripRecord`, matched with Sichuan's issued-code log and listed
//! for Sichuan's platform (`ListExposureNotices`, `hcmr exposure list`); forged, replayed,
//! misaddressed and foreign notices are refused, each with its code and an audit record. A
//! notice waiting in Sichuan's trip outbox reaches Zhejiang after Zhejiang's restart.

use crate::common::*;
use hcmr::keyfile::NodeKeyFile as _;
use hcmr::keys::NodeKey;
use hcmr::manifest::TripId;
use hcmr::node::NodeHandle;
use hcmr::proto;
use hcmr::proto::submit_trip_record_request::Record;
use hcmr::proto::trace_service_client::TraceServiceClient;
use hcmr::province::Province;
use hcmr::trace::{CaseClass, ExposureNotice, NoticeId};
use tonic::Code;

const SICHUAN: u32 = 510000;
const ZHEJIANG: u32 = 330000;
const ANHUI: u32 = 340000;

struct Scene {
    _dir: tempfile::TempDir,
    clock: hcmr::clock::Clock,
    sc_cfg: std::path::PathBuf,
    zj_cfg: std::path::PathBuf,
    sc: NodeHandle,
    zj: NodeHandle,
    ah: NodeHandle,
}

async fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let zj_cfg = init_node(dir.path(), ZHEJIANG).await;
    let ah_cfg = init_node(dir.path(), ANHUI).await;
    let sc = start_on(&sc_cfg, &clock).await;
    let zj = start_on(&zj_cfg, &clock).await;
    let ah = start_on(&ah_cfg, &clock).await;
    // All colours as issued both ways, and the tracing term both ways (notices need it).
    crate::trace_subject::agree(
        &sc,
        &zj,
        proto::CreateAgreementRequest {
            peer_tracing: true,
            our_tracing: true,
            ..Default::default()
        },
    )
    .await;
    Scene {
        _dir: dir,
        clock,
        sc_cfg,
        zj_cfg,
        sc,
        zj,
        ah,
    }
}

fn prov(c: u32) -> Province {
    Province::from_code(c).unwrap()
}

/// A code issued at `n` for a resident: (cti prefix, subject prefix, full subject hash hex).
async fn resident(n: &NodeHandle, seq: u16) -> ([u8; 6], [u8; 4], String) {
    let address = if n.province == prov(SICHUAN) {
        "511302"
    } else {
        "330212"
    };
    let r = issue(n, subject("陈静", address, seq), G, 3600).await;
    let cti = hex::decode(&r.cti).unwrap();
    let hash = r.subject.unwrap().subject_hash;
    let h = hex::decode(&hash).unwrap();
    (
        cti[..6].try_into().unwrap(),
        h[..4].try_into().unwrap(),
        hash,
    )
}

fn notice(
    from: u32,
    to: u32,
    id: u8,
    who: ([u8; 6], [u8; 4]),
    now: hcmr::UnixTime,
) -> ExposureNotice {
    ExposureNotice {
        notice_id: NoticeId([id; 8]),
        from: prov(from),
        to: prov(to),
        trip_id: TripId([0x7e; 8]),
        trip_origin: prov(SICHUAN),
        departure: now.saturating_sub(2 * 86_400),
        seat: 12,
        distance: 2,
        crew: false,
        case_class: CaseClass::Confirmed,
        cti_prefix: who.0,
        subject_prefix: who.1,
        issued_at: now,
    }
}

fn submit(bytes: Vec<u8>) -> proto::SubmitTripRecordRequest {
    proto::SubmitTripRecordRequest {
        record: Some(Record::ExposureNotice(bytes)),
    }
}

async fn list(n: &NodeHandle) -> Vec<proto::ExposureNoticeView> {
    TraceServiceClient::new(channel(n).await)
        .list_exposure_notices(proto::ListExposureNoticesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .notices
}

/// The traceability records of `n`'s audit log, once it holds at least `least` (the audit
/// writer stores its queue every 200 ms; bounded wait).
async fn trace_records(n: &NodeHandle, least: usize) -> Vec<(proto::TraceRecord, String, i32)> {
    let mut records = Vec::new();
    for _ in 0..100 {
        records = operator(n)
            .await
            .list_audit_records(proto::ListAuditRecordsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .records
            .into_iter()
            .filter_map(|r| r.trace.map(|t| (t, r.issuer_province, r.verdict)))
            .collect();
        if records.len() >= least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_notice_is_taken_once_matched_listed_and_forgeries_are_refused() {
    let s = scene().await;
    let who = resident(&s.sc, 1).await;
    let zj_key = NodeKey::read_pem(&s.zj.dir.join("node.key")).unwrap();
    let now = s.clock.now();
    let good = notice(ZHEJIANG, SICHUAN, 1, (who.0, who.1), now).sign(&zj_key);
    let mut as_zj = federation_as(&s.sc, &tls_identity_of(&s.zj)).await;

    let r = as_zj
        .submit_trip_record(submit(good.clone()))
        .await
        .unwrap();
    assert!(!r.into_inner().duplicate);
    // Replayed: acknowledged as a duplicate, nothing changes.
    let before = list(&s.sc).await;
    let r = as_zj
        .submit_trip_record(submit(good.clone()))
        .await
        .unwrap();
    assert!(r.into_inner().duplicate);
    assert_eq!(list(&s.sc).await, before);

    assert_eq!(before.len(), 1);
    let v = &before[0];
    assert_eq!(
        (
            v.notice_id.as_str(),
            v.from_province.as_str(),
            v.trip_id.as_str(),
            v.trip_origin.as_str(),
            v.seat,
            v.distance,
            v.crew,
            v.case_class,
        ),
        (
            "0101010101010101",
            "330000",
            "7e7e7e7e7e7e7e7e",
            "510000",
            12,
            2,
            false,
            proto::CaseClass::Confirmed as i32
        )
    );
    assert!(v.matched, "the code was issued here");
    assert_eq!(
        v.subject_hash, who.2,
        "the full keyed hash, from the issued-code log"
    );
    assert_eq!(v.cti_prefix, hex::encode(who.0));
    assert_eq!(v.received_at, now.secs());

    let refused = |e: tonic::Status, code: Code, text: &str| {
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(e.message().contains(text), "{}", e.message());
    };
    // Another notice under the same id.
    let mut other = notice(ZHEJIANG, SICHUAN, 1, (who.0, who.1), now);
    other.seat = 13;
    let e = as_zj
        .submit_trip_record(submit(other.sign(&zj_key)))
        .await
        .unwrap_err();
    refused(e, Code::AlreadyExists, "0101010101010101");
    // Forged: the signature altered; signed by a key Sichuan does not trust for Zhejiang.
    let mut forged = notice(ZHEJIANG, SICHUAN, 2, (who.0, who.1), now).sign(&zj_key);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let e = as_zj.submit_trip_record(submit(forged)).await.unwrap_err();
    refused(e, Code::Unauthenticated, "does not verify");
    let stranger = hcmr_core::testkit::stranger();
    let e = as_zj
        .submit_trip_record(submit(
            notice(ZHEJIANG, SICHUAN, 3, (who.0, who.1), now).sign(&stranger),
        ))
        .await
        .unwrap_err();
    refused(e, Code::Unauthenticated, "no key of 330000");
    // Signed as another province than the calling node's.
    let e = as_zj
        .submit_trip_record(submit(
            notice(ANHUI, SICHUAN, 4, (who.0, who.1), now).sign(&zj_key),
        ))
        .await
        .unwrap_err();
    refused(e, Code::PermissionDenied, "340000");
    // For another province's residents.
    let e = as_zj
        .submit_trip_record(submit(
            notice(ZHEJIANG, ANHUI, 5, (who.0, who.1), now).sign(&zj_key),
        ))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "exposure_notice: is for 340000");
    // Not a notice at all; truncated.
    let e = as_zj
        .submit_trip_record(submit(b"garbage".to_vec()))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "exposure_notice:");
    let e = as_zj
        .submit_trip_record(submit(good[..good.len() - 10].to_vec()))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "exposure_notice:");
    // A province without an agreement is refused at the door.
    let ah_key = NodeKey::read_pem(&s.ah.dir.join("node.key")).unwrap();
    let mut as_ah = federation_as(&s.sc, &tls_identity_of(&s.ah)).await;
    let e = as_ah
        .submit_trip_record(submit(
            notice(ANHUI, SICHUAN, 6, (who.0, who.1), now).sign(&ah_key),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    // Nothing of the refused ones was kept.
    assert_eq!(list(&s.sc).await, before);

    // The audit log: the notice taken in, the duplicate, and each refusal after decoding, by
    // their sender, with the subject prefix and never more.
    let records = trace_records(&s.sc, 7).await;
    let received: Vec<_> = records
        .iter()
        .filter(|(t, _, _)| t.action == proto::TraceAction::NoticeReceived as i32)
        .collect();
    let served: Vec<_> = received
        .iter()
        .filter(|(t, _, _)| t.refusal.is_empty())
        .collect();
    assert_eq!(served.len(), 2, "{records:?}");
    assert_eq!(served.iter().map(|(t, _, _)| t.count).sum::<u32>(), 1);
    let (t, issuer, verdict) = served[0];
    assert_eq!(
        (
            t.asked_by.as_str(),
            t.trip_id.as_str(),
            t.subject_prefix.as_str()
        ),
        ("330000", "7e7e7e7e7e7e7e7e", hex::encode(who.1).as_str())
    );
    assert_eq!(
        (issuer.as_str(), *verdict),
        ("330000", proto::Verdict::Recognized as i32)
    );
    let refusals: Vec<&str> = received
        .iter()
        .filter(|(t, _, _)| !t.refusal.is_empty())
        .map(|(t, _, _)| t.refusal.as_str())
        .collect();
    assert_eq!(refusals.len(), 5, "{refusals:?}");
    assert!(refusals.iter().any(|r| r.contains("does not verify")));
    assert!(refusals.iter().any(|r| r.contains("is for 340000")));

    // The platform reads them with the CLI.
    let out = cli(&s.sc)
        .args(["exposure", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["subject_hash"], who.2.as_str());
    assert_eq!(json[0]["case_class"], "confirmed");
    assert_eq!(json[0]["matched"], true);
    let out = cli(&s.sc).args(["exposure", "list"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("0101010101010101  from 330000  trip 7e7e7e7e7e7e7e7e")
            && text.contains("seat 12  2 seat(s) from the case (confirmed)"),
        "{text}"
    );
    let since = hcmr::rfc3339(now.secs() + 1);
    let out = cli(&s.sc)
        .args(["exposure", "list", "--since", &since, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "[]");

    // `hcmr audit` shows them.
    let out = cli(&s.sc).args(["audit"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = format!("trip 7e7e7e7e7e7e7e7e subject {} x1", hex::encode(who.1));
    assert!(
        text.lines().any(|l| l.contains("SERVED")
            && l.contains("TRACE:notice_received")
            && l.contains(&line)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("REFUSED") && l.contains("TRACE:notice_received")),
        "{text}"
    );

    // PIPL: after the notices, no node's folder holds the resident's name or number.
    let Scene {
        _dir, sc, zj, ah, ..
    } = s;
    for n in [sc, zj, ah] {
        n.shutdown().await.unwrap();
    }
    let p = hcmr_core::testkit::person("陈静", "511302", 1);
    let found = crate::privacy::findings(&[_dir.path()], &[], &[(p.name, p.document_number)]);
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_notice_reaches_its_province_after_that_node_restarts() {
    let s = scene().await;
    let who = resident(&s.zj, 7).await;
    // Zhejiang goes down (on its port, which Sichuan has recorded).
    pin_listen(&s.zj_cfg, &s.zj);
    let Scene {
        _dir,
        clock,
        sc_cfg,
        zj_cfg,
        sc,
        zj,
        ah,
    } = s;
    zj.shutdown().await.unwrap();
    // Sichuan's trace queues a notice for Zhejiang in its trip outbox, as queue_notices does
    // (its own unit tests cover that step): signed by Sichuan's node key, stored durably
    // while the node is stopped.
    let sc_key = NodeKey::read_pem(&sc.dir.join("node.key")).unwrap();
    let data_dir = hcmr::node::config::Config::load(&sc_cfg).unwrap().data_dir;
    sc.shutdown().await.unwrap();
    let now = clock.now();
    {
        let store = hcmr::store::Store::open(&data_dir).unwrap();
        store
            .enqueue_trip_record(
                prov(ZHEJIANG),
                hcmr::store::TripRecordKind::ExposureNotice,
                notice(SICHUAN, ZHEJIANG, 9, (who.0, who.1), now).sign(&sc_key),
                now,
            )
            .await
            .unwrap();
    }
    // Sichuan starts and tries while Zhejiang is down; then Zhejiang comes back.
    let sc = start_on(&sc_cfg, &clock).await;
    let zj = start_on(&zj_cfg, &clock).await;
    // Bounded: the outbox retries at most every 15 s.
    let mut got = Vec::new();
    for _ in 0..120 {
        got = list(&zj).await;
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(got.len(), 1, "delivered after the restart");
    let v = &got[0];
    assert_eq!(
        (v.notice_id.as_str(), v.from_province.as_str(), v.seat),
        ("0909090909090909", "510000", 12)
    );
    assert!(v.matched);
    assert_eq!(v.subject_hash, who.2);
    let records = trace_records(&zj, 1).await;
    assert!(
        records.iter().any(
            |(t, issuer, _)| t.action == proto::TraceAction::NoticeReceived as i32
                && t.refusal.is_empty()
                && issuer == "510000"
        ),
        "{records:?}"
    );
    for n in [sc, zj, ah] {
        n.shutdown().await.unwrap();
    }
}
