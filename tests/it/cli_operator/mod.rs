//! Issue 14, what a new operator trips over in the CLI: output files checked before the node is
//! changed, empty inputs, repeated revocations, refusals that leave nothing behind, empty
//! listings, the rule for exit codes of bad file arguments. The real `hcmr` binary against
//! real nodes on 127.0.0.1.

use crate::common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

use hcmr::node::NodeHandle;
use hcmr::proto;

mod callers;
mod outputs;

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Runs `hcmr ARGS` against `n` as the test caller.
async fn hcmr(n: &NodeHandle, args: &[&str]) -> Output {
    let mut c = cli(n);
    c.args(args);
    run(c).await
}

/// Runs `hcmr ARGS` with `stdin` as standard input.
async fn hcmr_stdin(n: &NodeHandle, args: &[&str], stdin: &[u8]) -> Output {
    let stdin = stdin.to_vec();
    let mut c = cli(n);
    c.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn node(root: &Path, province: u32) -> NodeHandle {
    start(&init_node(root, province).await).await
}

/// Whether `token` is accepted by `n` for a verification (role verifier).
async fn token_works(n: &NodeHandle, token: &str) -> bool {
    codes_as(n, Some(token))
        .await
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: "HCMR1:X".into(),
            checkpoint_id: "t".into(),
        })
        .await
        .is_ok()
}

fn hcmr_offline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(args)
        .env_remove("HCMR_NODE")
        .env_remove("HCMR_DIR")
        .env_remove("HCMR_TOKEN")
        .env_remove("HCMR_TOKEN_FILE")
        .output()
        .unwrap()
}

/// Fault 11: `init --plaintext` on a non-loopback address is refused (78) before anything is
/// made, with advice for init (drop --plaintext, or listen on 127.0.0.1), not for a config
/// file; other refusals of init (a passphrase variable not set) leave no folder either.
#[test]
fn refused_init_leaves_no_folder_and_gives_init_advice() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("node");
    let ds = d.to_str().unwrap();
    let base = ["init", "--province", "510000", "--data-dir", ds];
    for extra in [
        &["--listen", "0.0.0.0:17999", "--plaintext"][..],
        &["--http-listen", "0.0.0.0:18510", "--plaintext"][..],
    ] {
        let o = hcmr_offline(&[&base[..], extra].concat());
        assert_eq!(o.status.code(), Some(78), "{}", err(&o));
        assert!(
            err(&o).contains("is not a loopback address")
                && err(&o).contains("drop --plaintext")
                && err(&o).contains("listen on 127.0.0.1"),
            "{}",
            err(&o)
        );
        assert!(
            !err(&o).contains("[tls]"),
            "config-file advice: {}",
            err(&o)
        );
        assert!(!d.exists(), "a refused init left {}", d.display());
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_hcmr"));
    c.args(base)
        .args(["--key-passphrase-env", "HCMR_TEST_UNSET_PASSPHRASE_14"])
        .env_remove("HCMR_TEST_UNSET_PASSPHRASE_14");
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(78), "{}", err(&o));
    assert!(!d.exists(), "a refused init left {}", d.display());
    // Plain text on loopback is still fine.
    let o = hcmr_offline(&[&base[..], &["--listen", "127.0.0.1:17999", "--plaintext"]].concat());
    assert!(o.status.success(), "{}", err(&o));
    assert!(d.join("hcmr.toml").exists());
}

