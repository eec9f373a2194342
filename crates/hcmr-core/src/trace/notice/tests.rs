//! The exposure notice: a known answer, the round trip, forged, truncated and wrong-key notices,
//! and one refusal per field rule.

use super::*;
use crate::testkit::{ah_key, prov, sc_key, stranger, AH, NOW, SC, TRIP_ID};

fn notice() -> ExposureNotice {
    ExposureNotice {
        notice_id: NoticeId([0x4e; 8]),
        from: prov(SC),
        to: prov(AH),
        trip_id: TRIP_ID,
        trip_origin: prov(SC),
        departure: NOW,
        seat: 7,
        distance: 2,
        crew: false,
        case_class: CaseClass::Confirmed,
        cti_prefix: [1, 2, 3, 4, 5, 6],
        subject_prefix: [0xa1, 0xb2, 0xc3, 0xd4],
        issued_at: NOW + 86_400,
    }
}

/// The payload of [`notice`]: array of 14 (0x8e), format 1, the id, 510000, 340000, the trip id,
/// 510000, departure 1,750,000,000, seat 7, distance 2, false, 1 (confirmed), the 6-byte cti
/// prefix, the 4-byte subject prefix, issued_at one day later.
const NOTICE_CBOR_HEX: &str =
    "8e01484e4e4e4e4e4e4e4e1a0007c8301a00053020487e7e7e7e7e7e7e7e1a0007c8301a684ee1800702f401\
    4601020304050644a1b2c3d41a68503300";

/// [`NOTICE_CBOR_HEX`] signed with [`crate::testkit::sc_key`] (seed `[0x51; 32]`).
const NOTICE_COSE_HEX: &str =
    "844da2012704484b735ac174e40636a0583d8e01484e4e4e4e4e4e4e4e1a0007c8301a00053020487e7e7e7e\
    7e7e7e7e1a0007c8301a684ee1800702f4014601020304050644a1b2c3d41a6850330058408f8b0f5a903d2a\
    2d4030493314ed2c44f6f17a176ef55590b0015c69dfdf3c2634ead8b44942f33d76e61666c281c1f6344869\
    965fa7e59b9f298a6707af5307";

fn hex_of(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

fn field_of(e: RecordError) -> &'static str {
    match e {
        RecordError::Field { field, .. } => field,
        other => panic!("not a field fault: {other}"),
    }
}

/// The fixture with element `index` replaced by `value`, signed by Sichuan.
fn with(index: usize, value: Value) -> Vec<u8> {
    let Value::Array(mut items) = crate::cbor::decode_exact(&notice().to_cbor()).unwrap() else {
        panic!("a notice is an array");
    };
    items[index] = value;
    cose::sign(crate::cbor::encode(&Value::Array(items)), &sc_key()).bytes
}

#[test]
fn the_known_answer_is_the_encoding_and_the_signature() {
    let n = notice();
    assert_eq!(
        hex::encode(n.to_cbor()),
        NOTICE_CBOR_HEX.replace([' ', '\n'], "")
    );
    let signed = n.sign(&sc_key());
    assert_eq!(
        hex::encode(&signed),
        NOTICE_COSE_HEX.replace([' ', '\n'], "")
    );
    let d = SignedExposureNotice::decode(&hex_of(NOTICE_COSE_HEX)).unwrap();
    assert_eq!(d.notice, n);
    assert_eq!(d.kid(), sc_key().kid());
    assert!(d.verify_signature(&sc_key().public()));
    assert_eq!(d.cose_bytes(), signed.as_slice());
    assert!(signed.len() <= MAX_NOTICE_BYTES);
}

#[test]
fn the_largest_notice_fits_its_bound() {
    let mut n = notice();
    n.seat = 99;
    n.distance = 98;
    n.crew = true;
    n.case_class = CaseClass::Suspected;
    n.departure = UnixTime::MAX;
    n.issued_at = UnixTime::MAX;
    n.from = prov(820000);
    n.to = prov(820000);
    n.trip_origin = prov(820000);
    let signed = n.sign(&sc_key());
    assert_eq!(signed.len(), 155, "as MAX_NOTICE_BYTES's docstring says");
    assert_eq!(SignedExposureNotice::decode(&signed).unwrap().notice, n);
}

