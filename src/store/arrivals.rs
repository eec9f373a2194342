//! Trips checked in at this node as their destination (`arrivals`) and their index by check-in
//! time (`arrivals_by_time`), for ListArrivals newest first (docs/transport.md section 6).
//!
//! A record holds what the receiver did and signed, and nothing of a person beyond what the
//! manifest itself carries (prefixes of hashes): the manifest string, each seat's outcome, the
//! signed receipt or refusal and its outbox entry.

use ciborium::value::Value;
use sled::Transactional as _;

use super::{blocking, corrupt, Store, StoreError};
use crate::cbor::{as_u64, uint};
use crate::manifest::{TripId, TRIP_ID_LEN};
use crate::province::Province;
use crate::UnixTime;

const TREE: &str = "arrivals";

/// One seat's outcome at handover, as the receiver recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatOutcome {
    /// Present at arrival (false: missing).
    pub present: bool,
    /// The measure taken, as docs/transport.md section 6 numbers it: 0 none, 1 health
    /// observation, 2 quarantine, 3 sent to hospital.
    pub measure: u64,
    /// Why (for a measure, or how they went missing); at most 200 bytes; no personal data.
    pub reason: String,
}

/// A handover receipt or refusal signed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHandover {
    /// The COSE_Sign1 bytes sent to the origin.
    pub signed: Vec<u8>,
    /// When received (or refused): the `received_at` it carries.
    pub at: UnixTime,
    /// A refusal rather than a receipt.
    pub refused: bool,
    /// The refusal's reason, or the note on the handover.
    pub reason: String,
}

/// A trip as this node, its destination, took it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivalRecord {
    /// The trip: the record's key.
    pub trip_id: TripId,
    /// The origin province, whose node gets the receipt.
    pub origin: Province,
    /// The manifest version checked in (or refused).
    pub version: u64,
    /// The manifest string as scanned ("HCMRT1:...").
    pub manifest: String,
    /// The reception point, as the receiver named it (at most 64 bytes).
    pub checkpoint: String,
    /// When checked in (for a vehicle refused without a check-in: when refused).
    pub checked_in_at: UnixTime,
    /// One entry per seat of the manifest, seat 1 first: `None` until confirmed or missing.
    pub seats: Vec<Option<SeatOutcome>>,
    /// The receipt or refusal, once signed.
    pub handover: Option<SignedHandover>,
    /// The outbox entry carrying `handover` to the origin, once queued.
    pub outbox_seq: Option<u64>,
}

impl ArrivalRecord {
    /// Seats confirmed or marked missing so far.
    pub fn confirmed(&self) -> usize {
        self.seats.iter().filter(|s| s.is_some()).count()
    }

    /// The stored value: CBOR `[origin, version, manifest, checkpoint, checked_in_at,
    /// [* null / [present, measure, reason]], null / [signed, at, refused, reason],
    /// null / outbox_seq]`.
    fn to_record(&self) -> Vec<u8> {
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        let seats = self
            .seats
            .iter()
            .map(|s| {
                opt(s.as_ref().map(|s| {
                    Value::Array(vec![
                        Value::Bool(s.present),
                        uint(s.measure),
                        Value::Text(s.reason.clone()),
                    ])
                }))
            })
            .collect();
        let handover = opt(self.handover.as_ref().map(|h| {
            Value::Array(vec![
                Value::Bytes(h.signed.clone()),
                uint(h.at.secs()),
                Value::Bool(h.refused),
                Value::Text(h.reason.clone()),
            ])
        }));
        crate::cbor::encode(&Value::Array(vec![
            uint(u64::from(self.origin.code())),
            uint(self.version),
            Value::Text(self.manifest.clone()),
            Value::Text(self.checkpoint.clone()),
            uint(self.checked_in_at.secs()),
            Value::Array(seats),
            handover,
            opt(self.outbox_seq.map(uint)),
        ]))
    }

