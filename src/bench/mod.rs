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
//! `issue`, and `empty` (grpc.health.v1 Check: the empty-call baseline). Codes are issued before
//! the measurement starts. A request is "ok" when it got the answer its op expects (recognized,
//! or for `verify-not-recognized` not recognized); every other outcome is counted as an error by
//! its kind (the gRPC status code, an unexpected verdict, or in the open loop a request dropped
//! because too many were late).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub mod scale;

use crate::client::NodeChannel;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;

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

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Verify a code the target node issued.
    VerifyOwn,
    /// Verify a peer province's code (recognized under the agreement).
    VerifyPeer,
    /// Verify a forged code (refused: bad signature).
    VerifyNotRecognized,
    /// BatchVerifyHealthCodes with [`BATCH_CODES`] own codes in one call (a checkpoint
    /// gateway); counted per call, so codes per second are [`BATCH_CODES`] times the calls.
    VerifyBatch,
    /// Issue a code (the issued-code log is durable before the answer).
    Issue,
    /// grpc.health.v1 Check: the cheapest call through the same server and client.
    Empty,
}

impl Op {
    /// Every op, in report order.
    pub const ALL: [Op; 6] = [
        Op::VerifyOwn,
        Op::VerifyPeer,
        Op::VerifyNotRecognized,
        Op::VerifyBatch,
        Op::Issue,
        Op::Empty,
    ];

    /// Its name in `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Op::VerifyOwn => "verify-own",
            Op::VerifyPeer => "verify-peer",
            Op::VerifyNotRecognized => "verify-not-recognized",
            Op::VerifyBatch => "verify-batch",
            Op::Issue => "issue",
            Op::Empty => "empty",
        }
    }
}

/// Codes in one BatchVerifyHealthCodes call of [`Op::VerifyBatch`].
pub const BATCH_CODES: usize = 64;

/// Parses `verify-own=70,verify-peer=20,issue=10` into weights.
///
/// # Errors
/// [`BenchError::Usage`] naming the part at fault.
pub fn parse_mix(s: &str) -> Result<Vec<(Op, u32)>, BenchError> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, w) = part.split_once('=').unwrap_or((part, "1"));
        let op = Op::ALL
            .into_iter()
            .find(|o| o.name() == name.trim())
            .ok_or_else(|| {
                BenchError::Usage(format!(
                    "--mix {part:?}: expected one of verify-own, verify-peer, verify-not-recognized, verify-batch, issue, empty"
                ))
            })?;
        if seen.contains(&op) {
            return Err(BenchError::Usage(format!(
                "--mix: {} is given more than once",
                op.name()
            )));
        }
        seen.push(op);
        let w: u32 = w.trim().parse().map_err(|_| {
            BenchError::Usage(format!(
                "--mix {part:?}: the weight must be a whole number from 0 to {}",
                u32::MAX
            ))
        })?;
        if w > 0 {
            out.push((op, w));
        }
    }
    if out.is_empty() {
        return Err(BenchError::Usage(
            "--mix: no op with a positive weight".into(),
        ));
    }
    Ok(out)
}

/// The shortest measurement, 1 second: a shorter one ends before there are calls enough to
/// tell a p99.9 (or, at `1ns`, any call at all).
pub const MIN_DURATION: Duration = Duration::from_secs(1);
/// The longest measurement, 24 hours (so every deadline fits the clock).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The longest warm-up, 1 hour.
pub const MAX_WARMUP: Duration = Duration::from_secs(3600);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight (closed loop), or the most in flight (open loop).
    pub concurrency: usize,
    /// Requests per second (open loop); `None`: closed loop.
    pub rate: Option<u64>,
    /// How long to measure.
    pub duration: Duration,
    /// Untimed warm-up before the measurement.
    pub warmup: Duration,
    /// The mix.
    pub mix: Vec<(Op, u32)>,
    /// HTTP/2 connections the requests are spread over.
    pub connections: usize,
}

impl Options {
    /// Checks the options before anything is started.
    ///
    /// # Errors
    /// [`BenchError::Usage`] naming the flag: a zero `--concurrency`, `--connections` or
    /// `--rate`; a `--duration` under [`MIN_DURATION`] or over [`MAX_DURATION`]; a `--warmup`
    /// over [`MAX_WARMUP`].
    pub fn check(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Usage(m.into()));
        if self.concurrency == 0 {
            return bad("--concurrency must be at least 1");
        }
        if self.connections == 0 {
            return bad("--connections must be at least 1");
        }

