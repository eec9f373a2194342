//! What the CLI says when something is wrong: exit codes, bad values from flags, variables and
//! files, help, and refusals without raw control characters.

use super::*;
use crate::common::free_port;

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

#[test]
fn help_lists_exit_codes_and_token_variable_and_completions_and_man_pages_are_made() {
    let (out, _) = text(&hcmr(&["verify", "--help"]));
    assert!(
        out.contains(
            "Exit codes: 0 success (verify: RECOGNIZED; manifest check: PASS); 3 verify NOT \
             RECOGNIZED, manifest check STOP, match NO MATCH; 64"
        ),
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
}

/// The node's refusals and damaged files, said in words (the rest of
/// `errors_speak_in_flags_durations_and_words`, on a served node).
#[test]
fn errors_speak_in_words_for_damaged_files_and_the_nodes_refusals() {
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
