//! CBOR and COSE structure, and other encodings of a valid code (issue 15 fault 7: one code,
//! one string).

use super::*;

/// The cose family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- CBOR / COSE structure ---
    v.push(case(
        "cbor: trailing byte after COSE",
        "cbor.trailing",
        || {
            let mut c = good_cose();
            c.push(0x00);
            decode_outcome(&wrap(&c))
        },
    ));
    v.push(case("cbor: nesting 40 deep", "cbor.malformed", || {
        let mut c = vec![0x81u8; 40];
        c.push(0x00);
        decode_outcome(&wrap(&c))
    }));
    v.push(case(
        "cbor: reserved additional info 0x1c",
        "cbor.malformed",
        || decode_outcome(&wrap(&[0x1c])),
    ));
    v.push(case(
        "cbor: indefinite COSE array without break",
        "cbor.malformed",
        || {
            let c = good_cose();
            // 84 ... -> 9f ... (no 0xff break)
            let mut x = c.clone();
            x[0] = 0x9f;
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "cbor: huge declared bstr length",
        "cbor.malformed",
        || {
            decode_outcome(&wrap(&[
                0xd2, 0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]))
        },
    ));
    v.push(case("cose: tag 61 around untagged", "cose.tag", || {
        let c = good_cose();
        let mut x = vec![0xd8, 0x3d];
        x.extend_from_slice(&c);
        decode_outcome(&wrap(&x))
    }));
    v.push(case("cose: tag 98 (COSE_Sign)", "cose.tag", || {
        let c = good_cose();
        let mut x = vec![0xd8, 0x62];
        x.extend_from_slice(&c);
        decode_outcome(&wrap(&x))
    }));
    // --- other encodings of a valid code (issue 15 fault 7): one code, one string ---
    v.push(case(
        "canonical: tag 18 (COSE_Sign1) around a valid code",
        "cose.tag",
        || decode_outcome(&wrap(&[&[0xd2][..], &good_cose()].concat())),
    ));
    v.push(case(
        "canonical: tag 61(18) (CWT) around a valid code",
        "cose.tag",
        || decode_outcome(&wrap(&[&[0xd8, 0x3d, 0xd2][..], &good_cose()].concat())),
    ));
    v.push(case(
        "canonical: tag 18 around a valid code is not recognized",
        "malformed",
        || verify_outcome(&wrap(&[&[0xd2][..], &good_cose()].concat())),
    ));
    let indefinite = |b: &[u8], head: u8| [&[head][..], &b[1..], &[0xff]].concat();
    v.push(case(
        "canonical: indefinite-length COSE array",
        "cbor.not_canonical",
        move || decode_outcome(&wrap(&indefinite(&good_cose(), 0x9f))),
    ));
    v.push(case(
        "canonical: chunked payload",
        "cbor.not_canonical",
        || {
            let c = good_cose();
            let p = claims().to_cbor();
            // The payload's head is at byte 16 (array head, 14-byte protected, unprotected).
            let head = cbor(&Value::Bytes(p.clone())).len() - p.len();
            let mut x = c[..16].to_vec();
            x.push(0x5f);
            x.extend_from_slice(&cbor(&Value::Bytes(p[..10].to_vec())));
            x.extend_from_slice(&cbor(&Value::Bytes(p[10..].to_vec())));
            x.push(0xff);
            x.extend_from_slice(&c[16 + head + p.len()..]);
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "canonical: signature length in a longer head",
        "cbor.not_canonical",
        || {
            let c = good_cose();
            let at = c.len() - 66;
            let x = [&c[..at], &[0x59, 0x00, 0x40], &c[at + 2..]].concat();
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "canonical: unprotected kid equal to the protected one",
        "cose.unprotected_not_empty",
        || {
            let k = sc_key();
            let unprotected = vec![(int(4), Value::Bytes(k.kid().0.to_vec()))];
            let x = sign1_with(
                std_protected(&k.kid().0),
                unprotected,
                &claims().to_cbor(),
                &k,
            );
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "canonical: indefinite-length claims map, signed",
        "cbor.not_canonical",
        move || decode_outcome(&signed_payload(&indefinite(&claims().to_cbor(), 0xbf))),
    ));
    v.push(case(
        "canonical: indefinite-length body, signed",
        "cbor.not_canonical",
        || {
            let p = claims().to_cbor();
            let at = 3 + p.windows(3).position(|w| w == [0x39, 0x98, 0x31]).unwrap();
            let x = [&p[..at], &[0x9f], &p[at + 1..], &[0xff]].concat();
            decode_outcome(&signed_payload(&x))
        },
    ));
    v.push(case(
        "canonical: chunked name, signed",
        "cbor.not_canonical",
        || {
            let p = claims().to_cbor();
            let name = cbor(&Value::Text(claims().subject.masked_name));
            let at = p.windows(name.len()).position(|w| w == name).unwrap();
            let x = [&p[..at], &[0x7f], &name, &[0xff], &p[at + name.len()..]].concat();
            decode_outcome(&signed_payload(&x))
        },
    ));
    v.push(case("cose: array of 3", "cose.structure", || {
        let c = good_cose();
        let mut x = c.clone();
        x[0] = 0x83;
        // drop the signature item: the last 66 bytes (58 40 + 64)
        x.truncate(x.len() - 66);
        decode_outcome(&wrap(&x))
    }));
    v.push(case("cose: a map, not an array", "cose.structure", || {
        decode_outcome(&wrap(&cbor(&Value::Map(vec![(int(1), int(2))]))))
    }));
    v.push(case(
        "cose: duplicate alg label in protected",
        "cose.structure",
        || {
            let k = sc_key();
            let mut p = std_protected(&k.kid().0);
            p.push((int(1), int(-8)));
            decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
        },
    ));
    v.push(case("cose: empty crit array", "cose.structure", || {
        let k = sc_key();
        let mut p = std_protected(&k.kid().0);
        p.push((int(2), Value::Array(vec![])));
        decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
    }));
    v.push(case(
        "cose: critical private-use header",
        "cose.crit",
        || decode_outcome(&crit_code(int(-65537))),
    ));
    v.push(case(
        "cose: critical text-label header",
        "cose.crit",
        || decode_outcome(&crit_code(Value::Text("x-hcmr".into()))),
    ));
    v.push(case(
        "cose: critical registered header (kid)",
        "cose.crit",
        || decode_outcome(&crit_code(int(4))),
    ));
    v.push(case("cose: wrong alg ES256", "cose.alg", || {
        let k = sc_key();
        let p = vec![(int(1), int(-7)), (int(4), bytes(&k.kid().0))];
        decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
    }));
    v.push(case("cose: alg as text 'EdDSA'", "cose.alg", || {
        let k = sc_key();
        let p = vec![
            (int(1), Value::Text("EdDSA".into())),
            (int(4), bytes(&k.kid().0)),
        ];
        decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
    }));
    v.push(case(
        "cose: alg only unprotected",
        "cose.alg_missing",
        || {
            let k = sc_key();
            let p = vec![(int(4), bytes(&k.kid().0))];
            decode_outcome(&wrap(&sign1_with(
                p,
                vec![(int(1), int(-8))],
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case(
        "cose: kid only unprotected",
        "cose.kid_unprotected",
        || {
            let k = sc_key();
            let p = vec![(int(1), int(-8))];
            let u = vec![(int(4), bytes(&k.kid().0))];
            decode_outcome(&wrap(&sign1_with(p, u, &claims().to_cbor(), &k)))
        },
    ));
    v.push(case(
        "cose: conflicting unprotected kid",
        "cose.kid_conflict",
        || {
            let k = sc_key();
            let u = vec![(int(4), bytes(&stranger().kid().0))];
            decode_outcome(&wrap(&sign1_with(
                std_protected(&k.kid().0),
                u,
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case(
        "cose: equal unprotected kid, not recognized (issue 15 fault 7)",
        "malformed",
        || {
            let k = sc_key();
            let u = vec![(int(4), bytes(&k.kid().0))];
            verify_outcome(&wrap(&sign1_with(
                std_protected(&k.kid().0),
                u,
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case("cose: no kid anywhere", "cose.kid_missing", || {
        let k = sc_key();
        decode_outcome(&wrap(&sign1_with(
            vec![(int(1), int(-8))],
            vec![],
            &claims().to_cbor(),
            &k,
        )))
    }));
    v.push(case("cose: 7-byte kid", "cose.kid_length", || {
        let k = sc_key();
        decode_outcome(&wrap(&sign1_with(
            std_protected(&k.kid().0[..7]),
            vec![],
            &claims().to_cbor(),
            &k,
        )))
    }));
    v.push(case(
        "cose: 32-byte kid (whole key)",
        "cose.kid_length",
        || {
            let k = sc_key();
            decode_outcome(&wrap(&sign1_with(
                std_protected(&k.public().to_bytes()),
                vec![],
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case("cose: empty kid", "cose.structure", || {
        let k = sc_key();
        decode_outcome(&wrap(&sign1_with(
            std_protected(b""),
            vec![],
            &claims().to_cbor(),
            &k,
        )))
    }));
    v.push(case(
        "cose: detached payload (nil)",
        "cose.payload_missing",
        || {
            let k = sc_key();
            let p = cbor(&Value::Map(std_protected(&k.kid().0)));
            decode_outcome(&wrap(&sign1_raw(&p, vec![], None, &k, None)))
        },
    ));
    v.push(case("cose: empty payload", "cose.payload_missing", || {
        decode_outcome(&signed_payload(b""))
    }));
    v.push(case(
        "cose: 63-byte signature",
        "cose.signature_length",
        || decode_outcome(&with_signature(vec![7; 63])),
    ));
    v.push(case(
        "cose: empty signature",
        "cose.signature_length",
        || decode_outcome(&with_signature(vec![])),
    ));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("cose", &cases());
}

/// A code of the fixture claims whose signature is `sig` (not a signature at all).
fn with_signature(sig: Vec<u8>) -> String {
    let k = sc_key();
    let p = cbor(&Value::Map(std_protected(&k.kid().0)));
    wrap(&sign1_raw(
        &p,
        vec![],
        Some(&claims().to_cbor()),
        &k,
        Some(sig),
    ))
}
