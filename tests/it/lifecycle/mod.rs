//! The trust lifecycle between real nodes on loopback: amendment and termination of agreements,
//! key rotation and withdrawal, revocations, peer sync (including a peer that is down or sends a
//! feed that does not verify), trust staleness, and offline bundles (library and binary).
//! Every wait is bounded.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hcmr::feed::{proof_of_possession, FeedEntry, FeedError, FeedState, Statement};
use hcmr::identity::SubjectHash;
use hcmr::keys::{Kid, NodeKey};
use hcmr::node::NodeHandle;
use hcmr::proto::federation_service_client::FederationServiceClient;
use hcmr::proto::{self, AgreementState, Reason, Verdict};
use hcmr::province::Province;
use tonic::{Code, Request, Response, Status};

mod agreements;
mod manifests_term;
mod offline;
mod rotation;
mod sync;
mod tracing_term;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

const RECOGNIZED: i32 = Verdict::Recognized as i32;
const NOT_RECOGNIZED: i32 = Verdict::NotRecognized as i32;
const UNSPECIFIED: i32 = proto::HealthStatus::Unspecified as i32;

fn province(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

/// (verdict, reason, local status) of a verification, for compact assertions.
fn outcome(v: &proto::VerifyHealthCodeResponse) -> (i32, i32, i32) {
    (v.verdict, v.reason, v.local_status)
}

fn recognized_as(status: i32) -> (i32, i32, i32) {
    (RECOGNIZED, Reason::Ok as i32, status)
}

fn refused(reason: Reason) -> (i32, i32, i32) {
    (NOT_RECOGNIZED, reason as i32, UNSPECIFIED)
}

/// Verifies `code` at `n` until the reason is `want` (at most `limit`); returns the last answer.
async fn verify_until(
    n: &NodeHandle,
    code: &str,
    want: Reason,
    limit: Duration,
) -> proto::VerifyHealthCodeResponse {
    let deadline = Instant::now() + limit;
    loop {
        let v = verify(n, code).await;
        if v.reason == want as i32 || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The view of version `version` in a node's agreement list.
fn version(list: &[proto::AgreementView], id: &str, version: u32) -> proto::AgreementView {
    list.iter()
        .find(|a| a.id == id && a.version == version)
        .unwrap_or_else(|| panic!("no {id} v{version} in {list:?}"))
        .clone()
}

/// A node's feed as GetFeed streams it to its peer `peer` (mutual TLS with the peer's node
/// certificate), from entry `from`.
async fn get_feed(n: &NodeHandle, peer: &NodeHandle, from: u64) -> Vec<proto::FeedEntry> {
    let mut client = match peer.tls_cert {
        Some(_) => federation_as(n, &tls_identity_of(peer)).await,
        None => FederationServiceClient::new(
            hcmr::client::channel(&n.endpoint, None, Duration::from_secs(30))
                .await
                .unwrap(),
        ),
    };
    let mut stream = client
        .get_feed(proto::GetFeedRequest {
            from_seq: from,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        out.push(m);
    }
    out
}

fn from_proto(m: &proto::FeedEntry) -> FeedEntry {
    FeedEntry::from_parts(
        m.entry.clone(),
        Kid::from_slice(&m.kid).unwrap(),
        m.signature.as_slice().try_into().unwrap(),
    )
    .unwrap()
}

fn to_proto(e: &FeedEntry) -> proto::FeedEntry {
    proto::FeedEntry {
        entry: e.encoded().to_vec(),
        kid: e.signer().0.to_vec(),
        signature: e.signature().to_vec(),
    }
}

/// The same entry bytes, signed by `key` instead (as "hcmr-feed-v1\0" || entry).
fn resigned(e: &FeedEntry, key: &NodeKey) -> FeedEntry {
    let mut msg = b"hcmr-feed-v1\0".to_vec();
    msg.extend_from_slice(e.encoded());
    FeedEntry::from_parts(e.encoded().to_vec(), key.kid(), key.sign(&msg)).unwrap()
}

/// The same entry with one bit of its signature flipped.
fn flipped_signature(e: &FeedEntry) -> FeedEntry {
    let mut sig = *e.signature();
    sig[17] ^= 0x01;
    FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), sig).unwrap()
}

fn node_dir(root: &Path, province: u32) -> std::path::PathBuf {
    root.join(province.to_string())
}

fn terminate_req(id: &str, effective_at: u64) -> proto::TerminateAgreementRequest {
    proto::TerminateAgreementRequest {
        id: id.to_string(),
        effective_at,
    }
}

fn create_req(
    peer: &NodeHandle,
    peer_kid: String,
    peer_codes_here: &[(i32, i32)],
    our_codes_there: &[(i32, i32)],
    amends: &str,
) -> proto::CreateAgreementRequest {
    let now = hcmr::unix_now();
    proto::CreateAgreementRequest {
        peer_endpoint: peer.endpoint.clone(),
        peer_codes_here: map(peer_codes_here),
        our_codes_there: map(our_codes_there),
        max_code_age_secs: 3600,
        max_trust_age_secs: 0,
        amends: amends.to_string(),
        expected_peer_kid: peer_kid,
        effective_from: (now - 10).secs(),
        effective_until: (now + 86_400).secs(),
        ..Default::default()
    }
}
