//! The `hcmr` command line. `main.rs` only parses arguments into [`Cli`] and calls [`run`].
//!
//! Exit codes: 0 success (for `verify`: recognized; for a manifest check: PASS); 3 `verify`
//! answered NOT RECOGNIZED, a manifest check STOP;
//! 64 bad usage or argument (EX_USAGE); 69 node unreachable (EX_UNAVAILABLE); 78 bad
//! configuration (EX_CONFIG); 1 any other failure. File and id arguments follow one rule,
//! [`EXIT_CODES`].
//!
//! Laid out as cargo lays out its own (`src/bin/cargo/commands/`): [`Cli`] and [`run`], a short
//! dispatch, here; each subcommand, with its clap arguments and the code that runs it, in its
//! own file under `commands/`; what several commands share in its own file: the node to talk to
//! (`node.rs`, `token.rs`), values on the command line (`values.rs`, `args.rs`), output files
//! (`output.rs`), times for people (`display.rs`), errors and exit codes (`error.rs`), signals
//! (`signal.rs`).

use clap::{Parser, Subcommand};

/// Writes a line to standard output; a closed pipe (`hcmr audit --csv | head`) ends the program
/// quietly instead of panicking as `println!` would. Control, bidi and invisible characters are
/// escaped ([`terminal_safe`]): every line may carry data from a code, a peer or a caller.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let line = $crate::cli::terminal_safe(&line, true);
        if let Err(e) = writeln!(std::io::stdout(), "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `eprintln!` with the escaping of [`out!`], for notes that carry data (tokens, names, paths).
macro_rules! note {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        eprintln!("{}", $crate::cli::terminal_safe(&line, true));
    }};
}

mod args;
pub mod commands;
mod display;
mod error;
mod escape;
mod node;
mod output;
mod serving;
mod signal;
mod token;
mod values;

pub use args::{env_source, parse, ParseError};
pub use commands::agreement::{AgreementCommand, ProposeArgs};
pub use commands::audit::{AuditArgs, VerdictArg};
pub use commands::bench::{BenchArgs, BenchKind, ScaleArgs};
pub use commands::bundle::BundleCommand;
pub use commands::caller::{CallerCommand, RoleArg};
pub use commands::issue::IssueArgs;
pub use commands::key::KeyCommand;
pub use commands::revoke::RevokeCommand;
pub use commands::serve::LogFormat;
pub use commands::verify::{print_verdict, VerifyArgs};
pub use display::{for_people, rfc3339};
pub use error::{CliError, EXIT_CODES};
pub use escape::terminal_safe;
pub use node::{check_node_url, NodeArg, DEFAULT_NODE};
pub use signal::shutdown_signal;
pub use values::{parse_status_map, DocType};

use display::DISPLAY_OFFSET;

