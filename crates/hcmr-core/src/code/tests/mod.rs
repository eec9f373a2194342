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
use crate::time::UnixTime;

mod decoder_faults;
mod properties;
mod transport_faults;
mod vectors;

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
        iat: UnixTime::from_secs(1_700_000_000),
        exp: UnixTime::from_secs(1_700_000_300),
        status: 1,
        status_valid_until: UnixTime::from_secs(1_701_000_000),
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
        iat: UnixTime::from_secs(1_700_000_000),
        exp: UnixTime::from_secs(1_700_000_300),
        status: 2,
        status_valid_until: UnixTime::from_secs(1_700_604_800),
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
