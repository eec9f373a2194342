//! API token files (`--token-file`, a folder's `admin.token`).

use super::CliError;

/// Largest token file read, in bytes: a token is under 100 characters.
pub(super) const MAX_TOKEN_FILE_BYTES: u64 = 4096;

pub(super) fn read_token(path: &std::path::Path, flag: &str) -> Result<String, CliError> {
    let usage =
        |e: &dyn std::fmt::Display| CliError::Usage(format!("{flag} {}: {e}", path.display()));
    let t = crate::fsutil::read_capped(path, MAX_TOKEN_FILE_BYTES).map_err(|e| usage(&e))?;
    let t = String::from_utf8(t).map_err(|_| usage(&"the file is not UTF-8 text"))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(CliError::Usage(format!(
            "{flag} {}: the file holds no token",
            path.display()
        )));
    }
    Ok(t.to_string())
}
