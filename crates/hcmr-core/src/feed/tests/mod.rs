//! Tests of the trust feed: a known-answer vector for the entry encoding, every chain rule
//! ([`FeedError`] variant), all-or-nothing batches, revocation semantics, the anchor check, the
//! storage record and decoding of hostile bytes. Keys are seeded, times fixed.

use proptest::prelude::*;

use super::*;

const SC: u32 = 510000;
const GD: u32 = 440000;
/// The genesis time of every test chain: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;

fn prov(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

fn sc() -> Province {
    prov(SC)
}

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed(&[n; 32])
}

/// The genesis entry of Sichuan's feed for `k`, at `T0`.
fn genesis(k: &NodeKey) -> FeedEntry {
    FeedEntry::sign(sc(), None, T0, Statement::Genesis { key: k.public() }, k)
}

/// The entry after `prev`, made `dt` seconds after `T0`.
fn next(prev: &FeedEntry, dt: u64, statement: Statement, k: &NodeKey) -> FeedEntry {
    FeedEntry::sign(sc(), Some(prev), T0 + dt, statement, k)
}

/// A rotation from `old` to `new` after `prev` (with `new`'s valid proof of possession).
fn rotation(prev: &FeedEntry, dt: u64, old: &NodeKey, new: &NodeKey) -> FeedEntry {
    let statement = Statement::KeyRotation {
        key: new.public(),
        pop: proof_of_possession(sc(), new),
    };
    next(prev, dt, statement, old)
}

fn revoke_code(cti: &[u8; 16]) -> Statement {
    Statement::RevokeCode { cti: *cti }
}

/// The state after applying `entries` one by one (each must apply).
fn state_of(entries: &[FeedEntry]) -> FeedState {
    let mut s = FeedState::new(sc());
    for e in entries {
        s.apply(e)
            .unwrap_or_else(|err| panic!("entry {}: {err}", e.seq()));
    }
    s
}

/// `entry` with one bit of its signature flipped.
fn with_flipped_signature(entry: &FeedEntry, byte: usize) -> FeedEntry {
    let mut sig = *entry.signature();
    sig[byte] ^= 0x01;
    FeedEntry::from_parts(entry.encoded().to_vec(), entry.signer(), sig).unwrap()
}

/// Asserts that applying `entry` fails with `want` and leaves the state as it was.
fn refused(state: &mut FeedState, entry: &FeedEntry, want: FeedError) {
    let before = state.clone();
    assert_eq!(state.apply(entry), Err(want));
    assert_eq!(*state, before, "a refused entry must not change the state");
}

// ---------------------------------------------------------------------------------------------
// Known answer
// ---------------------------------------------------------------------------------------------

/// Public key of seed 32 x 0x11 (RFC 8032), computed independently (Python `cryptography`).
const KAT_PUBLIC: &str = "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737";

/// The genesis entry of province 510000 at 1700000000 for that key, written out by hand from the
/// CDDL in the module documentation (RFC 8949 preferred serialization):
const KAT_ENTRY: &str = concat!(
    "87",                                                               // array(7): the entry
    "69",                                                               //   text(9)
    "68636d722d66656564",                                               //     "hcmr-feed"
    "01",                                                               //   uint 1: format
    "1a0007c830", //   uint 510000 = 0x0007c830 (4-byte form: > 65535)
    "01",         //   uint 1: seq
    "5820",       //   bytes(32): prev
    "0000000000000000000000000000000000000000000000000000000000000000", // all zero for seq 1
    "1a6553f100", //   uint 1700000000 = 0x6553f100: time
    "82",         //   array(2): the statement
    "00",         //     uint 0: genesis
    "5820",       //     bytes(32): the key
    "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737",
);
/// SHA-256 of `KAT_ENTRY` (the next entry's `prev`), computed independently.
const KAT_HASH: &str = "e9ab70afa25434780ae2e77286eef9d382daa1f7b097030a6fb3464888944693";
/// Ed25519 over "hcmr-feed-v1\0" || `KAT_ENTRY` with seed 32 x 0x11, computed independently.
const KAT_SIGNATURE: &str = concat!(
    "6ce994926048b6c6647e0ad8d708445cb1663b2f9739010533005a909ace110e",
    "e99cb44976d46eb99b937c82804acee08ac126d820b33380102370a3bc473a07",
);
/// SHA-256(key)[0..8].
const KAT_KID: &str = "10ba682c8ad13513";

