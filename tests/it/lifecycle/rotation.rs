//! Key rotation: a rotated key is recognized after sync, a withdrawn one is not, and the
//! rotation survives a restart.

use super::*;
use hcmr::keyfile::NodeKeyFile as _;

// 2. Key rotation and withdrawal.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_recognized_after_sync_withdrawn_key_is_not_and_rotation_persists() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // What arrives here arrives by SyncNow (no feed watch).
    no_peer_watch(&gd_cfg);
    // Both nodes read one manual clock, which the test moves instead of sleeping; it starts after
    // `init`, which dates each feed's first entry by the system clock.
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let gd = start_on(&gd_cfg, &clock).await;
    pin_listen(&sc_cfg, &sc);
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
    claims.iat = clock.now() + 1;
    claims.exp = claims.iat + 600;
    let late = hcmr::code::encode(&claims, &old_key);
    let v = verify(&gd, &late).await;
    assert_eq!(outcome(&v), refused(Reason::KeyRetired), "{v:?}");
    assert!(v.signature_verified);

    // The short-lived old code was recognized until its exp, and only then ran out.
    // (The manual clock shows both sides of the edge: recognized at exp - 1, expired at exp.)
    clock.set(hcmr::UnixTime::from_secs(old_short.exp - 1));
    let v = verify(&gd, &old_short.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "a second before exp: {v:?}");
    clock.set(hcmr::UnixTime::from_secs(old_short.exp));
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
    let sc = start_on(&sc_cfg, &clock).await;
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

/// Forged rotation statements are refused by `FeedState::apply`, and nothing is applied (after a
/// real rotation at Sichuan, whose feed Guangdong fetches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_rotation_statements_are_refused_and_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let scp = province(SICHUAN);
    let key_file = node_dir(dir.path(), SICHUAN).join("node.key");
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let old_kid = kid_of(&sc).await;
    let rot = operator(&sc)
        .await
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let new_kid = hex::encode(&rot.new_key.unwrap().kid);
    let retired_file = node_dir(dir.path(), SICHUAN).join(format!("node.key.{old_kid}.retired"));
    let old_key = NodeKey::read_pem(&retired_file).unwrap();

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

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}
