//! Who may call what: API tokens with roles for callers, node certificates for peers, and the
//! limits every call passes (per-caller rate, global concurrency).
//!
//! | RPCs | who |
//! |---|---|
//! | `HealthCodeService/IssueHealthCode`, `RevokeHealthCode`, `RevokeSubject` | caller with role issuer |
//! | `HealthCodeService/VerifyHealthCode`, `BatchVerifyHealthCodes`, `MatchIdentity`, `VerifyManifest` | caller with role verifier |
//! | `OperatorService/*` | caller with role admin |
//! | `TripService/*` | caller with role organizer |
//! | `ArrivalService/*` | caller with role receiver |
//! | `FederationService/GetNodeInfo`, `grpc.health.v1`, server reflection | anyone |
//! | `FederationService/ProposeAgreement` | any node certificate (mutual TLS); the proposal must come from the certified province and key |
//! | `FederationService/NotifyProposalDropped` | any node certificate (mutual TLS); the notice must come from the certified province, certified by and signed with a key the pending proposal pins for it |
//! | `FederationService/GetFeed` | as other federation RPCs, or an enrolled verify replica (below) |
//! | other `FederationService` RPCs | a node certificate of a province this node has an agreement with, certified by a key the agreement pins or the province's trust feed names (not withdrawn) |
//! | `ReplicaService/*` | a verify replica's certificate (binding version 2) of this node's province, certified by one of its keys, whose TLS key this primary enrolled (`hcmr init --replica-of` enrolls it; `hcmr replica remove` ends it) |
//!
//! A verify replica answers only what [`super::replica::serves`] lists; anything else is
//! refused with FAILED_PRECONDITION naming its primary, before credentials are looked at.
//! A replica's certificate is never taken as its province's node certificate.
//!
//! A call without credentials gets UNAUTHENTICATED; a caller without the role, or a node of a
//! province without an agreement, gets PERMISSION_DENIED; a caller over its rate gets
//! RESOURCE_EXHAUSTED. Each refusal is written to the `access` tree (see
//! [`crate::audit::AccessDenial`]) and logged without the token.
//!
//! On a node without TLS (loopback development only) there are no certificates, so the
//! federation RPCs are open; the node says so loudly at start.

use std::sync::Arc;

use super::NodeState;

mod layer;
mod limits;

use crate::audit::AccessDenial;
use crate::callers::{Caller, Role};
use crate::tls::PeerCertificate;
pub(crate) use layer::AuthLayer;
pub(crate) use limits::{InFlight, RateLimiter};

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
    /// As `AgreedNode`, or an enrolled verify replica of this node (GetFeed).
    FeedReader,
    /// An enrolled verify replica of this node (ReplicaService).
    Replica,
}

