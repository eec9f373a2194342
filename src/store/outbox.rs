//! The trip outbox (docs/transport.md section 6): signed trip records for another province's
//! node (check reports, handover receipts and refusals, exposure notices), stored before they are sent and kept
//! until that node acknowledges them (`trip_outbox`), or, when it refuses one for good, kept
//! aside with the refusal (`trip_outbox_dead`) for an operator to read.
//!
//! Value of both trees, keyed by sequence number (u64 BE, from sled's id generator, so the order
//! is the order of queuing): CBOR `[to: uint (GB/T 2260 province), kind: uint (1 check report,
//! 2 handover, 3 exposure notice), record: bstr (COSE_Sign1), queued_at: uint (seconds since the Unix epoch),
//! attempts: uint, last_error: tstr]`.

use ciborium::value::Value;

use super::{blocking, corrupt, Store, StoreError};
use crate::cbor::uint;
use crate::province::Province;
use crate::UnixTime;

/// Most bytes of a queued record: reports and receipts are a few hundred bytes to a few KiB.
pub const MAX_TRIP_RECORD_BYTES: usize = 64 * 1024;

/// What a queued record is, which names the field of `SubmitTripRecord` it goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TripRecordKind {
    /// A check report: a checkpoint checked the trip's manifest.
    CheckReport,
    /// A handover receipt or refusal from the trip's destination.
    Handover,
    /// The destination's signed check-in (a trip event of kind `arrived`, docs/tracing.md
    /// section 2), for the trip's chain at its origin.
    ArrivalEvent,
    /// An exposure notice for a fellow traveller's issuing province (docs/tracing.md
    /// section 5).
    ExposureNotice,
}

impl TripRecordKind {
    fn code(self) -> u64 {
        match self {
            TripRecordKind::CheckReport => 1,
            TripRecordKind::Handover => 2,
            TripRecordKind::ArrivalEvent => 4,
            TripRecordKind::ExposureNotice => 3,
        }
    }

    fn from_code(c: u64) -> Option<Self> {
        match c {
            1 => Some(TripRecordKind::CheckReport),
            2 => Some(TripRecordKind::Handover),
            4 => Some(TripRecordKind::ArrivalEvent),
            3 => Some(TripRecordKind::ExposureNotice),
            _ => None,
        }
    }

    /// `check_report`, `handover`, `exposure_notice` or `arrival_event`, as logs and metrics
    /// name it.
    pub fn name(self) -> &'static str {
        match self {
            TripRecordKind::CheckReport => "check_report",
            TripRecordKind::Handover => "handover",
            TripRecordKind::ArrivalEvent => "arrival_event",
            TripRecordKind::ExposureNotice => "exposure_notice",
        }
    }
}

/// A record waiting in the outbox (or given up on, in the dead-letter tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its sequence number: the key.
    pub seq: u64,
    /// The province whose node it goes to.
    pub to: Province,
    /// What it is.
    pub kind: TripRecordKind,
    /// The signed record (COSE_Sign1 bytes), sent as it was signed.
    pub record: Vec<u8>,
    /// When it was queued.
    pub queued_at: UnixTime,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last failure, for operators; empty before the first.
    pub last_error: String,
}

impl OutboxEntry {
    fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            uint(u64::from(self.to.code())),
            uint(self.kind.code()),
            Value::Bytes(self.record.clone()),
            uint(self.queued_at.secs()),
            uint(u64::from(self.attempts)),
            Value::Text(self.last_error.clone()),
        ]))
    }

    fn from_record(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = |w: &str| corrupt(tree, w.to_string());
        let seq = <[u8; 8]>::try_from(key)
            .map(u64::from_be_bytes)
            .map_err(|_| bad("key is not 8 bytes"))?;
        let v = crate::cbor::decode_exact(bytes).map_err(|e| bad(&e.to_string()))?;
        let Value::Array(a) = v else {
            return Err(bad("not an array"));
        };
        let [to, kind, record, queued_at, attempts, last_error] = a.as_slice() else {
            return Err(bad(
                "not [to, kind, record, queued_at, attempts, last_error]",
            ));
        };
        let int = |v: &Value, what: &str| {
            v.as_integer()
                .and_then(|i| u64::try_from(i).ok())
                .ok_or_else(|| bad(what))
        };
        let to = u32::try_from(int(to, "to")?)
            .ok()
            .and_then(|c| Province::from_code(c).ok())
            .ok_or_else(|| bad("to is not a province"))?;
        let kind = TripRecordKind::from_code(int(kind, "kind")?).ok_or_else(|| bad("kind"))?;
        Ok(OutboxEntry {
            seq,
            to,
            kind,
            record: record.as_bytes().cloned().ok_or_else(|| bad("record"))?,
            queued_at: UnixTime::from_secs(int(queued_at, "queued_at")?),
            attempts: u32::try_from(int(attempts, "attempts")?).unwrap_or(u32::MAX),
            last_error: last_error
                .as_text()
                .map(str::to_string)
                .ok_or_else(|| bad("last_error"))?,
        })
    }
}

