//! The highest version of each trip a checkpoint of this node has seen (`manifests_seen`), so
//! that an older version shown later is stopped as superseded (docs/transport.md section 3.3),
//! also after a restart.
//!
//! A check notes the version in memory ([`Store::note_manifest_version`], no I/O, so the
//! vehicle's answer never waits on the disk); the audit writer stores what was noted with its
//! next batch ([`Store::store_manifest_versions`]) and flushes it with the audit records.
//!
//! The first store of a trip also writes `manifests_seen_by_time` (the system time, u64 BE ‖
//! trip id), so that retention removes a trip's entry `trip_days` after it was first stored
//! ([`Store::prune_manifests_seen`]); entries stored before that index existed stay.

use std::collections::HashMap;

use super::{blocking, corrupt, Store, StoreError};
use crate::lock::Locked;
use crate::manifest::{TripId, TRIP_ID_LEN};

/// Versions noted since they were last stored, by trip: at most the checks of one audit batch.
pub(super) type PendingVersions = std::sync::Mutex<HashMap<[u8; TRIP_ID_LEN], u64>>;

/// Manifest strings noted since they were last stored, by trip: the highest version's.
pub(super) type PendingTexts = std::sync::Mutex<HashMap<[u8; TRIP_ID_LEN], (u64, String)>>;

/// A `manifests_checked` value: the version (u64 BE) and the manifest string.
fn encode_checked(version: u64, text: &str) -> Vec<u8> {
    let mut v = version.to_be_bytes().to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

fn decode_checked(v: &[u8]) -> Result<(u64, String), StoreError> {
    let bad = || corrupt("manifests_checked", "not a version and a manifest string");
    let (version, text) = v.split_at_checked(8).ok_or_else(bad)?;
    Ok((
        u64::from_be_bytes(version.try_into().map_err(|_| bad())?),
        String::from_utf8(text.to_vec()).map_err(|_| bad())?,
    ))
}

fn version_of(v: &[u8]) -> Result<u64, StoreError> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt("manifests_seen", "a version that is not 8 bytes"))
}

impl Store {
    /// The highest version of `trip` seen here: noted and not yet stored, or stored.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a stored value that is not a version.
    pub fn seen_manifest_version(&self, trip: TripId) -> Result<Option<u64>, StoreError> {
        let pending = self.manifests_pending.locked().get(&trip.0).copied();
        let stored = match self.manifests_seen.get(trip.0)? {
            Some(v) => Some(version_of(&v)?),
            None => None,
        };
        Ok(pending.max(stored))
    }

