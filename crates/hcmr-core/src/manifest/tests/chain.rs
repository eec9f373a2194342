//! The trip event (docs/tracing.md section 2): a known answer, strict decoding, and the chain's
//! verification (forged, of another trip, under an unknown key, reordered).

use super::*;
use crate::status::HealthStatus;
use crate::testkit::{check_report, handover, js_key, prov, zj_key, JS, SC, TRIP_ID, ZJ};

/// [`boarded`] as CBOR: array of 8 (0x88), format 1, the trip id (8 bytes 0x7e), kind 2, at
/// (NOW - 60), 510000, seat 3, version 0, [510000, 1 (green), false (0xf4)].
const BOARDED_CBOR_HEX: &str = "8801487e7e7e7e7e7e7e7e021a684ee1441a0007c8300300831a0007c83001f4";
/// [`boarded`] signed with [`testkit::sc_key`].
const BOARDED_COSE_HEX: &str =
    "844da2012704484b735ac174e40636a058208801487e7e7e7e7e7e7e7e021a684ee1441a0007c8300300831a0007c8\
    3001f4584056c6d9f0bf993997f196599d0c9c77264083b6901e7f8d18f4856ea474b6f351561b34fe09ce350d2142\
    5448c706ca2066cf20082d3ced8ca78a7214baf8e90f";

fn boarded() -> TripEvent {
    TripEvent {
        trip_id: TRIP_ID,
        at: NOW - 60,
        recorder: prov(SC),
        seat: 3,
        version: 0,
        detail: EventDetail::Boarded {
            issuer: prov(SC),
            status: HealthStatus::Green,
            crew: false,
        },
    }
}

fn created() -> TripEvent {
    TripEvent {
        trip_id: TRIP_ID,
        at: NOW - 600,
        recorder: prov(SC),
        seat: 0,
        version: 0,
        detail: EventDetail::Created {
            vehicle: Vehicle::new("川R·12345").unwrap(),
            origin: 511304,
            destination: 330200,
            departure: NOW + 3600,
            arrival: NOW + 27 * 3600,
        },
    }
}

fn arrived() -> TripEvent {
    TripEvent {
        trip_id: TRIP_ID,
        at: NOW + 27 * 3600 - 60,
        recorder: prov(ZJ),
        seat: 0,
        version: 1,
        detail: EventDetail::Arrived {
            checkpoint: Checkpoint::new("厂门").unwrap(),
            manifest_hash: testkit::sealed_hash(3),
        },
    }
}

fn field_of(e: RecordError) -> &'static str {
    match e {
        RecordError::Field { field, .. } => field,
        other => panic!("expected a field fault, got {other:?}"),
    }
}

#[test]
fn a_boarding_event_has_its_known_bytes_and_decodes_back() {
    let e = boarded();
    let cbor = hex::encode(e.to_cbor());
    let signed = e.sign(&sc_key());
    assert_eq!(cbor, BOARDED_CBOR_HEX);
    assert_eq!(hex::encode(&signed), BOARDED_COSE_HEX);
    let d = SignedTripEvent::decode(&signed).unwrap();
    assert_eq!(d.event, e);
    assert_eq!(d.kid(), sc_key().kid());
    assert!(d.verify_signature(&sc_key().public()));
    assert!(!d.verify_signature(&zj_key().public()));
}

#[test]
fn every_kind_round_trips() {
    let removed = TripEvent {
        seat: 2,
        version: 1,
        detail: EventDetail::Removed {
            reason: ReasonText::new("left at the stop").unwrap(),
        },
        ..boarded()
    };
    let cancelled = TripEvent {
        detail: EventDetail::Cancelled,
        seat: 0,
        ..boarded()
    };
    for e in [created(), boarded(), removed, cancelled, arrived()] {
        let key = if e.recorder == prov(ZJ) {
            zj_key()
        } else {
            sc_key()
        };
        let d = SignedTripEvent::decode(&e.sign(&key)).unwrap();
        assert_eq!(d.event, e);
    }
}

