//! The propose/accept round and signatures: who may sign, tampering, forged and unpinned keys.

use super::*;

// --- the full round ---

#[test]
fn propose_accept_round() {
    let b = body();
    assert_eq!(b.validate(), Ok(()));
    let mut a = SignedAgreement::propose(b.clone(), &sc_key()).unwrap();
    assert_eq!(a.body, b);
    assert_eq!(a.encoded, b.encode());
    assert_eq!(a.proposer_signature.unwrap().kid, sc_key().kid());
    assert!(a.acceptor_signature.is_none());
    assert!(!a.is_concluded());
    assert_eq!(a.check_signature(Role::Proposer), Ok(()));
    assert_eq!(
        a.check_signature(Role::Acceptor),
        Err(AgreementError::Unsigned("acceptor"))
    );
    assert_eq!(a.check_both(), Err(AgreementError::Unsigned("acceptor")));

    a.accept(&gd_key()).unwrap();
    assert!(a.is_concluded());
    assert_eq!(a.acceptor_signature.unwrap().kid, gd_key().kid());
    assert_eq!(a.check_signature(Role::Acceptor), Ok(()));
    assert_eq!(a.check_both(), Ok(()));
    // Accepting does not change what was signed.
    assert_eq!(a.encoded, b.encode());

    // The terms, looked up by direction.
    let to_gd = a.body.direction(prov(SC), prov(GD)).unwrap();
    assert_eq!(to_gd.status_map.get(&Green), Some(&Green));
    assert_eq!(to_gd.status_map.get(&Yellow), Some(&Red));
    assert_eq!(to_gd.status_map.get(&Red), Some(&Red));
    assert_eq!(to_gd.status_map.len(), 3);
    let to_sc = a.body.direction(prov(GD), prov(SC)).unwrap();
    assert_eq!(to_sc.status_map.get(&Green), Some(&Green));
    assert_eq!(to_sc.status_map.get(&Red), Some(&Red));
    assert_eq!(to_sc.status_map.get(&Yellow), None);
    assert!(a.body.direction(prov(SC), prov(SC)).is_none());
    assert!(a.body.direction(prov(JS), prov(GD)).is_none());

    assert_eq!(
        a.body.party(prov(SC)).unwrap().keys,
        vec![sc_key().public()]
    );
    assert_eq!(a.body.peer_of(prov(SC)).unwrap().province, prov(GD));
    assert_eq!(a.body.peer_of(prov(GD)).unwrap().province, prov(SC));
    assert!(a.body.peer_of(prov(JS)).is_none());
    assert!(a.body.party(prov(JS)).is_none());

    // What a receiver rebuilds from the exchanged parts checks the same way.
    let received = SignedAgreement::from_parts(
        a.encoded.clone(),
        a.proposer_signature,
        a.acceptor_signature,
    )
    .unwrap();
    assert_eq!(received, a);
    assert_eq!(received.check_both(), Ok(()));
}

#[test]
fn signatures_are_deterministic_over_context_and_body() {
    let a = concluded();
    let mut msg = b"hcmr-agreement-v1\0".to_vec();
    msg.extend_from_slice(&a.encoded);
    assert_eq!(a.proposer_signature.unwrap().signature, sc_key().sign(&msg));
    assert_eq!(a.acceptor_signature.unwrap().signature, gd_key().sign(&msg));
    // A signature over the bare body (no domain separation) does not count.
    let mut bare = a.clone();
    bare.proposer_signature = Some(AgreementSignature {
        kid: sc_key().kid(),
        signature: sc_key().sign(&a.encoded),
    });
    assert_eq!(
        bare.check_both(),
        Err(AgreementError::BadSignature("proposer"))
    );
}

#[test]
fn tampered_body_byte_fails() {
    let a = concluded();
    // The last byte belongs to the second direction's effective_until: still a valid body.
    let mut bytes = a.encoded.clone();
    *bytes.last_mut().unwrap() ^= 0x01;
    let t = SignedAgreement::from_parts(bytes, a.proposer_signature, a.acceptor_signature).unwrap();
    assert_ne!(t.body, a.body);
    assert_eq!(
        t.check_signature(Role::Proposer),
        Err(AgreementError::BadSignature("proposer"))
    );
    assert_eq!(
        t.check_signature(Role::Acceptor),
        Err(AgreementError::BadSignature("acceptor"))
    );
    assert_eq!(
        t.check_both(),
        Err(AgreementError::BadSignature("proposer"))
    );

    // Every single-bit flip anywhere fails to decode or fails the signatures.
    for i in 0..a.encoded.len() {
        let mut bytes = a.encoded.clone();
        bytes[i] ^= 0x01;
        match SignedAgreement::from_parts(bytes, a.proposer_signature, a.acceptor_signature) {
            Err(_) => {}
            Ok(t) => assert!(t.check_both().is_err(), "byte {i} flipped still verifies"),
        }
    }
}

#[test]
fn signature_by_unpinned_key() {
    let a = concluded();
    let stranger = key(0x99);
    let mut msg = b"hcmr-agreement-v1\0".to_vec();
    msg.extend_from_slice(&a.encoded);
    let by_stranger = AgreementSignature {
        kid: stranger.kid(),
        signature: stranger.sign(&msg),
    };
    let mut t = a.clone();
    t.proposer_signature = Some(by_stranger);
    assert_eq!(
        t.check_signature(Role::Proposer),
        Err(AgreementError::SignerNotPinned("proposer"))
    );
    let mut t = a.clone();
    t.acceptor_signature = Some(by_stranger);
    assert_eq!(
        t.check_both(),
        Err(AgreementError::SignerNotPinned("acceptor"))
    );
    // The proposer's own valid signature does not count as the acceptor's.
    let mut t = a.clone();
    t.acceptor_signature = a.proposer_signature;
    assert_eq!(
        t.check_both(),
        Err(AgreementError::SignerNotPinned("acceptor"))
    );
}

