//! One test per refusal of the decoder, stage by stage (docs/transport.md sections 2 and 3).

use super::*;
use crate::cbor::uint;

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn field_err(e: ManifestError, field: &str) -> String {
    match e {
        ManifestError::Field { field: f, why } if f == field => why,
        other => panic!("expected a fault of {field}, got {other:?}"),
    }
}

fn person_err(e: ManifestError, seat: usize) -> String {
    match e {
        ManifestError::Person { seat: s, why } if s == seat => why,
        other => panic!("expected a fault of seat {seat}, got {other:?}"),
    }
}

fn people_bytes(people: &[Person]) -> Value {
    Value::Bytes(people.iter().flat_map(|p| p.pack()).collect())
}

// --- prefix and Base45 ---

#[test]
fn empty() {
    assert_eq!(decode_err(" \r\n"), ManifestError::Empty);
    assert_eq!(ManifestError::Empty.code(), "prefix.empty");
}

#[test]
fn too_long() {
    let s = format!("{PREFIX}{}", "0".repeat(MAX_MANIFEST_CHARS));
    assert_eq!(
        decode_err(&s),
        ManifestError::TooLong(MAX_MANIFEST_CHARS + 7)
    );
}

#[test]
fn a_health_code_is_not_a_manifest() {
    let code = testkit::code(&testkit::claims("510000", 1), &sc_key());
    let e = decode_err(&code);
    assert_eq!(e, ManifestError::ForeignPrefix("HCMR1:".into()));
    assert_eq!(e.code(), "prefix.foreign");
    assert_eq!(
        decode_err("HC1:NCFOXN"),
        ManifestError::ForeignPrefix("HC1:".into())
    );
}

#[test]
fn missing_prefix() {
    assert_eq!(decode_err("TWGSLK"), ManifestError::MissingPrefix);
    assert_eq!(decode_err("A B:TWGSLK"), ManifestError::MissingPrefix);
    assert_eq!(ManifestError::MissingPrefix.code(), "prefix.missing");
    // The prefix is upper case, like all of QR alphanumeric mode.
    assert_eq!(
        decode_err("hcmrt1:TWGSLK"),
        ManifestError::ForeignPrefix("hcmrt1:".into())
    );
}

#[test]
fn base45_character() {
    let e = decode_err("HCMRT1:BBa");
    assert_eq!(
        e,
        ManifestError::Base45(CodeError::Base45Character {
            position: 2,
            ch: 'a'
        })
    );
    assert_eq!(e.code(), "base45.character");
}

#[test]
fn base45_length() {
    assert_eq!(
        decode_err("HCMRT1:BB8A").code(),
        CodeError::Base45Length(4).code()
    );
}

#[test]
fn too_large() {
    let s = encoding::wrap(&[0u8; MAX_COSE_BYTES + 1]);
    assert_eq!(decode_err(&s), ManifestError::TooLarge(MAX_COSE_BYTES + 1));
}

// --- COSE_Sign1 ---

#[test]
fn not_a_cose_sign1() {
    let e = decode_err(&encoding::wrap(&[0x01]));
    assert!(
        matches!(e, ManifestError::Cose(CodeError::NotCoseSign1(_))),
        "{e:?}"
    );
    assert_eq!(e.code(), "cose.structure");
}

#[test]
fn tagged_cose_sign1() {
    let cose_bytes = cose::sign(trip(1).to_cbor(), &sc_key()).bytes;
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&cose_bytes);
    assert_eq!(
        decode_err(&encoding::wrap(&tagged)),
        ManifestError::Cose(CodeError::UnexpectedTag(18))
    );
}

// --- the payload's CBOR ---

#[test]
fn payload_not_well_formed() {
    let e = decode_err(&sign_payload(vec![0x8d, 0x01]));
    assert!(matches!(e, ManifestError::Cbor(_)), "{e:?}");
    assert_eq!(e.code(), "manifest.cbor");
}

