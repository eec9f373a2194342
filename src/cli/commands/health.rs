//! `hcmr health`: ask a node's grpc.health.v1 whether it serves, as an exec probe (a
//! Kubernetes `exec` readiness or liveness probe, a systemd or cron check) does: exit 0 when
//! SERVING, 1 with the status otherwise, 69 when the node cannot be reached.

use std::path::PathBuf;

use clap::Args;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::cli::node::{local_url, resolve_node, NodeArg};
use crate::cli::{serving, CliError};

/// Arguments of `hcmr health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The node's config file (hcmr.toml): the node is reached where it listens on this machine
    /// (an unspecified address on loopback), its certificate pinned; no token is needed.
    #[arg(long, conflicts_with_all = ["node", "dir"])]
    config: Option<PathBuf>,
    /// Or the node to ask (`--node` URL and `--tls-cert`, or `--dir`).
    #[command(flatten)]
    node: NodeArg,
    /// The service whose status to ask, e.g. hcmr.v1.HealthCodeService [default: "", the whole
    /// node].
    #[arg(long, default_value = "")]
    service: String,
}

/// Runs `hcmr health`.
pub(crate) async fn exec(a: HealthArgs) -> Result<(), CliError> {
    let (url, cert) = match &a.config {
        Some(path) => {
            let c = crate::node::Config::load(path)
                .map_err(|e| CliError::Config(format!("--config: {e}")))?;
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            let url = folder
                .and_then(serving::live_url)
                .unwrap_or_else(|| local_url(&c, c.listen));
            (url, c.tls.map(|t| t.cert_file))
        }
        None => {
            let (url, cert, _) = resolve_node(&a.node)?;
            (url, cert)
        }
    };
    let channel = crate::client::connect(&url, cert.as_deref(), None)
        .await
        .map_err(|e| match e {
            crate::client::ClientError::Unreachable { .. } => CliError::Unavailable(e.to_string()),
            _ => CliError::Config(e.to_string()),
        })?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: a.service.clone(),
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::Unavailable => {
                CliError::Unavailable(format!("{url}: the node is unavailable: {}", s.message()))
            }
            _ => CliError::from(s),
        })?
        .into_inner()
        .status;
    let name = ServingStatus::try_from(status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    if status == ServingStatus::Serving as i32 {
        out!("{name}");
        Ok(())
    } else {
        Err(CliError::Failed(format!("{url}: {name}")))
    }
}
