//! RefuseVehicle: a signed refusal with its reason, for a trip checked in here or not, stored and
//! queued for the origin like a receipt.

use super::{checkpoint, reason_text, Arrival};
use crate::manifest::{self, ManifestReason, Outcome, SignedManifest};
use crate::node::error::ApiError;
use crate::proto;
use crate::store::{ArrivalRecord, SignedHandover};

impl Arrival<'_> {
    /// Refuses the vehicle of manifest `r.manifest` with `r.reason`: signs a refusal of that
    /// version, stores it, queues it for the origin and tries to deliver it once. The manifest
    /// must decode, be for this province, and carry a signature that verifies under a key of
    /// its origin trusted here (any other STOP reason is a fine reason to refuse). Refusing a
    /// trip refused before answers the first refusal.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] for a manifest that does not decode, a missing or long
    /// reason, or a bad checkpoint id; [`ApiError::FailedPrecondition`] for a manifest of
    /// another destination, one whose signature cannot be verified here, an older version than
    /// the one checked in, or a trip already handed over; [`ApiError::Store`].
    pub(crate) async fn refuse(
        &self,
        r: proto::RefuseVehicleRequest,
    ) -> Result<proto::RefuseVehicleResponse, ApiError> {
        let reason = reason_text("reason", &r.reason, true)?;
        let checkpoint = checkpoint(&r.checkpoint_id)?;
        let signed = SignedManifest::decode(&r.manifest)
            .map_err(|e| ApiError::invalid("manifest", format!("{}: {e}", e.code())))?;
        let m = &signed.manifest;
        self.at_destination(m)?;
        let now = self.clock.now();
        let verdict = manifest::check(&r.manifest, &self.trust.load_full(), now, None);
        if let Some(unverified) = verdict.reasons().iter().find(|s| {
            matches!(
                s.reason,
                ManifestReason::UnknownIssuer
                    | ManifestReason::UnknownKey
                    | ManifestReason::BadSignature
            )
        }) {
            return Err(ApiError::FailedPrecondition(format!(
                "the manifest's signature cannot be verified here ({}: {}): a refusal answers \
                 only an authentic manifest",
                unverified.reason.as_str(),
                unverified.detail
            )));
        }
        let held = self.store.lock_arrivals().await;
        let existing = self.store.arrival(&m.trip_id)?;
        if let Some(e) = &existing {
            match &e.handover {
                Some(h) if h.refused => {
                    tracing::info!(trip = %m.trip_id, "vehicle already refused: the same refusal");
                    let (refusal, delivered) = self.send(held, e.clone()).await?;
                    return Ok(proto::RefuseVehicleResponse {
                        refusal: Some(refusal),
                        delivered,
                    });
                }
                Some(_) => {
                    return Err(ApiError::FailedPrecondition(format!(
                        "trip {} was already handed over here: it cannot be refused",
                        m.trip_id
                    )))
                }
                None if e.version > m.version => {
                    return Err(ApiError::FailedPrecondition(format!(
                        "version {} of trip {} is superseded: version {} was checked in here",
                        m.version, m.trip_id, e.version
                    )))
                }
                None => {}
            }
        }
        let mut record = match existing {
            Some(e) if e.version == m.version => e,
            // Not checked in, or an older version: the refusal answers the one shown.
            _ => ArrivalRecord {
                trip_id: m.trip_id,
                origin: m
                    .origin_province()
                    .map_err(|_| ApiError::Internal("a decoded manifest has no origin"))?,
                version: m.version,
                manifest: r.manifest.trim().to_string(),
                checkpoint,
                checked_in_at: now,
                seats: vec![None; m.people.len()],
                handover: None,
                outbox_seq: None,
            },
        };
        let bytes = self.sign(&record, now, Outcome::Refused, &reason, Vec::new())?;
        record.handover = Some(SignedHandover {
            signed: bytes,
            at: now,
            refused: true,
            reason,
        });
        self.store.put_arrival(&record).await?;
        tracing::info!(
            trip = %record.trip_id,
            version = record.version,
            origin = %record.origin,
            "vehicle refused: refusal signed"
        );
        let (refusal, delivered) = self.send(held, record).await?;
        Ok(proto::RefuseVehicleResponse {
            refusal: Some(refusal),
            delivered,
        })
    }
}
