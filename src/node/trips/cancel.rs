//! CancelManifest: a trip never sealed is called off; its people may board another.

use super::Trips;
use crate::manifest::EventDetail;
use crate::node::error::ApiError;
use crate::proto;
use crate::store::NewEvent;

impl Trips<'_> {
    /// Cancels a trip never sealed. Cancelling it again changes nothing and is answered OK.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (trip id), NOT_FOUND, FAILED_PRECONDITION (it was sealed: a signed
    /// manifest may be on the road; its handover or its overdue state ends it), UNAVAILABLE.
    pub(crate) async fn cancel(
        &self,
        r: proto::CancelManifestRequest,
    ) -> Result<proto::CancelManifestResponse, ApiError> {
        let id = super::parse_trip_id(&r.trip_id)?;
        let _held = self.store.lock_trips().await;
        let mut t = self.load(&id)?;
        if t.cancelled() {
            return Ok(proto::CancelManifestResponse {});
        }
        if t.version > 0 {
            return Err(ApiError::FailedPrecondition(format!(
                "trip {id} was sealed (version {}): only a trip never sealed can be cancelled",
                t.version
            )));
        }
        let now = self.clock.now();
        t.cancelled_at = Some(now);
        let released: Vec<_> = t
            .people
            .iter()
            .map(|p| (p.issuer, p.subject_hash))
            .collect();
        let event = self.sign_event(&t, now, 0, EventDetail::Cancelled)?;
        self.store
            .update_trip(
                &t,
                &[],
                &released,
                NewEvent {
                    at: now,
                    signed: &event,
                },
            )
            .await?;
        tracing::info!(trip = %id, people = t.people.len(), "trip cancelled");
        Ok(proto::CancelManifestResponse {})
    }
}
