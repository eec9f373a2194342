//! The exposure notice (docs/tracing.md section 5): what a tracing node tells a fellow
//! traveller's issuing province, signed by the tracing node as an untagged COSE_Sign1
//! (Ed25519, protected `{1: -8, 4: kid}`, the manifest's envelope), sent as bytes over
//! federation (`SubmitTripRecordRequest.exposure_notice`).
//!
//! ```text
//! notice = [format, notice_id, from, to, trip_id, trip_origin, departure, seat, distance,
//!           crew, case_class, cti_prefix, subject_prefix, issued_at]
//! ```
//!
//! It carries exactly what the trip's manifest held about the fellow traveller (6 bytes of cti,
//! 4 of keyed subject hash, seat, crew) and what the tracer adds (the distance in seats, the
//! case's classification): no name, no document number, no full hash.

use super::SUBJECT_PREFIX_LEN;
use ciborium::value::Value;

use crate::cbor::uint;
use crate::code::cose;
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::manifest::record::{self, Envelope, RecordError};
use crate::manifest::{TripId, MAX_PEOPLE};
use crate::province::Province;
use crate::time::UnixTime;

/// The format version this module writes and reads (element 0).
pub const NOTICE_FORMAT: u64 = 1;
/// Elements of the notice array.
pub const NOTICE_FIELDS: usize = 14;
/// Length of a notice id, in bytes.
pub const NOTICE_ID_LEN: usize = 8;
/// Length of the cti prefix a notice carries (as the manifest holds it), in bytes.
pub const CTI_PREFIX_LEN: usize = 6;
/// Largest notice accepted, in COSE bytes: the largest valid one takes 155.
pub const MAX_NOTICE_BYTES: usize = 256;

/// A notice id: 8 random bytes chosen by the tracing node; the receiving node keeps one notice
/// per id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NoticeId(pub [u8; NOTICE_ID_LEN]);

impl std::fmt::Display for NoticeId {
    /// 16 lower-case hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// How the case's issuing province classified the case (WS/T diagnosis and treatment
/// protocol terms): 1 to 3, as `hcmr.v1.CaseClass` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseClass {
    /// A confirmed case.
    Confirmed = 1,
    /// An asymptomatic infection.
    Asymptomatic = 2,
    /// A suspected case.
    Suspected = 3,
}

impl CaseClass {
    /// The class of a number 1 to 3; `None` otherwise.
    pub fn from_number(n: u64) -> Option<CaseClass> {
        Some(match n {
            1 => CaseClass::Confirmed,
            2 => CaseClass::Asymptomatic,
            3 => CaseClass::Suspected,
            _ => return None,
        })
    }

    /// `confirmed`, `asymptomatic` or `suspected`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseClass::Confirmed => "confirmed",
            CaseClass::Asymptomatic => "asymptomatic",
            CaseClass::Suspected => "suspected",
        }
    }
}

/// An exposure notice's content (docs/tracing.md section 5), in array order after the format
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureNotice {
    /// The notice, chosen by the tracing node.
    pub notice_id: NoticeId,
    /// The tracing province (the signer's).
    pub from: Province,
    /// The fellow traveller's issuing province: the notice's receiver.
    pub to: Province,
    /// The trip they shared.
    pub trip_id: TripId,
    /// The trip's origin province (its node signed the manifest).
    pub trip_origin: Province,
    /// The trip's planned departure.
    pub departure: UnixTime,
    /// The fellow traveller's seat on the manifest, 1 to 99.
    pub seat: u16,
    /// Seats between them and the case, `|seat - case seat|`: 0 to 98, and the case's seat
    /// (`seat` plus or minus it) is a seat.
    pub distance: u16,
    /// The fellow traveller was crew.
    pub crew: bool,
    /// The case's classification.
    pub case_class: CaseClass,
    /// The first 6 bytes of the fellow traveller's code's cti, as the manifest holds it.
    pub cti_prefix: [u8; CTI_PREFIX_LEN],
    /// The first 4 bytes of their keyed subject hash, as the manifest holds it.
    pub subject_prefix: [u8; SUBJECT_PREFIX_LEN],
    /// When the tracing node made the notice, by its clock.
    pub issued_at: UnixTime,
}

