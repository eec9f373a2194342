//! Bilateral agreements: which of a peer province's health codes a province recognizes, as what,
//! and when; signed by both provinces' node keys.
//!
//! An agreement has a body (the terms) and two signatures. The body is encoded canonically (a CBOR
//! array with definite lengths and shortest integers, RFC 8949 section 4.2.1; maps are avoided so
//! no key order is involved) and each party signs `"hcmr-agreement-v1\0" || body`. A receiver
//! decodes the body and re-encodes it: bytes that do not round-trip are refused, so exactly one
//! encoding of any agreement can carry signatures.
//!
//! ```text
//! body = ["hcmr-agreement", 1, id: bstr .size 16, version: uint, created_at: uint,
//!         proposer: party, acceptor: party, [direction, direction]]
//! party = [province: uint (GB/T 2260), [* key: bstr .size 32]]
//! direction = [issuer: uint, verifier: uint, [* [issued: uint, counts_as: uint]],
//!              max_code_age: uint (seconds), effective_from: uint, effective_until: uint,
//!              max_trust_age: uint (seconds; 0 = no limit),
//!              ? (manifests: uint (1 transit | 2 arrival; written only when not 0, or when
//!                 tracing follows),
//!                 ? tracing: 1 (written only when on; docs/tracing.md section 4))]
//! ```
//! Times are seconds since the Unix epoch (UTC); a direction is in force in
//! `effective_from <= now < effective_until`.

use crate::cbor::uint;
use std::collections::BTreeMap;
use std::fmt;

use ciborium::value::Value;

use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::status::HealthStatus;
use crate::time::UnixTime;

mod body;
mod notices;
mod signatures;

use body::*;
pub use notices::*;

/// Domain separation for agreement signatures.
const SIGNING_CONTEXT: &[u8] = b"hcmr-agreement-v1\0";
/// First element of an encoded body.
const MAGIC: &str = "hcmr-agreement";
/// Body format version.
const FORMAT: u64 = 1;
/// Most keys a party may pin.
pub const MAX_KEYS_PER_PARTY: usize = 8;

/// An agreement id: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgreementId(pub [u8; 16]);

impl AgreementId {
    /// A fresh random id.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        AgreementId(b)
    }

    /// Parses 32 hex digits.
    ///
    /// # Errors
    /// [`AgreementError::BadId`].
    pub fn from_hex(s: &str) -> Result<Self, AgreementError> {
        hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .map(AgreementId)
            .ok_or_else(|| AgreementError::BadId(s.to_string()))
    }
}

impl fmt::Display for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementId({self})")
    }
}

/// One party: a province and the node keys pinned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The party's province.
    pub province: Province,
    /// The public keys this agreement pins for the party: codes of its province verify only under
    /// these, and its signature on the agreement must be by one of them. 1 to 8 keys.
    pub keys: Vec<PublicKey>,
}

/// The terms for one direction: how `verifier` counts codes issued by `issuer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionTerms {
    /// The province whose codes these terms are about.
    pub issuer: Province,
    /// The province that recognizes them.
    pub verifier: Province,
    /// Issued status -> status as it counts at the verifier. A status that is not a key here is
    /// not recognized at all (Guangdong, with only green and red, maps yellow to red).
    pub status_map: BTreeMap<HealthStatus, HealthStatus>,
    /// The oldest code accepted: `now - iat` must not exceed this, in seconds.
    pub max_code_age_secs: u64,
    /// Start of the window, inclusive.
    pub effective_from: UnixTime,
    /// End of the window, exclusive.
    pub effective_until: UnixTime,
    /// How old the verifier's copy of the issuer's trust state (keys, revocations) may be, in
    /// seconds since its last successful sync, before the issuer's codes are refused as stale;
    /// 0: no limit.
    pub max_trust_age_secs: u64,
    /// Which of the issuer's trip manifests the verifier accepts (docs/transport.md section 4);
    /// none unless agreed.
    pub manifests: ManifestTerms,
    /// Whether the verifier's node answers the issuer's trace queries (FindTrips) and takes its
    /// exposure notices (docs/tracing.md section 4); off unless agreed. Encoded as the optional
    /// ninth element (1), written only when on; the eighth (manifests) is then written too, 0
    /// included.
    pub tracing: bool,
}

/// What a province does with a trip manifest it is shown (docs/transport.md section 5): a
/// checkpoint passing the vehicle through, or a receiver at the destination taking it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestRole {
    /// At a checkpoint of a province on the route (a provincial border, toll gate, station).
    Transit,
    /// At the destination province's receiver (the factory gate, a reception station).
    Arrival,
}

/// The manifest term of a direction: the set of [`ManifestRole`]s in which the verifier accepts
/// the issuer's trip manifests (docs/transport.md section 4).
///
/// Encoded as a bit set ([`Self::TRANSIT`] | [`Self::ARRIVAL`]) in the optional eighth element of
/// the direction, written only when not empty; only the values 0 to 3 exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ManifestTerms(u8);

impl ManifestTerms {
    /// The bit of [`ManifestRole::Transit`].
    pub const TRANSIT: u8 = 1;
    /// The bit of [`ManifestRole::Arrival`].
    pub const ARRIVAL: u8 = 2;

    /// No manifests accepted: every agreement made before the term existed.
    pub const fn none() -> Self {
        ManifestTerms(0)
    }