/// What each RPC path needs. Unknown paths are left to the server (UNIMPLEMENTED).
pub(crate) fn need(path: &str) -> Need {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Open;
    };
    match service {
        "hcmr.v1.HealthCodeService" => match method {
            "VerifyHealthCode" | "BatchVerifyHealthCodes" | "MatchIdentity" | "VerifyManifest" => {
                Need::Role(Role::Verifier)
            }
            _ => Need::Role(Role::Issuer),
        },
        "hcmr.v1.OperatorService" => Need::Role(Role::Admin),
        "hcmr.v1.TripService" => Need::Role(Role::Organizer),
        "hcmr.v1.ArrivalService" => Need::Role(Role::Receiver),
        "hcmr.v1.TraceService" => Need::Role(Role::Tracer),
        "hcmr.v1.FederationService" => match method {
            "GetNodeInfo" => Need::Open,
            // A withdrawal comes from a province with no agreement here (a newcomer's first
            // proposal); the service checks it against the keys the proposal pins.
            "ProposeAgreement" | "NotifyProposalDropped" => Need::AnyNode,
            "GetFeed" => Need::FeedReader,
            _ => Need::AgreedNode,
        },
        "hcmr.v1.ReplicaService" => Need::Replica,
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
    /// An enrolled verify replica of this node, by the name it was enrolled under.
    Replica(String),
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
        if !self.guards.rate.allow(&caller.name) {
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
        if n == 0 || self.guards.rate.allow_n(name, n) {
            return Ok(());
        }
        let denied = Denied::new(
            tonic::Code::ResourceExhausted,
            who.to_string(),
            format!(
                "caller {name} is over its request rate: each code of a batch counts ({} codes \
                 a second, limits.caller_requests_per_sec); retry shortly",
                self.guards.limits.caller_requests_per_sec
            ),
        );
        self.record_denial(rpc, &denied, remote);
        Err(denied.status)
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
        let now = i64::try_from(self.now().secs()).unwrap_or(i64::MAX);
        let peer = crate::tls::check_node_certificate(cert, now).map_err(|e| {
            Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                format!("node certificate: {e}"),
            )
        })?;
        if peer.replica {
            return Err(Denied::new(
                tonic::Code::PermissionDenied,
                format!("replica of {}", peer.province),
                format!("{what}: a verify replica's certificate speaks for no province; only its own primary takes it (ReplicaService, GetFeed)"),
            ));
        }
        if need == Need::AgreedNode || need == Need::FeedReader {
            let who = format!("peer {}", peer.province);
            if peer.province == self.province {
                return Err(Denied::new(
                    tonic::Code::PermissionDenied,
                    who,
                    format!("{what}: a certificate of this node's own province"),
                ));
            }
            if !peer.certified_by_any(&self.peer_link().peer_keys(peer.province)) {
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

    /// Authenticates an enrolled verify replica of this node by its TLS client certificate:
    /// a version 2 binding of this province, certified by a key of this node's own feed, with
    /// a TLS key this node enrolled. Its enrolled name.
    fn authenticate_replica(
        &self,
        certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
        what: &str,
    ) -> Result<String, Denied> {
        let Some(cert) = certs.and_then(|c| c.first()) else {
            return Err(Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                format!("{what} is for this node's verify replicas: it needs an enrolled replica certificate (mutual TLS)"),
            ));
        };
        let now = i64::try_from(self.now().secs()).unwrap_or(i64::MAX);
        let c = crate::tls::check_node_certificate(cert, now).map_err(|e| {
            Denied::new(
                tonic::Code::Unauthenticated,
                "anonymous".into(),
                format!("replica certificate: {e}"),
            )
        })?;
        let own: Vec<_> = self
            .trust
            .load()
            .own()
            .keys()
            .iter()
            .filter(|k| k.withdrawn_at.is_none())
            .map(|k| k.key)
            .collect();
        let enrolled = if c.replica && c.province == self.province && c.certified_by_any(&own) {
            self.store.replica_by_spki(&c.spki_sha256).ok().flatten()
        } else {
            None
        };
        enrolled.map(|r| r.name).ok_or_else(|| {
            Denied::new(
                tonic::Code::PermissionDenied,
                if c.replica {
                    format!("replica of {}", c.province)
                } else {
                    format!("peer {}", c.province)
                },
                format!(
                    "{what}: not a verify replica enrolled at this node (`hcmr replica list`); only enrolled replicas of {} follow it",
                    self.province
                ),
            )
        })
    }

    /// Decides a gRPC call at `path`.
    pub(crate) fn authorize(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<Option<Principal>, Denied> {
        let what = path.rsplit('/').next().unwrap_or(path);
        if let Some(r) = self.role.replica() {
            if !super::replica::serves(path) {
                return Err(Denied::new(
                    tonic::Code::FailedPrecondition,
                    "anonymous".into(),
                    format!(
                        "{what} is not served by a verify replica ({}): call the primary at {}",
                        r.name, r.primary
                    ),
                ));
            }
        }
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
            Need::FeedReader => {
                if self.tls.is_none() {
                    return Ok(Some(Principal::Unchecked));
                }
                let is_replica = certs
                    .and_then(|c| c.first())
                    .and_then(|c| {
                        crate::tls::check_node_certificate(
                            c,
                            i64::try_from(self.now().secs()).unwrap_or(i64::MAX),
                        )
                        .ok()
                    })
                    .is_some_and(|c| c.replica);
                if is_replica {
                    self.authenticate_replica(certs, what)
                        .map(|n| Some(Principal::Replica(n)))
                } else {
                    self.authenticate_node(certs, Need::FeedReader, what)
                        .map(|p| Some(Principal::Node(p)))
                }
            }
            Need::Replica => {
                if self.tls.is_none() {
                    return Err(Denied::new(
                        tonic::Code::FailedPrecondition,
                        "anonymous".into(),
                        format!("{what}: verify replicas need TLS (this node serves plain text)"),
                    ));
                }
                self.authenticate_replica(certs, what)
                    .map(|n| Some(Principal::Replica(n)))
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
        let second = crate::unix_now().secs();
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
        self.audit.refusals.add(AccessDenial {
            time: self.now(),
            rpc: rpc.chars().take(128).collect(),
            outcome,
            who: denied.who.clone(),
            remote,
            count: 1,
        });
    }
}

#[cfg(test)]
mod tests;
