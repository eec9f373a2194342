//! At a verify replica: following the primary. One FollowState stream brings the primary's
//! state (agreements, terminations, callers) when it changes and the heads of its feeds at
//! once after every change and at least every 2 s; the replica then reads the feed entries it
//! lacks (GetFeed, its own province's and, relayed, each peer's) and verifies every one as a
//! peer province does: chain links and signatures, the own feed anchored in the key that
//! enrolled the replica, a peer's in the keys its agreements pin; agreements signed by both
//! with this province's keys, terminations signed. Nothing the primary says is taken on its
//! word but the callers (token hashes), which come over the mutually authenticated channel.
//!
//! A dropped or silent stream (no message for [`SILENCE`]) is reopened with backoff; the
//! replica keeps verifying on what it holds, and says NOT_SERVING once the primary has been
//! silent for `replica.max_lag_secs` ([`super::ReplicaLink::readiness`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::super::error::ApiError;
use super::super::sync::feed_entry_from_proto;
use super::super::{convert, NodeState};
use crate::agreement::SignedAgreement;
use crate::callers::{Caller, Roles};
use crate::feed::FeedEntry;
use crate::lock::Locked;
use crate::proto;
use crate::proto::federation_service_client::FederationServiceClient;
use crate::proto::replica_service_client::ReplicaServiceClient;
use crate::province::Province;
use crate::UnixTime;

