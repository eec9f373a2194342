//! Nodes run by hand with the real binary: two provinces agree, issue and verify, stop on
//! SIGTERM; refused calls in the log; `--dir` finding a node.

use super::*;
use crate::common::free_port;

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
    let seconds = hcmr::unix_now().saturating_since(first_second) + 1;
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
    let flood_seconds = hcmr::unix_now().saturating_since(flood_start) + 1;
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
    let plain_seconds = hcmr::unix_now().saturating_since(plain_start) + 1;
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
