//! One scan per vehicle at a checkpoint (docs/transport.md section 5): VerifyManifest at a real
//! Anhui node on a manifest sealed with a real Sichuan node's key over codes that node issued.
//! PASS with the headcount; STOP `manifests_not_agreed` under an agreement without the term;
//! STOP `superseded` once a newer version was seen, also after a restart; STOP `revoked` naming
//! the seat once Sichuan revokes a passenger's code and Anhui syncs; malformed input answered as
//! a STOP; each check read back from the audit log, and the signed check report queued for the
//! origin.

use std::time::Duration;

use crate::common::*;

use hcmr::agreement::ManifestTerms;
use hcmr::clock::Clock;
use hcmr::keyfile::NodeKeyFile as _;
use hcmr::keys::NodeKey;
use hcmr::manifest::{
    self, Escort, Manifest, Person, Place, ReportVerdict, SignedCheckReport, TripId, Vehicle,
};
use hcmr::node::{Config, NodeHandle};
use hcmr::proto::{self, ManifestReason as Why, Verdict};
use hcmr::province::Province;
use hcmr::status::HealthStatus;
use hcmr::store::{Store, TripRecordKind};

const SICHUAN: u32 = 510000;
const ANHUI: u32 = 340000;
const CHECKPOINT: &str = "皖苏界G40收费站";

fn prov(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

/// The signing key of a node, read from its folder (as its operator holds it).
fn node_key(n: &NodeHandle) -> NodeKey {
    NodeKey::read_pem(&n.dir.join("node.key")).unwrap()
}

/// A trip from Chengdu (510104) to Ningbo (330200) through Anhui, sealed at `now` with `key`,
/// departing in half an hour and arriving 20 h later: seat 1 the driver (crew), then one
/// passenger per code after the first, all green codes of Sichuan.
fn trip(key: &NodeKey, codes: &[String], version: u64, now: hcmr::UnixTime) -> String {
    let people = codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let code = hcmr::code::HealthCode::decode(c).unwrap();
            Person::from_code(&code, 0, HealthStatus::Green, i == 0, now).unwrap()
        })
        .collect();
    let m = Manifest {
        trip_id: TripId(*b"trip-042"),
        version,
        origin: 510104,
        destination: 330200,
        transit: vec![prov(ANHUI)],
        vehicle: Vehicle::new("川A·D1234").unwrap(),
        place: Place::new("宁波市某电子厂").unwrap(),
        departure: now + 1800,
        arrival: now + 1800 + 20 * 3600,
        sealed_at: now,
        escort: Escort::new("张*").unwrap(),
        issuers: vec![prov(SICHUAN)],
        people,
    };
    manifest::sign(&m, key)
}

