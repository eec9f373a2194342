//! A person on a manifest: 13 bytes (docs/transport.md section 3.1).

use super::{ManifestError, PersonError};
use crate::code::HealthCode;
use crate::status::HealthStatus;
use crate::time::UnixTime;

/// Length of a packed person, in bytes.
pub const PERSON_LEN: usize = 13;

/// A boarded person as a checkpoint re-checks them: no name, no number, no full hash.
///
/// Packed ([`Person::pack`]) as 13 bytes: flags (issuer index in bits 7-4, status in bits 3-2,
/// crew in bit 1, bit 0 zero), the age in minutes (big-endian), 6 bytes of cti, 4 of subject
/// hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// Index into the manifest's `issuers` (0 to 15).
    pub issuer: u8,
    /// The status as verified at boarding.
    pub status: HealthStatus,
    /// Crew (true) or passenger (false).
    pub crew: bool,
    /// Minutes from the code's `iat` to the manifest's `sealed_at`, rounded up.
    pub age_minutes: u16,
    /// The first 6 bytes of the code's cti (docs/code-format.md section 5.1).
    pub cti: [u8; 6],
    /// The first 4 bytes of the code's keyed subject hash.
    pub subject: [u8; 4],
}

impl Person {
    /// The entry for a boarded code: `status` is the status as verified (after the agreement's
    /// mapping), `issuer` the index of the code's issuer in the manifest's `issuers`, and the
    /// age runs from the code's `iat` to `sealed_at`, rounded up to whole minutes so that
    /// `sealed_at - 60 * age <= iat` (section 3.1).
    ///
    /// # Errors
    /// [`PersonError`] for an index above 15, a code issued after `sealed_at`, or one more than
    /// 65,535 minutes old.
    pub fn from_code(
        code: &HealthCode,
        issuer: u8,
        status: HealthStatus,
        crew: bool,
        sealed_at: UnixTime,
    ) -> Result<Person, PersonError> {
        if issuer > 15 {
            return Err(PersonError::IssuerIndex(issuer));
        }
        let iat = code.claims.iat;
        let secs = sealed_at
            .checked_since(iat)
            .ok_or(PersonError::IssuedAfterSeal { iat, sealed_at })?;
        let minutes = secs.div_ceil(60);
        let age_minutes = u16::try_from(minutes).map_err(|_| PersonError::TooOld(minutes))?;
        let cti = code.cti();
        let hash = code.claims.subject.subject_hash.0;
        Ok(Person {
            issuer,
            status,
            crew,
            age_minutes,
            cti: cti[..6].try_into().expect("a cti has 16 bytes"),
            subject: hash[..4].try_into().expect("a subject hash has 8 bytes"),
        })
    }

    /// The code's `iat` as the checkpoint reconstructs it: `sealed_at - 60 * age`, never later
    /// than the real one (the epoch if that would come before it).
    pub fn iat_bound(&self, sealed_at: UnixTime) -> UnixTime {
        sealed_at.saturating_sub(60 * u64::from(self.age_minutes))
    }

    /// The 13 bytes of section 3.1.
    ///
    /// # Panics
    /// Never; an issuer index above 15 keeps only its low 4 bits ([`super::Manifest::check`]
    /// and [`Person::from_code`] refuse one).
    pub fn pack(&self) -> [u8; PERSON_LEN] {
        let mut b = [0u8; PERSON_LEN];
        b[0] = (self.issuer & 0x0f) << 4
            | (self.status.to_u64() as u8) << 2
            | u8::from(self.crew) << 1;
        b[1..3].copy_from_slice(&self.age_minutes.to_be_bytes());
        b[3..9].copy_from_slice(&self.cti);
        b[9..13].copy_from_slice(&self.subject);
        b
    }

    /// Reads 13 bytes; `seat` (1-based) names the person in an error.
    ///
    /// # Errors
    /// [`ManifestError::Person`] when flags bit 0 is set or the status is not 1 to 3.
    pub fn unpack(b: &[u8; PERSON_LEN], seat: usize) -> Result<Person, ManifestError> {
        let flags = b[0];
        if flags & 1 != 0 {
            return Err(ManifestError::Person {
                seat,
                why: "flags bit 0 is set; it must be 0".into(),
            });
        }
        let status_bits = (flags >> 2) & 0x03;
        let status = HealthStatus::from_u64(u64::from(status_bits)).ok_or_else(|| {
            ManifestError::Person {
                seat,
                why: format!("status {status_bits} is not 1 (green), 2 (yellow) or 3 (red)"),
            }
        })?;
        Ok(Person {
            issuer: flags >> 4,
            status,
            crew: flags & 0x02 != 0,
            age_minutes: u16::from_be_bytes([b[1], b[2]]),
            cti: b[3..9].try_into().expect("6 bytes"),
            subject: b[9..13].try_into().expect("4 bytes"),
        })
    }
}
