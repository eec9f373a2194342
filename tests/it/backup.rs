//! `hcmr backup` / `hcmr restore`: a consistent backup of a node taken while it serves under
//! concurrent writes, restored into a new folder and served again; damaged backups, existing
//! folders and non-admin callers refused.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hcmr::node::NodeHandle;
use hcmr::proto;

const REVOKED: i32 = proto::Reason::Revoked as i32;
const RECOGNIZED: i32 = proto::Verdict::Recognized as i32;

/// Takes a backup through the RPC, as `test` (admin); returns the file's bytes.
async fn backup_bytes(n: &NodeHandle) -> Vec<u8> {
    let mut stream = operator(n)
        .await
        .export_backup(proto::ExportBackupRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        assert!(chunk.data.len() <= 64 * 1024);
        out.extend_from_slice(&chunk.data);
    }
    out
}

/// Runs a command on a blocking thread (the node under test runs on this runtime).
async fn run(mut c: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn restore_cmd(n: &NodeHandle, from: &Path, to: &Path) -> std::process::Command {
    let mut c = cli(n);
    c.arg("restore")
        .arg("--from")
        .arg(from)
        .arg("--data-dir")
        .arg(to);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// One code issued by the background writer: when its issue (and its revocation, if any) was
/// acknowledged.
struct Written {
    code: String,
    cti: String,
    issued_at: Instant,
    revoked_at: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_load_restores_a_working_node() {
    let root = tempfile::tempdir().unwrap();
    let sc = start(&init_node(root.path(), 510000).await).await;
    let gd = start(&init_node(root.path(), 440000).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    // Before the backup: codes, some revoked, some verified (audit records).
    let mut before = Vec::new();
    for i in 0..6u16 {
        let r = issue(&sc, subject("王小明", "510104", i), Y, 3600).await;
        before.push(r);
    }
    for r in &before[..2] {
        codes(&sc)
            .await
            .revoke_health_code(proto::RevokeHealthCodeRequest { cti: r.cti.clone() })
            .await
            .unwrap();
    }
    for r in &before {
        verify(&sc, &r.code).await;
    }
    let audit_before = {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let a = audit_records(&sc).await;
            if a.len() >= before.len() || Instant::now() > deadline {
                break a;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    assert_eq!(audit_before.len(), before.len());
    let agreements_before = agreements(&sc).await;
    let kid = kid_of(&sc).await;

    // Concurrent writes while the backup is taken: issue codes, revoke every other one.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let writer = {
        let stop = stop.clone();
        let count = count.clone();
        let mut client = codes(&sc).await;
        tokio::spawn(async move {
            let mut written = Vec::new();
            let mut i = 100u16;
            while !stop.load(Ordering::SeqCst) {
                let r = client
                    .issue_health_code(proto::IssueHealthCodeRequest {
                        subject: Some(subject("李秀英", "510104", i)),
                        status: G,
                        status_valid_until: (hcmr::unix_now() + 86_400).secs(),
                        code_lifetime_secs: 3600,
                        qr_format: 0,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let issued_at = Instant::now();
                let revoked_at = if i.is_multiple_of(2) {
                    client
                        .revoke_health_code(proto::RevokeHealthCodeRequest { cti: r.cti.clone() })
                        .await
                        .unwrap();
                    Some(Instant::now())
                } else {
                    None
                };
                written.push(Written {
                    code: r.code,
                    cti: r.cti,
                    issued_at,
                    revoked_at,
                });
                i += 1;
                count.fetch_add(1, Ordering::SeqCst);
            }
            written
        })
    };
    let at_least = |n: usize| {
        let count = count.clone();
        async move {
            while count.load(Ordering::SeqCst) < n {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    at_least(4).await;

    // The backup, through the CLI, while the writer runs.
    let file = root.path().join("sc.hcmrbak");
    let started = Instant::now();
    let mut c = cli(&sc);
    c.arg("backup").arg("--out").arg(&file);
    let out = run(c).await;
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("mode 0600") && said.contains("510000"),
        "{said}"
    );
    at_least(count.load(Ordering::SeqCst) + 2).await;
    stop.store(true, Ordering::SeqCst);
    let written = writer.await.unwrap();
    let acked_before: Vec<&Written> = written.iter().filter(|w| w.issued_at < started).collect();
    let revoked_before: Vec<&Written> = acked_before
        .iter()
        .copied()
        .filter(|w| w.revoked_at.is_some_and(|t| t < started))
        .collect();
    assert!(
        acked_before.len() >= 2 && !revoked_before.is_empty(),
        "the writer ran before the backup: {} codes",
        acked_before.len()
    );
    assert!(
        written.iter().any(|w| w.issued_at > started),
        "the writer still ran during the backup"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup holds the keys");
    }
    let summary = hcmr::backup::check(&file).unwrap();
    assert_eq!(summary.province.code(), 510000);
    assert_eq!(
        summary.files,
        [
            "hcmr.toml",
            "node.key",
            "subject.key",
            "tls/node.crt",
            "tls/node.key"
        ]
    );

    // Restore (CLI) into a new folder, with the test caller's token (callers keep theirs).
    let restored_dir = root.path().join("restored").join("sc");
    let out = run(restore_cmd(&sc, &file, &restored_dir)).await;
    assert!(out.status.success(), "restore: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hcmr serve --config"));
    assert!(!restored_dir.join(hcmr::node::ADMIN_TOKEN_FILE).exists());
    std::fs::copy(
        sc.dir.join(TEST_TOKEN_FILE),
        restored_dir.join(TEST_TOKEN_FILE),
    )
    .unwrap();
    #[cfg(unix)]
    for f in ["node.key", "subject.key", "tls/node.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(restored_dir.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let config = restored_dir.join(hcmr::node::CONFIG_FILE);
    let r = start(&config).await;
    assert_ne!(
        r.addr, sc.addr,
        "the restored node listens on a port of its own"
    );

    // Same key, agreements, callers (the test token works), feed, audit log.
    assert_eq!(kid_of(&r).await, kid);
    let key = |a: &proto::AgreementView| (a.id.clone(), a.version, a.state);
    assert_eq!(
        agreements(&r).await.iter().map(key).collect::<Vec<_>>(),
        agreements_before.iter().map(key).collect::<Vec<_>>()
    );
    let callers: Vec<String> = operator(&r)
        .await
        .list_callers(proto::ListCallersRequest {})
        .await
        .unwrap()
        .into_inner()
        .callers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(callers, ["admin", "test"]);
    let audit_after = audit_records(&r).await;
    assert_eq!(
        audit_after[..audit_before.len()],
        audit_before[..],
        "the audit records before the backup"
    );
    for (i, b) in before.iter().enumerate() {
        let v = verify(&r, &b.code).await;
        if i < 2 {
            assert_eq!(v.reason, REVOKED, "code {i} was revoked before the backup");
        } else {
            assert_eq!(v.verdict, RECOGNIZED, "code {i}: {}", v.explanation);
        }
    }
    for w in &revoked_before {
        assert_eq!(
            verify(&r, &w.code).await.reason,
            REVOKED,
            "a revocation acknowledged before the backup started"
        );
    }
    for w in acked_before.iter().filter(|w| w.revoked_at.is_none()) {
        let v = verify(&r, &w.code).await;
        assert_eq!(v.verdict, RECOGNIZED, "{}", v.explanation);
    }
    // The original keeps serving, unchanged by the backup.
    assert_eq!(verify(&sc, &before[0].code).await.reason, REVOKED);
    r.shutdown().await.unwrap();

    // The issued-code log of the restored database.
    let store = hcmr::store::Store::open(&restored_dir.join("db")).unwrap();
    assert_eq!(store.province().unwrap().code(), 510000);
    for cti in before
        .iter()
        .map(|b| &b.cti)
        .chain(acked_before.iter().map(|w| &w.cti))
    {
        let cti: [u8; 16] = hex::decode(cti).unwrap().try_into().unwrap();
        assert!(
            store.issued(&cti).unwrap().is_some(),
            "issued before the backup"
        );
    }
    assert!(store.issued_count() >= before.len() + acked_before.len());
    drop(store);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_backup_and_existing_folder_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let sc = start(&init_node(root.path(), 510000).await).await;
    issue(&sc, subject("王小明", "510104", 1), G, 600).await;
    let good = backup_bytes(&sc).await;
    let good_file = root.path().join("good.hcmrbak");
    std::fs::write(&good_file, &good).unwrap();
    assert_eq!(
        hcmr::backup::check(&good_file).unwrap().province.code(),
        510000
    );

    // One flipped byte in the middle.
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x10;
    let bad_file = root.path().join("bad.hcmrbak");
    std::fs::write(&bad_file, &bad).unwrap();
    let target = root.path().join("new");
    let before = names(root.path());
    let out = run(restore_cmd(&sc, &bad_file, &target)).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("is damaged") && err.contains("SHA-256 checksum mismatch"),
        "{err}"
    );
    assert!(!target.exists(), "nothing half-made");
    assert_eq!(names(root.path()), before, "no staging folder left behind");

    // Cut short.
    std::fs::write(&bad_file, &good[..good.len() - 100]).unwrap();
    let out = run(restore_cmd(&sc, &bad_file, &target)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is damaged"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists());

    // Not a backup at all: a file of the wrong kind, a bad argument (64, README's rule).
    let out = run(restore_cmd(&sc, &sc.dir.join("hcmr.toml"), &target)).await;
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("is not an hcmr backup"));
    assert!(!target.exists());

    // Into an existing folder, empty or not: refused, untouched.
    let existing = root.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    let out = run(restore_cmd(&sc, &good_file, &existing)).await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already exists"));
    assert!(names(&existing).is_empty());
    let out = run(restore_cmd(&sc, &good_file, &sc.dir)).await;
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("already exists"));

    // `hcmr backup` refuses to overwrite a file.
    let mut c = cli(&sc);
    c.arg("backup").arg("--out").arg(&good_file);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&good_file).unwrap(), good);

    // The good one still restores.
    let out = run(restore_cmd(&sc, &good_file, &target)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(target.join("db").is_dir());
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_export_backups() {
    let root = tempfile::tempdir().unwrap();
    let sc = start(&init_node(root.path(), 510000).await).await;
    let token = operator(&sc)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "platform".into(),
            roles: vec![
                proto::CallerRole::Issuer as i32,
                proto::CallerRole::Verifier as i32,
            ],
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let e = proto::operator_service_client::OperatorServiceClient::new(
        channel_as(&sc, Some(&token)).await,
    )
    .export_backup(proto::ExportBackupRequest {})
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let e = proto::operator_service_client::OperatorServiceClient::new(channel_as(&sc, None).await)
        .export_backup(proto::ExportBackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    // The CLI with that token: refused, and no file left behind.
    let token_file: PathBuf = root.path().join("platform.token");
    std::fs::write(&token_file, &token).unwrap();
    let file = root.path().join("x.hcmrbak");
    let mut c = cli(&sc);
    c.env("HCMR_TOKEN_FILE", &token_file)
        .arg("backup")
        .arg("--out")
        .arg(&file);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the node refused the call: caller platform has role"),
        "{}",
        text(&out.stderr)
    );
    assert!(!file.exists());
    sc.shutdown().await.unwrap();
}