#[test]
fn accept_with_key_not_pinned_for_acceptor() {
    let mut a = SignedAgreement::propose(body(), &sc_key()).unwrap();
    assert_eq!(
        a.accept(&key(0x99)),
        Err(AgreementError::SignerNotPinned("acceptor"))
    );
    // Nor with the proposer's key.
    assert_eq!(
        a.accept(&sc_key()),
        Err(AgreementError::SignerNotPinned("acceptor"))
    );
    assert!(a.acceptor_signature.is_none());
}

#[test]
fn accept_checks_the_proposer_signature_first() {
    let mut a = SignedAgreement::propose(body(), &sc_key()).unwrap();
    a.proposer_signature.as_mut().unwrap().signature[0] ^= 1;
    assert_eq!(
        a.accept(&gd_key()),
        Err(AgreementError::BadSignature("proposer"))
    );
    let mut a = SignedAgreement::propose(body(), &sc_key()).unwrap();
    a.proposer_signature = None;
    assert_eq!(
        a.accept(&gd_key()),
        Err(AgreementError::Unsigned("proposer"))
    );
    assert!(a.acceptor_signature.is_none());
}

#[test]
fn forged_acceptor_signature() {
    let a = concluded();
    // Right kid, bytes changed.
    let mut t = a.clone();
    t.acceptor_signature.as_mut().unwrap().signature[10] ^= 0x40;
    assert_eq!(
        t.check_both(),
        Err(AgreementError::BadSignature("acceptor"))
    );
    // Right kid, signed by another key (what a kid collision would look like).
    let mut msg = b"hcmr-agreement-v1\0".to_vec();
    msg.extend_from_slice(&a.encoded);
    let mut t = a.clone();
    t.acceptor_signature = Some(AgreementSignature {
        kid: gd_key().kid(),
        signature: key(0x99).sign(&msg),
    });
    assert_eq!(
        t.check_both(),
        Err(AgreementError::BadSignature("acceptor"))
    );
    // All zeros.
    let mut t = a.clone();
    t.acceptor_signature = Some(AgreementSignature {
        kid: gd_key().kid(),
        signature: [0; 64],
    });
    assert_eq!(
        t.check_both(),
        Err(AgreementError::BadSignature("acceptor"))
    );
}

#[test]
fn any_pinned_key_may_sign() {
    let second = key(0x45);
    let b = body_with(
        vec![sc_key().public()],
        vec![gd_key().public(), second.public()],
    );
    let mut a = SignedAgreement::propose(b, &sc_key()).unwrap();
    a.accept(&second).unwrap();
    assert_eq!(a.check_both(), Ok(()));
}

#[test]
fn propose_with_key_not_pinned_for_proposer() {
    assert_eq!(
        SignedAgreement::propose(body(), &key(0x99)).unwrap_err(),
        AgreementError::SignerNotPinned("proposer")
    );
    // The acceptor's key is pinned, but not for the proposer.
    assert_eq!(
        SignedAgreement::propose(body(), &gd_key()).unwrap_err(),
        AgreementError::SignerNotPinned("proposer")
    );
    // Validation comes first.
    let mut b = body();
    b.acceptor.province = prov(SC);
    assert_eq!(
        SignedAgreement::propose(b, &key(0x99)).unwrap_err(),
        AgreementError::SameProvince
    );
}

#[test]
fn signed_by_any_checks_a_signature_against_keys_given_not_those_the_body_pins() {
    let a = SignedAgreement::propose(body(), &sc_key()).unwrap();
    assert!(a.signed_by_any(Role::Proposer, &[gd_key().public(), sc_key().public()]));
    // Pinned by the body, but not among the keys trusted for the party: refused.
    assert!(!a.signed_by_any(Role::Proposer, &[gd_key().public()]));
    assert!(!a.signed_by_any(Role::Proposer, &[]));
    assert!(
        !a.signed_by_any(Role::Acceptor, &[gd_key().public()]),
        "unsigned"
    );
    let c = concluded();
    assert!(c.signed_by_any(Role::Acceptor, &[gd_key().public()]));
}

/// A proposal notice verifies only under the key that signed it, with its content unchanged,
/// and its storage record round-trips.
#[test]
fn proposal_notice_signature_and_record() {
    let id = AgreementId([7; 16]);
    let n = ProposalNotice::sign(
        id,
        2,
        prov(GD),
        ProposalOutcome::Withdrawn,
        UnixTime::from_secs(1_000),
        &key(1),
    );
    n.check(&[key(1).public()]).unwrap();
    assert!(matches!(
        n.check(&[key(2).public()]),
        Err(AgreementError::SignerNotPinned(_))
    ));
    let mut other = n.clone();
    other.outcome = ProposalOutcome::Rejected;
    assert!(matches!(
        other.check(&[key(1).public()]),
        Err(AgreementError::BadSignature(_))
    ));
    let mut other = n.clone();
    other.version = 3;
    assert!(other.check(&[key(1).public()]).is_err());
    assert_eq!(ProposalNotice::from_record(&n.to_record()).unwrap(), n);
    assert!(ProposalNotice::from_record(&n.to_record()[1..]).is_err());
}
