//! Callers and their roles: every RPC refuses a missing credential and the wrong role, callers
//! are added and removed, and rate, size and flood limits.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_no_credentials_and_the_wrong_role_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    use proto::CallerRole::{Admin, Issuer, Organizer, Receiver, Tracer, Verifier};
    let mut tokens = std::collections::HashMap::new();
    // For each role, a caller with every other role.
    let all = [Issuer, Verifier, Admin, Organizer, Receiver, Tracer];
    for (name, role) in [
        ("not-issuer", Issuer),
        ("not-verifier", Verifier),
        ("not-admin", Admin),
        ("not-organizer", Organizer),
        ("not-receiver", Receiver),
        ("not-tracer", Tracer),
    ] {
        let others: Vec<proto::CallerRole> = all.into_iter().filter(|r| *r != role).collect();
        tokens.insert(name, add_caller(&sc, name, &others).await);
    }
    let anonymous = channel_as(&sc, None).await;
    let unknown = channel_as(
        &sc,
        Some("hcmr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    let test = channel(&sc).await;
    let stranger = node_channel_as(&sc, &node_identity(JIANGSU, &NodeKey::generate())).await;

    let rpcs = every_rpc();
    assert_eq!(rpcs.len(), 54, "{rpcs:?}");
    let mut refused = 0;
    for (service, method) in &rpcs {
        let want = need(service, method);
        let no_token = call(anonymous.clone(), service, method).await;
        let bad_token = call(unknown.clone(), service, method).await;
        if want == Need::Open {
            assert_eq!(no_token, Code::Ok, "{method} is public");
            continue;
        }
        assert_eq!(no_token, Code::Unauthenticated, "{method} without a token");
        assert_eq!(
            bad_token,
            Code::Unauthenticated,
            "{method} with an unknown token"
        );
        refused += 2;
        match want {
            Need::Node => {
                // A caller's token is no node certificate; a node of a province without an
                // agreement is refused (except for proposals, which any node may make and
                // which are then checked against the certificate).
                assert_eq!(
                    call(test.clone(), service, method).await,
                    Code::Unauthenticated,
                    "{method} with a token but no node certificate"
                );
                let as_stranger = call(stranger.clone(), service, method).await;
                if method == "ProposeAgreement" || method == "NotifyProposalDropped" {
                    // A newcomer without an agreement proposes, and withdraws what it proposed.
                    assert_eq!(
                        as_stranger,
                        Code::InvalidArgument,
                        "{method}: the empty request"
                    );
                    refused += 1;
                } else {
                    assert_eq!(as_stranger, Code::PermissionDenied, "{method} from Jiangsu");
                    refused += 2;
                }
            }
            role => {
                let key = match role {
                    Need::Issuer => "not-issuer",
                    Need::Verifier => "not-verifier",
                    Need::Organizer => "not-organizer",
                    Need::Receiver => "not-receiver",
                    Need::Tracer => "not-tracer",
                    _ => "not-admin",
                };
                let wrong = channel_as(&sc, Some(&tokens[key])).await;
                assert_eq!(
                    call(wrong, service, method).await,
                    Code::PermissionDenied,
                    "{method} by {key}"
                );
                // With the role, the call gets past the door (and fails or succeeds on its
                // merits: empty requests are mostly invalid).
                let right = call(test.clone(), service, method).await;
                assert!(
                    !matches!(right, Code::Unauthenticated | Code::PermissionDenied),
                    "{method} with the role: {right:?}"
                );
                refused += 1;
            }
        }
    }
    // Every refusal is in the access log, who and what, never a token.
    let log = denials(&sc, refused).await;
    assert_eq!(refusals(&log), refused, "{log:#?}");
    let issue = "/hcmr.v1.HealthCodeService/IssueHealthCode";
    let of = |who: &str, outcome: &str, rpc: &str| {
        log.iter()
            .filter(|d| d.who == who && d.outcome == outcome && d.rpc == rpc)
            .map(|d| d.count)
            .sum::<u64>()
    };
    assert_eq!(of("anonymous", "UNAUTHENTICATED", issue), 2);
    assert_eq!(of("caller not-issuer", "PERMISSION_DENIED", issue), 1);
    assert_eq!(
        of(
            "peer 320000",
            "PERMISSION_DENIED",
            "/hcmr.v1.FederationService/GetFeed"
        ),
        1
    );
    assert!(log.iter().all(|d| d.remote == "127.0.0.1"));
    let text = format!("{log:?}");
    for t in tokens.values() {
        assert!(!text.contains(t.as_str()));
    }
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_added_listed_and_removed_and_a_removed_token_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let token = add_caller(&sc, "gate-7", &[proto::CallerRole::Verifier]).await;
    assert!(token.starts_with("hcmr_") && token.len() == 48, "{token}");
    let listed = operator(&sc)
        .await
        .list_callers(proto::ListCallersRequest {})
        .await
        .unwrap()
        .into_inner()
        .callers;
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["admin", "gate-7", "test"]);
    assert_eq!(listed[1].roles, [proto::CallerRole::Verifier as i32]);
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300)
        .await
        .code;
    let mut gate = proto::health_code_service_client::HealthCodeServiceClient::new(
        channel_as(&sc, Some(&token)).await,
    );
    let v = gate
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.clone(),
            checkpoint_id: "gate-7".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.verdict, proto::Verdict::Recognized as i32);
    // The store holds the hash of the token, never the token.
    operator(&sc)
        .await
        .remove_caller(proto::RemoveCallerRequest {
            name: "gate-7".into(),
        })
        .await
        .unwrap();
    let e = gate
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code,
            checkpoint_id: "gate-7".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Bad requests name the field; the last admin cannot be removed.
    let mut op = operator(&sc).await;
    let e = op
        .add_caller(proto::AddCallerRequest {
            name: "a b".into(),
            roles: vec![proto::CallerRole::Issuer as i32],
            replace: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("name"), "{}", e.message());
    let e = op
        .add_caller(proto::AddCallerRequest {
            name: "x".into(),
            roles: vec![],
            replace: false,
        })
        .await
        .unwrap_err();
    assert!(e.message().starts_with("roles"), "{}", e.message());
    let e = op
        .remove_caller(proto::RemoveCallerRequest {
            name: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut admin = proto::operator_service_client::OperatorServiceClient::new(
        channel_as(
            &sc,
            Some(
                std::fs::read_to_string(sc.dir.join(hcmr::node::ADMIN_TOKEN_FILE))
                    .unwrap()
                    .trim(),
            ),
        )
        .await,
    );
    admin
        .remove_caller(proto::RemoveCallerRequest {
            name: "test".into(),
        })
        .await
        .unwrap();
    let e = admin
        .remove_caller(proto::RemoveCallerRequest {
            name: "admin".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("last admin"));
    let dir_path = sc.dir.clone();
    sc.shutdown().await.unwrap();
    for file in walk(&dir_path.join("db")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "token at rest in {}",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_and_an_oversized_request_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 1",
        )
        .replace("caller_burst = 400", "caller_burst = 3")
        .replace("max_request_bytes = 65536", "max_request_bytes = 8192");
    assert!(text.contains("caller_burst = 3") && text.contains("max_request_bytes = 8192"));
    std::fs::write(&cfg, text).unwrap();
    let sc = start(&cfg).await;
    let mut hc = codes(&sc).await;
    let mut codes_seen = Vec::new();
    for _ in 0..5 {
        let r = hc
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: "HCMR1:X".into(),
                checkpoint_id: String::new(),
            })
            .await;
        codes_seen.push(r.map(|_| Code::Ok).unwrap_or_else(|e| e.code()));
    }
    assert_eq!(&codes_seen[..3], [Code::Ok; 3]);
    assert_eq!(codes_seen[3], Code::ResourceExhausted, "{codes_seen:?}");
    // Other callers are not slowed: the admin reads the log of refusals.
    let admin_token = std::fs::read_to_string(sc.dir.join(hcmr::node::ADMIN_TOKEN_FILE)).unwrap();
    let mut admin = proto::operator_service_client::OperatorServiceClient::new(
        channel_as(&sc, Some(admin_token.trim())).await,
    );
    // (At one call a second: the admin is under the same limit.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let log = admin
            .list_access_denials(proto::ListAccessDenialsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .denials;
        if log
            .iter()
            .filter(|d| d.outcome == "RESOURCE_EXHAUSTED" && d.who == "caller test")
            .map(|d| d.count)
            .sum::<u64>()
            == 2
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    // The rate limiter's buckets refill on the monotonic clock, not the node's `Clock`: a real
    // wait until the caller has tokens again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // A request over 8 KiB is refused before it is decoded.
    let e = hc
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: "X".repeat(10_000),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_is_counted_not_stored_call_by_call() {
    // 1,005 calls with a bad token as fast as they go: the access log counts them in one
    // record per kind and second, and is read page by page through the API and the CLI.
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    let sc = start(&cfg).await;
    let mut hc = proto::health_code_service_client::HealthCodeServiceClient::new(
        channel_as(&sc, Some("not-a-token")).await,
    );
    const FLOOD: u64 = 1_005;
    let started = std::time::Instant::now();
    for _ in 0..FLOOD {
        let e = hc
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: "HCMR1:X".into(),
                checkpoint_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    // Two refusals of other kinds: no token at all, and a caller without the role.
    let e = codes_as(&sc, None)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut op = operator(&sc).await;
    let verifier = op
        .add_caller(proto::AddCallerRequest {
            name: "gate-9".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let e = codes_as(&sc, Some(&verifier))
        .await
        .issue_health_code(proto::IssueHealthCodeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    let log = denials(&sc, FLOOD + 2).await;
    assert_eq!(refusals(&log), FLOOD + 2, "{log:#?}");
    let verify = "/hcmr.v1.HealthCodeService/VerifyHealthCode";
    let issue = "/hcmr.v1.HealthCodeService/IssueHealthCode";
    let flood: Vec<_> = log.iter().filter(|d| d.rpc == verify).collect();
    assert!(flood
        .iter()
        .all(|d| (d.outcome.as_str(), d.who.as_str()) == ("UNAUTHENTICATED", "anonymous")));
    assert_eq!(flood.iter().map(|d| d.count).sum::<u64>(), FLOOD);
    // One record of the kind a second, however many writes of the log the second saw.
    let mut seconds: Vec<u64> = flood.iter().map(|d| d.time).collect();
    seconds.dedup();
    assert_eq!(seconds.len(), flood.len(), "{flood:#?}");
    assert!(
        flood.len() as u64 <= started.elapsed().as_secs() + 2,
        "{flood:#?}"
    );
    let kinds: Vec<(&str, &str, &str, u64)> = log
        .iter()
        .filter(|d| d.rpc == issue)
        .map(|d| {
            (
                d.outcome.as_str(),
                d.who.as_str(),
                d.remote.as_str(),
                d.count,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("UNAUTHENTICATED", "anonymous", "127.0.0.1", 1),
            ("PERMISSION_DENIED", "caller gate-9", "127.0.0.1", 1)
        ]
    );

    // Page by page (one record a page): every record once, in order; a bad token refused.
    let page = |token: String, limit: u32| proto::ListAccessDenialsRequest {
        from: 0,
        limit,
        page_token: token,
    };
    let (mut paged, mut token) = (Vec::new(), String::new());
    loop {
        let r = op
            .list_access_denials(page(token, 1))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.denials.len(), 1);
        paged.extend(r.denials);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(paged, log);
    let e = op
        .list_access_denials(page("00ff".into(), 10))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("page_token"), "{}", e.message());

    // The CLI shows --limit records with their counts, and how to see the rest.
    let admin = sc.dir.join(hcmr::node::ADMIN_TOKEN_FILE);
    let refused = |args: &[&str]| {
        let mut c = cli(&sc);
        c.env("HCMR_TOKEN_FILE", &admin)
            .args(["caller", "refused"])
            .args(args);
        // The node serves on this runtime: wait for the CLI off its worker threads' duty.
        let out = tokio::task::block_in_place(|| c.output()).unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (first, note) = refused(&["--limit", "1"]);
    let count = log[0].count.to_string();
    assert_eq!(
        first.split_whitespace().take(5).collect::<Vec<_>>(),
        [
            // In the display offset (Beijing time by default), with the offset.
            hcmr::display::display_time(hcmr::UnixTime::from_secs(log[0].time), Default::default())
                .as_str(),
            count.as_str(),
            "UNAUTHENTICATED",
            "anonymous",
            "127.0.0.1"
        ],
        "{first}"
    );
    let token = note
        .split("--page-token ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no page token in {note:?}"))
        .to_string();
    let (rest, note) = refused(&["--page-token", &token]);
    assert_eq!((rest.lines().count(), note.as_str()), (log.len() - 1, ""));
    sc.shutdown().await.unwrap();
}

/// The `authorization` header (issue 15, "also seen"): the scheme is case-insensitive (RFC 6750
/// section 2.1 with RFC 9110 section 11.1) and white space around the field value is not part
/// of it (RFC 9110 section 5.5), so `bearer TOKEN` and `Bearer TOKEN ` are the same credential
/// and are accepted, on purpose. Anything else is refused: another scheme, no separator, no
/// token, a token with anything added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive_and_nothing_else_is_loose() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let token = add_caller(&sc, "gate", &[proto::CallerRole::Verifier]).await;
    let call = |value: String| {
        let sc = &sc;
        async move {
            let mut req = tonic::Request::new(proto::VerifyHealthCodeRequest {
                code: "HCMR1:garbage".into(),
                checkpoint_id: String::new(),
            });
            req.metadata_mut()
                .insert("authorization", value.parse().unwrap());
            match codes_as(sc, None).await.verify_health_code(req).await {
                Ok(_) => Code::Ok,
                Err(e) => e.code(),
            }
        }
    };
    for accepted in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer {token} "),
        format!("Bearer  {token}"),
    ] {
        assert_eq!(call(accepted.clone()).await, Code::Ok, "{accepted:?}");
    }
    for refused in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer ".to_string(),
        format!("Bearer {token}x"),
        format!("Bearer x{token}"),
        format!("Bearer {token} x"),
        token.clone(),
    ] {
        assert_eq!(
            call(refused.clone()).await,
            Code::Unauthenticated,
            "{refused:?}"
        );
    }
    sc.shutdown().await.unwrap();
}
