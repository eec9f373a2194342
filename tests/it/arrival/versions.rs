//! Versions at the destination: a newer version checked in replaces the older one (its
//! confirmations dropped: the people differ), the older one shown after it is superseded, and
//! what was recorded survives a restart of the destination.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_version_replaces_the_older_and_the_older_is_then_superseded() {
    let s = scene().await;
    let codes = sc_codes(&s, 701, 3).await;
    let (trip, v1) = sealed_trip(&s, "川R·33333", &codes).await;
    let mut gate = arrivals(&s.zj, &s.receiver).await;
    let check_in = |manifest: &str| proto::CheckInManifestRequest {
        manifest: manifest.into(),
        checkpoint_id: "gate 3".into(),
    };

    let c = gate
        .check_in_manifest(check_in(&v1))
        .await
        .unwrap()
        .into_inner();
    assert!(c.verdict.unwrap().pass);
    gate.confirm_person(missing(&trip, 3, "stayed home"))
        .await
        .unwrap();

    // The organizer takes seat 3 off and seals version 2.
    let mut trips = TripServiceClient::new(channel_as(&s.sc, Some(&s.organizer)).await);
    trips
        .remove_person(proto::RemovePersonRequest {
            trip_id: trip.clone(),
            seat: 3,
            reason: "stayed home".into(),
        })
        .await
        .unwrap();
    let v2 = trips
        .seal_manifest(proto::SealManifestRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);

    let c = gate
        .check_in_manifest(check_in(&v2.manifest))
        .await
        .unwrap()
        .into_inner();
    let v = c.verdict.unwrap();
    assert!(v.pass, "{v:?}");
    assert_eq!((v.version, c.people.len()), (2, 2));
    let list = gate
        .list_arrivals(proto::ListArrivalsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let a = &list.arrivals[0];
    assert_eq!((a.version, a.confirmed, a.listed), (2, 0, 2));

    // Version 1 shown again: STOP, superseded; nothing changes.
    let c = gate
        .check_in_manifest(check_in(&v1))
        .await
        .unwrap()
        .into_inner();
    let v = c.verdict.unwrap();
    assert!(!v.pass);
    assert_eq!(
        v.reasons.iter().map(|r| r.reason).collect::<Vec<_>>(),
        vec![proto::ManifestReason::Superseded as i32],
        "{v:?}"
    );
    // Version 2 checked in again keeps its confirmations.
    gate.confirm_person(confirm(&trip, 1, &codes[0], MEASURE_NONE, ""))
        .await
        .unwrap();
    let c = gate
        .check_in_manifest(check_in(&v2.manifest))
        .await
        .unwrap()
        .into_inner();
    assert!(c.verdict.unwrap().pass);

    // The destination restarts: the arrival and its confirmation are still there.
    s.zj.shutdown().await.unwrap();
    let zj = start_on(&s.zj_cfg, &s.clock).await;
    let mut gate = arrivals(&zj, &s.receiver).await;
    let list = gate
        .list_arrivals(proto::ListArrivalsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let a = &list.arrivals[0];
    assert_eq!(
        (a.trip_id.as_str(), a.version, a.confirmed, a.listed),
        (trip.as_str(), 2, 1, 2)
    );
    let r = gate
        .confirm_person(confirm(&trip, 2, &codes[1], MEASURE_NONE, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.remaining, 0);
    let h = gate
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let receipt = h.receipt.unwrap();
    assert_eq!((receipt.version, receipt.people.len()), (2, 2));
    s.sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}