/// Fault 13: an empty code (`verify ""`, empty standard input, and the same for inspect and
/// match) is bad usage (64): no check is made and no audit record written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_code_is_bad_usage_and_not_checked() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let before = audit_records(&n).await.len();
    let doc = document_number("510104", 7);
    for args in [
        &["verify", ""][..],
        &["verify", "  "][..],
        &["inspect", ""][..],
        &["match", "--doc-number", &doc, ""][..],
    ] {
        let o = hcmr(&n, args).await;
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", err(&o));
        assert!(err(&o).contains("CODE is empty"), "{args:?}: {}", err(&o));
        assert!(out(&o).is_empty(), "{args:?}: {}", out(&o));
    }
    for args in [&["verify", "-"][..], &["inspect", "-"][..]] {
        for input in [&b""[..], b"\n", b" \r\n"] {
            let o = hcmr_stdin(&n, args, input).await;
            assert_eq!(o.status.code(), Some(64), "{args:?}: {}", err(&o));
            assert!(
                err(&o).contains("standard input held no code"),
                "{args:?}: {}",
                err(&o)
            );
        }
    }
    assert_eq!(
        audit_records(&n).await.len(),
        before,
        "an empty code was checked"
    );
    // A code on standard input is still checked (and audited).
    let o = hcmr_stdin(&n, &["verify", "-"], b"HCMR1:NOT-A-CODE\n").await;
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert_eq!(audit_records(&n).await.len(), before + 1);
    n.shutdown().await.unwrap();
}

/// Fault 15: `audit --summary` asks for a day, YYYY-MM-DD, and only for that: a time given
/// instead gets the same one instruction, not RFC 3339 advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_summary_gives_one_instruction_for_its_day() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    for (day, why) in [
        ("2026-12-03T00:00:00Z", ""),
        ("yesterday", ""),
        ("2026-12-3", ""),
        ("2026-02-30", "no such day; "),
        ("1969-12-31", "before 1970; "),
    ] {
        let o = hcmr(&n, &["audit", "--summary", day]).await;
        assert_eq!(o.status.code(), Some(64), "{day}: {}", err(&o));
        assert!(
            err(&o).contains(&format!(
                "--summary {day:?}: {why}give a UTC day YYYY-MM-DD from 1970 on, e.g. 2026-12-01"
            )),
            "{day}: {}",
            err(&o)
        );
        assert!(!err(&o).contains("RFC 3339"), "{day}: {}", err(&o));
    }
    let o = hcmr(&n, &["audit", "--summary", "2026-12-03"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains(": 0 verifications"), "{}", out(&o));
    n.shutdown().await.unwrap();
}

