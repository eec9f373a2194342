//! The health port (`health_listen`): the node's status in plain HTTP, for the kubelet's httpGet
//! probes and a load balancer's checks (HAProxy `option httpchk`), which speak neither gRPC nor
//! the node's pinned TLS. Plain HTTP even on a TLS node: it carries a status and a reason, no
//! data and no token.
//!
//! - `GET /healthz`: 200 `ok` while the node serves; 503 before it serves and once it drains
//!   (liveness, and a balancer's cue to stop sending new calls during a graceful stop).
//! - `GET /readyz`: 200 `ready` while the node serves and is ready for verifications (a
//!   primary always; a verify replica once synced with its primary and while it hears from it
//!   within `replica.max_lag_secs`), else 503 with the reason.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::health::Phase;
use super::replica::Readiness;
use super::NodeState;

/// Which check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// `/healthz`: is the node serving at all.
    Live,
    /// `/readyz`: should it take verifications now.
    Ready,
}

/// The answer to `check` in `phase` with `readiness`: the status code and the body (one line).
fn answer(
    check: Check,
    phase: Phase,
    readiness: impl FnOnce() -> Readiness,
) -> (StatusCode, String) {
    let not = |why: &str| (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"));
    match phase {
        Phase::Starting => not("starting"),
        Phase::Draining => not("draining: the node is shutting down"),
        Phase::Serving => match check {
            Check::Live => (StatusCode::OK, "ok\n".into()),
            Check::Ready => match readiness() {
                Readiness::Ready => (StatusCode::OK, "ready\n".into()),
                Readiness::NotReady(why) => not(&format!("not ready: {why}")),
            },
        },
    }
}

/// What the handlers read.
#[derive(Clone)]
struct PortState {
    node: Arc<NodeState>,
    phase: watch::Receiver<Phase>,
}

async fn respond(s: &PortState, check: Check) -> Response {
    let phase = *s.phase.borrow();
    let (code, body) = answer(check, phase, || s.node.readiness());
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /healthz`.
async fn healthz(axum::extract::State(s): axum::extract::State<PortState>) -> Response {
    respond(&s, Check::Live).await
}

/// `GET /readyz`.
async fn readyz(axum::extract::State(s): axum::extract::State<PortState>) -> Response {
    respond(&s, Check::Ready).await
}

/// Serves the health port on `listener` (plain HTTP) on a task until `stop` turns true, after
/// the node has drained: while it drains, both checks answer 503.
pub(crate) fn spawn(
    node: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    phase: watch::Receiver<Phase>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(health_addr = %addr, "health port serving in plain HTTP (a status, no data) at http://{addr}/healthz and http://{addr}/readyz");
    }
    let timeout = std::time::Duration::from_secs(node.guards.limits.request_timeout_secs);
    let router = axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(PortState { node, phase })
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            super::http::count_calls,
        ))
        .into_make_service_with_connect_info::<super::http::Remote>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                while !*stop.borrow_and_update() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Readiness {
        Readiness::Ready
    }

    #[test]
    fn serving_and_ready_is_200() {
        assert_eq!(
            answer(Check::Live, Phase::Serving, ready),
            (StatusCode::OK, "ok\n".to_string())
        );
        assert_eq!(
            answer(Check::Ready, Phase::Serving, ready),
            (StatusCode::OK, "ready\n".to_string())
        );
    }

    #[test]
    fn starting_and_draining_are_503_for_both_checks() {
        for check in [Check::Live, Check::Ready] {
            assert_eq!(
                answer(check, Phase::Starting, ready),
                (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_string())
            );
            assert_eq!(
                answer(check, Phase::Draining, ready),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "draining: the node is shutting down\n".to_string()
                )
            );
        }
    }

    #[test]
    fn a_replica_not_ready_is_live_but_503_on_readyz_with_the_reason() {
        let lagging = || Readiness::NotReady("never heard from the primary https://p:7510".into());
        assert_eq!(
            answer(Check::Live, Phase::Serving, lagging),
            (StatusCode::OK, "ok\n".to_string())
        );
        assert_eq!(
            answer(Check::Ready, Phase::Serving, lagging),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: never heard from the primary https://p:7510\n".to_string()
            )
        );
    }
}
