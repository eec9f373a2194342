//! The tracing term (docs/tracing.md section 4): its optional ninth element, with known-answer
//! vectors, and the bytes of agreements made before it, which must not change.

use super::*;

/// The first direction of [`KAT_HEX`] (Sichuan -> Guangdong), which has neither manifests nor
/// tracing.
const FIRST_DIRECTION_HEX: &str =
    "871a0007c8301a0006b6c0838201018202038203031a000151801a6553f1001a6b49d20000";

/// [`KAT_HEX`] with its first direction's head and tail replaced: `head` the array head, `tail`
/// the encoded elements appended after the seventh.
fn with_tail(head: &str, tail: &str) -> Vec<u8> {
    let first = format!("{head}{}{tail}", &FIRST_DIRECTION_HEX[2..]);
    let hex = KAT_HEX.replacen(FIRST_DIRECTION_HEX, &first, 1);
    assert_ne!(hex, KAT_HEX);
    hex::decode(hex).unwrap()
}

#[test]
fn an_agreement_without_the_term_encodes_byte_identically_to_before() {
    // Every direction of the known-answer body has tracing off: the bytes of the vector written
    // before the term existed, and they decode with tracing off.
    let b = kat_body();
    assert!(b.directions.iter().all(|d| !d.tracing));
    assert_eq!(hex::encode(b.encode()), KAT_HEX);
    let back = AgreementBody::decode(&hex::decode(KAT_HEX).unwrap()).unwrap();
    assert_eq!(back, b);
    for d in &back.directions {
        assert!(!d.tracing, "{}->{}", d.issuer, d.verifier);
    }
}

#[test]
fn known_answer_encoding_with_tracing_alone_writes_manifests_zero_then_one() {
    // Guangdong answers Sichuan's trace queries; no manifests: `89 ... 00 01`.
    let mut b = kat_body();
    b.directions[0].tracing = true;
    let expected = with_tail("89", "0001");
    assert_eq!(b.encode(), expected);
    let back = AgreementBody::decode(&expected).unwrap();
    assert_eq!(back, b);
    let d = back.direction(prov(SC), prov(GD)).unwrap();
    assert!(d.tracing);
    assert_eq!(d.manifests, ManifestTerms::none());
    assert!(!back.direction(prov(GD), prov(SC)).unwrap().tracing);
}

#[test]
fn known_answer_encoding_with_manifests_and_tracing() {
    let mut b = kat_body();
    b.directions[0].manifests = ManifestTerms::arrival();
    b.directions[0].tracing = true;
    let expected = with_tail("89", "0201");
    assert_eq!(b.encode(), expected);
    assert_eq!(AgreementBody::decode(&expected), Ok(b));
}

#[test]
fn an_explicit_off_or_another_value_is_refused() {
    // Tracing written as 0: decodes as off, then fails the round trip.
    assert_eq!(
        AgreementBody::decode(&with_tail("89", "0300")),
        Err(AgreementError::NotCanonical)
    );
    // 1 in a longer integer form.
    assert_eq!(
        AgreementBody::decode(&with_tail("89", "031801")),
        Err(AgreementError::NotCanonical)
    );
    for (what, tail) in [("2", "0302"), ("true", "03f5"), ("text", "036131")] {
        let r = AgreementBody::decode(&with_tail("89", tail));
        assert!(
            matches!(&r, Err(AgreementError::Decode(m)) if m.contains("tracing")),
            "{what}: {r:?}"
        );
    }
}

#[test]
fn signatures_do_not_carry_over_to_another_tracing_term() {
    let a = concluded();
    let mut b = a.body().clone();
    b.directions[1].tracing = true;
    let forged =
        SignedAgreement::from_parts(b.encode(), a.proposer_signature, a.acceptor_signature)
            .unwrap();
    assert_eq!(
        forged.check_both(),
        Err(AgreementError::BadSignature("proposer"))
    );
    // Signed with the term, it round-trips through the record.
    let mut a = SignedAgreement::propose(b, &sc_key()).unwrap();
    a.accept(&gd_key()).unwrap();
    let back = SignedAgreement::from_record(&a.to_record()).unwrap();
    assert!(back.body().direction(prov(GD), prov(SC)).unwrap().tracing);
    assert_eq!(back.check_both(), Ok(()));
}
