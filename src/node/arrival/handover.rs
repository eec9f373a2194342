//! CompleteHandover: the receipt signed once every seat is confirmed or missing, stored, queued
//! for the origin and tried once at once; and what a refusal shares with it (storing, queueing,
//! delivering).

use tokio::sync::MutexGuard;

use super::{reason_text, trip_id, view, Arrival};
use crate::manifest::{
    manifest_hash, Measure, Outcome, ReasonText, Receipt, ReceiptPerson, SignedManifest,
};
use crate::node::error::ApiError;
use crate::proto;
use crate::store::{ArrivalRecord, SignedHandover, TripRecordKind};
use crate::UnixTime;

impl Arrival<'_> {
    /// Signs the handover receipt of trip `r.trip_id` (every seat confirmed or missing) with the
    /// node's key, stores it, queues it for the origin and tries to deliver it once. Called
    /// again, answers the same receipt (queued again only if a crash came between storing and
    /// queueing it).
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] for a bad trip id or note; [`ApiError::NotFound`] for a
    /// trip not checked in here; [`ApiError::FailedPrecondition`] for a trip refused here or
    /// with seats not yet confirmed; [`ApiError::Store`].
    pub(crate) async fn complete(
        &self,
        r: proto::CompleteHandoverRequest,
    ) -> Result<proto::CompleteHandoverResponse, ApiError> {
        let trip = trip_id(&r.trip_id)?;
        let note = reason_text("note", &r.note, false)?;
        let held = self.store.lock_arrivals().await;
        let mut record = self
            .store
            .arrival(&trip)?
            .ok_or_else(|| ApiError::NotFound(format!("trip {trip} was not checked in here")))?;
        match &record.handover {
            Some(h) if h.refused => {
                return Err(ApiError::FailedPrecondition(format!(
                    "trip {trip} was refused here ({}): it has no handover",
                    h.reason
                )))
            }
            Some(_) => {
                tracing::info!(trip = %trip, "handover already signed: the same receipt");
                let (receipt, delivered) = self.send(held, record).await?;
                return Ok(proto::CompleteHandoverResponse {
                    receipt: Some(receipt),
                    delivered,
                });
            }
            None => {}
        }
        let open: Vec<String> = record
            .seats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        if !open.is_empty() {
            return Err(ApiError::FailedPrecondition(format!(
                "trip {trip}: seats {} are not confirmed or marked missing yet",
                open.join(", ")
            )));
        }
        // Every seat is set (checked above), each measure and reason as ConfirmPerson checked it.
        let people = record
            .seats
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i + 1, s)))
            .map(|(seat, s)| {
                Ok(ReceiptPerson {
                    seat,
                    present: s.present,
                    measure: Measure::from_number(s.measure)
                        .ok_or(ApiError::Internal("a stored measure is not 0 to 3"))?,
                    reason: ReasonText::new(s.reason.clone())
                        .map_err(|_| ApiError::Internal("a stored reason breaks the text rule"))?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let now = self.clock.now();
        let bytes = self.sign(&record, now, Outcome::Delivered, &note, people)?;
        record.handover = Some(SignedHandover {
            signed: bytes,
            at: now,
            refused: false,
            reason: note,
        });
        self.store.put_arrival(&record).await?;
        tracing::info!(
            trip = %trip,
            version = record.version,
            origin = %record.origin,
            "handover receipt signed"
        );
        let (receipt, delivered) = self.send(held, record).await?;
        Ok(proto::CompleteHandoverResponse {
            receipt: Some(receipt),
            delivered,
        })
    }

    /// Signs a receipt or refusal of the manifest version of `record` with the node's key.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] on `reason` for a reason the format refuses;
    /// [`ApiError::Internal`] when the stored manifest does not decode or the receipt breaks a
    /// rule of its format (a bug).
    pub(super) fn sign(
        &self,
        record: &ArrivalRecord,
        now: UnixTime,
        outcome: Outcome,
        reason: &str,
        people: Vec<ReceiptPerson>,
    ) -> Result<Vec<u8>, ApiError> {
        let signed = SignedManifest::decode(&record.manifest)
            .map_err(|_| ApiError::Internal("a stored manifest does not decode"))?;
        let receipt = Receipt {
            trip_id: record.trip_id,
            version: record.version,
            manifest_hash: manifest_hash(&signed),
            destination: self.province,
            received_at: now,
            outcome,
            reason: ReasonText::new(reason).map_err(|e| ApiError::invalid("reason", e))?,
            people,
        };
        if let Err(e) = receipt.check() {
            tracing::error!(trip = %record.trip_id, error = %e, "a receipt breaks its format");
            return Err(ApiError::Internal("the receipt breaks its format"));
        }
        Ok(receipt.sign(&*self.key.load_full()?))
    }

    /// Queues the signed receipt or refusal of `record` for the origin when it is not queued yet
    /// (then stores the entry's number), releases the arrivals lock `held`, and tries one
    /// delivery now. Returns the receipt's view and whether the origin acknowledged it.
    ///
    /// # Errors
    /// [`ApiError::Store`]; [`ApiError::Internal`] when `record` has no receipt (a bug).
    pub(super) async fn send(
        &self,
        held: MutexGuard<'_, ()>,
        mut record: ArrivalRecord,
    ) -> Result<(proto::HandoverView, bool), ApiError> {
        let h = record
            .handover
            .clone()
            .ok_or(ApiError::Internal("no receipt to send"))?;
        let seq = match record.outbox_seq {
            Some(seq) => seq,
            None => {
                let seq = self
                    .store
                    .enqueue_trip_record(
                        record.origin,
                        TripRecordKind::Handover,
                        h.signed.clone(),
                        self.clock.now(),
                    )
                    .await?;
                record.outbox_seq = Some(seq);
                self.store.put_arrival(&record).await?;
                tracing::info!(trip = %record.trip_id, seq, to = %record.origin, "receipt queued for the origin");
                seq
            }
        };
        drop(held);
        // Acknowledged before, or at this one attempt; a record the origin refused for good
        // (given up on, logged by the outbox) is not delivered.
        let delivered = if self.store.trip_record_acknowledged(seq)? {
            true
        } else if self.store.trip_record_pending(seq)? {
            self.outbox.deliver_now(seq).await
        } else {
            false
        };
        let view = view::handover(&record, self.province)
            .ok_or(ApiError::Internal("no receipt to show"))?;
        Ok((view, delivered))
    }
}
