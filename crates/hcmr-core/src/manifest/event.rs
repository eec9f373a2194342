//! The signed trip event (docs/tracing.md section 2): what a node records of a trip that no other
//! signed object of the trip says (its creation, a boarding, a removal, its cancellation at the
//! origin; the check-in at the destination), signed by that node as an untagged COSE_Sign1 with
//! the manifest's envelope (`{1: -8, 4: kid}`, Ed25519), stored as bytes.
//!
//! ```text
//! event    = [format, trip_id, kind, at, recorder, seat, version, detail]
//! created  = [vehicle, origin, destination, departure, arrival]
//! boarded  = [issuer, status, crew]
//! removed  = [reason]
//! cancelled= []
//! arrived  = [checkpoint, manifest_hash]
//! ```
//! A boarding names the person by seat, issuing province, status and crew flag only: less than
//! the manifest itself holds (no subject hash, no cti, no name).

use ciborium::value::Value;

use super::record::{self, Envelope, RecordError, MANIFEST_HASH_LEN};
use super::{province_of, Checkpoint, ReasonText, TripId, Vehicle, MAX_PEOPLE};
use crate::cbor::uint;
use crate::code::cose;
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::status::HealthStatus;
use crate::time::UnixTime;

/// The format version written in element 0 of every event.
pub const EVENT_FORMAT: u64 = 1;
/// Elements of the event array.
pub const EVENT_FIELDS: usize = 8;
/// Largest event accepted, in COSE bytes: the largest (a removal with a 200-byte reason) takes
/// about 330.
pub const MAX_EVENT_BYTES: usize = 1024;

/// What a trip event records; the numbers are those of `TripEventKind` in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// The origin created the trip.
    Created = 1,
    /// The origin boarded a person.
    Boarded = 2,
    /// The origin took a person off.
    Removed = 3,
    /// The origin cancelled the trip (never sealed).
    Cancelled = 5,
    /// The destination checked the trip in.
    Arrived = 7,
}

impl EventKind {
    /// The kind of a number (1, 2, 3, 5 or 7); `None` for another.
    pub fn from_number(n: u64) -> Option<EventKind> {
        Some(match n {
            1 => EventKind::Created,
            2 => EventKind::Boarded,
            3 => EventKind::Removed,
            5 => EventKind::Cancelled,
            7 => EventKind::Arrived,
            _ => return None,
        })
    }

    /// Its name in docs/tracing.md (`created`, `boarded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Boarded => "boarded",
            EventKind::Removed => "removed",
            EventKind::Cancelled => "cancelled",
            EventKind::Arrived => "arrived",
        }
    }
}

/// The kind-specific part of an event (element 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDetail {
    /// The trip as created: vehicle, GB/T 2260 codes of the origin (county) and destination,
    /// planned departure and arrival.
    Created {
        /// Plate or train and carriage.
        vehicle: Vehicle,
        /// Six-digit GB/T 2260 code of the departure county.
        origin: u32,
        /// Six-digit GB/T 2260 code of the destination.
        destination: u32,
        /// Planned departure.
        departure: UnixTime,
        /// Planned arrival.
        arrival: UnixTime,
    },
    /// A person boarded (their seat is the event's): the code's issuing province, the status
    /// as verified at boarding, crew or passenger.
    Boarded {
        /// The code's issuing province.
        issuer: Province,
        /// The status as verified (after the agreement's mapping).
        status: HealthStatus,
        /// Crew rather than passenger.
        crew: bool,
    },
    /// A person was taken off (their seat is the event's), with the organizer's reason (may be
    /// empty; never a name).
    Removed {
        /// Why, in words.
        reason: ReasonText,
    },
    /// The trip was cancelled.
    Cancelled,
    /// The destination checked in a version (the event's) at a reception point.
    Arrived {
        /// The reception point, as the receiver named it.
        checkpoint: Checkpoint,
        /// SHA-256 of the manifest's COSE bytes checked in ([`super::manifest_hash`]).
        manifest_hash: [u8; MANIFEST_HASH_LEN],
    },
}

impl EventDetail {
    /// The kind this detail belongs to.
    pub fn kind(&self) -> EventKind {
        match self {
            EventDetail::Created { .. } => EventKind::Created,
            EventDetail::Boarded { .. } => EventKind::Boarded,
            EventDetail::Removed { .. } => EventKind::Removed,
            EventDetail::Cancelled => EventKind::Cancelled,
            EventDetail::Arrived { .. } => EventKind::Arrived,
        }
    }
}

