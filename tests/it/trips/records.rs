//! FederationService.SubmitTripRecord at the trip's origin: check reports and the handover
//! receipt from the destination's node, verified under the keys Sichuan trusts for it; the
//! duplicates, forgeries and replays each refused with a precise code, changing nothing.

use super::*;
use hcmr::keyfile::NodeKeyFile as _;
use hcmr::keys::NodeKey;
use hcmr::manifest::{
    manifest_hash, CheckReport, Checkpoint, ManifestReason, Measure, Outcome, ReasonText, Receipt,
    ReceiptPerson, ReportReason, ReportVerdict, SignedManifest, TripId,
};
use hcmr::province::Province;
use proto::submit_trip_record_request::Record;

fn report(m: &SignedManifest, checker: u32, at: hcmr::UnixTime, pass: bool) -> CheckReport {
    CheckReport {
        trip_id: m.manifest.trip_id,
        version: m.manifest.version,
        manifest_hash: manifest_hash(m),
        checker: Province::from_code(checker).unwrap(),
        checkpoint: Checkpoint::new("浙皖界G50收费站").unwrap(),
        checked_at: at,
        verdict: if pass {
            ReportVerdict::Pass
        } else {
            ReportVerdict::Stop
        },
        reasons: if pass {
            vec![]
        } else {
            vec![ReportReason {
                reason: ManifestReason::Revoked,
                seat: Some(1),
                issuer: Some(Province::from_code(SICHUAN).unwrap()),
            }]
        },
    }
}

