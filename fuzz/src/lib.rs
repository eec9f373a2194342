//! Fixtures and harness shared by the fuzz targets, `make_seeds` and `tests/it/hostile_corpus.rs`
//! (which includes this file with `#[path]`): deterministic keys, codes, agreements, feeds and a
//! bundle built with hcmr's public API, and one function per fuzz target that runs every decoder
//! of that target on the input, asserts the invariants (a panic is a finding) and returns the
//! outcome of each decoder as a stable string.
//!
//! Outcome strings: `ok`, a [`CodeError::code`] / [`InspectError::code`] (`base45.length`), a
//! verification reason (`malformed`, `bad_signature`), or for agreements, feeds and bundles the
//! error's variant name (`Decode`, `NotCanonical`, `BadSignature`); for trip manifests and
//! records (module `trips`) the error's identifier with the field it names
//! (`manifest.field(people)`, `record.not_array(reason)`) and the checkpoint's verdict (`pass`,
//! `bad_signature`, `revoked@3`).
//!
//! The invariants ("never verify"): the fuzzer cannot sign, so whatever verifies must be one of
//! the fixtures' own signed messages. A code whose signature verifies under a fixture key carries
//! fixture claims; an agreement whose signatures check has fixture body bytes; a feed batch that
//! applies consists of fixture entries; a bundle that opens is the fixture bundle.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use ciborium::value::Value;

use hcmr::agreement::{AgreementBody, SignedAgreement, Termination};
use hcmr::bundle::{BundleContent, BundlePeer, TrustAnchor};
use hcmr::code::{cose, Claims, CodeError, HealthCode, Subject, MAX_TIME};
use hcmr::feed::{proof_of_possession, FeedEntry, FeedState, Statement};
use hcmr::identity::{DocumentType, SubjectHash};
use hcmr::inspect::{InspectError, Scheme};
use hcmr::keys::{NodeKey, PublicKey};
use hcmr::status::HealthStatus::{self, Green, Red, Yellow};
use hcmr::trust::{PeerFeed, Policy, TrustSnapshot};
use hcmr::UnixTime;

// Trip manifests, check reports and receipts (docs/transport.md): their fixtures and targets.
// The path keeps the module beside this file when tests/it/hostile_corpus.rs includes it.
#[path = "trips.rs"]
pub mod trips;
pub use trips::{event_target, manifest_target, notice_target, receipt_target, report_target};

// The shared fixtures: the fixed "now", provinces and seeded keys. Sichuan's first key is
// retired by the rotation in its feed; its second (`sc_key2`) is the current one.
pub use hcmr_core::testkit::{gd_key, prov, sc_key, sc_new_key as sc_key2, DAY, GD, NOW, SC};

/// One fixture code: its claims, the key that signed it, and the string.
pub struct FixtureCode {
    /// A file-name-friendly label.
    pub name: &'static str,
    /// The claims.
    pub claims: Claims,
    /// The code string.
    pub code: String,
    /// Its code id (the signature's first 16 bytes).
    pub cti: hcmr::code::Cti,
    /// The COSE_Sign1 bytes inside it.
    pub cose: Vec<u8>,
}

/// Everything the targets compare against, built once.
pub struct Fixtures {
    /// Codes: Sichuan (current key, retired key, unknown status) and Guangdong (own).
    pub codes: Vec<FixtureCode>,
    /// Every fixture public key.
    pub keys: Vec<PublicKey>,
    /// Version 1, concluded.
    pub agreement_v1: SignedAgreement,
    /// Version 2, proposed only (no acceptor signature).
    pub agreement_v2_proposed: SignedAgreement,
    /// Version 1's terms with a window that ends in 200 years (times in CBOR's 8-byte form),
    /// concluded.
    pub agreement_long: SignedAgreement,
    /// Guangdong's termination of the agreement, effective in 100 days.
    pub termination: Termination,
    /// Sichuan's feed: genesis, revoke code, revoke subject, rotation, revoke code (new key).
    pub sc_feed: Vec<FeedEntry>,
    /// Guangdong's feed: genesis, revoke code.
    pub gd_feed: Vec<FeedEntry>,
    /// Guangdong's signed bundle of all of the above.
    pub bundle: Vec<u8>,
    /// Guangdong's trust snapshot, the node that verifies.
    pub snapshot: TrustSnapshot,
    /// Guangdong's snapshot before any agreement (for adding fuzzed agreements).
    pub empty_snapshot: TrustSnapshot,
    /// Sichuan's feed as applied.
    pub sc_state: Arc<FeedState>,
}