    /// The highest version of every trip this node knows: seen by its checks (stored or
    /// noted) or sealed here as the trip's origin, by trip id. What a verify replica follows,
    /// so that a version superseded at the primary is superseded at the replica too. Reads
    /// whole trees: call it on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a key or value of the wrong length.
    pub fn manifest_versions(&self) -> Result<Vec<([u8; TRIP_ID_LEN], u64)>, StoreError> {
        let mut out: std::collections::BTreeMap<[u8; TRIP_ID_LEN], u64> = Default::default();
        let mut take = |trip: [u8; TRIP_ID_LEN], v: u64| {
            let e = out.entry(trip).or_insert(v);
            *e = (*e).max(v);
        };
        for r in self.manifests_seen.iter() {
            let (k, v) = r?;
            let trip = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("manifests_seen", "a key that is not a trip id"))?;
            take(trip, version_of(&v)?);
        }
        for (trip, v) in self.manifests_pending.locked().iter() {
            take(*trip, *v);
        }
        for r in self.trip_versions.iter() {
            let (k, _) = r?;
            if k.len() != TRIP_ID_LEN + 8 {
                return Err(corrupt(
                    "trip_versions",
                    "a key that is not trip id and version",
                ));
            }
            let (trip, v) = k.split_at(TRIP_ID_LEN);
            take(
                trip.try_into().expect("checked length"),
                u64::from_be_bytes(v.try_into().expect("checked length")),
            );
        }
        Ok(out.into_iter().collect())
    }

    /// Notes that `version` of `trip` was seen (in memory; no I/O). Lower than a version noted
    /// before, it changes nothing.
    pub fn note_manifest_version(&self, trip: TripId, version: u64) {
        let mut pending = self.manifests_pending.locked();
        let v = pending.entry(trip.0).or_insert(version);
        *v = (*v).max(version);
    }

    /// Notes the manifest string of `version` of `trip`, checked here with a verified
    /// signature (in memory; no I/O), so that a trace finds the trips this node's checkpoints
    /// saw (docs/tracing.md section 3). Lower than a version noted before, it changes nothing.
    pub fn note_manifest_text(&self, trip: TripId, version: u64, text: &str) {
        let mut pending = self.manifests_text_pending.locked();
        match pending.get(&trip.0) {
            Some((v, _)) if *v >= version => {}
            _ => {
                pending.insert(trip.0, (version, text.to_string()));
            }
        }
    }

    /// The manifest string of every trip checked here (the highest version seen with a
    /// verified signature): stored, and noted but not yet stored. Reads the whole tree: call it
    /// on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; [`StoreError::Corrupt`] for a value that is not UTF-8.
    pub fn checked_manifests(&self) -> Result<Vec<String>, StoreError> {
        let mut out: HashMap<[u8; TRIP_ID_LEN], (u64, String)> = HashMap::new();
        for r in self.manifests_checked.iter() {
            let (k, v) = r?;
            let trip: [u8; TRIP_ID_LEN] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("manifests_checked", "a key that is not a trip id"))?;
            let (version, text) = decode_checked(&v)?;
            out.insert(trip, (version, text));
        }
        for (trip, (version, text)) in self.manifests_text_pending.locked().iter() {
            if out.get(trip).is_none_or(|(v, _)| v < version) {
                out.insert(*trip, (*version, text.clone()));
            }
        }
        Ok(out.into_values().map(|(_, t)| t).collect())
    }

    /// Stores the versions noted since the last call, each only where it is higher than the one
    /// stored, under the write gate on a blocking thread; not flushed (the audit writer flushes
    /// its batch). Whether there was anything to store. A version stays noted until the tree
    /// holds it (on failure, for the next call).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn store_manifest_versions(&self) -> Result<bool, StoreError> {
        let texts = self.store_manifest_texts().await?;
        // Copied, not drained: a version leaves the pending map only once the tree holds it, so
        // that a check between the two still sees it (a check reads both).
        let noted: Vec<([u8; TRIP_ID_LEN], u64)> = self
            .manifests_pending
            .locked()
            .iter()
            .map(|(t, v)| (*t, *v))
            .collect();
        if noted.is_empty() {
            return Ok(texts);
        }
        let tree = self.manifests_seen.clone();
        let by_time = self.manifests_seen_by_time.clone();
        let todo = noted.clone();
        let now = crate::unix_now();
        let stored = self
            .write_unflushed(blocking(move || {
                for (trip, version) in todo {
                    let mut bad = None;
                    let old = tree.fetch_and_update(trip, |old| {
                        let old = old.map(version_of).transpose().unwrap_or_else(|e| {
                            bad = Some(e);
                            None
                        });
                        Some(old.unwrap_or(0).max(version).to_be_bytes().to_vec())
                    })?;
                    if old.is_none() {
                        let mut k = now.secs().to_be_bytes().to_vec();
                        k.extend_from_slice(&trip);
                        by_time.insert(k, Vec::new())?;
                    }
                    if let Some(e) = bad {
                        tracing::warn!(error = %e, "a stored trip version was not one; replaced");
                    }
                }
                Ok(())
            }))
            .await;
        if stored.is_ok() {
            let mut pending = self.manifests_pending.locked();
            for (trip, version) in noted {
                // A higher version noted meanwhile stays for the next call.
                if pending.get(&trip) == Some(&version) {
                    pending.remove(&trip);
                }
            }
        }
        stored.map(|()| true)
    }

    /// Stores the manifest strings noted since the last call, each only where its version is
    /// higher than the one stored; not flushed. A string stays noted until the tree holds it (on
    /// failure, for the next call), so a trace in between still finds it.
    async fn store_manifest_texts(&self) -> Result<bool, StoreError> {
        let noted: Vec<([u8; TRIP_ID_LEN], (u64, String))> = self
            .manifests_text_pending
            .locked()
            .iter()
            .map(|(t, v)| (*t, v.clone()))
            .collect();
        if noted.is_empty() {
            return Ok(false);
        }
        let tree = self.manifests_checked.clone();
        let todo = noted.clone();
        let stored = self
            .write_unflushed(blocking(move || {
                for (trip, (version, text)) in todo {
                    tree.fetch_and_update(trip, |old| match old.map(decode_checked) {
                        Some(Ok((v, _))) if v >= version => old.map(<[u8]>::to_vec),
                        _ => Some(encode_checked(version, &text)),
                    })?;
                }
                Ok(())
            }))
            .await;
        if stored.is_ok() {
            let mut pending = self.manifests_text_pending.locked();
            for (trip, (version, _)) in noted {
                // A higher version noted meanwhile stays for the next call.
                if pending.get(&trip).is_some_and(|(v, _)| *v == version) {
                    pending.remove(&trip);
                }
            }
        }
        stored.map(|()| true)
    }
}

