//! Unit tests of the pure parts of the trip workflows: the request's rules, the boarding
//! decision, the manifest a seal signs, the trip's state, the QR size, and the records received.

use hcmr_core::testkit::{self, claims, prov, sc_key, snapshot, DAY, NOW, SC};
use sha2::Digest;

use super::board::{choose_seat, judge_code};
use super::create::check_request;
use super::seal::{build, qr_version_m};
use super::view::state_of;
use super::{BOARDING_MARGIN_SECS, OVERDUE_GRACE_SECS};
use crate::identity::{DocumentType, SubjectHash};
use crate::manifest::{SignedManifest, TripId};
use crate::node::error::ApiError;
use crate::proto::{self, BoardingRefusal, TripState};
use crate::status::HealthStatus;
use crate::store::{TripEntry, TripRecord};
use crate::verify::{verify, Reason};
use crate::UnixTime;

fn request() -> proto::CreateManifestRequest {
    proto::CreateManifestRequest {
        vehicle: "川R·12345".into(),
        origin: "511304".into(),
        destination: "330212".into(),
        place: "宁波鄞州工厂".into(),
        transit: vec!["500000".into(), "340000".into()],
        departure: (NOW + 3600).secs(),
        arrival: (NOW + 26 * 3600).secs(),
        escort: "王*".into(),
    }
}

fn field_of(r: Result<impl Sized, ApiError>) -> &'static str {
    match r {
        Err(ApiError::InvalidArgument { field, .. }) => field,
        Err(e) => panic!("not INVALID_ARGUMENT: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn a_trip_request_is_checked_field_by_field() {
    let c = check_request(&request(), prov(SC), NOW).unwrap();
    assert_eq!((c.origin, c.destination), (511304, 330212));
    assert_eq!(c.transit, vec![prov(500000), prov(340000)]);
    assert_eq!(c.escort.as_str(), "王*");
    type Change = Box<dyn Fn(&mut proto::CreateManifestRequest)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "vehicle",
            Box::new(|r| r.vehicle = "川R·123456789012".into()),
        ),
        ("vehicle", Box::new(|r| r.vehicle = String::new())),
        ("origin", Box::new(|r| r.origin = "440305".into())),
        ("origin", Box::new(|r| r.origin = "511300".into())),
        ("origin", Box::new(|r| r.origin = "51130".into())),
        ("destination", Box::new(|r| r.destination = "510104".into())),
        ("destination", Box::new(|r| r.destination = "990000".into())),
        ("place", Box::new(|r| r.place = "一二三四五六七八九".into())),
        ("transit", Box::new(|r| r.transit = vec!["340100".into()])),
        (
            "transit",
            Box::new(|r| r.transit = vec!["340000".into(); 9]),
        ),
        ("departure", Box::new(|r| r.departure = 0)),
        ("arrival", Box::new(|r| r.arrival = r.departure)),
        (
            "arrival",
            Box::new(|r| r.arrival = r.departure + 72 * 3600 + 1),
        ),
        (
            "arrival",
            Box::new(|r| {
                r.departure = (NOW - 7200).secs();
                r.arrival = (NOW - 60).secs();
            }),
        ),
        ("escort", Box::new(|r| r.escort = "王小明".into())),
        ("escort", Box::new(|r| r.escort = "王*\u{202e}".into())),
    ];
    for (field, change) in cases {
        let mut r = request();
        change(&mut r);
        assert_eq!(field_of(check_request(&r, prov(SC), NOW)), field, "{r:?}");
    }
}

#[test]
fn boarding_decides_the_code_as_verification_does_then_the_status_until_arrival() {
    let trust = snapshot(SC, &sc_key(), vec![]);
    let green = verify(&testkit::code(&claims("510000", 1), &sc_key()), &trust, NOW);
    // The fixture's status holds a day: enough for an arrival up to a day less the margin.
    let latest = NOW + DAY - BOARDING_MARGIN_SECS;
    assert_eq!(judge_code(&green, latest), Ok(HealthStatus::Green));
    let late = judge_code(&green, latest + 1).unwrap_err();
    assert_eq!(late.kind, BoardingRefusal::StatusEndsBeforeArrival);
    assert!(late.detail.contains("plus 2 h"), "{}", late.detail);

    let yellow = verify(&testkit::code(&claims("510000", 2), &sc_key()), &trust, NOW);
    let r = judge_code(&yellow, NOW).unwrap_err();
    assert_eq!(r.kind, BoardingRefusal::StatusNotGreen);
    assert_eq!(r.detail, "the status counts as yellow here");

    // A Guangdong code with no agreement: not recognized, with verification's own reason.
    let foreign = verify(
        &testkit::code(&claims("440000", 1), &testkit::gd_key()),
        &trust,
        NOW,
    );
    let r = judge_code(&foreign, NOW).unwrap_err();
    assert_eq!(r.kind, BoardingRefusal::NotRecognized);
    assert_eq!(r.verify_reason, foreign.reason as i32);
    assert_ne!(foreign.reason, Reason::Ok);
    let garbage = verify("HCMR1:nonsense", &trust, NOW);
    assert_eq!(
        judge_code(&garbage, NOW).unwrap_err().verify_reason,
        Reason::Malformed as i32
    );
}