/// The testkit's current claims, valid two weeks, for a subject of its own.
fn claims(iss: u32, seed: u8, status: u64, doc: DocumentType, name: &str, number: &str) -> Claims {
    Claims {
        status_valid_until: NOW + 14 * DAY,
        subject: Subject {
            masked_name: name.into(),
            document_type: doc,
            masked_document_number: number.into(),
            subject_hash: SubjectHash([seed ^ 0xa5; 8]),
        },
        ..hcmr_core::testkit::claims(&iss.to_string(), status)
    }
}

/// Version 1 recognizes Sichuan's yellow as yellow at Guangdong; version 2 as red.
fn agreement_body(version: u32) -> AgreementBody {
    let sc_gd: &[_] = if version == 1 {
        &[(Green, Green), (Yellow, Yellow), (Red, Red)]
    } else {
        &[(Green, Green), (Yellow, Red), (Red, Red)]
    };
    hcmr_core::testkit::sc_gd_body(version, sc_gd, &[(Green, Green), (Red, Red)])
}

fn feed(province: u32, steps: Vec<(UnixTime, Statement, NodeKey)>) -> Vec<FeedEntry> {
    let mut out: Vec<FeedEntry> = Vec::new();
    for (time, statement, key) in steps {
        let e = FeedEntry::sign(prov(province), out.last(), time, statement, &key);
        out.push(e);
    }
    out
}

fn build() -> Fixtures {
    let sc_codes = [
        (
            "sc_green",
            sc_key2(),
            claims(
                SC,
                0xc7,
                1,
                DocumentType::ResidentIdentityCard,
                "张*三",
                "5101*1234",
            ),
        ),
        (
            "sc_yellow_passport",
            sc_key2(),
            claims(SC, 0xc8, 2, DocumentType::Passport, "L*i", "E123*5678"),
        ),
        (
            "sc_red_retired_key",
            sc_key(),
            claims(
                SC,
                0xc9,
                3,
                DocumentType::HkMacaoTravelPermit,
                "陈*",
                "C1*89",
            ),
        ),
        (
            "sc_unknown_status",
            sc_key2(),
            claims(SC, 0xca, 7, DocumentType::Other, "欧阳*华", "X123*7891"),
        ),
        (
            "gd_own_green",
            gd_key(),
            claims(
                GD,
                0xcb,
                1,
                DocumentType::ResidentIdentityCard,
                "黄*明",
                "4405*0014",
            ),
        ),
    ];
    let codes = sc_codes
        .into_iter()
        .map(|(name, key, claims)| {
            let signed = cose::sign(claims.to_cbor(), &key);
            let issued = hcmr::code::encode_with_cti(&claims, &key);
            FixtureCode {
                name,
                code: issued.code,
                cti: issued.cti,
                claims,
                cose: signed.bytes,
            }
        })
        .collect();

    let mut agreement_v1 =
        SignedAgreement::propose(agreement_body(1), &sc_key()).expect("fixture agreement");
    agreement_v1.accept(&gd_key()).expect("fixture agreement");
    let agreement_v2_proposed =
        SignedAgreement::propose(agreement_body(2), &sc_key()).expect("fixture agreement");
    let mut long = agreement_body(1);
    for d in &mut long.directions {
        d.effective_until = NOW + 200 * 365 * DAY;
    }
    let mut agreement_long = SignedAgreement::propose(long, &sc_key()).expect("fixture agreement");
    agreement_long.accept(&gd_key()).expect("fixture agreement");
    let termination = Termination::sign(
        hcmr_core::testkit::AGREEMENT_ID,
        prov(GD),
        NOW + 100 * DAY,
        NOW - DAY,
        &gd_key(),
    );

    let k2 = sc_key2();
    let sc_feed = feed(
        SC,
        vec![
            (
                NOW - 40 * DAY,
                Statement::Genesis {
                    key: sc_key().public(),
                },
                sc_key(),
            ),
            (
                NOW - 35 * DAY,
                Statement::RevokeCode { cti: [0x0c; 16] },
                sc_key(),
            ),
            (
                NOW - 30 * DAY,
                Statement::RevokeSubject {
                    subject_hash: SubjectHash([0x5a; 8]),
                    before: NOW - 30 * DAY,
                },
                sc_key(),
            ),
            (
                NOW - 20 * DAY,
                Statement::KeyRotation {
                    key: k2.public(),
                    pop: proof_of_possession(prov(SC), &k2),
                },
                sc_key(),
            ),
            (
                NOW - 10 * DAY,
                Statement::RevokeCode { cti: [0x0d; 16] },
                sc_key2(),
            ),
        ],
    );
    let gd_feed = feed(
        GD,
        vec![
            (
                NOW - 40 * DAY,
                Statement::Genesis {
                    key: gd_key().public(),
                },
                gd_key(),
            ),
            (
                NOW - 5 * DAY,
                Statement::RevokeCode { cti: [0x0e; 16] },
                gd_key(),
            ),
        ],
    );

    let content = BundleContent {
        province: prov(GD),
        exported_at: NOW - 60,
        policy: Policy::default(),
        own_feed: gd_feed.clone(),
        peers: vec![BundlePeer {
            province: prov(SC),
            synced_at: NOW - 120,
            entries: sc_feed.clone(),
        }],
        agreements: vec![agreement_v1.clone()],
        terminations: vec![termination.clone()],
    };
    let bundle = hcmr::bundle::export(&content, &gd_key());

    let mut gd_state = FeedState::new(prov(GD));
    gd_state.apply_all(&gd_feed).expect("fixture feed");
    let empty_snapshot = TrustSnapshot::new(prov(GD), Arc::new(gd_state), Policy::default());
    let mut snapshot = empty_snapshot.clone();
    snapshot
        .add_agreement(agreement_v1.clone())
        .expect("fixture agreement");
    let mut sc_state = FeedState::new(prov(SC));
    sc_state.apply_all(&sc_feed).expect("fixture feed");
    let sc_state = Arc::new(sc_state);
    snapshot.set_peer_feed(PeerFeed {
        state: sc_state.clone(),
        synced_at: NOW - 120,
    });
    snapshot
        .add_termination(termination.clone())
        .expect("fixture termination");

    Fixtures {
        codes,
        keys: vec![sc_key().public(), sc_key2().public(), gd_key().public()],
        agreement_v1,
        agreement_v2_proposed,
        agreement_long,
        termination,
        sc_feed,
        gd_feed,
        bundle,
        snapshot,
        empty_snapshot,
        sc_state,
    }
}

