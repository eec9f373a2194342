//! `hcmr bench`: a load generator that drives a node in another process over gRPC (TLS, tokens),
//! and reports throughput, latency percentiles (HdrHistogram), errors, and the server's CPU time
//! per 1,000 requests (read from `/proc/<pid>/stat` when the server runs on this machine).
//!
//! Two ways to run it:
//! - **self-contained** (`--self-contained`): makes two province nodes (Sichuan issues, Guangdong
//!   verifies) in a temporary folder, starts them as `hcmr serve` child processes, concludes an
//!   agreement, measures against Guangdong, and stops them;
//! - **against a running node** (`--dir` or `--node/--tls-cert/--token-file`): the caller needs
//!   roles issuer and verifier, and a per-caller rate limit above the load; give `--server-pid`
//!   for the CPU figure, and a peer node (`--peer-dir`, `--peer-token-file`: a caller with role
//!   issuer there) for `verify-peer`. The bench issues codes at both: use test nodes.
//!
//! Closed loop (`--concurrency N`: N requests always in flight) or open loop (`--rate R`:
//! requests start on a fixed schedule, and latency counts from the scheduled start, so a server
//! that falls behind shows it instead of hiding it). The mix is a weighted choice per request
//! among `verify-own`, `verify-peer`, `verify-not-recognized` (a forged code: bad signature),
//! `verify-batch`, `verify-manifest` (a 55-person trip manifest of the peer, sealed with the
//! peer's key from its folder: `manifest`), `board` (BoardPerson of own codes onto trips of 55,
//! each full trip cancelled for the next: `board`; the caller needs role organizer), `issue`,
//! and `empty` (grpc.health.v1 Check: the empty-call baseline). Codes are issued before
//! the measurement starts. A request is "ok" when it got the answer its op expects (recognized,
//! or for `verify-not-recognized` not recognized); every other outcome is counted as an error by
//! its kind (the gRPC status code, an unexpected verdict, or in the open loop a request dropped
//! because too many were late).
//!
//! The ops and options are in `options`, the load driver in `load`, the results and their table
//! in `report`, the server's CPU time in `cpu`, the two nodes of `--self-contained` in
//! `self_contained`, `hcmr bench scale` in [`scale`], and `hcmr bench propagation` (how long a
//! revocation takes to reach a peer) in [`propagation`].

mod board;
mod cpu;
mod load;
mod manifest;
mod options;
pub mod propagation;
mod report;
pub mod scale;
mod self_contained;

pub use load::{peer_codes, run, Target};
pub use manifest::peer_manifest;
pub use options::{parse_mix, Op, Options, BATCH_CODES, MAX_DURATION, MAX_WARMUP, MIN_DURATION};
pub use report::{Failure, OpReport, Report};
pub use self_contained::self_contained;
pub(crate) use self_contained::{init_bench_node, Served};

/// Errors of the bench.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// Setting up nodes, codes or connections failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A node to load, or the peer, could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// A file the bench was pointed at (the node's certificate) is missing or unreadable.
    #[error("{0}")]
    Config(String),
}

/// The error of a failed connection: [`BenchError::Unreachable`] when the node could not be
/// reached, [`BenchError::Usage`] for what the command line got wrong (a bad URL or token, an
/// https URL without a certificate), [`BenchError::Config`] for a certificate file that cannot
/// be read.
fn connect_error(e: crate::client::ClientError, what: &str) -> BenchError {
    use crate::client::ClientError;
    match e {
        e @ ClientError::Unreachable { .. } => BenchError::Unreachable(format!("{what}{e}")),
        e @ (ClientError::BadUrl { .. }
        | ClientError::NoCertificate { .. }
        | ClientError::BadToken) => BenchError::Usage(format!("{what}{e}")),
        e @ (ClientError::Tls(_) | ClientError::WrongCertificate { .. }) => {
            BenchError::Config(format!("{what}{e}"))
        }
    }
}
