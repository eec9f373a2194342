//! Node signing keys (Ed25519, RFC 8032) and key identifiers.
//!
//! A `kid` is the first 8 bytes of SHA-256 over the 32-byte Ed25519 public key, the way the EU DCC
//! derives it from a certificate. Eight bytes can collide, so every lookup by kid returns all keys
//! with that kid and the verifier tries each.
//!
//! # Keys at rest
//!
//! The node's key files are PKCS#8 (RFC 5958) in PEM (RFC 7468), created with mode 0600. With a
//! passphrase configured ([`KeyProtection::from_sources`]) they are written as an RFC 5958
//! `EncryptedPrivateKeyInfo` (PEM label `ENCRYPTED PRIVATE KEY`) under PKCS#5 v2.1 PBES2
//! (RFC 8018) with scrypt (RFC 7914) and AES-256-CBC; the Ed25519 key inside is the RFC 8410
//! encoding. OpenSSL writes such files (`openssl pkcs8 -topk8 -scrypt`) and decrypts the ones
//! written here (see [`SCRYPT_LOG_N`]); note that OpenSSL 3.0 does not parse the PKCS#8 v2 form
//! (with the public key) that ed25519-dalek gives the node key, plain or encrypted, while it
//! reads the v1 keys of other tools (the TLS key). Encryption defends a key file that leaves the
//! machine (a backup, a copied disk); on the running machine the file mode is the protection,
//! since the passphrase must be at hand for the node to start.
//!
//! The subject key (the HMAC key of the keyed subject hash) is written the same way under a
//! passphrase, as a PKCS#8 key of algorithm hmacWithSHA256 ([`write_subject_key`]); without
//! one, as 64 hex digits.

