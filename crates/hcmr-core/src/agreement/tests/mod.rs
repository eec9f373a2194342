//! Tests of bilateral agreements: the propose/accept round, the canonical encoding (with a
//! known-answer vector), validation, signatures and the storage record.

use super::*;
use crate::status::HealthStatus::{Green, Red, Yellow};

const SC: u32 = 510000;
const GD: u32 = 440000;
const JS: u32 = 320000;

fn prov(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed(&[n; 32])
}

fn seed(hex32: &str) -> [u8; 32] {
    hex::decode(hex32).unwrap().try_into().unwrap()
}

fn map(pairs: &[(HealthStatus, HealthStatus)]) -> BTreeMap<HealthStatus, HealthStatus> {
    pairs.iter().copied().collect()
}

const FROM: u64 = 1_700_000_000;
const UNTIL: u64 = 1_800_000_000;

/// Sichuan (proposer) and Guangdong (acceptor): Sichuan's yellow counts as red in Guangdong,
/// whose own scheme has only green and red.
fn body_with(sc_keys: Vec<PublicKey>, gd_keys: Vec<PublicKey>) -> AgreementBody {
    AgreementBody {
        id: AgreementId([0x11; 16]),
        version: 1,
        created_at: FROM - 100,
        proposer: Party {
            province: prov(SC),
            keys: sc_keys,
        },
        acceptor: Party {
            province: prov(GD),
            keys: gd_keys,
        },
        directions: vec![
            DirectionTerms {
                issuer: prov(SC),
                verifier: prov(GD),
                status_map: map(&[(Green, Green), (Yellow, Red), (Red, Red)]),
                max_code_age_secs: 86_400,
                max_trust_age_secs: 0,
                effective_from: FROM,
                effective_until: UNTIL,
            },
            DirectionTerms {
                issuer: prov(GD),
                verifier: prov(SC),
                status_map: map(&[(Green, Green), (Red, Red)]),
                max_code_age_secs: 3_600,
                max_trust_age_secs: 0,
                effective_from: FROM,
                effective_until: UNTIL,
            },
        ],
    }
}

fn sc_key() -> NodeKey {
    key(0x51)
}

fn gd_key() -> NodeKey {
    key(0x44)
}

fn body() -> AgreementBody {
    body_with(vec![sc_key().public()], vec![gd_key().public()])
}

fn concluded() -> SignedAgreement {
    let mut a = SignedAgreement::propose(body(), &sc_key()).unwrap();
    a.accept(&gd_key()).unwrap();
    a
}

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

// --- canonical encoding ---

/// RFC 8032 section 7.1, test 1 (secret key).
const RFC8032_SEED_1: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// RFC 8032 section 7.1, test 2 (secret key).
const RFC8032_SEED_2: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

/// The encoding of [`kat_body`], written out by hand from the CDDL in the module documentation
/// (array heads, shortest unsigned integers, RFC 8032 public keys d75a98.. and 3d4017..):
///
/// ```text
/// 88                                   array(8)
///   6e 68636d722d61677265656d656e74    "hcmr-agreement"
///   01                                 format 1
///   50 00112233445566778899aabbccddeeff id
///   01                                 version 1
///   1a 6553f100                        created_at 1700000000
///   82 1a 0007c830 81 5820 d75a..511a  proposer [510000, [key]]
///   82 1a 0006b6c0 81 5820 3d40..660c  acceptor [440000, [key]]
///   82                                 two directions
///     87 1a 0007c830 1a 0006b6c0 83 820101 820203 820303 1a 00015180 1a 6553f100 1a 6b49d200 00
///     87 1a 0006b6c0 1a 0007c830 82 820101 820303 19 0e10 1a 6553f100 1a 6b49d200 00
/// ```
const KAT_HEX: &str = concat!(
    "886e68636d722d61677265656d656e74015000112233445566778899aabbccddeeff011a6553f100",
    "821a0007c830815820d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "821a0006b6c08158203d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "82871a0007c8301a0006b6c0838201018202038203031a000151801a6553f1001a6b49d20000",
    "871a0006b6c01a0007c83082820101820303190e101a6553f1001a6b49d20000",
);

