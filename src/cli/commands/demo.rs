//! `hcmr demo`: the local five-province federation demo.

use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;

/// Arguments of `hcmr demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the nodes' folders here afterwards (a new folder), e.g. to inspect what they
    /// stored; by default they are temporary.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// Runs `hcmr demo`.
pub(crate) async fn exec(a: DemoArgs) -> Result<(), CliError> {
    let DemoArgs { keep } = a;
    let outcome = crate::demo::run_in(&mut std::io::stdout(), keep.as_deref())
        .await
        .map_err(|e| CliError::Failed(format!("demo: {e}")))?;
    if outcome.access_mismatches > 0 {
        return Err(CliError::Failed(format!(
            "demo: {} of {} access checks differ from the scenario",
            outcome.access_mismatches, outcome.access_checks
        )));
    }
    if outcome.trip_mismatches > 0 {
        return Err(CliError::Failed(format!(
            "demo: {} of {} trip outcomes differ from the scenario",
            outcome.trip_mismatches, outcome.trip_checks
        )));
    }
    if outcome.mismatches == 0 {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "demo: {} of {} verdicts differ from the scenario",
            outcome.mismatches, outcome.checks
        )))
    }
}
