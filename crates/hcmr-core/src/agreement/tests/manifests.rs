//! The manifest term (docs/transport.md section 4): its optional eighth element, with a
//! known-answer vector, and the bytes of agreements made before it, which must not change.

use super::*;

/// [`kat_body`] with Sichuan's manifests accepted in Guangdong for transit and arrival (3); the
/// other direction keeps no manifests, so one body holds an 8-element and a 7-element direction.
fn kat_manifests_body() -> AgreementBody {
    let mut b = kat_body();
    b.directions[0].manifests = ManifestTerms::both();
    b
}

/// The encoding of [`kat_manifests_body`], written out by hand: [`KAT_HEX`] with the first
/// direction's head `87` (array of 7) turned into `88` (array of 8) and `03` appended to it:
///
/// ```text
/// 88 1a 0007c830 1a 0006b6c0 83 820101 820203 820303 1a 00015180 1a 6553f100 1a 6b49d200 00 03
/// 87 1a 0006b6c0 1a 0007c830 82 820101 820303 19 0e10 1a 6553f100 1a 6b49d200 00
/// ```
const KAT_MANIFESTS_HEX: &str = concat!(
    "886e68636d722d61677265656d656e74015000112233445566778899aabbccddeeff011a6553f100",
    "821a0007c830815820d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "821a0006b6c08158203d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "82881a0007c8301a0006b6c0838201018202038203031a000151801a6553f1001a6b49d2000003",
    "871a0006b6c01a0007c83082820101820303190e101a6553f1001a6b49d20000",
);

/// The first direction of [`KAT_HEX`], which has no manifest element.
const FIRST_DIRECTION_HEX: &str =
    "871a0007c8301a0006b6c0838201018202038203031a000151801a6553f1001a6b49d20000";

/// [`KAT_HEX`] with its first direction given an eighth element of encoded bytes `element`.
fn with_eighth_element(element: &str) -> Vec<u8> {
    let first = format!("88{}{element}", &FIRST_DIRECTION_HEX[2..]);
    let hex = KAT_HEX.replacen(FIRST_DIRECTION_HEX, &first, 1);
    assert_ne!(hex, KAT_HEX);
    hex::decode(hex).unwrap()
}

#[test]
fn known_answer_encoding_with_manifests() {
    let b = kat_manifests_body();
    assert_eq!(hex::encode(b.encode()), KAT_MANIFESTS_HEX);
    let bytes = hex::decode(KAT_MANIFESTS_HEX).unwrap();
    let back = AgreementBody::decode(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.encode(), bytes);
    let to_gd = back.direction(prov(SC), prov(GD)).unwrap();
    assert_eq!(to_gd.manifests, ManifestTerms::both());
    assert!(to_gd.manifests.allows(ManifestRole::Transit));
    assert!(to_gd.manifests.allows(ManifestRole::Arrival));
    let to_sc = back.direction(prov(GD), prov(SC)).unwrap();
    assert_eq!(to_sc.manifests, ManifestTerms::none());
    // The helper builds this very vector from the old one.
    assert_eq!(with_eighth_element("03"), bytes);
}

#[test]
fn directions_without_the_element_decode_with_no_manifests() {
    // The vector of every agreement made before the term: unchanged bytes, no manifests.
    let bytes = hex::decode(KAT_HEX).unwrap();
    assert!(KAT_HEX.contains(FIRST_DIRECTION_HEX));
    let b = AgreementBody::decode(&bytes).unwrap();
    assert_eq!(b, kat_body());
    for d in &b.directions {
        assert_eq!(d.manifests, ManifestTerms::none());
        assert!(!d.manifests.allows(ManifestRole::Transit));
        assert!(!d.manifests.allows(ManifestRole::Arrival));
    }
    // No manifests is written as no element: the same bytes as before the term existed.
    assert_eq!(hex::encode(kat_body().encode()), KAT_HEX);
    assert_eq!(ManifestTerms::default(), ManifestTerms::none());
}

