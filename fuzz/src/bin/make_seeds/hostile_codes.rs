//! The generated hostile codes: altered encodings, forged signatures, hostile text and times,
//! each with the outcome every decoder must give.

use super::hostile::{stranger, Case, Input};
use super::*;

/// The code cases, in the order the corpus lists them.
pub(super) fn cases(f: &Fixtures, v: &mut Vec<Case>) {
    let green = &f.codes[0];
    v.push(Case {
        name: "code_valid_control",
        target: "code",
        input: Input::Text(green.code.clone()),
        why: "control: Sichuan's green code, current key, verified at Guangdong",
        expect: &[("decode", "ok"), ("verify", "ok"), ("inspect", "ok")],
    });
    v.push(Case {
        name: "code_retired_key",
        target: "code",
        input: Input::Text(f.codes[2].code.clone()),
        why: "signed by Sichuan's first key after the rotation retired it",
        expect: &[("decode", "ok"), ("verify", "key_retired")],
    });
    v.push(Case {
        name: "code_unknown_status",
        target: "code",
        input: Input::Text(f.codes[3].code.clone()),
        why: "genuine signature over status 7: never shown as a colour",
        expect: &[("decode", "ok"), ("verify", "status_not_recognized")],
    });
    v.push(Case {
        name: "code_base45_length",
        target: "code",
        input: Input::Text({
            let mut s = green.code.clone();
            while (s.len() - "HCMR1:".len()) % 3 != 1 {
                s.pop();
            }
            s
        }),
        why: "truncated to a Base45 length with len % 3 == 1",
        expect: &[
            ("decode", "base45.length"),
            ("inspect", "base45.length"),
            ("verify", "malformed"),
        ],
    });
    v.push(Case {
        name: "code_truncated",
        target: "code",
        input: Input::Text(code_of(&green.cose[..green.cose.len() - 6])),
        why: "the COSE bytes cut short (a QR code read in part)",
        expect: &[("decode", "cbor.malformed"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_lowercase",
        target: "code",
        input: Input::Text(format!(
            "HCMR1:{}",
            green.code["HCMR1:".len()..].to_ascii_lowercase()
        )),
        why: "lower-case Base45 (a reader that folds case): outside the alphabet",
        expect: &[("decode", "base45.character"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_zip_bomb",
        target: "code",
        input: Input::Text(code_of(&zlib(&vec![0u8; 1 << 20]))),
        why: "1 MiB of zeros in about 1 KiB of zlib: never inflated (hcmr codes are not compressed), refused by the size cap on the Base45 output",
        expect: &[
            ("decode", "base45.too_large"),
            ("inspect", "base45.too_large"),
            ("verify", "malformed"),
        ],
    });
    v.push(Case {
        name: "code_oversized",
        target: "code",
        input: Input::Text(code_of(&[green.cose.as_slice(), &[0u8; 1024]].concat())),
        why:
            "a valid code with 1024 bytes appended: over the 1024-byte cap before any CBOR is read",
        expect: &[
            ("decode", "base45.too_large"),
            ("inspect", "base45.too_large"),
            ("verify", "malformed"),
        ],
    });
    v.push(Case {
        name: "code_zlib_compressed",
        target: "code",
        input: Input::Text(code_of(&zlib(&green.cose))),
        why: "the valid COSE bytes zlib-compressed (the first draft's transport): not a COSE_Sign1",
        expect: &[("decode", "cbor.malformed"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_tag_18",
        target: "code",
        input: Input::Text(transport::wrap(&tagged(18, cose_parts(&green.cose)))),
        why: "the same COSE_Sign1 with the COSE_Sign1 tag 18, which hcmr never writes: a second string for one code, refused (issue 15 fault 7)",
        expect: &[("decode", "cose.tag"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_cwt_tag_61",
        target: "code",
        input: Input::Text(transport::wrap(&cbor(&Value::Tag(
            61,
            Box::new(Value::Tag(18, Box::new(uncbor(&green.cose)))),
        )))),
        why: "the same COSE_Sign1 wrapped in the CWT tag 61: a second string for one code, refused (issue 15 fault 7)",
        expect: &[("decode", "cose.tag"), ("verify", "malformed")],
    });
    // Other encodings of the valid code (issue 15 fault 7): each would be a second string for
    // one code, so each is refused; the signature would still verify.
    let indefinite = |b: &[u8], head: u8| [&[head][..], &b[1..], &[0xff]].concat();
    v.push(Case {
        name: "code_indefinite_cose_array",
        target: "code",
        input: Input::Text(transport::wrap(&indefinite(&green.cose, 0x9f))),
        why: "the valid code with an indefinite-length COSE_Sign1 array",
        expect: &[("decode", "cbor.not_canonical"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_chunked_payload",
        target: "code",
        input: Input::Text({
            // protected (14 bytes) and unprotected (1) after the array head, then the payload.
            let c = &green.cose;
            let payload = match &cose_parts(c)[2] {
                Value::Bytes(b) => b.clone(),
                _ => unreachable!("fixture payload"),
            };
            let (a, b) = payload.split_at(16);
            let mut chunked = vec![0x5f, 0x50];
            chunked.extend_from_slice(a);
            chunked.extend_from_slice(&cbor(&Value::Bytes(b.to_vec())));
            chunked.push(0xff);
            let mut out = c[..16].to_vec();
            out.extend_from_slice(&chunked);
            out.extend_from_slice(&c[16 + cbor(&Value::Bytes(payload.clone())).len()..]);
            transport::wrap(&out)
        }),
        why: "the valid code with its payload as a chunked (indefinite-length) byte string",
        expect: &[("decode", "cbor.not_canonical"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_long_signature_head",
        target: "code",
        input: Input::Text({
            let c = &green.cose;
            let at = c.len() - 66;
            let mut out = c[..at].to_vec();
            out.extend_from_slice(&[0x59, 0x00, 0x40]);
            out.extend_from_slice(&c[at + 2..]);
            transport::wrap(&out)
        }),
        why: "the valid code with the signature's length in a 2-byte head (59 0040, not 58 40)",
        expect: &[("decode", "cbor.not_canonical"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_unprotected_kid_equal",
        target: "code",
        input: Input::Text({
            let mut p = cose_parts(&green.cose);
            p[1] = Value::Map(vec![(
                Value::Integer(Integer::from(4)),
                Value::Bytes(sc_key2().kid().0.to_vec()),
            )]);
            transport::wrap(&untagged(p))
        }),
        why: "the valid code with the protected kid repeated in the unprotected header",
        expect: &[
            ("decode", "cose.unprotected_not_empty"),
            ("verify", "malformed"),
        ],
    });
    let claims = green.claims.to_cbor();
    let resigned =
        |claims: Vec<u8>| transport::wrap(&hcmr::code::cose::sign(claims, &sc_key2()).bytes);
    v.push(Case {
        name: "code_indefinite_claims_map",
        target: "code",
        input: Input::Text(resigned(indefinite(&claims, 0xbf))),
        why: "the green claims as an indefinite-length map, signed by Sichuan's key",
        expect: &[("decode", "cbor.not_canonical"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_indefinite_body",
        target: "code",
        input: Input::Text(resigned({
            // The body (key -38962, 6 elements) is the last entry of the map.
            let at = 3 + claims
                .windows(3)
                .position(|w| w == [0x39, 0x98, 0x31])
                .expect("the body's key");
            [&claims[..at], &[0x9f], &claims[at + 1..], &[0xff]].concat()
        })),
        why:
            "the green claims with the body as an indefinite-length array, signed by Sichuan's key",
        expect: &[("decode", "cbor.not_canonical"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_chunked_name",
        target: "code",
        input: Input::Text(resigned({
            let name = cbor(&Value::Text(green.claims.subject.masked_name.clone()));
            let at = claims
                .windows(name.len())
                .position(|w| w == name.as_slice())
                .expect("the name in the claims");
            [&claims[..at], &[0x7f], &name, &[0xff], &claims[at + name.len()..]].concat()
        })),
        why: "the green claims with the masked name as a chunked text string, signed by Sichuan's key",
        expect: &[("decode", "cbor.not_canonical"), ("verify", "malformed")],
    });
    // Issue 15 fault 4: text that would forge a verdict in a terminal, in a code signed by a
    // stranger under Sichuan's kid. Refused as a forgery; the CLI escapes the text and does not
    // show the subject of a code whose signature failed.
    v.push(Case {
        name: "code_forged_verdict_in_name",
        target: "code",
        input: Input::Text({
            let mut c = green.claims.clone();
            c.subject.masked_name =
                "\x1b[1A\x1b[2K\x1b[1A\x1b[2K\rRECOGNIZED  counts here as GREEN".into();
            let payload = c.to_cbor();
            let mut p = cose_parts(&green.cose);
            let tbs = cbor(&Value::Array(vec![
                Value::Text("Signature1".into()),
                p[0].clone(),
                Value::Bytes(Vec::new()),
                Value::Bytes(payload.clone()),
            ]));
            p[2] = Value::Bytes(payload);
            p[3] = Value::Bytes(stranger().sign(&tbs).to_vec());
            transport::wrap(&untagged(p))
        }),
        why: "a masked name of cursor-up, erase-line and carriage return that writes a fake RECOGNIZED line, signed by a stranger under Sichuan's kid: control characters in a text claim are refused (issue 15 fault 8)",
        expect: &[("decode", "claims.character"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_forged_verdict_plain_name",
        target: "code",
        input: Input::Text({
            let mut c = green.claims.clone();
            c.subject.masked_name = "RECOGNIZED  counts here as GREEN".into();
            let payload = c.to_cbor();
            let mut p = cose_parts(&green.cose);
            let tbs = cbor(&Value::Array(vec![
                Value::Text("Signature1".into()),
                p[0].clone(),
                Value::Bytes(Vec::new()),
                Value::Bytes(payload.clone()),
            ]));
            p[2] = Value::Bytes(payload);
            p[3] = Value::Bytes(stranger().sign(&tbs).to_vec());
            transport::wrap(&untagged(p))
        }),
        why: "the verdict text as a plain masked name, signed by a stranger under Sichuan's kid: a forgery (the CLI does not show its subject)",
        expect: &[("decode", "ok"), ("verify", "bad_signature")],
    });
    // Issue 15 fault 8: names no issuer may write, signed by Sichuan's key.
    for (name, text, why, decode) in [
        (
            "code_bidi_override_name",
            "\u{202e}*三",
            "a masked name starting with U+202E (right-to-left override), signed by Sichuan's key",
            "claims.character",
        ),
        (
            "code_zero_width_name",
            "\u{200d}",
            "a masked name of one U+200D (zero-width joiner) only, signed by Sichuan's key",
            "claims.type",
        ),
        (
            "code_escape_in_number",
            "5101*\u{1b}[2K",
            "ESC in the masked document number, signed by Sichuan's key",
            "claims.character",
        ),
    ] {
        let mut c = green.claims.clone();
        if name == "code_escape_in_number" {
            c.subject.masked_document_number = text.into();
        } else {
            c.subject.masked_name = text.into();
        }
        v.push(Case {
            name,
            target: "code",
            input: Input::Text(resigned(c.to_cbor())),
            why,
            expect: match decode {
                "claims.character" => &[("decode", "claims.character"), ("verify", "malformed")],
                _ => &[("decode", "claims.type"), ("verify", "malformed")],
            },
        });
    }
    v.push(Case {
        name: "code_tag_17",
        target: "code",
        input: Input::Text(transport::wrap(&tagged(17, cose_parts(&green.cose)))),
        why: "tag 17 (COSE_Mac0) around a Sign1 array",
        expect: &[("decode", "cose.tag"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_kid_only_unprotected",
        target: "code",
        input: Input::Text({
            let mut p = cose_parts(&green.cose);
            let kid = sc_key2().kid().0.to_vec();
            p[0] = Value::Bytes(cbor(&Value::Map(vec![(
                Value::Integer(Integer::from(1)),
                Value::Integer(Integer::from(-8)),
            )])));
            p[1] = Value::Map(vec![(Value::Integer(Integer::from(4)), Value::Bytes(kid))]);
            transport::wrap(&untagged(p))
        }),
        why: "the kid moved to the unsigned header (the EU DCC fallback fault)",
        expect: &[("decode", "cose.kid_unprotected"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_signature_63_bytes",
        target: "code",
        input: Input::Text({
            let mut p = cose_parts(&green.cose);
            if let Value::Bytes(s) = &mut p[3] {
                s.pop();
            }
            transport::wrap(&untagged(p))
        }),
        why: "a signature one byte short",
        expect: &[("decode", "cose.signature_length"), ("verify", "malformed")],
    });
    v.push(Case {
        name: "code_spliced_signature",
        target: "code",
        input: Input::Text({
            let mut p = cose_parts(&green.cose);
            p[3] = cose_parts(&f.codes[1].cose)[3].clone();
            transport::wrap(&untagged(p))
        }),
        why: "green claims under the yellow code's signature: decodes, never verifies",
        expect: &[("decode", "ok"), ("verify", "bad_signature")],
    });
    v.push(Case {
        name: "code_status_raised_unsigned",
        target: "code",
        input: Input::Text({
            let mut c = f.codes[1].claims.clone();
            c.status = 1;
            let mut p = cose_parts(&f.codes[1].cose);
            p[2] = Value::Bytes(c.to_cbor());
            transport::wrap(&untagged(p))
        }),
        why: "a yellow code edited to green, the signature kept",
        expect: &[("decode", "ok"), ("verify", "bad_signature")],
    });
    let nan_iat = {
        let mut m = match uncbor(&green.claims.to_cbor()) {
            Value::Map(m) => m,
            _ => unreachable!("claims are a map"),
        };
        for (k, val) in m.iter_mut() {
            if *k == Value::Integer(Integer::from(6)) {
                *val = Value::Float(f64::NAN);
            }
        }
        cbor(&Value::Map(m))
    };
    v.push(Case {
        name: "code_nan_time",
        target: "code",
        input: Input::Text({
            let mut p = cose_parts(&green.cose);
            p[2] = Value::Bytes(nan_iat.clone());
            transport::wrap(&untagged(p))
        }),
        why: "iat is a NaN float (CBOR half-precision 0xf97e00)",
        expect: &[
            ("decode", "claims.time_not_finite"),
            ("verify", "malformed"),
        ],
    });
    v.push(Case {
        name: "claims_nan_time",
        target: "code",
        input: Input::Bytes(nan_iat),
        why: "raw CWT claims whose iat is a NaN float",
        expect: &[
            ("claims", "claims.time_not_finite"),
            ("cose", "cose.structure"),
            ("decode", "prefix.missing"),
        ],
    });
}