    fn from_record(trip_id: TripId, v: &[u8]) -> Result<ArrivalRecord, StoreError> {
        let bad = || corrupt(TREE, "not an arrival record");
        let Value::Array(a) =
            crate::cbor::decode_exact(v).map_err(|e| corrupt(TREE, e.to_string()))?
        else {
            return Err(bad());
        };
        let [origin, version, Value::Text(manifest), Value::Text(checkpoint), at, Value::Array(seats), handover, seq] =
            a.as_slice()
        else {
            return Err(bad());
        };
        let seats = seats
            .iter()
            .map(|s| match s {
                Value::Null => Ok(None),
                Value::Array(s) => match s.as_slice() {
                    [Value::Bool(present), measure, Value::Text(reason)] => Ok(Some(SeatOutcome {
                        present: *present,
                        measure: as_u64(measure).ok_or_else(bad)?,
                        reason: reason.clone(),
                    })),
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let handover = match handover {
            Value::Null => None,
            Value::Array(h) => match h.as_slice() {
                [Value::Bytes(signed), at, Value::Bool(refused), Value::Text(reason)] => {
                    Some(SignedHandover {
                        signed: signed.clone(),
                        at: as_u64(at).map(UnixTime::from_secs).ok_or_else(bad)?,
                        refused: *refused,
                        reason: reason.clone(),
                    })
                }
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let outbox_seq = match seq {
            Value::Null => None,
            v => Some(as_u64(v).ok_or_else(bad)?),
        };
        Ok(ArrivalRecord {
            trip_id,
            origin: as_u64(origin)
                .and_then(|c| u32::try_from(c).ok())
                .and_then(|c| Province::from_code(c).ok())
                .ok_or_else(bad)?,
            version: as_u64(version).ok_or_else(bad)?,
            manifest: manifest.clone(),
            checkpoint: checkpoint.clone(),
            checked_in_at: as_u64(at).map(UnixTime::from_secs).ok_or_else(bad)?,
            seats,
            handover,
            outbox_seq,
        })
    }
}

/// Key of the `arrivals_by_time` index: `checked_in_at` (big-endian) and the trip id.
fn time_key(at: UnixTime, trip: &TripId) -> [u8; 8 + TRIP_ID_LEN] {
    let mut k = [0u8; 8 + TRIP_ID_LEN];
    k[..8].copy_from_slice(&at.secs().to_be_bytes());
    k[8..].copy_from_slice(&trip.0);
    k
}

/// A page of arrivals, newest first ([`Store::arrivals_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivalPage {
    /// The records, newest check-in first.
    pub arrivals: Vec<ArrivalRecord>,
    /// Where the next page starts (an index key to continue below), when the page was cut.
    pub next: Option<Vec<u8>>,
}

impl Store {
    /// The arrival of trip `trip`, if it was checked in (or refused) here.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a record that does not decode.
    pub fn arrival(&self, trip: &TripId) -> Result<Option<ArrivalRecord>, StoreError> {
        self.arrivals
            .get(trip.0)?
            .map(|v| ArrivalRecord::from_record(*trip, &v))
            .transpose()
    }

    /// The manifest string of every trip checked in (or refused) here, as checked in, for a
    /// trace (docs/tracing.md section 3). Reads every arrival: call it on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a record that does not decode.
    pub fn arrival_manifests(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for r in self.arrivals.iter() {
            let (k, v) = r?;
            let trip = TripId(
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt(TREE, "a key that is not a trip id"))?,
            );
            out.push(ArrivalRecord::from_record(trip, &v)?.manifest);
        }
        Ok(out)
    }

    /// Stores `record` (replacing the trip's earlier one) and its index entry; flushed before it
    /// returns. Callers hold [`Store::lock_arrivals`] across their read and this write.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_arrival(&self, record: &ArrivalRecord) -> Result<(), StoreError> {
        let (arrivals, index) = (self.arrivals.clone(), self.arrivals_by_time.clone());
        let record = record.clone();
        self.write(blocking(move || {
            let old = arrivals
                .get(record.trip_id.0)?
                .map(|v| ArrivalRecord::from_record(record.trip_id, &v))
                .transpose()?;
            (&arrivals, &index)
                .transaction(|(a, i)| {
                    if let Some(old) = &old {
                        i.remove(&time_key(old.checked_in_at, &old.trip_id)[..])?;
                    }
                    i.insert(
                        &time_key(record.checked_in_at, &record.trip_id)[..],
                        &[][..],
                    )?;
                    a.insert(&record.trip_id.0[..], record.to_record())?;
                    Ok(())
                })
                .map_err(|e: sled::transaction::TransactionError<()>| match e {
                    sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                    sled::transaction::TransactionError::Abort(()) => {
                        corrupt(TREE, "transaction aborted")
                    }
                })
        }))
        .await
    }

    /// At most `limit` arrivals, newest check-in first, starting below the index key `below`
    /// (a page's `next`), or at the newest.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a record or key that does not decode.
    pub fn arrivals_page(
        &self,
        below: Option<&[u8]>,
        limit: usize,
    ) -> Result<ArrivalPage, StoreError> {
        let range = match below {
            Some(k) => self.arrivals_by_time.range(..k.to_vec()),
            None => self.arrivals_by_time.range::<Vec<u8>, _>(..),
        };
        let mut arrivals = Vec::new();
        let mut next = None;
        for r in range.rev() {
            let (k, _) = r?;
            if arrivals.len() == limit {
                next = Some(time_key_after(&arrivals)?);
                break;
            }
            let trip = TripId(
                k.get(8..)
                    .and_then(|t| t.try_into().ok())
                    .ok_or_else(|| corrupt("arrivals_by_time", "a key of the wrong length"))?,
            );
            let record = self.arrival(&trip)?.ok_or_else(|| {
                corrupt(
                    "arrivals_by_time",
                    format!("trip {trip} is indexed but not stored"),
                )
            })?;
            arrivals.push(record);
        }
        Ok(ArrivalPage { arrivals, next })
    }

    /// Whether the origin acknowledged trip outbox entry `seq` (a receipt or refusal queued by
    /// an arrival): neither waiting nor given up on (a given-up entry is not delivered).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn trip_record_acknowledged(&self, seq: u64) -> Result<bool, StoreError> {
        let key = seq.to_be_bytes();
        Ok(!self.trip_outbox.contains_key(key)? && !self.trip_outbox_dead.contains_key(key)?)
    }

    /// Removes the arrivals checked in before `before` whose planned arrival (read from the
    /// manifest shown) is before it too (docs/tracing.md section 6), at most `max`, with their
    /// index entries; flushed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_arrivals(
        &self,
        before: UnixTime,
        max: usize,
    ) -> Result<crate::store::Pruned, StoreError> {
        let s = self.clone();
        self.write(blocking(move || {
            let (mut n, mut more) = (0usize, false);
            for r in s.arrivals_by_time.range(..before.secs().to_be_bytes()) {
                let (k, _) = r?;
                if n == max {
                    more = true;
                    break;
                }
                let trip = TripId(
                    k.get(8..)
                        .and_then(|t| t.try_into().ok())
                        .ok_or_else(|| corrupt("arrivals_by_time", "a key of the wrong length"))?,
                );
                if let Some(a) = s.arrival(&trip)? {
                    let planned = crate::manifest::SignedManifest::decode(&a.manifest)
                        .map(|m| m.manifest.arrival)
                        .unwrap_or(a.checked_in_at);
                    if planned >= before {
                        continue;
                    }
                    s.arrivals.remove(trip.0)?;
                    // Its events here (the check-in), unless this node is also the trip's
                    // origin: then they go with the trip ([`Store::prune_trips`]).
                    if s.trip(&trip)?.is_none() {
                        for r in s.trip_events.scan_prefix(trip.0) {
                            s.trip_events.remove(r?.0)?;
                        }
                    }
                }
                s.arrivals_by_time.remove(k)?;
                n += 1;
            }
            Ok(crate::store::Pruned {
                records: n as u64,
                more,
            })
        }))
        .await
    }

