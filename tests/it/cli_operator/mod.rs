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

/// Fault 1: `caller add --token-out` to a file that exists, or into a folder that does not:
/// refused (64) before the caller is replaced, so the platform's working token still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_add_checks_token_out_before_replacing_the_caller() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let first = root.path().join("platform.token");
    let f = first.to_str().unwrap();
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer,verifier",
            "--token-out",
            f,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let token = std::fs::read_to_string(&first).unwrap().trim().to_string();
    assert!(token_works(&n, &token).await);

    // The file exists: refused, nothing changed.
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer,verifier",
            "--token-out",
            f,
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("the file exists; refusing to overwrite it; the caller was not changed"),
        "{}",
        err(&o)
    );
    assert!(token_works(&n, &token).await, "the old token was revoked");
    assert_eq!(std::fs::read_to_string(&first).unwrap().trim(), token);

    // Its folder does not exist: refused, nothing changed, no folder made.
    let missing = root.path().join("no-such-folder/platform.token");
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer",
            "--token-out",
            missing.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("does not exist; create it first"),
        "{}",
        err(&o)
    );
    assert!(token_works(&n, &token).await, "the old token was revoked");
    assert!(!missing.parent().unwrap().exists());

    // A refusal by the node (a bad name) leaves no empty token file behind.
    let unused = root.path().join("bad.token");
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "bad name!",
            "--role",
            "issuer",
            "--token-out",
            unused.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!o.status.success());
    assert!(!unused.exists(), "a refused caller left a token file");
    n.shutdown().await.unwrap();
}

/// Fault 1, its siblings: `backup --out` and `bundle export --out` into a folder that does not
/// exist are refused (64) before the node is asked; a bundle that cannot be written after
/// the node answered is an error naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_bundle_outputs_are_checked_first() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    for cmd in [&["backup"][..], &["bundle", "export"][..]] {
        let mut args = cmd.to_vec();
        let missing = root.path().join("nowhere/file");
        args.extend(["--out", missing.to_str().unwrap()]);
        let o = hcmr(&n, &args).await;
        assert_eq!(o.status.code(), Some(64), "{cmd:?}: {}", err(&o));
        assert!(
            err(&o).contains("--out") && err(&o).contains("does not exist"),
            "{cmd:?}: {}",
            err(&o)
        );
    }
    // A folder given as the file: refused, naming it.
    let o = hcmr(
        &n,
        &["bundle", "export", "--out", root.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("is a folder"), "{}", err(&o));
    n.shutdown().await.unwrap();
}