/// A trip event's content (docs/tracing.md section 2), in array order (the kind is the
/// detail's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripEvent {
    /// The trip.
    pub trip_id: TripId,
    /// When, seconds since the Unix epoch (UTC), by the recorder's clock.
    pub at: UnixTime,
    /// The recording node's province (the signer's).
    pub recorder: Province,
    /// The seat concerned (a boarding or a removal, 1 to 99); 0 for none.
    pub seat: u8,
    /// The manifest version concerned (the latest sealed at a boarding or removal, the one
    /// checked in at arrival); 0 for none.
    pub version: u64,
    /// What happened.
    pub detail: EventDetail,
}

impl TripEvent {
    /// The kind.
    pub fn kind(&self) -> EventKind {
        self.detail.kind()
    }

    /// The payload: the array of docs/tracing.md section 2 in deterministic encoding (RFC 8949
    /// section 4.2.1).
    pub fn to_cbor(&self) -> Vec<u8> {
        let detail = match &self.detail {
            EventDetail::Created {
                vehicle,
                origin,
                destination,
                departure,
                arrival,
            } => vec![
                Value::Text(vehicle.as_str().to_string()),
                uint(u64::from(*origin)),
                uint(u64::from(*destination)),
                uint(departure.secs()),
                uint(arrival.secs()),
            ],
            EventDetail::Boarded {
                issuer,
                status,
                crew,
            } => vec![
                uint(u64::from(issuer.code())),
                uint(status.to_u64()),
                Value::Bool(*crew),
            ],
            EventDetail::Removed { reason } => vec![Value::Text(reason.as_str().to_string())],
            EventDetail::Cancelled => vec![],
            EventDetail::Arrived {
                checkpoint,
                manifest_hash,
            } => vec![
                Value::Text(checkpoint.as_str().to_string()),
                Value::Bytes(manifest_hash.to_vec()),
            ],
        };
        crate::cbor::encode(&Value::Array(vec![
            uint(EVENT_FORMAT),
            Value::Bytes(self.trip_id.0.to_vec()),
            uint(self.kind() as u64),
            uint(self.at.secs()),
            uint(u64::from(self.recorder.code())),
            uint(u64::from(self.seat)),
            uint(self.version),
            Value::Array(detail),
        ]))
    }

    /// Decodes and checks a payload: exactly one canonical array of 8 elements, format 1, each
    /// field of its type and rule ([`TripEvent::check`]).
    ///
    /// # Errors
    /// A `record.*` [`RecordError`] naming the field (`format`, `kind`, `detail`, ...).
    pub fn from_cbor(bytes: &[u8]) -> Result<TripEvent, RecordError> {
        record::decode_array::<_, EVENT_FIELDS>(bytes, "event", |items| {
            let [format, trip_id, kind, at, recorder, seat, version, detail] = items;
            let format = record::uint_of(format, "format")?;
            if format != EVENT_FORMAT {
                return Err(RecordError::field(
                    "format",
                    format!("is {format}; this node reads format {EVENT_FORMAT}"),
                ));
            }
            let trip_id = record::trip_id(trip_id)?;
            let n = record::uint_of(kind, "kind")?;
            let kind = EventKind::from_number(n).ok_or_else(|| {
                RecordError::field("kind", format!("is {n}; 1, 2, 3, 5 and 7 are defined"))
            })?;
            let at = record::time(at, "at")?;
            let recorder = record::province(recorder, "recorder")?;
            let seat = record::uint_of(seat, "seat")?;
            let seat = u8::try_from(seat)
                .ok()
                .filter(|s| usize::from(*s) <= MAX_PEOPLE)
                .ok_or_else(|| {
                    RecordError::field("seat", format!("is {seat}; 0 or 1 to {MAX_PEOPLE}"))
                })?;
            let version = record::uint_of(version, "version")?;
            let detail = decode_detail(kind, detail)?;
            let event = TripEvent {
                trip_id,
                at,
                recorder,
                seat,
                version,
                detail,
            };
            event.check()?;
            Ok(event)
        })
    }

    /// Checks the rules the types do not hold: a boarding or removal names a seat, the other
    /// kinds none; an arrival names a version; the created trip's codes are six-digit GB/T
    /// 2260 codes and its arrival is after its departure.
    ///
    /// # Errors
    /// The first [`RecordError::Field`] met.
    pub fn check(&self) -> Result<(), RecordError> {
        let needs_seat = matches!(self.kind(), EventKind::Boarded | EventKind::Removed);
        if needs_seat != (self.seat != 0) {
            return Err(RecordError::field(
                "seat",
                if needs_seat {
                    format!("is 0; a {} event names a seat", self.kind().as_str())
                } else {
                    format!(
                        "is {}; a {} event names none",
                        self.seat,
                        self.kind().as_str()
                    )
                },
            ));
        }
        if self.kind() == EventKind::Arrived && self.version == 0 {
            return Err(RecordError::field(
                "version",
                "is 0; an arrival names the version checked in",
            ));
        }
        if let EventDetail::Created {
            origin,
            destination,
            departure,
            arrival,
            ..
        } = &self.detail
        {
            for (code, field) in [(*origin, "origin"), (*destination, "destination")] {
                province_of(code, field).map_err(|e| RecordError::field(field, e.to_string()))?;
            }
            if arrival <= departure {
                return Err(RecordError::field("arrival", "is not after departure"));
            }
        }
        Ok(())
    }

