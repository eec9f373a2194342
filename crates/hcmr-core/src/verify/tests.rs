//! Tests of the verification decision: one or more per [`Reason`], with the trust snapshot built
//! in memory from concluded agreements and codes made with [`crate::code::encode`] at a fixed
//! `now`. The keys, times, agreements, snapshots and codes come from [`crate::testkit`].

use std::collections::BTreeMap;

use coset::{CborSerializable, CoseSign1};

use super::*;
use crate::agreement::{AgreementBody, AgreementError, DirectionTerms, Party, SignedAgreement};
use crate::code::transport;
use crate::keys::{NodeKey, PublicKey};
use crate::status::HealthStatus::{Green, Red, Yellow};
use crate::testkit::sc_new_key as sc_unpinned_key;
use crate::testkit::status_map as map;
use crate::testkit::{
    agreement_body, claims, code, code_with_kid, conclude, gd_key, js_key, own_feed, prov, sc_key,
    snapshot, zj_key, DAY, GD, JS, NOW, SC, ZJ,
};
use crate::trust::Policy;

/// Sichuan -> Guangdong: codes up to a day old.
const SC_GD_MAX_AGE: u64 = DAY;
/// Guangdong -> Sichuan: codes up to an hour old.
const GD_SC_MAX_AGE: u64 = 3_600;

/// The terms of [`crate::testkit::direction`] with codes up to `max_code_age_secs` old.
fn direction(
    issuer: u32,
    verifier: u32,
    status_map: BTreeMap<HealthStatus, HealthStatus>,
    max_code_age_secs: u64,
) -> DirectionTerms {
    DirectionTerms {
        max_code_age_secs,
        ..crate::testkit::direction(issuer, verifier, status_map)
    }
}

/// Sichuan (proposer) and Guangdong (acceptor). Sichuan green->green, yellow->red, red->red;
/// Guangdong (no yellow in its scheme) green->green, red->red.
fn sc_gd_body() -> AgreementBody {
    agreement_body(
        (SC, &sc_key()),
        (GD, &gd_key()),
        vec![
            direction(
                SC,
                GD,
                map(&[(Green, Green), (Yellow, Red), (Red, Red)]),
                SC_GD_MAX_AGE,
            ),
            direction(GD, SC, map(&[(Green, Green), (Red, Red)]), GD_SC_MAX_AGE),
        ],
    )
}

fn sc_gd() -> SignedAgreement {
    conclude(sc_gd_body(), &sc_key(), &gd_key())
}

/// Guangdong's node, with the Sichuan agreement.
fn guangdong() -> TrustSnapshot {
    snapshot(GD, &gd_key(), vec![sc_gd()])
}

/// Sichuan's node, with `body` (a Sichuan-Guangdong agreement) concluded.
fn sichuan_with(body: AgreementBody) -> TrustSnapshot {
    snapshot(SC, &sc_key(), vec![conclude(body, &sc_key(), &gd_key())])
}

const GREEN: u64 = 1;
const YELLOW: u64 = 2;
const RED: u64 = 3;

/// Asserts the verdict's reason, issuer, signature flag and local status, and the invariants
/// that hold for every verdict.
fn check(
    v: &Verdict,
    reason: Reason,
    issuer: Option<u32>,
    signature_verified: bool,
    local: Option<HealthStatus>,
) {
    assert_eq!(v.reason, reason, "detail: {}", v.detail);
    assert_eq!(v.recognized(), reason == Reason::Ok);
    assert_eq!(v.issuer, issuer.map(prov), "issuer");
    assert_eq!(
        v.signature_verified, signature_verified,
        "signature_verified"
    );
    assert_eq!(v.local_status, local, "local_status");
    // Never a status when not recognized.
    if !v.recognized() {
        assert_eq!(v.local_status, None);
        assert!(!v.detail.is_empty(), "a refusal says why");
    } else {
        assert!(v.local_status.is_some());
    }
}

// --- Reason::Ok ---

