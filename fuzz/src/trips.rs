//! The trip targets (docs/transport.md): trip manifests (sections 2 and 3) through the
//! decoder and the checkpoint decision, and the check reports and handover receipts of section
//! 6 through theirs. Fixtures and invariants as for codes: the fuzzer cannot sign, so a manifest
//! or record whose signature verifies under a fixture key is one the fixtures signed; what
//! decodes re-encodes to the same payload (one value, one encoding); a manifest that does not
//! decode stops at `malformed` alone, and a PASS is a fixture manifest.

use std::sync::OnceLock;

use hcmr::keys::{NodeKey, PublicKey};
use hcmr::manifest::{
    self, CheckReport, Checkpoint, EventDetail, Manifest, ManifestError, ManifestVerdict, Receipt,
    RecordError, ReportVerdict, SignedCheckReport, SignedManifest, SignedReceipt, SignedTripEvent,
    TripEvent,
};
use hcmr::trust::TrustSnapshot;
use hcmr::UnixTime;
use hcmr_core::testkit::{
    ah_key, check_report, gd_key, handover, js_key, prov, refusal, sc_key, transit_checkpoint,
    trip, zj_key, AH, NOW, SC, TRIP_ID, ZJ,
};
use hcmr_core::trace::{CaseClass, ExposureNotice, NoticeId, SignedExposureNotice};

use super::Outcomes;

