//! At a verify replica: ships the audit records made here to the primary's audit log
//! (ReplicaService.SubmitAuditBatch), so that `hcmr audit` at the primary is the province's whole
//! log.
//!
//! The audit writer ([`super::super::audit::audit_writer`]) stores a replica's records in
//! `audit_outbox` (flushed, numbered from 1 without gaps by a counter that outlives them)
//! instead of `audit`, and tells this task through a [`ShipGate`] how far they are flushed. This
//! task sends the flushed ones in order, at most [`MAX_AUDIT_BATCH`] a call, with
//! the replica's instance id; the primary stores each batch durably in one transaction and
//! answers the last sequence number it holds, and only then are they removed here. So a record
//! is lost neither when the replica is killed (it is still in the outbox, sent again at the next
//! start) nor when an answer is lost (the primary skips what it holds), and it is counted once.
//! A failed call is retried after 1 s, doubling to 30 s; new records wake the task at once. A
//! stopping node sends what is left, for at most [`FINAL_SHIP`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::super::error::ApiError;
use super::super::NodeState;
use super::serve::MAX_AUDIT_BATCH;
use crate::proto;

/// First wait after a failed call.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Longest wait between attempts while the primary fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Longest a stopping node spends sending the records left.
pub(crate) const FINAL_SHIP: Duration = Duration::from_secs(3);

/// Longest between looks at the outbox when nothing wakes the task (records written before the
/// task started, or a wake missed).
const IDLE_LOOK: Duration = Duration::from_secs(10);

/// What the audit writer tells the shipper: the last sequence number of `audit_outbox` known
/// flushed (only those may be sent: a record sent before it is on disk could, after a crash,
/// have its number given again to another, which the primary would skip as a resend), and a
/// wake when it moves.
pub(crate) struct ShipGate {
    /// The last sequence number flushed.
    flushed: AtomicU64,
    /// Wakes the shipper.
    wake: tokio::sync::Notify,
}