/// Longest wait for the next FollowState message (the primary sends one at least every 2 s)
/// before the stream is taken as lost and reopened.
const SILENCE: Duration = Duration::from_secs(6);
/// Longest wait between attempts to reach the primary: short, so that a replica is back in
/// touch within about 2 s of its primary's return (an attempt is one TCP connect).
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Follows the primary until `stop` turns true.
pub(crate) async fn run(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let result = tokio::select! {
            r = follow_once(&state) => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok(()) => {
                tracing::info!("the primary ended the follow stream; reopening");
                backoff = Duration::from_millis(250);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "following the primary failed");
                state.metrics.replica_follow_failed();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One FollowState stream, applied message by message, until it ends or fails.
async fn follow_once(state: &NodeState) -> Result<(), ApiError> {
    let Some(link) = state.role.replica() else {
        return Ok(());
    };
    let channel = state.primary_channel().await?;
    let failed = |s: tonic::Status| super::super::peer::call_failed(&link.primary, s);
    let mut replica = ReplicaServiceClient::new(channel.clone());
    let mut federation = FederationServiceClient::new(channel);
    let mut stream = replica
        .follow_state(proto::FollowStateRequest {})
        .await
        .map_err(failed)?
        .into_inner();
    loop {
        let message = match tokio::time::timeout(SILENCE, stream.message()).await {
            Err(_) => {
                return Err(ApiError::PeerUnavailable {
                    endpoint: link.primary.clone(),
                    detail: format!("no state message for {} s", SILENCE.as_secs()),
                })
            }
            Ok(m) => m.map_err(failed)?,
        };
        let Some(m) = message else {
            return Ok(());
        };
        apply(state, &mut federation, &m).await?;
        // Synced first: whoever sees the contact time (GetNodeInfo) finds the replica ready.
        if m.full {
            link.mark_synced();
        }
        link.heard(state.now());
    }
}

/// Applies one state message: the own feed up to its head, then the state (when full), then
/// every peer feed up to its head (each rebuilds the snapshot as a sync does); one rebuild for
/// the own feed and the state when they changed.
async fn apply(
    state: &NodeState,
    federation: &mut FederationServiceClient<tonic::transport::Channel>,
    m: &proto::ReplicaState,
) -> Result<(), ApiError> {
    let mut changed = catch_up_own(state, federation, m.own_last_seq).await?;
    if m.full {
        changed |= apply_state(state, m).await?;
    }
    for head in &m.peers {
        catch_up_peer(state, federation, head).await?;
    }
    if changed {
        state.trust_rebuild().rebuild_trust()?;
    }
    Ok(())
}

/// Reads `province`'s feed ("" = the primary's own) from `from` at the primary.
async fn read_feed(
    state: &NodeState,
    federation: &mut FederationServiceClient<tonic::transport::Channel>,
    province: &str,
    from: u64,
) -> Result<Vec<FeedEntry>, ApiError> {
    let primary = state.primary_url().unwrap_or_default().to_string();
    let failed = |s: tonic::Status| super::super::peer::call_failed(&primary, s);
    let mut stream = federation
        .get_feed(proto::GetFeedRequest {
            from_seq: from,
            watch: false,
            province: province.to_string(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    let mut entries = Vec::new();
    while let Some(e) = stream.message().await.map_err(failed)? {
        entries.push(feed_entry_from_proto(&e)?);
    }
    Ok(entries)
}

/// Brings the own feed up to `head`: every entry verified, anchored in the enrolling key.
async fn catch_up_own(
    state: &NodeState,
    federation: &mut FederationServiceClient<tonic::transport::Channel>,
    head: u64,
) -> Result<bool, ApiError> {
    let Some(link) = state.role.replica() else {
        return Ok(false);
    };
    let current = state.trust.own_feed.locked().clone();
    if head <= current.last_seq() {
        return Ok(false);
    }
    let entries = read_feed(state, federation, "", current.last_seq() + 1).await?;
    let mut next = (*current).clone();
    next.apply_all(&entries)
        .map_err(|e| ApiError::Unauthenticated(format!("the primary's feed refused: {e}")))?;
    if !next.contains_any(&[link.anchor]) {
        return Err(ApiError::Unauthenticated(format!(
            "the primary's feed refused: {}",
            crate::feed::FeedError::NotAnchored(state.province)
        )));
    }
    state.store.append_feed_batch(&entries).await?;
    *state.trust.own_feed.locked() = Arc::new(next);
    if !entries.is_empty() {
        tracing::info!(
            entries = entries.len(),
            last_seq = head,
            "own feed followed"
        );
    }
    Ok(!entries.is_empty())
}

/// Stores the agreements and terminations that verify and are new here, and mirrors the
/// callers. Whether anything changed.
async fn apply_state(state: &NodeState, m: &proto::ReplicaState) -> Result<bool, ApiError> {
    let mut changed = false;
    let own_keys: Vec<_> = state
        .trust
        .own_feed
        .locked()
        .keys()
        .iter()
        .map(|k| k.key)
        .collect();
    for a in &m.agreements {
        let a: SignedAgreement = convert::signed_from_proto(Some(a))?;
        let b = a.body();
        let ours = b.party(state.province);
        if a.check_both().is_err()
            || ours.is_none_or(|p| !p.keys.iter().all(|k| own_keys.contains(k)))
        {
            tracing::warn!(agreement = %b.id, "the primary sent an agreement that does not verify here; ignored");
            continue;
        }
        let known = state.store.agreement_version(b.id, b.version)?;
        if known.is_none_or(|k| !k.is_concluded()) {
            state.store.put_agreement(&a).await?;
            changed = true;
        }
    }
    if changed {
        // Terminations are checked against the agreements they end.
        state.trust_rebuild().rebuild_trust()?;
    }
    for t in &m.terminations {
        let t = convert::termination_from_proto(t)?;
        if state
            .store
            .termination(t.id)?
            .is_some_and(|old| old.effective_at <= t.effective_at)
        {
            continue;
        }
        let mut check = (**state.trust.load()).clone();
        match check.add_termination(t.clone()) {
            Ok(()) => {
                state.store.put_termination(&t).await?;
                changed = true;
            }
            Err(e) => {
                tracing::warn!(agreement = %t.id, error = %e, "the primary sent a termination that does not verify here; ignored")
            }
        }
    }
    mirror_callers(state, &m.callers).await?;
    // Versions are only noted (stored with the next audit batch): a higher one seen here by a
    // check stays, as a lower one from the primary changes nothing.
    for (i, t) in m.manifest_versions.iter().enumerate() {
        let trip: [u8; crate::manifest::TRIP_ID_LEN] =
            t.trip_id.as_slice().try_into().map_err(|_| {
                ApiError::invalid(
                    "manifest_versions.trip_id",
                    format!("[{i}]: 8 bytes expected"),
                )
            })?;
        state
            .store
            .note_manifest_version(crate::manifest::TripId(trip), t.version);
    }
    Ok(changed)
}

/// Makes the stored callers those of the primary (names, roles, token hashes).
async fn mirror_callers(
    state: &NodeState,
    callers: &[proto::ReplicaCaller],
) -> Result<(), ApiError> {
    let mut wanted = Vec::with_capacity(callers.len());
    for (i, c) in callers.iter().enumerate() {
        crate::callers::check_name(&c.name)
            .map_err(|e| ApiError::invalid("callers.name", format!("[{i}]: {e}")))?;
        let token_hash: [u8; 32] = c.token_sha256.as_slice().try_into().map_err(|_| {
            ApiError::invalid("callers.token_sha256", format!("[{i}]: 32 bytes expected"))
        })?;
        let roles = c
            .roles
            .iter()
            .map(|r| super::super::callers::role_from_proto(*r))
            .collect::<Result<Vec<_>, _>>()?;
        wanted.push(Caller {
            name: c.name.clone(),
            roles: Roles::of(&roles),
            token_hash,
            created: UnixTime::from_secs(c.created),
        });
    }
    let held = state.store.callers()?;
    let names: HashSet<&str> = wanted.iter().map(|c| c.name.as_str()).collect();
    let mut changed = false;
    for c in &held {
        if !names.contains(c.name.as_str()) {
            state.store.remove_caller(&c.name).await?;
            changed = true;
        }
    }
    for c in &wanted {
        if !held.contains(c) {
            state.store.put_caller(c).await?;
            changed = true;
        }
    }
    if changed {
        state.caller_admin().reload_callers()?;
        tracing::info!(callers = wanted.len(), "callers followed");
    }
    Ok(())
}

/// Brings a peer's feed up to the primary's head: entries verified and anchored in the keys
/// the agreements with that peer pin, stored and applied by the step a sync uses
/// ([`super::super::sync::PeerSync::apply_peer_entries`], which rebuilds the snapshot); the
/// primary's sync time is the state's age.
async fn catch_up_peer(
    state: &NodeState,
    federation: &mut FederationServiceClient<tonic::transport::Channel>,
    head: &proto::PeerFeedHead,
) -> Result<(), ApiError> {
    let peer: Province = head
        .province
        .parse()
        .map_err(|e| ApiError::invalid("peers.province", e))?;
    if peer == state.province {
        return Ok(());
    }
    let synced_at = UnixTime::from_secs(head.synced_at);
    let held = state
        .trust
        .peer_feeds
        .locked()
        .get(&peer)
        .map(|p| (p.state.last_seq(), p.synced_at));
    let last_seq = held.map_or(0, |(seq, _)| seq);
    let entries = if head.last_seq > last_seq {
        read_feed(state, federation, &head.province, last_seq + 1).await?
    } else {
        Vec::new()
    };
    if entries.is_empty() && held.is_some_and(|(_, at)| at == synced_at) {
        return Ok(());
    }
    state
        .peer_sync()
        .apply_peer_entries(peer, entries, synced_at)
        .await?;
    Ok(())
}
