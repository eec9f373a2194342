//! One audit log for the province (issue 19 item 4): a verify replica's audit records reach its
//! primary's log through ReplicaService.SubmitAuditBatch, each once, marked with the replica's
//! name; nobody but an enrolled replica may submit.
//!
//! - `an_enrolled_replicas_batches_are_taken_once_and_strangers_are_refused`: the primary's side
//!   over mutual TLS, with a replica certificate made from a real enrollment (EnrollReplica).
//! - `a_replica_killed_with_sigkill_loses_no_audit_record`: a primary and a replica as real
//!   `hcmr serve` processes; verifications at the replica while the primary is down wait in its
//!   outbox; the replica is killed with SIGKILL and started again on the same folder, the
//!   primary too, and the primary's log then holds every one of them exactly once.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use hcmr::proto;
use hcmr::proto::federation_service_client::FederationServiceClient;
use hcmr::proto::health_code_service_client::HealthCodeServiceClient;
use hcmr::proto::operator_service_client::OperatorServiceClient;
use hcmr::proto::replica_service_client::ReplicaServiceClient;
use tonic::Code;

/// A verification record as a replica sends it.
fn record(n: u64) -> proto::AuditRecord {
    proto::AuditRecord {
        time: 1_700_000_000 + n,
        checkpoint_id: format!("replica-gate-{n}"),
        via: "grpc".into(),
        issuer_province: "340000".into(),
        verdict: proto::Verdict::Recognized as i32,
        reason: proto::Reason::Ok as i32,
        cti_hash: hex::encode([n as u8; 16]),
        manifest: None,
        trace: None,
        // Ignored: the primary names the replica from its certificate.
        replica: "someone-else".into(),
    }
}

fn batch(first: u64, last: u64) -> proto::SubmitAuditBatchRequest {
    proto::SubmitAuditBatchRequest {
        first_seq: first,
        records: (first..=last).map(record).collect(),
        instance: "00112233445566ff".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_replicas_batches_are_taken_once_and_strangers_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let primary = start(&init_node(root.path(), 510000).await).await;
    let identity = enrolled_replica_identity(&primary, "sc-r1").await;
    let mut replica = ReplicaServiceClient::new(node_channel_as(&primary, &identity).await);

    let r = replica.submit_audit_batch(batch(1, 3)).await.unwrap();
    assert_eq!(r.into_inner().stored_through, 3);
    // The answer was lost: the batch again, with two more.
    let r = replica.submit_audit_batch(batch(1, 5)).await.unwrap();
    assert_eq!(r.into_inner().stored_through, 5);
    // A gap: nothing stored, and the sequence number expected named.
    let e = replica.submit_audit_batch(batch(7, 7)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message().contains("must start at 6 or before"),
        "{}",
        e.message()
    );
    // A bad record refuses the batch, naming it.
    let mut bad = batch(6, 7);
    bad.records[1].verdict = 0;
    let e = replica.submit_audit_batch(bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("records[1].verdict: "),
        "{}",
        e.message()
    );

    let records = audit_records(&primary).await;
    let got: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.replica.clone(), r.checkpoint_id.clone()))
        .collect();
    let want: Vec<(String, String)> = (1..=5)
        .map(|n| ("sc-r1".to_string(), format!("replica-gate-{n}")))
        .collect();
    assert_eq!(got, want);
    let listed = operator(&primary)
        .await
        .list_replicas(proto::ListReplicasRequest {})
        .await
        .unwrap()
        .into_inner()
        .replicas;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].audit_records),
        ("sc-r1", 5)
    );

    // No client certificate (a caller's token only): UNAUTHENTICATED.
    let e = ReplicaServiceClient::new(channel(&primary).await)
        .submit_audit_batch(batch(6, 6))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{}", e.message());
    // Another province's node certificate: PERMISSION_DENIED.
    let stranger = node_identity(340000, &hcmr::keys::NodeKey::generate());
    let e = ReplicaServiceClient::new(node_channel_as(&primary, &stranger).await)
        .submit_audit_batch(batch(6, 6))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    // The primary's own province, its node certificate (not a replica's): PERMISSION_DENIED.
    let own = tls_identity_of(&primary);
    let e = ReplicaServiceClient::new(node_channel_as(&primary, &own).await)
        .submit_audit_batch(batch(6, 6))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    // A replica removed: its certificate no longer counts.
    operator(&primary)
        .await
        .remove_replica(proto::RemoveReplicaRequest {
            name: "sc-r1".into(),
        })
        .await
        .unwrap();
    let mut removed = ReplicaServiceClient::new(node_channel_as(&primary, &identity).await);
    let e = removed.submit_audit_batch(batch(6, 6)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    assert_eq!(audit_records(&primary).await.len(), 5);
    primary.shutdown().await.unwrap();
}

