//! `hcmr key`: the node's signing keys.

use clap::Subcommand;

use crate::cli::node::{channel, NodeArg};
use crate::cli::CliError;
use crate::proto;
use crate::proto::operator_service_client::OperatorServiceClient;

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new signing key; the old key signs a rotation statement that peers accept.
    Rotate(NodeArg),
    /// Withdraw a key at once (compromise): codes under it stop being recognized once peers sync.
    Withdraw {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Kid of the key (16 hex digits); not the current key (rotate first).
        kid: String,
    },
}

/// Runs `hcmr key ...`.
pub(crate) async fn exec(c: KeyCommand) -> Result<(), CliError> {
    match c {
        KeyCommand::Rotate(n) => {
            let r = OperatorServiceClient::new(channel(&n).await?)
                .rotate_key(proto::RotateKeyRequest {})
                .await?
                .into_inner();
            let new = r.new_key.unwrap_or_default();
            out!(
                "new key: kid {}  public {}",
                hex::encode(&new.kid),
                hex::encode(&new.public_key)
            );
            out!(
                "retired kid {} (its codes stay valid until they expire); feed entry {}",
                hex::encode(&r.retired_kid),
                r.seq
            );
            Ok(())
        }
        KeyCommand::Withdraw { node, kid } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .withdraw_key(proto::WithdrawKeyRequest { kid: kid.clone() })
                .await?
                .into_inner();
            out!(
                "withdrew key {kid}; feed entry {} (peers apply it at their next sync)",
                r.seq
            );
            Ok(())
        }
    }
}
