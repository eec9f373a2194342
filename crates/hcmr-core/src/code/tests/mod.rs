//! Tests of the whole code pipeline: known-answer vectors, one hand-built input per decoder fault
//! (each through `transport::wrap` and `HealthCode::decode`), transport faults, and properties.
//! The vectors are the ones published in docs/code-format.md.

use std::collections::HashSet;

use ciborium::value::{Integer, Value};
use coset::{iana, AsCborValue, CoseSign1, CoseSign1Builder, Header, HeaderBuilder};
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

/// Subject hash of vector 1: bytes f0 f1 .. f7.
const HASH_1: [u8; 8] = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7];
/// Subject hash of vector 2: eight 0xa5 bytes.
const HASH_2: [u8; 8] = [0xa5; 8];

// Every value below was computed independently of this crate (hand-built CBOR, Ed25519 from
// Python's `cryptography`, Base45 by RFC 9285) and agrees with the encoder.
const KAT1_PUBLIC_KEY_HEX: &str =
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";
const KAT1_KID_HEX: &str = "3097e2dee2cb4a34";
/// 57 bytes.
const KAT1_CLAIMS_HEX: &str = "a4011a0007c830041a6553f22c061a6553f10039983186011a6563334067e5bca02ae4b8890169353130312a3132333448f0f1f2f3f4f5f6f7";
/// 141 bytes, untagged.
const KAT1_COSE_HEX: &str = "844da2012704483097e2dee2cb4a34a05839a4011a0007c830041a6553f22c061a6553f10039983186011a6563334067e5bca02ae4b8890169353130312a3132333448f0f1f2f3f4f5f6f758400556aee8086947bde6259a71df46a6d22a186c1a912fb11e69cc91f85619fd995343dc134ba4aa74408f9609dec45d33aa1fc37ba0e8652fa8938140586dc902";
/// The code id: the signature's first 16 bytes.
const KAT1_CTI_HEX: &str = "0556aee8086947bde6259a71df46a6d2";
/// 218 characters: QR version 10 at level Q.
const KAT1_CODE: &str = "HCMR1:TWGSLK/-4U5929J/7SMVPHT6+6B0XK-C3C:07367F3PRAKP57F3ORAC10 AJF.G7F3FOCH68.1T7BK7-SIEHNDD$96V96*96DL6.99IQU$$UB4V5CV9485/A0FT-DDE0O-X4 HE--8RPQ.336G3E160%3Y%PYHV%C3BHJ2Q8YJ2Y KFVE%6I6B14$O-N6V04DSF3HT5166TI268P*D20";

const KAT2_PUBLIC_KEY_HEX: &str =
    "58936604abda112bc94933569c82f8d0cc0ddf92a3f8329f2f448f7f484a594c";
const KAT2_KID_HEX: &str = "5f23ba66a62a6aef";
/// 52 bytes.
const KAT2_CLAIMS_HEX: &str = "a4011a0006b6c0041a6553f22c061a6553f10039983186021a655d2b80664c2a204c2a2a026545312a363748a5a5a5a5a5a5a5a5";
const KAT2_CTI_HEX: &str = "291b739af4c1a3e9b64b8f85b31df510";
/// 210 characters (136 COSE bytes).
const KAT2_CODE: &str = "HCMR1:TWGSLK/-4W69BN4//CDG59DUZ6B0XK-C38%0GCO7F3PRAKP57F3ORAC10 AJG.G7F31ZBKAGDS9X34*E5SD0SX86F5M:6F.KF.KF.KF.K27B%85TREH.ULWK22NL6I/SM6:UV%6IDJ2B1%II2K6UF8*F6T5O4-2HW7.O8*:H:LNDVS$/B PE9VG61QXAJ1-E0%H$9FXAJI0N";

fn claims_1() -> Claims {
    Claims {
        iss: "510000".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_300,
        status: 1,
        status_valid_until: 1_701_000_000,
        subject: Subject {
            masked_name: "张*三".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "5101*1234".into(),
            subject_hash: SubjectHash(HASH_1),
        },
    }
}

