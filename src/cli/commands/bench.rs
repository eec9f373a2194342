//! `hcmr bench`: load a node and report its figures; `bench scale`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cli::node::{resolve_node, resolve_node_as, NodeArg};
use crate::cli::signal::shutdown_signal;
use crate::cli::{args, CliError};

/// Arguments of `hcmr bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The node to load (a caller with roles issuer and verifier); not with --self-contained.
    #[command(flatten)]
    node: NodeArg,
    /// Start two nodes of this machine (Sichuan issues, Guangdong verifies) and load Guangdong.
    #[arg(long)]
    self_contained: bool,
    /// The server's process id, for its CPU time per request (self-contained: known).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A peer node's folder on this machine, whose codes `verify-peer` verifies (its province
    /// has an agreement with the node under load); not with --self-contained.
    #[arg(long, requires = "peer_token_file")]
    peer_dir: Option<PathBuf>,
    /// File holding a token of the peer node (--peer-dir) with role issuer.
    #[arg(long, requires = "peer_dir")]
    peer_token_file: Option<PathBuf>,
    /// Requests in flight (closed loop), or the most in flight (open loop); 1 to 10,000.
    #[arg(long, default_value_t = 64, value_parser = count_in::<1, 10_000>)]
    concurrency: usize,
    /// Open loop: requests per second on a fixed schedule (1 to 10,000,000); default closed
    /// loop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rate: Option<u64>,
    /// How long to measure, e.g. 10s; at least 1s, at most 24h.
    #[arg(long, default_value = "10s", value_parser = measure_duration)]
    duration: Duration,
    /// Untimed warm-up before measuring; at most 1h.
    #[arg(long, default_value = "2s", value_parser = warmup_duration)]
    warmup: Duration,
    /// Weighted mix of verify-own, verify-peer, verify-not-recognized, verify-batch (64 codes
    /// per BatchVerifyHealthCodes call, counted per call), verify-manifest (VerifyManifest on a
    /// 55-person trip of the peer, sealed with the key in --peer-dir), issue, empty; a name
    /// without `=w` weighs 1. Default with a peer (--self-contained, --peer-dir):
    /// verify-own=45,verify-peer=40,verify-not-recognized=5,issue=10; without:
    /// verify-own=85,verify-not-recognized=5,issue=10.
    #[arg(long)]
    mix: Option<String>,
    /// HTTP/2 connections the requests are spread over (no more than --concurrency are
    /// opened).
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    connections: usize,
    /// Another kind of bench (the options above apply to its load).
    #[command(subcommand)]
    kind: Option<BenchKind>,
}

