//! Trips at their origin (docs/transport.md), against real nodes: Sichuan (the origin) and
//! Zhejiang (the destination), with an agreement under which Zhejiang's codes board in
//! Sichuan. Create, board (every refusal with its reason), seal and supersede, list, cancel;
//! the records the destination sends back (records.rs); the CLI (cli.rs).

mod cli;
mod crash;
mod records;

use crate::common;

use common::*;
use hcmr::client::NodeChannel;
use hcmr::node::NodeHandle;
use hcmr::proto::trip_service_client::TripServiceClient;
use hcmr::proto::{self, BoardingRefusal, Reason, TripState};
use tonic::Code;

const SICHUAN: u32 = 510000;
const ZHEJIANG: u32 = 330000;

/// The two nodes on one manual clock, their agreement concluded, and an organizer's token at
/// Sichuan.
struct Trip {
    _dir: tempfile::TempDir,
    sc_cfg: std::path::PathBuf,
    clock: hcmr::clock::Clock,
    sc: NodeHandle,
    zj: NodeHandle,
    organizer: String,
}

async fn setup() -> Trip {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let zj_cfg = init_node(dir.path(), ZHEJIANG).await;
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let zj = start_on(&zj_cfg, &clock).await;
    // Sichuan counts Zhejiang's colours as they are, and Zhejiang Sichuan's.
    conclude(
        &sc,
        &zj,
        &[(G, G), (Y, Y), (R, R)],
        &[(G, G), (Y, Y), (R, R)],
    )
    .await;
    let organizer = organizer_token(&sc).await;
    Trip {
        _dir: dir,
        sc_cfg,
        clock,
        sc,
        zj,
        organizer,
    }
}