    /// Signs the event into its COSE_Sign1 bytes (untagged, protected `{1: -8, 4: kid}`).
    /// Deterministic (Ed25519, RFC 8032). The caller signs with its own province's key, which
    /// is `recorder`.
    pub fn sign(&self, key: &NodeKey) -> Vec<u8> {
        cose::sign(self.to_cbor(), key).bytes
    }
}

fn decode_detail(kind: EventKind, v: Value) -> Result<EventDetail, RecordError> {
    Ok(match kind {
        EventKind::Created => {
            let [vehicle, origin, destination, departure, arrival] =
                record::array_of::<5>(v, "detail")?;
            let code = |v: Value, field: &'static str| -> Result<u32, RecordError> {
                let n = record::uint_of(v, field)?;
                u32::try_from(n).map_err(|_| {
                    RecordError::field(field, format!("{n} is not a six-digit GB/T 2260 code"))
                })
            };
            let vehicle = record::text(vehicle, "vehicle", Vehicle::MAX_BYTES, false)?;
            EventDetail::Created {
                vehicle: Vehicle::new(vehicle)
                    .map_err(|e| RecordError::field("vehicle", e.to_string()))?,
                origin: code(origin, "origin")?,
                destination: code(destination, "destination")?,
                departure: record::time(departure, "departure")?,
                arrival: record::time(arrival, "arrival")?,
            }
        }
        EventKind::Boarded => {
            let [issuer, status, crew] = record::array_of::<3>(v, "detail")?;
            let n = record::uint_of(status, "status")?;
            EventDetail::Boarded {
                issuer: record::province(issuer, "issuer")?,
                status: HealthStatus::from_u64(n).ok_or_else(|| {
                    RecordError::field("status", format!("is {n}; 1 to 3 are defined"))
                })?,
                crew: match crew {
                    Value::Bool(b) => b,
                    _ => return Err(RecordError::field("crew", "is not a boolean")),
                },
            }
        }
        EventKind::Removed => {
            let [reason] = record::array_of::<1>(v, "detail")?;
            EventDetail::Removed {
                reason: ReasonText::new(record::text(
                    reason,
                    "reason",
                    ReasonText::MAX_BYTES,
                    true,
                )?)?,
            }
        }
        EventKind::Cancelled => {
            let [] = record::array_of::<0>(v, "detail")?;
            EventDetail::Cancelled
        }
        EventKind::Arrived => {
            let [checkpoint, hash] = record::array_of::<2>(v, "detail")?;
            EventDetail::Arrived {
                checkpoint: Checkpoint::new(record::text(
                    checkpoint,
                    "checkpoint",
                    Checkpoint::MAX_BYTES,
                    false,
                )?)?,
                manifest_hash: record::hash(hash)?,
            }
        }
    })
}

/// A decoded trip event whose form is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct SignedTripEvent {
    /// The content; trusted only once the signature verifies under a key of `recorder`.
    pub event: TripEvent,
    envelope: Envelope,
    cose: Vec<u8>,
}

impl SignedTripEvent {
    /// Decodes an event's COSE bytes strictly: at most [`MAX_EVENT_BYTES`], the code format's
    /// envelope rules, then the payload ([`TripEvent::from_cbor`]).
    ///
    /// # Errors
    /// The first [`RecordError`] met.
    pub fn decode(bytes: &[u8]) -> Result<SignedTripEvent, RecordError> {
        let envelope = Envelope::parse(bytes, MAX_EVENT_BYTES)?;
        let event = TripEvent::from_cbor(&envelope.payload)?;
        Ok(SignedTripEvent {
            event,
            envelope,
            cose: bytes.to_vec(),
        })
    }

    /// The kid of the protected header: the caller picks the key by `event.recorder` and it.
    pub fn kid(&self) -> Kid {
        self.envelope.kid
    }

    /// Whether the signature verifies under `key` (Ed25519, strict).
    pub fn verify_signature(&self, key: &PublicKey) -> bool {
        self.envelope.verify(key)
    }

    /// The COSE bytes as decoded.
    pub fn cose_bytes(&self) -> &[u8] {
        &self.cose
    }
}