/// Starts `hcmr serve` for `config` as a process (its log in `serve.log` beside the config).
fn spawn_serve(config: &Path) -> crate::crash::Server {
    let log = config.with_file_name("serve.log");
    crate::crash::Server(
        Command::new(env!("CARGO_BIN_EXE_hcmr"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The log of the process serving `config`.
fn log_of(config: &Path) -> String {
    std::fs::read_to_string(config.with_file_name("serve.log")).unwrap_or_default()
}

/// A client channel to a node process at `endpoint` pinning `cert`, as the test caller; `None`
/// while it does not answer.
async fn connect(endpoint: &str, cert: &Path, token: &str) -> Option<hcmr::client::NodeChannel> {
    hcmr::client::connect(endpoint, Some(cert), Some(token))
        .await
        .ok()
}

/// Waits (bounded: 1,200 × 50 ms) until the replica at `endpoint` has synced with its primary
/// (GetNodeInfo names a state time); panics with its log otherwise.
async fn wait_synced(endpoint: &str, cert: &Path, token: &str, config: &Path) {
    for _ in 0..1_200 {
        if let Some(ch) = connect(endpoint, cert, token).await {
            if let Ok(info) = FederationServiceClient::new(ch)
                .get_node_info(proto::GetNodeInfoRequest {})
                .await
            {
                if info.into_inner().state_synced_at > 0 {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica did not sync: {}", log_of(config));
}

/// The value of metric `name` (no labels) in a Prometheus text body.
fn metric(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_with_sigkill_loses_no_audit_record() {
    /// Verifications made at the replica.
    const N: u64 = 40;
    let root = tempfile::tempdir().unwrap();
    let sc = hcmr::province::Province::from_code(510000).unwrap();

    // The primary, a process at a fixed port.
    let p_port = free_port();
    let p_url = format!("https://127.0.0.1:{p_port}");
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{p_port}").parse().unwrap());
    o.endpoint = Some(p_url.clone());
    let p_cfg = hcmr::node::init_node(sc, &root.path().join("sc"), &o)
        .await
        .unwrap();
    add_test_caller(&p_cfg).await;
    let p_dir = root.path().join("sc");
    let p_cert = p_dir.join("tls/node.crt");
    let token = std::fs::read_to_string(p_dir.join(TEST_TOKEN_FILE)).unwrap();
    let primary = crate::crash::serve(&p_cfg, &p_url, &p_cert, &token).await;
    let mut p_codes = HealthCodeServiceClient::new(connect(&p_url, &p_cert, &token).await.unwrap());
    let code = p_codes
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("张三", "510104", 1)),
            status: G,
            status_valid_until: (hcmr::unix_now() + 7 * 86_400).secs(),
            code_lifetime_secs: 3_600,
            qr_format: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .code;

    // The replica, enrolled by `init --replica-of`, a process at fixed ports (gRPC, metrics).
    let (r_port, m_port) = (free_port(), free_port());
    let r_url = format!("https://127.0.0.1:{r_port}");
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{r_port}").parse().unwrap());
    o.endpoint = Some(r_url.clone());
    let r_dir = root.path().join("sc-r1");
    let admin = std::fs::read_to_string(p_dir.join(hcmr::node::ADMIN_TOKEN_FILE)).unwrap();
    let r_cfg = hcmr::node::init_replica(
        sc,
        &r_dir,
        &o,
        &hcmr::node::ReplicaInit {
            primary: p_url.clone(),
            primary_cert: p_cert.clone(),
            admin_token: zeroize::Zeroizing::new(admin.trim().to_string()),
            name: "sc-r1".into(),
        },
    )
    .await
    .unwrap();
    crate::operations::enable_metrics(&r_cfg);
    let text = std::fs::read_to_string(&r_cfg).unwrap();
    std::fs::write(
        &r_cfg,
        text.replace(
            "metrics_listen = \"127.0.0.1:0\"",
            &format!("metrics_listen = \"127.0.0.1:{m_port}\""),
        ),
    )
    .unwrap();
    let r_cert: PathBuf = r_dir.join("tls/node.crt");
    let replica = spawn_serve(&r_cfg);
    wait_synced(&r_url, &r_cert, &token, &r_cfg).await;

    // The primary goes away; the replica verifies on, and its records wait in its outbox.
    drop(primary);
    let mut r_codes = HealthCodeServiceClient::new(connect(&r_url, &r_cert, &token).await.unwrap());
    for i in 0..N {
        let v = r_codes
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: code.clone(),
                checkpoint_id: format!("replica-gate-{i}"),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.reason, proto::Reason::Ok as i32, "{}", v.detail);
    }
    let m_addr: std::net::SocketAddr = format!("127.0.0.1:{m_port}").parse().unwrap();
    let mut pending = None;
    for _ in 0..200 {
        let (_, body) = crate::operations::get_metrics(m_addr, Some(&r_cert)).await;
        pending = metric(&body, "hcmr_replica_audit_pending");
        if pending == Some(N) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, Some(N), "{}", log_of(&r_cfg));

    // kill -9, then both back on their folders.
    drop(replica);
    let primary = crate::crash::serve(&p_cfg, &p_url, &p_cert, &token).await;
    let replica = spawn_serve(&r_cfg);
    let mut p_ops = OperatorServiceClient::new(connect(&p_url, &p_cert, &token).await.unwrap());
    let mut from_r1 = Vec::new();
    for _ in 0..1_200 {
        from_r1 = p_ops
            .list_audit_records(proto::ListAuditRecordsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .records
            .into_iter()
            .filter(|r| r.replica == "sc-r1")
            .collect::<Vec<_>>();
        if from_r1.len() as u64 >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got: Vec<String> = from_r1.iter().map(|r| r.checkpoint_id.clone()).collect();
    got.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("replica-gate-{i}")).collect();
    want.sort();
    assert_eq!(got, want, "replica log: {}", log_of(&r_cfg));
    assert!(from_r1
        .iter()
        .all(|r| r.verdict == proto::Verdict::Recognized as i32 && r.issuer_province == "510000"));
    // The primary counted each once, and the replica's outbox is empty.
    let listed = p_ops
        .list_replicas(proto::ListReplicasRequest {})
        .await
        .unwrap()
        .into_inner()
        .replicas;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].audit_records, N);
    let mut body = String::new();
    for _ in 0..200 {
        body = crate::operations::get_metrics(m_addr, Some(&r_cert))
            .await
            .1;
        // The count follows the removal: wait for both.
        if metric(&body, "hcmr_replica_audit_pending") == Some(0)
            && metric(&body, "hcmr_replica_audit_shipped_total") == Some(N)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(&body, "hcmr_replica_audit_pending"),
        Some(0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "hcmr_replica_audit_shipped_total"),
        Some(N),
        "{body}"
    );
    // Nothing arrived twice once everything was acknowledged.
    let again = p_ops
        .list_audit_records(proto::ListAuditRecordsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(
        again.iter().filter(|r| r.replica == "sc-r1").count() as u64,
        N
    );
    drop(replica);
    drop(primary);
}
