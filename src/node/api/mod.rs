//! The gRPC services: each trait method decodes the request, calls the workflow on
//! [`NodeState`], and encodes the answer. No decision is made here.
//!
//! Where the store's work runs: its writes go to the blocking pool (the store's own helper), and
//! so do the reads that scan a tree whose size grows with use (pages of the audit log, of
//! refused calls and of agreements, the agreements a peer pulls, the trust bundle, the feed a
//! peer streams), through [`on_blocking_pool`]. Point reads by key (an agreement, a termination,
//! a peer's address, an issued code) stay on the runtime: sled answers them from its page cache
//! in microseconds, less than the handoff to a thread would cost. So do the reads inside the
//! agreement and key workflows: operators and peers call them a few times a day, under the
//! workflow's lock, over trees of a few thousand agreements at most.

mod arrival;
mod federation;
mod health_code;
mod operator;
mod replica;
mod trace;
mod trips;

use std::sync::Arc;

use tonic::Request;

use super::auth::Principal;
use super::error::ApiError;
use super::NodeState;

/// `hcmr.v1.HealthCodeService`.
pub struct HealthCodeApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.FederationService`.
pub struct FederationApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.OperatorService`.
pub struct OperatorApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.TripService` (organizers at a trip's origin).
pub struct TripApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.ArrivalService` (receivers at a trip's destination).
pub struct ArrivalApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.TraceService` (the province's platform tracing trips and cases; docs/tracing.md).
pub struct TraceApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.ReplicaService` (a primary's enrolled verify replicas; docs/deploy.md).
pub struct ReplicaApi(pub(crate) Arc<NodeState>);

/// Most codes one BatchVerifyHealthCodes call may carry: 256 typical codes (about 220
/// characters each) fit the default 64 KiB request limit.
pub(crate) const MAX_BATCH_CODES: usize = 256;

/// Who made a call, as the access log names them (`caller NAME`, `peer PROVINCE`), for the
/// verifier's turns; empty on an unchecked node.
fn caller_of<T>(request: &Request<T>) -> String {
    match request.extensions().get::<Principal>() {
        Some(Principal::Caller(c)) => format!("caller {}", c.name),
        Some(Principal::Node(p)) => format!("peer {}", p.province),
        Some(Principal::Replica(name)) => format!("replica {name}"),
        _ => String::new(),
    }
}

/// The remote address of a call.
fn remote_of<T>(request: &Request<T>) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<super::listener::TlsConnInfo>()
        .and_then(|t| t.remote)
        .or_else(|| request.remote_addr())
}

/// The checkpoint id of a verification: the request field, else the `x-hcmr-checkpoint`
/// metadata, else empty.
fn checkpoint_of<'a, T>(request: &'a Request<T>, field: &'a str) -> &'a str {
    if field.is_empty() {
        request
            .metadata()
            .get("x-hcmr-checkpoint")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    } else {
        field
    }
}

/// Runs a workflow step that scans the store on the blocking pool (sled's reads block), with the
/// node's state.
///
/// # Errors
/// What `f` returns; [`ApiError::Internal`] when the thread failed.
async fn on_blocking_pool<T: Send + 'static>(
    state: &Arc<NodeState>,
    f: impl FnOnce(&NodeState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|_| ApiError::Internal("a database thread failed"))?
}
