//! The handover receipt and the refusal (docs/transport.md section 6): what the destination's
//! node tells the trip's origin at the factory gate, signed by the destination node as an
//! untagged COSE_Sign1 with the manifest's envelope, sent as bytes over federation.
//!
//! ```text
//! receipt = [trip_id, version, manifest_hash, destination, received_at, outcome, reason, people]
//! person  = [seat, present, measure, reason]
//! ```

use ciborium::value::Value;

use super::record::{self, Envelope, RecordError, RecordMismatch, MANIFEST_HASH_LEN};
use super::{SignedManifest, TripId, MAX_PEOPLE};
use crate::cbor::uint;
use crate::code::cose;
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;

/// Elements of the receipt array.
pub const RECEIPT_FIELDS: usize = 8;
/// Elements of a person's array.
pub const RECEIPT_PERSON_FIELDS: usize = 4;
/// Largest receipt accepted, in COSE bytes: 99 people with 200-byte reasons
/// and a 200-byte reason take 20,617.
pub const MAX_RECEIPT_BYTES: usize = 24 * 1024;

/// A reason in words: 0 to 200 bytes (UTF-8) under the manifest's text rule (no control or
/// bidirectional-control character; something visible unless empty). Staff write it: it must
/// hold no name or document number (PIPL), which a format cannot check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReasonText(String);

impl ReasonText {
    /// Most bytes of the text.
    pub const MAX_BYTES: usize = 200;

