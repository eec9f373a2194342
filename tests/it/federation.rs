//! Three real province nodes on loopback: agreements signed over gRPC, codes issued and verified
//! across them with every verdict of the scenario, and a restart that keeps keys and agreements.

use crate::common;

use common::*;
use hcmr::proto::{self, AgreementState, Reason, Verdict};
use tonic::Code;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const JIANGSU: u32 = 320000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_provinces_recognize_exactly_as_agreed_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    let js_cfg = init_node(dir.path(), JIANGSU).await;
    // The nodes read one manual clock, which the test moves instead of sleeping; it starts after
    // `init`, which dates each feed's first entry by the system clock.
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let gd = start_on(&gd_cfg, &clock).await;
    let js = start_on(&js_cfg, &clock).await;

    // GetNodeInfo publishes the province and the key with its kid.
    let info = federation(&sc)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.province, "510000");
    assert_eq!(info.province_name, "Sichuan");
    assert_eq!(info.keys.len(), 1);
    assert_eq!(info.keys[0].kid.len(), 8);
    assert_eq!(info.endpoint, sc.endpoint);

    // Guangdong proposes; it counts Sichuan's yellow as red (its scheme has only green and red).
    let now = clock.now();
    let created = operator(&gd)
        .await
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: sc.endpoint.clone(),
            peer_codes_here: map(&[(G, G), (Y, R), (R, R)]),
            our_codes_there: map(&[(G, G), (R, R)]),
            max_code_age_secs: 3600,
            max_trust_age_secs: 0,
            amends: String::new(),
            expected_peer_kid: hex::encode(&info.keys[0].kid),
            effective_from: (now - 10).secs(),
            effective_until: (now + 86_400).secs(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(created.state, AgreementState::Proposed as i32);
    assert_eq!(created.proposer_province, "440000");
    assert_eq!(created.acceptor_province, "510000");
    assert_eq!(
        created.acceptor_keys[0].kid, info.keys[0].kid,
        "pins Sichuan's key"
    );

    // Before acceptance a Sichuan code is not recognized in Guangdong.
    let early = issue(&sc, subject("李秀英", "511302", 242), Y, 300).await;
    let v = verify(&gd, &early.code).await;
    assert_eq!(v.reason, Reason::NoAgreement as i32);

    // Sichuan's operator sees it waiting, and accepts.
    let listed = operator(&sc)
        .await
        .list_agreements(proto::ListAgreementsRequest {
            state: AgreementState::AwaitingAcceptance as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    let accepted = approve(&sc, &created.id).await;
    assert_eq!(accepted.state, AgreementState::Concluded as i32);
    // The doubly signed agreement is in both stores.
    for n in [&gd, &sc] {
        let all = operator(n)
            .await
            .list_agreements(proto::ListAgreementsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .agreements;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, AgreementState::Concluded as i32);
        let signed = all[0].signed.as_ref().unwrap();
        assert!(signed.proposer_signature.is_some() && signed.acceptor_signature.is_some());
    }
    // Accepting twice is refused.
    let again = operator(&sc)
        .await
        .approve_agreement(proto::ApproveAgreementRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    // Sichuan codes at Guangdong: green as green, yellow as red, red as red.
    let green = issue(&sc, subject("王建国", "510104", 131), G, 300).await;
    let yellow = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;
    let red = issue(&sc, subject("张伟", "510802", 311), R, 300).await;
    for (code, local) in [(&green, G), (&yellow, R), (&red, R)] {
        let v = verify(&gd, &code.code).await;
        assert_eq!(v.verdict, Verdict::Recognized as i32, "{v:?}");
        assert_eq!(v.reason, Reason::Ok as i32);
        assert_eq!(v.local_status, local);
        assert_eq!(v.issuer_province, "510000");
        assert!(v.signature_verified);
        assert_eq!(v.agreement_id, created.id);
        assert_eq!(v.exp, code.exp);
    }
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(v.issued_status, Y);
    let subj = v.subject.unwrap();
    assert_eq!(subj.masked_name, "李*英");
    let number = document_number("511302", 242);
    assert_eq!(
        subj.masked_document_number,
        hcmr::identity::mask_document_number(&number)
    );
    // One `*` for the hidden run: 4 + 1 + 4 characters.
    assert_eq!(&subj.masked_document_number[..5], "5113*");
    assert_eq!(subj.masked_document_number.len(), 9);

    // The issuing node recognizes its own code.
    let own = verify(&sc, &yellow.code).await;
    assert_eq!(own.verdict, Verdict::Recognized as i32);
    assert_eq!(own.local_status, Y);
    assert_eq!(own.agreement_id, "");

    // Guangdong codes at Sichuan: green and red only.
    let gd_green = issue(&gd, subject("马超", "440106", 77), G, 300).await;
    let gd_yellow = issue(&gd, subject("马超", "440106", 77), Y, 300).await;
    let v = verify(&sc, &gd_green.code).await;
    assert_eq!((v.verdict, v.local_status), (Verdict::Recognized as i32, G));
    let v = verify(&sc, &gd_yellow.code).await;
    assert_eq!(v.verdict, Verdict::NotRecognized as i32);
    assert_eq!(v.reason, Reason::StatusNotRecognized as i32);
    assert_eq!(v.local_status, proto::HealthStatus::Unspecified as i32);

    // Jiangsu has no agreement with anyone.
    let js_green = issue(&js, subject("吴芳", "320102", 264), G, 300).await;
    let v = verify(&gd, &js_green.code).await;
    assert_eq!(
        (v.verdict, v.reason),
        (Verdict::NotRecognized as i32, Reason::NoAgreement as i32)
    );
    assert_eq!(v.issuer_province, "320000");
    let v = verify(&js, &green.code).await;
    assert_eq!(v.reason, Reason::NoAgreement as i32);

    // A yellow edited to green keeps its signature and fails it.
    let v = verify(
        &gd,
        &hcmr_core::testkit::forge_status(&yellow.code, hcmr::status::HealthStatus::Green),
    )
    .await;
    assert_eq!(
        (v.verdict, v.reason),
        (Verdict::NotRecognized as i32, Reason::BadSignature as i32)
    );
    assert!(!v.signature_verified);

    // Garbage is malformed, with the failing stage named.
    let v = verify(&gd, "HCMR1:not base45 at all!").await;
    assert_eq!(v.reason, Reason::Malformed as i32);
    assert!(v.detail.starts_with("base45."), "{}", v.detail);
    let v = verify(
        &gd,
        "HC1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEMWK4MI6UOS03CR83KLBQ",
    )
    .await;
    assert!(v.detail.starts_with("prefix.foreign"), "{}", v.detail);

    // An expired code: one-second lifetime, shown after it ran out.
    let short = issue(&sc, subject("孙丽", "511302", 148), G, 1).await;
    clock.set(hcmr::UnixTime::from_secs(short.exp));
    let v = verify(&gd, &short.code).await;
    assert_eq!(
        (v.verdict, v.reason),
        (Verdict::NotRecognized as i32, Reason::Expired as i32)
    );

    // Restart both parties: keys and agreements come back from sled.
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
    let sc = start_on(&sc_cfg, &clock).await;
    let gd = start_on(&gd_cfg, &clock).await;
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(
        (v.verdict, v.local_status),
        (Verdict::Recognized as i32, R),
        "after restart: {v:?}"
    );
    let fresh = issue(&sc, subject("刘洋", "511602", 57), G, 300).await;
    let v = verify(&gd, &fresh.code).await;
    assert_eq!(v.verdict, Verdict::Recognized as i32);
    let info2 = federation(&sc)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info2.keys, info.keys, "the same key after restart");

    for n in [sc, gd, js] {
        n.shutdown().await.unwrap();
    }

    // The issued-code log holds the code ids and subject hashes, never a name or number.
    let store = hcmr::store::Store::open(&dir.path().join("510000").join("db")).unwrap();
    let cti: [u8; 16] = hex::decode(&green.cti).unwrap().try_into().unwrap();
    let rec = store.issued(&cti).unwrap().unwrap();
    assert_eq!(rec.status, 1);
    assert_eq!(rec.exp, hcmr::UnixTime::from_secs(green.exp));
    assert_eq!(
        rec.subject_hash.to_string(),
        green.subject.as_ref().unwrap().subject_hash
    );
    assert_eq!(
        store.issued_count(),
        6,
        "early, green, yellow, red, short, fresh"
    );
    drop(store);
    let number = document_number("510104", 131);
    for entry in walk(&dir.path().join("510000")) {
        let bytes = std::fs::read(&entry).unwrap();
        for needle in [number.as_bytes(), "王建国".as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds personal data",
                entry.display()
            );
        }
    }
}

/// Bad requests get the right status and name the field: one test per service, each on its
/// own node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_issue_requests_get_the_right_status_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let mut c = codes(&sc).await;
    let good = subject("王建国", "510104", 131);
    let req = |subject: proto::Subject, status: i32, until: u64, lifetime: u64| {
        proto::IssueHealthCodeRequest {
            subject: Some(subject),
            status,
            status_valid_until: until,
            code_lifetime_secs: lifetime,
            qr_format: 0,
        }
    };
    let later = hcmr::unix_now() + 3600;
    let mut bad_check = good.clone();
    bad_check.document_number = "440524188001010015".into();
    let mut short = good.clone();
    short.document_number = "51010419900101".into();
    let mut no_type = good.clone();
    no_type.document_type = 0;
    let mut no_name = good.clone();
    no_name.name = "  ".into();
    let cases = [
        (
            req(bad_check, G, later.secs(), 0),
            "subject.document_number",
        ),
        (req(short, G, later.secs(), 0), "subject.document_number"),
        (req(no_type, G, later.secs(), 0), "subject.document_type"),
        (req(no_name, G, later.secs(), 0), "subject.name"),
        (req(good.clone(), 0, later.secs(), 0), "status"),
        (req(good.clone(), 9, later.secs(), 0), "status"),
        (req(good.clone(), G, 1000, 0), "status_valid_until"),
        (
            req(good.clone(), G, later.secs(), 10_000_000),
            "code_lifetime_secs",
        ),
    ];
    for (r, field) in cases {
        let e = c.issue_health_code(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
        assert!(
            !e.message().contains("44052418800101001"),
            "never echoes the number"
        );
    }
    let e = c
        .issue_health_code(proto::IssueHealthCodeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("subject"));
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agreement_requests_get_the_right_status_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let mut op = operator(&sc).await;
    let e = op
        .approve_agreement(proto::ApproveAgreementRequest { id: "zz".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("id"));
    let e = op
        .approve_agreement(proto::ApproveAgreementRequest {
            id: "00".repeat(16),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let now = hcmr::unix_now();
    let mut create = proto::CreateAgreementRequest {
        peer_endpoint: sc.endpoint.clone(),
        peer_codes_here: map(&[(G, G)]),
        our_codes_there: map(&[(G, G)]),
        max_code_age_secs: 60,
        max_trust_age_secs: 0,
        amends: String::new(),
        expected_peer_kid: String::new(),
        effective_from: now.secs(),
        effective_until: (now + 60).secs(),
        ..Default::default()
    };
    // A staleness limit under twice the sync interval (30 s) would make codes flap.
    create.max_trust_age_secs = 59;
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("max_trust_age_secs"),
        "{}",
        e.message()
    );
    create.max_trust_age_secs = 0;
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "the peer's kid is required"
    );
    assert!(e.message().starts_with("expected_peer_kid"));
    create.expected_peer_kid = "00".repeat(8);
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "another key than expected"
    );
    assert!(e.message().contains("refusing to pin"), "{}", e.message());
    create.expected_peer_kid = kid_of(&sc).await;
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "agreement with itself");
    create.peer_endpoint = "not a url".into();
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("peer_endpoint"));
    // A closed port on loopback: nobody answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    create.peer_endpoint = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    create.peer_codes_here = map(&[(G, G), (G, R)]);
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("peer_codes_here"));
    create.peer_codes_here = map(&[(G, G), (R, G)]);
    let e = op.create_agreement(create.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("peer_codes_here: red may not count as green"),
        "{}",
        e.message()
    );
    create.peer_codes_here = map(&[(G, G)]);
    create.effective_until = (now - 1).secs();
    let e = op.create_agreement(create).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("effective_until"));
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_forged_proposals_get_the_right_status_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let now = hcmr::unix_now();
    // A forged proposal (signature by a key the agreement does not pin) is refused. Proposals
    // come from nodes: the caller presents a node certificate (here Guangdong's, certified by a
    // key `impostor` that the proposals below pin).
    use hcmr::keys::NodeKey;
    let pinned = NodeKey::generate();
    let impostor = NodeKey::generate();
    let gd_cert = node_identity(GUANGDONG, &impostor);
    let e = federation_as(&sc, &gd_cert)
        .await
        .propose_agreement(proto::ProposeAgreementRequest {
            agreement: Some(proto::SignedAgreement {
                body: vec![0x80],
                proposer_signature: None,
                acceptor_signature: None,
            }),
            proposer_endpoint: "http://127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("agreement.body"));

    // A proposal signed by a key the agreement does not pin for the proposer: UNAUTHENTICATED,
    // and nothing is stored.
    use hcmr::agreement::{
        AgreementBody, AgreementId, DirectionTerms, ManifestTerms, Party, SignedAgreement,
    };
    use hcmr::keys::PublicKey;
    let info = federation(&sc)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let sc_key = PublicKey::from_bytes(&info.keys[0].public_key).unwrap();
    let gd = hcmr::province::Province::from_code(GUANGDONG).unwrap();
    let scp = hcmr::province::Province::from_code(SICHUAN).unwrap();
    let dir_terms = |issuer, verifier| DirectionTerms {
        issuer,
        verifier,
        status_map: [(
            hcmr::status::HealthStatus::Green,
            hcmr::status::HealthStatus::Green,
        )]
        .into(),
        max_code_age_secs: 60,
        max_trust_age_secs: 0,
        manifests: ManifestTerms::none(),
        tracing: false,
        effective_from: now,
        effective_until: now + 60,
    };
    let body = AgreementBody {
        id: AgreementId([7; 16]),
        version: 1,
        created_at: now,
        proposer: Party {
            province: gd,
            keys: vec![pinned.public(), impostor.public()],
        },
        acceptor: Party {
            province: scp,
            keys: vec![sc_key],
        },
        directions: vec![dir_terms(gd, scp), dir_terms(scp, gd)],
    };
    let honest = SignedAgreement::propose(body.clone(), &impostor).unwrap();
    let mut forged = proto::SignedAgreement {
        body: honest.encoded().to_vec(),
        proposer_signature: Some(proto::AgreementSignature {
            kid: pinned.kid().0.to_vec(),
            signature: honest.proposer_signature.unwrap().signature.to_vec(),
        }),
        acceptor_signature: None,
    };
    let mut fed = federation_as(&sc, &gd_cert).await;
    let e = fed
        .propose_agreement(proto::ProposeAgreementRequest {
            agreement: Some(forged.clone()),
            proposer_endpoint: "http://127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    forged.proposer_signature.as_mut().unwrap().kid = vec![0; 8];
    let e = fed
        .propose_agreement(proto::ProposeAgreementRequest {
            agreement: Some(forged),
            proposer_endpoint: "http://127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = fed
        .propose_agreement(proto::ProposeAgreementRequest {
            agreement: Some(hcmr::node::convert::signed_to_proto(&honest)),
            proposer_endpoint: "not a url".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("proposer_endpoint"));
    let listed = operator(&sc)
        .await
        .list_agreements(proto::ListAgreementsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert!(listed.is_empty(), "nothing stored from refused proposals");
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let dir = tempfile::tempdir().unwrap();
    let node = start(&init_node(dir.path(), SICHUAN).await).await;
    let ch = channel_as(&node, None).await;
    for service in ["", "hcmr.v1.HealthCodeService", "hcmr.v1.FederationService"] {
        let r = HealthClient::new(ch.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, 1, "{service:?} SERVING");
    }
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in [
        "hcmr.v1.HealthCodeService",
        "hcmr.v1.FederationService",
        "hcmr.v1.OperatorService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == s), "{s} in {names:?}");
    }
    node.shutdown().await.unwrap();
}
