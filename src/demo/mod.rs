//! The main job: a local federation of five province nodes on loopback, doing what the March 2020
//! memoranda describe, through the same gRPC calls an operator and a platform would make.
//!
//! Sichuan 510000, Guangdong 440000, Zhejiang 330000, Anhui 340000 and Jiangsu 320000 each run a
//! node. Agreements: Sichuan-Guangdong (Guangdong's scheme has only green and red, so it counts a
//! Sichuan yellow as red), Sichuan-Zhejiang and Anhui-Zhejiang (all three colours as they are).
//! Jiangsu has none. Sichuan and Anhui issue codes for synthetic migrant workers (made-up names,
//! ID numbers with valid GB 11643 check characters); Guangdong and Zhejiang verify them at their
//! checkpoints. Every verdict is compared with what the scenario expects.

use std::io::Write;
use std::time::{Duration, Instant};

use coset::{CborSerializable, CoseSign1};

use crate::code::{transport, Claims};
use crate::identity::synthetic_resident_id;
use crate::node::{convert, NodeHandle};
use crate::proto;
use crate::proto::federation_service_client::FederationServiceClient;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::proto::operator_service_client::OperatorServiceClient;
use crate::province::Province;
use crate::status::HealthStatus;

/// Errors that stop the demo before it can judge the scenario.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A node could not be created or started.
    #[error("starting a node: {0}")]
    Node(String),
    /// A gRPC call failed.
    #[error("gRPC call {call}: {status}")]
    Rpc {
        /// Which call.
        call: &'static str,
        /// The status returned.
        status: tonic::Status,
    },
    /// Writing the table failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// Something the scenario relies on did not happen.
    #[error("{0}")]
    Scenario(String),
}

/// The demo's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOutcome {
    /// Verifications made.
    pub checks: usize,
    /// Verdicts recognized.
    pub recognized: usize,
    /// Verdicts that differ from the scenario's expectation (0 on success).
    pub mismatches: usize,
    /// Access checks made (calls that must be refused or admitted).
    pub access_checks: usize,
    /// Access checks whose outcome differs from the expectation (0 on success).
    pub access_mismatches: usize,
}

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const ZHEJIANG: u32 = 330000;
const ANHUI: u32 = 340000;
const JIANGSU: u32 = 320000;

/// How a code is altered before it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Twist {
    /// Shown as issued.
    None,
    /// Its status edited to green after signing, the signature kept.
    EditedToGreen,
    /// Issued with a one-second lifetime and shown after it ran out.
    Expired,
}

/// One row of the scenario.
struct Case {
    name: &'static str,
    address: &'static str,
    birth: &'static str,
    seq: u16,
    from: u32,
    to: u32,
    status: HealthStatus,
    twist: Twist,
    expect: Result<HealthStatus, proto::Reason>,
}

/// Every person of the scenario: (full name, GB 11643 document number). For the privacy check,
/// which searches the demo's data and logs for them.
pub fn people() -> Vec<(String, String)> {
    cases()
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                synthetic_resident_id(c.address, c.birth, c.seq),
            )
        })
        .collect()
}