fn receipt(m: &SignedManifest, at: hcmr::UnixTime, outcome: Outcome) -> Receipt {
    let delivered = outcome == Outcome::Delivered;
    Receipt {
        trip_id: m.manifest.trip_id,
        version: m.manifest.version,
        manifest_hash: manifest_hash(m),
        destination: Province::from_code(ZHEJIANG).unwrap(),
        received_at: at,
        outcome,
        reason: ReasonText::new(if delivered { "" } else { "no room left" }).unwrap(),
        people: if delivered {
            (1..=m.manifest.people.len())
                .map(|seat| ReceiptPerson {
                    seat,
                    present: seat != 2,
                    measure: if seat == 1 {
                        Measure::Observation
                    } else {
                        Measure::None
                    },
                    reason: ReasonText::new(match seat {
                        1 => "37.6 °C at the gate",
                        2 => "did not get off",
                        _ => "",
                    })
                    .unwrap(),
                })
                .collect()
        } else {
            vec![]
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_the_handover_are_kept_once_and_forgeries_refused() {
    let t = setup().await;
    let a = t.create("川R·12345").await;
    for seq in 1..=3u16 {
        let code = issue(&t.sc, subject("刘洋", "511302", seq), G, 3600)
            .await
            .code;
        assert!(t.board(&a, &code, 0).await.boarded);
    }
    let v1 = SignedManifest::decode(&t.seal(&a).await.manifest).unwrap();
    t.clock.set(t.clock.now() + 60);
    let v2 = SignedManifest::decode(&t.seal(&a).await.manifest).unwrap();
    let zj_key = NodeKey::read_pem(&t.zj.dir.join("node.key")).unwrap();
    let mut as_zj = federation_as(&t.sc, &tls_identity_of(&t.zj)).await;
    let submit = |record: Record| proto::SubmitTripRecordRequest {
        record: Some(record),
    };

    // A report on version 1 (superseded, still sealed here): stored, and again a duplicate.
    let now = t.clock.now();
    let r1 = report(&v1, ZHEJIANG, now, false).sign(&zj_key);
    let ok = as_zj
        .submit_trip_record(submit(Record::CheckReport(r1.clone())))
        .await
        .unwrap()
        .into_inner();
    assert!(!ok.duplicate);
    let again = as_zj
        .submit_trip_record(submit(Record::CheckReport(r1.clone())))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    let v = t.get(&a).await;
    assert_eq!(v.state, TripState::InTransit as i32);
    assert_eq!(v.checks.len(), 1);
    let c = &v.checks[0];
    assert_eq!(
        (c.checker_province.as_str(), c.version, c.pass, c.checked_at),
        ("330000", 1, false, now.secs())
    );
    assert_eq!(c.checkpoint, "浙皖界G50收费站");
    assert_eq!(c.reasons[0].reason, proto::ManifestReason::Revoked as i32);
    assert_eq!(
        (c.reasons[0].seat, c.reasons[0].issuer_province.as_str()),
        (1, "510000")
    );

    // Refusals, each changing nothing.
    let refused = |e: tonic::Status, code: Code, text: &str| {
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(e.message().contains(text), "{}", e.message());
    };
    // Forged: the signature altered; signed by a key Sichuan does not trust for Zhejiang.
    let mut forged = report(&v2, ZHEJIANG, now + 1, true).sign(&zj_key);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let e = as_zj
        .submit_trip_record(submit(Record::CheckReport(forged)))
        .await
        .unwrap_err();
    refused(e, Code::Unauthenticated, "does not verify");
    let stranger = hcmr_core::testkit::stranger();
    let e = as_zj
        .submit_trip_record(submit(Record::CheckReport(
            report(&v2, ZHEJIANG, now + 1, true).sign(&stranger),
        )))
        .await
        .unwrap_err();
    refused(e, Code::Unauthenticated, "no key of 330000");
    // Signed as another province than the calling node's.
    let e = as_zj
        .submit_trip_record(submit(Record::CheckReport(
            report(&v2, 340000, now + 1, true).sign(&zj_key),
        )))
        .await
        .unwrap_err();
    refused(e, Code::PermissionDenied, "340000");
    // An unknown trip, a version never sealed, a hash of another manifest.
    let mut unknown = report(&v2, ZHEJIANG, now + 1, true);
    unknown.trip_id = TripId([0x11; 8]);
    let e = as_zj
        .submit_trip_record(submit(Record::CheckReport(unknown.sign(&zj_key))))
        .await
        .unwrap_err();
    refused(e, Code::NotFound, "1111111111111111");
    let mut v3 = report(&v2, ZHEJIANG, now + 1, true);
    v3.version = 3;
    let e = as_zj
        .submit_trip_record(submit(Record::CheckReport(v3.sign(&zj_key))))
        .await
        .unwrap_err();
    refused(e, Code::NotFound, "version 3");
    let mut other = report(&v2, ZHEJIANG, now + 1, true);
    other.manifest_hash = manifest_hash(&v1);
    let e = as_zj
        .submit_trip_record(submit(Record::CheckReport(other.sign(&zj_key))))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "manifest_hash");
    // Not a record at all.
    let e = as_zj
        .submit_trip_record(submit(Record::Handover(b"garbage".to_vec())))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "handover:");
    // A receipt naming a seat the version does not have.
    let mut extra = receipt(&v2, now, Outcome::Delivered);
    extra.people.push(ReceiptPerson {
        seat: 4,
        present: true,
        measure: Measure::None,
        reason: ReasonText::new("").unwrap(),
    });
    let e = as_zj
        .submit_trip_record(submit(Record::Handover(extra.sign(&zj_key))))
        .await
        .unwrap_err();
    refused(
        e,
        Code::InvalidArgument,
        "seat: seat 4 is not on version 2 (3 people)",
    );
    // A delivery that does not account for every seat.
    let mut short = receipt(&v2, now, Outcome::Delivered);
    short.people.pop();
    let e = as_zj
        .submit_trip_record(submit(Record::Handover(short.sign(&zj_key))))
        .await
        .unwrap_err();
    refused(
        e,
        Code::InvalidArgument,
        "seat 3 of version 2 is neither confirmed nor marked missing",
    );
    let v = t.get(&a).await;
    assert_eq!(v.checks.len(), 1, "nothing changed");
    assert!(v.handover.is_none());

    // Zhejiang's check-in of version 2 (docs/tracing.md section 2): stored once; another kind
    // of event, or a hash that is not version 2's, refused.
    use hcmr::manifest::{manifest_hash, Checkpoint, EventDetail, TripEvent};
    let arrived = |version: u64, hash: [u8; 32], detail: Option<EventDetail>| {
        TripEvent {
            trip_id: v2.manifest.trip_id,
            at: t.clock.now(),
            recorder: hcmr::province::Province::from_code(ZHEJIANG).unwrap(),
            seat: 0,
            version,
            detail: detail.unwrap_or(EventDetail::Arrived {
                checkpoint: Checkpoint::new("厂门").unwrap(),
                manifest_hash: hash,
            }),
        }
        .sign(&zj_key)
    };
    let event = arrived(2, manifest_hash(&v2), None);
    let ok = as_zj
        .submit_trip_record(submit(Record::ArrivalEvent(event.clone())))
        .await
        .unwrap()
        .into_inner();
    assert!(!ok.duplicate);
    let again = as_zj
        .submit_trip_record(submit(Record::ArrivalEvent(event)))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    let e = as_zj
        .submit_trip_record(submit(Record::ArrivalEvent(arrived(
            2,
            manifest_hash(&v1),
            None,
        ))))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "manifest_hash");
    let e = as_zj
        .submit_trip_record(submit(Record::ArrivalEvent(arrived(
            0,
            [0; 32],
            Some(EventDetail::Cancelled),
        ))))
        .await
        .unwrap_err();
    refused(e, Code::InvalidArgument, "only an arrived event is taken");

    // The handover of version 2: delivered; again a duplicate; a different one refused.
    t.clock.set(t.clock.now() + 3600);
    let h = receipt(&v2, t.clock.now(), Outcome::Delivered).sign(&zj_key);
    let ok = as_zj
        .submit_trip_record(submit(Record::Handover(h.clone())))
        .await
        .unwrap()
        .into_inner();
    assert!(!ok.duplicate);
    assert!(
        as_zj
            .submit_trip_record(submit(Record::Handover(h.clone())))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    let refusal = receipt(&v2, t.clock.now(), Outcome::Refused).sign(&zj_key);
    let e = as_zj
        .submit_trip_record(submit(Record::Handover(refusal)))
        .await
        .unwrap_err();
    refused(e, Code::AlreadyExists, "already_handed_over");

    let v = t.get(&a).await;
    assert_eq!(v.state, TripState::Delivered as i32);
    let got = v.handover.as_ref().unwrap();
    assert_eq!(
        (got.destination_province.as_str(), got.version, got.refused),
        ("330000", 2, false)
    );
    assert_eq!(got.signed, h);
    assert_eq!(got.people.len(), 3);
    assert_eq!(
        (got.people[0].measure, got.people[0].reason.as_str()),
        (
            proto::HandoverMeasure::HealthObservation as i32,
            "37.6 °C at the gate"
        )
    );
    assert!(!got.people[1].present);

    // A restart keeps the reports and the handover; the duplicate is still known.
    let before = t.get(&a).await;
    let Trip {
        _dir,
        sc_cfg,
        clock,
        sc,
        zj,
        organizer,
    } = t;
    pin_listen(&sc_cfg, &sc);
    sc.shutdown().await.unwrap();
    let t = Trip {
        sc: start_on(&sc_cfg, &clock).await,
        _dir,
        sc_cfg,
        clock,
        zj,
        organizer,
    };
    assert_eq!(t.get(&a).await, before);
    let mut as_zj = federation_as(&t.sc, &tls_identity_of(&t.zj)).await;
    assert!(
        as_zj
            .submit_trip_record(submit(Record::Handover(h)))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    // A refusal of an open-then-sealed trip makes it REFUSED.
    let b = t.create("川R·67890").await;
    let code = issue(&t.sc, subject("刘洋", "511302", 1), G, 3600)
        .await
        .code;
    assert!(t.board(&b, &code, 0).await.boarded, "freed by the handover");
    let vb = SignedManifest::decode(&t.seal(&b).await.manifest).unwrap();
    as_zj
        .submit_trip_record(submit(Record::Handover(
            receipt(&vb, t.clock.now(), Outcome::Refused).sign(&zj_key),
        )))
        .await
        .unwrap();
    let v = t.get(&b).await;
    assert_eq!(v.state, TripState::Refused as i32);
    assert_eq!(v.handover.unwrap().reason, "no room left");

    // A delivered trip is never overdue, and no longer changes.
    let arrival = t.get(&a).await.arrival;
    t.clock.set(hcmr::UnixTime::from_secs(arrival + 86_400));
    assert_eq!(t.get(&a).await.state, TripState::Delivered as i32);
    let e = t.seal_err(&a).await;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("handed over by 330000"),
        "{}",
        e.message()
    );
}

impl Trip {
    async fn seal_err(&self, trip: &str) -> tonic::Status {
        self.trips()
            .await
            .seal_manifest(proto::SealManifestRequest {
                trip_id: trip.into(),
            })
            .await
            .unwrap_err()
    }
}
