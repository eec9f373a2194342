//! One audit log for the province (issue 19 item 4): a verify replica's audit records reach its
//! primary's log through ReplicaService.SubmitAuditBatch, each once, marked with the replica's
//! name; nobody but an enrolled replica may submit.
//!
//! - `an_enrolled_replicas_batches_are_taken_once_and_strangers_are_refused`: the primary's side
//!   over mutual TLS, with a replica certificate made from a real enrollment (EnrollReplica).

use crate::common;

use common::*;
use hcmr::proto;
use hcmr::proto::replica_service_client::ReplicaServiceClient;
use tonic::Code;

/// A replica identity enrolled at `primary` under `name`: its TLS key certified by the
/// primary (EnrollReplica), in a certificate with a version 2 binding.
async fn enrolled_identity(primary: &hcmr::node::NodeHandle, name: &str) -> hcmr::tls::TlsIdentity {
    let (key_der, spki) = hcmr::tls::TlsIdentity::generate_replica_key().unwrap();
    let r = operator(primary)
        .await
        .enroll_replica(proto::EnrollReplicaRequest {
            name: name.into(),
            spki,
        })
        .await
        .unwrap()
        .into_inner();
    hcmr::tls::TlsIdentity::replica(
        key_der,
        primary.province,
        &hcmr::tls::certificate_names(None),
        hcmr::tls::Certification {
            key: hcmr::keys::PublicKey::from_bytes(&r.certifying_key).unwrap(),
            signature: r.certification.as_slice().try_into().unwrap(),
        },
        hcmr::unix_now().secs() as i64,
    )
    .unwrap()
}

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
    let identity = enrolled_identity(&primary, "sc-r1").await;
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