fn kat_body() -> AgreementBody {
    let k1 = NodeKey::from_seed(&seed(RFC8032_SEED_1)).public();
    let k2 = NodeKey::from_seed(&seed(RFC8032_SEED_2)).public();
    AgreementBody {
        id: AgreementId::from_hex("00112233445566778899aabbccddeeff").unwrap(),
        version: 1,
        created_at: 1_700_000_000,
        proposer: Party {
            province: prov(SC),
            keys: vec![k1],
        },
        acceptor: Party {
            province: prov(GD),
            keys: vec![k2],
        },
        directions: vec![
            DirectionTerms {
                issuer: prov(SC),
                verifier: prov(GD),
                status_map: map(&[(Green, Green), (Yellow, Red), (Red, Red)]),
                max_code_age_secs: 86_400,
                max_trust_age_secs: 0,
                effective_from: 1_700_000_000,
                effective_until: 1_800_000_000,
            },
            DirectionTerms {
                issuer: prov(GD),
                verifier: prov(SC),
                status_map: map(&[(Green, Green), (Red, Red)]),
                max_code_age_secs: 3_600,
                max_trust_age_secs: 0,
                effective_from: 1_700_000_000,
                effective_until: 1_800_000_000,
            },
        ],
    }
}

#[test]
fn known_answer_encoding() {
    let b = kat_body();
    assert_eq!(
        hex::encode(key_bytes(&b)),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\
         3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    );
    assert_eq!(hex::encode(b.encode()), KAT_HEX);
    let bytes = hex::decode(KAT_HEX).unwrap();
    assert_eq!(AgreementBody::decode(&bytes), Ok(b.clone()));
    // Encoding is a function of the body: the same body, the same bytes.
    assert_eq!(AgreementBody::decode(&bytes).unwrap().encode(), bytes);
    assert_eq!(b.id.to_string(), "00112233445566778899aabbccddeeff");
}

/// Both parties' key bytes, proposer first.
fn key_bytes(b: &AgreementBody) -> Vec<u8> {
    [&b.proposer, &b.acceptor]
        .iter()
        .flat_map(|p| p.keys.iter().flat_map(|k| k.to_bytes()))
        .collect()
}

/// Offset of the version (after `88`, the 15-byte magic, the format and the 17-byte id).
const VERSION_AT: usize = 1 + 15 + 1 + 17;

#[test]
fn longer_integer_form_is_not_canonical() {
    let mut bytes = hex::decode(KAT_HEX).unwrap();
    assert_eq!(bytes[VERSION_AT], 0x01);
    // version 1 as a one-byte-argument integer (18 01): same value, longer form.
    bytes.splice(VERSION_AT..=VERSION_AT, [0x18, 0x01]);
    assert_eq!(
        AgreementBody::decode(&bytes),
        Err(AgreementError::NotCanonical)
    );
    // created_at as an 8-byte integer.
    let mut bytes = hex::decode(KAT_HEX).unwrap();
    let at = VERSION_AT + 1;
    assert_eq!(&bytes[at..at + 5], &[0x1a, 0x65, 0x53, 0xf1, 0x00]);
    bytes.splice(at..at + 5, [0x1b, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]);
    assert_eq!(
        AgreementBody::decode(&bytes),
        Err(AgreementError::NotCanonical)
    );
}

#[test]
fn indefinite_length_array_is_not_canonical() {
    let mut bytes = hex::decode(KAT_HEX).unwrap();
    assert_eq!(bytes[0], 0x88);
    bytes[0] = 0x9f; // indefinite-length array ...
    bytes.push(0xff); // ... closed by "break"
    let r = AgreementBody::decode(&bytes);
    assert!(
        matches!(
            r,
            Err(AgreementError::NotCanonical) | Err(AgreementError::Decode(_))
        ),
        "{r:?}"
    );
}

