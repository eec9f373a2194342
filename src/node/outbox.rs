//! Delivering the trip outbox (docs/transport.md section 6): signed check reports, handover
//! receipts and exposure notices (docs/tracing.md section 5) queued in the store ([`Store::enqueue_trip_record`]) go to their province's node by
//! `FederationService.SubmitTripRecord`, over mutual TLS, until that node acknowledges them.
//!
//! A record is never lost and never holds up its maker: it is stored (flushed) first, the maker
//! wakes this task ([`NodeState::wake_outbox`]) and answers; the task sends it, removes it on
//! an acknowledgement (also a `duplicate` one: a retry of a record already taken), and keeps it
//! otherwise, retrying with a backoff of 1 s doubling to [`MAX_BACKOFF`]. A node that refuses
//! a record for good (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION: the
//! record is wrong for it, or it holds another receipt of the trip) gets it no more: it moves to
//! the dead-letter tree with the refusal, an error is logged and counted. After a restart every
//! waiting record is tried at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::peer::{Expect, PeerLink};
use super::NodeState;
use crate::proto;
use crate::province::Province;
use crate::store::{OutboxEntry, Store, TripRecordKind};

/// Longest wait between two attempts of one record.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// How often the task looks even when nobody woke it (records due after a backoff).
const TICK: Duration = Duration::from_secs(1);
/// Most records taken in one round.
const ROUND: usize = 256;

/// What one attempt at a record came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The node acknowledged it (or had it already).
    Delivered,
    /// The node refused it for good: given up.
    Refused(String),
    /// Not this time (the node is down, slow, or not yet trusting this one): retried.
    Failed(String),
}

/// Whether a refusal by the receiving node is for good (the same record will never be
/// taken) rather than for now.
fn refused_for_good(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::NotFound
            | tonic::Code::AlreadyExists
            | tonic::Code::FailedPrecondition
    )
}

/// The wait before the next attempt of a record that failed `attempts` times: 1 s, doubling,
/// at most [`MAX_BACKOFF`].
pub(crate) fn backoff(attempts: u32) -> Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(10);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// What delivering the outbox reaches: the store, calls to peers, the wake-up.
pub(crate) struct TripOutbox<'a> {
    store: &'a Store,
    link: PeerLink<'a>,
    given_up: &'a std::sync::atomic::AtomicU64,
}

impl NodeState {
    /// The outbox's delivery.
    pub(crate) fn trip_outbox(&self) -> TripOutbox<'_> {
        TripOutbox {
            store: &self.store,
            link: self.peer_link(),
            given_up: &self.metrics.trip_records_given_up,
        }
    }

    /// Tells the delivery task to look now (never blocks; a wake-up while it works is kept for
    /// its next round).
    pub(crate) fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }
}