fn cases() -> Vec<Case> {
    use HealthStatus::*;
    let c = |name, address, birth, seq, from, to, status, twist, expect| Case {
        name,
        address,
        birth,
        seq,
        from,
        to,
        status,
        twist,
        expect,
    };
    use proto::Reason as R;
    use Twist::*;
    vec![
        c(
            "王建国",
            "510104",
            "19850312",
            131,
            SICHUAN,
            GUANGDONG,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "李秀英",
            "511302",
            "19900721",
            242,
            SICHUAN,
            GUANGDONG,
            Yellow,
            None,
            Ok(Red),
        ),
        c(
            "张伟",
            "510802",
            "19780105",
            311,
            SICHUAN,
            GUANGDONG,
            Red,
            None,
            Ok(Red),
        ),
        c(
            "刘洋",
            "511602",
            "19951130",
            57,
            SICHUAN,
            ZHEJIANG,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "陈静",
            "510104",
            "19881018",
            426,
            SICHUAN,
            ZHEJIANG,
            Yellow,
            None,
            Ok(Yellow),
        ),
        c(
            "杨帆",
            "341202",
            "19920203",
            173,
            ANHUI,
            ZHEJIANG,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "赵敏",
            "340102",
            "19870614",
            288,
            ANHUI,
            ZHEJIANG,
            Yellow,
            None,
            Ok(Yellow),
        ),
        c(
            "黄磊",
            "341602",
            "19830909",
            95,
            ANHUI,
            ZHEJIANG,
            Red,
            None,
            Ok(Red),
        ),
        c(
            "周杰",
            "341202",
            "19960427",
            139,
            ANHUI,
            GUANGDONG,
            Green,
            None,
            Err(R::NoAgreement),
        ),
        c(
            "吴芳",
            "320102",
            "19910816",
            264,
            JIANGSU,
            ZHEJIANG,
            Green,
            None,
            Err(R::NoAgreement),
        ),
        c(
            "徐强",
            "510104",
            "19800222",
            35,
            SICHUAN,
            GUANGDONG,
            Yellow,
            EditedToGreen,
            Err(R::BadSignature),
        ),
        c(
            "孙丽",
            "511302",
            "19930505",
            148,
            SICHUAN,
            GUANGDONG,
            Green,
            Expired,
            Err(R::Expired),
        ),
        c(
            "马超",
            "440106",
            "19890101",
            77,
            GUANGDONG,
            SICHUAN,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "朱琳",
            "510104",
            "19970319",
            182,
            SICHUAN,
            SICHUAN,
            Yellow,
            None,
            Ok(Yellow),
        ),
    ]
}

/// Where the demo's nodes live.
enum Folder {
    Temp(tempfile::TempDir),
    Kept(std::path::PathBuf),
}

impl Folder {
    fn path(&self) -> &std::path::Path {
        match self {
            Folder::Temp(t) => t.path(),
            Folder::Kept(p) => p,
        }
    }
}

struct Federation {
    _dir: Folder,
    nodes: Vec<NodeHandle>,
    /// The demo's API token at each node (roles issuer, verifier, admin), by province code.
    tokens: Vec<(u32, zeroize::Zeroizing<String>)>,
}

