//! `hcmr completions`: a shell completion script.

use clap::Args;

use crate::cli::{args, CliError};

/// Arguments of `hcmr completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Runs `hcmr completions`.
pub(crate) fn exec(a: CompletionsArgs) -> Result<(), CliError> {
    let CompletionsArgs { shell } = a;
    let mut cmd = args::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hcmr", &mut buf);
    std::io::Write::write_all(&mut std::io::stdout(), &buf)
        .map_err(|e| CliError::Failed(format!("writing the completions: {e}")))
}