/// Fault 17: `audit` and `caller refused` with nothing to list say so (as `agreement list`
/// says "no agreements") instead of printing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_listings_say_so() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let o = hcmr(&n, &["audit"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "no audit records (no verifications yet)\n");
    let o = hcmr(&n, &["audit", "--verdict", "recognized"]).await;
    assert_eq!(out(&o), "no audit records match\n");
    // CSV keeps standard output to the header; the note goes to standard error.
    let o = hcmr(&n, &["audit", "--csv"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash,replica\n"
    );
    assert!(err(&o).contains("no audit records"), "{}", err(&o));
    let o = hcmr(&n, &["caller", "refused"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "no refused calls\n");
    let o = hcmr(
        &n,
        &["caller", "refused", "--since", "2026-12-01T00:00:00Z"],
    )
    .await;
    // Shown in the display offset (+08:00 by default), as every time a person reads.
    assert_eq!(
        out(&o),
        "no refused calls since 2026-12-01T08:00:00+08:00\n"
    );
    // With a record, the note is gone.
    let o = hcmr(&n, &["verify", "HCMR1:NOT-A-CODE"]).await;
    assert_eq!(o.status.code(), Some(3));
    let o = hcmr(&n, &["audit"]).await;
    assert!(!out(&o).contains("no audit records"), "{}", out(&o));
    assert!(out(&o).contains("NOT_RECOGNIZED"), "{}", out(&o));
    n.shutdown().await.unwrap();
}

/// Issues a code of `status` for the synthetic person `seq` through the CLI; returns its cti.
async fn issue_cti(n: &NodeHandle, seq: u16, status: &str) -> String {
    let doc = document_number("510104", seq);
    let o = hcmr(
        n,
        &[
            "issue",
            "--name",
            "Li Si",
            "--doc-number",
            &doc,
            "--status",
            status,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    err(&o)
        .lines()
        .find_map(|l| l.strip_prefix("cti "))
        .map(|l| l[..32].to_string())
        .unwrap()
}

/// Fault 9: a revocation that changes nothing adds nothing to the feed, for a subject as for
/// a code: `revoke subject --before T` twice, or with a T an earlier revocation already
/// reaches, says "already revoked; nothing added" (exit 0, the API's `already_revoked`), as
/// `revoke code` twice does, and `revoke code` of a code its subject's revocation covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_that_changes_nothing_adds_nothing() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    // Two codes of one person (a code issued twice in one second is the same code: different
    // statuses), one of another.
    let a = issue_cti(&n, 11, "green").await;
    let b = issue_cti(&n, 11, "yellow").await;
    let c = issue_cti(&n, 12, "green").await;
    let doc = document_number("510104", 11);
    let hour_ago = hcmr::rfc3339((hcmr::unix_now() - 3600).secs());
    let subject = |before: Option<&str>| {
        let mut v = vec!["revoke", "subject", "--doc-number", &doc];
        v.extend(before.map(|t| ["--before", t]).into_iter().flatten());
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run_args = |args: Vec<String>| {
        let n = &n;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            hcmr(n, &args).await
        }
    };
    let nothing_added = |o: &Output, what: &str| {
        assert_eq!(o.status.code(), Some(0), "{what}: {}", err(o));
        assert!(
            out(o).contains("already revoked; nothing added to the feed"),
            "{what}: {}",
            out(o)
        );
    };

    let o = run_args(subject(Some(&hour_ago))).await;
    assert_eq!(
        out(&o),
        "revoked the subject's earlier codes; feed entry 2\n",
        "{}",
        err(&o)
    );
    nothing_added(
        &run_args(subject(Some(&hour_ago))).await,
        "the same subject revocation",
    );
    let o = hcmr(&n, &["revoke", "code", &a]).await;
    assert_eq!(
        out(&o),
        format!("revoked code {a}; feed entry 3\n"),
        "{}",
        err(&o)
    );
    nothing_added(&hcmr(&n, &["revoke", "code", &a]).await, "the same code");
    // Now, which covers b (issued before now); then an earlier time changes nothing.
    let o = run_args(subject(None)).await;
    assert_eq!(
        out(&o),
        "revoked the subject's earlier codes; feed entry 4\n",
        "{}",
        err(&o)
    );
    nothing_added(&run_args(subject(Some(&hour_ago))).await, "an earlier time");
    let o = hcmr(&n, &["revoke", "code", &b]).await;
    nothing_added(&o, "a code its subject's revocation covers");
    // None of the refusals took a feed entry.
    let o = hcmr(&n, &["revoke", "code", &c]).await;
    assert_eq!(
        out(&o),
        format!("revoked code {c}; feed entry 5\n"),
        "{}",
        err(&o)
    );
    // The API's answer: OK, already_revoked, no entry.
    let r = codes(&n)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti: b.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.seq, r.already_revoked), (0, true));
    n.shutdown().await.unwrap();
}

