//! The known-answer entry and every chain rule ([`FeedError`] variant), rotations and withdrawals.

use super::*;

// ---------------------------------------------------------------------------------------------
// Known answer
// ---------------------------------------------------------------------------------------------

#[test]
fn genesis_known_answer() {
    let k = key(0x11);
    assert_eq!(hex::encode(k.public().to_bytes()), KAT_PUBLIC);
    let e = FeedEntry::sign(
        sc(),
        None,
        UnixTime::from_secs(1_700_000_000),
        Statement::Genesis { key: k.public() },
        &k,
    );
    assert_eq!(hex::encode(e.encoded()), KAT_ENTRY);
    assert_eq!(e.encoded().len(), 93);
    assert_eq!(hex::encode(e.hash()), KAT_HASH);
    assert_eq!(hex::encode(e.signature()), KAT_SIGNATURE);
    assert_eq!(e.signer().to_string(), KAT_KID);
    assert_eq!(
        (e.seq(), e.time(), e.province()),
        (1, UnixTime::from_secs(1_700_000_000), sc())
    );

    // The vector decodes to the same entry and applies.
    let sig: [u8; 64] = hex::decode(KAT_SIGNATURE).unwrap().try_into().unwrap();
    let kid = Kid::from_hex(KAT_KID).unwrap();
    let d = FeedEntry::from_parts(hex::decode(KAT_ENTRY).unwrap(), kid, sig).unwrap();
    assert_eq!(d, e);
    let s = state_of(&[d]);
    assert_eq!(s.last_seq(), 1);
    assert_eq!(
        s.last_hash,
        <[u8; 32]>::try_from(hex::decode(KAT_HASH).unwrap()).unwrap()
    );
}

#[test]
fn next_entry_links_to_the_hash_of_the_previous() {
    let k = key(0x11);
    let g = genesis(&k);
    let e = next(&g, 10, revoke_code(&[1; 16]), &k);
    assert_eq!(e.seq(), 2);
    assert_eq!(e.prev, g.hash());
    // prev sits after array(7), "hcmr-feed", 1, 510000, seq 2 and the bytes(32) header.
    assert_eq!(&e.encoded()[20..52], &g.hash());
}

// ---------------------------------------------------------------------------------------------
// Chain rules
// ---------------------------------------------------------------------------------------------

#[test]
fn genesis_starts_the_chain() {
    let k = key(1);
    let s = state_of(&[genesis(&k)]);
    assert_eq!(s.province(), sc());
    assert_eq!(s.last_seq(), 1);
    assert_eq!(
        s.keys(),
        &[KeyState {
            key: k.public(),
            retired_at: None,
            withdrawn_at: None
        }]
    );
    assert_eq!(s.current_key(), Some(&k.public()));
    assert_eq!(FeedState::new(sc()).current_key(), None);
}

#[test]
fn seq_1_must_be_a_genesis_entry() {
    let k = key(1);
    let first = FeedEntry::sign(sc(), None, T0, revoke_code(&[1; 16]), &k);
    refused(&mut FeedState::new(sc()), &first, FeedError::BadGenesis(1));
    let rot = FeedEntry::sign(
        sc(),
        None,
        T0,
        Statement::KeyRotation {
            key: key(2).public(),
            pop: proof_of_possession(sc(), &key(2)),
        },
        &k,
    );
    refused(&mut FeedState::new(sc()), &rot, FeedError::BadGenesis(1));
}

#[test]
fn a_second_genesis_is_refused() {
    let k = key(1);
    let g = genesis(&k);
    let mut s = state_of(std::slice::from_ref(&g));
    // Even for the same key, and even by a new key signing for itself.
    refused(
        &mut s,
        &next(&g, 1, Statement::Genesis { key: k.public() }, &k),
        FeedError::BadGenesis(2),
    );
    let other = key(2);
    refused(
        &mut s,
        &next(
            &g,
            1,
            Statement::Genesis {
                key: other.public(),
            },
            &other,
        ),
        FeedError::BadGenesis(2),
    );
}

#[test]
fn genesis_must_be_signed_by_its_own_key() {
    let (k, other) = (key(1), key(2));
    let g = FeedEntry::sign(
        sc(),
        None,
        T0,
        Statement::Genesis { key: k.public() },
        &other,
    );
    refused(&mut FeedState::new(sc()), &g, FeedError::BadSignature(1));
    refused(
        &mut FeedState::new(sc()),
        &with_flipped_signature(&genesis(&k), 0),
        FeedError::BadSignature(1),
    );
}

