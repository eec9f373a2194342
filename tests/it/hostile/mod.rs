//! Hostile-input corpus: a table of named, generated inputs, each with the exact error or
//! verification reason it must produce, run through the public API only. Every case runs inside
//! `catch_unwind`; stateful cases (FeedState, TrustSnapshot) also check that nothing changed.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ciborium::value::{Integer, Value};

use hcmr::agreement::{AgreementBody, AgreementError, AgreementSignature, SignedAgreement};
use hcmr::bundle::{BundleContent, BundleError, BundlePeer, TrustAnchor};
use hcmr::code::{transport, Claims, HealthCode};
use hcmr::feed::{proof_of_possession, FeedEntry, FeedError, FeedState, Statement};
use hcmr::identity::SubjectHash;
use hcmr::keys::{NodeKey, PublicKey};
use hcmr::status::HealthStatus::{Green, Red, Yellow};
use hcmr::trust::{Policy, TrustSnapshot};
use hcmr::verify::verify;

mod agreements;
mod bundles;
mod claims;
mod cose;
mod encoding;
mod feeds;
mod flips;
mod keys;
mod manifests;

// CBOR as the signed formats write it.
use hcmr_core::cbor::encode as cbor;
// The shared fixtures: times, provinces, seeded keys, agreement terms and snapshots.
use hcmr_core::testkit::{
    agreement_signature, code_with_kid, conclude as conclude_by, gd_key, prov, rotation,
    sc_gd_body, sc_key, sc_new_key as sc_key2, snapshot, stranger, DAY, GD, JS, NOW, SC,
};

/// Sichuan proposes, Guangdong accepts. Version 1 maps Sichuan's yellow to yellow; version 2
/// (an amendment) no longer recognizes Sichuan's yellow at all. Sichuan pins `sc_keys`.
fn body(version: u32, sc_keys: Vec<PublicKey>) -> AgreementBody {
    let sc_gd: &[_] = if version == 1 {
        &[(Green, Green), (Yellow, Yellow), (Red, Red)]
    } else {
        &[(Green, Green), (Red, Red)]
    };
    let mut b = sc_gd_body(version, sc_gd, &[(Green, Green), (Red, Red)]);
    b.proposer.keys = sc_keys;
    b
}

/// `b` proposed by Sichuan and accepted by Guangdong.
fn conclude(b: AgreementBody) -> SignedAgreement {
    conclude_by(b, &sc_key(), &gd_key())
}

fn agreement(version: u32) -> SignedAgreement {
    conclude(body(version, vec![sc_key().public()]))
}

/// The genesis of province `p`'s feed for `key`, 40 days before `NOW` (as in the snapshots).
fn genesis(p: u32, key: &NodeKey) -> FeedEntry {
    hcmr_core::testkit::genesis(p, key, NOW - 40 * DAY)
}

/// The entry after `prev` in Sichuan's feed, made at `NOW`, stating `statement`, signed by `key`.
fn sc_next(prev: &FeedEntry, statement: Statement, key: &NodeKey) -> FeedEntry {
    FeedEntry::sign(prov(SC), Some(prev), NOW, statement, key)
}

/// A revocation of the code id of sixteen `b` bytes.
fn revoke(b: u8) -> Statement {
    Statement::RevokeCode { cti: [b; 16] }
}

/// Guangdong's node with `agreements`.
fn gd_node(agreements: Vec<SignedAgreement>) -> TrustSnapshot {
    snapshot(GD, &gd_key(), agreements)
}

