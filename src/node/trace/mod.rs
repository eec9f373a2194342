//! Tracing a case to their fellow travellers (docs/tracing.md section 3): FindTrips, the
//! federation query a case's issuing province sends every peer whose agreement lets it trace
//! there ([`find`]), and TraceSubject, the tracer's call that runs the trace here and at those
//! peers ([`subject`]). The decisions (who is a contact, whether a returned manifest is
//! authentic) are the core's pure `trace` module; this is the I/O around them.

pub(crate) mod find;
pub(crate) mod subject;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::lock::Locked;
use crate::manifest::{SignedManifest, TripId};
use crate::province::Province;
use crate::store::Store;
use crate::trace::SUBJECT_PREFIX_LEN;
use crate::UnixTime;

use super::error::ApiError;

/// FindTrips queries one peer province may make a minute, here.
pub(crate) const PEER_QUERIES_PER_MINUTE: u32 = 60;
/// TraceSubject calls one caller may make a minute.
pub(crate) const CALLER_TRACES_PER_MINUTE: u32 = 10;
/// The window of the rate limits, in seconds.
const WINDOW_SECS: u64 = 60;

/// Fixed one-minute windows of counts by key (a peer province, a caller's name): in memory, so
/// a restart resets them (the limits protect against floods, not a budget over time).
#[derive(Default)]
pub(crate) struct RateWindows {
    /// Key -> (window start, calls in it). A std mutex: held for a map update only.
    counts: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateWindows {
    /// Counts a call of `key` at `now`; false when it is over `max` in its minute.
    pub(crate) fn allow(&self, key: &str, now: UnixTime, max: u32) -> bool {
        let now = now.secs();
        let start = now - now % WINDOW_SECS;
        let mut counts = self.counts.locked();
        // Keys of past minutes are dropped when the map grows: it stays at the keys of one
        // minute (peers: at most 33; callers: those configured).
        if counts.len() > 1024 {
            counts.retain(|_, (s, _)| *s == start);
        }
        let entry = counts.entry(key.to_string()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= max
    }
}

/// The rate limits of traces: per peer province (FindTrips answered here) and per caller
/// (TraceSubject).
#[derive(Default)]
pub(crate) struct TraceLimits {
    /// FindTrips by peer province.
    pub(crate) peers: RateWindows,
    /// TraceSubject by caller name.
    pub(crate) callers: RateWindows,
}

/// A trip manifest held here that lists a subject: its decoded form and its string.
pub(crate) struct Held {
    /// The manifest, decoded (authentic: signed by this node, or verified when taken in).
    pub(crate) signed: SignedManifest,
    /// The manifest string as held (`HCMRT1:...`).
    pub(crate) text: String,
}

/// The latest manifest of every trip this node holds (as origin, as destination, or from its
/// checkpoints' checks) that lists a person of `issuer` with subject prefix `subject` and
/// departs in `since <= departure < until`; by trip, the highest version. Reads whole trees:
/// call it on a blocking thread.
///
/// # Errors
/// [`ApiError::Store`].
pub(crate) fn held_listing(
    store: &Store,
    issuer: Province,
    subject: &[u8; SUBJECT_PREFIX_LEN],
    since: UnixTime,
    until: UnixTime,
) -> Result<Vec<Held>, ApiError> {
    let mut texts = store.sealed_manifests_departing(since, until)?;
    texts.extend(store.arrival_manifests()?);
    texts.extend(store.checked_manifests()?);
    let mut by_trip: HashMap<(u32, TripId), Held> = HashMap::new();
    for text in texts {
        // Held manifests were signed here or verified when taken in; one that no longer decodes
        // (a format change) is skipped, never fatal to a trace.
        let Ok(signed) = SignedManifest::decode(&text) else {
            tracing::warn!("a held trip manifest does not decode: left out of the trace");
            continue;
        };
        let m = &signed.manifest;
        if m.departure < since || m.departure >= until || !crate::trace::lists(m, issuer, subject) {
            continue;
        }
        let key = (m.origin, m.trip_id);
        if by_trip
            .get(&key)
            .is_none_or(|h| h.signed.manifest.version < m.version)
        {
            by_trip.insert(key, Held { signed, text });
        }
    }
    let mut out: Vec<Held> = by_trip.into_values().collect();
    out.sort_by_key(|h| (h.signed.manifest.departure, h.signed.manifest.trip_id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_per_key_and_resets_each_minute() {
        let w = RateWindows::default();
        let t = UnixTime::from_secs(1_700_000_080); // 40 s into a minute
        for i in 1..=3 {
            assert!(w.allow("340000", t, 3), "call {i}");
        }
        assert!(!w.allow("340000", t, 3), "the fourth in the minute");
        assert!(w.allow("330000", t, 3), "another key has its own count");
        assert!(!w.allow("340000", t + 19, 3), "still the same minute");
        assert!(w.allow("340000", t + 20, 3), "the next minute");
    }
}
