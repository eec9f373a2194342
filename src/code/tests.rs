//! Tests of the whole code pipeline: known-answer vectors, one hand-built input per decoder fault
//! (each through `transport::wrap` and `HealthCode::decode`), transport faults, and properties.
//! The vectors are the ones published in docs/code-format.md.

use std::collections::HashSet;

use ciborium::value::{Integer, Value};
use coset::{iana, AsCborValue, CoseSign1, CoseSign1Builder, Header, HeaderBuilder};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use proptest::prelude::*;

use super::cose::{TAG_COSE_SIGN1, TAG_CWT};
use super::transport;
use super::*;
use crate::identity::{DocumentType, SubjectHash};

// ---------------------------------------------------------------------------------------------
// Known-answer vectors
// ---------------------------------------------------------------------------------------------

/// Seed of the signing key of vector 1 (Sichuan).
const SEED_1: [u8; 32] = [0x42; 32];
/// Seed of the signing key of vector 2 (Guangdong).
const SEED_2: [u8; 32] = [0x24; 32];

/// `cti` of vector 1: bytes 00 01 .. 0f.
const CTI_1: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];
/// Subject hash of vector 1: bytes f0 f1 .. ff.
const HASH_1: [u8; 16] = [
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];
/// `cti` of vector 2: sixteen 0x5a bytes.
const CTI_2: [u8; 16] = [0x5a; 16];
/// Subject hash of vector 2: sixteen 0xa5 bytes.
const HASH_2: [u8; 16] = [0xa5; 16];

const KAT1_PUBLIC_KEY_HEX: &str =
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";
const KAT1_KID_HEX: &str = "3097e2dee2cb4a34";
const KAT1_CLAIMS_HEX: &str = "a50166353130303030041a6553f22c061a6553f1000750000102030405060708090a0b0c0d0e0f399831a401010201031a6563334004a40167e5bca02ae4b88902010372353130312a2a2a2a2a2a2a2a2a2a313233340450f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const KAT1_COSE_HEX: &str = "d2844da2012704483097e2dee2cb4a34a05868a50166353130303030041a6553f22c061a6553f1000750000102030405060708090a0b0c0d0e0f399831a401010201031a6563334004a40167e5bca02ae4b88902010372353130312a2a2a2a2a2a2a2a2a2a313233340450f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff584029338ecbdfd7444394e2958c85c24c9eb424198861d44708d82dc5c33cc547f7bda5d4c7d92601e7990d38a9565752c4daf27f024dbc81df28ff9f23b5543506";
const KAT1_CODE: &str = "HCMR1:NCF+90L10FFWTWGSLK/-4U5929J/7SMVPHT6.7BV%KK-C$966467367F3PRAKP57F3ORA70055AX507H0QS00+0J61%H1CT1R-1 AJ0XKX50Y507F3FOC8480XK26D3%N0J5 ENIB0RJ0RW6746*E5*E5*E5*E5*E5*96DL6OO0VKU5WUO/U/9VHLV WVA:VTAW27BH95F2IIDSFS8: IY+I.+G*U9 YMBA3OGC4:8 ER20PWU7I49*/NL+QFKR$A0VFJF778-A%KAPURO2GA$9$IGA85E5KP-MTV6VPI1W9";

const KAT2_PUBLIC_KEY_HEX: &str =
    "58936604abda112bc94933569c82f8d0cc0ddf92a3f8329f2f448f7f484a594c";
const KAT2_KID_HEX: &str = "5f23ba66a62a6aef";
const KAT2_CLAIMS_HEX: &str = "a50166343430303030041a6553f22c061a6553f10007505a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a399831a401010202031a655d2b8004a401664c2a204c2a2a0202036845312a2a2a2a36370450a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
const KAT2_CODE: &str = "HCMR1:NCFT90W10FFWTWGSLK/-4W69BN4//CDG59DUV7BV%KJ-C+Q66467367F3PRAKP57F3ORA70057A0JB0JB0JB0JB0JB0JB0JBCIB AJ0XKX50KB07F31ZBC8G0XK/-CTE5DS9:D5KB088DV96*E56F5:.6Z8AF.KF.KF.KF.KF.KF.KF.KS+KN68R T8%BD5RKK3CN710O-3JJSA:03-WJXMUJ-2$.AVN8$7E33G.V4J9UIHE37A2IIVMK4DG214WIHOW76J3+ PU10%53D.1+R1JJOD3";

/// Vector 1's COSE bytes compressed by another deflate implementation (zlib 1.2.13, level 9,
/// via Python's `zlib.compress`, with an independent Base45 encoder). Deflate output is not
/// unique, so the string differs from [`KAT1_CODE`]; it must decode to the same COSE bytes.
const KAT1_CODE_OTHER_DEFLATE: &str = "HCMR1:NCFOXN%TSMAHO.JLVO%UV-RFL-9HGJ6DH5AB:BJFKD4006R5WKL57KTGRT%SR*06003*8Y+CK+AR-EY*9K-D6-BE1G9A39M9SA3.43M+KITI.V3I:IY0LA1SE98SLPD.9M5ADDQ7M8T47.Q6G*6WB1VKUMZQM:5G9O1GW8$U2BU78GL2WZBE5V6JN7 EW7VHOXI-OAFHB3QVLYRBI4PHI9:OGYSR8UOUO$39+BOZ BC3TAY9O6P$M6-W5C0HL+0+MN.JL5LPL4AB*F3GWW-IV0HTMMB3065TU4";

fn claims_1() -> Claims {
    Claims {
        iss: "510000".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_300,
        cti: CTI_1.to_vec(),
        status: 1,
        status_valid_until: 1_701_000_000,
        subject: Subject {
            masked_name: "张*三".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "5101**********1234".into(),
            subject_hash: SubjectHash(HASH_1),
        },
    }
}

fn claims_2() -> Claims {
    Claims {
        iss: "440000".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_300,
        cti: CTI_2.to_vec(),
        status: 2,
        status_valid_until: 1_700_604_800,
        subject: Subject {
            masked_name: "L* L**".into(),
            document_type: DocumentType::Passport,
            masked_document_number: "E1****67".into(),
            subject_hash: SubjectHash(HASH_2),
        },
    }
}

fn key_1() -> NodeKey {
    NodeKey::from_seed(&SEED_1)
}

fn key_2() -> NodeKey {
    NodeKey::from_seed(&SEED_2)
}

fn kat1_cose() -> Vec<u8> {
    hex::decode(KAT1_COSE_HEX).unwrap()
}

