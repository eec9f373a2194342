//! The trust lifecycle between real nodes on loopback: amendment and termination of agreements,
//! key rotation and withdrawal, revocations, peer sync (including a peer that is down or sends a
//! feed that does not verify), trust staleness, and offline bundles (library and binary).
//! Every wait is bounded.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hcmr::feed::{proof_of_possession, FeedEntry, FeedError, FeedState, Statement};
use hcmr::identity::SubjectHash;
use hcmr::keys::{Kid, NodeKey};
use hcmr::node::NodeHandle;
use hcmr::proto::federation_service_client::FederationServiceClient;
use hcmr::proto::{self, AgreementState, Reason, Verdict};
use hcmr::province::Province;
use tonic::{Code, Request, Response, Status};

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

const RECOGNIZED: i32 = Verdict::Recognized as i32;
const NOT_RECOGNIZED: i32 = Verdict::NotRecognized as i32;
const UNSPECIFIED: i32 = proto::HealthStatus::Unspecified as i32;

fn province(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

/// (verdict, reason, local status) of a verification, for compact assertions.
fn outcome(v: &proto::VerifyHealthCodeResponse) -> (i32, i32, i32) {
    (v.verdict, v.reason, v.local_status)
}

fn recognized_as(status: i32) -> (i32, i32, i32) {
    (RECOGNIZED, Reason::Ok as i32, status)
}

fn refused(reason: Reason) -> (i32, i32, i32) {
    (NOT_RECOGNIZED, reason as i32, UNSPECIFIED)
}

/// Waits (at most `limit`) until the wall clock reaches `t`, seconds since the Unix epoch.
async fn sleep_until_unix(t: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while hcmr::unix_now() < t {
        assert!(
            Instant::now() < deadline,
            "the clock did not reach {t} in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Verifies `code` at `n` until the reason is `want` (at most `limit`); returns the last answer.
async fn verify_until(
    n: &NodeHandle,
    code: &str,
    want: Reason,
    limit: Duration,
) -> proto::VerifyHealthCodeResponse {
    let deadline = Instant::now() + limit;
    loop {
        let v = verify(n, code).await;
        if v.reason == want as i32 || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The view of version `version` in a node's agreement list.
fn version(list: &[proto::AgreementView], id: &str, version: u32) -> proto::AgreementView {
    list.iter()
        .find(|a| a.id == id && a.version == version)
        .unwrap_or_else(|| panic!("no {id} v{version} in {list:?}"))
        .clone()
}

/// A node's feed as GetFeed streams it to its peer `peer` (mutual TLS with the peer's node
/// certificate), from entry `from`.
async fn get_feed(n: &NodeHandle, peer: &NodeHandle, from: u64) -> Vec<proto::FeedEntry> {
    let mut client = match peer.tls_cert {
        Some(_) => federation_as(n, &tls_identity_of(peer)).await,
        None => FederationServiceClient::new(
            hcmr::client::channel(&n.endpoint, None, Duration::from_secs(30))
                .await
                .unwrap(),
        ),
    };
    let mut stream = client
        .get_feed(proto::GetFeedRequest { from_seq: from })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        out.push(m);
    }
    out
}

fn from_proto(m: &proto::FeedEntry) -> FeedEntry {
    FeedEntry::from_parts(
        m.entry.clone(),
        Kid::from_slice(&m.kid).unwrap(),
        m.signature.as_slice().try_into().unwrap(),
    )
    .unwrap()
}

fn to_proto(e: &FeedEntry) -> proto::FeedEntry {
    proto::FeedEntry {
        entry: e.encoded().to_vec(),
        kid: e.signer().0.to_vec(),
        signature: e.signature().to_vec(),
    }
}

/// The same entry bytes, signed by `key` instead (as "hcmr-feed-v1\0" || entry).
fn resigned(e: &FeedEntry, key: &NodeKey) -> FeedEntry {
    let mut msg = b"hcmr-feed-v1\0".to_vec();
    msg.extend_from_slice(e.encoded());
    FeedEntry::from_parts(e.encoded().to_vec(), key.kid(), key.sign(&msg)).unwrap()
}

/// The same entry with one bit of its signature flipped.
fn flipped_signature(e: &FeedEntry) -> FeedEntry {
    let mut sig = *e.signature();
    sig[17] ^= 0x01;
    FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), sig).unwrap()
}

fn node_dir(root: &Path, province: u32) -> std::path::PathBuf {
    root.join(province.to_string())
}

fn terminate_req(id: &str, effective_at: u64) -> proto::TerminateAgreementRequest {
    proto::TerminateAgreementRequest {
        id: id.to_string(),
        effective_at,
    }
}

fn create_req(
    peer: &NodeHandle,
    peer_kid: String,
    peer_codes_here: &[(i32, i32)],
    our_codes_there: &[(i32, i32)],
    amends: &str,
) -> proto::CreateAgreementRequest {
    let now = hcmr::unix_now();
    proto::CreateAgreementRequest {
        peer_endpoint: peer.endpoint.clone(),
        peer_codes_here: map(peer_codes_here),
        our_codes_there: map(our_codes_there),
        max_code_age_secs: 3600,
        max_trust_age_secs: 0,
        amends: amends.to_string(),
        expected_peer_kid: peer_kid,
        effective_from: now - 10,
        effective_until: now + 86_400,
    }
}

// 1. Amendment, then termination at once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amendment_supersedes_v1_then_termination_ends_recognition_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    let yellow = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;
    let green = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let gd_green = issue(&gd, subject("马超", "440106", 77), G, 600).await;
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(
        outcome(&v),
        recognized_as(R),
        "v1 counts a Sichuan yellow as red: {v:?}"
    );
    assert_eq!(v.agreement_id, id);

    // A brand-new agreement while this one is in force is refused, from either side.
    let e = operator(&gd)
        .await
        .create_agreement(create_req(&sc, kid_of(&sc).await, &[(G, G)], &[(G, G)], ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains(&id), "{}", e.message());
    let e = operator(&sc)
        .await
        .create_agreement(create_req(&gd, kid_of(&gd).await, &[(G, G)], &[(G, G)], ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Guangdong amends: version 2 no longer recognizes Sichuan's yellow.
    let amended = operator(&gd)
        .await
        .create_agreement(create_req(
            &sc,
            kid_of(&sc).await,
            &[(G, G), (R, R)],
            &[(G, G), (R, R)],
            &id,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!((amended.id.as_str(), amended.version), (id.as_str(), 2));
    assert_eq!(amended.state, AgreementState::Proposed as i32);
    // Until Sichuan accepts, version 1 governs.
    assert_eq!(outcome(&verify(&gd, &yellow.code).await), recognized_as(R));
    let at_sc = agreements(&sc).await;
    assert_eq!(
        version(&at_sc, &id, 1).state,
        AgreementState::Concluded as i32
    );
    assert_eq!(
        version(&at_sc, &id, 2).state,
        AgreementState::AwaitingAcceptance as i32
    );

    let accepted = operator(&sc)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(
        (accepted.version, accepted.state),
        (2, AgreementState::Concluded as i32)
    );
    for n in [&gd, &sc] {
        let list = agreements(n).await;
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(
            version(&list, &id, 1).state,
            AgreementState::Superseded as i32
        );
        assert_eq!(
            version(&list, &id, 2).state,
            AgreementState::Concluded as i32
        );
    }
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(outcome(&v), refused(Reason::StatusNotRecognized), "{v:?}");
    assert!(v.signature_verified);
    assert_eq!(v.agreement_id, id);
    assert_eq!(v.issued_status, Y);
    assert_eq!(outcome(&verify(&gd, &green.code).await), recognized_as(G));
    assert_eq!(
        outcome(&verify(&sc, &gd_green.code).await),
        recognized_as(G)
    );

    // The other party may amend too: Sichuan proposes version 3, restoring yellow -> red at
    // Guangdong (for Sichuan, "our codes there"); Guangdong accepts.
    let v3 = operator(&sc)
        .await
        .create_agreement(create_req(
            &gd,
            kid_of(&gd).await,
            &[(G, G), (R, R)],
            &[(G, G), (Y, R), (R, R)],
            &id,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!((v3.id.as_str(), v3.version), (id.as_str(), 3));
    assert_eq!(v3.proposer_province, "510000");
    assert_eq!(v3.state, AgreementState::Proposed as i32);
    let accepted = operator(&gd)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(
        (accepted.version, accepted.state),
        (3, AgreementState::Concluded as i32)
    );
    for n in [&gd, &sc] {
        let list = agreements(n).await;
        assert_eq!(list.len(), 3, "{list:?}");
        for (ver, state) in [
            (1, AgreementState::Superseded),
            (2, AgreementState::Superseded),
            (3, AgreementState::Concluded),
        ] {
            assert_eq!(version(&list, &id, ver).state, state as i32, "v{ver}");
        }
    }
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(
        outcome(&v),
        recognized_as(R),
        "v3 counts yellow as red again: {v:?}"
    );
    assert_eq!(v.agreement_id, id);

    // Sichuan terminates at once; Guangdong is told by NotifyTermination.
    let t = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(t.peer_notified, "the peer acknowledged the notice");
    let view = t.agreement.unwrap();
    assert_eq!(view.state, AgreementState::Terminated as i32);
    assert_eq!(view.terminated_by, "510000");
    assert!(view.terminated_at <= hcmr::unix_now() && view.terminated_at > 0);
    let v = verify(&gd, &green.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    assert_eq!(v.agreement_id, id);
    let v = verify(&sc, &gd_green.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    for n in [&gd, &sc] {
        for a in agreements(n).await {
            assert_eq!(a.state, AgreementState::Terminated as i32, "{a:?}");
            assert_eq!(a.terminated_by, "510000");
            assert_eq!(a.terminated_at, view.terminated_at);
        }
    }
    // Own codes are untouched by the termination.
    assert_eq!(outcome(&verify(&sc, &green.code).await), recognized_as(G));

    // Terminating again, or amending a terminated agreement, is refused.
    let e = operator(&gd)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = operator(&gd)
        .await
        .create_agreement(create_req(
            &sc,
            kid_of(&sc).await,
            &[(G, G)],
            &[(G, G)],
            &id,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = operator(&gd)
        .await
        .terminate_agreement(terminate_req(&"00".repeat(16), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 1 (continued). A scheduled termination, and one made while the peer is down.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_termination_waits_and_a_missed_notice_arrives_by_sync_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    let gd = start(&gd_cfg).await;
    pin_listen(&gd_cfg, &gd);
    let first = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let sc_code = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let gd_code = issue(&gd, subject("马超", "440106", 77), G, 600).await;

    // Guangdong schedules the end 3 s ahead: codes stay recognized until then.
    let at = hcmr::unix_now() + 3;
    let t = operator(&gd)
        .await
        .terminate_agreement(terminate_req(&first, at))
        .await
        .unwrap()
        .into_inner();
    assert!(t.peer_notified);
    let view = t.agreement.unwrap();
    assert_eq!(
        view.state,
        AgreementState::Concluded as i32,
        "not yet ended"
    );
    assert_eq!(
        (view.terminated_at, view.terminated_by.as_str()),
        (at, "440000")
    );
    for (n, code) in [(&gd, &sc_code), (&sc, &gd_code)] {
        let v = verify(n, &code.code).await;
        assert!(v.verified_at < at, "checked before the end");
        assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    }
    let at_sc = version(&agreements(&sc).await, &first, 1);
    assert_eq!(at_sc.state, AgreementState::Concluded as i32);
    assert_eq!(
        (at_sc.terminated_at, at_sc.terminated_by.as_str()),
        (at, "440000")
    );
    // The other party cannot postpone the end.
    let e = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&first, at + 100))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    sleep_until_unix(at, Duration::from_secs(6)).await;
    for (n, code) in [(&gd, &sc_code), (&sc, &gd_code)] {
        let v = verify(n, &code.code).await;
        assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
        let a = version(&agreements(n).await, &first, 1);
        assert_eq!(a.state, AgreementState::Terminated as i32);
    }

    // With the first one ended, a new agreement may be made.
    let second = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    assert_ne!(second, first);
    let v = verify(&gd, &sc_code.code).await;
    assert_eq!(outcome(&v), recognized_as(G));
    assert_eq!(v.agreement_id, second);

    // Guangdong goes down; Sichuan terminates at once and cannot tell it.
    let gd_endpoint = gd.endpoint.clone();
    gd.shutdown().await.unwrap();
    let t = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&second, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(!t.peer_notified, "the peer was down");
    assert_eq!(
        t.agreement.unwrap().state,
        AgreementState::Terminated as i32
    );
    let v = verify(&sc, &gd_code.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated));
    assert_eq!(v.agreement_id, second);

    // Back up (same port), Guangdong has not heard of it yet...
    let gd = start(&gd_cfg).await;
    assert_eq!(gd.endpoint, gd_endpoint);
    let v = verify(&gd, &sc_code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "not yet told: {v:?}");
    let a = version(&agreements(&gd).await, &second, 1);
    assert_eq!(a.state, AgreementState::Concluded as i32);
    // ...until its sync brings the notice.
    let r = sync_now(&gd).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].province.as_str(), r[0].ok), ("510000", true), "{r:?}");
    let v = verify(&gd, &sc_code.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    assert_eq!(v.agreement_id, second);
    let a = version(&agreements(&gd).await, &second, 1);
    assert_eq!(a.state, AgreementState::Terminated as i32);
    assert_eq!(a.terminated_by, "510000");

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 2. Key rotation and withdrawal.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_recognized_after_sync_withdrawn_key_is_not_and_rotation_persists() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let sc = start(&sc_cfg).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    pin_listen(&sc_cfg, &sc);
    let scp = province(SICHUAN);
    let key_file = node_dir(dir.path(), SICHUAN).join("node.key");
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 1),
        "{r:?}"
    );

    let old_kid = kid_of(&sc).await;
    let old_short = issue(&sc, subject("孙丽", "511302", 148), G, 5).await;
    let old_long = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;
    assert_eq!(old_long.kid, old_kid);

    let rot = operator(&sc)
        .await
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hex::encode(&rot.retired_kid), old_kid);
    let new_kid = hex::encode(&rot.new_key.unwrap().kid);
    assert_ne!(new_kid, old_kid);
    assert_eq!(rot.seq, 2, "genesis, then the rotation");
    assert_eq!(
        kid_of(&sc).await,
        new_kid,
        "GetNodeInfo publishes the new key"
    );
    let new_code = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    assert_eq!(new_code.kid, new_kid);

    // Before Guangdong syncs, it does not know the new key.
    let v = verify(&gd, &new_code.code).await;
    assert_eq!(outcome(&v), refused(Reason::UnknownKey), "{v:?}");
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 2),
        "{r:?}"
    );
    let v = verify(&gd, &new_code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    assert!(v.signature_verified && v.issuer_state_synced);
    // Codes issued before the rotation stay recognized until they expire.
    assert_eq!(
        outcome(&verify(&gd, &old_long.code).await),
        recognized_as(R)
    );
    let v = verify(&gd, &old_short.code).await;
    assert!(v.verified_at < old_short.exp);
    assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    assert_eq!(
        outcome(&verify(&sc, &new_code.code).await),
        recognized_as(G)
    );
    assert_eq!(
        outcome(&verify(&sc, &old_long.code).await),
        recognized_as(Y)
    );

    // The retired key was moved aside; a code it signs after the rotation is KEY_RETIRED.
    let retired_file = node_dir(dir.path(), SICHUAN).join(format!("node.key.{old_kid}.retired"));
    let old_key = NodeKey::read_pem(&retired_file).unwrap();
    assert_eq!(old_key.kid().to_string(), old_kid);
    assert_eq!(
        NodeKey::read_pem(&key_file).unwrap().kid().to_string(),
        new_kid
    );
    let mut claims = hcmr::code::HealthCode::decode(&old_long.code)
        .unwrap()
        .claims;
    claims.iat = hcmr::unix_now() + 1;
    claims.exp = claims.iat + 600;
    let late = hcmr::code::encode(&claims, &old_key);
    let v = verify(&gd, &late).await;
    assert_eq!(outcome(&v), refused(Reason::KeyRetired), "{v:?}");
    assert!(v.signature_verified);

    // Forged rotation statements are refused by FeedState::apply, and nothing is applied.
    let entries: Vec<FeedEntry> = get_feed(&sc, &gd, 1).await.iter().map(from_proto).collect();
    assert_eq!(entries.len(), 2);
    let mut state = FeedState::new(scp);
    state.apply_all(&entries).unwrap();
    assert_eq!(state.current_key().unwrap().kid.to_string(), new_kid);
    let current_key = NodeKey::read_pem(&key_file).unwrap();
    let stranger = NodeKey::generate();
    let rotation_to = |key: &NodeKey, pop_by: &NodeKey| Statement::KeyRotation {
        key: key.public(),
        pop: proof_of_possession(scp, pop_by),
    };
    let now = hcmr::unix_now();
    let before = state.clone();
    // Signed by a key that is not in the chain.
    let forged = FeedEntry::sign(
        scp,
        entries.last(),
        now,
        rotation_to(&stranger, &stranger),
        &stranger,
    );
    assert_eq!(state.apply(&forged), Err(FeedError::BadSignature(3)));
    // Signed by the retired key: it may sign nothing after its retirement.
    let forged = FeedEntry::sign(
        scp,
        entries.last(),
        now,
        rotation_to(&stranger, &stranger),
        &old_key,
    );
    assert_eq!(state.apply(&forged), Err(FeedError::BadSignature(3)));
    // Signed by the current key, but the proof of possession is not the new key's.
    let other = NodeKey::generate();
    let forged = FeedEntry::sign(
        scp,
        entries.last(),
        now,
        rotation_to(&stranger, &other),
        &current_key,
    );
    assert_eq!(state.apply(&forged), Err(FeedError::BadRotation(3)));
    assert_eq!(state, before, "nothing applied");
    assert_eq!(state.keys().len(), 2);
    // (The same statement with a valid proof, by the current key, would apply.)
    let honest = FeedEntry::sign(
        scp,
        entries.last(),
        now,
        rotation_to(&stranger, &stranger),
        &current_key,
    );
    state.clone().apply(&honest).unwrap();
    // GetFeed entries re-signed by a stranger are refused whole.
    let resigned_all: Vec<FeedEntry> = entries.iter().map(|e| resigned(e, &stranger)).collect();
    let mut fresh = FeedState::new(scp);
    assert_eq!(
        fresh.apply_all(&resigned_all),
        Err(FeedError::BadSignature(1))
    );
    assert_eq!(fresh, FeedState::new(scp));
    let mut at_one = FeedState::new(scp);
    at_one.apply(&entries[0]).unwrap();
    assert_eq!(
        at_one.apply_all([&resigned(&entries[1], &stranger)]),
        Err(FeedError::BadSignature(2))
    );
    assert_eq!((at_one.last_seq(), at_one.keys().len()), (1, 1));

    // The short-lived old code was recognized until its exp, and only then ran out.
    sleep_until_unix(old_short.exp, Duration::from_secs(8)).await;
    let v = verify(&gd, &old_short.code).await;
    assert_eq!(outcome(&v), refused(Reason::Expired), "{v:?}");
    assert!(v.signature_verified);

    // Withdrawing the current key is refused; an unknown kid is not found.
    let mut op = operator(&sc).await;
    let e = op
        .withdraw_key(proto::WithdrawKeyRequest {
            kid: new_kid.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = op
        .withdraw_key(proto::WithdrawKeyRequest {
            kid: "00".repeat(8),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = op
        .withdraw_key(proto::WithdrawKeyRequest { kid: "xyz".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Withdraw the old key.
    let w = op
        .withdraw_key(proto::WithdrawKeyRequest {
            kid: old_kid.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.seq, 3);
    let e = op
        .withdraw_key(proto::WithdrawKeyRequest {
            kid: old_kid.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "already withdrawn: {e:?}");
    assert_eq!(
        outcome(&verify(&gd, &old_long.code).await),
        recognized_as(R),
        "Guangdong has not synced yet"
    );
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 3),
        "{r:?}"
    );
    let v = verify(&gd, &old_long.code).await;
    assert_eq!(outcome(&v), refused(Reason::KeyWithdrawn), "{v:?}");
    assert!(v.signature_verified);
    assert_eq!(
        outcome(&verify(&gd, &new_code.code).await),
        recognized_as(G)
    );
    assert_eq!(
        outcome(&verify(&sc, &old_long.code).await),
        refused(Reason::KeyWithdrawn)
    );
    // (Withdrawal is checked before the time: the expired old code now says KEY_WITHDRAWN.)
    assert_eq!(
        outcome(&verify(&gd, &old_short.code).await),
        refused(Reason::KeyWithdrawn)
    );

    // Restart Sichuan: the rotated key persists.
    sc.shutdown().await.unwrap();
    let sc = start(&sc_cfg).await;
    assert_eq!(kid_of(&sc).await, new_kid);
    let info = federation(&sc)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.keys.len(), 1, "only the current key is published");
    assert_eq!(
        NodeKey::read_pem(&key_file).unwrap().kid().to_string(),
        new_kid
    );
    assert_eq!(
        NodeKey::read_pem(&retired_file).unwrap().kid().to_string(),
        old_kid
    );
    assert!(!node_dir(dir.path(), SICHUAN).join("node.key.new").exists());
    let after = issue(&sc, subject("刘洋", "511602", 57), G, 600).await;
    assert_eq!(after.kid, new_kid);
    assert_eq!(outcome(&verify(&gd, &after.code).await), recognized_as(G));
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 0, 3),
        "{r:?}"
    );

    // Sichuan rotates again and terminates with the newest key, which Guangdong has not synced:
    // whether or not Guangdong takes the notice at once, its next sync brings the key and the
    // termination, and its verdicts turn AGREEMENT_TERMINATED.
    let id = agreements(&sc).await[0].id.clone();
    let rot = operator(&sc)
        .await
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rot.seq, 4);
    let t = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        t.agreement.unwrap().state,
        AgreementState::Terminated as i32
    );
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 4),
        "{r:?}"
    );
    let v = verify(&gd, &after.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    let a = version(&agreements(&gd).await, &id, 1);
    assert_eq!(a.state, AgreementState::Terminated as i32);
    assert_eq!(a.terminated_by, "510000");

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 3. Revocation, learned by the interval sync alone.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_the_peer_within_one_sync_interval() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    set_sync_interval(&gd_cfg, 1);
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    let person = subject("张伟", "510802", 311);
    let c1 = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let c2 = issue(&sc, person.clone(), Y, 600).await;
    assert_eq!(outcome(&verify(&gd, &c1.code).await), recognized_as(G));
    assert_eq!(outcome(&verify(&gd, &c2.code).await), recognized_as(R));

    // One code.
    let mut hc = codes(&sc).await;
    let r = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: c1.cti.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.seq, 2);
    let v = verify_until(&gd, &c1.code, Reason::Revoked, Duration::from_secs(10)).await;
    assert_eq!(outcome(&v), refused(Reason::Revoked), "{v:?}");
    assert_eq!(v.cti, c1.cti);
    assert!(v.signature_verified && v.issuer_state_synced);
    assert_eq!(outcome(&verify(&gd, &c2.code).await), recognized_as(R));
    assert_eq!(
        outcome(&verify(&sc, &c1.code).await),
        refused(Reason::Revoked)
    );

    // Every code of a subject issued before now.
    let r = hc
        .revoke_subject(proto::RevokeSubjectRequest {
            document_type: person.document_type,
            document_number: person.document_number.clone(),
            issued_before: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let revoked_by = hcmr::unix_now() + 1;
    assert_eq!(r.seq, 3);
    let v = verify_until(&gd, &c2.code, Reason::Revoked, Duration::from_secs(10)).await;
    assert_eq!(outcome(&v), refused(Reason::Revoked), "{v:?}");
    assert_eq!(
        outcome(&verify(&sc, &c2.code).await),
        refused(Reason::Revoked)
    );

    // A code for that person issued after the revocation time is recognized.
    sleep_until_unix(revoked_by, Duration::from_secs(3)).await;
    let c3 = issue(&sc, person.clone(), G, 600).await;
    assert!(c3.iat >= revoked_by);
    assert_eq!(
        c3.subject.as_ref().unwrap().subject_hash,
        c2.subject.as_ref().unwrap().subject_hash,
        "the same person"
    );
    let v = verify(&gd, &c3.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    assert_eq!(outcome(&verify(&sc, &c3.code).await), recognized_as(G));

    // Refused revocations.
    let e = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: "ab".repeat(16),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti: "zz".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("cti"), "{}", e.message());
    // A time in the future would revoke codes not issued yet (such as the next code with the
    // person's new status): refused, a minute ahead as well as an hour.
    for ahead in [60, 3600] {
        let e = hc
            .revoke_subject(proto::RevokeSubjectRequest {
                document_type: person.document_type,
                document_number: person.document_number.clone(),
                issued_before: hcmr::unix_now() + ahead,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{ahead} s ahead: {e:?}");
        assert!(e.message().starts_with("issued_before"), "{}", e.message());
    }
    let v = verify(&sc, &c3.code).await;
    assert_eq!(
        outcome(&v),
        recognized_as(G),
        "c3 not revoked by a refused request"
    );
    let e = hc
        .revoke_subject(proto::RevokeSubjectRequest {
            document_type: person.document_type,
            document_number: "440524188001010015".into(),
            issued_before: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().starts_with("document_number"),
        "{}",
        e.message()
    );
    // None of them reached the feed.
    assert_eq!(get_feed(&sc, &gd, 1).await.len(), 3);

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 4. Gaps and bad signatures: refused whole, nothing applied.

#[test]
fn a_feed_with_a_gap_or_a_bad_signature_is_refused_and_nothing_is_applied() {
    let p = province(SICHUAN);
    let k = NodeKey::generate();
    let e1 = FeedEntry::sign(p, None, 1_000, Statement::Genesis { key: k.public() }, &k);
    let revoke = |n: u8| Statement::RevokeCode { cti: [n; 16] };
    let e2 = FeedEntry::sign(p, Some(&e1), 1_001, revoke(2), &k);
    let e3 = FeedEntry::sign(p, Some(&e2), 1_002, revoke(3), &k);
    let subject = SubjectHash([4; 8]);
    let e4 = FeedEntry::sign(
        p,
        Some(&e3),
        1_003,
        Statement::RevokeSubject {
            subject_hash: subject,
            before: 1_003,
        },
        &k,
    );

    // Entries 1, 2, 4: a gap at 3.
    let mut s = FeedState::new(p);
    assert_eq!(
        s.apply_all([&e1, &e2, &e4]),
        Err(FeedError::Gap {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(s, FeedState::new(p));
    assert_eq!((s.last_seq(), s.revocation_count()), (0, 0));
    assert!(s.keys().is_empty());

    // From a state at entry 1: 2 then 4 is a gap; entry 2 is not applied either.
    s.apply_all([&e1]).unwrap();
    let at_one = s.clone();
    assert_eq!(
        s.apply_all([&e2, &e4]),
        Err(FeedError::Gap {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(s, at_one);
    assert_eq!((s.last_seq(), s.revocation_count()), (1, 0));
    assert!(!s.is_revoked(&[2; 16], &SubjectHash([0; 8]), 0));

    // One flipped bit of entry 3's signature.
    let bad3 = flipped_signature(&e3);
    assert_eq!(
        s.apply_all([&e2, &bad3, &e4]),
        Err(FeedError::BadSignature(3))
    );
    assert_eq!(s, at_one);
    assert_eq!((s.last_seq(), s.revocation_count()), (1, 0));
    // Altered content under the original signature.
    let altered = FeedEntry::sign(p, Some(&e2), 1_002, revoke(9), &k);
    let altered =
        FeedEntry::from_parts(altered.encoded().to_vec(), k.kid(), *e3.signature()).unwrap();
    assert_eq!(
        s.apply_all([&e2, &altered]),
        Err(FeedError::BadSignature(3))
    );
    // A bad signature on the genesis entry.
    let mut fresh = FeedState::new(p);
    assert_eq!(
        fresh.apply_all([&flipped_signature(&e1), &e2]),
        Err(FeedError::BadSignature(1))
    );
    assert_eq!(fresh.last_seq(), 0);
    // An entry that does not link to the one before.
    let e2b = FeedEntry::sign(p, Some(&e1), 1_001, revoke(7), &k);
    let unlinked = FeedEntry::sign(p, Some(&e2b), 1_002, revoke(3), &k);
    assert_eq!(
        s.apply_all([&e2, &unlinked]),
        Err(FeedError::BrokenChain(3))
    );
    assert_eq!(s, at_one);
    // Entries of another province.
    let gd = province(GUANGDONG);
    let foreign = FeedEntry::sign(gd, Some(&e1), 1_001, revoke(2), &k);
    assert!(matches!(
        s.apply_all([&foreign]),
        Err(FeedError::WrongProvince { .. })
    ));
    assert_eq!(s, at_one);

    // The intact batch applies.
    s.apply_all([&e2, &e3, &e4]).unwrap();
    assert_eq!((s.last_seq(), s.revocation_count()), (4, 3));
    assert!(s.is_revoked(&[3; 16], &SubjectHash([0; 8]), 0));
    assert!(s.is_revoked(&[0; 16], &subject, 1_002));
    assert!(!s.is_revoked(&[0; 16], &subject, 1_003));
}

/// A stand-in for a peer's federation API that serves whatever feed the test sets.
#[derive(Clone, Default)]
struct FakePeer {
    feed: Arc<Mutex<Vec<proto::FeedEntry>>>,
    agreements: Arc<Mutex<Vec<proto::SignedAgreement>>>,
}

#[tonic::async_trait]
impl proto::federation_service_server::FederationService for FakePeer {
    async fn get_node_info(
        &self,
        _: Request<proto::GetNodeInfoRequest>,
    ) -> Result<Response<proto::GetNodeInfoResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn propose_agreement(
        &self,
        _: Request<proto::ProposeAgreementRequest>,
    ) -> Result<Response<proto::ProposeAgreementResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn accept_agreement(
        &self,
        _: Request<proto::AcceptAgreementRequest>,
    ) -> Result<Response<proto::AcceptAgreementResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn notify_termination(
        &self,
        _: Request<proto::NotifyTerminationRequest>,
    ) -> Result<Response<proto::NotifyTerminationResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn notify_proposal_dropped(
        &self,
        _: Request<proto::NotifyProposalDroppedRequest>,
    ) -> Result<Response<proto::NotifyProposalDroppedResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }

    type GetFeedStream = tokio_stream::Iter<std::vec::IntoIter<Result<proto::FeedEntry, Status>>>;

    async fn get_feed(
        &self,
        _: Request<proto::GetFeedRequest>,
    ) -> Result<Response<Self::GetFeedStream>, Status> {
        let items: Vec<_> = self.feed.lock().unwrap().iter().cloned().map(Ok).collect();
        Ok(Response::new(tokio_stream::iter(items)))
    }

    async fn get_agreements(
        &self,
        _: Request<proto::GetAgreementsRequest>,
    ) -> Result<Response<proto::GetAgreementsResponse>, Status> {
        Ok(Response::new(proto::GetAgreementsResponse {
            agreements: self.agreements.lock().unwrap().clone(),
            terminations: Vec::new(),
        }))
    }

    async fn match_subject(
        &self,
        _: Request<proto::MatchSubjectRequest>,
    ) -> Result<Response<proto::MatchSubjectResponse>, Status> {
        Err(Status::unimplemented("this fake peer serves feeds only"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_a_peer_feed_that_does_not_verify_and_applies_nothing() {
    // Plain-text nodes: the stand-in peer below serves gRPC without TLS. What is tested is the
    // feed check, which TLS does not replace (a peer's TLS key may leak; its feed must still
    // verify under the pinned signing keys).
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node_plaintext(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node_plaintext(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 1),
        "{r:?}"
    );
    let c2 = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let c3 = issue(&sc, subject("张伟", "510802", 311), R, 600).await;
    let mut hc = codes(&sc).await;
    for c in [&c2, &c3] {
        hc.revoke_health_code(proto::RevokeHealthCodeRequest { cti: c.cti.clone() })
            .await
            .unwrap();
    }
    let honest: Vec<FeedEntry> = get_feed(&sc, &gd, 1).await.iter().map(from_proto).collect();
    assert_eq!(honest.len(), 3);
    let synced_at = verify(&gd, &c2.code).await.issuer_state_synced_at;
    assert!(synced_at > 0);

    // Sichuan's address now answers with a feed the test controls.
    let addr = sc.addr;
    sc.shutdown().await.unwrap();
    let fake = FakePeer::default();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                proto::federation_service_server::FederationServiceServer::new(fake.clone()),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let stranger = NodeKey::generate();
    let scp = province(SICHUAN);
    let forged_rotation = FeedEntry::sign(
        scp,
        Some(&honest[0]),
        hcmr::unix_now(),
        Statement::KeyRotation {
            key: stranger.public(),
            pop: proof_of_possession(scp, &stranger),
        },
        &stranger,
    );
    let cases: Vec<(&str, Vec<FeedEntry>, &str)> = vec![
        (
            "a flipped signature bit",
            vec![flipped_signature(&honest[1]), honest[2].clone()],
            "bad signature",
        ),
        (
            "entry 2 left out",
            vec![honest[2].clone()],
            "gap: expected entry 2, got 3",
        ),
        (
            "entry 3 re-signed by a stranger",
            vec![honest[1].clone(), resigned(&honest[2], &stranger)],
            "entry 3 has a bad signature",
        ),
        (
            "a rotation to a stranger's key, signed by it",
            vec![forged_rotation],
            "entry 2 has a bad signature",
        ),
    ];
    for (what, entries, message) in cases {
        *fake.feed.lock().unwrap() = entries.iter().map(to_proto).collect();
        let r = sync_now(&gd).await;
        assert_eq!(r.len(), 1, "{what}: {r:?}");
        assert_eq!(r[0].province, "510000");
        assert!(!r[0].ok, "{what}: refused: {r:?}");
        assert!(r[0].error.contains("refused"), "{what}: {}", r[0].error);
        assert!(r[0].error.contains(message), "{what}: {}", r[0].error);
        // Nothing applied: both codes still recognized, the state as of the last good sync.
        for c in [&c2, &c3] {
            let v = verify(&gd, &c.code).await;
            assert_eq!(v.verdict, RECOGNIZED, "{what}: {v:?}");
            assert_eq!(v.issuer_state_synced_at, synced_at, "{what}");
        }
    }
    // A code signed by the stranger in Sichuan's name is still not trusted.
    let claims = hcmr::code::HealthCode::decode(&c2.code).unwrap().claims;
    let v = verify(&gd, &hcmr::code::encode(&claims, &stranger)).await;
    assert_eq!(outcome(&v), refused(Reason::UnknownKey), "{v:?}");

    // An agreement the peer made up, "concluded" by a key of its own for Sichuan and one for
    // Guangdong (it verifies against itself, but Guangdong never signed it): not taken, so the
    // stranger's codes stay untrusted (issue 15 fault 2: no unverified message changes what is
    // stored about a peer).
    {
        use hcmr::agreement::{AgreementBody, AgreementId, DirectionTerms, Party, SignedAgreement};
        let now = hcmr::unix_now();
        let fake_gd = NodeKey::generate();
        let gdp = province(GUANGDONG);
        let dir = |issuer, verifier| DirectionTerms {
            issuer,
            verifier,
            status_map: [(
                hcmr::status::HealthStatus::Green,
                hcmr::status::HealthStatus::Green,
            )]
            .into(),
            max_code_age_secs: 3600,
            max_trust_age_secs: 0,
            effective_from: now - 10,
            effective_until: now + 3600,
        };
        let mut made_up = SignedAgreement::propose(
            AgreementBody {
                id: AgreementId::generate(),
                version: 1,
                created_at: now,
                proposer: Party {
                    province: scp,
                    keys: vec![stranger.public()],
                },
                acceptor: Party {
                    province: gdp,
                    keys: vec![fake_gd.public()],
                },
                directions: vec![dir(scp, gdp), dir(gdp, scp)],
            },
            &stranger,
        )
        .unwrap();
        made_up.accept(&fake_gd).unwrap();
        *fake.agreements.lock().unwrap() = vec![hcmr::node::convert::signed_to_proto(&made_up)];
        *fake.feed.lock().unwrap() = Vec::new();
        let r = sync_now(&gd).await;
        assert!(r[0].ok, "{r:?}");
        assert_eq!(
            agreements(&gd).await.len(),
            1,
            "the made-up agreement is not stored"
        );
        let v = verify(&gd, &hcmr::code::encode(&claims, &stranger)).await;
        assert_eq!(outcome(&v), refused(Reason::UnknownKey), "{v:?}");
        fake.agreements.lock().unwrap().clear();
    }

    // The honest entries from the same address apply.
    *fake.feed.lock().unwrap() = honest[1..].iter().map(to_proto).collect();
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 2, 3),
        "{r:?}"
    );
    for c in [&c2, &c3] {
        assert_eq!(
            outcome(&verify(&gd, &c.code).await),
            refused(Reason::Revoked)
        );
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    gd.shutdown().await.unwrap();
}

// 5. A peer that is down; trust staleness.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_goes_on_while_the_peer_is_down_and_sync_resumes_from_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let sc = start(&sc_cfg).await;
    pin_listen(&sc_cfg, &sc);
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let code = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;

    // Never synced yet: recognized on the pinned key, and says so.
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(R));
    assert_eq!(
        (
            v.issuer_state_synced,
            v.issuer_state_synced_at,
            v.issuer_state_age_secs
        ),
        (false, 0, 0)
    );

    let t0 = hcmr::unix_now();
    let r = sync_now(&gd).await;
    let t1 = hcmr::unix_now();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].province.as_str(), r[0].ok, r[0].entries, r[0].last_seq),
        ("510000", true, 1, 1),
        "{r:?}"
    );

    sc.shutdown().await.unwrap();
    let v1 = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v1), recognized_as(R), "{v1:?}");
    assert!(v1.issuer_state_synced);
    let synced_at = v1.issuer_state_synced_at;
    assert!(
        (t0..=t1).contains(&synced_at),
        "{t0} <= {synced_at} <= {t1}"
    );
    assert_eq!(v1.issuer_state_age_secs, v1.verified_at - synced_at);
    sleep_until_unix(v1.verified_at + 1, Duration::from_secs(3)).await;
    let v2 = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v2), recognized_as(R));
    assert_eq!(v2.issuer_state_synced_at, synced_at);
    assert!(
        v2.issuer_state_age_secs > v1.issuer_state_age_secs,
        "{} > {}",
        v2.issuer_state_age_secs,
        v1.issuer_state_age_secs
    );

    // Sync fails for that peer, and changes nothing.
    let r = sync_now(&gd).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].province, "510000");
    assert!(!r[0].ok, "{r:?}");
    assert!(!r[0].error.is_empty());
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(R));
    assert_eq!(
        v.issuer_state_synced_at, synced_at,
        "a failed sync is not a sync"
    );

    // Back up; a revocation there; the next sync takes exactly that entry.
    let sc = start(&sc_cfg).await;
    let rv = codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: code.cti.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rv.seq, 2);
    let t2 = hcmr::unix_now();
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 2),
        "only the new entry: {r:?}"
    );
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), refused(Reason::Revoked), "{v:?}");
    assert!(v.issuer_state_synced_at >= t2);
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 0, 2),
        "{r:?}"
    );

    // Guangdong restarts: the synced feed and its sync time come back from its store.
    let before_restart = verify(&gd, &code.code).await.issuer_state_synced_at;
    gd.shutdown().await.unwrap();
    let gd = start(&gd_cfg).await;
    let v = verify(&gd, &code.code).await;
    assert_eq!(
        outcome(&v),
        refused(Reason::Revoked),
        "after restart: {v:?}"
    );
    assert_eq!(v.issuer_state_synced_at, before_restart);
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 0, 2),
        "resumes after entry 2: {r:?}"
    );

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_refused_as_trust_stale_once_the_last_sync_is_older_than_agreed() {
    let dir = tempfile::tempdir().unwrap();
    // Sichuan proposes: a 2 s limit needs a proposer syncing at least every second (a shorter
    // limit than twice the interval is refused). Guangdong keeps its 30 s interval, so its copy
    // of Sichuan's state ages between the syncs this test triggers.
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    set_sync_interval(&sc_cfg, 1);
    let sc = start(&sc_cfg).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude_with_trust_age(&sc, &gd, &[(G, G), (R, R)], &[(G, G), (Y, R), (R, R)], 2).await;
    let code = issue(&sc, subject("王建国", "510104", 131), G, 600).await;

    let v = verify(&gd, &code.code).await;
    assert_eq!(
        outcome(&v),
        refused(Reason::TrustStale),
        "never synced: {v:?}"
    );
    assert!(v.detail.contains("never synced"), "{}", v.detail);

    let r = sync_now(&gd).await;
    assert!(r[0].ok, "{r:?}");
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    let synced_at = v.issuer_state_synced_at;

    // More than 2 s after the last sync (bounded wait).
    sleep_until_unix(synced_at + 3, Duration::from_secs(5)).await;
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), refused(Reason::TrustStale), "{v:?}");
    assert!(v.signature_verified);
    assert_eq!(v.issuer_state_synced_at, synced_at);
    assert!(v.issuer_state_age_secs > 2);

    let r = sync_now(&gd).await;
    assert!(r[0].ok, "{r:?}");
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "fresh again: {v:?}");
    assert!(v.issuer_state_synced_at > synced_at);

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 6. Offline bundles.

