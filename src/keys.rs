//! Node signing keys (Ed25519, RFC 8032) and key identifiers.
//!
//! A `kid` is the first 8 bytes of SHA-256 over the 32-byte Ed25519 public key, the way the EU DCC
//! derives it from a certificate. Eight bytes can collide, so every lookup by kid returns all keys
//! with that kid and the verifier tries each.

use std::fmt;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

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

/// Errors of key handling.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A public key that is not 32 bytes or not a valid, non-weak Ed25519 point.
    #[error("not a valid Ed25519 public key (32 bytes, RFC 8032)")]
    BadPublicKey,
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file is not a PKCS#8 PEM Ed25519 private key.
    #[error("key file {path} is not an Ed25519 private key in PKCS#8 PEM: {detail}")]
    BadKeyFile {
        /// The file.
        path: String,
        /// What the parser said.
        detail: String,
    },
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

    /// Writes the key as PKCS#8 PEM to `path`, created with mode 0600 (owner read/write only).
    ///
    /// # Errors
    /// [`KeyError::Io`] when the file exists already or cannot be written.
    pub fn write_pem(&self, path: &Path) -> Result<(), KeyError> {
        let pem = self
            .signing
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::BadKeyFile {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        crate::fsutil::write_secret_file(path, pem.as_bytes()).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a PKCS#8 PEM Ed25519 key written by [`NodeKey::write_pem`].
    ///
    /// # Errors
    /// [`KeyError::Io`] or [`KeyError::BadKeyFile`].
    pub fn read_pem(path: &Path) -> Result<Self, KeyError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            KeyError::Io {
                path: path.display().to_string(),
                source,
            }
        })?);
        let signing = SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::BadKeyFile {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
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
mod tests {
    use super::*;

    #[test]
    fn kid_is_sha256_prefix() {
        // RFC 8032 section 7.1 test 1 key pair.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let k = NodeKey::from_seed(&seed);
        assert_eq!(
            hex::encode(k.public().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let digest = Sha256::digest(k.public().to_bytes());
        assert_eq!(k.kid().0, digest[..8]);
        let sig = k.sign(b"");
        assert_eq!(hex::encode(sig), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
        assert!(verify_signature(&k.public(), b"", &sig));
        assert!(!verify_signature(&k.public(), b"x", &sig));
        assert!(!verify_signature(&k.public(), b"", &sig[..63]));
    }

    #[test]
    fn pem_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let k = NodeKey::generate();
        k.write_pem(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = NodeKey::read_pem(&path).unwrap();
        assert_eq!(back.public(), k.public());
        assert!(k.write_pem(&path).is_err(), "never overwrites a key");
    }

    #[test]
    fn rejects_bad_public_keys() {
        assert!(PublicKey::from_bytes(&[0u8; 31]).is_err());
        // The identity point is small-order (weak).
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(PublicKey::from_bytes(&id).is_err());
    }
}