use std::fmt;
use std::io::Read;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::{pbes2, scrypt};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument};
use rand::RngCore;
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
    /// The key file is not a PKCS#8 private key (RFC 5958) in PEM (RFC 7468), encrypted or not,
    /// or its encryption uses an algorithm this node does not support (PBES1, DES, SHA-1).
    #[error("key file {path} is not a PKCS#8 private key in PEM: {detail}")]
    BadPkcs8File {
        /// The file.
        path: String,
        /// What the parser said (never key material).
        detail: String,
    },
    /// The key file is encrypted (`ENCRYPTED PRIVATE KEY`) and no passphrase is configured.
    #[error(
        "key file {path} is encrypted: set the passphrase (key_passphrase_env or key_passphrase_file)"
    )]
    Encrypted {
        /// The file.
        path: String,
    },
    /// The key file is encrypted and the configured passphrase does not decrypt it (or the
    /// ciphertext is damaged: PBES2 with AES-CBC cannot tell the two apart).
    #[error("key file {path} cannot be decrypted: wrong passphrase, or the file is damaged")]
    WrongPassphrase {
        /// The file.
        path: String,
    },
    /// A passphrase is configured but the key file is a plain `PRIVATE KEY`: refused, so that a
    /// node configured for encrypted keys never runs silently on a plain one.
    #[error(
        "key file {path} is not encrypted but a key passphrase is configured: refusing to run on a plain key (write it encrypted, or remove key_passphrase_env and key_passphrase_file)"
    )]
    NotEncrypted {
        /// The file.
        path: String,
    },
    /// The configured passphrase variable is not set (and no passphrase file is configured).
    #[error(
        "the key passphrase variable {name} (key_passphrase_env) is not set: set it to the passphrase of the key files"
    )]
    PassphraseUnset {
        /// The variable's name.
        name: String,
    },
    /// The configured passphrase is empty (after stripping a passphrase file's trailing line
    /// breaks).
    #[error("the key passphrase from {origin} is empty")]
    EmptyPassphrase {
        /// Where it came from: `environment variable NAME` or `file PATH`.
        origin: String,
    },
    /// The passphrase file is accessible to its group or to others (any of the mode bits 0077).
    #[error("passphrase file {path} has mode {mode:04o}, open to group or others: chmod 600 it")]
    PassphraseFileMode {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The passphrase file could not be read, is not a regular file, or is too long.
    #[error("passphrase file {path}: {source}")]
    PassphraseIo {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// scrypt cost for newly encrypted key files: log2(N) = 14, so N = 16384 (with r = 8, p = 1).
///
/// That is 128 * r * N = 16 MiB of memory and about 40 ms per derivation (one write, one read)
/// on a 2-core x86-64 machine (release build, or a debug build with the `scrypt` crate
/// optimized, see Cargo.toml). It is OpenSSL's `-scrypt` default and the largest N at r = 8 that
/// OpenSSL accepts when it *reads* a key: its scrypt memory limit (32 MiB) refuses N = 2^15,
/// which would leave the operator no standard tool to inspect a key file or change its
/// passphrase (`openssl pkcs8 -topk8 -scrypt -in tls.key -out new.key`). Higher costs buy
/// little here: pkcs8's own `PrivateKeyInfo::encrypt` takes scrypt's recommended N = 2^17
/// (about 350 ms per read; 16 s in an unoptimized debug build), and OWASP asks N = 2^17 for
/// stored password hashes, but a key file also sits behind mode 0600 and the node must read it
/// at every start; what protects a copied file is a high-entropy passphrase (e.g. 20 random
/// characters), each bit of which counts as much as doubling N. Reading honours whatever
/// parameters the file names.
pub const SCRYPT_LOG_N: u8 = 14;
/// scrypt block size r (RFC 7914): 8.
pub const SCRYPT_R: u32 = 8;
/// scrypt parallelization p (RFC 7914): 1.
pub const SCRYPT_P: u32 = 1;

/// The longest passphrase file accepted, in bytes.
const MAX_PASSPHRASE_FILE_LEN: usize = 4096;

/// PEM label of a plain PKCS#8 private key (RFC 7468 section 10).
const PLAIN_LABEL: &str = "PRIVATE KEY";
/// PEM label of an encrypted PKCS#8 private key (RFC 7468 section 11).
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// How a key file is protected at rest.
///
/// `Debug` never shows the passphrase.
#[derive(Clone)]
pub enum KeyProtection {
    /// Plain PKCS#8 PEM (`PRIVATE KEY`), mode 0600.
    Plain,
    /// Encrypted PKCS#8 (RFC 5958 `EncryptedPrivateKeyInfo`, PEM `ENCRYPTED PRIVATE KEY`):
    /// PKCS#5 v2.1 PBES2 (RFC 8018) with scrypt ([`SCRYPT_LOG_N`], [`SCRYPT_R`], [`SCRYPT_P`],
    /// 16-byte random salt) and AES-256-CBC (random IV), mode 0600. The bytes are the passphrase
    /// as given (UTF-8 or not), zeroized on drop.
    Passphrase(Zeroizing<Vec<u8>>),
}

impl KeyProtection {
    /// The protection the node's settings ask for.
    ///
    /// - `env`: the name of an environment variable holding the passphrase. If it is set, its
    ///   value is the passphrase, byte for byte.
    /// - else `file`: a file holding the passphrase; trailing line breaks (`\n`, `\r\n`) are
    ///   stripped. On Unix it must not be accessible to group or others (no mode bit in 0077:
    ///   0600 or 0400; note that Docker and Kubernetes mount secrets 0444 / 0644 by default, set
    ///   their mode to 0400). At most 4096 bytes.
    /// - else, when neither is configured, [`KeyProtection::Plain`].
    ///
    /// The environment variable wins when both are configured and the variable is set. A
    /// configured source that gives no passphrase (a variable that is not set and no file, or a
    /// file that cannot be read) is an error, never a fallback to `Plain`: a node configured
    /// for encrypted keys never writes or runs on plain ones by mistake.
    ///
    /// # Errors
    /// [`KeyError::PassphraseUnset`] for a configured variable that is not set (and no file);
    /// [`KeyError::EmptyPassphrase`] naming the variable or the file;
    /// [`KeyError::PassphraseFileMode`] for a file open to group or others;
    /// [`KeyError::PassphraseIo`] for a file that is missing, unreadable, not a regular file or
    /// too long.
    pub fn from_sources(env: Option<&str>, file: Option<&Path>) -> Result<KeyProtection, KeyError> {
        if let Some(name) = env {
            if let Some(value) = std::env::var_os(name) {
                let pass = Zeroizing::new(value.into_encoded_bytes());
                if pass.is_empty() {
                    return Err(KeyError::EmptyPassphrase {
                        origin: format!("environment variable {name}"),
                    });
                }
                return Ok(KeyProtection::Passphrase(pass));
            }
        }
        match (file, env) {
            (Some(path), _) => read_passphrase_file(path).map(KeyProtection::Passphrase),
            (None, Some(name)) => Err(KeyError::PassphraseUnset {
                name: name.to_string(),
            }),
            (None, None) => Ok(KeyProtection::Plain),
        }
    }

    /// Whether key files are encrypted under a passphrase.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, KeyProtection::Passphrase(_))
    }
}

impl fmt::Debug for KeyProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProtection::Plain => f.write_str("Plain"),
            KeyProtection::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
        }
    }
}

