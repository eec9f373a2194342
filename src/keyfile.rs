//! The node's key files: signing keys and the subject key at rest.
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

use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::{pbes2, scrypt};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::keys::NodeKey;

/// Errors of key files and passphrases.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
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
/// That is 128 * r * N = 16 MiB of memory per derivation (one write, one read; its time is in
/// BENCHMARKS.md, "Key files"). It is OpenSSL's `-scrypt` default and the largest N at r = 8
/// that OpenSSL accepts when it *reads* a key: its scrypt memory limit (32 MiB) refuses
/// N = 2^15, which would leave the operator no standard tool to inspect a key file or change its
/// passphrase (`openssl pkcs8 -topk8 -scrypt -in tls.key -out new.key`). Higher costs buy
/// little here: pkcs8's own `PrivateKeyInfo::encrypt` takes scrypt's recommended N = 2^17 (8
/// times the work at every start), and OWASP asks N = 2^17 for stored password hashes, but a
/// key file also sits behind mode 0600 and the node must read it at every start; what protects
/// a copied file is a high-entropy passphrase (e.g. 20 random characters), each bit of which
/// counts as much as doubling N. Reading honours whatever parameters the file names.
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
    /// [`KeyFileError::PassphraseUnset`] for a configured variable that is not set (and no file);
    /// [`KeyFileError::EmptyPassphrase`] naming the variable or the file;
    /// [`KeyFileError::PassphraseFileMode`] for a file open to group or others;
    /// [`KeyFileError::PassphraseIo`] for a file that is missing, unreadable, not a regular file or
    /// too long.
    pub fn from_sources(
        env: Option<&str>,
        file: Option<&Path>,
    ) -> Result<KeyProtection, KeyFileError> {
        if let Some(name) = env {
            if let Some(value) = std::env::var_os(name) {
                let pass = Zeroizing::new(value.into_encoded_bytes());
                if pass.is_empty() {
                    return Err(KeyFileError::EmptyPassphrase {
                        origin: format!("environment variable {name}"),
                    });
                }
                return Ok(KeyProtection::Passphrase(pass));
            }
        }
        match (file, env) {
            (Some(path), _) => read_passphrase_file(path).map(KeyProtection::Passphrase),
            (None, Some(name)) => Err(KeyFileError::PassphraseUnset {
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
fn read_passphrase_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let io_err = |source| KeyFileError::PassphraseIo {
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
            return Err(KeyFileError::PassphraseFileMode {
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
        return Err(KeyFileError::EmptyPassphrase {
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
/// Encrypting costs one scrypt derivation (see [`SCRYPT_LOG_N`]).
///
/// # Errors
/// [`KeyFileError::BadPkcs8File`] when `der` is not a PKCS#8 private key; [`KeyFileError::Io`] when the
/// file exists already or cannot be written.
pub fn write_pkcs8_pem(path: &Path, der: &[u8], p: &KeyProtection) -> Result<(), KeyFileError> {
    let bad = |detail: String| KeyFileError::BadPkcs8File {
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
    crate::fsutil::write_secret_file(path, pem.as_bytes()).map_err(|source| KeyFileError::Io {
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
/// Decrypting costs one key derivation (see [`SCRYPT_LOG_N`] for the files this node writes).
///
/// # Errors
/// [`KeyFileError::Io`] when the file cannot be read; [`KeyFileError::Encrypted`] for an encrypted
/// file without a passphrase; [`KeyFileError::NotEncrypted`] for a plain file while a passphrase is
/// configured; [`KeyFileError::WrongPassphrase`] when the passphrase does not decrypt it;
/// [`KeyFileError::BadPkcs8File`] for anything else that is not a (supported) PKCS#8 PEM.
pub fn read_pkcs8_der(path: &Path, p: &KeyProtection) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let path_s = || path.display().to_string();
    let bad = |detail: String| KeyFileError::BadPkcs8File {
        path: path_s(),
        detail,
    };
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
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
            Err(KeyFileError::NotEncrypted { path: path_s() })
        }
        (ENCRYPTED_LABEL, KeyProtection::Plain) => Err(KeyFileError::Encrypted { path: path_s() }),
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
                    return Err(KeyFileError::WrongPassphrase { path: path_s() })
                }
                Err(e) => return Err(bad(e.to_string())),
            };
            buf.truncate(len);
            // A wrong passphrase passes the padding check about once in 256 tries and then
            // yields garbage, not a PrivateKeyInfo.
            if PrivateKeyInfo::from_der(&buf).is_err() {
                return Err(KeyFileError::WrongPassphrase { path: path_s() });
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
/// [`KeyFileError::Io`] when the file exists already or cannot be written.
pub fn write_subject_key(
    path: &Path,
    key: &crate::identity::SubjectKey,
    p: &KeyProtection,
) -> Result<(), KeyFileError> {
    match p {
        KeyProtection::Plain => {
            let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_bytes())));
            crate::fsutil::write_secret_file(path, text.as_bytes()).map_err(|source| {
                KeyFileError::Io {
                    path: path.display().to_string(),
                    source,
                }
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
            let der = Zeroizing::new(info.to_der().map_err(|e| KeyFileError::BadPkcs8File {
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
/// [`KeyFileError::Io`]; [`KeyFileError::BadPkcs8File`] for a file that is neither form, or a PKCS#8
/// key that is not a 32-byte hmacWithSHA256 key; [`KeyFileError::Encrypted`],
/// [`KeyFileError::NotEncrypted`] and [`KeyFileError::WrongPassphrase`] as [`read_pkcs8_der`].
pub fn read_subject_key(
    path: &Path,
    p: &KeyProtection,
) -> Result<(crate::identity::SubjectKey, SubjectKeyForm), KeyFileError> {
    let bad = |detail: &str| KeyFileError::BadPkcs8File {
        path: path.display().to_string(),
        detail: detail.to_string(),
    };
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
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

/// Reading and writing a [`NodeKey`] as a key file (PKCS#8 PEM, mode 0600).
pub trait NodeKeyFile: Sized {
    /// Writes the key as plain PKCS#8 PEM (RFC 5958, RFC 8410 Ed25519 key; label `PRIVATE KEY`)
    /// to `path`, created with mode 0600; see [`NodeKeyFile::write_pem_protected`].
    ///
    /// # Errors
    /// [`KeyFileError::Io`] when the file exists already or cannot be written.
    fn write_pem(&self, path: &Path) -> Result<(), KeyFileError>;
    /// Writes the key as PKCS#8 PEM to `path`, plain or encrypted under `p`.
    ///
    /// # Errors
    /// [`KeyFileError::Io`] when the file exists already or cannot be written.
    fn write_pem_protected(&self, path: &Path, p: &KeyProtection) -> Result<(), KeyFileError>;
    /// Reads a plain PKCS#8 PEM Ed25519 key.
    ///
    /// # Errors
    /// As [`NodeKeyFile::read_pem_protected`].
    fn read_pem(path: &Path) -> Result<Self, KeyFileError>;
    /// Reads an Ed25519 key from PKCS#8 PEM, decrypting it under `p`.
    ///
    /// # Errors
    /// As [`read_pkcs8_der`]; [`KeyFileError::BadKeyFile`] for a key that is not Ed25519.
    fn read_pem_protected(path: &Path, p: &KeyProtection) -> Result<Self, KeyFileError>;
}

impl NodeKeyFile for NodeKey {
    fn write_pem(&self, path: &Path) -> Result<(), KeyFileError> {
        self.write_pem_protected(path, &KeyProtection::Plain)
    }

    fn write_pem_protected(&self, path: &Path, p: &KeyProtection) -> Result<(), KeyFileError> {
        let der = self.to_pkcs8_der().map_err(|e| KeyFileError::BadKeyFile {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        write_pkcs8_pem(path, &der, p)
    }

    fn read_pem(path: &Path) -> Result<Self, KeyFileError> {
        Self::read_pem_protected(path, &KeyProtection::Plain)
    }

    fn read_pem_protected(path: &Path, p: &KeyProtection) -> Result<Self, KeyFileError> {
        let der = read_pkcs8_der(path, p)?;
        NodeKey::from_pkcs8_der(&der).map_err(|e| KeyFileError::BadKeyFile {
            path: path.display().to_string(),
            detail: match e {
                crate::keys::KeyError::Pkcs8(d) => d,
                other => other.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests;