#[test]
fn ok_sichuan_codes_at_guangdong_under_the_status_map() {
    let gd = guangdong();
    let agreement = Some(AgreementId([0x5c; 16]));
    for (issued, local) in [(GREEN, Green), (YELLOW, Red), (RED, Red)] {
        let c = claims("510000", issued);
        let v = verify(&code(&c, &sc_key()), &gd, NOW);
        check(&v, Reason::Ok, Some(SC), true, Some(local));
        assert_eq!(v.agreement, agreement);
        assert_eq!(v.claims.as_ref(), Some(&c));
        assert_eq!(v.issued_status(), HealthStatus::from_u64(issued));
        assert_eq!(v.detail, "");
    }
    // Sichuan's yellow counts as red in Guangdong, never as green.
    let v = verify(&code(&claims("510000", YELLOW), &sc_key()), &gd, NOW);
    assert_eq!(v.issued_status(), Some(Yellow));
    assert_eq!(v.local_status, Some(Red));
}

#[test]
fn ok_own_province_code_with_identity_mapping() {
    // Guangdong's node, its own codes: counted as issued, no agreement involved.
    let gd = guangdong();
    for s in HealthStatus::ALL {
        let v = verify(&code(&claims("440000", s.to_u64()), &gd_key()), &gd, NOW);
        check(&v, Reason::Ok, Some(GD), true, Some(s));
        assert_eq!(v.agreement, None);
    }
    // Also with no agreements at all, and for Sichuan, whose own yellow stays yellow.
    let sc = snapshot(SC, &sc_key(), vec![]);
    let v = verify(&code(&claims("510000", YELLOW), &sc_key()), &sc, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Yellow));
}

#[test]
fn ok_guangdong_code_at_sichuan() {
    let sc = sichuan_with(sc_gd_body());
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW);
    check(&v, Reason::Ok, Some(GD), true, Some(Green));
    let v = verify(&code(&claims("440000", RED), &gd_key()), &sc, NOW);
    check(&v, Reason::Ok, Some(GD), true, Some(Red));
}

// --- Reason::Malformed ---

#[test]
fn malformed() {
    let gd = guangdong();
    let good = code(&claims("510000", GREEN), &sc_key());
    let cases = [
        ("", "prefix.empty"),
        ("HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC", "prefix.foreign"),
        ("hello", "prefix.missing"),
        ("HCMR1:A", "base45.length"),
        ("HCMR1:GGW", "base45.overflow"),
        ("HCMR1:00", "cose.structure"),
    ];
    for (s, stage) in cases {
        let v = verify(s, &gd, NOW);
        check(&v, Reason::Malformed, None, false, None);
        assert!(v.detail.starts_with(stage), "{s:?}: {}", v.detail);
        assert_eq!(v.claims, None);
        assert_eq!(v.agreement, None);
    }
    // A valid code cut short.
    let v = verify(&good[..good.len() - 3], &gd, NOW);
    check(&v, Reason::Malformed, None, false, None);
}

// --- Reason::UnknownIssuer ---

#[test]
fn unknown_issuer() {
    let gd = guangdong();
    for iss in ["999999", "510105", "160000", "SC", "", "5100000"] {
        let c = claims(iss, GREEN);
        let v = verify(&code(&c, &sc_key()), &gd, NOW);
        check(&v, Reason::UnknownIssuer, None, false, None);
        assert_eq!(v.claims.as_ref(), Some(&c), "{iss:?}");
        assert_eq!(v.agreement, None);
    }
    let v = verify(&code(&claims("510105", GREEN), &sc_key()), &gd, NOW);
    assert!(
        v.detail.contains("510000"),
        "names the province: {}",
        v.detail
    );
}

// --- Reason::NoAgreement ---

#[test]
fn no_agreement() {
    let gd = guangdong();
    let v = verify(&code(&claims("320000", GREEN), &js_key()), &gd, NOW);
    check(&v, Reason::NoAgreement, Some(JS), false, None);
    assert_eq!(v.agreement, None);
    assert!(
        v.detail.contains("320000") && v.detail.contains("440000"),
        "{}",
        v.detail
    );

    // A node without any agreement refuses even a code signed by a key it could know.
    let alone = snapshot(GD, &gd_key(), vec![]);
    let v = verify(&code(&claims("510000", GREEN), &sc_key()), &alone, NOW);
    check(&v, Reason::NoAgreement, Some(SC), false, None);
}

// --- Reason::AgreementNotYetInForce / AgreementExpired ---

