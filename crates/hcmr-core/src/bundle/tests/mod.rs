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

mod refusals;
mod sound;

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
