//! A real `hcmr serve` killed with SIGKILL right after its answers: every trip write it
//! acknowledged (create, boarding, seal, removal) is there after the restart, index included.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_trip_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("https://127.0.0.1:{port}");
    let mut o = hcmr::node::InitOptions::new(format!("127.0.0.1:{port}").parse().unwrap());
    o.endpoint = Some(endpoint.clone());
    let cfg = hcmr::node::init_node(
        hcmr::province::Province::from_code(SICHUAN).unwrap(),
        &dir.path().join("sc"),
        &o,
    )
    .await
    .unwrap();
    add_test_caller(&cfg).await;
    let cert = dir.path().join("sc/tls/node.crt");
    // The test caller holds every role, organizer and issuer among them.
    let token = std::fs::read_to_string(dir.path().join("sc").join(TEST_TOKEN_FILE)).unwrap();
    let connect = || async {
        hcmr::client::connect(&endpoint, Some(&cert), Some(&token))
            .await
            .unwrap()
    };

    let server = crate::crash::serve(&cfg, &endpoint, &cert, &token).await;
    let mut trips = TripServiceClient::new(connect().await);
    let mut issuer =
        proto::health_code_service_client::HealthCodeServiceClient::new(connect().await);
    let now = hcmr::unix_now();
    let a = trips
        .create_manifest(create_request("川R·12345", now))
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    let mut first_code = String::new();
    for seq in 1..=3u16 {
        let code = issuer
            .issue_health_code(proto::IssueHealthCodeRequest {
                subject: Some(subject("周杰", "511302", seq)),
                status: G,
                status_valid_until: (now + 7 * 86_400).secs(),
                code_lifetime_secs: 3600,
                qr_format: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .code;
        if seq == 1 {
            first_code = code.clone();
        }
        let r = trips
            .board_person(proto::BoardPersonRequest {
                trip_id: a.clone(),
                code,
                seat: 0,
                crew: seq == 1,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.boarded, "{r:?}");
    }
    let sealed = trips
        .seal_manifest(proto::SealManifestRequest { trip_id: a.clone() })
        .await
        .unwrap()
        .into_inner();
    trips
        .remove_person(proto::RemovePersonRequest {
            trip_id: a.clone(),
            seat: 3,
            reason: "stayed home".into(),
        })
        .await
        .unwrap();
    let before = trips
        .get_manifest(proto::GetManifestRequest { trip_id: a.clone() })
        .await
        .unwrap()
        .into_inner();
    drop(server); // SIGKILL, no drain

    let _server = crate::crash::serve(&cfg, &endpoint, &cert, &token).await;
    let mut trips = TripServiceClient::new(connect().await);
    let after = trips
        .get_manifest(proto::GetManifestRequest { trip_id: a.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, before);
    assert_eq!((after.version, after.manifest), (1, sealed.manifest));
    assert_eq!(after.people.len(), 2);
    assert!(after.changed_since_seal);
    // The holders' index came back too.
    let b = trips
        .create_manifest(create_request("川R·67890", now))
        .await
        .unwrap()
        .into_inner()
        .trip_id;
    let r = trips
        .board_person(proto::BoardPersonRequest {
            trip_id: b,
            code: first_code,
            seat: 0,
            crew: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refusal(&r), BoardingRefusal::OnAnotherManifest);
    assert_eq!(r.other_trip_id, a);
}
