//! Who may call what: API tokens with roles for callers, node certificates for peers, and the
//! limits every call passes (per-caller rate, global concurrency).
//!
//! | RPCs | who |
//! |---|---|
//! | `HealthCodeService/IssueHealthCode`, `RevokeHealthCode`, `RevokeSubject` | caller with role issuer |
//! | `HealthCodeService/VerifyHealthCode`, `BatchVerifyHealthCodes`, `MatchIdentity` | caller with role verifier |
//! | `OperatorService/*` | caller with role admin |
//! | `FederationService/GetNodeInfo`, `grpc.health.v1`, server reflection | anyone |
//! | `FederationService/ProposeAgreement` | any node certificate (mutual TLS); the proposal must come from the certified province and key |
//! | other `FederationService` RPCs | a node certificate of a province this node has an agreement with, certified by a key the agreement pins or the province's trust feed names (not withdrawn) |
//!
//! A call without credentials gets UNAUTHENTICATED; a caller without the role, or a node of a
//! province without an agreement, gets PERMISSION_DENIED; a caller over its rate gets
//! RESOURCE_EXHAUSTED. Each refusal is written to the `access` tree (see
//! [`crate::audit::AccessDenial`]) and logged without the token.
//!
//! On a node without TLS (loopback development only) there are no certificates, so the
//! federation RPCs are open; the node says so loudly at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::transport::server::TcpConnectInfo;

use super::listener::TlsConnInfo;

use super::NodeState;
use crate::audit::AccessDenial;
use crate::callers::{Caller, Role};
use crate::keys::PublicKey;
use crate::province::Province;
use crate::tls::PeerCertificate;

/// Refused calls (other than over a caller's rate) logged one by one in a second; the rest of
/// that second are counted in the access log and the metric only.
pub(crate) const REFUSAL_LINES_PER_SEC: u32 = 10;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing: public information.
    Open,
    /// An API token of a caller with this role.
    Role(Role),
    /// A node certificate of any province (agreement proposals).
    AnyNode,
    /// A node certificate of a province with an agreement.
    AgreedNode,
}

/// What each RPC path needs. Unknown paths are left to the server (UNIMPLEMENTED).
pub(crate) fn need(path: &str) -> Need {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Open;
    };
    match service {
        "hcmr.v1.HealthCodeService" => match method {
            "VerifyHealthCode" | "BatchVerifyHealthCodes" | "MatchIdentity" => {
                Need::Role(Role::Verifier)
            }
            _ => Need::Role(Role::Issuer),
        },
        "hcmr.v1.OperatorService" => Need::Role(Role::Admin),
        "hcmr.v1.FederationService" => match method {
            "GetNodeInfo" => Need::Open,
            "ProposeAgreement" => Need::AnyNode,
            _ => Need::AgreedNode,
        },
        _ => Need::Open,
    }
}

/// Who made an authorized call; in the request's extensions for the service to read.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// A caller with a token.
    Caller(Arc<Caller>),
    /// A peer node, by its certificate.
    Node(PeerCertificate),
    /// A federation call on a node without TLS (development): nobody could be checked.
    Unchecked,
}

/// A refused call.
#[derive(Debug)]
pub(crate) struct Denied {
    pub(crate) status: tonic::Status,
    pub(crate) who: String,
}

impl Denied {
    fn new(code: tonic::Code, who: String, message: String) -> Denied {
        Denied {
            status: tonic::Status::new(code, message),
            who,
        }
    }
}

