//! The trip records of docs/transport.md section 6: known answers, matching with the sealed
//! versions, one refusal per malformed family, and properties.

use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::cbor::uint;
use crate::testkit::{check_report, handover, js_key, refusal, zj_key, CQ, JS};

/// The payload of [`testkit::check_report`]: array of 8 (0x88), trip id, version 1, the
/// 32-byte hash, 320000, "苏皖界G40收费站" (21 bytes), checked_at, 2 (STOP),
/// [[14, null, null], [15, 2, 500000]].
const REPORT_CBOR_HEX: &str =
    "88487e7e7e7e7e7e7e7e01582082a5a64b750ad9a9c13c51b9af49d6b694cf73e33f9defc8854ed6ba271a87951a\
    0004e20075e88b8fe79a96e7958c473430e694b6e8b4b9e7ab991a684efda00282830ef6f6830f021a0007a120";
/// [`REPORT_CBOR_HEX`] signed with [`testkit::js_key`] (seed `[0x32; 32]`).
const REPORT_COSE_HEX: &str =
    "844da201270448eeec86207f875ff6a0585b88487e7e7e7e7e7e7e7e01582082a5a64b750ad9a9c13c51b9af49d6\
    b694cf73e33f9defc8854ed6ba271a87951a0004e20075e88b8fe79a96e7958c473430e694b6e8b4b9e7ab991a68\
    4efda00282830ef6f6830f021a0007a12058402541300890a89b43828129754c154e25a0caf07d458d8277e5cab1\
    7de0b628b83819d8046646390ecdf769c10ebaecb475b430f8759d29c12dfaa49e01094402";
/// The payload of [`testkit::handover`]: array of 8, trip id, version 1, the hash of the
/// 3-person trip, 330000, received_at, 1 (delivered), "", [[1, true, 0, ""], [2, true, 1,
/// "体温37.6℃"], [3, false, 0, "未上车"]].
const RECEIPT_CBOR_HEX: &str =
    "88487e7e7e7e7e7e7e7e015820ec4fff87314f0f4ebd9c76e11649d657531bcbb66e24a51d98bb8ab9940e3da51a\
    000509101a68505d300160838401f500608402f5016de4bd93e6b8a933372e36e284838403f40069e69caae4b88a\
    e8bda6";
/// [`RECEIPT_CBOR_HEX`] signed with [`testkit::zj_key`] (seed `[0x33; 32]`).
const RECEIPT_COSE_HEX: &str =
    "844da2012704486c8f8607dbe87077a0585f88487e7e7e7e7e7e7e7e015820ec4fff87314f0f4ebd9c76e11649d6\
    57531bcbb66e24a51d98bb8ab9940e3da51a000509101a68505d300160838401f500608402f5016de4bd93e6b8a9\
    33372e36e284838403f40069e69caae4b88ae8bda658401c3b4d12c880cfe7e3a1ff2e8d658d3298fee79bf2840d\
    d8b5b2188a018109a2d1504ba030740f7b06628f7ec6b6595ee3ee6d6fead6073be6bb86938604460f";

fn report_err(bytes: &[u8]) -> RecordError {
    SignedCheckReport::decode(bytes).unwrap_err()
}

fn receipt_err(bytes: &[u8]) -> RecordError {
    SignedReceipt::decode(bytes).unwrap_err()
}

fn items_of(cbor: &[u8]) -> Vec<Value> {
    let Value::Array(items) = crate::cbor::decode_exact(cbor).unwrap() else {
        panic!("a record is an array");
    };
    items
}

/// The fixture report with element `index` replaced by `value`, signed by Jiangsu.
fn report_with(index: usize, value: Value) -> Vec<u8> {
    let mut items = items_of(&check_report().to_cbor());
    items[index] = value;
    cose::sign(crate::cbor::encode(&Value::Array(items)), &js_key()).bytes
}

/// The fixture handover with element `index` replaced by `value`, signed by Zhejiang.
fn receipt_with(index: usize, value: Value) -> Vec<u8> {
    let mut items = items_of(&handover().to_cbor());
    items[index] = value;
    cose::sign(crate::cbor::encode(&Value::Array(items)), &zj_key()).bytes
}