impl Federation {
    /// A channel to the node of `p` as the demo's caller: its certificate pinned, the token sent.
    async fn connect(&self, p: u32) -> Result<crate::client::NodeChannel, DemoError> {
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

fn rpc(call: &'static str) -> impl Fn(tonic::Status) -> DemoError {
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
async fn conclude(
    fed: &Federation,
    proposer: u32,
    acceptor: u32,
    peer_codes_here: &[(HealthStatus, HealthStatus)],
    our_codes_there: &[(HealthStatus, HealthStatus)],
) -> Result<String, DemoError> {
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
            effective_from: now - 60,
            effective_until: now + 365 * 24 * 3600,
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

/// Edits a code's status after signing while keeping its signature: what a forger would try
/// (a yellow edited to green). For the demo and tests; any verifier answers BAD_SIGNATURE.
///
/// # Errors
/// [`DemoError::Scenario`] when `code` does not decode.
pub fn forge_status(code: &str, status: HealthStatus) -> Result<String, DemoError> {
    let bad = |e: String| DemoError::Scenario(format!("tampering: {e}"));
    let cose = transport::unwrap(code).map_err(|e| bad(e.to_string()))?;
    let mut sign1 = CoseSign1::from_slice(&cose).map_err(|e| bad(e.to_string()))?;
    let mut claims = Claims::from_cbor(sign1.payload.as_deref().unwrap_or_default())
        .map_err(|e| bad(e.to_string()))?;
    claims.status = status.to_u64();
    sign1.payload = Some(claims.to_cbor());
    Ok(transport::wrap(
        &sign1.to_vec().map_err(|e| bad(e.to_string()))?,
    ))
}

async fn verify_at(
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

async fn issue(fed: &Federation, c: &Case, status: HealthStatus) -> Result<String, DemoError> {
    Ok(HealthCodeServiceClient::new(fed.connect(c.from).await?)
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(proto::Subject {
                name: c.name.to_string(),
                document_type: proto::DocumentType::ResidentIdentityCard as i32,
                document_number: synthetic_resident_id(c.address, c.birth, c.seq),
            }),
            status: convert::status_to_proto(Some(status)),
            status_valid_until: crate::unix_now() + 14 * 24 * 3600,
            code_lifetime_secs: 300,
            qr_format: 0,
        })
        .await
        .map_err(rpc("IssueHealthCode"))?
        .into_inner()
        .code)
}

/// Has node `at` pull its peers now, as `hcmr sync` does.
async fn sync(fed: &Federation, at: u32) -> Result<(), DemoError> {
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

/// The verdict table and its running tally.
struct Table<'a, W: Write> {
    out: &'a mut W,
    outcome: DemoOutcome,
}

impl<'a, W: Write> Table<'a, W> {
    fn new(out: &'a mut W) -> Result<Self, DemoError> {
        let header = format!(
            "{}{}{}{}{}{}{}reason",
            pad("worker", 9),
            pad("ID (masked)", 20),
            pad("from", 11),
            pad("to", 11),
            pad("issued", 8),
            pad("here", 7),
            pad("verdict", 16),
        );
        writeln!(out, "{header}")?;
        writeln!(out, "{}", "-".repeat(width(&header) + 24))?;
        Ok(Table {
            out,
            outcome: DemoOutcome {
                checks: 0,
                recognized: 0,
                mismatches: 0,
                access_checks: 0,
                access_mismatches: 0,
            },
        })
    }

    /// One access check: what was tried, the status it got, the status expected.
    fn access(&mut self, what: &str, got: tonic::Code, want: tonic::Code) -> Result<(), DemoError> {
        self.outcome.access_checks += 1;
        self.outcome.access_mismatches += usize::from(got != want);
        let name = |c: tonic::Code| match c {
            tonic::Code::Ok => "served".to_string(),
            tonic::Code::Unauthenticated => "UNAUTHENTICATED".to_string(),
            tonic::Code::PermissionDenied => "PERMISSION_DENIED".to_string(),
            other => format!("{other:?}"),
        };
        let mark = if got == want { "" } else { "  <-- expected " };
        writeln!(
            self.out,
            "  {}{}{mark}{}",
            pad(what, 56),
            name(got),
            if got == want {
                String::new()
            } else {
                name(want)
            }
        )?;
        Ok(())
    }

    fn row(
        &mut self,
        from: u32,
        to: u32,
        issued: HealthStatus,
        r: &proto::VerifyHealthCodeResponse,
        expect: Result<HealthStatus, proto::Reason>,
        note: &str,
    ) -> Result<(), DemoError> {
        let recognized = r.verdict == proto::Verdict::Recognized as i32;
        let got = if recognized {
            convert::status_from_proto(r.local_status).ok_or(proto::Reason::Unspecified)
        } else {
            Err(proto::Reason::try_from(r.reason).unwrap_or(proto::Reason::Unspecified))
        };
        let ok = got == expect;
        self.outcome.checks += 1;
        self.outcome.recognized += usize::from(recognized);
        self.outcome.mismatches += usize::from(!ok);
        let subject = r.subject.clone().unwrap_or_default();
        let prov = |p: u32| Province::from_code(p).map(|p| p.name_en()).unwrap_or("?");
        let reason = proto::Reason::try_from(r.reason)
            .map(|x| {
                x.as_str_name()
                    .trim_start_matches("REASON_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        writeln!(
            self.out,
            "{}{}{}{}{}{}{}{}{}{}",
            pad(&subject.masked_name, 9),
            pad(&subject.masked_document_number, 20),
            pad(prov(from), 11),
            pad(prov(to), 11),
            pad(issued.as_str(), 8),
            pad(
                convert::status_from_proto(r.local_status).map_or("-", HealthStatus::as_str),
                7
            ),
            pad(
                if recognized {
                    "RECOGNIZED"
                } else {
                    "NOT RECOGNIZED"
                },
                16
            ),
            reason,
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            },
            if ok {
                String::new()
            } else {
                format!("   <-- MISMATCH: expected {expect:?}")
            }
        )?;
        Ok(())
    }
}

/// Display width of a string in a terminal: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

/// Who may call what: TLS everywhere, tokens with roles, mutual TLS between nodes bound to the
/// agreement. Each line is a call that must be refused or admitted.
async fn access_checks(
    fed: &Federation,
    table: &mut Table<'_, impl Write>,
) -> Result<(), DemoError> {
    writeln!(
        table.out,
        "\nwho may call (TLS on every listener; callers by token and role; nodes by mutual TLS):"
    )?;
    let node = |p: u32| {
        fed.nodes
            .iter()
            .find(|n| n.province.code() == p)
            .expect("every scenario province has a node")
    };
    let issue_request = || proto::IssueHealthCodeRequest {
        subject: Some(proto::Subject {
            name: "王建国".into(),
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: synthetic_resident_id("510104", "19900101", 131),
        }),
        status: proto::HealthStatus::Green as i32,
        status_valid_until: crate::unix_now() + 86_400,
        code_lifetime_secs: 60,
        qr_format: 0,
    };
    let code = |r: Result<(), tonic::Status>| r.err().map_or(tonic::Code::Ok, |s| s.code());

    // 1. No token.
    let sc = node(SICHUAN);
    let anonymous = crate::client::connect(&sc.endpoint, sc.tls_cert.as_deref(), None)
        .await
        .map_err(|e| DemoError::Node(e.to_string()))?;
    let got = code(
        HealthCodeServiceClient::new(anonymous)
            .issue_health_code(issue_request())
            .await
            .map(|_| ()),
    );
    table.access(
        "a call without a token: Sichuan IssueHealthCode",
        got,
        tonic::Code::Unauthenticated,
    )?;

    // 2. A checkpoint's token (role verifier) used to issue.
    let gd = node(GUANGDONG);
    let gate = OperatorServiceClient::new(fed.connect(GUANGDONG).await?)
        .add_caller(proto::AddCallerRequest {
            name: "east-gate-3".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            replace: false,
        })
        .await
        .map_err(rpc("AddCaller"))?
        .into_inner()
        .token;
    let ch = crate::client::connect(&gd.endpoint, gd.tls_cert.as_deref(), Some(&gate))
        .await
        .map_err(|e| DemoError::Node(e.to_string()))?;
    let got = code(
        HealthCodeServiceClient::new(ch)
            .issue_health_code(issue_request())
            .await
            .map(|_| ()),
    );
    table.access(
        "a Guangdong checkpoint (verifier) tries to issue",
        got,
        tonic::Code::PermissionDenied,
    )?;

    // 3 and 4. Nodes pulling Sichuan's trust feed, each with its own node certificate.
    for (p, what, want) in [
        (
            JIANGSU,
            "Jiangsu's node pulls Sichuan's feed (no agreement)",
            tonic::Code::PermissionDenied,
        ),
        (
            GUANGDONG,
            "Guangdong's node pulls Sichuan's feed (agreement)",
            tonic::Code::Ok,
        ),
    ] {
        let n = node(p);
        let identity = crate::tls::TlsIdentity::load(
            &n.dir.join("tls/node.crt"),
            &n.dir.join("tls/node.key"),
            &crate::keys::KeyProtection::Plain,
        )
        .map_err(|e| DemoError::Node(e.to_string()))?;
        let own = std::sync::Arc::new(crate::tls::CertSource(arc_swap::ArcSwap::new(
            identity
                .certified_key()
                .map_err(|e| DemoError::Node(e.to_string()))?,
        )));
        let config = crate::tls::peer_client_config(own, Some(sc.province), |_| true)
            .map_err(|e| DemoError::Node(e.to_string()))?;
        let ch = crate::client::channel(&sc.endpoint, Some(config), Duration::from_secs(10))
            .await
            .map_err(|e| DemoError::Node(e.to_string()))?;
        let got = match FederationServiceClient::new(ch)
            .get_feed(proto::GetFeedRequest { from_seq: 1 })
            .await
        {
            Ok(mut stream) => code(stream.get_mut().message().await.map(|_| ())),
            Err(s) => s.code(),
        };
        table.access(what, got, want)?;
    }
    Ok(())
}

/// Starts the federation, runs the scenario, prints the table and summary to `out`, and stops
/// the nodes.
///
/// # Errors
/// [`DemoError`] when the federation cannot be set up; a verdict that differs from the
/// expectation is not an error but counted in [`DemoOutcome::mismatches`].
pub async fn run(out: &mut impl Write) -> Result<DemoOutcome, DemoError> {
    run_in(out, None).await
}

/// As [`run`], with the nodes' folders under `keep` (which must not exist yet), left in place
/// afterwards for inspection; `None`: a temporary folder, removed at the end.
///
/// # Errors
/// As [`run`]; [`DemoError::Io`] when `keep` exists.
pub async fn run_in(
    out: &mut impl Write,
    keep: Option<&std::path::Path>,
) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    let dir = match keep {
        None => Folder::Temp(tempfile::tempdir()?),
        Some(p) => {
            if p.exists() {
                return Err(DemoError::Io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists: choose a new folder to keep", p.display()),
                )));
            }
            std::fs::create_dir_all(p)?;
            Folder::Kept(p.to_path_buf())
        }
    };
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
        let token = crate::node::add_caller_offline(
            &config,
            "demo",
            &[
                crate::callers::Role::Issuer,
                crate::callers::Role::Verifier,
                crate::callers::Role::Admin,
            ],
        )
        .await
        .map_err(|e| DemoError::Node(e.to_string()))?;
        tokens.push((code, token));
        nodes.push(
            crate::node::spawn(&config)
                .await
                .map_err(|e| DemoError::Node(e.to_string()))?,
        );
    }
    let fed = Federation {
        _dir: dir,
        nodes,
        tokens,
    };
    writeln!(out, "hcmr demo: five province nodes on loopback")?;
    for n in &fed.nodes {
        writeln!(
            out,
            "  {} {:<10} {}",
            n.province,
            n.province.name_en(),
            n.endpoint
        )?;
    }