/// A token bucket per caller.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-caller request rate limits.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: std::sync::Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `who`'s bucket; false when it is empty.
    pub(crate) fn allow(&self, who: &str) -> bool {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = b.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The token of an `authorization: Bearer <token>` header value. The scheme is matched in any
/// case and white space around the value and the token is ignored, on purpose (RFC 6750 section
/// 2.1, RFC 9110 sections 5.5 and 11.1; docs/security.md); the token itself is compared exactly.
pub(crate) fn bearer(value: Option<&http::HeaderValue>) -> Option<&str> {
    let v = value?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl NodeState {
    /// Replaces the in-memory caller table from the store.
    pub(crate) fn reload_callers(&self) -> Result<(), crate::store::StoreError> {
        let table: HashMap<[u8; 32], Arc<Caller>> = self
            .store
            .callers()?
            .into_iter()
            .map(|c| (c.token_hash, Arc::new(c)))
            .collect();
        self.callers.store(Arc::new(table));
        Ok(())
    }

    /// Authenticates a caller by token and checks its role and rate.
    ///
    /// # Errors
    /// [`Denied`] with UNAUTHENTICATED (no or unknown token), PERMISSION_DENIED (role) or
    /// RESOURCE_EXHAUSTED (rate).
    pub(crate) fn authenticate_caller(
        &self,
        token: Option<&str>,
        role: Role,
        what: &str,
    ) -> Result<Arc<Caller>, Denied> {
        let Some(token) = token else {
            return Err(Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                format!("{what} needs the API token of a caller with role {role} (authorization: Bearer hcmr_...; an admin adds callers with `hcmr caller add`)"),
            ));
        };
        let hash = crate::callers::token_hash(token);
        let Some(caller) = self.callers.load().get(&hash).cloned() else {
            return Err(Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                "authorization: unknown or removed API token".into(),
            ));
        };
        let who = format!("caller {}", caller.name);
        if !caller.roles.has(role) {
            return Err(Denied::new(
                tonic::Code::PermissionDenied,
                who,
                format!(
                    "caller {} has role {}; {what} needs role {role}",
                    caller.name, caller.roles
                ),
            ));
        }
        if !self.rate.allow(&caller.name) {
            return Err(Denied::new(
                tonic::Code::ResourceExhausted,
                who,
                format!(
                    "caller {} is over its request rate; retry shortly",
                    caller.name
                ),
            ));
        }
        Ok(caller)
    }

    /// The node keys this node trusts for `peer`: those pinned by a concluded agreement with it
    /// or by a proposal this node made (its operator checked the peer's kid), and those its
    /// synced trust feed names (when anchored in a pinned key), less withdrawn ones. A proposal
    /// received from `peer` and not yet accepted counts for nothing: its keys are only claimed.
    pub(crate) fn peer_keys(&self, peer: Province) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = Vec::new();
        if let Ok(agreements) = self.store.agreements() {
            for a in agreements {
                if !a.is_concluded() && a.body().proposer.province != self.province {
                    continue;
                }
                if let Some(party) = a.body().peer_of(self.province) {
                    if party.province == peer {
                        keys.extend(party.keys.iter().copied());
                    }
                }
            }
        }
        self.with_feed_keys(peer, keys)
    }

    /// `pinned` keys of `peer` plus those its synced trust feed names when the feed is anchored
    /// in one of them, less withdrawn ones.
    pub(crate) fn with_feed_keys(
        &self,
        peer: Province,
        mut keys: Vec<PublicKey>,
    ) -> Vec<PublicKey> {
        let feeds = self.peer_feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = feeds.get(&peer) {
            if f.state.contains_any(&keys) {
                for k in f.state.keys() {
                    if k.withdrawn_at.is_some() {
                        keys.retain(|x| *x != k.key);
                    } else if !keys.contains(&k.key) {
                        keys.push(k.key);
                    }
                }
            }
        }
        keys
    }

    /// Authenticates a peer node by its TLS client certificate.
    fn authenticate_node(
        &self,
        certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
        need: Need,
        what: &str,
    ) -> Result<PeerCertificate, Denied> {
        let Some(cert) = certs.and_then(|c| c.first()) else {
            return Err(Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                format!("{what} is for peer nodes: it needs a node certificate (mutual TLS)"),
            ));
        };
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        let peer = crate::tls::check_node_certificate(cert, now).map_err(|e| {
            Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                format!("node certificate: {e}"),
            )
        })?;
        if need == Need::AgreedNode {
            let who = format!("peer {}", peer.province);
            if peer.province == self.province {
                return Err(Denied::new(
                    tonic::Code::PermissionDenied,
                    who,
                    format!("{what}: a certificate of this node's own province"),
                ));
            }
            if !peer.certified_by_any(&self.peer_keys(peer.province)) {
                return Err(Denied::new(
                    tonic::Code::PermissionDenied,
                    who,
                    format!(
                        "{what}: province {} has no agreement with {}, or its certificate is not certified by a key pinned in the agreement or named by its trust feed",
                        peer.province, self.province
                    ),
                ));
            }
        }
        Ok(peer)
    }

    /// Decides a gRPC call at `path`.
    pub(crate) fn authorize(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<Option<Principal>, Denied> {
        let what = path.rsplit('/').next().unwrap_or(path);
        match need(path) {
            Need::Open => Ok(None),
            Need::Role(role) => self
                .authenticate_caller(bearer(headers.get(http::header::AUTHORIZATION)), role, what)
                .map(|c| Some(Principal::Caller(c))),
            n @ (Need::AnyNode | Need::AgreedNode) => {
                if self.tls.is_none() {
                    return Ok(Some(Principal::Unchecked));
                }
                self.authenticate_node(certs, n, what)
                    .map(|p| Some(Principal::Node(p)))
            }
        }
    }

    /// Records a refused call (counted in memory; never blocks the caller) and logs it.
    pub(crate) fn record_denial(
        &self,
        rpc: &str,
        denied: &Denied,
        remote: Option<std::net::SocketAddr>,
    ) {
        let outcome = format!("{:?}", denied.status.code());
        let outcome = match denied.status.code() {
            tonic::Code::Unauthenticated => "UNAUTHENTICATED",
            tonic::Code::PermissionDenied => "PERMISSION_DENIED",
            tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            _ => outcome.as_str(),
        }
        .to_string();
        // Refusals of this outcome since the node started (the metric's value), not of this
        // second.
        let refused_total = self.metrics.access_denied(&outcome);
        let remote = remote.map(|a| a.ip().to_string()).unwrap_or_default();
        // A caller over its rate is refused as fast as it calls: such refusals are logged at most
        // once a second, with the count so far. Other refusals are logged one by one up to
        // REFUSAL_LINES_PER_SEC a second, then once that more are not. Every refusal is in the
        // access log (counted) and the metric, so no caller can flood the node's log.
        let second = crate::unix_now();
        let line = if denied.status.code() == tonic::Code::ResourceExhausted {
            self.rate_refusal_lines.take(second) == super::lines::Line::Write
        } else {
            match self.refusal_lines.take(second) {
                super::lines::Line::Write => true,
                super::lines::Line::Notice => {
                    tracing::warn!(
                        "more than {REFUSAL_LINES_PER_SEC} calls refused this second: the rest are \
                         not logged one by one (`hcmr caller refused` counts them all)"
                    );
                    false
                }
                super::lines::Line::Quiet => false,
            }
        };
        if line {
            tracing::warn!(rpc, outcome, who = %denied.who, remote, reason = denied.status.message(), refused_total, "call refused");
        }
        self.refusals.add(AccessDenial {
            time: self.now(),
            rpc: rpc.chars().take(128).collect(),
            outcome,
            who: denied.who.clone(),
            remote,
            count: 1,
        });
    }
}

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

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let tls = req.extensions().get::<TlsConnInfo>().cloned();
        let remote = tls.as_ref().and_then(|t| t.remote).or_else(|| {
            req.extensions()
                .get::<TcpConnectInfo>()
                .and_then(|t| t.remote_addr())
        });
        let certs = tls.as_ref().and_then(|t| t.certs.clone());
        let decision =
            self.state
                .authorize(&path, req.headers(), certs.as_ref().map(|c| c.as_slice()));
        let permit = match &decision {
            Ok(_) if need(&path) != Need::Open => {
                match self.state.concurrency.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        let status = tonic::Status::resource_exhausted(
                            "the node is at its limit of concurrent calls; retry shortly",
                        );
                        return Box::pin(async move { Ok(status.into_http()) });
                    }
                }
            }
            _ => None,
        };
        match decision {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                // The clone that was polled ready runs this call; the fresh clone waits for
                // the next poll_ready (tower's usual pattern).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let r = inner.call(req).await;
                    drop(permit);
                    r
                })
            }
            Err(denied) => {
                self.state.record_denial(&path, &denied, remote);
                let status = denied.status;
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let inner = tower::service_fn(move |_req: http::Request<()>| {
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
                .body(())
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
            if node.state.concurrency.available_permits() == 0 {
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

    #[test]
    fn rate_limiter_empties_and_keeps_callers_apart() {
        let r = RateLimiter::new(1, 3);
        assert!(r.allow("a") && r.allow("a") && r.allow("a"));
        assert!(!r.allow("a"));
        assert!(r.allow("b"));
    }
}