/// What a TrustSnapshot exposes about its agreements with Sichuan, for before/after comparison.
fn snapshot_view(t: &TrustSnapshot) -> Vec<(u32, Vec<u8>, bool)> {
    t.agreements_with(prov(SC))
        .iter()
        .map(|a| {
            (
                a.agreement.body().version,
                a.agreement.encoded().to_vec(),
                a.termination.is_some(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- code builders

/// Sichuan's green code's claims (the testkit's current code).
fn claims() -> Claims {
    hcmr_core::testkit::claims("510000", 1)
}

fn int(v: i64) -> Value {
    Value::Integer(Integer::from(v))
}
fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
/// `HCMR1:` + Base45 of raw bytes, built by hand.
fn b45(data: &[u8]) -> String {
    format!("HCMR1:{}", base45::encode(data))
}
/// `HCMR1:` + Base45 of COSE bytes (the transport; no compression).
fn wrap(cose: &[u8]) -> String {
    transport::wrap(cose)
}

fn std_protected(kid: &[u8]) -> Vec<(Value, Value)> {
    vec![(int(1), int(-8)), (int(4), bytes(kid))]
}

/// An untagged COSE_Sign1 (as hcmr writes it) with a protected header map of `prot` entries, signed by `key` over the
/// real Sig_structure.
fn sign1_with(
    prot: Vec<(Value, Value)>,
    unprot: Vec<(Value, Value)>,
    payload: &[u8],
    key: &NodeKey,
) -> Vec<u8> {
    let prot_bytes = cbor(&Value::Map(prot));
    sign1_raw(&prot_bytes, unprot, Some(payload), key, None)
}

fn sign1_raw(
    prot_bytes: &[u8],
    unprot: Vec<(Value, Value)>,
    payload: Option<&[u8]>,
    key: &NodeKey,
    sig_override: Option<Vec<u8>>,
) -> Vec<u8> {
    let tbs = cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        bytes(prot_bytes),
        bytes(b""),
        bytes(payload.unwrap_or(b"")),
    ]));
    let sig = sig_override.unwrap_or_else(|| key.sign(&tbs).to_vec());
    cbor(&Value::Array(vec![
        bytes(prot_bytes),
        Value::Map(unprot),
        payload.map_or(Value::Null, bytes),
        bytes(&sig),
    ]))
}

/// A standard, correctly signed code of `payload` by the Sichuan key.
fn signed_payload(payload: &[u8]) -> String {
    let k = sc_key();
    wrap(&sign1_with(std_protected(&k.kid().0), vec![], payload, &k))
}

fn good_cose() -> Vec<u8> {
    hcmr::code::cose::sign(claims().to_cbor(), &sc_key()).bytes
}
fn good_code() -> String {
    hcmr_core::testkit::code(&claims(), &sc_key())
}
/// A yellow code of Sichuan's (status 2), as [`good_code`] otherwise.
fn sc_yellow_code() -> String {
    hcmr_core::testkit::code(&hcmr_core::testkit::claims("510000", 2), &sc_key())
}

fn claims_map() -> Vec<(Value, Value)> {
    let v: Value = ciborium::from_reader(claims().to_cbor().as_slice()).unwrap();
    match v {
        Value::Map(m) => m,
        _ => unreachable!(),
    }
}
fn set(map: &mut [(Value, Value)], key: i64, v: Value) {
    for (k, old) in map.iter_mut() {
        if *k == int(key) {
            *old = v;
            return;
        }
    }
    panic!("no key {key}");
}
/// Claims with the top-level claim `key` set to `v`.
fn with_claim(key: i64, v: Value) -> String {
    let mut m = claims_map();
    set(&mut m, key, v);
    signed_payload(&cbor(&Value::Map(m)))
}
/// Claims with element `i` of the body array set to `v`: 0 status, 1 status valid until,
/// 2 masked name, 3 document type, 4 masked document number, 5 subject hash.
fn with_body(i: usize, v: Value) -> String {
    with_body_items(|items| items[i] = v)
}
/// Claims whose body array `edit` changed.
fn with_body_items(edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut m = claims_map();
    let body = m
        .iter_mut()
        .find_map(|(k, v)| match v {
            Value::Array(items) if *k == int(-38962) => Some(items),
            _ => None,
        })
        .expect("the body array");
    edit(body);
    signed_payload(&cbor(&Value::Map(m)))
}

/// A correctly signed code whose protected header marks `label` critical (and carries it).
fn crit_code(label: Value) -> String {
    let k = sc_key();
    let mut p = std_protected(&k.kid().0);
    p.push((int(2), Value::Array(vec![label.clone()])));
    if label != int(4) {
        p.push((label, int(1)));
    }
    wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k))
}

