//! The federation of the demo: five nodes on loopback, and the calls an operator and a platform
//! make to them.

use super::scenario::Case;
use super::{DemoError, ANHUI, GUANGDONG, JIANGSU, SICHUAN, ZHEJIANG};
use crate::node::{convert, NodeHandle};
use crate::proto;
use crate::proto::federation_service_client::FederationServiceClient;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::proto::operator_service_client::OperatorServiceClient;
use crate::province::Province;
use crate::status::HealthStatus;

/// Where the demo's nodes live.
pub(super) enum Folder {
    /// Removed when dropped.
    Temp(tempfile::TempDir),
    /// Left in place for inspection (`hcmr demo --keep`).
    Kept(std::path::PathBuf),
}

impl Folder {
    /// The folder the nodes' folders go in.
    pub(super) fn path(&self) -> &std::path::Path {
        match self {
            Folder::Temp(t) => t.path(),
            Folder::Kept(p) => p,
        }
    }
}

/// The scenario's nodes, running on loopback, and the demo's caller at each.
pub(super) struct Federation {
    /// The nodes' folders; a temporary one is removed when the federation is dropped.
    _dir: Folder,
    /// The running nodes, one per province of the scenario.
    pub(super) nodes: Vec<NodeHandle>,
    /// The demo's API token at each node (every role: issuer, verifier, admin, organizer, receiver), by province code.
    tokens: Vec<(u32, zeroize::Zeroizing<String>)>,
}

impl Federation {
    /// Makes a node for each province of the scenario in `dir`, with a caller "demo" (roles
    /// issuer, verifier, admin, organizer, receiver), and starts them on loopback.
    pub(super) async fn start(dir: Folder) -> Result<Federation, DemoError> {
        let mut nodes = Vec::new();
        let mut tokens = Vec::new();
        for code in [SICHUAN, GUANGDONG, ZHEJIANG, ANHUI, JIANGSU] {
            let p = Province::from_code(code).map_err(|e| DemoError::Node(e.to_string()))?;
            let path = crate::node::init(
                p,
                &dir.path().join(code.to_string()),
                "127.0.0.1:0".parse().expect("a valid address"),
                None,
            )
            .await
            .map_err(|e| DemoError::Node(e.to_string()))?;
            let config =
                crate::node::Config::load(&path).map_err(|e| DemoError::Node(e.to_string()))?;
            // The demo plays each province's platform, checkpoints and operator at once.
            let token =
                crate::node::add_caller_offline(&config, "demo", &crate::callers::Role::ALL)
                    .await
                    .map_err(|e| DemoError::Node(e.to_string()))?;
            tokens.push((code, token));
            nodes.push(
                crate::node::spawn(&config)
                    .await
                    .map_err(|e| DemoError::Node(e.to_string()))?,
            );
        }
        Ok(Federation {
            _dir: dir,
            nodes,
            tokens,
        })
    }

    /// A channel to the node of `p` as the demo's caller: its certificate pinned, the token sent.
    pub(super) async fn connect(&self, p: u32) -> Result<crate::client::NodeChannel, DemoError> {
        let node = self
            .nodes
            .iter()
            .find(|n| n.province.code() == p)
            .expect("every scenario province has a node");
        let token = self
            .tokens
            .iter()
            .find(|(c, _)| *c == p)
            .map(|(_, t)| t.as_str());
        crate::client::connect(&node.endpoint, node.tls_cert.as_deref(), token)
            .await
            .map_err(|e| DemoError::Node(e.to_string()))
    }

    fn endpoint(&self, p: u32) -> &str {
        &self
            .nodes
            .iter()
            .find(|n| n.province.code() == p)
            .expect("every scenario province has a node")
            .endpoint
    }
}

pub(super) fn rpc(call: &'static str) -> impl Fn(tonic::Status) -> DemoError {
    move |status| DemoError::Rpc { call, status }
}

fn mapping(pairs: &[(HealthStatus, HealthStatus)]) -> Vec<proto::StatusMapping> {
    pairs
        .iter()
        .map(|(a, b)| proto::StatusMapping {
            issued: convert::status_to_proto(Some(*a)),
            counts_as: convert::status_to_proto(Some(*b)),
        })
        .collect()
}

