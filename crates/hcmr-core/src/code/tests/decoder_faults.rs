//! One hand-built input per decoder fault: COSE_Sign1 forms and faults, then claims faults.

use super::*;

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
            .secs()
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
    assert_eq!(hc.claims.iat.secs(), 1);
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