#[test]
fn a_skipped_or_repeated_seq_is_a_gap() {
    let k = key(1);
    let g = genesis(&k);
    let e2 = next(&g, 1, revoke_code(&[2; 16]), &k);
    let e3 = next(&e2, 2, revoke_code(&[3; 16]), &k);
    let mut s = state_of(std::slice::from_ref(&g));
    refused(
        &mut s,
        &e3,
        FeedError::Gap {
            expected: 2,
            got: 3,
        },
    );
    refused(
        &mut s,
        &g,
        FeedError::Gap {
            expected: 2,
            got: 1,
        },
    );
    // A chain that starts later than 1 is a gap too, not a genesis error.
    refused(
        &mut FeedState::new(sc()),
        &e2,
        FeedError::Gap {
            expected: 1,
            got: 2,
        },
    );
    s.apply(&e2).unwrap();
    s.apply(&e3).unwrap();
    assert_eq!(s.last_seq(), 3);
}

#[test]
fn a_wrong_prev_breaks_the_chain() {
    let k = key(1);
    let g = genesis(&k);
    // Entry 2 of another history (a genesis one second later).
    let g_other = FeedEntry::sign(
        sc(),
        None,
        T0 + 1,
        Statement::Genesis { key: k.public() },
        &k,
    );
    let fork = next(&g_other, 5, revoke_code(&[2; 16]), &k);
    assert_eq!(fork.seq(), 2);
    let mut s = state_of(&[g]);
    refused(&mut s, &fork, FeedError::BrokenChain(2));
}

#[test]
fn an_entry_of_another_province_is_refused() {
    let k = key(1);
    let gd = FeedEntry::sign(
        prov(GD),
        None,
        T0,
        Statement::Genesis { key: k.public() },
        &k,
    );
    refused(
        &mut FeedState::new(sc()),
        &gd,
        FeedError::WrongProvince {
            want: sc(),
            got: prov(GD),
        },
    );
    state_of(&[genesis(&k)]); // the same statement for the right province applies
}

#[test]
fn a_flipped_signature_byte_is_refused() {
    let k = key(1);
    let g = genesis(&k);
    let e2 = next(&g, 1, revoke_code(&[2; 16]), &k);
    let mut s = state_of(&[g]);
    for byte in [0, 31, 32, 63] {
        refused(
            &mut s,
            &with_flipped_signature(&e2, byte),
            FeedError::BadSignature(2),
        );
    }
    s.apply(&e2).unwrap();
}

#[test]
fn an_entry_signed_by_a_key_not_in_the_chain_is_refused() {
    let (k, stranger) = (key(1), key(9));
    let g = genesis(&k);
    let mut s = state_of(std::slice::from_ref(&g));
    refused(
        &mut s,
        &next(&g, 1, revoke_code(&[2; 16]), &stranger),
        FeedError::BadSignature(2),
    );
    // Nor may a stranger rotate itself in.
    refused(
        &mut s,
        &rotation(&g, 1, &stranger, &stranger),
        FeedError::BadSignature(2),
    );
    // The stranger's signature under the chain key's kid does not verify either.
    let forged = next(&g, 1, revoke_code(&[2; 16]), &stranger);
    let forged =
        FeedEntry::from_parts(forged.encoded().to_vec(), k.kid(), *forged.signature()).unwrap();
    refused(&mut s, &forged, FeedError::BadSignature(2));
}

#[test]
fn rotation_retires_the_old_key_at_the_rotation_time() {
    let (old, new) = (key(1), key(2));
    let g = genesis(&old);
    let r = rotation(&g, 3_600, &old, &new);
    let mut s = state_of(&[g, r.clone()]);
    assert_eq!(
        s.keys(),
        &[
            KeyState {
                key: old.public(),
                retired_at: Some(T0 + 3_600),
                withdrawn_at: None
            },
            KeyState {
                key: new.public(),
                retired_at: None,
                withdrawn_at: None
            },
        ]
    );
    assert_eq!(s.keys()[0].retired_at, Some(r.time()));
    assert_eq!(s.current_key(), Some(&new.public()));
    // The old key can no longer sign entries; the new one does.
    refused(
        &mut s,
        &next(&r, 3_601, revoke_code(&[3; 16]), &old),
        FeedError::BadSignature(3),
    );
    s.apply(&next(&r, 3_601, revoke_code(&[3; 16]), &new))
        .unwrap();
    assert_eq!(s.last_seq(), 3);
}

