//! Unit tests of the inspector: hcmr codes made by `crate::code::encode`, one broken input per
//! stage, COSE forms the hcmr decoder refuses but the inspector shows, the CBOR -> JSON rules,
//! and properties (no input panics). The EU DCC test vectors are in tests/it/inspect.rs of the
//! top-level package.

use ciborium::value::Value;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use proptest::prelude::*;

use super::*;
use crate::code::{encode, transport, Claims, Subject};
use crate::identity::{DocumentType, SubjectHash};
use crate::keys::NodeKey;
use crate::time::UnixTime;

/// docs/code-format.md section 10, vector 1: kid of the key with seed 32 x 0x42.
const KAT1_KID_HEX: &str = "3097e2dee2cb4a34";
/// docs/code-format.md section 10, vector 1 (218 characters).
const KAT1_CODE: &str = "HCMR1:TWGSLK/-4U5929J/7SMVPHT6+6B0XK-C3C:07367F3PRAKP57F3ORAC10 AJF.G7F3FOCH68.1T7BK7-SIEHNDD$96V96*96DL6.99IQU$$UB4V5CV9485/A0FT-DDE0O-X4 HE--8RPQ.336G3E160%3Y%PYHV%C3BHJ2Q8YJ2Y KFVE%6I6B14$O-N6V04DSF3HT5166TI268P*D20";

fn claims(iss: &str, status: u64) -> Claims {
    Claims {
        iss: iss.into(),
        iat: UnixTime::from_secs(1_700_000_000),
        exp: UnixTime::from_secs(1_700_000_300),
        status,
        status_valid_until: UnixTime::from_secs(1_701_000_000),
        subject: Subject {
            masked_name: "张*三".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "5101*1234".into(),
            subject_hash: SubjectHash([0xf0; 8]),
        },
    }
}