    /// Checks the text.
    ///
    /// # Errors
    /// [`RecordError::Field`] (`reason`) when too long or invisible;
    /// [`RecordError::TextCharacter`] for a refused character.
    pub fn new(s: impl Into<String>) -> Result<ReasonText, RecordError> {
        let s = s.into();
        record::check(&s, "reason", Self::MAX_BYTES, true)?;
        Ok(ReasonText(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Delivered (1) or refused (2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The vehicle was taken in; every person is confirmed or marked missing.
    Delivered = 1,
    /// The vehicle was refused, with a reason; a refusal lists no people.
    Refused = 2,
}

/// The measure taken for a person at arrival (0 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// None.
    None = 0,
    /// Health observation.
    Observation = 1,
    /// Quarantine.
    Quarantine = 2,
    /// Sent to hospital.
    Hospital = 3,
}

impl Measure {
    /// The measure of a number 0 to 3.
    pub fn from_number(n: u64) -> Option<Measure> {
        Some(match n {
            0 => Measure::None,
            1 => Measure::Observation,
            2 => Measure::Quarantine,
            3 => Measure::Hospital,
            _ => return None,
        })
    }
}

/// One person at the handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPerson {
    /// Their seat on the manifest version (1-based).
    pub seat: usize,
    /// Confirmed (true) or missing (false).
    pub present: bool,
    /// The measure taken; [`Measure::None`] for a missing person.
    pub measure: Measure,
    /// Why, in words (may be empty).
    pub reason: ReasonText,
}

/// A handover receipt's or refusal's content (docs/transport.md section 6), in array order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The trip.
    pub trip_id: TripId,
    /// The version handed over.
    pub version: u64,
    /// SHA-256 of that version's COSE bytes ([`super::manifest_hash`]).
    pub manifest_hash: [u8; MANIFEST_HASH_LEN],
    /// The destination node's province (the signer's).
    pub destination: Province,
    /// When the vehicle was received or refused, by the destination node's clock.
    pub received_at: UnixTime,
    /// Delivered or refused.
    pub outcome: Outcome,
    /// Why, in words: required for a refusal, may be empty for a delivery.
    pub reason: ReasonText,
    /// For a delivery, 1 to 99 people in strictly increasing seat order; none for a refusal.
    pub people: Vec<ReceiptPerson>,
}

impl Receipt {
    /// The payload: the array of section 6 in deterministic encoding (RFC 8949 section
    /// 4.2.1).
    pub fn to_cbor(&self) -> Vec<u8> {
        let people = self
            .people
            .iter()
            .map(|p| {
                Value::Array(vec![
                    uint(p.seat as u64),
                    Value::Bool(p.present),
                    uint(p.measure as u64),
                    Value::Text(p.reason.as_str().to_string()),
                ])
            })
            .collect();
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.trip_id.0.to_vec()),
            uint(self.version),
            Value::Bytes(self.manifest_hash.to_vec()),
            uint(u64::from(self.destination.code())),
            uint(self.received_at.secs()),
            uint(self.outcome as u64),
            Value::Text(self.reason.as_str().to_string()),
            Value::Array(people),
        ]))
    }

    /// Decodes and checks a payload: exactly one canonical array of 8 elements, each of its
    /// type and rule ([`Receipt::check`]).
    ///
    /// # Errors
    /// A `record.*` [`RecordError`] naming the field.
    pub fn from_cbor(bytes: &[u8]) -> Result<Receipt, RecordError> {
        record::decode_array::<_, RECEIPT_FIELDS>(bytes, "receipt", |items| {
            let [trip_id, version, hash, destination, received_at, outcome, reason, people] = items;
            let receipt = Receipt {
                trip_id: record::trip_id(trip_id)?,
                version: record::version(version)?,
                manifest_hash: record::hash(hash)?,
                destination: record::province(destination, "destination")?,
                received_at: record::time(received_at, "received_at")?,
                outcome: match record::small(outcome, "outcome", 1, 2)? {
                    1 => Outcome::Delivered,
                    _ => Outcome::Refused,
                },
                reason: reason_text(reason)?,
                people: record::list(people, "people", MAX_PEOPLE)?
                    .into_iter()
                    .map(person)
                    .collect::<Result<_, _>>()?,
            };
            receipt.check()?;
            Ok(receipt)
        })
    }

    /// Checks the rules the types do not hold: version at least 1, `received_at` at most
    /// 9999-12-31; a refusal has a reason and no people; a delivery has 1 to 99 people in
    /// strictly increasing seat order (1 to 99), a missing person with no measure.
    ///
    /// # Errors
    /// The first [`RecordError::Field`] met.
    pub fn check(&self) -> Result<(), RecordError> {
        use RecordError as E;
        if self.version == 0 {
            return Err(E::field("version", "is 0; the first seal is version 1"));
        }
        if self.received_at > UnixTime::MAX {
            return Err(E::field("received_at", "is after the year 9999"));
        }
        match self.outcome {
            Outcome::Refused if self.reason.is_empty() => {
                return Err(E::field("reason", "is empty for a refusal"))
            }
            Outcome::Refused if !self.people.is_empty() => {
                return Err(E::field("people", "is not empty for a refusal"))
            }
            Outcome::Refused => return Ok(()),
            Outcome::Delivered if self.people.is_empty() => {
                return Err(E::field("people", "is empty for a delivery"))
            }
            Outcome::Delivered => {}
        }
        if self.people.len() > MAX_PEOPLE {
            return Err(E::field(
                "people",
                format!("has {} people; at most {MAX_PEOPLE}", self.people.len()),
            ));
        }
        let mut last = 0;
        for p in &self.people {
            if !(1..=MAX_PEOPLE).contains(&p.seat) {
                return Err(E::field(
                    "seat",
                    format!("is {}; seats are 1 to {MAX_PEOPLE}", p.seat),
                ));
            }
            if p.seat <= last {
                return Err(E::field(
                    "seat",
                    format!(
                        "{} follows seat {last}; seats are listed once, in order",
                        p.seat
                    ),
                ));
            }
            last = p.seat;
            if !p.present && p.measure != Measure::None {
                return Err(E::field(
                    "measure",
                    format!(
                        "is {} for the missing person at seat {}",
                        p.measure as u8, p.seat
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Signs the receipt into its COSE_Sign1 bytes (untagged, protected `{1: -8, 4: kid}`,
    /// the manifest's envelope). Deterministic (Ed25519, RFC 8032). The caller signs with the
    /// destination's key; a receipt that breaks a rule ([`Receipt::check`]) signs, but does not
    /// decode.
    pub fn sign(&self, key: &NodeKey) -> Vec<u8> {
        cose::sign(self.to_cbor(), key).bytes
    }
}

fn reason_text(v: Value) -> Result<ReasonText, RecordError> {
    record::text(v, "reason", ReasonText::MAX_BYTES, true).map(ReasonText)
}

fn person(v: Value) -> Result<ReceiptPerson, RecordError> {
    let [seat, present, measure, reason] = record::array_of::<RECEIPT_PERSON_FIELDS>(v, "person")?;
    let Value::Bool(present) = present else {
        return Err(RecordError::field("present", "is not a boolean"));
    };
    let n = record::uint_of(measure, "measure")?;
    Ok(ReceiptPerson {
        seat: record::seat(seat, "seat")?,
        present,
        measure: Measure::from_number(n)
            .ok_or_else(|| RecordError::field("measure", format!("is {n}; 0 to 3 are defined")))?,
        reason: reason_text(reason)?,
    })
}

/// A decoded receipt or refusal whose form is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct SignedReceipt {
    /// The content; trusted only once the signature verifies under a key of `destination`.
    pub receipt: Receipt,
    envelope: Envelope,
    cose: Vec<u8>,
}

impl SignedReceipt {
    /// Decodes a receipt's COSE bytes strictly: at most [`MAX_RECEIPT_BYTES`], the code
    /// format's envelope rules, then the payload ([`Receipt::from_cbor`]).
    ///
    /// # Errors
    /// The first [`RecordError`] met.
    pub fn decode(bytes: &[u8]) -> Result<SignedReceipt, RecordError> {
        let envelope = Envelope::parse(bytes, MAX_RECEIPT_BYTES)?;
        let receipt = Receipt::from_cbor(&envelope.payload)?;
        Ok(SignedReceipt {
            receipt,
            envelope,
            cose: bytes.to_vec(),
        })
    }

    /// The kid of the protected header: the caller picks the key by `receipt.destination` and
    /// it.
    pub fn kid(&self) -> Kid {
        self.envelope.kid
    }

    /// Whether the signature verifies under `key` (Ed25519, strict).
    pub fn verify_signature(&self, key: &PublicKey) -> bool {
        self.envelope.verify(key)
    }

    /// The COSE bytes as received (what the origin stores).
    pub fn cose_bytes(&self) -> &[u8] {
        &self.cose
    }

    /// The version among `sealed` (the origin's sealed manifests) this receipt is about, when
    /// its trip, version and hash match and every seat it names is on that version.
    ///
    /// # Errors
    /// [`RecordMismatch`], the first met.
    pub fn match_sealed<'a>(
        &self,
        sealed: &'a [SignedManifest],
    ) -> Result<&'a SignedManifest, RecordMismatch> {
        let r = &self.receipt;
        let m = record::match_sealed(r.trip_id, r.version, &r.manifest_hash, sealed)?;
        let people = m.manifest.people.len();
        if let Some(p) = r.people.iter().find(|p| p.seat > people) {
            return Err(RecordMismatch::Seat {
                seat: p.seat,
                version: r.version,
                people,
            });
        }
        Ok(m)
    }
}
