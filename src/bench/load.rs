//! The load driver: codes issued before the measurement, one probe call per op, then the closed
//! or open loop of requests, each counted as ok or as a failure of its kind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::board::Boarding;
use super::cpu::process_cpu_secs;
use super::report::{new_histogram, status_name};
use super::{connect_error, BenchError, Failure, Op, OpReport, Options, Report, BATCH_CODES};
use crate::client::NodeChannel;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::status::HealthStatus;
use crate::synthetic::{forge_signature, Resident};

/// Codes issued per node before a run: verify ops cycle through them.
pub(super) const CODES: u16 = 256;

/// Issues `n` green codes (synthetic subjects) at the node behind `ch`.
///
/// # Errors
/// The first failed call's status.
pub(super) async fn issue_codes(ch: &NodeChannel, n: u16) -> Result<Vec<String>, tonic::Status> {
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
    /// The peer's trip manifest for verify-manifest ([`super::peer_manifest`]).
    pub manifest: Option<String>,
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

/// A request for a green code of a synthetic Guangdong resident; `seq` varies the document
/// number.
pub(super) fn issue_request(seq: u16) -> proto::IssueHealthCodeRequest {
    Resident {
        name: "王建国",
        address: "440106",
        birth: "19900101",
        seq: seq % 999,
    }
    .issue_request(HealthStatus::Green, 86_400, 3_600)
}

/// Everything a request needs, shared by the workers.
struct Load {
    channels: Vec<NodeChannel>,
    own: Vec<String>,
    peer: Vec<String>,
    forged: Vec<String>,
    manifest: String,
    boarding: Option<Boarding>,
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
        Op::VerifyManifest => {
            let r = HealthCodeServiceClient::new(ch)
                .verify_manifest(proto::VerifyManifestRequest {
                    manifest: load.manifest.clone(),
                    checkpoint_id: "bench".into(),
                })
                .await
                .map_err(status)?
                .into_inner();
            match r.reasons.first() {
                None if r.pass => Ok(()),
                first => Err(Failure::Verdict(first.map_or("NO_REASON", |x| {
                    proto::ManifestReason::try_from(x.reason)
                        .map_or("UNKNOWN_REASON", |r| r.as_str_name())
                }))),
            }
        }
        Op::Board => match &load.boarding {
            Some(b) => b.board(ch, n).await,
            None => Err(Failure::Verdict("NO_BOARDING_CODES")),
        },
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
    if needs(Op::VerifyManifest) && target.manifest.is_none() {
        return Err(BenchError::Usage(
            "the mix has verify-manifest, which needs a trip manifest of a peer province: give \
             --peer-dir and --peer-token-file (a node whose agreement with this one accepts its \
             manifests, transit and arrival), or a --mix without verify-manifest"
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
    let boarding = if needs(Op::Board) {
        Some(
            Boarding::prepare(&channels[0], o.concurrency)
                .await
                .map_err(|e| issue_error(&e, "issuing the codes to board", "--token-file"))?,
        )
    } else {
        None
    };
    let forged = own
        .iter()
        .chain(&target.peer_codes)
        .map(|c| forge_signature(c))
        .collect();
    let load = Arc::new(Load {
        channels,
        own,
        peer: target.peer_codes.clone(),
        forged,
        manifest: target.manifest.clone().unwrap_or_default(),
        boarding,
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
    if let Some(b) = &load.boarding {
        b.cancel_all(&load.channels[0]).await;
    }
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
            Op::Board => "organizer",
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
                let hint = match op {
                    Op::VerifyPeer => {
                        ": does the peer's province have an agreement in force with this node's, \
                         recognizing its green codes?"
                    }
                    Op::Board => {
                        ": is this node's own code refused at boarding (its status, or a trip of \
                         an earlier run still holding the bench's residents)?"
                    }
                    Op::VerifyManifest => {
                        ": does the agreement with the peer's province accept its manifests \
                         (transit and arrival), and has this node synced the peer's feed?"
                    }
                    _ => "",
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
