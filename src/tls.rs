//! TLS for every listener, and mutual TLS between nodes bound to their Ed25519 signing keys.
//!
//! Each node holds a TLS key (ECDSA P-256, which browsers accept for the checkpoint page, unlike
//! Ed25519) and a self-signed X.509 certificate for it
//! (`tls/node.crt`, `tls/node.key`, written by `hcmr init`). The certificate carries one
//! non-critical extension, the **node binding** (OID [`BINDING_OID`], 2.25.N), whose value is
//! CBOR (RFC 8949):
//!
//! ```text
//! [ 1,                      ; version
//!   "510000",               ; the province, GB/T 2260
//!   [ [ key: bstr(32), sig: bstr(64) ], ... ] ]   ; certifications, oldest first
//! ```
//!
//! A certification is an Ed25519 signature by one of the province's node signing keys over
//! `"hcmr-tls-binding-v1\0" || province (6 ASCII digits) || SHA-256(SubjectPublicKeyInfo DER)`.
//! The TLS handshake proves possession of the TLS key; a certification proves that the holder
//! of a node signing key vouched for that TLS key. A peer therefore accepts a connection as
//! "province P" exactly when a certification verifies under a key it already trusts for P:
//! pinned in a bilateral agreement or current in P's synced trust feed. No certificate
//! authority is involved, and nothing but the agreement and the feed decides who a peer is.
//!
//! On a key rotation the node adds a certification by the new key and re-signs its certificate;
//! peers that have not yet synced the rotation still accept the old key's certification until
//! that key is withdrawn.
//!
//! Clients that are not nodes (provincial platforms, the CLI, checkpoint devices) pin the
//! node's certificate file: [`pinned_client_config`] accepts the server whose certificate key
//! equals the pinned certificate's key, or that chains to it as a root (for operators who use a
//! provincial PKI for the platform-facing side).

use std::path::Path;
use std::sync::Arc;

use ciborium::value::{Integer, Value};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::keyfile::KeyProtection;
use crate::keys::{NodeKey, PublicKey};
use crate::province::Province;

mod config;
pub(crate) mod stream;

pub use config::{peer_client_config, pinned_client_config, provider, server_config, CertSource};

/// Object identifier of the node binding extension: 2.25.7521134463811023665 (a UUID-form OID,
/// ITU-T X.667; the number spells "hcmrtls1").
pub const BINDING_OID: &[u64] = &[2, 25, 7_521_134_463_811_023_665];

/// Domain separation prefix of a certification.
const BINDING_CONTEXT: &[u8] = b"hcmr-tls-binding-v1\0";

/// Domain separation prefix of a verify replica's certification (binding version 2): a
/// different message, so that a replica's certificate never passes as its province's node
/// certificate at a peer, nor a node certificate as a replica's.
const REPLICA_BINDING_CONTEXT: &[u8] = b"hcmr-tls-replica-v1\0";

/// Words in every refusal of a peer's certificate by this node as a client (so a caller can
/// tell "wrong node" from "node down").
pub const PEER_REFUSED: &str = "peer certificate refused";

/// Longest certificate accepted from a peer, in bytes.
const MAX_CERT_BYTES: usize = 8192;

/// Most certifications one certificate may carry.
const MAX_CERTIFICATIONS: usize = 16;

/// Validity of a node certificate, in seconds (five years).
const CERT_VALIDITY_SECS: i64 = 5 * 365 * 86_400;

/// Errors of node certificates and TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// A certificate that is not X.509 DER, or is too long.
    #[error("certificate: not X.509 DER: {0}")]
    BadCertificate(String),
    /// The certificate has no node binding extension (it is not an hcmr node certificate).
    #[error("certificate has no hcmr node binding (extension {oid}): not a node certificate")]
    NoBinding {
        /// The OID looked for.
        oid: String,
    },
    /// The node binding does not decode.
    #[error("certificate node binding: {0}")]
    BadBinding(String),
    /// A certification whose signature does not verify.
    #[error("certificate node binding: the certification by key {kid} does not verify")]
    ForgedCertification {
        /// The key that supposedly signed.
        kid: String,
    },
    /// Outside the certificate's validity period.
    #[error("certificate is not valid at {now} (valid {not_before} to {not_after}, seconds since the Unix epoch)")]
    Expired {
        /// The time checked.
        now: i64,
        /// Start of validity.
        not_before: i64,
        /// End of validity.
        not_after: i64,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
    /// The TLS library refused a configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] crate::keyfile::KeyFileError),
}

