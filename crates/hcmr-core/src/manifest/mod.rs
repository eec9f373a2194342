//! The trip manifest (docs/transport.md sections 2 and 3): a vehicle's passenger list, signed
//! by the origin province's node as an untagged COSE_Sign1 (Ed25519), Base45-encoded and
//! prefixed with `HCMRT1:`, so that a checkpoint checks a whole vehicle with one scan.
//!
//! ```text
//! sign:   Manifest --CBOR array--> COSE_Sign1 {1: -8, 4: kid} --> Base45 --> "HCMRT1:" + text
//! decode: the reverse, strictly, each stage with its own errors (see [`ManifestError`])
//! ```
//! Decoding does not verify the signature (that needs the origin's key, which the trust
//! snapshot holds): [`SignedManifest::verify_signature`] does, once a key is chosen. The
//! checkpoint decision (section 5) is [`check()`]. The records sent back to the origin (section
//! 6) are the check report ([`CheckReport`]) and the handover receipt or refusal ([`Receipt`]).

mod check;
mod encoding;
mod error;
mod explain;
mod person;
mod receipt;
mod record;
mod report;
mod text;

pub use check::{
    check, check_decoded, ManifestPass, ManifestReason, ManifestStop, ManifestVerdict, StopReason,
    EARLY_SECS, LATE_SECS,
};
pub use encoding::{sign, SignedManifest};
pub use error::{ManifestError, PersonError};
pub use explain::PASS_EXPLANATION;
pub use person::{Person, PERSON_LEN};
pub use receipt::{
    Measure, Outcome, ReasonText, Receipt, ReceiptPerson, SignedReceipt, MAX_RECEIPT_BYTES,
    RECEIPT_FIELDS, RECEIPT_PERSON_FIELDS,
};
pub use record::{manifest_hash, match_sealed, RecordError, RecordMismatch, MANIFEST_HASH_LEN};
pub use report::{
    CheckReport, Checkpoint, ReportReason, ReportVerdict, SignedCheckReport, MAX_REASONS,
    MAX_REPORT_BYTES, REPORT_FIELDS,
};
pub use text::{Escort, Place, Vehicle};

use crate::province::Province;
use crate::time::UnixTime;

/// The prefix of version 1 of the manifest format. Only QR alphanumeric characters.
pub const PREFIX: &str = "HCMRT1:";
/// Longest manifest string accepted, in characters (QR version 40 alphanumeric at level L
/// holds 4,296).
pub const MAX_MANIFEST_CHARS: usize = 4096;
/// Largest COSE_Sign1 accepted (the Base45 output), in bytes: 99 people (1,287 bytes) with the
/// largest other fields take about 1,420.
pub const MAX_COSE_BYTES: usize = 2048;
/// Number of elements of the manifest array (section 3).
pub const FIELDS: usize = 13;
/// Length of a trip id, in bytes.
pub const TRIP_ID_LEN: usize = 8;
/// Most people on one manifest (section 3: a larger group travels on more vehicles).
pub const MAX_PEOPLE: usize = 99;
/// Most issuers on one manifest (an issuer index has 4 bits).
pub const MAX_ISSUERS: usize = 16;
/// Most transit provinces.
pub const MAX_TRANSIT: usize = 8;
/// Longest planned trip, and latest seal after departure, in seconds (72 h).
pub const MAX_TRIP_SECS: u64 = 72 * 3600;

/// A trip id: 8 random bytes chosen by the origin node at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TripId(pub [u8; TRIP_ID_LEN]);

impl std::fmt::Display for TripId {
    /// 16 lower-case hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A trip manifest's content (docs/transport.md section 3), in array order. Built by the origin
/// node; [`Manifest::check`] holds it to the rules the decoder enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The trip, the same in every version.
    pub trip_id: TripId,
    /// 1 at the first seal; each later seal adds 1 and supersedes the one before.
    pub version: u64,
    /// GB/T 2260 county-level code of the departure, e.g. `511304`; its province
    /// ([`Manifest::origin_province`]) is the signer's.
    pub origin: u32,
    /// GB/T 2260 code of the destination, county or province level, e.g. `330200`.
    pub destination: u32,
    /// Provinces passed through, in order, at most [`MAX_TRANSIT`].
    pub transit: Vec<Province>,
    /// Plate or train and carriage, at most 16 bytes.
    pub vehicle: Vehicle,
    /// Destination place (employer or reception station), at most 24 bytes.
    pub place: Place,
    /// Planned departure.
    pub departure: UnixTime,
    /// Planned arrival: after `departure`, at most [`MAX_TRIP_SECS`] later.
    pub arrival: UnixTime,
    /// When this version was signed: at most [`MAX_TRIP_SECS`] after `departure`.
    pub sealed_at: UnixTime,
    /// The escort's masked name, at most 12 bytes.
    pub escort: Escort,
    /// Provinces of the boarded codes' issuers, at most [`MAX_ISSUERS`]; a person names one by
    /// index.
    pub issuers: Vec<Province>,
    /// In seat order (seat 1 first), 1 to [`MAX_PEOPLE`].
    pub people: Vec<Person>,
}

