//! The `hcmr` binary as an operator uses it: init, serve (two real processes), propose, list,
//! accept, issue, verify, and a graceful SIGTERM. Loopback only; every wait is bounded.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hcmr");

fn hcmr(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HCMR_NODE")
        .output()
        .expect("the hcmr binary runs")
}

/// Runs hcmr against the node in folder `dir` (its URL, certificate and admin token, as an
/// operator on the node's machine), as the caller of `token_file` when given.
fn hcmr_at(dir: &Path, token_file: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("HCMR_NODE")
        .env_remove("HCMR_TOKEN")
        .env("HCMR_DIR", dir);
    match token_file {
        Some(t) => c.env("HCMR_TOKEN_FILE", t),
        None => c.env_remove("HCMR_TOKEN_FILE"),
    };
    c.output().expect("the hcmr binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> Server {
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if hcmr_at(config.parent().unwrap(), None, &["info"])
            .status
            .success()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "node of {} did not come up",
            config.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm_and_wait(mut s: Server) -> std::process::ExitStatus {
    let pid = s.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = s.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn init_refuses_bad_provinces_and_existing_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("x");
    let o = hcmr(&[
        "init",
        "--province",
        "999999",
        "--data-dir",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(64));
    assert!(text(&o)
        .1
        .contains("--province: 999999 is not in the GB/T 2260 province table"));
    let o = hcmr(&[
        "init",
        "--province",
        "510105",
        "--data-dir",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        text(&o).1.contains("prefecture or county"),
        "{}",
        text(&o).1
    );
    assert!(!d.exists(), "nothing created for a bad province");

    let o = hcmr(&[
        "init",
        "--province",
        "340000",
        "--data-dir",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("340000 Anhui"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["node.key", "subject.key"] {
            let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let cfg = std::fs::read_to_string(d.join("hcmr.toml")).unwrap();
    assert!(cfg.contains("province = \"340000\""));
    // init writes nothing outside its folder: no temporary folder needed.
    let y = dir.path().join("y");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .env("TMPDIR", dir.path().join("no-such-folder"))
        .args(["init", "--province", "320000", "--data-dir"])
        .arg(&y)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(y.join("hcmr.toml").exists());
    let before = std::fs::read(d.join("node.key")).unwrap();
    let o = hcmr(&[
        "init",
        "--province",
        "340000",
        "--data-dir",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o).1.contains("already exists"));
    assert_eq!(
        std::fs::read(d.join("node.key")).unwrap(),
        before,
        "key kept"
    );

    let o = hcmr(&[
        "serve",
        "--config",
        dir.path().join("none.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o).1.contains("none.toml"));
}

#[test]
fn two_nodes_by_hand_propose_accept_issue_verify_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (sc_port, gd_port) = (free_port(), free_port());
    let sc_url = format!("https://127.0.0.1:{sc_port}");
    let (sc_dir, gd_dir) = (dir.path().join("sc"), dir.path().join("gd"));
    for (p, port, name) in [("510000", sc_port, "sc"), ("440000", gd_port, "gd")] {
        let o = hcmr(&[
            "init",
            "--province",
            p,
            "--data-dir",
            dir.path().join(name).to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    let sc = serve(&sc_dir.join("hcmr.toml"));
    let gd = serve(&gd_dir.join("hcmr.toml"));

    // Each operator adds their platform as a caller that issues and verifies; the token goes
    // to a file of mode 0600.
    let (sc_tok, gd_tok) = (dir.path().join("sc.token"), dir.path().join("gd.token"));
    for (d, t) in [(&sc_dir, &sc_tok), (&gd_dir, &gd_tok)] {
        let o = hcmr_at(
            d,
            None,
            &[
                "caller",
                "add",
                "platform",
                "--role",
                "issuer,verifier",
                "--token-out",
                t.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{:?}", text(&o));
        assert!(text(&o).0.contains("caller platform (issuer,verifier)"));
    }
    let o = hcmr_at(&sc_dir, None, &["caller", "list"]);
    let out = text(&o).0;
    assert!(out.contains("admin") && out.contains("platform"), "{out}");
    assert!(!out.contains("hcmr_"), "tokens are never listed: {out}");
    // The platform may issue but not manage agreements.
    let o = hcmr_at(&sc_dir, Some(&sc_tok), &["agreement", "list"]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("needs role admin"), "{:?}", text(&o));

    let o = hcmr_at(&sc_dir, None, &["info"]);
    let info = text(&o).0;
    assert!(info.contains("province: 510000 Sichuan"));
    // Sichuan's operator reads the kid and gives it to Guangdong's out of band.
    let sc_kid = info
        .lines()
        .find_map(|l| l.strip_prefix("key:      kid "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(sc_kid.len(), 16);

    let o = hcmr_at(
        &gd_dir,
        None,
        &[
            "agreement",
            "propose",
            "--peer",
            &sc_url,
            "--peer-kid",
            &sc_kid,
            "--peer-codes",
            "green=green,yellow=red,red=red",
            "--our-codes",
            "green=green,red=red",
            "--max-code-age",
            "1d",
            "--for",
            "30d",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("PROPOSED"), "{out}");
    assert!(
        out.contains("codes of 510000 at 440000: green=green,yellow=red,red=red"),
        "{out}"
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    assert_eq!(id.len(), 32);

    let o = hcmr_at(&sc_dir, None, &["agreement", "list"]);
    let out = text(&o).0;
    assert!(
        out.contains(&id) && out.contains("AWAITING_ACCEPTANCE"),
        "{out}"
    );
    let o = hcmr_at(&sc_dir, None, &["agreement", "accept", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("CONCLUDED"));
    let o = hcmr_at(&gd_dir, None, &["agreement", "list"]);
    assert!(text(&o).0.contains("CONCLUDED"));

    let number = hcmr::identity::synthetic_resident_id("511302", "19900721", 242);
    let o = hcmr_at(
        &sc_dir,
        Some(&sc_tok),
        &[
            "issue",
            "--name",
            "李秀英",
            "--doc-number",
            &number,
            "--status",
            "yellow",
            "--status-valid-for",
            "14d",
            "--lifetime",
            "5m",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let code = out.trim().to_string();
    assert!(code.starts_with("HCMR1:"), "{code}");
    assert!(err.contains("cti "));

    let o = hcmr_at(&gd_dir, Some(&gd_tok), &["verify", &code]);
    let out = text(&o).0;
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.starts_with("RECOGNIZED  counts here as RED"), "{out}");
    assert!(
        out.contains("510000 Sichuan") && out.contains("李*英"),
        "{out}"
    );
    assert!(!out.contains(&number));

    // The code from standard input, with a scanner's CR LF.
    let mut child = Command::new(BIN)
        .args(["verify", "-"])
        .env("HCMR_DIR", &sc_dir)
        .env("HCMR_TOKEN_FILE", &sc_tok)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{code}\r\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains("counts here as YELLOW"));

    let o = hcmr_at(&gd_dir, Some(&gd_tok), &["verify", "HCMR1:ABC"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).0.starts_with("NOT RECOGNIZED  REASON_MALFORMED"));

    let o = hcmr_at(
        &sc_dir,
        Some(&sc_tok),
        &[
            "issue",
            "--name",
            "李秀英",
            "--doc-number",
            "440524188001010015",
            "--status",
            "green",
        ],
    );
    assert_eq!(o.status.code(), Some(64));
    assert!(
        text(&o).1.contains("hcmr: --doc-number: "),
        "{:?}",
        text(&o)
    );

    let o = hcmr_at(&sc_dir, None, &["agreement", "accept", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("already accepted"));

    assert!(sigterm_and_wait(sc).success(), "graceful exit 0");
    assert!(sigterm_and_wait(gd).success(), "graceful exit 0");
    let o = hcmr_at(&sc_dir, Some(&sc_tok), &["verify", &code]);
    assert_eq!(o.status.code(), Some(69), "node gone: unavailable");
}

#[test]
fn bad_usage_exits_64_and_unsafe_setups_are_refused() {
    // Argument errors found by the parser are bad usage too (EX_USAGE), not clap's 2.
    let o = hcmr(&["issue", "--status", "blue"]);
    assert_eq!(o.status.code(), Some(64), "{:?}", text(&o));
    let o = hcmr(&[]);
    assert_eq!(o.status.code(), Some(64));
    assert_eq!(hcmr(&["--help"]).status.code(), Some(0));
    // An https URL needs the certificate to pin; a URL without a scheme is refused.
    let o = hcmr(&["verify", "--node", "https://127.0.0.1:1", "HCMR1:X"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        text(&o)
            .1
            .contains("needs the node's certificate (--tls-cert"),
        "{:?}",
        text(&o)
    );
    let o = hcmr(&["verify", "--node", "127.0.0.1:1", "HCMR1:X"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(text(&o).1.contains("expected a URL such as https://"));
    // Plain text is for loopback only: init refuses it on another address.
    let dir0 = tempfile::tempdir().unwrap();
    let o = hcmr(&[
        "init",
        "--province",
        "510000",
        "--data-dir",
        dir0.path().join("x").to_str().unwrap(),
        "--listen",
        "0.0.0.0:7510",
        "--plaintext",
    ]);
    assert_eq!(o.status.code(), Some(78), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("listen: 0.0.0.0:7510 is not a loopback address"),
        "{:?}",
        text(&o)
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("sc");
    let port = free_port();
    let o = hcmr(&[
        "init",
        "--province",
        "510000",
        "--data-dir",
        d.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(o.status.success());
    let cfg = d.join("hcmr.toml");
    let cfg = cfg.to_str().unwrap();

    // A key file readable by others: refused at start, with the fix named.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("node.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = hcmr(&["serve", "--config", cfg]);
        assert_eq!(o.status.code(), Some(78));
        assert!(text(&o).1.contains("chmod 600"), "{:?}", text(&o));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // A TLS key file readable by others: refused too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("tls/node.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let o = hcmr(&["serve", "--config", cfg]);
        assert_eq!(o.status.code(), Some(78));
        assert!(
            text(&o).1.contains("tls/node.key has mode 640"),
            "{:?}",
            text(&o)
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // A second serve on the same data: the database is locked, and the message says why.
    let first = serve(&d.join("hcmr.toml"));
    let o = hcmr(&["serve", "--config", cfg]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        text(&o).1.contains("locked by another process"),
        "{:?}",
        text(&o)
    );
    assert!(sigterm_and_wait(first).success());

    // A config that would disable the clock check is refused, naming the setting.
    let text_cfg = std::fs::read_to_string(d.join("hcmr.toml")).unwrap();
    std::fs::write(
        d.join("bad.toml"),
        text_cfg.replace("clock_skew_secs = 300", "clock_skew_secs = 999999999"),
    )
    .unwrap();
    let o = hcmr(&["serve", "--config", d.join("bad.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        text(&o).1.contains("policy.clock_skew_secs"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn refused_calls_are_logged_within_a_budget_a_second() {
    // A node whose callers may make 1 call a second (bursts of 1), and its log in a file.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("gd");
    let port = free_port();
    let o = hcmr(&[
        "init",
        "--province",
        "440000",
        "--data-dir",
        d.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let config = d.join("hcmr.toml");
    let t = std::fs::read_to_string(&config).unwrap();
    let t = t
        .replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 1",
        )
        .replace("caller_burst = 400", "caller_burst = 1");
    std::fs::write(&config, t).unwrap();
    let token = dir.path().join("gate.token");
    let o = hcmr(&[
        "caller",
        "add",
        "gate",
        "--role",
        "verifier",
        "--config",
        config.to_str().unwrap(),
        "--token-out",
        token.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let log = dir.path().join("serve.log");
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server(child);
    // Up once a verification answers (not a refusal): the caller's one token is then spent.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hcmr_at(&d, Some(&token), &["verify", "HCMR1:NOTACODE"])
        .status
        .code()
        != Some(3)
    {
        assert!(Instant::now() < deadline, "the node did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Calls as fast as the CLI goes: most are refused, each with the reason.
    let first_second = hcmr::unix_now();
    let mut refused = 0u64;
    for _ in 0..12 {
        let o = hcmr_at(&d, Some(&token), &["verify", "HCMR1:NOTACODE"]);
        if o.status.code() == Some(1) {
            assert!(
                text(&o).1.contains("caller gate is over its request rate"),
                "{:?}",
                text(&o)
            );
            refused += 1;
        } else {
            assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
        }
    }
    let seconds = hcmr::unix_now() - first_second + 1;
    assert!(refused >= 4, "{refused} of 12 refused at 1 per second");

    // 300 calls with an unknown token as fast as they go: the first 10 of each second are
    // logged one by one, then one line says the rest are not.
    let flood_start = hcmr::unix_now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = hcmr::client::connect(
            &format!("https://127.0.0.1:{port}"),
            Some(&d.join("tls").join("node.crt")),
            Some("hcmr_not-a-token"),
        )
        .await
        .unwrap();
        let mut hc = hcmr::proto::health_code_service_client::HealthCodeServiceClient::new(ch);
        for _ in 0..300 {
            let e = hc
                .verify_health_code(hcmr::proto::VerifyHealthCodeRequest::default())
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
        }
    });
    let flood_seconds = hcmr::unix_now() - flood_start + 1;
    // A client speaking plain text to this TLS node is told so in its protocol: a gRPC call
    // (an http:// URL) ends with INVALID_ARGUMENT (exit 64), an HTTP/1 request gets a 400.
    for _ in 0..3 {
        let o = hcmr(&[
            "info",
            "--node",
            &format!("http://127.0.0.1:{port}"),
            "--token-file",
            token.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(64), "{:?}", text(&o));
        assert!(
            text(&o).1.contains(
                "this node serves TLS: call it at its https:// URL, pinning its certificate \
                 (--tls-cert)"
            ),
            "{:?}",
            text(&o)
        );
    }
    let mut http1 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    http1
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(&mut http1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http1, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("this node serves TLS: open its https:// address (same host and port)\n"),
        "{answer}"
    );
    // 150 more plain-text clients as fast as they come: logged within the budget too.
    let plain_start = hcmr::unix_now();
    for _ in 0..150 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut c, &mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    let plain_seconds = hcmr::unix_now() - plain_start + 1;
    assert_eq!(sigterm_and_wait(server).code(), Some(0));
    let log = std::fs::read_to_string(&log).unwrap();
    let lines = log
        .lines()
        .filter(|l| l.contains("call refused") && l.contains("UNAUTHENTICATED"))
        .count() as u64;
    let notices = log
        .lines()
        .filter(|l| l.contains("more than 10 calls refused this second"))
        .count() as u64;
    assert!(
        (10..=10 * flood_seconds).contains(&lines),
        "{lines} lines for 300 refusals in {flood_seconds} s"
    );
    assert!(
        (1..=flood_seconds).contains(&notices),
        "{notices} notices in {flood_seconds} s"
    );
    let plain = log
        .lines()
        .filter(|l| l.contains("plain-text client on the TLS port"))
        .count() as u64;
    assert!(
        (10..=10 * (plain_seconds + 1)).contains(&plain),
        "{plain} lines for 154 plain-text clients in {plain_seconds} s"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("TLS handshakes refused or plain-text clients this second")),
        "{log}"
    );

    // The log has at most one line a second about them, the first with the first refusal.
    let logged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("call refused") && l.contains("RESOURCE_EXHAUSTED"))
        .collect();
    assert!(
        !logged.is_empty() && logged.len() as u64 <= seconds.min(refused - 1),
        "{refused} refusals in {seconds} s: {log}"
    );
    assert!(logged[0].contains("refused_total=1"), "{}", logged[0]);
}

#[test]
fn init_keeps_a_passphrase_source_that_serve_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let init = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .env_remove("HCMR_TEST_UNSET_PASSPHRASE")
            .args(["init", "--province", "330000", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap()
    };
    // A passphrase file named relative to where init runs: stored absolute, and it opens.
    std::fs::write(dir.path().join("pp.txt"), "s3cret passphrase\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("pp.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let o = init(&["--data-dir", "zj", "--key-passphrase-file", "pp.txt"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let c = hcmr::node::Config::load(&dir.path().join("zj/hcmr.toml")).unwrap();
    assert_eq!(c.key_passphrase_file, Some(dir.path().join("pp.txt")));
    for f in ["node.key", "subject.key", "tls/node.key"] {
        let t = std::fs::read_to_string(dir.path().join("zj").join(f)).unwrap();
        assert!(
            t.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{f}"
        );
    }
    hcmr::node::Node::open(&c).unwrap();

    // A passphrase variable that is not set: refused (78), nothing plain written.
    let o = init(&[
        "--data-dir",
        "ah",
        "--key-passphrase-env",
        "HCMR_TEST_UNSET_PASSPHRASE",
    ]);
    assert_eq!(o.status.code(), Some(78), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("HCMR_TEST_UNSET_PASSPHRASE (key_passphrase_env) is not set"),
        "{:?}",
        text(&o)
    );
    assert!(!dir.path().join("ah/node.key").exists());
    // Both sources at once: refused as usage (64).
    let o = init(&[
        "--data-dir",
        "gx",
        "--key-passphrase-env",
        "X",
        "--key-passphrase-file",
        "pp.txt",
    ]);
    assert_eq!(o.status.code(), Some(64), "{:?}", text(&o));
}

/// Runs hcmr with extra environment variables.
fn hcmr_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("HCMR_NODE")
        .env_remove("HCMR_TOKEN")
        .env_remove("HCMR_DIR")
        .env_remove("HCMR_TOKEN_FILE")
        .env_remove("HCMR_TLS_CERT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the hcmr binary runs")
}

#[test]
fn a_bad_value_from_an_environment_variable_names_it_and_is_bad_configuration() {
    let none = "/nonexistent/hcmr.toml";
    // Each variable of serve: named, exit 78 (bad configuration).
    for (var, value) in [
        ("HCMR_SYNC_INTERVAL_SECS", "abc"),
        ("HCMR_PEER_TIMEOUT_SECS", "-1"),
        ("HCMR_CLOCK_SKEW_SECS", "5m"),
        ("HCMR_LISTEN", "localhost"),
        ("HCMR_HTTP_LISTEN", "8510"),
        ("HCMR_LOG_FORMAT", "xml"),
    ] {
        let o = hcmr_env(&[(var, value)], &["serve", "--config", none]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(78), "{var}: {err}");
        assert!(
            err.contains(&format!("environment variable {var}={value:?}")),
            "{var}: {err}"
        );
    }
    // The same value as a flag is bad usage, and names the flag.
    let o = hcmr_env(
        &[],
        &["serve", "--config", none, "--sync-interval-secs", "abc"],
    );
    assert_eq!(o.status.code(), Some(64), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("--sync-interval-secs"),
        "{:?}",
        text(&o)
    );
    // A flag wins over its variable: the bad variable is not used, so not reported.
    let o = hcmr_env(
        &[("HCMR_SYNC_INTERVAL_SECS", "abc")],
        &["serve", "--config", none, "--sync-interval-secs", "5"],
    );
    assert!(
        !text(&o).1.contains("HCMR_SYNC_INTERVAL_SECS"),
        "{:?}",
        text(&o)
    );
    // The client's variables: a URL, a token file, a node folder.
    let o = hcmr_env(&[("HCMR_NODE", "127.0.0.1:7510")], &["info"]);
    assert_eq!(o.status.code(), Some(78), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("environment variable HCMR_NODE="),
        "{:?}",
        text(&o)
    );
    let o = hcmr_env(
        &[("HCMR_TOKEN_FILE", "/nonexistent/token")],
        &["info", "--node", "http://127.0.0.1:1"],
    );
    assert_eq!(o.status.code(), Some(78), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("environment variable HCMR_TOKEN_FILE /nonexistent/token"),
        "{:?}",
        text(&o)
    );
    let o = hcmr_env(&[("HCMR_DIR", "/nonexistent")], &["info"]);
    assert_eq!(o.status.code(), Some(78), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("environment variable HCMR_DIR"),
        "{:?}",
        text(&o)
    );
}

/// `hcmr init` of province `province` in `dir` listening on 127.0.0.1:`port`.
fn init_at(dir: &Path, province: &str, port: u16) {
    let o = hcmr(&[
        "init",
        "--province",
        province,
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn dir_finds_a_node_served_on_another_address_and_names_a_foreign_node() {
    let tmp = tempfile::tempdir().unwrap();
    let (sc, gd) = (tmp.path().join("sc"), tmp.path().join("gd"));
    let file_port = free_port();
    init_at(&sc, "510000", file_port);
    // Guangdong's folder says the same address as Sichuan's.
    init_at(&gd, "440000", file_port);
    // Sichuan served elsewhere than its hcmr.toml says.
    let live_port = free_port();
    let serve_elsewhere = || {
        let child = Command::new(BIN)
            .args(["serve", "--config", sc.join("hcmr.toml").to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{live_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let o = loop {
            let o = hcmr_at(&sc, None, &["info"]);
            if o.status.success() || Instant::now() > deadline {
                break o;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        assert!(out.contains("province: 510000"), "{out}");
        assert!(std::fs::read_to_string(sc.join("serving.toml"))
            .unwrap()
            .contains(&format!("https://127.0.0.1:{live_port}")));
        server
    };
    // Stopped cleanly: the live endpoint is gone, the file's address is used again.
    assert!(sigterm_and_wait(serve_elsewhere()).success());
    assert!(!sc.join("serving.toml").exists());
    // Killed: the file is left, but its process is gone, so it is not used.
    drop(serve_elsewhere());
    assert!(sc.join("serving.toml").exists());
    let o = hcmr_at(&sc, None, &["info"]);
    assert_eq!(o.status.code(), Some(69), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains(&format!("cannot reach node https://127.0.0.1:{file_port}")),
        "{:?}",
        text(&o)
    );

    // Sichuan served at the address both files name: Guangdong's folder finds another node.
    let server = serve(&sc.join("hcmr.toml"));
    let o = hcmr_at(&gd, None, &["info"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&format!(
            "the node at https://127.0.0.1:{file_port} is not this folder's node"
        )),
        "{err}"
    );
    assert!(
        !err.contains("UnknownIssuer") || err.contains("not this folder's"),
        "{err}"
    );

    // Another node's certificate given with --tls-cert: said so, bad configuration (not
    // "unreachable").
    let url = format!("https://127.0.0.1:{file_port}");
    let gd_cert = gd.join("tls/node.crt");
    let o = hcmr(&[
        "verify",
        "--node",
        &url,
        "--tls-cert",
        gd_cert.to_str().unwrap(),
        "HCMR1:X",
    ]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&format!(
            "the certificate given with --tls-cert {} is not this node's",
            gd_cert.display()
        )),
        "{err}"
    );
    drop(server);
}

#[test]
fn help_lists_exit_codes_and_token_variable_and_completions_and_man_pages_are_made() {
    let (out, _) = text(&hcmr(&["verify", "--help"]));
    assert!(
        out.contains("Exit codes: 0 success (verify: RECOGNIZED); 3 verify NOT RECOGNIZED, match NO MATCH; 64"),
        "{out}"
    );
    assert!(
        out.contains("HCMR_TOKEN,") || out.contains("HCMR_TOKEN "),
        "{out}"
    );
    let (out, _) = text(&hcmr(&["serve", "--help"]));
    assert!(out.contains("--dir <DIR>"), "{out}");
    // No options at all: the default https URL needs a certificate, and --dir is offered.
    let o = hcmr_env(&[], &["info"]);
    assert_eq!(o.status.code(), Some(64), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("--dir FOLDER (HCMR_DIR)"),
        "{:?}",
        text(&o)
    );
    // Completions and man pages from the same definitions.
    let o = hcmr(&["completions", "bash"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    assert!(
        out.contains("--tls-cert") && out.contains("_hcmr"),
        "{}",
        &out[..200]
    );
    let o = hcmr(&["completions", "zsh"]);
    assert!(o.status.success() && text(&o).0.contains("#compdef hcmr"));
    let o = hcmr(&["completions", "fish"]);
    assert!(o.status.success() && text(&o).0.contains("complete -c hcmr"));
    let tmp = tempfile::tempdir().unwrap();
    let man = tmp.path().join("man1");
    let o = hcmr(&["man", "--out", man.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let page = std::fs::read_to_string(man.join("hcmr-verify.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("max\\-bundle\\-age"), "{page}");
    assert!(man.join("hcmr.1").exists() && man.join("hcmr-agreement-propose.1").exists());
}

#[test]
fn serve_takes_the_node_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = tmp.path().join("sc");
    init_at(&sc, "510000", free_port());
    let child = Command::new(BIN)
        .args(["serve", "--dir", sc.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !hcmr_at(&sc, None, &["info"]).status.success() {
        assert!(Instant::now() < deadline, "serve --dir did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(sigterm_and_wait(server).success());
}

#[test]
fn errors_speak_in_flags_durations_and_words() {
    let issue = |extra: &[&str]| {
        let mut args = vec![
            "issue",
            "--node",
            "http://127.0.0.1:1",
            "--name",
            "李秀英",
            "--doc-number",
            "51130219900721242X",
            "--status",
            "green",
        ];
        args.extend_from_slice(extra);
        let o = hcmr_env(&[], &args);
        assert_eq!(o.status.code(), Some(64), "{extra:?}: {:?}", text(&o));
        text(&o).1
    };
    // A lifetime over the node's limit: the flag and a duration, not the API field in seconds.
    let err = issue(&["--lifetime", "365d"]);
    assert!(
        err.contains("--lifetime") && err.contains("at most 7d"),
        "{err}"
    );
    assert!(
        !err.contains("code_lifetime_secs") && !err.contains("604800"),
        "{err}"
    );
    // A status valid for nothing: not raw seconds since the epoch.
    let err = issue(&["--status-valid-for", "0s"]);
    assert!(
        err.contains("--status-valid-for") && err.contains("must be at least 1s"),
        "{err}"
    );
    assert!(!err.contains("Unix epoch"), "{err}");
    let err = issue(&["--status-valid-for", "400d"]);
    assert!(err.contains("at most 366d"), "{err}");
    // A number without its unit: units that are accepted, not "5sec or 5ms".
    let err = issue(&["--lifetime", "5"]);
    assert!(
        err.contains("5 needs its unit: e.g. 5s, 5m, 5h or 5d"),
        "{err}"
    );
    assert!(!err.contains("5ms"), "{err}");
    let err = issue(&["--lifetime", "500ms"]);
    assert!(err.contains("must be at least 1s"), "{err}");
    let err = issue(&["--lifetime", "1500ms"]);
    assert!(err.contains("give whole seconds, e.g. 1s"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let sc = tmp.path().join("sc");
    init_at(&sc, "510000", free_port());
    let server = serve(&sc.join("hcmr.toml"));
    // A truncated bundle: said in words, not ciborium's Debug text.
    let bundle = tmp.path().join("sc.bundle");
    let o = hcmr_at(
        &sc,
        None,
        &["bundle", "export", "--out", bundle.to_str().unwrap()],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let bytes = std::fs::read(&bundle).unwrap();
    let cut = tmp.path().join("cut.bundle");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = hcmr_env(
        &[],
        &[
            "verify",
            "--offline",
            cut.to_str().unwrap(),
            "--trust",
            "0123456789abcdef",
            "HCMR1:X",
        ],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the file ends early") && err.contains("cut short"),
        "{err}"
    );
    assert!(
        !err.contains("Io(") && !err.contains("UnexpectedEof"),
        "{err}"
    );
    // Refusals of the node: its words, not the gRPC code's name.
    let o = hcmr_at(&sc, None, &["agreement", "accept", &"ab".repeat(16)]);
    let err = text(&o).1;
    // An id the node does not know is a bad argument (the exit-code rule for ids).
    assert_eq!(o.status.code(), Some(64), "{err}");
    for grpc in [
        "NotFound",
        "FailedPrecondition",
        "InvalidArgument",
        "PermissionDenied",
    ] {
        assert!(!err.contains(grpc), "{err}");
    }
    let o = hcmr_at(
        &sc,
        None,
        &[
            "issue",
            "--name",
            "李秀英",
            "--doc-number",
            "51130219900721242X",
            "--status",
            "green",
        ],
    );
    let err = text(&o).1;
    assert!(
        err.starts_with("hcmr: the node refused the call: caller admin has role admin"),
        "{err}"
    );
    // A field the node refuses is named by the flag that set it.
    let token = tmp.path().join("platform.token");
    let o = hcmr_at(
        &sc,
        None,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer",
            "--token-out",
            token.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = hcmr_at(
        &sc,
        Some(&token),
        &[
            "issue",
            "--name",
            "李秀英",
            "--doc-number",
            "511302199007212421",
            "--status",
            "green",
        ],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(err.starts_with("hcmr: --doc-number: "), "{err}");
    drop(server);
}

/// Issue 15 fault 10: every file the CLI reads has a size limit checked before it is read: a
/// 300 MB trust bundle (sparse here, so the test itself costs nothing), a token file, a --qr
/// image. Each is refused as a bad argument (64) naming the file, its size and the limit.
#[test]
fn oversized_input_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = |name: &str, len: u64| {
        let p = dir.path().join(name);
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        p
    };
    let bundle = sparse("huge.bundle", 300_000_000);
    let o = hcmr(&[
        "verify",
        "--offline",
        bundle.to_str().unwrap(),
        "--trust",
        "0011223344556677",
        "HCMR1:ABC",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(64), "{out} {err}");
    assert!(
        err.contains("huge.bundle: the file has 300000000 bytes; at most 4194304 are read"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");

    let token = sparse("huge.token", 1 << 30);
    let o = Command::new(BIN)
        .args([
            "verify",
            "--token-file",
            token.to_str().unwrap(),
            "HCMR1:ABC",
        ])
        .env("HCMR_NODE", "https://127.0.0.1:9")
        .env_remove("HCMR_TOKEN")
        .env_remove("HCMR_DIR")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(64), "{out} {err}");
    assert!(
        err.contains("huge.token: the file has 1073741824 bytes; at most 4096 are read"),
        "{err}"
    );

    let image = sparse("huge.png", 1 << 32);
    let o = hcmr(&[
        "verify",
        "--offline",
        bundle.to_str().unwrap(),
        "--trust",
        "0011223344556677",
        "--qr",
        image.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out} {err}");
    assert!(
        err.contains("the file has 4294967296 bytes; at most 33554432 are read"),
        "{err}"
    );
}

/// What a newcomer found after issues 14 and 15 (siblings of fault 12 of issue 14, fault 4 of
/// issue 15, fault 16 of issue 14): a value the argument parser refuses is quoted escaped; every
/// command's help lists the exit codes; a global flag's environment variable and HCMR_TOKEN are
/// named when refused (78); a serve setting that the configuration refuses is named by where it
/// came from (a flag: 64; a variable: 78); an `endpoint` that is not a URL is refused at start.
#[test]
fn refusals_name_their_source_and_never_write_raw_control_characters() {
    // The parser quotes the refused value: escaped, no raw ESC or bidi override.
    for bad in ["\x1b[2Jx", "\u{202e}x"] {
        let o = hcmr(&["audit", "--from", bad]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(64), "{err}");
        assert!(!err.contains(['\x1b', '\u{202e}']), "{err:?}");
        // The parser's plain text drops an ANSI sequence; what is left is escaped.
        if bad.starts_with('\u{202e}') {
            assert!(err.contains("\\u202E"), "{err:?}");
        }
        assert!(out.is_empty(), "{out:?}");
    }
    // Exit codes after every command's help, not only hcmr, verify and serve.
    for cmd in [
        &["init", "--help"][..],
        &["issue", "--help"],
        &["agreement", "propose", "--help"],
        &["caller", "add", "--help"],
        &["bundle", "export", "--help"],
        &["backup", "--help"],
        &["restore", "--help"],
        &["audit", "--help"],
        &["man", "--help"],
    ] {
        let (out, _) = text(&hcmr(cmd));
        assert!(out.contains("Exit codes: 0 success"), "{cmd:?}: {out}");
    }
    // A flag that only means something offline is refused without --offline, not ignored.
    let o = hcmr(&["verify", "--max-bundle-age", "2d", "HCMR1:X"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(err.contains("--offline"), "{err}");
    // A global flag's variable is named, and is bad configuration.
    let o = hcmr_env(&[("HCMR_DISPLAY_UTC_OFFSET", "abc")], &["caller", "list"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("environment variable HCMR_DISPLAY_UTC_OFFSET=\"abc\""),
        "{err}"
    );
    // HCMR_TOKEN with what no header can carry: named, 78, and escaped.
    let o = hcmr_env(
        &[("HCMR_TOKEN", "hcmr_\x1b[2J")],
        &["sync", "--node", "http://127.0.0.1:9"],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(err.contains("environment variable HCMR_TOKEN"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");

    // serve: the configuration's range checks, named by the source of the value.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sc");
    init_at(&dir, "510000", free_port());
    let d = dir.to_str().unwrap();
    let o = hcmr(&["serve", "--dir", d, "--peer-timeout-secs", "0"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(err.contains("--peer-timeout-secs 0: "), "{err}");
    let o = hcmr_env(&[("HCMR_PEER_TIMEOUT_SECS", "0")], &["serve", "--dir", d]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("environment variable HCMR_PEER_TIMEOUT_SECS=\"0\": "),
        "{err}"
    );
    // An endpoint with control and bidi characters is not a URL: refused at start, escaped.
    let config = dir.join("hcmr.toml");
    let text_before = std::fs::read_to_string(&config).unwrap();
    let port_line = text_before
        .lines()
        .find(|l| l.starts_with("listen = "))
        .unwrap()
        .to_string();
    std::fs::write(
        &config,
        text_before.replace(
            &port_line,
            &format!("{port_line}\nendpoint = \"https://127.0.0.1:7352/\\u001b[2J\\u202eevil\""),
        ),
    )
    .unwrap();
    let o = hcmr(&["serve", "--dir", d]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("endpoint: ") && err.contains("is not a URL"),
        "{err}"
    );
    assert!(!err.contains(['\x1b', '\u{202e}']), "{err:?}");
}

/// Newcomer findings: `init --display-utc-offset` writes the offset into hcmr.toml (it was
/// accepted and ignored), and two listeners on one address are refused at init, naming both.
#[test]
fn init_keeps_the_display_offset_and_refuses_a_shared_listener_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ah");
    let o = hcmr(&[
        "init",
        "--province",
        "340000",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:17340",
        "--display-utc-offset",
        "+05:30",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let toml = std::fs::read_to_string(dir.join("hcmr.toml")).unwrap();
    assert!(
        toml.lines().any(|l| l == "display_utc_offset = \"+05:30\""),
        "{toml}"
    );
    let shared = tmp.path().join("zj");
    let o = hcmr(&[
        "init",
        "--province",
        "330000",
        "--data-dir",
        shared.to_str().unwrap(),
        "--listen",
        "127.0.0.1:17330",
        "--http-listen",
        "127.0.0.1:17330",
    ]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("http_listen: 127.0.0.1:17330 is also listen's address"),
        "{err}"
    );
    assert!(!shared.exists(), "a refused init leaves no folder");
}