#[test]
fn rotation_twice_retires_each_key_in_turn() {
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let g = genesis(&k1);
    let r1 = rotation(&g, 10, &k1, &k2);
    let r2 = rotation(&r1, 20, &k2, &k3);
    let mut s = state_of(&[g, r1, r2.clone()]);
    let retired: Vec<_> = s.keys().iter().map(|k| k.retired_at).collect();
    assert_eq!(retired, [Some(T0 + 10), Some(T0 + 20), None]);
    assert_eq!(s.current_key(), Some(&k3.public()));
    refused(
        &mut s,
        &next(&r2, 30, revoke_code(&[4; 16]), &k1),
        FeedError::BadSignature(4),
    );
    refused(
        &mut s,
        &next(&r2, 30, revoke_code(&[4; 16]), &k2),
        FeedError::BadSignature(4),
    );
}

#[test]
fn rotation_needs_the_new_keys_proof_of_possession() {
    let (old, new) = (key(1), key(2));
    let g = genesis(&old);
    let mut s = state_of(std::slice::from_ref(&g));
    let good = proof_of_possession(sc(), &new);
    let mut flipped = good;
    flipped[10] ^= 0x80;
    let bad_pops = [
        flipped,
        // Signed by the old key, not the new one.
        proof_of_possession(sc(), &old),
        // The new key's proof for another province.
        proof_of_possession(prov(GD), &new),
        [0u8; 64],
    ];
    for pop in bad_pops {
        let e = next(
            &g,
            1,
            Statement::KeyRotation {
                key: new.public(),
                pop,
            },
            &old,
        );
        refused(&mut s, &e, FeedError::BadRotation(2));
    }
    s.apply(&next(
        &g,
        1,
        Statement::KeyRotation {
            key: new.public(),
            pop: good,
        },
        &old,
    ))
    .unwrap();
}

#[test]
fn rotation_to_a_key_already_in_the_chain_is_refused() {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    // To itself.
    refused(
        &mut state_of(std::slice::from_ref(&g)),
        &rotation(&g, 1, &k1, &k1),
        FeedError::BadRotation(2),
    );
    // Back to a retired key.
    let r = rotation(&g, 1, &k1, &k2);
    let mut s = state_of(&[g, r.clone()]);
    refused(
        &mut s,
        &rotation(&r, 2, &k2, &k1),
        FeedError::BadRotation(3),
    );
}

#[test]
fn the_only_active_key_cannot_be_withdrawn() {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    let w = next(&g, 1, Statement::KeyWithdrawal { key: k1.public() }, &k1);
    refused(
        &mut state_of(std::slice::from_ref(&g)),
        &w,
        FeedError::BadWithdrawal(2),
    );
    // Nor the new current key after a rotation.
    let r = rotation(&g, 1, &k1, &k2);
    let mut s = state_of(&[g, r.clone()]);
    let w = next(&r, 2, Statement::KeyWithdrawal { key: k2.public() }, &k2);
    refused(&mut s, &w, FeedError::BadWithdrawal(3));
    // Nor a key that is not in the chain.
    let w = next(
        &r,
        2,
        Statement::KeyWithdrawal {
            key: key(9).public(),
        },
        &k2,
    );
    refused(&mut s, &w, FeedError::BadWithdrawal(3));
}

#[test]
fn a_retired_key_can_be_withdrawn_and_then_signs_nothing() {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    let r = rotation(&g, 100, &k1, &k2);
    let w = next(&r, 200, Statement::KeyWithdrawal { key: k1.public() }, &k2);
    let mut s = state_of(&[g, r, w.clone()]);
    assert_eq!(
        s.keys()[0],
        KeyState {
            key: k1.public(),
            retired_at: Some(T0 + 100),
            withdrawn_at: Some(T0 + 200)
        }
    );
    assert_eq!(s.keys()[0].withdrawn_at, Some(w.time()));
    assert_eq!(s.keys()[1].withdrawn_at, None);
    assert_eq!(s.current_key(), Some(&k2.public()));
    // The withdrawn key cannot sign, nor be withdrawn twice.
    refused(
        &mut s,
        &next(&w, 300, revoke_code(&[4; 16]), &k1),
        FeedError::BadSignature(4),
    );
    refused(
        &mut s,
        &next(&w, 300, Statement::KeyWithdrawal { key: k1.public() }, &k2),
        FeedError::BadWithdrawal(4),
    );
    s.apply(&next(&w, 300, revoke_code(&[4; 16]), &k2)).unwrap();
}

#[test]
fn a_withdrawal_by_the_withdrawn_key_itself_is_refused() {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    let r = rotation(&g, 100, &k1, &k2);
    let mut s = state_of(&[g, r.clone()]);
    // k1 is retired: it can no longer sign, not even its own withdrawal.
    let w = next(&r, 200, Statement::KeyWithdrawal { key: k1.public() }, &k1);
    refused(&mut s, &w, FeedError::BadSignature(3));
}