#[test]
fn payload_trailing_bytes() {
    let mut p = trip(1).to_cbor();
    p.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(decode_err(&sign_payload(p)), ManifestError::CborTrailing(2));
}

#[test]
fn payload_not_canonical() {
    // The version (byte 10) as a 1-byte-head uint 0x18 0x01 instead of 0x01.
    let p = trip(1).to_cbor();
    assert_eq!(p[10], 0x01);
    let mut long = p[..10].to_vec();
    long.extend_from_slice(&[0x18, 0x01]);
    long.extend_from_slice(&p[11..]);
    let e = decode_err(&sign_payload(long));
    assert_eq!(e, ManifestError::NotCanonical(10));
    assert_eq!(e.code(), "manifest.not_canonical");
}

#[test]
fn payload_not_an_array() {
    let e = decode_err(&sign_payload(testkit::claims("510000", 1).to_cbor()));
    assert!(matches!(e, ManifestError::NotArray(_)), "{e:?}");
}

#[test]
fn payload_with_a_field_too_many_or_too_few() {
    let Value::Array(mut items) = crate::cbor::decode_exact(&trip(1).to_cbor()).unwrap() else {
        unreachable!()
    };
    items.push(uint(0));
    let e = decode_err(&sign_payload(crate::cbor::encode(&Value::Array(
        items.clone(),
    ))));
    assert_eq!(e, ManifestError::NotArray("it has 14".into()));
    items.truncate(12);
    let e = decode_err(&sign_payload(crate::cbor::encode(&Value::Array(items))));
    assert_eq!(e, ManifestError::NotArray("it has 12".into()));
}

// --- fields ---

#[test]
fn trip_id_length() {
    let why = field_err(
        decode_err(&with_field(1, 0, Value::Bytes(vec![1; 9]))),
        "trip_id",
    );
    assert_eq!(why, "has 9 bytes; 8 are required");
}

#[test]
fn field_of_the_wrong_type() {
    let e = decode_err(&with_field(1, 1, text("1")));
    assert_eq!(
        field_err(e.clone(), "version"),
        "is not an unsigned integer"
    );
    assert_eq!(e.code(), "manifest.field");
}

#[test]
fn version_zero() {
    field_err(decode_err(&with_field(1, 1, uint(0))), "version");
}

#[test]
fn origin_in_no_province() {
    let why = field_err(decode_err(&with_field(1, 2, uint(991304))), "origin");
    assert!(why.contains("no province"), "{why}");
    let why = field_err(decode_err(&with_field(1, 2, uint(51130))), "origin");
    assert!(why.contains("six-digit"), "{why}");
}

#[test]
fn destination_in_no_province() {
    field_err(decode_err(&with_field(1, 3, uint(u64::MAX))), "destination");
}

#[test]
fn transit_not_province_level() {
    let e = decode_err(&with_field(1, 4, Value::Array(vec![uint(340100)])));
    field_err(e, "transit");
}

#[test]
fn transit_too_long() {
    let nine = Value::Array(vec![uint(340000); MAX_TRANSIT + 1]);
    assert_eq!(
        field_err(decode_err(&with_field(1, 4, nine)), "transit"),
        "has 9 provinces; at most 8"
    );
}

#[test]
fn vehicle_too_long() {
    // 17 bytes.
    let why = field_err(
        decode_err(&with_field(1, 5, text("川R·123456789AB"))),
        "vehicle",
    );
    assert_eq!(why, "has 17 bytes; at most 16");
}

#[test]
fn place_too_long() {
    // 9 characters of 3 bytes: 27 bytes.
    field_err(
        decode_err(&with_field(1, 6, text("宁波市某电子厂一号"))),
        "place",
    );
}

#[test]
fn escort_too_long() {
    field_err(decode_err(&with_field(1, 10, text("张*三李四"))), "escort");
}

