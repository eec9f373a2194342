//! Retention on a real node whose clock is set by hand: a node restarted 10 days later has
//! dropped the issued-code log entries of codes that expired more than 7 days before (so
//! revoking one is NOT_FOUND, saying why) and kept its audit and access logs; restarted 181
//! days later, it has dropped those too (180 days by default). A setting out of range is named.

use crate::common;

use common::*;
use hcmr::clock::Clock;
use hcmr::node::{spawn_with_clock, Config};
use hcmr::proto;
use tonic::Code;

const SICHUAN: u32 = 510000;
const DAY: u64 = 86_400;

/// Waits (bounded) until the node's audit and access logs hold `audit` and `access` records.
async fn logs_hold(n: &hcmr::node::NodeHandle, audit: usize, access: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = audit_records(n).await.len();
        let d = access_log(n).await.len();
        if (a, d) == (audit, access) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit {a} (want {audit}), access {d} (want {access})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn revoke(n: &hcmr::node::NodeHandle, cti: &str) -> Result<u64, tonic::Status> {
    codes(n)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti: cti.into() })
        .await
        .map(|r| r.into_inner().seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_records_are_removed_after_their_retention_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    let now = hcmr::unix_now();
    let clock = Clock::manual(now);
    let open = || async {
        spawn_with_clock(&Config::load(&cfg).unwrap(), clock.clone())
            .await
            .unwrap()
    };

    // Day 0: two codes (5 minutes), a verification, a refused call.
    let sc = open().await;
    let a = issue(&sc, subject("张伟", "510104", 7), G, 300).await;
    let b = issue(&sc, subject("李娜", "510104", 8), G, 300).await;
    verify(&sc, &a.code).await;
    let e = codes_as(&sc, None)
        .await
        .verify_health_code(proto::VerifyHealthCodeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    logs_hold(&sc, 1, 1).await;
    sc.shutdown().await.unwrap();

    // Day 10: the codes expired 10 days ago (more than 7): their entries are gone at start, so
    // they cannot be revoked by cti; the logs stay (180 days).
    clock.set(now + 10 * DAY);
    let sc = open().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let e = loop {
        match revoke(&sc, &b.cti).await {
            Err(e) if e.code() == Code::NotFound => break e,
            other => {
                assert!(std::time::Instant::now() < deadline, "{other:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        e.message()
            .contains("or it expired more than 7 days ago (retention.issued_days_after_expiry)"),
        "{}",
        e.message()
    );
    assert_eq!(
        revoke(&sc, &a.cti).await.unwrap_err().code(),
        Code::NotFound
    );
    logs_hold(&sc, 1, 1).await;
    // A code issued now is revocable: its entry is new.
    let c = codes(&sc)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("王芳", "510104", 9)),
            status: G,
            status_valid_until: (now + 11 * DAY).secs(),
            code_lifetime_secs: 300,
            qr_format: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revoke(&sc, &c.cti).await.is_ok());
    sc.shutdown().await.unwrap();

    // Day 181: the day-0 logs are past 180 days and go; nothing else was logged since.
    clock.set(now + 181 * DAY);
    let sc = open().await;
    logs_hold(&sc, 0, 0).await;
    sc.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retention_out_of_range_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("[retention]"),
        "init writes the section: {text}"
    );
    assert!(text.contains("audit_days = 180"), "{text}");
    for (from, to, says) in [
        (
            "audit_days = 180",
            "audit_days = 0",
            "retention.audit_days: 0 is outside 1 to 3650 days",
        ),
        (
            "access_days = 180",
            "access_days = 3651",
            "retention.access_days: 3651 is outside 1 to 3650 days",
        ),
        (
            "issued_days_after_expiry = 7",
            "issued_days_after_expiry = 4000",
            "retention.issued_days_after_expiry: 4000 is outside 0 to 3650 days",
        ),
    ] {
        std::fs::write(&cfg, text.replace(from, to)).unwrap();
        let e = Config::load(&cfg).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
    // Without the section (a file written before it existed): the defaults.
    let start = text.find("[retention]").unwrap();
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |i| start + 1 + i + 1);
    std::fs::write(&cfg, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let c = Config::load(&cfg).unwrap();
    assert_eq!(c.retention, hcmr::node::config::RetentionConfig::default());
}
