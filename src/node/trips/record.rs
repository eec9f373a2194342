//! SubmitTripRecord at the trip's origin: a check report or a handover receipt/refusal, signed
//! by the node that made it, for a trip this node sealed (docs/transport.md section 6). Stored
//! once; the same record again is acknowledged as a duplicate; a second, different handover is
//! refused (`already_handed_over`).

use super::Trips;
use crate::keys::Kid;
use crate::manifest::{
    match_sealed, EventDetail, RecordMismatch, SignedCheckReport, SignedManifest, SignedReceipt,
    SignedTripEvent, TripId,
};
use crate::node::auth::Principal;
use crate::node::error::ApiError;
use crate::proto;
use crate::province::Province;
use crate::store::{NewEvent, Stored, StoredHandover, StoredReport, TripRecord};

/// Largest record accepted before decoding, in bytes: the largest receipt (the decoders hold
/// each kind to its own bound).
pub(crate) const MAX_RECORD_BYTES: usize = crate::manifest::MAX_RECEIPT_BYTES;

/// What a received record says, once its envelope and payload decoded (not yet verified).
pub(crate) struct Opened {
    /// The signing province (the checker, or the destination).
    pub(crate) signer: Province,
    /// The key id of the signature.
    pub(crate) kid: Kid,
    /// The trip.
    pub(crate) trip: TripId,
    /// The manifest version it answers.
    pub(crate) version: u64,
    /// The record as the store keeps it.
    pub(crate) record: Record,
    /// The decoded record, for its signature and its match with the sealed version.
    signed: Signed,
}

/// A decoded record, not yet verified.
pub(crate) enum Signed {
    /// A check report.
    Report(SignedCheckReport),
    /// A handover receipt or refusal.
    Receipt(SignedReceipt),
    /// A trip event (the destination's check-in).
    Event(SignedTripEvent),
}

/// A received record's content.
pub(crate) enum Record {
    /// A check report.
    Report(StoredReport),
    /// A handover receipt or refusal.
    Handover(StoredHandover),
    /// A signed trip event (the destination's check-in): its time and COSE bytes.
    Event {
        /// The event's `at`.
        at: crate::UnixTime,
        /// The COSE_Sign1 bytes.
        signed: Vec<u8>,
    },
}

impl Trips<'_> {
    /// Receives a record from `from` (the calling node; `None` or unchecked on a node without
    /// TLS).
    ///
    /// # Errors
    /// INVALID_ARGUMENT (no record, too large, malformed, a manifest hash that is not the
    /// sealed version's), PERMISSION_DENIED (signed for another province than the calling
    /// node's, or a handover from another province than the destination's), UNAUTHENTICATED
    /// (no trusted key of the signer with the kid, or a bad signature), NOT_FOUND (a trip or
    /// version this node did not seal), ALREADY_EXISTS (`already_handed_over`), UNAVAILABLE.
    pub(crate) async fn receive(
        &self,
        from: Option<&Principal>,
        r: proto::SubmitTripRecordRequest,
    ) -> Result<proto::SubmitTripRecordResponse, ApiError> {
        use proto::submit_trip_record_request::Record as R;
        let opened = match r.record {
            Some(R::CheckReport(b)) => open("check_report", b, super::wire::open_report)?,
            Some(R::Handover(b)) => open("handover", b, super::wire::open_handover)?,
            Some(R::ArrivalEvent(b)) => open("arrival_event", b, super::wire::open_arrival)?,
            // Not about a trip this node sealed: src/node/exposure takes it in.
            Some(R::ExposureNotice(b)) => return self.exposure.receive(from, b).await,
            None => {
                return Err(ApiError::invalid(
                    "record",
                    "one of check_report, handover, arrival_event or exposure_notice is needed",
                ))
            }
        };
        if let Some(Principal::Node(peer)) = from {
            if peer.province != opened.signer {
                return Err(ApiError::PermissionDenied(format!(
                    "the record is signed for {}, but the calling node is {}",
                    opened.signer, peer.province
                )));
            }
        }
        let keys = self.peers.peer_keys(opened.signer);
        let Some(key) = keys.iter().find(|k| k.kid == opened.kid) else {
            return Err(ApiError::Unauthenticated(format!(
                "no key of {} with kid {} is trusted here",
                opened.signer, opened.kid
            )));
        };
        if !opened.verifies(key) {
            return Err(ApiError::Unauthenticated(format!(
                "the record's signature does not verify under {}'s key {}",
                opened.signer, opened.kid
            )));
        }
        let _held = self.store.lock_trips().await;
        let trip = self.sealed(&opened)?;
        let stored = match &opened.record {
            Record::Report(rep) => self.store.store_trip_report(&trip.id, rep).await?,
            Record::Handover(h) => {
                if Some(h.destination)
                    != crate::manifest::province_of(trip.destination, "destination").ok()
                {
                    return Err(ApiError::PermissionDenied(format!(
                        "trip {} goes to {}, not to {}",
                        trip.id, trip.destination, h.destination
                    )));
                }
                self.store.store_trip_handover(&trip, h).await?
            }
            Record::Event { at, signed } => {
                if Some(opened.signer)
                    != crate::manifest::province_of(trip.destination, "destination").ok()
                {
                    return Err(ApiError::PermissionDenied(format!(
                        "trip {} goes to {}, not to {}",
                        trip.id, trip.destination, opened.signer
                    )));
                }
                self.store
                    .store_received_event(&trip.id, NewEvent { at: *at, signed })
                    .await?
            }
        };
        let kind = match opened.record {
            Record::Report(_) => "check report",
            Record::Handover(ref h) if h.refused => "handover refusal",
            Record::Handover(_) => "handover receipt",
            Record::Event { .. } => "check-in",
        };
        match stored {
            Stored::New => {
                tracing::info!(trip = %trip.id, version = opened.version, from = %opened.signer, kind, "trip record received");
                Ok(proto::SubmitTripRecordResponse { duplicate: false })
            }
            Stored::Duplicate => Ok(proto::SubmitTripRecordResponse { duplicate: true }),
            Stored::Conflict => Err(ApiError::AlreadyExists(format!(
                "already_handed_over: trip {} already has a different handover",
                trip.id
            ))),
        }
    }

    /// The trip a record names, if this node sealed the version it names with the manifest
    /// whose hash it carries (and, for a delivery, the record lists exactly that version's
    /// seats): the core's `match_sealed`.
    fn sealed(&self, o: &Opened) -> Result<TripRecord, ApiError> {
        let not_found = || {
            ApiError::NotFound(format!(
                "trip {} version {} was not sealed by this node",
                o.trip, o.version
            ))
        };
        let trip = self.store.trip(&o.trip)?.ok_or_else(not_found)?;
        if o.version == 0 || o.version > trip.version {
            return Err(not_found());
        }
        let text = self
            .store
            .trip_version(&o.trip, o.version)?
            .ok_or_else(not_found)?;
        let sealed = SignedManifest::decode(&text)
            .map_err(|_| ApiError::Internal("a stored manifest does not decode"))?;
        o.matches(&sealed).map_err(|e| match e {
            RecordMismatch::UnknownTrip(_) | RecordMismatch::UnknownVersion { .. } => not_found(),
            RecordMismatch::Hash(_) => ApiError::invalid(
                "manifest_hash",
                format!(
                    "is not the hash of trip {} version {} as sealed here",
                    o.trip, o.version
                ),
            ),
            other => ApiError::invalid("seat", other),
        })?;
        Ok(trip)
    }
}