impl Store {
    /// Queues `record` (COSE_Sign1 bytes) for the node of `to`; flushed before it returns, so a
    /// record acknowledged to its maker is delivered even across a crash. Returns the entry's
    /// sequence number.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] (tree `trip_outbox`) for a record over
    /// [`MAX_TRIP_RECORD_BYTES`]; [`StoreError::Sled`].
    pub async fn enqueue_trip_record(
        &self,
        to: Province,
        kind: TripRecordKind,
        record: Vec<u8>,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        if record.len() > MAX_TRIP_RECORD_BYTES {
            return Err(corrupt(
                "trip_outbox",
                format!(
                    "a {} of {} bytes; at most {MAX_TRIP_RECORD_BYTES}",
                    kind.name(),
                    record.len()
                ),
            ));
        }
        self.write(async {
            let seq = self.db.generate_id()?;
            let entry = OutboxEntry {
                seq,
                to,
                kind,
                record,
                queued_at: now,
                attempts: 0,
                last_error: String::new(),
            };
            self.trip_outbox
                .insert(seq.to_be_bytes(), entry.to_record())?;
            Ok(seq)
        })
        .await
    }

    /// Whether entry `seq` still waits for its acknowledgement: false once delivered (or given
    /// up on: see [`Store::trip_outbox_dead`]).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn trip_record_pending(&self, seq: u64) -> Result<bool, StoreError> {
        Ok(self.trip_outbox.contains_key(seq.to_be_bytes())?)
    }

    /// The waiting entries, oldest first, at most `max`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an entry that does not decode; [`StoreError::Sled`].
    pub async fn trip_outbox(&self, max: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let tree = self.trip_outbox.clone();
        blocking(move || {
            tree.iter()
                .take(max)
                .map(|r| {
                    let (k, v) = r?;
                    OutboxEntry::from_record("trip_outbox", &k, &v)
                })
                .collect()
        })
        .await
    }

    /// How many entries wait.
    pub fn trip_outbox_len(&self) -> usize {
        self.trip_outbox.len()
    }

    /// The entries given up on, oldest first, at most `max`.
    ///
    /// # Errors
    /// As [`Store::trip_outbox`].
    pub async fn trip_outbox_dead(&self, max: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let tree = self.trip_outbox_dead.clone();
        blocking(move || {
            tree.iter()
                .take(max)
                .map(|r| {
                    let (k, v) = r?;
                    OutboxEntry::from_record("trip_outbox_dead", &k, &v)
                })
                .collect()
        })
        .await
    }

    /// Removes entry `seq`: its node acknowledged it. Removing one already gone does nothing.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn trip_record_delivered(&self, seq: u64) -> Result<(), StoreError> {
        self.write(async {
            self.trip_outbox.remove(seq.to_be_bytes())?;
            Ok(())
        })
        .await
    }

    /// Counts a failed attempt on entry `seq` with its error (not flushed: losing a count in a
    /// crash only makes the next wait shorter). An entry already gone is left alone.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn trip_record_failed(&self, seq: u64, error: &str) -> Result<(), StoreError> {
        self.write_unflushed(async {
            let key = seq.to_be_bytes();
            if let Some(v) = self.trip_outbox.get(key)? {
                let mut e = OutboxEntry::from_record("trip_outbox", &key, &v)?;
                e.attempts = e.attempts.saturating_add(1);
                e.last_error = error.chars().take(500).collect();
                // Only if unchanged meanwhile (a delivery may have removed it).
                let _ = self
                    .trip_outbox
                    .compare_and_swap(key, Some(v), Some(e.to_record()))?;
            }
            Ok(())
        })
        .await
    }

    /// Moves entry `seq` to the dead-letter tree with `error`: its node refused it for good
    /// (the record is wrong for it, or it holds a different one already). Flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn trip_record_given_up(&self, seq: u64, error: &str) -> Result<(), StoreError> {
        self.write(async {
            let key = seq.to_be_bytes();
            if let Some(v) = self.trip_outbox.get(key)? {
                let mut e = OutboxEntry::from_record("trip_outbox", &key, &v)?;
                e.attempts = e.attempts.saturating_add(1);
                e.last_error = error.chars().take(500).collect();
                self.trip_outbox_dead.insert(key, e.to_record())?;
                self.trip_outbox.remove(key)?;
            }
            Ok(())
        })
        .await
    }
}