#[test]
fn genesis_known_answer() {
    let k = key(0x11);
    assert_eq!(hex::encode(k.public().to_bytes()), KAT_PUBLIC);
    let e = FeedEntry::sign(
        sc(),
        None,
        1_700_000_000,
        Statement::Genesis { key: k.public() },
        &k,
    );
    assert_eq!(hex::encode(e.encoded()), KAT_ENTRY);
    assert_eq!(e.encoded().len(), 93);
    assert_eq!(hex::encode(e.hash()), KAT_HASH);
    assert_eq!(hex::encode(e.signature()), KAT_SIGNATURE);
    assert_eq!(e.signer().to_string(), KAT_KID);
    assert_eq!((e.seq(), e.time(), e.province()), (1, 1_700_000_000, sc()));

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

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

#[test]
fn apply_all_is_all_or_nothing() {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    let mut s = state_of(std::slice::from_ref(&g));
    let before = s.clone();

    let e2 = rotation(&g, 10, &k1, &k2);
    let e3 = next(&e2, 20, revoke_code(&[3; 16]), &k2);
    let e4 = next(&e3, 30, revoke_code(&[4; 16]), &k2);
    // The 3rd entry of the batch (seq 4) has a bad signature; the first two are sound.
    let batch = [e2.clone(), e3.clone(), with_flipped_signature(&e4, 5)];
    assert_eq!(s.apply_all(&batch), Err(FeedError::BadSignature(4)));
    assert_eq!(s, before);
    assert_eq!(s.current_key(), Some(&k1.public()));
    assert!(!s.is_revoked(&[3; 16], &SubjectHash([0; 8]), 0));

    // Other faults in 3rd place: a gap, and a signature by the key the batch itself retired.
    let e5 = next(&e4, 40, revoke_code(&[5; 16]), &k2);
    assert_eq!(
        s.apply_all(&[e2.clone(), e3.clone(), e5.clone()]),
        Err(FeedError::Gap {
            expected: 4,
            got: 5
        })
    );
    assert_eq!(s, before);
    let by_old = next(&e3, 30, revoke_code(&[4; 16]), &k1);
    assert_eq!(
        s.apply_all(&[e2.clone(), e3.clone(), by_old]),
        Err(FeedError::BadSignature(4))
    );
    assert_eq!(s, before);

    // The sound batch applies whole.
    s.apply_all(&[e2, e3, e4, e5]).unwrap();
    assert_eq!(s.last_seq(), 5);
    assert_eq!(s.current_key(), Some(&k2.public()));
    assert_eq!(s.revocation_count(), 3);
    // An empty batch changes nothing.
    let after = s.clone();
    s.apply_all(std::iter::empty::<&FeedEntry>()).unwrap();
    assert_eq!(s, after);
}

// ---------------------------------------------------------------------------------------------
// Revocations
// ---------------------------------------------------------------------------------------------

#[test]
fn a_revoked_code_is_revoked_whatever_its_subject_and_time() {
    let k = key(1);
    let g = genesis(&k);
    let cti = [0xc7; 16];
    let s = state_of(&[g.clone(), next(&g, 1, revoke_code(&cti), &k)]);
    for (subject, iat) in [([0u8; 8], 0), ([0xa5; 8], T0), ([0xff; 8], u64::MAX)] {
        assert!(s.is_revoked(&cti, &SubjectHash(subject), iat));
    }
    assert!(!s.is_revoked(&[0xc8; 16], &SubjectHash([0xa5; 8]), T0));
    assert!(!s.is_revoked(&cti[..15], &SubjectHash([0xa5; 8]), T0));
    assert_eq!(s.revocation_count(), 1);
}

#[test]
fn a_subject_revocation_covers_codes_issued_strictly_before() {
    let k = key(1);
    let g = genesis(&k);
    let subject = SubjectHash([0xa5; 8]);
    let before = T0 + 1_000;
    let s = state_of(&[
        g.clone(),
        next(
            &g,
            2_000,
            Statement::RevokeSubject {
                subject_hash: subject,
                before,
            },
            &k,
        ),
    ]);
    let cti = [1u8; 16];
    assert!(s.is_revoked(&cti, &subject, 0));
    assert!(s.is_revoked(&cti, &subject, before - 1));
    assert!(!s.is_revoked(&cti, &subject, before));
    assert!(!s.is_revoked(&cti, &subject, before + 1));
    assert!(!s.is_revoked(&cti, &SubjectHash([0xa6; 8]), 0));
}

#[test]
fn two_subject_revocations_keep_the_later_time() {
    let k = key(1);
    let g = genesis(&k);
    let subject = SubjectHash([0xa5; 8]);
    let (early, late) = (T0 + 100, T0 + 500);
    let rs = |before| Statement::RevokeSubject {
        subject_hash: subject,
        before,
    };
    let e2 = next(&g, 1, rs(early), &k);
    let e3 = next(&e2, 2, rs(late), &k);
    let s = state_of(&[g.clone(), e2, e3]);
    // Later revocation in second place: it extends the first.
    assert!(s.is_revoked(&[1], &subject, late - 1));
    assert!(!s.is_revoked(&[1], &subject, late));
    assert_eq!(s.revocation_count(), 1);
    // Earlier revocation in second place: it does not shorten the first.
    let e2 = next(&g, 1, rs(late), &k);
    let e3 = next(&e2, 2, rs(early), &k);
    let s = state_of(&[g, e2, e3]);
    assert!(s.is_revoked(&[1], &subject, late - 1));
    assert!(!s.is_revoked(&[1], &subject, late));
}

// ---------------------------------------------------------------------------------------------
// Anchoring
// ---------------------------------------------------------------------------------------------

#[test]
fn contains_any_finds_a_pinned_genesis_or_rotated_in_key() {
    let (k1, k2, stranger) = (key(1), key(2), key(9));
    let g = genesis(&k1);
    let r = rotation(&g, 10, &k1, &k2);
    let w = next(&r, 20, Statement::KeyWithdrawal { key: k1.public() }, &k2);
    let s = state_of(&[g, r, w]);
    assert!(
        s.contains_any(&[k1.public()]),
        "pinned genesis key (even withdrawn)"
    );
    assert!(s.contains_any(&[k2.public()]), "pinned rotated-in key");
    assert!(s.contains_any(&[stranger.public(), k2.public()]));
    assert!(!s.contains_any(&[stranger.public()]));
    assert!(!s.contains_any(&[]));
    assert!(!FeedState::new(sc()).contains_any(&[k1.public()]));

    // A stranger's own chain for the province names only the stranger's keys.
    let forged = FeedEntry::sign(
        sc(),
        None,
        T0,
        Statement::Genesis {
            key: stranger.public(),
        },
        &stranger,
    );
    let f = state_of(&[forged]);
    assert!(!f.contains_any(&[k1.public(), k2.public()]));
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// One entry of every statement kind, in a valid chain.
fn every_statement() -> Vec<FeedEntry> {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    let r = rotation(&g, 1, &k1, &k2);
    let w = next(&r, 2, Statement::KeyWithdrawal { key: k1.public() }, &k2);
    let c = next(&w, 3, revoke_code(&[0xc7; 16]), &k2);
    let subject = Statement::RevokeSubject {
        subject_hash: SubjectHash([0xa5; 8]),
        before: u64::MAX,
    };
    let sub = next(&c, 4, subject, &k2);
    let many = next(
        &sub,
        5,
        Statement::RevokeCodes {
            ctis: vec![[1; 16], [2; 16], [3; 16]],
        },
        &k2,
    );
    vec![g, r, w, c, sub, many]
}

#[test]
fn records_and_parts_round_trip() {
    let chain = every_statement();
    state_of(&chain);
    for e in &chain {
        let rec = e.to_record();
        // [bstr entry, bstr .size 8 kid, bstr .size 64 signature]
        assert_eq!(rec[0], 0x83);
        assert_eq!(FeedEntry::from_record(&rec).unwrap(), *e);
        let parts =
            FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), *e.signature()).unwrap();
        assert_eq!(parts, *e);
        assert_eq!(parts.hash(), e.hash());
    }
    let g = &chain[0];
    let rec = g.to_record();
    assert_eq!(&rec[1..3], &[0x58, 93]);
    assert_eq!(&rec[3..96], g.encoded());
    assert_eq!(
        &rec[96..105],
        [&[0x48][..], &g.signer().0[..]].concat().as_slice()
    );
    assert_eq!(&rec[105..107], &[0x58, 0x40]);
    assert_eq!(&rec[107..], g.signature());
}

