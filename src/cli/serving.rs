//! The node's live endpoint in its folder: `hcmr serve` writes the URL it really serves (after
//! `--listen`/`HCMR_LISTEN` and a port 0 are resolved) into `serving.toml` next to its
//! `hcmr.toml`, and removes it when it stops. Client commands given `--dir` use it, so a node
//! served on another address than its file's is still found; without it (the node stopped, or
//! died and its process is gone) they fall back to the address in hcmr.toml.

use std::path::{Path, PathBuf};

/// The file's name in the node's folder.
pub const SERVING_FILE: &str = "serving.toml";

/// The file's content.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Serving {
    /// The URL a client on this machine reaches the node at, e.g. `https://127.0.0.1:7510`.
    url: String,
    /// The serving process, to tell a file left by a node that died from a live one.
    pid: u32,
}

/// Removes the file when dropped (the node stopped).
#[derive(Debug)]
pub struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the live endpoint `url` of the node whose folder is `folder`. A failure is logged, not
/// fatal: the node serves all the same, and clients fall back to hcmr.toml.
pub fn write(folder: &Path, url: &str) -> Option<Guard> {
    let path = folder.join(SERVING_FILE);
    let body = format!(
        "# Written by `hcmr serve` while it serves; removed when it stops. Client commands with \
         --dir use it.\n{}",
        toml::to_string(&Serving {
            url: url.to_string(),
            pid: std::process::id(),
        })
        .ok()?
    );
    // Written whole then renamed: a client never reads half a file.
    let written = tempfile::NamedTempFile::new_in(folder)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, body.as_bytes())?;
            Ok(f)
        })
        .and_then(|f| f.persist(&path).map_err(|e| e.error));
    match written {
        Ok(_) => Some(Guard(path)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the live endpoint file; clients with --dir use the address in hcmr.toml");
            None
        }
    }
}

/// The URL the node of `folder` serves at, when its `hcmr serve` is running.
pub fn live_url(folder: &Path) -> Option<String> {
    let s: Serving =
        toml::from_str(&std::fs::read_to_string(folder.join(SERVING_FILE)).ok()?).ok()?;
    // Where processes can be seen (Linux), a file whose process is gone is stale.
    let proc = Path::new("/proc");
    if proc.is_dir() && !proc.join(s.pid.to_string()).exists() {
        return None;
    }
    Some(s.url)
}