/// The fixtures, built on first use.
pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(build)
}

/// The fixture signing keys: Sichuan's first and second, Guangdong's.
pub fn signing_keys() -> [NodeKey; 3] {
    [sc_key(), sc_key2(), gd_key()]
}

/// The fixture signing key of one of `keys`, if any.
fn signer_for(keys: &[PublicKey]) -> Option<NodeKey> {
    signing_keys()
        .into_iter()
        .find(|k| keys.contains(&k.public()))
}

/// A time the node or the CLI shows (`hcmr::rfc3339`: agreement windows, termination dates,
/// key withdrawals in verdicts) must be showable: at most 9999-12-31T23:59:59Z, the limit of
/// RFC 3339 and of the code's own time claims.
fn assert_showable(t: u64, what: &str) {
    assert!(
        t <= MAX_TIME,
        "{what} {t} is after the year 9999: not showable"
    );
    let _ = hcmr::rfc3339(t);
}

/// Verifies every fixture code at `snap` (Guangdong, at [`NOW`]) and checks the verdicts: a
/// recognized code counts as at least as severe as issued, and never while revoked. The reasons,
/// comma-separated.
fn verify_fixture_codes(snap: &TrustSnapshot) -> String {
    let mut reasons = Vec::new();
    for c in &fixtures().codes {
        let v = hcmr::verify::verify(&c.code, snap, NOW);
        assert_eq!(v.recognized(), v.local_status.is_some(), "verdict {v:?}");
        if let Some(local) = v.local_status {
            let issued = HealthStatus::from_u64(c.claims.status).expect("a colour");
            assert!(
                local >= issued,
                "{issued:?} recognized as the milder {local:?}"
            );
            let revoked = v.issuer.and_then(|p| snap.peer_feed(p)).is_some_and(|p| {
                p.state
                    .is_revoked(&c.cti, &c.claims.subject.subject_hash, c.claims.iat)
            });
            assert!(!revoked, "a revoked code was recognized: {v:?}");
        }
        reasons.push(v.reason.as_str());
    }
    reasons.join(",")
}

