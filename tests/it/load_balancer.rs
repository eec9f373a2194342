//! A real load balancer in front of one province (issue 19): `hcmr serve` processes behind
//! HAProxy, and behind nginx, on loopback, with the configurations of deploy/lb/ (the ones
//! docs/deploy.md quotes) filled in for the test's ports.
//!
//! Each test: Issue and Verify through the balancer; the balancer's cost per call (`hcmr bench`
//! directly and through it, printed, not asserted); a replica killed with SIGKILL under a load
//! of concurrent VerifyHealthCode calls through the balancer, with every call counted (HAProxy: 0
//! failed); the primary stopped: verification through the balancer goes on while Issue fails
//! with UNAVAILABLE; the primary started again: Issue works again, and a revocation reaches the
//! replicas.
//!
//! The three verify replicas are made by `init --replica-of` (enrolled at the running primary)
//! and follow it; after the primary's restart a revocation reaches every one of them, read
//! directly at each replica and through the balancer.
//!
//! Skipped with a message when haproxy (nginx) is not installed and the environment variable CI
//! is not set; under CI a missing balancer fails the test (.ci/run installs both).

use crate::common::*;
use crate::health_port::{enable_health_port, http_get};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hcmr::proto;
use hcmr::proto::health_code_service_client::HealthCodeServiceClient;

/// The HAProxy configuration of docs/deploy.md, with placeholders.
const HAPROXY_TEMPLATE: &str = include_str!("../../deploy/lb/haproxy.cfg.tmpl");
/// The nginx configuration of docs/deploy.md, with placeholders.
const NGINX_TEMPLATE: &str = include_str!("../../deploy/lb/nginx.conf.tmpl");

/// Concurrent callers of the load, and calls each makes.
const LOAD_TASKS: usize = 8;
const LOAD_CALLS: usize = 400;

/// A node behind the balancer.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    /// The server's name in the balancer's configuration.
    pub name: String,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its health port (`health_listen`).
    pub health_port: u16,
    /// Its certificate (tls/node.crt), which the balancer verifies.
    pub ca_file: PathBuf,
    /// The primary (takes every RPC) or a verify node (verification only).
    pub primary: bool,
}

/// Fills in a template of deploy/lb/: `{{key}}` from `vars`; a line ending in `# each:verify`
/// once per backend (every node verifies), one ending in `# each:primary` once per primary,
/// each with that backend's `{{name}}`, `{{addr}}`, `{{health_port}}` and `{{ca_file}}`.
pub(crate) fn render(template: &str, vars: &[(&str, String)], backends: &[Backend]) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let each = [("# each:verify", false), ("# each:primary", true)]
            .into_iter()
            .find(|(marker, _)| line.trim_end().ends_with(marker));
        let lines: Vec<String> = match each {
            None => vec![line.to_string()],
            Some((marker, primary_only)) => {
                let base = line.trim_end().trim_end_matches(marker).trim_end();
                backends
                    .iter()
                    .filter(|b| b.primary || !primary_only)
                    .map(|b| {
                        base.replace("{{name}}", &b.name)
                            .replace("{{addr}}", &b.addr.to_string())
                            .replace("{{health_port}}", &b.health_port.to_string())
                            .replace("{{ca_file}}", &b.ca_file.display().to_string())
                    })
                    .collect()
            }
        };
        for mut l in lines {
            for (k, v) in vars {
                l = l.replace(&format!("{{{{{k}}}}}"), v);
            }
            out.push_str(&l);
            out.push('\n');
        }
    }
    assert!(!out.contains("{{"), "a placeholder left unfilled:\n{out}");
    out
}

/// The program `name` (haproxy, nginx) from PATH or Debian's /usr/sbin; `None` (with a message)
/// when it is missing outside CI. Under CI (the variable set) a missing program fails the test.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "{name} is not installed and CI is set: .ci/run installs it (apt-get install {name})"
        );
        println!(
            "SKIPPED: {name} is not installed (apt-get install {name}); under CI this test fails instead"
        );
    }
    found
}

