//! Storage faults: a missing, read-only or locked database folder stops the node at start with an
//! error that names the folder and the cause; a write that fails while the node runs returns
//! UNAVAILABLE to the caller, never a panic, and the node keeps verifying from its snapshot.

use crate::common;

use common::*;
use hcmr::node::{Config, Node};
use hcmr::proto;
use tonic::Code;

const SICHUAN: u32 = 510000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_read_only_or_locked_database_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = init_node(dir.path(), SICHUAN).await;
    let config = Config::load(&cfg_path).unwrap();

    // Missing.
    let mut missing = config.clone();
    missing.data_dir = dir.path().join("nowhere");
    let e = Node::open(&missing).err().unwrap().to_string();
    assert!(e.contains("nowhere") && e.contains("does not exist"), "{e}");

    // Read-only: /proc refuses new files even to root.
    let mut read_only = config.clone();
    read_only.data_dir = "/proc/self".into();
    let e = Node::open(&read_only).err().unwrap().to_string();
    assert!(
        e.contains("/proc/self") && e.contains("is not writable"),
        "{e}"
    );
    // And a folder without write permission, where permissions bind (not as root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let db = &config.data_dir;
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o555)).unwrap();
        let root = std::fs::write(db.join("probe"), b"").is_ok();
        if root {
            let _ = std::fs::remove_file(db.join("probe"));
            println!("running as root: mode 0555 does not stop writes; /proc covered it");
        } else {
            let e = Node::open(&config).err().unwrap().to_string();
            assert!(e.contains("is not writable"), "{e}");
        }
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // Locked by a running node.
    let running = start(&cfg_path).await;
    let e = Node::open(&config).err().unwrap().to_string();
    assert!(e.contains("locked by another process"), "{e}");
    running.shutdown().await.unwrap();
    // Released: it opens again.
    Node::open(&config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_makes_writes_unavailable_and_verification_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), 440000).await).await;
    conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    let before = issue(&sc, subject("王建国", "510104", 131), G, 600).await;

    sc.inject_flush_failure(Some("No space left on device (injected)"));
    let mut hc = codes(&sc).await;
    let e = hc
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("李秀英", "511302", 242)),
            status: G,
            status_valid_until: (hcmr::unix_now() + 86_400).secs(),
            code_lifetime_secs: 600,
            qr_format: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("No space left on device"),
        "{}",
        e.message()
    );
    let e = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: before.cti.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let e = operator(&sc)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "gate".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            replace: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    // Verification needs no write: it answers from the snapshot.
    for _ in 0..3 {
        let v = verify(&sc, &before.code).await;
        assert_eq!(v.verdict, proto::Verdict::Recognized as i32, "{v:?}");
    }

    // The disk recovers: writes work again, and the refused revocation can be made now. The
    // refused one left nothing behind: after another write and a restart the feed holds the
    // genesis and this one revocation, in an unbroken chain (the node would not open otherwise).
    sc.inject_flush_failure(None);
    operator(&sc)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "gate".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            replace: false,
        })
        .await
        .unwrap();
    // What Guangdong's sync reads: still only the genesis entry.
    let mut feed = federation_as(&sc, &tls_identity_of(&gd))
        .await
        .get_feed(proto::GetFeedRequest {
            from_seq: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut entries = 0;
    while feed.message().await.unwrap().is_some() {
        entries += 1;
    }
    assert_eq!(entries, 1, "the refused revocation is not in the feed");
    codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti: before.cti })
        .await
        .unwrap();
    let v = verify(&sc, &before.code).await;
    assert_eq!(v.reason, proto::Reason::Revoked as i32);
    issue(&sc, subject("李秀英", "511302", 242), G, 600).await;
    let cfg = sc.dir.join("hcmr.toml");
    sc.shutdown().await.unwrap();
    let sc = start(&cfg).await;
    let v = verify(&sc, &before.code).await;
    assert_eq!(v.reason, proto::Reason::Revoked as i32);
    let bundle = operator(&sc)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let text = format!("{bundle:?}");
    assert!(!text.is_empty());
    sc.shutdown().await.unwrap();
    // The own feed on disk: genesis and one revocation.
    let store = hcmr::store::Store::open(&dir.path().join("510000/db")).unwrap();
    assert_eq!(store.feed_from(1).unwrap().len(), 2);
    gd.shutdown().await.unwrap();
}