impl TripOutbox<'_> {
    /// One attempt at entry `seq` now, outside the task's rounds (a receiver waiting for its
    /// receipt to reach the origin). True when the origin acknowledged it (or it was delivered
    /// already); false when it still waits, which the task then retries.
    pub(crate) async fn deliver_now(&self, seq: u64) -> bool {
        let Ok(waiting) = self.store.trip_outbox(ROUND).await else {
            return false;
        };
        let Some(entry) = waiting.into_iter().find(|e| e.seq == seq) else {
            return matches!(self.store.trip_record_pending(seq), Ok(false));
        };
        let attempt = match self.client(entry.to).await {
            Ok(mut client) => self.send(&mut client, &entry).await,
            Err(why) => Attempt::Failed(why),
        };
        self.settle(&entry, &attempt).await;
        attempt == Attempt::Delivered
    }

    /// A client for the node of `to`, whose certificate must be that province's.
    async fn client(
        &self,
        to: Province,
    ) -> Result<
        proto::federation_service_client::FederationServiceClient<tonic::transport::Channel>,
        String,
    > {
        let url = self
            .store
            .peer_endpoint(to)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no endpoint known for {to}"))?;
        self.link
            .connect("endpoint", &url, Expect::Province(to))
            .await
            .map_err(|e| e.to_string())
    }

    async fn send(
        &self,
        client: &mut proto::federation_service_client::FederationServiceClient<
            tonic::transport::Channel,
        >,
        entry: &OutboxEntry,
    ) -> Attempt {
        use proto::submit_trip_record_request::Record;
        let record = match entry.kind {
            TripRecordKind::CheckReport => Record::CheckReport(entry.record.clone()),
            TripRecordKind::Handover => Record::Handover(entry.record.clone()),
            TripRecordKind::ArrivalEvent => Record::ArrivalEvent(entry.record.clone()),
            TripRecordKind::ExposureNotice => Record::ExposureNotice(entry.record.clone()),
        };
        let request = proto::SubmitTripRecordRequest {
            record: Some(record),
        };
        match client.submit_trip_record(request).await {
            Ok(_) => Attempt::Delivered,
            Err(s) if refused_for_good(s.code()) => {
                Attempt::Refused(format!("{:?}: {}", s.code(), s.message()))
            }
            Err(s) => Attempt::Failed(format!("{:?}: {}", s.code(), s.message())),
        }
    }

    /// Records an attempt's outcome in the store, and logs it.
    async fn settle(&self, entry: &OutboxEntry, attempt: &Attempt) {
        let (seq, to, kind) = (entry.seq, entry.to, entry.kind.name());
        let stored = match attempt {
            Attempt::Delivered => {
                tracing::info!(seq, %to, kind, attempts = entry.attempts + 1, "trip record delivered");
                self.store.trip_record_delivered(seq).await
            }
            Attempt::Refused(why) => {
                self.given_up
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(seq, %to, kind, refusal = %why, "trip record refused by its node: given up (kept in trip_outbox_dead)");
                self.store.trip_record_given_up(seq, why).await
            }
            Attempt::Failed(why) => {
                // One line per record at its first failure and then at every tenth, so an
                // origin down for hours does not fill the log.
                if entry.attempts.is_multiple_of(10) {
                    tracing::warn!(seq, %to, kind, attempts = entry.attempts + 1, error = %why, "trip record not delivered yet; retrying");
                }
                self.store.trip_record_failed(seq, why).await
            }
        };
        if let Err(e) = stored {
            tracing::error!(seq, error = %e, "trip outbox: the outcome of a delivery could not be stored; it will be tried again");
        }
    }

    /// One round: every waiting record whose backoff has passed, grouped by province (one
    /// connection each). `next` holds when each failed record is due again.
    async fn round(&self, next: &mut HashMap<u64, Instant>) {
        let waiting = match self.store.trip_outbox(ROUND).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "trip outbox unreadable");
                return;
            }
        };
        let now = Instant::now();
        next.retain(|seq, _| waiting.iter().any(|e| e.seq == *seq));
        let mut by_province: HashMap<Province, Vec<OutboxEntry>> = HashMap::new();
        for e in waiting {
            if next.get(&e.seq).is_none_or(|t| *t <= now) {
                by_province.entry(e.to).or_default().push(e);
            }
        }
        for (to, entries) in by_province {
            let mut client = match self.client(to).await {
                Ok(c) => Some(c),
                Err(why) => {
                    for e in &entries {
                        self.settle(e, &Attempt::Failed(why.clone())).await;
                        next.insert(e.seq, Instant::now() + backoff(e.attempts + 1));
                    }
                    None
                }
            };
            let Some(client) = client.as_mut() else {
                continue;
            };
            for e in &entries {
                let attempt = self.send(client, e).await;
                self.settle(e, &attempt).await;
                match attempt {
                    Attempt::Failed(_) => {
                        next.insert(e.seq, Instant::now() + backoff(e.attempts + 1));
                    }
                    _ => {
                        next.remove(&e.seq);
                    }
                }
            }
        }
    }
}

/// The delivery task: a round at start, on every wake-up and every [`TICK`]; ends when `stop`
/// turns true.
pub(crate) async fn run(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    let mut next: HashMap<u64, Instant> = HashMap::new();
    loop {
        if state.store.trip_outbox_len() > 0 {
            state.trip_outbox().round(&mut next).await;
        }
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_one_second_to_its_cap() {
        let waits: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 15, 15]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn only_refusals_about_the_record_itself_end_the_retries() {
        for code in [
            tonic::Code::InvalidArgument,
            tonic::Code::NotFound,
            tonic::Code::AlreadyExists,
            tonic::Code::FailedPrecondition,
        ] {
            assert!(refused_for_good(code), "{code:?}");
        }
        // Down, slow, overloaded, an older node, or an agreement the origin has not synced yet:
        // all may pass.
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::DeadlineExceeded,
            tonic::Code::ResourceExhausted,
            tonic::Code::Unimplemented,
            tonic::Code::PermissionDenied,
            tonic::Code::Unauthenticated,
            tonic::Code::Internal,
        ] {
            assert!(!refused_for_good(code), "{code:?}");
        }
    }
}
