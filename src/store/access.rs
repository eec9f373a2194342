//! Refused calls (`access`), one record per kind and second however many refusals it counts,
//! and the identity-match attempts of the current windows (`match_attempts`).

use std::sync::atomic::Ordering::Relaxed;

use super::{blocking, corrupt, Pruned, Store, StoreError};
use crate::audit::AccessDenial;
use crate::UnixTime;

/// Length of a refused-call record's key: its time (8 bytes, big-endian) and the id of its kind
/// (8 bytes; see [`Store::append_denials`]).
pub const DENIAL_KEY_LEN: usize = 16;

/// Identity-match attempts between two removals of ended windows ([`Store::count_match_attempt`]).
pub const MATCH_PRUNE_EVERY: u64 = 4096;

/// The id of a refused call's kind (RPC, outcome, who, remote): the first 8 bytes of SHA-256
/// over them, each followed by a zero byte, after a domain label.
fn denial_kind_id(d: &AccessDenial) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"hcmr access kind v1\0");
    for part in [&d.rpc, &d.outcome, &d.who, &d.remote] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h.finalize()[..8]);
    id
}

/// Whether two refused-call records are of one kind in one second.
fn same_kind(a: &AccessDenial, b: &AccessDenial) -> bool {
    (a.time, &a.rpc, &a.outcome, &a.who, &a.remote)
        == (b.time, &b.rpc, &b.outcome, &b.who, &b.remote)
}

impl Store {
    /// Counts an identity-match attempt for `key` (a hashed code id or subject hash) at `now`,
    /// in a window of `window` seconds from the key's first
    /// attempt, and makes it durable before returning: the limit on these attempts is a security
    /// limit, which a restart of the node must not reset. Returns the attempts in the key's
    /// current window, this one included. Windows that ended are removed every
    /// [`MATCH_PRUNE_EVERY`] attempts.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn count_match_attempt(
        &self,
        key: [u8; 16],
        now: UnixTime,
        window: u64,
    ) -> Result<u32, StoreError> {
        let now = now.secs();
        let current = move |v: Option<&[u8]>| -> (u32, u64) {
            v.and_then(|v| {
                let count = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
                let start = u64::from_be_bytes(v.get(4..12)?.try_into().ok()?);
                Some((count, start))
            })
            .filter(|(_, start)| now.saturating_sub(*start) < window)
            .unwrap_or((0, now))
        };
        let tree = self.match_attempts.clone();
        let counted = self.match_counted.clone();
        self.write(blocking(move || {
            let stored = tree.update_and_fetch(key, |old| {
                let (count, start) = current(old);
                let mut v = count.saturating_add(1).to_be_bytes().to_vec();
                v.extend_from_slice(&start.to_be_bytes());
                Some(v)
            })?;
            if counted.fetch_add(1, Relaxed) % MATCH_PRUNE_EVERY == MATCH_PRUNE_EVERY - 1 {
                for r in tree.iter() {
                    let (k, v) = r?;
                    if current(Some(&v)).0 == 0 {
                        tree.remove(k)?;
                    }
                }
            }
            Ok(current(stored.as_deref()).0)
        }))
        .await
    }

    /// Adds refused calls (not flushed: the caller flushes a batch): each under the key `time`
    /// (8 bytes, big-endian) and the id of its kind (8 bytes of SHA-256 over RPC, outcome, who
    /// and remote), so the refusals of one kind in one second are one record whatever the number
    /// of writes: a record already there gets the new `count` added. (Should two kinds share an id, the second is stored under a
    /// fresh unique id instead.) Holds the write gate, and a lock so that two callers never add
    /// to the same record at once.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_denials(&self, records: &[AccessDenial]) -> Result<(), StoreError> {
        self.write_unflushed(async {
            let _one = self.denials_lock.lock().await;
            let mut merged: std::collections::BTreeMap<Vec<u8>, AccessDenial> = Default::default();
            for r in records {
                let mut k = r.time.secs().to_be_bytes().to_vec();
                k.extend_from_slice(&denial_kind_id(r));
                let before = match merged.get(&k) {
                    Some(m) => Some(m.clone()),
                    None => self
                        .access
                        .get(&k)?
                        .and_then(|v| AccessDenial::from_record(&v)),
                };
                match before {
                    None => {
                        merged.insert(k, r.clone());
                    }
                    Some(b) if same_kind(&b, r) => {
                        let mut sum = r.clone();
                        sum.count = b.count.saturating_add(r.count);
                        merged.insert(k, sum);
                    }
                    Some(_) => {
                        k.truncate(8);
                        k.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
                        merged.insert(k, r.clone());
                    }
                }
            }
            let mut batch = sled::Batch::default();
            for (k, r) in merged {
                batch.insert(k, r.to_record());
            }
            self.access.apply_batch(batch)?;
            Ok(())
        })
        .await
    }

    /// Refused calls, oldest first, at most `limit`: those with `time >= from`, or, given the
    /// key of a record (`after`, from an earlier page), those after it. With them, the key of
    /// the last one returned when more follow (the next page's `after`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn denials_page(
        &self,
        from: UnixTime,
        after: Option<[u8; DENIAL_KEY_LEN]>,
        limit: usize,
    ) -> Result<(Vec<AccessDenial>, Option<[u8; DENIAL_KEY_LEN]>), StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(k) => Bound::Excluded(k.to_vec()),
            None => Bound::Included(from.secs().to_be_bytes().to_vec()),
        };
        let mut records = self.access.range((start, Bound::Unbounded));
        let mut out = Vec::new();
        let mut last = None;
        for r in records.by_ref().take(limit) {
            let (k, v) = r?;
            out.push(
                AccessDenial::from_record(&v)
                    .ok_or_else(|| corrupt("access", "not an access record"))?,
            );
            last = Some(k);
        }
        if records.next().transpose()?.is_none() {
            return Ok((out, None));
        }
        let next = last
            .and_then(|k| <[u8; DENIAL_KEY_LEN]>::try_from(k.as_ref()).ok())
            .ok_or_else(|| corrupt("access", "a key that is not time and id"))?;
        Ok((out, Some(next)))
    }

    /// Removes refused-call records (one per second and kind) with a time before `before`, as
    /// [`Store::prune_audit`] does; counts records, not the refusals they count.
    ///
    /// # Errors
    /// As [`Store::prune_audit`].
    pub async fn prune_access(&self, before: UnixTime, max: usize) -> Result<Pruned, StoreError> {
        self.prune_by_time(self.access.clone(), before, max, |_| Ok(1))
            .await
    }
}
