//! Known-answer vectors (docs/code-format.md) and the subject fields as documented.

use super::*;

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
    assert_eq!(c.iat.secs(), 1_700_000_000);
    assert_eq!(c.exp.secs(), 1_700_000_300);
    assert_eq!(c.status, 1);
    assert_eq!(c.status_valid_until.secs(), 1_701_000_000);
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
    assert_eq!(c.iat.secs(), 1_700_000_000);
    assert_eq!(c.exp.secs(), 1_700_000_300);
    assert_eq!(c.status, 2);
    assert_eq!(
        crate::status::HealthStatus::from_u64(c.status),
        Some(crate::status::HealthStatus::Yellow)
    );
    assert_eq!(c.status_valid_until.secs(), 1_700_604_800);
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