#[test]
fn a_forged_or_other_key_notice_does_not_verify() {
    let mut forged = notice().sign(&sc_key());
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let d = SignedExposureNotice::decode(&forged).unwrap();
    assert!(!d.verify_signature(&sc_key().public()), "altered signature");
    // The payload changed under the same signature: the seat, 7 -> 8.
    let good = notice().sign(&sc_key());
    let at = good
        .windows(2)
        .position(|w| w == [0x07, 0x02])
        .expect("seat 7 then distance 2");
    let mut moved = good.clone();
    moved[at] = 0x08;
    let d = SignedExposureNotice::decode(&moved).unwrap();
    assert_eq!(d.notice.seat, 8);
    assert!(!d.verify_signature(&sc_key().public()), "altered payload");
    // Signed by another key: decodes, names that key's kid, verifies only under it.
    let other = SignedExposureNotice::decode(&notice().sign(&stranger())).unwrap();
    assert_eq!(other.kid(), stranger().kid());
    assert!(!other.verify_signature(&sc_key().public()));
    assert!(!other.verify_signature(&ah_key().public()));
}

#[test]
fn a_truncated_or_oversized_notice_is_refused() {
    let good = notice().sign(&sc_key());
    for cut in [0, 1, good.len() / 2, good.len() - 1] {
        let e = SignedExposureNotice::decode(&good[..cut]).unwrap_err();
        assert!(
            e.code().starts_with("cbor.") || e.code().starts_with("cose."),
            "{cut}: {}",
            e.code()
        );
    }
    let e = SignedExposureNotice::decode(&vec![0; MAX_NOTICE_BYTES + 1]).unwrap_err();
    assert_eq!(
        e,
        RecordError::TooLarge {
            len: MAX_NOTICE_BYTES + 1,
            max: MAX_NOTICE_BYTES
        }
    );
    // Another record (a payload of 13 elements) is not a notice.
    let Value::Array(mut items) = crate::cbor::decode_exact(&notice().to_cbor()).unwrap() else {
        unreachable!()
    };
    items.pop();
    let short = cose::sign(crate::cbor::encode(&Value::Array(items)), &sc_key()).bytes;
    let e = SignedExposureNotice::decode(&short).unwrap_err();
    assert_eq!(e.code(), "record.not_array");
    assert!(e
        .to_string()
        .contains("exposure_notice must be an array of 14 elements; it has 13"));
}

#[test]
fn each_field_is_held_to_its_rule() {
    let cases: Vec<(usize, Value, &str)> = vec![
        (0, uint(2), "format"),
        (0, Value::Text("1".into()), "format"),
        (1, Value::Bytes(vec![0; 7]), "notice_id"),
        (2, uint(510100), "from"),
        (3, uint(990000), "to"),
        (4, Value::Bytes(vec![0; 9]), "trip_id"),
        (5, uint(0), "trip_origin"),
        (6, uint(UnixTime::MAX.secs() + 1), "departure"),
        (7, uint(0), "seat"),
        (7, uint(100), "seat"),
        (8, uint(99), "distance"),
        (9, uint(0), "crew"),
        (10, uint(0), "case_class"),
        (10, uint(4), "case_class"),
        (11, Value::Bytes(vec![0; 16]), "cti_prefix"),
        (12, Value::Bytes(vec![0; 8]), "subject_prefix"),
        (13, Value::Text("now".into()), "issued_at"),
    ];
    for (index, value, field) in cases {
        let e = SignedExposureNotice::decode(&with(index, value)).unwrap_err();
        assert_eq!(field_of(e), field, "element {index}");
    }
    // Seat 7 with a distance of 95: the case would sit at seat 102 or -88.
    let e = SignedExposureNotice::decode(&with(8, uint(95))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "record: distance is 95 from seat 7: the case's seat would not be 1 to 99"
    );
    // Seat 7, distance 92: the case at seat 99.
    let ok = SignedExposureNotice::decode(&with(8, uint(92))).unwrap();
    assert_eq!(ok.notice.distance, 92);
}

#[test]
fn a_non_canonical_notice_is_refused() {
    // departure written with an 8-byte head instead of 4.
    let canonical = notice().to_cbor();
    let head = [0x1a];
    let at = canonical
        .windows(5)
        .position(|w| w[0] == head[0] && w[1..] == NOW.secs().to_be_bytes()[4..])
        .unwrap();
    let mut long = canonical[..at].to_vec();
    long.push(0x1b);
    long.extend_from_slice(&NOW.secs().to_be_bytes());
    long.extend_from_slice(&canonical[at + 5..]);
    let e = ExposureNotice::from_cbor(&long).unwrap_err();
    assert_eq!(e.code(), "record.not_canonical");
}

#[test]
fn case_classes_are_numbered_as_the_api_numbers_them() {
    for (n, c, s) in [
        (1, CaseClass::Confirmed, "confirmed"),
        (2, CaseClass::Asymptomatic, "asymptomatic"),
        (3, CaseClass::Suspected, "suspected"),
    ] {
        assert_eq!(CaseClass::from_number(n), Some(c));
        assert_eq!(c as u64, n);
        assert_eq!(c.as_str(), s);
    }
    assert_eq!(CaseClass::from_number(0), None);
    assert_eq!(NoticeId([0xab; 8]).to_string(), "abababababababab");
}