fn decode_err(bytes: Vec<u8>) -> FeedError {
    let g = genesis(&key(0x11));
    FeedEntry::from_parts(bytes, g.signer(), *g.signature()).unwrap_err()
}

fn is_decode(e: &FeedError) -> bool {
    matches!(e, FeedError::Decode(_))
}

#[test]
fn non_canonical_bytes_are_refused() {
    let kat = hex::decode(KAT_ENTRY).unwrap();
    let splice = |at: usize, len: usize, with: &[u8]| {
        let mut b = kat.clone();
        b.splice(at..at + len, with.iter().copied());
        b
    };
    let cases = [
        // seq 1 as a 1-byte-argument integer (0x18 0x01) instead of 0x01.
        splice(17, 1, &[0x18, 0x01]),
        // format 1 as 0x18 0x01.
        splice(11, 1, &[0x18, 0x01]),
        // province in the 8-byte form.
        splice(12, 5, &[0x1b, 0, 0, 0, 0, 0x00, 0x07, 0xc8, 0x30]),
        // time in the 8-byte form.
        splice(52, 5, &[0x1b, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]),
        // the statement type 0 as 0x18 0x00.
        splice(58, 1, &[0x18, 0x00]),
        // prev's length as a 2-byte argument.
        splice(18, 2, &[0x59, 0x00, 0x20]),
        // an indefinite-length outer array.
        [&[0x9f][..], &kat[1..], &[0xff]].concat(),
        // the magic as an indefinite-length text of two chunks.
        splice(
            1,
            10,
            &[&[0x7f, 0x64][..], b"hcmr", &[0x65], b"-feed", &[0xff]].concat(),
        ),
    ];
    for (i, bytes) in cases.into_iter().enumerate() {
        // Each decodes to the same values: only the re-encoding check refuses it.
        let want = FeedError::Decode("not in canonical encoding".into());
        assert_eq!(decode_err(bytes), want, "case {i}");
    }
    // The canonical bytes themselves decode.
    let g = genesis(&key(0x11));
    FeedEntry::from_parts(kat, g.signer(), *g.signature()).unwrap();
}

