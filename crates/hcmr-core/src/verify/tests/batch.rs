//! Batch verification gives, code by code, the verdicts of the single decision: valid codes,
//! forgeries at every position, kid collisions, malformed strings and every early refusal
//! mixed in one call.

use proptest::prelude::*;

use super::*;
use crate::verify::batch::{verify_batch, verify_items, Item, MAX_SIGNATURES_PER_EQUATION};

/// A pool of codes as Guangdong's node sees them, each with the reason it must get.
fn pool() -> Vec<(String, Reason)> {
    let gd_own = {
        let c = claims("440000", GREEN);
        code(&c, &gd_key())
    };
    let mut expired = claims("510000", GREEN);
    expired.iat = NOW - 600;
    expired.exp = NOW - 1;
    let signed = crate::code::cose::sign(claims("510000", RED).to_cbor(), &sc_key());
    let mut sign1 = CoseSign1::from_slice(&signed.bytes).unwrap();
    sign1.payload = Some(claims("510000", GREEN).to_cbor());
    let altered = transport::wrap(&sign1.to_vec().unwrap());
    vec![
        (code(&claims("510000", GREEN), &sc_key()), Reason::Ok),
        (code(&claims("510000", YELLOW), &sc_key()), Reason::Ok),
        (code(&claims("510000", RED), &sc_key()), Reason::Ok),
        (gd_own, Reason::Ok),
        // The pinned kid, another key's signature.
        (
            code_with_kid(&claims("510000", GREEN), sc_key().kid(), &sc_unpinned_key()),
            Reason::BadSignature,
        ),
        (altered, Reason::BadSignature),
        (
            code(&claims("510000", GREEN), &sc_unpinned_key()),
            Reason::UnknownKey,
        ),
        (code(&expired, &sc_key()), Reason::Expired),
        (
            code(&claims("320000", GREEN), &js_key()),
            Reason::NoAgreement,
        ),
        ("HCMR1:not base45!".to_string(), Reason::Malformed),
    ]
}

fn single(codes: &[&str], trust: &TrustSnapshot) -> Vec<Verdict> {
    codes.iter().map(|c| verify(c, trust, NOW)).collect()
}

#[test]
fn the_pool_gets_the_expected_reasons_singly() {
    let gd = guangdong();
    for (code, reason) in pool() {
        assert_eq!(verify(&code, &gd, NOW).reason, reason, "{code}");
    }
}

#[test]
fn an_empty_batch_gives_no_verdicts() {
    assert!(verify_batch(&[], &guangdong(), NOW).is_empty());
}

#[test]
fn a_batch_of_valid_codes_is_recognized_code_by_code() {
    let gd = guangdong();
    let pool = pool();
    // More than one equation's worth: two full equations and a remainder.
    let codes: Vec<&str> = (0..2 * MAX_SIGNATURES_PER_EQUATION + 5)
        .map(|i| pool[i % 4].0.as_str())
        .collect();
    let verdicts = verify_batch(&codes, &gd, NOW);
    assert_eq!(verdicts.len(), codes.len());
    for (i, v) in verdicts.iter().enumerate() {
        assert_eq!(v.reason, Reason::Ok, "code {i}: {}", v.detail);
        assert!(v.signature_verified);
    }
    // Sichuan's yellow counts as red here, in a batch as singly.
    assert_eq!(verdicts[1].local_status, Some(Red));
    assert_eq!(verdicts, single(&codes, &gd));
}

#[test]
fn one_forgery_among_valid_codes_is_found_at_every_position() {
    let gd = guangdong();
    let pool = pool();
    let valid = pool[0].0.as_str();
    let forged = pool[4].0.as_str();
    for at in [0, 1, 31, 32, 62, 63] {
        let mut codes = vec![valid; MAX_SIGNATURES_PER_EQUATION];
        codes[at] = forged;
        let verdicts = verify_batch(&codes, &gd, NOW);
        for (i, v) in verdicts.iter().enumerate() {
            let want = if i == at {
                Reason::BadSignature
            } else {
                Reason::Ok
            };
            assert_eq!(v.reason, want, "forgery at {at}, code {i}");
            assert_eq!(v.signature_verified, i != at);
        }
    }
}

#[test]
fn every_code_forged_gives_every_refusal() {
    let gd = guangdong();
    let pool = pool();
    let codes = vec![pool[4].0.as_str(); 40];
    for v in verify_batch(&codes, &gd, NOW) {
        check(&v, Reason::BadSignature, Some(SC), false, None);
    }
}

#[test]
fn a_kid_collision_in_a_batch_tries_every_key() {
    // As kid_collision_every_key_with_the_kid_is_tried: the presumption takes the first key with
    // the kid, which did not sign sc_key's codes; the failed batch falls back to single checks.
    let other = collided_key();
    let t = kid_collision_snapshot();
    let c = claims("510000", GREEN);
    let by_sc = code(&c, &sc_key());
    let by_other = code_with_kid(&c, sc_key().kid(), &other);
    let by_gd = code_with_kid(&c, sc_key().kid(), &gd_key());
    let codes: Vec<&str> = [&by_sc, &by_other, &by_gd]
        .iter()
        .cycle()
        .take(30)
        .map(|s| s.as_str())
        .collect();
    let verdicts = verify_batch(&codes, &t, NOW);
    for (i, v) in verdicts.iter().enumerate() {
        let want = if i % 3 == 2 {
            Reason::BadSignature
        } else {
            Reason::Ok
        };
        assert_eq!(v.reason, want, "code {i}");
    }
    assert_eq!(verdicts, single(&codes, &t));
}

#[test]
fn items_keep_their_own_snapshot_and_time() {
    let gd = guangdong();
    let sc = sichuan_with(sc_gd_body());
    let code = pool()[0].0.clone();
    let items = [
        Item {
            code: &code,
            trust: &gd,
            now: NOW,
        },
        // Long after the code expired.
        Item {
            code: &code,
            trust: &gd,
            now: NOW + DAY,
        },
        // At the issuer's own node.
        Item {
            code: &code,
            trust: &sc,
            now: NOW,
        },
    ];
    let v = verify_items(&items);
    assert_eq!(v[0].reason, Reason::Ok);
    assert_eq!(v[0].agreement, Some(AgreementId([0x5c; 16])));
    assert_eq!(v[1].reason, Reason::Expired);
    assert_eq!(v[2].reason, Reason::Ok);
    assert_eq!(v[2].agreement, None, "an own code needs no agreement");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any mix of the pool, in any order and length, gets the single decision's verdicts.
    #[test]
    fn batch_equals_single(picks in proptest::collection::vec(0usize..10, 0..100)) {
        let gd = guangdong();
        let pool = pool();
        let codes: Vec<&str> = picks.iter().map(|&i| pool[i].0.as_str()).collect();
        let verdicts = verify_batch(&codes, &gd, NOW);
        for (v, &i) in verdicts.iter().zip(&picks) {
            prop_assert_eq!(v.reason, pool[i].1);
        }
        prop_assert_eq!(verdicts, single(&codes, &gd));
    }
}