    use HealthStatus::*;
    let all = [(Green, Green), (Yellow, Yellow), (Red, Red)];
    let agreements = [
        (
            "Sichuan-Guangdong",
            conclude(
                &fed,
                GUANGDONG,
                SICHUAN,
                &[(Green, Green), (Yellow, Red), (Red, Red)],
                &[(Green, Green), (Red, Red)],
            )
            .await?,
            "Guangdong counts a Sichuan yellow as red",
        ),
        (
            "Sichuan-Zhejiang",
            conclude(&fed, SICHUAN, ZHEJIANG, &all, &all).await?,
            "all colours as issued",
        ),
        (
            "Anhui-Zhejiang",
            conclude(&fed, ZHEJIANG, ANHUI, &all, &all).await?,
            "all colours as issued",
        ),
    ];
    writeln!(
        out,
        "\nagreements, proposed and accepted over gRPC, signed by both nodes:"
    )?;
    for (name, id, note) in &agreements {
        writeln!(out, "  {name:<18} {id}  {note}")?;
    }

    // Issue every code first; the expired one is shown last, once its one second has run out.
    let cases = cases();
    let mut codes = Vec::new();
    let mut latest_exp = 0;
    for c in &cases {
        let mut client = HealthCodeServiceClient::new(fed.connect(c.from).await?);
        let number = synthetic_resident_id(c.address, c.birth, c.seq);
        let r = client
            .issue_health_code(proto::IssueHealthCodeRequest {
                subject: Some(proto::Subject {
                    name: c.name.to_string(),
                    document_type: proto::DocumentType::ResidentIdentityCard as i32,
                    document_number: number,
                }),
                status: convert::status_to_proto(Some(c.status)),
                status_valid_until: crate::unix_now() + 14 * 24 * 3600,
                code_lifetime_secs: if c.twist == Twist::Expired { 1 } else { 300 },
                qr_format: 0,
            })
            .await
            .map_err(rpc("IssueHealthCode"))?
            .into_inner();
        if c.twist == Twist::Expired {
            latest_exp = latest_exp.max(r.exp);
        }
        let code = match c.twist {
            Twist::EditedToGreen => forge_status(&r.code, HealthStatus::Green)?,
            _ => r.code,
        };
        codes.push(code);
    }
    // Bounded wait (at most 3 s) for the short-lived code to expire.
    let deadline = Instant::now() + Duration::from_secs(3);
    while crate::unix_now() < latest_exp && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    writeln!(out)?;
    let mut table = Table::new(out)?;
    for (c, code) in cases.iter().zip(&codes) {
        let r = verify_at(&fed, c.to, code).await?;
        let note = match c.twist {
            Twist::None => "",
            Twist::EditedToGreen => "edited to green",
            Twist::Expired => "shown after expiry",
        };
        table.row(c.from, c.to, c.status, &r, c.expect, note)?;
    }

