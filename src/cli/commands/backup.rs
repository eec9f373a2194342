//! `hcmr backup` and `hcmr restore`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::backup::{BackupError, Summary};
use crate::cli::display::local_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::{output, CliError};
use crate::proto;

/// Arguments of `hcmr backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The node to ask.
    #[command(flatten)]
    node: NodeArg,
    /// The backup file to write (must not exist).
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `hcmr restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (from `hcmr backup`); refused when damaged.
    #[arg(long)]
    from: PathBuf,
    /// The new node folder (must not exist).
    #[arg(long)]
    data_dir: PathBuf,
}

/// Runs `hcmr backup`.
pub(crate) async fn exec_backup(a: BackupArgs) -> Result<(), CliError> {
    backup(&a.node, &a.out).await
}

/// Runs `hcmr restore`.
pub(crate) async fn exec_restore(a: RestoreArgs) -> Result<(), CliError> {
    restore(&a.from, &a.data_dir).await
}

/// One line on what a backup holds.
fn describe(s: &Summary) -> String {
    format!(
        "node of {} {}, taken {}: {} records in {} trees; files {}",
        s.province,
        s.province.name_en(),
        local_time(s.created),
        s.records,
        s.trees,
        s.files.join(", ")
    )
}

/// `hcmr backup --out FILE`: asks the node (as an admin) for a backup, writes it to a new file
/// with mode 0600, and checks what it received before saying so. A failed backup leaves no file.
async fn backup(node: &NodeArg, out: &Path) -> Result<(), CliError> {
    // Opened before the node is asked: a path that cannot be written is refused at once.
    let mut reserved = output::OutputFile::reserve("--out", out, output::Kind::NewSecret)?;
    let mut stream =
        proto::operator_service_client::OperatorServiceClient::new(channel(node).await?)
            .export_backup(proto::ExportBackupRequest {})
            .await?
            .into_inner();
    let file = reserved.file();
    let received: Result<Summary, CliError> = async {
        let write_err =
            |e: std::io::Error| CliError::Failed(format!("writing {}: {e}", out.display()));
        while let Some(chunk) = stream.message().await? {
            file.write_all(&chunk.data).map_err(write_err)?;
        }
        file.sync_all().map_err(write_err)?;
        crate::backup::check(out)
            .map_err(|e| CliError::Failed(format!("the node sent a bad backup: {e}")))
    }
    .await;
    match received {
        Ok(s) => {
            reserved
                .finish()
                .map_err(|e| CliError::Failed(format!("writing {}: {e}", out.display())))?;
            out!(
                "wrote {} ({} bytes, mode 0600): {}",
                out.display(),
                s.bytes,
                describe(&s)
            );
            out!("it holds the node's private keys: keep it as secret as they are");
            out!(
                "restore with: hcmr restore --from {} --data-dir NEW_FOLDER",
                out.display()
            );
            Ok(())
        }
        // Dropped unfinished, the reserved file is removed: a failed backup leaves no file.
        Err(e) => Err(e),
    }
}

/// `hcmr restore --from FILE --data-dir NEWDIR`: makes a new node folder from a backup, offline.
async fn restore(from: &Path, data_dir: &Path) -> Result<(), CliError> {
    let s = crate::node::backup::restore(from, data_dir)
        .await
        .map_err(|e| match e {
            BackupError::Exists(_) => CliError::Usage(e.to_string()),
            BackupError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::NotFound && !from.exists() =>
            {
                CliError::Usage(format!("--from: {e}"))
            }
            // The exit-code rule for files (crate::cli::EXIT_CODES): an input that cannot be read,
            // or is not a backup of this format, is a bad argument; a damaged one fails.
            BackupError::Io {
                ref source,
                ref path,
            } if source.kind() == std::io::ErrorKind::PermissionDenied
                && std::path::Path::new(path) == from =>
            {
                CliError::Usage(format!("--from: {e}"))
            }
            BackupError::NotABackup { .. } | BackupError::Version { .. } => {
                CliError::Usage(format!("--from: {e}"))
            }
            _ => CliError::Failed(e.to_string()),
        })?;
    out!("restored into {}: {}", data_dir.display(), describe(&s));
    out!(
        "start it with: hcmr serve --config {}",
        data_dir.join(crate::node::CONFIG_FILE).display()
    );
    out!(
        "callers keep their tokens (a backup holds no admin.token); for a new admin token, before starting it: hcmr caller add NAME --role admin --config {}",
        data_dir.join(crate::node::CONFIG_FILE).display()
    );
    Ok(())
}
