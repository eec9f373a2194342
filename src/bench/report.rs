//! The results of a run: per op, the requests that succeeded, the failures by kind and the
//! latency histogram (HdrHistogram, microseconds); the table `hcmr bench` prints.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::Op;

/// The canonical name of a gRPC status code (as in grpc/status.proto).
pub(super) fn status_name(c: tonic::Code) -> &'static str {
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

pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}