fn field_of(e: RecordError) -> &'static str {
    match e {
        RecordError::Field { field, .. } => field,
        other => panic!("expected a field fault, got {other:?}"),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

// --- known answers ---

#[test]
fn manifest_hash_is_sha256_of_the_cose_bytes() {
    let d = SignedManifest::decode(KAT_MANIFEST).unwrap();
    let expected: [u8; 32] = Sha256::digest(d.cose_bytes()).into();
    assert_eq!(manifest_hash(&d), expected);
    assert_eq!(testkit::sealed_hash(2), expected);
    assert_eq!(
        hex::encode(expected),
        "82a5a64b750ad9a9c13c51b9af49d6b694cf73e33f9defc8854ed6ba271a8795"
    );
}

#[test]
fn report_known_answer_vector() {
    let r = check_report();
    assert_eq!(hex::encode(r.to_cbor()), REPORT_CBOR_HEX);
    let bytes = r.sign(&js_key());
    assert_eq!(hex::encode(&bytes), REPORT_COSE_HEX);
    assert_eq!(r.sign(&js_key()), bytes, "deterministic (RFC 8032)");
    let d = SignedCheckReport::decode(&bytes).unwrap();
    assert_eq!(d.report, r);
    assert_eq!(d.kid(), js_key().kid());
    assert_eq!(d.cose_bytes(), &bytes[..]);
    assert!(d.verify_signature(&js_key().public()));
    assert!(!d.verify_signature(&sc_key().public()));
    // The manifest's envelope: untagged array of 4, protected {1: -8, 4: kid}, empty
    // unprotected header.
    assert!(REPORT_COSE_HEX.starts_with(&format!("844da201270448{}a0", js_key().kid())));
}

#[test]
fn receipt_known_answer_vectors() {
    let r = handover();
    assert_eq!(hex::encode(r.to_cbor()), RECEIPT_CBOR_HEX);
    let bytes = r.sign(&zj_key());
    assert_eq!(hex::encode(&bytes), RECEIPT_COSE_HEX);
    let d = SignedReceipt::decode(&bytes).unwrap();
    assert_eq!(d.receipt, r);
    assert_eq!(d.kid(), zj_key().kid());
    assert!(d.verify_signature(&zj_key().public()));
    assert!(!d.verify_signature(&js_key().public()));
    assert!(RECEIPT_COSE_HEX.starts_with(&format!("844da201270448{}a0", zj_key().kid())));
    // The refusal: outcome 2, its reason, an empty people array (0x80) last.
    let refused = refusal();
    let cbor = refused.to_cbor();
    assert_eq!(cbor[cbor.len() - 1], 0x80);
    let mut tail = vec![0x02, 0x72];
    tail.extend_from_slice("目的地未接收".as_bytes());
    tail.push(0x80);
    assert!(cbor.ends_with(&tail), "{}", hex::encode(&cbor));
    let d = SignedReceipt::decode(&refused.sign(&zj_key())).unwrap();
    assert_eq!(d.receipt, refused);
}

#[test]
fn reason_numbers_follow_the_table_of_section_5() {
    assert_eq!(ManifestReason::Malformed.number(), 1);
    assert_eq!(ManifestReason::Superseded.number(), 14);
    assert_eq!(ManifestReason::Revoked.number(), 15);
    for (i, r) in ManifestReason::ALL.iter().enumerate() {
        assert_eq!(usize::from(r.number()), i + 1);
        assert_eq!(ManifestReason::from_number(u64::from(r.number())), Some(*r));
    }
    assert_eq!(ManifestReason::from_number(0), None);
    assert_eq!(ManifestReason::from_number(16), None);
    assert_eq!(ManifestReason::from_number(u64::MAX), None);
}

#[test]
fn a_report_of_a_verdict_carries_its_reasons_without_detail() {
    let shown = SignedManifest::decode(KAT_MANIFEST).unwrap();
    let verdict = ManifestVerdict::Stop(ManifestStop {
        trip_id: Some(testkit::TRIP_ID),
        version: Some(1),
        reasons: vec![
            StopReason {
                reason: ManifestReason::Superseded,
                seat: None,
                issuer: None,
                detail: "version 2 was seen here".into(),
            },
            StopReason {
                reason: ManifestReason::Revoked,
                seat: Some(2),
                issuer: Some(testkit::prov(CQ)),
                detail: "code revoked".into(),
            },
        ],
    });
    let r = CheckReport::of_verdict(
        &shown,
        &verdict,
        testkit::prov(JS),
        Checkpoint::new("苏皖界G40收费站").unwrap(),
        testkit::NOW + 7200,
    );
    assert_eq!(r, check_report());
}

// --- matching with the sealed versions ---

#[test]
fn records_match_the_version_they_name() {
    let v1 = SignedManifest::decode(&sign(&trip(3), &sc_key())).unwrap();
    let mut m2 = trip(2);
    m2.version = 2;
    let v2 = SignedManifest::decode(&sign(&m2, &sc_key())).unwrap();
    let mut other = trip(3);
    other.trip_id = TripId([1; 8]);
    let other = SignedManifest::decode(&sign(&other, &sc_key())).unwrap();
    let sealed = [other.clone(), v1.clone(), v2.clone()];

    let receipt = SignedReceipt::decode(&handover().sign(&zj_key())).unwrap();
    let m = receipt.match_sealed(&sealed).unwrap();
    assert_eq!(m.cose_bytes(), v1.cose_bytes());
    // Only version 2 (2 people) sealed: the receipt's version 1 is unknown.
    assert_eq!(
        receipt
            .match_sealed(&[other.clone(), v2.clone()])
            .unwrap_err(),
        RecordMismatch::UnknownVersion {
            trip_id: testkit::TRIP_ID,
            version: 1
        }
    );
    assert_eq!(
        receipt
            .match_sealed(std::slice::from_ref(&other))
            .unwrap_err(),
        RecordMismatch::UnknownTrip(testkit::TRIP_ID)
    );
    // Version 2 with the hash of version 1; then a seat beyond version 2's two people.
    let mut r = handover();
    r.version = 2;
    let signed = SignedReceipt::decode(&r.sign(&zj_key())).unwrap();
    assert_eq!(
        signed.match_sealed(&sealed).unwrap_err(),
        RecordMismatch::Hash(2)
    );
    r.manifest_hash = manifest_hash(&v2);
    let signed = SignedReceipt::decode(&r.sign(&zj_key())).unwrap();
    assert_eq!(
        signed.match_sealed(&sealed).unwrap_err(),
        RecordMismatch::Seat {
            seat: 3,
            version: 2,
            people: 2
        }
    );
    // The report names version 1 of the 2-person trip: that hash is of no sealed version.
    let report = SignedCheckReport::decode(&check_report().sign(&js_key())).unwrap();
    assert_eq!(
        report.match_sealed(&sealed).unwrap_err(),
        RecordMismatch::Hash(1)
    );
    let two = SignedManifest::decode(KAT_MANIFEST).unwrap();
    assert_eq!(
        report
            .match_sealed(std::slice::from_ref(&two))
            .unwrap()
            .cose_bytes(),
        two.cose_bytes()
    );
}

// --- refusals, family by family ---

#[test]
fn wrong_array_lengths() {
    let mut items = items_of(&check_report().to_cbor());
    items.pop();
    let short = cose::sign(crate::cbor::encode(&Value::Array(items)), &js_key()).bytes;
    let e = report_err(&short);
    assert_eq!(
        e,
        RecordError::NotArray {
            what: "report",
            expected: 8,
            found: "it has 7".into()
        }
    );
    assert_eq!(e.code(), "record.not_array");
    let mut items = items_of(&handover().to_cbor());
    items.push(uint(0));
    let long = cose::sign(crate::cbor::encode(&Value::Array(items)), &zj_key()).bytes;
    assert!(matches!(
        receipt_err(&long),
        RecordError::NotArray { what: "receipt", expected: 8, found } if found == "it has 9"
    ));
    // Inner arrays: a reason of 2, a person of 5.
    let reasons = Value::Array(vec![Value::Array(vec![uint(14), Value::Null])]);
    assert!(matches!(
        report_err(&report_with(7, reasons)),
        RecordError::NotArray {
            what: "reason",
            expected: 3,
            ..
        }
    ));
    let person = Value::Array(vec![uint(1), Value::Bool(true), uint(0), text(""), uint(0)]);
    assert!(matches!(
        receipt_err(&receipt_with(7, Value::Array(vec![person]))),
        RecordError::NotArray {
            what: "person",
            expected: 4,
            ..
        }
    ));
    // Not an array at all.
    let map = cose::sign(vec![0xa0], &js_key()).bytes;
    assert!(matches!(
        report_err(&map),
        RecordError::NotArray { what: "report", .. }
    ));
}

#[test]
fn non_canonical_integers() {
    // checked_at (a 4-byte head, 0x1a) written with an 8-byte head (0x1b).
    let cbor = check_report().to_cbor();
    let t = ((testkit::NOW + 7200).secs() as u32).to_be_bytes();
    let head = [0x1a, t[0], t[1], t[2], t[3]];
    let at = cbor.windows(5).position(|w| w == head).expect("checked_at");
    let mut long = cbor[..at].to_vec();
    long.extend_from_slice(&[0x1b, 0, 0, 0, 0, t[0], t[1], t[2], t[3]]);
    long.extend_from_slice(&cbor[at + 5..]);
    let e = report_err(&cose::sign(long, &js_key()).bytes);
    assert_eq!(e, RecordError::NotCanonical(at));
    assert_eq!(e.code(), "record.not_canonical");
    // version 1 as 0x18 0x01.
    let cbor = handover().to_cbor();
    let mut long = cbor[..10].to_vec();
    assert_eq!(cbor[10], 0x01, "version 1 follows the 8-byte trip id");
    long.extend_from_slice(&[0x18, 0x01]);
    long.extend_from_slice(&cbor[11..]);
    assert_eq!(
        receipt_err(&cose::sign(long, &zj_key()).bytes),
        RecordError::NotCanonical(10)
    );
}

#[test]
fn trailing_bytes() {
    let mut payload = check_report().to_cbor();
    payload.push(0x00);
    let e = report_err(&cose::sign(payload, &js_key()).bytes);
    assert_eq!(e, RecordError::CborTrailing(1));
    assert_eq!(e.code(), "record.trailing");
    let mut bytes = handover().sign(&zj_key());
    bytes.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(
        receipt_err(&bytes),
        RecordError::Cose(CodeError::CborTrailing(2))
    );
}

#[test]
fn bad_enum_values() {
    for (v, field) in [(0, "verdict"), (3, "verdict")] {
        assert_eq!(field_of(report_err(&report_with(6, uint(v)))), field);
    }
    let reason = |n| Value::Array(vec![Value::Array(vec![uint(n), Value::Null, Value::Null])]);
    for n in [0, 16, u64::MAX] {
        assert_eq!(field_of(report_err(&report_with(7, reason(n)))), "reason");
    }
    for v in [0, 3] {
        assert_eq!(field_of(receipt_err(&receipt_with(5, uint(v)))), "outcome");
    }
    let person = |seat, present: Value, measure| {
        Value::Array(vec![Value::Array(vec![
            uint(seat),
            present,
            uint(measure),
            text(""),
        ])])
    };
    let e = receipt_err(&receipt_with(7, person(1, Value::Bool(true), 4)));
    assert_eq!(
        e,
        RecordError::Field {
            field: "measure",
            why: "is 4; 0 to 3 are defined".into()
        }
    );
    assert_eq!(
        field_of(receipt_err(&receipt_with(7, person(1, uint(1), 0)))),
        "present"
    );
    // Seats outside 1 to 99, in a person and in a reason.
    for seat in [0, 100] {
        let e = receipt_err(&receipt_with(7, person(seat, Value::Bool(true), 0)));
        assert_eq!(field_of(e), "seat");
        let r = Value::Array(vec![Value::Array(vec![uint(15), uint(seat), uint(500000)])]);
        assert_eq!(field_of(report_err(&report_with(7, r))), "seat");
    }
    // Province fields hold province-level codes.
    assert_eq!(
        field_of(report_err(&report_with(3, uint(511304)))),
        "checker"
    );
    assert_eq!(
        field_of(receipt_err(&receipt_with(3, uint(330200)))),
        "destination"
    );
    let r = Value::Array(vec![Value::Array(vec![uint(15), uint(2), uint(123)])]);
    assert_eq!(field_of(report_err(&report_with(7, r))), "issuer");
}

#[test]
fn texts_too_long_or_with_a_control_character() {
    let e = report_err(&report_with(4, text(&"关".repeat(22))));
    assert_eq!(
        e,
        RecordError::Field {
            field: "checkpoint",
            why: "has 66 bytes; at most 64".into()
        }
    );
    assert_eq!(
        field_of(report_err(&report_with(4, text("")))),
        "checkpoint"
    );
    assert_eq!(
        field_of(report_err(&report_with(4, text(" \u{200b}")))),
        "checkpoint"
    );
    let e = report_err(&report_with(4, text("G40\u{7}")));
    assert_eq!(
        e,
        RecordError::TextCharacter {
            field: "checkpoint",
            ch: '\u{7}',
            position: 4
        }
    );
    assert_eq!(e.code(), "record.character");
    assert_eq!(
        field_of(receipt_err(&receipt_with(6, text(&"a".repeat(201))))),
        "reason"
    );
    assert!(matches!(
        receipt_err(&receipt_with(6, text("a\u{202e}b"))),
        RecordError::TextCharacter {
            field: "reason",
            position: 2,
            ..
        }
    ));
    let person = Value::Array(vec![uint(1), Value::Bool(true), uint(0), text("\n")]);
    assert!(matches!(
        receipt_err(&receipt_with(7, Value::Array(vec![person]))),
        RecordError::TextCharacter {
            field: "reason",
            ch: '\n',
            ..
        }
    ));
    // 200 bytes is the limit; 64 for a checkpoint.
    assert!(ReasonText::new("a".repeat(200)).is_ok());
    assert!(Checkpoint::new("a".repeat(64)).is_ok());
    assert_eq!(
        field_of(Checkpoint::new("a".repeat(65)).unwrap_err()),
        "checkpoint"
    );
    assert_eq!(field_of(report_err(&report_with(4, uint(1)))), "checkpoint");
}

#[test]
fn wrong_hash_and_trip_id_lengths() {
    let e = report_err(&report_with(2, Value::Bytes(vec![0; 31])));
    assert_eq!(
        e,
        RecordError::Field {
            field: "manifest_hash",
            why: "has 31 bytes; 32 are required (SHA-256)".into()
        }
    );
    assert_eq!(
        field_of(receipt_err(&receipt_with(2, Value::Bytes(vec![0; 33])))),
        "manifest_hash"
    );
    assert_eq!(
        field_of(receipt_err(&receipt_with(2, text("hash")))),
        "manifest_hash"
    );
    assert_eq!(
        field_of(report_err(&report_with(0, Value::Bytes(vec![0x7e; 9])))),
        "trip_id"
    );
}

#[test]
fn unsigned_or_another_algorithm() {
    // ES256 (-7) in the protected header.
    let es256 = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ES256)
                .key_id(js_key().kid().0.to_vec())
                .build(),
        )
        .payload(check_report().to_cbor())
        .signature(vec![0; 64])
        .build()
        .to_vec()
        .unwrap();
    let e = report_err(&es256);
    assert_eq!(
        e,
        RecordError::Cose(CodeError::UnsupportedAlgorithm("-7 (ES256)".into()))
    );
    assert_eq!(e.code(), "cose.alg");
    // No signature.
    let unsigned = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::EdDSA)
                .key_id(zj_key().kid().0.to_vec())
                .build(),
        )
        .payload(handover().to_cbor())
        .build()
        .to_vec()
        .unwrap();
    assert_eq!(
        receipt_err(&unsigned),
        RecordError::Cose(CodeError::SignatureLength(0))
    );
    // The bare payload, no envelope.
    assert!(matches!(
        receipt_err(&handover().to_cbor()),
        RecordError::Cose(CodeError::NotCoseSign1(_))
    ));
    // Tagged COSE_Sign1 (18).
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&check_report().sign(&js_key()));
    assert_eq!(
        report_err(&tagged),
        RecordError::Cose(CodeError::UnexpectedTag(18))
    );
}

