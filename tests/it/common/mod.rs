//! Helpers shared by the integration tests: real nodes on 127.0.0.1 (port 0), real gRPC clients.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hcmr::callers::Role;
use hcmr::client::NodeChannel;
use hcmr::node::{Config, NodeHandle};
use hcmr::proto;
use hcmr::proto::federation_service_client::FederationServiceClient;
use hcmr::proto::health_code_service_client::HealthCodeServiceClient;
use hcmr::proto::operator_service_client::OperatorServiceClient;
use hcmr::province::Province;

/// The file, in a node's folder, of the test caller's token (every role).
pub const TEST_TOKEN_FILE: &str = "test.token";

/// Creates a node of `province` under `root` (TLS on, as `hcmr init` makes it) with a caller
/// `test` holding every role, whose token is in `TEST_TOKEN_FILE`; returns its config path.
pub async fn init_node(root: &Path, province: u32) -> PathBuf {
    let p = Province::from_code(province).unwrap();
    let path = hcmr::node::init(
        p,
        &root.join(province.to_string()),
        "127.0.0.1:0".parse().unwrap(),
        None,
    )
    .await
    .unwrap();
    add_test_caller(&path).await;
    path
}

/// Adds the caller `test` (every role) to a stopped node and writes its token file.
pub async fn add_test_caller(config: &Path) {
    let c = Config::load(config).unwrap();
    let token = hcmr::node::add_caller_offline(&c, "test", &Role::ALL)
        .await
        .unwrap();
    std::fs::write(
        config.parent().unwrap().join(TEST_TOKEN_FILE),
        token.as_bytes(),
    )
    .unwrap();
}

/// The test caller's token of a node.
pub fn test_token(n: &NodeHandle) -> String {
    std::fs::read_to_string(n.dir.join(TEST_TOKEN_FILE))
        .unwrap()
        .trim()
        .to_string()
}

/// Starts the node of a config file on `clock`: tests step a `Clock::Manual` (shared by the
/// nodes of a scenario) instead of sleeping until a time has passed.
pub async fn start_on(config: &Path, clock: &hcmr::clock::Clock) -> NodeHandle {
    hcmr::node::spawn_with_clock(&Config::load(config).unwrap(), clock.clone())
        .await
        .unwrap()
}

/// Starts the node of a config file.
pub async fn start(config: &Path) -> NodeHandle {
    hcmr::node::spawn(&Config::load(config).unwrap())
        .await
        .unwrap()
}

/// A channel to `n` as the test caller: the node's certificate pinned, the test token sent.
pub async fn channel(n: &NodeHandle) -> NodeChannel {
    channel_as(n, Some(&test_token(n))).await
}

/// A channel to `n` with `token` (or none).
pub async fn channel_as(n: &NodeHandle, token: Option<&str>) -> NodeChannel {
    hcmr::client::connect(&n.endpoint, n.tls_cert.as_deref(), token)
        .await
        .unwrap()
}

pub async fn codes(n: &NodeHandle) -> HealthCodeServiceClient<NodeChannel> {
    HealthCodeServiceClient::new(channel(n).await)
}

/// HealthCodeService at `n` as the caller of `token` (`None`: no token).
pub async fn codes_as(n: &NodeHandle, token: Option<&str>) -> HealthCodeServiceClient<NodeChannel> {
    HealthCodeServiceClient::new(channel_as(n, token).await)
}

pub async fn operator(n: &NodeHandle) -> OperatorServiceClient<NodeChannel> {
    OperatorServiceClient::new(channel(n).await)
}

