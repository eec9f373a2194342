//! `hcmr bench` as its users run it: self-contained, and against nodes started by hand (here:
//! real nodes in this process, so `--server-pid` is this process), with its errors named by kind
//! and its bad flags refused before anything starts. Loopback only; every run lasts about a
//! second and every wait is bounded.

use crate::common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_hcmr");
const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const ZHEJIANG: u32 = 330000;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The `hcmr` binary with no node settings from the environment.
fn bare() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "HCMR_NODE",
        "HCMR_DIR",
        "HCMR_TOKEN",
        "HCMR_TOKEN_FILE",
        "HCMR_TLS_CERT",
    ] {
        c.env_remove(v);
    }
    c
}

/// Runs a command off the runtime's threads (the nodes under load live in this process).
async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("the hcmr binary runs"))
        .await
        .unwrap()
}

/// The report's row of `op`: (ok, errors).
fn row(report: &str, op: &str) -> Option<(u64, u64)> {
    report.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 7 && f[0] == op).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
    })
}

/// The server CPU per request the report gives, microseconds.
fn cpu_us(report: &str) -> Option<f64> {
    let l = report.lines().find(|l| l.starts_with("server CPU: "))?;
    let at = l.find("ms per 1,000 requests (")? + "ms per 1,000 requests (".len();
    l[at..].split_whitespace().next()?.parse().ok()
}

/// Sets the per-caller rate limit of a stopped node: `rate` requests per second, bursts of
/// `burst`.
fn set_limits(config: &Path, rate: u32, burst: u32) {
    let t = std::fs::read_to_string(config).unwrap();
    assert!(t.contains("caller_requests_per_sec = 200"), "{t}");
    let t = t
        .replace(
            "caller_requests_per_sec = 200",
            &format!("caller_requests_per_sec = {rate}"),
        )
        .replace("caller_burst = 400", &format!("caller_burst = {burst}"));
    std::fs::write(config, t).unwrap();
}