#[test]
fn oversized_records() {
    let big = vec![0u8; MAX_REPORT_BYTES + 1];
    assert_eq!(
        report_err(&big),
        RecordError::TooLarge {
            len: MAX_REPORT_BYTES + 1,
            max: MAX_REPORT_BYTES
        }
    );
    assert_eq!(report_err(&big).code(), "record.too_large");
    assert!(matches!(
        receipt_err(&vec![0u8; MAX_RECEIPT_BYTES + 1]),
        RecordError::TooLarge { .. }
    ));
    // The largest receipt the rules allow fits: 99 people with 200-byte reasons.
    let mut r = handover();
    r.people = (1..=MAX_PEOPLE)
        .map(|seat| ReceiptPerson {
            seat,
            present: true,
            measure: Measure::Hospital,
            reason: ReasonText::new("病".repeat(66)).unwrap(),
        })
        .collect();
    r.reason = ReasonText::new("a".repeat(200)).unwrap();
    let bytes = r.sign(&zj_key());
    assert_eq!(bytes.len(), 20_617);
    assert!(bytes.len() <= MAX_RECEIPT_BYTES);
    assert_eq!(SignedReceipt::decode(&bytes).unwrap().receipt, r);
    // And the largest report: every reason, and one per seat.
    let mut rep = check_report();
    rep.checkpoint = Checkpoint::new("a".repeat(64)).unwrap();
    rep.reasons = (0..MAX_REASONS)
        .map(|i| ReportReason {
            reason: ManifestReason::Revoked,
            seat: Some(i % MAX_PEOPLE + 1),
            issuer: Some(testkit::prov(CQ)),
        })
        .collect();
    let bytes = rep.sign(&js_key());
    assert_eq!(bytes.len(), 1_197);
    assert!(bytes.len() <= MAX_REPORT_BYTES);
    assert_eq!(SignedCheckReport::decode(&bytes).unwrap().report, rep);
    rep.reasons.push(rep.reasons[0]);
    assert_eq!(field_of(report_err(&rep.sign(&js_key()))), "reasons");
}

