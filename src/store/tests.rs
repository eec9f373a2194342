//! Tests of the store: each opens a database in a temporary directory.

use ciborium::value::Value;

use super::*;
use crate::audit::{AccessDenial, AuditRecord};
use crate::verify::Reason;
use crate::UnixTime;

/// The time `secs` seconds after the epoch.
fn t(secs: u64) -> UnixTime {
    UnixTime::from_secs(secs)
}

fn record(time: u64, n: u32) -> AuditRecord {
    AuditRecord {
        time: t(time),
        checkpoint_id: format!("gate-{n}"),
        via: "grpc",
        issuer: Some(Province::from_code(510000).unwrap()),
        recognized: n.is_multiple_of(2),
        reason: Some(if n.is_multiple_of(2) {
            Reason::Ok
        } else {
            Reason::Expired
        }),
        cti_hash: Some(crate::audit::cti_hash(&n.to_be_bytes())),
        manifest: None,
        trace: None,
        replica: None,
    }
}

#[tokio::test]
async fn refused_calls_are_read_from_a_time_or_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let denial = |time: u64, who: &str| AccessDenial {
        time: t(time),
        rpc: "/hcmr.v1.HealthCodeService/VerifyHealthCode".into(),
        outcome: "PERMISSION_DENIED".into(),
        who: format!("caller {who}"),
        remote: "127.0.0.1".into(),
        count: 1,
    };
    // Five in one second: pages must not stop at a second's boundary.
    let all = [
        denial(10, "a"),
        denial(20, "b"),
        denial(20, "c"),
        denial(20, "d"),
        denial(20, "e"),
        denial(20, "f"),
        denial(30, "g"),
    ];
    store.append_denials(&all).await.unwrap();
    // By time, and within a second by kind (the key's second half), not by arrival.
    let (stored, _) = store.denials_page(t(0), None, 100).unwrap();
    let mut sorted = stored.clone();
    sorted.sort_by(|a, b| a.who.cmp(&b.who));
    assert_eq!(sorted, all);
    assert_eq!((stored[0].time, stored[6].time), (t(10), t(30)));
    let all = stored;
    let (first, next) = store.denials_page(t(0), None, 2).unwrap();
    assert_eq!(first, all[..2]);
    let (second, next) = store.denials_page(t(0), next, 2).unwrap();
    assert_eq!(second, all[2..4]);
    let (third, next) = store.denials_page(t(0), next, 2).unwrap();
    assert_eq!(third, all[4..6]);
    // Exactly as many left as the limit: no next page.
    let (last, next) = store.denials_page(t(0), next, 1).unwrap();
    assert_eq!(last, all[6..]);
    assert_eq!(next, None);
    let (from_20, next) = store.denials_page(t(20), None, 10).unwrap();
    assert_eq!(from_20, all[1..]);
    assert_eq!(next, None);
}

