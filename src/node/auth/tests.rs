//! Tests of who may call what, and of the guards.

use std::sync::Arc;

use crate::callers::Role;

use super::layer::Auth;
use super::*;
use tower::Layer as _;
#[test]
fn every_rpc_has_its_need() {
    assert_eq!(
        need("/hcmr.v1.HealthCodeService/IssueHealthCode"),
        Need::Role(Role::Issuer)
    );
    assert_eq!(
        need("/hcmr.v1.HealthCodeService/RevokeSubject"),
        Need::Role(Role::Issuer)
    );
    assert_eq!(
        need("/hcmr.v1.HealthCodeService/VerifyHealthCode"),
        Need::Role(Role::Verifier)
    );
    assert_eq!(
        need("/hcmr.v1.OperatorService/RotateKey"),
        Need::Role(Role::Admin)
    );
    assert_eq!(need("/hcmr.v1.FederationService/GetNodeInfo"), Need::Open);
    assert_eq!(
        need("/hcmr.v1.FederationService/ProposeAgreement"),
        Need::AnyNode
    );
    assert_eq!(
        need("/hcmr.v1.FederationService/NotifyProposalDropped"),
        Need::AnyNode
    );
    assert_eq!(
        need("/hcmr.v1.FederationService/MatchSubject"),
        Need::AgreedNode
    );
    assert_eq!(need("/grpc.health.v1.Health/Check"), Need::Open);
}

#[test]
fn bearer_tokens() {
    let v = http::HeaderValue::from_static("Bearer hcmr_abc ");
    assert_eq!(bearer(Some(&v)), Some("hcmr_abc"));
    let v = http::HeaderValue::from_static("Basic eA==");
    assert_eq!(bearer(Some(&v)), None);
    assert_eq!(bearer(None), None);
}

/// The node-wide limit: with one slot, a second call while the first runs is refused at
/// once with RESOURCE_EXHAUSTED; the slot is free again when the first ends.
#[tokio::test]
async fn the_concurrency_limit_refuses_the_call_over_it() {
    use tower::{Service, ServiceExt};
    let dir = tempfile::tempdir().unwrap();
    let p = crate::province::Province::from_code(510000).unwrap();
    let path = crate::node::init(
        p,
        &dir.path().join("sc"),
        "127.0.0.1:0".parse().unwrap(),
        None,
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "max_concurrent_requests = 512",
            "max_concurrent_requests = 1",
        ),
    )
    .unwrap();
    let config = crate::node::Config::load(&path).unwrap();
    let token = crate::node::add_caller_offline(&config, "gate", &[Role::Verifier])
        .await
        .unwrap();
    let node = crate::node::Node::open(&config).unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
    let inner = tower::service_fn(move |_req: http::Request<tonic::body::Body>| {
        let released = released.clone();
        async move {
            if let Some(r) = released.lock().await.take() {
                let _ = r.await;
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        }
    });
    let mut auth = AuthLayer {
        state: node.state.clone(),
    }
    .layer(inner);
    let request = || {
        http::Request::builder()
            .uri("/hcmr.v1.HealthCodeService/VerifyHealthCode")
            .header("authorization", format!("Bearer {}", token.as_str()))
            .body(tonic::body::Body::empty())
            .unwrap()
    };
    let grpc_status = |r: &http::Response<tonic::body::Body>| {
        r.headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let first = auth.ready().await.unwrap().call(request());
    let running = tokio::spawn(first);
    tokio::task::yield_now().await;
    // Wait until the first call holds the slot.
    for _ in 0..100 {
        if node.state.guards.concurrency.available_permits() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let second = auth.ready().await.unwrap().call(request()).await.unwrap();
    assert_eq!(
        grpc_status(&second).as_deref(),
        Some("8"),
        "RESOURCE_EXHAUSTED"
    );
    release.send(()).unwrap();
    let first = running.await.unwrap().unwrap();
    assert_eq!(grpc_status(&first), None, "the first call ran");
    let third = auth.ready().await.unwrap().call(request()).await.unwrap();
    assert_eq!(grpc_status(&third), None);
}

/// A node with `limits` replaced (`key = value` lines of [limits]), a verifier token of
/// each of `callers`, and the auth layer around a service that reads the body, as tonic's
/// handlers do, and waits for `release` (first call only).
async fn layered(
    limits: &[(&str, &str)],
    callers: &[&str],
) -> (
    tempfile::TempDir,
    crate::node::Node,
    Vec<String>,
    Auth<
        impl tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
                Future = impl Send,
            > + Clone
            + Send
            + 'static,
    >,
    tokio::sync::oneshot::Sender<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let p = crate::province::Province::from_code(510000).unwrap();
    let path = crate::node::init(
        p,
        &dir.path().join("sc"),
        "127.0.0.1:0".parse().unwrap(),
        None,
    )
    .await
    .unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (k, v) in limits {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{k} = ")))
            .unwrap()
            .to_string();
        text = text.replace(&line, &format!("{k} = {v}"));
    }
    std::fs::write(&path, text).unwrap();
    let config = crate::node::Config::load(&path).unwrap();
    let mut tokens = Vec::new();
    for c in callers {
        let t = crate::node::add_caller_offline(&config, c, &[Role::Verifier])
            .await
            .unwrap();
        tokens.push(t.as_str().to_string());
    }
    let node = crate::node::Node::open(&config).unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
    let inner = tower::service_fn(move |req: http::Request<tonic::body::Body>| {
        let released = released.clone();
        async move {
            let _ = http_body_util::BodyExt::collect(req.into_body()).await;
            let first = released.lock().await.take();
            if let Some(r) = first {
                let _ = r.await;
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        }
    });
    let auth = AuthLayer {
        state: node.state.clone(),
    }
    .layer(inner);
    (dir, node, tokens, auth, release)
}

fn verify_request(token: &str, body: tonic::body::Body) -> http::Request<tonic::body::Body> {
    http::Request::builder()
        .uri("/hcmr.v1.HealthCodeService/VerifyHealthCode")
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .unwrap()
}

fn grpc_status(r: &http::Response<tonic::body::Body>) -> Option<String> {
    r.headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string())
}

/// A body that sends a gRPC message header declaring 1,000 bytes, then nothing, forever.
fn unfinished_body() -> tonic::body::Body {
    use futures_util::StreamExt as _;
    let header = hyper::body::Bytes::from_static(&[0, 0, 0, 0x03, 0xe8]);
    let frames = futures_util::stream::once(async move {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(header))
    })
    .chain(futures_util::stream::pending());
    tonic::body::Body::new(http_body_util::StreamBody::new(frames))
}

/// Issue 15 fault 1: one caller at its own limit is refused (RESOURCE_EXHAUSTED, recorded
/// under its name) while another caller's call still runs.
#[tokio::test]
async fn one_caller_at_its_limit_leaves_room_for_the_others_and_is_recorded() {
    use tower::{Service, ServiceExt};
    let (_dir, node, tokens, mut auth, release) =
        layered(&[("max_concurrent_per_caller", "1")], &["gate", "other"]).await;
    let first = auth
        .ready()
        .await
        .unwrap()
        .call(verify_request(&tokens[0], tonic::body::Body::empty()));
    let running = tokio::spawn(first);
    for _ in 0..100 {
        if node.state.guards.concurrency.available_permits() < 512 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let second = auth
        .ready()
        .await
        .unwrap()
        .call(verify_request(&tokens[0], tonic::body::Body::empty()))
        .await
        .unwrap();
    assert_eq!(grpc_status(&second).as_deref(), Some("8"));
    let other = auth
        .ready()
        .await
        .unwrap()
        .call(verify_request(&tokens[1], tonic::body::Body::empty()))
        .await
        .unwrap();
    assert_eq!(grpc_status(&other), None, "another caller is served");
    release.send(()).unwrap();
    assert_eq!(grpc_status(&running.await.unwrap().unwrap()), None);
    let refused = node.state.audit.refusals.take();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].outcome.as_str(), refused[0].who.as_str()),
        ("RESOURCE_EXHAUSTED", "caller gate")
    );
    assert_eq!(refused[0].count, 1);
}