/// Fault 6: `issue --qr` (or `--card`) into a folder that does not exist is refused (64) before
/// a code is issued; when writing fails after issuing, the code and its cti (needed to revoke
/// it) are printed anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_checks_the_image_path_first_and_always_prints_the_cti() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let doc = hcmr::identity::synthetic_resident_id("510104", "19900101", 7);
    let issue = |image_flag: &'static str, path: String| {
        vec![
            "issue".to_string(),
            "--name".into(),
            "Zhang San".into(),
            "--doc-number".into(),
            doc.clone(),
            "--status".into(),
            "green".into(),
            image_flag.into(),
            path,
        ]
    };
    for (flag, name) in [
        ("--qr", "code.png"),
        ("--card", "card.pdf"),
        ("--card", "card.png"),
    ] {
        let path = root.path().join("nonexistent").join(name);
        let args = issue(flag, path.to_str().unwrap().into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = hcmr(&n, &args).await;
        assert_eq!(o.status.code(), Some(64), "{flag} {name}: {}", err(&o));
        assert!(out(&o).is_empty(), "a code was issued: {}", out(&o));
        assert!(
            err(&o).contains(&format!("{flag} ")) && err(&o).contains("no code was issued"),
            "{}",
            err(&o)
        );
    }

    // Writing fails after the code is issued (a file size limit of 0: EFBIG, as on a full
    // disk): the code and the cti line are printed, the error says so.
    #[cfg(target_os = "linux")]
    {
        let full = root.path().join("full.png");
        let args = issue("--qr", full.to_str().unwrap().into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = hcmr_no_file_size(&n, &args).await;
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(out(&o).starts_with("HCMR1:"), "{}", out(&o));
        let cti = err(&o)
            .lines()
            .find_map(|l| l.strip_prefix("cti "))
            .map(|l| l[..32].to_string())
            .unwrap_or_else(|| panic!("no cti line: {}", err(&o)));
        assert!(
            err(&o).contains(&format!("the code was issued (printed above, cti {cti})")),
            "{}",
            err(&o)
        );
        // The cti printed is the one to revoke it with.
        let o = hcmr(&n, &["revoke", "code", &cti]).await;
        assert!(o.status.success(), "{}", err(&o));
    }
    n.shutdown().await.unwrap();
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
    let doc = hcmr::identity::synthetic_resident_id("510104", "19900101", 7);
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
        "time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash\n"
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
    let doc = hcmr::identity::synthetic_resident_id("510104", "19900101", seq);
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
    let doc = hcmr::identity::synthetic_resident_id("510104", "19900101", 11);
    let hour_ago = hcmr::rfc3339(hcmr::unix_now() - 3600);
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
    let doc = hcmr::identity::synthetic_resident_id("510104", "19900101", 21);
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

/// Fault 1, the other half: when the token file cannot be written after the node has replaced
/// the caller (here: a file size limit of 0, so writing fails with EFBIG), the token, which
/// only this command could show, is printed with a clear message, and the command fails (1).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_add_shows_the_token_when_its_file_cannot_be_written() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let file = root.path().join("platform.token");
    let o = hcmr_no_file_size(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "verifier",
            "--token-out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        out(&o).contains("caller platform (verifier) is set on the node, but --token-out"),
        "{}",
        out(&o)
    );
    assert!(
        err(&o).contains("the token is printed above instead"),
        "{}",
        err(&o)
    );
    let token = out(&o).lines().nth(1).unwrap().trim().to_string();
    assert!(
        token_works(&n, &token).await,
        "the printed token is the new one"
    );
    assert!(!file.exists(), "a half-written token file was left");
    n.shutdown().await.unwrap();
}

/// Runs `hcmr ARGS` against `n` in the folder `cwd`.
async fn hcmr_in(n: &NodeHandle, cwd: &Path, args: &[&str]) -> Output {
    let mut c = cli(n);
    c.args(args).current_dir(cwd);
    run(c).await
}

/// Issue 14 fault 1's kind, newcomer test fault 1: `issue --qr` and `--card` to a file that
/// exists, or to a symbolic link (dangling or not), are refused (64) before a code is issued;
/// the existing file, and the file a link points to, are untouched, and a dangling link's
/// target is not created.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_refuses_an_existing_image_file_or_a_symlink() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let doc = hcmr::identity::synthetic_resident_id("510104", "19900101", 7);
    let victim = root.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    for (flag, name) in [
        ("--qr", "code.png"),
        ("--qr", "code.svg"),
        ("--card", "card.pdf"),
    ] {
        let existing = root.path().join(format!("old-{name}"));
        std::fs::write(&existing, b"old").unwrap();
        let link = root.path().join(format!("link-{name}"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = root.path().join(format!("dangling-{name}"));
        let dangling_target = root.path().join(format!("nowhere-{name}"));
        std::os::unix::fs::symlink(&dangling_target, &dangling).unwrap();
        for path in [&existing, &link, &dangling] {
            let o = hcmr(
                &n,
                &[
                    "issue",
                    "--name",
                    "Zhang San",
                    "--doc-number",
                    &doc,
                    "--status",
                    "green",
                    flag,
                    path.to_str().unwrap(),
                ],
            )
            .await;
            assert_eq!(o.status.code(), Some(64), "{flag} {path:?}: {}", err(&o));
            assert!(out(&o).is_empty(), "a code was issued: {}", out(&o));
            assert!(
                err(&o).contains("the file exists")
                    && err(&o).contains("refusing to overwrite it")
                    && err(&o).contains("no code was issued"),
                "{}",
                err(&o)
            );
        }
        assert_eq!(std::fs::read(&existing).unwrap(), b"old");
        assert!(!dangling_target.exists(), "a dangling link was followed");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    // `-` is no file here either.
    let o = hcmr_in(
        &n,
        root.path(),
        &[
            "issue",
            "--name",
            "Zhang San",
            "--doc-number",
            &doc,
            "--status",
            "green",
            "--card",
            "-",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("standard output is not an output here"),
        "{}",
        err(&o)
    );
    assert!(!root.path().join("-").exists());
    n.shutdown().await.unwrap();
}

/// Newcomer test fault 2: `bundle export --out` refuses an existing file and a symbolic link
/// (64, nothing changed); `--token-out -` prints the token alone on standard output (no file
/// named `-`); a file under a file says that it is not a folder; `man --out` refuses pages that
/// exist unless `--force`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_outputs_refuse_existing_files_and_links() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let victim = root.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    let existing = root.path().join("old.bundle");
    std::fs::write(&existing, b"old").unwrap();
    let link = root.path().join("link.bundle");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = root.path().join("dangling.bundle");
    std::os::unix::fs::symlink(root.path().join("nowhere"), &dangling).unwrap();
    for path in [&existing, &link, &dangling] {
        let o = hcmr(&n, &["bundle", "export", "--out", path.to_str().unwrap()]).await;
        assert_eq!(o.status.code(), Some(64), "{path:?}: {}", err(&o));
        assert!(err(&o).contains("the file exists"), "{}", err(&o));
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"old");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(!root.path().join("nowhere").exists());

    // `--token-out -`: the token alone on standard output, and it works.
    let o = hcmr_in(
        &n,
        root.path(),
        &[
            "caller",
            "add",
            "gate",
            "--role",
            "verifier",
            "--token-out",
            "-",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        !root.path().join("-").exists(),
        "a file named - was written"
    );
    let token = out(&o).trim().to_string();
    assert!(
        token.starts_with("hcmr_") && !token.contains('\n'),
        "{token}"
    );
    assert!(token_works(&n, &token).await);

    // A file under a file: its "folder" is not a folder.
    let under = victim.join("x.token");
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "gate2",
            "--role",
            "verifier",
            "--token-out",
            under.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("{} is not a folder", victim.display())),
        "{}",
        err(&o)
    );

    // `man --out`: existing pages are refused (nothing written) unless --force.
    let man = root.path().join("man1");
    let man_s = man.to_str().unwrap();
    let o = hcmr_offline(&["man", "--out", man_s]);
    assert!(o.status.success(), "{}", err(&o));
    let page = man.join("hcmr-verify.1");
    std::fs::write(&page, b"mine").unwrap();
    let o = hcmr_offline(&["man", "--out", man_s]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("exist")
            && err(&o).contains("hcmr-verify.1")
            && err(&o).contains("--force"),
        "{}",
        err(&o)
    );
    assert_eq!(std::fs::read(&page).unwrap(), b"mine");
    let o = hcmr_offline(&["man", "--out", man_s, "--force"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_ne!(std::fs::read(&page).unwrap(), b"mine");
    // A file where a folder should be.
    let o = hcmr_offline(&["man", "--out", page.join("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("is a file, not a folder"), "{}", err(&o));
    n.shutdown().await.unwrap();
}

/// The roles of the caller `name` on `n`, or None.
async fn roles_of(n: &NodeHandle, name: &str) -> Option<Vec<i32>> {
    operator(n)
        .await
        .list_callers(proto::ListCallersRequest {})
        .await
        .unwrap()
        .into_inner()
        .callers
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.roles)
}

/// Newcomer test fault 3: `caller add` of an existing name is refused (64, saying how to
/// replace it; the old token still works) unless `--replace`; the last admin is never replaced
/// by a non-admin (1, FAILED_PRECONDITION), online or offline with `--config`; AddCaller
/// answers ALREADY_EXISTS without `replace`; the README's recovery line (a new admin name,
/// offline) still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_add_refuses_an_existing_name_and_keeps_the_last_admin() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let add = |name: &'static str, role: &'static str, extra: &'static [&'static str]| {
        let mut a = vec!["caller", "add", name, "--role", role];
        a.extend_from_slice(extra);
        a
    };
    let o = hcmr(&n, &add("platform", "issuer,verifier", &[])).await;
    assert!(o.status.success(), "{}", err(&o));
    let token = out(&o).lines().nth(1).unwrap().trim().to_string();
    assert!(token_works(&n, &token).await);

    // Again: refused, nothing changed.
    let o = hcmr(&n, &add("platform", "issuer", &[])).await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("caller platform exists; nothing was changed")
            && err(&o).contains("add --replace"),
        "{}",
        err(&o)
    );
    assert!(token_works(&n, &token).await, "the old token was revoked");
    assert_eq!(
        roles_of(&n, "platform").await.unwrap(),
        vec![
            proto::CallerRole::Issuer as i32,
            proto::CallerRole::Verifier as i32
        ]
    );
    // The API says ALREADY_EXISTS without `replace`.
    let e = operator(&n)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "platform".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e:?}");
    assert!(token_works(&n, &token).await);

    // With --replace: a new token, the old one is dead.
    let o = hcmr(&n, &add("platform", "verifier", &["--replace"])).await;
    assert!(o.status.success(), "{}", err(&o));
    let new = out(&o).lines().nth(1).unwrap().trim().to_string();
    assert!(token_works(&n, &new).await);
    assert!(!token_works(&n, &token).await);

    // Two admins (the initial `admin` and the test's `test`): `admin` may become a verifier,
    // then `test`, the last admin, may not, with or without --replace.
    let o = hcmr(&n, &add("admin", "verifier", &[])).await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    let admin = proto::CallerRole::Admin as i32;
    assert_eq!(roles_of(&n, "admin").await.unwrap(), vec![admin]);
    let o = hcmr(&n, &add("admin", "verifier", &["--replace"])).await;
    assert!(o.status.success(), "{}", err(&o));
    let o = hcmr(&n, &add("test", "issuer,verifier", &["--replace"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("caller test is the last admin"),
        "{}",
        err(&o)
    );
    assert!(roles_of(&n, "test").await.unwrap().contains(&admin));

    // Offline, with --config: the same rules; a new admin name recovers the node.
    let config = n.dir.join("hcmr.toml");
    let config = config.to_str().unwrap().to_string();
    n.shutdown().await.unwrap();
    let offline = |extra: &[&str]| {
        let mut a = vec!["caller", "add", "--config", config.as_str()];
        a.extend_from_slice(extra);
        hcmr_offline(&a)
    };
    let o = offline(&["test", "--role", "verifier"]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("caller test exists"), "{}", err(&o));
    let o = offline(&["test", "--role", "verifier", "--replace"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("caller test is the last admin"),
        "{}",
        err(&o)
    );
    let o = offline(&["rescue", "--role", "admin"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = offline(&["test", "--role", "verifier", "--replace"]);
    assert!(o.status.success(), "{}", err(&o));
}