#[test]
fn trailing_and_truncated_bytes_are_refused() {
    let g = genesis(&key(0x11));
    let mut trailing = g.encoded().to_vec();
    trailing.push(0x00);
    assert!(is_decode(&decode_err(trailing)));
    let truncated = g.encoded()[..g.encoded().len() - 1].to_vec();
    assert!(is_decode(&decode_err(truncated)));
    assert!(is_decode(&decode_err(Vec::new())));

    let mut rec = g.to_record();
    rec.push(0xf6);
    assert!(is_decode(&FeedEntry::from_record(&rec).unwrap_err()));
    let rec = g.to_record();
    assert!(is_decode(
        &FeedEntry::from_record(&rec[..rec.len() - 1]).unwrap_err()
    ));
    // A record whose entry has trailing bytes (inside the bstr).
    let mut inner = g.encoded().to_vec();
    inner.push(0x00);
    let rec = crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(inner),
        Value::Bytes(g.signer().0.to_vec()),
        Value::Bytes(g.signature().to_vec()),
    ]));
    assert!(is_decode(&FeedEntry::from_record(&rec).unwrap_err()));
}

#[test]
fn malformed_fields_are_refused() {
    let g = genesis(&key(0x11));
    let entry = |fields: Vec<Value>| crate::cbor::encode(&Value::Array(fields));
    let base = || -> Vec<Value> {
        match crate::cbor::decode_exact(g.encoded()).unwrap() {
            Value::Array(a) => a,
            _ => unreachable!(),
        }
    };
    let set = |i: usize, v: Value| {
        let mut a = base();
        a[i] = v;
        entry(a)
    };
    let stmt = |items: Vec<Value>| set(6, Value::Array(items));
    let key32 = Value::Bytes(key(1).public().to_bytes().to_vec());
    const MAGIC_OR_FORMAT: &str = "not an hcmr feed entry of format 1";
    const KEY_POINT: &str = "not a valid Ed25519 public key (32 bytes, RFC 8032)";
    let cases: [(Vec<u8>, &str); 25] = [
        (set(0, Value::Text("hcmr-feeds".into())), MAGIC_OR_FORMAT),
        (set(1, uint(2)), MAGIC_OR_FORMAT),
        (
            set(2, uint(510001)),
            "province must be a GB/T 2260 province code",
        ), // not a GB/T 2260 province
        (
            set(2, uint(1u64 << 40)),
            "province must be a GB/T 2260 province code",
        ), // out of u32
        (
            set(3, Value::Integer(ciborium::value::Integer::from(-1))),
            "seq must be an unsigned integer",
        ),
        (set(4, Value::Bytes(vec![0; 31])), "prev must be 32 bytes"),
        (
            set(5, Value::Float(1.7e9)),
            "time must be an unsigned integer",
        ),
        (stmt(vec![uint(6), key32.clone()]), "unknown statement"),
        (stmt(vec![uint(0)]), "unknown statement"), // genesis without its key
        (
            stmt(vec![uint(0), Value::Bytes(vec![0; 33])]),
            "key must be 32 bytes",
        ),
        (stmt(vec![uint(0), Value::Bytes(vec![0; 32])]), KEY_POINT), // small order
        (
            stmt(vec![uint(1), key32.clone(), Value::Bytes(vec![0; 63])]),
            "pop must be 64 bytes",
        ),
        (
            stmt(vec![uint(3), Value::Bytes(Vec::new())]),
            "cti must be 16 bytes",
        ),
        (
            stmt(vec![uint(3), Value::Bytes(vec![1; 15])]),
            "cti must be 16 bytes",
        ),
        (
            stmt(vec![uint(3), Value::Bytes(vec![1; 65])]),
            "cti must be 16 bytes",
        ),
        // RevokeCodes: 1 to 4,096 ids of 16 bytes each, in an array.
        (
            stmt(vec![uint(5), Value::Array(Vec::new())]),
            "1 to 4096 ctis in one entry",
        ),
        (
            stmt(vec![
                uint(5),
                Value::Array(vec![Value::Bytes(vec![1; 16]); 4097]),
            ]),
            "1 to 4096 ctis in one entry",
        ),
        (
            stmt(vec![
                uint(5),
                Value::Array(vec![Value::Bytes(vec![1; 16]), Value::Bytes(vec![2; 17])]),
            ]),
            "every cti must be 16 bytes",
        ),
        (
            stmt(vec![uint(5), Value::Array(vec![uint(7)])]),
            "every cti must be 16 bytes",
        ),
        (stmt(vec![uint(5), key32.clone()]), "ctis must be an array"),
        (
            stmt(vec![
                uint(4),
                Value::Bytes(vec![0; 8]),
                Value::Integer(ciborium::value::Integer::from(-5)),
            ]),
            "before must be an unsigned integer",
        ),
        (
            stmt(vec![uint(4), Value::Bytes(vec![0; 7]), uint(1)]),
            "subject hash must be 8 bytes",
        ),
        (entry(base()[..6].to_vec()), MAGIC_OR_FORMAT),
        (entry([base(), vec![Value::Null]].concat()), MAGIC_OR_FORMAT),
        (
            crate::cbor::encode(&Value::Map(Vec::new())),
            "an entry must be an array",
        ),
    ];
    for (i, (bytes, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            decode_err(bytes),
            FeedError::Decode(want.into()),
            "case {i}"
        );
    }
    // Records: wrong shapes and sizes.
    let rec = |items: Vec<Value>| crate::cbor::encode(&Value::Array(items));
    let (e, kid, sig) = (
        Value::Bytes(g.encoded().to_vec()),
        Value::Bytes(g.signer().0.to_vec()),
        Value::Bytes(g.signature().to_vec()),
    );
    for r in [
        rec(vec![e.clone(), kid.clone()]),
        rec(vec![e.clone(), Value::Bytes(vec![0; 7]), sig.clone()]),
        rec(vec![e.clone(), kid.clone(), Value::Bytes(vec![0; 65])]),
        rec(vec![Value::Text("x".into()), kid, sig]),
    ] {
        assert!(is_decode(&FeedEntry::from_record(&r).unwrap_err()));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        kid in any::<[u8; 8]>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let sig: [u8; 64] = sig.try_into().unwrap();
        if let Ok(e) = FeedEntry::from_parts(bytes.clone(), Kid(kid), sig) {
            // Whatever decodes is canonical.
            prop_assert_eq!(e.encoded(), bytes.as_slice());
        }
        let _ = FeedEntry::from_record(&bytes);
    }

    #[test]
    fn cbor_shaped_bytes_never_panic(
        // Starting like an entry or a record makes the decoder go deeper than random bytes do.
        head in prop_oneof![Just(vec![0x87u8, 0x69]), Just(vec![0x83u8, 0x58]), Just(vec![0x9fu8])],
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let bytes = [head, tail].concat();
        let _ = FeedEntry::from_parts(bytes.clone(), Kid([0; 8]), [0; 64]);
        let _ = FeedEntry::from_record(&bytes);
    }

    #[test]
    fn any_change_to_a_signed_entry_is_refused(
        which in 0usize..5,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        // The chain and the state before each of its entries, made once.
        static FIXTURE: std::sync::OnceLock<(Vec<FeedEntry>, Vec<FeedState>)> =
            std::sync::OnceLock::new();
        let (chain, states) = FIXTURE.get_or_init(|| {
            let chain = every_statement();
            let states = (0..chain.len()).map(|n| state_of(&chain[..n])).collect();
            (chain, states)
        });
        let target = &chain[which];
        let mut bytes = target.encoded().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        // Decoding may fail; if it succeeds, the chain refuses the entry.
        if let Ok(e) = FeedEntry::from_parts(bytes, target.signer(), *target.signature()) {
            let mut s = states[which].clone();
            let before = s.clone();
            prop_assert!(s.apply(&e).is_err());
            prop_assert_eq!(s, before);
        }
    }
}

