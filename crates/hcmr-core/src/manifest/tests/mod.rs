//! Tests of the manifest format: known answers, round trips and sizes here; one test per
//! decoder refusal in `refusals`; properties in `properties`.

use ciborium::value::Value;

use super::*;
use crate::code::{cose, CodeError};
use crate::testkit::{self, gd_key, rider, sc_key, trip, NOW};

mod chain;
mod properties;
mod records;
mod refusals;

/// `payload` (any bytes) signed by Sichuan's key and wrapped as a manifest string.
fn sign_payload(payload: Vec<u8>) -> String {
    encoding::wrap(&cose::sign(payload, &sc_key()).bytes)
}

/// The fixture trip of `n` people with array element `index` replaced by `value`, signed.
fn with_field(n: usize, index: usize, value: Value) -> String {
    let Value::Array(mut items) = crate::cbor::decode_exact(&trip(n).to_cbor()).unwrap() else {
        panic!("a manifest is an array");
    };
    items[index] = value;
    sign_payload(crate::cbor::encode(&Value::Array(items)))
}

fn decode_err(s: &str) -> ManifestError {
    SignedManifest::decode(s).unwrap_err()
}

/// The payload of [`testkit::trip`] with 2 people (docs/transport.md section 3): array of 13
/// (0x8d), trip id, version 1, 511304, 330200, [340000], "川R·12345", "宁波市某电子厂",
/// departure, arrival, sealed_at, "张*三", [510000, 500000, 520000], 26 bytes of people.
const KAT_CBOR_HEX: &str = "8d487e7e7e7e7e7e7e7e011a0007cd481a000509d8811a000530206be5b79d52\
    c2b7313233343575e5ae81e6b3a2e5b882e69f90e794b5e5ad90e58e821a684eef901a68505d301a684ee18067e5\
    bca02ae4b889831a0007c8301a0007a1201a0007ef40581a06000795766ffff9c52628837f14000e92537dd81181\
    58c3639b";

/// [`KAT_CBOR_HEX`] signed with [`testkit::sc_key`] (seed `[0x51; 32]`).
const KAT_MANIFEST: &str = "HCMRT1:TWGSLK/-4C69AQEOKO9$SY+6L8BX%HR:FR:FR:FR:FC60700$.P-C3TS0U\
    GR-C3NT0J44$1T:*JWRO*96DL65Y6S1T:IG-VM%1TUOGX7KJCTZ:MH.L-0T6KGH8D%CUAF387AT36H8D%MS26D3%N0J5 \
    EN$PG700%DP-C3I/0S247003BU96B6Y06/0Y/E9GWP-OL55.2GE00JMI-+FQ92/9BTQC27BC52JNHMSO$ZA$ 046T9P1\
    LQBM2FJ%R WO8EDNI4GOBYS8M%ESHD6CRCW7OZN-VG6EC:M7C$9U33+XQQ%0.SN RSRH23+3EXK";

