//! Who may call what, checked against the running federation.

use std::io::Write;
use std::time::Duration;

use super::federation::{rpc, Federation};
use super::table::Table;
use super::{DemoError, GUANGDONG, JIANGSU, SICHUAN};
use crate::proto;
use crate::proto::federation_service_client::FederationServiceClient;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::proto::operator_service_client::OperatorServiceClient;
use crate::status::HealthStatus;
use crate::synthetic::Resident;

/// Who may call what: TLS everywhere, tokens with roles, mutual TLS between nodes bound to the
/// agreement. Each line is a call that must be refused or admitted.
pub(super) async fn access_checks(
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
    let issue_request = || {
        Resident {
            name: "王建国",
            address: "510104",
            birth: "19900101",
            seq: 131,
        }
        .issue_request(HealthStatus::Green, 86_400, 60)
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
            &crate::keyfile::KeyProtection::Plain,
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
            .get_feed(proto::GetFeedRequest {
                from_seq: 1,
                ..Default::default()
            })
            .await
        {
            Ok(mut stream) => code(stream.get_mut().message().await.map(|_| ())),
            Err(s) => s.code(),
        };
        table.access(what, got, want)?;
    }
    Ok(())
}
