//! Verify replicas (issue 19, docs/deploy.md): a replica made by `init --replica-of` follows
//! its primary (own feed, peers' feeds, agreements, callers), verifies its own and a peer's
//! codes, sees a revocation at once, refuses writes naming the primary, holds no key, and only
//! an enrolled replica may follow.

use std::time::Duration;

use hcmr::proto;
use hcmr::proto::replica_service_client::ReplicaServiceClient;

use super::common::*;

const REVOKED: i32 = proto::Reason::Revoked as i32;
const OK: i32 = proto::Reason::Ok as i32;

/// Verifies `code` at `n` until the reason is `want` (bounded: 200 × 25 ms); the last answer.
async fn verify_until(
    n: &hcmr::node::NodeHandle,
    code: &str,
    want: i32,
) -> proto::VerifyHealthCodeResponse {
    let mut last = verify(n, code).await;
    for _ in 0..200 {
        if last.reason == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        last = verify(n, code).await;
    }
    last
}

#[tokio::test]
async fn a_replica_follows_its_primary_and_verifies_own_and_peer_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), 510000).await).await;
    let gd = start(&init_node(dir.path(), 440000).await).await;
    conclude(&sc, &gd, &[(G, G)], &[(G, G)]).await;
    sync_now(&sc).await;
    let own = issue(&sc, subject("张三", "510104", 1), G, 3600).await;
    let peer = issue(&gd, subject("李四", "440104", 2), G, 3600).await;
    let r1 = start(&init_replica(dir.path(), &sc, "sc-r1").await).await;
    wait_replica_synced(&r1).await;

    // Its own province's code and the peer's, as the primary decides them.
    let v = verify_until(&r1, &own.code, OK).await;
    assert_eq!(v.reason, OK, "{}", v.detail);
    assert_eq!(v.issuer_province, "510000");
    // The own state's age: when the replica last heard from its primary.
    assert!(v.issuer_state_synced_at > 0);
    let v = verify_until(&r1, &peer.code, OK).await;
    assert_eq!(v.reason, OK, "{}", v.detail);
    assert_eq!(v.issuer_province, "440000");

    // A revocation at the primary reaches the replica without a sync interval.
    codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: own.cti.clone(),
        })
        .await
        .unwrap();
    let v = verify_until(&r1, &own.code, REVOKED).await;
    assert_eq!(v.reason, REVOKED, "{}", v.detail);

    // The primary lists the replica as seen.
    let list = operator(&sc)
        .await
        .list_replicas(proto::ListReplicasRequest {})
        .await
        .unwrap()
        .into_inner()
        .replicas;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "sc-r1");
    assert!(list[0].last_seen > 0);
    assert_eq!(list[0].spki_sha256.len(), 64);

    // GetNodeInfo says what it is.
    let info = federation(&r1)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.role, proto::NodeRole::Replica as i32);
    assert_eq!(info.primary_endpoint, sc.endpoint);
    r1.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_replica_holds_no_key_and_refuses_writes_naming_its_primary() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), 510000).await).await;
    let config = init_replica(dir.path(), &sc, "sc-r2").await;
    let rdir = config.parent().unwrap().to_path_buf();
    assert!(!rdir.join("node.key").exists());
    assert!(!rdir.join("subject.key").exists());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("key_file = \"node.key\""), "{text}");
    assert!(text.contains("[replica]"), "{text}");
    let r2 = start(&config).await;
    wait_replica_synced(&r2).await;

    let refused = codes(&r2)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("张三", "510104", 3)),
            status: G,
            status_valid_until: (hcmr::unix_now() + 86_400).secs(),
            code_lifetime_secs: 300,
            qr_format: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains(&sc.endpoint),
        "{}",
        refused.message()
    );
    let refused = operator(&r2)
        .await
        .list_callers(proto::ListCallersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let refused = codes(&r2)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: "00".repeat(16),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);

    // A caller added at the primary works at the replica once followed.
    let added = operator(&sc)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "gate-7".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            replace: false,
        })
        .await
        .unwrap()
        .into_inner();
    let code = issue(&sc, subject("王五", "510104", 4), G, 3600).await.code;
    let mut answer = None;
    for _ in 0..200 {
        match codes_as(&r2, Some(&added.token))
            .await
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: code.clone(),
                checkpoint_id: "gate-7".into(),
            })
            .await
        {
            Ok(v) if v.get_ref().reason == OK => {
                answer = Some(v.into_inner());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    assert_eq!(answer.map(|v| v.reason), Some(OK));
    r2.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_an_enrolled_replica_follows_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), 510000).await).await;
    let gd = start(&init_node(dir.path(), 440000).await).await;
    conclude(&sc, &gd, &[(G, G)], &[(G, G)]).await;
    let follow = |c: tonic::transport::Channel| async move {
        let mut s = ReplicaServiceClient::new(c)
            .follow_state(proto::FollowStateRequest {})
            .await?
            .into_inner();
        s.message().await.map(|m| m.is_some())
    };

    // A replica certificate certified by a key that is not the primary's.
    let stranger = hcmr::keys::NodeKey::generate();
    let (key_der, spki) = hcmr::tls::TlsIdentity::generate_replica_key().unwrap();
    let forged = hcmr::tls::TlsIdentity::replica(
        key_der,
        sc.province,
        &hcmr::tls::certificate_names(None),
        hcmr::tls::certify_replica(&stranger, sc.province, &spki),
        hcmr::unix_now().secs() as i64,
    )
    .unwrap();
    let e = follow(node_channel_as(&sc, &forged).await)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());

    // A peer province's node certificate.
    let e = follow(node_channel_as(&sc, &tls_identity_of(&gd)).await)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());

    // No certificate at all.
    let e = follow(
        hcmr::client::channel(
            &sc.endpoint,
            Some(hcmr::tls::pinned_client_config(sc.tls_cert.as_deref().unwrap()).unwrap()),
            Duration::from_secs(10),
        )
        .await
        .unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{}", e.message());

    // An enrolled replica follows; once removed, it no longer can.
    let config = init_replica(dir.path(), &sc, "sc-r3").await;
    let rdir = config.parent().unwrap();
    let enrolled = hcmr::tls::TlsIdentity::load(
        &rdir.join("tls/node.crt"),
        &rdir.join("tls/node.key"),
        &hcmr::keyfile::KeyProtection::Plain,
    )
    .unwrap();
    assert!(follow(node_channel_as(&sc, &enrolled).await).await.unwrap());
    // A replica's certificate is not its province's node certificate at a peer.
    let e = federation_as(&gd, &enrolled)
        .await
        .get_agreements(proto::GetAgreementsRequest {
            province: "510000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    operator(&sc)
        .await
        .remove_replica(proto::RemoveReplicaRequest {
            name: "sc-r3".into(),
        })
        .await
        .unwrap();
    let e = follow(node_channel_as(&sc, &enrolled).await)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    let e = operator(&sc)
        .await
        .remove_replica(proto::RemoveReplicaRequest {
            name: "sc-r3".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// A Sichuan trip (`trip-019`, Chengdu to Ningbo through Anhui) of `codes`, version `version`,
/// sealed now with `key`.
fn sichuan_trip(key: &hcmr::keys::NodeKey, codes: &[String], version: u64) -> String {
    use hcmr::manifest::{Escort, Manifest, Person, Place, TripId, Vehicle};
    let now = hcmr::unix_now();
    let p = |c: u32| hcmr::province::Province::from_code(c).unwrap();
    let people = codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let code = hcmr::code::HealthCode::decode(c).unwrap();
            Person::from_code(&code, 0, hcmr::status::HealthStatus::Green, i == 0, now).unwrap()
        })
        .collect();
    let m = Manifest {
        trip_id: TripId(*b"trip-019"),
        version,
        origin: 510104,
        destination: 330200,
        transit: vec![p(340000)],
        vehicle: Vehicle::new("川A·D1234").unwrap(),
        place: Place::new("宁波市某电子厂").unwrap(),
        departure: now + 1800,
        arrival: now + 1800 + 20 * 3600,
        sealed_at: now,
        escort: Escort::new("张*").unwrap(),
        issuers: vec![p(510000)],
        people,
    };
    hcmr::manifest::sign(&m, key)
}

async fn check_manifest(n: &hcmr::node::NodeHandle, text: &str) -> proto::VerifyManifestResponse {
    codes(n)
        .await
        .verify_manifest(proto::VerifyManifestRequest {
            manifest: text.to_string(),
            checkpoint_id: "皖苏界G40收费站".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_replica_knows_the_versions_its_primary_saw_and_its_checks_are_reported_by_the_primary() {
    use hcmr::keyfile::NodeKeyFile as _;
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), 510000).await).await;
    let ah_cfg = init_node(dir.path(), 340000).await;
    let ah = start(&ah_cfg).await;
    conclude_with_manifests(
        &ah,
        &sc,
        &[(G, G)],
        &[(G, G)],
        hcmr::agreement::ManifestTerms::transit(),
        hcmr::agreement::ManifestTerms::none(),
    )
    .await;
    sync_now(&ah).await;
    let mut issued = Vec::new();
    for seq in 0..2 {
        issued.push(
            issue(&sc, subject("王建国", "510104", 300 + seq), G, 7 * 86_400)
                .await
                .code,
        );
    }
    let key = hcmr::keys::NodeKey::read_pem(&sc.dir.join("node.key")).unwrap();
    let v1 = sichuan_trip(&key, &issued, 1);
    let v2 = sichuan_trip(&key, &issued, 2);
    let r = start(&init_replica(dir.path(), &ah, "ah-r1").await).await;
    wait_replica_synced(&r).await;

    // The replica passes version 1; the primary then sees version 2.
    assert!(check_manifest(&r, &v1).await.pass);
    assert!(check_manifest(&ah, &v2).await.pass);
    // Version 1 is superseded at the replica too, once it has followed (bounded wait).
    let mut old = check_manifest(&r, &v1).await;
    for _ in 0..200 {
        if !old.pass {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        old = check_manifest(&r, &v1).await;
    }
    assert!(!old.pass, "{old:?}");
    assert_eq!(
        old.reasons[0].reason,
        proto::ManifestReason::Superseded as i32
    );

    // The replica's checks were handed to the primary, which signed the reports for Sichuan.
    r.shutdown().await.unwrap();
    let ah_key = hcmr::keys::NodeKey::read_pem(&ah.dir.join("node.key")).unwrap();
    ah.shutdown().await.unwrap();
    let store =
        hcmr::store::Store::open(&hcmr::node::Config::load(&ah_cfg).unwrap().data_dir).unwrap();
    let mut entries = store.trip_outbox(100).await.unwrap();
    entries.extend(store.trip_outbox_dead(100).await.unwrap());
    let mut reports: Vec<(u64, hcmr::manifest::ReportVerdict)> = entries
        .iter()
        .map(|e| {
            let rep = hcmr::manifest::SignedCheckReport::decode(&e.record).unwrap();
            assert!(rep.verify_signature(&ah_key.public()));
            assert_eq!(rep.report.checkpoint.as_str(), "皖苏界G40收费站");
            (rep.report.version, rep.report.verdict)
        })
        .collect();
    reports.sort_by_key(|(v, verdict)| (*v, *verdict as u8));
    use hcmr::manifest::ReportVerdict::{Pass, Stop};
    // Version 1 passed at the replica and stopped there later; version 2 passed at the primary.
    assert_eq!(reports, vec![(1, Pass), (1, Stop), (2, Pass)]);
    sc.shutdown().await.unwrap();
}