/// Flips bit 0 of COSE byte `i` and re-wraps.
fn flip(mut cose: Vec<u8>, i: usize) -> String {
    cose[i] ^= 0x01;
    wrap(&cose)
}
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("sub-slice present")
}

// ---------------------------------------------------------------- outcomes

fn decode_outcome(s: &str) -> String {
    match HealthCode::decode(s) {
        Ok(_) => "decoded".into(),
        Err(e) => e.code().into(),
    }
}

/// The verdict at Guangdong's node (concluded v1 agreement with Sichuan). Never recognized
/// with a status unless the reason is ok.
fn verify_outcome_at(s: &str, node: &TrustSnapshot) -> String {
    let v = verify(s, node, NOW);
    assert_eq!(v.recognized(), v.local_status.is_some());
    if v.reason == hcmr::verify::Reason::Malformed {
        assert!(!v.signature_verified);
    }
    v.reason.as_str().into()
}
fn verify_outcome(s: &str) -> String {
    verify_outcome_at(s, &gd_node(vec![agreement(1)]))
}

fn agreement_err(r: Result<(), AgreementError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn feed_err(e: &FeedError) -> String {
    match e {
        FeedError::Decode(_) => "Decode".into(),
        FeedError::WrongProvince { .. } => "WrongProvince".into(),
        FeedError::Gap { expected, got } => format!("Gap({expected},{got})"),
        FeedError::BrokenChain(s) => format!("BrokenChain({s})"),
        FeedError::BadSignature(s) => format!("BadSignature({s})"),
        FeedError::BadGenesis(s) => format!("BadGenesis({s})"),
        FeedError::BadRotation(s) => format!("BadRotation({s})"),
        FeedError::BadWithdrawal(s) => format!("BadWithdrawal({s})"),
        FeedError::TimeWentBack(s) => format!("TimeWentBack({s})"),
        FeedError::BadStatement(s, _) => format!("BadStatement({s})"),
        FeedError::NotAnchored(_) => "NotAnchored".into(),
    }
}

/// Applies `entries` as one batch to Sichuan's genesis-only feed (plus `pre` applied first);
/// reports the error, and "STATE CHANGED" if a refused batch altered the state.
fn feed_outcome(pre: &[FeedEntry], entries: &[FeedEntry]) -> String {
    let mut state = FeedState::clone(&hcmr_core::testkit::own_feed(SC, &sc_key()));
    state.apply_all(pre).unwrap();
    let before = state.clone();
    match state.apply_all(entries) {
        Ok(()) => "ok".into(),
        Err(e) => {
            if state != before {
                return format!("{} STATE CHANGED", feed_err(&e));
            }
            feed_err(&e)
        }
    }
}

fn bundle_err(r: Result<(BundleContent, TrustSnapshot), BundleError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(BundleError::Malformed(_)) => "Malformed".into(),
        Err(BundleError::Truncated(_)) => "Truncated".into(),
        Err(BundleError::UntrustedSigner { .. }) => "UntrustedSigner".into(),
        Err(BundleError::BadSignature) => "BadSignature".into(),
        Err(BundleError::TooOld { .. }) => "TooOld".into(),
        Err(BundleError::FromTheFuture) => "FromTheFuture".into(),
        Err(BundleError::BadContent(_)) => "BadContent".into(),
    }
}

fn gd_bundle_content() -> BundleContent {
    BundleContent {
        province: prov(GD),
        exported_at: NOW - 60,
        policy: Policy::default(),
        own_feed: vec![genesis(GD, &gd_key())],
        peers: vec![BundlePeer {
            province: prov(SC),
            synced_at: NOW - 120,
            entries: vec![genesis(SC, &sc_key())],
        }],
        agreements: vec![agreement(1)],
        terminations: vec![],
    }
}
fn open_gd(bytes: &[u8]) -> String {
    bundle_err(hcmr::bundle::open(
        bytes,
        TrustAnchor::Key(gd_key().public()),
        NOW,
        DAY,
    ))
}

