//! The checkpoint decision: one test per reason, PASS, several reasons at once, the prefix
//! lookups, determinism.

use std::sync::Arc;

use super::*;
use crate::agreement::{DirectionTerms, ManifestTerms, SignedAgreement, Termination};
use crate::feed::{FeedEntry, FeedState, Statement};
use crate::identity::SubjectHash;
use crate::keys::NodeKey;
use crate::manifest::{sign, Manifest};
use crate::status::HealthStatus::Green;
use crate::testkit::*;
use crate::trust::PeerFeed;
use ManifestReason as R;

/// Anhui's node key: seed `[0x34; 32]`.
fn ah_key() -> NodeKey {
    key(0x34)
}

/// Inside the fixture trip's window: an hour after its planned departure.
fn at() -> UnixTime {
    NOW + 2 * 3600
}

/// A Sichuan–`here` agreement whose Sichuan -> `here` direction accepts `terms`, edited by
/// `edit`.
fn agreement(
    here: (u32, &NodeKey),
    terms: ManifestTerms,
    edit: impl FnOnce(&mut DirectionTerms),
) -> SignedAgreement {
    let mut sc_here = direction(SC, here.0, status_map(&[(Green, Green)]));
    sc_here.manifests = terms;
    edit(&mut sc_here);
    let back = direction(here.0, SC, status_map(&[(Green, Green)]));
    conclude(
        agreement_body((SC, &sc_key()), here, vec![sc_here, back]),
        &sc_key(),
        here.1,
    )
}

/// Sichuan's feed: the genesis of [`sc_key`] 40 days before [`NOW`], then `entries`, each
/// made from the previous one.
fn sc_feed(entries: Vec<(UnixTime, Statement, NodeKey)>) -> FeedState {
    let g = genesis(SC, &sc_key(), NOW - 40 * DAY);
    let mut f = FeedState::new(prov(SC));
    f.apply(&g).unwrap();
    let mut prev = g;
    for (time, s, signer) in entries {
        let e = FeedEntry::sign(prov(SC), Some(&prev), time, s, &signer);
        f.apply(&e).unwrap();
        prev = e;
    }
    f
}

/// Sichuan's feed with `statements` signed by [`sc_key`] a day before [`NOW`].
fn sc_revocations(statements: Vec<Statement>) -> FeedState {
    sc_feed(
        statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| (NOW - DAY + i as u64, s, sc_key()))
            .collect(),
    )
}

/// An Anhui checkpoint with `agreements` and, if given, Sichuan's feed synced at [`NOW`].
fn anhui(agreements: Vec<SignedAgreement>, feed: Option<FeedState>) -> TrustSnapshot {
    let mut t = snapshot(AH, &ah_key(), agreements);
    if let Some(f) = feed {
        t.set_peer_feed(PeerFeed {
            state: Arc::new(f),
            synced_at: NOW,
        });
    }
    t
}

/// The usual Anhui checkpoint: transit agreed, Sichuan's feed held with `statements`.
fn anhui_with(statements: Vec<Statement>) -> TrustSnapshot {
    anhui(
        vec![agreement((AH, &ah_key()), ManifestTerms::transit(), |_| {})],
        Some(sc_revocations(statements)),
    )
}

fn manifest(people: usize) -> String {
    sign(&trip(people), &sc_key())
}

/// The reasons' identifiers and seats of a verdict.
fn reasons(v: &ManifestVerdict) -> Vec<(&'static str, Option<usize>)> {
    v.reasons()
        .iter()
        .map(|r| (r.reason.as_str(), r.seat))
        .collect()
}

/// The one reason of a STOP.
fn only(v: &ManifestVerdict) -> ManifestReason {
    assert_eq!(v.reasons().len(), 1, "{v:?}");
    v.reasons()[0].reason
}