#[test]
fn unsorted_status_map_is_not_canonical() {
    let bytes = hex::decode(KAT_HEX).unwrap();
    // The first direction's map: 83 820101 820203 820303; swap the first two entries.
    let sorted = hex::decode("83820101820203820303").unwrap();
    let at = bytes
        .windows(sorted.len())
        .position(|w| w == sorted.as_slice())
        .unwrap();
    let mut swapped = bytes.clone();
    swapped[at..at + sorted.len()].copy_from_slice(&hex::decode("83820203820101820303").unwrap());
    assert_eq!(
        AgreementBody::decode(&swapped),
        Err(AgreementError::NotCanonical)
    );
    // The same issued status twice is refused outright.
    let mut dup = bytes;
    dup[at..at + sorted.len()].copy_from_slice(&hex::decode("83820101820103820303").unwrap());
    assert!(matches!(
        AgreementBody::decode(&dup),
        Err(AgreementError::Decode(_))
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = hex::decode(KAT_HEX).unwrap();
    bytes.push(0x00);
    assert!(matches!(
        AgreementBody::decode(&bytes),
        Err(AgreementError::Decode(_))
    ));
    // A second copy of the whole body is trailing too.
    let mut twice = hex::decode(KAT_HEX).unwrap();
    twice.extend_from_slice(&hex::decode(KAT_HEX).unwrap());
    assert!(matches!(
        AgreementBody::decode(&twice),
        Err(AgreementError::Decode(_))
    ));
}

#[test]
fn malformed_bodies_are_decode_errors() {
    let good = hex::decode(KAT_HEX).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("not an array", hex::decode("01").unwrap()),
        ("wrong magic", {
            let mut b = good.clone();
            b[2] ^= 0x20; // "Hcmr-agreement"
            b
        }),
        ("format 2", {
            let mut b = good.clone();
            b[16] = 0x02;
            b
        }),
        ("id of 15 bytes", {
            let mut b = good.clone();
            b[17] = 0x4f;
            b.remove(18);
            b
        }),
        ("unassigned status 4", {
            let mut b = good.clone();
            let at = b.windows(3).position(|w| w == [0x82, 0x02, 0x03]).unwrap();
            b[at + 1] = 0x04;
            b
        }),
    ];
    for (what, bytes) in cases {
        let r = AgreementBody::decode(&bytes);
        assert!(matches!(r, Err(AgreementError::Decode(_))), "{what}: {r:?}");
    }
}

#[test]
fn decode_validates() {
    let mut b = kat_body();
    b.acceptor.province = prov(SC);
    assert_eq!(
        AgreementBody::decode(&b.encode()),
        Err(AgreementError::SameProvince)
    );
    let mut b = kat_body();
    b.directions[0].max_code_age_secs = 0;
    assert_eq!(
        AgreementBody::decode(&b.encode()),
        Err(AgreementError::BadMaxAge(prov(SC), prov(GD)))
    );
    assert!(matches!(
        SignedAgreement::from_parts(b.encode(), None, None),
        Err(AgreementError::BadMaxAge(..))
    ));
}

// --- validation ---

#[test]
fn validate_same_province() {
    let mut b = body();
    b.acceptor.province = prov(SC);
    assert_eq!(b.validate(), Err(AgreementError::SameProvince));
}

#[test]
fn validate_bad_keys() {
    let mut b = body();
    b.proposer.keys.clear();
    assert_eq!(b.validate(), Err(AgreementError::BadKeys(prov(SC))));

    let nine: Vec<PublicKey> = (1..=9).map(|n| key(n).public()).collect();
    let b = body_with(vec![sc_key().public()], nine.clone());
    assert_eq!(b.validate(), Err(AgreementError::BadKeys(prov(GD))));
    // Eight distinct keys are the most allowed.
    let b = body_with(vec![sc_key().public()], nine[..8].to_vec());
    assert_eq!(b.validate(), Ok(()));

    let b = body_with(
        vec![sc_key().public(), key(7).public(), sc_key().public()],
        vec![gd_key().public()],
    );
    assert_eq!(b.validate(), Err(AgreementError::BadKeys(prov(SC))));
    assert_eq!(
        SignedAgreement::propose(b, &sc_key()).unwrap_err(),
        AgreementError::BadKeys(prov(SC))
    );
}

#[test]
fn validate_bad_directions() {
    let mut b = body();
    b.directions.pop();
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    let mut b = body();
    b.directions[1] = b.directions[0].clone();
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    let mut b = body();
    b.directions.clear();
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    let mut b = body();
    let extra = b.directions[0].clone();
    b.directions.push(extra);
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    // A direction involving a third province.
    let mut b = body();
    b.directions[1].issuer = prov(JS);
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));
}

#[test]
fn validate_bad_window() {
    let mut b = body();
    b.directions[1].effective_until = b.directions[1].effective_from;
    assert_eq!(
        b.validate(),
        Err(AgreementError::BadWindow(prov(GD), prov(SC)))
    );
    let mut b = body();
    b.directions[0].effective_from = UNTIL + 1;
    assert_eq!(
        b.validate(),
        Err(AgreementError::BadWindow(prov(SC), prov(GD)))
    );
    // A one-second window is fine.
    let mut b = body();
    b.directions[0].effective_until = FROM + 1;
    assert_eq!(b.validate(), Ok(()));
}

#[test]
fn validate_bad_max_age() {
    let mut b = body();
    b.directions[1].max_code_age_secs = 0;
    assert_eq!(
        b.validate(),
        Err(AgreementError::BadMaxAge(prov(GD), prov(SC)))
    );
}

// --- signatures ---

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

// --- storage record ---

#[test]
fn record_round_trip_with_0_1_2_signatures() {
    let b = body();
    let none = SignedAgreement {
        encoded: b.encode(),
        body: b.clone(),
        proposer_signature: None,
        acceptor_signature: None,
    };
    let one = SignedAgreement::propose(b, &sc_key()).unwrap();
    let two = concluded();
    for (n, a) in [(0, none), (1, one), (2, two)] {
        let rec = a.to_record();
        let back = SignedAgreement::from_record(&rec).unwrap();
        assert_eq!(back, a, "{n} signatures");
        assert_eq!(back.to_record(), rec, "{n} signatures");
        assert_eq!(
            [
                back.proposer_signature.is_some(),
                back.acceptor_signature.is_some()
            ]
            .iter()
            .filter(|s| **s)
            .count(),
            n
        );
    }
}

