//! Exposure notices taken in for this province's residents (docs/tracing.md section 5):
//! `exposure_notices`, keyed by notice id (8 bytes), and their index by receipt time
//! (`exposure_by_time`), for ListExposureNotices newest first and for retention.
//!
//! Value: CBOR `[notice: bstr (the COSE_Sign1 bytes as received), received_at: uint (seconds
//! since the Unix epoch), subject_hash: bstr (the resident's keyed subject hash, 8 bytes, when
//! the issued-code log held the code; else empty)]`. No name, no document number.

use ciborium::value::Value;
use sled::Transactional as _;

use super::{blocking, corrupt, Pruned, Store, StoreError, Stored};
use crate::cbor::{as_u64, uint};
use crate::identity::SubjectHash;
use crate::trace::{NoticeId, NOTICE_ID_LEN};
use crate::UnixTime;

const TREE: &str = "exposure_notices";
const INDEX: &str = "exposure_by_time";

/// An exposure notice as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotice {
    /// Its id, the key.
    pub id: NoticeId,
    /// The signed notice as received (COSE_Sign1 bytes; verified before it was stored).
    pub notice: Vec<u8>,
    /// When this node took it in.
    pub received_at: UnixTime,
    /// The resident's keyed subject hash, found in the issued-code log by the notice's cti
    /// prefix; `None` when the log no longer (or never) held the code.
    pub subject_hash: Option<SubjectHash>,
}

impl StoredNotice {
    fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.notice.clone()),
            uint(self.received_at.secs()),
            Value::Bytes(self.subject_hash.map(|h| h.0.to_vec()).unwrap_or_default()),
        ]))
    }

    fn from_record(id: NoticeId, bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = || corrupt(TREE, "not [notice, received_at, subject_hash]");
        let Value::Array(a) =
            crate::cbor::decode_exact(bytes).map_err(|e| corrupt(TREE, e.to_string()))?
        else {
            return Err(bad());
        };
        let [Value::Bytes(notice), at, Value::Bytes(h)] = a.as_slice() else {
            return Err(bad());
        };
        Ok(StoredNotice {
            id,
            notice: notice.clone(),
            received_at: as_u64(at).map(UnixTime::from_secs).ok_or_else(bad)?,
            subject_hash: match h.len() {
                0 => None,
                _ => Some(SubjectHash(h.as_slice().try_into().map_err(|_| bad())?)),
            },
        })
    }
}

