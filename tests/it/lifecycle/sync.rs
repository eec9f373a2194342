//! Feed sync: revocations reach the peer, a peer feed that does not verify is refused whole, a
//! peer that is down, and trust that goes stale.

use super::*;
use hcmr::UnixTime;

// 3. Revocation, learned by the interval sync alone.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_the_peer_within_one_sync_interval() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // What arrives here arrives by the interval sync or SyncNow (no feed watch).
    poll_only(&gd_cfg);
    set_sync_interval(&gd_cfg, 1);
    // Both nodes read one manual clock, which the test moves instead of sleeping; it starts after
    // `init`, which dates each feed's first entry by the system clock.
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let gd = start_on(&gd_cfg, &clock).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    let person = subject("张伟", "510802", 311);
    let c1 = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let c2 = issue(&sc, person.clone(), Y, 600).await;
    assert_eq!(outcome(&verify(&gd, &c1.code).await), recognized_as(G));
    assert_eq!(outcome(&verify(&gd, &c2.code).await), recognized_as(R));

    // One code.
    let mut hc = codes(&sc).await;
    let r = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: c1.cti.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.seq, 2);
    let v = verify_until(&gd, &c1.code, Reason::Revoked, Duration::from_secs(10)).await;
    assert_eq!(outcome(&v), refused(Reason::Revoked), "{v:?}");
    assert_eq!(v.cti, c1.cti);
    assert!(v.signature_verified && v.issuer_state_synced);
    assert_eq!(outcome(&verify(&gd, &c2.code).await), recognized_as(R));
    assert_eq!(
        outcome(&verify(&sc, &c1.code).await),
        refused(Reason::Revoked)
    );

    // Every code of a subject issued before now.
    let r = hc
        .revoke_subject(proto::RevokeSubjectRequest {
            document_type: person.document_type,
            document_number: person.document_number.clone(),
            issued_before: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let revoked_by = clock.now() + 1;
    assert_eq!(r.seq, 3);
    let v = verify_until(&gd, &c2.code, Reason::Revoked, Duration::from_secs(10)).await;
    assert_eq!(outcome(&v), refused(Reason::Revoked), "{v:?}");
    assert_eq!(
        outcome(&verify(&sc, &c2.code).await),
        refused(Reason::Revoked)
    );

    // A code for that person issued after the revocation time is recognized.
    clock.set(revoked_by);
    let c3 = issue(&sc, person.clone(), G, 600).await;
    assert!(c3.iat >= revoked_by.secs());
    assert_eq!(
        c3.subject.as_ref().unwrap().subject_hash,
        c2.subject.as_ref().unwrap().subject_hash,
        "the same person"
    );
    let v = verify(&gd, &c3.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    assert_eq!(outcome(&verify(&sc, &c3.code).await), recognized_as(G));

    // Refused revocations.
    let e = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: "ab".repeat(16),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = hc
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti: "zz".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("cti"), "{}", e.message());
    // A time in the future would revoke codes not issued yet (such as the next code with the
    // person's new status): refused, a minute ahead as well as an hour.
    for ahead in [60, 3600] {
        let e = hc
            .revoke_subject(proto::RevokeSubjectRequest {
                document_type: person.document_type,
                document_number: person.document_number.clone(),
                issued_before: (clock.now() + ahead).secs(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{ahead} s ahead: {e:?}");
        assert!(e.message().starts_with("issued_before"), "{}", e.message());
    }
    let v = verify(&sc, &c3.code).await;
    assert_eq!(
        outcome(&v),
        recognized_as(G),
        "c3 not revoked by a refused request"
    );
    let e = hc
        .revoke_subject(proto::RevokeSubjectRequest {
            document_type: person.document_type,
            document_number: "440524188001010015".into(),
            issued_before: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().starts_with("document_number"),
        "{}",
        e.message()
    );
    // None of them reached the feed.
    assert_eq!(get_feed(&sc, &gd, 1).await.len(), 3);

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 4. Gaps and bad signatures: refused whole, nothing applied.

#[test]
fn a_feed_with_a_gap_or_a_bad_signature_is_refused_and_nothing_is_applied() {
    let p = province(SICHUAN);
    let k = NodeKey::generate();
    let e1 = FeedEntry::sign(
        p,
        None,
        UnixTime::from_secs(1_000),
        Statement::Genesis { key: k.public() },
        &k,
    );
    let revoke = |n: u8| Statement::RevokeCode { cti: [n; 16] };
    let e2 = FeedEntry::sign(p, Some(&e1), UnixTime::from_secs(1_001), revoke(2), &k);
    let e3 = FeedEntry::sign(p, Some(&e2), UnixTime::from_secs(1_002), revoke(3), &k);
    let subject = SubjectHash([4; 8]);
    let e4 = FeedEntry::sign(
        p,
        Some(&e3),
        UnixTime::from_secs(1_003),
        Statement::RevokeSubject {
            subject_hash: subject,
            before: UnixTime::from_secs(1_003),
        },
        &k,
    );

    // Entries 1, 2, 4: a gap at 3.
    let mut s = FeedState::new(p);
    assert_eq!(
        s.apply_all([&e1, &e2, &e4]),
        Err(FeedError::Gap {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(s, FeedState::new(p));
    assert_eq!((s.last_seq(), s.revocation_count()), (0, 0));
    assert!(s.keys().is_empty());

    // From a state at entry 1: 2 then 4 is a gap; entry 2 is not applied either.
    s.apply_all([&e1]).unwrap();
    let at_one = s.clone();
    assert_eq!(
        s.apply_all([&e2, &e4]),
        Err(FeedError::Gap {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(s, at_one);
    assert_eq!((s.last_seq(), s.revocation_count()), (1, 0));
    assert!(!s.is_revoked(&[2; 16], &SubjectHash([0; 8]), UnixTime::from_secs(0)));

    // One flipped bit of entry 3's signature.
    let bad3 = flipped_signature(&e3);
    assert_eq!(
        s.apply_all([&e2, &bad3, &e4]),
        Err(FeedError::BadSignature(3))
    );
    assert_eq!(s, at_one);
    assert_eq!((s.last_seq(), s.revocation_count()), (1, 0));
    // Altered content under the original signature.
    let altered = FeedEntry::sign(p, Some(&e2), UnixTime::from_secs(1_002), revoke(9), &k);
    let altered =
        FeedEntry::from_parts(altered.encoded().to_vec(), k.kid(), *e3.signature()).unwrap();
    assert_eq!(
        s.apply_all([&e2, &altered]),
        Err(FeedError::BadSignature(3))
    );
    // A bad signature on the genesis entry.
    let mut fresh = FeedState::new(p);
    assert_eq!(
        fresh.apply_all([&flipped_signature(&e1), &e2]),
        Err(FeedError::BadSignature(1))
    );
    assert_eq!(fresh.last_seq(), 0);
    // An entry that does not link to the one before.
    let e2b = FeedEntry::sign(p, Some(&e1), UnixTime::from_secs(1_001), revoke(7), &k);
    let unlinked = FeedEntry::sign(p, Some(&e2b), UnixTime::from_secs(1_002), revoke(3), &k);
    assert_eq!(
        s.apply_all([&e2, &unlinked]),
        Err(FeedError::BrokenChain(3))
    );
    assert_eq!(s, at_one);
    // Entries of another province.
    let gd = province(GUANGDONG);
    let foreign = FeedEntry::sign(gd, Some(&e1), UnixTime::from_secs(1_001), revoke(2), &k);
    assert!(matches!(
        s.apply_all([&foreign]),
        Err(FeedError::WrongProvince { .. })
    ));
    assert_eq!(s, at_one);

    // The intact batch applies.
    s.apply_all([&e2, &e3, &e4]).unwrap();
    assert_eq!((s.last_seq(), s.revocation_count()), (4, 3));
    assert!(s.is_revoked(&[3; 16], &SubjectHash([0; 8]), UnixTime::from_secs(0)));
    assert!(s.is_revoked(&[0; 16], &subject, UnixTime::from_secs(1_002)));
    assert!(!s.is_revoked(&[0; 16], &subject, UnixTime::from_secs(1_003)));
}

/// A stand-in for a peer's federation API that serves whatever feed the test sets.
#[derive(Clone, Default)]
struct FakePeer {
    feed: Arc<Mutex<Vec<proto::FeedEntry>>>,
    agreements: Arc<Mutex<Vec<proto::SignedAgreement>>>,
}

#[tonic::async_trait]
impl proto::federation_service_server::FederationService for FakePeer {
    async fn get_node_info(
        &self,
        _: Request<proto::GetNodeInfoRequest>,
    ) -> Result<Response<proto::GetNodeInfoResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn propose_agreement(
        &self,
        _: Request<proto::ProposeAgreementRequest>,
    ) -> Result<Response<proto::ProposeAgreementResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn accept_agreement(
        &self,
        _: Request<proto::AcceptAgreementRequest>,
    ) -> Result<Response<proto::AcceptAgreementResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn notify_termination(
        &self,
        _: Request<proto::NotifyTerminationRequest>,
    ) -> Result<Response<proto::NotifyTerminationResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }
    async fn notify_proposal_dropped(
        &self,
        _: Request<proto::NotifyProposalDroppedRequest>,
    ) -> Result<Response<proto::NotifyProposalDroppedResponse>, Status> {
        Err(Status::unimplemented("fake peer"))
    }

    type GetFeedStream = tokio_stream::Iter<std::vec::IntoIter<Result<proto::FeedEntry, Status>>>;

    async fn get_feed(
        &self,
        _: Request<proto::GetFeedRequest>,
    ) -> Result<Response<Self::GetFeedStream>, Status> {
        let items: Vec<_> = self.feed.lock().unwrap().iter().cloned().map(Ok).collect();
        Ok(Response::new(tokio_stream::iter(items)))
    }

    async fn get_agreements(
        &self,
        _: Request<proto::GetAgreementsRequest>,
    ) -> Result<Response<proto::GetAgreementsResponse>, Status> {
        Ok(Response::new(proto::GetAgreementsResponse {
            agreements: self.agreements.lock().unwrap().clone(),
            terminations: Vec::new(),
        }))
    }

    async fn match_subject(
        &self,
        _: Request<proto::MatchSubjectRequest>,
    ) -> Result<Response<proto::MatchSubjectResponse>, Status> {
        Err(Status::unimplemented("this fake peer serves feeds only"))
    }

    async fn submit_trip_record(
        &self,
        _: Request<proto::SubmitTripRecordRequest>,
    ) -> Result<Response<proto::SubmitTripRecordResponse>, Status> {
        Err(Status::unimplemented("this fake peer serves feeds only"))
    }

    async fn find_trips(
        &self,
        _: Request<proto::FindTripsRequest>,
    ) -> Result<Response<proto::FindTripsResponse>, Status> {
        Err(Status::unimplemented("this fake peer serves feeds only"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_a_peer_feed_that_does_not_verify_and_applies_nothing() {
    // Plain-text nodes: the stand-in peer below serves gRPC without TLS. What is tested is the
    // feed check, which TLS does not replace (a peer's TLS key may leak; its feed must still
    // verify under the pinned signing keys).
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node_plaintext(dir.path(), SICHUAN).await).await;
    // Each sync's take is asserted: Guangdong polls only.
    let gd_cfg = init_node_plaintext(dir.path(), GUANGDONG).await;
    poll_only(&gd_cfg);
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 1),
        "{r:?}"
    );
    let c2 = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let c3 = issue(&sc, subject("张伟", "510802", 311), R, 600).await;
    let mut hc = codes(&sc).await;
    for c in [&c2, &c3] {
        hc.revoke_health_code(proto::RevokeHealthCodeRequest { cti: c.cti.clone() })
            .await
            .unwrap();
    }
    let honest: Vec<FeedEntry> = get_feed(&sc, &gd, 1).await.iter().map(from_proto).collect();
    assert_eq!(honest.len(), 3);
    let synced_at = verify(&gd, &c2.code).await.issuer_state_synced_at;
    assert!(synced_at > 0);

    // Sichuan's address now answers with a feed the test controls.
    let addr = sc.addr;
    sc.shutdown().await.unwrap();
    let fake = FakePeer::default();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                proto::federation_service_server::FederationServiceServer::new(fake.clone()),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let stranger = NodeKey::generate();
    let scp = province(SICHUAN);
    let forged_rotation = FeedEntry::sign(
        scp,
        Some(&honest[0]),
        hcmr::unix_now(),
        Statement::KeyRotation {
            key: stranger.public(),
            pop: proof_of_possession(scp, &stranger),
        },
        &stranger,
    );
    let cases: Vec<(&str, Vec<FeedEntry>, &str)> = vec![
        (
            "a flipped signature bit",
            vec![flipped_signature(&honest[1]), honest[2].clone()],
            "bad signature",
        ),
        (
            "entry 2 left out",
            vec![honest[2].clone()],
            "gap: expected entry 2, got 3",
        ),
        (
            "entry 3 re-signed by a stranger",
            vec![honest[1].clone(), resigned(&honest[2], &stranger)],
            "entry 3 has a bad signature",
        ),
        (
            "a rotation to a stranger's key, signed by it",
            vec![forged_rotation],
            "entry 2 has a bad signature",
        ),
    ];
    for (what, entries, message) in cases {
        *fake.feed.lock().unwrap() = entries.iter().map(to_proto).collect();
        let r = sync_now(&gd).await;
        assert_eq!(r.len(), 1, "{what}: {r:?}");
        assert_eq!(r[0].province, "510000");
        assert!(!r[0].ok, "{what}: refused: {r:?}");
        assert!(r[0].error.contains("refused"), "{what}: {}", r[0].error);
        assert!(r[0].error.contains(message), "{what}: {}", r[0].error);
        // Nothing applied: both codes still recognized, the state as of the last good sync.
        for c in [&c2, &c3] {
            let v = verify(&gd, &c.code).await;
            assert_eq!(v.verdict, RECOGNIZED, "{what}: {v:?}");
            assert_eq!(v.issuer_state_synced_at, synced_at, "{what}");
        }
    }
    // A code signed by the stranger in Sichuan's name is still not trusted.
    let claims = hcmr::code::HealthCode::decode(&c2.code).unwrap().claims;
    let v = verify(&gd, &hcmr::code::encode(&claims, &stranger)).await;
    assert_eq!(outcome(&v), refused(Reason::UnknownKey), "{v:?}");

    // An agreement the peer made up, "concluded" by a key of its own for Sichuan and one for
    // Guangdong (it verifies against itself, but Guangdong never signed it): not taken, so the
    // stranger's codes stay untrusted (issue 15 fault 2: no unverified message changes what is
    // stored about a peer).
    {
        use hcmr::agreement::{
            AgreementBody, AgreementId, DirectionTerms, ManifestTerms, Party, SignedAgreement,
        };
        let now = hcmr::unix_now();
        let fake_gd = NodeKey::generate();
        let gdp = province(GUANGDONG);
        let dir = |issuer, verifier| DirectionTerms {
            issuer,
            verifier,
            status_map: [(
                hcmr::status::HealthStatus::Green,
                hcmr::status::HealthStatus::Green,
            )]
            .into(),
            max_code_age_secs: 3600,
            max_trust_age_secs: 0,
            manifests: ManifestTerms::none(),
            tracing: false,
            effective_from: now - 10,
            effective_until: now + 3600,
        };
        let mut made_up = SignedAgreement::propose(
            AgreementBody {
                id: AgreementId::generate(),
                version: 1,
                created_at: now,
                proposer: Party {
                    province: scp,
                    keys: vec![stranger.public()],
                },
                acceptor: Party {
                    province: gdp,
                    keys: vec![fake_gd.public()],
                },
                directions: vec![dir(scp, gdp), dir(gdp, scp)],
            },
            &stranger,
        )
        .unwrap();
        made_up.accept(&fake_gd).unwrap();
        *fake.agreements.lock().unwrap() = vec![hcmr::node::convert::signed_to_proto(&made_up)];
        *fake.feed.lock().unwrap() = Vec::new();
        let r = sync_now(&gd).await;
        assert!(r[0].ok, "{r:?}");
        assert_eq!(
            agreements(&gd).await.len(),
            1,
            "the made-up agreement is not stored"
        );
        let v = verify(&gd, &hcmr::code::encode(&claims, &stranger)).await;
        assert_eq!(outcome(&v), refused(Reason::UnknownKey), "{v:?}");
        fake.agreements.lock().unwrap().clear();
    }

    // The honest entries from the same address apply.
    *fake.feed.lock().unwrap() = honest[1..].iter().map(to_proto).collect();
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 2, 3),
        "{r:?}"
    );
    for c in [&c2, &c3] {
        assert_eq!(
            outcome(&verify(&gd, &c.code).await),
            refused(Reason::Revoked)
        );
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    gd.shutdown().await.unwrap();
}

// 5. A peer that is down; trust staleness.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_goes_on_while_the_peer_is_down_and_sync_resumes_from_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // "Never synced yet" is a state of a node that polls: a watch would sync at once.
    poll_only(&gd_cfg);
    // Both nodes read one manual clock, which the test moves instead of sleeping; it starts after
    // `init`, which dates each feed's first entry by the system clock.
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    pin_listen(&sc_cfg, &sc);
    let gd = start_on(&gd_cfg, &clock).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let code = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;

    // Never synced yet: recognized on the pinned key, and says so.
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(R));
    assert_eq!(
        (
            v.issuer_state_synced,
            v.issuer_state_synced_at,
            v.issuer_state_age_secs
        ),
        (false, 0, 0)
    );

    let t0 = clock.now();
    let r = sync_now(&gd).await;
    let t1 = clock.now();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].province.as_str(), r[0].ok, r[0].entries, r[0].last_seq),
        ("510000", true, 1, 1),
        "{r:?}"
    );

    sc.shutdown().await.unwrap();
    let v1 = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v1), recognized_as(R), "{v1:?}");
    assert!(v1.issuer_state_synced);
    let synced_at = v1.issuer_state_synced_at;
    assert!(
        (t0.secs()..=t1.secs()).contains(&synced_at),
        "{t0:?} <= {synced_at} <= {t1:?}"
    );
    assert_eq!(v1.issuer_state_age_secs, v1.verified_at - synced_at);
    clock.set(UnixTime::from_secs(v1.verified_at + 1));
    let v2 = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v2), recognized_as(R));
    assert_eq!(v2.issuer_state_synced_at, synced_at);
    assert!(
        v2.issuer_state_age_secs > v1.issuer_state_age_secs,
        "{} > {}",
        v2.issuer_state_age_secs,
        v1.issuer_state_age_secs
    );

    // Sync fails for that peer, and changes nothing.
    let r = sync_now(&gd).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].province, "510000");
    assert!(!r[0].ok, "{r:?}");
    assert!(!r[0].error.is_empty());
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(R));
    assert_eq!(
        v.issuer_state_synced_at, synced_at,
        "a failed sync is not a sync"
    );

    // Back up; a revocation there; the next sync takes exactly that entry.
    let sc = start_on(&sc_cfg, &clock).await;
    let rv = codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: code.cti.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rv.seq, 2);
    let t2 = clock.now();
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 1, 2),
        "only the new entry: {r:?}"
    );
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), refused(Reason::Revoked), "{v:?}");
    assert!(v.issuer_state_synced_at >= t2.secs());
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 0, 2),
        "{r:?}"
    );

    // Guangdong restarts: the synced feed and its sync time come back from its store.
    let before_restart = verify(&gd, &code.code).await.issuer_state_synced_at;
    gd.shutdown().await.unwrap();
    let gd = start_on(&gd_cfg, &clock).await;
    let v = verify(&gd, &code.code).await;
    assert_eq!(
        outcome(&v),
        refused(Reason::Revoked),
        "after restart: {v:?}"
    );
    assert_eq!(v.issuer_state_synced_at, before_restart);
    let r = sync_now(&gd).await;
    assert_eq!(
        (r[0].ok, r[0].entries, r[0].last_seq),
        (true, 0, 2),
        "resumes after entry 2: {r:?}"
    );

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_refused_as_trust_stale_once_the_last_sync_is_older_than_agreed() {
    let dir = tempfile::tempdir().unwrap();
    // Sichuan proposes: a 2 s limit needs a proposer syncing at least every second (a shorter
    // limit than twice the interval is refused). Guangdong keeps its 30 s interval, so its copy
    // of Sichuan's state ages between the syncs this test triggers.
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    set_sync_interval(&sc_cfg, 1);
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // Its copy ages between syncs only when it does not watch.
    poll_only(&gd_cfg);
    // Both nodes read one manual clock, which the test moves instead of sleeping; it starts after
    // `init`, which dates each feed's first entry by the system clock.
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let gd = start_on(&gd_cfg, &clock).await;
    conclude_with_trust_age(&sc, &gd, &[(G, G), (R, R)], &[(G, G), (Y, R), (R, R)], 2).await;
    let code = issue(&sc, subject("王建国", "510104", 131), G, 600).await;

    let v = verify(&gd, &code.code).await;
    assert_eq!(
        outcome(&v),
        refused(Reason::TrustStale),
        "never synced: {v:?}"
    );
    assert!(v.detail.contains("never synced"), "{}", v.detail);

    let r = sync_now(&gd).await;
    assert!(r[0].ok, "{r:?}");
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    let synced_at = v.issuer_state_synced_at;

    // More than 2 s after the last sync.
    clock.set(UnixTime::from_secs(synced_at + 3));
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), refused(Reason::TrustStale), "{v:?}");
    assert!(v.signature_verified);
    assert_eq!(v.issuer_state_synced_at, synced_at);
    assert!(v.issuer_state_age_secs > 2);

    let r = sync_now(&gd).await;
    assert!(r[0].ok, "{r:?}");
    let v = verify(&gd, &code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "fresh again: {v:?}");
    assert!(v.issuer_state_synced_at > synced_at);

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}