/// The general (reference) decoders: a CBOR `Value` and a re-encode, as before the fast reader.
fn general_parts(bytes: &[u8], e: &FeedEntry) -> Result<FeedEntry, FeedError> {
    FeedEntry::from_parts_general(bytes.to_vec(), e.signer(), *e.signature())
}

fn general_record(bytes: &[u8]) -> Result<FeedEntry, FeedError> {
    FeedEntry::from_record_general(bytes, FeedEntry::from_parts_general)
}

/// A chain with a RevokeCodes entry of the most ids one entry takes, besides every statement.
fn every_statement_and_a_full_revoke_codes() -> Vec<FeedEntry> {
    let mut chain = every_statement();
    let ctis: Vec<Cti> = (0..MAX_CTIS_PER_ENTRY as u32)
        .map(|i| {
            let mut c = [0x5a; 16];
            c[..4].copy_from_slice(&i.to_be_bytes());
            c
        })
        .collect();
    let last = chain.last().unwrap().clone();
    chain.push(next(&last, 6, Statement::RevokeCodes { ctis }, &key(2)));
    chain
}

#[test]
fn the_fast_reader_reads_every_statement_as_the_general_decoder_does() {
    let chain = every_statement_and_a_full_revoke_codes();
    state_of(&chain);
    for e in &chain {
        // The fast reader takes the canonical bytes (the general decoder is not consulted).
        let fast = wire::read_entry(e.encoded()).expect("canonical bytes take the fast path");
        assert_eq!(fast.province, e.province());
        assert_eq!(fast.seq, e.seq());
        assert_eq!(fast.prev, e.prev);
        assert_eq!(fast.time, e.time());
        assert_eq!(&fast.statement, e.statement());
        assert_eq!(general_parts(e.encoded(), e).unwrap(), *e);
        let rec = e.to_record();
        let (bytes, kid, sig) = wire::read_record(&rec).expect("canonical record");
        assert_eq!(
            (bytes, kid, &sig),
            (e.encoded(), e.signer().0, e.signature())
        );
        assert_eq!(FeedEntry::from_record(&rec).unwrap(), *e);
        assert_eq!(general_record(&rec).unwrap(), *e);
    }
    let Statement::RevokeCodes { ctis } = chain[6].statement() else {
        panic!("entry 7 is a RevokeCodes entry");
    };
    assert_eq!(ctis.len(), 4096);
    assert_eq!(ctis[4095][..4], [0, 0, 0x0f, 0xff]);
    assert_eq!(ctis[4095][4..], [0x5a; 12]);
}