/// Proposes at `proposer`, then lists and accepts at `acceptor`, as two operators would.
pub(super) async fn conclude(
    fed: &Federation,
    proposer: u32,
    acceptor: u32,
    peer_codes_here: &[(HealthStatus, HealthStatus)],
    our_codes_there: &[(HealthStatus, HealthStatus)],
    our_manifests_there: crate::agreement::ManifestTerms,
    tracing: bool,
) -> Result<String, DemoError> {
    use crate::agreement::ManifestRole::{Arrival, Transit};
    let now = crate::unix_now();
    // The acceptor's operator reads its kid from `hcmr info` and tells the proposer's operator
    // (by phone, in the memorandum): here, the same GetNodeInfo call.
    let info = FederationServiceClient::new(fed.connect(acceptor).await?)
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .map_err(rpc("GetNodeInfo"))?
        .into_inner();
    let peer_kid = info
        .keys
        .first()
        .map(|k| hex::encode(&k.kid))
        .unwrap_or_default();
    let created = OperatorServiceClient::new(fed.connect(proposer).await?)
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: fed.endpoint(acceptor).to_string(),
            expected_peer_kid: peer_kid,
            peer_codes_here: mapping(peer_codes_here),
            our_codes_there: mapping(our_codes_there),
            max_code_age_secs: 24 * 3600,
            max_trust_age_secs: 0,
            amends: String::new(),
            effective_from: (now - 60).secs(),
            effective_until: (now + 365 * 24 * 3600).secs(),
            our_manifests_transit: our_manifests_there.allows(Transit),
            our_manifests_arrival: our_manifests_there.allows(Arrival),
            // Both ways: each province may trace at the other (docs/tracing.md section 4).
            peer_tracing: tracing,
            our_tracing: tracing,
            ..Default::default()
        })
        .await
        .map_err(rpc("CreateAgreement"))?
        .into_inner()
        .agreement
        .ok_or_else(|| DemoError::Scenario("CreateAgreement returned no agreement".into()))?;
    let mut op = OperatorServiceClient::new(fed.connect(acceptor).await?);
    let pending = op
        .list_agreements(proto::ListAgreementsRequest {
            state: proto::AgreementState::AwaitingAcceptance as i32,
            ..Default::default()
        })
        .await
        .map_err(rpc("ListAgreements"))?
        .into_inner();
    if !pending.agreements.iter().any(|a| a.id == created.id) {
        return Err(DemoError::Scenario(format!(
            "agreement {} did not reach {acceptor}",
            created.id
        )));
    }
    let accepted = op
        .approve_agreement(proto::ApproveAgreementRequest {
            id: created.id.clone(),
        })
        .await
        .map_err(rpc("ApproveAgreement"))?
        .into_inner()
        .agreement
        .ok_or_else(|| DemoError::Scenario("ApproveAgreement returned no agreement".into()))?;
    if accepted.state != proto::AgreementState::Concluded as i32 {
        return Err(DemoError::Scenario(format!(
            "agreement {} not concluded",
            created.id
        )));
    }
    Ok(created.id)
}

/// Verifies `code` at the node of `at`, as one of its checkpoints.
pub(super) async fn verify_at(
    fed: &Federation,
    at: u32,
    code: &str,
) -> Result<proto::VerifyHealthCodeResponse, DemoError> {
    Ok(HealthCodeServiceClient::new(fed.connect(at).await?)
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.to_string(),
            checkpoint_id: format!("demo-{at}"),
        })
        .await
        .map_err(rpc("VerifyHealthCode"))?
        .into_inner())
}

/// Issues a code of `status` for the worker of `c` at its province's node, valid for
/// `code_lifetime_secs`.
pub(super) async fn issue(
    fed: &Federation,
    c: &Case,
    status: HealthStatus,
    code_lifetime_secs: u64,
) -> Result<proto::IssueHealthCodeResponse, DemoError> {
    issue_for(
        fed,
        c.from,
        &c.resident(),
        status,
        14 * 24 * 3600,
        code_lifetime_secs,
    )
    .await
}

/// Issues a code at province `at` for `resident`: `status` valid for `status_valid_for_secs`,
/// the code for `code_lifetime_secs` (seconds).
pub(super) async fn issue_for(
    fed: &Federation,
    at: u32,
    resident: &crate::synthetic::Resident<'_>,
    status: HealthStatus,
    status_valid_for_secs: u64,
    code_lifetime_secs: u64,
) -> Result<proto::IssueHealthCodeResponse, DemoError> {
    Ok(HealthCodeServiceClient::new(fed.connect(at).await?)
        .issue_health_code(resident.issue_request(
            status,
            status_valid_for_secs,
            code_lifetime_secs,
        ))
        .await
        .map_err(rpc("IssueHealthCode"))?
        .into_inner())
}

/// Has node `at` pull its peers now, as `hcmr sync` does.
pub(super) async fn sync(fed: &Federation, at: u32) -> Result<(), DemoError> {
    let r = OperatorServiceClient::new(fed.connect(at).await?)
        .sync_now(proto::SyncNowRequest {})
        .await
        .map_err(rpc("SyncNow"))?
        .into_inner();
    match r.peers.iter().find(|p| !p.ok) {
        Some(p) => Err(DemoError::Scenario(format!(
            "sync of {} at {at}: {}",
            p.province, p.error
        ))),
        None => Ok(()),
    }
}
