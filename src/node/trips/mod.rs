//! Trips at their origin (docs/transport.md): an organizer creates a trip, boards people by
//! their health codes (decided exactly as VerifyHealthCode decides them), seals signed
//! manifests, and sees the trip's state, with the check reports and the handover that other
//! nodes send back over federation. One file per step, each a method of [`Trips`], built by
//! [`NodeState::trips`]:
//!
//! - `create`: CreateManifest; `board`: BoardPerson; `remove`: RemovePerson; `seal`:
//!   SealManifest; `cancel`: CancelManifest; `view`: GetManifest, ListManifests and the trip's
//!   state; `record`: SubmitTripRecord (reports and handovers received); `overdue`: the
//!   periodic check of trips past their planned arrival.

mod board;
mod cancel;
mod create;
mod overdue;
mod record;
mod remove;
mod seal;
mod view;
mod wire;

pub(crate) use overdue::{overdue_count, run as run_overdue_check};

use super::error::ApiError;
use super::peer::PeerLink;
use super::verification::Verification;
use super::NodeState;
use crate::clock::Clock;
use crate::manifest::{EventDetail, TripEvent, TripId};
use crate::province::Province;
use crate::store::{Store, TripRecord};
use crate::UnixTime;

/// How long past the planned arrival a boarded person's status must still hold (docs/transport.md
/// section 3.5): 2 h, for a late bus and the handover at the gate.
pub(crate) const BOARDING_MARGIN_SECS: u64 = 2 * 3600;

/// How long after the planned arrival a sealed trip without a handover receipt or refusal turns
/// overdue (docs/transport.md section 6.1): 4 h.
pub(crate) const OVERDUE_GRACE_SECS: u64 = 4 * 3600;

/// Longest reason of a removal, in bytes.
pub(crate) const MAX_REASON_BYTES: usize = 200;

/// What the trip workflows need: the store, the signing key, the clock, verification (boarding
/// decides codes as VerifyHealthCode does) and the peers' keys (received records are signed by
/// them).
pub(crate) struct Trips<'a> {
    province: Province,
    store: &'a Store,
    key: &'a crate::node::keyslot::SigningKey,
    clock: &'a Clock,
    verification: Verification<'a>,
    peers: PeerLink<'a>,
    /// Exposure notices arrive as trip records (docs/tracing.md section 5).
    exposure: super::exposure::Exposure<'a>,
}

impl NodeState {
    /// The trip workflows' part of the node.
    pub(crate) fn trips(&self) -> Trips<'_> {
        Trips {
            province: self.province,
            store: &self.store,
            key: &self.key,
            clock: &self.clock,
            verification: self.verification(),
            peers: self.peer_link(),
            exposure: self.exposure(),
        }
    }
}

/// A trip id from the API: 16 hex digits.
///
/// # Errors
/// INVALID_ARGUMENT on `trip_id`.
pub(crate) fn parse_trip_id(s: &str) -> Result<TripId, ApiError> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .map(TripId)
        .ok_or_else(|| ApiError::invalid("trip_id", "must be 16 hex digits"))
}

impl Trips<'_> {
    /// The signed event (docs/tracing.md section 2) of a change to trip `t` at `at`: recorded by
    /// this node's province, naming `seat` (0: none) and the latest sealed version, signed with
    /// the current key.
    fn sign_event(
        &self,
        t: &TripRecord,
        at: UnixTime,
        seat: u8,
        detail: EventDetail,
    ) -> Result<Vec<u8>, ApiError> {
        Ok(TripEvent {
            trip_id: t.id,
            at,
            recorder: self.province,
            seat,
            version: t.version,
            detail,
        }
        .sign(&*self.key.load_full()?))
    }

    /// The trip `id`, or NOT_FOUND.
    fn load(&self, id: &TripId) -> Result<TripRecord, ApiError> {
        self.store
            .trip(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no trip {id} was created at this node")))
    }

    /// The trip `id` if it may still change: not cancelled, not handed over; else
    /// FAILED_PRECONDITION.
    fn load_changeable(&self, id: &TripId) -> Result<TripRecord, ApiError> {
        let t = self.load(id)?;
        if t.cancelled() {
            return Err(ApiError::FailedPrecondition(format!(
                "trip {id} was cancelled"
            )));
        }
        if let Some(h) = self.store.trip_handover(id)? {
            return Err(ApiError::FailedPrecondition(format!(
                "trip {id} was {} by {}: it can no longer change",
                if h.refused { "refused" } else { "handed over" },
                h.destination
            )));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests;