/// Adds a caller with the organizer role only; its token.
async fn organizer_token(n: &NodeHandle) -> String {
    operator(n)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "labour-dept".into(),
            roles: vec![proto::CallerRole::Organizer as i32],
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

impl Trip {
    async fn trips(&self) -> TripServiceClient<NodeChannel> {
        TripServiceClient::new(channel_as(&self.sc, Some(&self.organizer)).await)
    }

    /// A trip from Yanting county (511304) to a Ningbo factory through Anhui, leaving in an
    /// hour, arriving 25 h later.
    async fn create(&self, vehicle: &str) -> String {
        let now = self.clock.now();
        self.trips()
            .await
            .create_manifest(create_request(vehicle, now))
            .await
            .unwrap()
            .into_inner()
            .trip_id
    }

    async fn board(&self, trip: &str, code: &str, seat: u32) -> proto::BoardPersonResponse {
        self.trips()
            .await
            .board_person(proto::BoardPersonRequest {
                trip_id: trip.into(),
                code: code.into(),
                seat,
                crew: false,
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn seal(&self, trip: &str) -> proto::SealManifestResponse {
        self.trips()
            .await
            .seal_manifest(proto::SealManifestRequest {
                trip_id: trip.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn get(&self, trip: &str) -> proto::ManifestView {
        self.trips()
            .await
            .get_manifest(proto::GetManifestRequest {
                trip_id: trip.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn list(
        &self,
        state: TripState,
        page_size: u32,
        token: &str,
    ) -> proto::ListManifestsResponse {
        self.trips()
            .await
            .list_manifests(proto::ListManifestsRequest {
                state: state as i32,
                page_size,
                page_token: token.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }
}

fn create_request(vehicle: &str, now: hcmr::UnixTime) -> proto::CreateManifestRequest {
    proto::CreateManifestRequest {
        vehicle: vehicle.into(),
        origin: "511304".into(),
        destination: "330212".into(),
        place: "宁波鄞州工厂".into(),
        transit: vec!["340000".into()],
        departure: (now + 3600).secs(),
        arrival: (now + 26 * 3600).secs(),
        escort: "王*".into(),
    }
}

/// Issues a code at `n` whose status holds `valid_secs` from now (by the system clock, which
/// the manual clock started at).
async fn issue_valid(
    n: &NodeHandle,
    subject: proto::Subject,
    status: i32,
    valid_secs: u64,
) -> proto::IssueHealthCodeResponse {
    codes(n)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject),
            status,
            status_valid_until: (hcmr::unix_now() + valid_secs).secs(),
            code_lifetime_secs: 3600,
            qr_format: 0,
        })
        .await
        .unwrap()
        .into_inner()
}

fn refusal(r: &proto::BoardPersonResponse) -> BoardingRefusal {
    assert!(!r.boarded, "boarded: {r:?}");
    BoardingRefusal::try_from(r.refusal).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_boards_seals_and_supersedes_with_every_refusal_by_its_reason() {
    let t = setup().await;
    let a = t.create("川R·12345").await;
    assert_eq!(a.len(), 16);

    // Own and peer codes board, seats from the lowest free.
    let li = issue(&t.sc, subject("李秀英", "511302", 242), G, 3600).await;
    let r = t.board(&a, &li.code, 0).await;
    assert!(r.boarded, "{r:?}");
    assert_eq!(r.seat, 1);
    let p = r.person.unwrap();
    assert_eq!(p.issuer_province, "510000");
    assert_eq!(p.status, G);
    assert_eq!(p.cti, li.cti);
    assert_eq!(p.boarded_at, t.clock.now().secs());
    assert_eq!(p.subject.as_ref().unwrap().masked_name, "李*英");
    let chen = issue(&t.zj, subject("陈伟", "330106", 31), G, 3600).await;
    let r = t.board(&a, &chen.code, 0).await;
    assert_eq!((r.boarded, r.seat), (true, 2));
    assert_eq!(r.person.unwrap().issuer_province, "330000");

    // Not recognized, with verification's reason.
    let r = t.board(&a, "HCMR1:not a code", 0).await;
    assert_eq!(refusal(&r), BoardingRefusal::NotRecognized);
    assert_eq!(r.verify_reason, Reason::Malformed as i32);
    // Yellow.
    let wang = issue(&t.sc, subject("王芳", "510104", 7), Y, 3600).await;
    let r = t.board(&a, &wang.code, 0).await;
    assert_eq!(refusal(&r), BoardingRefusal::StatusNotGreen);
    assert_eq!(r.detail, "the status counts as yellow here");
    // Green for a day only: the trip arrives in 26 h, and the margin is 2 h more.
    let short = issue_valid(&t.sc, subject("张伟", "510104", 8), G, 86_400).await;
    let r = t.board(&a, &short.code, 0).await;
    assert_eq!(refusal(&r), BoardingRefusal::StatusEndsBeforeArrival);
    // Green until 28 h from now: exactly enough.
    let enough = issue_valid(&t.sc, subject("张伟", "510104", 8), G, 28 * 3600).await;
    // The same person (a newer code): already on this trip.
    let li2 = issue(&t.sc, subject("李秀英", "511302", 242), G, 3600).await;
    let r = t.board(&a, &li2.code, 0).await;
    assert_eq!(refusal(&r), BoardingRefusal::AlreadyOnThisManifest);
    assert_eq!(r.detail, "already on this trip in seat 1");
    // A taken seat.
    let r = t.board(&a, &enough.code, 2).await;
    assert_eq!(refusal(&r), BoardingRefusal::SeatTaken);
    let r = t.board(&a, &enough.code, 7).await;
    assert_eq!((r.boarded, r.seat), (true, 7));
    // On another open trip: refused there, naming this one.
    t.clock.set(t.clock.now() + 60);
    let b = t.create("川R·67890").await;
    let r = t.board(&b, &li.code, 0).await;
    assert_eq!(refusal(&r), BoardingRefusal::OnAnotherManifest);
    assert_eq!(r.other_trip_id, a);
    // A seat out of range is a bad argument, not a refusal.
    let e = t
        .trips()
        .await
        .board_person(proto::BoardPersonRequest {
            trip_id: b.clone(),
            code: li.code.clone(),
            seat: 100,
            crew: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("seat:"), "{}", e.message());

    // Seal: version 1, signed by Sichuan, the people in seat order.
    let s1 = t.seal(&a).await;
    assert_eq!(s1.version, 1);
    assert_eq!(s1.sealed_at, t.clock.now().secs());
    assert_eq!(s1.characters as usize, s1.manifest.len());
    assert!(s1.manifest.starts_with("HCMRT1:"));
    assert_eq!(s1.qr_version, 11, "3 people: {} characters", s1.characters);
    let m = hcmr::manifest::SignedManifest::decode(&s1.manifest).unwrap();
    assert_eq!(m.manifest.trip_id.to_string(), a);
    assert_eq!(m.manifest.headcount(), (3, 0));
    assert_eq!(
        m.manifest.people[2].cti.to_vec(),
        hex::decode(&enough.cti).unwrap()[..6]
    );
    assert_eq!(hex::encode(m.kid.0), kid_of(&t.sc).await);
    let v = t.get(&a).await;
    assert_eq!(v.state, TripState::Sealed as i32);
    assert_eq!((v.version, v.manifest.as_str()), (1, s1.manifest.as_str()));
    assert_eq!(
        v.people.iter().map(|p| p.seat).collect::<Vec<_>>(),
        vec![1, 2, 7]
    );
    assert!(!v.changed_since_seal);

    // A change after the seal, then a second seal: version 2 supersedes.
    t.trips()
        .await
        .remove_person(proto::RemovePersonRequest {
            trip_id: a.clone(),
            seat: 2,
            reason: "left at Guangyuan".into(),
        })
        .await
        .unwrap();
    let v = t.get(&a).await;
    assert!(v.changed_since_seal);
    assert_eq!(v.people.len(), 2);
    // Chen left: free to board the other trip.
    assert!(t.board(&b, &chen.code, 0).await.boarded);
    t.clock.set(t.clock.now() + 60);
    let s2 = t.seal(&a).await;
    assert_eq!(s2.version, 2);
    assert_ne!(s2.manifest, s1.manifest);
    let v = t.get(&a).await;
    assert_eq!((v.version, v.manifest.as_str()), (2, s2.manifest.as_str()));
    assert_eq!(v.sealed_at, t.clock.now().secs());
    assert_eq!(
        hcmr::manifest::SignedManifest::decode(&v.manifest)
            .unwrap()
            .manifest
            .people
            .len(),
        2
    );

    // Listing: newest first, by state, in pages.
    let all = t.list(TripState::Unspecified, 0, "").await;
    let ids: Vec<_> = all.manifests.iter().map(|m| m.trip_id.clone()).collect();
    assert_eq!(ids, vec![b.clone(), a.clone()]);
    assert!(
        all.manifests[0].people.is_empty(),
        "a list leaves people out"
    );
    assert!(all.next_page_token.is_empty());
    let open = t.list(TripState::Open, 0, "").await;
    assert_eq!(open.manifests.len(), 1);
    assert_eq!(open.manifests[0].trip_id, b);
    let sealed = t.list(TripState::Sealed, 0, "").await;
    assert_eq!(sealed.manifests[0].trip_id, a);
    let first = t.list(TripState::Unspecified, 1, "").await;
    assert_eq!(first.manifests[0].trip_id, b);
    let second = t
        .list(TripState::Unspecified, 1, &first.next_page_token)
        .await;
    assert_eq!(second.manifests[0].trip_id, a);
    assert!(second.next_page_token.is_empty());

    // Cancel: only a trip never sealed; its people are free again.
    let e = t
        .trips()
        .await
        .cancel_manifest(proto::CancelManifestRequest { trip_id: a.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    t.trips()
        .await
        .cancel_manifest(proto::CancelManifestRequest { trip_id: b.clone() })
        .await
        .unwrap();
    assert_eq!(t.get(&b).await.state, TripState::Cancelled as i32);
    let c = t.create("川R·55555").await;
    assert!(
        t.board(&c, &chen.code, 0).await.boarded,
        "freed by the cancel"
    );
    let e = t
        .trips()
        .await
        .seal_manifest(proto::SealManifestRequest { trip_id: b.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Overdue: sealed, no handover by arrival plus the 4 h grace.
    let arrival = t.get(&a).await.arrival;
    t.clock.set(hcmr::UnixTime::from_secs(arrival + 4 * 3600));
    assert_eq!(t.get(&a).await.state, TripState::Sealed as i32);
    t.clock
        .set(hcmr::UnixTime::from_secs(arrival + 4 * 3600 + 1));
    assert_eq!(t.get(&a).await.state, TripState::Overdue as i32);
    let overdue = t.list(TripState::Overdue, 0, "").await;
    assert_eq!(overdue.manifests.len(), 1);
    assert_eq!(overdue.manifests[0].trip_id, a);

    // A restart keeps everything.
    let before = t.get(&a).await;
    let Trip {
        _dir,
        sc_cfg,
        clock,
        sc,
        zj,
        organizer,
    } = t;
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
    assert_eq!(t.get(&b).await.state, TripState::Cancelled as i32);
    assert_eq!(t.get(&c).await.people.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_holds_99_people_and_refuses_the_hundredth() {
    let t = setup().await;
    let a = t.create("G1234/05").await;
    for seq in 1..=99u16 {
        let code = issue(&t.sc, subject("赵敏", "510104", seq), G, 3600)
            .await
            .code;
        let r = t.board(&a, &code, 0).await;
        assert_eq!((r.boarded, r.seat), (true, u32::from(seq)), "{r:?}");
    }
    let code = issue(&t.sc, subject("赵敏", "510104", 100), G, 3600)
        .await
        .code;
    let r = t.board(&a, &code, 0).await;
    assert_eq!(refusal(&r), BoardingRefusal::ManifestFull);
    let s = t.seal(&a).await;
    assert_eq!(s.version, 1);
    assert_eq!(
        hcmr::manifest::SignedManifest::decode(&s.manifest)
            .unwrap()
            .manifest
            .people
            .len(),
        99
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trips_are_refused_naming_the_field_and_other_roles_are_denied() {
    let t = setup().await;
    let now = t.clock.now();
    for (field, change) in [
        (
            "origin",
            Box::new(|r: &mut proto::CreateManifestRequest| r.origin = "330106".into())
                as Box<dyn Fn(&mut proto::CreateManifestRequest)>,
        ),
        ("destination", Box::new(|r| r.destination = "510104".into())),
        ("vehicle", Box::new(|r| r.vehicle = "x".repeat(17))),
        (
            "arrival",
            Box::new(|r| r.arrival = r.departure + 72 * 3600 + 1),
        ),
        ("escort", Box::new(|r| r.escort = "王小明".into())),
    ] {
        let mut r = create_request("川R·12345", now);
        change(&mut r);
        let e = t.trips().await.create_manifest(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}");
        assert!(
            e.message().starts_with(&format!("{field}:")),
            "{}",
            e.message()
        );
    }
    let e = t
        .trips()
        .await
        .get_manifest(proto::GetManifestRequest {
            trip_id: "00112233445566aa".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // A checkpoint device's token (verifier only) reaches no TripService call.
    let verifier = operator(&t.sc)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "toll-gate".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut as_verifier = TripServiceClient::new(channel_as(&t.sc, Some(&verifier)).await);
    let e = as_verifier
        .list_manifests(proto::ListManifestsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = as_verifier
        .create_manifest(create_request("川R·12345", now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Nor does an organizer token reach anything else.
    let e = codes_as(&t.sc, Some(&t.organizer))
        .await
        .verify_health_code(proto::VerifyHealthCodeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let _ = &t.zj;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_trip_is_counted_by_the_gauge() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    crate::operations::enable_metrics(&cfg);
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&cfg, &clock).await;
    let addr = sc.metrics_addr.expect("metrics_listen is bound");
    let overdue = || async {
        let (_, body) = crate::operations::get_metrics(addr, sc.tls_cert.as_deref()).await;
        crate::operations::samples(&body)["hcmr_trips_overdue"]
    };
    let mut trips =
        TripServiceClient::new(channel_as(&sc, Some(&organizer_token(&sc).await)).await);
    let a = trips
        .create_manifest(create_request("川R·12345", clock.now()))
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    let code = issue(&sc, subject("李秀英", "511302", 242), G, 3600)
        .await
        .code;
    let r = trips
        .board_person(proto::BoardPersonRequest {
            trip_id: a.clone(),
            code,
            seat: 0,
            crew: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.boarded);
    assert_eq!(overdue().await, 0.0, "open trips are never overdue");
    trips
        .seal_manifest(proto::SealManifestRequest { trip_id: a.clone() })
        .await
        .unwrap();
    let arrival = clock.now() + 26 * 3600;
    clock.set(arrival + 4 * 3600);
    assert_eq!(overdue().await, 0.0, "within the grace period");
    clock.set(arrival + 4 * 3600 + 1);
    assert_eq!(overdue().await, 1.0);
}
