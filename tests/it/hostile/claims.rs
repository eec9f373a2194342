//! Claims and times: missing, mistyped, out-of-range and contradictory claims, and times
//! outside the validity window.

use super::*;

/// The claims family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- claims ---
    v.push(case(
        "claims: payload is an array",
        "claims.not_map",
        || decode_outcome(&signed_payload(&cbor(&Value::Array(vec![int(1)])))),
    ));
    v.push(case(
        "claims: duplicate iss",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(1), Value::Text("440000".into())));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: duplicate key via non-shortest integer",
        "claims.duplicate_key",
        || {
            // {1: "510000", 0x18 0x01: "440000", ...rest}: the same key 1 in two encodings.
            let mut p = claims().to_cbor();
            let n = p[0] & 0x1f;
            p[0] = 0xa0 | (n + 1);
            let mut extra = vec![0x18, 0x01, 0x66];
            extra.extend_from_slice(b"440000");
            p.splice(1..1, extra);
            decode_outcome(&signed_payload(&p))
        },
    ));
    v.push(case(
        "claims: duplicate unknown key",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(99), int(1)));
            m.push((int(99), int(2)));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: duplicate hcode",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(-38962), Value::Array(vec![])));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: duplicate old cti claim (ignored, still a map error)",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(7), bytes(&[1; 16])));
            m.push((int(7), bytes(&[2; 16])));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: indefinite map without break",
        "cbor.malformed",
        || {
            let mut p = claims().to_cbor();
            p[0] = 0xbf;
            decode_outcome(&signed_payload(&p))
        },
    ));
    v.push(case(
        "claims: indefinite map with break, signed, not recognized (issue 15 fault 7)",
        "malformed",
        || {
            let mut p = claims().to_cbor();
            p[0] = 0xbf;
            p.push(0xff);
            verify_outcome(&signed_payload(&p))
        },
    ));
    v.push(case("claims: missing hcode", "claims.missing", || {
        let mut m = claims_map();
        m.retain(|(k, _)| *k != int(-38962));
        decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
    }));
    v.push(case("claims: missing iat", "claims.missing", || {
        let mut m = claims_map();
        m.retain(|(k, _)| *k != int(6));
        decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
    }));
    v.push(case("claims: iss is a byte string", "claims.type", || {
        decode_outcome(&with_claim(1, bytes(b"510000")))
    }));
    v.push(case("claims: iss negative", "claims.type", || {
        decode_outcome(&with_claim(1, int(-510000)))
    }));
    v.push(case(
        "claims: iss as the old six-digit text, signed (lenient)",
        "ok",
        || verify_outcome(&with_claim(1, Value::Text("510000".into()))),
    ));
    v.push(case("claims: iss 65 characters", "claims.type", || {
        decode_outcome(&with_claim(1, Value::Text("5".repeat(65))))
    }));
    v.push(case(
        "claims: an old cti claim, signed (ignored)",
        "ok",
        || {
            let mut m = claims_map();
            m.push((int(7), Value::Text("abc".into())));
            verify_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case("claims: hcode is a map", "claims.type", || {
        decode_outcome(&with_claim(-38962, Value::Map(vec![])))
    }));
    v.push(case("claims: body of 5 elements", "claims.type", || {
        decode_outcome(&with_body_items(|items| {
            items.pop();
        }))
    }));
    v.push(case(
        "claims: body of 7 elements (an old version field)",
        "claims.type",
        || decode_outcome(&with_body_items(|items| items.insert(0, int(1)))),
    ));
    v.push(case("claims: status as text", "claims.type", || {
        decode_outcome(&with_body(0, Value::Text("green".into())))
    }));
    v.push(case("claims: status negative", "claims.type", || {
        decode_outcome(&with_body(0, int(-1)))
    }));
    v.push(case(
        "claims: unassigned status 9, signed",
        "status_not_recognized",
        || verify_outcome(&with_body(0, int(9))),
    ));
    v.push(case(
        "claims: masked number is a map",
        "claims.type",
        || decode_outcome(&with_body(4, Value::Map(vec![]))),
    ));
    v.push(case(
        "claims: unassigned document type 7",
        "claims.type",
        || decode_outcome(&with_body(3, int(7))),
    ));
    v.push(case("claims: subject hash 7 bytes", "claims.type", || {
        decode_outcome(&with_body(5, bytes(&[0; 7])))
    }));
    v.push(case(
        "claims: subject hash 16 bytes (the old size)",
        "claims.type",
        || decode_outcome(&with_body(5, bytes(&[0; 16]))),
    ));
    v.push(case("claims: masked name as bytes", "claims.type", || {
        decode_outcome(&with_body(2, bytes(b"x")))
    }));

    // --- times ---
    v.push(case("time: iat NaN", "claims.time_not_finite", || {
        decode_outcome(&with_claim(6, Value::Float(f64::NAN)))
    }));
    v.push(case(
        "time: exp +infinity",
        "claims.time_not_finite",
        || decode_outcome(&with_claim(4, Value::Float(f64::INFINITY))),
    ));
    v.push(case(
        "time: status until -infinity",
        "claims.time_not_finite",
        || decode_outcome(&with_body(1, Value::Float(f64::NEG_INFINITY))),
    ));
    v.push(case(
        "time: iat negative integer",
        "claims.time_negative",
        || decode_outcome(&with_claim(6, int(-1))),
    ));
    v.push(case(
        "time: exp negative float",
        "claims.time_negative",
        || decode_outcome(&with_claim(4, Value::Float(-5.0))),
    ));
    v.push(case(
        "time: iat most negative CBOR integer",
        "claims.time_negative",
        || {
            // 0x3b ff..ff = -2^64
            let mut m = claims_map();
            set(&mut m, 6, int(0));
            let mut p = cbor(&Value::Map(m));
            let i = find(&p, &[0x06, 0x00]) + 1;
            p.splice(
                i..=i,
                [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            );
            decode_outcome(&signed_payload(&p))
        },
    ));
    v.push(case(
        "time: exp fractional",
        "claims.time_not_whole",
        || decode_outcome(&with_claim(4, Value::Float(1_750_000_300.5))),
    ));
    v.push(case(
        "time: exp after 9999",
        "claims.time_too_large",
        || decode_outcome(&with_claim(4, int(253_402_300_800))),
    ));
    v.push(case("time: exp u64::MAX", "claims.time_too_large", || {
        decode_outcome(&with_claim(4, Value::Integer(Integer::from(u64::MAX))))
    }));
    v.push(case(
        "time: exp 1e300 float",
        "claims.time_too_large",
        || decode_outcome(&with_claim(4, Value::Float(1e300))),
    ));
    v.push(case("time: exp as bignum tag 2", "claims.type", || {
        decode_outcome(&with_claim(
            4,
            Value::Tag(2, Box::new(bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0]))),
        ))
    }));
    v.push(case("time: iat as tag-1 date", "claims.type", || {
        decode_outcome(&with_claim(6, Value::Tag(1, Box::new(int(1_749_999_940)))))
    }));
    v.push(case("time: iat as text", "claims.type", || {
        decode_outcome(&with_claim(6, Value::Text("2025-06-15".into())))
    }));
    v.push(case(
        "time: whole float iat, signed (control, accepted)",
        "ok",
        || verify_outcome(&with_claim(6, Value::Float((NOW - 60).secs() as f64))),
    ));
    v.push(case(
        "time: iat far in the future, signed",
        "not_yet_valid",
        || verify_outcome(&with_claim(6, int(253_402_300_799))),
    ));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("claims", &cases());
}