/// Issue 15 fault 1: a body that never finishes holds no slot of the node-wide limit (one
/// slot here: another caller is served meanwhile), and is refused with DEADLINE_EXCEEDED
/// after `limits.body_timeout_secs`, recorded.
#[tokio::test]
async fn an_unfinished_body_holds_no_node_slot_and_is_refused_in_time() {
    use tower::{Service, ServiceExt};
    let (_dir, node, tokens, mut auth, release) = layered(
        &[("max_concurrent_requests", "1"), ("body_timeout_secs", "1")],
        &["slow", "gate"],
    )
    .await;
    drop(release);
    let slow = auth
        .ready()
        .await
        .unwrap()
        .call(verify_request(&tokens[0], unfinished_body()));
    let slow = tokio::spawn(slow);
    tokio::task::yield_now().await;
    let other = auth
        .ready()
        .await
        .unwrap()
        .call(verify_request(&tokens[1], tonic::body::Body::empty()))
        .await
        .unwrap();
    assert_eq!(
        grpc_status(&other),
        None,
        "served while the slow body is read"
    );
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(
        grpc_status(&slow).as_deref(),
        Some("4"),
        "DEADLINE_EXCEEDED"
    );
    let refused = node.state.audit.refusals.take();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].outcome.as_str(), refused[0].who.as_str()),
        ("DEADLINE_EXCEEDED", "caller slow")
    );
    assert_eq!(node.state.guards.concurrency.available_permits(), 1);
}

#[test]
fn rate_limiter_empties_and_keeps_callers_apart() {
    let r = RateLimiter::new(1, 3);
    assert!(r.allow("a") && r.allow("a") && r.allow("a"));
    assert!(!r.allow("a"));
    assert!(r.allow("b"));
    // Several at once: all or nothing.
    assert!(!r.allow_n("b", 3), "two left");
    assert!(r.allow_n("b", 2));
    assert!(!r.allow("b"));
}
