//! Transport faults, through `HealthCode::decode`, and the error codes.

use super::*;

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
