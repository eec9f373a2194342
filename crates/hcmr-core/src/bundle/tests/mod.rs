//! Tests of offline trust bundles: a bundle of Sichuan's node (own feed, a concluded and amended
//! agreement with Guangdong, Guangdong's synced feed with a rotation and revocations) built in
//! memory, exported, opened and used to verify codes; and every way a bundle is refused. The
//! keys, times and feed entries come from [`crate::testkit`].

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::agreement::{AgreementBody, AgreementId, DirectionTerms};
use crate::code::Claims;
use crate::feed::Statement;
use crate::identity::SubjectHash;
use crate::status::HealthStatus::{self, Green, Red, Yellow};
use crate::testkit::status_map as map;
use crate::testkit::{
    agreement_body, conclude, gd_key, gd_new_key, genesis, prov, rotation, sc_key, sc_new_key,
    stranger, DAY, GD, NOW, SC,
};
use crate::verify::{verify, Reason};

mod refusals;
mod sound;

/// When the test bundle was exported: an hour before `NOW`.
const EXPORTED_AT: UnixTime = NOW.saturating_sub(3_600);
/// When Sichuan last synced Guangdong's feed: two hours before `NOW`.
const GD_SYNCED_AT: UnixTime = NOW.saturating_sub(7_200);
/// How old Sichuan's copy of Guangdong's trust state may be (in the agreement).
const MAX_TRUST_AGE: u64 = 2 * DAY;
/// Sichuan's local policy in the bundle (not the default, to see it carried).
const POLICY: Policy = Policy {
    clock_skew_secs: 120,
    own_max_code_age_secs: 3 * DAY,
};

/// The agreement's id.
const ID: AgreementId = crate::testkit::AGREEMENT_ID;
/// The subject hash of the Guangdong code revoked by its cti ([`revoked_cti`]).
const REVOKED_CODE_SUBJECT: SubjectHash = SubjectHash([0xdd; 8]);
/// A Guangdong subject whose codes issued before `SUBJECT_BEFORE` are revoked.
const REVOKED_SUBJECT: SubjectHash = SubjectHash([0xee; 8]);
const SUBJECT_BEFORE: UnixTime = NOW.saturating_sub(9_000);

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

/// The terms of [`crate::testkit::direction`] with Sichuan's copy of the issuer's trust state
/// at most [`MAX_TRUST_AGE`] old.
fn direction(
    issuer: u32,
    verifier: u32,
    status_map: BTreeMap<HealthStatus, HealthStatus>,
) -> DirectionTerms {
    DirectionTerms {
        max_trust_age_secs: MAX_TRUST_AGE,
        ..crate::testkit::direction(issuer, verifier, status_map)
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
        ..agreement_body(
            (SC, &sc_key()),
            (GD, &gd_key()),
            vec![
                direction(GD, SC, gd_here),
                direction(SC, GD, map(&[(Green, Green), (Yellow, Red), (Red, Red)])),
            ],
        )
    };
    conclude(body, &sc_key(), &gd_key())
}

/// What Sichuan's node exports: both agreement versions, no termination.
fn content() -> BundleContent {
    BundleContent {
        province: prov(SC),
        exported_at: EXPORTED_AT,
        policy: POLICY,
        own_feed: sc_feed(),
        peers: vec![BundlePeer {
            province: prov(GD),
            synced_at: GD_SYNCED_AT,
            entries: gd_feed(),
        }],
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

/// A current code of `iss` ([`crate::testkit::claims`]: issued a minute ago, display valid five
/// more minutes, status valid a day) for a resident identity card masked `4401*1234` with
/// subject hash `subject`.
fn claims(iss: u32, status: HealthStatus, subject: SubjectHash) -> Claims {
    let mut c = crate::testkit::claims(&iss.to_string(), status.to_u64());
    c.subject.masked_document_number = "4401*1234".into();
    c.subject.subject_hash = subject;
    c
}

/// The cti of the Guangdong code revoked in Guangdong's feed: a green code for
/// [`REVOKED_CODE_SUBJECT`] signed by the new key (the cti is the signature's first 16 bytes).
fn revoked_cti() -> crate::code::Cti {
    crate::code::encode_with_cti(&claims(GD, Green, REVOKED_CODE_SUBJECT), &gd_new_key()).cti
}

fn code(iss: u32, status: HealthStatus, key: &NodeKey) -> String {
    crate::code::encode(&claims(iss, status, SubjectHash([0xa5; 8])), key)
}