impl Store {
    /// Removes the trips' entries first stored before `before` (docs/tracing.md section 6),
    /// at most `max`, with their index entries and the manifests kept for traces
    /// (`manifests_checked`); flushed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_manifests_seen(
        &self,
        before: crate::UnixTime,
        max: usize,
    ) -> Result<super::Pruned, StoreError> {
        let (tree, checked, index) = (
            self.manifests_seen.clone(),
            self.manifests_checked.clone(),
            self.manifests_seen_by_time.clone(),
        );
        self.write(blocking(move || {
            let mut gone = sled::Batch::default();
            let mut gone_index = sled::Batch::default();
            let mut n = 0usize;
            for r in index.range(..before.secs().to_be_bytes()).take(max) {
                let (k, _) = r?;
                if let Some(trip) = k.get(8..) {
                    gone.remove(trip);
                }
                gone_index.remove(k);
                n += 1;
            }
            // The manifests kept for traces go with their trip's version.
            checked.apply_batch(gone.clone())?;
            tree.apply_batch(gone)?;
            index.apply_batch(gone_index)?;
            Ok(super::Pruned {
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

    #[tokio::test]
    async fn a_trip_seen_before_the_cut_off_is_forgotten_and_one_seen_later_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.note_manifest_version(TripId([1; 8]), 2);
        store.note_manifest_text(TripId([1; 8]), 2, "HCMRT1:TWO");
        assert!(store.store_manifest_versions().await.unwrap());
        assert_eq!(store.checked_manifests().unwrap(), vec!["HCMRT1:TWO"]);
        // A later version of the same trip keeps its first time.
        store.note_manifest_version(TripId([1; 8]), 3);
        store.store_manifest_versions().await.unwrap();
        assert_eq!(store.manifests_seen_by_time.len(), 1);
        let stored_at = crate::unix_now();
        let p = store
            .prune_manifests_seen(stored_at.saturating_sub(60), 10)
            .await
            .unwrap();
        assert_eq!(p.records, 0, "stored inside the period");
        assert_eq!(
            store.seen_manifest_version(TripId([1; 8])).unwrap(),
            Some(3)
        );
        let p = store.prune_manifests_seen(stored_at + 2, 10).await.unwrap();
        assert_eq!(p.records, 1);
        assert_eq!(store.seen_manifest_version(TripId([1; 8])).unwrap(), None);
        assert!(store.manifests_seen_by_time.is_empty());
        assert!(store.checked_manifests().unwrap().is_empty());
    }
}
