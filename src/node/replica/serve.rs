//! At a primary: what its verify replicas follow (FollowState) and the audit records they send
//! (SubmitAuditBatch).

use std::sync::Arc;
use std::time::Duration;

use crate::lock::Locked;

use super::super::error::ApiError;
use super::super::{convert, NodeState};
use crate::proto;

/// The stream of a FollowState call.
pub(crate) type StateStream =
    tokio_stream::wrappers::ReceiverStream<Result<proto::ReplicaState, tonic::Status>>;

/// Longest between two messages of a FollowState stream.
const HEADS_EVERY: Duration = Duration::from_secs(2);

/// A FollowState stream for replica `name`: a full message first, then a full one after each
/// change of agreements, terminations or callers, else the feeds' heads at least every 2 s.
/// It ends when the replica is removed (PERMISSION_DENIED) and when the node drains.
pub(crate) fn follow_state(state: Arc<NodeState>, name: String) -> StateStream {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let watches = &state.watches;
        tokio::select! {
            _ = send_state(&state, &name, &tx) => {}
            _ = watches.drained() => {}
            _ = tx.closed() => {}
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// What a full ReplicaState carries besides the heads: agreements, terminations, callers and
/// the trips' manifest versions.
struct Full {
    agreements: Vec<proto::SignedAgreement>,
    terminations: Vec<proto::TerminationNotice>,
    callers: Vec<proto::ReplicaCaller>,
    manifest_versions: Vec<proto::TripVersion>,
    /// SHA-256 of the three encoded, to tell a change.
    hash: [u8; 32],
}

/// Reads agreements (every concluded version), terminations and callers (by name) from the
/// store.
fn read_full(store: &crate::store::Store) -> Result<Full, ApiError> {
    let agreements: Vec<proto::SignedAgreement> = store
        .agreements()?
        .iter()
        .filter(|a| a.is_concluded())
        .map(convert::signed_to_proto)
        .collect();
    let terminations: Vec<proto::TerminationNotice> = store
        .terminations()?
        .iter()
        .map(convert::termination_to_proto)
        .collect();
    let mut callers = store.callers()?;
    callers.sort_by(|a, b| a.name.cmp(&b.name));
    let callers: Vec<proto::ReplicaCaller> = callers
        .iter()
        .map(|c| proto::ReplicaCaller {
            name: c.name.clone(),
            token_sha256: c.token_hash.to_vec(),
            roles: c
                .roles
                .list()
                .into_iter()
                .map(super::super::role_to_proto)
                .collect(),
            created: c.created.secs(),
        })
        .collect();
    let manifest_versions: Vec<proto::TripVersion> = store
        .manifest_versions()?
        .into_iter()
        .map(|(trip, version)| proto::TripVersion {
            trip_id: trip.to_vec(),
            version,
        })
        .collect();
    use prost::Message as _;
    use sha2::Digest as _;
    let encoded = proto::ReplicaState {
        agreements: agreements.clone(),
        terminations: terminations.clone(),
        callers: callers.clone(),
        manifest_versions: manifest_versions.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    Ok(Full {
        agreements,
        terminations,
        callers,
        manifest_versions,
        hash: sha2::Sha256::digest(&encoded).into(),
    })
}

/// Sends the state to replica `name` until it is removed, the reader goes away or a read fails.
async fn send_state(
    state: &Arc<NodeState>,
    name: &str,
    tx: &tokio::sync::mpsc::Sender<Result<proto::ReplicaState, tonic::Status>>,
) {
    let mut changed = state.trust.changed.subscribe();
    let mut last_hash: Option<[u8; 32]> = None;
    loop {
        changed.borrow_and_update();
        let s = state.clone();
        let who = name.to_string();
        let read = tokio::task::spawn_blocking(move || {
            let enrolled = s.store.replicas()?.iter().any(|r| r.name == who);
            // Read every time: not every part (the manifest versions) moves the generation.
            let full = if enrolled {
                Some(read_full(&s.store)?)
            } else {
                None
            };
            Ok::<_, ApiError>((enrolled, full))
        })
        .await;
        let (enrolled, full) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
            Err(_) => {
                let _ = tx
                    .send(Err(tonic::Status::internal("reading the state failed")))
                    .await;
                return;
            }
        };
        if !enrolled {
            tracing::info!(replica = %name, "FollowState ended: the replica is no longer enrolled");
            let _ = tx
                .send(Err(tonic::Status::permission_denied(format!(
                    "replica {name} is no longer enrolled at this primary"
                ))))
                .await;
            return;
        }
        let now = state.now();
        let mut m = heads(state, now);
        if let Some(full) = full {
            if last_hash != Some(full.hash) {
                last_hash = Some(full.hash);
                m.full = true;
                m.agreements = full.agreements;
                m.terminations = full.terminations;
                m.callers = full.callers;
                m.manifest_versions = full.manifest_versions;
            }
        }
        state.replicas_seen.seen(name, now);
        if tx.send(Ok(m)).await.is_err() {
            return;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(HEADS_EVERY) => {}
        }
    }
}

/// A heads-only message: the primary's time, its own feed's last sequence number and every
/// peer feed's.
fn heads(state: &NodeState, now: crate::UnixTime) -> proto::ReplicaState {
    let own_last_seq = state.trust.own_feed.locked().last_seq();
    let mut peers: Vec<proto::PeerFeedHead> = state
        .trust
        .peer_feeds
        .locked()
        .iter()
        .map(|(p, f)| proto::PeerFeedHead {
            province: p.to_string(),
            last_seq: f.state.last_seq(),
            synced_at: f.synced_at.secs(),
        })
        .collect();
    peers.sort_by(|a, b| a.province.cmp(&b.province));
    proto::ReplicaState {
        full: false,
        primary_time: now.secs(),
        own_last_seq,
        peers,
        ..Default::default()
    }
}

/// Takes a replica's batch of audit records into this node's audit log.
///
/// # Errors
/// Not yet implemented.
pub(crate) async fn take_audit_batch(
    _state: &NodeState,
    _name: &str,
    _r: proto::SubmitAuditBatchRequest,
) -> Result<proto::SubmitAuditBatchResponse, ApiError> {
    Err(ApiError::FailedPrecondition(
        "SubmitAuditBatch: not yet".into(),
    ))
}
