//! `hcmr init` and `hcmr serve` taking a node's folder: provinces, existing nodes, passphrase
//! sources, the display offset and listener addresses.

use super::*;
use crate::common::free_port;

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