#[tokio::test]
async fn audit_records_are_packed_by_second_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A value of the older form: one record under its own key.
    let legacy = record(100, 9_999);
    let mut k = 100u64.to_be_bytes().to_vec();
    k.extend_from_slice(&0u64.to_be_bytes());
    store.audit.insert(k, legacy.to_record()).unwrap();
    // 5 records at 99, 300 at 100, 300 at 101, interleaved as a writer's batch can be.
    let mut batch: Vec<AuditRecord> = (0..5).map(|n| record(99, n)).collect();
    for n in 0..300 {
        batch.push(record(100, 1_000 + n));
        batch.push(record(101, 2_000 + n));
    }
    store.append_audit(batch).await.unwrap();
    store.append_audit(Vec::new()).await.unwrap();
    // 99: one value; 100: the legacy value and two packs (256 + 44); 101: two packs.
    assert_eq!(store.audit.len(), 1 + 3 + 2);

    let (at_100, next) = store
        .audit_page(t(100), t(101), None, 1_000, |_| true)
        .unwrap();
    assert_eq!(next, None);
    assert_eq!(at_100.len(), 301);
    assert_eq!(at_100[0], legacy, "the older value comes first (id 0)");
    let names: Vec<&str> = at_100[1..]
        .iter()
        .map(|r| r.checkpoint_id.as_str())
        .collect();
    let want: Vec<String> = (1_000..1_300).map(|n| format!("gate-{n}")).collect();
    assert_eq!(names, want, "in order of arrival");
    assert_eq!(at_100[1], record(100, 1_000));

    let (all, _) = store
        .audit_page(t(0), t(u64::MAX), None, 10_000, |_| true)
        .unwrap();
    assert_eq!(all.len(), 606);
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));

    // The limit counts records, not values, and the cursor names the next one.
    let (first, next) = store.audit_page(t(99), t(102), None, 7, |_| true).unwrap();
    assert_eq!(first.len(), 7);
    assert_eq!(first[5], legacy);
    let next = next.expect("more follow");
    assert_eq!(AuditCursor::from_bytes(&next.to_bytes()), Some(next));
    assert_eq!(next.index, 1, "the second record of the first pack at 100");
    // Pages of any size, within and across packs and seconds, give every record once.
    for size in [1, 7, 255, 256, 257, 605, 606, 1_000] {
        let (mut paged, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let (page, next) = store
                .audit_page(t(0), t(u64::MAX), after, size, |_| true)
                .unwrap();
            assert!(page.len() <= size);
            paged.extend(page);
            pages += 1;
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(paged, all, "pages of {size}");
        assert_eq!(pages, 606usize.div_ceil(size), "pages of {size}");
    }
    // A cursor's page keeps to `until` and ignores `from`.
    let (rest_of_100, next) = store
        .audit_page(t(200), t(101), Some(next), 1_000, |_| true)
        .unwrap();
    assert_eq!((rest_of_100.len(), next), (299, None));
    assert_eq!(rest_of_100[0], record(100, 1_001));
    // An empty or reversed range is empty.
    assert_eq!(
        store
            .audit_page(t(101), t(101), None, 10, |_| true)
            .unwrap(),
        (vec![], None)
    );
    assert_eq!(
        store.audit_page(t(102), t(99), None, 10, |_| true).unwrap(),
        (vec![], None)
    );
    // A filter applies to each record of a pack, and the cursor skips what it refuses.
    let expired = |r: &AuditRecord| r.reason == Some(Reason::Expired);
    let (all_expired, next) = store
        .audit_page(t(101), t(102), None, 1_000, expired)
        .unwrap();
    assert_eq!(next, None);
    assert_eq!(all_expired.len(), 150);
    assert!(all_expired
        .iter()
        .all(|r| r.time == t(101) && !r.recognized));
    let (first_100, next) = store
        .audit_page(t(101), t(102), None, 100, expired)
        .unwrap();
    let next = next.expect("50 more");
    assert_eq!(
        next.index, 201,
        "record 2,101 is the 202nd of the first pack at 101"
    );
    let (last_50, next) = store
        .audit_page(t(0), t(102), Some(next), 100, expired)
        .unwrap();
    assert_eq!(next, None);
    assert_eq!([first_100, last_50].concat(), all_expired);
}

fn issued_record(n: u8) -> IssuedRecord {
    IssuedRecord {
        cti: [n; 16],
        iat: t(1_700_000_000 + u64::from(n)),
        exp: t(1_700_000_300 + u64::from(n)),
        status: 1,
        status_valid_until: t(1_700_086_400),
        subject_hash: crate::identity::SubjectHash([n; 8]),
    }
}

