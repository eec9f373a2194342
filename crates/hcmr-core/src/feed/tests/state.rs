//! Batches, revocation semantics, the anchor check, dates and the stored feed.

use super::*;

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
    assert!(!s.is_revoked(&[3; 16], &SubjectHash([0; 8]), UnixTime::EPOCH));

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
    for (subject, iat) in [
        ([0u8; 8], UnixTime::EPOCH),
        ([0xa5; 8], T0),
        ([0xff; 8], UnixTime::from_secs(u64::MAX)),
    ] {
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
    assert!(s.is_revoked(&cti, &subject, UnixTime::EPOCH));
    assert!(s.is_revoked(&cti, &subject, before - 1));
    assert!(!s.is_revoked(&cti, &subject, before));
    assert!(!s.is_revoked(&cti, &subject, before + 1));
    assert!(!s.is_revoked(&cti, &SubjectHash([0xa6; 8]), UnixTime::EPOCH));
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