/// The name of an error's variant, from its `Debug` form (`BadSignature(3)` -> `BadSignature`).
pub fn variant<E: std::fmt::Debug>(e: &E) -> String {
    format!("{e:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn result<T, E: std::fmt::Debug>(r: &Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => variant(e),
    }
}

fn code_result<T>(r: &Result<T, CodeError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.code().into(),
    }
}

fn inspect_result<T>(r: &Result<T, InspectError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.code().into(),
    }
}

/// Outcomes by decoder name.
pub type Outcomes = BTreeMap<&'static str, String>;

/// Asserts that claims whose signature verified under a fixture key are fixture claims.
fn assert_fixture_claims(claims: &Claims, what: &str) {
    assert!(
        fixtures().codes.iter().any(|c| c.claims == *claims),
        "{what}: a signature verified over claims no fixture signed: {claims:?}"
    );
}

/// The code decoder target: the input as a code string (lossy UTF-8) through the node's decoder
/// (`decode`), the full verification at Guangdong's node (`verify`) and `hcmr inspect`
/// (`inspect`); and the raw bytes as COSE_Sign1 (`cose`, `inspect_cose`) and as CWT claims
/// (`claims`), skipping the transport stages.
pub fn code_target(data: &[u8]) -> Outcomes {
    let f = fixtures();
    let mut out = Outcomes::new();
    let s = String::from_utf8_lossy(data);

    let decoded = HealthCode::decode(&s);
    out.insert("decode", code_result(&decoded));
    if let Ok(hc) = &decoded {
        if f.keys.iter().any(|k| hc.signature_valid(k)) {
            assert_fixture_claims(&hc.claims, "decode");
        }
        // The claims re-encode and decode to themselves.
        assert_eq!(
            Claims::from_cbor(&hc.claims.to_cbor()).as_ref(),
            Ok(&hc.claims)
        );
    }

    let v = hcmr::verify::verify(&s, &f.snapshot, NOW);
    assert_eq!(v.recognized(), v.local_status.is_some(), "verdict {v:?}");
    assert_eq!(
        decoded.is_err(),
        v.reason == hcmr::verify::Reason::Malformed,
        "verdict {v:?}"
    );
    if v.signature_verified || v.recognized() {
        assert!(v.signature_verified, "recognized unverified: {v:?}");
        assert_fixture_claims(v.claims.as_ref().expect("verified claims"), "verify");
    }
    out.insert("verify", v.reason.as_str().into());

    let inspected = hcmr::inspect::inspect(&s);
    if let Ok(i) = &inspected {
        let _ = i.to_json().to_string();
        if let Some(r) = &i.hcmr_decoder {
            assert_eq!(r.is_ok(), decoded.is_ok(), "inspect and decode disagree");
        }
    }
    out.insert("inspect", inspect_result(&inspected));

    let parsed = cose::parse(data);
    out.insert("cose", code_result(&parsed));
    out.insert("claims", code_result(&Claims::from_cbor(data)));
    let icose = hcmr::inspect::decode_cose(data);
    if let Ok(c) = &icose {
        let _ = hcmr::inspect::decode_payload(Scheme::Hcmr, &c.payload);
        let _ = hcmr::inspect::decode_payload(Scheme::EuDcc, &c.payload);
    }
    out.insert("inspect_cose", inspect_result(&icose));
    out
}