#[test]
fn known_answer_vector() {
    let m = trip(2);
    assert_eq!(hex::encode(m.to_cbor()), KAT_CBOR_HEX);
    assert_eq!(sign(&m, &sc_key()), KAT_MANIFEST);
    // Deterministic (RFC 8032).
    assert_eq!(sign(&m, &sc_key()), KAT_MANIFEST);
    let d = SignedManifest::decode(KAT_MANIFEST).unwrap();
    assert_eq!(d.manifest, m);
    assert_eq!(d.kid, sc_key().kid());
    // The envelope is the code format's: untagged array of 4, protected {1: -8, 4: kid}.
    let protected = format!("844da201270448{}a0", sc_key().kid());
    assert!(hex::encode(d.cose_bytes()).starts_with(&protected));
    assert_eq!(
        d.signature()[..],
        d.cose_bytes()[d.cose_bytes().len() - 64..]
    );
    // Only QR alphanumeric characters.
    assert!(KAT_MANIFEST
        .chars()
        .all(|c| "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(c)));
}

#[test]
fn the_people_are_packed_as_section_3_1_says() {
    let m = trip(2);
    let cbor = m.to_cbor();
    // The last item: bstr of 26 bytes (0x58 0x1a), seat 1 then seat 2.
    let people = &cbor[cbor.len() - 26..];
    assert_eq!(cbor[cbor.len() - 28..cbor.len() - 26], [0x58, 0x1a]);
    // Seat 1: issuer 0, green (1 << 2), crew (1 << 1); 7 minutes.
    assert_eq!(people[..3], [0b0000_0110, 0x00, 0x07]);
    assert_eq!(people[3..9], rider(1).cti);
    assert_eq!(people[9..13], rider(1).subject);
    // Seat 2: issuer 1 (1 << 4), green, passenger; 14 minutes.
    assert_eq!(people[13..16], [0b0001_0100, 0x00, 0x0e]);
    let red = Person {
        issuer: 15,
        status: crate::status::HealthStatus::Red,
        crew: false,
        age_minutes: 0xabcd,
        ..rider(1)
    };
    assert_eq!(red.pack()[..3], [0xfc, 0xab, 0xcd]);
    assert_eq!(Person::unpack(&red.pack(), 1), Ok(red));
}

#[test]
fn round_trips_keep_every_field_and_the_signature_checks() {
    for n in [1, 2, 20, 55, MAX_PEOPLE] {
        let mut m = trip(n);
        m.version = 7;
        m.transit = vec![testkit::prov(testkit::AH), testkit::prov(testkit::JS)];
        let s = sign(&m, &sc_key());
        let d = SignedManifest::decode(&format!("{s}\r\n")).unwrap();
        assert_eq!(d.manifest, m, "{n} people");
        assert!(d.verify_signature(&sc_key().public()));
        assert!(!d.verify_signature(&gd_key().public()));
        assert_eq!(encoding::wrap(d.cose_bytes()), s);
        assert_eq!(d.manifest.headcount(), (n - 1, 1));
        assert_eq!(
            d.manifest.origin_province().unwrap(),
            testkit::prov(testkit::SC)
        );
        assert_eq!(
            d.manifest.destination_province().unwrap(),
            testkit::prov(testkit::ZJ)
        );
    }
}

#[test]
fn a_re_signed_or_edited_manifest_does_not_verify() {
    // Re-signed by another key under Sichuan's kid: decodes, fails the signature.
    let forged = encoding::wrap(&cose::sign(trip(3).to_cbor(), &testkit::stranger()).bytes);
    let d = SignedManifest::decode(&forged).unwrap();
    assert!(!d.verify_signature(&sc_key().public()));
    // A seat edited after signing: the signature no longer covers the payload.
    let cose_bytes = SignedManifest::decode(&sign(&trip(3), &sc_key()))
        .unwrap()
        .cose_bytes()
        .to_vec();
    let mut edited = cose_bytes.clone();
    let last_person_flags = edited.len() - 64 - 2 - 13;
    edited[last_person_flags] |= 0b0000_1000; // status bits 01 (green) to 11 (red)
    let d = SignedManifest::decode(&encoding::wrap(&edited)).unwrap();
    assert_eq!(
        d.manifest.people[2].status,
        crate::status::HealthStatus::Red
    );
    assert!(!d.verify_signature(&sc_key().public()));
}

#[test]
fn a_person_from_a_code_rounds_its_age_up() {
    use crate::status::HealthStatus::{Green, Yellow};
    let claims = testkit::claims("510000", 1); // iat = NOW - 60
    let code = crate::code::HealthCode::decode(&testkit::code(&claims, &sc_key())).unwrap();
    let iat = claims.iat;
    for (sealed_at, minutes) in [(iat, 0), (iat + 1, 1), (iat + 60, 1), (iat + 61, 2)] {
        let p = Person::from_code(&code, 2, Yellow, true, sealed_at).unwrap();
        assert_eq!(p.age_minutes, minutes);
        assert!(p.iat_bound(sealed_at) <= iat);
        assert!(iat.saturating_since(p.iat_bound(sealed_at)) < 60);
        assert_eq!((p.issuer, p.status, p.crew), (2, Yellow, true));
        assert_eq!(p.cti[..], code.cti()[..6]);
        assert_eq!(p.subject[..], claims.subject.subject_hash.0[..4]);
    }
    let max = iat + 60 * u64::from(u16::MAX);
    assert_eq!(
        Person::from_code(&code, 0, Green, false, max)
            .unwrap()
            .age_minutes,
        u16::MAX
    );
    assert_eq!(
        Person::from_code(&code, 0, Green, false, max + 1),
        Err(PersonError::TooOld(65_536))
    );
    assert_eq!(
        Person::from_code(&code, 0, Green, false, iat - 1),
        Err(PersonError::IssuedAfterSeal {
            iat,
            sealed_at: iat - 1
        })
    );
    assert_eq!(
        Person::from_code(&code, 16, Green, false, NOW),
        Err(PersonError::IssuerIndex(16))
    );
}

/// docs/transport.md section 3.2, from the real encoder: the typical fields of
/// [`testkit::trip`] (vehicle `川R·12345`, place `宁波市某电子厂`, 1 transit province, 3
/// issuers) for 1, 20 and 55 people: (CBOR bytes, COSE bytes, characters).
#[test]
fn sizes_of_typical_manifests() {
    for (n, cbor, cose_len, chars) in [
        (1, 114, 198, 304),
        (20, 363, 448, 679),
        (55, 818, 903, 1362),
        (MAX_PEOPLE, 1390, 1475, 2220),
    ] {
        let m = trip(n);
        let s = sign(&m, &sc_key());
        assert_eq!(m.to_cbor().len(), cbor, "{n} people");
        let d = SignedManifest::decode(&s).unwrap();
        assert_eq!(d.cose_bytes().len(), cose_len, "{n} people");
        assert_eq!(s.len(), chars, "{n} people");
    }
    // 55 people fit version 25-M's 1,451 alphanumeric characters.
    assert!(sign(&trip(55), &sc_key()).len() <= 1451);
}

/// docs/transport.md section 3.2, the largest fields ([`testkit::largest_trip`]: 16-byte
/// vehicle, 24-byte place, 4 transit provinces, 6 issuers): (CBOR bytes, COSE bytes,
/// characters).
#[test]
fn sizes_of_manifests_with_the_largest_fields() {
    let m = testkit::largest_trip(1);
    assert_eq!(m.vehicle.as_str().len(), Vehicle::MAX_BYTES);
    assert_eq!(m.place.as_str().len(), Place::MAX_BYTES);
    for (n, cbor, cose_len, chars) in [
        (1, 153, 237, 363),
        (20, 402, 487, 738),
        (55, 857, 942, 1420),
        (MAX_PEOPLE, 1429, 1514, 2278),
    ] {
        let m = testkit::largest_trip(n);
        let s = sign(&m, &sc_key());
        let d = SignedManifest::decode(&s).unwrap();
        assert_eq!(m.to_cbor().len(), cbor, "{n} people");
        assert_eq!(d.cose_bytes().len(), cose_len, "{n} people");
        assert_eq!(s.len(), chars, "{n} people");
    }
    // 55 people with the largest fields still fit version 25-M's 1,451 characters.
    assert!(sign(&testkit::largest_trip(55), &sc_key()).len() <= 1451);
}