/// Fault 19: one rule for the exit codes of file and id arguments (README, `hcmr --help`):
/// 64 when the argument names the wrong thing (a missing or unreadable file, a file of the
/// wrong kind, an unknown id), 1 when it is the right thing but fails its check. And the SVG
/// that `issue --qr` wrote is read by `verify --qr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_id_arguments_follow_one_exit_code_rule() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let dir = root.path();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // The SVG hcmr wrote is read back (drawn with resvg).
    let doc = document_number("510104", 21);
    let svg = path("code.svg");
    let o = hcmr(
        &n,
        &[
            "issue",
            "--name",
            "Wang Wu",
            "--doc-number",
            &doc,
            "--status",
            "green",
            "--qr",
            &svg,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let code = out(&o).trim().to_string();
    let o = hcmr(&n, &["verify", "--qr", &svg]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).starts_with("RECOGNIZED"), "{}", out(&o));
    assert_eq!(hcmr::qr::decode_file(&svg).unwrap(), code);

    // Wrong thing: 64.
    std::fs::write(path("text.png"), "HCMR1:not a picture").unwrap();
    std::fs::write(path("broken.svg"), "<?xml version=\"1.0\"?><svg><path d=").unwrap();
    std::fs::write(path("not.bundle"), "not a bundle").unwrap();
    let kid = kid_of(&n).await;
    let unknown_id = "ab".repeat(16);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["verify".into(), "--qr".into(), path("missing.png")],
            "--qr",
        ),
        (
            vec!["verify".into(), "--qr".into(), path("text.png")],
            "not an image",
        ),
        (
            vec!["verify".into(), "--qr".into(), path("broken.svg")],
            "give the PNG",
        ),
        (
            vec![
                "verify".into(),
                "--offline".into(),
                path("missing.bundle"),
                "--trust".into(),
                kid.clone(),
                code.clone(),
            ],
            "--offline",
        ),
        (
            vec![
                "verify".into(),
                "--offline".into(),
                path("not.bundle"),
                "--trust".into(),
                kid.clone(),
                code.clone(),
            ],
            "not a valid trust bundle",
        ),
        (
            vec!["agreement".into(), "show".into(), unknown_id.clone()],
            "no agreement",
        ),
        (
            vec!["revoke".into(), "code".into(), unknown_id.clone()],
            "no code",
        ),
        (
            vec!["key".into(), "withdraw".into(), "00".repeat(8)],
            "no key",
        ),
        (
            vec!["caller".into(), "remove".into(), "nobody".into()],
            "no caller",
        ),
    ];
    for (args, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = hcmr(&n, &args).await;
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(says), "{args:?}: {}", err(&o));
    }

    // Right thing, fails its check: 1. An image without a code; a bundle too old.
    image::RgbImage::from_pixel(200, 200, image::Rgb([255, 255, 255]))
        .save(dir.join("blank.png"))
        .unwrap();
    let o = hcmr(&n, &["verify", "--qr", &path("blank.png")]).await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("no QR code"), "{}", err(&o));
    let o = hcmr(&n, &["bundle", "export", "--out", &path("gd.bundle")]).await;
    assert!(o.status.success(), "{}", err(&o));
    let other = node(&dir.join("other"), 440_000).await;
    let other_kid = kid_of(&other).await;
    let o = hcmr(
        &n,
        &[
            "verify",
            "--offline",
            &path("gd.bundle"),
            "--trust",
            &other_kid,
            &code,
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("not by the trusted key"), "{}", err(&o));

    // The node's own files are configuration: 78.
    for args in [
        vec!["info".to_string(), "--dir".into(), path("no-node")],
        vec!["info".to_string(), "--tls-cert".into(), path("missing.crt")],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = hcmr(&n, &args).await;
        assert_eq!(o.status.code(), Some(78), "{args:?}: {}", err(&o));
    }

    // The rule is in the help.
    let o = hcmr(&n, &["--help"]).await;
    assert!(
        out(&o).contains("File and id arguments: 64 when the argument names the wrong thing"),
        "{}",
        out(&o)
    );
    other.shutdown().await.unwrap();
    n.shutdown().await.unwrap();
}

/// Runs `hcmr ARGS` against `n` with a file size limit of 0, so that writing any file fails
/// (EFBIG, as on a full disk) after the file was created.
#[cfg(target_os = "linux")]
async fn hcmr_no_file_size(n: &NodeHandle, args: &[&str]) -> Output {
    let mut c = cli(n);
    c.args(["-c", "trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_hcmr"))
        .args(args);
    let mut sh = Command::new("sh");
    sh.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    run(sh).await
}