/// hcmr: health-code mutual recognition between provinces.
#[derive(Debug, Parser)]
#[command(name = "hcmr", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Show times in this offset from UTC, e.g. +08:00 (Beijing time) [default: the
    /// display_utc_offset of --dir's hcmr.toml, else +08:00]. Times are written with their
    /// offset; what the node stores and logs stays UTC. (The node's own card and page use the
    /// display_utc_offset of its hcmr.toml; `hcmr init` writes this offset there.)
    #[arg(
        long,
        global = true,
        env = "HCMR_DISPLAY_UTC_OFFSET",
        value_name = "OFFSET"
    )]
    pub display_utc_offset: Option<crate::display::DisplayOffset>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a province node: key files, database and config file in DIR.
    Init(commands::init::InitArgs),
    /// Serve a node's gRPC API until SIGINT or SIGTERM.
    #[command(after_help = EXIT_CODES)]
    Serve(commands::serve::ServeArgs),
    /// Show a node's province and public keys.
    Info(NodeArg),
    /// Ask a node's grpc.health.v1 whether it serves (an exec probe): exit 0 when SERVING, 1
    /// with the status when not, 69 when the node cannot be reached.
    Health(commands::health::HealthArgs),
    /// Issue a health code (code-making request, GB/T 38963); prints the code string.
    Issue(commands::issue::IssueArgs),
    /// Verify a health code at a node (code-verification request, GB/T 38963), or offline
    /// against a trust bundle.
    #[command(after_help = EXIT_CODES)]
    Verify(commands::verify::VerifyArgs),
    /// Bilateral agreements with peer provinces.
    #[command(subcommand)]
    Agreement(commands::agreement::AgreementCommand),
    /// The node's signing keys: rotation and withdrawal.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Revoke codes this node issued: one code, or every code of a subject.
    #[command(subcommand)]
    Revoke(commands::revoke::RevokeCommand),
    /// Trips at their origin (organizers): create, board, seal, cancel, list and show
    /// manifests.
    #[command(subcommand)]
    Manifest(commands::manifest::ManifestCommand),
    /// Trace a case to their fellow travellers across provinces (tracers).
    #[command(subcommand)]
    Trace(commands::trace::TraceCommand),
    /// Trips at their destination (receivers): check a manifest in, confirm people, hand over
    /// (a signed receipt for the origin) or refuse the vehicle; list arrivals.
    #[command(subcommand)]
    Arrival(commands::arrival::ArrivalCommand),
    /// Exposure notices other provinces' traces sent for this province's residents (role
    /// tracer): list them.
    #[command(subcommand)]
    Exposure(commands::exposure::ExposureCommand),
    /// Pull every peer's trust feed and agreement state now.
    Sync(NodeArg),
    /// Offline trust bundles for checkpoints without a network.
    #[command(subcommand)]
    Bundle(commands::bundle::BundleCommand),
    /// Does the document a person shows match the code's subject? (Ties a printed card to its
    /// holder; the number is neither stored nor logged.)
    Match(commands::match_identity::MatchArgs),
    /// Decode any code of this pipeline (HCMR1: or an EU DCC HC1:) without verifying it; prints
    /// JSON.
    Inspect(commands::inspect::InspectArgs),
    /// The audit log of verifications: list, filter, export CSV, or count a day.
    Audit(commands::audit::AuditArgs),
    /// Run the local five-province federation demo and print its table.
    Demo(commands::demo::DemoArgs),
    /// Load a node over gRPC and report throughput, latency percentiles and server CPU per
    /// request (see BENCHMARKS.md).
    Bench(commands::bench::BenchArgs),
    /// Callers of the node's API (platforms, checkpoint devices, operators) and their roles.
    #[command(subcommand)]
    Caller(commands::caller::CallerCommand),
    /// Verify replicas enrolled at this primary (make one with `hcmr init --replica-of`).
    #[command(subcommand)]
    Replica(commands::replica::ReplicaCommand),
    /// Back up a running node (as an admin): its database, configuration and key files, in one
    /// new file of mode 0600, as secret as the keys.
    Backup(commands::backup::BackupArgs),
    /// Make a new node folder from a backup, offline; then start it with `hcmr serve`.
    Restore(commands::backup::RestoreArgs),
    /// Print a shell completion script, made from these very options, e.g.
    /// `hcmr completions bash > /etc/bash_completion.d/hcmr`.
    Completions(commands::completions::CompletionsArgs),
    /// Write the manual pages (hcmr.1 and one per subcommand, e.g. hcmr-verify.1) into a
    /// folder, made from these very options, e.g. `hcmr man --out /usr/local/share/man/man1`.
    Man(commands::man::ManArgs),
}

/// Runs a parsed command line.
///
/// # Errors
/// [`CliError`] with its exit code.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    if let Some(o) = cli.display_utc_offset {
        let _ = DISPLAY_OFFSET.set(o);
    }
    match cli.command {
        Command::Init(a) => commands::init::exec(a).await,
        Command::Serve(a) => commands::serve::exec(a).await,
        Command::Info(n) => commands::info::exec(n).await,
        Command::Health(a) => commands::health::exec(a).await,
        Command::Issue(a) => commands::issue::exec(a).await,
        Command::Verify(a) => commands::verify::exec(a).await,
        Command::Agreement(c) => commands::agreement::exec(c).await,
        Command::Key(c) => commands::key::exec(c).await,
        Command::Revoke(c) => commands::revoke::exec(c).await,
        Command::Manifest(c) => commands::manifest::exec(c).await,
        Command::Arrival(c) => commands::arrival::exec(c).await,
        Command::Exposure(c) => commands::exposure::exec(c).await,
        Command::Trace(c) => commands::trace::exec(c).await,
        Command::Sync(n) => commands::sync::exec(n).await,
        Command::Bundle(c) => commands::bundle::exec(c).await,
        Command::Match(a) => commands::match_identity::exec(a).await,
        Command::Inspect(a) => commands::inspect::exec(a),
        Command::Audit(a) => commands::audit::exec(a).await,
        Command::Demo(a) => commands::demo::exec(a).await,
        Command::Bench(b) => commands::bench::exec(b).await,
        Command::Caller(c) => commands::caller::exec(c).await,
        Command::Replica(c) => commands::replica::exec(c).await,
        Command::Backup(a) => commands::backup::exec_backup(a).await,
        Command::Restore(a) => commands::backup::exec_restore(a).await,
        Command::Completions(a) => commands::completions::exec(a),
        Command::Man(a) => commands::man::exec(a),
    }
}