/// An agreement whose given signature is replaced; the other is genuine.
fn forge(
    a: &SignedAgreement,
    proposer: Option<AgreementSignature>,
    acceptor: Option<AgreementSignature>,
) -> SignedAgreement {
    SignedAgreement::from_parts(
        a.encoded().to_vec(),
        proposer.or(a.proposer_signature),
        acceptor.or(a.acceptor_signature),
    )
    .unwrap()
}

/// Adds a hostile agreement to Guangdong's node: the result, plus "STATE CHANGED" if the
/// snapshot's agreements or the verdict of a Sichuan yellow code changed.
fn add_to_gd(base: Vec<SignedAgreement>, hostile: SignedAgreement) -> String {
    let mut node = gd_node(base);
    let yellow = sc_yellow_code();
    let before = (snapshot_view(&node), verify(&yellow, &node, NOW));
    let r = agreement_err(node.add_agreement(hostile));
    let after = (snapshot_view(&node), verify(&yellow, &node, NOW));
    if before != after {
        return format!("{r} STATE CHANGED");
    }
    r
}

// ---------------------------------------------------------------- the table

type Run = Box<dyn Fn() -> String>;

fn case(
    name: &'static str,
    expected: &'static str,
    run: impl Fn() -> String + 'static,
) -> (&'static str, &'static str, Run) {
    (name, expected, Box::new(run))
}

/// Every family's cases, in one table.
fn cases() -> Vec<(&'static str, &'static str, Run)> {
    [
        encoding::cases(),
        cose::cases(),
        flips::cases(),
        keys::cases(),
        manifests::cases(),
        claims::cases(),
        agreements::cases(),
        feeds::cases(),
        bundles::cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs the cases of one family, each inside `catch_unwind`: every one gives its expected
/// outcome and none panics (one test per family, so one family's failure hides no other).
fn run_cases(family: &str, cases: &[(&'static str, &'static str, Run)]) {
    let mut failures = Vec::new();
    for (name, expected, run) in cases {
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(got) if got == *expected => {}
            Ok(got) => failures.push(format!("{name}: expected {expected:?}, got {got:?}")),
            Err(_) => failures.push(format!("{name}: PANICKED")),
        }
    }
    let ok = cases.len() - failures.len();
    println!(
        "hostile {family}: {} cases, {} as expected",
        cases.len(),
        ok
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The table as a whole (each family's test runs its cases): names are unique across the
/// families, and there are at least 60 cases.
#[test]
fn hostile_corpus() {
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    for (name, _, _) in &cases {
        assert!(names.insert(*name), "duplicate case name {name}");
    }
    assert!(cases.len() >= 60, "only {} cases", cases.len());
}

// Found by this corpus and fixed: docs/code-format.md section 8.6 says any `crit` parameter
// gives `cose.crit`, and only a
// malformed header (a label twice, an empty `crit` array, an empty kid) gives `cose.structure`.
// A `crit` array naming an unregistered, non-private integer label (e.g. 99) is well-formed
// (RFC 9052: `crit => [+ label]`, label = int / tstr). coset alone refuses to parse it
// (UnregisteredIanaNonPrivateValue); the decoder checks `crit` first, so it is `cose.crit`.
#[test]
fn crit_with_unregistered_label_is_cose_crit() {
    let got = decode_outcome(&crit_code(int(99)));
    assert_eq!(got, "cose.crit");
}

#[test]
fn crit_with_unregistered_label_is_refused_anyway() {
    // Whatever the code, the input never decodes.
    let got = catch_unwind(|| decode_outcome(&crit_code(int(99)))).expect("no panic");
    assert_ne!(got, "decoded");
}