/// Reads a passphrase file: mode check on the open file (no race with a rename), at most
/// [`MAX_PASSPHRASE_FILE_LEN`] bytes into a buffer that never reallocates, line breaks stripped.
fn read_passphrase_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io_err = |source| KeyError::PassphraseIo {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io_err)?;
    let meta = f.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(std::io::Error::other("not a regular file")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::PassphraseFileMode {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    // Room for the limit, one byte over it and the standard library's probe, so that reading
    // never reallocates and leaves no unzeroized copy behind.
    let mut pass = Zeroizing::new(Vec::with_capacity(MAX_PASSPHRASE_FILE_LEN + 64));
    f.take(MAX_PASSPHRASE_FILE_LEN as u64 + 1)
        .read_to_end(&mut pass)
        .map_err(io_err)?;
    if pass.len() > MAX_PASSPHRASE_FILE_LEN {
        return Err(io_err(std::io::Error::other(format!(
            "longer than {MAX_PASSPHRASE_FILE_LEN} bytes"
        ))));
    }
    while matches!(pass.last(), Some(b'\n' | b'\r')) {
        pass.pop();
    }
    if pass.is_empty() {
        return Err(KeyError::EmptyPassphrase {
            origin: format!("file {}", path.display()),
        });
    }
    Ok(pass)
}

/// Writes a PKCS#8 private key (RFC 5958 `OneAsymmetricKey` DER, e.g. the node's TLS key) to
/// `path` as PEM, created with mode 0600 and never over an existing file:
/// `PRIVATE KEY` under [`KeyProtection::Plain`], `ENCRYPTED PRIVATE KEY` (PBES2, scrypt +
/// AES-256-CBC, see [`KeyProtection::Passphrase`]) under a passphrase. The bytes of `der` are
/// stored as given (not re-encoded), so [`read_pkcs8_der`] returns them unchanged.
///
/// Encrypting costs one scrypt derivation (about 40 ms, see [`SCRYPT_LOG_N`]).
///
/// # Errors
/// [`KeyError::BadPkcs8File`] when `der` is not a PKCS#8 private key; [`KeyError::Io`] when the
/// file exists already or cannot be written.
pub fn write_pkcs8_pem(path: &Path, der: &[u8], p: &KeyProtection) -> Result<(), KeyError> {
    let bad = |detail: String| KeyError::BadPkcs8File {
        path: path.display().to_string(),
        detail,
    };
    PrivateKeyInfo::from_der(der)
        .map_err(|e| bad(format!("the key to write is not PKCS#8 DER: {e}")))?;
    let pem = match p {
        KeyProtection::Plain => pkcs8::der::pem::encode_string(PLAIN_LABEL, LineEnding::LF, der)
            .map(Zeroizing::new)
            .map_err(|e| bad(e.to_string()))?,
        KeyProtection::Passphrase(pass) => {
            let encrypted = encrypt_pkcs8(der, pass).map_err(bad)?;
            pkcs8::der::pem::encode_string(ENCRYPTED_LABEL, LineEnding::LF, &encrypted)
                .map(Zeroizing::new)
                .map_err(|e| bad(e.to_string()))?
        }
    };
    crate::fsutil::write_secret_file(path, pem.as_bytes()).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// `EncryptedPrivateKeyInfo` DER of `der` under `pass`: PBES2, scrypt with fresh random salt,
/// AES-256-CBC with a fresh random IV. The plaintext is copied only into a zeroizing buffer.
fn encrypt_pkcs8(der: &[u8], pass: &[u8]) -> Result<Vec<u8>, String> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let cost = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32)
        .map_err(|e| format!("scrypt parameters: {e}"))?;
    let params =
        pbes2::Parameters::scrypt_aes256cbc(cost, &salt, &iv).map_err(|e| e.to_string())?;
    // CBC with PKCS#7 padding adds 1..=16 bytes.
    let mut buf = Zeroizing::new(Vec::with_capacity(der.len() + 16));
    buf.extend_from_slice(der);
    buf.resize(der.len() + 16, 0);
    let ct_len = params
        .encrypt_in_place(pass, &mut buf, der.len())
        .map_err(|e| e.to_string())?
        .len();
    EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: &buf[..ct_len],
    }
    .to_der()
    .map_err(|e| e.to_string())
}