/// A cti whose first 6 bytes are those of the rider at `seat`.
fn cti_of(seat: usize) -> [u8; 16] {
    let mut c = [0x11u8; 16];
    c[..6].copy_from_slice(&rider(seat).cti);
    c
}

/// A subject revocation of the rider at `seat`'s subject prefix, for codes before `before`.
fn subject_of(seat: usize, before: UnixTime) -> Statement {
    let mut h = [0x22u8; 8];
    h[..4].copy_from_slice(&rider(seat).subject);
    Statement::RevokeSubject {
        subject_hash: SubjectHash(h),
        before,
    }
}

#[test]
fn a_valid_manifest_passes_with_its_headcount_and_the_people_not_rechecked() {
    let v = check(&manifest(10), &anhui_with(vec![]), at(), None);
    let ManifestVerdict::Pass(p) = v else {
        panic!("{v:?}");
    };
    assert_eq!((p.passengers, p.crew), (9, 1));
    assert_eq!((p.trip_id, p.version), (TRIP_ID, 1));
    assert_eq!((p.origin, p.destination), (511304, 330200));
    assert_eq!(p.transit, vec![prov(AH)]);
    assert_eq!(p.seal_age_secs, 2 * 3600);
    // Seats 2, 3, 5, 6, 8, 9 are Chongqing's and Guizhou's, whose feeds Anhui does not hold.
    assert_eq!(p.not_rechecked, 6);
    assert_eq!(p.role, ManifestRole::Transit);
}

#[test]
fn reason_ids_are_those_of_the_transport_doc() {
    let ids: Vec<&str> = ManifestReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        ids,
        [
            "malformed",
            "unknown_issuer",
            "unknown_key",
            "bad_signature",
            "key_withdrawn",
            "key_retired",
            "no_agreement",
            "agreement_not_in_force",
            "agreement_terminated",
            "manifests_not_agreed",
            "trust_stale",
            "before_window",
            "after_window",
            "superseded",
            "revoked",
        ]
    );
}

#[test]
fn malformed() {
    let v = check("HCMR1:NCF", &anhui_with(vec![]), at(), None);
    assert_eq!(only(&v), R::Malformed);
    assert!(v.reasons()[0].detail.starts_with("prefix.foreign"));
    let ManifestVerdict::Stop(s) = v else {
        panic!("a STOP");
    };
    assert_eq!((s.trip_id, s.version), (None, None));
}

#[test]
fn unknown_issuer() {
    let v = check(&manifest(3), &anhui(vec![], None), at(), None);
    assert_eq!(only(&v), R::UnknownIssuer);
}

#[test]
fn unknown_key() {
    let s = sign(&trip(3), &sc_new_key());
    assert_eq!(
        only(&check(&s, &anhui_with(vec![]), at(), None)),
        R::UnknownKey
    );
}

#[test]
fn bad_signature() {
    let s = manifest(3);
    let mut cose = base45::decode(&s[PREFIX_LEN..]).unwrap();
    let last = cose.len() - 1;
    cose[last] ^= 0x01;
    let forged = crate::manifest::encoding::wrap(&cose);
    let v = check(&forged, &anhui_with(vec![]), at(), None);
    assert_eq!(only(&v), R::BadSignature);
}

const PREFIX_LEN: usize = crate::manifest::PREFIX.len();

#[test]
fn key_withdrawn() {
    // Rotated out after the seal (so not retired before it), then withdrawn.
    let feed = sc_feed(vec![
        (NOW + 10, rotation_statement(&sc_new_key()), sc_key()),
        (
            NOW + 20,
            Statement::KeyWithdrawal {
                key: sc_key().public(),
            },
            sc_new_key(),
        ),
    ]);
    let t = anhui(
        vec![agreement((AH, &ah_key()), ManifestTerms::transit(), |_| {})],
        Some(feed),
    );
    assert_eq!(only(&check(&manifest(3), &t, at(), None)), R::KeyWithdrawn);
}

