//! Helpers shared by the integration tests: real nodes on 127.0.0.1 (port 0), real gRPC clients.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hcmr::node::{Config, NodeHandle};
use hcmr::proto;
use hcmr::proto::federation_service_client::FederationServiceClient;
use hcmr::proto::health_code_service_client::HealthCodeServiceClient;
use hcmr::proto::operator_service_client::OperatorServiceClient;
use hcmr::province::Province;
use tonic::transport::Channel;

/// Creates a node of `province` under `root` and returns its config path.
pub async fn init_node(root: &Path, province: u32) -> PathBuf {
    let p = Province::from_code(province).unwrap();
    hcmr::node::init(
        p,
        &root.join(province.to_string()),
        "127.0.0.1:0".parse().unwrap(),
        None,
    )
    .await
    .unwrap()
}

/// Starts the node of a config file.
pub async fn start(config: &Path) -> NodeHandle {
    hcmr::node::spawn(&Config::load(config).unwrap())
        .await
        .unwrap()
}

pub async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn codes(n: &NodeHandle) -> HealthCodeServiceClient<Channel> {
    HealthCodeServiceClient::new(channel(&n.endpoint).await)
}

pub async fn operator(n: &NodeHandle) -> OperatorServiceClient<Channel> {
    OperatorServiceClient::new(channel(&n.endpoint).await)
}

pub async fn federation(n: &NodeHandle) -> FederationServiceClient<Channel> {
    FederationServiceClient::new(channel(&n.endpoint).await)
}

pub fn map(pairs: &[(i32, i32)]) -> Vec<proto::StatusMapping> {
    pairs
        .iter()
        .map(|(a, b)| proto::StatusMapping {
            issued: *a,
            counts_as: *b,
        })
        .collect()
}

pub const G: i32 = proto::HealthStatus::Green as i32;
pub const Y: i32 = proto::HealthStatus::Yellow as i32;
pub const R: i32 = proto::HealthStatus::Red as i32;

/// The kid (hex) of a node's current key, as its operator reads it from `hcmr info`.
pub async fn kid_of(n: &NodeHandle) -> String {
    let info = federation(n)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    hex::encode(&info.keys[0].kid)
}

/// Proposes at `proposer` and accepts at `acceptor`; returns the agreement id.
pub async fn conclude(
    proposer: &NodeHandle,
    acceptor: &NodeHandle,
    peer_codes_here: &[(i32, i32)],
    our_codes_there: &[(i32, i32)],
) -> String {
    conclude_with_trust_age(proposer, acceptor, peer_codes_here, our_codes_there, 0).await
}

/// A synthetic resident of `address` (6 digits) with a valid GB 11643 number.
pub fn subject(name: &str, address: &str, seq: u16) -> proto::Subject {
    proto::Subject {
        name: name.to_string(),
        document_type: proto::DocumentType::ResidentIdentityCard as i32,
        document_number: hcmr::identity::synthetic_resident_id(address, "19900101", seq),
    }
}

/// Issues a code at `n`.
pub async fn issue(
    n: &NodeHandle,
    subject: proto::Subject,
    status: i32,
    lifetime: u64,
) -> proto::IssueHealthCodeResponse {
    codes(n)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject),
            status,
            status_valid_until: hcmr::unix_now() + 7 * 86_400,
            code_lifetime_secs: lifetime,
            qr_format: 0,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Verifies a code at `n`.
pub async fn verify(n: &NodeHandle, code: &str) -> proto::VerifyHealthCodeResponse {
    codes(n)
        .await
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.to_string(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Rewrites one `key = value` line of a node's hcmr.toml (the file `init` wrote); panics if the
/// setting is not there.
fn rewrite_setting(config: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(&format!("{key} "))
                || l.trim_start().starts_with(&format!("{key}="))
            {
                found = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "{key} not in {}", config.display());
    std::fs::write(config, out.join("\n") + "\n").unwrap();
}

/// Sets `sync_interval_secs` in a node's hcmr.toml (init writes 30).
pub fn set_sync_interval(config: &Path, secs: u64) {
    rewrite_setting(config, "sync_interval_secs", &secs.to_string());
}

/// Sets `listen` in a node's hcmr.toml to the address the node is bound to now, so that after a
/// restart it serves on the same port and its peers' recorded endpoint still reaches it.
pub fn pin_listen(config: &Path, n: &NodeHandle) {
    rewrite_setting(config, "listen", &format!("\"{}\"", n.addr));
}

/// As [`conclude`], with a staleness limit on each side's copy of the other's trust state.
pub async fn conclude_with_trust_age(
    proposer: &NodeHandle,
    acceptor: &NodeHandle,
    peer_codes_here: &[(i32, i32)],
    our_codes_there: &[(i32, i32)],
    max_trust_age_secs: u64,
) -> String {
    let now = hcmr::unix_now();
    let peer_kid = kid_of(acceptor).await;
    let created = operator(proposer)
        .await
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: acceptor.endpoint.clone(),
            peer_codes_here: map(peer_codes_here),
            our_codes_there: map(our_codes_there),
            max_code_age_secs: 3600,
            max_trust_age_secs,
            amends: String::new(),
            expected_peer_kid: peer_kid,
            effective_from: now - 10,
            effective_until: now + 86_400,
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(created.state, proto::AgreementState::Proposed as i32);
    let accepted = operator(acceptor)
        .await
        .approve_agreement(proto::ApproveAgreementRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(accepted.state, proto::AgreementState::Concluded as i32);
    created.id
}

/// Every agreement version stored at `n`, oldest first.
pub async fn agreements(n: &NodeHandle) -> Vec<proto::AgreementView> {
    operator(n)
        .await
        .list_agreements(proto::ListAgreementsRequest { state: 0 })
        .await
        .unwrap()
        .into_inner()
        .agreements
}

/// Operator SyncNow at `n`: one result per peer.
pub async fn sync_now(n: &NodeHandle) -> Vec<proto::PeerSyncResult> {
    operator(n)
        .await
        .sync_now(proto::SyncNowRequest {})
        .await
        .unwrap()
        .into_inner()
        .peers
}

/// As [`init_node`], with the checkpoint web page on a free loopback port (see
/// `NodeHandle::http_addr` once started).
pub async fn init_node_with_page(root: &Path, province: u32) -> PathBuf {
    let p = Province::from_code(province).unwrap();
    hcmr::node::init_with_page(
        p,
        &root.join(province.to_string()),
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap()
}

/// Operator ListAuditRecords at `n`: every record, oldest first.
pub async fn audit_records(n: &NodeHandle) -> Vec<proto::AuditRecord> {
    operator(n)
        .await
        .list_audit_records(proto::ListAuditRecordsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records
}

/// Every file below `dir` (for scanning stored data for personal data).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
