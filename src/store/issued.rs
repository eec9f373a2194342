//! The issued-code log (`issued`) and its index by expiry (`issued_expiry`), which retention
//! walks so it never reads the whole log.

use ciborium::value::Value;

use super::{blocking, corrupt, Pruned, Store, StoreError};
use crate::cbor::{as_u64, uint};
use crate::code::Cti;
use crate::identity::SubjectHash;
use crate::UnixTime;

/// One entry of the issued-code log: what revocation and identity match need of a code issued
/// here, without the person's name or document number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    /// Code id, the log's key ([`crate::code::HealthCode::cti`]).
    pub cti: Cti,
    /// When the code was issued.
    pub iat: UnixTime,
    /// When the code expires: retention removes the entry after it.
    pub exp: UnixTime,
    /// Status number as issued (1 green, 2 yellow, 3 red).
    pub status: u64,
    /// Until when the status holds.
    pub status_valid_until: UnixTime,
    /// Keyed subject hash; never the document number.
    pub subject_hash: SubjectHash,
}

/// An entry of the issued-code log from its stored value (see the table in [`crate::store`]).
fn decode_issued(cti: &Cti, v: &[u8]) -> Result<IssuedRecord, StoreError> {
    let bad = || corrupt("issued", "not an issued-code record");
    let Value::Array(a) =
        crate::cbor::decode_exact(v).map_err(|e| corrupt("issued", e.to_string()))?
    else {
        return Err(bad());
    };
    let [iat, exp, status, until, Value::Bytes(h)] = a.as_slice() else {
        return Err(bad());
    };
    Ok(IssuedRecord {
        cti: *cti,
        iat: as_u64(iat).map(UnixTime::from_secs).ok_or_else(bad)?,
        exp: as_u64(exp).map(UnixTime::from_secs).ok_or_else(bad)?,
        status: as_u64(status).ok_or_else(bad)?,
        status_valid_until: as_u64(until).map(UnixTime::from_secs).ok_or_else(bad)?,
        subject_hash: SubjectHash(h.as_slice().try_into().map_err(|_| bad())?),
    })
}

/// Key of the `issued_expiry` index: `exp` (big-endian) and the cti.
fn expiry_key(exp: UnixTime, cti: &Cti) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&exp.secs().to_be_bytes());
    k[8..].copy_from_slice(cti);
    k
}

impl Store {
    /// Builds the `issued_expiry` index of a database written before it existed (an empty index
    /// beside a non-empty issued-code log), once; flushed.
    pub(super) fn index_issued_by_expiry(&self) -> Result<(), StoreError> {
        if !self.issued_expiry.is_empty() || self.issued.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for r in self.issued.iter() {
            let (k, v) = r?;
            let cti: Cti = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("issued", "a key that is not a cti"))?;
            let exp = decode_issued(&cti, &v)?.exp;
            batch.insert(expiry_key(exp, &cti).to_vec(), Vec::new());
        }
        self.issued_expiry.apply_batch(batch)?;
        self.db.flush()?;
        tracing::info!(
            entries = self.issued_expiry.len(),
            "issued-code log indexed by expiry (once, for retention)"
        );
        Ok(())
    }

    /// Appends to the issued-code log and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn log_issued(&self, r: &IssuedRecord) -> Result<(), StoreError> {
        self.write(async {
            let v = crate::cbor::encode(&Value::Array(vec![
                uint(r.iat.secs()),
                uint(r.exp.secs()),
                uint(r.status),
                uint(r.status_valid_until.secs()),
                Value::Bytes(r.subject_hash.0.to_vec()),
            ]));
            // The index first: a crash between the two leaves an index entry without its entry,
            // which retention removes as it would the pair, never an entry retention cannot find.
            self.issued_expiry
                .insert(expiry_key(r.exp, &r.cti), Vec::new())?;
            self.issued.insert(r.cti, v)?;
            Ok(())
        })
        .await
    }

    /// An entry of the issued-code log by `cti`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn issued(&self, cti: &Cti) -> Result<Option<IssuedRecord>, StoreError> {
        match self.issued.get(cti)? {
            Some(v) => decode_issued(cti, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The entry of the issued-code log whose cti starts with `cti_prefix` (6 bytes, as a
    /// manifest holds it) and whose keyed subject hash starts with `subject_prefix` (4 bytes):
    /// how an exposure notice finds the resident it is about (docs/tracing.md section 5).
    /// `None` when no entry has both (the code was never issued here, or retention removed
    /// its entry).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn issued_by_prefix(
        &self,
        cti_prefix: &[u8; 6],
        subject_prefix: &[u8; 4],
    ) -> Result<Option<IssuedRecord>, StoreError> {
        // A 48-bit prefix: more than one code behind it is rare; the subject prefix picks.
        for r in self.issued.scan_prefix(cti_prefix) {
            let (k, v) = r?;
            let cti: Cti = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("issued", "a key that is not a cti"))?;
            let rec = decode_issued(&cti, &v)?;
            if rec.subject_hash.0.starts_with(subject_prefix) {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// Number of entries in the issued-code log.
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }

    /// Removes from the issued-code log (and its expiry index) the entries of codes that expired
    /// before `expired_before`, at most `max` in one batch,
    /// and flushes. As [`Store::prune_audit`] for the result.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_issued(
        &self,
        expired_before: UnixTime,
        max: usize,
    ) -> Result<Pruned, StoreError> {
        let (issued, index) = (self.issued.clone(), self.issued_expiry.clone());
        self.write(blocking(move || {
            let mut gone = sled::Batch::default();
            let mut gone_index = sled::Batch::default();
            let mut n = 0usize;
            for r in index.range(..expired_before.secs().to_be_bytes()).take(max) {
                let (k, _) = r?;
                if let Some(cti) = k.get(8..24) {
                    gone.remove(cti);
                }
                gone_index.remove(k);
                n += 1;
            }
            issued.apply_batch(gone)?;
            index.apply_batch(gone_index)?;
            Ok(Pruned {
                records: n as u64,
                more: n == max,
            })
        }))
        .await
    }
}
