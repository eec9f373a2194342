//! The node's sled database and its typed records.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `b"province"` | GB/T 2260 code, 6 ASCII digits |
//! | `keys` | kid (8 bytes) | CBOR `[public_key: bstr .size 32, created_at: uint]` |
//! | `agreements` | id (16 bytes) ‖ version (u32 big-endian) | [`SignedAgreement::to_record`] |
//! | `peers` | province (u32 big-endian) | CBOR `[endpoint: tstr, updated_at: uint]` |
//! | `issued` | cti (16 bytes) | CBOR `[iat, exp, status, status_valid_until, subject_hash: bstr .size 16]` |
//!
//! The issued-code log holds no name and no document number: only the keyed subject hash.
//! Every write method flushes before returning, so an acknowledged change survives a crash of the
//! process.

use std::path::Path;

use ciborium::value::{Integer, Value};

use crate::agreement::{AgreementError, AgreementId, SignedAgreement};
use crate::identity::SubjectHash;
use crate::keys::PublicKey;
use crate::province::Province;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, or the database is locked by another process).
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    /// A record does not decode: the data directory is damaged or from another program.
    #[error("database record in tree {tree} is corrupt: {detail}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl From<AgreementError> for StoreError {
    fn from(e: AgreementError) -> Self {
        StoreError::Corrupt {
            tree: "agreements",
            detail: e.to_string(),
        }
    }
}

/// A node's public key as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key and its kid.
    pub key: PublicKey,
    /// When the key was made, seconds since the Unix epoch (UTC).
    pub created_at: u64,
}

/// One entry of the issued-code log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    /// Code id (`cti`), 16 bytes.
    pub cti: [u8; 16],
    /// Issued at, seconds since the Unix epoch (UTC).
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch (UTC).
    pub exp: u64,
    /// Status number as issued (1 green, 2 yellow, 3 red).
    pub status: u64,
    /// Status valid until, seconds since the Unix epoch (UTC).
    pub status_valid_until: u64,
    /// Keyed subject hash; never the document number.
    pub subject_hash: SubjectHash,
}

/// The node's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    keys: sled::Tree,
    agreements: sled::Tree,
    peers: sled::Tree,
    issued: sled::Tree,
}

fn uint(v: u64) -> Value {
    Value::Integer(Integer::from(v))
}