fn entry(seat: u8, issuer: u32, hash: u8) -> TripEntry {
    TripEntry {
        seat,
        crew: seat == 1,
        issuer: prov(issuer),
        status: HealthStatus::Green,
        cti: [hash; 16],
        iat: NOW - 600,
        status_valid_until: NOW + DAY,
        subject_hash: SubjectHash([hash; 8]),
        boarded_at: NOW - 300,
        masked_name: "张*".into(),
        document_type: DocumentType::ResidentIdentityCard,
        masked_document_number: "5101*1234".into(),
    }
}

fn trip(people: Vec<TripEntry>) -> TripRecord {
    let r = request();
    TripRecord {
        id: TripId([0x42; 8]),
        vehicle: r.vehicle,
        origin: 511304,
        destination: 330212,
        place: r.place,
        transit: vec![prov(500000), prov(340000)],
        departure: UnixTime::from_secs(r.departure),
        arrival: UnixTime::from_secs(r.arrival),
        escort: r.escort,
        created_at: NOW - 3600,
        cancelled_at: None,
        version: 0,
        sealed_at: None,
        changed_since_seal: false,
        people,
        removals: Vec::new(),
    }
}

#[test]
fn seats_are_chosen_and_refused_by_the_trips_rules() {
    let t = trip(vec![entry(1, SC, 1), entry(2, SC, 2), entry(4, SC, 4)]);
    let hash = SubjectHash([200; 8]);
    assert_eq!(
        choose_seat(&t, prov(SC), &hash, 0),
        Ok(3),
        "the lowest free seat"
    );
    assert_eq!(choose_seat(&t, prov(SC), &hash, 99), Ok(99));
    let taken = choose_seat(&t, prov(SC), &hash, 4).unwrap_err();
    assert_eq!(taken.kind, BoardingRefusal::SeatTaken);
    let again = choose_seat(&t, prov(SC), &SubjectHash([2; 8]), 0).unwrap_err();
    assert_eq!(again.kind, BoardingRefusal::AlreadyOnThisManifest);
    assert_eq!(again.detail, "already on this trip in seat 2");
    // The same subject hash from another issuer is another person.
    assert_eq!(
        choose_seat(&t, prov(440000), &SubjectHash([2; 8]), 0),
        Ok(3)
    );

    let full = trip((1..=99).map(|s| entry(s, SC, s)).collect());
    assert_eq!(
        choose_seat(&full, prov(SC), &hash, 0).unwrap_err().kind,
        BoardingRefusal::ManifestFull
    );
    let provinces = [
        110000, 120000, 130000, 140000, 150000, 210000, 220000, 230000, 310000, 320000, 330000,
        340000, 350000, 360000, 370000, 410000,
    ];
    let many = trip(
        provinces
            .iter()
            .enumerate()
            .map(|(i, p)| entry(i as u8 + 1, *p, i as u8 + 1))
            .collect(),
    );
    assert_eq!(
        choose_seat(&many, prov(SC), &hash, 0).unwrap_err().kind,
        BoardingRefusal::ManifestFull,
        "a 17th issuer"
    );
    assert_eq!(choose_seat(&many, prov(330000), &hash, 0), Ok(17));
}

#[test]
fn a_seal_signs_the_people_in_seat_order_with_their_ages_and_issuers() {
    let mut t = trip(vec![entry(1, SC, 1), entry(3, 440000, 3), entry(7, SC, 7)]);
    t.people[1].iat = NOW - 61; // 61 s: rounded up to 2 minutes
    t.version = 1;
    let m = build(&t, NOW).unwrap();
    assert_eq!(m.version, 2);
    assert_eq!(m.issuers, vec![prov(SC), prov(440000)]);
    assert_eq!(m.people.len(), 3, "the gaps close up");
    assert_eq!(
        m.people.iter().map(|p| p.issuer).collect::<Vec<_>>(),
        vec![0, 1, 0]
    );
    assert_eq!(m.people[0].age_minutes, 10);
    assert_eq!(m.people[1].age_minutes, 2);
    assert!(m.people[0].crew && !m.people[1].crew);
    assert_eq!(m.people[2].cti, [7; 6]);
    assert_eq!(m.people[2].subject, [7; 4]);
    let signed = crate::manifest::sign(&m, &sc_key());
    let decoded = SignedManifest::decode(&signed).unwrap();
    assert_eq!(decoded.manifest, m);
    assert!(decoded.verify_signature(&sc_key().public()));

    assert!(matches!(
        build(&trip(vec![]), NOW),
        Err(ApiError::FailedPrecondition(m)) if m.contains("nobody is on board")
    ));
    let late = build(&t, t.departure + 72 * 3600 + 1);
    assert!(matches!(late, Err(ApiError::FailedPrecondition(m)) if m.contains("sealed_at")));
}

