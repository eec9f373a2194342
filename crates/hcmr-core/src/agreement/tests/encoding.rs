//! The canonical encoding (with a known-answer vector), decoding and the storage record.

use super::*;

// --- canonical encoding ---

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