#[test]
fn agreement_not_yet_in_force() {
    let mut b = sc_gd_body();
    b.directions[1].effective_from = NOW + 1;
    let sc = sichuan_with(b);
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW);
    check(&v, Reason::AgreementNotYetInForce, Some(GD), false, None);
    assert_eq!(v.agreement, Some(AgreementId([0x5c; 16])));
    // From its first second it is in force.
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW + 1);
    check(&v, Reason::Ok, Some(GD), true, Some(Green));
}

#[test]
fn agreement_expired() {
    let mut b = sc_gd_body();
    b.directions[1].effective_until = NOW;
    let sc = sichuan_with(b.clone());
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW);
    check(&v, Reason::AgreementExpired, Some(GD), false, None);
    assert_eq!(v.agreement, Some(AgreementId([0x5c; 16])));
    // Its last second was still in force.
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW - 1);
    check(&v, Reason::Ok, Some(GD), true, Some(Green));
    // The other direction is independent: Sichuan codes at Guangdong still count.
    let gd = snapshot(GD, &gd_key(), vec![conclude(b, &sc_key(), &gd_key())]);
    let v = verify(&code(&claims("510000", GREEN), &sc_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
}

#[test]
fn the_agreement_in_force_is_used() {
    // Version 1 expired; version 2 (another id) in force.
    let mut v1 = sc_gd_body();
    v1.directions[1].effective_until = NOW - DAY;
    let mut v2 = sc_gd_body();
    v2.id = AgreementId([0x5d; 16]);
    v2.version = 2;
    v2.created_at = NOW - DAY;
    let sc = snapshot(
        SC,
        &sc_key(),
        vec![
            conclude(v1.clone(), &sc_key(), &gd_key()),
            conclude(v2.clone(), &sc_key(), &gd_key()),
        ],
    );
    assert_eq!(sc.agreement_count(), 2);
    assert_eq!(sc.agreements_with(prov(GD))[0].agreement.body().version, 2);
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW);
    check(&v, Reason::Ok, Some(GD), true, Some(Green));
    assert_eq!(v.agreement, Some(AgreementId([0x5d; 16])));

    // When none is in force, the newest decides the reason: version 2 not yet begun.
    v2.directions[1].effective_from = NOW + DAY;
    let sc = snapshot(
        SC,
        &sc_key(),
        vec![
            conclude(v2, &sc_key(), &gd_key()),
            conclude(v1, &sc_key(), &gd_key()),
        ],
    );
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &sc, NOW);
    check(&v, Reason::AgreementNotYetInForce, Some(GD), false, None);
    assert_eq!(v.agreement, Some(AgreementId([0x5d; 16])));
}

// --- Reason::UnknownKey ---

#[test]
fn unknown_key_unpinned_key_of_the_issuer() {
    let gd = guangdong();
    let v = verify(
        &code(&claims("510000", GREEN), &sc_unpinned_key()),
        &gd,
        NOW,
    );
    check(&v, Reason::UnknownKey, Some(SC), false, None);
    assert_eq!(v.agreement, Some(AgreementId([0x5c; 16])));
    assert!(
        v.detail.contains(&sc_unpinned_key().kid().to_string()),
        "{}",
        v.detail
    );
}

