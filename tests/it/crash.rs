//! Crash test: a real `hcmr serve` process under concurrent write load (issue, revoke, add
//! caller) is killed with SIGKILL at random moments, restarted each time, and checked: the
//! database opens (its hash-chained feed verifies, so nothing is half-applied), and every write
//! the node acknowledged is there. Prints the counts; lost must be 0.
//!
//! `HCMR_CRASH_KILLS` sets the number of kills (default 20, as CI runs it; docs/durability.md
//! records a run of 200). `HCMR_CRASH_SEED` fixes the random moments.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hcmr::proto;
use hcmr::proto::health_code_service_client::HealthCodeServiceClient;
use hcmr::proto::operator_service_client::OperatorServiceClient;

/// What the node acknowledged.
#[derive(Default)]
struct Acked {
    /// Codes issued (cti, code), not revoked.
    issued: Vec<(String, String)>,
    /// Codes revoked (code).
    revoked: Vec<String>,
    /// Callers added.
    callers: Vec<String>,
}

/// xorshift64*: enough randomness for kill moments, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Raises the per-caller rate limit of a node's config out of the way of the test's load.
fn unlimited(cfg: &Path) {
    let text = std::fs::read_to_string(cfg).unwrap();
    assert!(text.contains("caller_requests_per_sec = 200"));
    std::fs::write(
        cfg,
        text.replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 1000000",
        )
        .replace("caller_burst = 400", "caller_burst = 1000000"),
    )
    .unwrap();
}

pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect(endpoint: &str, cert: &Path, token: &str) -> Option<hcmr::client::NodeChannel> {
    hcmr::client::connect(endpoint, Some(cert), Some(token))
        .await
        .ok()
}