/// Opens a record's bytes with `f`, after the size check.
fn open(
    field: &'static str,
    bytes: Vec<u8>,
    f: fn(Vec<u8>) -> Result<Opened, String>,
) -> Result<Opened, ApiError> {
    if bytes.is_empty() || bytes.len() > MAX_RECORD_BYTES {
        return Err(ApiError::invalid(
            field,
            format!(
                "{} bytes; 1 to {MAX_RECORD_BYTES} are accepted",
                bytes.len()
            ),
        ));
    }
    f(bytes).map_err(|e| ApiError::invalid(field, e))
}

impl Opened {
    /// Whether the record's signature verifies under `key` (Ed25519, strict).
    pub(crate) fn verifies(&self, key: &crate::keys::PublicKey) -> bool {
        match &self.signed {
            Signed::Report(r) => r.verify_signature(key),
            Signed::Receipt(r) => r.verify_signature(key),
            Signed::Event(e) => e.verify_signature(key),
        }
    }

    /// Whether the record is about `sealed` (trip, version, hash; a receipt's seats).
    ///
    /// # Errors
    /// The core's [`RecordMismatch`].
    pub(crate) fn matches(&self, sealed: &SignedManifest) -> Result<(), RecordMismatch> {
        let sealed = std::slice::from_ref(sealed);
        match &self.signed {
            Signed::Report(r) => r.match_sealed(sealed).map(|_| ()),
            Signed::Receipt(r) => r.match_sealed(sealed).map(|_| ()),
            Signed::Event(e) => match &e.event.detail {
                EventDetail::Arrived { manifest_hash, .. } => {
                    match_sealed(e.event.trip_id, e.event.version, manifest_hash, sealed)
                        .map(|_| ())
                }
                // Opened only when arrived (`wire::open_arrival`).
                _ => Err(RecordMismatch::UnknownVersion {
                    trip_id: e.event.trip_id,
                    version: e.event.version,
                }),
            },
        }
    }

    /// Builds an opened record.
    pub(crate) fn new(
        signer: Province,
        kid: Kid,
        trip: TripId,
        version: u64,
        record: Record,
        signed: Signed,
    ) -> Opened {
        Opened {
            signer,
            kid,
            trip,
            version,
            record,
            signed,
        }
    }
}