fn hcmr_bin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(args)
        .env_remove("HCMR_NODE")
        .output()
        .expect("the hcmr binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_bundle_verifies_with_every_node_down_and_refuses_tampering() {
    use hcmr::bundle::{open, BundleError, TrustAnchor};

    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let yellow = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;
    let revoked = issue(&sc, subject("张伟", "510802", 311), G, 600).await;
    let own = issue(&gd, subject("马超", "440106", 77), G, 600).await;
    codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: revoked.cti.clone(),
        })
        .await
        .unwrap();
    let r = sync_now(&gd).await;
    assert_eq!((r[0].ok, r[0].last_seq), (true, 2), "{r:?}");
    let gd_kid = kid_of(&gd).await;
    let exported = operator(&gd)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hex::encode(&exported.kid), gd_kid);
    let bytes = exported.bundle;
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();

    // Every node is down: the bundle alone decides, as Guangdong would have.
    let now = hcmr::unix_now();
    let anchor = TrustAnchor::parse(&gd_kid).unwrap();
    let (content, snapshot) = open(&bytes, anchor, now, 3600).unwrap();
    assert_eq!(content.province, province(GUANGDONG));
    assert_eq!(content.exported_at, exported.exported_at);
    let v = hcmr::verify::verify(&yellow.code, &snapshot, now);
    assert_eq!(v.reason, hcmr::verify::Reason::Ok, "{v:?}");
    assert_eq!(v.local_status, Some(hcmr::status::HealthStatus::Red));
    assert_eq!(v.agreement.map(|a| a.to_string()), Some(id.clone()));
    assert!(v.issuer_synced_at.is_some());
    let v = hcmr::verify::verify(&revoked.code, &snapshot, now);
    assert_eq!(v.reason, hcmr::verify::Reason::Revoked, "{v:?}");
    assert_eq!(v.local_status, None);
    let v = hcmr::verify::verify(&own.code, &snapshot, now);
    assert_eq!(v.reason, hcmr::verify::Reason::Ok, "own code: {v:?}");
    assert_eq!(v.local_status, Some(hcmr::status::HealthStatus::Green));

    // Tampering. Locate the signed content inside the file.
    let content_bytes = match ciborium::from_reader::<ciborium::Value, _>(bytes.as_slice()).unwrap()
    {
        ciborium::Value::Array(a) => a[2].as_bytes().unwrap().clone(),
        other => panic!("not an array: {other:?}"),
    };
    let start = bytes
        .windows(content_bytes.len())
        .position(|w| w == content_bytes.as_slice())
        .unwrap();
    // Content = [province (0x1a + 4 bytes), exported_at (0x1a + 4 bytes), ...] after the
    // array header: flip the low bit of exported_at's last byte.
    let mut t = bytes.clone();
    t[start + 10] ^= 0x01;
    assert_eq!(
        open(&t, anchor, now, 3600).unwrap_err(),
        BundleError::BadSignature
    );
    // One byte in the middle of the content.
    let mut t = bytes.clone();
    t[start + content_bytes.len() / 2] ^= 0x40;
    let e = open(&t, anchor, now, 3600).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::BadSignature | BundleError::Malformed(_) | BundleError::BadContent(_)
        ),
        "{e:?}"
    );
    // One bit of the bundle signature (the last bytes of the file).
    let mut t = bytes.clone();
    let last = t.len() - 1;
    t[last] ^= 0x01;
    assert_eq!(
        open(&t, anchor, now, 3600).unwrap_err(),
        BundleError::BadSignature
    );
    // Truncated: a damaged bundle, not another kind of file.
    assert!(matches!(
        open(&bytes[..bytes.len() - 10], anchor, now, 3600),
        Err(BundleError::Truncated(_))
    ));
    // A checkpoint that trusts another key.
    let other = NodeKey::generate();
    let e = open(
        &bytes,
        TrustAnchor::parse(&other.kid().to_string()).unwrap(),
        now,
        3600,
    )
    .unwrap_err();
    assert!(matches!(e, BundleError::UntrustedSigner { .. }), "{e:?}");
    let e = open(&bytes, TrustAnchor::Key(other.public()), now, 3600).unwrap_err();
    assert!(matches!(e, BundleError::UntrustedSigner { .. }), "{e:?}");
    // Too old.
    let e = open(&bytes, anchor, now + 5, 0).unwrap_err();
    match e {
        BundleError::TooOld { age, max } => {
            assert!(age >= 5, "{age}");
            assert_eq!(max, 0);
        }
        other => panic!("expected TooOld, got {other:?}"),
    }

    // The binary, offline.
    let file = dir.path().join("guangdong.bundle");
    std::fs::write(&file, &bytes).unwrap();
    let f = file.to_str().unwrap();
    let o = hcmr_bin(&["verify", "--offline", f, "--trust", &gd_kid, &yellow.code]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("RECOGNIZED") && out.contains("RED"), "{out}");
    let o = hcmr_bin(&["verify", "--offline", f, "--trust", &gd_kid, &revoked.code]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("NOT RECOGNIZED") && out.contains("REASON_REVOKED"),
        "{out}"
    );
    let mut t = bytes.clone();
    t[start + 10] ^= 0x01;
    let tampered = dir.path().join("tampered.bundle");
    std::fs::write(&tampered, &t).unwrap();
    let o = hcmr_bin(&[
        "verify",
        "--offline",
        tampered.to_str().unwrap(),
        "--trust",
        &gd_kid,
        &yellow.code,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert_ne!(
        o.status.code(),
        Some(3),
        "not a verdict: the bundle is refused"
    );
    assert!(err.contains("signature does not verify"), "{err}");
    assert!(o.stdout.is_empty(), "no verdict printed");
    let o = hcmr_bin(&[
        "verify",
        "--offline",
        f,
        "--trust",
        &other.kid().to_string(),
        &yellow.code,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(err.contains("not by the trusted key"), "{err}");
}

/// Issue 15 fault 4: a code signed by an unrelated key with Sichuan's kid, whose masked name
/// moves the cursor up, erases the verdict lines and writes "RECOGNIZED  counts here as GREEN".
/// `hcmr verify`, online and `--offline`, must not pass the control characters to the terminal,
/// and must not show the subject of a code whose signature failed as the person's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_subject_text_never_reaches_the_terminal() {
    use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder};
    use hcmr::code::{transport, Claims, Subject};
    use hcmr::identity::DocumentType;

    const FORGED: &str = "\x1b[1A\x1b[2K\x1b[1A\x1b[2K\rRECOGNIZED  counts here as GREEN";
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let sc_kid = hex::decode(kid_of(&sc).await).unwrap();
    let now = hcmr::unix_now();
    let mut claims = Claims {
        iss: SICHUAN.to_string(),
        iat: now - 10,
        exp: now + 300,
        status: 1,
        status_valid_until: now + 86_400,
        subject: Subject {
            masked_name: FORGED.into(),
            document_type: DocumentType::from_u64(1).unwrap(),
            masked_document_number: "5101*\u{202e}4321".into(),
            subject_hash: SubjectHash([7; 8]),
        },
    };
    let stranger = NodeKey::from_seed(&[0x99; 32]);
    let forge = |claims: &Claims| {
        let cose = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::EdDSA)
                    .key_id(sc_kid.clone())
                    .build(),
            )
            .payload(claims.to_cbor())
            .create_signature(b"", |tbs| stranger.sign(tbs).to_vec())
            .build()
            .to_vec()
            .unwrap();
        transport::wrap(&cose)
    };
    let forged = forge(&claims);
    // The same verdict text without control characters: it decodes, and fails the signature.
    claims.subject.masked_name = "RECOGNIZED  counts here as GREEN".into();
    claims.subject.masked_document_number = "5101*4321".into();
    let plain = forge(&claims);

    let check = |o: std::process::Output, how: &str| {
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(3), "{how}: {out} {err}");
        for text in [&out, &err] {
            assert!(
                !text.contains(['\x1b', '\r', '\u{202e}']),
                "{how}: {text:?}"
            );
        }
        assert!(out.starts_with("NOT RECOGNIZED  REASON_"), "{how}: {out}");
        assert!(!out.contains("RECOGNIZED  counts here"), "{how}: {out}");
        assert!(!out.contains("5101*"), "{how}: {out}");
    };
    // Online, at Guangdong.
    check(
        cli(&gd).args(["verify", &forged]).output().unwrap(),
        "online",
    );
    // Offline, with Guangdong's bundle.
    let exported = operator(&gd)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    let file = dir.path().join("gd.bundle");
    std::fs::write(&file, &exported.bundle).unwrap();
    let gd_kid = hex::encode(&exported.kid);
    check(
        hcmr_bin(&[
            "verify",
            "--offline",
            file.to_str().unwrap(),
            "--trust",
            &gd_kid,
            &forged,
        ]),
        "offline",
    );
    // The control characters make the code malformed (issue 15 fault 8: no text claim carries
    // one); the plain forgery is a bad signature, and its subject is not shown as the person's.
    let out = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let o = cli(&gd).args(["verify", &forged]).output().unwrap();
    assert!(out(o).contains("REASON_MALFORMED"));
    for o in [
        cli(&gd).args(["verify", &plain]).output().unwrap(),
        hcmr_bin(&[
            "verify",
            "--offline",
            file.to_str().unwrap(),
            "--trust",
            &gd_kid,
            &plain,
        ]),
    ] {
        assert_eq!(o.status.code(), Some(3));
        let out = out(o);
        assert!(out.contains("REASON_BAD_SIGNATURE"), "{out}");
        assert!(
            out.contains("  subject:       not shown: the signature did not verify"),
            "{out}"
        );
        assert!(out.contains("  issued status: green (unverified)"), "{out}");
        assert!(!out.contains("counts here as GREEN"), "{out}");
    }
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// Issue 14 fault 3: `hcmr agreement propose --amends ID` with only the term that changes (no
/// --peer, --peer-kid, --peer-codes): the other terms are those of the version in force, the
/// changed term is printed before the proposal is sent, and the peer accepts version 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_starts_from_the_terms_in_force_and_shows_what_changes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G), (Y, R)], &[(G, G)]).await;
    let v1 = version(&agreements(&gd).await, &id, 1);

    // A new agreement without its terms is a usage error naming what is missing.
    let out = cli(&gd).args(["agreement", "propose"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a new agreement needs --peer, --peer-kid, --peer-codes, --our-codes"),
        "{out:?}"
    );

    let out = cli(&gd)
        .args([
            "agreement",
            "propose",
            "--amends",
            &id,
            "--our-codes",
            "green=green,yellow=yellow",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let changes: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("amending agreement"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        changes,
        ["  our codes there (--our-codes): green=green -> green=green,yellow=yellow"],
        "{stdout}"
    );
    let v2 = version(&agreements(&gd).await, &id, 2);
    assert_eq!(v2.state, AgreementState::Proposed as i32);
    let terms = |v: &proto::AgreementView, issuer: &str| {
        let d = v
            .directions
            .iter()
            .find(|d| d.issuer_province == issuer)
            .unwrap()
            .clone();
        (
            d.status_map
                .iter()
                .map(|m| (m.issued, m.counts_as))
                .collect::<Vec<_>>(),
            d.max_code_age_secs,
            d.effective_from,
            d.effective_until,
            d.max_trust_age_secs,
        )
    };
    // Guangdong's view of Sichuan's codes: unchanged; of its own codes at Sichuan: the new map.
    assert_eq!(terms(&v2, "510000"), terms(&v1, "510000"));
    let (map2, age2, from2, until2, trust2) = terms(&v2, "440000");
    let (_, age1, from1, until1, trust1) = terms(&v1, "440000");
    assert_eq!(map2, [(G, G), (Y, Y)]);
    assert_eq!((age2, from2, until2, trust2), (age1, from1, until1, trust1));
    operator(&sc)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(
        version(&agreements(&gd).await, &id, 2).state,
        AgreementState::Concluded as i32
    );
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// Issue 14 fault 20: during a proposal both sides' `agreement list` say who acts next; after
/// an immediate termination a code of the peer is refused as terminated and the answer still
/// says when the peer's trust state was last synced (not "never synced").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_proposals_say_who_acts_next_and_a_terminated_peer_keeps_its_sync_time() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let now = hcmr::unix_now();
    let created = operator(&gd)
        .await
        .create_agreement(create_req(&sc, kid_of(&sc).await, &[(G, G)], &[(G, G)], ""))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    let id = created.id.clone();
    let list = |n: &NodeHandle| {
        let out = cli(n).args(["agreement", "list"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let at_gd = list(&gd);
    assert!(
        at_gd.contains(&format!(
            "    next: 510000 accepts it (or this node withdraws it: hcmr agreement withdraw {id})"
        )),
        "{at_gd}"
    );
    let at_sc = list(&sc);
    assert!(
        at_sc.contains(&format!(
            "    next: this node's operator accepts it (hcmr agreement accept {id}) or rejects it (hcmr agreement reject {id}); 440000 waits"
        )),
        "{at_sc}"
    );
    operator(&sc)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.clone() })
        .await
        .unwrap();
    assert!(!list(&sc).contains("next:"));

    let synced = sync_now(&sc).await;
    assert!(synced[0].ok, "{synced:?}");
    let code = issue(&gd, subject("张三", "440104", 1), G, 600).await.code;
    operator(&sc)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap();
    let v = verify(&sc, &code).await;
    assert_eq!(v.reason, Reason::AgreementTerminated as i32, "{v:?}");
    assert!(v.issuer_state_synced, "{v:?}");
    assert!(v.issuer_state_synced_at >= now, "{v:?}");
    let out = cli(&sc).args(["verify", &code]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("issuer state:  synced "), "{stdout}");
    assert!(!stdout.contains("never synced"), "{stdout}");
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}