#[test]
fn the_fast_reader_refuses_what_is_not_exactly_canonical() {
    let chain = every_statement_and_a_full_revoke_codes();
    let many = &chain[5]; // [5, [3 ctis]]
    let full = &chain[6];
    let enc = many.encoded();
    // Statement 5's id list as an indefinite-length array: the general decoder refuses it as not
    // canonical, and the fast reader leaves it to it.
    let at = enc.len() - 3 * 17 - 1;
    assert_eq!(enc[at], 0x83);
    let indefinite = [&enc[..at], &[0x9f], &enc[at + 1..], &[0xff]].concat();
    assert!(wire::read_entry(&indefinite).is_none());
    assert_eq!(
        FeedEntry::from_parts(indefinite.clone(), many.signer(), *many.signature()),
        Err(FeedError::Decode("not in canonical encoding".into()))
    );
    // The list's length in a longer form than needed (0x98 0x03 for 3).
    let long_len = [&enc[..at], &[0x98, 0x03], &enc[at + 1..]].concat();
    assert!(wire::read_entry(&long_len).is_none());
    assert_eq!(
        FeedEntry::from_parts(long_len, many.signer(), *many.signature()),
        Err(FeedError::Decode("not in canonical encoding".into()))
    );
    // One cti of 17 bytes in the full entry: refused by both.
    let f = full.encoded();
    let first_cti = f.len() - 4096 * 17;
    assert_eq!(f[first_cti], 0x50);
    let long_cti = [
        &f[..first_cti],
        &[0x51],
        &f[first_cti + 1..first_cti + 17],
        &[0],
        &f[first_cti + 17..],
    ]
    .concat();
    assert!(wire::read_entry(&long_cti).is_none());
    assert_eq!(
        FeedEntry::from_parts(long_cti, full.signer(), *full.signature()),
        Err(FeedError::Decode("every cti must be 16 bytes".into()))
    );
    // 4,097 ids: refused by both.
    let mut over = f.to_vec();
    let list = f.len() - 4096 * 17 - 3;
    assert_eq!(&over[list..list + 3], &[0x99, 0x10, 0x00]);
    over[list + 2] = 0x01;
    over.extend_from_slice(&[0x50; 17]);
    assert!(wire::read_entry(&over).is_none());
    assert_eq!(
        FeedEntry::from_parts(over, full.signer(), *full.signature()),
        Err(FeedError::Decode("1 to 4096 ctis in one entry".into()))
    );
    // A record with a non-canonical head (the kid's length as 0x58 0x08) is not the fast
    // reader's, and decodes through the general path as before.
    let rec = many.to_record();
    let kid_at = rec.len() - 9 - 66;
    assert_eq!(rec[kid_at], 0x48);
    let odd = [&rec[..kid_at], &[0x58, 0x08], &rec[kid_at + 1..]].concat();
    assert!(wire::read_record(&odd).is_none());
    assert_eq!(FeedEntry::from_record(&odd).unwrap(), *many);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The decoders with the fast reader decide exactly as the general ones, on changed, cut,
    /// lengthened and spliced entries and records of every statement.
    #[test]
    fn the_fast_reader_decides_as_the_general_decoder(
        which in 0usize..6,
        edits in proptest::collection::vec(
            (0u8..4, any::<prop::sample::Index>(), any::<u8>()), 1..4),
        on_record in any::<bool>(),
    ) {
        static CHAIN: std::sync::OnceLock<Vec<FeedEntry>> = std::sync::OnceLock::new();
        let chain = CHAIN.get_or_init(every_statement);
        let e = &chain[which];
        let mut bytes = if on_record { e.to_record() } else { e.encoded().to_vec() };
        for (op, at, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] ^= b.max(1),
                1 => bytes.insert(i, b),
                2 if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        if on_record {
            prop_assert_eq!(FeedEntry::from_record(&bytes), general_record(&bytes));
        } else {
            let got = FeedEntry::from_parts(bytes.clone(), e.signer(), *e.signature());
            prop_assert_eq!(got, general_parts(&bytes, e));
        }
    }
}