/// Reads a PKCS#8 private key written by [`write_pkcs8_pem`] (or by OpenSSL) and returns its
/// DER (RFC 5958 `OneAsymmetricKey`), decrypted when `p` holds a passphrase. The file's PEM
/// label must match `p`: `PRIVATE KEY` for [`KeyProtection::Plain`], `ENCRYPTED PRIVATE KEY`
/// (PKCS#5 v2.1 PBES2 with scrypt or PBKDF2-HMAC-SHA-2 and AES-CBC; parameters as the file
/// names them) for [`KeyProtection::Passphrase`].
///
/// Decrypting costs one key derivation (about 40 ms for files this node writes).
///
/// # Errors
/// [`KeyError::Io`] when the file cannot be read; [`KeyError::Encrypted`] for an encrypted
/// file without a passphrase; [`KeyError::NotEncrypted`] for a plain file while a passphrase is
/// configured; [`KeyError::WrongPassphrase`] when the passphrase does not decrypt it;
/// [`KeyError::BadPkcs8File`] for anything else that is not a (supported) PKCS#8 PEM.
pub fn read_pkcs8_der(path: &Path, p: &KeyProtection) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let path_s = || path.display().to_string();
    let bad = |detail: String| KeyError::BadPkcs8File {
        path: path_s(),
        detail,
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path_s(),
            source,
        })?,
    );
    let label = pkcs8::der::pem::decode_label(text.as_bytes()).map_err(|e| bad(e.to_string()))?;
    match (label, p) {
        (PLAIN_LABEL, KeyProtection::Plain) => {
            let (_, doc) = SecretDocument::from_pem(&text).map_err(|e| bad(e.to_string()))?;
            PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| bad(e.to_string()))?;
            Ok(doc.to_bytes())
        }
        (PLAIN_LABEL, KeyProtection::Passphrase(_)) => {
            Err(KeyError::NotEncrypted { path: path_s() })
        }
        (ENCRYPTED_LABEL, KeyProtection::Plain) => Err(KeyError::Encrypted { path: path_s() }),
        (ENCRYPTED_LABEL, KeyProtection::Passphrase(pass)) => {
            let (_, doc) = SecretDocument::from_pem(&text).map_err(|e| bad(e.to_string()))?;
            let info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            let mut buf = Zeroizing::new(info.encrypted_data.to_vec());
            let len = match info
                .encryption_algorithm
                .decrypt_in_place(pass.as_slice(), &mut buf)
            {
                Ok(plain) => plain.len(),
                // pkcs5 0.7 reports a bad CBC padding (the usual sign of a wrong passphrase) as
                // `EncryptFailed`; take both.
                Err(pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed) => {
                    return Err(KeyError::WrongPassphrase { path: path_s() })
                }
                Err(e) => return Err(bad(e.to_string())),
            };
            buf.truncate(len);
            // A wrong passphrase passes the padding check about once in 256 tries and then
            // yields garbage, not a PrivateKeyInfo.
            if PrivateKeyInfo::from_der(&buf).is_err() {
                return Err(KeyError::WrongPassphrase { path: path_s() });
            }
            Ok(buf)
        }
        (other, _) => Err(bad(format!(
            "PEM label {other:?}, expected {PLAIN_LABEL:?} or {ENCRYPTED_LABEL:?}"
        ))),
    }
}