        if self.rate == Some(0) {
            return bad("--rate must be at least 1 request per second");
        }
        if self.duration < MIN_DURATION {
            return bad("--duration must be at least 1s");
        }
        if self.duration > MAX_DURATION {
            return bad("--duration must be at most 24h");
        }
        if self.warmup > MAX_WARMUP {
            return bad("--warmup must be at most 1h");
        }
        Ok(())
    }
}

/// The canonical name of a gRPC status code (as in grpc/status.proto).
fn status_name(c: tonic::Code) -> &'static str {
    use tonic::Code;
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Codes issued per node before a run: verify ops cycle through them.
const CODES: u16 = 256;

/// Issues `n` green codes (synthetic subjects) at the node behind `ch`.
///
/// # Errors
/// The first failed call's status.
async fn issue_codes(ch: &NodeChannel, n: u16) -> Result<Vec<String>, tonic::Status> {
    let mut hc = HealthCodeServiceClient::new(ch.clone());
    let mut codes = Vec::with_capacity(usize::from(n));
    for i in 0..n {
        codes.push(
            hc.issue_health_code(issue_request(i))
                .await?
                .into_inner()
                .code,
        );
    }
    Ok(codes)
}

/// Issues the codes for `verify-peer` at a peer node (a caller with role issuer there).
///
/// # Errors
/// [`BenchError::Setup`] naming the peer.
pub async fn peer_codes(
    url: &str,
    cert: Option<&Path>,
    token: &str,
) -> Result<Vec<String>, BenchError> {
    let ch = crate::client::connect(url, cert, Some(token))
        .await
        .map_err(|e| connect_error(e, "peer node: "))?;
    issue_codes(&ch, CODES).await.map_err(|e| {
        issue_error(
            &e,
            &format!("issuing the peer codes at {url}"),
            "--peer-token-file",
        )
    })
}

/// The error of issuing the bench's codes: a caller without role issuer is the command line's
/// fault ([`BenchError::Usage`], naming `token_flag`); anything else a setup error.
fn issue_error(e: &tonic::Status, what: &str, token_flag: &str) -> BenchError {
    if e.code() == tonic::Code::PermissionDenied {
        BenchError::Usage(format!(
            "{what}: {}: the caller of {token_flag} needs role issuer (the bench issues the \
             codes it verifies before the load)",
            e.message()
        ))
    } else {
        BenchError::Setup(format!("{what}: {e}"))
    }
}

/// Where to send the load.
pub struct Target {
    /// The node under load.
    pub url: String,
    /// Its certificate to pin.
    pub cert: Option<PathBuf>,
    /// A token with roles issuer and verifier; `None` for a mix of `empty` only (the health
    /// check needs none).
    pub token: Option<String>,
    /// Its process, for the CPU figure.
    pub pid: Option<u32>,
    /// Codes for verify-peer (issued by a peer with an agreement).
    pub peer_codes: Vec<String>,
}

/// Results of one op.
#[derive(Debug, Clone)]
pub struct OpReport {
    /// The op.
    pub op: Op,
    /// Requests that got the answer the op expects.
    pub ok: u64,
    /// Failed requests by kind ([`Failure`]'s text): how many of each.
    pub failures: BTreeMap<String, u64>,
    /// Latency of successful requests, microseconds.
    pub latency: Histogram<u64>,
}

impl OpReport {
    /// Failed requests of every kind.
    pub fn errors(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// Why a request did not count as ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The call failed with this gRPC status (a transport failure is `UNAVAILABLE` or
    /// `UNKNOWN`).
    Status(tonic::Code),
    /// The call succeeded with a verdict the op does not expect, for this reason (the proto
    /// `Reason` name).
    Verdict(&'static str),
    /// Open loop: not sent, because `concurrency` requests were already in flight (late).
    Dropped,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(c) => f.write_str(status_name(*c)),
            Failure::Verdict(reason) => write!(f, "unexpected verdict ({reason})"),
            Failure::Dropped => f.write_str("dropped (too many in flight)"),
        }
    }
}

/// Results of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per op.
    pub ops: Vec<OpReport>,
    /// The measured time.
    pub elapsed: Duration,
    /// Server CPU seconds (user + system) during the measurement, when known.
    pub server_cpu_secs: Option<f64>,
    /// The server's process, when given.
    pub server_pid: Option<u32>,
    /// The options.
    pub concurrency: usize,
    /// Open-loop rate.
    pub rate: Option<u64>,
}

impl Report {
    /// All successful requests.
    pub fn ok(&self) -> u64 {
        self.ops.iter().map(|o| o.ok).sum()
    }