#[test]
fn kat1_encodes_to_the_published_vector() {
    let k = key_1();
    assert_eq!(hex::encode(k.public().to_bytes()), KAT1_PUBLIC_KEY_HEX);
    assert_eq!(k.kid().to_string(), KAT1_KID_HEX);
    assert_eq!(hex::encode(claims_1().to_cbor()), KAT1_CLAIMS_HEX);
    assert_eq!(
        hex::encode(cose::sign(claims_1().to_cbor(), &k)),
        KAT1_COSE_HEX
    );
    assert_eq!(encode(&claims_1(), &k), KAT1_CODE);
    // Deterministic: a second run gives the same string.
    assert_eq!(encode(&claims_1(), &k), KAT1_CODE);
    // The transport stage alone, and its inverse.
    assert_eq!(transport::wrap(&kat1_cose()), KAT1_CODE);
    assert_eq!(transport::unwrap(KAT1_CODE).unwrap(), kat1_cose());
    // Only QR alphanumeric characters.
    assert!(KAT1_CODE
        .chars()
        .all(|c| "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(c)));
}

#[test]
fn kat1_cose_structure_is_as_specified() {
    let cose = kat1_cose();
    // Tag 18, array of 4, protected bstr(13) = {1: -8, 4: h'<kid>'}, empty unprotected map.
    let protected = format!("d2844da201270448{KAT1_KID_HEX}a0");
    assert!(KAT1_COSE_HEX.starts_with(&protected));
    // Then the payload bstr (0x58 0x68 = 104 bytes): the claims, byte for byte.
    let claims = hex::decode(KAT1_CLAIMS_HEX).unwrap();
    assert_eq!(claims.len(), 0x68);
    let at = protected.len() / 2;
    assert_eq!(cose[at..at + 2], [0x58, 0x68]);
    assert_eq!(cose[at + 2..at + 2 + claims.len()], claims[..]);
    // Then the signature bstr (0x58 0x40 = 64 bytes) and nothing else.
    let sig_at = at + 2 + claims.len();
    assert_eq!(cose[sig_at..sig_at + 2], [0x58, 0x40]);
    assert_eq!(cose.len(), sig_at + 2 + 64);
    // The signature is Ed25519 over Sig_structure ["Signature1", protected, h'', payload].
    let mut tbs = vec![0x84, 0x6a];
    tbs.extend_from_slice(b"Signature1");
    tbs.extend_from_slice(&hex::decode(format!("4da201270448{KAT1_KID_HEX}")).unwrap());
    tbs.extend_from_slice(&[0x40, 0x58, 0x68]);
    tbs.extend_from_slice(&claims);
    let sig = &cose[sig_at + 2..];
    assert!(crate::keys::verify_signature(&key_1().public(), &tbs, sig));
    assert_eq!(key_1().sign(&tbs)[..], sig[..]);
}

#[test]
fn kat1_decodes_to_every_field() {
    let hc = HealthCode::decode(KAT1_CODE).unwrap();
    assert_eq!(hc.kid.to_string(), KAT1_KID_HEX);
    assert_eq!(hc.kid, key_1().kid());
    let c = &hc.claims;
    assert_eq!(c.iss, "510000");
    assert_eq!(c.iat, 1_700_000_000);
    assert_eq!(c.exp, 1_700_000_300);
    assert_eq!(c.cti, CTI_1.to_vec());
    assert_eq!(c.status, 1);
    assert_eq!(c.status_valid_until, 1_701_000_000);
    assert_eq!(c.subject.masked_name, "张*三");
    assert_eq!(c.subject.document_type, DocumentType::ResidentIdentityCard);
    assert_eq!(c.subject.masked_document_number, "5101**********1234");
    assert_eq!(c.subject.subject_hash, SubjectHash(HASH_1));
    assert_eq!(*c, claims_1());
    assert!(hc.signature_valid(&key_1().public()));
    assert!(!hc.signature_valid(&key_2().public()));
    // Claims decode on their own too.
    assert_eq!(
        Claims::from_cbor(&hex::decode(KAT1_CLAIMS_HEX).unwrap()).unwrap(),
        claims_1()
    );
}

#[test]
fn kat1_from_another_deflate_implementation_decodes() {
    assert_ne!(KAT1_CODE_OTHER_DEFLATE, KAT1_CODE);
    assert_eq!(
        transport::unwrap(KAT1_CODE_OTHER_DEFLATE).unwrap(),
        kat1_cose()
    );
    let hc = HealthCode::decode(KAT1_CODE_OTHER_DEFLATE).unwrap();
    assert_eq!(hc.claims, claims_1());
    assert!(hc.signature_valid(&key_1().public()));
}

#[test]
fn kat2_yellow_passport() {
    let k = key_2();
    assert_eq!(hex::encode(k.public().to_bytes()), KAT2_PUBLIC_KEY_HEX);
    assert_eq!(k.kid().to_string(), KAT2_KID_HEX);
    assert_eq!(hex::encode(claims_2().to_cbor()), KAT2_CLAIMS_HEX);
    assert_eq!(encode(&claims_2(), &k), KAT2_CODE);

    let hc = HealthCode::decode(KAT2_CODE).unwrap();
    assert_eq!(hc.kid.to_string(), KAT2_KID_HEX);
    let c = &hc.claims;
    assert_eq!(c.iss, "440000");
    assert_eq!(c.iat, 1_700_000_000);
    assert_eq!(c.exp, 1_700_000_300);
    assert_eq!(c.cti, vec![0x5a; 16]);
    assert_eq!(c.status, 2);
    assert_eq!(
        crate::status::HealthStatus::from_u64(c.status),
        Some(crate::status::HealthStatus::Yellow)
    );
    assert_eq!(c.status_valid_until, 1_700_604_800);
    assert_eq!(c.subject.masked_name, "L* L**");
    assert_eq!(c.subject.document_type, DocumentType::Passport);
    assert_eq!(c.subject.document_type.to_u8(), 2);
    assert_eq!(c.subject.masked_document_number, "E1****67");
    assert_eq!(c.subject.subject_hash, SubjectHash(HASH_2));
    assert_eq!(*c, claims_2());
    assert!(hc.signature_valid(&key_2().public()));
    assert!(!hc.signature_valid(&key_1().public()));
}

#[test]
fn every_document_type_and_status_round_trips() {
    let k = key_1();
    for n in [1u64, 2, 3, 4, 5, 9] {
        let mut c = claims_1();
        c.subject.document_type = DocumentType::from_u64(n).unwrap();
        assert_eq!(u64::from(c.subject.document_type.to_u8()), n);
        // Unassigned status numbers are carried as they are (never a colour: see status.rs).
        c.status = n;
        let hc = HealthCode::decode(&encode(&c, &k)).unwrap();
        assert_eq!(hc.claims, c);
        assert!(hc.signature_valid(&k.public()));
    }
    for n in [0u64, 6, 7, 8, 10, 255] {
        assert_eq!(DocumentType::from_u64(n), None);
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers for hand-built inputs
// ---------------------------------------------------------------------------------------------

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn ikey(k: i64) -> Value {
    Value::Integer(Integer::from(k))
}

fn tag(t: u64, v: Value) -> Value {
    Value::Tag(t, Box::new(v))
}

/// Protected header {alg: EdDSA, kid}.
fn eddsa_kid(kid: &[u8]) -> Header {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(kid.to_vec())
        .build()
}

fn kid1() -> Vec<u8> {
    key_1().kid().0.to_vec()
}

/// A COSE_Sign1 with the given headers and payload, signed by `key` over exactly those.
fn sign1(
    protected: Header,
    unprotected: Header,
    payload: Option<Vec<u8>>,
    key: &NodeKey,
) -> CoseSign1 {
    let mut b = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected);
    if let Some(p) = payload {
        b = b.payload(p);
    }
    b.create_signature(b"", |tbs| key.sign(tbs).to_vec())
        .build()
}

/// The COSE_Sign1 of vector 1 built by hand, as an untagged CBOR value.
fn good_sign1() -> CoseSign1 {
    sign1(
        eddsa_kid(&kid1()),
        Header::default(),
        Some(claims_1().to_cbor()),
        &key_1(),
    )
}

fn value_of(s: CoseSign1) -> Value {
    s.to_cbor_value().unwrap()
}

/// Runs COSE bytes through the whole pipeline: wrap, then decode the string.
fn decode_cose(bytes: &[u8]) -> Result<HealthCode, CodeError> {
    HealthCode::decode(&transport::wrap(bytes))
}

fn decode_value(v: &Value) -> Result<HealthCode, CodeError> {
    decode_cose(&cbor(v))
}

/// The error of a decode that must fail.
fn err(r: Result<HealthCode, CodeError>) -> CodeError {
    match r {
        Ok(hc) => panic!("decoded unexpectedly: {:?}", hc.claims),
        Err(e) => e,
    }
}

/// The claims of vector 1 as a CBOR map value, for editing.
fn claims_map() -> Vec<(Value, Value)> {
    match ciborium::from_reader::<Value, _>(claims_1().to_cbor().as_slice()).unwrap() {
        Value::Map(m) => m,
        v => panic!("not a map: {v:?}"),
    }
}

/// Sets (`Some`) or removes (`None`) the entry at `path` (keys from the top map down).
fn edit(map: &mut Vec<(Value, Value)>, path: &[i64], new: Option<Value>) {
    let pos = map.iter().position(|(k, _)| *k == ikey(path[0]));
    if path.len() == 1 {
        match (pos, new) {
            (Some(i), Some(v)) => map[i].1 = v,
            (None, Some(v)) => map.push((ikey(path[0]), v)),
            (Some(i), None) => {
                map.remove(i);
            }
            (None, None) => {}
        }
        return;
    }
    match &mut map[pos.expect("path exists")].1 {
        Value::Map(inner) => edit(inner, &path[1..], new),
        v => panic!("not a map at {path:?}: {v:?}"),
    }
}

fn claims_with(path: &[i64], v: Value) -> Value {
    let mut m = claims_map();
    edit(&mut m, path, Some(v));
    Value::Map(m)
}

fn claims_without(path: &[i64]) -> Value {
    let mut m = claims_map();
    edit(&mut m, path, None);
    Value::Map(m)
}

/// Signs a claims value correctly with key 1 (the production signer) and decodes it.
fn decode_claims(claims: &Value) -> Result<HealthCode, CodeError> {
    decode_cose(&cose::sign(cbor(claims), &key_1()))
}

// ---------------------------------------------------------------------------------------------
// COSE_Sign1 forms and faults
// ---------------------------------------------------------------------------------------------

#[test]
fn untagged_tag18_and_cwt_tag61_all_decode_and_verify() {
    let forms = [
        ("untagged", value_of(good_sign1())),
        ("tag 18", tag(TAG_COSE_SIGN1, value_of(good_sign1()))),
        (
            "tag 61(18)",
            tag(TAG_CWT, tag(TAG_COSE_SIGN1, value_of(good_sign1()))),
        ),
    ];
    for (name, v) in forms {
        let hc = decode_value(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hc.claims, claims_1(), "{name}");
        assert_eq!(hc.kid, key_1().kid(), "{name}");
        assert!(hc.signature_valid(&key_1().public()), "{name}");
        assert!(!hc.signature_valid(&key_2().public()), "{name}");
    }
    // The hand-built tag-18 form is byte for byte what the encoder writes.
    assert_eq!(
        cbor(&tag(TAG_COSE_SIGN1, value_of(good_sign1()))),
        kat1_cose()
    );
    // Untagged bytes: the KAT without its leading 0xd2.
    assert_eq!(cbor(&value_of(good_sign1())), kat1_cose()[1..]);
}

#[test]
fn tags_other_than_18_and_61_18_are_refused() {
    let s = || value_of(good_sign1());
    // 61 around an untagged COSE_Sign1.
    assert_eq!(
        err(decode_value(&tag(61, s()))),
        CodeError::UnexpectedTag(61)
    );
    // 61 around 61(18).
    assert_eq!(
        err(decode_value(&tag(61, tag(61, tag(18, s()))))),
        CodeError::UnexpectedTag(61)
    );
    // 61 around COSE_Sign (98).
    assert_eq!(
        err(decode_value(&tag(61, tag(98, s())))),
        CodeError::UnexpectedTag(98)
    );
    // 61 around a text string.
    assert_eq!(
        err(decode_value(&tag(61, Value::Text("x".into())))),
        CodeError::UnexpectedTag(61)
    );
    // Other tags at the top: COSE_Sign (98), COSE_Encrypt0 (16), COSE_Mac0 (17), a large one.
    for t in [98u64, 16, 17, 55799, u64::MAX] {
        assert_eq!(err(decode_value(&tag(t, s()))), CodeError::UnexpectedTag(t));
    }
    // 18 around 18: the inner item is not a COSE_Sign1 array.
    let e = err(decode_value(&tag(18, tag(18, s()))));
    assert!(matches!(e, CodeError::NotCoseSign1(_)), "{e:?}");
    assert_eq!(e.code(), "cose.structure");
}

#[test]
fn not_cose_sign1_and_not_cbor() {
    // An array of 3.
    let e = err(decode_value(&Value::Array(vec![
        Value::Bytes(vec![]),
        Value::Map(vec![]),
        Value::Bytes(vec![1]),
    ])));
    assert!(matches!(e, CodeError::NotCoseSign1(_)), "{e:?}");
    // A map.
    let e = err(decode_value(&Value::Map(vec![])));
    assert!(matches!(e, CodeError::NotCoseSign1(_)), "{e:?}");
    // A protected header with a label twice (coset refuses duplicate header labels).
    let mut raw = vec![0x84, 0x4f, 0xa3, 0x01, 0x27, 0x04, 0x48];
    raw.extend_from_slice(&kid1());
    raw.extend_from_slice(&[0x01, 0x27, 0xa0, 0x41, 0x00, 0x58, 0x40]);
    raw.extend_from_slice(&[0u8; 64]);
    let e = err(decode_cose(&raw));
    assert!(matches!(e, CodeError::NotCoseSign1(_)), "{e:?}");
    // Truncated CBOR, and nothing at all.
    let cose = kat1_cose();
    let e = err(decode_cose(&cose[..cose.len() - 1]));
    assert!(matches!(e, CodeError::Cbor(_)), "{e:?}");
    assert_eq!(e.code(), "cbor.malformed");
    assert!(matches!(err(decode_cose(&[])), CodeError::Cbor(_)));
    // Nesting deeper than 16 levels.
    let mut deep = vec![0x81u8; 40];
    deep.push(0x00);
    assert!(matches!(err(decode_cose(&deep)), CodeError::Cbor(_)));
}

#[test]
fn trailing_bytes_after_cose_are_refused() {
    let mut cose = kat1_cose();
    cose.push(0x00);
    assert_eq!(err(decode_cose(&cose)), CodeError::CborTrailing(1));
    cose.extend_from_slice(&kat1_cose());
    assert_eq!(
        err(decode_cose(&cose)),
        CodeError::CborTrailing(1 + kat1_cose().len())
    );
}

#[test]
fn algorithm_rules() {
    let k = key_1();
    let payload = || Some(claims_1().to_cbor());
    // ES256.
    let es256 = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(kid1())
        .build();
    let e = err(decode_value(&value_of(sign1(
        es256,
        Header::default(),
        payload(),
        &k,
    ))));
    assert!(matches!(e, CodeError::UnsupportedAlgorithm(_)), "{e:?}");
    assert_eq!(e.code(), "cose.alg");
    // No alg at all.
    let no_alg = HeaderBuilder::new().key_id(kid1()).build();
    assert_eq!(
        err(decode_value(&value_of(sign1(
            no_alg.clone(),
            Header::default(),
            payload(),
            &k
        )))),
        CodeError::MissingAlgorithm
    );
    // alg only in the unprotected header does not count.
    let unprot_alg = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .build();
    assert_eq!(
        err(decode_value(&value_of(sign1(
            no_alg,
            unprot_alg,
            payload(),
            &k
        )))),
        CodeError::MissingAlgorithm
    );
}

#[test]
fn critical_header_is_refused() {
    let crit = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(kid1())
        .add_critical(iana::HeaderParameter::Alg)
        .build();
    assert_eq!(
        err(decode_value(&value_of(sign1(
            crit,
            Header::default(),
            Some(claims_1().to_cbor()),
            &key_1()
        )))),
        CodeError::CriticalHeader
    );
}

#[test]
fn kid_rules() {
    let k = key_1();
    let payload = || Some(claims_1().to_cbor());
    let alg_only = || {
        HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .build()
    };
    let unprot_kid = |kid: Vec<u8>| HeaderBuilder::new().key_id(kid).build();
    // No kid anywhere.
    assert_eq!(
        err(decode_value(&value_of(sign1(
            alg_only(),
            Header::default(),
            payload(),
            &k
        )))),
        CodeError::MissingKid
    );
    // The right kid, but only unprotected: never used.
    assert_eq!(
        err(decode_value(&value_of(sign1(
            alg_only(),
            unprot_kid(kid1()),
            payload(),
            &k
        )))),
        CodeError::KidUnprotected
    );
    // A protected kid and a different unprotected one.
    assert_eq!(
        err(decode_value(&value_of(sign1(
            eddsa_kid(&kid1()),
            unprot_kid(key_2().kid().0.to_vec()),
            payload(),
            &k
        )))),
        CodeError::KidConflict
    );
    // The same kid in both headers is accepted.
    let hc = decode_value(&value_of(sign1(
        eddsa_kid(&kid1()),
        unprot_kid(kid1()),
        payload(),
        &k,
    )))
    .unwrap();
    assert_eq!(hc.kid, k.kid());
    assert!(hc.signature_valid(&k.public()));
    // Wrong lengths.
    for len in [1usize, 4, 7, 9, 32] {
        assert_eq!(
            err(decode_value(&value_of(sign1(
                eddsa_kid(&vec![0xab; len]),
                Header::default(),
                payload(),
                &k
            )))),
            CodeError::KidLength(len)
        );
    }
}

#[test]
fn payload_rules() {
    let k = key_1();
    // Empty payload.
    assert_eq!(
        err(decode_value(&value_of(sign1(
            eddsa_kid(&kid1()),
            Header::default(),
            Some(vec![]),
            &k
        )))),
        CodeError::MissingPayload
    );
    // Detached payload (nil).
    assert_eq!(
        err(decode_value(&value_of(sign1(
            eddsa_kid(&kid1()),
            Header::default(),
            None,
            &k
        )))),
        CodeError::MissingPayload
    );
}

#[test]
fn signature_length_rules() {
    for len in [0usize, 63, 65, 128] {
        let mut s = good_sign1();
        s.signature.resize(len, 0x11);
        assert_eq!(
            err(decode_value(&tag(18, value_of(s)))),
            CodeError::SignatureLength(len)
        );
    }
}

#[test]
fn tampered_payload_decodes_but_does_not_verify() {
    // Signed over claims 1, carrying claims 2.
    let mut s = good_sign1();
    s.payload = Some(claims_2().to_cbor());
    let hc = decode_value(&tag(18, value_of(s))).unwrap();
    assert_eq!(hc.claims, claims_2());
    assert!(!hc.signature_valid(&key_1().public()));
    assert!(!hc.signature_valid(&key_2().public()));
    // One flipped status (green -> red) in an otherwise valid code.
    let mut s = good_sign1();
    let mut c = claims_1();
    c.status = 3;
    s.payload = Some(c.to_cbor());
    let hc = decode_value(&tag(18, value_of(s))).unwrap();
    assert_eq!(hc.claims.status, 3);
    assert!(!hc.signature_valid(&key_1().public()));
    // A swapped protected kid: the signature covers the protected header.
    let mut s = good_sign1();
    s.protected = coset::ProtectedHeader {
        original_data: None,
        header: eddsa_kid(&key_2().kid().0),
    };
    let hc = decode_value(&tag(18, value_of(s))).unwrap();
    assert_eq!(hc.kid, key_2().kid());
    assert!(!hc.signature_valid(&key_1().public()));
    assert!(!hc.signature_valid(&key_2().public()));
    // A flipped signature bit.
    let mut s = good_sign1();
    s.signature[10] ^= 0x01;
    let hc = decode_value(&tag(18, value_of(s))).unwrap();
    assert!(!hc.signature_valid(&key_1().public()));
}

#[test]
fn valid_code_verifies_only_under_its_key() {
    let hc = HealthCode::decode(KAT1_CODE).unwrap();
    assert!(hc.signature_valid(&key_1().public()));
    assert!(!hc.signature_valid(&key_2().public()));
    assert!(!hc.signature_valid(&NodeKey::from_seed(&[0x43; 32]).public()));
    // Signed by key 2 while naming key 1's kid: it decodes with kid 1, and fails under key 1,
    // the only key a verifier looks up by that kid.
    let s = sign1(
        eddsa_kid(&kid1()),
        Header::default(),
        Some(claims_1().to_cbor()),
        &key_2(),
    );
    let hc = decode_value(&tag(18, value_of(s))).unwrap();
    assert_eq!(hc.kid, key_1().kid());
    assert!(!hc.signature_valid(&key_1().public()));
    assert!(hc.signature_valid(&key_2().public()));
}

// ---------------------------------------------------------------------------------------------
// Claims faults
// ---------------------------------------------------------------------------------------------

#[test]
fn hand_built_claims_equal_the_encoder() {
    assert_eq!(cbor(&Value::Map(claims_map())), claims_1().to_cbor());
    let hc = decode_claims(&Value::Map(claims_map())).unwrap();
    assert_eq!(hc.claims, claims_1());
    assert!(hc.signature_valid(&key_1().public()));
}

#[test]
fn claims_must_be_a_map() {
    for v in [
        Value::Array(vec![ikey(1), ikey(2)]),
        Value::Text("claims".into()),
        ikey(0),
        Value::Null,
    ] {
        assert_eq!(err(decode_claims(&v)), CodeError::ClaimsNotMap, "{v:?}");
    }
    // A payload that is not CBOR, or has bytes after the map.
    let k = key_1();
    assert!(matches!(
        err(decode_cose(&cose::sign(vec![0xff], &k))),
        CodeError::Cbor(_)
    ));
    let mut p = claims_1().to_cbor();
    p.push(0x00);
    assert_eq!(
        err(decode_cose(&cose::sign(p, &k))),
        CodeError::CborTrailing(1)
    );
}

#[test]
fn duplicate_keys_are_refused() {
    // Vector 1's claims with extra entries pushed into the map at `path`.
    let dup = |path: &[i64], extra: Vec<(i64, Value)>| {
        let mut m = claims_map();
        let mut target = &mut m;
        for p in path {
            let i = target.iter().position(|(k, _)| *k == ikey(*p)).unwrap();
            target = match &mut target[i].1 {
                Value::Map(inner) => inner,
                _ => unreachable!(),
            };
        }
        target.extend(extra.into_iter().map(|(k, v)| (ikey(k), v)));
        Value::Map(m)
    };
    assert_eq!(
        err(decode_claims(&dup(
            &[],
            vec![(1, Value::Text("440000".into()))]
        ))),
        CodeError::DuplicateKey("iss".into(), "claims")
    );
    assert_eq!(
        err(decode_claims(&dup(&[], vec![(4, ikey(1_700_000_300))]))),
        CodeError::DuplicateKey("exp".into(), "claims")
    );
    assert_eq!(
        err(decode_claims(&dup(&[CLAIM_HCODE], vec![(2, ikey(1))]))),
        CodeError::DuplicateKey("2".into(), "hcode")
    );
    assert_eq!(
        err(decode_claims(&dup(
            &[CLAIM_HCODE, 4],
            vec![(1, Value::Text("李*".into()))]
        ))),
        CodeError::DuplicateKey("1".into(), "subject")
    );
    // A key the decoder does not read, twice, is refused too.
    let twice = |path: &[i64]| dup(path, vec![(99, ikey(0)), (99, ikey(1))]);
    assert_eq!(
        err(decode_claims(&twice(&[]))),
        CodeError::DuplicateKey("99".into(), "claims")
    );
    assert_eq!(
        err(decode_claims(&twice(&[CLAIM_HCODE]))),
        CodeError::DuplicateKey("99".into(), "hcode")
    );
    assert_eq!(
        err(decode_claims(&twice(&[CLAIM_HCODE, 4]))),
        CodeError::DuplicateKey("99".into(), "subject")
    );
    // A text key twice.
    let mut m = claims_map();
    m.push((Value::Text("x".into()), ikey(0)));
    m.push((Value::Text("x".into()), ikey(1)));
    assert_eq!(
        err(decode_claims(&Value::Map(m))),
        CodeError::DuplicateKey("Text(\"x\")".into(), "claims")
    );
    // One key in two encodings (0x18 0x63 and 0x19 0x00 0x63 are both 99; 0x01 and 0x19 0x00
    // 0x01 are both 1): still the same key.
    let raw = |extra: &[u8], entries: u8| {
        let mut p = claims_1().to_cbor();
        assert_eq!(p[0], 0xa5);
        p[0] = 0xa0 + entries;
        p.extend_from_slice(extra);
        decode_cose(&cose::sign(p, &key_1()))
    };
    assert_eq!(
        err(raw(&[0x18, 0x63, 0x00, 0x19, 0x00, 0x63, 0x01], 7)),
        CodeError::DuplicateKey("99".into(), "claims")
    );
    assert_eq!(
        err(raw(
            &[0x19, 0x00, 0x01, 0x66, b'4', b'4', b'0', b'0', b'0', b'0'],
            6
        )),
        CodeError::DuplicateKey("iss".into(), "claims")
    );
    assert_eq!(
        CodeError::DuplicateKey("iss".into(), "claims").code(),
        "claims.duplicate_key"
    );
}

#[test]
fn unknown_keys_are_ignored() {
    let mut m = claims_map();
    m.push((ikey(99), Value::Text("future".into())));
    m.push((Value::Text("iss".into()), Value::Text("440000".into())));
    m.push((ikey(2), Value::Text("sub".into())));
    edit(&mut m, &[CLAIM_HCODE, 5], Some(ikey(7)));
    edit(&mut m, &[CLAIM_HCODE, 4, 5], Some(Value::Bool(true)));
    let hc = decode_claims(&Value::Map(m)).unwrap();
    assert_eq!(hc.claims, claims_1());
}

#[test]
fn missing_claims_are_named() {
    for (path, name) in [
        (&[1i64][..], "iss"),
        (&[4], "exp"),
        (&[6], "iat"),
        (&[7], "cti"),
        (&[CLAIM_HCODE], "hcode"),
        (&[CLAIM_HCODE, 1], "hcode.version"),
        (&[CLAIM_HCODE, 2], "hcode.status"),
        (&[CLAIM_HCODE, 3], "hcode.status_valid_until"),
        (&[CLAIM_HCODE, 4], "hcode.subject"),
        (&[CLAIM_HCODE, 4, 1], "subject.name"),
        (&[CLAIM_HCODE, 4, 2], "subject.document_type"),
        (&[CLAIM_HCODE, 4, 3], "subject.document_number"),
        (&[CLAIM_HCODE, 4, 4], "subject.hash"),
    ] {
        assert_eq!(
            err(decode_claims(&claims_without(path))),
            CodeError::MissingClaim(name),
            "{path:?}"
        );
    }
    assert_eq!(CodeError::MissingClaim("exp").code(), "claims.missing");
}

#[test]
fn wrong_types_and_values_are_named() {
    let text = |s: &str| Value::Text(s.into());
    let cases: Vec<(&[i64], Value, CodeError)> = vec![
        (
            &[1],
            ikey(510000),
            CodeError::BadClaim("iss", "not a text string"),
        ),
        (
            &[1],
            Value::Bytes(b"510000".to_vec()),
            CodeError::BadClaim("iss", "not a text string"),
        ),
        (
            &[1],
            text(&"5".repeat(65)),
            CodeError::BadClaim("iss", "longer than 64 characters"),
        ),
        (
            &[7],
            text("id"),
            CodeError::BadClaim("cti", "not a byte string"),
        ),
        (
            &[7],
            Value::Bytes(vec![]),
            CodeError::BadClaim("cti", "must be 1 to 64 bytes"),
        ),
        (
            &[7],
            Value::Bytes(vec![1; 65]),
            CodeError::BadClaim("cti", "must be 1 to 64 bytes"),
        ),
        (
            &[CLAIM_HCODE],
            Value::Array(vec![]),
            CodeError::BadClaim("hcode", "not a map"),
        ),
        (
            &[CLAIM_HCODE, 1],
            ikey(2),
            CodeError::BadClaim("hcode.version", "unsupported body version"),
        ),
        (
            &[CLAIM_HCODE, 1],
            text("1"),
            CodeError::BadClaim("hcode.version", "not an unsigned integer"),
        ),
        (
            &[CLAIM_HCODE, 2],
            ikey(-1),
            CodeError::BadClaim("hcode.status", "negative"),
        ),
        (
            &[CLAIM_HCODE, 2],
            Value::Float(1.0),
            CodeError::BadClaim("hcode.status", "not an unsigned integer"),
        ),
        (
            &[CLAIM_HCODE, 4],
            Value::Bytes(vec![]),
            CodeError::BadClaim("subject", "not a map"),
        ),
        (
            &[CLAIM_HCODE, 4, 1],
            Value::Null,
            CodeError::BadClaim("subject.name", "not a text string"),
        ),
        (
            &[CLAIM_HCODE, 4, 2],
            ikey(6),
            CodeError::BadClaim("subject.document_type", "unassigned document type"),
        ),
        (
            &[CLAIM_HCODE, 4, 2],
            text("1"),
            CodeError::BadClaim("subject.document_type", "not an unsigned integer"),
        ),
        (
            &[CLAIM_HCODE, 4, 3],
            text(&"*".repeat(65)),
            CodeError::BadClaim("subject.document_number", "longer than 64 characters"),
        ),
        (
            &[CLAIM_HCODE, 4, 4],
            Value::Bytes(vec![0; 15]),
            CodeError::BadClaim("subject.hash", "must be 16 bytes"),
        ),
        (
            &[CLAIM_HCODE, 4, 4],
            Value::Bytes(vec![0; 32]),
            CodeError::BadClaim("subject.hash", "must be 16 bytes"),
        ),
        (
            &[CLAIM_HCODE, 4, 4],
            text("h"),
            CodeError::BadClaim("subject.hash", "not a byte string"),
        ),
    ];
    for (path, v, want) in cases {
        assert_eq!(
            err(decode_claims(&claims_with(path, v.clone()))),
            want,
            "{path:?} = {v:?}"
        );
    }
    // 64 characters (not bytes) is the limit: 64 CJK characters are accepted.
    let name: String = "张".repeat(64);
    let hc = decode_claims(&claims_with(
        &[CLAIM_HCODE, 4, 1],
        Value::Text(name.clone()),
    ))
    .unwrap();
    assert_eq!(hc.claims.subject.masked_name, name);
    // cti of 1 and 64 bytes.
    for n in [1usize, 64] {
        let hc = decode_claims(&claims_with(&[7], Value::Bytes(vec![7; n]))).unwrap();
        assert_eq!(hc.claims.cti, vec![7; n]);
    }
}

#[test]
fn time_claims() {
    // ciborium writes a float in its shortest exact form: 1700000000.0 fits single precision,
    // 1700000001.0 needs double precision; both are accepted.
    assert_eq!(cbor(&Value::Float(1_700_000_000.0))[0], 0xfa);
    assert_eq!(cbor(&Value::Float(1_700_000_001.0))[0], 0xfb);
    let neg_2_64 = Value::Integer(Integer::try_from(-(1i128 << 64)).unwrap());
    let paths: [(&[i64], &'static str); 3] = [
        (&[6], "iat"),
        (&[4], "exp"),
        (&[CLAIM_HCODE, 3], "hcode.status_valid_until"),
    ];
    for (path, what) in paths {
        let ok = |v: Value| -> u64 {
            let c = decode_claims(&claims_with(path, v)).unwrap().claims;
            match what {
                "iat" => c.iat,
                "exp" => c.exp,
                _ => c.status_valid_until,
            }
        };
        let bad = |v: Value| err(decode_claims(&claims_with(path, v)));
        assert_eq!(ok(Value::Float(1_700_000_000.0)), 1_700_000_000, "{what}");
        assert_eq!(ok(Value::Float(1_700_000_001.0)), 1_700_000_001, "{what}");
        assert_eq!(ok(ikey(0)), 0, "{what}");
        assert_eq!(ok(Value::Float(-0.0)), 0, "{what}");
        assert_eq!(ok(Value::Integer(MAX_TIME.into())), MAX_TIME, "{what}");
        assert_eq!(bad(Value::Float(1.5)), CodeError::TimeNotWhole(what));
        assert_eq!(
            bad(Value::Float(1_700_000_000.5)),
            CodeError::TimeNotWhole(what)
        );
        assert_eq!(bad(Value::Float(f64::NAN)), CodeError::TimeNotFinite(what));
        assert_eq!(
            bad(Value::Float(f64::INFINITY)),
            CodeError::TimeNotFinite(what)
        );
        assert_eq!(
            bad(Value::Float(f64::NEG_INFINITY)),
            CodeError::TimeNotFinite(what)
        );
        assert_eq!(bad(ikey(-1)), CodeError::TimeNegative(what));
        assert_eq!(bad(neg_2_64.clone()), CodeError::TimeNegative(what));
        assert_eq!(bad(Value::Float(-1.0)), CodeError::TimeNegative(what));
        assert_eq!(bad(Value::Float(-0.5)), CodeError::TimeNegative(what));
        assert_eq!(
            bad(Value::Integer((MAX_TIME + 1).into())),
            CodeError::TimeTooLarge(what)
        );
        assert_eq!(
            bad(Value::Integer(u64::MAX.into())),
            CodeError::TimeTooLarge(what)
        );
        assert_eq!(bad(Value::Float(1e300)), CodeError::TimeTooLarge(what));
        assert_eq!(
            bad(Value::Float(MAX_TIME as f64 + 1.0)),
            CodeError::TimeTooLarge(what)
        );
        assert_eq!(
            bad(Value::Text("1700000000".into())),
            CodeError::BadClaim(what, "not a number")
        );
        assert_eq!(
            bad(tag(1, ikey(1_700_000_000))),
            CodeError::BadClaim(what, "not a number")
        );
    }
    // Half precision on the wire (0xf9 0x3c00 = 1.0) is a float too.
    let mut p = claims_1().to_cbor();
    let iat = [0x06, 0x1a, 0x65, 0x53, 0xf1, 0x00];
    let at = p.windows(6).position(|w| w == iat).unwrap();
    p.splice(at + 1..at + 6, [0xf9, 0x3c, 0x00]);
    let hc = decode_cose(&cose::sign(p, &key_1())).unwrap();
    assert_eq!(hc.claims.iat, 1);
    // The error codes of the time faults.
    assert_eq!(
        CodeError::TimeNotWhole("iat").code(),
        "claims.time_not_whole"
    );
    assert_eq!(
        CodeError::TimeNotFinite("iat").code(),
        "claims.time_not_finite"
    );
    assert_eq!(
        CodeError::TimeNegative("iat").code(),
        "claims.time_negative"
    );
    assert_eq!(
        CodeError::TimeTooLarge("iat").code(),
        "claims.time_too_large"
    );
}

// ---------------------------------------------------------------------------------------------
// Transport faults, through HealthCode::decode
// ---------------------------------------------------------------------------------------------

/// Vector 1 without its prefix.
fn kat1_body() -> &'static str {
    &KAT1_CODE[PREFIX.len()..]
}

fn compressed_kat1() -> Vec<u8> {
    base45::decode(kat1_body()).unwrap()
}

#[test]
fn prefix_faults() {
    assert_eq!(
        err(HealthCode::decode(kat1_body())),
        CodeError::MissingPrefix
    );
    assert_eq!(
        err(HealthCode::decode(&format!("hcmr1:{}", kat1_body()))),
        CodeError::MissingPrefix
    );
    assert_eq!(
        err(HealthCode::decode(&format!("HC1:{}", kat1_body()))),
        CodeError::ForeignPrefix("HC1:".into())
    );
    assert_eq!(
        err(HealthCode::decode("shc:/5676290952432060346029243740")),
        CodeError::ForeignPrefix("shc:".into())
    );
    assert_eq!(
        err(HealthCode::decode(&format!("HCMR2:{}", kat1_body()))),
        CodeError::ForeignPrefix("HCMR2:".into())
    );
    assert_eq!(err(HealthCode::decode("")), CodeError::Empty);
    assert_eq!(err(HealthCode::decode("\r\n")), CodeError::Empty);
    let long = format!("{PREFIX}{}", "0".repeat(MAX_CODE_CHARS - PREFIX.len() + 1));
    assert_eq!(
        err(HealthCode::decode(&long)),
        CodeError::TooLong(MAX_CODE_CHARS + 1)
    );
    // Exactly MAX_CODE_CHARS passes the length check (and fails later).
    let max = format!("{PREFIX}{}", "0".repeat(MAX_CODE_CHARS - PREFIX.len()));
    assert_ne!(err(HealthCode::decode(&max)).code(), "prefix.too_long");
    // A prefix and nothing else: Base45 of nothing is no bytes, which is no zlib header.
    assert_eq!(err(HealthCode::decode(PREFIX)), CodeError::NotZlib(vec![]));
}

#[test]
fn base45_faults() {
    let body = kat1_body();
    // len % 3 == 1: cut the valid code to such a length.
    let cut = (0..=body.len()).rev().find(|n| n % 3 == 1).unwrap();
    assert_eq!(
        err(HealthCode::decode(&format!("{PREFIX}{}", &body[..cut]))),
        CodeError::Base45Length(cut)
    );
    assert_eq!(
        err(HealthCode::decode(&format!("{PREFIX}0"))),
        CodeError::Base45Length(1)
    );
    // A triplet above 65535 ("GGW" = 16 + 16*45 + 32*2025 = 65536), first and later.
    assert_eq!(
        err(HealthCode::decode(&format!("{PREFIX}GGW{body}"))),
        CodeError::Base45Overflow {
            position: 0,
            value: 65536,
            max: 65535
        }
    );
    assert_eq!(
        err(HealthCode::decode(&format!(
            "{PREFIX}{}:::",
            &body[..body.len() / 3 * 3]
        ))),
        CodeError::Base45Overflow {
            position: body.len() / 3 * 3,
            value: 44 + 44 * 45 + 44 * 2025,
            max: 65535
        }
    );
    // Characters outside the alphabet: non-ASCII, lower case, a line break inside.
    for (ch, pos) in [
        ('\u{e9}', 10usize),
        ('\u{ff}', 0),
        ('张', 30),
        ('a', 5),
        ('\n', 12),
        ('#', 7),
    ] {
        let mut s: Vec<char> = body.chars().collect();
        s.insert(pos, ch);
        let code: String = format!("{PREFIX}{}", s.into_iter().collect::<String>());
        assert_eq!(
            err(HealthCode::decode(&code)),
            CodeError::Base45Character { position: pos, ch },
            "{ch:?}"
        );
    }
    assert_eq!(CodeError::Base45Length(1).code(), "base45.length");
}

#[test]
fn zlib_faults() {
    // Not zlib: the raw COSE bytes, Base45-encoded without compression.
    assert_eq!(
        err(HealthCode::decode(&format!(
            "{PREFIX}{}",
            base45::encode(kat1_cose())
        ))),
        CodeError::NotZlib(vec![0xd2, 0x84])
    );
    // A gzip header.
    assert_eq!(
        err(HealthCode::decode(&format!(
            "{PREFIX}{}",
            base45::encode([0x1f, 0x8b, 0x08, 0x00])
        ))),
        CodeError::NotZlib(vec![0x1f, 0x8b])
    );
    // 0x78 with a bad FCHECK, and with FDICT set (0x78 0xbb passes FCHECK but sets FDICT).
    for h in [[0x78u8, 0x9d], [0x78, 0xbb]] {
        let mut c = compressed_kat1();
        c[..2].copy_from_slice(&h);
        assert_eq!(
            err(HealthCode::decode(&format!(
                "{PREFIX}{}",
                base45::encode(&c)
            ))),
            CodeError::NotZlib(h.to_vec())
        );
    }
    // A wrong Adler-32.
    let mut c = compressed_kat1();
    let last = c.len() - 1;
    c[last] ^= 0x01;
    let e = err(HealthCode::decode(&format!(
        "{PREFIX}{}",
        base45::encode(&c)
    )));
    assert!(matches!(e, CodeError::ZlibCorrupt(_)), "{e:?}");
    assert_eq!(e.code(), "zlib.corrupt");
    // Truncated.
    let c = compressed_kat1();
    let e = err(HealthCode::decode(&format!(
        "{PREFIX}{}",
        base45::encode(&c[..c.len() - 4])
    )));
    assert!(matches!(e, CodeError::ZlibCorrupt(_)), "{e:?}");
    // Bytes after the stream.
    let mut c = compressed_kat1();
    c.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        err(HealthCode::decode(&format!(
            "{PREFIX}{}",
            base45::encode(&c)
        ))),
        CodeError::ZlibTrailing(3)
    );
}

#[test]
fn zlib_bomb_and_inflate_limit() {
    // 1 MiB of zeros deflates to about 1 KiB: a valid-length code that would inflate 128 times
    // past the cap.
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    std::io::Write::write_all(&mut z, &vec![0u8; 1 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    let code = format!("{PREFIX}{}", base45::encode(&bomb));
    assert!(code.len() <= MAX_CODE_CHARS);
    assert_eq!(err(HealthCode::decode(&code)), CodeError::InflatedTooLarge);
    // The cap itself: exactly MAX_INFLATED_BYTES inflate, one more does not.
    assert_eq!(
        transport::unwrap(&transport::wrap(&vec![0u8; MAX_INFLATED_BYTES]))
            .unwrap()
            .len(),
        MAX_INFLATED_BYTES
    );
    assert_eq!(
        transport::unwrap(&transport::wrap(&vec![0u8; MAX_INFLATED_BYTES + 1])),
        Err(CodeError::InflatedTooLarge)
    );
    assert_eq!(
        err(HealthCode::decode(&transport::wrap(&vec![
            0u8;
            MAX_INFLATED_BYTES
                + 1
        ]))),
        CodeError::InflatedTooLarge
    );
}

#[test]
fn every_zlib_level_decodes() {
    // The second header byte differs by level (0x01, 0x5e, 0x9c, 0xda); all are accepted.
    let mut seen = HashSet::new();
    for level in 0..=9u32 {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::new(level));
        std::io::Write::write_all(&mut z, &kat1_cose()).unwrap();
        let c = z.finish().unwrap();
        seen.insert(c[1]);
        let hc = HealthCode::decode(&format!("{PREFIX}{}", base45::encode(&c))).unwrap();
        assert_eq!(hc.claims, claims_1(), "level {level}");
        assert!(hc.signature_valid(&key_1().public()));
    }
    assert_eq!(seen, HashSet::from([0x01, 0x5e, 0x9c, 0xda]));
    // The encoder uses the best compression.
    assert_eq!(compressed_kat1()[..2], [0x78, 0xda]);
}

#[test]
fn line_endings_are_ignored() {
    for suffix in ["\r\n", "\n", "\r", "\t", "\r\n\r\n"] {
        let hc = HealthCode::decode(&format!("{KAT1_CODE}{suffix}")).unwrap();
        assert_eq!(hc.claims, claims_1(), "{suffix:?}");
        assert!(hc.signature_valid(&key_1().public()));
    }
    // Leading ones too (trimmed at both ends).
    let hc = HealthCode::decode(&format!("\n{KAT1_CODE}")).unwrap();
    assert_eq!(hc.claims, claims_1());
    // A trailing space is a Base45 character, so it is not ignored.
    assert!(HealthCode::decode(&format!("{KAT1_CODE} ")).is_err());
}

#[test]
fn error_codes_are_distinct_and_dotted() {
    let all = [
        CodeError::Empty,
        CodeError::TooLong(0),
        CodeError::ForeignPrefix(String::new()),
        CodeError::MissingPrefix,
        CodeError::Base45Character {
            position: 0,
            ch: 'a',
        },
        CodeError::Base45Length(1),
        CodeError::Base45Overflow {
            position: 0,
            value: 0,
            max: 0,
        },
        CodeError::NotZlib(vec![]),
        CodeError::ZlibCorrupt(String::new()),
        CodeError::InflatedTooLarge,
        CodeError::ZlibTrailing(0),
        CodeError::Cbor(String::new()),
        CodeError::CborTrailing(0),
        CodeError::UnexpectedTag(0),
        CodeError::NotCoseSign1(String::new()),
        CodeError::MissingAlgorithm,
        CodeError::UnsupportedAlgorithm(String::new()),
        CodeError::CriticalHeader,
        CodeError::MissingKid,
        CodeError::KidUnprotected,
        CodeError::KidConflict,
        CodeError::KidLength(0),
        CodeError::MissingPayload,
        CodeError::SignatureLength(0),
        CodeError::ClaimsNotMap,
        CodeError::DuplicateKey(String::new(), ""),
        CodeError::MissingClaim(""),
        CodeError::BadClaim("", ""),
        CodeError::TimeNotFinite(""),
        CodeError::TimeNotWhole(""),
        CodeError::TimeNegative(""),
        CodeError::TimeTooLarge(""),
    ];
    let codes: Vec<&str> = all.iter().map(CodeError::code).collect();
    let unique: HashSet<&str> = codes.iter().copied().collect();
    assert_eq!(unique.len(), all.len());
    for c in &codes {
        let (stage, fault) = c.split_once('.').unwrap();
        assert!(
            ["prefix", "base45", "zlib", "cbor", "cose", "claims"].contains(&stage),
            "{c}"
        );
        assert!(!fault.is_empty() && fault.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
    }
    // The exact list, as published in docs/code-format.md.
    assert_eq!(
        codes,
        [
            "prefix.empty",
            "prefix.too_long",
            "prefix.foreign",
            "prefix.missing",
            "base45.character",
            "base45.length",
            "base45.overflow",
            "zlib.header",
            "zlib.corrupt",
            "zlib.too_large",
            "zlib.trailing",
            "cbor.malformed",
            "cbor.trailing",
            "cose.tag",
            "cose.structure",
            "cose.alg_missing",
            "cose.alg",
            "cose.crit",
            "cose.kid_missing",
            "cose.kid_unprotected",
            "cose.kid_conflict",
            "cose.kid_length",
            "cose.payload_missing",
            "cose.signature_length",
            "claims.not_map",
            "claims.duplicate_key",
            "claims.missing",
            "claims.type",
            "claims.time_not_finite",
            "claims.time_not_whole",
            "claims.time_negative",
            "claims.time_too_large",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Single-character changes and properties
// ---------------------------------------------------------------------------------------------

const BASE45_ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Every one-character substitution of vector 1 within the Base45 alphabet (about 11 000
/// strings): none decodes with a valid signature and different claims. In general a change could
/// verify only by leaving the COSE bytes unchanged (e.g. padding bits after the last deflate
/// block); for this vector none even decodes.
#[test]
fn every_single_character_substitution_is_caught() {
    let pk = key_1().public();
    let orig: Vec<char> = KAT1_CODE.chars().collect();
    let mut decoded = 0;
    let mut verified = 0;
    for i in 0..orig.len() {
        for c in BASE45_ALPHABET.chars() {
            if c == orig[i] {
                continue;
            }
            let mut m = orig.clone();
            m[i] = c;
            let s: String = m.into_iter().collect();
            if let Ok(hc) = HealthCode::decode(&s) {
                decoded += 1;
                if hc.signature_valid(&pk) {
                    verified += 1;
                    assert_eq!(hc.claims, claims_1(), "{s}");
                    assert_eq!(transport::unwrap(&s).unwrap(), kat1_cose(), "{s}");
                }
            }
        }
    }
    // For this vector Adler-32 and the deflate structure catch every one.
    assert_eq!(decoded, 0);
    assert_eq!(verified, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = HealthCode::decode(&s);
        let _ = HealthCode::decode(&format!("{PREFIX}{s}"));
    }

    #[test]
    fn arbitrary_base45_text_never_panics(s in "[0-9A-Z $%*+./:-]{0,400}") {
        let _ = HealthCode::decode(&format!("{PREFIX}{s}"));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Straight after the prefix (mostly not zlib), and compressed (reaching CBOR and COSE).
        let _ = HealthCode::decode(&format!("{PREFIX}{}", base45::encode(&b)));
        let _ = HealthCode::decode(&transport::wrap(&b));
    }

    #[test]
    fn one_changed_character_never_verifies_other_claims(
        i in any::<proptest::sample::Index>(),
        c in prop_oneof![
            proptest::sample::select(BASE45_ALPHABET.chars().collect::<Vec<_>>()),
            any::<char>(),
        ],
    ) {
        let mut m: Vec<char> = KAT1_CODE.chars().collect();
        let at = i.index(m.len());
        prop_assume!(m[at] != c);
        m[at] = c;
        let s: String = m.into_iter().collect();
        if let Ok(hc) = HealthCode::decode(&s) {
            prop_assert!(!hc.signature_valid(&key_1().public()) || hc.claims == claims_1());
        }
    }

    #[test]
    fn one_changed_cose_byte_never_verifies_other_claims(
        i in any::<proptest::sample::Index>(),
        b in any::<u8>(),
    ) {
        let mut cose = kat1_cose();
        let at = i.index(cose.len());
        prop_assume!(cose[at] != b);
        cose[at] = b;
        if let Ok(hc) = decode_cose(&cose) {
            prop_assert!(!hc.signature_valid(&key_1().public()) || hc.claims == claims_1());
        }
    }

    #[test]
    fn arbitrary_claims_round_trip(
        iat in 0u64..=MAX_TIME,
        ttl in 0u64..100_000,
        status in any::<u64>(),
        until in 0u64..=MAX_TIME,
        cti in proptest::collection::vec(any::<u8>(), 1..=64),
        name in "\\PC{1,64}",
        number in "[0-9A-Z*]{1,32}",
        doc in proptest::sample::select(vec![1u64, 2, 3, 4, 5, 9]),
        hash in any::<[u8; 16]>(),
    ) {
        let c = Claims {
            iss: "510000".into(),
            iat,
            exp: (iat + ttl).min(MAX_TIME),
            cti,
            status,
            status_valid_until: until,
            subject: Subject {
                masked_name: name,
                document_type: DocumentType::from_u64(doc).unwrap(),
                masked_document_number: number,
                subject_hash: SubjectHash(hash),
            },
        };
        let code = encode(&c, &key_1());
        prop_assert!(code.len() <= MAX_CODE_CHARS);
        let hc = HealthCode::decode(&code).unwrap();
        prop_assert_eq!(&hc.claims, &c);
        prop_assert!(hc.signature_valid(&key_1().public()));
    }
}

// ---------------------------------------------------------------------------------------------
// The subject fields as docs/code-format.md describes them
// ---------------------------------------------------------------------------------------------

#[test]
fn subject_hash_and_masking_as_documented() {
    use crate::identity::{mask_document_number, mask_name, synthetic_resident_id, SubjectKey};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    let number = synthetic_resident_id("510104", "19900101", 123);
    assert_eq!(number, "510104199001011230");
    let key = SubjectKey::from_bytes([0x01; 32]);
    let h = key.subject_hash(DocumentType::ResidentIdentityCard, &number);
    assert_eq!(h.to_string(), "8b01d7da89052d328fd727122845f14d");
    assert_eq!(
        key.subject_hash(DocumentType::Passport, "E12345678")
            .to_string(),
        "9634c56079c5a84ebf09469843204b8c"
    );
    // The documented input layout: "hcmr-subject-v1" 0x00 type 0x00 number, first 16 bytes.
    let mut mac = Hmac::<Sha256>::new_from_slice(&[0x01; 32]).unwrap();
    mac.update(b"hcmr-subject-v1\x00\x01\x00510104199001011230");
    assert_eq!(mac.finalize().into_bytes()[..16], h.0);

    assert_eq!(mask_document_number(&number), "5101**********1230");
    assert_eq!(mask_document_number("E12345678"), "E123*5678");
    assert_eq!(mask_document_number("E1234567"), "E1****67");
    assert_eq!(mask_document_number("AB123"), "AB*23");
    assert_eq!(mask_document_number("A123"), "****");
    assert_eq!(mask_name("李").unwrap(), "*");
    assert_eq!(mask_name("张三").unwrap(), "张*");
    assert_eq!(mask_name("张小三").unwrap(), "张*三");
    assert_eq!(mask_name("欧阳小明").unwrap(), "欧**明");
    assert_eq!(mask_name(" Li  Lei ").unwrap(), "L* L**");
    assert_eq!(mask_name("李Lei").unwrap(), "李***");
}
