//! Overdue trips: sealed, with no handover receipt or refusal by the planned arrival plus
//! [`OVERDUE_GRACE_SECS`]. The state is computed at read time ([`super::view::state_of`]) and
//! the gauge `hcmr_trips_overdue` at scrape time ([`overdue_count`]); this task writes one warn
//! line per trip when it turns overdue (once per run of the node).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::OVERDUE_GRACE_SECS;
use crate::manifest::TripId;
use crate::node::NodeState;
use crate::store::{Store, StoreError};
use crate::UnixTime;

/// How often the task looks.
const INTERVAL: Duration = Duration::from_secs(60);

/// Trips whose planned arrival is before this are overdue at `now`, unless handed over.
pub(crate) fn overdue_cutoff(now: UnixTime) -> UnixTime {
    now.saturating_sub(OVERDUE_GRACE_SECS)
}

/// How many trips are overdue at `now` (the index of trips awaiting a handover, read up to the
/// cutoff; never the trips themselves).
///
/// # Errors
/// [`StoreError`].
pub(crate) fn overdue_count(store: &Store, now: UnixTime) -> Result<usize, StoreError> {
    Ok(store.trips_due_before(overdue_cutoff(now))?.len())
}

/// Looks every [`INTERVAL`] until `stop` turns true, logging each trip that turned overdue.
pub(crate) async fn run(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    let mut warned: HashSet<TripId> = HashSet::new();
    loop {
        let now = state.now();
        match state.store.trips_due_before(overdue_cutoff(now)) {
            Ok(ids) => {
                for id in ids {
                    if !warned.insert(id) {
                        continue;
                    }
                    let arrival = state.store.trip(&id).ok().flatten().map(|t| t.arrival);
                    tracing::warn!(
                        trip = %id,
                        planned_arrival = arrival.map_or(0, UnixTime::secs),
                        grace_secs = OVERDUE_GRACE_SECS,
                        "trip overdue: no handover receipt or refusal from its destination"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "trips: could not read the trips awaiting a handover")
            }
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