/// The province of a six-digit GB/T 2260 code: its first two digits and four zeros.
///
/// # Errors
/// [`ManifestError::Field`] naming `field` when the code is not six digits or names no province.
pub fn province_of(code: u32, field: &'static str) -> Result<Province, ManifestError> {
    if !(100_000..=999_999).contains(&code) {
        return Err(ManifestError::field(
            field,
            format!("{code} is not a six-digit GB/T 2260 code"),
        ));
    }
    Province::from_code(code / 10_000 * 10_000)
        .map_err(|_| ManifestError::field(field, format!("{code} is in no province of GB/T 2260")))
}

impl Manifest {
    /// The origin's province: the signer's.
    ///
    /// # Errors
    /// [`ManifestError::Field`] when `origin` names no province (never for a decoded manifest).
    pub fn origin_province(&self) -> Result<Province, ManifestError> {
        province_of(self.origin, "origin")
    }

    /// The destination's province.
    ///
    /// # Errors
    /// [`ManifestError::Field`] when `destination` names no province (never for a decoded
    /// manifest).
    pub fn destination_province(&self) -> Result<Province, ManifestError> {
        province_of(self.destination, "destination")
    }

    /// Passengers and crew, in that order.
    pub fn headcount(&self) -> (usize, usize) {
        let crew = self.people.iter().filter(|p| p.crew).count();
        (self.people.len() - crew, crew)
    }

    /// Checks the rules of docs/transport.md section 3 that the types do not hold: version at
    /// least 1, origin and destination in a province, transit and issuers counts, the times
    /// (at most 9999-12-31, arrival after departure and at most 72 h later, seal at most 72 h
    /// after departure), 1 to 99 people, each naming an issuer in `issuers`.
    ///
    /// # Errors
    /// The first [`ManifestError::Field`] or [`ManifestError::Person`] met, in field order.
    pub fn check(&self) -> Result<(), ManifestError> {
        use ManifestError as E;
        if self.version == 0 {
            return Err(E::field("version", "is 0; the first seal is version 1"));
        }
        self.origin_province()?;
        self.destination_province()?;
        if self.transit.len() > MAX_TRANSIT {
            return Err(E::field(
                "transit",
                format!(
                    "has {} provinces; at most {MAX_TRANSIT}",
                    self.transit.len()
                ),
            ));
        }
        for (t, field) in [
            (self.departure, "departure"),
            (self.arrival, "arrival"),
            (self.sealed_at, "sealed_at"),
        ] {
            if t > UnixTime::MAX {
                return Err(E::field(field, "is after the year 9999"));
            }
        }
        let Some(trip) = self
            .arrival
            .checked_since(self.departure)
            .filter(|s| *s > 0)
        else {
            return Err(E::field("arrival", "is not after departure"));
        };
        if trip > MAX_TRIP_SECS {
            return Err(E::field(
                "arrival",
                format!("is {trip} s after departure; at most {MAX_TRIP_SECS} s (72 h)"),
            ));
        }
        if self.sealed_at > self.departure + MAX_TRIP_SECS {
            return Err(E::field("sealed_at", "is more than 72 h after departure"));
        }
        if self.issuers.len() > MAX_ISSUERS {
            return Err(E::field(
                "issuers",
                format!(
                    "has {} provinces; at most {MAX_ISSUERS}",
                    self.issuers.len()
                ),
            ));
        }
        if self.people.is_empty() || self.people.len() > MAX_PEOPLE {
            return Err(E::field(
                "people",
                format!(
                    "has {} people; 1 to {MAX_PEOPLE} are allowed",
                    self.people.len()
                ),
            ));
        }
        for (i, p) in self.people.iter().enumerate() {
            if usize::from(p.issuer) >= self.issuers.len() {
                return Err(E::Person {
                    seat: i + 1,
                    why: format!(
                        "issuer index {} is not among the {} issuers",
                        p.issuer,
                        self.issuers.len()
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
