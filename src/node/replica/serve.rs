//! At a primary: what its verify replicas follow (FollowState) and the audit records they send
//! (SubmitAuditBatch).

use std::sync::Arc;
use std::time::Duration;

use crate::lock::Locked;

use super::super::error::ApiError;
use super::super::{convert, NodeState};
use crate::proto;
use crate::store::TakenAudit;

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

/// Most audit records in one SubmitAuditBatch request: a replica's shipper sends at most this
/// many (about 20 KiB of records, one `audit` value a second of them).
pub(crate) const MAX_AUDIT_BATCH: usize = 256;

/// Whether `s` is a replica instance id: 16 lower-case hex digits.
fn is_instance(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Takes a batch of replica `name`'s audit records into this node's audit log, marked as made
/// by `name`, durably before it answers: records the replica sent before (a resend after a lost
/// answer) are skipped, so each is stored once.
///
/// # Errors
/// INVALID_ARGUMENT naming the field: `instance` not 16 lower-case hex digits, `first_seq` 0,
/// more than [`MAX_AUDIT_BATCH`] records, a record's field (`records[3].checkpoint_id`).
/// FAILED_PRECONDITION when the batch starts after a gap (the message names the sequence number
/// expected). UNAVAILABLE when the store fails (nothing was acknowledged; the replica resends).
pub(crate) async fn take_audit_batch(
    state: &NodeState,
    name: &str,
    r: proto::SubmitAuditBatchRequest,
) -> Result<proto::SubmitAuditBatchResponse, ApiError> {
    if !is_instance(&r.instance) {
        return Err(ApiError::invalid(
            "instance",
            format!("{:?} is not 16 lower-case hex digits", r.instance),
        ));
    }
    if r.first_seq == 0 {
        return Err(ApiError::invalid(
            "first_seq",
            "sequence numbers start at 1",
        ));
    }
    if r.records.len() > MAX_AUDIT_BATCH {
        return Err(ApiError::invalid(
            "records",
            format!(
                "{} records; at most {MAX_AUDIT_BATCH} in one batch",
                r.records.len()
            ),
        ));
    }
    if r.first_seq.checked_add(r.records.len() as u64).is_none() {
        return Err(ApiError::invalid(
            "first_seq",
            "the batch's sequence numbers pass 2^64 - 1",
        ));
    }
    let records = r
        .records
        .iter()
        .enumerate()
        .map(|(i, a)| super::super::audit::audit_from_proto(i, a))
        .collect::<Result<Vec<_>, _>>()?;
    let n = records.len();
    // A trip version one replica saw with its signature verified is seen by the province: the
    // primary notes it, and every replica follows it (FollowState's manifest versions), so a
    // version superseded at one checkpoint is superseded at all.
    for m in records.iter().filter_map(|a| a.manifest.as_ref()) {
        if let (true, Some(trip)) = (m.signature_verified, m.trip_id) {
            state.store.note_manifest_version(trip, m.version);
        }
    }
    match state
        .store
        .take_replica_audit(name, &r.instance, r.first_seq, records)
        .await?
    {
        TakenAudit::Stored { through, added } => {
            if added < n as u64 {
                tracing::info!(
                    replica = name,
                    instance = %r.instance,
                    first_seq = r.first_seq,
                    resent = n as u64 - added,
                    "audit records sent again by a replica were skipped (taken before)"
                );
            }
            Ok(proto::SubmitAuditBatchResponse {
                stored_through: through,
            })
        }
        TakenAudit::Gap { expected } => Err(ApiError::FailedPrecondition(format!(
            "first_seq {} leaves a gap: the records of replica {name} (instance {}) are stored \
             through {}, so the next batch must start at {expected} or before",
            r.first_seq,
            r.instance,
            expected - 1
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditRecord;
    use crate::province::Province;
    use crate::store::EnrolledReplica;
    use crate::UnixTime;

    async fn primary(dir: &std::path::Path) -> Arc<NodeState> {
        let path = crate::node::init(
            Province::from_code(510000).unwrap(),
            dir,
            "127.0.0.1:0".parse().unwrap(),
            None,
        )
        .await
        .unwrap();
        let config = crate::node::Config::load(&path).unwrap();
        let node = crate::node::Node::open(&config).unwrap();
        node.state
            .store
            .put_replica(&EnrolledReplica {
                name: "sc-r1".into(),
                spki_sha256: [1; 32],
                enrolled_at: UnixTime::from_secs(1_700_000_000),
                audit_records: 0,
            })
            .await
            .unwrap();
        node.state
    }

    fn record(n: u64) -> proto::AuditRecord {
        super::super::super::audit::audit_to_proto(&AuditRecord {
            time: UnixTime::from_secs(1_700_000_000 + n),
            checkpoint_id: format!("gate-{n}"),
            via: "grpc",
            issuer: Some(Province::from_code(340000).unwrap()),
            recognized: true,
            reason: Some(crate::verify::Reason::Ok),
            cti_hash: Some([n as u8; 16]),
            manifest: None,
            trace: None,
            replica: None,
        })
    }

    fn batch(first: u64, last: u64) -> proto::SubmitAuditBatchRequest {
        proto::SubmitAuditBatchRequest {
            first_seq: first,
            records: (first..=last).map(record).collect(),
            instance: "0123456789abcdef".into(),
        }
    }

    /// The replicas' records in the primary's log: (replica, checkpoint id), oldest first.
    fn taken(state: &NodeState) -> Vec<(String, String)> {
        state
            .audit_log()
            .list_audit(&proto::ListAuditRecordsRequest::default())
            .unwrap()
            .records
            .into_iter()
            .map(|r| (r.replica, r.checkpoint_id))
            .collect()
    }

    #[tokio::test]
    async fn a_resent_batch_is_counted_once_and_a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = primary(dir.path()).await;
        let r = take_audit_batch(&state, "sc-r1", batch(1, 3))
            .await
            .unwrap();
        assert_eq!(r.stored_through, 3);
        // The answer was lost: the replica sends 1..=3 again with 4 and 5.
        let r = take_audit_batch(&state, "sc-r1", batch(1, 5))
            .await
            .unwrap();
        assert_eq!(r.stored_through, 5);
        let want: Vec<_> = (1..=5)
            .map(|n| ("sc-r1".to_string(), format!("gate-{n}")))
            .collect();
        assert_eq!(taken(&state), want);
        assert_eq!(state.store.replicas().unwrap()[0].audit_records, 5);
        // A batch after a gap stores nothing and names the sequence number expected.
        let e = take_audit_batch(&state, "sc-r1", batch(7, 8))
            .await
            .unwrap_err();
        assert_eq!(
            tonic::Status::from(e).code(),
            tonic::Code::FailedPrecondition
        );
        let e = take_audit_batch(&state, "sc-r1", batch(7, 8))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("must start at 6 or before"), "{e}");
        assert_eq!(taken(&state).len(), 5);
        assert_eq!(state.store.replicas().unwrap()[0].audit_records, 5);
    }

    #[tokio::test]
    async fn a_bad_batch_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let state = primary(dir.path()).await;
        let refused = |r: proto::SubmitAuditBatchRequest| {
            let state = state.clone();
            async move {
                let s =
                    tonic::Status::from(take_audit_batch(&state, "sc-r1", r).await.unwrap_err());
                assert_eq!(s.code(), tonic::Code::InvalidArgument, "{}", s.message());
                s.message().to_string()
            }
        };
        for instance in [
            "",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdeg",
        ] {
            let m = refused(proto::SubmitAuditBatchRequest {
                instance: instance.into(),
                ..batch(1, 1)
            })
            .await;
            assert!(m.starts_with("instance: "), "{m}");
        }
        let m = refused(proto::SubmitAuditBatchRequest {
            first_seq: 0,
            ..batch(1, 1)
        })
        .await;
        assert!(m.starts_with("first_seq: "), "{m}");
        let m = refused(batch(1, MAX_AUDIT_BATCH as u64 + 1)).await;
        assert!(m.starts_with("records: 257 records; at most 256"), "{m}");
        let m = refused(proto::SubmitAuditBatchRequest {
            first_seq: u64::MAX,
            ..batch(1, 2)
        })
        .await;
        assert!(m.starts_with("first_seq: "), "{m}");
        // One bad record refuses the batch, naming it.
        let mut b = batch(1, 3);
        b.records[2].via = "smtp".into();
        assert!(refused(b).await.starts_with("records[2].via: "));
        let mut b = batch(1, 3);
        b.records[1].checkpoint_id = "gate\n1".into();
        assert!(refused(b).await.starts_with("records[1].checkpoint_id: "));
        let mut b = batch(1, 3);
        b.records[0].cti_hash = "AB".repeat(16);
        assert!(refused(b).await.starts_with("records[0].cti_hash: "));
        let mut b = batch(1, 1);
        b.records[0].reason = 0;
        assert!(refused(b).await.starts_with("records[0].reason: "));
        let mut b = batch(1, 1);
        b.records[0].verdict = 0;
        assert!(refused(b).await.starts_with("records[0].verdict: "));
        let mut b = batch(1, 1);
        b.records[0].issuer_province = "999999".into();
        assert!(refused(b).await.starts_with("records[0].issuer_province: "));
        assert!(taken(&state).is_empty());
        // An empty batch at the start is answered with nothing stored.
        let r = take_audit_batch(&state, "sc-r1", batch(1, 0))
            .await
            .unwrap();
        assert_eq!(r.stored_through, 0);
    }
}
