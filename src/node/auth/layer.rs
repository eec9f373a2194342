//! The tower layer every gRPC call passes: authentication, authorization, the concurrency
//! limits and the request size limit, before the call reaches a service.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::TcpConnectInfo;

use super::super::listener::TlsConnInfo;

use super::super::NodeState;

use super::*;

/// The tower layer that authorizes every gRPC call before it reaches a service, and holds a
/// slot of the global concurrency limit while it runs.
#[derive(Clone)]
pub(crate) struct AuthLayer {
    pub(crate) state: Arc<NodeState>,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            state: self.state.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub(crate) struct Auth<S> {
    inner: S,
    state: Arc<NodeState>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for Auth<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        let tls = req.extensions().get::<TlsConnInfo>().cloned();
        let remote = tls.as_ref().and_then(|t| t.remote).or_else(|| {
            req.extensions()
                .get::<TcpConnectInfo>()
                .and_then(|t| t.remote_addr())
        });
        let certs = tls.as_ref().and_then(|t| t.certs.clone());
        // The call counts on its connection until its answer ends (for the idle timeout).
        let busy = tls
            .as_ref()
            .and_then(|t| t.activity.clone())
            .map(super::super::listener::CallGuard::new);
        let decision =
            self.state
                .authorize(&path, req.headers(), certs.as_ref().map(|c| c.as_slice()));
        // The clone that was polled ready runs this call; the fresh clone waits for the next
        // poll_ready (tower's usual pattern).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let response = match decision {
                Ok(principal) => state.run(path, principal, remote, req, inner).await,
                Err(denied) => {
                    state.record_denial(&path, &denied, remote);
                    Ok(denied.status.into_http())
                }
            };
            match busy {
                Some(busy) => response.map(|r| {
                    r.map(|body| tonic::body::Body::new(CountedBody { body, _busy: busy }))
                }),
                None => response,
            }
        })
    }
}

/// An answer's body that keeps its call counted on the connection until it ends (a stream).
struct CountedBody {
    body: tonic::body::Body,
    _busy: super::super::listener::CallGuard,
}

impl hyper::body::Body for CountedBody {
    type Data = hyper::body::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body over its limit ([`NodeState::run`]).
const BODY_TOO_LARGE: &str = "request message larger than limits.max_request_bytes";

impl NodeState {
    /// Runs an authorized call: takes its caller's and its address's slots, reads its body
    /// within `limits.body_timeout_secs`, then takes a slot of the node-wide limit for the time
    /// the service runs. Each refusal is recorded ([`NodeState::record_denial`]).
    async fn run<S>(
        self: Arc<Self>,
        path: String,
        principal: Option<Principal>,
        remote: Option<std::net::SocketAddr>,
        req: http::Request<tonic::body::Body>,
        mut inner: S,
    ) -> Result<http::Response<tonic::body::Body>, S::Error>
    where
        S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        >,
    {
        let Some(principal) = principal else {
            // Open calls (node information, health, reflection) run outside the limits: they
            // hold no node-wide slot.
            return inner.call(req).await;
        };
        let who = match &principal {
            Principal::Caller(c) => format!("caller {}", c.name),
            Principal::Node(p) => format!("peer {}", p.province),
            Principal::Replica(name) => format!("replica {name}"),
            Principal::Unchecked => "anonymous".to_string(),
        };
        let refuse = |code: tonic::Code, message: String| {
            let denied = Denied::new(code, who.clone(), message);
            self.record_denial(&path, &denied, remote);
            Ok(denied.status.into_http())
        };
        // Held for the whole call, its body read included.
        let _slot =
            match self
                .guards
                .in_flight
                .enter(&who, remote.map(|a| a.ip()), &self.guards.limits)
            {
                Ok(slot) => slot,
                Err(message) => return refuse(tonic::Code::ResourceExhausted, message),
            };
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(principal);
        // The body is read before the node-wide slot is taken, within its own timeout, so that
        // slow or unfinished bodies hold no slot of the node's capacity.
        let limit = self
            .guards
            .limits
            .max_request_bytes
            .saturating_add(BODY_SLACK);
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(self.guards.limits.body_timeout_secs),
            http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)),
        )
        .await;
        let body = match read {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Ok(tonic::Status::out_of_range(format!(
                    "{BODY_TOO_LARGE} ({} bytes)",
                    self.guards.limits.max_request_bytes
                ))
                .into_http());
            }
            // The client reset the stream or the connection failed: nobody to answer.
            Ok(Err(e)) => return Ok(tonic::Status::cancelled(e.to_string()).into_http()),
            Err(_) => {
                return refuse(
                    tonic::Code::DeadlineExceeded,
                    format!(
                        "the request body did not arrive within {} s (limits.body_timeout_secs)",
                        self.guards.limits.body_timeout_secs
                    ),
                )
            }
        };
        let _permit = match self.guards.concurrency.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                return refuse(
                    tonic::Code::ResourceExhausted,
                    "the node is at its limit of concurrent calls; retry shortly".into(),
                )
            }
        };
        let req = http::Request::from_parts(
            parts,
            tonic::body::Body::new(http_body_util::Full::new(body)),
        );
        inner.call(req).await
    }
}

/// Bytes a request body may hold beyond `limits.max_request_bytes`: the gRPC message header
/// (5 bytes) with room to spare, so an oversized message is refused by its declared length.
const BODY_SLACK: usize = 1024;
