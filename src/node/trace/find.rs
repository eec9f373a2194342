//! FindTrips at the node asked (docs/tracing.md section 3.1): a peer province P asks for the
//! trips this node holds that list a person of P with a 4-byte subject prefix. Allowed only
//! when an agreement in force has the direction P -> this province with the tracing term;
//! limited per peer; every query, answered or refused, is an audit record (QUERY_ANSWERED).

use std::sync::Arc;

use super::{held_listing, PEER_QUERIES_PER_MINUTE};
use crate::audit::{AuditRecord, TraceAction, TraceAudit};
use crate::node::auth::Principal;
use crate::node::error::ApiError;
use crate::node::NodeState;
use crate::proto;
use crate::province::Province;
use crate::trace::SUBJECT_PREFIX_LEN;
use crate::UnixTime;

/// Whether an agreement in force at `now` lets `issuer` trace at this node: its direction
/// `issuer -> this province` has the tracing term.
pub(crate) fn tracing_allowed(state: &NodeState, issuer: Province, now: UnixTime) -> bool {
    let trust = state.trust.load();
    trust
        .agreements_with(issuer)
        .iter()
        .filter(|a| a.in_force(issuer, state.province, now))
        .any(|a| {
            a.direction(issuer, state.province)
                .is_some_and(|d| d.tracing)
        })
}

/// Answers a peer's FindTrips.
///
/// # Errors
/// PERMISSION_DENIED (no node certificate, or no tracing term in force for the caller's
/// province), INVALID_ARGUMENT (`subject_prefix` not 4 bytes, `until` not after `since`),
/// RESOURCE_EXHAUSTED (over [`PEER_QUERIES_PER_MINUTE`]), UNAVAILABLE (storage). Each is
/// audited, as is the answer.
pub(crate) async fn find_trips(
    state: &Arc<NodeState>,
    from: Option<&Principal>,
    r: proto::FindTripsRequest,
) -> Result<proto::FindTripsResponse, ApiError> {
    let now = state.now();
    let peer = match from {
        Some(Principal::Node(p)) => Some(p.province),
        _ => None,
    };
    let prefix: Option<[u8; SUBJECT_PREFIX_LEN]> = r.subject_prefix.as_slice().try_into().ok();
    let audit = |count: u32, refusal: String| {
        state.audit.queue(AuditRecord::of_trace(
            now,
            peer,
            TraceAudit {
                action: TraceAction::QueryAnswered,
                asked_by: peer
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "unchecked".into()),
                trip_id: None,
                subject_prefix: prefix,
                count,
                refusal,
            },
        ));
    };
    let refuse = |e: ApiError| {
        audit(0, e.to_string());
        tracing::info!(peer = ?peer.map(|p| p.to_string()), error = %e, "trace query refused");
        e
    };
    let Some(peer) = peer else {
        // The matching is by the caller's province, which only its certificate says.
        return Err(refuse(ApiError::PermissionDenied(
            "FindTrips needs the calling node's certificate (mutual TLS): only it names the \
             province whose residents may be traced"
                .into(),
        )));
    };
    if !tracing_allowed(state, peer, now) {
        return Err(refuse(ApiError::PermissionDenied(format!(
            "no agreement in force lets {peer} trace at {}: its direction {peer} -> {} has no \
             tracing term",
            state.province, state.province
        ))));
    }
    if !state
        .trace_limits
        .peers
        .allow(&peer.to_string(), now, PEER_QUERIES_PER_MINUTE)
    {
        return Err(refuse(ApiError::TooManyAttempts(format!(
            "FindTrips: at most {PEER_QUERIES_PER_MINUTE} queries a minute from {peer}"
        ))));
    }
    let Some(prefix) = prefix else {
        return Err(refuse(ApiError::invalid(
            "subject_prefix",
            format!(
                "has {} bytes; the first {SUBJECT_PREFIX_LEN} bytes of the keyed subject hash are \
                 needed",
                r.subject_prefix.len()
            ),
        )));
    };
    let since = UnixTime::from_secs(r.since);
    let until = if r.until == 0 {
        now + 1
    } else {
        UnixTime::from_secs(r.until)
    };
    if until <= since {
        return Err(refuse(ApiError::invalid("until", "must be after since")));
    }
    let held = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || held_listing(&state.store, peer, &prefix, since, until))
            .await
            .map_err(|_| ApiError::Internal("a database thread failed"))?
    };
    let held = held.map_err(refuse)?;
    let count = u32::try_from(held.len()).unwrap_or(u32::MAX);
    audit(count, String::new());
    tracing::info!(peer = %peer, trips = count, "trace query answered");
    Ok(proto::FindTripsResponse {
        manifests: held.into_iter().map(|h| h.text).collect(),
    })
}
