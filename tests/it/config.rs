//! Configuration from the file, environment variables and flags (a flag wins over its variable,
//! both over the file), checked at start: each error names the setting and where it came from.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hcmr");

fn serve(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(["serve", "--config", config.to_str().unwrap()])
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_settings_are_refused_naming_the_setting_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("sc");
    let o = Command::new(BIN)
        .args([
            "init",
            "--province",
            "510000",
            "--data-dir",
            d.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let cfg = d.join("hcmr.toml");

    // From a flag: bad usage (64), named as given.
    let o = serve(&cfg, &["--sync-interval-secs", "0"], &[]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        err(&o).contains("--sync-interval-secs 0: sync_interval_secs: 0 is outside 1 to 86400"),
        "{}",
        err(&o)
    );
    // From an environment variable: bad configuration (78), the variable named.
    let o = serve(&cfg, &[], &[("HCMR_PEER_TIMEOUT_SECS", "999")]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        err(&o).contains(
            "environment variable HCMR_PEER_TIMEOUT_SECS=\"999\": peer_timeout_secs: 999 is \
             outside 1 to 300"
        ),
        "{}",
        err(&o)
    );
    // A flag that does not parse names itself (usage error).
    let o = serve(&cfg, &["--listen", "nowhere"], &[]);
    assert_eq!(o.status.code(), Some(64));
    assert!(err(&o).contains("--listen"), "{}", err(&o));
    // From the file: an unknown setting, a bad limit, plain text beyond loopback.
    let text = std::fs::read_to_string(&cfg).unwrap();
    for (bad, want) in [
        (
            text.replace("sync_interval_secs", "sync_intervall_secs"),
            "unknown field `sync_intervall_secs`",
        ),
        (
            text.replace("max_request_bytes = 65536", "max_request_bytes = 10"),
            "limits.max_request_bytes: 10 is outside",
        ),
        (
            text.replace("request_timeout_secs = 30", "request_timeout_secs = 0"),
            "limits.request_timeout_secs: 0",
        ),
    ] {
        let f = d.join("bad.toml");
        std::fs::write(&f, bad).unwrap();
        let o = serve(&f, &[], &[]);
        assert_eq!(o.status.code(), Some(78));
        assert!(
            err(&o).contains(want) && err(&o).contains("bad.toml"),
            "{want}: {}",
            err(&o)
        );
    }
    let plain = dir.path().join("plain");
    let o = Command::new(BIN)
        .args([
            "init",
            "--province",
            "440000",
            "--data-dir",
            plain.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--plaintext",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let o = serve(&plain.join("hcmr.toml"), &["--listen", "0.0.0.0:7440"], &[]);
    // The flag names itself and is bad usage, as every refused flag value.
    assert_eq!(o.status.code(), Some(64));
    assert!(
        err(&o).contains("listen: 0.0.0.0:7440 is not a loopback address")
            && err(&o).contains("--listen 0.0.0.0:7440: "),
        "{}",
        err(&o)
    );
}

#[test]
fn a_flag_wins_over_its_variable_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("sc");
    assert!(Command::new(BIN)
        .args([
            "init",
            "--province",
            "510000",
            "--data-dir",
            d.to_str().unwrap(),
            "--listen",
            "127.0.0.1:1"
        ])
        .status()
        .unwrap()
        .success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--config",
            d.join("hcmr.toml").to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("HCMR_LISTEN", "127.0.0.1:2")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ok = loop {
        let o = Command::new(BIN)
            .args([
                "info",
                "--node",
                &format!("https://127.0.0.1:{port}"),
                "--tls-cert",
                d.join("tls/node.crt").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        if o.status.success() {
            break String::from_utf8_lossy(&o.stdout).contains("province: 510000");
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the node serves on the flag's port");
}

/// Issue 14 fault 2: the hcmr.toml `hcmr init` writes carries every optional top-level setting
/// commented out, with its meaning, above the first section (uncommented, it works); a
/// top-level setting appended at the end (so inside the last section) is refused with where
/// it belongs.
#[test]
fn the_generated_config_shows_every_optional_setting_where_it_belongs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("sc");
    let o = Command::new(BIN)
        .args([
            "init",
            "--province",
            "510000",
            "--data-dir",
            d.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let cfg = d.join("hcmr.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let first_section = text.find("\n[").expect("a section");
    for line in [
        "# http_listen = \"127.0.0.1:8510\"",
        "# metrics_listen = \"127.0.0.1:9510\"",
        "# endpoint = \"https://hcmr.sc.example:7510\"",
        "# key_passphrase_env = \"HCMR_KEY_PASSPHRASE\"",
        "# key_passphrase_file = \"/run/secrets/hcmr\"",
        "# display_utc_offset = \"+08:00\"",
    ] {
        let at = text
            .find(line)
            .unwrap_or_else(|| panic!("{line} in\n{text}"));
        assert!(
            at < first_section,
            "{line} above the first section:\n{text}"
        );
        let meaning = text[..at].lines().last().unwrap();
        assert!(
            meaning.starts_with("# (") && meaning.len() > 10,
            "{line} has its meaning: {meaning:?}"
        );
    }
    assert!(
        text.contains("# how often peers' trust feeds are pulled, seconds (1 to 86400)\nsync_interval_secs = 30\n"),
        "{text}"
    );
    assert!(
        text.contains("# verification audit records kept, days (1 to 3650)\naudit_days = 180\n"),
        "{text}"
    );
    // Every setting the file holds has its meaning in a comment line right above it (issue 14
    // newcomer fault 4: six [limits] settings had none).
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = 0;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
            continue;
        }
        keys += 1;
        let above = if i == 0 { "" } else { lines[i - 1].trim() };
        assert!(
            above.starts_with("# ") && above.len() > 10,
            "`{t}` has no comment line above it:\n{text}"
        );
    }
    assert!(keys >= 25, "{keys} settings in\n{text}");
    for meaning in [
        "# calls in flight per caller token or peer province",
        "# calls in flight per remote IP address",
        "# longest the request body of a call may take to arrive, seconds (1 to 60",
        "# TLS connections open at once on all ports",
        "# TLS connections open at once from one IP address",
        "# a connection with no call in flight for this long is closed, seconds (1 to 3600)",
    ] {
        assert!(text.contains(meaning), "{meaning} in\n{text}");
    }

    // Uncommented in place, the page's setting is taken.
    std::fs::write(
        &cfg,
        text.replace(
            "# http_listen = \"127.0.0.1:8510\"",
            "http_listen = \"127.0.0.1:8510\"",
        ),
    )
    .unwrap();
    let c = hcmr::node::Config::load(&cfg).unwrap();
    assert_eq!(c.http_listen, Some("127.0.0.1:8510".parse().unwrap()));

    // Appended at the end, as the README's line once was: it lands in [retention].
    std::fs::write(&cfg, format!("{text}http_listen = \"127.0.0.1:8510\"\n")).unwrap();
    let o = serve(&cfg, &[], &[]);
    assert_eq!(o.status.code(), Some(78), "{o:?}");
    assert!(
        err(&o).contains(
            "[retention] holds `http_listen`: this is a top-level setting: put it above the first [section]"
        ),
        "{}",
        err(&o)
    );
}
