//! Verify replicas enrolled at a primary (`replicas`); the replicas' audit records taken in
//! (`replica_audit_marks`, with the `audit` tree) and, at a replica, those not yet taken
//! (`audit_outbox`).

use ciborium::value::{Integer, Value};

use super::{blocking, corrupt, Store, StoreError};
use crate::audit::AuditRecord;
use crate::UnixTime;

/// The key of `audit_outbox` that holds the next sequence number (u64 BE) rather than a record:
/// empty, so it sorts before every record's 8-byte key. The counter outlives the records, so a
/// replica whose outbox was emptied by acknowledgements never numbers a record again with a
/// sequence number the primary has taken (which it would drop as a resend).
const OUTBOX_NEXT_KEY: &[u8] = b"";

/// The smallest key of a record in `audit_outbox` (sequence number 0, big-endian).
const OUTBOX_FIRST_KEY: [u8; 8] = [0; 8];

/// What [`Store::take_replica_audit`] did with a batch of a replica's audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenAudit {
    /// Stored (and flushed) through `through`; `added` of them were new (the rest had been taken
    /// before: a resend after a lost acknowledgement).
    Stored {
        /// The replica's last sequence number stored here.
        through: u64,
        /// Records added to the audit log by this batch.
        added: u64,
    },
    /// Nothing stored: the batch starts after a gap; the next sequence number expected.
    Gap {
        /// The sequence number the batch should have started at (at most).
        expected: u64,
    },
}

/// The key of `replica_audit_marks`: the replica's name, 0x00 and its instance.
fn mark_key(name: &str, instance: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(instance.as_bytes());
    k
}

/// A u64 stored big-endian.
fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

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

impl Store {
    /// The last sequence number of replica `name`'s instance `instance` whose audit records are
    /// stored here; 0: none.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a mark that is not 8 bytes.
    pub fn replica_audit_mark(&self, name: &str, instance: &str) -> Result<u64, StoreError> {
        match self.replica_audit_marks.get(mark_key(name, instance))? {
            None => Ok(0),
            Some(v) => be_u64(&v).ok_or_else(|| corrupt("replica_audit_marks", "not a u64")),
        }
    }

    /// Takes a batch of replica `name`'s audit records (instance `instance`, the first with
    /// sequence number `first_seq` >= 1, the rest following without gaps) into the audit log,
    /// marked as made by `name`, and flushes: in one transaction over `audit`,
    /// `replica_audit_marks` and `replicas`, records at or below the stored mark are skipped (a
    /// resend), the rest inserted, the mark moved to the batch's last, and the replica's count of
    /// records taken raised by those added. A batch that starts beyond the mark + 1 stores
    /// nothing ([`TakenAudit::Gap`]).
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a mark or replica record that does not
    /// decode.
    pub async fn take_replica_audit(
        &self,
        name: &str,
        instance: &str,
        first_seq: u64,
        mut records: Vec<AuditRecord>,
    ) -> Result<TakenAudit, StoreError> {
        use sled::transaction::{ConflictableTransactionError as Abort, TransactionError};
        use sled::Transactional;
        for r in &mut records {
            r.replica = Some(name.to_string());
        }
        let (audit, marks, replicas) = (
            self.audit.clone(),
            self.replica_audit_marks.clone(),
            self.replicas.clone(),
        );
        let (key, name) = (mark_key(name, instance), name.to_string());
        self.write(blocking(move || {
            (&audit, &marks, &replicas)
                .transaction(|(a, m, r)| {
                    let mark = match m.get(&key)? {
                        None => 0,
                        Some(v) => be_u64(&v).ok_or_else(|| {
                            Abort::Abort(corrupt("replica_audit_marks", "not a u64"))
                        })?,
                    };
                    if first_seq > mark.saturating_add(1) {
                        return Ok(TakenAudit::Gap { expected: mark + 1 });
                    }
                    // Records first_seq..=mark were taken before.
                    let skip = usize::try_from(mark + 1 - first_seq).unwrap_or(usize::MAX);
                    let new = records.get(skip..).unwrap_or_default();
                    if new.is_empty() {
                        return Ok(TakenAudit::Stored {
                            through: mark,
                            added: 0,
                        });
                    }
                    for (k, v) in super::audit::audit_values(new, || a.generate_id())? {
                        a.insert(k, v)?;
                    }
                    let through = mark + new.len() as u64;
                    m.insert(key.as_slice(), &through.to_be_bytes()[..])?;
                    if let Some(v) = r.get(name.as_bytes())? {
                        let mut e = EnrolledReplica::from_record(&name, &v).ok_or_else(|| {
                            Abort::Abort(corrupt("replicas", format!("replica {name}")))
                        })?;
                        e.audit_records = e.audit_records.saturating_add(new.len() as u64);
                        r.insert(name.as_bytes(), e.to_record())?;
                    }
                    Ok(TakenAudit::Stored {
                        through,
                        added: new.len() as u64,
                    })
                })
                .map_err(|e: TransactionError<StoreError>| match e {
                    TransactionError::Storage(e) => StoreError::Sled(e),
                    TransactionError::Abort(e) => e,
                })
        }))
        .await
    }