/// OID of hmacWithSHA256 (RFC 8018 appendix B.1.2): the algorithm a PKCS#8 subject key file
/// names, the key being an HMAC-SHA256 key ([`crate::identity::SubjectKey`]).
pub const HMAC_SHA256_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");

/// How a subject key file holds its key ([`read_subject_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKeyForm {
    /// 64 hex digits and a line break: what `hcmr init` writes without a passphrase (and wrote
    /// before subject keys could be encrypted).
    Hex,
    /// PKCS#8 PEM, `PRIVATE KEY` or `ENCRYPTED PRIVATE KEY` (as [`write_pkcs8_pem`]).
    Pkcs8,
}

/// Writes the node's subject key (32 bytes) to `path`, created with mode 0600 and never over
/// an existing file: under [`KeyProtection::Plain`] as 64 hex digits and a line break; under a
/// passphrase as PKCS#8 `ENCRYPTED PRIVATE KEY` ([`write_pkcs8_pem`]) whose `PrivateKeyInfo`
/// names hmacWithSHA256 ([`HMAC_SHA256_OID`], parameters NULL) and holds the 32 bytes as its
/// `privateKey`.
///
/// # Errors
/// [`KeyError::Io`] when the file exists already or cannot be written.
pub fn write_subject_key(
    path: &Path,
    key: &crate::identity::SubjectKey,
    p: &KeyProtection,
) -> Result<(), KeyError> {
    match p {
        KeyProtection::Plain => {
            let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_bytes())));
            crate::fsutil::write_secret_file(path, text.as_bytes()).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })
        }
        KeyProtection::Passphrase(_) => {
            let info = PrivateKeyInfo {
                algorithm: pkcs8::AlgorithmIdentifierRef {
                    oid: HMAC_SHA256_OID,
                    parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
                },
                private_key: key.as_bytes(),
                public_key: None,
            };
            let der = Zeroizing::new(info.to_der().map_err(|e| KeyError::BadPkcs8File {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?);
            write_pkcs8_pem(path, &der, p)
        }
    }
}

