//! Tests of offline trust bundles: a bundle of Sichuan's node (own feed, a concluded and amended
//! agreement with Guangdong, Guangdong's synced feed with a rotation and revocations) built in
//! memory, exported, opened and used to verify codes; and every way a bundle is refused.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::agreement::{AgreementBody, AgreementId, DirectionTerms, Party};
use crate::code::{Claims, Subject};
use crate::feed::{proof_of_possession, Statement};
use crate::identity::{DocumentType, SubjectHash};
use crate::status::HealthStatus::{self, Green, Red, Yellow};
use crate::verify::{verify, Reason};

/// The fixed "now": 2025-06-15T15:06:40Z.
const NOW: u64 = 1_750_000_000;
const DAY: u64 = 86_400;
/// When the test bundle was exported: an hour before `NOW`.
const EXPORTED_AT: u64 = NOW - 3_600;
/// When Sichuan last synced Guangdong's feed: two hours before `NOW`.
const GD_SYNCED_AT: u64 = NOW - 7_200;
/// How old Sichuan's copy of Guangdong's trust state may be (in the agreement).
const MAX_TRUST_AGE: u64 = 2 * DAY;
/// Sichuan's local policy in the bundle (not the default, to see it carried).
const POLICY: Policy = Policy {
    clock_skew_secs: 120,
    own_max_code_age_secs: 3 * DAY,
};

const SC: u32 = 510000;
const GD: u32 = 440000;
/// The agreement's id.
const ID: AgreementId = AgreementId([0x5c; 16]);
/// The subject hash of the Guangdong code revoked by its cti ([`revoked_cti`]).
const REVOKED_CODE_SUBJECT: SubjectHash = SubjectHash([0xdd; 8]);
/// A Guangdong subject whose codes issued before `SUBJECT_BEFORE` are revoked.
const REVOKED_SUBJECT: SubjectHash = SubjectHash([0xee; 8]);
const SUBJECT_BEFORE: u64 = NOW - 9_000;

