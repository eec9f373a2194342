//! Arrival at a trip's destination (docs/transport.md section 6): a receiver checks the manifest
//! in, confirms each person (their code scanned, or missing) with the measure taken, and the
//! node signs a handover receipt, or a refusal of the vehicle, for the origin province. One file
//! per step: `check_in`, `confirm`, `handover`, `refuse`, `list`; `view` builds the answers.
//!
//! A trip is done here once a receipt or a refusal of it is signed: a later check-in answers
//! `already_handed_over` and changes nothing, a second CompleteHandover answers the same receipt
//! (never a second one). Receipts and refusals are stored before they are queued, and queued in
//! the trip outbox before anything is answered, so a kill -9 at any point loses none: a retry
//! finds the stored receipt and queues it again if it was not queued (the origin acknowledges
//! the same bytes twice as a duplicate).

mod check_in;
mod confirm;
mod handover;
mod list;
mod refuse;
mod view;

use super::error::ApiError;
use super::outbox::TripOutbox;
use super::verification::Verification;
use super::{NodeState, TrustState};
use crate::clock::Clock;
use crate::manifest::{TripId, TRIP_ID_LEN};
use crate::province::Province;
use crate::store::Store;

/// Longest reason or note a receiver may give, in bytes (the receipt's `reason`).
pub(crate) const MAX_REASON_BYTES: usize = 200;

/// What the arrival workflows need: the node's province and key (receipts are signed by the
/// destination), the trust snapshot (the manifest decision), the verification workflow (a
/// person's code), the store, the trip outbox and the clock.
pub(crate) struct Arrival<'a> {
    province: Province,
    key: &'a crate::node::keyslot::SigningKey,
    trust: &'a TrustState,
    store: &'a Store,
    clock: &'a Clock,
    verification: Verification<'a>,
    outbox: TripOutbox<'a>,
    /// Wakes the outbox's delivery task (a check-in queues its event for the origin).
    outbox_wake: &'a tokio::sync::Notify,
}

impl NodeState {
    /// The arrival workflows' part of the node.
    pub(crate) fn arrival(&self) -> Arrival<'_> {
        Arrival {
            province: self.province,
            key: &self.key,
            trust: &self.trust,
            store: &self.store,
            clock: &self.clock,
            verification: self.verification(),
            outbox: self.trip_outbox(),
            outbox_wake: &self.outbox_wake,
        }
    }
}

/// A trip id from its 16 hex digits.
///
/// # Errors
/// [`ApiError::InvalidArgument`] on `trip_id`.
fn trip_id(s: &str) -> Result<TripId, ApiError> {
    let bytes: [u8; TRIP_ID_LEN] = hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::invalid("trip_id", "must be 16 hex digits"))?;
    Ok(TripId(bytes))
}

/// A receiver's reason or note, trimmed: at most [`MAX_REASON_BYTES`], under the receipt's text
/// rule ([`crate::manifest::ReasonText`]); required when `required`.
///
/// # Errors
/// [`ApiError::InvalidArgument`] on `field`.
fn reason_text(field: &'static str, s: &str, required: bool) -> Result<String, ApiError> {
    let s = s.trim();
    if required && s.is_empty() {
        return Err(ApiError::invalid(field, "is required here"));
    }
    if s.len() > MAX_REASON_BYTES {
        return Err(ApiError::invalid(
            field,
            format!("is {} bytes; at most {MAX_REASON_BYTES}", s.len()),
        ));
    }
    // The receipt's own text rule (no control or bidirectional-control character, something
    // visible), so that what is recorded always signs.
    crate::manifest::ReasonText::new(s).map_err(|e| ApiError::invalid(field, e))?;
    Ok(s.to_string())
}

/// A reception point's id, checked as a checkpoint id is.
///
/// # Errors
/// [`ApiError::InvalidArgument`] on `checkpoint_id`.
fn checkpoint(s: &str) -> Result<String, ApiError> {
    crate::audit::check_checkpoint_id(s)
        .map(str::to_string)
        .map_err(|e| ApiError::invalid("checkpoint_id", e))
}