/// One node signing key's signature over a TLS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certification {
    /// The node signing key.
    pub key: PublicKey,
    /// Ed25519 signature (RFC 8032) over [`binding_message`].
    pub signature: [u8; 64],
}

/// The node binding extension's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The province the certificate speaks for.
    pub province: Province,
    /// Certifications, oldest first.
    pub certifications: Vec<Certification>,
    /// A verify replica's binding (version 2, certifications over [`replica_binding_message`])
    /// instead of a node's (version 1).
    pub replica: bool,
}

/// The message a node key signs to certify a TLS key: the context string, the province's six
/// digits, and SHA-256 of the TLS key's SubjectPublicKeyInfo (DER).
pub fn binding_message(province: Province, spki_der: &[u8]) -> Vec<u8> {
    message_with(BINDING_CONTEXT, province, spki_der)
}

/// As [`binding_message`], for a verify replica's TLS key: `"hcmr-tls-replica-v1\0" ||
/// province || SHA-256(spki)`.
pub fn replica_binding_message(province: Province, spki_der: &[u8]) -> Vec<u8> {
    message_with(REPLICA_BINDING_CONTEXT, province, spki_der)
}

fn message_with(context: &[u8], province: Province, spki_der: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + 6 + 32);
    m.extend_from_slice(context);
    m.extend_from_slice(province.to_string().as_bytes());
    m.extend_from_slice(&Sha256::digest(spki_der));
    m
}

/// Signs a TLS key's SubjectPublicKeyInfo with a node key.
pub fn certify(node_key: &NodeKey, province: Province, spki_der: &[u8]) -> Certification {
    Certification {
        key: node_key.public(),
        signature: node_key.sign(&binding_message(province, spki_der)),
    }
}

/// Signs a verify replica's TLS key (SubjectPublicKeyInfo, DER) with the primary's node key:
/// the enrollment of a replica (docs/deploy.md section 2).
pub fn certify_replica(node_key: &NodeKey, province: Province, spki_der: &[u8]) -> Certification {
    Certification {
        key: node_key.public(),
        signature: node_key.sign(&replica_binding_message(province, spki_der)),
    }
}

impl Binding {
    /// The CBOR encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let certs = self
            .certifications
            .iter()
            .map(|c| {
                Value::Array(vec![
                    Value::Bytes(c.key.to_bytes().to_vec()),
                    Value::Bytes(c.signature.to_vec()),
                ])
            })
            .collect();
        crate::cbor::encode(&Value::Array(vec![
            Value::Integer(Integer::from(if self.replica { 2u8 } else { 1u8 })),
            Value::Text(self.province.to_string()),
            Value::Array(certs),
        ]))
    }

    /// Decodes the CBOR encoding; does not check signatures.
    ///
    /// # Errors
    /// [`TlsError::BadBinding`] naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Binding, TlsError> {
        let bad = |s: &str| TlsError::BadBinding(s.to_string());
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| TlsError::BadBinding(e.to_string()))?;
        let Value::Array(items) = v else {
            return Err(bad("not a CBOR array"));
        };
        let [version, province, certs] = items.as_slice() else {
            return Err(bad("not [version, province, certifications]"));
        };
        let replica = match version.as_integer().map(i128::from) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(bad("version is not 1 (node) or 2 (verify replica)")),
        };
        let province = province
            .as_text()
            .ok_or_else(|| bad("province is not text"))?;
        let province: Province = province
            .parse()
            .map_err(|e: crate::province::ProvinceError| TlsError::BadBinding(e.to_string()))?;
        let certs = certs
            .as_array()
            .ok_or_else(|| bad("certifications are not an array"))?;
        if certs.is_empty() || certs.len() > MAX_CERTIFICATIONS {
            return Err(bad("between 1 and 16 certifications expected"));
        }
        let mut certifications = Vec::with_capacity(certs.len());
        for c in certs {
            let pair = c
                .as_array()
                .ok_or_else(|| bad("a certification is not [key, signature]"))?;
            let [key, sig] = pair.as_slice() else {
                return Err(bad("a certification is not [key, signature]"));
            };
            let key = key
                .as_bytes()
                .ok_or_else(|| bad("certification key is not bytes"))?;
            let key =
                PublicKey::from_bytes(key).map_err(|e| TlsError::BadBinding(e.to_string()))?;
            let signature: [u8; 64] = sig
                .as_bytes()
                .and_then(|s| s.as_slice().try_into().ok())
                .ok_or_else(|| bad("certification signature is not 64 bytes"))?;
            certifications.push(Certification { key, signature });
        }
        Ok(Binding {
            province,
            certifications,
            replica,
        })
    }
}