/// A child process killed and reaped when dropped: with SIGKILL, or (`graceful`, for nginx,
/// whose worker processes outlive a master killed with SIGKILL) with SIGTERM first, waiting at
/// most 10 s.
struct Proc {
    child: Child,
    log: PathBuf,
    graceful: bool,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it with SIGKILL, as a crash does.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM and waits (at most 30 s) until it has exited.
    fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the node did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.graceful && matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            for _ in 0..500 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node folder of the scenario, served by `hcmr serve` (a child process).
struct NodeDir {
    backend: Backend,
    config: PathBuf,
}

impl NodeDir {
    /// Starts `hcmr serve` and waits (at most 60 s) until its health port says ready.
    async fn serve(&self) -> Proc {
        let log = self.config.with_file_name("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_hcmr"))
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut p = Proc {
            child,
            log,
            graceful: false,
        };
        let health: SocketAddr = format!("127.0.0.1:{}", self.backend.health_port)
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(health).await.is_ok()
                && http_get(health, "/readyz").await.0 == 200
            {
                return p;
            }
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!(
                    "{} exited at start ({status}): {}",
                    self.backend.name,
                    p.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within 60 s: {}",
                self.backend.name,
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Raises the per-caller rate limit of a node's config out of the way of the test's load.
fn unlimited(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("caller_requests_per_sec = 200"), "{text}");
    std::fs::write(
        config,
        text.replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 1000000",
        )
        .replace("caller_burst = 400", "caller_burst = 1000000"),
    )
    .unwrap();
}

/// Makes the primary's folder under `root` on fixed ports, with its health port, the test
/// caller, and no per-caller rate limit in the way of the load.
async fn primary(root: &Path) -> NodeDir {
    let port = free_port();
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{port}").parse().unwrap());
    o.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let config = hcmr::node::init_node(
        hcmr::province::Province::from_code(510000).unwrap(),
        &root.join("primary"),
        &o,
    )
    .await
    .unwrap();
    add_test_caller(&config).await;
    let health_port = free_port();
    enable_health_port(&config, &format!("127.0.0.1:{health_port}"));
    unlimited(&config);
    NodeDir {
        backend: Backend {
            name: "primary".into(),
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            health_port,
            ca_file: root.join("primary/tls/node.crt"),
            primary: true,
        },
        config,
    }
}

/// A verify replica of the running `primary` (`init --replica-of`: enrolled at the primary with
/// its admin token), on ports of its own, with its health port and no per-caller rate limit.
async fn verify_replica(primary: &NodeDir, root: &Path, name: &str) -> NodeDir {
    let dir = root.join(name);
    let p = &primary.backend;
    let (port, health_port) = (free_port(), free_port());
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{port}").parse().unwrap());
    o.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let primary_dir = primary.config.parent().unwrap();
    let token = std::fs::read_to_string(primary_dir.join(hcmr::node::ADMIN_TOKEN_FILE)).unwrap();
    let config = hcmr::node::init_replica(
        hcmr::province::Province::from_code(510000).unwrap(),
        &dir,
        &o,
        &hcmr::node::ReplicaInit {
            primary: format!("https://{}", p.addr),
            primary_cert: p.ca_file.clone(),
            admin_token: zeroize::Zeroizing::new(token.trim().to_string()),
            name: name.to_string(),
        },
    )
    .await
    .unwrap();
    enable_health_port(&config, &format!("127.0.0.1:{health_port}"));
    unlimited(&config);
    NodeDir {
        backend: Backend {
            name: name.into(),
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            health_port,
            ca_file: dir.join("tls/node.crt"),
            primary: false,
        },
        config,
    }
}

/// Which balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    HaProxy,
    Nginx,
}

/// The balancer's own certificate (clients pin it) and key, made for 127.0.0.1.
struct Frontend {
    cert: PathBuf,
    key: PathBuf,
    /// Certificate then key, in one file (HAProxy's `crt`).
    pem: PathBuf,
}