#[tokio::test]
async fn retention_removes_what_is_before_its_time_in_bounded_steps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Audit: 5 records at 99, 300 at 100 (two packs), 300 at 101 (two packs).
    let mut batch: Vec<AuditRecord> = (0..5).map(|n| record(99, n)).collect();
    for n in 0..300 {
        batch.push(record(100, 1_000 + n));
        batch.push(record(101, 2_000 + n));
    }
    store.append_audit(batch).await.unwrap();
    // Values before 101, one a step: 99's, then 100's two packs.
    let steps: Vec<Pruned> = [
        store.prune_audit(t(101), 1).await.unwrap(),
        store.prune_audit(t(101), 1).await.unwrap(),
        store.prune_audit(t(101), 1).await.unwrap(),
        store.prune_audit(t(101), 1).await.unwrap(),
    ]
    .to_vec();
    let records: Vec<(u64, bool)> = steps.iter().map(|p| (p.records, p.more)).collect();
    assert_eq!(records, [(5, true), (256, true), (44, true), (0, false)]);
    let (left, _) = store
        .audit_page(t(0), t(u64::MAX), None, 10_000, |_| true)
        .unwrap();
    assert_eq!(left.len(), 300);
    assert!(left.iter().all(|r| r.time == t(101)));
    assert_eq!(
        store.prune_audit(t(101), 10).await.unwrap(),
        Pruned::default(),
        "nothing left before 101"
    );

    // Access: records before the cut-off go, the rest stay.
    let denial = |time: u64| AccessDenial {
        time: t(time),
        rpc: "/hcmr.v1.HealthCodeService/IssueHealthCode".into(),
        outcome: "UNAUTHENTICATED".into(),
        who: "anonymous".into(),
        remote: "10.0.0.1".into(),
        count: 7,
    };
    store
        .append_denials(&[denial(10), denial(20), denial(20), denial(30)])
        .await
        .unwrap();
    // The two of second 20 are one record (a count of 14).
    let p = store.prune_access(t(30), 100).await.unwrap();
    assert_eq!(
        p,
        Pruned {
            records: 2,
            more: false
        }
    );
    let (left, _) = store.denials_page(t(0), None, 100).unwrap();
    assert_eq!(left, [denial(30)]);

    // Issued codes: entries of codes expired before the cut-off go, with their index.
    for n in 0..10 {
        store.log_issued(&issued_record(n)).await.unwrap();
    }
    // issued_record(n) expires at 1_700_000_300 + n: before ...305 are 0 to 4.
    let p = store.prune_issued(t(1_700_000_305), 3).await.unwrap();
    assert_eq!(
        p,
        Pruned {
            records: 3,
            more: true
        }
    );
    let p = store.prune_issued(t(1_700_000_305), 3).await.unwrap();
    assert_eq!(
        p,
        Pruned {
            records: 2,
            more: false
        }
    );
    assert_eq!(store.issued_count(), 5);
    assert_eq!(store.issued_expiry.len(), 5);
    assert_eq!(store.issued(&[4; 16]).unwrap(), None);
    assert_eq!(store.issued(&[5; 16]).unwrap(), Some(issued_record(5)));
}

#[tokio::test]
async fn refusals_of_one_kind_in_one_second_are_one_record_over_many_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let refused = |time: u64, who: &str, count: u64| AccessDenial {
        time: t(time),
        rpc: "/hcmr.v1.HealthCodeService/VerifyHealthCode".into(),
        outcome: "UNAUTHENTICATED".into(),
        who: who.into(),
        remote: "10.0.0.1".into(),
        count,
    };
    // Five writes of the audit writer in second 100, one in 101.
    for count in [6_818, 4_858, 7_984, 3_062] {
        store
            .append_denials(&[refused(100, "anonymous", count)])
            .await
            .unwrap();
    }
    store
        .append_denials(&[
            refused(100, "caller gate-1", 2),
            refused(100, "anonymous", 1),
        ])
        .await
        .unwrap();
    store
        .append_denials(&[refused(101, "anonymous", 5)])
        .await
        .unwrap();
    let (all, next) = store.denials_page(t(0), None, 100).unwrap();
    assert_eq!(next, None);
    let mut got: Vec<(u64, String, u64)> = all
        .into_iter()
        .map(|d| (d.time.secs(), d.who, d.count))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                100,
                "anonymous".to_string(),
                6_818 + 4_858 + 7_984 + 3_062 + 1
            ),
            (100, "caller gate-1".to_string(), 2),
            (101, "anonymous".to_string(), 5),
        ]
    );
    assert_eq!(store.access.len(), 3);
}