/// VerifyManifest at `n` from `checkpoint`.
async fn check(n: &NodeHandle, text: &str, checkpoint: &str) -> proto::VerifyManifestResponse {
    codes(n)
        .await
        .verify_manifest(proto::VerifyManifestRequest {
            manifest: text.to_string(),
            checkpoint_id: checkpoint.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// (reason, seat, issuer) of each reason of a verdict.
fn reasons(r: &proto::VerifyManifestResponse) -> Vec<(Why, u32, String)> {
    r.reasons
        .iter()
        .map(|x| {
            (
                Why::try_from(x.reason).unwrap(),
                x.seat,
                x.issuer_province.clone(),
            )
        })
        .collect()
}

/// The manifest checks of `n`'s audit log, oldest first, once there are at least `n_checks`
/// (the audit writer stores them within a few hundred milliseconds; bounded wait).
async fn manifest_audit(n: &NodeHandle, n_checks: usize) -> Vec<proto::AuditRecord> {
    for _ in 0..100 {
        let got: Vec<_> = audit_records(n)
            .await
            .into_iter()
            .filter(|r| r.manifest.is_some())
            .collect();
        if got.len() >= n_checks {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n_checks} manifest checks in the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_passes_then_stops_for_an_old_version_and_a_revoked_seat_and_each_check_is_audited_and_reported(
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(hcmr::unix_now());
    let sc = start_on(&init_node(dir.path(), SICHUAN).await, &clock).await;
    let ah_cfg = init_node(dir.path(), ANHUI).await;
    let ah = start_on(&ah_cfg, &clock).await;
    // Anhui's checkpoints pass Sichuan's vehicles through; nothing the other way.
    conclude_with_manifests(
        &ah,
        &sc,
        &[(G, G)],
        &[(G, G)],
        ManifestTerms::transit(),
        ManifestTerms::none(),
    )
    .await;
    sync_now(&ah).await;

    let mut issued = Vec::new();
    for seq in 0..3 {
        issued.push(issue(&sc, subject("王建国", "510104", 200 + seq), G, 7 * 86_400).await);
    }
    let codes_of: Vec<String> = issued.iter().map(|c| c.code.clone()).collect();
    let key = node_key(&sc);
    let now = clock.now();
    let v1 = trip(&key, &codes_of, 1, now);

    // PASS: the green lane, with the headcount to count against the people on board.
    let pass = check(&ah, &v1, CHECKPOINT).await;
    assert!(pass.pass, "{pass:?}");
    assert!(pass.reasons.is_empty() && pass.signature_verified);
    assert_eq!((pass.passengers, pass.crew), (2, 1));
    assert_eq!(
        (pass.trip_id.as_str(), pass.version),
        ("747269702d303432", 1)
    );
    assert_eq!(
        (
            pass.origin.as_str(),
            pass.destination.as_str(),
            pass.role.as_str()
        ),
        ("510104", "330200", "transit")
    );
    assert_eq!(pass.transit, vec!["340000".to_string()]);
    assert_eq!(
        (pass.vehicle.as_str(), pass.place.as_str()),
        ("川A·D1234", "宁波市某电子厂")
    );
    assert_eq!(
        (pass.departure, pass.arrival),
        ((now + 1800).secs(), (now + 1800 + 72_000).secs())
    );
    assert_eq!(
        (pass.checked_at, pass.seal_age_secs, pass.not_rechecked),
        (now.secs(), 0, 0)
    );
    assert_eq!(
        pass.explanation,
        "核验通过，请清点人数 / PASS: count heads against the manifest"
    );

    // Version 2 seen, version 1 is superseded.
    let v2 = trip(&key, &codes_of, 2, now);
    assert!(check(&ah, &v2, CHECKPOINT).await.pass);
    let old = check(&ah, &v1, CHECKPOINT).await;
    assert!(!old.pass && old.signature_verified, "{old:?}");
    assert_eq!(reasons(&old), vec![(Why::Superseded, 0, String::new())]);
    assert_eq!(
        old.reasons[0].detail,
        "version 1 shown; version 2 was seen here"
    );
    assert_eq!(old.version, 1);
    assert!(
        old.explanation.starts_with("停车检查 / STOP: "),
        "{}",
        old.explanation
    );

    // Sichuan revokes the passenger of seat 3; once Anhui has synced, version 2 stops there.
    codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: issued[2].cti.clone(),
        })
        .await
        .unwrap();
    sync_now(&ah).await;
    let revoked = check(&ah, &v2, CHECKPOINT).await;
    assert!(!revoked.pass, "{revoked:?}");
    assert_eq!(
        reasons(&revoked),
        vec![(Why::Revoked, 3, SICHUAN.to_string())]
    );
    assert_eq!((revoked.passengers, revoked.crew), (2, 1));

    // The audit log: checkpoint, trip, version, verdict and reasons by seat; no code hash.
    let log = manifest_audit(&ah, 4).await;
    let seen: Vec<(u64, i32, Vec<(i32, u32)>)> = log
        .iter()
        .map(|r| {
            let m = r.manifest.as_ref().unwrap();
            assert_eq!(m.trip_id, "747269702d303432");
            assert!(m.signature_verified);
            assert_eq!(
                (r.checkpoint_id.as_str(), r.issuer_province.as_str()),
                (CHECKPOINT, "510000")
            );
            assert_eq!((r.reason, r.cti_hash.as_str()), (0, ""));
            (
                m.version,
                r.verdict,
                m.reasons.iter().map(|x| (x.reason, x.seat)).collect(),
            )
        })
        .collect();
    let (ok, stop) = (Verdict::Recognized as i32, Verdict::NotRecognized as i32);
    assert_eq!(
        seen,
        vec![
            (1, ok, vec![]),
            (2, ok, vec![]),
            (1, stop, vec![(Why::Superseded as i32, 0)]),
            (2, stop, vec![(Why::Revoked as i32, 3)]),
        ]
    );

    // The highest version seen survives a restart (and version 1 lists seat 3 too).
    pin_listen(&ah_cfg, &ah);
    ah.shutdown().await.unwrap();
    let ah = start_on(&ah_cfg, &clock).await;
    let old = check(&ah, &v1, CHECKPOINT).await;
    assert_eq!(
        reasons(&old),
        vec![
            (Why::Superseded, 0, String::new()),
            (Why::Revoked, 3, SICHUAN.to_string())
        ]
    );

    // Each check was reported to Sichuan: a check report signed by Anhui, queued in its trip
    // outbox (waiting while Sichuan does not take trip records, or dead-lettered if it refuses).
    let ah_key = node_key(&ah);
    ah.shutdown().await.unwrap();
    let store = Store::open(&Config::load(&ah_cfg).unwrap().data_dir).unwrap();
    let mut entries = store.trip_outbox(100).await.unwrap();
    entries.extend(store.trip_outbox_dead(100).await.unwrap());
    entries.sort_by_key(|e| e.seq);
    let reports: Vec<(u64, ReportVerdict, usize)> = entries
        .iter()
        .map(|e| {
            assert_eq!((e.to, e.kind), (prov(SICHUAN), TripRecordKind::CheckReport));
            let r = SignedCheckReport::decode(&e.record).unwrap();
            assert!(r.verify_signature(&ah_key.public()));
            assert_eq!(r.report.trip_id, TripId(*b"trip-042"));
            assert_eq!(r.report.checker, prov(ANHUI));
            assert_eq!(r.report.checkpoint.as_str(), CHECKPOINT);
            assert_eq!(r.report.checked_at, now);
            (r.report.version, r.report.verdict, r.report.reasons.len())
        })
        .collect();
    assert_eq!(
        reports,
        vec![
            (1, ReportVerdict::Pass, 0),
            (2, ReportVerdict::Pass, 0),
            (1, ReportVerdict::Stop, 1),
            (2, ReportVerdict::Stop, 1),
            (1, ReportVerdict::Stop, 2),
        ]
    );
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_manifests_term_a_vehicle_stops_and_garbage_is_a_stop_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(hcmr::unix_now());
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let sc = start_on(&sc_cfg, &clock).await;
    let ah = start_on(&init_node(dir.path(), ANHUI).await, &clock).await;
    // Codes are recognized both ways; manifests are not agreed.
    conclude(&ah, &sc, &[(G, G)], &[(G, G)]).await;
    sync_now(&ah).await;
    let code = issue(&sc, subject("李秀英", "510104", 7), G, 86_400)
        .await
        .code;
    let text = trip(&node_key(&sc), &[code.clone()], 1, clock.now());

    let r = check(&ah, &text, "").await;
    assert!(!r.pass && r.signature_verified, "{r:?}");
    assert_eq!(
        reasons(&r),
        vec![(Why::ManifestsNotAgreed, 0, String::new())]
    );
    assert_eq!((r.passengers, r.crew), (0, 1));

    // Not a manifest: a STOP `malformed` naming the fault, nothing of a trip.
    for (input, fault) in [
        (code.as_str(), "prefix.foreign"),
        ("HCMRT1:%%%", "base45"),
        ("", "prefix"),
    ] {
        let r = check(&ah, input, "gate-1").await;
        assert!(!r.pass && !r.signature_verified, "{input}: {r:?}");
        assert_eq!(reasons(&r), vec![(Why::Malformed, 0, String::new())]);
        assert!(r.reasons[0].detail.starts_with(fault), "{input}: {r:?}");
        assert_eq!((r.trip_id.as_str(), r.version), ("", 0));
        assert!(r.explanation.contains("not a readable trip manifest"));
    }

    // A trip of Sichuan's own, checked at Sichuan: no agreement needed, and no report.
    let own = check(&sc, &text, "chengdu-east").await;
    assert!(own.pass, "{own:?}");

    let log = manifest_audit(&ah, 4).await;
    assert_eq!(log[0].checkpoint_id, "unnamed");
    assert_eq!(log[0].verdict, Verdict::NotRecognized as i32);
    let m = log[0].manifest.as_ref().unwrap();
    assert_eq!((m.trip_id.as_str(), m.version), ("747269702d303432", 1));
    assert_eq!(m.reasons[0].reason, Why::ManifestsNotAgreed as i32);
    for r in &log[1..] {
        let m = r.manifest.as_ref().unwrap();
        assert_eq!((r.issuer_province.as_str(), m.trip_id.as_str()), ("", ""));
        assert!(!m.signature_verified);
    }
    assert_eq!(manifest_audit(&sc, 1).await.len(), 1);
    ah.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
    let store = Store::open(&Config::load(&sc_cfg).unwrap().data_dir).unwrap();
    assert!(store.trip_outbox(10).await.unwrap().is_empty());
}
