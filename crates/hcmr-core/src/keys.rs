//! Node signing keys (Ed25519, RFC 8032) and key identifiers.
//!
//! A `kid` is the first 8 bytes of SHA-256 over the 32-byte Ed25519 public key, the way the EU DCC
//! derives it from a certificate. Eight bytes can collide, so every lookup by kid returns all keys
//! with that kid and the verifier tries each.
//!
//! Key files (PKCS#8 PEM, encryption at rest) are the node's edge: `hcmr::keyfile`.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A key identifier: SHA-256(public key)[0..8].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 8]);

impl Kid {
    /// The kid of an Ed25519 public key.
    pub fn of(key: &VerifyingKey) -> Kid {
        let d = Sha256::digest(key.as_bytes());
        let mut k = [0u8; 8];
        k.copy_from_slice(&d[..8]);
        Kid(k)
    }

    /// Reads a kid from 8 bytes; `None` for any other length.
    pub fn from_slice(b: &[u8]) -> Option<Kid> {
        b.try_into().ok().map(Kid)
    }

    /// Parses 16 hex digits.
    pub fn from_hex(s: &str) -> Option<Kid> {
        hex::decode(s.trim()).ok().and_then(|b| Kid::from_slice(&b))
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({self})")
    }
}

/// A public key with its kid, as pinned in agreements and published by GetNodeInfo.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    /// SHA-256(key)[0..8].
    pub kid: Kid,
    /// The Ed25519 public key, already parsed (point decompressed) so verification does not
    /// repeat that work.
    pub key: VerifyingKey,
}

impl PublicKey {
    /// Wraps a verifying key and computes its kid.
    pub fn new(key: VerifyingKey) -> Self {
        PublicKey {
            kid: Kid::of(&key),
            key,
        }
    }

    /// Parses 32 bytes of an Ed25519 public key (RFC 8032 encoding).
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] for a wrong length or a point that does not decode, or a weak
    /// (small-order) key.
    pub fn from_bytes(b: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = b.try_into().map_err(|_| KeyError::BadPublicKey)?;
        let key = VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::BadPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::BadPublicKey);
        }
        Ok(PublicKey::new(key))
    }

    /// The 32 bytes of the public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}: {})",
            self.kid,
            hex::encode(self.key.as_bytes())
        )
    }
}

/// Errors of the key types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A public key that is not 32 bytes or not a valid, non-weak Ed25519 point.
    #[error("not a valid Ed25519 public key (32 bytes, RFC 8032)")]
    BadPublicKey,
    /// PKCS#8 DER that is not an Ed25519 private key (what the parser said, never key material).
    #[error("not an Ed25519 private key in PKCS#8: {0}")]
    Pkcs8(String),
}

/// The node's signing key: signs health codes and agreements.
pub struct NodeKey {
    signing: SigningKey,
    public: PublicKey,
}

impl NodeKey {
    /// A fresh key from the operating system's generator.
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from a 32-byte seed (RFC 8032 private key). For known-answer tests and fixtures.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed))
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let public = PublicKey::new(signing.verifying_key());
        NodeKey { signing, public }
    }

    /// The public half with its kid.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The kid of this key.
    pub fn kid(&self) -> Kid {
        self.public.kid
    }

    /// Signs a message (Ed25519, RFC 8032): 64 bytes.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// The private key as PKCS#8 DER (RFC 5958 v2 with the public key, RFC 8410 Ed25519), for
    /// writing to a key file at the edge.
    ///
    /// # Errors
    /// [`KeyError::Pkcs8`] if the encoder fails (it does not for a valid key).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let der = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        Ok(Zeroizing::new(der.as_bytes().to_vec()))
    }

    /// A key from PKCS#8 DER holding an Ed25519 private key (RFC 8410).
    ///
    /// # Errors
    /// [`KeyError::Pkcs8`] for DER that is not an Ed25519 PKCS#8 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let signing =
            SigningKey::from_pkcs8_der(der).map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        Ok(Self::from_signing_key(signing))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.public.kid)
    }
}

/// Verifies an Ed25519 signature strictly (rejects non-canonical encodings and small-order
/// points, RFC 8032 section 5.1.7 with the checks of `verify_strict`).
pub fn verify_signature(key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    key.key.verify_strict(msg, &sig).is_ok()
}

#[cfg(test)]
mod tests;