    /// All failed requests.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(OpReport::errors).sum()
    }

    /// Failed requests over all requests, 0 to 1.
    pub fn error_share(&self) -> f64 {
        let all = self.ok() + self.errors();
        if all == 0 {
            0.0
        } else {
            self.errors() as f64 / all as f64
        }
    }

    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency over every op, microseconds.
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for o in &self.ops {
            let _ = all.add(&o.latency);
        }
        all
    }

    /// Server CPU milliseconds per 1,000 successful requests, when known.
    pub fn cpu_ms_per_1000(&self) -> Option<f64> {
        let ok = self.ok();
        self.server_cpu_secs
            .filter(|_| ok > 0)
            .map(|s| s * 1000.0 * 1000.0 / ok as f64)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.rate {
            Some(r) => format!(
                "open loop at {r}/s (at most {} in flight)",
                self.concurrency
            ),
            None => format!("closed loop, {} in flight", self.concurrency),
        };
        writeln!(f, "{mode}, {:.1} s measured", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "{:<24}{:>12}{:>11}{:>12}{:>10}{:>10}{:>10}",
            "op", "ok", "errors", "per s", "p50 us", "p99 us", "p99.9 us"
        )?;
        let line =
            |f: &mut std::fmt::Formatter<'_>, name: &str, ok: u64, err: u64, h: &Histogram<u64>| {
                writeln!(
                    f,
                    "{:<24}{:>12}{:>11}{:>12.0}{:>10}{:>10}{:>10}",
                    name,
                    ok,
                    err,
                    ok as f64 / self.elapsed.as_secs_f64(),
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999)
                )
            };
        for o in &self.ops {
            line(f, o.op.name(), o.ok, o.errors(), &o.latency)?;
        }
        line(f, "all", self.ok(), self.errors(), &self.latency())?;
        for o in self.ops.iter().filter(|o| o.errors() > 0) {
            let kinds: Vec<String> = o.failures.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(f, "errors of {}: {}", o.op.name(), kinds.join(", "))?;
        }
        let failed = |kind: &str| self.ops.iter().any(|o| o.failures.contains_key(kind));
        if failed("RESOURCE_EXHAUSTED") {
            writeln!(
                f,
                "hint: RESOURCE_EXHAUSTED is the node's per-caller rate limit ([limits] \
                 caller_requests_per_sec and caller_burst in hcmr.toml): raise it for a bench"
            )?;
        }
        if self.errors() > 0 {
            writeln!(
                f,
                "warning: {:.1} % of requests failed; throughput, latency and CPU count the ok \
                 requests only",
                self.error_share() * 100.0
            )?;
        }
        if self.server_cpu_secs == Some(0.0) && self.ok() >= 10_000 {
            writeln!(
                f,
                "warning: the server process used no CPU during the load: is --server-pid the \
                 node under load?"
            )?;
        }
        match (
            self.server_cpu_secs,
            self.cpu_ms_per_1000(),
            self.server_pid,
        ) {
            (Some(secs), _, _) if secs < MIN_CPU_SECS => writeln!(
                f,
                "server CPU: {secs:.2} s in all, too little to give per request (the kernel \
                 counts CPU time in ticks of 10 ms): measure longer or at a higher rate"
            ),
            (Some(secs), Some(ms), _) => writeln!(
                f,
                "server CPU: {secs:.2} s, {ms:.1} ms per 1,000 requests ({ms:.1} us per request)"
            ),
            (_, _, Some(pid)) => writeln!(
                f,
                "server CPU: unknown (process {pid} was gone at the end, or nothing succeeded)"
            ),
            (_, _, None) => writeln!(
                f,
                "server CPU: unknown (give --server-pid for a local server)"
            ),
        }
    }
}

/// Less server CPU than this over a run is not divided per request: `/proc` counts it in ticks
/// of 10 ms.
const MIN_CPU_SECS: f64 = 0.05;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// User + system CPU seconds of process `pid` so far, from `/proc/<pid>/stat`.
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A deterministic generator for the mix (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, mix: &[(Op, u32)]) -> Op {
        let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut r = self.next() % total;
        for (op, w) in mix {
            if r < u64::from(*w) {
                return *op;
            }
            r -= u64::from(*w);
        }
        mix[0].0
    }
}

fn subject(seq: u16) -> proto::Subject {
    proto::Subject {
        name: "王建国".into(),
        document_type: proto::DocumentType::ResidentIdentityCard as i32,
        document_number: crate::identity::synthetic_resident_id("440106", "19900101", seq % 999),
    }
}

fn issue_request(seq: u16) -> proto::IssueHealthCodeRequest {
    proto::IssueHealthCodeRequest {
        subject: Some(subject(seq)),
        status: proto::HealthStatus::Green as i32,
        status_valid_until: crate::unix_now() + 86_400,
        code_lifetime_secs: 3_600,
        qr_format: 0,
    }
}