#[test]
fn unknown_key_another_provinces_key_claiming_an_issuer() {
    // Zhejiang's node has agreements with both Sichuan and Guangdong.
    let zj_sc = AgreementBody {
        id: AgreementId([0x01; 16]),
        proposer: Party {
            province: prov(ZJ),
            keys: vec![zj_key().public()],
        },
        acceptor: Party {
            province: prov(SC),
            keys: vec![sc_key().public()],
        },
        directions: vec![
            direction(ZJ, SC, map(&[(Green, Green)]), DAY),
            direction(SC, ZJ, map(&[(Green, Green)]), DAY),
        ],
        ..sc_gd_body()
    };
    let zj_gd = AgreementBody {
        id: AgreementId([0x02; 16]),
        proposer: Party {
            province: prov(ZJ),
            keys: vec![zj_key().public()],
        },
        acceptor: Party {
            province: prov(GD),
            keys: vec![gd_key().public()],
        },
        directions: vec![
            direction(ZJ, GD, map(&[(Green, Green)]), DAY),
            direction(GD, ZJ, map(&[(Green, Green)]), DAY),
        ],
        ..sc_gd_body()
    };
    let zj = snapshot(
        ZJ,
        &zj_key(),
        vec![
            conclude(zj_sc, &zj_key(), &sc_key()),
            conclude(zj_gd, &zj_key(), &gd_key()),
        ],
    );
    // Each province's own code is recognized ...
    let v = verify(&code(&claims("510000", GREEN), &sc_key()), &zj, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    let v = verify(&code(&claims("440000", GREEN), &gd_key()), &zj, NOW);
    check(&v, Reason::Ok, Some(GD), true, Some(Green));
    // ... but Guangdong's key cannot speak for Sichuan, nor the other way round.
    let v = verify(&code(&claims("510000", GREEN), &gd_key()), &zj, NOW);
    check(&v, Reason::UnknownKey, Some(SC), false, None);
    assert_eq!(v.agreement, Some(AgreementId([0x01; 16])));
    let v = verify(&code(&claims("440000", GREEN), &sc_key()), &zj, NOW);
    check(&v, Reason::UnknownKey, Some(GD), false, None);
    // Nor can Zhejiang's own key, nor can a peer's key pass as Zhejiang's.
    let v = verify(&code(&claims("510000", GREEN), &zj_key()), &zj, NOW);
    check(&v, Reason::UnknownKey, Some(SC), false, None);
    let v = verify(&code(&claims("330000", GREEN), &sc_key()), &zj, NOW);
    check(&v, Reason::UnknownKey, Some(ZJ), false, None);

    // At Guangdong: its own key signing as Sichuan, Sichuan's key signing as Guangdong.
    let gd = guangdong();
    let v = verify(&code(&claims("510000", GREEN), &gd_key()), &gd, NOW);
    check(&v, Reason::UnknownKey, Some(SC), false, None);
    let v = verify(&code(&claims("440000", GREEN), &sc_key()), &gd, NOW);
    check(&v, Reason::UnknownKey, Some(GD), false, None);
}

// --- Reason::BadSignature ---

#[test]
fn bad_signature_pinned_kid_signed_by_another_key() {
    let gd = guangdong();
    let c = claims("510000", GREEN);
    // The builder makes exactly the codes crate::code::encode makes when kid and key agree.
    assert_eq!(
        code_with_kid(&c, sc_key().kid(), &sc_key()),
        code(&c, &sc_key())
    );
    // The pinned kid, but another key's signature (a kid collision, or a forgery).
    let forged = code_with_kid(&c, sc_key().kid(), &sc_unpinned_key());
    let v = verify(&forged, &gd, NOW);
    check(&v, Reason::BadSignature, Some(SC), false, None);
    assert_eq!(v.claims.as_ref(), Some(&c));
    // The same at the issuer's own node.
    let sc = sichuan_with(sc_gd_body());
    let v = verify(&forged, &sc, NOW);
    check(&v, Reason::BadSignature, Some(SC), false, None);
}

#[test]
fn bad_signature_payload_altered_after_signing() {
    let gd = guangdong();
    let signed = crate::code::cose::sign(claims("510000", RED).to_cbor(), &sc_key());
    let mut sign1 = CoseSign1::from_slice(&signed.bytes).unwrap();
    let altered = claims("510000", GREEN);
    sign1.payload = Some(altered.to_cbor());
    let v = verify(&transport::wrap(&sign1.to_vec().unwrap()), &gd, NOW);
    check(&v, Reason::BadSignature, Some(SC), false, None);
    // The decoded claims say green, but they are not authentic and nothing counts as green.
    assert_eq!(v.issued_status(), Some(Green));
    assert_eq!(v.local_status, None);

    // Another altered field: status valid for a year instead of a day.
    let mut sign1 = CoseSign1::from_slice(&signed.bytes).unwrap();
    let mut longer = claims("510000", RED);
    longer.status_valid_until = NOW + 365 * DAY;
    sign1.payload = Some(longer.to_cbor());
    let v = verify(&transport::wrap(&sign1.to_vec().unwrap()), &gd, NOW);
    check(&v, Reason::BadSignature, Some(SC), false, None);
}

/// The key that shares sc_key's kid in [`kid_collision_snapshot`].
fn collided_key() -> NodeKey {
    NodeKey::from_seed(&[0x45; 32])
}

/// Guangdong with an agreement that pins two Sichuan keys with one kid (a simulated collision):
/// [`collided_key`] first, then sc_key.
fn kid_collision_snapshot() -> TrustSnapshot {
    let collided = PublicKey {
        kid: sc_key().kid(),
        key: collided_key().public().key,
    };
    let mut body = sc_gd_body();
    body.proposer.keys = vec![collided, sc_key().public()];
    snapshot(GD, &gd_key(), vec![conclude(body, &sc_key(), &gd_key())])
}

#[test]
fn kid_collision_every_key_with_the_kid_is_tried() {
    // A code signed by either key with the kid verifies; a third key's signature under that kid
    // does not.
    let other = collided_key();
    let t = kid_collision_snapshot();
    let c = claims("510000", GREEN);
    let v = verify(&code(&c, &sc_key()), &t, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    let v = verify(&code_with_kid(&c, sc_key().kid(), &other), &t, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    let v = verify(&code_with_kid(&c, sc_key().kid(), &gd_key()), &t, NOW);
    check(&v, Reason::BadSignature, Some(SC), false, None);
}

// --- Reason::NotYetValid ---

#[test]
fn not_yet_valid_beyond_clock_skew() {
    let gd = guangdong();
    let skew = Policy::default().clock_skew_secs;
    assert_eq!(skew, 300);
    let mut c = claims("510000", GREEN);
    c.exp = NOW + 3_600;
    // Within the skew: a verifier whose clock is slow still accepts.
    c.iat = NOW + skew;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    // One second beyond.
    c.iat = NOW + skew + 1;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::NotYetValid, Some(SC), true, None);
    assert!(v.detail.contains("301"), "{}", v.detail);
    // A zero-skew policy refuses any future iat.
    let strict = {
        let mut t = TrustSnapshot::new(
            prov(GD),
            own_feed(GD, &gd_key()),
            Policy {
                clock_skew_secs: 0,
                ..Policy::default()
            },
        );
        t.add_agreement(sc_gd()).unwrap();
        t
    };
    c.iat = NOW + 1;
    let v = verify(&code(&c, &sc_key()), &strict, NOW);
    check(&v, Reason::NotYetValid, Some(SC), true, None);
    c.iat = NOW;
    let v = verify(&code(&c, &sc_key()), &strict, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
}

// --- Reason::Expired ---

#[test]
fn expired_at_exp() {
    let gd = guangdong();
    let mut c = claims("510000", GREEN);
    c.exp = NOW;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::Expired, Some(SC), true, None);
    c.exp = NOW + 1;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    // Own codes expire the same way.
    let mut c = claims("440000", GREEN);
    c.exp = NOW - 1;
    let v = verify(&code(&c, &gd_key()), &gd, NOW);
    check(&v, Reason::Expired, Some(GD), true, None);
}

// --- Reason::CodeTooOld ---

#[test]
fn code_too_old_per_agreement_and_own_policy() {
    let gd = guangdong();
    let mut c = claims("510000", GREEN);
    c.exp = NOW + 300;
    c.iat = NOW - SC_GD_MAX_AGE;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    c.iat = NOW - SC_GD_MAX_AGE - 1;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::CodeTooOld, Some(SC), true, None);

    // Guangdong -> Sichuan accepts only an hour.
    let sc = sichuan_with(sc_gd_body());
    let mut c = claims("440000", GREEN);
    c.iat = NOW - GD_SC_MAX_AGE - 1;
    let v = verify(&code(&c, &gd_key()), &sc, NOW);
    check(&v, Reason::CodeTooOld, Some(GD), true, None);

    // Own codes: the local policy's limit (7 days by default).
    let own_max = Policy::default().own_max_code_age_secs;
    assert_eq!(own_max, 7 * DAY);
    let mut c = claims("440000", GREEN);
    c.iat = NOW - own_max;
    let v = verify(&code(&c, &gd_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(GD), true, Some(Green));
    c.iat = NOW - own_max - 1;
    let v = verify(&code(&c, &gd_key()), &gd, NOW);
    check(&v, Reason::CodeTooOld, Some(GD), true, None);
}

// --- Reason::StatusNotRecognized ---

#[test]
fn status_not_recognized_unassigned_number_is_never_green() {
    let gd = guangdong();
    for status in [0, 4, 7, 255, u64::MAX] {
        let v = verify(&code(&claims("510000", status), &sc_key()), &gd, NOW);
        check(&v, Reason::StatusNotRecognized, Some(SC), true, None);
        assert_eq!(v.issued_status(), None);
        assert!(v.detail.contains(&status.to_string()), "{}", v.detail);
    }
    // Own codes too: no identity mapping for a number that is not a colour.
    let v = verify(&code(&claims("440000", 7), &gd_key()), &gd, NOW);
    check(&v, Reason::StatusNotRecognized, Some(GD), true, None);
}

#[test]
fn status_not_recognized_not_in_the_map() {
    // Guangdong's direction maps green and red only: a yellow Guangdong code is not recognized
    // in Sichuan.
    let sc = sichuan_with(sc_gd_body());
    let v = verify(&code(&claims("440000", YELLOW), &gd_key()), &sc, NOW);
    check(&v, Reason::StatusNotRecognized, Some(GD), true, None);
    assert_eq!(v.issued_status(), Some(Yellow));
    assert!(v.detail.contains("yellow"), "{}", v.detail);

    // An agreement that recognizes only green: red is refused, not shown as anything.
    let mut b = sc_gd_body();
    b.directions[0].status_map = map(&[(Green, Green)]);
    let gd = snapshot(GD, &gd_key(), vec![conclude(b, &sc_key(), &gd_key())]);
    let v = verify(&code(&claims("510000", RED), &sc_key()), &gd, NOW);
    check(&v, Reason::StatusNotRecognized, Some(SC), true, None);
    let v = verify(&code(&claims("510000", GREEN), &sc_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
}

// --- Reason::StatusExpired ---

#[test]
fn status_expired() {
    let gd = guangdong();
    let mut c = claims("510000", GREEN);
    c.status_valid_until = NOW;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::StatusExpired, Some(SC), true, None);
    c.status_valid_until = NOW + 1;
    let v = verify(&code(&c, &sc_key()), &gd, NOW);
    check(&v, Reason::Ok, Some(SC), true, Some(Green));
    // Independent of exp: the display code may still be fresh.
    let mut c = claims("440000", RED);
    c.status_valid_until = NOW - DAY;
    let v = verify(&code(&c, &gd_key()), &gd, NOW);
    check(&v, Reason::StatusExpired, Some(GD), true, None);
}

// --- the snapshot ---

#[test]
fn add_agreement_refuses_one_signature() {
    let mut t = TrustSnapshot::new(prov(GD), own_feed(GD, &gd_key()), Policy::default());
    let proposed = SignedAgreement::propose(sc_gd_body(), &sc_key()).unwrap();
    assert_eq!(
        t.add_agreement(proposed.clone()),
        Err(AgreementError::Unsigned("acceptor"))
    );
    let mut unsigned = proposed;
    unsigned.proposer_signature = None;
    assert_eq!(
        t.add_agreement(unsigned),
        Err(AgreementError::Unsigned("proposer"))
    );
    // A forged acceptor signature is refused too.
    let mut forged = sc_gd();
    forged.acceptor_signature.as_mut().unwrap().signature[0] ^= 1;
    assert_eq!(
        t.add_agreement(forged),
        Err(AgreementError::BadSignature("acceptor"))
    );
    assert_eq!(t.agreement_count(), 0);
    // And nothing of it is trusted.
    let v = verify(&code(&claims("510000", GREEN), &sc_key()), &t, NOW);
    check(&v, Reason::NoAgreement, Some(SC), false, None);
}

#[test]
fn add_agreement_refuses_an_agreement_without_the_local_province() {
    let mut t = TrustSnapshot::new(prov(JS), own_feed(JS, &js_key()), Policy::default());
    assert_eq!(t.add_agreement(sc_gd()), Err(AgreementError::BadDirections));
    assert_eq!(t.agreement_count(), 0);
    assert!(t.agreements_with(prov(SC)).is_empty());
    assert!(t.agreements_with(prov(GD)).is_empty());
    let v = verify(&code(&claims("510000", GREEN), &sc_key()), &t, NOW);
    check(&v, Reason::NoAgreement, Some(SC), false, None);
}

#[test]
fn verify_is_pure() {
    let gd = guangdong();
    let s = code(&claims("510000", YELLOW), &sc_key());
    assert_eq!(verify(&s, &gd, NOW), verify(&s, &gd, NOW));
    let hc = crate::code::HealthCode::decode(&s).unwrap();
    assert_eq!(verify_decoded(&hc, &gd, NOW), verify(&s, &gd, NOW));
}

mod batch;