#[test]
fn an_entry_dated_before_the_previous_is_refused() {
    let k = key(1);
    let g = genesis(&k);
    let r = next(&g, 100, revoke_code(&[1; 16]), &k);
    let mut s = state_of(&[g, r.clone()]);
    // Signed correctly and linked, but dated before entry 2: retirement and withdrawal times
    // would no longer follow the order of the chain.
    let back = FeedEntry::sign(sc(), Some(&r), T0 + 99, revoke_code(&[2; 16]), &k);
    refused(&mut s, &back, FeedError::TimeWentBack(3));
    // The same time is fine.
    let same = FeedEntry::sign(sc(), Some(&r), T0 + 100, revoke_code(&[2; 16]), &k);
    s.apply(&same).unwrap();
}

#[test]
fn a_code_id_out_of_range_is_refused_before_it_is_stored() {
    // The decoder refuses such entries, so a node must never sign and store one.
    let k = key(1);
    let g = genesis(&k);
    let mut s = state_of(std::slice::from_ref(&g));
    for ctis in [Vec::new(), vec![[7u8; 16]; 4097]] {
        let e = next(&g, 1, Statement::RevokeCodes { ctis }, &k);
        refused(
            &mut s,
            &e,
            FeedError::BadStatement(2, "a RevokeCodes entry names 1 to 4096 code ids"),
        );
    }
}

/// The entry with its first signature byte flipped (links and content unchanged).
fn with_bad_signature(e: &FeedEntry) -> FeedEntry {
    let mut sig = *e.signature();
    sig[0] ^= 1;
    FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), sig).unwrap()
}