impl ExposureNotice {
    /// The payload: the array of section 5 in deterministic encoding (RFC 8949 section
    /// 4.2.1), starting with [`NOTICE_FORMAT`].
    pub fn to_cbor(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            uint(NOTICE_FORMAT),
            Value::Bytes(self.notice_id.0.to_vec()),
            uint(u64::from(self.from.code())),
            uint(u64::from(self.to.code())),
            Value::Bytes(self.trip_id.0.to_vec()),
            uint(u64::from(self.trip_origin.code())),
            uint(self.departure.secs()),
            uint(u64::from(self.seat)),
            uint(u64::from(self.distance)),
            Value::Bool(self.crew),
            uint(self.case_class as u64),
            Value::Bytes(self.cti_prefix.to_vec()),
            Value::Bytes(self.subject_prefix.to_vec()),
            uint(self.issued_at.secs()),
        ]))
    }

    /// Decodes and checks a payload: exactly one canonical array of 14 elements, each of its
    /// type and rule ([`ExposureNotice::check`]).
    ///
    /// # Errors
    /// A `record.*` [`RecordError`] naming the field (`format`, `notice_id`, `seat`, ...).
    pub fn from_cbor(bytes: &[u8]) -> Result<ExposureNotice, RecordError> {
        record::decode_array::<_, NOTICE_FIELDS>(bytes, "exposure_notice", |items| {
            let [format, id, from, to, trip_id, origin, departure, seat, distance, crew, class, cti, subject, issued_at] =
                items;
            let format = record::uint_of(format, "format")?;
            if format != NOTICE_FORMAT {
                return Err(RecordError::field(
                    "format",
                    format!("is {format}; version {NOTICE_FORMAT} is the only one defined"),
                ));
            }
            let Value::Bool(crew) = crew else {
                return Err(RecordError::field("crew", "is not a boolean"));
            };
            let class = record::uint_of(class, "case_class")?;
            let notice = ExposureNotice {
                notice_id: NoticeId(fixed(id, "notice_id")?),
                from: record::province(from, "from")?,
                to: record::province(to, "to")?,
                trip_id: record::trip_id(trip_id)?,
                trip_origin: record::province(origin, "trip_origin")?,
                departure: record::time(departure, "departure")?,
                seat: record::seat(seat, "seat")? as u16,
                distance: small_u16(distance, "distance")?,
                crew,
                case_class: CaseClass::from_number(class).ok_or_else(|| {
                    RecordError::field(
                        "case_class",
                        format!("is {class}; 1 (confirmed) to 3 (suspected) are defined"),
                    )
                })?,
                cti_prefix: fixed(cti, "cti_prefix")?,
                subject_prefix: fixed(subject, "subject_prefix")?,
                issued_at: record::time(issued_at, "issued_at")?,
            };
            notice.check()?;
            Ok(notice)
        })
    }

    /// Checks the rules the types do not hold: times at most 9999-12-31; seat 1 to 99;
    /// distance at most 98 with the case's seat (`seat` plus or minus `distance`) in 1 to 99.
    ///
    /// # Errors
    /// The first [`RecordError::Field`] met.
    pub fn check(&self) -> Result<(), RecordError> {
        for (t, field) in [(self.departure, "departure"), (self.issued_at, "issued_at")] {
            if t > UnixTime::MAX {
                return Err(RecordError::field(field, "is after the year 9999"));
            }
        }
        let max = MAX_PEOPLE as u16;
        if !(1..=max).contains(&self.seat) {
            return Err(RecordError::field(
                "seat",
                format!("is {}; seats are 1 to {max}", self.seat),
            ));
        }
        let below = self.seat > self.distance;
        let above = self.seat + self.distance <= max;
        if !below && !above {
            return Err(RecordError::field(
                "distance",
                format!(
                    "is {} from seat {}: the case's seat would not be 1 to {max}",
                    self.distance, self.seat
                ),
            ));
        }
        Ok(())
    }

    /// Signs the notice into its COSE_Sign1 bytes (untagged, protected `{1: -8, 4: kid}`).
    /// Deterministic (Ed25519, RFC 8032). The caller signs with its own province's key (`from`);
    /// a notice that breaks a rule ([`ExposureNotice::check`]) signs, but does not decode.
    pub fn sign(&self, key: &NodeKey) -> Vec<u8> {
        cose::sign(self.to_cbor(), key).bytes
    }
}

/// A byte string of exactly `N` bytes.
fn fixed<const N: usize>(v: Value, field: &'static str) -> Result<[u8; N], RecordError> {
    let b = record::bytes_of(v, field)?;
    b.as_slice()
        .try_into()
        .map_err(|_| RecordError::field(field, format!("has {} bytes; {N} are required", b.len())))
}

/// An unsigned integer up to 98 (a distance in seats).
fn small_u16(v: Value, field: &'static str) -> Result<u16, RecordError> {
    let n = record::uint_of(v, field)?;
    let max = MAX_PEOPLE as u64 - 1;
    if n > max {
        return Err(RecordError::field(
            field,
            format!("is {n}; at most {max} seats apart"),
        ));
    }
    Ok(n as u16)
}

/// A decoded exposure notice whose form is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct SignedExposureNotice {
    /// The content; trusted only once the signature verifies under a key of `from`.
    pub notice: ExposureNotice,
    envelope: Envelope,
    cose: Vec<u8>,
}

impl SignedExposureNotice {
    /// Decodes a notice's COSE bytes strictly: at most [`MAX_NOTICE_BYTES`], the code format's
    /// envelope rules, then the payload ([`ExposureNotice::from_cbor`]).
    ///
    /// # Errors
    /// The first [`RecordError`] met.
    pub fn decode(bytes: &[u8]) -> Result<SignedExposureNotice, RecordError> {
        let envelope = Envelope::parse(bytes, MAX_NOTICE_BYTES)?;
        let notice = ExposureNotice::from_cbor(&envelope.payload)?;
        Ok(SignedExposureNotice {
            notice,
            envelope,
            cose: bytes.to_vec(),
        })
    }

    /// The kid of the protected header: the caller picks the key by `notice.from` and it.
    pub fn kid(&self) -> Kid {
        self.envelope.kid
    }

    /// Whether the signature verifies under `key` (Ed25519, strict).
    pub fn verify_signature(&self, key: &PublicKey) -> bool {
        self.envelope.verify(key)
    }

    /// The COSE bytes as received (what the receiving node stores).
    pub fn cose_bytes(&self) -> &[u8] {
        &self.cose
    }
}

#[cfg(test)]
mod tests;
