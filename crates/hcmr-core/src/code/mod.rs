//! The health code: CWT claims (RFC 8392) signed as an untagged COSE_Sign1 (RFC 9052) with
//! Ed25519, Base45-encoded (RFC 9285) and prefixed with `HCMR1:`. No compression.
//!
//! ```text
//! encode: Claims --CBOR--> COSE_Sign1 (EdDSA, kid) --> Base45 --> "HCMR1:" + text
//! decode: the reverse, each stage with its own errors (see [`CodeError`])
//! ```
//! The full specification, with the reasons for each rule, is docs/code-format.md.
//!
//! Decoding does not verify the signature: that needs the issuer's key, which the trust snapshot
//! holds; see [`crate::verify`]. [`HealthCode::signature_valid`] does the check once a key is
//! chosen.

mod claims;
pub mod cose;
mod error;
pub mod transport;

pub use claims::{Claims, Subject, BODY_FIELDS, CLAIM_HCODE, MAX_TIME};
pub use error::CodeError;

use crate::keys::{Kid, NodeKey, PublicKey};

/// The prefix of version 1 of the hcmr code format. Only QR alphanumeric characters.
pub const PREFIX: &str = "HCMR1:";
/// Longest code string accepted, in characters (QR version 40 alphanumeric at level L holds 4296).
pub const MAX_CODE_CHARS: usize = 4096;
/// Largest COSE_Sign1 accepted (the Base45 output), in bytes. A typical code is 141 bytes; the
/// largest hcmr issues (a 64-character name of 4-byte UTF-8 characters) about 400.
pub const MAX_COSE_BYTES: usize = 1024;
/// Length of a code id ([`HealthCode::cti`]) in bytes.
pub const CTI_LEN: usize = 16;

/// A code id (`cti`): the first [`CTI_LEN`] bytes of the code's Ed25519 signature.
pub type Cti = [u8; CTI_LEN];

/// A decoded health code whose structure is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct HealthCode {
    /// The kid from the protected header.
    pub kid: Kid,
    /// Decoded and checked for form; trusted only once the signature verifies.
    pub claims: Claims,
    to_be_signed: Vec<u8>,
    signature: [u8; 64],
}

impl HealthCode {
    /// Decodes a code string through every stage of the pipeline.
    ///
    /// # Errors
    /// The first [`CodeError`] met, from the prefix to the claims.
    pub fn decode(code: &str) -> Result<HealthCode, CodeError> {
        let cose_bytes = transport::unwrap(code)?;
        let parsed = cose::parse(&cose_bytes)?;
        let claims = Claims::from_cbor(&parsed.payload)?;
        Ok(HealthCode {
            kid: parsed.kid,
            claims,
            to_be_signed: parsed.to_be_signed,
            signature: parsed.signature,
        })
    }

    /// The code id (`cti`), derived rather than carried: the first 16 bytes of the 64-byte
    /// Ed25519 signature, i.e. its R part (RFC 8032 section 5.1.6: R = rB for the nonce
    /// r = SHA-512(prefix || message)). It is unique per signed content, fixed by the
    /// signature (a changed cti means a changed signature, which then fails to verify), and a
    /// holder cannot choose it without the signing key. Revocation by code, the issued-code log,
    /// the audit log and the API all use it.
    pub fn cti(&self) -> Cti {
        cti_of_signature(&self.signature)
    }

    /// Whether the COSE_Sign1 signature verifies under `key` (Ed25519, strict). The caller picks
    /// the key by issuer and kid.
    pub fn signature_valid(&self, key: &PublicKey) -> bool {
        crate::keys::verify_signature(key, &self.to_be_signed, &self.signature)
    }

    /// The bytes the signature covers: the RFC 9052 section 4.4 Sig_structure
    /// `["Signature1", protected, h'', payload]`, as received.
    pub fn to_be_signed(&self) -> &[u8] {
        &self.to_be_signed
    }

    /// The 64-byte Ed25519 signature (RFC 8032: `R` then `s`).
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

/// The code id of a signature: its first [`CTI_LEN`] bytes (see [`HealthCode::cti`]).
fn cti_of_signature(signature: &[u8; 64]) -> Cti {
    let mut cti = [0u8; CTI_LEN];
    cti.copy_from_slice(&signature[..CTI_LEN]);
    cti
}

/// A code as issued: the string and its code id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The code string, `HCMR1:...`.
    pub code: String,
    /// Its code id ([`HealthCode::cti`]), known to the issuer only once signed.
    pub cti: Cti,
}

/// Encodes and signs claims into a code string (`HCMR1:...`). Deterministic: the same claims and
/// key always give the same string (Ed25519 signatures are deterministic, RFC 8032). See
/// [`encode_with_cti`] for the code id as well.
pub fn encode(claims: &Claims, key: &NodeKey) -> String {
    encode_with_cti(claims, key).code
}

/// Encodes and signs claims, returning the string and its code id ([`HealthCode::cti`]): what
/// an issuer records.
pub fn encode_with_cti(claims: &Claims, key: &NodeKey) -> Encoded {
    let signed = cose::sign(claims.to_cbor(), key);
    Encoded {
        code: transport::wrap(&signed.bytes),
        cti: cti_of_signature(&signed.signature),
    }
}

#[cfg(test)]
mod tests;