/// Starts `hcmr serve` and waits (at most 60 s) until it answers; a node that exits instead
/// fails the test with its log.
pub(crate) async fn serve(config: &Path, endpoint: &str, cert: &Path, token: &str) -> Server {
    let log = config.with_file_name("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(ch) = connect(endpoint, cert, token).await {
            if OperatorServiceClient::new(ch)
                .list_callers(proto::ListCallersRequest {})
                .await
                .is_ok()
            {
                return server;
            }
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "the node exited at start ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the node did not come back up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One writer: issues codes, revokes every third, adds a caller every fourth, until `stop`.
async fn writer(
    id: usize,
    endpoint: String,
    cert: std::path::PathBuf,
    token: String,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    round: usize,
) {
    let Some(ch) = connect(&endpoint, &cert, &token).await else {
        return;
    };
    let mut hc = HealthCodeServiceClient::new(ch.clone());
    let mut op = OperatorServiceClient::new(ch);
    let mut n = 0u16;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        n = n.wrapping_add(1);
        let seq = (round as u16 % 100) * 10 + id as u16 + n % 7;
        let person = subject("王建国", "510104", seq % 999);
        let Ok(r) = hc
            .issue_health_code(proto::IssueHealthCodeRequest {
                subject: Some(person),
                status: G,
                status_valid_until: (hcmr::unix_now() + 86_400).secs(),
                // Distinct per call: the same claims in one second would be the same code.
                code_lifetime_secs: 3_600 + u64::from(n),
                qr_format: 0,
            })
            .await
        else {
            return;
        };
        let r = r.into_inner();
        if n.is_multiple_of(3) {
            if hc
                .revoke_health_code(proto::RevokeHealthCodeRequest { cti: r.cti.clone() })
                .await
                .is_err()
            {
                // Not acknowledged: the issue was, the revocation maybe not.
                acked.lock().unwrap().issued.push((r.cti, r.code));
                return;
            }
            acked.lock().unwrap().revoked.push(r.code);
        } else {
            acked.lock().unwrap().issued.push((r.cti, r.code));
        }
        if n.is_multiple_of(4) {
            let name = format!("w{id}-r{round}-{n}");
            if op
                .add_caller(proto::AddCallerRequest {
                    name: name.clone(),
                    roles: vec![proto::CallerRole::Verifier as i32],
                    replace: false,
                })
                .await
                .is_err()
            {
                return;
            }
            acked.lock().unwrap().callers.push(name);
        }
    }
}

/// Checks that every acknowledged revocation and caller is there; returns how many were found.
async fn check(ch: hcmr::client::NodeChannel, acked: &Acked) -> (usize, usize) {
    let mut hc = HealthCodeServiceClient::new(ch.clone());
    let mut found = 0;
    let mut lost = 0;
    for code in &acked.revoked {
        let v = hc
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: code.clone(),
                checkpoint_id: "crash-test".into(),
            })
            .await
            .unwrap()
            .into_inner();
        if v.reason == proto::Reason::Revoked as i32 {
            found += 1;
        } else {
            lost += 1;
            eprintln!("LOST revocation: {v:?}");
        }
    }
    let callers: Vec<String> = OperatorServiceClient::new(ch)
        .list_callers(proto::ListCallersRequest {})
        .await
        .unwrap()
        .into_inner()
        .callers
        .into_iter()
        .map(|c| c.name)
        .collect();
    for c in &acked.callers {
        if callers.contains(c) {
            found += 1;
        } else {
            lost += 1;
            eprintln!("LOST caller {c}");
        }
    }
    (found, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let kills: usize = std::env::var("HCMR_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("HCMR_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| hcmr::unix_now().secs() | 1);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    // A fixed port, so that the restarted node is at the same address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{port}").parse().unwrap());
    o.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let cfg = hcmr::node::init_node(
        hcmr::province::Province::from_code(510000).unwrap(),
        &dir.path().join("sc"),
        &o,
    )
    .await
    .unwrap();
    add_test_caller(&cfg).await;
    // The checks after each restart read every acknowledged revocation: no rate limit for them.
    unlimited(&cfg);
    let endpoint = format!("https://127.0.0.1:{port}");
    let cert = dir.path().join("sc/tls/node.crt");
    let token = std::fs::read_to_string(dir.path().join("sc").join(TEST_TOKEN_FILE)).unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let started = Instant::now();
    let mut restarts_checked = 0;
    for round in 0..kills {
        let server = serve(&cfg, &endpoint, &cert, &token).await;
        // The previous round's acknowledged revocations and callers are all there.
        let snapshot = {
            let a = acked.lock().unwrap();
            Acked {
                issued: Vec::new(),
                revoked: a.revoked.clone(),
                callers: a.callers.clone(),
            }
        };
        let ch = connect(&endpoint, &cert, &token).await.unwrap();
        let (_, lost) = check(ch, &snapshot).await;
        assert_eq!(lost, 0, "round {round} (seed {seed})");
        restarts_checked += 1;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|id| {
                tokio::spawn(writer(
                    id,
                    endpoint.clone(),
                    cert.clone(),
                    token.clone(),
                    acked.clone(),
                    stop.clone(),
                    round,
                ))
            })
            .collect();
        let delay = 100 + rng.next() % 400;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        drop(server); // SIGKILL, then reap
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in writers {
            tokio::time::timeout(Duration::from_secs(40), w)
                .await
                .expect("a writer stops once the node is gone")
                .unwrap();
        }
    }
    // Final check, including the issued-code log: every acknowledged code is known to the node
    // (revoking an unknown code would be NOT_FOUND).
    let _server = serve(&cfg, &endpoint, &cert, &token).await;
    let ch = connect(&endpoint, &cert, &token).await.unwrap();
    let a = std::mem::take(&mut *acked.lock().unwrap());
    let (mut found, mut lost) = check(ch.clone(), &a).await;
    let mut hc = HealthCodeServiceClient::new(ch);
    for (cti, _) in &a.issued {
        match hc
            .revoke_health_code(proto::RevokeHealthCodeRequest { cti: cti.clone() })
            .await
        {
            Ok(_) => found += 1,
            // A revocation in flight at a kill was not acknowledged but may have been applied
            // whole: allowed (never half).
            Err(e)
                if e.code() == tonic::Code::FailedPrecondition
                    && e.message().contains("already revoked") =>
            {
                found += 1
            }
            Err(e) if e.code() == tonic::Code::NotFound => {
                lost += 1;
                eprintln!("LOST issued code {cti}");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let writes = a.issued.len() + 2 * a.revoked.len() + a.callers.len();
    println!(
        "crash test: seed {seed}, kills {kills}, restarts checked {restarts_checked}, acknowledged writes {writes} ({} issued, {} issued then revoked, {} callers), found {found} of {} checked, lost {lost}, {:.1} s",
        a.issued.len(),
        a.revoked.len(),
        a.callers.len(),
        a.issued.len() + a.revoked.len() + a.callers.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0);
    assert!(
        a.revoked.len() >= kills && a.issued.len() >= kills,
        "the load ran in every round: {} revoked, {} issued",
        a.revoked.len(),
        a.issued.len()
    );
}

/// SIGTERM and SIGINT under load: the node stops accepting, finishes the calls in flight, flushes
/// and exits 0 within a few seconds; every issue it acknowledged is in its issued-code log after a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_drain_in_flight_calls_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{port}").parse().unwrap());
    o.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let cfg = hcmr::node::init_node(
        hcmr::province::Province::from_code(510000).unwrap(),
        &dir.path().join("sc"),
        &o,
    )
    .await
    .unwrap();
    add_test_caller(&cfg).await;
    unlimited(&cfg);
    let endpoint = format!("https://127.0.0.1:{port}");
    let cert = dir.path().join("sc/tls/node.crt");
    let token = std::fs::read_to_string(dir.path().join("sc").join(TEST_TOKEN_FILE)).unwrap();
    let mut acked: Vec<String> = Vec::new();
    for signal in ["-TERM", "-INT"] {
        let mut server = serve(&cfg, &endpoint, &cert, &token).await;
        let ch = connect(&endpoint, &cert, &token).await.unwrap();
        // 16 callers issuing as fast as they can on one connection.
        let calls: Vec<_> = (0..16u16)
            .map(|i| {
                let mut hc = HealthCodeServiceClient::new(ch.clone());
                tokio::spawn(async move {
                    let mut ok = Vec::new();
                    let mut refused = 0;
                    for n in 0..200u16 {
                        match hc
                            .issue_health_code(proto::IssueHealthCodeRequest {
                                subject: Some(subject("王建国", "510104", (i * 37 + n) % 999)),
                                status: G,
                                status_valid_until: (hcmr::unix_now() + 86_400).secs(),
                                code_lifetime_secs: 600,
                                qr_format: 0,
                            })
                            .await
                        {
                            Ok(r) => ok.push(r.into_inner().cti),
                            Err(e) => {
                                // Refused, never half done: no connection, a cancelled
                                // stream, or a call started after the server's GOAWAY
                                // (NO_ERROR: not processed), which tonic reports as INTERNAL.
                                let goaway = e.code() == tonic::Code::Internal
                                    && format!("{e:?}").contains("GoAway");
                                assert!(
                                    goaway
                                        || matches!(
                                            e.code(),
                                            tonic::Code::Unavailable
                                                | tonic::Code::Unknown
                                                | tonic::Code::Cancelled
                                        ),
                                    "a call during shutdown: {e:?}"
                                );
                                refused += 1;
                                if refused > 3 {
                                    break;
                                }
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        // Let the callers get real calls in flight to the real process before the signal.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pid = server.0.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = server.0.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit within 10 s of {signal}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{signal}: {status:?}");
        for c in calls {
            acked.extend(
                tokio::time::timeout(Duration::from_secs(30), c)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        drop(server);
    }
    assert!(
        acked.len() > 20,
        "the load ran: {} issues acknowledged",
        acked.len()
    );
    // The same claims issued twice in one second are the same code (the cti is derived from
    // the signature): one record, revoked once.
    acked.sort();
    acked.dedup();
    let _server = serve(&cfg, &endpoint, &cert, &token).await;
    let mut hc = HealthCodeServiceClient::new(connect(&endpoint, &cert, &token).await.unwrap());
    for cti in &acked {
        hc.revoke_health_code(proto::RevokeHealthCodeRequest { cti: cti.clone() })
            .await
            .unwrap_or_else(|e| panic!("acknowledged code {cti} lost: {e:?}"));
    }
    println!(
        "graceful shutdown: {} acknowledged issues, all in the log",
        acked.len()
    );
}