/// The trip fixtures, signed with the testkit's keys.
pub struct TripFixtures {
    /// Manifest strings signed by Sichuan, by name: 1, 3 and 55 people, and version 2 of the
    /// 3-person trip.
    pub manifests: Vec<(&'static str, String)>,
    /// Check reports' COSE bytes: the testkit's STOP (Jiangsu) and a PASS (Anhui).
    pub reports: Vec<(&'static str, Vec<u8>)>,
    /// Receipts' COSE bytes (Zhejiang): the testkit's handover and refusal.
    pub receipts: Vec<(&'static str, Vec<u8>)>,
    /// Trip events' COSE bytes (docs/tracing.md section 2): a boarding signed by Sichuan, an
    /// arrival signed by Zhejiang.
    pub events: Vec<(&'static str, Vec<u8>)>,
    /// Exposure notices' COSE bytes (docs/tracing.md section 5): Sichuan's notice to Anhui.
    pub notices: Vec<(&'static str, Vec<u8>)>,
    /// The Anhui checkpoint the manifests pass ([`transit_checkpoint`]).
    pub checkpoint: TrustSnapshot,
}

/// When the target checks manifests: an hour after the fixture trip's planned departure.
pub fn check_time() -> UnixTime {
    NOW + 2 * 3600
}

fn build() -> TripFixtures {
    let mut v2 = trip(3);
    v2.version = 2;
    let manifests = vec![
        ("trip_1", manifest::sign(&trip(1), &sc_key())),
        ("trip_3", manifest::sign(&trip(3), &sc_key())),
        ("trip_55", manifest::sign(&trip(55), &sc_key())),
        ("trip_3_v2", manifest::sign(&v2, &sc_key())),
    ];
    let pass = CheckReport {
        checker: hcmr_core::testkit::prov(hcmr_core::testkit::AH),
        verdict: ReportVerdict::Pass,
        reasons: vec![],
        ..check_report()
    };
    TripFixtures {
        manifests,
        reports: vec![
            ("stop", check_report().sign(&js_key())),
            ("pass", pass.sign(&ah_key())),
        ],
        receipts: vec![
            ("handover", handover().sign(&zj_key())),
            ("refusal", refusal().sign(&zj_key())),
        ],
        events: vec![
            ("boarded", boarded_event().sign(&sc_key())),
            ("arrived", arrived_event().sign(&zj_key())),
        ],
        notices: vec![("notice", notice().sign(&sc_key()))],
        checkpoint: transit_checkpoint(),
    }
}

/// A boarding of the fixture trip's seat 3, recorded by Sichuan a minute before the seal.
fn boarded_event() -> TripEvent {
    TripEvent {
        trip_id: TRIP_ID,
        at: NOW - 60,
        recorder: prov(SC),
        seat: 3,
        version: 0,
        detail: EventDetail::Boarded {
            issuer: prov(SC),
            status: hcmr::status::HealthStatus::Green,
            crew: false,
        },
    }
}

/// The fixture trip's arrival, recorded by Zhejiang at its gate.
fn arrived_event() -> TripEvent {
    TripEvent {
        trip_id: TRIP_ID,
        at: NOW + 27 * 3600,
        recorder: prov(ZJ),
        seat: 0,
        version: 1,
        detail: EventDetail::Arrived {
            checkpoint: Checkpoint::new("厂门").unwrap(),
            manifest_hash: hcmr_core::testkit::sealed_hash(3),
        },
    }
}

/// Sichuan's notice to Anhui for seat 4 of the fixture trip, one seat from a confirmed case.
fn notice() -> ExposureNotice {
    ExposureNotice {
        notice_id: NoticeId([0x42; 8]),
        from: prov(SC),
        to: prov(AH),
        trip_id: TRIP_ID,
        trip_origin: prov(SC),
        departure: NOW + 3600,
        seat: 4,
        distance: 1,
        crew: false,
        case_class: CaseClass::Confirmed,
        cti_prefix: [1, 2, 3, 4, 5, 6],
        subject_prefix: [7, 8, 9, 10],
        issued_at: NOW + 30 * 86_400,
    }
}

/// The trip fixtures, built on first use.
pub fn trip_fixtures() -> &'static TripFixtures {
    static F: OnceLock<TripFixtures> = OnceLock::new();
    F.get_or_init(build)
}

/// Every key the trip fixtures sign with.
fn trip_keys() -> Vec<PublicKey> {
    [sc_key(), gd_key(), ah_key(), js_key(), zj_key()]
        .iter()
        .map(NodeKey::public)
        .collect()
}

/// A manifest error as an outcome: its identifier, with the field or seat it names.
pub fn manifest_outcome(e: &ManifestError) -> String {
    match e {
        ManifestError::Field { field, .. } => format!("{}({field})", e.code()),
        ManifestError::TextCharacter { field, .. } => format!("{}({field})", e.code()),
        ManifestError::Person { seat, .. } => format!("{}(seat {seat})", e.code()),
        _ => e.code().to_string(),
    }
}

/// A record error as an outcome: its identifier, with the field or array it names.
pub fn record_outcome(e: &RecordError) -> String {
    match e {
        RecordError::Field { field, .. } | RecordError::TextCharacter { field, .. } => {
            format!("{}({field})", e.code())
        }
        RecordError::NotArray { what, .. } => format!("{}({what})", e.code()),
        _ => e.code().to_string(),
    }
}

/// A verdict as an outcome: `pass`, or the reasons' identifiers, people's with their seat
/// (`revoked@3`), comma-separated.
pub fn verdict_outcome(v: &ManifestVerdict) -> String {
    match v {
        ManifestVerdict::Pass(_) => "pass".into(),
        ManifestVerdict::Stop(s) => s
            .reasons
            .iter()
            .map(|r| match r.seat {
                Some(seat) => format!("{}@{seat}", r.reason.as_str()),
                None => r.reason.as_str().to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The manifest decoder target: the input as a manifest string (lossy UTF-8) through
/// `SignedManifest::decode` (`decode`) and the decision at the Anhui checkpoint (`check`); the
/// raw bytes as COSE bytes behind the prefix (`cose`) and as a payload (`payload`).
pub fn manifest_target(data: &[u8]) -> Outcomes {
    let f = trip_fixtures();
    let keys = trip_keys();
    let mut out = Outcomes::new();
    let s = String::from_utf8_lossy(data);

    let decoded = SignedManifest::decode(&s);
    out.insert(
        "decode",
        decoded
            .as_ref()
            .map_or_else(manifest_outcome, |_| "ok".into()),
    );
    if let Ok(m) = &decoded {
        assert_canonical(&m.manifest);
        if keys.iter().any(|k| m.verify_signature(k)) {
            assert_fixture_manifest(&m.manifest, "decode");
        }
    }

    let verdict = manifest::check(&s, &f.checkpoint, check_time(), None);
    let malformed_only = matches!(
        verdict.reasons(),
        [r] if r.reason == manifest::ManifestReason::Malformed
    );
    assert_eq!(decoded.is_err(), malformed_only, "verdict {verdict:?}");
    if let ManifestVerdict::Pass(_) = verdict {
        let m = decoded.as_ref().expect("a PASS decoded");
        assert_fixture_manifest(&m.manifest, "check");
    }
    out.insert("check", verdict_outcome(&verdict));

    let wrapped = format!("{}{}", manifest::PREFIX, base45::encode(data));
    let cose = SignedManifest::decode(&wrapped);
    if let Ok(m) = &cose {
        assert_eq!(m.cose_bytes(), data);
        if keys.iter().any(|k| m.verify_signature(k)) {
            assert_fixture_manifest(&m.manifest, "cose");
        }
    }
    out.insert(
        "cose",
        cose.as_ref().map_or_else(manifest_outcome, |_| "ok".into()),
    );

    let payload = Manifest::from_cbor(data);
    if let Ok(m) = &payload {
        assert_eq!(m.to_cbor(), data, "a payload that decodes is canonical");
    }
    out.insert(
        "payload",
        payload
            .as_ref()
            .map_or_else(manifest_outcome, |_| "ok".into()),
    );
    out
}

/// A decoded manifest re-encodes and decodes to itself.
fn assert_canonical(m: &Manifest) {
    assert_eq!(Manifest::from_cbor(&m.to_cbor()).as_ref(), Ok(m));
}

fn assert_fixture_manifest(m: &Manifest, what: &str) {
    let fixtures = &trip_fixtures().manifests;
    assert!(
        fixtures.iter().any(|(_, s)| SignedManifest::decode(s)
            .map(|d| d.manifest == *m)
            .unwrap_or(false)),
        "{what}: a signature verified over a manifest no fixture signed: {m:?}"
    );
}

/// What the record targets need of a signed trip record: its decoder, its content, its bytes
/// and signature check, and its payload's codec.
struct RecordKind<S, T> {
    /// What the invariants' messages call it.
    name: &'static str,
    decode: fn(&[u8]) -> Result<S, RecordError>,
    content: fn(&S) -> &T,
    cose: fn(&S) -> &[u8],
    verifies: fn(&S, &PublicKey) -> bool,
    from_cbor: fn(&[u8]) -> Result<T, RecordError>,
    to_cbor: fn(&T) -> Vec<u8>,
}

/// A record target: the input as the record's COSE bytes (`decode`) and as its payload
/// (`payload`). Invariants: a decoded record keeps its bytes and its content re-encodes to
/// itself; only a fixture (`signed`) verifies under a fixture key; a payload that decodes is
/// canonical.
fn record_target<S: std::fmt::Debug, T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    k: &RecordKind<S, T>,
    signed: &[(&'static str, Vec<u8>)],
) -> Outcomes {
    let mut out = Outcomes::new();
    let decoded = (k.decode)(data);
    if let Ok(r) = &decoded {
        assert_eq!((k.cose)(r), data);
        let content = (k.content)(r);
        assert_eq!((k.from_cbor)(&(k.to_cbor)(content)).as_ref(), Ok(content));
        if trip_keys().iter().any(|key| (k.verifies)(r, key)) {
            assert!(
                signed.iter().any(|(_, b)| b == data),
                "a {} no fixture signed verified: {r:?}",
                k.name
            );
        }
    }
    out.insert(
        "decode",
        decoded
            .as_ref()
            .map_or_else(record_outcome, |_| "ok".into()),
    );
    let payload = (k.from_cbor)(data);
    if let Ok(t) = &payload {
        assert_eq!((k.to_cbor)(t), data, "a payload that decodes is canonical");
    }
    out.insert(
        "payload",
        payload
            .as_ref()
            .map_or_else(record_outcome, |_| "ok".into()),
    );
    out
}

/// The check report target ([`record_target`]: docs/transport.md section 6).
pub fn report_target(data: &[u8]) -> Outcomes {
    let k = RecordKind {
        name: "report",
        decode: SignedCheckReport::decode,
        content: |r| &r.report,
        cose: SignedCheckReport::cose_bytes,
        verifies: SignedCheckReport::verify_signature,
        from_cbor: CheckReport::from_cbor,
        to_cbor: CheckReport::to_cbor,
    };
    record_target(data, &k, &trip_fixtures().reports)
}

/// The receipt target, a handover receipt or refusal ([`record_target`]).
pub fn receipt_target(data: &[u8]) -> Outcomes {
    let k = RecordKind {
        name: "receipt",
        decode: SignedReceipt::decode,
        content: |r| &r.receipt,
        cose: SignedReceipt::cose_bytes,
        verifies: SignedReceipt::verify_signature,
        from_cbor: Receipt::from_cbor,
        to_cbor: Receipt::to_cbor,
    };
    record_target(data, &k, &trip_fixtures().receipts)
}

/// The trip event target ([`record_target`]: docs/tracing.md section 2).
pub fn event_target(data: &[u8]) -> Outcomes {
    let k = RecordKind {
        name: "event",
        decode: SignedTripEvent::decode,
        content: |e| &e.event,
        cose: SignedTripEvent::cose_bytes,
        verifies: SignedTripEvent::verify_signature,
        from_cbor: TripEvent::from_cbor,
        to_cbor: TripEvent::to_cbor,
    };
    record_target(data, &k, &trip_fixtures().events)
}

/// The exposure notice target ([`record_target`]: docs/tracing.md section 5).
pub fn notice_target(data: &[u8]) -> Outcomes {
    let k = RecordKind {
        name: "notice",
        decode: SignedExposureNotice::decode,
        content: |n| &n.notice,
        cose: SignedExposureNotice::cose_bytes,
        verifies: SignedExposureNotice::verify_signature,
        from_cbor: ExposureNotice::from_cbor,
        to_cbor: ExposureNotice::to_cbor,
    };
    record_target(data, &k, &trip_fixtures().notices)
}