fn prov(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

fn sc_key() -> NodeKey {
    NodeKey::from_seed(&[0x51; 32])
}
fn sc_new_key() -> NodeKey {
    NodeKey::from_seed(&[0x52; 32])
}
/// Guangdong's genesis key (pinned in the agreement), retired ten days ago.
fn gd_key() -> NodeKey {
    NodeKey::from_seed(&[0x44; 32])
}
/// Guangdong's current key, rotated in by its feed (not pinned).
fn gd_new_key() -> NodeKey {
    NodeKey::from_seed(&[0x45; 32])
}
fn stranger() -> NodeKey {
    NodeKey::from_seed(&[0x99; 32])
}

fn genesis(p: u32, k: &NodeKey, time: u64) -> FeedEntry {
    FeedEntry::sign(
        prov(p),
        None,
        time,
        Statement::Genesis { key: k.public() },
        k,
    )
}

fn rotation(p: u32, prev: &FeedEntry, time: u64, old: &NodeKey, new: &NodeKey) -> FeedEntry {
    let s = Statement::KeyRotation {
        key: new.public(),
        pop: proof_of_possession(prov(p), new),
    };
    FeedEntry::sign(prov(p), Some(prev), time, s, old)
}

/// Sichuan's own feed: only its genesis.
fn sc_feed() -> Vec<FeedEntry> {
    vec![genesis(SC, &sc_key(), NOW - 40 * DAY)]
}

/// Sichuan's feed after rotating from `sc_key` to `sc_new_key` a day ago.
fn sc_feed_rotated() -> Vec<FeedEntry> {
    let g = genesis(SC, &sc_key(), NOW - 40 * DAY);
    let r = rotation(SC, &g, NOW - DAY, &sc_key(), &sc_new_key());
    vec![g, r]
}

/// Guangdong's feed: genesis, rotation to `gd_new_key` ten days ago, a code revocation and a
/// subject revocation.
fn gd_feed() -> Vec<FeedEntry> {
    let (old, new) = (gd_key(), gd_new_key());
    let g = genesis(GD, &old, NOW - 40 * DAY);
    let r = rotation(GD, &g, NOW - 10 * DAY, &old, &new);
    let c = FeedEntry::sign(
        prov(GD),
        Some(&r),
        NOW - 5 * DAY,
        Statement::RevokeCode { cti: revoked_cti() },
        &new,
    );
    let s = FeedEntry::sign(
        prov(GD),
        Some(&c),
        SUBJECT_BEFORE,
        Statement::RevokeSubject {
            subject_hash: REVOKED_SUBJECT,
            before: SUBJECT_BEFORE,
        },
        &new,
    );
    vec![g, r, c, s]
}

fn map(pairs: &[(HealthStatus, HealthStatus)]) -> BTreeMap<HealthStatus, HealthStatus> {
    pairs.iter().copied().collect()
}

fn direction(
    issuer: u32,
    verifier: u32,
    status_map: BTreeMap<HealthStatus, HealthStatus>,
) -> DirectionTerms {
    DirectionTerms {
        issuer: prov(issuer),
        verifier: prov(verifier),
        status_map,
        max_code_age_secs: DAY,
        effective_from: NOW - 30 * DAY,
        effective_until: NOW + 365 * DAY,
        max_trust_age_secs: MAX_TRUST_AGE,
    }
}

/// Version `version` of the Sichuan-Guangdong agreement, proposed by Sichuan and accepted by
/// Guangdong. Version 1 recognizes Guangdong's green and red; version 2 adds yellow as red.
fn agreement(version: u32) -> SignedAgreement {
    let gd_here = if version == 1 {
        map(&[(Green, Green), (Red, Red)])
    } else {
        map(&[(Green, Green), (Yellow, Red), (Red, Red)])
    };
    let body = AgreementBody {
        id: ID,
        version,
        created_at: NOW - 31 * DAY + u64::from(version),
        proposer: Party {
            province: prov(SC),
            keys: vec![sc_key().public()],
        },
        acceptor: Party {
            province: prov(GD),
            keys: vec![gd_key().public()],
        },
        directions: vec![
            direction(GD, SC, gd_here),
            direction(SC, GD, map(&[(Green, Green), (Yellow, Red), (Red, Red)])),
        ],
    };
    let mut a = SignedAgreement::propose(body, &sc_key()).unwrap();
    a.accept(&gd_key()).unwrap();
    a
}

/// What Sichuan's node exports: both agreement versions, no termination.
fn content() -> BundleContent {
    BundleContent {
        province: prov(SC),
        exported_at: EXPORTED_AT,
        policy: POLICY,
        own_feed: sc_feed(),
        peers: vec![(prov(GD), GD_SYNCED_AT, gd_feed())],
        agreements: vec![agreement(1), agreement(2)],
        terminations: Vec::new(),
    }
}

/// The test bundle, signed by Sichuan's current key.
fn bundle() -> Vec<u8> {
    export(&content(), &sc_key())
}

fn sc_kid() -> TrustAnchor {
    TrustAnchor::Kid(sc_key().kid())
}

/// A current code of `iss`: issued a minute ago, display valid five more minutes, status valid
/// a day.
fn claims(iss: u32, status: HealthStatus, subject: SubjectHash) -> Claims {
    Claims {
        iss: iss.to_string(),
        iat: NOW - 60,
        exp: NOW + 300,
        status: status.to_u64(),
        status_valid_until: NOW + DAY,
        subject: Subject {
            masked_name: "张*三".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "4401*1234".into(),
            subject_hash: subject,
        },
    }
}

/// The cti of the Guangdong code revoked in Guangdong's feed: a green code for
/// [`REVOKED_CODE_SUBJECT`] signed by the new key (the cti is the signature's first 16 bytes).
fn revoked_cti() -> crate::code::Cti {
    crate::code::encode_with_cti(&claims(GD, Green, REVOKED_CODE_SUBJECT), &gd_new_key()).cti
}

fn code(iss: u32, status: HealthStatus, key: &NodeKey) -> String {
    crate::code::encode(&claims(iss, status, SubjectHash([0xa5; 8])), key)
}

// ---------------------------------------------------------------------------------------------
// A sound bundle
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sound_bundle_opens_with_the_kid_or_the_key() {
    let b = bundle();
    assert_eq!(b, bundle(), "export is deterministic");
    for anchor in [sc_kid(), TrustAnchor::Key(sc_key().public())] {
        let (c, snap) = open(&b, anchor, NOW, DAY).unwrap();
        let want = content();
        assert_eq!(c.province, want.province);
        assert_eq!(c.exported_at, EXPORTED_AT);
        assert_eq!(c.policy, POLICY);
        assert_eq!(c.own_feed, want.own_feed);
        assert_eq!(c.peers, want.peers);
        assert_eq!(c.agreements, want.agreements);
        assert_eq!(c.terminations, want.terminations);

        assert_eq!(snap.local(), prov(SC));
        assert_eq!(*snap.policy(), POLICY);
        assert_eq!(snap.own_keys(), vec![sc_key().public()]);
        assert_eq!(snap.agreement_count(), 1, "version 2 replaces version 1");
        let agreements = snap.agreements_with(prov(GD));
        assert_eq!(agreements[0].agreement.body().version, 2);
        let gd = snap.peer_feed(prov(GD)).unwrap();
        assert_eq!(gd.synced_at, GD_SYNCED_AT);
        assert_eq!(gd.state.last_seq(), 4);
        assert_eq!(gd.state.revocation_count(), 2);
        assert_eq!(gd.state.current_key(), Some(&gd_new_key().public()));
    }
}

#[test]
fn trust_anchor_parses_a_kid_or_a_key() {
    let k = sc_key();
    assert_eq!(TrustAnchor::parse(&k.kid().to_string()), Ok(sc_kid()));
    assert_eq!(
        TrustAnchor::parse(&format!(" {} ", hex::encode(k.public().to_bytes()))),
        Ok(TrustAnchor::Key(k.public()))
    );
    assert!(TrustAnchor::parse("00112233").is_err());
    assert!(TrustAnchor::parse("not hex").is_err());
}

#[test]
fn codes_verify_offline_as_at_the_node() {
    let (_, snap) = open(&bundle(), sc_kid(), NOW, DAY).unwrap();
    let check = |code: &str, reason: Reason, local: Option<HealthStatus>| {
        let v = verify(code, &snap, NOW);
        assert_eq!(v.reason, reason, "detail: {}", v.detail);
        assert_eq!(v.local_status, local);
        v
    };

    // Guangdong's current key (rotated in by its feed, anchored in the pinned genesis key).
    let v = check(&code(GD, Green, &gd_new_key()), Reason::Ok, Some(Green));
    assert_eq!(v.agreement, Some(ID));
    assert_eq!(v.issuer_synced_at, Some(GD_SYNCED_AT));
    // Yellow is recognized only by version 2 of the agreement, as red.
    check(&code(GD, Yellow, &gd_new_key()), Reason::Ok, Some(Red));
    // The pinned key was retired by the rotation ten days ago.
    check(&code(GD, Green, &gd_key()), Reason::KeyRetired, None);
    // A key Guangdong never named.
    check(&code(GD, Green, &stranger()), Reason::UnknownKey, None);
    // Revocations from Guangdong's feed.
    let by_cti = claims(GD, Green, REVOKED_CODE_SUBJECT);
    check(
        &crate::code::encode(&by_cti, &gd_new_key()),
        Reason::Revoked,
        None,
    );
    // The subject's code issued three hours ago, before the revocation time.
    let by_subject = Claims {
        iat: NOW - 10_800,
        ..claims(GD, Green, REVOKED_SUBJECT)
    };
    check(
        &crate::code::encode(&by_subject, &gd_new_key()),
        Reason::Revoked,
        None,
    );
    // A code of the subject issued after the revocation time is not revoked.
    let later = Claims {
        iat: SUBJECT_BEFORE,
        ..by_subject
    };
    check(
        &crate::code::encode(&later, &gd_new_key()),
        Reason::Ok,
        Some(Green),
    );
    // Sichuan's own code, under its own policy.
    check(&code(SC, Yellow, &sc_key()), Reason::Ok, Some(Yellow));
    // Garbage is malformed, not a panic.
    check("HCMR1:not a code", Reason::Malformed, None);

    // The offline verdict ages with the bundle: after the agreement's max trust age since
    // Guangdong's state was synced, its codes are refused as stale (checked before expiry).
    let late = GD_SYNCED_AT + MAX_TRUST_AGE + 1;
    let v = verify(&code(GD, Green, &gd_new_key()), &snap, late);
    assert_eq!(v.reason, Reason::TrustStale, "{}", v.detail);
    assert_eq!(v.issuer_synced_at, Some(GD_SYNCED_AT));
}

#[test]
fn the_newest_agreement_version_applies_whatever_the_order() {
    let yellow = code(GD, Yellow, &gd_new_key());
    for (agreements, want) in [
        (vec![agreement(1)], Reason::StatusNotRecognized),
        (vec![agreement(2), agreement(1)], Reason::Ok),
        (vec![agreement(1), agreement(2)], Reason::Ok),
    ] {
        let c = BundleContent {
            agreements,
            ..content()
        };
        let (_, snap) = open(&export(&c, &sc_key()), sc_kid(), NOW, DAY).unwrap();
        assert_eq!(snap.agreement_count(), 1);
        let v = verify(&yellow, &snap, NOW);
        assert_eq!(v.reason, want, "{}", v.detail);
    }
}

#[test]
fn a_termination_in_the_bundle_applies() {
    let t = Termination::sign(ID, prov(GD), NOW - 60, NOW - 120, &gd_new_key());
    let c = BundleContent {
        terminations: vec![t.clone()],
        ..content()
    };
    let (opened, snap) = open(&export(&c, &sc_key()), sc_kid(), NOW, DAY).unwrap();
    assert_eq!(opened.terminations, vec![t]);
    let v = verify(&code(GD, Green, &gd_new_key()), &snap, NOW);
    assert_eq!(v.reason, Reason::AgreementTerminated, "{}", v.detail);
    // Before it takes effect the agreement still holds.
    let v = verify(&code(GD, Green, &gd_new_key()), &snap, NOW - 61);
    assert_eq!(v.reason, Reason::Ok, "{}", v.detail);
}

#[test]
fn a_bundle_without_peers_verifies_on_the_pinned_keys() {
    let c = BundleContent {
        peers: Vec::new(),
        ..content()
    };
    let (_, snap) = open(&export(&c, &sc_key()), sc_kid(), NOW, DAY).unwrap();
    // No synced state: the agreement's max trust age refuses Guangdong's codes as stale.
    let v = verify(&code(GD, Green, &gd_key()), &snap, NOW);
    assert_eq!(v.reason, Reason::TrustStale, "{}", v.detail);
    assert_eq!(v.issuer_synced_at, None);
    // The rotated-in key is unknown without the feed.
    let v = verify(&code(GD, Green, &gd_new_key()), &snap, NOW);
    assert_eq!(v.reason, Reason::UnknownKey, "{}", v.detail);
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

/// Decodes a bundle file into its five elements.
fn parts(b: &[u8]) -> Vec<Value> {
    match crate::cbor::decode_exact(b).unwrap() {
        Value::Array(a) => a,
        _ => unreachable!(),
    }
}

fn content_bytes(b: &[u8]) -> Vec<u8> {
    match &parts(b)[2] {
        Value::Bytes(c) => c.clone(),
        _ => unreachable!(),
    }
}

/// The bundle `b` with its content replaced (the signature left as it is).
fn with_content(b: &[u8], c: Vec<u8>) -> Vec<u8> {
    let mut p = parts(b);
    p[2] = Value::Bytes(c);
    crate::cbor::encode(&Value::Array(p))
}

#[test]
fn a_tampered_content_byte_is_refused() {
    let b = bundle();
    let c = content_bytes(&b);
    // content = array(8), uint 510000 (5 bytes), exported_at (0x1a + 4 bytes): change the
    // export time by one second.
    assert_eq!(&c[..7], &[0x88, 0x1a, 0x00, 0x07, 0xc8, 0x30, 0x1a]);
    let mut t = c.clone();
    t[10] ^= 0x01;
    assert_eq!(
        open(&with_content(&b, t), sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
    // A changed byte anywhere in the content is refused: the first 32 bytes, then every 13th
    // (each open re-verifies signatures, which is slow in debug builds).
    assert!(c.len() > 1_000, "{} bytes", c.len());
    for i in (0..32).chain((32..c.len()).step_by(13)) {
        let mut t = c.clone();
        t[i] ^= 0x20;
        let r = open(&with_content(&b, t), sc_kid(), NOW, DAY);
        assert!(
            r.is_err(),
            "content byte {i} changed, yet the bundle opened"
        );
    }
    // And in the signature.
    let mut p = parts(&b);
    if let Value::Bytes(s) = &mut p[4] {
        s[63] ^= 0x01;
    }
    assert_eq!(
        open(&crate::cbor::encode(&Value::Array(p)), sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn a_wrong_anchor_is_an_untrusted_signer() {
    let b = bundle();
    let (sc, gd) = (sc_key().kid(), gd_key().kid());
    assert_eq!(
        open(&b, TrustAnchor::Kid(gd), NOW, DAY).unwrap_err(),
        BundleError::UntrustedSigner { want: gd, got: sc }
    );
    assert_eq!(
        open(&b, TrustAnchor::Key(gd_key().public()), NOW, DAY).unwrap_err(),
        BundleError::UntrustedSigner { want: gd, got: sc }
    );
    // A bundle a stranger signed, whatever it holds: the signer is not the current key of the
    // chain inside, so its signature proves nothing.
    let forged = export(&content(), &stranger());
    assert_eq!(
        open(&forged, sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn a_stranger_with_its_own_feed_is_refused_by_the_anchor() {
    // The stranger exports a "Sichuan" bundle with a feed of its own key: self-consistent, but
    // the checkpoint pinned Sichuan's kid.
    let c = BundleContent {
        own_feed: vec![genesis(SC, &stranger(), NOW - DAY)],
        ..content()
    };
    let forged = export(&c, &stranger());
    assert!(matches!(
        open(&forged, sc_kid(), NOW, DAY),
        Err(BundleError::UntrustedSigner { .. })
    ));
}

#[test]
fn a_bundle_older_than_allowed_is_too_old() {
    let b = bundle();
    let max = 3_600;
    assert!(open(&b, sc_kid(), EXPORTED_AT + max, max).is_ok());
    assert_eq!(
        open(&b, sc_kid(), EXPORTED_AT + max + 1, max).unwrap_err(),
        BundleError::TooOld { age: max + 1, max }
    );
    assert_eq!(
        open(&b, sc_kid(), NOW + 30 * DAY, DAY).unwrap_err(),
        BundleError::TooOld {
            age: 30 * DAY + 3_600,
            max: DAY
        }
    );
}

#[test]
fn a_bundle_from_the_future_is_refused() {
    let b = bundle();
    let skew = POLICY.clock_skew_secs;
    // Within the bundle's clock skew of the checkpoint's clock: accepted.
    assert!(open(&b, sc_kid(), EXPORTED_AT - skew, DAY).is_ok());
    assert_eq!(
        open(&b, sc_kid(), EXPORTED_AT - skew - 1, DAY).unwrap_err(),
        BundleError::FromTheFuture
    );
    assert_eq!(
        open(&b, sc_kid(), 0, DAY).unwrap_err(),
        BundleError::FromTheFuture
    );
}

#[test]
fn a_bundle_signed_by_a_retired_key_is_refused() {
    let c = BundleContent {
        own_feed: sc_feed_rotated(),
        ..content()
    };
    // The checkpoint pinned the old kid; the bundle is signed by the old key, which the bundle's
    // own feed retired.
    let old = export(&c, &sc_key());
    assert_eq!(
        open(&old, sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
    assert_eq!(
        open(&old, TrustAnchor::Key(sc_key().public()), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
    // The new key's bundle opens under the new kid or key, and also under the old one: the
    // rotation statement the old key signed is in the chain, so a checkpoint need not re-pin.
    let new = export(&c, &sc_new_key());
    let new_kid = TrustAnchor::Kid(sc_new_key().kid());
    let (_, snap) = open(&new, new_kid, NOW, DAY).unwrap();
    assert_eq!(snap.own_keys(), vec![sc_new_key().public()]);
    assert!(open(&new, TrustAnchor::Key(sc_new_key().public()), NOW, DAY).is_ok());
    assert!(open(&new, sc_kid(), NOW, DAY).is_ok());
    // Once the old key is withdrawn (compromised), it anchors nothing any more.
    let mut withdrawn = sc_feed_rotated();
    let w = FeedEntry::sign(
        prov(SC),
        withdrawn.last(),
        NOW - DAY / 2,
        Statement::KeyWithdrawal {
            key: sc_key().public(),
        },
        &sc_new_key(),
    );
    withdrawn.push(w);
    let c = BundleContent {
        own_feed: withdrawn,
        ..content()
    };
    let new = export(&c, &sc_new_key());
    assert_eq!(
        open(&new, sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::UntrustedSigner {
            want: sc_key().kid(),
            got: sc_new_key().kid()
        }
    );
    assert!(open(&new, new_kid, NOW, DAY).is_ok());
    // A bundle whose own feed is empty names no current key.
    let empty = BundleContent {
        own_feed: Vec::new(),
        ..content()
    };
    assert_eq!(
        open(&export(&empty, &sc_key()), sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn unsound_content_under_a_good_signature_is_refused() {
    let bad = |c: BundleContent| {
        let r = open(&export(&c, &sc_key()), sc_kid(), NOW, DAY);
        match r {
            Err(BundleError::BadContent(m)) => m,
            other => panic!("expected BadContent, got {:?}", other.map(|_| ())),
        }
    };
    // A peer feed with a gap.
    let mut gd = gd_feed();
    gd.remove(2);
    let m = bad(BundleContent {
        peers: vec![(prov(GD), GD_SYNCED_AT, gd)],
        ..content()
    });
    assert!(m.starts_with("feed of 440000"), "{m}");
    // An agreement Guangdong has not accepted.
    let mut proposed = agreement(1);
    proposed.acceptor_signature = None;
    let m = bad(BundleContent {
        agreements: vec![proposed],
        ..content()
    });
    assert!(m.starts_with("agreement"), "{m}");
    // A termination by a key that is not Guangdong's.
    let t = Termination::sign(ID, prov(GD), NOW, NOW, &stranger());
    let m = bad(BundleContent {
        terminations: vec![t],
        ..content()
    });
    assert!(m.starts_with("termination"), "{m}");
    // Sichuan's own feed broken: its first entry is not a genesis.
    let not_genesis = FeedEntry::sign(
        prov(SC),
        None,
        NOW,
        Statement::RevokeCode { cti: [1; 16] },
        &sc_key(),
    );
    let m = bad(BundleContent {
        own_feed: vec![not_genesis],
        ..content()
    });
    assert!(m.starts_with("own feed"), "{m}");
}

fn malformed(b: &[u8]) -> String {
    match open(b, sc_kid(), NOW, DAY) {
        Err(BundleError::Malformed(m) | BundleError::Truncated(m)) => m,
        other => panic!(
            "expected Malformed or Truncated, got {:?}",
            other.map(|_| ())
        ),
    }
}

#[test]
fn garbage_is_malformed() {
    let b = bundle();
    let enc = |v: Vec<Value>| crate::cbor::encode(&Value::Array(v));
    let p = parts(&b);
    let mut wrong_magic = p.clone();
    wrong_magic[0] = Value::Text("hcmr-trust-bundles".into());
    let mut wrong_format = p.clone();
    wrong_format[1] = Value::Integer(2.into());
    let mut short_kid = p.clone();
    short_kid[3] = Value::Bytes(vec![0; 7]);
    let mut trailing = b.clone();
    trailing.push(0);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"HCMR1:not a bundle".to_vec(),
        vec![0xff; 64],
        crate::cbor::encode(&Value::Map(Vec::new())),
        enc(p[..4].to_vec()),
        enc(wrong_magic),
        enc(wrong_format),
        enc(short_kid),
        trailing,
        b[..b.len() - 1].to_vec(),
        // Content that is not CBOR, or not the content array, under the right kid.
        with_content(&b, vec![0xff]),
        with_content(&b, crate::cbor::encode(&Value::Array(Vec::new()))),
        with_content(&b, {
            let mut c = content_bytes(&b);
            c.push(0);
            c
        }),
    ];
    for (i, case) in cases.iter().enumerate() {
        let m = malformed(case);
        assert!(!m.is_empty(), "case {i}");
    }
    assert_eq!(
        malformed(&enc(p[..4].to_vec())),
        "file: expected 5 elements"
    );
    assert_eq!(malformed(&cases[5]), "not an hcmr trust bundle");
    assert_eq!(malformed(&cases[6]), "unsupported bundle format");
}

#[test]
fn every_truncation_is_refused() {
    let b = bundle();
    for n in 0..b.len() {
        assert!(
            matches!(
                open(&b[..n], sc_kid(), NOW, DAY),
                Err(BundleError::Malformed(_) | BundleError::Truncated(_))
            ),
            "truncated to {n} bytes"
        );
    }
    // Said in words: a file cut short, not the decoder's Debug text.
    assert_eq!(malformed(&[]), "the file is empty");
    for n in 1..b.len() {
        let m = malformed(&b[..n]);
        assert_eq!(
            m,
            format!(
                "the file ends early ({n} bytes): it was cut short, e.g. by an interrupted copy; \
                 copy it again or export a new one"
            )
        );
    }
    assert_eq!(
        malformed(&[0xff; 4]),
        "the file does not have a trust bundle's structure"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_open_and_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        prop_assert!(open(&bytes, sc_kid(), NOW, DAY).is_err());
    }

    #[test]
    fn arbitrary_content_under_the_right_kid_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        head in prop_oneof![Just(vec![]), Just(vec![0x88u8, 0x1a, 0x00, 0x07, 0xc8, 0x30])],
    ) {
        let b = bundle_with_content(&[head, tail].concat());
        prop_assert!(open(&b, sc_kid(), NOW, DAY).is_err());
    }
}

/// A bundle file of `content` under Sichuan's kid, with a zero signature.
fn bundle_with_content(content: &[u8]) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        Value::Text("hcmr-trust-bundle".into()),
        Value::Integer(1.into()),
        Value::Bytes(content.to_vec()),
        Value::Bytes(sc_key().kid().0.to_vec()),
        Value::Bytes(vec![0; 64]),
    ]))
}

/// Issue 15 fault 9: decoding errors of a bundle, an agreement and a feed entry say the stage,
/// the offset and what was expected in words, never ciborium's debug text (`Io(Error { kind:
/// UnexpectedEof, .. })`, `Syntax(29)`).
#[test]
fn decode_errors_are_words_not_debug_text() {
    let debug = [
        "Io(",
        "Syntax(",
        "Semantic(",
        "kind:",
        "UnexpectedEof",
        "Text(",
        "Integer(",
    ];
    let clean = |e: &str| {
        for d in debug {
            assert!(!e.contains(d), "{e}");
        }
    };
    // Half of an array of 5.
    let e = open(&[0x85, 0x64], sc_kid(), NOW, DAY)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "damaged trust bundle: the file ends early (2 bytes): it was cut short, e.g. by an \
         interrupted copy; copy it again or export a new one"
    );
    // Reserved additional information 29 at byte 1.
    let e = open(&[0x85, 0x1d], sc_kid(), NOW, DAY)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("byte 1 (0x1d): reserved additional information 29"),
        "{e}"
    );
    clean(&e);
    // The right shape with a wrong element names the element and what it must be.
    let file = crate::cbor::encode(&Value::Array(vec![
        Value::Text(MAGIC.into()),
        Value::Integer(FORMAT.into()),
        Value::Text("content".into()),
        Value::Bytes(vec![0; 8]),
        Value::Bytes(vec![0; 64]),
    ]));
    let e = open(&file, sc_kid(), NOW, DAY).unwrap_err().to_string();
    assert_eq!(
        e,
        "not a valid trust bundle: content: expected a byte string"
    );
    let e = crate::agreement::SignedAgreement::from_record(&[0x83, 0x40, 0x1d])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("byte 2 (0x1d): reserved additional information 29"),
        "{e}"
    );
    clean(&e);
    let e = crate::agreement::SignedAgreement::from_record(&[0x83, 0x40, 0xf6, 0x01])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "agreement body does not decode: signature: expected null or an array of kid and \
         signature bytes"
    );
    let e = crate::feed::FeedEntry::from_record(&[0x83, 0x01, 0x02])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "feed entry does not decode: CBOR: not well-formed: the input ends early, at byte 3, \
         inside an item; more bytes were expected"
    );
}
