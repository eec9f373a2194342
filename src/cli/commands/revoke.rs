//! `hcmr revoke`: revoke codes this node issued.

use clap::Subcommand;

use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{point_in_time, secs, DocType};
use crate::cli::CliError;
use crate::identity::DocumentType;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;

/// Revocation subcommands.
#[derive(Debug, Subcommand)]
pub enum RevokeCommand {
    /// Revoke one code by its cti (as `hcmr issue` printed it); when it is already revoked, by
    /// itself or with its subject, says so and adds nothing.
    Code {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The code id, 32 hex digits.
        cti: String,
    },
    /// Revoke every code of a subject issued before a time (default now): the status changed.
    /// When an earlier revocation of the subject reaches as late, says so and adds nothing.
    Subject {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Document type.
        #[arg(long, value_enum, default_value = "id-card")]
        doc_type: DocType,
        /// Document number (only its keyed hash is kept).
        #[arg(long)]
        doc_number: String,
        /// Revoke codes issued before this time, RFC 3339 with its offset (Z, +08:00); default
        /// now.
        #[arg(long, value_parser = point_in_time)]
        before: Option<std::time::SystemTime>,
    },
}

/// Runs `hcmr revoke ...`.
pub(crate) async fn exec(c: RevokeCommand) -> Result<(), CliError> {
    match c {
        RevokeCommand::Code { node, cti } => {
            let r = HealthCodeServiceClient::new(channel(&node).await?)
                .revoke_health_code(proto::RevokeHealthCodeRequest { cti: cti.clone() })
                .await?
                .into_inner();
            if r.already_revoked {
                out!("code {cti} was already revoked; nothing added to the feed");
                return Ok(());
            }
            out!("revoked code {cti}; feed entry {}", r.seq);
            Ok(())
        }
        RevokeCommand::Subject {
            node,
            doc_type,
            doc_number,
            before,
        } => {
            let doc: DocumentType = doc_type.into();
            let r = HealthCodeServiceClient::new(channel(&node).await?)
                .revoke_subject(proto::RevokeSubjectRequest {
                    document_type: i32::from(doc.to_u8()),
                    document_number: doc_number,
                    issued_before: before.map_or(0, secs),
                })
                .await?
                .into_inner();
            if r.already_revoked {
                out!(
                    "the subject's codes issued before that time were already revoked; nothing added to the feed"
                );
                return Ok(());
            }
            out!("revoked the subject's earlier codes; feed entry {}", r.seq);
            Ok(())
        }
    }
}
