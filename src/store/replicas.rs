//! Verify replicas enrolled at a primary (`replicas`); the replicas' audit records taken in
//! (`replica_audit_marks`, with the `audit` tree) and, at a replica, those not yet taken
//! (`audit_outbox`).

use ciborium::value::{Integer, Value};

use super::{corrupt, Store, StoreError};
use crate::UnixTime;

/// A verify replica enrolled at this primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledReplica {
    /// Its name (as a caller's: 1 to 64 of A-Z a-z 0-9 . _ -).
    pub name: String,
    /// SHA-256 of its TLS key's SubjectPublicKeyInfo (DER).
    pub spki_sha256: [u8; 32],
    /// When it was enrolled.
    pub enrolled_at: UnixTime,
    /// Audit records taken from it since.
    pub audit_records: u64,
}

impl EnrolledReplica {
    fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.spki_sha256.to_vec()),
            Value::Integer(Integer::from(self.enrolled_at.secs())),
            Value::Integer(Integer::from(self.audit_records)),
        ]))
    }

    fn from_record(name: &str, bytes: &[u8]) -> Option<Self> {
        let Value::Array(a) = crate::cbor::decode_exact(bytes).ok()? else {
            return None;
        };
        let [spki, at, n] = a.as_slice() else {
            return None;
        };
        let uint = |v: &Value| v.as_integer().and_then(|i| u64::try_from(i).ok());
        Some(EnrolledReplica {
            name: name.to_string(),
            spki_sha256: spki.as_bytes()?.as_slice().try_into().ok()?,
            enrolled_at: UnixTime::from_secs(uint(at)?),
            audit_records: uint(n)?,
        })
    }
}

impl Store {
    /// Enrolls a replica (or replaces one of the same name: a new TLS key), and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_replica(&self, r: &EnrolledReplica) -> Result<(), StoreError> {
        self.write(async {
            Ok(self
                .replicas
                .insert(r.name.as_bytes(), r.to_record())
                .map(drop)?)
        })
        .await
    }

    /// Removes a replica and flushes; whether it was enrolled.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_replica(&self, name: &str) -> Result<bool, StoreError> {
        self.write(async { Ok(self.replicas.remove(name.as_bytes())?.is_some()) })
            .await
    }

    /// Every enrolled replica, by name.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a record that does not decode.
    pub fn replicas(&self) -> Result<Vec<EnrolledReplica>, StoreError> {
        let mut out = Vec::new();
        for r in self.replicas.iter() {
            let (k, v) = r?;
            let name = String::from_utf8_lossy(&k).to_string();
            out.push(
                EnrolledReplica::from_record(&name, &v)
                    .ok_or_else(|| corrupt("replicas", format!("replica {name}")))?,
            );
        }
        Ok(out)
    }

    /// The replica enrolled with this TLS key, if any.
    ///
    /// # Errors
    /// As [`Store::replicas`].
    pub fn replica_by_spki(
        &self,
        spki_sha256: &[u8; 32],
    ) -> Result<Option<EnrolledReplica>, StoreError> {
        Ok(self
            .replicas()?
            .into_iter()
            .find(|r| &r.spki_sha256 == spki_sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_enrolled_replica_reads_back_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = EnrolledReplica {
            name: "sc-r1".into(),
            spki_sha256: [7; 32],
            enrolled_at: UnixTime::from_secs(1_700_000_000),
            audit_records: 3,
        };
        store.put_replica(&r).await.unwrap();
        assert_eq!(store.replicas().unwrap(), vec![r.clone()]);
        assert_eq!(store.replica_by_spki(&[7; 32]).unwrap(), Some(r));
        assert_eq!(store.replica_by_spki(&[8; 32]).unwrap(), None);
        assert!(store.remove_replica("sc-r1").await.unwrap());
        assert!(!store.remove_replica("sc-r1").await.unwrap());
        assert!(store.replicas().unwrap().is_empty());
    }
}
