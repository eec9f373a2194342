//! What the check report and the handover receipt (docs/transport.md section 6) share: the
//! envelope (the code format's COSE_Sign1, as manifests use it), the strict decoding of their
//! fields, their errors, `manifest_hash`, and how the origin matches a record with the versions
//! it sealed.

use ciborium::value::Value;
use sha2::{Digest, Sha256};

use super::text::{check_text, TextFault};
use super::{SignedManifest, TripId, TRIP_ID_LEN};
use crate::code::{cose, CodeError};
use crate::keys::{Kid, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;

/// Length of a `manifest_hash`: SHA-256.
pub const MANIFEST_HASH_LEN: usize = 32;

/// SHA-256 of a manifest's COSE_Sign1 bytes (docs/transport.md section 6): what a report or
/// receipt names the version it saw by.
pub fn manifest_hash(manifest: &SignedManifest) -> [u8; MANIFEST_HASH_LEN] {
    Sha256::digest(manifest.cose_bytes()).into()
}

/// Why bytes are not a well-formed check report or handover receipt (docs/transport.md
/// section 6). [`RecordError::code`] gives a stable dotted identifier (`record.field`, ...);
/// COSE faults keep the code format's identifiers (`cose.algorithm`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// More bytes than the record's bound.
    #[error("record: {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The bound of this kind of record.
        max: usize,
    },
    /// A COSE_Sign1 fault: a [`CodeError`] of the `cbor.*` or `cose.*` family (untagged,
    /// canonical, `{1: -8, 4: kid}`, empty unprotected header, a 64-byte signature).
    #[error("{0}")]
    Cose(CodeError),
    /// The payload is not well-formed CBOR.
    #[error("record: CBOR not well-formed: {0}")]
    Cbor(String),
    /// Bytes after the payload's one item.
    #[error("record: {0} bytes after the record array")]
    CborTrailing(usize),
    /// Well-formed CBOR in another encoding than the encoder's (indefinite length, chunked
    /// string, a longer head than needed).
    #[error(
        "record: not in canonical form at byte {0}: hcmr writes definite lengths, unchunked \
         strings and the shortest head of each item"
    )]
    NotCanonical(usize),
    /// The payload, or one of its inner arrays, is not an array of the right length.
    #[error("record: {what} must be an array of {expected} elements; {found}")]
    NotArray {
        /// `report`, `receipt`, `reason`, `person`.
        what: &'static str,
        /// Elements required.
        expected: usize,
        /// What was found, in words.
        found: String,
    },
    /// A field of the wrong CBOR type, or a value outside its rule.
    #[error("record: {field} {why}")]
    Field {
        /// The field, as docs/transport.md section 6 names it (`manifest_hash`, `measure`, ...).
        field: &'static str,
        /// What is wrong, in words.
        why: String,
    },
    /// A control or bidirectional-control character in a text field.
    #[error(
        "record: {field} has the character {} at position {position}, which is not allowed \
         (control and bidirectional-control characters)",
        crate::identity::code_point(*ch)
    )]
    TextCharacter {
        /// `checkpoint` or `reason`.
        field: &'static str,
        /// The character.
        ch: char,
        /// Its position in the text, counting characters from 1.
        position: usize,
    },
}

impl RecordError {
    /// A stable dotted identifier of the fault; COSE faults give the code format's.
    pub fn code(&self) -> &'static str {
        use RecordError::*;
        match self {
            TooLarge { .. } => "record.too_large",
            Cose(e) => e.code(),
            Cbor(_) => "record.cbor",
            CborTrailing(_) => "record.trailing",
            NotCanonical(_) => "record.not_canonical",
            NotArray { .. } => "record.not_array",
            Field { .. } => "record.field",
            TextCharacter { .. } => "record.character",
        }
    }

    pub(crate) fn field(field: &'static str, why: impl Into<String>) -> Self {
        RecordError::Field {
            field,
            why: why.into(),
        }
    }
}

impl From<crate::cbor::CborError> for RecordError {
    fn from(e: crate::cbor::CborError) -> Self {
        match e {
            crate::cbor::CborError::Malformed(why) => RecordError::Cbor(why),
            crate::cbor::CborError::Trailing(n) => RecordError::CborTrailing(n),
        }
    }
}

