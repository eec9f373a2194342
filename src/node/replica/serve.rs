//! At a primary: what its verify replicas follow (FollowState) and the audit records they send
//! (SubmitAuditBatch).

use std::sync::Arc;

use super::super::error::ApiError;
use super::super::NodeState;
use crate::proto;

/// The stream of a FollowState call.
pub(crate) type StateStream =
    tokio_stream::wrappers::ReceiverStream<Result<proto::ReplicaState, tonic::Status>>;

/// A FollowState stream for replica `name`.
pub(crate) fn follow_state(_state: Arc<NodeState>, _name: String) -> StateStream {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let _ = tx.try_send(Err(tonic::Status::unimplemented("FollowState: not yet")));
    tokio_stream::wrappers::ReceiverStream::new(rx)
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