    /// Takes the lock that orders read-modify-write steps on arrivals (check-in, confirmation,
    /// handover, refusal), so that two concurrent calls never both sign a receipt for a trip.
    pub async fn lock_arrivals(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.arrivals_lock.lock().await
    }
}

/// The index key of the last record of a full page: the next page starts below it.
fn time_key_after(page: &[ArrivalRecord]) -> Result<Vec<u8>, StoreError> {
    page.last()
        .map(|r| time_key(r.checked_in_at, &r.trip_id).to_vec())
        .ok_or_else(|| corrupt(TREE, "an empty page was cut"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(trip: u8, at: u64) -> ArrivalRecord {
        ArrivalRecord {
            trip_id: TripId([trip; TRIP_ID_LEN]),
            origin: Province::from_code(510_000).unwrap(),
            version: 2,
            manifest: "HCMRT1:ABC".into(),
            checkpoint: "gate-1".into(),
            checked_in_at: UnixTime::from_secs(at),
            seats: vec![
                Some(SeatOutcome {
                    present: true,
                    measure: 1,
                    reason: "fever 37.6".into(),
                }),
                None,
            ],
            handover: None,
            outbox_seq: None,
        }
    }

    #[tokio::test]
    async fn arrivals_read_back_replace_and_page_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (trip, at) in [(1, 100), (2, 300), (3, 200)] {
            store.put_arrival(&record(trip, at)).await.unwrap();
        }
        let mut r = record(1, 400);
        r.handover = Some(SignedHandover {
            signed: vec![0xd2, 1, 2],
            at: UnixTime::from_secs(450),
            refused: false,
            reason: "all well".into(),
        });
        r.outbox_seq = Some(7);
        store.put_arrival(&r).await.unwrap();
        assert_eq!(store.arrival(&r.trip_id).unwrap(), Some(r.clone()));
        assert_eq!(store.arrival(&TripId([9; TRIP_ID_LEN])).unwrap(), None);

        let first = store.arrivals_page(None, 2).unwrap();
        let trips: Vec<u8> = first.arrivals.iter().map(|a| a.trip_id.0[0]).collect();
        assert_eq!(trips, vec![1, 2], "trip 1 moved to 400 when replaced");
        let second = store.arrivals_page(first.next.as_deref(), 2).unwrap();
        let trips: Vec<u8> = second.arrivals.iter().map(|a| a.trip_id.0[0]).collect();
        assert_eq!(trips, vec![3]);
        assert_eq!(second.next, None);
        assert_eq!(first.arrivals[0].confirmed(), 1);
    }

    #[tokio::test]
    async fn an_outbox_entry_is_acknowledged_once_delivered_never_when_given_up() {
        use crate::store::TripRecordKind;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sc = Province::from_code(510_000).unwrap();
        let t = UnixTime::from_secs(1_700_000_000);
        let a = store
            .enqueue_trip_record(sc, TripRecordKind::Handover, vec![1], t)
            .await
            .unwrap();
        let b = store
            .enqueue_trip_record(sc, TripRecordKind::Handover, vec![2], t)
            .await
            .unwrap();
        assert!(!store.trip_record_acknowledged(a).unwrap());
        store.trip_record_delivered(a).await.unwrap();
        assert!(store.trip_record_acknowledged(a).unwrap());
        store.trip_record_given_up(b, "NOT_FOUND").await.unwrap();
        assert!(!store.trip_record_pending(b).unwrap());
        assert!(!store.trip_record_acknowledged(b).unwrap());
    }
}