/// Why a decoded record does not belong to what the origin sealed ([`match_sealed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordMismatch {
    /// The origin sealed no version of this trip (or another trip than the one asked).
    #[error("no sealed version of trip {0}")]
    UnknownTrip(TripId),
    /// The trip is known, but not this version.
    #[error("trip {trip_id} has no sealed version {version}")]
    UnknownVersion {
        /// The trip.
        trip_id: TripId,
        /// The version the record names.
        version: u64,
    },
    /// The version is known, but the record's hash is not of its COSE bytes.
    #[error("the manifest hash does not match version {0} as sealed")]
    Hash(u64),
    /// A receipt names a seat the version does not have.
    #[error("seat {seat} is not on version {version} ({people} people)")]
    Seat {
        /// The seat named.
        seat: usize,
        /// The version.
        version: u64,
        /// People on that version.
        people: usize,
    },
}

/// The version among `sealed` (the origin's sealed versions of any trips) that a record naming
/// (`trip_id`, `version`, `hash`) is about: same trip, same version, and `hash` the SHA-256 of
/// its COSE bytes. Pure; the receipt adds its seat check ([`super::SignedReceipt::match_sealed`]).
///
/// # Errors
/// [`RecordMismatch::UnknownTrip`], [`RecordMismatch::UnknownVersion`] or
/// [`RecordMismatch::Hash`].
pub fn match_sealed<'a>(
    trip_id: TripId,
    version: u64,
    hash: &[u8; MANIFEST_HASH_LEN],
    sealed: &'a [SignedManifest],
) -> Result<&'a SignedManifest, RecordMismatch> {
    if !sealed.iter().any(|m| m.manifest.trip_id == trip_id) {
        return Err(RecordMismatch::UnknownTrip(trip_id));
    }
    let m = sealed
        .iter()
        .find(|m| m.manifest.trip_id == trip_id && m.manifest.version == version)
        .ok_or(RecordMismatch::UnknownVersion { trip_id, version })?;
    if manifest_hash(m) != *hash {
        return Err(RecordMismatch::Hash(version));
    }
    Ok(m)
}

/// A record's envelope, parsed: kid, payload and what the signature covers.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub kid: Kid,
    pub payload: Vec<u8>,
    to_be_signed: Vec<u8>,
    signature: [u8; 64],
}