#[test]
fn text_with_a_bidirectional_control() {
    let e = decode_err(&with_field(1, 5, text("川R\u{202e}54321")));
    assert_eq!(
        e,
        ManifestError::TextCharacter {
            field: "vehicle",
            ch: '\u{202e}',
            position: 3
        }
    );
    assert_eq!(e.code(), "manifest.character");
}

#[test]
fn text_with_nothing_visible() {
    let why = field_err(decode_err(&with_field(1, 10, text("\u{200b} "))), "escort");
    assert_eq!(why, "has no visible character");
}

#[test]
fn time_after_9999() {
    let t = uint(UnixTime::MAX.secs() + 1);
    field_err(decode_err(&with_field(1, 7, t)), "departure");
}

#[test]
fn arrival_not_after_departure() {
    let departure = trip(1).departure.secs();
    let why = field_err(decode_err(&with_field(1, 8, uint(departure))), "arrival");
    assert_eq!(why, "is not after departure");
}

#[test]
fn arrival_more_than_72_hours_after_departure() {
    let late = trip(1).departure.secs() + MAX_TRIP_SECS + 1;
    field_err(decode_err(&with_field(1, 8, uint(late))), "arrival");
    // 72 h exactly is allowed.
    let edge = trip(1).departure.secs() + MAX_TRIP_SECS;
    assert!(SignedManifest::decode(&with_field(1, 8, uint(edge))).is_ok());
}

#[test]
fn sealed_more_than_72_hours_after_departure() {
    let late = trip(1).departure.secs() + MAX_TRIP_SECS + 1;
    field_err(decode_err(&with_field(1, 9, uint(late))), "sealed_at");
}

#[test]
fn too_many_issuers() {
    let seventeen = Value::Array(vec![uint(510000); MAX_ISSUERS + 1]);
    field_err(decode_err(&with_field(1, 11, seventeen)), "issuers");
}

#[test]
fn no_people() {
    field_err(
        decode_err(&with_field(1, 12, Value::Bytes(vec![]))),
        "people",
    );
}

#[test]
fn too_many_people() {
    let hundred: Vec<Person> = (1..=MAX_PEOPLE + 1).map(rider).collect();
    let why = field_err(
        decode_err(&with_field(1, 12, people_bytes(&hundred))),
        "people",
    );
    assert_eq!(why, "has 100 people; 1 to 99 are allowed");
}

#[test]
fn people_not_a_multiple_of_13_bytes() {
    let mut b = rider(1).pack().to_vec();
    b.push(0);
    field_err(decode_err(&with_field(1, 12, Value::Bytes(b))), "people");
}

#[test]
fn person_flags_bit_0_set() {
    let mut b = [rider(1).pack(), rider(2).pack()].concat();
    b[13] |= 1;
    let why = person_err(decode_err(&with_field(2, 12, Value::Bytes(b))), 2);
    assert_eq!(why, "flags bit 0 is set; it must be 0");
}

#[test]
fn person_status_zero() {
    let mut b = rider(1).pack();
    b[0] &= !0b1100;
    let e = decode_err(&with_field(1, 12, Value::Bytes(b.to_vec())));
    assert_eq!(e.code(), "manifest.person");
    assert!(person_err(e, 1).starts_with("status 0"));
}

#[test]
fn person_issuer_index_out_of_range() {
    let p = Person {
        issuer: 3,
        ..rider(1)
    };
    let why = person_err(decode_err(&with_field(1, 12, people_bytes(&[p]))), 1);
    assert_eq!(why, "issuer index 3 is not among the 3 issuers");
}

#[test]
fn the_text_types_refuse_what_the_decoder_refuses() {
    assert!(Vehicle::new("G1234/05").is_ok());
    assert!(Vehicle::new("川R·123456789AB").is_err());
    assert!(Place::new("").is_err());
    assert!(Escort::new("张\n三").is_err());
    assert_eq!(Vehicle::MAX_BYTES, 16);
    assert_eq!(Place::MAX_BYTES, 24);
    assert_eq!(Escort::MAX_BYTES, 12);
}