/// A forged copy of `code`: one bit of its signature's `R` flipped, so it decodes, names a
/// trusted kid, and fails the signature check (reason BAD_SIGNATURE).
fn forge(code: &str) -> String {
    use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};
    let Ok(cose) = crate::code::transport::unwrap(code) else {
        return code.to_string();
    };
    if let Ok(mut s) = CoseSign1::from_tagged_slice(&cose) {
        s.signature[10] ^= 1;
        if let Ok(bytes) = s.to_tagged_vec() {
            return crate::code::transport::wrap(&bytes);
        }
    } else if let Ok(mut s) = CoseSign1::from_slice(&cose) {
        s.signature[10] ^= 1;
        if let Ok(bytes) = s.to_vec() {
            return crate::code::transport::wrap(&bytes);
        }
    }
    code.to_string()
}

/// Everything a request needs, shared by the workers.
struct Load {
    channels: Vec<NodeChannel>,
    own: Vec<String>,
    peer: Vec<String>,
    forged: Vec<String>,
    mix: Vec<(Op, u32)>,
}

/// Ok when `v` has the verdict `want`, else the verdict's reason.
fn expect(v: &proto::VerifyHealthCodeResponse, want: proto::Verdict) -> Result<(), Failure> {
    if v.verdict == want as i32 {
        return Ok(());
    }
    Err(Failure::Verdict(
        proto::Reason::try_from(v.reason).map_or("UNKNOWN_REASON", |r| r.as_str_name()),
    ))
}

/// One request; Ok(()) when it got the answer its op expects.
async fn one(load: &Load, ch: NodeChannel, op: Op, n: u64) -> Result<(), Failure> {
    let status = |s: tonic::Status| Failure::Status(s.code());
    let pick = |v: &Vec<String>| v[(n as usize) % v.len()].clone();
    let verify = |code: String, ch: NodeChannel| async move {
        HealthCodeServiceClient::new(ch)
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code,
                checkpoint_id: "bench".into(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(status)
    };
    match op {
        Op::VerifyOwn | Op::VerifyPeer => {
            let v = verify(
                pick(if op == Op::VerifyOwn {
                    &load.own
                } else {
                    &load.peer
                }),
                ch,
            )
            .await?;
            expect(&v, proto::Verdict::Recognized)
        }
        Op::VerifyNotRecognized => {
            let v = verify(pick(&load.forged), ch).await?;
            expect(&v, proto::Verdict::NotRecognized)
        }
        Op::VerifyBatch => {
            let start = n as usize % load.own.len();
            let codes = (0..BATCH_CODES)
                .map(|i| load.own[(start + i) % load.own.len()].clone())
                .collect();
            let r = HealthCodeServiceClient::new(ch)
                .batch_verify_health_codes(proto::BatchVerifyHealthCodesRequest {
                    codes,
                    checkpoint_id: "bench".into(),
                })
                .await
                .map_err(status)?
                .into_inner();
            if r.results.len() != BATCH_CODES {
                return Err(Failure::Verdict("WRONG_COUNT"));
            }
            r.results
                .iter()
                .try_for_each(|v| expect(v, proto::Verdict::Recognized))
        }
        Op::Issue => HealthCodeServiceClient::new(ch)
            .issue_health_code(issue_request(n as u16))
            .await
            .map(|_| ())
            .map_err(status),
        Op::Empty => tonic_health::pb::health_client::HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|_| ())
            .map_err(status),
    }
}

/// Per-worker results, one [`OpReport`] per op of [`Op::ALL`].
type Tally = Vec<OpReport>;

fn tally() -> Tally {
    Op::ALL
        .into_iter()
        .map(|op| OpReport {
            op,
            ok: 0,
            failures: BTreeMap::new(),
            latency: new_histogram(),
        })
        .collect()
}

fn record(t: &mut Tally, op: Op, outcome: Result<(), Failure>, us: u64) {
    let e = t
        .iter_mut()
        .find(|e| e.op == op)
        .expect("every op has a slot");
    match outcome {
        Ok(()) => {
            e.ok += 1;
            let _ = e.latency.record(us.max(1));
        }
        Err(f) => *e.failures.entry(f.to_string()).or_default() += 1,
    }
}

