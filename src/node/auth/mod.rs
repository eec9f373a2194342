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
//! | `FederationService/NotifyProposalDropped` | any node certificate (mutual TLS); the notice must come from the certified province, certified by and signed with a key the pending proposal pins for it |
//! | other `FederationService` RPCs | a node certificate of a province this node has an agreement with, certified by a key the agreement pins or the province's trust feed names (not withdrawn) |
//!
//! A call without credentials gets UNAUTHENTICATED; a caller without the role, or a node of a
//! province without an agreement, gets PERMISSION_DENIED; a caller over its rate gets
//! RESOURCE_EXHAUSTED. Each refusal is written to the `access` tree (see
//! [`crate::audit::AccessDenial`]) and logged without the token.
//!
//! On a node without TLS (loopback development only) there are no certificates, so the
//! federation RPCs are open; the node says so loudly at start.

use crate::lock::Locked;
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
            // A withdrawal comes from a province with no agreement here (a newcomer's first
            // proposal); the service checks it against the keys the proposal pins.
            "ProposeAgreement" | "NotifyProposalDropped" => Need::AnyNode,
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
        self.allow_n(who, 1)
    }

    /// Takes `n` from `who`'s bucket (at most the burst, so that any allowed batch can pass
    /// once the bucket is full); false, taking nothing, when fewer are left.
    pub(crate) fn allow_n(&self, who: &str, n: usize) -> bool {
        let n = (n as f64).min(self.burst);
        let now = Instant::now();
        let mut b = self.buckets.locked();
        let bucket = b.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
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

    /// Takes `n` more from the rate of the caller named in `who` (`caller NAME`), for a call
    /// that carries more than one unit of work (a batch of codes counts each code).
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED when the caller's bucket has fewer left; the refusal is recorded.
    pub(crate) fn take_codes(
        &self,
        who: &str,
        n: usize,
        rpc: &str,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<(), tonic::Status> {
        let Some(name) = who.strip_prefix("caller ") else {
            return Ok(());
        };
        if n == 0 || self.rate.allow_n(name, n) {
            return Ok(());
        }
        let denied = Denied::new(
            tonic::Code::ResourceExhausted,
            who.to_string(),
            format!(
                "caller {name} is over its request rate: each code of a batch counts ({} codes \
                 a second, limits.caller_requests_per_sec); retry shortly",
                self.limits.caller_requests_per_sec
            ),
        );
        self.record_denial(rpc, &denied, remote);
        Err(denied.status)
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
        let feeds = self.peer_feeds.locked();
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
                // An acceptance most often misses because the proposal was withdrawn here (or
                // never made): say so, as the operator who accepted reads this.
                let held = if what == "AcceptAgreement" {
                    format!(
                        " and {} holds no proposal to it (it was withdrawn, or never made here)",
                        self.province
                    )
                } else {
                    String::new()
                };
                return Err(Denied::new(
                    tonic::Code::PermissionDenied,
                    who,
                    format!(
                        "{what}: province {} has no agreement with {}{held}, or its certificate is not certified by a key pinned in the agreement or named by its trust feed",
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
            tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
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
            self.rate_refusal_lines.take(second) == super::log_budget::Line::Write
        } else {
            match self.refusal_lines.take(second) {
                super::log_budget::Line::Write => true,
                super::log_budget::Line::Notice => {
                    tracing::warn!(
                        "more than {REFUSAL_LINES_PER_SEC} calls refused this second: the rest are \
                         not logged one by one (`hcmr caller refused` counts them all)"
                    );
                    false
                }
                super::log_budget::Line::Quiet => false,
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
            .map(super::listener::CallGuard::new);
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
    _busy: super::listener::CallGuard,
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
            Principal::Unchecked => "anonymous".to_string(),
        };
        let refuse = |code: tonic::Code, message: String| {
            let denied = Denied::new(code, who.clone(), message);
            self.record_denial(&path, &denied, remote);
            Ok(denied.status.into_http())
        };
        // Held for the whole call, its body read included.
        let _slot = match self
            .in_flight
            .enter(&who, remote.map(|a| a.ip()), &self.limits)
        {
            Ok(slot) => slot,
            Err(message) => return refuse(tonic::Code::ResourceExhausted, message),
        };
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(principal);
        // The body is read before the node-wide slot is taken, within its own timeout, so that
        // slow or unfinished bodies hold no slot of the node's capacity.
        let limit = self.limits.max_request_bytes.saturating_add(BODY_SLACK);
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(self.limits.body_timeout_secs),
            http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)),
        )
        .await;
        let body = match read {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Ok(tonic::Status::out_of_range(format!(
                    "{BODY_TOO_LARGE} ({} bytes)",
                    self.limits.max_request_bytes
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
                        self.limits.body_timeout_secs
                    ),
                )
            }
        };
        let _permit = match self.concurrency.clone().try_acquire_owned() {
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

/// Calls in flight per caller (token or peer province) and per remote address.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// Who or where -> calls in flight. A std mutex: held for a map update only.
    counts: std::sync::Mutex<HashMap<InFlightKey, usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum InFlightKey {
    Who(String),
    Address(std::net::IpAddr),
}

/// A call's place in [`InFlight`]; given back when dropped.
pub(crate) struct Slot {
    in_flight: Arc<InFlight>,
    keys: Vec<InFlightKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.in_flight.counts.locked();
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

impl InFlight {
    /// Takes a slot for a call of `who` from `address`.
    ///
    /// # Errors
    /// The refusal's message, when `who` or `address` is at its limit.
    pub(crate) fn enter(
        self: &Arc<Self>,
        who: &str,
        address: Option<std::net::IpAddr>,
        limits: &super::config::LimitsConfig,
    ) -> Result<Slot, String> {
        let mut counts = self.counts.locked();
        let mine = InFlightKey::Who(who.to_string());
        if counts.get(&mine).copied().unwrap_or(0) >= limits.max_concurrent_per_caller {
            return Err(format!(
                "{who} has {} calls in flight, its limit (limits.max_concurrent_per_caller); retry when one ends",
                limits.max_concurrent_per_caller
            ));
        }
        let mut keys = vec![mine];
        if let Some(a) = address {
            let at = InFlightKey::Address(a);
            if counts.get(&at).copied().unwrap_or(0) >= limits.max_concurrent_per_address {
                return Err(format!(
                    "address {a} has {} calls in flight, its limit (limits.max_concurrent_per_address); retry when one ends",
                    limits.max_concurrent_per_address
                ));
            }
            keys.push(at);
        }
        for k in &keys {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(Slot {
            in_flight: self.clone(),
            keys,
        })
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
            if node.state.concurrency.available_permits() < 512 {
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
        let refused = node.state.refusals.take();
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
        let refused = node.state.refusals.take();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(
            (refused[0].outcome.as_str(), refused[0].who.as_str()),
            ("DEADLINE_EXCEEDED", "caller slow")
        );
        assert_eq!(node.state.concurrency.available_permits(), 1);
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
}
