//! Retention of trips at their origin (docs/tracing.md section 6): a trip whose planned
//! arrival, handover and cancellation all lie before the cut-off is removed with everything
//! kept for it: the trip, its creation and due index entries, its sealed versions, its check
//! reports, its handover, its chain's events, and its people's entries in the holders' index that still name it.

use super::{holder_key, time_key, TripRecord};
use crate::store::{blocking, corrupt, Pruned, Store, StoreError};
use crate::UnixTime;

impl TripRecord {
    /// The time the trip's retention runs from: the latest of its planned arrival, its
    /// cancellation and `handover_at` (when the destination received or refused it).
    pub fn retained_from(&self, handover_at: Option<UnixTime>) -> UnixTime {
        [Some(self.arrival), self.cancelled_at, handover_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(self.arrival)
    }
}

impl Store {
    /// Removes the trips of this origin whose time of retention
    /// ([`TripRecord::retained_from`]) is before `before`, at most `max` trips, with what is
    /// kept for them; flushed. Only trips created before `before` are looked at.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_trips(&self, before: UnixTime, max: usize) -> Result<Pruned, StoreError> {
        let s = self.clone();
        self.write(blocking(move || {
            let mut n = 0usize;
            let mut more = false;
            for r in s.trips_created.range(..before.secs().to_be_bytes()) {
                let (k, _) = r?;
                if n == max {
                    more = true;
                    break;
                }
                let id = crate::manifest::TripId(
                    k.get(8..)
                        .and_then(|t| t.try_into().ok())
                        .ok_or_else(|| corrupt("trips_created", "a key of the wrong length"))?,
                );
                let Some(t) = s.trip(&id)? else {
                    // An index entry without its trip: removed with nothing else.
                    s.trips_created.remove(k)?;
                    continue;
                };
                let handover = s.trip_handover(&id)?.map(|h| h.received_at);
                if t.retained_from(handover) >= before {
                    continue;
                }
                for p in &t.people {
                    let _ = s.trip_holders.compare_and_swap(
                        holder_key(p.issuer, &p.subject_hash),
                        Some(&id.0[..]),
                        None::<&[u8]>,
                    )?;
                }
                for tree in [&s.trip_versions, &s.trip_reports, &s.trip_events] {
                    for r in tree.scan_prefix(id.0) {
                        tree.remove(r?.0)?;
                    }
                }
                s.trips_due.remove(time_key(t.arrival, &id))?;
                s.trip_handovers.remove(id.0)?;
                s.trips.remove(id.0)?;
                s.trips_created.remove(k)?;
                n += 1;
            }
            Ok(Pruned {
                records: n as u64,
                more,
            })
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::{entry, trip};
    use super::*;
    use crate::identity::SubjectHash;
    use crate::manifest::TripId;
    use crate::province::Province;
    use crate::store::{NewEvent, StoredHandover, StoredReport};

    #[tokio::test]
    async fn a_trip_past_its_days_goes_with_what_is_kept_for_it_and_a_later_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sc = Province::from_code(510000).unwrap();
        // Trip 7 arrived at 1_700_080_000 and was handed over a day later; trip 8 arrives a
        // week after that.
        let mut old = trip();
        old.people = vec![entry(3)];
        let mut recent = trip();
        recent.id = TripId([8; 8]);
        recent.arrival = old.arrival + 8 * 86_400;
        recent.people = vec![entry(4)];
        for t in [&old, &recent] {
            let event = NewEvent {
                at: t.created_at,
                signed: &[1],
            };
            store.create_trip(t, event).await.unwrap();
            store
                .update_trip(t, &[(sc, t.people[0].subject_hash)], &[], event)
                .await
                .unwrap();
            store.seal_trip(t, "HCMRT1:ONE").await.unwrap();
            let report = StoredReport {
                checker: Province::from_code(340000).unwrap(),
                checkpoint: "G50".into(),
                checked_at: t.departure + 60,
                version: 1,
                pass: true,
                reasons: vec![],
                signed: t.id.0.to_vec(),
            };
            store.store_trip_report(&t.id, &report).await.unwrap();
        }
        let handed_over_at = old.arrival + 86_400;
        let h = StoredHandover {
            destination: Province::from_code(330000).unwrap(),
            version: 1,
            received_at: handed_over_at,
            refused: true,
            reason: "no room".into(),
            people: vec![],
            signed: vec![9],
        };
        store.store_trip_handover(&old, &h).await.unwrap();
        // The board's holder entry was released by the handover; put one back to see it go.
        store
            .update_trip(
                &old,
                &[(sc, SubjectHash([3; 8]))],
                &[],
                NewEvent {
                    at: old.created_at,
                    signed: &[2],
                },
            )
            .await
            .unwrap();
        assert_eq!(old.retained_from(Some(handed_over_at)), handed_over_at);

        // Before the handover's time: the handover keeps trip 7.
        let p = store.prune_trips(handed_over_at, 10).await.unwrap();
        assert_eq!(p, Pruned::default());
        assert!(!store.trip_events(&old.id).unwrap().is_empty());
        // Just after it: trip 7 goes, trip 8 (arriving later) stays.
        let p = store.prune_trips(handed_over_at + 1, 10).await.unwrap();
        assert_eq!(p.records, 1);
        assert_eq!(store.trip(&old.id).unwrap(), None);
        assert_eq!(store.trip_version(&old.id, 1).unwrap(), None);
        assert!(store.trip_reports(&old.id).unwrap().is_empty());
        assert_eq!(store.trip_handover(&old.id).unwrap(), None);
        assert!(store.trip_events(&old.id).unwrap().is_empty());
        assert!(!store.trip_events(&recent.id).unwrap().is_empty());
        assert_eq!(store.trip_holding(sc, &SubjectHash([3; 8])).unwrap(), None);
        assert_eq!(store.trip(&recent.id).unwrap(), Some(recent.clone()));
        assert_eq!(store.trip_reports(&recent.id).unwrap().len(), 1);
        assert_eq!(
            store.trip_holding(sc, &SubjectHash([4; 8])).unwrap(),
            Some(recent.id)
        );
        assert_eq!(
            store.trips_due_before(recent.arrival + 1).unwrap(),
            vec![recent.id]
        );
    }
}
