//! A sound bundle: opened with the kid or the key, and verifying codes offline as the node does.

use super::*;

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