#[test]
fn self_contained_runs_every_op_without_errors() {
    let out = bare()
        .args([
            "bench",
            "--self-contained",
            "--mix",
            "verify-own,verify-peer,verify-not-recognized,verify-batch,verify-manifest,board,issue,empty",
            // Long enough that each of the 8 ops, drawn at random, is drawn on a slow machine too
            // (27 requests a second were seen under load: each op then misses 1 time in 37).
            "--duration",
            "4s",
            "--warmup",
            "0s",
            "--concurrency",
            "4",
            "--connections",
            "2",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for op in [
        "verify-own",
        "verify-peer",
        "verify-not-recognized",
        "verify-batch",
        "verify-manifest",
        "board",
        "issue",
        "empty",
        "all",
    ] {
        let (ok, errors) = row(&stdout, op).unwrap_or_else(|| panic!("no row {op}: {stdout}"));
        assert!(ok > 0, "{op}: {stdout}");
        assert_eq!(errors, 0, "{op}: {stdout}");
    }
    // The self-contained bench knows its server's process: a real CPU figure.
    let cpu = cpu_us(&stdout).unwrap_or_else(|| panic!("{stdout}"));
    assert!(cpu > 0.0, "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

/// The `hcmr serve` processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        // Fields after the name: state, ppid, ...
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let serves = cmdline.split(|b| *b == 0).any(|a| a == b"serve");
        if rest.split_whitespace().nth(1) == Some(&pid.to_string()) && serves {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').is_some_and(|i| !s[i + 2..].starts_with('Z')))
}

/// A self-contained bench of health checks that would run for two minutes.
fn long_bench() -> Command {
    let mut c = bare();
    c.args([
        "bench",
        "--self-contained",
        "--mix",
        "empty",
        "--duration",
        "120s",
        "--warmup",
        "0s",
        "--concurrency",
        "2",
    ]);
    c
}

/// Sends `signal` (as `kill` takes it: -INT, -TERM, -KILL) to `bench` and waits for it to exit
/// (at most 30 s).
fn signal_and_wait(bench: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args([signal, &bench.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = bench.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the bench did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a long self-contained bench, waits until its nodes serve, and returns it with the
/// node processes.
fn long_self_contained() -> (std::process::Child, Vec<u32>) {
    let mut bench = long_bench()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = bench.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the bench starts its nodes within a minute");
    assert!(line.starts_with("self-contained: "), "{line}");
    let nodes = children_of(bench.id());
    assert_eq!(nodes.len(), 2, "two hcmr serve children: {nodes:?}");
    (bench, nodes)
}

fn wait_gone(pids: &[u32], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if pids.iter().all(|p| !alive(*p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn an_interrupted_bench_stops_its_nodes() {
    // SIGINT (Ctrl-C) or SIGTERM to the bench alone: it stops its nodes and exits.
    for signal in ["-INT", "-TERM"] {
        let (mut bench, nodes) = long_self_contained();
        let status = signal_and_wait(&mut bench, signal);
        assert_eq!(status.code(), Some(130), "{signal}");
        assert!(
            wait_gone(&nodes, Duration::from_secs(10)),
            "{signal}: {nodes:?}"
        );
    }
    // SIGKILL cannot be caught: the nodes notice that their parent is gone and stop by
    // themselves.
    let (mut bench, nodes) = long_self_contained();
    bench.kill().unwrap();
    bench.wait().unwrap();
    assert!(
        wait_gone(&nodes, Duration::from_secs(30)),
        "nodes still running after their bench was killed: {nodes:?}"
    );
}

/// The `hcmr serve` processes that the bench `bench` started, wherever they are now (a node
/// whose bench died is re-parented; its command line still names the bench's pid).
fn nodes_started_by(bench: u32) -> Vec<u32> {
    let flag = format!("--exit-with-parent={bench}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let named = cmdline.split(|b| *b == 0).any(|a| a == flag.as_bytes());
            (named && alive(pid)).then_some(pid)
        })
        .collect()
}

#[test]
fn a_bench_stopped_while_it_starts_its_nodes_leaves_none_behind() {
    // Stopped at different moments of its setup (before, while and after its nodes start), by
    // a signal it handles (SIGINT: nodes stopped, folder removed, exit 130) or not (SIGKILL: the
    // nodes notice that their parent is gone, even if it died before they looked).
    for (signal, after_ms) in [
        ("-KILL", 30),
        ("-KILL", 120),
        ("-KILL", 400),
        ("-INT", 30),
        ("-INT", 120),
        ("-INT", 400),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut bench = long_bench()
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        let status = signal_and_wait(&mut bench, signal);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !nodes_started_by(bench.id()).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{signal} {after_ms}: nodes still running: {:?}",
                nodes_started_by(bench.id())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if signal == "-INT" {
            // Handled from the start of the run, before any node or folder is made: on a slow
            // machine the signal may come before that, and end the process by itself.
            use std::os::unix::process::ExitStatusExt;
            assert!(
                status.code() == Some(130) || status.signal() == Some(2),
                "{signal} {after_ms}: {status:?}"
            );
            let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
            assert!(left.is_empty(), "{signal} {after_ms}: left behind {left:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_nodes_started_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // Zhejiang: a node with no agreement with Guangdong.
    let zj_cfg = init_node(dir.path(), ZHEJIANG).await;
    set_limits(&sc_cfg, 1_000_000, 1_000_000);
    set_limits(&gd_cfg, 1_000_000, 1_000_000);
    // A caller of Guangdong's that may issue but not verify.
    let issuer_only = dir.path().join("issuer-only.token");
    let token = hcmr::node::add_caller_offline(
        &hcmr::node::Config::load(&gd_cfg).unwrap(),
        "issuer-only",
        &[hcmr::callers::Role::Issuer],
    )
    .await
    .unwrap();
    std::fs::write(&issuer_only, token.as_bytes()).unwrap();
    // And one that may verify but not issue (the bench issues the codes it verifies).
    let verifier_only = dir.path().join("verifier-only.token");
    let token = hcmr::node::add_caller_offline(
        &hcmr::node::Config::load(&gd_cfg).unwrap(),
        "verifier-only",
        &[hcmr::callers::Role::Verifier],
    )
    .await
    .unwrap();
    std::fs::write(&verifier_only, token.as_bytes()).unwrap();
    let sc = start(&sc_cfg).await;
    let gd = start(&gd_cfg).await;
    let zj = start(&zj_cfg).await;
    conclude(&gd, &sc, &[(G, G), (R, R)], &[(G, G), (R, R)]).await;
    // The peer is found by its folder: its config must name its real address.
    pin_listen(&sc_cfg, &sc);
    pin_listen(&zj_cfg, &zj);
    let pid = std::process::id().to_string();
    let short = ["--duration", "1s", "--warmup", "0s", "--concurrency", "4"];

    // With a peer, the default mix has verify-peer: every op of it succeeds.
    let mut c = cli(&gd);
    c.args(["bench", "--server-pid", &pid])
        .args(short)
        .arg("--peer-dir")
        .arg(&sc.dir)
        .arg("--peer-token-file")
        .arg(sc.dir.join(TEST_TOKEN_FILE));
    let out = run(c).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for op in [
        "verify-own",
        "verify-peer",
        "verify-not-recognized",
        "issue",
    ] {
        let (ok, errors) = row(&stdout, op).unwrap_or_else(|| panic!("no row {op}: {stdout}"));
        assert!(ok > 0 && errors == 0, "{op}: {stdout}");
    }
    assert!(cpu_us(&stdout).is_some_and(|us| us > 0.0), "{stdout}");

    // Without a peer, the default mix leaves verify-peer out.
    let mut c = cli(&gd);
    c.args(["bench", "--server-pid", &pid]).args(short);
    let out = run(c).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(row(&stdout, "verify-own").is_some_and(|(ok, e)| ok > 0 && e == 0));
    assert_eq!(row(&stdout, "verify-peer"), None, "{stdout}");

    // The health check alone needs no token.
    let mut c = bare();
    c.args(["bench", "--node", &gd.endpoint, "--mix", "empty"])
        .arg("--tls-cert")
        .arg(gd.tls_cert.as_ref().unwrap())
        .args(short);
    let out = run(c).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        row(&stdout, "empty").is_some_and(|(ok, e)| ok > 0 && e == 0),
        "{stdout}"
    );
    // An http:// URL to this TLS node: refused before the load, with the node's answer.
    let mut c = bare();
    c.args(["bench", "--mix", "empty", "--node"])
        .arg(gd.endpoint.replace("https://", "http://"))
        .args(short);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(64), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("a first health check failed with INVALID_ARGUMENT: this node serves TLS"),
        "{:?}",
        text(&out)
    );
    // Any other op with weight needs a token.
    let mut c = bare();
    c.args(["bench", "--node", &gd.endpoint, "--mix", "empty=1,issue=1"])
        .arg("--tls-cert")
        .arg(gd.tls_cert.as_ref().unwrap())
        .args(short);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out).1.contains("for every op but empty"),
        "{:?}",
        text(&out)
    );

    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    let sc_token = path(sc.dir.join(TEST_TOKEN_FILE));
    let (gd_dir, gd_token) = (path(gd.dir.clone()), path(gd.dir.join(TEST_TOKEN_FILE)));
    let (zj_dir, zj_token) = (path(zj.dir.clone()), path(zj.dir.join(TEST_TOKEN_FILE)));
    let (issuer_only, verifier_only) = (path(issuer_only), path(verifier_only));
    let nonexistent = path(dir.path().join("nonexistent"));
    pin_listen(&gd_cfg, &gd);
    let cases: &[(&[&str], i32, &str)] = &[
        // Asking for verify-peer without a peer is refused before any code is issued.
        (&["--mix", "verify-peer"], 64, "--peer-dir"),
        (&["--mix", "verify-manifest"], 64, "--peer-dir"),
        // The loaded node is no peer of itself.
        (
            &[
                "--mix",
                "verify-peer",
                "--peer-dir",
                &gd_dir,
                "--peer-token-file",
                &gd_token,
            ],
            64,
            "names the node under load",
        ),
        // A peer whose province has no agreement with the loaded node's: refused after one
        // call, with the reason, instead of a whole run of failures.
        (
            &[
                "--mix",
                "verify-peer",
                "--peer-dir",
                &zj_dir,
                "--peer-token-file",
                &zj_token,
            ],
            1,
            "a first verify-peer call got an unexpected verdict (REASON_NO_AGREEMENT)",
        ),
        // A token whose caller lacks a role the mix needs: refused after one call, naming the
        // role; the bench issues the codes it verifies, so issuer is always needed.
        (
            &[
                "--mix",
                "issue=1,verify-own=1",
                "--token-file",
                &issuer_only,
            ],
            64,
            "a first verify-own call failed with PERMISSION_DENIED: the token's caller needs \
             role verifier",
        ),
        (
            &["--mix", "verify-own", "--token-file", &verifier_only],
            64,
            "the caller of --token-file needs role issuer",
        ),
        // A peer folder that is not there is named by its own flag.
        (
            &["--peer-dir", &nonexistent, "--peer-token-file", &sc_token],
            78,
            "hcmr: --peer-dir: ",
        ),
        // A process that is not there is named.
        (
            &["--mix", "empty", "--server-pid", "4000000000"],
            64,
            "--server-pid 4000000000",
        ),
    ];
    for (args, code, says) in cases {
        let mut c = cli(&gd);
        c.arg("bench").args(short).args(*args);
        let out = run(c).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{args:?}: {stdout}\n{stderr}"
        );
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("closed loop"),
            "{args:?}: nothing measured: {stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_kind_and_fail_the_run() {
    // A per-caller limit that lets the 256 codes of the setup pass, and not the load.
    let dir = tempfile::tempdir().unwrap();
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    set_limits(&gd_cfg, 20, 300);
    let gd = start(&gd_cfg).await;
    let mut c = cli(&gd);
    c.args([
        "bench",
        "--mix",
        "verify-own",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--concurrency",
        "8",
    ]);
    let out = run(c).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let (_, errors) = row(&stdout, "verify-own").unwrap();
    assert!(errors > 0, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "errors of verify-own: RESOURCE_EXHAUSTED {errors}"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("caller_requests_per_sec"), "{stdout}");
    assert!(stderr.contains("requests failed"), "{stderr}");
}

#[test]
fn bad_flags_are_refused_before_anything_starts() {
    let refused = |args: &[&str], code: i32, names: &str| {
        let out = bare().arg("bench").args(args).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        // Refused before a node was started: nothing measured.
        assert!(!stdout.contains("self-contained:"), "{args:?}: {stdout}");
    };
    let tokens = tempfile::tempdir().unwrap();
    let empty = tokens.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let some = tokens.path().join("some.token");
    std::fs::write(&some, "not-a-known-token\n").unwrap();
    let (empty, some) = (empty.to_str().unwrap(), some.to_str().unwrap());
    let never_made = "/tmp/hcmr-bench-never-made";
    // Usage errors (exit 64, as for every usage error of hcmr) name the flag or the fault.
    let usage: &[(&[&str], &str)] = &[
        (&["--self-contained", "--rate", "0"], "--rate"),
        (&["--self-contained", "--duration", "0s"], "--duration"),
        (
            &["--self-contained", "--duration", "1ns"],
            "must be at least 1s",
        ),
        (
            &["--self-contained", "--duration", "999ms"],
            "must be at least 1s",
        ),
        (&["--self-contained", "--concurrency", "0"], "--concurrency"),
        (&["--self-contained", "--connections", "0"], "--connections"),
        (&["--peer-dir", "/nonexistent"], "--peer-token-file"),
        (
            &["--self-contained", "--concurrency", "10001"],
            "at most 10000",
        ),
        (
            &["--self-contained", "--mix", "empty=-5"],
            "whole number from 0 to 4294967295",
        ),
        // Durations beyond a day (a measurement) or an hour (a warm-up).
        (
            &["--self-contained", "--duration", "500000000000y"],
            "--duration",
        ),
        (
            &["--self-contained", "--duration", "25h"],
            "must be at most 24h",
        ),
        (
            &["--self-contained", "--warmup", "18446744073709551615s"],
            "--warmup",
        ),
        (
            &["--self-contained", "--mix", "verify-own=1,empty=9,empty=0"],
            "empty is given more than once",
        ),
        (
            &["--node", "https://127.0.0.1:9", "--token-file", empty],
            "the file holds no token",
        ),
        (
            &["--node", "https://127.0.0.1:9", "--token-file", some],
            "an https URL needs the node's certificate",
        ),
        // Flags that do not apply are named, not ignored.
        (
            &["--self-contained", "--server-pid", "1"],
            "--server-pid does not apply",
        ),
        (
            &["--mix", "empty", "scale", "--dir", never_made],
            "--mix does not apply",
        ),
        (
            &["--rate", "100", "scale", "--dir", never_made],
            "--rate does not apply",
        ),
        (&["scale", "--dir", never_made, "--rounds", "0"], "--rounds"),
    ];
    for (args, names) in usage {
        refused(args, 64, names);
    }
    // A node setting from the environment (there for other commands) is not a flag given.
    let out = bare()
        .env("HCMR_TOKEN_FILE", "/nonexistent")
        .args(["bench", "--rate", "100", "scale", "--dir", never_made])
        .output()
        .unwrap();
    assert!(
        text(&out).1.contains("--rate does not apply"),
        "{:?}",
        text(&out)
    );
    // A node that cannot be reached: exit 69, as for every command.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("t");
    std::fs::write(&token, "x").unwrap();
    refused(
        &[
            "--node",
            "http://127.0.0.1:1",
            "--token-file",
            token.to_str().unwrap(),
            "--mix",
            "empty",
        ],
        69,
        "cannot reach node http://127.0.0.1:1",
    );
    // A certificate file that is not there: exit 78, as for `hcmr verify`, naming the file.
    refused(
        &[
            "--node",
            "https://127.0.0.1:1",
            "--tls-cert",
            "/nonexistent/node.crt",
            "--token-file",
            token.to_str().unwrap(),
            "--mix",
            "empty",
        ],
        78,
        "/nonexistent/node.crt",
    );
    assert!(!Path::new(never_made).exists());
}