/// What a node certificate proves once checked: the province it speaks for and the node keys
/// whose certifications of its TLS key verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The province named in the binding.
    pub province: Province,
    /// Node signing keys that certified the certificate's TLS key (all certifications verified).
    pub keys: Vec<PublicKey>,
    /// A verify replica's certificate (binding version 2): it speaks for no province towards
    /// peers, only for itself towards its primary, which also checks `spki_sha256` against
    /// the replicas it enrolled.
    pub replica: bool,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (DER).
    pub spki_sha256: [u8; 32],
}

impl PeerCertificate {
    /// Whether any certifying key is one of `trusted`.
    pub fn certified_by_any(&self, trusted: &[PublicKey]) -> bool {
        self.keys.iter().any(|k| trusted.contains(k))
    }
}

/// Checks a node certificate (DER) at `now` (seconds since the Unix epoch): X.509 that parses
/// with nothing after it, within its validity period, with exactly one node binding whose every
/// certification verifies over this certificate's own SubjectPublicKeyInfo.
///
/// The TLS handshake separately proves that the peer holds the certificate's private key.
///
/// # Errors
/// [`TlsError::BadCertificate`], [`TlsError::Expired`], [`TlsError::NoBinding`],
/// [`TlsError::BadBinding`] or [`TlsError::ForgedCertification`].
pub fn check_node_certificate(der: &[u8], now: i64) -> Result<PeerCertificate, TlsError> {
    if der.len() > MAX_CERT_BYTES {
        return Err(TlsError::BadCertificate(format!(
            "{} bytes, more than {MAX_CERT_BYTES}",
            der.len()
        )));
    }
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(TlsError::BadCertificate(
            "bytes after the certificate".to_string(),
        ));
    }
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now < not_before || now > not_after {
        return Err(TlsError::Expired {
            now,
            not_before,
            not_after,
        });
    }
    let oid = x509_parser::oid_registry::Oid::from(BINDING_OID)
        .map_err(|_| TlsError::BadBinding("OID".to_string()))?;
    let mut found = cert.extensions().iter().filter(|e| e.oid == oid);
    let ext = found.next().ok_or_else(|| TlsError::NoBinding {
        oid: oid.to_id_string(),
    })?;
    if found.next().is_some() {
        return Err(TlsError::BadBinding(
            "the extension appears twice".to_string(),
        ));
    }
    let binding = Binding::decode(ext.value)?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let msg = if binding.replica {
        replica_binding_message(binding.province, spki)
    } else {
        binding_message(binding.province, spki)
    };
    let mut keys = Vec::with_capacity(binding.certifications.len());
    for c in &binding.certifications {
        if !crate::keys::verify_signature(&c.key, &msg, &c.signature) {
            return Err(TlsError::ForgedCertification {
                kid: c.key.kid.to_string(),
            });
        }
        keys.push(c.key);
    }
    Ok(PeerCertificate {
        province: binding.province,
        keys,
        replica: binding.replica,
        spki_sha256: Sha256::digest(spki).into(),
    })
}