#[test]
fn the_decoder_refuses_each_broken_rule_naming_the_field() {
    let with = |index: usize, v: Value| {
        let Value::Array(mut items) = crate::cbor::decode_exact(&boarded().to_cbor()).unwrap()
        else {
            unreachable!()
        };
        items[index] = v;
        let bytes = cose::sign(crate::cbor::encode(&Value::Array(items)), &sc_key()).bytes;
        SignedTripEvent::decode(&bytes).unwrap_err()
    };
    assert_eq!(field_of(with(0, Value::from(2u64))), "format");
    assert_eq!(field_of(with(1, Value::Bytes(vec![1; 7]))), "trip_id");
    assert_eq!(field_of(with(2, Value::from(4u64))), "kind");
    assert_eq!(field_of(with(4, Value::from(510001u64))), "recorder");
    assert_eq!(field_of(with(5, Value::from(0u64))), "seat");
    assert_eq!(field_of(with(5, Value::from(100u64))), "seat");
    assert_eq!(
        field_of(with(
            7,
            Value::Array(vec![
                Value::from(510000u64),
                Value::from(4u64),
                Value::Bool(false)
            ])
        )),
        "status"
    );
    assert!(matches!(
        with(7, Value::Array(vec![])),
        RecordError::NotArray { what: "detail", .. }
    ));
    // A created event names no seat; an arrival names a version.
    let mut c = created();
    c.seat = 1;
    assert_eq!(
        field_of(SignedTripEvent::decode(&c.sign(&sc_key())).unwrap_err()),
        "seat"
    );
    let mut a = arrived();
    a.version = 0;
    assert_eq!(
        field_of(SignedTripEvent::decode(&a.sign(&zj_key())).unwrap_err()),
        "version"
    );
    // Not a COSE_Sign1 at all; too large.
    assert!(matches!(
        SignedTripEvent::decode(&[0x80]).unwrap_err(),
        RecordError::Cose(_)
    ));
    assert!(matches!(
        SignedTripEvent::decode(&vec![0; MAX_EVENT_BYTES + 1]).unwrap_err(),
        RecordError::TooLarge { .. }
    ));
}

/// The chain of the fixture trip: created, boarded, sealed (3 people), checked at Jiangsu,
/// arrived and handed over at Zhejiang.
fn chain() -> Vec<ChainItem> {
    let sealed = sign(&trip(3), &sc_key());
    let sealed = SignedManifest::decode(&sealed).unwrap();
    vec![
        ChainItem {
            kind: ChainKind::Created,
            signed: created().sign(&sc_key()),
        },
        ChainItem {
            kind: ChainKind::Boarded,
            signed: boarded().sign(&sc_key()),
        },
        ChainItem {
            kind: ChainKind::Sealed,
            signed: sealed.cose_bytes().to_vec(),
        },
        ChainItem {
            kind: ChainKind::Checked,
            signed: check_report().sign(&js_key()),
        },
        ChainItem {
            kind: ChainKind::Arrived,
            signed: arrived().sign(&zj_key()),
        },
        ChainItem {
            kind: ChainKind::HandedOver,
            signed: handover().sign(&zj_key()),
        },
    ]
}

fn keys(p: Province) -> Vec<crate::keys::PublicKey> {
    match p.code() {
        SC => vec![sc_key().public()],
        JS => vec![js_key().public()],
        ZJ => vec![zj_key().public()],
        _ => vec![],
    }
}

fn kinds(r: &ChainReport) -> Vec<ChainKind> {
    r.entries.iter().map(|e| e.kind).collect()
}

#[test]
fn a_whole_chain_verifies_in_order_with_summaries() {
    let r = verify_chain(TRIP_ID, &chain(), keys).unwrap();
    assert!(r.all_ok(), "{r:?}");
    use ChainKind::*;
    assert_eq!(
        kinds(&r),
        [Created, Boarded, Sealed, Checked, Arrived, HandedOver]
    );
    let lines: Vec<String> = r
        .entries
        .iter()
        .map(|e| e.content.as_ref().unwrap().summary())
        .collect();
    assert_eq!(lines[1], "boarded seat 3: green, issuer 510000");
    assert_eq!(lines[2], "sealed version 1: 2 passengers, 1 crew");
    assert_eq!(lines[3], "STOP at 320000 苏皖界G40收费站, version 1");
    assert_eq!(lines[4], "arrived: version 1 checked in by 330000 at 厂门");
    let receipt = r.entries[5].content.as_ref().unwrap();
    assert_eq!(
        receipt.details(),
        [
            "seat 1: present, no measure",
            "seat 2: present, health observation (体温37.6℃)",
            "seat 3: missing, no measure (未上车)",
        ]
    );
}