    /// At a verify replica: the sequence number the next audit record will get (1 for an
    /// empty outbox that never held one).
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a counter that is not 8 bytes.
    pub fn audit_outbox_next(&self) -> Result<u64, StoreError> {
        Self::outbox_next(&self.audit_outbox)
    }

    fn outbox_next(outbox: &sled::Tree) -> Result<u64, StoreError> {
        Ok(match outbox.get(OUTBOX_NEXT_KEY)? {
            Some(v) => {
                be_u64(&v).ok_or_else(|| corrupt("audit_outbox", "a counter that is not a u64"))?
            }
            // A tree written before the counter: after its last record.
            None => outbox
                .range(OUTBOX_FIRST_KEY..)
                .next_back()
                .transpose()?
                .and_then(|(k, _)| be_u64(&k))
                .map_or(1, |s| s + 1),
        })
    }

    /// At a verify replica: appends audit records made here to `audit_outbox` with the next
    /// sequence numbers, in order (not flushed: the audit writer flushes its batch), and returns
    /// the last number given (the one before the next when `records` is empty). One caller at a
    /// time (the audit writer), as it reads the counter it raises.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a counter that is not 8 bytes.
    pub async fn append_audit_outbox(&self, records: Vec<AuditRecord>) -> Result<u64, StoreError> {
        let outbox = self.audit_outbox.clone();
        self.write_unflushed(blocking(move || {
            let mut next = Self::outbox_next(&outbox)?;
            if records.is_empty() {
                return Ok(next - 1);
            }
            let mut batch = sled::Batch::default();
            for r in &records {
                batch.insert(&next.to_be_bytes()[..], r.to_record());
                next += 1;
            }
            batch.insert(OUTBOX_NEXT_KEY, &next.to_be_bytes()[..]);
            outbox.apply_batch(batch)?;
            Ok(next - 1)
        }))
        .await
    }

    /// At a verify replica: the oldest audit records not yet acknowledged by the primary, at
    /// most `max` and none after sequence number `through` (the last one flushed: a record not
    /// yet on disk must not reach the primary, or after a crash its number would be given
    /// again), with the sequence number of the first; they follow without gaps (a gap ends the
    /// batch early). `None` when there is none.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a key or record that does not decode.
    pub fn audit_outbox_batch(
        &self,
        max: usize,
        through: u64,
    ) -> Result<Option<(u64, Vec<AuditRecord>)>, StoreError> {
        let mut first = None;
        let mut out = Vec::new();
        for r in self
            .audit_outbox
            .range(OUTBOX_FIRST_KEY..=through.to_be_bytes())
            .take(max)
        {
            let (k, v) = r?;
            let seq =
                be_u64(&k).ok_or_else(|| corrupt("audit_outbox", "a key that is not a u64"))?;
            let first = *first.get_or_insert(seq);
            if seq != first + out.len() as u64 {
                break;
            }
            out.push(
                AuditRecord::from_record(&v)
                    .ok_or_else(|| corrupt("audit_outbox", format!("record {seq}")))?,
            );
        }
        Ok(first.map(|f| (f, out)))
    }