impl Store {
    /// Removes the dead-letter entries queued before `before` (docs/tracing.md section 6:
    /// delivered entries leave the outbox at their acknowledgement; these are the records kept
    /// for operators), at most `max`; flushed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_trip_outbox_dead(
        &self,
        before: UnixTime,
        max: usize,
    ) -> Result<super::Pruned, StoreError> {
        let tree = self.trip_outbox_dead.clone();
        self.write(blocking(move || {
            let mut n = 0usize;
            let mut more = false;
            for r in tree.iter() {
                let (k, v) = r?;
                let e = OutboxEntry::from_record("trip_outbox_dead", &k, &v)?;
                if e.queued_at >= before {
                    continue;
                }
                if n == max {
                    more = true;
                    break;
                }
                tree.remove(k)?;
                n += 1;
            }
            Ok(super::Pruned {
                records: n as u64,
                more,
            })
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc() -> Province {
        Province::from_code(510000).unwrap()
    }

    #[tokio::test]
    async fn an_entry_waits_until_delivered_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = UnixTime::from_secs(1_700_000_000);
        let a = store
            .enqueue_trip_record(sc(), TripRecordKind::CheckReport, vec![1, 2, 3], t)
            .await
            .unwrap();
        let b = store
            .enqueue_trip_record(sc(), TripRecordKind::Handover, vec![4], t + 5)
            .await
            .unwrap();
        assert!(a < b, "sequence numbers follow the order of queuing");
        store.trip_record_failed(a, "peer down").await.unwrap();
        store.flush().await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let waiting = store.trip_outbox(10).await.unwrap();
        assert_eq!(waiting.len(), 2);
        assert_eq!(
            waiting[0],
            OutboxEntry {
                seq: a,
                to: sc(),
                kind: TripRecordKind::CheckReport,
                record: vec![1, 2, 3],
                queued_at: t,
                attempts: 1,
                last_error: "peer down".into(),
            }
        );
        assert_eq!(waiting[1].kind, TripRecordKind::Handover);
        assert!(store.trip_record_pending(a).unwrap());
        store.trip_record_delivered(a).await.unwrap();
        assert!(!store.trip_record_pending(a).unwrap());
        assert_eq!(store.trip_outbox_len(), 1);
        store
            .trip_record_given_up(b, "ALREADY_EXISTS")
            .await
            .unwrap();
        assert_eq!(store.trip_outbox_len(), 0);
        let dead = store.trip_outbox_dead(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].seq, b);
        assert_eq!(dead[0].last_error, "ALREADY_EXISTS");
        assert_eq!(dead[0].attempts, 1);
    }

    #[tokio::test]
    async fn an_oversized_record_is_refused_and_nothing_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = store
            .enqueue_trip_record(
                sc(),
                TripRecordKind::Handover,
                vec![0; MAX_TRIP_RECORD_BYTES + 1],
                UnixTime::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("trip_outbox"), "{e}");
        assert_eq!(store.trip_outbox_len(), 0);
    }

    #[tokio::test]
    async fn dead_letters_past_their_days_are_removed_and_later_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = UnixTime::from_secs(1_700_000_000);
        let old = store
            .enqueue_trip_record(sc(), TripRecordKind::ExposureNotice, vec![1], t)
            .await
            .unwrap();
        let new = store
            .enqueue_trip_record(sc(), TripRecordKind::ExposureNotice, vec![2], t + 100)
            .await
            .unwrap();
        let waiting = store
            .enqueue_trip_record(sc(), TripRecordKind::Handover, vec![3], t)
            .await
            .unwrap();
        for seq in [old, new] {
            store
                .trip_record_given_up(seq, "INVALID_ARGUMENT")
                .await
                .unwrap();
        }
        let p = store.prune_trip_outbox_dead(t + 50, 10).await.unwrap();
        assert_eq!(p.records, 1);
        let dead = store.trip_outbox_dead(10).await.unwrap();
        assert_eq!(
            dead.iter().map(|e| (e.seq, e.kind)).collect::<Vec<_>>(),
            [(new, TripRecordKind::ExposureNotice)]
        );
        assert!(
            store.trip_record_pending(waiting).unwrap(),
            "waiting records are not touched"
        );
    }

    #[test]
    fn a_damaged_entry_is_reported_with_its_tree() {
        let e = OutboxEntry::from_record("trip_outbox", &[0; 8], &[0x80]).unwrap_err();
        assert!(
            e.to_string().contains("trip_outbox") && e.to_string().contains("not [to"),
            "{e}"
        );
        let e = OutboxEntry::from_record("trip_outbox", &[0; 3], &[0x80]).unwrap_err();
        assert!(e.to_string().contains("key is not 8 bytes"), "{e}");
    }
}