fn rotation_statement(new: &NodeKey) -> Statement {
    Statement::KeyRotation {
        key: new.public(),
        pop: crate::feed::proof_of_possession(prov(SC), new),
    }
}

#[test]
fn key_retired() {
    let feed = sc_feed(vec![(
        NOW - DAY,
        rotation_statement(&sc_new_key()),
        sc_key(),
    )]);
    let t = anhui(
        vec![agreement((AH, &ah_key()), ManifestTerms::transit(), |_| {})],
        Some(feed),
    );
    assert_eq!(only(&check(&manifest(3), &t, at(), None)), R::KeyRetired);
    // Signed by the new key, it passes.
    let renewed = sign(&trip(3), &sc_new_key());
    assert!(check(&renewed, &t, at(), None).passed());
}

#[test]
fn no_agreement() {
    let t = anhui(vec![], Some(sc_revocations(vec![])));
    assert_eq!(only(&check(&manifest(3), &t, at(), None)), R::NoAgreement);
}

#[test]
fn agreement_not_in_force() {
    let a = agreement((AH, &ah_key()), ManifestTerms::transit(), |d| {
        d.effective_from = NOW + 10 * DAY;
    });
    let t = anhui(vec![a], Some(sc_revocations(vec![])));
    let v = check(&manifest(3), &t, at(), None);
    assert_eq!(only(&v), R::AgreementNotInForce);
    assert!(v.reasons()[0].detail.starts_with("in force from"));
}

#[test]
fn agreement_terminated() {
    let mut t = anhui_with(vec![]);
    t.add_termination(Termination::sign(
        AGREEMENT_ID,
        prov(AH),
        NOW,
        NOW,
        &ah_key(),
    ))
    .unwrap();
    let v = check(&manifest(3), &t, at(), None);
    assert_eq!(only(&v), R::AgreementTerminated);
}

#[test]
fn manifests_not_agreed() {
    let none = anhui(
        vec![agreement((AH, &ah_key()), ManifestTerms::none(), |_| {})],
        Some(sc_revocations(vec![])),
    );
    assert_eq!(
        only(&check(&manifest(3), &none, at(), None)),
        R::ManifestsNotAgreed
    );
    // Zhejiang is the destination: its check is an arrival, which a transit term does not cover.
    let zj = |terms| {
        snapshot(
            ZJ,
            &zj_key(),
            vec![agreement((ZJ, &zj_key()), terms, |_| {})],
        )
    };
    let v = check(&manifest(3), &zj(ManifestTerms::transit()), at(), None);
    assert_eq!(only(&v), R::ManifestsNotAgreed);
    let v = check(&manifest(3), &zj(ManifestTerms::arrival()), at(), None);
    let ManifestVerdict::Pass(p) = v else {
        panic!("{v:?}");
    };
    assert_eq!(p.role, ManifestRole::Arrival);
    assert_eq!(p.not_rechecked, 3);
}

#[test]
fn trust_stale() {
    let a = agreement((AH, &ah_key()), ManifestTerms::transit(), |d| {
        d.max_trust_age_secs = 3600;
    });
    // Synced at NOW, checked two hours later.
    let t = anhui(vec![a.clone()], Some(sc_revocations(vec![])));
    let v = check(&manifest(3), &t, at(), None);
    assert_eq!(only(&v), R::TrustStale);
    // Never synced: the agreement's pinned key still checks the signature.
    let v = check(&manifest(3), &anhui(vec![a], None), at(), None);
    assert_eq!(only(&v), R::TrustStale);
    assert!(v.reasons()[0].detail.contains("never synced"));
}

#[test]
fn before_window() {
    let t = anhui_with(vec![]);
    // Departure is NOW + 1 h: accepted from NOW on.
    assert_eq!(
        only(&check(&manifest(3), &t, NOW - 1, None)),
        R::BeforeWindow
    );
    assert!(check(&manifest(3), &t, NOW, None).passed());
}