fn key() -> NodeKey {
    NodeKey::from_seed(&[0x42; 32])
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    std::io::Write::write_all(&mut z, bytes).unwrap();
    z.finish().unwrap()
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn cbor(v: &Value) -> Vec<u8> {
    crate::cbor::encode(v)
}

/// A COSE_Sign1 array from its parts.
fn sign1(protected: &[(Value, Value)], unprotected: &[(Value, Value)], payload: Value) -> Value {
    let protected = if protected.is_empty() {
        Vec::new()
    } else {
        cbor(&Value::Map(protected.to_vec()))
    };
    Value::Array(vec![
        Value::Bytes(protected),
        Value::Map(unprotected.to_vec()),
        payload,
        Value::Bytes(vec![0x55; 64]),
    ])
}

/// An hcmr-looking string around COSE bytes (Base45, prefix; no compression).
fn hcmr_string(cose: &[u8]) -> String {
    transport::wrap(cose)
}

/// An EU-looking string around COSE bytes.
fn eu_string(cose: &[u8], compress: bool) -> String {
    let body = if compress { zlib(cose) } else { cose.to_vec() };
    format!("HC1:{}", base45::encode(body))
}

/// A minimal EU payload: iss, iat, exp and hcert {1: {"ver": "1.3.0"}}.
fn eu_payload() -> Vec<u8> {
    cbor(&Value::Map(vec![
        (int(1), Value::Text("AT".into())),
        (int(6), int(1_620_000_000)),
        (int(4), Value::Float(1_650_000_000.0)),
        (
            int(CLAIM_HCERT),
            Value::Map(vec![(
                int(1),
                Value::Map(vec![(
                    Value::Text("ver".into()),
                    Value::Text("1.3.0".into()),
                )]),
            )]),
        ),
    ]))
}

// ---------------------------------------------------------------------------------------------
// hcmr codes
// ---------------------------------------------------------------------------------------------

#[test]
fn hcmr_code_inspects_to_kid_iss_and_status() {
    let code = encode(&claims("510000", 1), &key());
    let ins = inspect(&code).unwrap();
    assert_eq!(ins.scheme, Scheme::Hcmr);
    assert!(!ins.compressed);
    assert_eq!(ins.cose.tag, TagForm::Untagged);
    let (kid, loc) = ins.cose.kid().unwrap();
    assert_eq!(hex::encode(kid), KAT1_KID_HEX);
    assert_eq!(hex::encode(kid), key().kid().to_string().to_lowercase());
    assert_eq!(loc, ParamLocation::Protected);
    assert_eq!(ins.claims["1"], 510000);
    assert_eq!(ins.claims["-38962"][0], 1);
    assert_eq!(ins.claims["-38962"][2], "张*三");
    assert_eq!(ins.claims["-38962"][4], "5101*1234");
    assert_eq!(ins.claims["-38962"][5], "f0f0f0f0f0f0f0f0");
    assert!(ins.claims.get("7").is_none(), "no cti claim");
    assert_eq!(ins.hcert, None);
    assert_eq!(ins.hcmr_decoder, Some(Ok(())));

    let j = ins.to_json();
    assert_eq!(j["scheme"], "hcmr");
    assert_eq!(j["prefix"], "HCMR1:");
    assert_eq!(j["signature_verified"], false);
    assert_eq!(j["cose_tag"], "untagged");
    assert_eq!(j["compressed"], false);
    assert_eq!(j["kid"]["hex"], KAT1_KID_HEX);
    assert_eq!(j["kid"]["location"], "protected");
    assert_eq!(j["alg"]["value"], -8);
    assert_eq!(j["alg"]["name"], "EdDSA");
    assert_eq!(j["alg"]["location"], "protected");
    assert_eq!(j["protected"]["alg"]["name"], "EdDSA");
    assert_eq!(j["protected"]["bytes"], 13);
    assert_eq!(j["protected"]["parameters"]["4"], KAT1_KID_HEX);
    assert_eq!(j["unprotected"]["parameters"], json!({}));
    assert_eq!(j["signature_bytes"], 64);
    assert_eq!(j["claims"]["-38962"][0], 1);
    assert_eq!(j["hcmr_decoder"]["accepted"], true);
    assert!(j.get("hcert").is_none());
    // Sizes chain: every stage's output is the next stage's input.
    assert_eq!(j["sizes"]["code_chars"], code.chars().count());
    assert_eq!(j["sizes"]["base45_chars"], code.len() - "HCMR1:".len());
    let cose_bytes = base45(&code["HCMR1:".len()..]).unwrap();
    // No compression: the Base45 output is the COSE bytes.
    assert_eq!(ins.sizes.compressed_bytes, cose_bytes.len());
    assert_eq!(ins.sizes.cose_bytes, cose_bytes.len());
    assert_eq!(ins.sizes.payload_bytes, claims("510000", 1).to_cbor().len());

    // Another province and status.
    let ins = inspect(&encode(
        &claims("440000", 3),
        &NodeKey::from_seed(&[0x24; 32]),
    ))
    .unwrap();
    assert_eq!(hex::encode(ins.cose.kid().unwrap().0), "5f23ba66a62a6aef");
    assert_eq!(ins.claims["1"], 440000);
    assert_eq!(ins.claims["-38962"][0], 3);
}

#[test]
fn the_published_vector_and_scanner_line_endings_inspect_alike() {
    let kat = inspect(KAT1_CODE).unwrap();
    assert_eq!(hex::encode(kat.cose.kid().unwrap().0), KAT1_KID_HEX);
    assert_eq!(kat.claims["1"], 510000);
    assert_eq!(kat.claims["-38962"][0], 1);
    assert_eq!(kat.sizes.code_chars, 218);
    assert_eq!(kat.sizes.cose_bytes, 141);
    assert_eq!(kat.sizes.payload_bytes, 57);
    // The derived code id of docs/code-format.md section 10.
    assert_eq!(
        kat.cti().map(hex::encode).as_deref(),
        Some("0556aee8086947bde6259a71df46a6d2")
    );
    assert_eq!(kat.to_json()["cti"], "0556aee8086947bde6259a71df46a6d2");
    let code = encode(&claims("510000", 1), &key());
    let a = inspect(&code).unwrap();
    let b = inspect(&format!("{code}\r\n")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn each_failing_stage_of_a_broken_hcmr_code_has_its_own_error() {
    let good = encode(&claims("510000", 1), &key());
    let body = &good["HCMR1:".len()..];
    let cases: Vec<(String, &str, Stage)> = vec![
        // prefix
        (String::new(), "prefix.empty", Stage::Prefix),
        ("\r\n".into(), "prefix.empty", Stage::Prefix),
        (format!("hcmr1:{body}"), "prefix.unknown", Stage::Prefix),
        (format!("HCMR2:{body}"), "prefix.unknown", Stage::Prefix),
        (body.replace(':', "."), "prefix.missing", Stage::Prefix),
        (
            format!("HCMR1:{}", "A".repeat(MAX_INSPECT_CHARS)),
            "prefix.too_long",
            Stage::Prefix,
        ),
        // Base45
        (
            format!("HCMR1:{}a", &body[..body.len() - 1]),
            "base45.character",
            Stage::Base45,
        ),
        (
            // A valid body has len % 3 of 0 or 2: one or two more characters make it 1.
            format!(
                "HCMR1:{body}{}",
                if body.len().is_multiple_of(3) {
                    "A"
                } else {
                    "AA"
                }
            ),
            "base45.length",
            Stage::Base45,
        ),
        ("HCMR1:GGW".into(), "base45.overflow", Stage::Base45),
        // No decompression stage for hcmr: the Base45 output is capped instead.
        (
            hcmr_string(&vec![0u8; crate::code::MAX_COSE_BYTES + 1]),
            "base45.too_large",
            Stage::Base45,
        ),
        // A zlib stream is not taken for hcmr (no EU rule): its 0x78 is a CBOR text header.
        (
            hcmr_string(&zlib(&transport_cose(&good))),
            "cose.cbor",
            Stage::Cose,
        ),
        // COSE
        (hcmr_string(&[0xff, 0x00]), "cose.cbor", Stage::Cose),
        (
            hcmr_string(&[transport_cose(&good), vec![0x00]].concat()),
            "cose.trailing",
            Stage::Cose,
        ),
        (
            hcmr_string(&cbor(&Value::Tag(98, Box::new(int(0))))),
            "cose.tag",
            Stage::Cose,
        ),
        (
            hcmr_string(&cbor(&Value::Tag(61, Box::new(int(0))))),
            "cose.tag",
            Stage::Cose,
        ),
        (
            hcmr_string(&cbor(&Value::Array(vec![int(1), int(2), int(3)]))),
            "cose.structure",
            Stage::Cose,
        ),
        (
            hcmr_string(&cbor(&Value::Array(vec![
                Value::Bytes(vec![0x01]),
                Value::Map(vec![]),
                Value::Bytes(vec![0xa0]),
                Value::Bytes(vec![]),
            ]))),
            "cose.protected_header",
            Stage::Cose,
        ),
        (
            hcmr_string(&cbor(&sign1(
                &[],
                &[
                    (int(4), Value::Bytes(vec![1])),
                    (int(4), Value::Bytes(vec![2])),
                ],
                Value::Bytes(vec![0xa0]),
            ))),
            "cose.duplicate_label",
            Stage::Cose,
        ),
        (
            hcmr_string(&cbor(&sign1(&[(int(1), int(-8))], &[], Value::Null))),
            "cose.payload_missing",
            Stage::Cose,
        ),
        // payload
        (
            hcmr_string(&cbor(&sign1(
                &[(int(1), int(-8))],
                &[],
                Value::Bytes(vec![]),
            ))),
            "payload.empty",
            Stage::Payload,
        ),
        (
            hcmr_string(&cbor(&sign1(
                &[(int(1), int(-8))],
                &[],
                Value::Bytes(vec![0xa1]),
            ))),
            "payload.cbor",
            Stage::Payload,
        ),
        (
            hcmr_string(&cbor(&sign1(
                &[(int(1), int(-8))],
                &[],
                Value::Bytes(vec![0xa0, 0x00]),
            ))),
            "payload.trailing",
            Stage::Payload,
        ),
        (
            hcmr_string(&cbor(&sign1(
                &[(int(1), int(-8))],
                &[],
                Value::Bytes(cbor(&Value::Array(vec![]))),
            ))),
            "payload.not_map",
            Stage::Payload,
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (input, code, stage) in &cases {
        let err = inspect(input).expect_err(code);
        assert_eq!(err.code(), *code, "{input:.60}: {err}");
        assert_eq!(err.stage(), *stage, "{code}");
        assert!(
            err.to_string()
                .starts_with(&format!("{} stage: ", stage.name())),
            "{err}"
        );
        seen.insert(*code);
    }
    // Every fault code that an hcmr string can reach was produced (payload.hcert and the
    // decompression faults are EU only).
    assert_eq!(seen.len(), 19, "{seen:?}");
}

/// The COSE bytes inside an hcmr string.
fn transport_cose(code: &str) -> Vec<u8> {
    transport::unwrap(code).unwrap()
}

#[test]
fn stage_functions_match_the_whole() {
    let code = encode(&claims("510000", 2), &key());
    let (scheme, text) = unprefix(&code).unwrap();
    assert_eq!(scheme, Scheme::Hcmr);
    let cose_bytes = base45(text).unwrap();
    // hcmr: the bytes pass through uncompressed.
    assert_eq!(
        decompress_for(Scheme::Hcmr, &cose_bytes).unwrap(),
        Decompressed {
            bytes: cose_bytes.clone(),
            compressed: false
        }
    );
    let cose = decode_cose(&cose_bytes).unwrap();
    assert_eq!(cose.payload, claims("510000", 2).to_cbor());
    let payload = decode_payload(Scheme::Hcmr, &cose.payload).unwrap();
    assert_eq!(
        inspect(&code).unwrap().claims,
        cbor_to_json(&payload.claims)
    );
}

// ---------------------------------------------------------------------------------------------
// What the hcmr decoder refuses but an inspector shows
// ---------------------------------------------------------------------------------------------

#[test]
fn foreign_headers_are_reported_not_refused() {
    let payload = Value::Bytes(claims("510000", 1).to_cbor());
    // ES256 with the kid only in the unprotected header (EU test case CO19's shape).
    let es256 = sign1(
        &[(int(1), int(-7))],
        &[(int(4), Value::Bytes(vec![0xab; 8]))],
        payload.clone(),
    );
    let ins = inspect(&hcmr_string(&cbor(&es256))).unwrap();
    assert_eq!(ins.cose.tag, TagForm::Untagged);
    let (kid, loc) = ins.cose.kid().unwrap();
    assert_eq!((kid, loc), (&[0xab; 8][..], ParamLocation::Unprotected));
    let j = ins.to_json();
    assert_eq!(
        j["alg"],
        json!({"value": -7, "name": "ES256", "location": "protected"})
    );
    assert_eq!(
        j["kid"],
        json!({"hex": "abababababababab", "location": "unprotected"})
    );
    assert_eq!(j["cose_tag"], "untagged");
    // The strict decoder's verdict is shown beside it.
    assert_eq!(j["hcmr_decoder"]["accepted"], false);
    assert_eq!(j["hcmr_decoder"]["code"], "cose.alg");

    // PS256, kids in both headers that differ: the protected (signed) one is reported.
    let differ = sign1(
        &[(int(1), int(-37)), (int(4), Value::Bytes(vec![1; 8]))],
        &[(int(4), Value::Bytes(vec![2; 8]))],
        payload.clone(),
    );
    let ins = inspect(&hcmr_string(&cbor(&Value::Tag(
        61,
        Box::new(Value::Tag(18, Box::new(differ))),
    ))))
    .unwrap();
    assert_eq!(ins.cose.tag, TagForm::CwtSign1);
    let j = ins.to_json();
    assert_eq!(j["cose_tag"], "61(18)");
    assert_eq!(j["alg"]["name"], "PS256");
    assert_eq!(j["kid"]["hex"], "0101010101010101");
    assert_eq!(j["kid"]["location"], "both_differ");
    assert_eq!(j["kid"]["unprotected_hex"], "0202020202020202");

    // Equal kids in both headers, an unknown alg, no alg at all.
    let both = sign1(
        &[(int(1), int(-65535)), (int(4), Value::Bytes(vec![3; 8]))],
        &[(int(4), Value::Bytes(vec![3; 8]))],
        payload.clone(),
    );
    let j = inspect(&hcmr_string(&cbor(&both))).unwrap().to_json();
    assert_eq!(j["kid"]["location"], "both");
    assert_eq!(
        j["alg"],
        json!({"value": -65535, "name": null, "location": "protected"})
    );
    let none = sign1(&[], &[], payload);
    let j = inspect(&hcmr_string(&cbor(&none))).unwrap().to_json();
    assert_eq!(j["alg"], Json::Null);
    assert_eq!(j["kid"], Json::Null);
    assert_eq!(j["protected"]["bytes"], 0);
    assert_eq!(j["hcmr_decoder"]["code"], "cose.alg_missing");
}

// ---------------------------------------------------------------------------------------------
// EU strings
// ---------------------------------------------------------------------------------------------

#[test]
fn eu_strings_compressed_or_not() {
    let cose = cbor(&Value::Tag(
        18,
        Box::new(sign1(
            &[(int(1), int(-7)), (int(4), Value::Bytes(vec![9; 8]))],
            &[],
            Value::Bytes(eu_payload()),
        )),
    ));
    for compress in [true, false] {
        let ins = inspect(&eu_string(&cose, compress)).unwrap();
        assert_eq!(ins.scheme, Scheme::EuDcc);
        assert_eq!(ins.compressed, compress);
        assert_eq!(ins.sizes.cose_bytes, cose.len());
        assert_eq!(ins.hcert, Some(json!({"ver": "1.3.0"})));
        assert_eq!(ins.hcmr_decoder, None);
        let j = ins.to_json();
        assert_eq!(j["scheme"], "eu-dcc");
        assert_eq!(j["compressed"], compress);
        assert_eq!(j["claims"]["1"], "AT");
        assert_eq!(j["claims"]["4"], 1_650_000_000.0);
        assert_eq!(j["claims"]["-260"]["1"]["ver"], "1.3.0");
        assert_eq!(j["hcert"]["ver"], "1.3.0");
        assert!(j.get("hcmr_decoder").is_none());
    }
    // The strict stage function refuses the uncompressed payload; the EU stage takes it as-is.
    assert!(matches!(
        decompress(&cose),
        Err(InspectError::Decompression(DecompressError::Header(_)))
    ));
    assert_eq!(
        decompress_for(Scheme::EuDcc, &cose).unwrap().bytes,
        cose.clone()
    );
    // hcmr takes every payload as-is (no compression at all).
    assert_eq!(
        decompress_for(Scheme::Hcmr, &cose).unwrap().bytes,
        cose.clone()
    );
    // A payload starting with 0x78 must be real zlib, for the EU too.
    assert_eq!(
        decompress_for(Scheme::EuDcc, &[0x78, 0x00, 0x01])
            .unwrap_err()
            .code(),
        "decompression.header"
    );
}

#[test]
fn eu_inflate_cap_is_larger_but_still_capped() {
    let big = vec![0u8; crate::code::MAX_COSE_BYTES * 32];
    assert_eq!(
        decompress_for(Scheme::EuDcc, &zlib(&big))
            .unwrap()
            .bytes
            .len(),
        big.len()
    );
    // An hcmr code is never inflated: its decoded bytes are capped at MAX_COSE_BYTES.
    let z = zlib(&big);
    assert!(z.len() <= crate::code::MAX_COSE_BYTES);
    assert_eq!(decompress_for(Scheme::Hcmr, &z).unwrap().bytes, z);
    assert_eq!(
        decompress_for(Scheme::Hcmr, &big),
        Err(InspectError::Base45(Base45Error::TooLarge {
            bytes: big.len(),
            max: crate::code::MAX_COSE_BYTES
        }))
    );
    let bomb = zlib(&vec![0u8; 1 << 20]);
    assert!(bomb.len() < 2048);
    assert_eq!(
        decompress(&bomb),
        Err(InspectError::Decompression(DecompressError::TooLarge {
            max: MAX_EU_INFLATED_BYTES
        }))
    );
    assert_eq!(
        inspect(&format!("HC1:{}", base45::encode(&bomb)))
            .unwrap_err()
            .code(),
        "decompression.too_large"
    );
}

#[test]
fn eu_payload_without_hcert_fails_the_payload_stage() {
    for (payload, why) in [
        (
            cbor(&Value::Map(vec![(int(1), Value::Text("AT".into()))])),
            "no claim -260",
        ),
        (
            cbor(&Value::Map(vec![(int(-260), int(1))])),
            "claim -260 is not a map",
        ),
        (
            cbor(&Value::Map(vec![(
                int(-260),
                Value::Map(vec![(int(2), int(1))]),
            )])),
            "claim -260 has no key 1 (EU DGC v1)",
        ),
        (
            cbor(&Value::Map(vec![(
                int(-260),
                Value::Map(vec![(int(1), Value::Bytes(vec![0xa0]))]),
            )])),
            "claim -260 / 1 (the DGC) is not a map",
        ),
    ] {
        let cose = cbor(&sign1(&[(int(1), int(-7))], &[], Value::Bytes(payload)));
        let err = inspect(&eu_string(&cose, true)).unwrap_err();
        assert_eq!(err, InspectError::Payload(PayloadError::Hcert(why)));
        assert_eq!(err.code(), "payload.hcert");
        assert_eq!(err.stage(), Stage::Payload);
    }
}

#[test]
fn prefixes() {
    let (s, rest) = unprefix("HC1:ABC").unwrap();
    assert_eq!((s, rest), (Scheme::EuDcc, "ABC"));
    let (s, rest) = unprefix("  HCMR1:ABC \r\n\t").unwrap();
    assert_eq!((s, rest), (Scheme::Hcmr, "ABC "));
    for (input, err) in [
        ("HC2:ABC", PrefixError::Unknown("HC2:".into())),
        ("HL0:ABC", PrefixError::Unknown("HL0:".into())),
        ("hc1:ABC", PrefixError::Unknown("hc1:".into())),
        ("shc:/5676", PrefixError::Unknown("shc:".into())),
        ("NCFOXN%TS3DH", PrefixError::Missing),
        ("ABCDEFGHIJ:K", PrefixError::Missing),
        (":ABC", PrefixError::Missing),
        ("\u{e9}t\u{e9}:ABC", PrefixError::Missing),
        ("\n", PrefixError::Empty),
    ] {
        assert_eq!(unprefix(input), Err(InspectError::Prefix(err)), "{input}");
    }
    // Too long counts characters, not bytes.
    let long = format!("HC1:{}", "é".repeat(MAX_INSPECT_CHARS - 4));
    assert!(unprefix(&long).is_ok());
    assert_eq!(
        unprefix(&format!("{long}A")),
        Err(InspectError::Prefix(PrefixError::TooLong(
            MAX_INSPECT_CHARS + 1
        )))
    );
}

// ---------------------------------------------------------------------------------------------
// CBOR -> JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn cbor_to_json_rules() {
    let v = Value::Map(vec![
        (int(1), Value::Bytes(vec![0xde, 0xad])),
        (int(-260), Value::Tag(1, Box::new(Value::Float(1.5)))),
        (
            Value::Text("t".into()),
            Value::Array(vec![Value::Null, Value::Bool(true)]),
        ),
        (Value::Bytes(vec![0x0a]), int(2)),
        (Value::Bool(false), Value::Float(f64::NAN)),
        (Value::Float(2.5), Value::Float(f64::INFINITY)),
        (Value::Null, Value::Float(f64::NEG_INFINITY)),
        (Value::Array(vec![int(1)]), Value::Integer(u64::MAX.into())),
        (Value::Text("1".into()), Value::Text("text key 1".into())),
        (int(1), Value::Text("repeated key".into())),
        (
            Value::Text("big".into()),
            Value::Integer(ciborium::value::Integer::try_from(-(1i128 << 64)).unwrap()),
        ),
    ]);
    assert_eq!(
        cbor_to_json(&v),
        json!({
            "1": "dead",
            "-260": {"tag": 1, "value": 1.5},
            "t": [null, true],
            "h'0a'": 2,
            "false": "NaN",
            "2.5": "Infinity",
            "null": "-Infinity",
            "[1]": u64::MAX,
            "1#2": "text key 1",
            "1#3": "repeated key",
            "big": "-18446744073709551616",
        })
    );
}

#[test]
fn alg_names() {
    assert_eq!(alg_name(-7), Some("ES256"));
    assert_eq!(alg_name(-37), Some("PS256"));
    assert_eq!(alg_name(-8), Some("EdDSA"));
    assert_eq!(alg_name(0), None);
}

// ---------------------------------------------------------------------------------------------
// Properties: nothing panics
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = inspect(&s);
        let _ = inspect(&format!("HC1:{s}"));
        let _ = inspect(&format!("HCMR1:{s}"));
    }

    #[test]
    fn arbitrary_base45_text_never_panics(s in "[0-9A-Z $%*+./:-]{0,400}") {
        let _ = inspect(&format!("HC1:{s}"));
        let _ = inspect(&format!("HCMR1:{s}"));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Raw (taken as-is by the EU rule), and compressed, reaching CBOR and COSE.
        let _ = inspect(&format!("HC1:{}", base45::encode(&b)));
        let _ = inspect(&eu_string(&b, true));
        let _ = inspect(&hcmr_string(&b));
        let _ = decompress(&b);
        let _ = decode_cose(&b);
        let _ = decode_payload(Scheme::EuDcc, &b);
        let _ = decode_payload(Scheme::Hcmr, &b);
    }

    #[test]
    fn arbitrary_payloads_in_a_cose_never_panic(
        b in proptest::collection::vec(any::<u8>(), 0..300),
        tagged in any::<bool>(),
    ) {
        let mut cose = sign1(&[(int(1), int(-7))], &[], Value::Bytes(b));
        if tagged {
            cose = Value::Tag(18, Box::new(cose));
        }
        if let Ok(ins) = inspect(&eu_string(&cbor(&cose), true)) {
            let _ = ins.to_json();
        }
    }

    #[test]
    fn one_changed_character_never_panics(
        i in any::<proptest::sample::Index>(),
        c in any::<char>(),
    ) {
        let code = encode(&claims("510000", 1), &key());
        let mut m: Vec<char> = code.chars().collect();
        let at = i.index(m.len());
        m[at] = c;
        let s: String = m.into_iter().collect();
        if let Ok(ins) = inspect(&s) {
            let _ = ins.to_json();
        }
    }
}