    // Trust changes: revocations, a key rotation and a termination, carried to the peers by
    // their sync (triggered here instead of waiting for the interval).
    writeln!(
        table.out,
        "\ntrust changes, carried by each node's signed feed and its peers' sync:"
    )?;
    let sc_gd_id = agreements[0].1.clone();
    let az_id = agreements[2].1.clone();
    let code_of = |name: &str| {
        cases
            .iter()
            .zip(&codes)
            .find(|(c, _)| c.name == name)
            .map(|(c, code)| (c, code.clone()))
            .expect("the scenario names this worker")
    };
    let mut sc_codes = HealthCodeServiceClient::new(fed.connect(SICHUAN).await?);
    let mut sc_ops = OperatorServiceClient::new(fed.connect(SICHUAN).await?);

    // 1. Sichuan revokes one code (王*国's green: issued in error).
    let (wang, wang_code) = code_of("王建国");
    let cti = crate::code::HealthCode::decode(&wang_code)
        .map(|h| hex::encode(h.cti()))
        .map_err(|e| DemoError::Scenario(e.to_string()))?;
    sc_codes
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti })
        .await
        .map_err(rpc("RevokeHealthCode"))?;
    sync(&fed, GUANGDONG).await?;
    let r = verify_at(&fed, GUANGDONG, &wang_code).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        wang.status,
        &r,
        Err(proto::Reason::Revoked),
        "code revoked by Sichuan",
    )?;

    // 2. 李*英's status changes: Sichuan revokes her earlier codes and issues a red one.
    let (li, li_code) = code_of("李秀英");
    sc_codes
        .revoke_subject(proto::RevokeSubjectRequest {
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: synthetic_resident_id(li.address, li.birth, li.seq),
            issued_before: 0,
        })
        .await
        .map_err(rpc("RevokeSubject"))?;
    sync(&fed, GUANGDONG).await?;
    let r = verify_at(&fed, GUANGDONG, &li_code).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        li.status,
        &r,
        Err(proto::Reason::Revoked),
        "earlier code, subject revoked",
    )?;
    // Her new code, issued at once: the node dates it after the revocation.
    let fresh = issue(&fed, li, HealthStatus::Red).await?;
    let r = verify_at(&fed, GUANGDONG, &fresh).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        HealthStatus::Red,
        &r,
        Ok(HealthStatus::Red),
        "new code after the change",
    )?;

    // 3. Sichuan rotates its key; peers learn the new key from the rotation statement.
    let (zhang, zhang_code) = code_of("张伟");
    let rotated = sc_ops
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .map_err(rpc("RotateKey"))?
        .into_inner();
    sync(&fed, GUANGDONG).await?;
    sync(&fed, ZHEJIANG).await?;
    let (liu, _) = code_of("刘洋");
    let new_code = issue(&fed, liu, HealthStatus::Green).await?;
    let kid = hex::encode(rotated.new_key.map(|k| k.kid).unwrap_or_default());
    let r = verify_at(&fed, ZHEJIANG, &new_code).await?;
    table.row(
        SICHUAN,
        ZHEJIANG,
        HealthStatus::Green,
        &r,
        Ok(HealthStatus::Green),
        &format!("signed by the new key {kid}"),
    )?;
    let r = verify_at(&fed, GUANGDONG, &zhang_code).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        zhang.status,
        &r,
        Ok(HealthStatus::Red),
        "signed by the old key, until exp",
    )?;

    // 4. Zhejiang terminates its agreement with Anhui.
    OperatorServiceClient::new(fed.connect(ZHEJIANG).await?)
        .terminate_agreement(proto::TerminateAgreementRequest {
            id: az_id,
            effective_at: 0,
        })
        .await
        .map_err(rpc("TerminateAgreement"))?;
    let (yang, yang_code) = code_of("杨帆");
    let r = verify_at(&fed, ZHEJIANG, &yang_code).await?;
    table.row(
        ANHUI,
        ZHEJIANG,
        yang.status,
        &r,
        Err(proto::Reason::AgreementTerminated),
        "Zhejiang ended the agreement",
    )?;
    let _ = sc_gd_id;

    access_checks(&fed, &mut table).await?;

    let outcome = table.outcome.clone();
    writeln!(
        table.out,
        "\nsummary: {} checks, {} recognized, {} not recognized; {} of {} verdicts as the scenario expects; {} of {} access checks as expected; {:.1} s",
        outcome.checks,
        outcome.recognized,
        outcome.checks - outcome.recognized,
        outcome.checks - outcome.mismatches,
        outcome.checks,
        outcome.access_checks - outcome.access_mismatches,
        outcome.access_checks,
        started.elapsed().as_secs_f64()
    )?;
    for n in fed.nodes {
        n.shutdown()
            .await
            .map_err(|e| DemoError::Node(e.to_string()))?;
    }
    Ok(outcome)
}
