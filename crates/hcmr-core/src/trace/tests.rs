//! The contact rule and the origin check, with exact values.

use super::contact::{DEFAULT_ROWS, DEFAULT_SEATS_PER_ROW};
use super::*;
use crate::manifest::{sign, Manifest, Person};
use crate::status::HealthStatus;
use crate::testkit::{self, prov, sc_key, snapshot, stranger, AH, CQ, SC, ZJ};

/// The case's subject prefix.
const CASE: [u8; 4] = [0xca, 0x5e, 0x00, 0x01];

/// A passenger of issuer index `issuer` with subject prefix `subject` and cti prefix `seat` six
/// times.
fn person(issuer: u8, subject: [u8; 4], seat: u8, crew: bool) -> Person {
    Person {
        issuer,
        status: HealthStatus::Green,
        crew,
        age_minutes: 60,
        cti: [seat; 6],
        subject,
    }
}

/// The fixture trip with `n` passengers of Sichuan (issuer index 0; issuers Sichuan, Chongqing),
/// each with subject prefix `[0, 0, 0, seat]`, none crew; then `edit` applied.
fn bus(n: u8, edit: impl FnOnce(&mut Vec<Person>)) -> Manifest {
    let mut people: Vec<Person> = (1..=n).map(|s| person(0, [0, 0, 0, s], s, false)).collect();
    edit(&mut people);
    Manifest {
        issuers: vec![prov(SC), prov(CQ)],
        people,
        ..testkit::trip(1)
    }
}

fn fellow(t: &TracedCase, seat: u32) -> Fellow {
    *t.fellows.iter().find(|f| f.seat == seat).unwrap()
}

#[test]
fn the_default_rule_and_its_words() {
    let r = ContactRule::default();
    assert_eq!(r, ContactRule::new(0, 0, false));
    assert_eq!((r.rows, r.seats_per_row, r.whole_vehicle), (3, 4, false));
    assert_eq!((DEFAULT_ROWS, DEFAULT_SEATS_PER_ROW), (3, 4));
    assert_eq!(r.describe(), "within 3 rows, 4 seats a row; crew always");
    assert_eq!(
        ContactRule::new(1, 1, false).describe(),
        "within 1 row, 1 seat a row; crew always"
    );
    assert_eq!(ContactRule::new(2, 5, true).describe(), "the whole vehicle");
    // Rows: seats 1-4 row 1, 5-8 row 2, 13 row 4, 17 row 5.
    for (seat, row) in [(1, 1), (4, 1), (5, 2), (8, 2), (13, 4), (16, 4), (17, 5)] {
        assert_eq!(r.row(seat), row, "seat {seat}");
    }
}

#[test]
fn seat_13_is_three_rows_from_seat_1_and_a_contact_seat_17_is_four_and_not() {
    let m = bus(20, |p| p[0].subject = CASE);
    let t = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::default()).unwrap();
    assert_eq!(t.case_seats, vec![1]);
    assert!(!t.case_crew);
    assert_eq!(t.fellows.len(), 19);
    assert_eq!(
        t.fellows.iter().map(|f| f.seat).collect::<Vec<_>>(),
        (2..=20).collect::<Vec<_>>()
    );
    let f13 = fellow(&t, 13);
    assert_eq!(
        f13,
        Fellow {
            issuer: prov(SC),
            subject_prefix: [0, 0, 0, 13],
            cti_prefix: [13; 6],
            seat: 13,
            crew: false,
            distance: 12,
            rows_apart: 3,
            contact: true,
        }
    );
    let f16 = fellow(&t, 16);
    assert_eq!((f16.distance, f16.rows_apart, f16.contact), (15, 3, true));
    let f17 = fellow(&t, 17);
    assert_eq!((f17.distance, f17.rows_apart, f17.contact), (16, 4, false));
    // Contacts: seats 2 to 16 (rows 1 to 4), not 17 to 20.
    let contacts: Vec<u32> = t
        .fellows
        .iter()
        .filter(|f| f.contact)
        .map(|f| f.seat)
        .collect();
    assert_eq!(contacts, (2..=16).collect::<Vec<_>>());
    // Within 4 rows seat 17 counts; within 2, seat 13 does not.
    let four = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::new(4, 4, false)).unwrap();
    assert!(fellow(&four, 17).contact);
    assert!(
        four.fellows.iter().all(|f| f.contact),
        "rows 1 to 5 all within 4"
    );
    let two = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::new(2, 0, false)).unwrap();
    assert!(!fellow(&two, 13).contact);
    assert!(fellow(&two, 12).contact);
}

#[test]
fn rows_run_both_ways_and_follow_seats_per_row() {
    // The case in seat 10 (row 3 of 4 a row): seat 1 is 2 rows before, seat 24 is 3 after.
    let m = bus(30, |p| p[9].subject = CASE);
    let t = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::default()).unwrap();
    assert_eq!(t.case_seats, vec![10]);
    let f1 = fellow(&t, 1);
    assert_eq!((f1.distance, f1.rows_apart, f1.contact), (9, 2, true));
    let f24 = fellow(&t, 24);
    assert_eq!((f24.distance, f24.rows_apart, f24.contact), (14, 3, true));
    let f25 = fellow(&t, 25);
    assert_eq!((f25.distance, f25.rows_apart, f25.contact), (15, 4, false));
    // Two seats a row: seat 10 is row 5; seat 17 is row 9, 4 rows on: no contact; 16 is row 8.
    let narrow = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::new(0, 2, false)).unwrap();
    let f17 = fellow(&narrow, 17);
    assert_eq!((f17.distance, f17.rows_apart, f17.contact), (7, 4, false));
    let f16 = fellow(&narrow, 16);
    assert_eq!((f16.rows_apart, f16.contact), (3, true));
}