/// A node's TLS key and certificate.
pub struct TlsIdentity {
    key_der: zeroize::Zeroizing<Vec<u8>>,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsIdentity({} byte certificate)", self.cert_der.len())
    }
}

/// Builds and self-signs a node certificate for `key` with `names` (DNS names or IP addresses)
/// and `binding`, valid from a day before `now` for five years.
fn self_sign(
    key: &rcgen::KeyPair,
    province: Province,
    names: &[String],
    binding: &Binding,
    now: i64,
) -> Result<Vec<u8>, TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(gen)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        format!("hcmr node {province} {}", province.name_en()),
    );
    params.distinguished_name = dn;
    let ts = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).map_err(|e| TlsError::Generate(e.to_string()))
    };
    params.not_before = ts(now - 86_400)?;
    params.not_after = ts(now + CERT_VALIDITY_SECS)?;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        BINDING_OID,
        binding.encode(),
    )];
    let cert = params.self_signed(key).map_err(gen)?;
    Ok(cert.der().to_vec())
}

/// The names a node certificate always carries: `localhost`, `127.0.0.1` and `::1`, plus the
/// host of `endpoint` when given.
pub fn certificate_names(endpoint: Option<&str>) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = endpoint
        .and_then(|e| e.parse::<http::Uri>().ok())
        .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_string()))
    {
        if !names.contains(&host) {
            names.push(host);
        }
    }
    names
}

