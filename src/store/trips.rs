//! Trips this node is the origin of (docs/transport.md): the trip records (`trips`), their
//! creation order (`trips_created`), the sealed versions (`trip_versions`), the holders' index
//! (`trip_holders`), the trips awaiting a handover by planned arrival (`trips_due`), and the
//! check reports and handovers received from other nodes (`trip_reports`, `trip_handovers`), and
//! the signed trip events this node recorded (`trip_events`, docs/tracing.md section 2), each
//! written with the trip change it records.
//!
//! A person is kept as the origin needs them: issuer, status as verified, cti, `iat`, the end
//! of the status, the keyed subject hash and the masked subject the code carries; never a full
//! name or document number.
//!
//! Writes that touch several trees are ordered so that a crash between them (before the flush
//! that acknowledges them) leaves nothing that misleads: an index entry whose trip does not hold
//! it counts for nothing (readers check the trip), and the trip record is written last.

mod records;
mod retention;

use super::{blocking, corrupt, Store, StoreError};
use crate::identity::SubjectHash;
use crate::manifest::TripId;
use crate::province::Province;
use crate::UnixTime;
use records::{
    decode_handover, decode_report, decode_trip, encode_handover, encode_report, encode_trip,
};
pub use records::{Removal, Stored, StoredHandover, StoredReport, TripEntry, TripRecord};

/// A key of `trips_created`, `trips_due`: a time (u64 BE) and the trip.
fn time_key(t: UnixTime, id: &TripId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&t.secs().to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

/// A key of `trip_holders`: the issuer (u32 BE) and the keyed subject hash.
fn holder_key(issuer: Province, subject: &SubjectHash) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&issuer.code().to_be_bytes());
    k[4..].copy_from_slice(&subject.0);
    k
}

/// A key of `trip_versions`: the trip and the version (u64 BE).
fn version_key(id: &TripId, version: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.0);
    k[8..].copy_from_slice(&version.to_be_bytes());
    k
}

/// A key of `trip_reports`: the trip, the check time (u64 BE) and the first 8 bytes of the
/// report's SHA-256 (reports of a trip oldest first; the same report, the same key).
fn report_key(id: &TripId, checked_at: UnixTime, signed: &[u8]) -> [u8; 24] {
    use sha2::Digest;
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&id.0);
    k[8..16].copy_from_slice(&checked_at.secs().to_be_bytes());
    k[16..].copy_from_slice(&sha2::Sha256::digest(signed)[..8]);
    k
}

/// A signed trip event (docs/tracing.md section 2) to store with the change it records: its
/// time (`at`, the key's order) and its COSE_Sign1 bytes.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// The event's `at`.
    pub at: UnixTime,
    /// The COSE_Sign1 bytes.
    pub signed: &'a [u8],
}

impl Store {
    /// Inserts a trip event (not flushed: the caller's write flushes it with its change).
    fn insert_event(&self, id: &TripId, e: NewEvent<'_>) -> Result<(), StoreError> {
        let mut k = [0u8; 24];
        k[..8].copy_from_slice(&id.0);
        k[8..16].copy_from_slice(&e.at.secs().to_be_bytes());
        k[16..].copy_from_slice(&self.db.generate_id()?.to_be_bytes());
        self.trip_events.insert(k, e.signed)?;
        Ok(())
    }