fn claims_2() -> Claims {
    Claims {
        iss: "440000".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_300,
        status: 2,
        status_valid_until: 1_700_604_800,
        subject: Subject {
            masked_name: "L* L**".into(),
            document_type: DocumentType::Passport,
            masked_document_number: "E1*67".into(),
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
    assert_eq!(claims_1().to_cbor().len(), 57);
    let signed = cose::sign(claims_1().to_cbor(), &k);
    assert_eq!(hex::encode(&signed.bytes), KAT1_COSE_HEX);
    assert_eq!(signed.bytes.len(), 141);
    assert_eq!(
        signed.bytes[signed.bytes.len() - 64..],
        signed.signature[..]
    );
    assert_eq!(encode(&claims_1(), &k), KAT1_CODE);
    assert_eq!(KAT1_CODE.len(), 218);
    // The code id comes with the string, and is the signature's first 16 bytes.
    let issued = encode_with_cti(&claims_1(), &k);
    assert_eq!(issued.code, KAT1_CODE);
    assert_eq!(hex::encode(issued.cti), KAT1_CTI_HEX);
    assert_eq!(issued.cti[..], signed.signature[..16]);
    // Deterministic: a second run gives the same string.
    assert_eq!(encode(&claims_1(), &k), KAT1_CODE);
    // The transport stage alone (Base45 of the COSE bytes, no compression), and its inverse.
    assert_eq!(transport::wrap(&kat1_cose()), KAT1_CODE);
    assert_eq!(
        &KAT1_CODE[PREFIX.len()..],
        base45::encode(kat1_cose()).as_str()
    );
    assert_eq!(transport::unwrap(KAT1_CODE).unwrap(), kat1_cose());
    // Only QR alphanumeric characters.
    assert!(KAT1_CODE
        .chars()
        .all(|c| "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(c)));
}

#[test]
fn kat1_cose_structure_is_as_specified() {
    let cose = kat1_cose();
    // Untagged: array of 4, protected bstr(13) = {1: -8, 4: h'<kid>'}, empty unprotected map.
    let protected = format!("844da201270448{KAT1_KID_HEX}a0");
    assert!(KAT1_COSE_HEX.starts_with(&protected));
    // Then the payload bstr (0x58 0x39 = 57 bytes): the claims, byte for byte.
    let claims = hex::decode(KAT1_CLAIMS_HEX).unwrap();
    assert_eq!(claims.len(), 0x39);
    let at = protected.len() / 2;
    assert_eq!(at, 16);
    assert_eq!(cose[at..at + 2], [0x58, 0x39]);
    assert_eq!(cose[at + 2..at + 2 + claims.len()], claims[..]);
    // Then the signature bstr (0x58 0x40 = 64 bytes) and nothing else.
    let sig_at = at + 2 + claims.len();
    assert_eq!(cose[sig_at..sig_at + 2], [0x58, 0x40]);
    assert_eq!(cose.len(), sig_at + 2 + 64);
    // Byte accounting of docs/code-format.md section 2: 16 + 2 + 57 + 2 + 64.
    assert_eq!(cose.len(), 141);
    // The signature is Ed25519 over Sig_structure ["Signature1", protected, h'', payload].
    let mut tbs = vec![0x84, 0x6a];
    tbs.extend_from_slice(b"Signature1");
    tbs.extend_from_slice(&hex::decode(format!("4da201270448{KAT1_KID_HEX}")).unwrap());
    tbs.extend_from_slice(&[0x40, 0x58, 0x39]);
    tbs.extend_from_slice(&claims);
    let sig = &cose[sig_at + 2..];
    assert!(crate::keys::verify_signature(&key_1().public(), &tbs, sig));
    assert_eq!(key_1().sign(&tbs)[..], sig[..]);
    assert_eq!(hex::encode(&sig[..16]), KAT1_CTI_HEX);
}

#[test]
fn kat1_decodes_to_every_field() {
    let hc = HealthCode::decode(KAT1_CODE).unwrap();
    assert_eq!(hc.kid.to_string(), KAT1_KID_HEX);
    assert_eq!(hc.kid, key_1().kid());
    assert_eq!(hex::encode(hc.cti()), KAT1_CTI_HEX);
    let c = &hc.claims;
    assert_eq!(c.iss, "510000");
    assert_eq!(c.iat, 1_700_000_000);
    assert_eq!(c.exp, 1_700_000_300);
    assert_eq!(c.status, 1);
    assert_eq!(c.status_valid_until, 1_701_000_000);
    assert_eq!(c.subject.masked_name, "张*三");
    assert_eq!(c.subject.document_type, DocumentType::ResidentIdentityCard);
    assert_eq!(c.subject.masked_document_number, "5101*1234");
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
fn kat1_tagged_forms_are_refused() {
    // Tag 18, and tag 61 around tag 18, would be second strings for one code (same claims, same
    // signature, same cti): hcmr codes are untagged (issue 15 fault 7).
    for (prefix, t) in [(&[0xd2u8][..], 18), (&[0xd8, 0x3d, 0xd2], 61)] {
        let tagged = [prefix, &kat1_cose()[..]].concat();
        assert_eq!(
            HealthCode::decode(&transport::wrap(&tagged)).unwrap_err(),
            CodeError::UnexpectedTag(t)
        );
    }
}

/// Issue 15 fault 7: every other encoding of a valid code is refused, so one code has one
/// string. The unsigned parts (array and string heads, the unprotected header, tags) could be
/// changed by anyone; the signed payload's encoding only by the key holder, and is refused too.
#[test]
fn non_canonical_encodings_of_a_valid_code_are_refused() {
    let cose = kat1_cose();
    let decode = |b: &[u8]| HealthCode::decode(&transport::wrap(b));
    let not_canonical = |part, offset| Err(CodeError::NotCanonical { part, offset });
    assert!(decode(&cose).unwrap().signature_valid(&key_1().public()));
    // An indefinite-length COSE_Sign1 array.
    let indefinite = |b: &[u8], head: u8| [&[head][..], &b[1..], &[0xff]].concat();
    assert_eq!(
        decode(&indefinite(&cose, 0x9f)).map(|_| ()),
        not_canonical("COSE_Sign1", 0)
    );
    // The payload (at byte 16, `58 39`) as a chunked byte string of two chunks.
    let payload = &cose[18..18 + 57];
    let mut chunked = cose[..16].to_vec();
    chunked.extend_from_slice(&[0x5f, 0x50]);
    chunked.extend_from_slice(&payload[..16]);
    chunked.extend_from_slice(&[0x58, 41]);
    chunked.extend_from_slice(&payload[16..]);
    chunked.push(0xff);
    chunked.extend_from_slice(&cose[18 + 57..]);
    assert_eq!(
        decode(&chunked).map(|_| ()),
        not_canonical("COSE_Sign1", 16)
    );
    // The signature's length in a longer head than needed (`59 0040` for `58 40`).
    let mut long = cose[..75].to_vec();
    long.extend_from_slice(&[0x59, 0x00, 0x40]);
    long.extend_from_slice(&cose[77..]);
    assert_eq!(decode(&long).map(|_| ()), not_canonical("COSE_Sign1", 75));
    // The protected kid repeated in the unprotected header.
    let e = decode(&cbor(&value_of(sign1(
        eddsa_kid(&kid1()),
        HeaderBuilder::new().key_id(kid1()).build(),
        Some(claims_1().to_cbor()),
        &key_1(),
    ))))
    .unwrap_err();
    assert_eq!(e, CodeError::UnprotectedNotEmpty);
    assert_eq!(e.code(), "cose.unprotected_not_empty");
    // Any other unprotected parameter (here a content type).
    let e = decode(&cbor(&value_of(sign1(
        eddsa_kid(&kid1()),
        HeaderBuilder::new()
            .content_format(iana::CoapContentFormat::Cbor)
            .build(),
        Some(claims_1().to_cbor()),
        &key_1(),
    ))))
    .unwrap_err();
    assert_eq!(e, CodeError::UnprotectedNotEmpty);
    // Inside the signed payload, signed by the right key: an indefinite-length claims map, body
    // (its head at byte 22) and name (at byte 29).
    let claims = hex::decode(KAT1_CLAIMS_HEX).unwrap();
    let signed = |c: Vec<u8>| cose::sign(c, &key_1()).bytes;
    assert_eq!(
        decode(&signed(indefinite(&claims, 0xbf))).map(|_| ()),
        not_canonical("claims", 0)
    );
    let body = [&claims[..22], &[0x9f], &claims[23..], &[0xff]].concat();
    assert_eq!(
        decode(&signed(body)).map(|_| ()),
        not_canonical("claims", 22)
    );
    // The name 张*三 (7 bytes, `67` head) as the chunks "张", "*", "三".
    let mut name = claims[..29].to_vec();
    name.extend_from_slice(&[
        0x7f, 0x63, 0xe5, 0xbc, 0xa0, 0x61, b'*', 0x63, 0xe4, 0xb8, 0x89,
    ]);
    name.push(0xff);
    name.extend_from_slice(&claims[37..]);
    let e = decode(&signed(name)).unwrap_err();
    assert_eq!(
        e,
        CodeError::NotCanonical {
            part: "claims",
            offset: 29
        }
    );
    assert_eq!(e.code(), "cbor.not_canonical");
    assert_eq!(
        e.to_string(),
        "CBOR: the claims is not in canonical form at byte 29: hcmr writes definite lengths, \
         unchunked strings and the shortest head of each item"
    );
}

#[test]
fn kat2_yellow_passport() {
    let k = key_2();
    assert_eq!(hex::encode(k.public().to_bytes()), KAT2_PUBLIC_KEY_HEX);
    assert_eq!(k.kid().to_string(), KAT2_KID_HEX);
    assert_eq!(hex::encode(claims_2().to_cbor()), KAT2_CLAIMS_HEX);
    assert_eq!(encode(&claims_2(), &k), KAT2_CODE);
    assert_eq!(KAT2_CODE.len(), 210);

    let hc = HealthCode::decode(KAT2_CODE).unwrap();
    assert_eq!(hc.kid.to_string(), KAT2_KID_HEX);
    assert_eq!(hex::encode(hc.cti()), KAT2_CTI_HEX);
    let c = &hc.claims;
    assert_eq!(c.iss, "440000");
    assert_eq!(c.iat, 1_700_000_000);
    assert_eq!(c.exp, 1_700_000_300);
    assert_eq!(c.status, 2);
    assert_eq!(
        crate::status::HealthStatus::from_u64(c.status),
        Some(crate::status::HealthStatus::Yellow)
    );
    assert_eq!(c.status_valid_until, 1_700_604_800);
    assert_eq!(c.subject.masked_name, "L* L**");
    assert_eq!(c.subject.document_type, DocumentType::Passport);
    assert_eq!(c.subject.document_type.to_u8(), 2);
    assert_eq!(c.subject.masked_document_number, "E1*67");
    assert_eq!(c.subject.subject_hash, SubjectHash(HASH_2));
    assert_eq!(*c, claims_2());
    assert!(hc.signature_valid(&key_2().public()));
    assert!(!hc.signature_valid(&key_1().public()));
}

#[test]
fn cti_is_bound_by_the_signature() {
    // Different claims or a different key give a different cti; a changed cti is a changed
    // signature, which no longer verifies.
    let a = encode_with_cti(&claims_1(), &key_1());
    let b = encode_with_cti(&claims_1(), &key_2());
    let mut c1 = claims_1();
    c1.iat += 1;
    let c = encode_with_cti(&c1, &key_1());
    assert_ne!(a.cti, b.cti);
    assert_ne!(a.cti, c.cti);
    let mut cose = kat1_cose();
    let sig_at = cose.len() - 64;
    cose[sig_at] ^= 0x01;
    let hc = HealthCode::decode(&transport::wrap(&cose)).unwrap();
    assert_ne!(hex::encode(hc.cti()), KAT1_CTI_HEX);
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

/// Sets (`Some`) or removes (`None`) the entry at `path`: a key of the top map, then, inside
/// the body array, an element index (removing one shortens the array).
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
        Value::Array(items) => {
            let i = usize::try_from(path[1]).unwrap();
            match new {
                Some(v) => items[i] = v,
                None => {
                    items.remove(i);
                }
            }
        }
        v => panic!("not a map or array at {path:?}: {v:?}"),
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
    decode_cose(&cose::sign(cbor(claims), &key_1()).bytes)
}

// ---------------------------------------------------------------------------------------------
// COSE_Sign1 forms and faults
// ---------------------------------------------------------------------------------------------

#[test]
fn untagged_decodes_and_verifies() {
    let forms = [("untagged", value_of(good_sign1()))];
    for (name, v) in forms {
        let hc = decode_value(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hc.claims, claims_1(), "{name}");
        assert_eq!(hc.kid, key_1().kid(), "{name}");
        assert!(hc.signature_valid(&key_1().public()), "{name}");
        assert!(!hc.signature_valid(&key_2().public()), "{name}");
    }
    // The hand-built untagged form is byte for byte what the encoder writes.
    assert_eq!(cbor(&value_of(good_sign1())), kat1_cose());
}

#[test]
fn every_tag_is_refused() {
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
    // 61 around COSE_Sign (98), and around COSE_Sign1 (18).
    for inner in [98, TAG_COSE_SIGN1] {
        assert_eq!(
            err(decode_value(&tag(TAG_CWT, tag(inner, s())))),
            CodeError::UnexpectedTag(61)
        );
    }
    // 61 around a text string.
    assert_eq!(
        err(decode_value(&tag(61, Value::Text("x".into())))),
        CodeError::UnexpectedTag(61)
    );
    // Other tags at the top: COSE_Sign1 (18), COSE_Sign (98), COSE_Encrypt0 (16), COSE_Mac0
    // (17), a large one.
    for t in [18u64, 98, 16, 17, 55799, u64::MAX] {
        assert_eq!(err(decode_value(&tag(t, s()))), CodeError::UnexpectedTag(t));
    }
    let e = err(decode_value(&tag(18, tag(18, s()))));
    assert_eq!(e, CodeError::UnexpectedTag(18));
    assert_eq!(e.code(), "cose.tag");
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
    // In words, with the offset (issue 15 fault 9: it was ciborium's debug text,
    // `Io(Error { kind: UnexpectedEof, .. })`).
    assert_eq!(
        e.to_string(),
        "CBOR: not well-formed: the input ends early, at byte 140, inside an item; more bytes \
         were expected"
    );
    assert_eq!(e.code(), "cbor.malformed");
    // A malformed protected header is described in words too (coset said `Syntax(..)`).
    let mut raw = vec![0x84, 0x42, 0xa1, 0x1d, 0xa0, 0x41, 0x00, 0x58, 0x40];
    raw.extend_from_slice(&[0u8; 64]);
    assert_eq!(
        err(decode_cose(&raw)).to_string(),
        "COSE: not a COSE_Sign1 structure: the protected header is not well-formed: CBOR: not \
         well-formed: byte 1 (0x1d): reserved additional information 29, which no item uses; a \
         well-formed item head was expected"
    );
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
    assert_eq!(e, CodeError::UnsupportedAlgorithm("-7 (ES256)".into()));
    assert_eq!(
        e.to_string(),
        "COSE: algorithm -7 (ES256) is not accepted; hcmr codes use EdDSA (-8)"
    );
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
    // The same kid in both headers is refused: a second string for one code.
    assert_eq!(
        err(decode_value(&value_of(sign1(
            eddsa_kid(&kid1()),
            unprot_kid(kid1()),
            payload(),
            &k,
        )))),
        CodeError::UnprotectedNotEmpty
    );
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
            err(decode_value(&value_of(s))),
            CodeError::SignatureLength(len)
        );
    }
}

#[test]
fn tampered_payload_decodes_but_does_not_verify() {
    // Signed over claims 1, carrying claims 2.
    let mut s = good_sign1();
    s.payload = Some(claims_2().to_cbor());
    let hc = decode_value(&value_of(s)).unwrap();
    assert_eq!(hc.claims, claims_2());
    assert!(!hc.signature_valid(&key_1().public()));
    assert!(!hc.signature_valid(&key_2().public()));
    // One flipped status (green -> red) in an otherwise valid code.
    let mut s = good_sign1();
    let mut c = claims_1();
    c.status = 3;
    s.payload = Some(c.to_cbor());
    let hc = decode_value(&value_of(s)).unwrap();
    assert_eq!(hc.claims.status, 3);
    assert!(!hc.signature_valid(&key_1().public()));
    // A swapped protected kid: the signature covers the protected header.
    let mut s = good_sign1();
    s.protected = coset::ProtectedHeader {
        original_data: None,
        header: eddsa_kid(&key_2().kid().0),
    };
    let hc = decode_value(&value_of(s)).unwrap();
    assert_eq!(hc.kid, key_2().kid());
    assert!(!hc.signature_valid(&key_1().public()));
    assert!(!hc.signature_valid(&key_2().public()));
    // A flipped signature bit.
    let mut s = good_sign1();
    s.signature[10] ^= 0x01;
    let hc = decode_value(&value_of(s)).unwrap();
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
    let hc = decode_value(&value_of(s)).unwrap();
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
        err(decode_cose(&cose::sign(vec![0xff], &k).bytes)),
        CodeError::Cbor(_)
    ));
    let mut p = claims_1().to_cbor();
    p.push(0x00);
    assert_eq!(
        err(decode_cose(&cose::sign(p, &k).bytes)),
        CodeError::CborTrailing(1)
    );
}

#[test]
fn duplicate_keys_are_refused() {
    // Vector 1's claims with extra entries pushed into the top map.
    let dup = |extra: Vec<(i64, Value)>| {
        let mut m = claims_map();
        m.extend(extra.into_iter().map(|(k, v)| (ikey(k), v)));
        Value::Map(m)
    };
    assert_eq!(
        err(decode_claims(&dup(vec![(1, ikey(440000))]))),
        CodeError::DuplicateKey("iss".into(), "claims")
    );
    assert_eq!(
        err(decode_claims(&dup(vec![(4, ikey(1_700_000_300))]))),
        CodeError::DuplicateKey("exp".into(), "claims")
    );
    assert_eq!(
        err(decode_claims(&dup(vec![(
            CLAIM_HCODE,
            Value::Array(vec![])
        )]))),
        CodeError::DuplicateKey("hcode".into(), "claims")
    );
    // A key the decoder does not read (such as an old cti, 7), twice, is refused too.
    for k in [99, 7] {
        assert_eq!(
            err(decode_claims(&dup(vec![(k, ikey(0)), (k, ikey(1))]))),
            CodeError::DuplicateKey(k.to_string(), "claims")
        );
    }
    // A text key twice.
    let mut m = claims_map();
    m.push((Value::Text("x".into()), ikey(0)));
    m.push((Value::Text("x".into()), ikey(1)));
    assert_eq!(
        err(decode_claims(&Value::Map(m))),
        CodeError::DuplicateKey("\"x\"".into(), "claims")
    );
    // One key in two encodings (0x18 0x63 and 0x19 0x00 0x63 are both 99; 0x01 and 0x19 0x00
    // 0x01 are both 1): still the same key.
    let raw = |extra: &[u8], entries: u8| {
        let mut p = claims_1().to_cbor();
        assert_eq!(p[0], 0xa4);
        p[0] = 0xa0 + entries;
        p.extend_from_slice(extra);
        decode_cose(&cose::sign(p, &key_1()).bytes)
    };
    assert_eq!(
        err(raw(&[0x18, 0x63, 0x00, 0x19, 0x00, 0x63, 0x01], 6)),
        CodeError::DuplicateKey("99".into(), "claims")
    );
    assert_eq!(
        err(raw(&[0x19, 0x00, 0x01, 0x1a, 0x00, 0x06, 0xb6, 0xc0], 5)),
        CodeError::DuplicateKey("iss".into(), "claims")
    );
    assert_eq!(
        CodeError::DuplicateKey("iss".into(), "claims").code(),
        "claims.duplicate_key"
    );
}

#[test]
fn unknown_keys_and_an_old_cti_are_ignored() {
    let mut m = claims_map();
    m.push((ikey(99), Value::Text("future".into())));
    m.push((Value::Text("iss".into()), Value::Text("440000".into())));
    m.push((ikey(2), Value::Text("sub".into())));
    // The cti claim of the first draft: ignored, whatever it holds (the cti is derived).
    m.push((ikey(7), Value::Bytes(vec![0x5a; 16])));
    let hc = decode_claims(&Value::Map(m)).unwrap();
    assert_eq!(hc.claims, claims_1());
    let hc = decode_claims(&claims_with(&[7], Value::Text("id".into()))).unwrap();
    assert_eq!(hc.claims, claims_1());
}

#[test]
fn iss_is_a_uint_and_leniently_text() {
    // The encoder writes 510000 as a uint (0x1a 0x0007c830).
    assert_eq!(
        claims_1().to_cbor()[1..7],
        [0x01, 0x1a, 0x00, 0x07, 0xc8, 0x30]
    );
    // The older six-digit text form decodes to the same claims.
    let hc = decode_claims(&claims_with(&[1], Value::Text("510000".into()))).unwrap();
    assert_eq!(hc.claims, claims_1());
    // Any uint is carried as its decimal text; verification judges whether it is a province.
    let hc = decode_claims(&claims_with(&[1], ikey(5))).unwrap();
    assert_eq!(hc.claims.iss, "5");
    // Text that is not a canonical decimal is written as text, so it round-trips too.
    for iss in ["SC", "", "051000", "5100000", "18446744073709551616"] {
        let mut c = claims_1();
        c.iss = iss.into();
        let hc = HealthCode::decode(&encode(&c, &key_1())).unwrap();
        assert_eq!(hc.claims.iss, iss);
    }
}

#[test]
fn missing_claims_and_wrong_body_lengths_are_named() {
    for (path, name) in [
        (&[1i64][..], "iss"),
        (&[4], "exp"),
        (&[6], "iat"),
        (&[CLAIM_HCODE], "hcode"),
    ] {
        assert_eq!(
            err(decode_claims(&claims_without(path))),
            CodeError::MissingClaim(name),
            "{path:?}"
        );
    }
    assert_eq!(CodeError::MissingClaim("exp").code(), "claims.missing");
    // The body must have exactly 6 elements: one missing (any of them), or one extra.
    for i in 0..6 {
        assert_eq!(
            err(decode_claims(&claims_without(&[CLAIM_HCODE, i]))),
            CodeError::BadClaim("hcode", "must be an array of 6"),
            "element {i}"
        );
    }
    let mut m = claims_map();
    if let Value::Array(a) = &mut m.last_mut().unwrap().1 {
        a.push(ikey(0));
    }
    assert_eq!(
        err(decode_claims(&Value::Map(m))),
        CodeError::BadClaim("hcode", "must be an array of 6")
    );
}

#[test]
fn wrong_types_and_values_are_named() {
    let text = |s: &str| Value::Text(s.into());
    let cases: Vec<(&[i64], Value, CodeError)> = vec![
        (
            &[1],
            Value::Bytes(b"510000".to_vec()),
            CodeError::BadClaim("iss", "not an unsigned integer or text string"),
        ),
        (&[1], ikey(-510000), CodeError::BadClaim("iss", "negative")),
        (
            &[1],
            text(&"5".repeat(65)),
            CodeError::BadClaim("iss", "longer than 64 characters"),
        ),
        (
            &[CLAIM_HCODE],
            Value::Map(vec![]),
            CodeError::BadClaim("hcode", "not an array"),
        ),
        (
            &[CLAIM_HCODE, 0],
            ikey(-1),
            CodeError::BadClaim("hcode.status", "negative"),
        ),
        (
            &[CLAIM_HCODE, 0],
            Value::Float(1.0),
            CodeError::BadClaim("hcode.status", "not an unsigned integer"),
        ),
        (
            &[CLAIM_HCODE, 2],
            Value::Null,
            CodeError::BadClaim("subject.name", "not a text string"),
        ),
        (
            &[CLAIM_HCODE, 3],
            ikey(6),
            CodeError::BadClaim("subject.document_type", "unassigned document type"),
        ),
        (
            &[CLAIM_HCODE, 3],
            text("1"),
            CodeError::BadClaim("subject.document_type", "not an unsigned integer"),
        ),
        (
            &[CLAIM_HCODE, 4],
            text(&"*".repeat(65)),
            CodeError::BadClaim("subject.document_number", "longer than 64 characters"),
        ),
        (
            &[CLAIM_HCODE, 4],
            ikey(1234),
            CodeError::BadClaim("subject.document_number", "not a text string"),
        ),
        (
            &[CLAIM_HCODE, 5],
            Value::Bytes(vec![0; 7]),
            CodeError::BadClaim("subject.hash", "must be 8 bytes"),
        ),
        (
            &[CLAIM_HCODE, 5],
            Value::Bytes(vec![0; 16]),
            CodeError::BadClaim("subject.hash", "must be 8 bytes"),
        ),
        (
            &[CLAIM_HCODE, 5],
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
    let hc = decode_claims(&claims_with(&[CLAIM_HCODE, 2], Value::Text(name.clone()))).unwrap();
    assert_eq!(hc.claims.subject.masked_name, name);
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
        (&[CLAIM_HCODE, 1], "hcode.status_valid_until"),
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
    let hc = decode_cose(&cose::sign(p, &key_1()).bytes).unwrap();
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
    // A prefix and nothing else: Base45 of nothing is no bytes, which is no CBOR item.
    assert!(matches!(
        err(HealthCode::decode(PREFIX)),
        CodeError::Cbor(_)
    ));
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
fn decoded_size_is_capped() {
    // Exactly MAX_COSE_BYTES pass the cap (and fail later, as CBOR); one more is refused before
    // any CBOR is parsed.
    let at_cap = transport::wrap(&vec![0x18; MAX_COSE_BYTES]);
    assert!(at_cap.len() <= MAX_CODE_CHARS);
    assert_eq!(transport::unwrap(&at_cap).unwrap().len(), MAX_COSE_BYTES);
    assert!(matches!(
        err(HealthCode::decode(&at_cap)),
        CodeError::CborTrailing(_)
    ));
    let over = transport::wrap(&vec![0x18; MAX_COSE_BYTES + 1]);
    assert_eq!(
        err(HealthCode::decode(&over)),
        CodeError::Base45TooLarge(MAX_COSE_BYTES + 1)
    );
    assert_eq!(CodeError::Base45TooLarge(0).code(), "base45.too_large");
    // A zlib stream (the first draft's transport) is not a COSE_Sign1: its first byte 0x78 is a
    // CBOR text string header, so the stage that refuses it is the COSE stage.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &kat1_cose()).unwrap();
    let zlib = z.finish().unwrap();
    let e = err(HealthCode::decode(&transport::wrap(&zlib)));
    assert!(
        e.code().starts_with("cbor.") || e.code().starts_with("cose."),
        "{e:?}"
    );
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
        CodeError::Base45TooLarge(0),
        CodeError::Cbor(String::new()),
        CodeError::CborTrailing(0),
        CodeError::NotCanonical {
            part: "",
            offset: 0,
        },
        CodeError::UnexpectedTag(0),
        CodeError::NotCoseSign1(String::new()),
        CodeError::MissingAlgorithm,
        CodeError::UnsupportedAlgorithm(String::new()),
        CodeError::CriticalHeader,
        CodeError::MissingKid,
        CodeError::KidUnprotected,
        CodeError::KidConflict,
        CodeError::UnprotectedNotEmpty,
        CodeError::KidLength(0),
        CodeError::MissingPayload,
        CodeError::SignatureLength(0),
        CodeError::ClaimsNotMap,
        CodeError::DuplicateKey(String::new(), ""),
        CodeError::MissingClaim(""),
        CodeError::BadClaim("", ""),
        CodeError::ClaimCharacter {
            what: "",
            ch: '\u{1b}',
            position: 1,
        },
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
            ["prefix", "base45", "cbor", "cose", "claims"].contains(&stage),
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
            "base45.too_large",
            "cbor.malformed",
            "cbor.trailing",
            "cbor.not_canonical",
            "cose.tag",
            "cose.structure",
            "cose.alg_missing",
            "cose.alg",
            "cose.crit",
            "cose.kid_missing",
            "cose.kid_unprotected",
            "cose.kid_conflict",
            "cose.unprotected_not_empty",
            "cose.kid_length",
            "cose.payload_missing",
            "cose.signature_length",
            "claims.not_map",
            "claims.duplicate_key",
            "claims.missing",
            "claims.type",
            "claims.character",
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

/// Every one-character substitution of vector 1 within the Base45 alphabet (about 9 600
/// strings): none decodes with a valid signature. Without compression, many still decode (a
/// changed signature, hash or masked-name byte keeps the CBOR well-formed), so the signature is
/// what catches them; Base45 maps each byte pair to its own triplet, so a substitution always
/// changes the COSE bytes.
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
    // Many decode (mostly inside the signature); none verifies.
    assert!(decoded > 1000, "{decoded}");
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
        // Straight after the prefix, and as a tagged COSE_Sign1 header followed by the bytes.
        let _ = HealthCode::decode(&format!("{PREFIX}{}", base45::encode(&b)));
        let _ = HealthCode::decode(&transport::wrap(&[&[0xd2, 0x84][..], &b].concat()));
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
        name in "\\PC{1,64}",
        number in "[0-9A-Z*]{1,32}",
        doc in proptest::sample::select(vec![1u64, 2, 3, 4, 5, 9]),
        hash in any::<[u8; 8]>(),
    ) {
        let c = Claims {
            iss: "510000".into(),
            iat,
            exp: (iat + ttl).min(MAX_TIME),
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
    assert_eq!(h.to_string(), "8b01d7da89052d32");
    assert_eq!(
        key.subject_hash(DocumentType::Passport, "E12345678")
            .to_string(),
        "9634c56079c5a84e"
    );
    // The documented input layout: "hcmr-subject-v1" 0x00 type 0x00 number, first 8 bytes.
    let mut mac = Hmac::<Sha256>::new_from_slice(&[0x01; 32]).unwrap();
    mac.update(b"hcmr-subject-v1\x00\x01\x00510104199001011230");
    assert_eq!(mac.finalize().into_bytes()[..8], h.0);

    // One `*` for the hidden run.
    assert_eq!(mask_document_number(&number), "5101*1230");
    assert_eq!(mask_document_number("E12345678"), "E123*5678");
    assert_eq!(mask_document_number("E1234567"), "E1*67");
    assert_eq!(mask_document_number("AB123"), "AB*23");
    assert_eq!(mask_document_number("A123"), "*");
    assert_eq!(mask_name("李").unwrap(), "*");
    assert_eq!(mask_name("张三").unwrap(), "张*");
    assert_eq!(mask_name("张小三").unwrap(), "张*三");
    assert_eq!(mask_name("欧阳小明").unwrap(), "欧**明");
    assert_eq!(mask_name(" Li  Lei ").unwrap(), "L* L**");
    assert_eq!(mask_name("李Lei").unwrap(), "李***");
}

/// Issue 15 fault 8: a text claim with a control or bidirectional-control character is refused,
/// naming the claim, the character and its position; a verifier's screen never gets it.
#[test]
fn control_and_bidi_characters_in_text_claims_are_refused() {
    let cases = [
        (
            2,
            "\u{1b}[1A\u{1b}[2K\rRECOGNIZED",
            "subject.name",
            '\u{1b}',
            1,
        ),
        (2, "\u{202e}*三", "subject.name", '\u{202e}', 1),
        (
            4,
            "5101*\u{2066}1234",
            "subject.document_number",
            '\u{2066}',
            6,
        ),
        (4, "5101*1234\n", "subject.document_number", '\n', 10),
    ];
    for (i, text, what, ch, position) in cases {
        let e = err(decode_claims(&claims_with(
            &[CLAIM_HCODE, i],
            Value::Text(text.into()),
        )));
        assert_eq!(
            e,
            CodeError::ClaimCharacter { what, ch, position },
            "{text:?}"
        );
        assert_eq!(e.code(), "claims.character");
    }
    let e = err(decode_claims(&claims_with(
        &[CLAIM_HCODE, 2],
        Value::Text("\u{202e}*三".into()),
    )));
    assert_eq!(
        e.to_string(),
        "claims: subject.name has the character U+202E at position 1, which is not allowed \
         (control and bidirectional-control characters)"
    );
    // A name of zero-width characters only shows nothing.
    assert_eq!(
        err(decode_claims(&claims_with(
            &[CLAIM_HCODE, 2],
            Value::Text("\u{200d}".into())
        ))),
        CodeError::BadClaim("subject.name", "has no visible character")
    );
    // A zero-width joiner inside a name is text, not a control.
    assert!(decode_claims(&claims_with(
        &[CLAIM_HCODE, 2],
        Value::Text("a\u{200d}b".into())
    ))
    .is_ok());
}
