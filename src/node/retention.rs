//! Retention: the node removes what it no longer needs to keep ([`RetentionConfig`]): audit
//! records and refused-call records older than their days, issued-code log entries some
//! days after their code expired, and trip data (trips, arrivals, exposure notices, trip
//! records given up on, trips' versions seen by checks) `trip_days` after the trip's planned
//! arrival or receipt (for versions seen: after the first was stored). A pass runs when the node starts and then every hour, in
//! bounded steps (at most [`STEP`] values in one write batch, flushed), so serving never waits
//! long on it; a stop ends it between steps.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::config::RetentionConfig;
use super::NodeState;
use crate::clock::Clock;
use crate::store::{Pruned, Store, StoreError};
use crate::UnixTime;

/// Time between two passes.
pub(crate) const INTERVAL: Duration = Duration::from_secs(3600);

/// Most values one step removes (one write batch and flush).
pub(crate) const STEP: usize = 10_000;

/// Seconds in a retention day.
const DAY: u64 = 86_400;

/// What a pass removed: records of each log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    /// Verification audit records.
    pub(crate) audit: u64,
    /// Refused-call records.
    pub(crate) access: u64,
    /// Issued-code log entries.
    pub(crate) issued: u64,
    /// Trips at their origin, with their versions, reports and handover.
    pub(crate) trips: u64,
    /// Arrivals at the destination.
    pub(crate) arrivals: u64,
    /// Exposure notices received.
    pub(crate) notices: u64,
    /// Trip records given up on (the outbox's dead letters).
    pub(crate) dead_letters: u64,
    /// Trips' highest versions seen by checks.
    pub(crate) manifests_seen: u64,
}

/// The cut-off times of a pass: what is older is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cutoffs {
    /// Audit records with a time before this are due.
    pub(crate) audit_before: UnixTime,
    /// Refused-call records with a time before this are due.
    pub(crate) access_before: UnixTime,
    /// Issued codes that expired before this are due.
    pub(crate) expired_before: UnixTime,
    /// Trip data whose planned arrival or receipt is before this is due.
    pub(crate) trips_before: UnixTime,
}

/// The cut-off times of a pass at `now`: whole days before it, never before the epoch.
pub(crate) fn cutoffs(r: &RetentionConfig, now: UnixTime) -> Cutoffs {
    let before = |days: u32| now.saturating_sub(u64::from(days) * DAY);
    Cutoffs {
        audit_before: before(r.audit_days),
        access_before: before(r.access_days),
        expired_before: before(r.issued_days_after_expiry),
        trips_before: before(r.trip_days),
    }
}

/// What retention needs: how long logs are kept, the store and the clock.
pub(crate) struct Retention<'a> {
    config: RetentionConfig,
    store: &'a Store,
    clock: &'a Clock,
}

impl NodeState {
    /// The retention workflow's part of the node.
    pub(crate) fn pruner(&self) -> Retention<'_> {
        Retention {
            config: self.retention,
            store: &self.store,
            clock: &self.clock,
        }
    }
}

/// Runs a pass now and then every [`INTERVAL`] until `stop` turns true.
pub(crate) async fn run(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    let retention = state.pruner();
    let r = retention.config;
    if r.audit_days < 180 || r.access_days < 180 {
        tracing::warn!(
            audit_days = r.audit_days,
            access_days = r.access_days,
            "retention: logs are kept less than the six months China's Cybersecurity Law \
             (art. 21) asks for network logs"
        );
    }
    loop {
        match retention.pass(&stop).await {
            Ok(removed) if removed != Removed::default() => tracing::info!(
                audit_records = removed.audit,
                access_records = removed.access,
                issued_entries = removed.issued,
                trips = removed.trips,
                arrivals = removed.arrivals,
                exposure_notices = removed.notices,
                dead_letters = removed.dead_letters,
                manifests_seen = removed.manifests_seen,
                audit_days = r.audit_days,
                access_days = r.access_days,
                issued_days_after_expiry = r.issued_days_after_expiry,
                trip_days = r.trip_days,
                "retention: removed what is past its time"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention: could not remove old records"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

impl Retention<'_> {
    /// One pass at the node's time: every log pruned in steps until nothing more is due or
    /// `stop` turns true.
    ///
    /// # Errors
    /// The first [`StoreError`]; what earlier steps removed stays removed.
    pub(crate) async fn pass(&self, stop: &watch::Receiver<bool>) -> Result<Removed, StoreError> {
        let Cutoffs {
            audit_before,
            access_before,
            expired_before,
            trips_before,
        } = cutoffs(&self.config, self.clock.now());
        let store = self.store;
        let mut removed = Removed::default();
        // Each step removes at most STEP values; the logs are finite, so each loop ends.
        loop {
            let p = store.prune_audit(audit_before, STEP).await?;
            removed.audit += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_access(access_before, STEP).await?;
            removed.access += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_issued(expired_before, STEP).await?;
            removed.issued += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_trips(trips_before, STEP).await?;
            removed.trips += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_arrivals(trips_before, STEP).await?;
            removed.arrivals += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_exposure_notices(trips_before, STEP).await?;
            removed.notices += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_trip_outbox_dead(trips_before, STEP).await?;
            removed.dead_letters += p.records;
            if done(p, stop) {
                break;
            }
        }
        loop {
            let p = store.prune_manifests_seen(trips_before, STEP).await?;
            removed.manifests_seen += p.records;
            if done(p, stop) {
                break;
            }
        }
        Ok(removed)
    }
}

/// Whether a log's pruning is over: nothing more due, or the node stops.
fn done(p: Pruned, stop: &watch::Receiver<bool>) -> bool {
    !p.more || *stop.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_whole_days_before_now_and_never_before_the_epoch() {
        let r = RetentionConfig {
            audit_days: 180,
            access_days: 1,
            issued_days_after_expiry: 0,
            trip_days: 28,
        };
        let t = UnixTime::from_secs;
        let of = |c: Cutoffs| {
            (
                c.audit_before.secs(),
                c.access_before.secs(),
                c.expired_before.secs(),
                c.trips_before.secs(),
            )
        };
        let now = t(1_796_083_200); // 2026-12-01T00:00:00Z
        assert_eq!(
            of(cutoffs(&r, now)),
            (1_780_531_200, 1_795_996_800, 1_796_083_200, 1_793_664_000),
            "2026-06-04, 2026-11-30, now and 2026-11-03"
        );
        assert_eq!(of(cutoffs(&r, t(100))), (0, 0, 100, 0));
    }
}
