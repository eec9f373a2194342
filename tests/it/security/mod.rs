//! Who may call what, over real TLS: every RPC without credentials and with the wrong role;
//! federation RPCs from a node of a province without an agreement, from an impostor, and from
//! no certificate; a peer endpoint that answers with another node's certificate; callers added
//! and removed; per-caller rate and message size limits; encrypted key files. Each refusal is
//! read back from the node's access log.

use crate::common;

use common::*;
use hcmr::keys::NodeKey;
use hcmr::proto;
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::Code;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const JIANGSU: u32 = 320000;

/// What each RPC needs, written out here (not taken from the server's own table).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Open,
    Issuer,
    Verifier,
    Admin,
    Node,
}

fn need(service: &str, method: &str) -> Need {
    match (service, method) {
        ("HealthCodeService", "VerifyHealthCode" | "BatchVerifyHealthCodes" | "MatchIdentity") => {
            Need::Verifier
        }
        ("HealthCodeService", _) => Need::Issuer,
        ("OperatorService", _) => Need::Admin,
        ("FederationService", "GetNodeInfo") => Need::Open,
        ("FederationService", _) => Need::Node,
        _ => panic!("unknown service {service}"),
    }
}

/// Every RPC of hcmr.v1, from the compiled descriptor: (service, method).
fn every_rpc() -> Vec<(String, String)> {
    let fds = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let file = fds.file.iter().find(|f| f.package() == "hcmr.v1").unwrap();
    file.service
        .iter()
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| (s.name().to_string(), m.name().to_string()))
        })
        .collect()
}

/// Calls `/hcmr.v1.<service>/<method>` with an empty request message (every field default) and
/// returns the status code (`Code::Ok` on success). Streaming answers are read as one message.
async fn call<T>(channel: T, service: &str, method: &str) -> Code
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    let ready: Result<(), tonic::codegen::StdError> = grpc.ready().await.map_err(Into::into);
    ready.unwrap();
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/hcmr.v1.{service}/{method}").try_into().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    if method == "GetFeed" || method == "ExportBackup" {
        return match grpc
            .server_streaming(tonic::Request::new(()), path, codec)
            .await
        {
            Ok(mut s) => match s.get_mut().message().await {
                Ok(_) => Code::Ok,
                Err(e) => e.code(),
            },
            Err(e) => e.code(),
        };
    }
    match grpc.unary(tonic::Request::new(()), path, codec).await {
        Ok(_) => Code::Ok,
        Err(e) => e.code(),
    }
}

