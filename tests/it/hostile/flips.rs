//! Bit flips in a valid code: never recognized.

use super::*;

/// The flips family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- bit flips: never recognized ---
    v.push(case("flip: protected alg -8 -> -7", "malformed", || {
        let c = good_cose();
        let i = find(&c, &[0x01, 0x27]) + 1;
        verify_outcome(&flip(c, i))
    }));
    v.push(case("flip: protected kid byte", "unknown_key", || {
        let c = good_cose();
        let i = find(&c, &sc_key().kid().0);
        verify_outcome(&flip(c, i))
    }));
    v.push(case(
        "flip: protected map header A2 -> A3",
        "malformed",
        || {
            let c = good_cose();
            let i = find(&c, &[0xa2, 0x01, 0x27]);
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case(
        "flip: payload subject hash byte",
        "bad_signature",
        || {
            let c = good_cose();
            let i = find(&c, &[0xa5; 8]) + 3;
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case(
        "flip: payload status green -> red-ish (1 -> 0)",
        "bad_signature",
        || {
            // Status 1 -> 0 would be unrecognized anyway; flip 'valid until' low byte instead.
            let c = good_cose();
            let until = (NOW + DAY).secs() as u32;
            let i = find(&c, &until.to_be_bytes()) + 3;
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case(
        "flip: payload iss 510000 -> 510001 (iss checked first)",
        "unknown_issuer",
        || {
            // iss is the uint 510000 = 0x1a 0007c830.
            let c = good_cose();
            let i = find(&c, &[0x01, 0x1a, 0x00, 0x07, 0xc8, 0x30]) + 5;
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case("flip: signature first byte", "bad_signature", || {
        let c = good_cose();
        let n = c.len();
        verify_outcome(&flip(c, n - 64))
    }));
    v.push(case(
        "flip: signature last byte (S half)",
        "bad_signature",
        || {
            let c = good_cose();
            let n = c.len();
            verify_outcome(&flip(c, n - 1))
        },
    ));
    v.push(case(
        "flip: every signature bit, none recognized",
        "bad_signature",
        || {
            let c = good_cose();
            let n = c.len();
            let node = gd_node(vec![agreement(1)]);
            let mut seen = std::collections::BTreeSet::new();
            for i in n - 64..n {
                for bit in 0..8 {
                    let mut x = c.clone();
                    x[i] ^= 1 << bit;
                    seen.insert(verify_outcome_at(&wrap(&x), &node));
                }
            }
            seen.into_iter().collect::<Vec<_>>().join(",")
        },
    ));
    v.push(case(
        "flip: every COSE byte, none recognized",
        "never ok",
        || {
            let c = good_cose();
            let node = gd_node(vec![agreement(1)]);
            for i in 0..c.len() {
                let mut x = c.clone();
                x[i] ^= 0x01;
                if verify(&wrap(&x), &node, NOW).recognized() {
                    return format!("recognized after flipping byte {i}");
                }
            }
            "never ok".into()
        },
    ));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("flips", &cases());
}