/// Runs the load against `target` and reports.
///
/// # Errors
/// [`BenchError`] when the target cannot be reached or the codes cannot be made.
pub async fn run(target: &Target, o: &Options) -> Result<Report, BenchError> {
    o.check()?;
    let needs = |op: Op| o.mix.iter().any(|(x, _)| *x == op);
    if needs(Op::VerifyPeer) && target.peer_codes.is_empty() {
        return Err(BenchError::Usage(
            "the mix has verify-peer, which needs codes of a peer province: give --peer-dir and \
             --peer-token-file (a node with an agreement with this one), or a --mix without \
             verify-peer"
                .into(),
        ));
    }
    if let Some(pid) = target.pid {
        if process_cpu_secs(pid).is_none() {
            return Err(BenchError::Usage(format!(
                "--server-pid {pid}: no such process on this machine (no /proc/{pid}/stat)"
            )));
        }
    }
    let mut channels = Vec::new();
    // A connection beyond the requests in flight would carry nothing.
    for _ in 0..o.connections.min(o.concurrency) {
        channels.push(
            crate::client::connect(&target.url, target.cert.as_deref(), target.token.as_deref())
                .await
                .map_err(|e| connect_error(e, ""))?,
        );
    }
    check_health(&channels[0]).await?;
    // Codes first, outside the measurement.
    let mut own = Vec::new();
    if needs(Op::VerifyOwn) || needs(Op::VerifyNotRecognized) || needs(Op::VerifyBatch) {
        own = issue_codes(&channels[0], CODES)
            .await
            .map_err(|e| issue_error(&e, "issuing the codes to verify", "--token-file"))?;
    }
    let forged = own
        .iter()
        .chain(&target.peer_codes)
        .map(|c| forge(c))
        .collect();
    let load = Arc::new(Load {
        channels,
        own,
        peer: target.peer_codes.clone(),
        forged,
        mix: o.mix.clone(),
    });

    probe(&load).await?;
    // Warm-up, untimed.
    if !o.warmup.is_zero() {
        run_phase(&load, o, o.warmup).await;
    }
    let cpu_before = target.pid.and_then(process_cpu_secs);
    let started = Instant::now();
    let tallies = run_phase(&load, o, o.duration).await;
    let mut elapsed = started.elapsed();
    if o.rate.is_some() {
        // The open loop's schedule spans the whole duration, however few requests it held.
        elapsed = elapsed.max(o.duration);
    }
    let cpu_after = target.pid.and_then(process_cpu_secs);
    let mut total = tally();
    for t in tallies {
        for (sum, part) in total.iter_mut().zip(t) {
            sum.ok += part.ok;
            for (kind, n) in part.failures {
                *sum.failures.entry(kind).or_default() += n;
            }
            let _ = sum.latency.add(&part.latency);
        }
    }
    Ok(Report {
        ops: total
            .into_iter()
            .filter(|r| r.ok + r.errors() > 0)
            .collect(),
        elapsed,
        server_cpu_secs: cpu_before.zip(cpu_after).map(|(a, b)| b - a),
        server_pid: target.pid,
        concurrency: o.concurrency,
        rate: o.rate,
    })
}

