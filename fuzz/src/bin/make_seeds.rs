//! Writes the fuzz seed corpora (`fuzz/seeds/<target>/`) and the generated part of the hostile
//! corpus (`tests/hostile/`, inputs with their expected outcomes), from the fixtures of
//! `hcmr_fuzz`. Deterministic: run it again and nothing changes unless hcmr's encodings do.
//!
//! ```sh
//! cd fuzz && cargo run --bin make_seeds          # from the fuzz directory
//! ```
//!
//! The expectations written to `tests/hostile/*.expect` are fixed here by hand, not computed
//! from the decoders: `tests/hostile_corpus.rs` checks them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ciborium::value::{Integer, Value};

use hcmr::agreement::{AgreementSignature, SignedAgreement, Termination};
use hcmr::bundle::BundleContent;
use hcmr::code::{transport, MAX_TIME};
use hcmr::feed::{FeedEntry, Statement};
use hcmr::keys::NodeKey;
use hcmr::trust::Policy;
use hcmr_fuzz::{encode_batch, fixtures, prov, sc_key, sc_key2, NOW, SC};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn uncbor(b: &[u8]) -> Value {
    ciborium::from_reader(b).expect("fixture CBOR")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(data).expect("writing to a Vec cannot fail");
    z.finish().expect("writing to a Vec cannot fail")
}

fn code_of(bytes: &[u8]) -> String {
    format!("HCMR1:{}", base45::encode(bytes))
}

/// The parts of an untagged COSE_Sign1 ([protected, unprotected, payload, signature]).
fn cose_parts(cose: &[u8]) -> Vec<Value> {
    match uncbor(cose) {
        Value::Array(a) => a,
        _ => unreachable!("fixture COSE"),
    }
}

/// An untagged COSE_Sign1 from its parts, as hcmr writes it.
fn untagged(parts: Vec<Value>) -> Vec<u8> {
    cbor(&Value::Array(parts))
}

fn tagged(tag: u64, parts: Vec<Value>) -> Vec<u8> {
    cbor(&Value::Tag(tag, Box::new(Value::Array(parts))))
}

fn hex_lines(b: &[u8]) -> String {
    let h = hex::encode(b);
    let mut s = String::new();
    for chunk in h.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("hex"));
        s.push('\n');
    }
    s
}

/// One generated hostile case.
struct Case {
    name: &'static str,
    target: &'static str,
    input: Input,
    why: &'static str,
    expect: &'static [(&'static str, &'static str)],
}

enum Input {
    Text(String),
    Bytes(Vec<u8>),
}

fn seeds(root: &Path) {
    let f = fixtures();
    let dir = root.join("fuzz/seeds");

    let code = dir.join("code_decoder");
    for c in &f.codes {
        write(&code.join(format!("{}.txt", c.name)), c.code.as_bytes());
        write(&code.join(format!("{}.cose", c.name)), &c.cose);
    }
    write(&code.join("sc_green.claims"), &f.codes[0].claims.to_cbor());
    // Two EU DCC test vectors for `hcmr inspect` (tests/data/eu-dcc-common, Apache-2.0).
    for name in ["CO1", "CO2"] {
        let p = root.join(format!("tests/data/eu-dcc-common/{name}.json"));
        let j: serde_json::Value =
            serde_json::from_slice(&fs::read(&p).expect("EU DCC test data")).expect("JSON");
        if let Some(prefix) = j["PREFIX"].as_str() {
            write(&code.join(format!("eu_dcc_{name}.txt")), prefix.as_bytes());
        }
    }

    let agr = dir.join("agreement_decoder");
    write(
        &agr.join("v1_concluded.record"),
        &f.agreement_v1.to_record(),
    );
    write(
        &agr.join("v2_proposed.record"),
        &f.agreement_v2_proposed.to_record(),
    );
    write(&agr.join("v1.body"), f.agreement_v1.encoded());
    write(&agr.join("termination.record"), &f.termination.to_record());
    write(&agr.join("long_window.body"), f.agreement_long.encoded());
    write(
        &agr.join("long_window.record"),
        &f.agreement_long.to_record(),
    );

    let feed = dir.join("feed_decoder");
    for (p, entries) in [("sc", &f.sc_feed), ("gd", &f.gd_feed)] {
        for e in entries.iter() {
            write(
                &feed.join(format!("{p}_entry{}.record", e.seq())),
                &e.to_record(),
            );
        }
        write(
            &feed.join(format!("{p}_feed.batch")),
            &encode_batch(entries),
        );
    }
    write(&feed.join("gd.bundle"), &f.bundle);
}