#[test]
fn a_revoke_codes_entry_revokes_every_id_it_names() {
    let k = key(1);
    let g = genesis(&k);
    let ctis: Vec<Cti> = (0..4096u16)
        .map(|i| {
            let mut c = [0u8; 16];
            c[..2].copy_from_slice(&i.to_be_bytes());
            c
        })
        .collect();
    let e = next(&g, 1, Statement::RevokeCodes { ctis: ctis.clone() }, &k);
    // 4,096 ids of 16 bytes, each a 17-byte CBOR bstr, plus the entry's other fields.
    assert!(e.encoded().len() > 4096 * 17);
    let s = state_of(&[g, e]);
    assert_eq!(s.revocation_count(), 4096);
    assert!(ctis.iter().all(|c| s.is_code_revoked(c)));
    assert!(!s.is_code_revoked(&[0xff; 16]));
    assert!(!s.is_code_revoked(&ctis[5][..15]));
}

#[test]
fn a_stored_feed_is_restored_without_its_signatures_but_with_its_links() {
    let k = key(1);
    let chain = every_statement();
    let verified = state_of(&chain);
    let mut restored = FeedState::new(sc());
    restored
        .restore(chain.iter().cloned().map(Ok::<_, FeedError>))
        .unwrap();
    assert_eq!(restored, verified);
    assert_eq!(restored.last_seq(), 6);
    assert!(restored.is_code_revoked(&[2; 16]) && restored.is_code_revoked(&[0xc7; 16]));

    // Signatures are not checked again: what the node stored, it checked before writing.
    let g = genesis(&k);
    let e = next(&g, 1, revoke_code(&[9; 16]), &k);
    let mut s = FeedState::new(sc());
    s.restore([g.clone(), with_bad_signature(&e)].map(Ok::<_, FeedError>))
        .unwrap();
    assert!(s.is_code_revoked(&[9; 16]));
    // apply_all (a sync, a bundle) refuses the same entries.
    let mut v = FeedState::new(sc());
    assert_eq!(
        v.apply_all(&[g.clone(), with_bad_signature(&e)]),
        Err(FeedError::BadSignature(2))
    );
    assert_eq!(v, FeedState::new(sc()));

    // Links, order and signers are still checked, and a failure changes nothing.
    let other = next(&genesis(&key(2)), 1, revoke_code(&[9; 16]), &key(2));
    let stranger = next(&g, 1, revoke_code(&[9; 16]), &key(3));
    let third = next(&e, 2, revoke_code(&[8; 16]), &k);
    for (entries, want) in [
        (vec![g.clone(), other], FeedError::BrokenChain(2)),
        (vec![g.clone(), stranger], FeedError::BadSignature(2)),
        (
            vec![g.clone(), third],
            FeedError::Gap {
                expected: 2,
                got: 3,
            },
        ),
        (
            vec![e.clone()],
            FeedError::Gap {
                expected: 1,
                got: 2,
            },
        ),
    ] {
        let mut s = FeedState::new(sc());
        assert_eq!(s.restore(entries.into_iter().map(Ok)), Err(want));
        assert_eq!(s, FeedState::new(sc()));
    }
}

#[test]
fn a_clone_shares_the_revocations_and_a_change_to_it_leaves_the_original() {
    let k = key(1);
    let g = genesis(&k);
    let ctis: Vec<Cti> = (0..10_000u32)
        .map(|i| {
            let mut c = [0u8; 16];
            c[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
            c
        })
        .collect();
    let mut prev = g.clone();
    let mut chain = vec![g];
    for (i, part) in ctis.chunks(4096).enumerate() {
        prev = next(
            &prev,
            1 + i as u64,
            Statement::RevokeCodes {
                ctis: part.to_vec(),
            },
            &k,
        );
        chain.push(prev.clone());
    }
    let mut s = FeedState::new(sc());
    s.apply_all(&chain).unwrap();
    assert_eq!(s.revocation_count(), 10_000);
    // One batch of 10,000 went into the compact base: 16 bytes per id plus the index.
    assert!(s.revoked_codes_heap_bytes() < 10_000 * 17);
    let before = s.clone();
    let e = next(&prev, 10, revoke_code(&[0xee; 16]), &k);
    let mut changed = s.clone();
    changed.apply(&e).unwrap();
    assert!(changed.is_code_revoked(&[0xee; 16]));
    assert!(!s.is_code_revoked(&[0xee; 16]));
    assert_eq!(s, before);
    assert_eq!(changed.revocation_count(), 10_001);
}
