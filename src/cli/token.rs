//! API token files (`--token-file`, a folder's `admin.token`).

use super::args::env_source;
use super::node::NodeArg;
use super::CliError;

/// Largest token file read, in bytes: a token is under 100 characters.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The token in the file `path`, trimmed; the errors name the file as `flag` gave it.
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

/// The API token for the node of `n`: the file of `--token-file` (or its variable), else the
/// environment variable `HCMR_TOKEN`, else the `admin.token` of `--dir`, else none. The errors
/// name the flags `dir_flag` and `token_flag` (see [`super::node`]'s `resolve_node_as`).
pub(super) fn resolve(
    n: &NodeArg,
    dir_flag: &str,
    token_flag: &str,
) -> Result<Option<String>, CliError> {
    Ok(match (&n.token_file, std::env::var("HCMR_TOKEN")) {
        (Some(f), _) => Some(match env_source("token_file") {
            Some(var) if token_flag == "--token-file" => {
                read_token(f, &format!("environment variable {var}"))
                    .map_err(|e| CliError::Config(e.to_string()))?
            }
            _ => read_token(f, token_flag)?,
        }),
        (None, Ok(t)) if !t.trim().is_empty() => {
            let t = t.trim();
            // What a header can carry (visible ASCII): said here, naming the variable, rather
            // than by the client in its own words.
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CliError::Config(
                    "environment variable HCMR_TOKEN: an API token is visible ASCII text \
                     (hcmr_...), as `hcmr caller add` printed it; this value has other characters"
                        .into(),
                ));
            }
            Some(t.to_string())
        }
        _ => match &n.dir {
            Some(d) if d.join(crate::node::ADMIN_TOKEN_FILE).exists() => Some(read_token(
                &d.join(crate::node::ADMIN_TOKEN_FILE),
                dir_flag,
            )?),
            _ => None,
        },
    })
}
