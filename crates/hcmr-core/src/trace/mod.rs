//! Traceability (docs/tracing.md), the pure parts. Tracing a case to their fellow travellers
//! (section 3): which manifests list a subject ([`lists`]), who counts as a contact ([`ContactRule`],
//! [`fellow_travellers`]), and whether a manifest a peer returned was really signed by its
//! origin ([`verify_origin`]).
//!
//! A manifest holds per person only the issuer (by index), 6 bytes of cti and 4 of the keyed
//! subject hash: a trace matches on (issuer province, 4-byte subject prefix), the most any
//! province but the issuer can know of a person. The exposure notice ([`ExposureNotice`]) is
//! what a tracing node sends a fellow traveller's issuing province (section 5).

mod contact;
mod notice;

pub use contact::{fellow_travellers, lists, ContactRule, Fellow, TracedCase};
pub use notice::{
    CaseClass, ExposureNotice, NoticeId, SignedExposureNotice, CTI_PREFIX_LEN, MAX_NOTICE_BYTES,
    NOTICE_FIELDS, NOTICE_FORMAT, NOTICE_ID_LEN,
};

use crate::feed::KeyState;
use crate::manifest::SignedManifest;
use crate::province::Province;
use crate::trust::TrustSnapshot;

/// Length of the subject prefix a trace matches on, in bytes (as manifests hold it).
pub const SUBJECT_PREFIX_LEN: usize = 4;

/// Why a manifest returned by a peer is not taken into a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// The origin field names no province (never for a decoded manifest).
    #[error("the manifest's origin names no province")]
    NoOrigin,
    /// No key of the origin is known here (no agreement, no synced feed).
    #[error("no key of {0} is known here")]
    UnknownIssuer(Province),
    /// The kid is not a key of the origin trusted here.
    #[error("kid {kid} is not a key of {origin} trusted here")]
    UnknownKey {
        /// The origin province.
        origin: Province,
        /// The manifest's kid, as hex.
        kid: String,
    },
    /// The signature does not verify under the origin's key with that kid.
    #[error("the signature does not verify under {0}'s key")]
    BadSignature(Province),
    /// The key that signed it was withdrawn (compromised): anything it signed may be forged.
    #[error("the signing key of {0} was withdrawn")]
    KeyWithdrawn(Province),
}

/// Checks that `signed` was signed by its origin province's node, under a key trusted here: own
/// keys for this node's own trips; else the keys of an agreement with the origin (in force, or
/// the newest: a trip stays real after its agreement ended), else the origin's synced feed. A
/// withdrawn key is refused. Returns the origin. This is what keeps a peer from inventing trips
/// in a trace: it can only pass on manifests their origin signed.
///
/// # Errors
/// [`OriginError`].
pub fn verify_origin(
    signed: &SignedManifest,
    trust: &TrustSnapshot,
    now: crate::UnixTime,
) -> Result<Province, OriginError> {
    let origin = signed
        .manifest
        .origin_province()
        .map_err(|_| OriginError::NoOrigin)?;
    let keys: Vec<KeyState> = if origin == trust.local() {
        trust.own().keys().to_vec()
    } else if let Some(a) = trust
        .agreement_in_force(origin, now)
        .ok()
        .or(trust.agreements_with(origin).first())
    {
        trust.issuer_keys(origin, a)
    } else if let Some(p) = trust.peer_feed(origin) {
        p.state.keys().to_vec()
    } else {
        return Err(OriginError::UnknownIssuer(origin));
    };
    let candidates: Vec<&KeyState> = keys.iter().filter(|k| k.key.kid == signed.kid).collect();
    if candidates.is_empty() {
        return Err(OriginError::UnknownKey {
            origin,
            kid: signed.kid.to_string(),
        });
    }
    let signer = candidates
        .into_iter()
        .find(|k| signed.verify_signature(&k.key))
        .ok_or(OriginError::BadSignature(origin))?;
    if signer.withdrawn_at.is_some() {
        return Err(OriginError::KeyWithdrawn(origin));
    }
    Ok(origin)
}

#[cfg(test)]
mod tests;