    /// Stores a signed trip event alone (the destination's check-in, after its arrival record);
    /// flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn store_trip_event(&self, id: &TripId, e: NewEvent<'_>) -> Result<(), StoreError> {
        self.write(async { self.insert_event(id, e) }).await
    }

    /// Stores a signed trip event another node recorded (the destination's check-in), keyed by
    /// its time and hash, so the same event again is a [`Stored::Duplicate`]. Flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn store_received_event(
        &self,
        id: &TripId,
        e: NewEvent<'_>,
    ) -> Result<Stored, StoreError> {
        self.write(async {
            let k = report_key(id, e.at, e.signed);
            let inserted = self
                .trip_events
                .compare_and_swap(k, None::<&[u8]>, Some(e.signed))?;
            Ok(if inserted.is_ok() {
                Stored::New
            } else {
                Stored::Duplicate
            })
        })
        .await
    }

    /// The signed trip events this node recorded for a trip, by time, then as recorded.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip_events(&self, id: &TripId) -> Result<Vec<Vec<u8>>, StoreError> {
        self.trip_events
            .scan_prefix(id.0)
            .map(|r| Ok(r?.1.to_vec()))
            .collect()
    }

    /// Serialises the trip workflows' read-check-write steps (boarding checks the holders'
    /// index, then writes it): hold the guard across them.
    pub async fn lock_trips(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.trips_lock.lock().await
    }

    /// A trip by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip(&self, id: &TripId) -> Result<Option<TripRecord>, StoreError> {
        self.trips.get(id.0)?.map(|v| decode_trip(&v)).transpose()
    }

    /// Stores a new trip and its `created` event; flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn create_trip(&self, t: &TripRecord, event: NewEvent<'_>) -> Result<(), StoreError> {
        self.write(async {
            self.insert_event(&t.id, event)?;
            self.trips_created
                .insert(time_key(t.created_at, &t.id), Vec::new())?;
            self.trips.insert(t.id.0, encode_trip(t))?;
            Ok(())
        })
        .await
    }

    /// Replaces a trip record, with its holders' index (`added` gains an entry naming the trip,
    /// `released` loses theirs when it names the trip) and the signed event of the change
    /// (boarded, removed, cancelled). Flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn update_trip(
        &self,
        t: &TripRecord,
        added: &[(Province, SubjectHash)],
        released: &[(Province, SubjectHash)],
        event: NewEvent<'_>,
    ) -> Result<(), StoreError> {
        self.update_trip_unflushed(t, added, released, event)
            .await?;
        self.flush().await
    }

    /// [`Store::update_trip`] without its flush: the caller calls [`Store::flush`] before it
    /// answers, after letting go of [`Store::lock_trips`], so that concurrent boardings share
    /// one flush (group commit) instead of taking turns at the disk. The write (with its event)
    /// is whole to any reader (and to a backup) at once; it is durable once a flush that
    /// started after it ends.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn update_trip_unflushed(
        &self,
        t: &TripRecord,
        added: &[(Province, SubjectHash)],
        released: &[(Province, SubjectHash)],
        event: NewEvent<'_>,
    ) -> Result<(), StoreError> {
        self.write_unflushed(async {
            self.insert_event(&t.id, event)?;
            for (issuer, hash) in added {
                self.trip_holders
                    .insert(holder_key(*issuer, hash), &t.id.0)?;
            }
            self.trips.insert(t.id.0, encode_trip(t))?;
            for (issuer, hash) in released {
                let k = holder_key(*issuer, hash);
                // Only the trip's own entry: the person may hold another trip's since.
                let _ = self
                    .trip_holders
                    .compare_and_swap(k, Some(&t.id.0[..]), None::<&[u8]>)?;
            }
            Ok(())
        })
        .await
    }

    /// The trip the holders' index names for a person (issuer and keyed subject hash). The
    /// caller checks that trip still holds them and is not over.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip_holding(
        &self,
        issuer: Province,
        subject: &SubjectHash,
    ) -> Result<Option<TripId>, StoreError> {
        self.trip_holders
            .get(holder_key(issuer, subject))?
            .map(|v| {
                v.as_ref()
                    .try_into()
                    .map(TripId)
                    .map_err(|_| corrupt("trip_holders", "a value that is not a trip id"))
            })
            .transpose()
    }

    /// Stores a sealed version and the trip as it stands after the seal (and, at the first seal,
    /// the trip among those awaiting a handover). Flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn seal_trip(&self, t: &TripRecord, manifest: &str) -> Result<(), StoreError> {
        self.write(async {
            self.trip_versions
                .insert(version_key(&t.id, t.version), manifest.as_bytes())?;
            self.trips_due
                .insert(time_key(t.arrival, &t.id), Vec::new())?;
            self.trips.insert(t.id.0, encode_trip(t))?;
            Ok(())
        })
        .await
    }

    /// A sealed version of a trip: the manifest string.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip_version(&self, id: &TripId, version: u64) -> Result<Option<String>, StoreError> {
        self.trip_versions
            .get(version_key(id, version))?
            .map(|v| {
                String::from_utf8(v.to_vec())
                    .map_err(|_| corrupt("trip_versions", "a manifest that is not UTF-8"))
            })
            .transpose()
    }

    /// The latest sealed manifest string of every trip of this origin planned to depart in
    /// `since <= departure < until` (never sealed or cancelled trips have none), for a trace
    /// (docs/tracing.md section 3). Reads every trip record: call it on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Corrupt`] for a record that does not decode.
    pub fn sealed_manifests_departing(
        &self,
        since: UnixTime,
        until: UnixTime,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for r in self.trips.iter() {
            let (_, v) = r?;
            let t = decode_trip(&v)?;
            if t.version == 0 || t.departure < since || t.departure >= until {
                continue;
            }
            if let Some(m) = self.trip_version(&t.id, t.version)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Trips by creation, newest first, starting before `before` (a creation time and trip id
    /// from a previous page) when given; at most `max`, read on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn trips_newest_first(
        &self,
        before: Option<(UnixTime, TripId)>,
        max: usize,
        keep: impl Fn(&TripRecord) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<(Vec<TripRecord>, bool), StoreError> {
        let (created, trips) = (self.trips_created.clone(), self.trips.clone());
        blocking(move || {
            let range = match before {
                Some((t, id)) => created.range(..time_key(t, &id)),
                None => created.range::<&[u8], _>(..),
            };
            let mut out = Vec::new();
            for r in range.rev() {
                let (k, _) = r?;
                let id: [u8; 8] = k
                    .get(8..16)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("trips_created", "a key of the wrong length"))?;
                let Some(v) = trips.get(id)? else {
                    continue; // a crash before the record was written: nothing acknowledged
                };
                let t = decode_trip(&v)?;
                if keep(&t)? {
                    if out.len() == max {
                        return Ok((out, true));
                    }
                    out.push(t);
                }
            }
            Ok((out, false))
        })
        .await
    }

    /// Trips awaiting a handover whose planned arrival is before `before`, earliest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trips_due_before(&self, before: UnixTime) -> Result<Vec<TripId>, StoreError> {
        self.trips_due
            .range(..before.secs().to_be_bytes())
            .map(|r| {
                let (k, _) = r?;
                k.get(8..16)
                    .and_then(|b| b.try_into().ok())
                    .map(TripId)
                    .ok_or_else(|| corrupt("trips_due", "a key of the wrong length"))
            })
            .collect()
    }

    /// Stores a check report received for a trip (keyed by its check time and hash, so the same
    /// report again is a duplicate). Flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn store_trip_report(
        &self,
        id: &TripId,
        r: &StoredReport,
    ) -> Result<Stored, StoreError> {
        self.write(async {
            let k = report_key(id, r.checked_at, &r.signed);
            let inserted =
                self.trip_reports
                    .compare_and_swap(k, None::<&[u8]>, Some(encode_report(r)))?;
            Ok(if inserted.is_ok() {
                Stored::New
            } else {
                Stored::Duplicate
            })
        })
        .await
    }

    /// The check reports received for a trip, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip_reports(&self, id: &TripId) -> Result<Vec<StoredReport>, StoreError> {
        self.trip_reports
            .scan_prefix(id.0)
            .map(|r| decode_report(&r?.1))
            .collect()
    }

    /// Whether any check report was received for a trip.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip_has_reports(&self, id: &TripId) -> Result<bool, StoreError> {
        Ok(self
            .trip_reports
            .scan_prefix(id.0)
            .next()
            .transpose()?
            .is_some())
    }

    /// Stores the handover of a trip (the first one only: the same one again is a
    /// [`Stored::Duplicate`], another a [`Stored::Conflict`]) and takes the trip off those
    /// awaiting one. Flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn store_trip_handover(
        &self,
        t: &TripRecord,
        h: &StoredHandover,
    ) -> Result<Stored, StoreError> {
        self.write(async {
            let swapped = self.trip_handovers.compare_and_swap(
                t.id.0,
                None::<&[u8]>,
                Some(encode_handover(h)),
            )?;
            let stored = match swapped {
                Ok(()) => Stored::New,
                Err(e) => match e.current.map(|v| decode_handover(&v)).transpose()? {
                    Some(s) if s.signed == h.signed => Stored::Duplicate,
                    _ => Stored::Conflict,
                },
            };
            // Whatever the outcome, the trip has a handover now: it no longer awaits one, and its
            // people are free to board another trip. Done on a duplicate and a conflict too, so
            // a crash between these writes and the flush (nothing acknowledged) is completed by
            // the retry.
            self.trips_due.remove(time_key(t.arrival, &t.id))?;
            for p in &t.people {
                let _ = self.trip_holders.compare_and_swap(
                    holder_key(p.issuer, &p.subject_hash),
                    Some(&t.id.0[..]),
                    None::<&[u8]>,
                )?;
            }
            Ok(stored)
        })
        .await
    }

    /// The handover received for a trip, if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn trip_handover(&self, id: &TripId) -> Result<Option<StoredHandover>, StoreError> {
        self.trip_handovers
            .get(id.0)?
            .map(|v| decode_handover(&v))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_time_then_trip() {
        let a = time_key(UnixTime::from_secs(5), &TripId([9; 8]));
        let b = time_key(UnixTime::from_secs(6), &TripId([0; 8]));
        assert!(a < b);
        assert_eq!(
            holder_key(Province::from_code(510000).unwrap(), &SubjectHash([1; 8]))[..4],
            510000u32.to_be_bytes()
        );
    }

    /// An event of time `n` whose bytes are `[n]`.
    fn ev(n: u8) -> NewEvent<'static> {
        const BYTES: [[u8; 1]; 10] = [[0], [1], [2], [3], [4], [5], [6], [7], [8], [9]];
        NewEvent {
            at: UnixTime::from_secs(u64::from(n)),
            signed: &BYTES[n as usize],
        }
    }

    #[tokio::test]
    async fn trips_their_index_versions_and_records_read_back_and_survive_a_reopen() {
        use super::records::tests::{entry, trip};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sc = Province::from_code(510000).unwrap();
        let mut t = trip();
        t.version = 0;
        t.sealed_at = None;
        store.create_trip(&t, ev(1)).await.unwrap();
        let mut later = trip();
        later.id = TripId([8; 8]);
        later.created_at = t.created_at + 1;
        store.create_trip(&later, ev(9)).await.unwrap();
        // Boarding writes the holder; the index names the trip.
        store
            .update_trip(&t, &[(sc, SubjectHash([3; 8]))], &[], ev(2))
            .await
            .unwrap();
        assert_eq!(
            store.trip_holding(sc, &SubjectHash([3; 8])).unwrap(),
            Some(t.id)
        );
        // Another trip's release leaves this trip's entry alone.
        store
            .update_trip(&later, &[], &[(sc, SubjectHash([3; 8]))], ev(9))
            .await
            .unwrap();
        assert_eq!(
            store.trip_holding(sc, &SubjectHash([3; 8])).unwrap(),
            Some(t.id)
        );
        // Newest first, in pages.
        let (page, more) = store
            .trips_newest_first(None, 1, |_| Ok(true))
            .await
            .unwrap();
        assert_eq!((page[0].id, more), (later.id, true));
        let next = Some((later.created_at, later.id));
        let (page, more) = store
            .trips_newest_first(next, 1, |_| Ok(true))
            .await
            .unwrap();
        assert_eq!((page[0].id, more), (t.id, false));
        // Two seals: both versions kept; the trip awaits a handover.
        t.version = 1;
        store.seal_trip(&t, "HCMRT1:ONE").await.unwrap();
        t.version = 2;
        store.seal_trip(&t, "HCMRT1:TWO").await.unwrap();
        assert_eq!(store.trip_version(&t.id, 1).unwrap().unwrap(), "HCMRT1:ONE");
        assert_eq!(store.trip_version(&t.id, 3).unwrap(), None);
        assert_eq!(store.trips_due_before(t.arrival + 1).unwrap(), vec![t.id]);
        assert!(store.trips_due_before(t.arrival).unwrap().is_empty());
        // A report once, then a duplicate.
        let report = StoredReport {
            checker: Province::from_code(340000).unwrap(),
            checkpoint: "G50".into(),
            checked_at: t.departure + 60,
            version: 1,
            pass: true,
            reasons: vec![],
            signed: vec![1, 2, 3],
        };
        assert_eq!(
            store.store_trip_report(&t.id, &report).await.unwrap(),
            Stored::New
        );
        assert_eq!(
            store.store_trip_report(&t.id, &report).await.unwrap(),
            Stored::Duplicate
        );
        // The handover: new, duplicate, conflict; the trip no longer awaits one and its
        // people are free.
        t.people = vec![entry(3)];
        let h = StoredHandover {
            destination: Province::from_code(330000).unwrap(),
            version: 2,
            received_at: t.arrival,
            refused: false,
            reason: String::new(),
            people: vec![(1, true, 0, String::new())],
            signed: vec![7; 80],
        };
        assert_eq!(
            store.store_trip_handover(&t, &h).await.unwrap(),
            Stored::New
        );
        assert_eq!(
            store.store_trip_handover(&t, &h).await.unwrap(),
            Stored::Duplicate
        );
        let other = StoredHandover {
            refused: true,
            signed: vec![8; 80],
            ..h.clone()
        };
        assert_eq!(
            store.store_trip_handover(&t, &other).await.unwrap(),
            Stored::Conflict
        );
        assert!(store.trips_due_before(t.arrival + 1).unwrap().is_empty());
        assert_eq!(store.trip_holding(sc, &SubjectHash([3; 8])).unwrap(), None);
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        // The trip's events, in order; the other trip's apart.
        store
            .store_trip_event(
                &t.id,
                NewEvent {
                    at: UnixTime::from_secs(3),
                    signed: &[3],
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.trip_events(&t.id).unwrap(),
            [vec![1], vec![2], vec![3]]
        );
        assert_eq!(store.trip_events(&later.id).unwrap(), [vec![9], vec![9]]);
        assert_eq!(store.trip_handover(&t.id).unwrap(), Some(h));
        assert_eq!(store.trip_reports(&t.id).unwrap(), vec![report]);
        assert!(store.trip_has_reports(&t.id).unwrap());
        assert_eq!(store.trip(&later.id).unwrap(), Some(later));
        assert_eq!(store.trip_version(&t.id, 2).unwrap().unwrap(), "HCMRT1:TWO");
    }
}
