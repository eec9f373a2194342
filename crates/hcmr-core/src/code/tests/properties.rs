//! Single-character changes and properties.

use super::*;

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
            iat: UnixTime::from_secs(iat),
            exp: UnixTime::from_secs((iat + ttl).min(MAX_TIME)),
            status,
            status_valid_until: UnixTime::from_secs(until),
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