#[test]
fn every_manifest_term_round_trips_and_is_signed() {
    let all = [
        ManifestTerms::none(),
        ManifestTerms::transit(),
        ManifestTerms::arrival(),
        ManifestTerms::both(),
    ];
    for first in all {
        for second in all {
            let mut b = body();
            b.directions[0].manifests = first;
            b.directions[1].manifests = second;
            let bytes = b.encode();
            assert_eq!(
                AgreementBody::decode(&bytes),
                Ok(b.clone()),
                "{first} {second}"
            );
            let mut a = SignedAgreement::propose(b, &sc_key()).unwrap();
            a.accept(&gd_key()).unwrap();
            let back = SignedAgreement::from_record(&a.to_record()).unwrap();
            assert_eq!(back, a, "{first} {second}");
            assert_eq!(back.check_both(), Ok(()), "{first} {second}");
        }
    }
}

#[test]
fn signatures_do_not_carry_over_to_other_manifest_terms() {
    let a = concluded();
    let mut b = a.body().clone();
    b.directions[0].manifests = ManifestTerms::transit();
    let forged =
        SignedAgreement::from_parts(b.encode(), a.proposer_signature, a.acceptor_signature)
            .unwrap();
    assert_eq!(
        forged.check_both(),
        Err(AgreementError::BadSignature("proposer"))
    );
}

#[test]
fn an_explicit_zero_is_not_canonical() {
    let bytes = with_eighth_element("00");
    assert_eq!(
        AgreementBody::decode(&bytes),
        Err(AgreementError::NotCanonical)
    );
    assert_eq!(
        SignedAgreement::from_parts(bytes, None, None),
        Err(AgreementError::NotCanonical)
    );
    // 3 in a longer integer form (18 03) is not canonical either.
    assert_eq!(
        AgreementBody::decode(&with_eighth_element("1803")),
        Err(AgreementError::NotCanonical)
    );
}

#[test]
fn unknown_manifest_bits_and_bad_shapes_are_refused() {
    let cases = [
        ("4: a bit no role has", with_eighth_element("04")),
        ("5", with_eighth_element("05")),
        ("255", with_eighth_element("18ff")),
        ("2^64 - 1", with_eighth_element("1bffffffffffffffff")),
        ("negative", with_eighth_element("20")),
        ("text", with_eighth_element("6131")),
        ("null", with_eighth_element("f6")),
        ("a tenth element (after manifests and tracing)", {
            let first = format!("8a{}030100", &FIRST_DIRECTION_HEX[2..]);
            hex::decode(KAT_HEX.replacen(FIRST_DIRECTION_HEX, &first, 1)).unwrap()
        }),
        ("six elements", {
            // Drop max_trust_age (the final 00) and shorten the head.
            let six = &FIRST_DIRECTION_HEX[2..FIRST_DIRECTION_HEX.len() - 2];
            let first = format!("86{six}");
            hex::decode(KAT_HEX.replacen(FIRST_DIRECTION_HEX, &first, 1)).unwrap()
        }),
    ];
    for (what, bytes) in cases {
        let r = AgreementBody::decode(&bytes);
        assert!(matches!(r, Err(AgreementError::Decode(_))), "{what}: {r:?}");
    }
    let r = AgreementBody::decode(&with_eighth_element("04"));
    assert!(
        matches!(&r, Err(AgreementError::Decode(m)) if m.contains("manifests")),
        "{r:?}"
    );
}

#[test]
fn manifest_terms_as_a_bit_set() {
    use ManifestRole::{Arrival, Transit};
    let cases = [
        (ManifestTerms::none(), 0, false, false, "none"),
        (ManifestTerms::transit(), 1, true, false, "transit"),
        (ManifestTerms::arrival(), 2, false, true, "arrival"),
        (ManifestTerms::both(), 3, true, true, "transit+arrival"),
    ];
    for (terms, bits, transit, arrival, shown) in cases {
        assert_eq!(terms.bits(), bits);
        assert_eq!(terms.allows(Transit), transit, "{shown}");
        assert_eq!(terms.allows(Arrival), arrival, "{shown}");
        assert_eq!(terms.is_none(), bits == 0);
        assert_eq!(terms.to_string(), shown);
        assert_eq!(ManifestTerms::from_bits(u64::from(bits)), Some(terms));
    }
    assert_eq!(
        ManifestTerms::TRANSIT | ManifestTerms::ARRIVAL,
        ManifestTerms::both().bits()
    );
    assert_eq!(ManifestTerms::from_bits(4), None);
    assert_eq!(ManifestTerms::from_bits(u64::MAX), None);
}