impl TlsIdentity {
    /// A fresh TLS key and a certificate certified by `node_key`, at `now` (seconds since the
    /// Unix epoch).
    ///
    /// # Errors
    /// [`TlsError::Generate`].
    pub fn generate(
        province: Province,
        node_key: &NodeKey,
        names: &[String],
        now: i64,
    ) -> Result<TlsIdentity, TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let binding = Binding {
            province,
            certifications: vec![certify(node_key, province, &spki)],
            replica: false,
        };
        let cert_der = self_sign(&key, province, names, &binding, now)?;
        Ok(TlsIdentity {
            key_der: zeroize::Zeroizing::new(key.serialize_der()),
            cert_der,
        })
    }

    /// A fresh TLS key for a verify replica, not yet certified: the key and its
    /// SubjectPublicKeyInfo (DER), which the primary certifies at enrollment
    /// ([`certify_replica`]); then [`TlsIdentity::replica`] makes the certificate.
    ///
    /// # Errors
    /// [`TlsError::Generate`].
    pub fn generate_replica_key() -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        Ok((zeroize::Zeroizing::new(key.serialize_der()), spki))
    }

    /// A verify replica's identity: its TLS key (PKCS#8 DER, from
    /// [`TlsIdentity::generate_replica_key`]) and a certificate with a version 2 binding holding
    /// the primary's `certification` of it, with `names`, at `now` (seconds since the Unix
    /// epoch).
    ///
    /// # Errors
    /// [`TlsError::Generate`]; [`TlsError::ForgedCertification`] when the certification does
    /// not verify over this key.
    pub fn replica(
        key_der: zeroize::Zeroizing<Vec<u8>>,
        province: Province,
        names: &[String],
        certification: Certification,
        now: i64,
    ) -> Result<TlsIdentity, TlsError> {
        let key = rcgen::KeyPair::try_from(key_der.as_slice())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        if !crate::keys::verify_signature(
            &certification.key,
            &replica_binding_message(province, &spki),
            &certification.signature,
        ) {
            return Err(TlsError::ForgedCertification {
                kid: certification.key.kid.to_string(),
            });
        }
        let binding = Binding {
            province,
            certifications: vec![certification],
            replica: true,
        };
        let cert_der = self_sign(&key, province, names, &binding, now)?;
        Ok(TlsIdentity { key_der, cert_der })
    }

    /// The same TLS key and names, re-signed with a certification by `node_key` added (after a
    /// key rotation); at most the 8 newest certifications are kept.
    ///
    /// Certifications by withdrawn keys stay: a peer that knows of the withdrawal ignores them,
    /// and a peer that does not yet know can still connect and sync to learn it (an attacker
    /// holding a withdrawn key could certify a certificate of their own anyway).
    ///
    /// # Errors
    /// [`TlsError`] when the current certificate or key does not parse.
    pub fn recertified(&self, node_key: &NodeKey, now: i64) -> Result<TlsIdentity, TlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
        let oid = x509_parser::oid_registry::Oid::from(BINDING_OID)
            .map_err(|_| TlsError::BadBinding("OID".to_string()))?;
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid == oid)
            .ok_or_else(|| TlsError::NoBinding {
                oid: oid.to_id_string(),
            })?;
        let mut binding = Binding::decode(ext.value)?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*ip) {
                            names.push(std::net::IpAddr::from(a).to_string());
                        } else if let Ok(a) = <[u8; 16]>::try_from(*ip) {
                            names.push(std::net::IpAddr::from(a).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let spki = cert.tbs_certificate.subject_pki.raw.to_vec();
        binding
            .certifications
            .retain(|c| c.key != node_key.public());
        binding
            .certifications
            .push(certify(node_key, binding.province, &spki));
        let excess = binding.certifications.len().saturating_sub(8);
        binding.certifications.drain(..excess);
        let key = rcgen::KeyPair::try_from(self.key_der.as_slice())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert_der = self_sign(&key, binding.province, &names, &binding, now)?;
        Ok(TlsIdentity {
            key_der: self.key_der.clone(),
            cert_der,
        })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate as PEM ("CERTIFICATE").
    pub fn certificate_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert_der)
    }

    /// Writes the certificate (PEM, mode 0644, replaced atomically) and, when `key_file` is
    /// given, the private key (PKCS#8 PEM, mode 0600, encrypted under `protection`).
    ///
    /// # Errors
    /// [`TlsError::File`] or [`TlsError::Key`].
    pub fn save(
        &self,
        cert_file: &Path,
        key_file: Option<&Path>,
        protection: &KeyProtection,
    ) -> Result<(), TlsError> {
        if let Some(k) = key_file {
            crate::keyfile::write_pkcs8_pem(k, &self.key_der, protection)?;
        }
        let tmp = cert_file.with_extension("crt.tmp");
        let file_err = |e: std::io::Error| TlsError::File {
            path: cert_file.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::write(&tmp, self.certificate_pem()).map_err(file_err)?;
        std::fs::rename(&tmp, cert_file).map_err(file_err)?;
        Ok(())
    }

    /// Reads a certificate (PEM) and its key (PKCS#8 PEM, decrypted under `protection`).
    ///
    /// # Errors
    /// [`TlsError::File`], [`TlsError::BadCertificate`] or [`TlsError::Key`].
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        protection: &KeyProtection,
    ) -> Result<TlsIdentity, TlsError> {
        let cert_der = read_certificates(cert_file)?
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::File {
                path: cert_file.display().to_string(),
                detail: "no CERTIFICATE in the file".to_string(),
            })?;
        let key_der = crate::keyfile::read_pkcs8_der(key_file, protection)?;
        Ok(TlsIdentity { key_der, cert_der })
    }

    /// The rustls signing key and certificate chain.
    ///
    /// # Errors
    /// [`TlsError::Config`] when rustls cannot use the key.
    pub fn certified_key(&self) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.to_vec()));
        let signer = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(self.cert_der.clone())],
            signer,
        )))
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// Reads every CERTIFICATE block of a PEM file, as DER.
///
/// # Errors
/// [`TlsError::File`] naming the file.
pub fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    let file_err = |detail: String| TlsError::File {
        path: path.display().to_string(),
        detail,
    };
    // A certificate chain is a few KiB; 1 MiB is ample, and checked before reading.
    let text = crate::fsutil::read_capped(path, 1 << 20).map_err(|e| file_err(e.to_string()))?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&text)
        .map(|c| c.map(|c| c.to_vec()))
        .collect();
    let certs = certs.map_err(|e| file_err(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_err("no CERTIFICATE in the file".to_string()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests;