#[test]
fn the_qr_version_at_level_m_is_the_transport_docs() {
    for (people, version) in [(1, 10), (20, 17), (55, 25)] {
        let s = crate::manifest::sign(&testkit::trip(people), &sc_key());
        assert_eq!(qr_version_m(&s), Some(version), "{people} people");
    }
    assert_eq!(qr_version_m(&"A".repeat(5000)), None);
}

#[test]
fn a_trips_state_follows_its_seal_checks_handover_and_the_clock() {
    let mut t = trip(vec![entry(1, SC, 1)]);
    let arrival = t.arrival;
    assert_eq!(state_of(&t, false, None, NOW), TripState::Open);
    // Never sealed: never overdue (it never left).
    assert_eq!(
        state_of(&t, false, None, arrival + 10 * DAY),
        TripState::Open
    );
    t.version = 1;
    assert_eq!(state_of(&t, false, None, NOW), TripState::Sealed);
    assert_eq!(state_of(&t, true, None, NOW), TripState::InTransit);
    let grace_end = arrival + OVERDUE_GRACE_SECS;
    assert_eq!(state_of(&t, true, None, grace_end), TripState::InTransit);
    assert_eq!(state_of(&t, true, None, grace_end + 1), TripState::Overdue);
    assert_eq!(
        state_of(&t, true, Some(false), grace_end + 1),
        TripState::Delivered
    );
    assert_eq!(state_of(&t, false, Some(true), NOW), TripState::Refused);
    t.version = 0;
    t.cancelled_at = Some(NOW);
    assert_eq!(state_of(&t, false, None, NOW), TripState::Cancelled);
    assert_eq!(
        super::overdue::overdue_cutoff(grace_end + 1),
        arrival + 1,
        "arrivals before this are overdue"
    );
}

#[test]
fn received_records_open_with_their_fields_and_signature() {
    use crate::manifest::{
        CheckReport, Checkpoint, ManifestReason, Measure, Outcome, ReasonText, Receipt,
        ReceiptPerson, ReportReason, ReportVerdict,
    };
    let hash: [u8; 32] = sha2::Sha256::digest(b"manifest").into();
    let report = CheckReport {
        trip_id: TripId([0x42; 8]),
        version: 1,
        manifest_hash: hash,
        checker: prov(340000),
        checkpoint: Checkpoint::new("G50-3").unwrap(),
        checked_at: NOW,
        verdict: ReportVerdict::Stop,
        reasons: vec![ReportReason {
            reason: ManifestReason::Revoked,
            seat: Some(4),
            issuer: Some(prov(SC)),
        }],
    };
    let key = testkit::key(7);
    let signed = report.sign(&key);
    let o = super::wire::open_report(signed.clone()).unwrap();
    assert_eq!(
        (o.signer, o.trip, o.version),
        (prov(340000), TripId([0x42; 8]), 1)
    );
    assert_eq!(o.kid, key.kid());
    let super::record::Record::Report(r) = &o.record else {
        panic!("not a report")
    };
    assert!(!r.pass);
    assert_eq!(r.checkpoint, "G50-3");
    assert_eq!(r.reasons, vec![(15, 4, 510000, String::new())]);
    assert_eq!(r.signed, signed);
    assert!(o.verifies(&key.public()));
    assert!(!o.verifies(&sc_key().public()));

    let receipt = Receipt {
        trip_id: TripId([0x42; 8]),
        version: 1,
        manifest_hash: hash,
        destination: prov(330000),
        received_at: NOW,
        outcome: Outcome::Delivered,
        reason: ReasonText::new("").unwrap(),
        people: vec![
            ReceiptPerson {
                seat: 1,
                present: true,
                measure: Measure::Observation,
                reason: ReasonText::new("fever 37.5").unwrap(),
            },
            ReceiptPerson {
                seat: 2,
                present: false,
                measure: Measure::None,
                reason: ReasonText::new("missing").unwrap(),
            },
        ],
    };
    let o = super::wire::open_handover(receipt.sign(&key)).unwrap();
    assert_eq!(o.signer, prov(330000));
    let super::record::Record::Handover(h) = &o.record else {
        panic!("not a handover")
    };
    assert!(!h.refused);
    assert_eq!(h.people[0], (1, true, 1, "fever 37.5".to_string()));
    assert_eq!(h.people[1], (2, false, 0, "missing".to_string()));
    // Truncated, and a report where a receipt is expected: refused with the decoder's fault.
    let cut = super::wire::open_report(signed[..signed.len() - 3].to_vec())
        .err()
        .unwrap();
    assert!(
        cut.starts_with("cbor.") || cut.starts_with("cose."),
        "{cut}"
    );
    let wrong = super::wire::open_handover(signed).err().unwrap();
    assert!(wrong.starts_with("record."), "{wrong}");
}