fn stranger() -> NodeKey {
    NodeKey::from_seed(&[0x99; 32])
}

fn hostile_cases() -> Vec<Case> {
    let f = fixtures();
    let green = &f.codes[0];
    let mut v = Vec::new();

    // --- codes ---
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
        expect: &[("decode", "cose.unprotected_not_empty"), ("verify", "malformed")],
    });
    let claims = green.claims.to_cbor();
    let resigned = |claims: Vec<u8>| transport::wrap(&hcmr::code::cose::sign(claims, &sc_key2()).bytes);
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
        why: "the green claims with the body as an indefinite-length array, signed by Sichuan's key",
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

    // --- agreements ---
    let v1 = &f.agreement_v1;
    v.push(Case {
        name: "agreement_valid_control",
        target: "agreement",
        input: Input::Bytes(v1.to_record()),
        why: "control: the concluded agreement record",
        expect: &[("record", "ok"), ("signatures", "ok"), ("snapshot", "ok")],
    });
    v.push(Case {
        name: "agreement_proposed_only",
        target: "agreement",
        input: Input::Bytes(f.agreement_v2_proposed.to_record()),
        why: "an amendment the acceptor never signed",
        expect: &[
            ("record", "ok"),
            ("signatures", "Unsigned"),
            ("snapshot", "Unsigned"),
        ],
    });
    v.push(Case {
        name: "agreement_acceptor_signature_flipped",
        target: "agreement",
        input: Input::Bytes({
            let mut s = v1.acceptor_signature.expect("concluded");
            s.signature[10] ^= 0x01;
            SignedAgreement::from_parts(v1.encoded().to_vec(), v1.proposer_signature, Some(s))
                .expect("fixture body")
                .to_record()
        }),
        why: "one bit of the acceptor's signature flipped",
        expect: &[("record", "ok"), ("signatures", "BadSignature")],
    });
    v.push(Case {
        name: "agreement_signed_by_stranger",
        target: "agreement",
        input: Input::Bytes({
            let k = stranger();
            let mut msg = b"hcmr-agreement-v1\0".to_vec();
            msg.extend_from_slice(v1.encoded());
            let s = AgreementSignature {
                kid: k.kid(),
                signature: k.sign(&msg),
            };
            SignedAgreement::from_parts(v1.encoded().to_vec(), v1.proposer_signature, Some(s))
                .expect("fixture body")
                .to_record()
        }),
        why: "a valid signature by a key the agreement does not pin",
        expect: &[("record", "ok"), ("signatures", "SignerNotPinned")],
    });
    v.push(Case {
        name: "agreement_body_not_canonical",
        target: "agreement",
        input: Input::Bytes({
            // The version (uint 1, one byte 0x01) written as a two-byte uint (0x18 0x01).
            let b = v1.encoded();
            let at = b.windows(2).position(|w| w == [0x50, 0x5c]).expect("id") + 17;
            let mut nb = b[..at].to_vec();
            nb.extend_from_slice(&[0x18, b[at]]);
            nb.extend_from_slice(&b[at + 1..]);
            cbor(&Value::Array(vec![
                Value::Bytes(nb),
                Value::Null,
                Value::Null,
            ]))
        }),
        why: "the body's version in a two-byte integer: same value, not canonical",
        expect: &[("record", "NotCanonical")],
    });
    v.push(Case {
        name: "agreement_body_truncated",
        target: "agreement",
        input: Input::Bytes(v1.encoded()[..v1.encoded().len() - 9].to_vec()),
        why: "body bytes cut short",
        expect: &[("body", "Decode"), ("record", "Decode")],
    });
    v.push(Case {
        name: "termination_valid_control",
        target: "agreement",
        input: Input::Bytes(f.termination.to_record()),
        why: "control: Guangdong's termination notice",
        expect: &[
            ("termination", "ok"),
            ("termination_check", "ok"),
            ("termination_snapshot", "ok"),
        ],
    });
    v.push(Case {
        name: "termination_postponed",
        target: "agreement",
        input: Input::Bytes({
            let t = Termination {
                effective_at: f.termination.effective_at + 1000 * hcmr_fuzz::DAY,
                ..f.termination.clone()
            };
            t.to_record()
        }),
        why: "the termination's date moved, the signature kept",
        expect: &[
            ("termination", "ok"),
            ("termination_check", "BadSignature"),
            ("termination_snapshot", "BadSignature"),
        ],
    });

    // --- feeds and bundles ---
    let sc = &f.sc_feed;
    v.push(Case {
        name: "feed_valid_control",
        target: "feed",
        input: Input::Bytes(encode_batch(sc)),
        why: "control: Sichuan's whole feed, rotation included",
        expect: &[("batch", "ok"), ("bundle", "Malformed")],
    });
    v.push(Case {
        name: "feed_gap",
        target: "feed",
        input: Input::Bytes(encode_batch(&[sc[0].clone(), sc[1].clone(), sc[3].clone()])),
        why: "entry 3 left out",
        expect: &[("batch", "Gap")],
    });
    v.push(Case {
        name: "feed_revocation_by_stranger",
        target: "feed",
        input: Input::Bytes({
            let e = FeedEntry::sign(
                prov(SC),
                Some(&sc[0]),
                NOW,
                Statement::RevokeCode {
                    cti: [0xc7; 16],
                },
                &stranger(),
            );
            encode_batch(&[sc[0].clone(), e])
        }),
        why: "a revocation chained correctly but signed by a key not in the chain",
        expect: &[("batch", "BadSignature")],
    });
    v.push(Case {
        name: "feed_entry_without_genesis",
        target: "feed",
        input: Input::Bytes(sc[1].to_record()),
        why: "entry 2 applied to an empty state",
        expect: &[("record", "ok"), ("apply", "Gap")],
    });
    v.push(Case {
        name: "feed_old_key_after_rotation",
        target: "feed",
        input: Input::Bytes({
            let e = FeedEntry::sign(
                prov(SC),
                sc.last(),
                NOW,
                Statement::RevokeCode {
                    cti: [0x0f; 16],
                },
                &sc_key(),
            );
            let mut b = sc.clone();
            b.push(e);
            encode_batch(&b)
        }),
        why: "the retired first key signs after the rotation",
        expect: &[("batch", "BadSignature")],
    });
    v.push(Case {
        name: "bundle_valid_control",
        target: "feed",
        input: Input::Bytes(f.bundle.clone()),
        why: "control: Guangdong's bundle",
        expect: &[("bundle", "ok")],
    });
    v.push(Case {
        name: "bundle_signature_flipped",
        target: "feed",
        input: Input::Bytes({
            let mut b = f.bundle.clone();
            let n = b.len();
            b[n - 1] ^= 0x01;
            b
        }),
        why: "the bundle's last signature byte flipped",
        expect: &[("bundle", "BadSignature")],
    });
    v.push(Case {
        name: "bundle_truncated",
        target: "feed",
        input: Input::Bytes(f.bundle[..f.bundle.len() / 2].to_vec()),
        why: "half a bundle file",
        expect: &[("bundle", "Truncated")],
    });
    // --- times after the year 9999 (found by the agreement_decoder fuzz target; fixed) ---
    let year_10000 = MAX_TIME + 1;
    v.push(Case {
        name: "agreement_concluded_window_from_year_10000",
        target: "agreement",
        input: Input::Bytes({
            // Signed by both fixture keys, as a peer could propose and an operator accept.
            let mut b = v1.body().clone();
            for d in &mut b.directions {
                d.effective_from = year_10000;
                d.effective_until = year_10000 + 1;
            }
            let body = b.encode();
            let mut msg = b"hcmr-agreement-v1\0".to_vec();
            msg.extend_from_slice(&body);
            let sig = |k: &NodeKey| {
                Value::Array(vec![
                    Value::Bytes(k.kid().0.to_vec()),
                    Value::Bytes(k.sign(&msg).to_vec()),
                ])
            };
            cbor(&Value::Array(vec![
                Value::Bytes(body),
                sig(&sc_key()),
                sig(&hcmr_fuzz::gd_key()),
            ]))
        }),
        why: "a concluded agreement in force from the year 10000: verify showed its start \
              with hcmr::rfc3339, which panics after 9999-12-31",
        expect: &[("record", "TimeTooLarge"), ("body", "Decode")],
    });
    v.push(Case {
        name: "termination_effective_year_10000",
        target: "agreement",
        input: Input::Bytes(
            Termination::sign(
                f.termination.id,
                f.termination.by,
                year_10000,
                NOW - hcmr_fuzz::DAY,
                &hcmr_fuzz::gd_key(),
            )
            .to_record(),
        ),
        why: "a genuine termination effective in the year 10000: the node shows a stored \
              termination's date when asked to accept or amend",
        expect: &[
            ("termination", "ok"),
            ("termination_check", "TimeTooLarge"),
            ("termination_snapshot", "TimeTooLarge"),
            ("signed_termination", "TimeTooLarge"),
        ],
    });
    v.push(Case {
        name: "feed_withdrawal_in_year_10000",
        target: "feed",
        input: Input::Bytes({
            // Sichuan's chain up to the rotation, then the old key withdrawn in the year 10000:
            // verifying a code of the old key showed the withdrawal time and panicked.
            let w = FeedEntry::sign(
                prov(SC),
                Some(&sc[3]),
                year_10000,
                Statement::KeyWithdrawal {
                    key: sc_key().public(),
                },
                &sc_key2(),
            );
            encode_batch(&[
                sc[0].clone(),
                sc[1].clone(),
                sc[2].clone(),
                sc[3].clone(),
                w,
            ])
        }),
        why: "a genuine feed entry dated after the year 9999",
        expect: &[("batch", "BadStatement")],
    });
    v.push(Case {
        name: "bundle_exported_in_year_10000",
        target: "feed",
        input: Input::Bytes({
            let content = BundleContent {
                province: prov(hcmr_fuzz::GD),
                exported_at: year_10000,
                policy: Policy {
                    clock_skew_secs: u64::MAX,
                    own_max_code_age_secs: 7 * hcmr_fuzz::DAY,
                },
                own_feed: f.gd_feed.clone(),
                peers: vec![],
                agreements: vec![],
                terminations: vec![],
            };
            hcmr::bundle::export(&content, &hcmr_fuzz::gd_key())
        }),
        why: "a genuine bundle exported in the year 10000 with an unbounded clock skew: \
              `hcmr verify --bundle` shows the export time",
        expect: &[("bundle", "Malformed")],
    });
    v
}

fn hostile(root: &Path) {
    let dir = root.join("tests/hostile");
    for c in hostile_cases() {
        let (ext, bytes) = match &c.input {
            Input::Text(s) => ("txt", s.as_bytes().to_vec()),
            Input::Bytes(b) => ("hex", hex_lines(b).into_bytes()),
        };
        write(&dir.join(format!("{}.{ext}", c.name)), &bytes);
        let mut e = Vec::new();
        writeln!(e, "# {}", c.why).expect("Vec");
        writeln!(e, "# generated by fuzz/src/bin/make_seeds.rs").expect("Vec");
        writeln!(e, "target = {}", c.target).expect("Vec");
        for (k, val) in c.expect {
            writeln!(e, "{k} = {val}").expect("Vec");
        }
        write(&dir.join(format!("{}.expect", c.name)), &e);
    }
}

fn main() {
    // The repository root: the parent of this crate's directory.
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ has a parent")
        .to_path_buf();
    seeds(&root);
    hostile(&root);
    println!("seeds in {}", root.join("fuzz/seeds").display());
    println!("hostile cases in {}", root.join("tests/hostile").display());
}