/// Key of the `exposure_by_time` index: `received_at` (big-endian) and the notice id.
pub(crate) fn notice_time_key(at: UnixTime, id: &NoticeId) -> [u8; 8 + NOTICE_ID_LEN] {
    let mut k = [0u8; 8 + NOTICE_ID_LEN];
    k[..8].copy_from_slice(&at.secs().to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

impl Store {
    /// Stores a received notice and its index entry, flushed, unless one with its id is
    /// stored: then nothing changes, and the answer says whether that one holds the same signed
    /// bytes ([`Stored::Duplicate`]) or others ([`Stored::Conflict`]).
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a stored record that does not decode.
    pub async fn store_exposure_notice(&self, n: &StoredNotice) -> Result<Stored, StoreError> {
        let (tree, index) = (self.exposure_notices.clone(), self.exposure_by_time.clone());
        let n = n.clone();
        self.write(blocking(move || {
            use sled::transaction::{ConflictableTransactionError as Abort, TransactionError};
            let outcome = (&tree, &index)
                .transaction(|(t, i)| {
                    if let Some(old) = t.get(&n.id.0[..])? {
                        let old = StoredNotice::from_record(n.id, &old).map_err(Abort::Abort)?;
                        return Ok(if old.notice == n.notice {
                            Stored::Duplicate
                        } else {
                            Stored::Conflict
                        });
                    }
                    i.insert(&notice_time_key(n.received_at, &n.id)[..], &[][..])?;
                    t.insert(&n.id.0[..], n.to_record())?;
                    Ok(Stored::New)
                })
                .map_err(|e: TransactionError<StoreError>| match e {
                    TransactionError::Storage(e) => StoreError::Sled(e),
                    TransactionError::Abort(e) => e,
                })?;
            Ok(outcome)
        }))
        .await
    }

    /// The notice `id`, if stored.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a record that does not decode.
    pub fn exposure_notice(&self, id: &NoticeId) -> Result<Option<StoredNotice>, StoreError> {
        self.exposure_notices
            .get(id.0)?
            .map(|v| StoredNotice::from_record(*id, &v))
            .transpose()
    }

    /// Number of notices stored.
    pub fn exposure_notice_count(&self) -> usize {
        self.exposure_notices.len()
    }

    /// At most `limit` notices received at or after `since`, newest first, starting below the
    /// index key `below` (a page's continuation), or at the newest; with the index key to
    /// continue below when more are left.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a record or key that does not decode.
    pub async fn exposure_notices_page(
        &self,
        since: UnixTime,
        below: Option<[u8; 8 + NOTICE_ID_LEN]>,
        limit: usize,
    ) -> Result<(Vec<StoredNotice>, Option<[u8; 8 + NOTICE_ID_LEN]>), StoreError> {
        let store = self.clone();
        blocking(move || {
            let start = since.secs().to_be_bytes().to_vec();
            let range = match below {
                Some(k) => store.exposure_by_time.range(start..k.to_vec()),
                None => store.exposure_by_time.range(start..),
            };
            let mut out: Vec<StoredNotice> = Vec::new();
            for r in range.rev() {
                let (k, _) = r?;
                if out.len() == limit {
                    let last = out.last().expect("limit is at least 1");
                    return Ok((
                        out.clone(),
                        Some(notice_time_key(last.received_at, &last.id)),
                    ));
                }
                let id = NoticeId(
                    k.get(8..)
                        .and_then(|t| t.try_into().ok())
                        .ok_or_else(|| corrupt(INDEX, "a key of the wrong length"))?,
                );
                let n = store.exposure_notice(&id)?.ok_or_else(|| {
                    corrupt(INDEX, format!("notice {id} is indexed but not stored"))
                })?;
                out.push(n);
            }
            Ok((out, None))
        })
        .await
    }

    /// Removes the notices received before `before` (and their index entries), at most `max`,
    /// in one batch, flushed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_exposure_notices(
        &self,
        before: UnixTime,
        max: usize,
    ) -> Result<Pruned, StoreError> {
        let (tree, index) = (self.exposure_notices.clone(), self.exposure_by_time.clone());
        self.write(blocking(move || {
            let mut gone = sled::Batch::default();
            let mut gone_index = sled::Batch::default();
            let mut n = 0usize;
            for r in index.range(..before.secs().to_be_bytes()).take(max) {
                let (k, _) = r?;
                if let Some(id) = k.get(8..) {
                    gone.remove(id);
                }
                gone_index.remove(k);
                n += 1;
            }
            tree.apply_batch(gone)?;
            index.apply_batch(gone_index)?;
            Ok(Pruned {
                records: n as u64,
                more: n == max,
            })
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: u8, at: u64, bytes: &[u8]) -> StoredNotice {
        StoredNotice {
            id: NoticeId([id; 8]),
            notice: bytes.to_vec(),
            received_at: UnixTime::from_secs(at),
            subject_hash: id.is_multiple_of(2).then_some(SubjectHash([id; 8])),
        }
    }

    #[tokio::test]
    async fn a_notice_is_kept_once_and_a_different_one_with_its_id_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = notice(2, 1_000, b"signed a");
        assert_eq!(store.store_exposure_notice(&a).await.unwrap(), Stored::New);
        let mut again = a.clone();
        again.received_at = UnixTime::from_secs(2_000);
        assert_eq!(
            store.store_exposure_notice(&again).await.unwrap(),
            Stored::Duplicate
        );
        let other = notice(2, 3_000, b"signed b");
        assert_eq!(
            store.store_exposure_notice(&other).await.unwrap(),
            Stored::Conflict
        );
        assert_eq!(store.exposure_notice(&a.id).unwrap(), Some(a.clone()));
        assert_eq!(store.exposure_notice_count(), 1);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.exposure_notice(&a.id).unwrap(), Some(a));
        assert_eq!(store.exposure_by_time.len(), 1, "one index entry");
    }

    #[tokio::test]
    async fn pages_run_newest_first_from_since_and_retention_removes_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (id, at) in [(1, 100), (2, 200), (3, 300), (4, 400)] {
            store
                .store_exposure_notice(&notice(id, at, &[id]))
                .await
                .unwrap();
        }
        let t = UnixTime::from_secs;
        let (page, next) = store.exposure_notices_page(t(0), None, 3).await.unwrap();
        let ids = |p: &[StoredNotice]| p.iter().map(|n| n.id.0[0]).collect::<Vec<_>>();
        assert_eq!(ids(&page), [4, 3, 2]);
        let (rest, end) = store.exposure_notices_page(t(0), next, 3).await.unwrap();
        assert_eq!((ids(&rest), end), (vec![1], None));
        let (since, _) = store.exposure_notices_page(t(250), None, 10).await.unwrap();
        assert_eq!(ids(&since), [4, 3]);
        // Received before 300: notices 1 and 2 go, 3 and 4 stay.
        let p = store.prune_exposure_notices(t(300), 10).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                records: 2,
                more: false
            }
        );
        let (left, _) = store.exposure_notices_page(t(0), None, 10).await.unwrap();
        assert_eq!(ids(&left), [4, 3]);
        assert_eq!(store.exposure_notice(&NoticeId([1; 8])).unwrap(), None);
        assert_eq!(store.exposure_by_time.len(), 2);
    }
}