    /// At a verify replica: removes the audit records through sequence number `through` (the
    /// primary acknowledged them) and flushes; how many were removed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn ack_audit_outbox(&self, through: u64) -> Result<u64, StoreError> {
        let outbox = self.audit_outbox.clone();
        self.write(blocking(move || {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for r in outbox.range(OUTBOX_FIRST_KEY..=through.to_be_bytes()) {
                batch.remove(r?.0);
                n += 1;
            }
            outbox.apply_batch(batch)?;
            Ok(n)
        }))
        .await
    }

    /// At a verify replica: audit records waiting for the primary's acknowledgement (from the
    /// first and last sequence numbers, without reading the records).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn audit_outbox_len(&self) -> Result<u64, StoreError> {
        let mut r = self.audit_outbox.range(OUTBOX_FIRST_KEY..);
        let first = r.next().transpose()?.and_then(|(k, _)| be_u64(&k));
        let last = r.next_back().transpose()?.and_then(|(k, _)| be_u64(&k));
        Ok(match (first, last) {
            (None, _) => 0,
            (Some(_), None) => 1,
            (Some(f), Some(l)) => l.saturating_sub(f) + 1,
        })
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

    fn rec(n: u64) -> AuditRecord {
        AuditRecord {
            time: UnixTime::from_secs(1_700_000_000 + n / 3),
            checkpoint_id: format!("gate-{n}"),
            via: "grpc",
            issuer: None,
            recognized: false,
            reason: Some(crate::verify::Reason::Malformed),
            cti_hash: None,
            manifest: None,
            trace: None,
            replica: None,
        }
    }

    /// Every record in the audit log, oldest first.
    fn log(store: &Store) -> Vec<AuditRecord> {
        store
            .audit_page(
                UnixTime::from_secs(0),
                UnixTime::from_secs(u64::MAX),
                None,
                10_000,
                |_| true,
            )
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn a_resent_batch_is_taken_once_and_a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_replica(&EnrolledReplica {
                name: "sc-r1".into(),
                spki_sha256: [7; 32],
                enrolled_at: UnixTime::from_secs(1_700_000_000),
                audit_records: 0,
            })
            .await
            .unwrap();
        let (r1, inst) = ("sc-r1", "00112233aabbccdd");
        let first: Vec<_> = (1..=5).map(rec).collect();
        assert_eq!(
            store
                .take_replica_audit(r1, inst, 1, first.clone())
                .await
                .unwrap(),
            TakenAudit::Stored {
                through: 5,
                added: 5
            }
        );
        // The acknowledgement was lost: the same batch again, then one overlapping it.
        assert_eq!(
            store
                .take_replica_audit(r1, inst, 1, first.clone())
                .await
                .unwrap(),
            TakenAudit::Stored {
                through: 5,
                added: 0
            }
        );
        assert_eq!(
            store
                .take_replica_audit(r1, inst, 4, (4..=8).map(rec).collect())
                .await
                .unwrap(),
            TakenAudit::Stored {
                through: 8,
                added: 3
            }
        );
        // A gap: 10 when 9 is next. Nothing stored.
        assert_eq!(
            store
                .take_replica_audit(r1, inst, 10, vec![rec(10)])
                .await
                .unwrap(),
            TakenAudit::Gap { expected: 9 }
        );
        // An empty batch changes nothing; another instance of the same replica counts apart.
        assert_eq!(
            store
                .take_replica_audit(r1, inst, 9, Vec::new())
                .await
                .unwrap(),
            TakenAudit::Stored {
                through: 8,
                added: 0
            }
        );
        assert_eq!(
            store
                .take_replica_audit(r1, "ffffffffffffffff", 1, vec![rec(1)])
                .await
                .unwrap(),
            TakenAudit::Stored {
                through: 1,
                added: 1
            }
        );
        assert_eq!(store.replica_audit_mark(r1, inst).unwrap(), 8);
        assert_eq!(store.replica_audit_mark(r1, "ffffffffffffffff").unwrap(), 1);
        assert_eq!(store.replica_audit_mark("sc-r2", inst).unwrap(), 0);
        let got = log(&store);
        let mut want: Vec<_> = (1..=8).map(rec).chain([rec(1)]).collect();
        for r in &mut want {
            r.replica = Some("sc-r1".into());
        }
        let key = |r: &AuditRecord| (r.time, r.checkpoint_id.clone());
        let (mut got_sorted, mut want_sorted) = (got.clone(), want);
        got_sorted.sort_by_key(key);
        want_sorted.sort_by_key(key);
        assert_eq!(got_sorted, want_sorted);
        assert_eq!(store.replicas().unwrap()[0].audit_records, 9);
        // Durable: reopened, the log and the marks are there.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(log(&store).len(), 9);
        assert_eq!(store.replica_audit_mark(r1, inst).unwrap(), 8);
    }

    #[tokio::test]
    async fn the_outbox_numbers_on_after_it_was_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.audit_outbox_batch(256, u64::MAX).unwrap(), None);
        assert_eq!(store.audit_outbox_len().unwrap(), 0);
        store
            .append_audit_outbox((1..=3).map(rec).collect())
            .await
            .unwrap();
        assert_eq!(store.append_audit_outbox(vec![rec(4)]).await.unwrap(), 4);
        assert_eq!(store.append_audit_outbox(Vec::new()).await.unwrap(), 4);
        assert_eq!(store.audit_outbox_next().unwrap(), 5);
        assert_eq!(store.audit_outbox_len().unwrap(), 4);
        // Only records through the last one flushed are read.
        assert_eq!(
            store.audit_outbox_batch(256, 1).unwrap(),
            Some((1, vec![rec(1)]))
        );
        assert_eq!(
            store.audit_outbox_batch(2, u64::MAX).unwrap(),
            Some((1, vec![rec(1), rec(2)]))
        );
        assert_eq!(store.ack_audit_outbox(2).await.unwrap(), 2);
        assert_eq!(
            store.audit_outbox_batch(256, u64::MAX).unwrap(),
            Some((3, vec![rec(3), rec(4)]))
        );
        assert_eq!(store.ack_audit_outbox(4).await.unwrap(), 2);
        assert_eq!(store.audit_outbox_len().unwrap(), 0);
        assert_eq!(store.audit_outbox_batch(256, u64::MAX).unwrap(), None);
        // Emptied and reopened: the next record is 5, not 1 again.
        store.flush().await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        store.append_audit_outbox(vec![rec(5)]).await.unwrap();
        assert_eq!(
            store.audit_outbox_batch(256, u64::MAX).unwrap(),
            Some((5, vec![rec(5)]))
        );
        assert_eq!(store.audit_outbox_len().unwrap(), 1);
    }
}