fn frontend(dir: &Path) -> Frontend {
    let k =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key, pem) = (dir.join("lb.crt"), dir.join("lb.key"), dir.join("lb.pem"));
    std::fs::write(&cert, k.cert.pem()).unwrap();
    std::fs::write(&key, k.signing_key.serialize_pem()).unwrap();
    std::fs::write(&pem, k.cert.pem() + &k.signing_key.serialize_pem()).unwrap();
    Frontend { cert, key, pem }
}

/// Writes the balancer's configuration for `backends` into `dir`, checks it with the balancer's
/// own check (-c / -t), and starts it; returns it with its URL once it routes a GetNodeInfo
/// call.
async fn start_balancer(
    kind: Kind,
    bin: &Path,
    dir: &Path,
    fe: &Frontend,
    backends: &[Backend],
) -> (Proc, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let bundle = dir.join("nodes.crt");
    let mut certs = String::new();
    for b in backends {
        certs.push_str(&std::fs::read_to_string(&b.ca_file).unwrap());
    }
    std::fs::write(&bundle, certs).unwrap();
    let temp = dir.join("nginx-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let vars = [
        ("listen", listen.clone()),
        ("frontend_pem", fe.pem.display().to_string()),
        ("frontend_crt", fe.cert.display().to_string()),
        ("frontend_key", fe.key.display().to_string()),
        ("ca_bundle", bundle.display().to_string()),
        ("backend_tls_name", "localhost".into()),
        ("pid_file", dir.join("nginx.pid").display().to_string()),
        ("temp_dir", temp.display().to_string()),
    ];
    let (template, file) = match kind {
        Kind::HaProxy => (HAPROXY_TEMPLATE, dir.join("haproxy.cfg")),
        Kind::Nginx => (NGINX_TEMPLATE, dir.join("nginx.conf")),
    };
    let text = render(template, &vars, backends);
    std::fs::write(&file, &text).unwrap();
    println!("{kind:?} configuration, as rendered:\n{text}");
    let (check, run): (Vec<String>, Vec<String>) = match kind {
        Kind::HaProxy => (
            vec!["-c".into(), "-f".into(), file.display().to_string()],
            vec!["-db".into(), "-f".into(), file.display().to_string()],
        ),
        Kind::Nginx => {
            let prefix = dir.display().to_string();
            (
                vec![
                    "-t".into(),
                    "-p".into(),
                    prefix.clone(),
                    "-c".into(),
                    file.display().to_string(),
                ],
                vec!["-p".into(), prefix, "-c".into(), file.display().to_string()],
            )
        }
    };
    let out = Command::new(bin).args(&check).output().unwrap();
    assert!(
        out.status.success(),
        "{kind:?} refused the configuration: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = dir.join(format!("{kind:?}.log"));
    let child = Command::new(bin)
        .args(&run)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut p = Proc {
        child,
        log,
        graceful: true,
    };
    let url = format!("https://{listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = hcmr::client::connect(&url, Some(&fe.cert), None).await {
            if hcmr::proto::federation_service_client::FederationServiceClient::new(ch)
                .get_node_info(proto::GetNodeInfoRequest {})
                .await
                .is_ok()
            {
                return (p, url);
            }
        }
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!("{kind:?} exited ({status}): {}", p.log());
        }
        assert!(
            Instant::now() < deadline,
            "{kind:?} did not route a call within 30 s: {}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls counted exactly: answered RECOGNIZED, and anything else (an error or another verdict).
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

/// `LOAD_TASKS` callers, each on its own connection to `url`, each making `LOAD_CALLS`
/// VerifyHealthCode calls of `code` one after the other.
async fn verify_load(url: &str, cert: &Path, token: &str, code: &str, tally: Arc<Tally>) {
    let mut tasks = Vec::new();
    for _ in 0..LOAD_TASKS {
        let ch = hcmr::client::connect(url, Some(cert), Some(token))
            .await
            .unwrap();
        let (code, tally) = (code.to_string(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut hc = HealthCodeServiceClient::new(ch);
            for _ in 0..LOAD_CALLS {
                let r = hc
                    .verify_health_code(proto::VerifyHealthCodeRequest {
                        code: code.clone(),
                        checkpoint_id: "lb-test".into(),
                    })
                    .await;
                match r {
                    Ok(v) if v.get_ref().reason == proto::Reason::Ok as i32 => {
                        tally.ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        tally.failed.fetch_add(1, Ordering::SeqCst);
                        tally.failures.lock().unwrap().push(format!("{other:?}"));
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Issues a green code through `url`: (code, cti).
async fn issue(
    url: &str,
    cert: &Path,
    token: &str,
    seq: u16,
) -> Result<(String, String), tonic::Status> {
    let ch = hcmr::client::connect(url, Some(cert), Some(token))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    HealthCodeServiceClient::new(ch)
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("王建国", "510104", seq)),
            status: G,
            status_valid_until: (hcmr::unix_now() + 86_400).secs(),
            code_lifetime_secs: 3_600,
            qr_format: 0,
        })
        .await
        .map(|r| {
            let r = r.into_inner();
            (r.code, r.cti)
        })
}

/// The reason of one VerifyHealthCode call of `code` through `url`.
async fn verify_reason(url: &str, cert: &Path, token: &str, code: &str) -> i32 {
    let ch = hcmr::client::connect(url, Some(cert), Some(token))
        .await
        .unwrap();
    HealthCodeServiceClient::new(ch)
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.into(),
            checkpoint_id: "lb-test".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .reason
}

/// `hcmr bench` (verify-own, closed loop) against `url`: its table's `all` row.
fn bench(url: &str, cert: &Path, token_file: &Path, concurrency: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["bench", "--node", url, "--tls-cert"])
        .arg(cert)
        .arg("--token-file")
        .arg(token_file)
        .args(["--mix", "verify-own", "--duration", "2s", "--warmup", "1s"])
        .args([
            "--concurrency",
            &concurrency.to_string(),
            "--connections",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "bench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(e) = text.lines().find(|l| l.starts_with("errors of")) {
        println!("bench through {url}: {e}");
    }
    text.lines()
        .find(|l| l.starts_with("all "))
        .unwrap_or_else(|| panic!("no `all` row in {text}"))
        .to_string()
}

/// The scenario, behind `kind`.
async fn scenario(kind: Kind, bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let primary = primary(root).await;
    let mut primary_proc = Some(primary.serve().await);
    let mut verifiers = Vec::new();
    for i in 1..=3 {
        verifiers.push(verify_replica(&primary, root, &format!("replica{i}")).await);
    }
    let token_file = root.join("primary").join(TEST_TOKEN_FILE);
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    // Each replica serves once it has synced with the primary (its /readyz says 200).
    let mut procs: Vec<Option<Proc>> = Vec::new();
    for v in &verifiers {
        procs.push(Some(v.serve().await));
    }
    let backends: Vec<Backend> = std::iter::once(primary.backend.clone())
        .chain(verifiers.iter().map(|v| v.backend.clone()))
        .collect();
    let fe = frontend(root);
    let (lb, url) = start_balancer(kind, bin, root, &fe, &backends).await;

    // Issue (to the primary) and Verify (any node) through the balancer.
    let (code, cti) = issue(&url, &fe.cert, &token, 1)
        .await
        .unwrap_or_else(|e| panic!("{e:?}: {}", lb.log()));
    for _ in 0..4 {
        let ch = hcmr::client::connect(&url, Some(&fe.cert), Some(&token))
            .await
            .unwrap();
        let r = HealthCodeServiceClient::new(ch)
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: code.clone(),
                checkpoint_id: "lb-test".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{e:?}: {}", lb.log()));
        assert_eq!(r.into_inner().reason, proto::Reason::Ok as i32);
    }
    assert_eq!(
        verify_reason(&url, &fe.cert, &token, &code).await,
        proto::Reason::Ok as i32
    );
    // `hcmr health` through the balancer (grpc.health.v1 on a verify path), and with --config
    // at a node (its own address and certificate).
    let health = Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["health", "--node", &url, "--tls-cert"])
        .arg(&fe.cert)
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(0), "{health:?}");
    let health = Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["health", "--config"])
        .arg(&verifiers[0].config)
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(0), "{health:?}");

    // The balancer's cost per call: the same bench directly at the primary and through the
    // balancer (which spreads the load over all four nodes), one after the other.
    let p = &primary.backend;
    for concurrency in [1, 16] {
        let direct = bench(
            &format!("https://{}", p.addr),
            &p.ca_file,
            &token_file,
            concurrency,
        );
        let through = bench(&url, &fe.cert, &token_file, concurrency);
        println!("{kind:?} cost per call, bench verify-own, {concurrency} in flight, 1 connection:\n  direct to the primary: {direct}\n  through {kind:?}:       {through}");
    }

    // Under load through the balancer, one replica is killed with SIGKILL.
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let load = {
        let (url, cert, token, code, tally) = (
            url.clone(),
            fe.cert.clone(),
            token.clone(),
            code.clone(),
            tally.clone(),
        );
        tokio::spawn(async move { verify_load(&url, &cert, &token, &code, tally).await })
    };
    let total = LOAD_TASKS * LOAD_CALLS;
    let deadline = Instant::now() + Duration::from_secs(120);
    while tally.ok.load(Ordering::SeqCst) + tally.failed.load(Ordering::SeqCst) < total / 3 {
        assert!(
            Instant::now() < deadline,
            "the load did not reach a third in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_kill = tally.ok.load(Ordering::SeqCst) + tally.failed.load(Ordering::SeqCst);
    let kill_ms = started.elapsed().as_millis();
    procs[0].take().unwrap().kill9();
    tokio::time::timeout(Duration::from_secs(300), load)
        .await
        .expect("the load ends within 300 s")
        .unwrap();
    let (ok, failed) = (
        tally.ok.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
    );
    println!(
        "{kind:?}: {total} VerifyHealthCode calls through the balancer ({LOAD_TASKS} callers x {LOAD_CALLS}) over the primary and 3 replicas; {} killed with SIGKILL at {kill_ms} ms after {at_kill} calls; {ok} recognized, {failed} failed; {:.1} s",
        verifiers[0].backend.name,
        started.elapsed().as_secs_f64()
    );
    let failures = tally.failures.lock().unwrap().clone();
    assert_eq!(ok + failed, total);
    match kind {
        // HAProxy keeps each (small) request and sends it again to another node when the
        // killed one took it and answered nothing: no call fails.
        Kind::HaProxy => assert_eq!(
            (ok, failed),
            (total, 0),
            "{kind:?}: failed calls: {:?}\nbalancer log: {}",
            &failures[..failures.len().min(5)],
            lb.log()
        ),
        // nginx's gRPC proxy streams the request body to the node, so it cannot send again a
        // call the killed node had taken: those calls (at most one per caller) fail with
        // UNAVAILABLE, which the caller may retry; every other call is recognized.
        Kind::Nginx => {
            assert!(
                failed <= LOAD_TASKS,
                "{kind:?}: {failed} failed calls: {:?}\nbalancer log: {}",
                &failures[..failures.len().min(5)],
                lb.log()
            );
            for f in &failures {
                assert!(f.contains("code: Unavailable"), "{f}");
            }
        }
    }

    // The primary stops: verification through the balancer goes on, Issue fails UNAVAILABLE.
    primary_proc.take().unwrap().stop();
    let mut verified = 0;
    for _ in 0..50 {
        assert_eq!(
            verify_reason(&url, &fe.cert, &token, &code).await,
            proto::Reason::Ok as i32
        );
        verified += 1;
    }
    let e = issue(&url, &fe.cert, &token, 2)
        .await
        .expect_err("no primary, no Issue");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(
        e.message(),
        "the primary is unavailable: only verification is served now"
    );
    println!(
        "{kind:?}: primary stopped: {verified} of 50 verifications through the balancer recognized; Issue answered {:?}",
        e.code()
    );

    // The primary starts again: Issue through the balancer works again (as soon as the
    // balancer's check sees it ready, or its passive timeout has passed: bounded).
    let _primary_again = primary.serve().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let issued_again = loop {
        match issue(&url, &fe.cert, &token, 3).await {
            Ok(c) => break c,
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
                assert!(
                    Instant::now() < deadline,
                    "Issue through the balancer did not come back within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(!issued_again.0.is_empty());
    // The replicas catch up: the load's code, revoked at the primary (through the balancer), is
    // REVOKED at every replica still up (bounded: 400 x 25 ms each), then through the balancer
    // on every node in turn (8 answers in a row: twice round the four).
    let ch = hcmr::client::connect(&url, Some(&fe.cert), Some(&token))
        .await
        .unwrap();
    HealthCodeServiceClient::new(ch)
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti })
        .await
        .unwrap();
    let revoked_at = Instant::now();
    const REVOKED: i32 = proto::Reason::Revoked as i32;
    for v in &verifiers[1..] {
        let b = &v.backend;
        let at = format!("https://{}", b.addr);
        let mut reason = verify_reason(&at, &b.ca_file, &token, &code).await;
        for _ in 0..400 {
            if reason == REVOKED {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            reason = verify_reason(&at, &b.ca_file, &token, &code).await;
        }
        assert_eq!(reason, REVOKED, "{} did not learn the revocation", b.name);
    }
    let all_replicas = revoked_at.elapsed();
    for _ in 0..8 {
        assert_eq!(verify_reason(&url, &fe.cert, &token, &code).await, REVOKED);
    }
    println!(
        "{kind:?}: primary started again: Issue through the balancer works; a revocation reached the {} replicas up in {} ms and is REVOKED through the balancer",
        verifiers.len() - 1,
        all_replicas.as_millis()
    );
    drop(lb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_in_front_keeps_verification_up() {
    let Some(bin) = tool("haproxy") else { return };
    scenario(Kind::HaProxy, &bin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_in_front_keeps_verification_up() {
    let Some(bin) = tool("nginx") else { return };
    scenario(Kind::Nginx, &bin).await;
}

#[test]
fn templates_render_every_placeholder() {
    let b = |name: &str, primary| Backend {
        name: name.into(),
        addr: "127.0.0.1:7510".parse().unwrap(),
        health_port: 9511,
        ca_file: PathBuf::from("/etc/hcmr/nodes/node.crt"),
        primary,
    };
    let backends = [b("primary", true), b("replica1", false)];
    let vars: Vec<(&str, String)> = [
        "listen",
        "frontend_pem",
        "frontend_crt",
        "frontend_key",
        "ca_bundle",
        "backend_tls_name",
        "pid_file",
        "temp_dir",
    ]
    .into_iter()
    .map(|k| (k, format!("/{k}")))
    .collect();
    let h = render(HAPROXY_TEMPLATE, &vars, &backends);
    // Every node verifies; only the primary takes the rest.
    assert_eq!(h.matches("server primary 127.0.0.1:7510").count(), 2, "{h}");
    assert_eq!(
        h.matches("server replica1 127.0.0.1:7510").count(),
        1,
        "{h}"
    );
    assert!(
        !h.lines()
            .any(|l| l.contains("# each:") && !l.starts_with('#')),
        "{h}"
    );
    let n = render(NGINX_TEMPLATE, &vars, &backends);
    assert_eq!(n.matches("server 127.0.0.1:7510").count(), 3, "{n}");
}

#[test]
fn the_deploy_docs_quote_both_templates_as_they_are() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let docs = [deploy];
    assert!(
        docs[0].contains("## 4. HAProxy and nginx"),
        "no section \"4. HAProxy and nginx\" in docs/deploy.md"
    );
    for (name, t) in [("haproxy", HAPROXY_TEMPLATE), ("nginx", NGINX_TEMPLATE)] {
        assert!(
            docs.iter().any(|d| d.contains(t)),
            "the docs do not quote deploy/lb/{name} as it is"
        );
    }
}