impl Envelope {
    /// Parses COSE bytes of at most `max` bytes with the code format's envelope rules.
    pub fn parse(bytes: &[u8], max: usize) -> Result<Envelope, RecordError> {
        if bytes.len() > max {
            return Err(RecordError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        let p = cose::parse(bytes).map_err(RecordError::Cose)?;
        Ok(Envelope {
            kid: p.kid,
            payload: p.payload,
            to_be_signed: p.to_be_signed,
            signature: p.signature,
        })
    }

    /// Whether the signature verifies under `key` (Ed25519, strict).
    pub fn verify(&self, key: &PublicKey) -> bool {
        crate::keys::verify_signature(key, &self.to_be_signed, &self.signature)
    }
}

/// Decodes a payload as exactly one canonical array of `N` elements, then `fields` on them;
/// a canonical-form fault is reported only when the fields are otherwise valid.
pub(crate) fn decode_array<T, const N: usize>(
    bytes: &[u8],
    what: &'static str,
    fields: impl FnOnce([Value; N]) -> Result<T, RecordError>,
) -> Result<T, RecordError> {
    let value = crate::cbor::decode_exact(bytes)?;
    let not_canonical = crate::cbor::first_non_canonical_byte(&value, bytes);
    let items = array_of::<N>(value, what)?;
    let t = fields(items)?;
    if let Some(offset) = not_canonical {
        return Err(RecordError::NotCanonical(offset));
    }
    Ok(t)
}

/// The `N` elements of an array named `what`.
pub(crate) fn array_of<const N: usize>(
    v: Value,
    what: &'static str,
) -> Result<[Value; N], RecordError> {
    let not_array = |found: String| RecordError::NotArray {
        what,
        expected: N,
        found,
    };
    let Value::Array(items) = v else {
        return Err(not_array("it is another CBOR item".into()));
    };
    let n = items.len();
    <[Value; N]>::try_from(items).map_err(|_| not_array(format!("it has {n}")))
}

/// The elements of an array field of at most `max` elements.
pub(crate) fn list(v: Value, field: &'static str, max: usize) -> Result<Vec<Value>, RecordError> {
    let Value::Array(items) = v else {
        return Err(RecordError::field(field, "is not an array"));
    };
    if items.len() > max {
        return Err(RecordError::field(
            field,
            format!("has {} elements; at most {max}", items.len()),
        ));
    }
    Ok(items)
}

pub(crate) fn trip_id(v: Value) -> Result<TripId, RecordError> {
    let b = bytes_of(v, "trip_id")?;
    let id: [u8; TRIP_ID_LEN] = b.as_slice().try_into().map_err(|_| {
        RecordError::field(
            "trip_id",
            format!("has {} bytes; {TRIP_ID_LEN} are required", b.len()),
        )
    })?;
    Ok(TripId(id))
}

pub(crate) fn version(v: Value) -> Result<u64, RecordError> {
    match uint_of(v, "version")? {
        0 => Err(RecordError::field(
            "version",
            "is 0; the first seal is version 1",
        )),
        n => Ok(n),
    }
}

pub(crate) fn hash(v: Value) -> Result<[u8; MANIFEST_HASH_LEN], RecordError> {
    let b = bytes_of(v, "manifest_hash")?;
    b.as_slice().try_into().map_err(|_| {
        RecordError::field(
            "manifest_hash",
            format!(
                "has {} bytes; {MANIFEST_HASH_LEN} are required (SHA-256)",
                b.len()
            ),
        )
    })
}

pub(crate) fn bytes_of(v: Value, field: &'static str) -> Result<Vec<u8>, RecordError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(RecordError::field(field, "is not a byte string")),
    }
}

pub(crate) fn uint_of(v: Value, field: &'static str) -> Result<u64, RecordError> {
    crate::cbor::as_u64(&v).ok_or_else(|| RecordError::field(field, "is not an unsigned integer"))
}

/// A time in whole seconds up to 9999-12-31.
pub(crate) fn time(v: Value, field: &'static str) -> Result<UnixTime, RecordError> {
    let t = uint_of(v, field)?;
    if t > UnixTime::MAX.secs() {
        return Err(RecordError::field(field, "is after the year 9999"));
    }
    Ok(UnixTime::from_secs(t))
}

/// A province-level GB/T 2260 code.
pub(crate) fn province(v: Value, field: &'static str) -> Result<Province, RecordError> {
    let n = uint_of(v, field)?;
    u32::try_from(n)
        .ok()
        .and_then(|c| Province::from_code(c).ok())
        .ok_or_else(|| {
            RecordError::field(field, format!("{n} is not a province-level GB/T 2260 code"))
        })
}

/// A number `1..=max` naming one variant of an enumeration.
pub(crate) fn small(v: Value, field: &'static str, min: u64, max: u64) -> Result<u8, RecordError> {
    let n = uint_of(v, field)?;
    if !(min..=max).contains(&n) {
        return Err(RecordError::field(
            field,
            format!("is {n}; {min} to {max} are defined"),
        ));
    }
    Ok(n as u8)
}

/// A seat, 1 to [`super::MAX_PEOPLE`].
pub(crate) fn seat(v: Value, field: &'static str) -> Result<usize, RecordError> {
    let n = uint_of(v, field)?;
    if !(1..=super::MAX_PEOPLE as u64).contains(&n) {
        return Err(RecordError::field(
            field,
            format!("is {n}; seats are 1 to {}", super::MAX_PEOPLE),
        ));
    }
    Ok(n as usize)
}

/// A text of at most `max` bytes under the manifest's text rule; empty only when `may_be_empty`.
pub(crate) fn text(
    v: Value,
    field: &'static str,
    max: usize,
    may_be_empty: bool,
) -> Result<String, RecordError> {
    let Value::Text(s) = v else {
        return Err(RecordError::field(field, "is not a text string"));
    };
    check(&s, field, max, may_be_empty)?;
    Ok(s)
}

/// [`check_text`] as a [`RecordError`] naming `field`.
pub(crate) fn check(
    s: &str,
    field: &'static str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), RecordError> {
    check_text(s, max, may_be_empty).map_err(|fault| match fault {
        TextFault::TooLong(n) => RecordError::field(field, format!("has {n} bytes; at most {max}")),
        TextFault::Character { ch, position } => RecordError::TextCharacter {
            field,
            ch,
            position,
        },
        TextFault::Invisible if s.is_empty() => RecordError::field(field, "is empty"),
        TextFault::Invisible => RecordError::field(field, "has no visible character"),
    })
}

/// `v` or null.
pub(crate) fn nullable<T>(
    v: Value,
    f: impl FnOnce(Value) -> Result<T, RecordError>,
) -> Result<Option<T>, RecordError> {
    match v {
        Value::Null => Ok(None),
        v => f(v).map(Some),
    }
}