#[test]
fn verdicts_outcomes_and_people_must_agree() {
    let mut pass = check_report();
    pass.verdict = ReportVerdict::Pass;
    assert_eq!(field_of(report_err(&pass.sign(&js_key()))), "reasons");
    pass.reasons.clear();
    assert_eq!(
        SignedCheckReport::decode(&pass.sign(&js_key()))
            .unwrap()
            .report,
        pass
    );
    let mut stop = check_report();
    stop.reasons.clear();
    assert_eq!(field_of(report_err(&stop.sign(&js_key()))), "reasons");
    let mut v0 = check_report();
    v0.version = 0;
    assert_eq!(field_of(report_err(&v0.sign(&js_key()))), "version");

    let mut r = refusal();
    r.people = handover().people;
    assert_eq!(field_of(receipt_err(&r.sign(&zj_key()))), "people");
    r.people.clear();
    r.reason = ReasonText::default();
    assert_eq!(field_of(receipt_err(&r.sign(&zj_key()))), "reason");
    let mut d = handover();
    d.people.clear();
    assert_eq!(field_of(receipt_err(&d.sign(&zj_key()))), "people");
    let mut d = handover();
    d.people.swap(0, 1);
    assert_eq!(field_of(receipt_err(&d.sign(&zj_key()))), "seat");
    let mut d = handover();
    d.people[1].seat = 1;
    assert_eq!(field_of(receipt_err(&d.sign(&zj_key()))), "seat");
    let mut d = handover();
    d.people[2].measure = Measure::Quarantine;
    assert_eq!(field_of(receipt_err(&d.sign(&zj_key()))), "measure");
    assert_eq!(d.check().map_err(field_of), Err("measure"));
    assert_eq!(handover().check(), Ok(()));
    assert_eq!(check_report().check(), Ok(()));
}

