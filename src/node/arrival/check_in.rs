//! CheckInManifest: the manifest decided in the arrival role; on PASS the trip is recorded with
//! every seat still to confirm.

use super::{checkpoint, view, Arrival};
use crate::manifest::{self, Checkpoint, EventDetail, SignedManifest, TripEvent};
use crate::node::convert;
use crate::node::error::ApiError;
use crate::proto;
use crate::store::{ArrivalRecord, NewEvent, TripRecordKind};

impl Arrival<'_> {
    /// Checks trip manifest `text` in at reception point `checkpoint_id`. The verdict is
    /// [`manifest::check`]'s in the arrival role, with the highest version of the trip already
    /// checked in here as the seen version. STOP records nothing. PASS records the trip (a newer
    /// version replaces an older one checked in before, its confirmations dropped: the people
    /// may differ; the same version again keeps them). A trip already handed over or refused
    /// here answers `already_handed_over` and changes nothing.
    ///
    /// # Errors
    /// [`ApiError::FailedPrecondition`] when the manifest's destination is another province;
    /// [`ApiError::InvalidArgument`] for a bad `checkpoint_id`; [`ApiError::Store`].
    pub(crate) async fn check_in(
        &self,
        text: &str,
        checkpoint_id: &str,
    ) -> Result<proto::CheckInManifestResponse, ApiError> {
        let checkpoint = checkpoint(checkpoint_id)?;
        let decoded = SignedManifest::decode(text).ok();
        let now = self.clock.now();
        let trust = self.trust.load_full();
        let Some(signed) = decoded else {
            // Malformed: the decision says why; nothing to record.
            let verdict = manifest::check(text, &trust, now, None);
            return Ok(proto::CheckInManifestResponse {
                verdict: Some(convert::manifest_verdict_to_proto(
                    &verdict,
                    None,
                    self.province,
                    now,
                )),
                people: Vec::new(),
                already_handed_over: false,
            });
        };
        let m = &signed.manifest;
        self.at_destination(m)?;
        let _held = self.store.lock_arrivals().await;
        let existing = self.store.arrival(&m.trip_id)?;
        let seen = existing
            .as_ref()
            .map(|r| u32::try_from(r.version).unwrap_or(u32::MAX));
        let verdict = manifest::check(text, &trust, now, seen);
        let answer = |already_handed_over| proto::CheckInManifestResponse {
            verdict: Some(convert::manifest_verdict_to_proto(
                &verdict,
                Some(m),
                self.province,
                now,
            )),
            people: if verdict.passed() {
                view::trip_people(m)
            } else {
                Vec::new()
            },
            already_handed_over,
        };
        if existing.as_ref().is_some_and(|r| r.handover.is_some()) {
            tracing::info!(trip = %m.trip_id, version = m.version, "trip already handed over or refused here: nothing changed");
            return Ok(answer(true));
        }
        let manifest::ManifestVerdict::Pass(_) = &verdict else {
            tracing::info!(
                trip = %m.trip_id,
                version = m.version,
                reasons = verdict.reasons().len(),
                "manifest stopped at check-in: nothing recorded"
            );
            return Ok(answer(false));
        };
        match existing {
            Some(r) if r.version == m.version => {
                tracing::info!(trip = %m.trip_id, version = m.version, "trip checked in again");
            }
            _ => {
                let record = ArrivalRecord {
                    trip_id: m.trip_id,
                    origin: m
                        .origin_province()
                        .map_err(|_| ApiError::Internal("a decoded manifest has no origin"))?,
                    version: m.version,
                    manifest: text.trim().to_string(),
                    checkpoint,
                    checked_in_at: now,
                    seats: vec![None; m.people.len()],
                    handover: None,
                    outbox_seq: None,
                };
                self.store.put_arrival(&record).await?;
                // The signed check-in (docs/tracing.md section 2), right after the record.
                let event = TripEvent {
                    trip_id: m.trip_id,
                    at: now,
                    recorder: self.province,
                    seat: 0,
                    version: m.version,
                    detail: EventDetail::Arrived {
                        checkpoint: Checkpoint::new(record.checkpoint.clone())
                            .unwrap_or_else(|_| unnamed()),
                        manifest_hash: manifest::manifest_hash(&signed),
                    },
                }
                .sign(&*self.key.load_full()?);
                self.store
                    .store_trip_event(
                        &m.trip_id,
                        NewEvent {
                            at: now,
                            signed: &event,
                        },
                    )
                    .await?;
                // And for the origin's chain, through the trip outbox.
                let seq = self
                    .store
                    .enqueue_trip_record(record.origin, TripRecordKind::ArrivalEvent, event, now)
                    .await?;
                self.outbox_wake.notify_one();
                tracing::debug!(trip = %m.trip_id, seq, "check-in queued for the origin");
                tracing::info!(
                    trip = %m.trip_id,
                    version = m.version,
                    origin = %record.origin,
                    people = m.people.len(),
                    "trip checked in"
                );
            }
        }
        Ok(answer(false))
    }

    /// Whether this node is the destination of manifest `m`.
    ///
    /// # Errors
    /// [`ApiError::FailedPrecondition`] naming the destination province when it is not.
    pub(super) fn at_destination(&self, m: &manifest::Manifest) -> Result<(), ApiError> {
        let destination = m
            .destination_province()
            .map_err(|_| ApiError::Internal("a decoded manifest has no destination"))?;
        if destination != self.province {
            return Err(ApiError::FailedPrecondition(format!(
                "trip {} goes to province {destination}, not to this node's {}: check it in \
                 (or refuse it) at {destination}'s node",
                m.trip_id, self.province
            )));
        }
        Ok(())
    }
}

/// The reception point of an arrival event when the receiver named none: `-`.
fn unnamed() -> Checkpoint {
    Checkpoint::new("-").unwrap_or_else(|_| unreachable!("\"-\" is a visible text"))
}
