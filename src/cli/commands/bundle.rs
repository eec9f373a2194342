//! `hcmr bundle`: offline trust bundles.

use std::path::PathBuf;

use clap::Subcommand;

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::{output, CliError};
use crate::proto;
use crate::proto::operator_service_client::OperatorServiceClient;

/// Bundle subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Export the node's trust state as a signed file.
    Export {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The new file to write the bundle to (checked before the node is asked; a file that
        /// exists, or a symbolic link, is refused, never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `hcmr bundle ...`.
pub(crate) async fn exec(c: BundleCommand) -> Result<(), CliError> {
    match c {
        BundleCommand::Export { node, out } => {
            let file = output::OutputFile::reserve("--out", &out, output::Kind::New)?;
            let r = OperatorServiceClient::new(channel(&node).await?)
                .export_trust_bundle(proto::ExportTrustBundleRequest {})
                .await?
                .into_inner();
            file.write(&r.bundle)
                .map_err(|e| CliError::Failed(format!("--out {}: {e}", out.display())))?;
            out!(
                "wrote {} ({} bytes), exported {}; verify with: hcmr verify --offline {} --trust {} CODE",
                out.display(),
                r.bundle.len(),
                api_time(r.exported_at),
                out.display(),
                hex::encode(&r.kid)
            );
            Ok(())
        }
    }
}
