//! The verification audit log (`audit`): the records of one second packed into few values, read
//! back page by page.

use super::{blocking, corrupt, Pruned, Store, StoreError};
use crate::audit::AuditRecord;
use crate::UnixTime;

/// Most audit records stored in one value (see [`Store::append_audit`]): about 20 KiB.
const AUDIT_PACK: usize = 256;

/// Length of an audit value's key: the time of its records (8 bytes, big-endian) and a unique
/// id (8 bytes).
const AUDIT_KEY_LEN: usize = 16;

/// Where a page of the audit log goes on ([`Store::audit_page`]): the key of a stored value of
/// audit records and the position of a record in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The value's key: time (seconds since the Unix epoch, big-endian) and id.
    pub pack: [u8; AUDIT_KEY_LEN],
    /// The record's position in the value, from 0.
    pub index: u16,
}

impl AuditCursor {
    /// Length of [`AuditCursor::to_bytes`]: the key and the position (2 bytes, big-endian).
    pub const LEN: usize = AUDIT_KEY_LEN + 2;

    /// The key followed by the position, big-endian.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..AUDIT_KEY_LEN].copy_from_slice(&self.pack);
        b[AUDIT_KEY_LEN..].copy_from_slice(&self.index.to_be_bytes());
        b
    }

    /// Reads [`AuditCursor::to_bytes`]; `None` for another length.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::LEN] = b.try_into().ok()?;
        let (pack, index) = b.split_at(AUDIT_KEY_LEN);
        Some(Self {
            pack: pack.try_into().ok()?,
            index: u16::from_be_bytes(index.try_into().ok()?),
        })
    }
}

/// A key and its value, to insert.
pub(super) type KeyValue = (Vec<u8>, Vec<u8>);

/// The `audit` values of `records` (key and value): one value per second, in order of arrival
/// within it, at most [`AUDIT_PACK`] records each; `id` gives each value's unique id (sled's
/// `generate_id`, of the database or of a transaction's tree, so that a transaction can insert
/// them with the other trees it writes).
pub(super) fn audit_values<E>(
    records: &[AuditRecord],
    mut id: impl FnMut() -> Result<u64, E>,
) -> Result<Vec<KeyValue>, E> {
    let mut by_time: std::collections::BTreeMap<u64, Vec<&AuditRecord>> =
        std::collections::BTreeMap::new();
    for r in records {
        by_time.entry(r.time.secs()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (time, same_second) in &by_time {
        for pack in same_second.chunks(AUDIT_PACK) {
            let mut k = time.to_be_bytes().to_vec();
            k.extend_from_slice(&id()?.to_be_bytes());
            out.push((k, AuditRecord::pack(pack.iter().copied())));
        }
    }
    Ok(out)
}

impl Store {
    /// Appends audit records (not flushed: the caller flushes a batch). Holds the write gate
    /// while it inserts. The encoding and inserting (a few milliseconds for the thousand records
    /// a busy node writes each 200 ms) run on a blocking thread, off the runtime's threads that
    /// serve calls.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let (db, audit) = (self.db.clone(), self.audit.clone());
        self.write_unflushed(blocking(move || {
            let mut batch = sled::Batch::default();
            for (k, v) in audit_values(&records, || db.generate_id())? {
                batch.insert(k, v);
            }
            audit.apply_batch(batch)?;
            Ok(())
        }))
        .await
    }

    /// Audit records with `from <= time < until` that pass `keep`, oldest first, at most
    /// `limit`: from `from`, or, given the cursor of an earlier page (`after`), from the record
    /// it names (then `from` is not used). With them, the cursor of the next record that passes
    /// `keep` when there is one (the next page's `after`), else `None`.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Corrupt`] for a value or key that does not decode.
    pub fn audit_page(
        &self,
        from: UnixTime,
        until: UnixTime,
        after: Option<AuditCursor>,
        limit: usize,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> Result<(Vec<AuditRecord>, Option<AuditCursor>), StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(c) => c.pack.to_vec(),
            None => from.secs().to_be_bytes().to_vec(),
        };
        let end = until.secs().to_be_bytes().to_vec();
        if start >= end {
            return Ok((Vec::new(), None));
        }
        let mut out = Vec::new();
        let range = self
            .audit
            .range((Bound::Included(start), Bound::Excluded(end)));
        for r in range {
            let (k, v) = r?;
            let pack: [u8; AUDIT_KEY_LEN] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("audit", "a key that is not time and id"))?;
            let recs =
                AuditRecord::unpack(&v).ok_or_else(|| corrupt("audit", "not an audit record"))?;
            let skip = match after {
                Some(c) if c.pack == pack => usize::from(c.index),
                _ => 0,
            };
            for (index, rec) in recs.into_iter().enumerate().skip(skip) {
                if !keep(&rec) {
                    continue;
                }
                if out.len() == limit {
                    let index = u16::try_from(index)
                        .map_err(|_| corrupt("audit", "more records in a value than a pack"))?;
                    return Ok((out, Some(AuditCursor { pack, index })));
                }
                out.push(rec);
            }
        }
        Ok((out, None))
    }

    /// Removes the oldest verification audit values (each the records of one second, up to
    /// 256) with a time before `before`, at most `max` values
    /// in one write batch, and flushes. Returns the records removed and whether older values may
    /// remain (`max` were removed: call again). The batch runs on a blocking thread under the
    /// write gate.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Corrupt`] for a value that does not decode (nothing is
    /// removed then).
    pub async fn prune_audit(&self, before: UnixTime, max: usize) -> Result<Pruned, StoreError> {
        self.prune_by_time(self.audit.clone(), before, max, |v| {
            AuditRecord::unpack(v)
                .map(|r| r.len() as u64)
                .ok_or_else(|| corrupt("audit", "not an audit record"))
        })
        .await
    }
}