#[test]
fn crew_always_count_and_a_case_among_the_crew_makes_everyone_a_contact() {
    // Seat 1 the driver (crew), far from a case in seat 30.
    let m = bus(30, |p| {
        p[0].crew = true;
        p[29].subject = CASE;
    });
    let t = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::default()).unwrap();
    let driver = fellow(&t, 1);
    assert_eq!(
        (
            driver.crew,
            driver.distance,
            driver.rows_apart,
            driver.contact
        ),
        (true, 29, 7, true)
    );
    assert!(!fellow(&t, 2).contact, "a passenger 7 rows away");
    // The driver, and seats 17 to 29 (rows 5 to 8).
    assert_eq!(t.fellows.iter().filter(|f| f.contact).count(), 1 + 13);
    // The case is the driver: everyone on board is a contact.
    let m = bus(30, |p| {
        p[0].crew = true;
        p[0].subject = CASE;
    });
    let t = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::default()).unwrap();
    assert_eq!(t.case_seats, vec![1]);
    assert!(t.case_crew);
    assert_eq!(t.fellows.len(), 29);
    assert!(t.fellows.iter().all(|f| f.contact));
    let last = fellow(&t, 30);
    assert_eq!((last.distance, last.rows_apart, last.crew), (29, 7, false));
}

#[test]
fn the_whole_vehicle_rule_counts_everyone() {
    let m = bus(40, |p| p[0].subject = CASE);
    let rule = ContactRule::new(1, 4, true);
    let t = fellow_travellers(&m, prov(SC), &CASE, &rule).unwrap();
    assert_eq!(t.fellows.len(), 39);
    assert!(t.fellows.iter().all(|f| f.contact));
    let f40 = fellow(&t, 40);
    assert_eq!((f40.distance, f40.rows_apart), (39, 9));
}

#[test]
fn a_case_not_on_board_or_of_another_issuer_is_not_found() {
    let m = bus(10, |p| p[4].subject = CASE);
    assert!(lists(&m, prov(SC), &CASE));
    assert!(!lists(&m, prov(SC), &[0xca, 0x5e, 0x00, 0x02]));
    assert_eq!(
        fellow_travellers(&m, prov(SC), &[1, 2, 3, 4], &ContactRule::default()),
        None
    );
    // The same 4 bytes under Chongqing's issuer index: not Sichuan's case.
    let m = bus(10, |p| p[4] = person(1, CASE, 5, false));
    assert!(!lists(&m, prov(SC), &CASE));
    assert!(lists(&m, prov(CQ), &CASE));
    assert_eq!(
        fellow_travellers(&m, prov(SC), &CASE, &ContactRule::default()),
        None
    );
    let t = fellow_travellers(&m, prov(CQ), &CASE, &ContactRule::default()).unwrap();
    assert_eq!(t.case_seats, vec![5]);
    assert_eq!(fellow(&t, 1).issuer, prov(SC));
}

#[test]
fn two_people_sharing_the_prefix_are_both_taken_as_the_case_distances_to_the_nearest() {
    let m = bus(30, |p| {
        p[1].subject = CASE;
        p[27].subject = CASE;
    });
    let t = fellow_travellers(&m, prov(SC), &CASE, &ContactRule::default()).unwrap();
    assert_eq!(t.case_seats, vec![2, 28]);
    assert_eq!(t.fellows.len(), 28);
    let f15 = fellow(&t, 15);
    assert_eq!((f15.distance, f15.rows_apart, f15.contact), (13, 3, true));
    let f30 = fellow(&t, 30);
    assert_eq!((f30.distance, f30.rows_apart, f30.contact), (2, 1, true));
}

#[test]
fn a_manifest_signed_by_its_origin_verifies_and_others_do_not() {
    let m = testkit::trip(5);
    let text = sign(&m, &sc_key());
    let signed = crate::manifest::SignedManifest::decode(&text).unwrap();
    // Anhui, with the Sichuan-Anhui agreement: Sichuan's key is trusted there.
    let ah = testkit::transit_checkpoint();
    assert_eq!(verify_origin(&signed, &ah, testkit::NOW), Ok(prov(SC)));
    // Sichuan itself: its own key.
    let sc = snapshot(SC, &sc_key(), vec![]);
    assert_eq!(verify_origin(&signed, &sc, testkit::NOW), Ok(prov(SC)));
    // Zhejiang knows no key of Sichuan.
    let zj = snapshot(ZJ, &testkit::zj_key(), vec![]);
    assert_eq!(
        verify_origin(&signed, &zj, testkit::NOW),
        Err(OriginError::UnknownIssuer(prov(SC)))
    );
    // Signed by a stranger: its kid is no key of Sichuan's.
    let forged = crate::manifest::SignedManifest::decode(&sign(&m, &stranger())).unwrap();
    assert!(matches!(
        verify_origin(&forged, &ah, testkit::NOW),
        Err(OriginError::UnknownKey { origin, .. }) if origin == prov(SC)
    ));
    // An Anhui trip at Anhui's own node verifies under Anhui's own key only.
    let ah_trip = Manifest {
        origin: 340100,
        ..m
    };
    let by_sc = crate::manifest::SignedManifest::decode(&sign(&ah_trip, &sc_key())).unwrap();
    assert!(verify_origin(&by_sc, &ah, testkit::NOW).is_err());
    let by_ah =
        crate::manifest::SignedManifest::decode(&sign(&ah_trip, &testkit::ah_key())).unwrap();
    assert_eq!(verify_origin(&by_ah, &ah, testkit::NOW), Ok(prov(AH)));
}