// --- properties ---

fn any_reason() -> impl Strategy<Value = ReportReason> {
    (
        0..ManifestReason::ALL.len(),
        proptest::option::of(1..=MAX_PEOPLE),
        proptest::option::of(prop::sample::select(vec![510000u32, 500000, 520000])),
    )
        .prop_map(|(i, seat, issuer)| ReportReason {
            reason: ManifestReason::ALL[i],
            seat,
            issuer: issuer.map(testkit::prov),
        })
}

proptest! {
    /// Any valid report signs, decodes to itself, and verifies under its signer only.
    #[test]
    fn reports_round_trip(
        version in 1u64..=u64::MAX,
        checked_at in 0..=crate::time::UnixTime::MAX.secs(),
        reasons in proptest::collection::vec(any_reason(), 0..=MAX_REASONS),
        checkpoint in "[a-zA-Z0-9 收费站界]{0,12}[a-z收]",
        hash in any::<[u8; 32]>(),
    ) {
        let r = CheckReport {
            version,
            checked_at: crate::time::UnixTime::from_secs(checked_at),
            verdict: if reasons.is_empty() { ReportVerdict::Pass } else { ReportVerdict::Stop },
            reasons,
            checkpoint: Checkpoint::new(checkpoint).unwrap(),
            manifest_hash: hash,
            ..check_report()
        };
        let d = SignedCheckReport::decode(&r.sign(&js_key())).unwrap();
        prop_assert_eq!(&d.report, &r);
        prop_assert!(d.verify_signature(&js_key().public()));
        prop_assert!(!d.verify_signature(&zj_key().public()));
    }

    /// Any valid delivery signs and decodes to itself.
    #[test]
    fn receipts_round_trip(
        seats in proptest::collection::btree_set(1..=MAX_PEOPLE, 1..=MAX_PEOPLE),
        flags in proptest::collection::vec(
            (any::<bool>(), 0u64..4, "[a-z体温℃ ]{0,8}"),
            MAX_PEOPLE,
        ),
        received_at in 0..=crate::time::UnixTime::MAX.secs(),
    ) {
        let people = seats.into_iter().zip(flags).map(|(seat, (present, m, reason))| {
            let reason = if reason.trim().is_empty() { String::new() } else { reason };
            ReceiptPerson {
                seat,
                present,
                measure: if present { Measure::from_number(m).unwrap() } else { Measure::None },
                reason: ReasonText::new(reason).unwrap(),
            }
        }).collect();
        let r = Receipt {
            people,
            received_at: crate::time::UnixTime::from_secs(received_at),
            ..handover()
        };
        let d = SignedReceipt::decode(&r.sign(&zj_key())).unwrap();
        prop_assert_eq!(&d.receipt, &r);
    }

    /// No bytes panic either decoder; a changed payload byte is refused or decodes to a record
    /// that re-encodes to the same payload (one record, one encoding).
    #[test]
    fn no_input_panics_the_record_decoders(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let _ = SignedCheckReport::decode(&bytes);
        let _ = SignedReceipt::decode(&bytes);
        let _ = SignedCheckReport::decode(&cose::sign(bytes.clone(), &js_key()).bytes);
        let _ = SignedReceipt::decode(&cose::sign(bytes, &zj_key()).bytes);
        let mut p = check_report().to_cbor();
        let i = at.index(p.len());
        p[i] = byte;
        if let Ok(d) = SignedCheckReport::decode(&cose::sign(p.clone(), &js_key()).bytes) {
            prop_assert_eq!(d.report.to_cbor(), p);
        }
        let mut p = handover().to_cbor();
        let i = at.index(p.len());
        p[i] = byte;
        if let Ok(d) = SignedReceipt::decode(&cose::sign(p.clone(), &zj_key()).bytes) {
            prop_assert_eq!(d.receipt.to_cbor(), p);
        }
    }
}