pub async fn federation(n: &NodeHandle) -> FederationServiceClient<NodeChannel> {
    FederationServiceClient::new(channel(n).await)
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

/// The testkit's synthetic resident `name` of `address` (6 digits) with sequence `seq`, as an
/// issue request's subject.
pub fn subject(name: &str, address: &str, seq: u16) -> proto::Subject {
    let p = hcmr_core::testkit::person(name, address, seq);
    proto::Subject {
        name: p.name,
        document_type: proto::DocumentType::ResidentIdentityCard as i32,
        document_number: p.document_number,
    }
}

/// The document number of the synthetic resident of `address` with sequence `seq` (born on
/// the testkit's [`hcmr_core::testkit::BIRTH`], like every [`subject`]).
pub fn document_number(address: &str, seq: u16) -> String {
    hcmr_core::testkit::person("", address, seq).document_number
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
            status_valid_until: (hcmr::unix_now() + 7 * 86_400).secs(),
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
pub fn rewrite_setting(config: &Path, key: &str, value: &str) {
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
    conclude_request(
        proposer,
        acceptor,
        proto::CreateAgreementRequest {
            peer_codes_here: map(peer_codes_here),
            our_codes_there: map(our_codes_there),
            max_code_age_secs: 3600,
            max_trust_age_secs,
            effective_from: (now - 10).secs(),
            effective_until: (now + 86_400).secs(),
            ..Default::default()
        },
    )
    .await
}

/// As [`conclude`], with the trip manifests term of each direction (docs/transport.md section
/// 4): `proposer_accepts` is what the proposer's node accepts of the acceptor's manifests (the
/// direction acceptor -> proposer), `acceptor_accepts` what the acceptor's node accepts of the
/// proposer's. The window runs from 10 s before the wall clock for a day.
pub async fn conclude_with_manifests(
    proposer: &NodeHandle,
    acceptor: &NodeHandle,
    peer_codes_here: &[(i32, i32)],
    our_codes_there: &[(i32, i32)],
    proposer_accepts: hcmr::agreement::ManifestTerms,
    acceptor_accepts: hcmr::agreement::ManifestTerms,
) -> String {
    use hcmr::agreement::ManifestRole::{Arrival, Transit};
    let now = hcmr::unix_now();
    conclude_request(
        proposer,
        acceptor,
        proto::CreateAgreementRequest {
            peer_codes_here: map(peer_codes_here),
            our_codes_there: map(our_codes_there),
            max_code_age_secs: 3600,
            effective_from: (now - 10).secs(),
            effective_until: (now + 86_400).secs(),
            peer_manifests_transit: proposer_accepts.allows(Transit),
            peer_manifests_arrival: proposer_accepts.allows(Arrival),
            our_manifests_transit: acceptor_accepts.allows(Transit),
            our_manifests_arrival: acceptor_accepts.allows(Arrival),
            ..Default::default()
        },
    )
    .await
}

/// Sends `request` (its endpoint and expected kid set to `acceptor`'s) to `proposer`, and
/// accepts the proposal at `acceptor`; returns the agreement id.
async fn conclude_request(
    proposer: &NodeHandle,
    acceptor: &NodeHandle,
    request: proto::CreateAgreementRequest,
) -> String {
    let created = operator(proposer)
        .await
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: acceptor.endpoint.clone(),
            expected_peer_kid: kid_of(acceptor).await,
            ..request
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(created.state, proto::AgreementState::Proposed as i32);
    let accepted = approve(acceptor, &created.id).await;
    assert_eq!(accepted.state, proto::AgreementState::Concluded as i32);
    created.id
}

/// Operator ApproveAgreement of the proposal `id` at `n`: the agreement as it stands after.
pub async fn approve(n: &NodeHandle, id: &str) -> proto::AgreementView {
    operator(n)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap()
}

/// Every agreement version stored at `n`, oldest first.
pub async fn agreements(n: &NodeHandle) -> Vec<proto::AgreementView> {
    operator(n)
        .await
        .list_agreements(proto::ListAgreementsRequest::default())
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
    let path = hcmr::node::init_with_page(
        p,
        &root.join(province.to_string()),
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    add_test_caller(&path).await;
    path
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

/// Creates a node without TLS (loopback development mode: federation calls are not
/// authenticated), with the test caller; returns its config path.
pub async fn init_node_plaintext(root: &Path, province: u32) -> PathBuf {
    let p = Province::from_code(province).unwrap();
    let mut o = hcmr::node::InitOptions::new("127.0.0.1:0".parse().unwrap());
    o.tls = false;
    let path = hcmr::node::init_node(p, &root.join(province.to_string()), &o)
        .await
        .unwrap();
    add_test_caller(&path).await;
    path
}

/// The TLS identity (node certificate and key) of a running node, read from its folder.
pub fn tls_identity_of(n: &NodeHandle) -> hcmr::tls::TlsIdentity {
    hcmr::tls::TlsIdentity::load(
        &n.dir.join("tls/node.crt"),
        &n.dir.join("tls/node.key"),
        &hcmr::keyfile::KeyProtection::Plain,
    )
    .unwrap()
}

/// A node identity of `province` certified by `key` (a stranger's, an impostor's).
pub fn node_identity(province: u32, key: &hcmr::keys::NodeKey) -> hcmr::tls::TlsIdentity {
    hcmr::tls::TlsIdentity::generate(
        Province::from_code(province).unwrap(),
        key,
        &hcmr::tls::certificate_names(None),
        hcmr::unix_now().secs() as i64,
    )
    .unwrap()
}

/// A federation client of `n` that presents `identity` as its node certificate (mutual TLS),
/// as a peer node does; on a node without TLS, a plain client.
pub async fn federation_as(
    n: &NodeHandle,
    identity: &hcmr::tls::TlsIdentity,
) -> FederationServiceClient<tonic::transport::Channel> {
    FederationServiceClient::new(node_channel_as(n, identity).await)
}

/// A channel to `n` presenting `identity` as a node certificate (see [`federation_as`]).
pub async fn node_channel_as(
    n: &NodeHandle,
    identity: &hcmr::tls::TlsIdentity,
) -> tonic::transport::Channel {
    let tls = if n.endpoint.starts_with("https://") {
        let own = std::sync::Arc::new(hcmr::tls::CertSource(arc_swap::ArcSwap::new(
            identity.certified_key().unwrap(),
        )));
        Some(hcmr::tls::peer_client_config(own, Some(n.province), |_| true).unwrap())
    } else {
        None
    };
    hcmr::client::channel(&n.endpoint, tls, std::time::Duration::from_secs(30))
        .await
        .unwrap()
}

/// The `hcmr` binary set up to talk to `n` as the test caller (URL, pinned certificate and
/// token through HCMR_NODE, HCMR_TLS_CERT and HCMR_TOKEN_FILE).
pub fn cli(n: &NodeHandle) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"));
    c.env("HCMR_NODE", &n.endpoint)
        .env("HCMR_TOKEN_FILE", n.dir.join(TEST_TOKEN_FILE))
        .env_remove("HCMR_DIR")
        .env_remove("HCMR_TOKEN");
    match &n.tls_cert {
        Some(cert) => c.env("HCMR_TLS_CERT", cert),
        None => c.env_remove("HCMR_TLS_CERT"),
    };
    c
}

/// The first page (1,000 records) of the access log of `n`, as it is now.
pub async fn access_log(n: &NodeHandle) -> Vec<proto::AccessDenial> {
    operator(n)
        .await
        .list_access_denials(proto::ListAccessDenialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .denials
}

/// The access log of `n` once its records count at least `at_least` refusals (the log is
/// written in the background; waits at most 5 seconds).
pub async fn denials(n: &NodeHandle, at_least: u64) -> Vec<proto::AccessDenial> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let d = access_log(n).await;
        if refusals(&d) >= at_least || std::time::Instant::now() > deadline {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The refusals that access-log records count.
pub fn refusals(log: &[proto::AccessDenial]) -> u64 {
    log.iter().map(|d| d.count).sum()
}

/// Creates a verify replica `name` of the running `primary` under `root/name` (as `hcmr init
/// --replica-of` does: enrolled at the primary with its admin token), and gives it the
/// primary's test token file (callers follow from the primary); returns its config path.
pub async fn init_replica(root: &Path, primary: &NodeHandle, name: &str) -> PathBuf {
    let dir = root.join(name);
    let token = std::fs::read_to_string(primary.dir.join(hcmr::node::ADMIN_TOKEN_FILE)).unwrap();
    let path = hcmr::node::init_replica(
        primary.province,
        &dir,
        &hcmr::node::InitOptions::new("127.0.0.1:0".parse().unwrap()),
        &hcmr::node::ReplicaInit {
            primary: primary.endpoint.clone(),
            primary_cert: primary.tls_cert.clone().unwrap(),
            admin_token: zeroize::Zeroizing::new(token.trim().to_string()),
            name: name.to_string(),
        },
    )
    .await
    .unwrap();
    std::fs::copy(primary.dir.join(TEST_TOKEN_FILE), dir.join(TEST_TOKEN_FILE)).unwrap();
    path
}

/// Waits (bounded: 400 × 25 ms) until the replica `r` has synced with its primary (GetNodeInfo
/// names a state time); panics otherwise.
pub async fn wait_replica_synced(r: &NodeHandle) {
    for _ in 0..400 {
        let info = FederationServiceClient::new(channel_as(r, None).await)
            .get_node_info(proto::GetNodeInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        if info.state_synced_at > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("replica {} did not sync with its primary", r.endpoint);
}

/// A verify replica's TLS identity named `name`, enrolled at `primary` (OperatorService
/// EnrollReplica as the test caller, an admin): a fresh key, certified by the primary, in a
/// certificate with the replica binding. Present it with [`node_channel_as`] or
/// [`federation_as`].
pub async fn enrolled_replica_identity(primary: &NodeHandle, name: &str) -> hcmr::tls::TlsIdentity {
    let (key_der, spki) = hcmr::tls::TlsIdentity::generate_replica_key().unwrap();
    let r = operator(primary)
        .await
        .enroll_replica(proto::EnrollReplicaRequest {
            name: name.to_string(),
            spki,
        })
        .await
        .unwrap()
        .into_inner();
    let certification = hcmr::tls::Certification {
        key: hcmr::keys::PublicKey::from_bytes(&r.certifying_key).unwrap(),
        signature: r.certification.as_slice().try_into().unwrap(),
    };
    hcmr::tls::TlsIdentity::replica(
        key_der,
        primary.province,
        &hcmr::tls::certificate_names(None),
        certification,
        hcmr::unix_now().secs() as i64,
    )
    .unwrap()
}

/// Turns a node's feed watches off (`peer_watch = false` in its hcmr.toml): it learns its peers'
/// feeds only by the pull every `sync_interval_secs` and `SyncNow`, as a test of polling needs.
pub fn poll_only(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let (head, rest) = text.split_once("\nprovince = ").unwrap();
    std::fs::write(
        config,
        format!("{head}\npeer_watch = false\nprovince = {rest}"),
    )
    .unwrap();
}

/// A port on 127.0.0.1 that is free now, for a process to bind later (a node restarted at the
/// same address, a load balancer's backend). Taken at random below Linux's ephemeral range
/// (32768 to 60999 by default): a port the kernel hands out for port 0 is soon handed to
/// another test's outgoing connection or listener, before the process it is meant for binds it
/// (seen in CI: "Address already in use").
pub fn free_port() -> u16 {
    // Below Linux's ephemeral range (32768 to 60999 by default): a port the kernel hands out for
    // port 0 is soon handed to another test's outgoing connection or listener, before the
    // process this port is meant for binds it (seen: "Address already in use" in CI).
    for _ in 0..1000 {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), 20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000 to 32000 on 127.0.0.1");
}