#[test]
fn after_window() {
    let t = anhui_with(vec![]);
    let end = trip(3).arrival + LATE_SECS;
    assert!(check(&manifest(3), &t, end, None).passed());
    assert_eq!(
        only(&check(&manifest(3), &t, end + 1, None)),
        R::AfterWindow
    );
}

#[test]
fn superseded() {
    let t = anhui_with(vec![]);
    let v = check(&manifest(3), &t, at(), Some(2));
    assert_eq!(only(&v), R::Superseded);
    assert!(v.reasons()[0].detail.contains("version 2"));
    assert!(check(&manifest(3), &t, at(), Some(1)).passed());
}

#[test]
fn revoked_by_a_cti_whose_first_six_bytes_match() {
    let t = anhui_with(vec![Statement::RevokeCode { cti: cti_of(4) }]);
    let v = check(&manifest(10), &t, at(), None);
    assert_eq!(only(&v), R::Revoked);
    assert_eq!(v.reasons()[0].seat, Some(4));
    assert_eq!(v.reasons()[0].issuer, Some(prov(SC)));
    // Another cti with only 5 of those bytes matches nobody.
    let mut near = cti_of(4);
    near[5] ^= 0x80;
    let t = anhui_with(vec![Statement::RevokeCode { cti: near }]);
    assert!(check(&manifest(10), &t, at(), None).passed());
}

#[test]
fn a_subject_revocation_counts_only_when_dated_after_the_reconstructed_iat() {
    let iat = rider(7).iat_bound(trip(10).sealed_at);
    assert_eq!(iat, NOW - 49 * 60);
    let after = anhui_with(vec![subject_of(7, iat + 1)]);
    let v = check(&manifest(10), &after, at(), None);
    assert_eq!(reasons(&v), vec![("revoked", Some(7))]);
    let at_iat = anhui_with(vec![subject_of(7, iat)]);
    assert!(check(&manifest(10), &at_iat, at(), None).passed());
}

#[test]
fn a_revocation_by_an_issuer_whose_feed_is_not_held_is_not_seen() {
    // Seat 2 is Chongqing's: Anhui holds only Sichuan's feed, even if it revokes that prefix.
    let t = anhui_with(vec![Statement::RevokeCode { cti: cti_of(2) }]);
    assert!(check(&manifest(10), &t, at(), None).passed());
}

#[test]
fn a_stop_lists_every_reason_and_every_seat() {
    let t = anhui_with(vec![
        subject_of(7, NOW),
        Statement::RevokeCode { cti: cti_of(4) },
    ]);
    let late = trip(10).arrival + LATE_SECS + 1;
    let v = check(&manifest(10), &t, late, Some(3));
    assert_eq!(
        reasons(&v),
        vec![
            ("after_window", None),
            ("superseded", None),
            ("revoked", Some(4)),
            ("revoked", Some(7)),
        ]
    );
    let ManifestVerdict::Stop(s) = v else {
        panic!("a STOP");
    };
    assert_eq!((s.trip_id, s.version), (Some(TRIP_ID), Some(1)));
}

#[test]
fn an_own_province_manifest_needs_no_agreement_and_uses_the_own_feed() {
    let t = snapshot(SC, &sc_key(), vec![]);
    let v = check(&manifest(10), &t, at(), None);
    let ManifestVerdict::Pass(p) = v else {
        panic!("{v:?}");
    };
    assert_eq!(p.not_rechecked, 6);
}

#[test]
fn the_decision_is_deterministic() {
    let t = anhui_with(vec![Statement::RevokeCode { cti: cti_of(1) }]);
    let m: Manifest = trip(55);
    let s = sign(&m, &sc_key());
    for (now, seen) in [(at(), None), (NOW - 10, Some(4)), (at(), Some(1))] {
        let first = check(&s, &t, now, seen);
        assert_eq!(first, check(&s, &t, now, seen));
        assert_eq!(first, check(&s, &t.clone(), now, seen));
    }
}