/// One health check before anything else: it needs no token, so a node that fails it cannot
/// be loaded at all (e.g. an http:// URL to a node that serves TLS, answered INVALID_ARGUMENT).
///
/// # Errors
/// [`BenchError::Unreachable`] for UNAVAILABLE, [`BenchError::Usage`] for INVALID_ARGUMENT,
/// else [`BenchError::Setup`]; each with the node's message.
async fn check_health(ch: &NodeChannel) -> Result<(), BenchError> {
    let health = tonic_health::pb::health_client::HealthClient::new(ch.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    if let Err(s) = health {
        let what = format!(
            "a first health check failed with {}: {}",
            status_name(s.code()),
            s.message()
        );
        return Err(match s.code() {
            tonic::Code::Unavailable => BenchError::Unreachable(what),
            tonic::Code::InvalidArgument => BenchError::Usage(what),
            _ => BenchError::Setup(what),
        });
    }
    Ok(())
}

/// Makes one call of each op of the mix before the load, and refuses to start it when that call
/// failed in a way every call of the run would: the token's caller lacks the op's role
/// (PERMISSION_DENIED: [`BenchError::Usage`]), or a verification got a verdict the op does not
/// expect (for verify-peer, a peer whose province has no agreement in force with this node's:
/// [`BenchError::Setup`] with the reason). Other failures (a rate limit, an overloaded node) are
/// left to the run, which counts them.
///
/// # Errors
/// As above.
async fn probe(load: &Load) -> Result<(), BenchError> {
    for (op, _) in &load.mix {
        let role = match op {
            Op::Issue => "issuer",
            Op::Empty => "none",
            _ => "verifier",
        };
        match one(load, load.channels[0].clone(), *op, 0).await {
            Err(f @ Failure::Status(tonic::Code::PermissionDenied)) => {
                return Err(BenchError::Usage(format!(
                    "a first {} call failed with {f}: the token's caller needs role {role} at the \
                     node under load",
                    op.name()
                )))
            }
            Err(f @ Failure::Verdict(_)) => {
                let hint = if *op == Op::VerifyPeer {
                    ": does the peer's province have an agreement in force with this node's, \
                     recognizing its green codes?"
                } else {
                    ""
                };
                return Err(BenchError::Setup(format!(
                    "a first {} call got an {f}{hint}",
                    op.name()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs the load for `duration`; returns each worker's tally.
async fn run_phase(load: &Arc<Load>, o: &Options, duration: Duration) -> Vec<Tally> {
    let deadline = Instant::now() + duration;
    match o.rate {
        None => {
            // The workers report to one tally (one set of histograms, however many workers).
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for w in 0..o.concurrency {
                let load = load.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1));
                    let ch = load.channels[w % load.channels.len()].clone();
                    let mut n = w as u64;
                    while Instant::now() < deadline {
                        let op = rng.pick(&load.mix);
                        let start = Instant::now();
                        let outcome = one(&load, ch.clone(), op, n).await;
                        let down = outcome == Err(Failure::Status(tonic::Code::Unavailable));
                        let _ = tx.send((op, outcome, start.elapsed().as_micros() as u64));
                        if down {
                            // A node that is gone is not called in a tight loop.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        n += 1;
                    }
                });
            }
            drop(tx);
            let mut t = tally();
            while let Some((op, outcome, us)) = rx.recv().await {
                record(&mut t, op, outcome, us);
            }
            vec![t]
        }
        Some(rate) => {
            // A thread of its own paces the requests: its sleep wakes within tens of
            // microseconds, where the runtime's timer rounds up to whole milliseconds, which
            // released requests in bursts and counted up to a millisecond of the client's own
            // lateness as latency.
            let nanos_per_request = 1_000_000_000 / rate.max(1);
            let in_flight = Arc::new(tokio::sync::Semaphore::new(o.concurrency));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let runtime = tokio::runtime::Handle::current();
            let load = load.clone();
            let pacer = std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
                let first = Instant::now();
                for n in 0u64.. {
                    let scheduled = first + Duration::from_nanos(nanos_per_request * n);
                    // Past the deadline by the schedule, or by the clock when this thread cannot
                    // keep up with the rate.
                    if scheduled >= deadline || Instant::now() >= deadline {
                        break;
                    }
                    let now = Instant::now();
                    if scheduled > now {
                        std::thread::sleep(scheduled - now);
                    }
                    let op = rng.pick(&load.mix);
                    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                        // More than `concurrency` late: counted as an error of that op.
                        let _ = tx.send((op, Err(Failure::Dropped), 0));
                        continue;
                    };
                    let load = load.clone();
                    let tx = tx.clone();
                    let ch = load.channels[(n as usize) % load.channels.len()].clone();
                    runtime.spawn(async move {
                        let outcome = one(&load, ch, op, n).await;
                        // Latency from the scheduled start: no coordinated omission.
                        let _ = tx.send((op, outcome, scheduled.elapsed().as_micros() as u64));
                        drop(permit);
                    });
                }
            });
            let mut t = tally();
            while let Some((op, outcome, us)) = rx.recv().await {
                record(&mut t, op, outcome, us);
            }
            let _ = pacer.join();
            vec![t]
        }
    }
}

/// Two nodes of this machine, started as `hcmr serve` processes, and the bench's target at
/// Guangdong; stopped when dropped.
pub struct SelfContained {
    /// Stopped before the folder is removed (fields drop in this order).
    _children: Vec<Served>,
    _dir: tempfile::TempDir,
    /// The target (Guangdong), with Sichuan's codes as peer codes.
    pub target: Target,
}

/// A node the bench started (`hcmr serve` as a child process): killed and waited for when
/// dropped, so a folder removed after it is no longer written to. Started with
/// `--exit-with-parent <the bench's pid>`, so it also stops by itself (within half a second) when
/// the bench is killed outright, even before the node has finished starting.
pub(crate) struct Served(std::process::Child);

impl Served {
    /// Starts `exe serve --config config`, its log at level error to nowhere.
    ///
    /// # Errors
    /// [`BenchError::Setup`] when the process cannot be started.
    pub(crate) fn spawn(exe: &Path, config: &Path) -> Result<Served, BenchError> {
        std::process::Command::new(exe)
            .arg("serve")
            .arg(format!("--exit-with-parent={}", std::process::id()))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(Served)
            .map_err(|e| BenchError::Setup(format!("{}: {e}", exe.display())))
    }

    /// Its process id.
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::Setup(e.to_string()))
}

/// A node made for a bench: initialised in `dir` on a free loopback port, with the per-caller
/// rate limit and the concurrency limit raised out of the way of the load, and a caller "bench"
/// with `roles`.
pub(crate) struct BenchNode {
    /// Its hcmr.toml.
    pub(crate) config_path: std::path::PathBuf,
    /// The configuration as loaded.
    pub(crate) config: crate::node::Config,
    /// Its gRPC port on 127.0.0.1.
    pub(crate) port: u16,
    /// The bench caller's token.
    pub(crate) token: String,
}

/// Makes a [`BenchNode`] of `province` in `dir`.
///
/// # Errors
/// [`BenchError::Setup`] naming what failed.
pub(crate) async fn init_bench_node(
    province: crate::province::Province,
    dir: &Path,
    roles: &[crate::callers::Role],
) -> Result<BenchNode, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let port = free_port()?;
    let mut opts =
        crate::node::InitOptions::new(format!("127.0.0.1:{port}").parse().map_err(|e| setup(&e))?);
    opts.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let config_path = crate::node::init_node(province, dir, &opts)
        .await
        .map_err(|e| setup(&e))?;
    let text = std::fs::read_to_string(&config_path).map_err(|e| setup(&e))?;
    let text = text
        .replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 10000000",
        )
        .replace("caller_burst = 400", "caller_burst = 10000000")
        .replace(
            "max_concurrent_requests = 512",
            "max_concurrent_requests = 4096",
        )
        // One caller from one address is the whole load here.
        .replace(
            "max_concurrent_per_caller = 64",
            "max_concurrent_per_caller = 4096",
        )
        .replace(
            "max_concurrent_per_address = 256",
            "max_concurrent_per_address = 4096",
        )
        .replace(
            "max_connections_per_address = 64",
            "max_connections_per_address = 4096",
        );
    std::fs::write(&config_path, text).map_err(|e| setup(&e))?;
    let config = crate::node::Config::load(&config_path).map_err(|e| setup(&e))?;
    let token = crate::node::add_caller_offline(&config, "bench", roles)
        .await
        .map_err(|e| setup(&e))?;
    Ok(BenchNode {
        config_path,
        config,
        port,
        token: token.to_string(),
    })
}

