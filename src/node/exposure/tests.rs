//! Exposure notices at a real node opened from its `hcmr init` folder (no listener): queued
//! notices wait in the trip outbox across a reopen, signed by the node's key; a notice for the
//! node's own province is stored and matched at once; a bad draft queues nothing; the list
//! pages newest first.

use std::sync::Arc;

use super::*;
use crate::clock::Clock;
use crate::identity::SubjectHash;
use crate::node::config::Config;
use crate::node::Node;
use crate::store::IssuedRecord;

/// The start of every test: now, whole seconds (the node's certificate is valid from its
/// `hcmr init`).
static NOW: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| crate::unix_now().secs());

fn prov(c: u32) -> Province {
    Province::from_code(c).unwrap()
}

async fn node(dir: &std::path::Path) -> (Config, Arc<NodeState>) {
    let path = match Config::load(&dir.join("hcmr.toml")) {
        Ok(_) => dir.join("hcmr.toml"),
        Err(_) => crate::node::init(prov(510000), dir, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap(),
    };
    let config = Config::load(&path).unwrap();
    let node = Node::open_with_clock(&config, Clock::manual(UnixTime::from_secs(*NOW))).unwrap();
    (config, node.state)
}

fn draft(to: u32, seat: u16) -> NoticeDraft {
    NoticeDraft {
        to: prov(to),
        trip: TripId([0x7e; 8]),
        trip_origin: prov(510000),
        departure: UnixTime::from_secs(*NOW - 86_400),
        seat,
        distance: 1,
        crew: false,
        case_class: CaseClass::Asymptomatic,
        cti_prefix: [seat as u8, 2, 3, 4, 5, 6],
        subject_prefix: [0xa1, 0xb2, 0xc3, 0xd4],
    }
}

#[tokio::test]
async fn notices_for_peers_wait_in_the_outbox_across_a_reopen_signed_by_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let (_, state) = node(dir.path()).await;
    let n = queue_notices(&state, &[draft(340000, 3), draft(330000, 5)])
        .await
        .unwrap();
    assert_eq!(n, 2);
    let key = state.key.load().unwrap().public();
    drop(state);
    let (_, state) = node(dir.path()).await;
    let waiting = state.store.trip_outbox(10).await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert_eq!(
        waiting.iter().map(|e| (e.to, e.kind)).collect::<Vec<_>>(),
        [
            (prov(340000), TripRecordKind::ExposureNotice),
            (prov(330000), TripRecordKind::ExposureNotice)
        ]
    );
    let first = SignedExposureNotice::decode(&waiting[0].record).unwrap();
    assert!(first.verify_signature(&key));
    let n = &first.notice;
    assert_eq!(
        (
            n.from,
            n.to,
            n.seat,
            n.distance,
            n.case_class,
            n.issued_at.secs()
        ),
        (
            prov(510000),
            prov(340000),
            3,
            1,
            CaseClass::Asymptomatic,
            *NOW
        )
    );
    assert_eq!(n.cti_prefix, [3, 2, 3, 4, 5, 6]);
    assert_eq!(
        state.store.exposure_notice_count(),
        0,
        "nothing stored here"
    );
}

#[tokio::test]
async fn a_notice_for_the_own_province_is_stored_and_matched_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, state) = node(dir.path()).await;
    let hash = SubjectHash([0xa1, 0xb2, 0xc3, 0xd4, 9, 9, 9, 9]);
    let mut cti = [0u8; 16];
    cti[..6].copy_from_slice(&[7, 2, 3, 4, 5, 6]);
    state
        .store
        .log_issued(&IssuedRecord {
            cti,
            iat: UnixTime::from_secs(*NOW - 3600),
            exp: UnixTime::from_secs(*NOW + 3600),
            status: 1,
            status_valid_until: UnixTime::from_secs(*NOW + 3600),
            subject_hash: hash,
        })
        .await
        .unwrap();
    // Seat 7 is the resident whose code was issued here; seat 8's code is unknown here.
    let n = queue_notices(&state, &[draft(510000, 7), draft(510000, 8)])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(state.store.trip_outbox_len(), 0, "nothing to send");
    let list = state
        .exposure()
        .list(proto::ListExposureNoticesRequest::default())
        .await
        .unwrap();
    assert_eq!(list.notices.len(), 2);
    let by_seat = |s: u32| list.notices.iter().find(|n| n.seat == s).unwrap();
    let (matched, unmatched) = (by_seat(7), by_seat(8));
    assert!(matched.matched);
    assert_eq!(matched.subject_hash, "a1b2c3d409090909");
    assert_eq!(matched.cti_prefix, "070203040506");
    assert_eq!(
        (
            matched.from_province.as_str(),
            matched.trip_origin.as_str(),
            matched.trip_id.as_str(),
            matched.case_class,
            matched.received_at,
        ),
        (
            "510000",
            "510000",
            "7e7e7e7e7e7e7e7e",
            proto::CaseClass::Asymptomatic as i32,
            *NOW
        )
    );
    assert!(!unmatched.matched);
    assert_eq!(
        unmatched.subject_hash, "a1b2c3d4",
        "the prefix the manifest held"
    );
}

#[tokio::test]
async fn a_bad_draft_queues_nothing_and_pages_run_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (_, state) = node(dir.path()).await;
    let mut bad = draft(340000, 7);
    bad.distance = 95;
    let e = queue_notices(&state, &[draft(340000, 3), bad])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ApiError::InvalidArgument {
                field: "exposure_notice",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(state.store.trip_outbox_len(), 0);

    for (i, seat) in [1u16, 2, 3].into_iter().enumerate() {
        state.clock.set(UnixTime::from_secs(*NOW + i as u64 * 60));
        queue_notices(&state, &[draft(510000, seat)]).await.unwrap();
    }
    let x = state.exposure();
    let page = |token: String, since: u64| proto::ListExposureNoticesRequest {
        since,
        page_size: 2,
        page_token: token,
    };
    let first = x.list(page(String::new(), 0)).await.unwrap();
    let seats = |r: &proto::ListExposureNoticesResponse| {
        r.notices.iter().map(|n| n.seat).collect::<Vec<_>>()
    };
    assert_eq!(seats(&first), [3, 2]);
    let rest = x
        .list(page(first.next_page_token.clone(), 0))
        .await
        .unwrap();
    assert_eq!((seats(&rest), rest.next_page_token.as_str()), (vec![1], ""));
    let since = x.list(page(String::new(), *NOW + 60)).await.unwrap();
    assert_eq!(seats(&since), [3, 2]);
    let e = x.list(page("zz".into(), 0)).await.unwrap_err();
    assert!(
        matches!(
            e,
            ApiError::InvalidArgument {
                field: "page_token",
                ..
            }
        ),
        "{e}"
    );
}
