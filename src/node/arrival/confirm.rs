//! ConfirmPerson: one seat confirmed by the person's code (verified as VerifyHealthCode does,
//! and matching the seat's entry), or marked missing, with the measure taken.

use super::{reason_text, trip_id, view, Arrival};
use crate::manifest::SignedManifest;
use crate::node::error::ApiError;
use crate::proto;
use crate::store::SeatOutcome;

impl Arrival<'_> {
    /// Records seat `r.seat` of trip `r.trip_id`: present when `r.code` is recognized here and
    /// is the seat's person's (same issuer province, same first 4 bytes of the keyed subject
    /// hash; the code itself may be a newer one than boarded), or missing; with the measure and
    /// the reason (required for a measure other than none and for a missing person; a missing
    /// person has no measure). A seat may be recorded again until the handover. `who` is the
    /// caller, for the verifier's turns and the audit log.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] for a bad trip id, seat, measure, reason or code field;
    /// [`ApiError::NotFound`] for a trip not checked in here; [`ApiError::FailedPrecondition`]
    /// for a trip already handed over or refused, a code not recognized here, or a code of
    /// another person than the seat's; [`ApiError::Store`].
    pub(crate) async fn confirm(
        &self,
        who: &str,
        r: proto::ConfirmPersonRequest,
    ) -> Result<proto::ConfirmPersonResponse, ApiError> {
        let trip = trip_id(&r.trip_id)?;
        let measure = proto::HandoverMeasure::try_from(r.measure)
            .map_err(|_| ApiError::invalid("measure", format!("{} is no measure", r.measure)))?;
        let needs_reason = r.missing || measure != proto::HandoverMeasure::None;
        let reason = reason_text("reason", &r.reason, needs_reason)?;
        if r.missing && measure != proto::HandoverMeasure::None {
            return Err(ApiError::invalid(
                "measure",
                "must be NONE for a missing person (no measure was taken)",
            ));
        }
        match (r.missing, r.code.trim().is_empty()) {
            (true, false) => {
                return Err(ApiError::invalid(
                    "code",
                    "must be empty for a missing person",
                ))
            }
            (false, true) => {
                return Err(ApiError::invalid(
                    "code",
                    "is required: scan the person's code, or mark them missing",
                ))
            }
            _ => {}
        }
        let _held = self.store.lock_arrivals().await;
        let mut record = self
            .store
            .arrival(&trip)?
            .ok_or_else(|| ApiError::NotFound(format!("trip {trip} was not checked in here")))?;
        if let Some(h) = &record.handover {
            return Err(ApiError::FailedPrecondition(format!(
                "trip {trip} was already {} here: nothing more may be recorded",
                if h.refused { "refused" } else { "handed over" }
            )));
        }
        let seat = usize::try_from(r.seat).unwrap_or(usize::MAX);
        if seat == 0 || seat > record.seats.len() {
            return Err(ApiError::invalid(
                "seat",
                format!(
                    "{} is not a seat of trip {trip}: its manifest lists seats 1 to {}",
                    r.seat,
                    record.seats.len()
                ),
            ));
        }
        if !r.missing {
            self.code_of_seat(who, &record.manifest, &record.checkpoint, seat, r.code)
                .await?;
        }
        let outcome = SeatOutcome {
            present: !r.missing,
            measure: measure as u64,
            reason,
        };
        record.seats[seat - 1] = Some(outcome.clone());
        self.store.put_arrival(&record).await?;
        let remaining = record.seats.len() - record.confirmed();
        tracing::info!(
            trip = %trip,
            seat,
            present = outcome.present,
            measure = outcome.measure,
            remaining,
            "person confirmed at arrival"
        );
        Ok(proto::ConfirmPersonResponse {
            person: Some(view::person(seat, &outcome)),
            remaining: remaining as u32,
        })
    }

    /// Verifies `code` (audited, as VerifyHealthCode, under the checkpoint id `gate` the trip was
    /// checked in at) and checks that it is the person of seat `seat` (1-based) of the stored
    /// manifest string `manifest`.
    ///
    /// # Errors
    /// [`ApiError::FailedPrecondition`] when not recognized or not the seat's person.
    async fn code_of_seat(
        &self,
        who: &str,
        manifest: &str,
        gate: &str,
        seat: usize,
        code: String,
    ) -> Result<(), ApiError> {
        let m = SignedManifest::decode(manifest)
            .map_err(|_| ApiError::Internal("a stored manifest does not decode"))?
            .manifest;
        let entry = m.people.get(seat - 1).ok_or(ApiError::Internal(
            "a stored arrival has more seats than its manifest",
        ))?;
        let issuer = m.issuers.get(usize::from(entry.issuer)).copied();
        let (verdicts, _) = self
            .verification
            .verify_and_audit(who, vec![code], gate, "grpc")
            .await?;
        let v = verdicts
            .first()
            .ok_or(ApiError::Internal("no verdict for the code"))?;
        if !v.recognized() {
            return Err(ApiError::FailedPrecondition(format!(
                "the code is not recognized here ({}: {}): it cannot confirm seat {seat}; mark \
                 the person missing or refer them to the issuer",
                v.reason.as_str(),
                v.detail
            )));
        }
        let same_subject = v
            .claims
            .as_ref()
            .is_some_and(|c| c.subject.subject_hash.0[..4] == entry.subject);
        if v.issuer != issuer || !same_subject {
            return Err(ApiError::FailedPrecondition(format!(
                "the code does not match seat {seat}: it is not the code of the person boarded \
                 there (issuer and subject differ)"
            )));
        }
        Ok(())
    }
}