#[tokio::test]
async fn an_issued_code_log_without_its_expiry_index_is_indexed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        for n in 0..4 {
            store.log_issued(&issued_record(n)).await.unwrap();
        }
        // As a database written before the index existed.
        store.issued_expiry.clear().unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.issued_expiry.len(), 4);
    let p = store.prune_issued(t(1_700_000_302), 100).await.unwrap();
    assert_eq!(p.records, 2);
    assert_eq!(store.issued(&[1; 16]).unwrap(), None);
    assert_eq!(store.issued(&[2; 16]).unwrap(), Some(issued_record(2)));
}

#[tokio::test]
async fn concurrent_writers_share_flushes_and_a_failed_flush_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // 64 writers at once while a flush is in progress (here: the flusher's lock held, as a
    // flush holds it; a real flush may also finish before the next writer comes, for
    // instance when sled runs it inline on a busy machine). Each writes and waits for the
    // lock; the first to get it flushes for all of them.
    let in_progress = store.commit.lock.lock().await;
    let writes = (0..64u8).map(|n| {
        let store = store.clone();
        async move { store.log_issued(&issued_record(n)).await }
    });
    let mut writes = std::pin::pin!(futures_util::future::join_all(writes));
    tokio::select! {
        biased;
        _ = &mut writes => panic!("a write was acknowledged before its flush"),
        () = std::future::ready(()) => {}
    }
    drop(in_progress);
    for r in writes.await {
        r.unwrap();
    }
    assert_eq!(store.flush_count(), 1);
    assert_eq!(store.issued_count(), 64);
    assert_eq!(store.issued(&[7; 16]).unwrap(), Some(issued_record(7)));

    // While flushes fail, every concurrent writer gets the failure (none is acknowledged by
    // another's flush), and the flushes still counted are the earlier ones.
    let before = store.flush_count();
    store.inject_flush_failure(Some("disk full"));
    let writes = (64..80u8).map(|n| {
        let store = store.clone();
        async move { store.log_issued(&issued_record(n)).await }
    });
    let results = futures_util::future::join_all(writes).await;
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert_eq!(store.flush_count(), before);
    // Once the disk is back, the next write's flush covers the earlier ones too.
    store.inject_flush_failure(None);
    store.log_issued(&issued_record(80)).await.unwrap();
    assert_eq!(store.flush_count(), before + 1);
}

#[tokio::test]
async fn a_value_that_is_no_audit_record_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut k = 5u64.to_be_bytes().to_vec();
    k.extend_from_slice(&1u64.to_be_bytes());
    // A pack with one good record and one that is not a record.
    let good = record(5, 1).to_record();
    let good: Value = ciborium::de::from_reader(good.as_slice()).unwrap();
    let bad = crate::cbor::encode(&Value::Array(vec![good, Value::Array(vec![])]));
    store.audit.insert(k, bad).unwrap();
    let err = store
        .audit_page(t(0), t(10), None, 10, |_| true)
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn checked_manifests_keep_the_highest_version_noted_and_stored_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    use crate::manifest::TripId;
    let (a, b) = (TripId([1; 8]), TripId([2; 8]));
    {
        let store = Store::open(dir.path()).unwrap();
        store.note_manifest_text(a, 2, "HCMRT1:A2");
        store.note_manifest_text(a, 1, "HCMRT1:A1"); // lower: changes nothing
        store.note_manifest_text(b, 1, "HCMRT1:B1");
        let mut held = store.checked_manifests().unwrap();
        held.sort();
        assert_eq!(held, ["HCMRT1:A2", "HCMRT1:B1"], "noted, not yet stored");
        assert!(store.store_manifest_versions().await.unwrap());
        // A lower version noted after the store is not stored over the higher one.
        store.note_manifest_text(a, 1, "HCMRT1:A1");
        store.store_manifest_versions().await.unwrap();
        store.note_manifest_text(b, 3, "HCMRT1:B3");
        store.store_manifest_versions().await.unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let mut held = store.checked_manifests().unwrap();
    held.sort();
    assert_eq!(held, ["HCMRT1:A2", "HCMRT1:B3"]);
}