#[test]
fn a_reordered_chain_still_verifies_and_comes_back_sorted() {
    let mut items = chain();
    items.reverse();
    items.swap(1, 3);
    let r = verify_chain(TRIP_ID, &items, keys).unwrap();
    assert!(r.all_ok());
    use ChainKind::*;
    assert_eq!(
        kinds(&r),
        [Created, Boarded, Sealed, Checked, Arrived, HandedOver]
    );
}

#[test]
fn forged_foreign_and_unknown_items_are_named_the_others_still_verify() {
    let mut items = chain();
    // One byte of the boarding's signature flipped.
    let last = items[1].signed.len() - 1;
    items[1].signed[last] ^= 1;
    // An arrival of another trip.
    items[4].signed = TripEvent {
        trip_id: TripId([1; 8]),
        ..arrived()
    }
    .sign(&zj_key());
    // A check report signed by a key Jiangsu never had.
    items[3].signed = check_report().sign(&testkit::stranger());
    // A receipt stated as a refusal.
    items[5].kind = ChainKind::Refused;
    let r = verify_chain(TRIP_ID, &items, keys).unwrap();
    let faults: Vec<(usize, &'static str)> = r
        .failures()
        .map(|e| (e.index, e.outcome.as_ref().unwrap_err().code()))
        .collect();
    assert_eq!(
        faults,
        [
            (1, "bad_signature"),
            (3, "unknown_key"),
            (4, "wrong_trip"),
            (5, "kind_mismatch"),
        ]
    );
    assert!(r.entries.iter().filter(|e| e.ok()).count() == 2);
    assert_eq!(
        r.entries[1].outcome.as_ref().unwrap_err().to_string(),
        format!(
            "the signature does not verify under 510000's key {}",
            sc_key().kid()
        )
    );
    assert_eq!(
        verify_chain(TRIP_ID, &[], keys).unwrap_err(),
        ChainError::Empty
    );
    // Garbage is malformed, and sorts last.
    let mut items = chain();
    items[0].signed = vec![1, 2, 3];
    let r = verify_chain(TRIP_ID, &items, keys).unwrap();
    assert_eq!(r.entries.last().unwrap().index, 0);
    assert_eq!(
        r.entries
            .last()
            .unwrap()
            .outcome
            .as_ref()
            .unwrap_err()
            .code(),
        "malformed"
    );
}

#[test]
fn chain_kinds_have_the_proto_numbers_and_names() {
    for k in ChainKind::ALL {
        assert_eq!(ChainKind::from_number(k as u64), Some(k));
        assert_eq!(ChainKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(ChainKind::HandedOver as u64, 8);
    assert_eq!(ChainKind::from_number(0), None);
}

#[test]
fn within_one_second_the_seal_parts_what_came_before_from_what_came_after() {
    // Boarded before the seal, removed after it, all in the second of the seal (NOW), given in
    // reverse: the seal of version 1 stands between them.
    let at_seal = |version, seat, detail| TripEvent {
        at: NOW,
        version,
        seat,
        detail,
        ..boarded()
    };
    let board = at_seal(
        0,
        2,
        EventDetail::Boarded {
            issuer: prov(SC),
            status: HealthStatus::Green,
            crew: false,
        },
    );
    let remove = at_seal(
        1,
        2,
        EventDetail::Removed {
            reason: ReasonText::default(),
        },
    );
    let sealed = SignedManifest::decode(&sign(&trip(3), &sc_key())).unwrap();
    let items = vec![
        ChainItem {
            kind: ChainKind::Removed,
            signed: remove.sign(&sc_key()),
        },
        ChainItem {
            kind: ChainKind::Sealed,
            signed: sealed.cose_bytes().to_vec(),
        },
        ChainItem {
            kind: ChainKind::Boarded,
            signed: board.sign(&sc_key()),
        },
    ];
    let r = verify_chain(TRIP_ID, &items, keys).unwrap();
    assert!(r.all_ok());
    use ChainKind::*;
    assert_eq!(kinds(&r), [Boarded, Sealed, Removed]);
}