/// Other kinds of `hcmr bench`.
#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// The Scale target: build a node with many agreements and revocations and an empty one in
    /// --dir, then measure start time, memory per revocation and verify throughput (loaded over
    /// empty, mix verify-own=50,verify-peer=50, with --duration, --warmup, --concurrency and
    /// --connections given before `scale`).
    Scale(ScaleArgs),
    /// Time a revocation from the issuing node to another that verifies: two nodes of this
    /// machine (sync interval an hour, so a feed watch delivers), --samples times issue,
    /// revoke, and Verify at the target every 5 ms until REVOKED; prints p50, p99 and max.
    Propagation {
        /// Revocations timed; 1 to 10,000.
        #[arg(long, default_value_t = 200, value_parser = count_in::<1, 10_000>)]
        samples: usize,
        /// Where the revocation is timed to: `peer` (another province with an agreement).
        #[arg(long, default_value = "peer", value_parser = ["peer"])]
        target: String,
    },
    /// Open a node's store and build its snapshot --runs times; print the figures as JSON
    /// (run by `bench scale` in a child process).
    #[command(hide = true)]
    ScaleOpen {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// How many opens.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

/// A count of at least 1 (clap value parser).
fn at_least_one(s: &str) -> Result<usize, String> {
    count_in::<1, { usize::MAX }>(s)
}

/// A count from `MIN` to `MAX` (clap value parser).
fn count_in<const MIN: usize, const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n < MIN => Err(format!("must be at least {MIN}")),
        Ok(n) if n > MAX => Err(format!("must be at most {MAX}")),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A measurement's duration, e.g. `10s` or `2min`: at least [`crate::bench::MIN_DURATION`],
/// at most [`crate::bench::MAX_DURATION`] (clap value parser).
fn measure_duration(s: &str) -> Result<Duration, String> {
    match args::duration(s) {
        Ok(d) if d < crate::bench::MIN_DURATION => Err("must be at least 1s".into()),
        Ok(d) if d > crate::bench::MAX_DURATION => Err("must be at most 24h".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// A warm-up's duration, at most [`crate::bench::MAX_WARMUP`] (clap value parser).
fn warmup_duration(s: &str) -> Result<Duration, String> {
    match args::duration(s) {
        Ok(d) if d > crate::bench::MAX_WARMUP => Err("must be at most 1h".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Arguments of `hcmr bench scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Concluded agreements in the loaded node (spread over the 33 other provinces, a month
    /// apart); 1 to 10,000.
    #[arg(long, default_value_t = 1000, value_parser = count_in::<1, 10_000>)]
    agreements: usize,
    /// Revoked code ids in the loaded node's peer feeds.
    #[arg(long, default_value_t = 10_000_000)]
    revocations: usize,
    /// A new or empty folder for the two nodes (the loaded store takes about 25 bytes per
    /// revocation on disk).
    #[arg(long)]
    dir: PathBuf,
    /// Opens measured per node (the start time is their median).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    start_runs: usize,
    /// Load rounds, each the empty node then the loaded node.
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    rounds: usize,
}

/// `hcmr bench`: a load run (self-contained or against a node), or `bench scale`. SIGINT and
/// SIGTERM stop it and the nodes it started.
pub(crate) async fn exec(b: BenchArgs) -> Result<(), CliError> {
    let started_nodes = b.self_contained
        || matches!(
            b.kind,
            Some(BenchKind::Scale(_) | BenchKind::Propagation { .. })
        );
    tokio::select! {
        r = bench_run(b) => r,
        () = shutdown_signal() => Err(CliError::Interrupted(if started_nodes {
            "interrupted; the nodes the bench started were stopped".into()
        } else {
            "interrupted".into()
        })),
    }
}

/// The flags of `hcmr bench` for a node to load (none of which --self-contained or `bench
/// scale` takes) that are on the command line: their names. The same settings from the
/// environment (HCMR_DIR, ...) do not count: they are there for other commands.
fn node_flags() -> Vec<&'static str> {
    [
        ("node", "--node"),
        ("tls_cert", "--tls-cert"),
        ("token_file", "--token-file"),
        ("dir", "--dir"),
        ("server_pid", "--server-pid"),
        ("peer_dir", "--peer-dir"),
        ("peer_token_file", "--peer-token-file"),
    ]
    .into_iter()
    .filter(|(id, _)| args::on_command_line("bench", id))
    .map(|(_, flag)| flag)
    .collect()
}

/// [`exec`] without the signal handling.
async fn bench_run(b: BenchArgs) -> Result<(), CliError> {
    use crate::bench::BenchError;
    let with_peer = b.self_contained || b.peer_dir.is_some();
    let mix = b.mix.clone().unwrap_or_else(|| {
        if with_peer {
            "verify-own=45,verify-peer=40,verify-not-recognized=5,issue=10"
        } else {
            "verify-own=85,verify-not-recognized=5,issue=10"
        }
        .to_string()
    });
    let mix = crate::bench::parse_mix(&mix).map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = crate::bench::Options {
        concurrency: b.concurrency,
        rate: b.rate,
        duration: b.duration,
        warmup: b.warmup,
        mix,
        connections: b.connections,
    };
    opts.check().map_err(|e| CliError::Usage(e.to_string()))?;
    let fail = |e: BenchError| match e {
        BenchError::Usage(m) => CliError::Usage(m),
        BenchError::Setup(m) => CliError::Failed(format!("bench setup: {m}")),
        BenchError::Unreachable(m) => CliError::Unavailable(m),
        BenchError::Config(m) => CliError::Config(m),
    };
    let node_given = node_flags();
    match b.kind {
        Some(BenchKind::ScaleOpen { config, runs }) => {
            let f = crate::bench::scale::measure_open(&config, runs).map_err(fail)?;
            let json = serde_json::to_string(&f).map_err(|e| CliError::Failed(e.to_string()))?;
            out!("scale-open: {json}");
            return Ok(());
        }
        Some(BenchKind::Scale(s)) => {
            let mut fixed = node_given.clone();
            fixed.extend(
                [
                    ("--self-contained", b.self_contained),
                    ("--mix", b.mix.is_some()),
                    ("--rate", b.rate.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, given)| given.then_some(name)),
            );
            if let Some(flag) = fixed.first() {
                return Err(CliError::Usage(format!(
                    "bench scale makes its own two nodes and loads them closed-loop with \
                     verify-own=50,verify-peer=50: {flag} does not apply"
                )));
            }
            let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
            let o = crate::bench::scale::ScaleOptions {
                agreements: s.agreements,
                revocations: s.revocations,
                dir: s.dir,
                start_runs: s.start_runs,
                rounds: s.rounds,
                // Verification only: the target is verify throughput.
                load: crate::bench::Options {
                    mix: crate::bench::parse_mix("verify-own=50,verify-peer=50")
                        .map_err(|e| CliError::Failed(e.to_string()))?,
                    ..opts
                },
            };
            let report = crate::bench::scale::run(&exe, &o).await.map_err(fail)?;
            out!("{report}");
            return Ok(());
        }
        Some(BenchKind::Propagation { samples, target }) => {
            let mut fixed = node_given.clone();
            if b.self_contained {
                fixed.push("--self-contained");
            }
            if let Some(flag) = fixed.first() {
                return Err(CliError::Usage(format!(
                    "bench propagation makes its own two nodes: {flag} does not apply"
                )));
            }
            let target = match target.as_str() {
                "peer" => crate::bench::propagation::PropagationTarget::Peer,
                other => return Err(CliError::Usage(format!("--target: {other:?} is not peer"))),
            };
            let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
            let report = crate::bench::propagation::run(&exe, target, samples)
                .await
                .map_err(fail)?;
            out!("{report}");
            return Ok(());
        }
        None => {}
    }
    let report = if b.self_contained {
        if let Some(flag) = node_given.first() {
            return Err(CliError::Usage(format!(
                "--self-contained starts and loads nodes of its own: {flag} does not apply"
            )));
        }
        let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
        let nodes = crate::bench::self_contained(&exe).await.map_err(fail)?;
        out!(
            "self-contained: two nodes on loopback; loading Guangdong at {}",
            nodes.target.url
        );
        crate::bench::run(&nodes.target, &opts)
            .await
            .map_err(fail)?
    } else {
        let (url, cert, token) = resolve_node(&b.node)?;
        // The health check (`empty`) needs no token; every other op does.
        let only_empty = opts
            .mix
            .iter()
            .all(|(op, weight)| *op == crate::bench::Op::Empty || *weight == 0);
        if token.is_none() && !only_empty {
            return Err(CliError::Usage(
                "bench needs a caller's token (--token-file, HCMR_TOKEN) for every op but empty"
                    .into(),
            ));
        }
        let wants = |op: crate::bench::Op| opts.mix.iter().any(|(o, _)| *o == op);
        let with_manifest = wants(crate::bench::Op::VerifyManifest);
        let peer_codes = match (&b.peer_dir, &b.peer_token_file) {
            (Some(dir), Some(token_file))
                if wants(crate::bench::Op::VerifyPeer) || with_manifest =>
            {
                let (peer_url, peer_cert, peer_token) = resolve_node_as(
                    &NodeArg {
                        dir: Some(dir.clone()),
                        token_file: Some(token_file.clone()),
                        ..NodeArg::default()
                    },
                    "--peer-dir",
                    "--peer-token-file",
                )?;
                if peer_url == url {
                    return Err(CliError::Usage(format!(
                        "--peer-dir names the node under load ({url}): verify-peer needs codes of \
                         another province's node"
                    )));
                }
                let peer_token = peer_token.unwrap_or_default();
                crate::bench::peer_codes(&peer_url, peer_cert.as_deref(), &peer_token)
                    .await
                    .map_err(fail)?
            }
            _ => Vec::new(),
        };
        // The peer's trip, sealed with its key from its folder (as its origin node would).
        let manifest = match &b.peer_dir {
            Some(dir) if with_manifest => Some(
                crate::bench::peer_manifest(
                    &dir.join(crate::node::CONFIG_FILE),
                    &peer_codes,
                    crate::unix_now(),
                )
                .map_err(fail)?,
            ),
            _ => None,
        };
        let target = crate::bench::Target {
            url,
            cert,
            token,
            pid: b.server_pid,
            peer_codes,
            manifest,
        };
        crate::bench::run(&target, &opts).await.map_err(fail)?
    };
    out!("{report}");
    if report.error_share() > MAX_BENCH_ERROR_SHARE {
        return Err(CliError::Failed(format!(
            "{} of {} requests failed (see the errors above): the figures do not describe the \
             node's normal work",
            report.errors(),
            report.ok() + report.errors()
        )));
    }
    Ok(())
}

/// Above this share of failed requests `hcmr bench` exits with an error after its report.
const MAX_BENCH_ERROR_SHARE: f64 = 0.05;