    /// Transit only.
    pub const fn transit() -> Self {
        ManifestTerms(Self::TRANSIT)
    }

    /// Arrival only.
    pub const fn arrival() -> Self {
        ManifestTerms(Self::ARRIVAL)
    }

    /// Transit and arrival.
    pub const fn both() -> Self {
        ManifestTerms(Self::TRANSIT | Self::ARRIVAL)
    }

    /// Whether manifests are accepted in `role`.
    pub const fn allows(self, role: ManifestRole) -> bool {
        let bit = match role {
            ManifestRole::Transit => Self::TRANSIT,
            ManifestRole::Arrival => Self::ARRIVAL,
        };
        self.0 & bit != 0
    }

    /// Whether no manifests are accepted at all.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The bit set as encoded: 0 to 3.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The terms of a bit set; `None` for a value above 3 (a bit no role has).
    pub const fn from_bits(bits: u64) -> Option<Self> {
        if bits <= (Self::TRANSIT | Self::ARRIVAL) as u64 {
            // In range: at most 3.
            Some(ManifestTerms(bits as u8))
        } else {
            None
        }
    }
}

impl fmt::Display for ManifestTerms {
    /// `none`, `transit`, `arrival` or `transit+arrival`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            0 => "none",
            1 => "transit",
            2 => "arrival",
            _ => "transit+arrival",
        })
    }
}

/// Where a direction's window stands at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `now < effective_from`.
    NotYetInForce,
    /// Inside the window.
    InForce,
    /// `now >= effective_until`.
    Expired,
}

impl DirectionTerms {
    /// Where `now` falls relative to the window.
    pub fn window(&self, now: UnixTime) -> Window {
        if now < self.effective_from {
            Window::NotYetInForce
        } else if now >= self.effective_until {
            Window::Expired
        } else {
            Window::InForce
        }
    }
}

/// The signed content of an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementBody {
    /// Chosen by the proposer; the same across versions of one agreement.
    pub id: AgreementId,
    /// Starts at 1.
    pub version: u32,
    /// When the proposer made it.
    pub created_at: UnixTime,
    /// The party that proposed (signed first).
    pub proposer: Party,
    /// The party that accepted (signed second).
    pub acceptor: Party,
    /// Exactly two: one per direction.
    pub directions: Vec<DirectionTerms>,
}

/// A signature on an agreement body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreementSignature {
    /// The signing key's kid; must be one of the signing party's pinned keys.
    pub kid: Kid,
    /// Ed25519 over `"hcmr-agreement-v1\0" || body`.
    pub signature: [u8; 64],
}

/// An agreement as stored and exchanged: the canonical body bytes and up to two signatures.
///
/// The body and its encoding are private and set together, so the terms read are always the
/// terms the signatures cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAgreement {
    body: AgreementBody,
    /// The canonical encoding the signatures cover.
    encoded: Vec<u8>,
    /// The proposer's signature (present once proposed).
    pub proposer_signature: Option<AgreementSignature>,
    /// The acceptor's signature (present once accepted).
    pub acceptor_signature: Option<AgreementSignature>,
}

/// Errors of agreement handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    /// Not 32 hex digits.
    #[error("agreement id {0:?} is not 32 hex digits")]
    BadId(String),
    /// The body bytes do not decode.
    #[error("agreement body does not decode: {0}")]
    Decode(String),
    /// The body decodes but is not in canonical form.
    #[error("agreement body is not in canonical encoding")]
    NotCanonical,
    /// Both parties are one province.
    #[error("an agreement needs two different provinces")]
    SameProvince,
    /// A party with no keys, more than 8, or the same key twice.
    #[error("party {0} must pin 1 to 8 distinct keys")]
    BadKeys(Province),
    /// The directions are not exactly proposer->acceptor and acceptor->proposer.
    #[error("an agreement needs exactly one direction each way between its two parties")]
    BadDirections,
    /// `effective_from >= effective_until`.
    #[error("direction {0}->{1}: effective_from must be before effective_until")]
    BadWindow(Province, Province),
    /// A status mapped to a milder one (red counting as green): refused, since a recognized
    /// code must never be shown as safer than its issuer judged it.
    #[error("direction {0}->{1}: {2} may not count as {3}; a mapping may keep or raise severity")]
    LowersSeverity(Province, Province, HealthStatus, HealthStatus),
    /// `max_code_age_secs` is zero.
    #[error("direction {0}->{1}: max_code_age must be positive")]
    BadMaxAge(Province, Province),
    /// A time (creation, window, termination) after 9999-12-31T23:59:59Z, the latest a code may
    /// carry ([`UnixTime::MAX`]) and the latest RFC 3339 can show.
    #[error("{0} is after 9999-12-31T23:59:59Z")]
    TimeTooLarge(&'static str),
    /// A signature is missing.
    #[error("the {0} has not signed")]
    Unsigned(&'static str),
    /// The signature's kid is not among the party's pinned keys.
    #[error("the {0}'s signature is by a key the agreement does not pin for it")]
    SignerNotPinned(&'static str),
    /// The signature does not verify.
    #[error("the {0}'s signature does not verify")]
    BadSignature(&'static str),
}

/// Which party of an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Signed first.
    Proposer,
    /// Signed second.
    Acceptor,
}

#[cfg(test)]
mod tests;