#[test]
fn bad_records_are_refused() {
    let a = concluded();
    let rec = a.to_record();
    let mut trailing = rec.clone();
    trailing.push(0);
    assert!(matches!(
        SignedAgreement::from_record(&trailing),
        Err(AgreementError::Decode(_))
    ));
    // [body, null] (two elements).
    let two = crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(a.encoded.clone()),
        Value::Null,
    ]));
    assert!(matches!(
        SignedAgreement::from_record(&two),
        Err(AgreementError::Decode(_))
    ));
    // A 7-byte kid.
    let short_kid = crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(a.encoded.clone()),
        Value::Array(vec![Value::Bytes(vec![0; 7]), Value::Bytes(vec![0; 64])]),
        Value::Null,
    ]));
    assert!(matches!(
        SignedAgreement::from_record(&short_kid),
        Err(AgreementError::Decode(_))
    ));
    // A 63-byte signature.
    let short_sig = crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(a.encoded.clone()),
        Value::Null,
        Value::Array(vec![Value::Bytes(vec![0; 8]), Value::Bytes(vec![0; 63])]),
    ]));
    assert!(matches!(
        SignedAgreement::from_record(&short_sig),
        Err(AgreementError::Decode(_))
    ));
    // The body as an array, not a byte string.
    let not_bytes = crate::cbor::encode(&Value::Array(vec![
        Value::Array(vec![]),
        Value::Null,
        Value::Null,
    ]));
    assert!(matches!(
        SignedAgreement::from_record(&not_bytes),
        Err(AgreementError::Decode(_))
    ));
    // A non-canonical body inside a well-formed record.
    let mut body = a.encoded.clone();
    body.splice(VERSION_AT..=VERSION_AT, [0x18, 0x01]);
    let nc = crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(body),
        Value::Null,
        Value::Null,
    ]));
    assert_eq!(
        SignedAgreement::from_record(&nc),
        Err(AgreementError::NotCanonical)
    );
}

// --- windows and ids ---

#[test]
fn window_edges() {
    let d = &body().directions[0];
    assert_eq!(d.window(0), Window::NotYetInForce);
    assert_eq!(d.window(FROM - 1), Window::NotYetInForce);
    assert_eq!(d.window(FROM), Window::InForce);
    assert_eq!(d.window(UNTIL - 1), Window::InForce);
    assert_eq!(d.window(UNTIL), Window::Expired);
    assert_eq!(d.window(u64::MAX), Window::Expired);
}

#[test]
fn agreement_ids() {
    let id = AgreementId::from_hex(" 00112233445566778899AABBCCDDEEFF\n").unwrap();
    assert_eq!(id.0[15], 0xff);
    assert_eq!(id.to_string(), "00112233445566778899aabbccddeeff");
    assert_eq!(
        format!("{id:?}"),
        "AgreementId(00112233445566778899aabbccddeeff)"
    );
    for bad in [
        "",
        "0011",
        "00112233445566778899aabbccddeeff00",
        "zz112233445566778899aabbccddeeff",
    ] {
        assert_eq!(
            AgreementId::from_hex(bad),
            Err(AgreementError::BadId(bad.to_string()))
        );
    }
    assert_ne!(AgreementId::generate(), AgreementId::generate());
}

#[test]
fn validate_refuses_a_mapping_that_lowers_severity() {
    use crate::status::HealthStatus::{Green, Red, Yellow};
    let mut b = kat_body();
    b.directions[0].status_map = [(Green, Green), (Red, Green)].into();
    let (issuer, verifier) = (b.directions[0].issuer, b.directions[0].verifier);
    assert_eq!(
        b.validate(),
        Err(AgreementError::LowersSeverity(issuer, verifier, Red, Green))
    );
    b.directions[0].status_map = [(Yellow, Green)].into();
    assert_eq!(
        b.validate(),
        Err(AgreementError::LowersSeverity(
            issuer, verifier, Yellow, Green
        ))
    );
    // Keeping or raising is fine (Guangdong counts yellow as red).
    b.directions[0].status_map = [(Green, Green), (Yellow, Red), (Red, Red)].into();
    assert_eq!(b.validate(), Ok(()));
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
    let n = ProposalNotice::sign(id, 2, prov(GD), ProposalOutcome::Withdrawn, 1_000, &key(1));
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
