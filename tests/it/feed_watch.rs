//! Feed watches (issue 19, "two seconds, not one sync interval"): a GetFeed watch pushes each
//! new entry; another province's feed is for enrolled verify replicas only; a peer learns a
//! revocation by watch with polling an hour away, and again after the issuer restarts; a
//! replica follows its primary's state (FollowState) until it is removed.

use std::time::Duration;

use hcmr::proto;
use hcmr::proto::replica_service_client::ReplicaServiceClient;
use hcmr::proto::Reason;
use tonic::Code;

use crate::common::*;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

/// Reads the next message of a stream, failing the test after 30 s (a hang, not a timing).
async fn next<T>(s: &mut tonic::Streaming<T>) -> Result<Option<T>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(30), s.message())
        .await
        .expect("no message within 30 s")
}

/// Revokes `cti` at `n`; the feed sequence number of the revocation.
async fn revoke(n: &hcmr::node::NodeHandle, cti: &str) -> u64 {
    let r = codes(n)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: cti.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.seq > 0, "{r:?}");
    r.seq
}

/// Polls Verify of `code` at `n` (200 times, 25 ms apart) until its reason is REVOKED; the last
/// reason seen.
async fn until_revoked(n: &hcmr::node::NodeHandle, code: &str, tries: u32) -> i32 {
    let mut reason = 0;
    for _ in 0..tries {
        reason = verify(n, code).await.reason;
        if reason == Reason::Revoked as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_pushes_new_entries_and_a_peers_feed_is_for_replicas_only() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    for c in [&sc_cfg, &gd_cfg] {
        set_sync_interval(c, 3600);
    }
    let sc = start(&sc_cfg).await;
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G), (R, R)], &[(G, G), (R, R)]).await;

    // A replica of Sichuan watches Sichuan's own feed; a revocation made after the watch opened
    // arrives on it.
    let replica = enrolled_replica_identity(&sc, "r1").await;
    let mut as_replica = federation_as(&sc, &replica).await;
    let mut watch = as_replica
        .get_feed(proto::GetFeedRequest {
            from_seq: 1,
            watch: true,
            province: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // The stored backlog first: the genesis entry.
    let first = next(&mut watch).await.unwrap().unwrap();
    let genesis = hcmr::feed::FeedEntry::from_parts(
        first.entry,
        hcmr::keys::Kid::from_slice(&first.kid).unwrap(),
        first.signature.as_slice().try_into().unwrap(),
    )
    .unwrap();
    assert_eq!(genesis.seq(), 1);
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300).await;
    let seq = revoke(&sc, &code.cti).await;
    let mut got = None;
    for _ in 0..100 {
        let m = next(&mut watch)
            .await
            .unwrap()
            .expect("the watch ended early");
        let e = hcmr::feed::FeedEntry::from_parts(
            m.entry,
            hcmr::keys::Kid::from_slice(&m.kid).unwrap(),
            m.signature.as_slice().try_into().unwrap(),
        )
        .unwrap();
        if e.seq() == seq {
            got = Some(e);
            break;
        }
    }
    let got = got.expect("the revocation was not pushed");
    assert!(
        matches!(got.statement(), hcmr::feed::Statement::RevokeCode { .. }),
        "{:?}",
        got.statement()
    );

    // A peer node (Guangdong, with an agreement) reads Sichuan's own feed, but not the feed of
    // another province as Sichuan synced it.
    let gd_identity = tls_identity_of(&gd);
    let mut as_peer = federation_as(&sc, &gd_identity).await;
    let own: Vec<_> = {
        let mut s = as_peer
            .get_feed(proto::GetFeedRequest {
                from_seq: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut v = Vec::new();
        while let Some(m) = next(&mut s).await.unwrap() {
            v.push(m);
        }
        v
    };
    assert_eq!(
        own.len() as u64,
        seq,
        "the whole own feed, up to the revocation"
    );
    let denied = as_peer
        .get_feed(proto::GetFeedRequest {
            from_seq: 1,
            watch: false,
            province: GUANGDONG.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().starts_with("province:"), "{denied:?}");

    // The replica may read it (Sichuan's copy of Guangdong's feed, from its genesis on) and
    // gets INVALID_ARGUMENT naming the field for a province that is none.
    sync_now(&sc).await;
    let mut s = as_replica
        .get_feed(proto::GetFeedRequest {
            from_seq: 1,
            watch: false,
            province: GUANGDONG.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    let m = next(&mut s)
        .await
        .unwrap()
        .expect("Guangdong's feed is empty");
    let e = hcmr::feed::FeedEntry::from_parts(
        m.entry,
        hcmr::keys::Kid::from_slice(&m.kid).unwrap(),
        m.signature.as_slice().try_into().unwrap(),
    )
    .unwrap();
    assert_eq!((e.province(), e.seq()), (gd.province, 1));
    let bad = as_replica
        .get_feed(proto::GetFeedRequest {
            from_seq: 1,
            watch: false,
            province: "999999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().starts_with("province:"), "{bad:?}");

    // Stopping the node ends the open watch (it does not hold up the shutdown).
    sc.shutdown().await.unwrap();
    let mut ended = false;
    for _ in 0..1000 {
        match tokio::time::timeout(Duration::from_secs(30), watch.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => {
                ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(ended, "the watch outlived the node");
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_learns_a_revocation_by_watch_and_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // Polling an hour apart: only the watch can deliver within the test.
    for c in [&sc_cfg, &gd_cfg] {
        set_sync_interval(c, 3600);
    }
    let sc = start(&sc_cfg).await;
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G), (R, R)], &[(G, G), (R, R)]).await;

    let code = issue(&sc, subject("王建国", "510104", 131), G, 3600).await;
    assert_eq!(verify(&gd, &code.code).await.reason, Reason::Ok as i32);
    revoke(&sc, &code.cti).await;
    assert_eq!(
        until_revoked(&gd, &code.code, 200).await,
        Reason::Revoked as i32,
        "Guangdong did not learn the revocation by watch"
    );

    // Sichuan restarts on the same port; Guangdong's watch resumes from its last entry.
    pin_listen(&sc_cfg, &sc);
    sc.shutdown().await.unwrap();
    let sc = start(&sc_cfg).await;
    let second = issue(&sc, subject("李秀英", "511302", 242), G, 3600).await;
    assert_eq!(verify(&gd, &second.code).await.reason, Reason::Ok as i32);
    revoke(&sc, &second.cti).await;
    // The watch's backoff after the restart is at most 5 s: up to 10 s of polling.
    assert_eq!(
        until_revoked(&gd, &second.code, 400).await,
        Reason::Revoked as i32,
        "Guangdong did not learn the second revocation after Sichuan restarted"
    );
    // The first is still revoked, and the metrics count what came by watch.
    assert_eq!(verify(&gd, &code.code).await.reason, Reason::Revoked as i32);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_the_state_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    for c in [&sc_cfg, &gd_cfg] {
        set_sync_interval(c, 3600);
    }
    let sc = start(&sc_cfg).await;
    let gd = start(&gd_cfg).await;
    let id = conclude(&gd, &sc, &[(G, G), (R, R)], &[(G, G), (R, R)]).await;
    sync_now(&sc).await;

    let identity = enrolled_replica_identity(&sc, "r1").await;
    let mut client = ReplicaServiceClient::new(node_channel_as(&sc, &identity).await);
    let mut s = client
        .follow_state(proto::FollowStateRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut s).await.unwrap().unwrap();
    assert!(first.full);
    assert!(first.primary_time > 0);
    assert_eq!(first.own_last_seq, 1, "the genesis entry only");
    assert_eq!(first.agreements.len(), 1);
    let a = hcmr::node::convert::signed_from_proto(first.agreements.first()).unwrap();
    assert_eq!(a.body().id.to_string(), id);
    assert!(first.terminations.is_empty());
    let names: Vec<&str> = first.callers.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"test"), "{names:?}");
    let test = first.callers.iter().find(|c| c.name == "test").unwrap();
    assert_eq!(
        test.token_sha256,
        hcmr::callers::token_hash(&test_token(&sc)).to_vec()
    );
    assert_eq!(test.roles.len(), hcmr::callers::Role::ALL.len());
    assert_eq!(
        first.peers,
        vec![proto::PeerFeedHead {
            province: GUANGDONG.to_string(),
            last_seq: 1,
            synced_at: first.peers[0].synced_at,
        }]
    );
    assert!(first.peers[0].synced_at > 0);

    // A revocation moves the own feed's head: a heads-only message follows (callers unchanged).
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300).await;
    let seq = revoke(&sc, &code.cti).await;
    let mut heads = None;
    for _ in 0..20 {
        let m = next(&mut s).await.unwrap().unwrap();
        if m.own_last_seq == seq {
            heads = Some(m);
            break;
        }
    }
    let heads = heads.expect("the own feed's head did not move");
    assert!(!heads.full && heads.callers.is_empty() && heads.agreements.is_empty());
    // The primary lists when the replica last followed.
    let listed = operator(&sc)
        .await
        .list_replicas(proto::ListReplicasRequest {})
        .await
        .unwrap()
        .into_inner()
        .replicas;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_seen > 0, "{listed:?}");

    // Removing the replica ends its stream.
    operator(&sc)
        .await
        .remove_replica(proto::RemoveReplicaRequest { name: "r1".into() })
        .await
        .unwrap();
    let mut end = None;
    for _ in 0..20 {
        match next(&mut s).await {
            Ok(Some(_)) => continue,
            other => {
                end = Some(other);
                break;
            }
        }
    }
    match end.expect("the stream outlived the removal") {
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
        Ok(_) => panic!("ended without saying why"),
    }
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_outlives_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    // The shortest call limit there is: 2 s (the body's 1 s under it).
    rewrite_setting(&sc_cfg, "body_timeout_secs", "1");
    rewrite_setting(&sc_cfg, "request_timeout_secs", "2");
    let sc = start(&sc_cfg).await;
    let replica = enrolled_replica_identity(&sc, "r1").await;
    let mut watch = federation_as(&sc, &replica)
        .await
        .get_feed(proto::GetFeedRequest {
            from_seq: 2,
            watch: true,
            province: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // Past the call limit, the watch is still open and still delivers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300).await;
    let seq = revoke(&sc, &code.cti).await;
    let m = next(&mut watch)
        .await
        .unwrap()
        .expect("the watch was cut by the request timeout");
    let e = hcmr::feed::FeedEntry::from_parts(
        m.entry,
        hcmr::keys::Kid::from_slice(&m.kid).unwrap(),
        m.signature.as_slice().try_into().unwrap(),
    )
    .unwrap();
    assert_eq!(e.seq(), seq);
    sc.shutdown().await.unwrap();
}
