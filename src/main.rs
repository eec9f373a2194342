//! The `hcmr` binary: parses the command line and calls [`hcmr::cli::run`].
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: a gRPC call allocates and frees many small and
/// some 8 KiB buffers (tonic's codec, h2, rustls), which glibc's malloc serves from its slow
/// bins; a profile of the Verify load showed a sixth of the server's CPU in malloc and free
/// (BENCHMARKS.md, "Profile").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match hcmr::cli::parse() {
        Ok(c) => c,
        // A refused value from an environment variable is bad configuration (EX_CONFIG, 78).
        Err(hcmr::cli::ParseError::Env(e)) => {
            // It quotes the variable's value: escaped like all output.
            eprintln!("hcmr: {}", hcmr::cli::terminal_safe(&e.to_string(), true));
            return ExitCode::from(e.exit_code());
        }
        Err(hcmr::cli::ParseError::Clap(e)) => {
            let usage = e.use_stderr();
            if usage {
                // clap quotes the refused value: plain text (no colours), escaped like all
                // output, so a value cannot move the cursor or set the terminal's title.
                eprint!(
                    "{}",
                    hcmr::cli::terminal_safe(&e.render().to_string(), true)
                );
            } else {
                let _ = e.print();
            }
            // Help and version go to stdout and succeed; every other parse error is bad usage
            // (EX_USAGE, 64), like the errors the node reports for bad arguments.
            return if usage {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let default_level = match cli.command {
        hcmr::cli::Command::Serve(_) => "info",
        // The demo's refusals are expected, and its table says so.
        hcmr::cli::Command::Demo(_) => "error",
        _ => "warn",
    };
    let log_format = match &cli.command {
        hcmr::cli::Command::Serve(s) => s.log_format,
        _ => hcmr::cli::LogFormat::Human,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log_format {
        // One JSON object a line: {"timestamp", "level", "fields": {"message", ...}, "target"}.
        hcmr::cli::LogFormat::Json => logs.json().init(),
        hcmr::cli::LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hcmr: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(hcmr::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(hcmr::cli::CliError::NotRecognized) => ExitCode::from(3),
        Err(e) => {
            // Errors can carry the node's or a file's text: escaped like all output. (The node's
            // times are put in the display offset where its answer becomes a CliError.)
            eprintln!("hcmr: {}", hcmr::cli::terminal_safe(&e.to_string(), true));
            ExitCode::from(e.exit_code())
        }
    }
}