/// Makes and starts the two nodes with `exe serve` (this binary), raises their per-caller limits
/// out of the way, concludes an agreement, and issues 256 Sichuan codes for verify-peer.
///
/// # Errors
/// [`BenchError::Setup`].
pub async fn self_contained(exe: &Path) -> Result<SelfContained, BenchError> {
    use crate::proto::federation_service_client::FederationServiceClient;
    use crate::proto::operator_service_client::OperatorServiceClient;
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| setup(&e))?;
    let mut children = Vec::new();
    let mut nodes = Vec::new();
    for code in [510000u32, 440000] {
        let p = crate::province::Province::from_code(code).map_err(|e| setup(&e))?;
        let made = init_bench_node(
            p,
            &dir.path().join(code.to_string()),
            &[
                crate::callers::Role::Issuer,
                crate::callers::Role::Verifier,
                crate::callers::Role::Admin,
            ],
        )
        .await?;
        let (path, port, token) = (made.config_path, made.port, made.token);
        children.push(Served::spawn(exe, &path)?);
        nodes.push((
            format!("https://127.0.0.1:{port}"),
            dir.path().join(code.to_string()).join("tls/node.crt"),
            token.to_string(),
        ));
    }
    let mut sc = None;
    let mut gd = None;
    for (i, (url, cert, token)) in nodes.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ch = loop {
            if let Ok(ch) = crate::client::connect(url, Some(cert), Some(token)).await {
                if OperatorServiceClient::new(ch.clone())
                    .list_callers(proto::ListCallersRequest {})
                    .await
                    .is_ok()
                {
                    break ch;
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!("node at {url} did not start")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if i == 0 {
            sc = Some(ch);
        } else {
            gd = Some(ch);
        }
    }
    let (sc, gd) = (sc.expect("two nodes"), gd.expect("two nodes"));
    let kid = FederationServiceClient::new(sc.clone())
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .map_err(|e| setup(&e))?
        .into_inner()
        .keys
        .first()
        .map(|k| hex::encode(&k.kid))
        .ok_or_else(|| BenchError::Setup("Sichuan has no key".into()))?;
    let map = |pairs: &[(i32, i32)]| {
        pairs
            .iter()
            .map(|(a, b)| proto::StatusMapping {
                issued: *a,
                counts_as: *b,
            })
            .collect::<Vec<_>>()
    };
    let (g, r) = (
        proto::HealthStatus::Green as i32,
        proto::HealthStatus::Red as i32,
    );
    let now = crate::unix_now();
    let created = OperatorServiceClient::new(gd.clone())
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: nodes[0].0.clone(),
            peer_codes_here: map(&[(g, g), (r, r)]),
            our_codes_there: map(&[(g, g), (r, r)]),
            max_code_age_secs: 86_400,
            max_trust_age_secs: 0,
            amends: String::new(),
            expected_peer_kid: kid,
            effective_from: now - 10,
            effective_until: now + 30 * 86_400,
        })
        .await
        .map_err(|e| setup(&e))?
        .into_inner()
        .agreement
        .ok_or_else(|| BenchError::Setup("no agreement".into()))?;
    OperatorServiceClient::new(sc.clone())
        .approve_agreement(proto::ApproveAgreementRequest { id: created.id })
        .await
        .map_err(|e| setup(&e))?;
    let peer_codes = issue_codes(&sc, CODES).await.map_err(|e| setup(&e))?;
    let pid = children.get(1).map(Served::id);
    Ok(SelfContained {
        _children: children,
        _dir: dir,
        target: Target {
            url: nodes[1].0.clone(),
            cert: Some(nodes[1].1.clone()),
            token: Some(nodes[1].2.clone()),
            pid,
            peer_codes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_name_the_bad_part() {
        assert_eq!(
            parse_mix("verify-own=70,issue=30").unwrap(),
            vec![(Op::VerifyOwn, 70), (Op::Issue, 30)]
        );
        assert_eq!(parse_mix("empty").unwrap(), vec![(Op::Empty, 1)]);
        assert!(parse_mix("verify=1")
            .unwrap_err()
            .to_string()
            .contains("\"verify=1\""));
        assert!(parse_mix("issue=x").is_err());
        assert!(parse_mix("issue=0").is_err());
        assert_eq!(
            parse_mix("verify-own=1,empty=9,empty=0")
                .unwrap_err()
                .to_string(),
            "--mix: empty is given more than once"
        );
    }

    #[test]
    fn an_unexpected_verdict_is_named_by_its_reason() {
        let v = proto::VerifyHealthCodeResponse {
            verdict: proto::Verdict::NotRecognized as i32,
            reason: proto::Reason::NoAgreement as i32,
            ..Default::default()
        };
        assert_eq!(expect(&v, proto::Verdict::NotRecognized), Ok(()));
        let f = expect(&v, proto::Verdict::Recognized).unwrap_err();
        assert_eq!(f, Failure::Verdict("REASON_NO_AGREEMENT"));
        assert_eq!(f.to_string(), "unexpected verdict (REASON_NO_AGREEMENT)");
        assert_eq!(
            Failure::Status(tonic::Code::ResourceExhausted).to_string(),
            "RESOURCE_EXHAUSTED"
        );
    }

    #[test]
    fn the_mix_is_followed() {
        let mut r = Rng(7);
        let mix = [(Op::VerifyOwn, 3), (Op::Issue, 1)];
        let n = (0..40_000).filter(|_| r.pick(&mix) == Op::Issue).count();
        assert!((9_000..11_000).contains(&n), "{n}");
    }

    #[test]
    fn cpu_of_this_process_is_read_from_proc() {
        let a = process_cpu_secs(std::process::id()).unwrap();
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let b = process_cpu_secs(std::process::id()).unwrap();
        assert!(b >= a);
    }

    #[test]
    fn a_forged_code_decodes_with_the_same_claims_and_a_failing_signature() {
        let key = crate::keys::NodeKey::from_seed(&[0x51; 32]);
        let claims = crate::code::Claims {
            iss: "510000".into(),
            iat: 1_700_000_000,
            exp: 1_700_000_300,
            status: 1,
            status_valid_until: 1_701_000_000,
            subject: crate::code::Subject {
                masked_name: "张*三".into(),
                document_type: crate::identity::DocumentType::ResidentIdentityCard,
                masked_document_number: "5101*1234".into(),
                subject_hash: crate::identity::SubjectHash([9; 8]),
            },
        };
        let code = crate::code::encode(&claims, &key);
        let real = crate::code::HealthCode::decode(&code).unwrap();
        assert!(real.signature_valid(&key.public()));
        let forged = forge(&code);
        assert_ne!(forged, code);
        let f = crate::code::HealthCode::decode(&forged).unwrap();
        assert_eq!(f.claims, real.claims);
        assert_eq!(f.kid, real.kid);
        assert!(!f.signature_valid(&key.public()));
        // Not a code at all: returned as it is.
        assert_eq!(forge("HCMR1:!"), "HCMR1:!");
    }
}
