//! The health code: CWT claims (RFC 8392) signed as a COSE_Sign1 (RFC 9052) with Ed25519,
//! compressed with zlib, Base45-encoded (RFC 9285) and prefixed with `HCMR1:`.
//!
//! ```text
//! encode: Claims --CBOR--> COSE_Sign1 (EdDSA, kid) --zlib--> Base45 --> "HCMR1:" + text
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

pub use claims::{Claims, Subject, BODY_VERSION, CLAIM_HCODE, MAX_TIME};
pub use error::CodeError;

use crate::keys::{Kid, NodeKey, PublicKey};

/// The prefix of version 1 of the hcmr code format. Only QR alphanumeric characters.
pub const PREFIX: &str = "HCMR1:";
/// Longest code string accepted, in characters (QR version 40 alphanumeric at level L holds 4296).
pub const MAX_CODE_CHARS: usize = 4096;
/// Largest inflated COSE_Sign1 accepted, in bytes. A real code is about 200 bytes.
pub const MAX_INFLATED_BYTES: usize = 8192;

/// A decoded health code whose structure is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct HealthCode {
    /// The kid from the protected header.
    pub kid: Kid,
    /// The claims.
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

/// Encodes and signs claims into a code string (`HCMR1:...`). Deterministic: the same claims and
/// key always give the same string (Ed25519 signatures are deterministic, RFC 8032).
pub fn encode(claims: &Claims, key: &NodeKey) -> String {
    transport::wrap(&cose::sign(claims.to_cbor(), key))
}

#[cfg(test)]
mod tests;