/// The agreement decoder target: the input as a stored/exchanged agreement record (`record`,
/// then `signatures` and `snapshot`: adding it to Guangdong's node), as body bytes (`body`) and
/// as a termination record (`termination`, then `termination_check` against the fixture
/// agreement).
pub fn agreement_target(data: &[u8]) -> Outcomes {
    let f = fixtures();
    let mut out = Outcomes::new();

    let record = SignedAgreement::from_record(data);
    out.insert("record", result(&record));
    if let Ok(a) = &record {
        // What decodes re-encodes and decodes to itself, with canonical body bytes.
        assert_eq!(a.body().encode(), a.encoded());
        assert_eq!(SignedAgreement::from_record(&a.to_record()).as_ref(), Ok(a));
        let checked = a.check_both();
        if checked.is_ok() {
            assert!(
                [&f.agreement_v1, &f.agreement_v2_proposed, &f.agreement_long]
                    .iter()
                    .any(|x| x.encoded() == a.encoded()),
                "signatures verified over a body no fixture signed"
            );
        }
        out.insert("signatures", result(&checked));
        let mut snap = f.empty_snapshot.clone();
        let added = snap.add_agreement(a.clone());
        assert!(
            added.is_err() || checked.is_ok(),
            "added an unsigned agreement"
        );
        out.insert("snapshot", result(&added));
    }

    let body = AgreementBody::decode(data);
    if let Ok(b) = &body {
        assert_eq!(b.encode(), data, "a non-canonical body decoded");
        assert_eq!(b.validate(), Ok(()));
        // `hcmr agreement list` shows a received proposal's times.
        assert_showable(b.created_at.secs(), "created_at");
        for d in &b.directions {
            assert_showable(d.effective_from.secs(), "effective_from");
            assert_showable(d.effective_until.secs(), "effective_until");
        }
    }
    out.insert("body", result(&body));

    // Signed mode: a body that pins fixture keys is signed by them, so the fuzzer controls the
    // terms of a concluded agreement, and the fixture codes are verified under it.
    if let Ok(b) = &body {
        if let (Some(pk), Some(ak)) = (signer_for(&b.proposer.keys), signer_for(&b.acceptor.keys)) {
            let mut a = SignedAgreement::propose(b.clone(), &pk).expect("a valid body");
            a.accept(&ak).expect("a pinned acceptor key");
            let mut snap = f.empty_snapshot.clone();
            let added = snap.add_agreement(a);
            if added.is_ok() {
                snap.set_peer_feed(PeerFeed {
                    state: f.sc_state.clone(),
                    synced_at: NOW - 120,
                });
                out.insert("signed_verify", verify_fixture_codes(&snap));
            }
            out.insert("signed_snapshot", result(&added));
        }
    }

    let t = Termination::from_record(data);
    out.insert("termination", result(&t));
    if let Ok(t) = &t {
        assert_eq!(Termination::from_record(&t.to_record()).as_ref(), Ok(t));
        let checked = t.check(f.agreement_v1.body(), &f.keys);
        if checked.is_ok() {
            let x = &f.termination;
            assert_eq!(
                (t.id, t.by, t.effective_at, t.signed_at),
                (x.id, x.by, x.effective_at, x.signed_at),
                "a termination no fixture signed checked"
            );
        }
        out.insert("termination_check", result(&checked));
        let mut snap = f.snapshot.clone();
        out.insert(
            "termination_snapshot",
            result(&snap.add_termination(t.clone())),
        );

        // Signed mode: the notice's fields signed by the fixture key of its party, so the
        // fuzzer controls a genuine termination; the fixture codes are verified after it.
        let party_keys = f.agreement_v1.body().party(t.by).map(|p| p.keys.clone());
        if let Some(key) = party_keys.and_then(|k| signer_for(&k)) {
            let signed = Termination::sign(t.id, t.by, t.effective_at, t.signed_at, &key);
            let mut snap = f.snapshot.clone();
            let added = snap.add_termination(signed);
            if added.is_ok() {
                // The node shows a stored termination's date (accept, amend).
                assert_showable(t.effective_at.secs(), "termination effective_at");
                assert_showable(t.signed_at.secs(), "termination signed_at");
                out.insert("signed_termination_verify", verify_fixture_codes(&snap));
            }
            out.insert("signed_termination", result(&added));
        }
    }
    out
}

/// A feed batch as the fuzz inputs carry it: a CBOR array of feed records (byte strings).
pub fn encode_batch(entries: &[FeedEntry]) -> Vec<u8> {
    let v = Value::Array(
        entries
            .iter()
            .map(|e| Value::Bytes(e.to_record()))
            .collect(),
    );
    hcmr_core::cbor::encode(&v)
}