impl ShipGate {
    /// A gate with every record through `flushed` on disk (at start: all the outbox holds).
    pub(crate) fn new(flushed: u64) -> Self {
        ShipGate {
            flushed: AtomicU64::new(flushed),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Records that the outbox is flushed through `through`, and wakes the shipper.
    pub(crate) fn flushed(&self, through: u64) {
        self.flushed.fetch_max(through, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The last sequence number flushed.
    pub(crate) fn through(&self) -> u64 {
        self.flushed.load(Ordering::SeqCst)
    }
}

/// Why a round of shipping stopped before the outbox was empty.
#[derive(Debug, thiserror::Error)]
enum ShipError {
    /// The primary could not be reached or refused the batch.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The call failed.
    #[error("SubmitAuditBatch: {code:?}: {message}")]
    Call {
        /// The status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The shipper's connection to the primary, made on first use and dropped after a failure.
struct Shipper {
    state: Arc<NodeState>,
    gate: Arc<ShipGate>,
    client: Option<proto::replica_service_client::ReplicaServiceClient<tonic::transport::Channel>>,
}

impl Shipper {
    /// Sends batches until the outbox is empty; records sent.
    async fn ship_all(&mut self) -> Result<u64, ShipError> {
        let Some(link) = self.state.role.replica() else {
            return Ok(0);
        };
        let mut sent = 0;
        while let Some((first_seq, records)) = self
            .state
            .store
            .audit_outbox_batch(MAX_AUDIT_BATCH, self.gate.through())?
        {
            let n = records.len() as u64;
            let client = match &mut self.client {
                Some(c) => c,
                None => {
                    self.client
                        .insert(proto::replica_service_client::ReplicaServiceClient::new(
                            self.state.primary_channel().await?,
                        ))
                }
            };
            let request = proto::SubmitAuditBatchRequest {
                first_seq,
                records: records
                    .iter()
                    .map(super::super::audit::audit_to_proto)
                    .collect(),
                instance: link.instance.clone(),
            };
            let answer =
                tokio::time::timeout(self.state.peer_timeout, client.submit_audit_batch(request))
                    .await;
            let through = match answer {
                Ok(Ok(r)) => r.into_inner().stored_through,
                Ok(Err(s)) => {
                    self.client = None;
                    return Err(ShipError::Call {
                        code: s.code(),
                        message: s.message().to_string(),
                    });
                }
                Err(_) => {
                    self.client = None;
                    return Err(ShipError::Call {
                        code: tonic::Code::DeadlineExceeded,
                        message: format!(
                            "no answer within {} s",
                            self.state.peer_timeout.as_secs()
                        ),
                    });
                }
            };
            if through < first_seq {
                // Nothing of this batch is held there: an answer that moves nothing would loop.
                return Err(ShipError::Call {
                    code: tonic::Code::Internal,
                    message: format!(
                        "the primary holds records through {through}, before the batch's first \
                         {first_seq}"
                    ),
                });
            }
            let removed = self.state.store.ack_audit_outbox(through).await?;
            self.state
                .metrics
                .replica_audit_shipped
                .fetch_add(removed, Ordering::Relaxed);
            sent += removed;
            if through < first_seq + n - 1 {
                // Partly held (should not happen): send the rest next round.
                break;
            }
        }
        Ok(sent)
    }
}

/// The shipper task of a verify replica: sends the outbox's flushed records whenever `gate`
/// moves (the audit writer flushed some) or [`IDLE_LOOK`] passes, retrying with a backoff
/// while the primary fails, until `stop` turns true. The records left then are sent by
/// [`final_ship`] once the audit writer has stored its last batch.
pub(crate) async fn run(
    state: Arc<NodeState>,
    gate: Arc<ShipGate>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut shipper = Shipper {
        state,
        gate: gate.clone(),
        client: None,
    };
    let mut backoff = FIRST_BACKOFF;
    let mut failures: u64 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match shipper.ship_all().await {
            Ok(sent) => {
                if failures > 0 {
                    tracing::info!(
                        sent,
                        failed_attempts = failures,
                        "audit records reach the primary again"
                    );
                }
                failures = 0;
                backoff = FIRST_BACKOFF;
                None
            }
            Err(e) => {
                failures += 1;
                // One line for the first failure, then one at each power of two.
                if failures.is_power_of_two() {
                    tracing::warn!(
                        error = %e,
                        failed_attempts = failures,
                        waiting = shipper.state.store.audit_outbox_len().unwrap_or(0),
                        retry_in_secs = backoff.as_secs(),
                        "audit records could not be sent to the primary; kept here and retried"
                    );
                }
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                Some(w)
            }
        };
        match wait {
            Some(w) => {
                tokio::select! {
                    () = tokio::time::sleep(w) => {}
                    _ = stop.changed() => {}
                }
            }
            None => {
                tokio::select! {
                    () = gate.wake.notified() => {}
                    () = tokio::time::sleep(IDLE_LOOK) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// At a stopping replica, after the audit writer's last batch: sends what the outbox holds, for
/// at most [`FINAL_SHIP`]; what is not acknowledged by then stays for the next start.
pub(crate) async fn final_ship(state: Arc<NodeState>, gate: Arc<ShipGate>) {
    if state.role.replica().is_none() {
        return;
    }
    let mut shipper = Shipper {
        state: state.clone(),
        gate,
        client: None,
    };
    match tokio::time::timeout(FINAL_SHIP, shipper.ship_all()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            left = state.store.audit_outbox_len().unwrap_or(0),
            "audit records left for the primary at stop: kept, sent at the next start"
        ),
        Err(_) => tracing::warn!(
            left = state.store.audit_outbox_len().unwrap_or(0),
            "audit records not all sent to the primary within {} s of stopping: kept, sent at the next start",
            FINAL_SHIP.as_secs()
        ),
    }
}