/// Adds a caller with `roles` through the OperatorService; returns its token.
async fn add_caller(n: &hcmr::node::NodeHandle, name: &str, roles: &[proto::CallerRole]) -> String {
    operator(n)
        .await
        .add_caller(proto::AddCallerRequest {
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_no_credentials_and_the_wrong_role_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    use proto::CallerRole::{Admin, Issuer, Verifier};
    let mut tokens = std::collections::HashMap::new();
    // For each role, a caller with every other role.
    tokens.insert(
        "not-issuer",
        add_caller(&sc, "not-issuer", &[Verifier, Admin]).await,
    );
    tokens.insert(
        "not-verifier",
        add_caller(&sc, "not-verifier", &[Issuer, Admin]).await,
    );
    tokens.insert(
        "not-admin",
        add_caller(&sc, "not-admin", &[Issuer, Verifier]).await,
    );
    let anonymous = channel_as(&sc, None).await;
    let unknown = channel_as(
        &sc,
        Some("hcmr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    let test = channel(&sc).await;
    let stranger = node_channel_as(&sc, &node_identity(JIANGSU, &NodeKey::generate())).await;

    let rpcs = every_rpc();
    assert_eq!(rpcs.len(), 30, "{rpcs:?}");
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
async fn federation_over_mutual_tls_admits_only_the_agreed_province() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    let js = start(&init_node(dir.path(), JIANGSU).await).await;

    let feed_from = |c: &mut proto::federation_service_client::FederationServiceClient<
        tonic::transport::Channel,
    >| {
        let mut c = c.clone();
        async move {
            match c.get_feed(proto::GetFeedRequest { from_seq: 1 }).await {
                Ok(mut s) => s.get_mut().message().await.map(|m| m.is_some()),
                Err(e) => Err(e),
            }
        }
    };
    // Guangdong, with its own node certificate: served.
    let mut as_gd = federation_as(&sc, &tls_identity_of(&gd)).await;
    assert!(feed_from(&mut as_gd).await.unwrap(), "the first entry");
    // Jiangsu's real node certificate, but no agreement with Sichuan: refused.
    let mut as_js = federation_as(&sc, &tls_identity_of(&js)).await;
    let e = feed_from(&mut as_js).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message()
            .contains("province 320000 has no agreement with 510000"),
        "{}",
        e.message()
    );
    let e = as_js
        .match_subject(proto::MatchSubjectRequest {
            subject_hash: "00".repeat(16),
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: hcmr::identity::synthetic_resident_id("510104", "19900101", 1),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // An impostor: a certificate that says Guangdong, certified by a key nobody pinned.
    let mut impostor = federation_as(&sc, &node_identity(GUANGDONG, &NodeKey::generate())).await;
    let e = feed_from(&mut impostor).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Guangdong asking for another province's agreements: refused.
    let e = as_gd
        .get_agreements(proto::GetAgreementsRequest {
            province: "320000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let own = as_gd
        .get_agreements(proto::GetAgreementsRequest {
            province: "440000".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.agreements.len(), 1);

    // Server side: Guangdong's address now answers with Jiangsu's node. Sichuan's sync refuses
    // it at the TLS handshake and says so; nothing changes.
    pin_listen(&gd_cfg, &gd);
    let gd_addr = gd.addr;
    gd.shutdown().await.unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let js2_cfg = init_node(dir2.path(), JIANGSU).await;
    let text = std::fs::read_to_string(&js2_cfg).unwrap();
    std::fs::write(
        &js2_cfg,
        text.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{gd_addr}\""),
        ),
    )
    .unwrap();
    let js2 = start(&js2_cfg).await;
    assert_eq!(js2.addr, gd_addr);
    let r = sync_now(&sc).await;
    assert_eq!(r.len(), 1);
    assert!(!r[0].ok);
    assert!(
        r[0].error
            .contains("is not the node of 440000 this node trusts")
            && r[0].error.contains("speaks for province 320000"),
        "{}",
        r[0].error
    );
    js2.shutdown().await.unwrap();
    js.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pinning_another_certificate_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    // Guangdong's certificate pinned, Sichuan's address: the handshake fails.
    let e = hcmr::client::connect(&sc.endpoint, gd.tls_cert.as_deref(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    // Plain text to a TLS node: no answer, not a downgrade.
    let plain = sc.endpoint.replace("https://", "http://");
    let r = hcmr::client::connect(&plain, None, Some(&test_token(&sc))).await;
    if let Ok(ch) = r {
        let e = proto::health_code_service_client::HealthCodeServiceClient::new(ch)
            .verify_health_code(proto::VerifyHealthCodeRequest::default())
            .await
            .unwrap_err();
        assert_ne!(e.code(), Code::Ok);
    }
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
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
async fn encrypted_key_files_need_their_passphrase_and_survive_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let var = "HCMR_TEST_PASSPHRASE_SECURITY_RS";
    std::env::set_var(var, "correct horse battery staple");
    let mut o = hcmr::node::InitOptions::new("127.0.0.1:0".parse().unwrap());
    o.key_passphrase_env = Some(var.into());
    let cfg = hcmr::node::init_node(
        hcmr::province::Province::from_code(SICHUAN).unwrap(),
        &dir.path().join("sc"),
        &o,
    )
    .await
    .unwrap();
    add_test_caller(&cfg).await;
    for f in ["node.key", "subject.key", "tls/node.key"] {
        let text = std::fs::read_to_string(dir.path().join("sc").join(f)).unwrap();
        assert!(
            text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{f}"
        );
    }
    let sc = start(&cfg).await;
    let before = kid_of(&sc).await;
    operator(&sc)
        .await
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .unwrap();
    sc.shutdown().await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("sc/node.key")).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "the rotated key too"
    );
    let sc = start(&cfg).await;
    let after = kid_of(&sc).await;
    assert_ne!(before, after);
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300)
        .await
        .code;
    assert_eq!(
        verify(&sc, &code).await.verdict,
        proto::Verdict::Recognized as i32
    );
    sc.shutdown().await.unwrap();

    // A plain hex subject key (of a node made before subject keys were encrypted) is rewritten
    // encrypted at start, the same key: a code issued before still matches its holder.
    let protection = hcmr::keys::KeyProtection::from_sources(Some(var), None).unwrap();
    let subject_file = dir.path().join("sc/subject.key");
    let (key, _) = hcmr::keys::read_subject_key(&subject_file, &protection).unwrap();
    std::fs::remove_file(&subject_file).unwrap();
    hcmr::keys::write_subject_key(&subject_file, &key, &hcmr::keys::KeyProtection::Plain).unwrap();
    let sc = start(&cfg).await;
    let text = std::fs::read_to_string(&subject_file).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    let (again, form) = hcmr::keys::read_subject_key(&subject_file, &protection).unwrap();
    assert_eq!(form, hcmr::keys::SubjectKeyForm::Pkcs8);
    let number = hcmr::identity::synthetic_resident_id("510104", "19900101", 131);
    let doc = hcmr::identity::DocumentType::ResidentIdentityCard;
    assert_eq!(
        again.subject_hash(doc, &number),
        key.subject_hash(doc, &number)
    );
    let matched = codes(&sc)
        .await
        .match_identity(proto::MatchIdentityRequest {
            code,
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: number,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matched.matches);
    sc.shutdown().await.unwrap();
    assert!(!dir.path().join("sc/subject.key.new").exists());

    // Without the passphrase, or with a wrong one, the node does not start, and says why.
    std::env::set_var(var, "wrong");
    let c = hcmr::node::Config::load(&cfg).unwrap();
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(
        e.contains("subject.key cannot be decrypted: wrong passphrase"),
        "{e}"
    );
    std::env::remove_var(var);
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(
        e.contains(&format!("{var} (key_passphrase_env) is not set")),
        "{e}"
    );
    // Without the setting, the encrypted key files are named, the first one read first.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("key_passphrase_env = \"{var}\"\n");
    assert!(text.contains(&line), "{text}");
    std::fs::write(&cfg, text.replace(&line, "")).unwrap();
    let c = hcmr::node::Config::load(&cfg).unwrap();
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(
        e.contains("subject.key is encrypted: set the passphrase"),
        "{e}"
    );
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
            hcmr::display::display_time(log[0].time, Default::default()).as_str(),
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

#[tokio::test]
async fn a_passphrase_added_to_a_node_with_plain_keys_changes_no_file() {
    // The node refuses to run on plain keys under a passphrase, and leaves every key file as it
    // was (the subject key is rewritten encrypted only once the other keys read encrypted).
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    let node_dir = cfg.parent().unwrap().to_path_buf();
    let files = ["node.key", "subject.key", "tls/node.key"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(node_dir.join(f)).unwrap())
        .collect();
    let var = "HCMR_TEST_PASSPHRASE_ADDED_LATER";
    std::env::set_var(var, "added later");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen(
        "\nprovince = ",
        &format!("\nkey_passphrase_env = \"{var}\"\nprovince = "),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let c = hcmr::node::Config::load(&cfg).unwrap();
    assert_eq!(c.key_passphrase_env.as_deref(), Some(var));
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(e.contains("node.key is not encrypted"), "{e}");
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(node_dir.join(f)).unwrap())
        .collect();
    assert_eq!(after, before);
    std::env::remove_var(var);
}

/// Issue 15 fault 2: a self-made "Guangdong" node sends the live agreement's id as version 2,
/// pinning and signed by its own key, with its own address. It is refused, nothing is stored,
/// Sichuan still syncs with the real Guangdong, and the impostor is not let in as Guangdong.
/// A pending proposal can be rejected (by the side it was sent to) or withdrawn (by its
/// proposer); an acceptance of a withdrawn proposal concludes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_cannot_amend_or_redirect_and_pending_proposals_can_be_rejected_or_withdrawn() {
    use hcmr::agreement::{AgreementBody, AgreementId, SignedAgreement};
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    let v1 = agreements(&sc).await.remove(0);
    let body = AgreementBody::decode(&v1.signed.as_ref().unwrap().body).unwrap();

    // The impostor's version 2: its own key for Guangdong, signed by it.
    let impostor = NodeKey::generate();
    let mut forged = body.clone();
    forged.version = 2;
    forged.proposer.keys = vec![impostor.public()];
    let forged = SignedAgreement::propose(forged, &impostor).unwrap();
    assert_eq!(forged.body().id, AgreementId::from_hex(&id).unwrap());
    let mut as_impostor = federation_as(&sc, &node_identity(GUANGDONG, &impostor)).await;
    let e = as_impostor
        .propose_agreement(proto::ProposeAgreementRequest {
            agreement: Some(hcmr::node::convert::signed_to_proto(&forged)),
            proposer_endpoint: "https://127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("an amendment must be signed by a key that version 1 pins for 440000"),
        "{}",
        e.message()
    );
    let listed = agreements(&sc).await;
    assert_eq!(listed.len(), 1, "nothing stored: {listed:#?}");
    // The real Guangdong is still where Sichuan syncs, and the impostor is no Guangdong here.
    let synced = sync_now(&sc).await;
    assert!(synced[0].ok, "{synced:?}");
    let e = as_impostor
        .get_agreements(proto::GetAgreementsRequest {
            province: "440000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Nor does a new agreement of the impostor's get in while one is in force.
    let sc_key = body.acceptor.keys[0];
    let e = as_impostor
        .propose_agreement(stranger_proposal(GUANGDONG, &impostor, sc_key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("is in force here"), "{}", e.message());
    assert_eq!(agreements(&sc).await.len(), 1);

    // A genuine amendment from Guangdong waits at Sichuan: Sichuan rejects it.
    let amend = |peer: &hcmr::node::NodeHandle, kid: String| proto::CreateAgreementRequest {
        peer_endpoint: peer.endpoint.clone(),
        peer_codes_here: map(&[(G, G), (Y, Y)]),
        our_codes_there: map(&[(G, G)]),
        max_code_age_secs: 3600,
        max_trust_age_secs: 0,
        amends: id.clone(),
        expected_peer_kid: kid,
        effective_from: 0,
        effective_until: hcmr::unix_now() + 86_400,
    };
    let sc_kid = kid_of(&sc).await;
    let v2 = operator(&gd)
        .await
        .create_agreement(amend(&sc, sc_kid.clone()))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(v2.version, 2);
    let e = operator(&sc)
        .await
        .withdraw_agreement(proto::WithdrawAgreementRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("reject it"), "{}", e.message());
    let out = cli(&sc)
        .args(["agreement", "reject", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("rejected agreement {id}")),
        "{out:?}"
    );
    // Rejecting again: the agreement is known, nothing is pending: a refusal (exit 1).
    let again = cli(&sc)
        .args(["agreement", "reject", &id])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("has no proposal awaiting this node's acceptance: nothing to reject"),
        "{again:?}"
    );
    let states: Vec<(u32, i32)> = agreements(&sc)
        .await
        .iter()
        .map(|a| (a.version, a.state))
        .collect();
    assert_eq!(states, [(1, proto::AgreementState::Concluded as i32)]);
    // Sichuan told Guangdong (a signed rejection): Guangdong dropped its PROPOSED copy, so
    // neither side shows version 2 and there is nothing to withdraw (a refusal, exit 1).
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the proposer was told and dropped its copy"),
        "{out:?}"
    );
    assert_eq!(agreements(&gd).await.len(), 1);
    let out = cli(&gd)
        .args(["agreement", "withdraw", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("has no proposal of this node awaiting the peer's acceptance"),
        "{out:?}"
    );

    // Proposed again, withdrawn at Guangdong before Sichuan accepts: Sichuan is told and drops
    // its copy, and the acceptance concludes nothing anywhere.
    operator(&gd)
        .await
        .create_agreement(amend(&sc, sc_kid))
        .await
        .unwrap();
    let w = operator(&gd)
        .await
        .withdraw_agreement(proto::WithdrawAgreementRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.versions, w.peer_notified), (vec![2], true));
    assert_eq!(agreements(&sc).await.len(), 1, "Sichuan dropped version 2");
    let e = operator(&sc)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("withdrawn"), "{}", e.message());
    let concluded = |l: &[proto::AgreementView]| {
        l.iter()
            .filter(|a| a.state == proto::AgreementState::Concluded as i32)
            .map(|a| a.version)
            .collect::<Vec<_>>()
    };
    assert_eq!(concluded(&agreements(&sc).await), [1]);
    assert_eq!(concluded(&agreements(&gd).await), [1]);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// A proposal from a node of `province` (with its own key) to Sichuan, with a fresh id.
fn stranger_proposal(
    province: u32,
    key: &NodeKey,
    sc_key: hcmr::keys::PublicKey,
) -> proto::ProposeAgreementRequest {
    use hcmr::agreement::{AgreementBody, AgreementId, DirectionTerms, Party, SignedAgreement};
    use hcmr::province::Province;
    let now = hcmr::unix_now();
    let (p, sc) = (
        Province::from_code(province).unwrap(),
        Province::from_code(SICHUAN).unwrap(),
    );
    let dir = |issuer, verifier| DirectionTerms {
        issuer,
        verifier,
        status_map: [(
            hcmr::status::HealthStatus::Green,
            hcmr::status::HealthStatus::Green,
        )]
        .into(),
        max_code_age_secs: 60,
        max_trust_age_secs: 0,
        effective_from: now,
        effective_until: now + 60,
    };
    let body = AgreementBody {
        id: AgreementId::generate(),
        version: 1,
        created_at: now,
        proposer: Party {
            province: p,
            keys: vec![key.public()],
        },
        acceptor: Party {
            province: sc,
            keys: vec![sc_key],
        },
        directions: vec![dir(p, sc), dir(sc, p)],
    };
    proto::ProposeAgreementRequest {
        agreement: Some(hcmr::node::convert::signed_to_proto(
            &SignedAgreement::propose(body, key).unwrap(),
        )),
        proposer_endpoint: "https://127.0.0.1:1".into(),
    }
}

/// Issue 15 fault 3: one province may have at most 4 proposals awaiting a node's decision (the
/// fifth is RESOURCE_EXHAUSTED until one is rejected); ListAgreements is paged, and the CLI
/// follows the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_proposals_are_capped_per_province_and_agreements_are_listed_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let info = federation(&sc)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let sc_key = hcmr::keys::PublicKey::from_bytes(&info.keys[0].public_key).unwrap();
    let js_key = NodeKey::generate();
    let mut js = federation_as(&sc, &node_identity(JIANGSU, &js_key)).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            js.propose_agreement(stranger_proposal(JIANGSU, &js_key, sc_key))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    let e = js
        .propose_agreement(stranger_proposal(JIANGSU, &js_key, sc_key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("4 proposals from 320000 already await 510000's decision (at most 4)"),
        "{}",
        e.message()
    );
    operator(&sc)
        .await
        .reject_agreement(proto::RejectAgreementRequest { id: ids[0].clone() })
        .await
        .unwrap();
    js.propose_agreement(stranger_proposal(JIANGSU, &js_key, sc_key))
        .await
        .unwrap();
    // The keys a stored proposal claims let no one in as that province before it is accepted.
    let e = js
        .get_agreements(proto::GetAgreementsRequest {
            province: JIANGSU.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // 25 more provinces, 4 each: 104 pending in all, listed 100 a page by default.
    let others: Vec<u32> = hcmr::province::PROVINCES
        .iter()
        .map(|p| p.code)
        .filter(|c| ![SICHUAN, JIANGSU].contains(c))
        .take(25)
        .collect();
    for p in others {
        let key = NodeKey::generate();
        let mut fed = federation_as(&sc, &node_identity(p, &key)).await;
        for _ in 0..4 {
            fed.propose_agreement(stranger_proposal(p, &key, sc_key))
                .await
                .unwrap();
        }
    }
    let mut op = operator(&sc).await;
    let first = op
        .list_agreements(proto::ListAgreementsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.agreements.len(), 100);
    assert!(!first.next_page_token.is_empty());
    let e = op
        .list_agreements(proto::ListAgreementsRequest {
            state: proto::AgreementState::Concluded as i32,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("page_token"), "{}", e.message());
    let second = op
        .list_agreements(proto::ListAgreementsRequest {
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.agreements.len(), 4);
    assert!(second.next_page_token.is_empty());
    let mut seen: Vec<&str> = first
        .agreements
        .iter()
        .chain(&second.agreements)
        .map(|a| a.id.as_str())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 104, "every version once");
    let small = op
        .list_agreements(proto::ListAgreementsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(small.agreements.len(), 3);

    let out = cli(&sc).args(["agreement", "list"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains(" <-> 510000")).count(),
        104,
        "{text}"
    );
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

const ZHEJIANG: u32 = 330000;

/// A proposal from `from` to `to` (a newcomer: no agreement between them).
async fn propose_new(from: &hcmr::node::NodeHandle, to: &hcmr::node::NodeHandle) -> String {
    let now = hcmr::unix_now();
    operator(from)
        .await
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: to.endpoint.clone(),
            peer_codes_here: map(&[(G, G)]),
            our_codes_there: map(&[(G, G)]),
            max_code_age_secs: 3600,
            max_trust_age_secs: 0,
            amends: String::new(),
            expected_peer_kid: kid_of(to).await,
            effective_from: now,
            effective_until: now + 86_400,
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap()
        .id
}

/// Issue 15 faults 2-3 (follow-up): a withdrawal is a signed notice the peer takes, so the peer
/// drops its copy and the cap of 4 is freed; a rejection reaches the proposer the same way; a
/// forged notice (another province's certificate, an impostor's key, a stranger's own name)
/// changes nothing; the cap's refusal is the peer's refusal (exit 1) and names what works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_and_rejections_reach_the_other_side_and_forged_ones_are_refused() {
    use hcmr::agreement::{AgreementId, ProposalNotice, ProposalOutcome};
    use hcmr::province::Province;
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let zj = start(&init_node(dir.path(), ZHEJIANG).await).await;
    let pending = |l: &[proto::AgreementView]| l.len();

    // Proposed and withdrawn at once, 6 times: each withdrawal reaches Sichuan, whose list is
    // empty again, so the cap of 4 never fills.
    for _ in 0..6 {
        let id = propose_new(&zj, &sc).await;
        assert_eq!(pending(&agreements(&sc).await), 1);
        let out = cli(&zj)
            .args(["agreement", "withdraw", &id])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("the peer was told and dropped its copy"),
            "{out:?}"
        );
        assert_eq!(pending(&agreements(&sc).await), 0, "Sichuan dropped {id}");
        assert_eq!(pending(&agreements(&zj).await), 0);
        // Accepting it now at Sichuan: an unknown id (exit 64).
        let out = cli(&sc)
            .args(["agreement", "accept", &id])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{out:?}");
    }

    // Forged withdrawals of a pending proposal of Zhejiang's: nothing changes at Sichuan.
    let id = propose_new(&zj, &sc).await;
    let aid = AgreementId::from_hex(&id).unwrap();
    let zj_p = Province::from_code(ZHEJIANG).unwrap();
    let js_key = NodeKey::generate();
    let notice = |by: Province, key: &NodeKey| proto::NotifyProposalDroppedRequest {
        notice: Some(hcmr::node::convert::proposal_notice_to_proto(
            &ProposalNotice::sign(
                aid,
                1,
                by,
                ProposalOutcome::Withdrawn,
                hcmr::unix_now(),
                key,
            ),
        )),
    };
    // Jiangsu's certificate, a notice in Zhejiang's name.
    let mut as_js = federation_as(&sc, &node_identity(JIANGSU, &js_key)).await;
    let e = as_js
        .notify_proposal_dropped(notice(zj_p, &js_key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("the notice is from 330000 but the calling node's certificate is for 320000"),
        "{}",
        e.message()
    );
    // Jiangsu in its own name: it proposed nothing here, so nothing is dropped.
    let r = as_js
        .notify_proposal_dropped(notice(Province::from_code(JIANGSU).unwrap(), &js_key))
        .await
        .unwrap()
        .into_inner();
    assert!(r.versions.is_empty());
    // An impostor "Zhejiang": its own key, which the proposal does not pin.
    let impostor = NodeKey::generate();
    let mut as_impostor = federation_as(&sc, &node_identity(ZHEJIANG, &impostor)).await;
    let e = as_impostor
        .notify_proposal_dropped(notice(zj_p, &impostor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("it must be signed by a key the proposal pins for 330000"),
        "{}",
        e.message()
    );
    let listed = agreements(&sc).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(
        listed[0].state,
        proto::AgreementState::AwaitingAcceptance as i32
    );

    // Sichuan rejects it: Zhejiang is told and drops its PROPOSED copy.
    let out = cli(&sc)
        .args(["agreement", "reject", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the proposer was told and dropped its copy"),
        "{out:?}"
    );
    assert_eq!(pending(&agreements(&zj).await), 0);
    // Nothing pending of a known id... is no longer known at all: a bad argument.
    let out = cli(&zj)
        .args(["agreement", "withdraw", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");

    // Four kept pending at Sichuan: the fifth is Sichuan's refusal (exit 1, not 69), naming
    // what works.
    for _ in 0..4 {
        propose_new(&zj, &sc).await;
    }
    let out = cli(&zj)
        .args([
            "agreement",
            "propose",
            "--peer",
            &sc.endpoint,
            "--peer-kid",
            &kid_of(&sc).await,
            "--peer-codes",
            "green=green",
            "--our-codes",
            "green=green",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("4 proposals from 330000 already await 510000's decision (at most 4)")
            && err.contains("hcmr agreement reject ID")
            && err.contains("hcmr agreement withdraw ID"),
        "{err}"
    );
    // An unknown id to amend is a bad argument (exit 64).
    let out = cli(&zj)
        .args(["agreement", "propose", "--amends", &"ab".repeat(16)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

/// A withdrawal or rejection made while the other node is down is kept and sent again at the
/// next sync (`hcmr sync` here): the other side then drops its copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_or_rejection_the_peer_missed_is_sent_again_at_sync() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let zj_cfg = init_node(dir.path(), ZHEJIANG).await;
    // Only the explicit syncs below send anything again.
    set_sync_interval(&sc_cfg, 3600);
    set_sync_interval(&zj_cfg, 3600);
    let sc = start(&sc_cfg).await;
    let zj = start(&zj_cfg).await;

    // Withdrawn at Zhejiang while Sichuan is down.
    let id = propose_new(&zj, &sc).await;
    pin_listen(&sc_cfg, &sc);
    sc.shutdown().await.unwrap();
    let out = cli(&zj)
        .args(["agreement", "withdraw", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("the peer could not be told now: the notice is sent again at every sync"),
        "{out:?}"
    );
    let sc = start(&sc_cfg).await;
    assert_eq!(agreements(&sc).await.len(), 1, "Sichuan has not heard yet");
    // Accepting the stale copy: Zhejiang refuses (exit 1) and says why; nothing changes.
    let out = cli(&sc)
        .args(["agreement", "accept", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("330000 holds no proposal to it (it was withdrawn, or never made here)"),
        "{out:?}"
    );
    assert_eq!(
        agreements(&sc).await[0].state,
        proto::AgreementState::AwaitingAcceptance as i32
    );
    let out = cli(&zj).args(["sync"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(agreements(&sc).await.is_empty(), "Sichuan dropped {id}");
    // Taken once: a second sync sends nothing (and Sichuan still has nothing).
    sync_now(&zj).await;
    assert!(agreements(&sc).await.is_empty());

    // Rejected at Sichuan while Zhejiang is down.
    let id = propose_new(&zj, &sc).await;
    pin_listen(&zj_cfg, &zj);
    zj.shutdown().await.unwrap();
    let r = operator(&sc)
        .await
        .reject_agreement(proto::RejectAgreementRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.versions, r.peer_notified), (vec![1], false));
    let zj = start(&zj_cfg).await;
    assert_eq!(agreements(&zj).await.len(), 1, "Zhejiang has not heard yet");
    sync_now(&sc).await;
    assert!(agreements(&zj).await.is_empty(), "Zhejiang dropped {id}");
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}