/// The records of a batch, `None` when `data` is not a CBOR array of byte strings.
pub fn decode_batch(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = data;
    let v: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, 16).ok()?;
    if !rest.is_empty() {
        return None;
    }
    match v {
        Value::Array(a) => a
            .into_iter()
            .map(|r| match r {
                Value::Bytes(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Signed mode of the feed target: the statements and times of `entries`, re-chained and
/// signed by the fixture key the chain expects (the genesis key's own, then the current key), so
/// the fuzzer controls a genuine chain; applied until the first refusal. A Sichuan chain is then
/// the peer feed under the fixture agreement, and the fixture codes are verified.
fn signed_feed(entries: &[FeedEntry]) -> Option<String> {
    let f = fixtures();
    let province = entries.first()?.province();
    let mut state = FeedState::new(province);
    let mut chain: Vec<FeedEntry> = Vec::new();
    let mut outcome = "ok".to_string();
    for e in entries {
        let key = match e.statement() {
            Statement::Genesis { key } => signer_for(std::slice::from_ref(key)),
            _ => state
                .current_key()
                .and_then(|k| signer_for(std::slice::from_ref(k))),
        };
        let Some(key) = key else {
            outcome = "no fixture key".into();
            break;
        };
        let signed = FeedEntry::sign(
            province,
            chain.last(),
            e.time(),
            e.statement().clone(),
            &key,
        );
        let before = state.clone();
        if let Err(err) = state.apply(&signed) {
            assert_eq!(state, before, "a refused entry changed the state");
            outcome = variant(&err);
            break;
        }
        // A verdict shows when the key was withdrawn: entry times must be showable.
        assert_showable(signed.time().secs(), "feed entry time");
        chain.push(signed);
    }
    if province == prov(SC) && !chain.is_empty() {
        let mut snap = f.empty_snapshot.clone();
        snap.add_agreement(f.agreement_v1.clone())
            .expect("fixture agreement");
        snap.set_peer_feed(PeerFeed {
            state: Arc::new(state),
            synced_at: NOW - 120,
        });
        outcome.push(':');
        outcome.push_str(&verify_fixture_codes(&snap));
    }
    Some(outcome)
}

/// The feed decoder target: the input as one feed record (`record`, then `apply`: applied to an
/// empty state of its province), as a batch of records applied all or nothing to an empty state
/// of the first entry's province (`batch`), and as an offline trust bundle opened at Guangdong's
/// checkpoint (`bundle`).
pub fn feed_target(data: &[u8]) -> Outcomes {
    let f = fixtures();
    let fixture_entry = |e: &FeedEntry| {
        f.sc_feed
            .iter()
            .chain(&f.gd_feed)
            .any(|x| x.encoded() == e.encoded())
    };
    let mut out = Outcomes::new();

    let record = FeedEntry::from_record(data);
    out.insert("record", result(&record));
    if let Ok(e) = &record {
        assert_eq!(FeedEntry::from_record(&e.to_record()).as_ref(), Ok(e));
        let mut state = FeedState::new(e.province());
        let before = state.clone();
        let applied = state.apply(e);
        match &applied {
            Ok(()) => assert!(fixture_entry(e), "applied an entry no fixture signed"),
            Err(_) => assert_eq!(state, before, "a refused entry changed the state"),
        }
        out.insert("apply", result(&applied));
    }

    if let Some(records) = decode_batch(data) {
        let entries: Result<Vec<FeedEntry>, _> =
            records.iter().map(|r| FeedEntry::from_record(r)).collect();
        let outcome = entries.and_then(|entries| {
            let province = entries.first().map_or(prov(SC), FeedEntry::province);
            let mut state = FeedState::new(province);
            let before = state.clone();
            let r = state.apply_all(&entries);
            match &r {
                Ok(()) => {
                    assert!(entries.iter().all(fixture_entry), "applied a foreign entry");
                    assert_eq!(state.last_seq(), entries.len() as u64);
                    assert!(entries.is_empty() || state.current_key().is_some());
                }
                Err(_) => assert_eq!(state, before, "a refused batch changed the state"),
            }
            r
        });
        out.insert("batch", result(&outcome));
        if let Ok(entries) = records
            .iter()
            .map(|r| FeedEntry::from_record(r))
            .collect::<Result<Vec<_>, _>>()
        {
            if let Some(r) = signed_feed(&entries) {
                out.insert("signed_batch", r);
            }
        }
    }

    let opened = hcmr::bundle::open(data, TrustAnchor::Key(gd_key().public()), NOW, DAY);
    if let Ok((content, _)) = &opened {
        // `hcmr verify --bundle` shows these.
        assert_showable(content.exported_at.secs(), "bundle exported_at");
        for p in &content.peers {
            assert_showable(p.synced_at.secs(), "bundle synced_at");
        }
        assert_eq!(
            content.exported_at,
            NOW - 60,
            "opened a bundle no fixture signed"
        );
        assert!(content.own_feed.iter().all(fixture_entry));
        assert!(content
            .peers
            .iter()
            .all(|p| p.entries.iter().all(fixture_entry)));
    }
    out.insert("bundle", result(&opened));
    out
}
