//! RemovePerson: a person leaves the trip (at a stop, a crew change). After a seal the change
//! takes effect with the next seal; the person may board another trip at once.

use super::{Trips, MAX_REASON_BYTES};
use crate::manifest::{EventDetail, ReasonText, MAX_PEOPLE};
use crate::node::error::ApiError;
use crate::proto;
use crate::store::{NewEvent, Removal};

/// Checks a removal's reason: 1 to [`MAX_REASON_BYTES`] bytes, no control characters.
///
/// # Errors
/// INVALID_ARGUMENT on `reason`.
pub(crate) fn check_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::invalid(
            "reason",
            format!("1 to {MAX_REASON_BYTES} bytes are needed"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::invalid("reason", "holds a control character"));
    }
    Ok(())
}

impl Trips<'_> {
    /// Takes the person in `r.seat` off the trip.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (trip id, seat, reason), NOT_FOUND (no such trip, or nobody in the
    /// seat), FAILED_PRECONDITION (cancelled or handed over), UNAVAILABLE (store).
    pub(crate) async fn remove(
        &self,
        r: proto::RemovePersonRequest,
    ) -> Result<proto::RemovePersonResponse, ApiError> {
        let id = super::parse_trip_id(&r.trip_id)?;
        if r.seat == 0 || r.seat > MAX_PEOPLE as u32 {
            return Err(ApiError::invalid(
                "seat",
                format!("must be 1 to {MAX_PEOPLE}"),
            ));
        }
        check_reason(&r.reason)?;
        let _held = self.store.lock_trips().await;
        let mut t = self.load_changeable(&id)?;
        let Some(at) = t.people.iter().position(|p| u32::from(p.seat) == r.seat) else {
            return Err(ApiError::NotFound(format!(
                "nobody is in seat {} of trip {id}",
                r.seat
            )));
        };
        let p = t.people.remove(at);
        let now = self.clock.now();
        t.removals.push(Removal {
            seat: p.seat,
            reason: r.reason.trim().to_string(),
            at: now,
        });
        t.changed_since_seal = t.version > 0;
        // The organizer's reason, when the record's text rule takes it (else none is signed).
        let reason = ReasonText::new(r.reason.trim()).unwrap_or_default();
        let event = self.sign_event(&t, now, p.seat, EventDetail::Removed { reason })?;
        self.store
            .update_trip(
                &t,
                &[],
                &[(p.issuer, p.subject_hash)],
                NewEvent {
                    at: now,
                    signed: &event,
                },
            )
            .await?;
        tracing::info!(trip = %id, seat = p.seat, "person taken off the trip");
        Ok(proto::RemovePersonResponse {})
    }
}