fn corrupt(tree: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        tree,
        detail: detail.into(),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

fn agreement_key(id: AgreementId, version: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id.0);
    k[16..].copy_from_slice(&version.to_be_bytes());
    k
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Sled`], e.g. when another process holds the database.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Store {
            meta: db.open_tree("meta")?,
            keys: db.open_tree("keys")?,
            agreements: db.open_tree("agreements")?,
            peers: db.open_tree("peers")?,
            issued: db.open_tree("issued")?,
            db,
        })
    }

    /// Makes all writes so far durable.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The province recorded at `init`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when missing or invalid.
    pub fn province(&self) -> Result<Province, StoreError> {
        let v = self
            .meta
            .get(b"province")?
            .ok_or_else(|| corrupt("meta", "no province recorded (run hcmr init)"))?;
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("meta", "province is not a GB/T 2260 code"))
    }

    /// Records the node's province (at `init`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn set_province(&self, p: Province) -> Result<(), StoreError> {
        self.meta.insert(b"province", p.to_string().as_bytes())?;
        self.flush().await
    }

    /// Records one of the node's public keys.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_key(&self, rec: &KeyRecord) -> Result<(), StoreError> {
        let v = crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(rec.key.to_bytes().to_vec()),
            uint(rec.created_at),
        ]));
        self.keys.insert(rec.key.kid.0, v)?;
        self.flush().await
    }

    /// The node's recorded public keys.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.keys
            .iter()
            .map(|r| {
                let (_, v) = r?;
                let val =
                    crate::cbor::decode_exact(&v).map_err(|e| corrupt("keys", e.to_string()))?;
                match val {
                    Value::Array(a) if a.len() == 2 => {
                        let Value::Bytes(k) = &a[0] else {
                            return Err(corrupt("keys", "key is not bytes"));
                        };
                        Ok(KeyRecord {
                            key: PublicKey::from_bytes(k)
                                .map_err(|e| corrupt("keys", e.to_string()))?,
                            created_at: as_u64(&a[1])
                                .ok_or_else(|| corrupt("keys", "created_at"))?,
                        })
                    }
                    _ => Err(corrupt("keys", "not a key record")),
                }
            })
            .collect()
    }

    /// Stores an agreement version, replacing the record of the same id and version.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_agreement(&self, a: &SignedAgreement) -> Result<(), StoreError> {
        self.agreements
            .insert(agreement_key(a.body().id, a.body().version), a.to_record())?;
        self.flush().await
    }

    /// The newest stored version of agreement `id`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement(&self, id: AgreementId) -> Result<Option<SignedAgreement>, StoreError> {
        match self.agreements.scan_prefix(id.0).next_back() {
            None => Ok(None),
            Some(r) => Ok(Some(SignedAgreement::from_record(&r?.1)?)),
        }
    }

    /// A stored agreement version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement_version(
        &self,
        id: AgreementId,
        version: u32,
    ) -> Result<Option<SignedAgreement>, StoreError> {
        match self.agreements.get(agreement_key(id, version))? {
            None => Ok(None),
            Some(v) => Ok(Some(SignedAgreement::from_record(&v)?)),
        }
    }

    /// Every stored agreement version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreements(&self) -> Result<Vec<SignedAgreement>, StoreError> {
        self.agreements
            .iter()
            .map(|r| Ok(SignedAgreement::from_record(&r?.1)?))
            .collect()
    }

    /// Records where a peer province's node is reached.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_peer(&self, p: Province, endpoint: &str, now: u64) -> Result<(), StoreError> {
        let v = crate::cbor::encode(&Value::Array(vec![Value::Text(endpoint.into()), uint(now)]));
        self.peers.insert(p.code().to_be_bytes(), v)?;
        self.flush().await
    }

    /// The recorded endpoint of a peer province's node.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peer_endpoint(&self, p: Province) -> Result<Option<String>, StoreError> {
        let Some(v) = self.peers.get(p.code().to_be_bytes())? else {
            return Ok(None);
        };
        match crate::cbor::decode_exact(&v).map_err(|e| corrupt("peers", e.to_string()))? {
            Value::Array(a) if a.len() == 2 => match &a[0] {
                Value::Text(t) => Ok(Some(t.clone())),
                _ => Err(corrupt("peers", "endpoint is not text")),
            },
            _ => Err(corrupt("peers", "not a peer record")),
        }
    }

    /// Appends to the issued-code log and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn log_issued(&self, r: &IssuedRecord) -> Result<(), StoreError> {
        let v = crate::cbor::encode(&Value::Array(vec![
            uint(r.iat),
            uint(r.exp),
            uint(r.status),
            uint(r.status_valid_until),
            Value::Bytes(r.subject_hash.0.to_vec()),
        ]));
        self.issued.insert(r.cti, v)?;
        self.flush().await
    }

    /// An entry of the issued-code log by `cti`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn issued(&self, cti: &[u8; 16]) -> Result<Option<IssuedRecord>, StoreError> {
        let Some(v) = self.issued.get(cti)? else {
            return Ok(None);
        };
        let bad = || corrupt("issued", "not an issued-code record");
        let Value::Array(a) =
            crate::cbor::decode_exact(&v).map_err(|e| corrupt("issued", e.to_string()))?
        else {
            return Err(bad());
        };
        let [iat, exp, status, until, Value::Bytes(h)] = a.as_slice() else {
            return Err(bad());
        };
        Ok(Some(IssuedRecord {
            cti: *cti,
            iat: as_u64(iat).ok_or_else(bad)?,
            exp: as_u64(exp).ok_or_else(bad)?,
            status: as_u64(status).ok_or_else(bad)?,
            status_valid_until: as_u64(until).ok_or_else(bad)?,
            subject_hash: SubjectHash(h.as_slice().try_into().map_err(|_| bad())?),
        }))
    }

    /// Number of entries in the issued-code log.
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}
