//! `hcmr man`: the manual pages.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{args, CliError};

/// Arguments of `hcmr man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The folder (created when missing). Pages already there are refused (nothing is
    /// written) unless --force is given.
    #[arg(long)]
    out: PathBuf,
    /// Replace pages that already exist in the folder (e.g. when upgrading hcmr).
    #[arg(long)]
    force: bool,
}

/// Runs `hcmr man`.
pub(crate) fn exec(a: ManArgs) -> Result<(), CliError> {
    man_pages(&a.out, a.force)
}

/// `hcmr man`: the pages are made in a staging folder inside `out`, then moved in; an existing
/// page is refused before any is moved, unless `force` (a rename replaces a symbolic link
/// itself, never the file it points to).
fn man_pages(out: &std::path::Path, force: bool) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("--out {}: {e}", out.display()));
    if out.exists() && !out.is_dir() {
        return Err(CliError::Usage(format!(
            "--out {}: is not a folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory => CliError::Usage(format!(
            "--out {}: a part of this path is a file, not a folder",
            out.display()
        )),
        _ => failed(e),
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".hcmr-man-")
        .tempdir_in(out)
        .map_err(failed)?;
    clap_mangen::generate_to(args::command(), staging.path()).map_err(failed)?;
    let mut pages = std::fs::read_dir(staging.path())
        .and_then(|d| {
            d.map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(failed)?;
    pages.sort();
    let existing: Vec<String> = pages
        .iter()
        .filter(|p| std::fs::symlink_metadata(out.join(p)).is_ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if !existing.is_empty() && !force {
        return Err(CliError::Usage(format!(
            "--out {}: {} page(s) exist ({}); nothing was written; add --force to replace them",
            out.display(),
            existing.len(),
            existing.join(", ")
        )));
    }
    for p in &pages {
        std::fs::rename(staging.path().join(p), out.join(p)).map_err(failed)?;
    }
    out!(
        "wrote {} manual pages to {}{}",
        pages.len(),
        out.display(),
        if existing.is_empty() {
            String::new()
        } else {
            format!(" (replaced {})", existing.len())
        }
    );
    Ok(())
}
