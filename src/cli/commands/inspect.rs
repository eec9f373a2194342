//! `hcmr inspect`: decode a code without verifying it.

use clap::Args;

use crate::cli::values::code_or_stdin;
use crate::cli::CliError;

/// Arguments of `hcmr inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The code string, or - to read it from standard input.
    code: String,
}

/// Runs `hcmr inspect`.
pub(crate) fn exec(a: InspectArgs) -> Result<(), CliError> {
    let InspectArgs { code } = a;
    let code = code_or_stdin(code)?;
    let i = crate::inspect::inspect(code.trim())
        .map_err(|e| CliError::Failed(format!("inspect: {e}")))?;
    out!(
        "{}",
        serde_json::to_string_pretty(&i.to_json()).unwrap_or_default()
    );
    Ok(())
}