/// Reads a subject key file in either form ([`SubjectKeyForm`]). The hex form is read whatever
/// `p` is (a node made before subject keys could be encrypted has one; the node then rewrites
/// it, see [`crate::node::Node::open`]); the PKCS#8 form must match `p` as
/// [`read_pkcs8_der`] says.
///
/// # Errors
/// [`KeyError::Io`]; [`KeyError::BadPkcs8File`] for a file that is neither form, or a PKCS#8
/// key that is not a 32-byte hmacWithSHA256 key; [`KeyError::Encrypted`],
/// [`KeyError::NotEncrypted`] and [`KeyError::WrongPassphrase`] as [`read_pkcs8_der`].
pub fn read_subject_key(
    path: &Path,
    p: &KeyProtection,
) -> Result<(crate::identity::SubjectKey, SubjectKeyForm), KeyError> {
    let bad = |detail: &str| KeyError::BadPkcs8File {
        path: path.display().to_string(),
        detail: detail.to_string(),
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?,
    );
    if !text.trim_start().starts_with("-----BEGIN") {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("expected 64 hex digits, or a PKCS#8 PEM key"))?;
        return Ok((
            crate::identity::SubjectKey::from_bytes(bytes),
            SubjectKeyForm::Hex,
        ));
    }
    let der = read_pkcs8_der(path, p)?;
    let info = PrivateKeyInfo::from_der(&der).map_err(|e| bad(&e.to_string()))?;
    if info.algorithm.oid != HMAC_SHA256_OID {
        return Err(bad(&format!(
            "algorithm {}, expected hmacWithSHA256 ({HMAC_SHA256_OID})",
            info.algorithm.oid
        )));
    }
    let bytes: [u8; 32] = info
        .private_key
        .try_into()
        .map_err(|_| bad("an hmacWithSHA256 subject key is 32 bytes"))?;
    Ok((
        crate::identity::SubjectKey::from_bytes(bytes),
        SubjectKeyForm::Pkcs8,
    ))
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

    /// Writes the key as plain PKCS#8 PEM (RFC 5958, RFC 8410 Ed25519 key; label `PRIVATE KEY`)
    /// to `path`, created with mode 0600 (owner read/write only). Same as
    /// [`NodeKey::write_pem_protected`] with [`KeyProtection::Plain`].
    ///
    /// # Errors
    /// [`KeyError::Io`] when the file exists already or cannot be written.
    pub fn write_pem(&self, path: &Path) -> Result<(), KeyError> {
        self.write_pem_protected(path, &KeyProtection::Plain)
    }

    /// Writes the key as PKCS#8 PEM to `path`, created with mode 0600 and never over an existing
    /// file: plain (`PRIVATE KEY`) or, under a passphrase, an RFC 5958 `EncryptedPrivateKeyInfo`
    /// (`ENCRYPTED PRIVATE KEY`, PKCS#5 v2.1 PBES2 with scrypt + AES-256-CBC, RFC 8018). See
    /// [`write_pkcs8_pem`].
    ///
    /// # Errors
    /// [`KeyError::Io`] when the file exists already or cannot be written.
    pub fn write_pem_protected(&self, path: &Path, p: &KeyProtection) -> Result<(), KeyError> {
        let der = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::BadKeyFile {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        write_pkcs8_pem(path, der.as_bytes(), p)
    }

    /// Reads a plain PKCS#8 PEM Ed25519 key written by [`NodeKey::write_pem`]. Same as
    /// [`NodeKey::read_pem_protected`] with [`KeyProtection::Plain`].
    ///
    /// # Errors
    /// As [`NodeKey::read_pem_protected`]; an encrypted file gives [`KeyError::Encrypted`].
    pub fn read_pem(path: &Path) -> Result<Self, KeyError> {
        Self::read_pem_protected(path, &KeyProtection::Plain)
    }

    /// Reads an Ed25519 key (RFC 8410) from PKCS#8 PEM, decrypting it under `p` (see
    /// [`read_pkcs8_der`]: the file must be encrypted exactly when `p` holds a passphrase).
    ///
    /// # Errors
    /// [`KeyError::Io`], [`KeyError::Encrypted`], [`KeyError::NotEncrypted`],
    /// [`KeyError::WrongPassphrase`], [`KeyError::BadPkcs8File`]; [`KeyError::BadKeyFile`] for a
    /// PKCS#8 key that is not Ed25519.
    pub fn read_pem_protected(path: &Path, p: &KeyProtection) -> Result<Self, KeyError> {
        let der = read_pkcs8_der(path, p)?;
        let signing = SigningKey::from_pkcs8_der(&der).map_err(|e| KeyError::BadKeyFile {
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
mod tests;
