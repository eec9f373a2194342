//! `hcmr replica`: the verify replicas enrolled at a primary (docs/deploy.md). A replica is made
//! and enrolled by `hcmr init --replica-of`.

use clap::Subcommand;

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::CliError;
use crate::proto;
use crate::proto::operator_service_client::OperatorServiceClient;

/// Replica subcommands; they call the primary as an admin.
#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// The replicas enrolled here: name, key hash, enrolled, last seen, audit records taken.
    List {
        /// The primary to ask.
        #[command(flatten)]
        node: NodeArg,
    },
    /// Remove a replica: it can no longer follow this primary (its streams end).
    Remove {
        /// The replica's name.
        name: String,
        /// The primary to ask.
        #[command(flatten)]
        node: NodeArg,
    },
}

/// Runs `hcmr replica`.
pub(crate) async fn exec(c: ReplicaCommand) -> Result<(), CliError> {
    match c {
        ReplicaCommand::List { node } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .list_replicas(proto::ListReplicasRequest {})
                .await?
                .into_inner();
            if r.replicas.is_empty() {
                out!("no verify replicas enrolled (make one with: hcmr init --replica-of URL ...)");
            }
            for v in r.replicas {
                let seen = if v.last_seen == 0 {
                    "not since start".to_string()
                } else {
                    api_time(v.last_seen)
                };
                out!(
                    "{:<24} key {}  enrolled {}  last seen {}  audit records {}",
                    v.name,
                    &v.spki_sha256[..16.min(v.spki_sha256.len())],
                    api_time(v.enrolled_at),
                    seen,
                    v.audit_records
                );
            }
            Ok(())
        }
        ReplicaCommand::Remove { name, node } => {
            OperatorServiceClient::new(channel(&node).await?)
                .remove_replica(proto::RemoveReplicaRequest { name: name.clone() })
                .await?;
            out!("replica {name} removed: it can no longer follow this primary");
            Ok(())
        }
    }
}
