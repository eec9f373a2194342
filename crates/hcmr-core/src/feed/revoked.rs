//! Revocation sets that stay small and cheap to share at millions of entries.
//!
//! A [`FeedState`](super::FeedState) is cloned whenever the node prepares a change (an own
//! revocation, a peer sync), and the trust snapshot holds it behind an `Arc`. So the sets are
//! layered: an immutable **base** shared by `Arc` between every clone, and a small **delta** of
//! recent additions that a clone copies. When the delta outgrows its bound
//! ([`RevokedCodes::delta_bound`]) it is merged into a new base (one linear pass), so a clone
//! never copies more than the bound, and the merge cost per added entry stays a few bytes of
//! copying (amortized).
//!
//! The code ids are kept as a sorted `Vec<Cti>` (16 bytes each) with an index of the offsets of
//! each top-bits prefix (about 0.05 bytes per entry), so a lookup is one index read and a binary
//! search over about 8 ids. A cti is not chosen by anyone: it is derived from the signature, the
//! first 16 bytes of the code's Ed25519 signature, i.e. of its R part, a point made from a
//! SHA-512 nonce ([`crate::code::HealthCode::cti`]); so the prefixes spread evenly.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use crate::identity::{SubjectHash, SUBJECT_HASH_LEN};
use crate::time::UnixTime;

pub use crate::code::Cti;

/// Smallest delta bound: below it a merge is never worth its pass.
const MIN_DELTA: usize = 4096;
/// The delta may grow to `base / DELTA_FRACTION` entries before a merge.
const DELTA_FRACTION: usize = 512;
/// Widest prefix index: 2^16 offsets (512 KiB on 64-bit), reached at about 500,000 ids.
const MAX_INDEX_BITS: u32 = 16;
/// Ids per index bucket aimed at.
const BUCKET_TARGET: usize = 8;

/// An immutable sorted set of code ids with a prefix index.
#[derive(Debug, Default, PartialEq, Eq)]
struct SortedCtis {
    /// Sorted, without duplicates.
    ctis: Vec<Cti>,
    /// Bits of the prefix index (0: no index, one bucket).
    bits: u32,
    /// `index[p]..index[p + 1]` is the range of ids whose top `bits` bits are `p`.
    index: Vec<usize>,
}

fn prefix(cti: &Cti, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let top = u32::from_be_bytes([cti[0], cti[1], cti[2], cti[3]]);
    (top >> (32 - bits)) as usize
}

impl SortedCtis {
    /// From ids already sorted and without duplicates.
    fn from_sorted(mut ctis: Vec<Cti>) -> Self {
        ctis.shrink_to_fit();
        let mut bits = 0;
        while bits < MAX_INDEX_BITS && (ctis.len() >> (bits + 1)) >= BUCKET_TARGET {
            bits += 1;
        }
        let buckets = 1usize << bits;
        let mut index = Vec::with_capacity(buckets + 1);
        let mut i = 0;
        for p in 0..buckets {
            index.push(i);
            while i < ctis.len() && prefix(&ctis[i], bits) == p {
                i += 1;
            }
        }
        index.push(ctis.len());
        SortedCtis { ctis, bits, index }
    }

    /// From any ids: sorted by a counting pass on the top 16 bits, then each bucket sorted;
    /// duplicates dropped.
    fn from_unsorted(mut ids: Vec<Cti>) -> Self {
        if ids.len() < (1 << 16) {
            ids.sort_unstable();
            ids.dedup();
            return SortedCtis::from_sorted(ids);
        }
        let mut counts = vec![0usize; (1 << 16) + 1];
        for c in &ids {
            counts[prefix(c, 16) + 1] += 1;
        }
        for p in 0..(1 << 16) {
            counts[p + 1] += counts[p];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut out = vec![[0u8; 16]; ids.len()];
        for c in &ids {
            let p = prefix(c, 16);
            out[next[p]] = *c;
            next[p] += 1;
        }
        drop(ids);
        let mut w = 0;
        for p in 0..(1 << 16) {
            let (s, e) = (starts[p], starts[p + 1]);
            out[s..e].sort_unstable();
            for r in s..e {
                if w == 0 || out[w - 1] != out[r] {
                    out[w] = out[r];
                    w += 1;
                }
            }
        }
        out.truncate(w);
        SortedCtis::from_sorted(out)
    }

    fn contains(&self, cti: &Cti) -> bool {
        let p = prefix(cti, self.bits);
        match (self.index.get(p), self.index.get(p + 1)) {
            (Some(&s), Some(&e)) => self
                .ctis
                .get(s..e)
                .is_some_and(|b| b.binary_search(cti).is_ok()),
            _ => false,
        }
    }

    /// Whether some id starts with `head` (at most 16 bytes): one binary search.
    fn contains_prefix(&self, head: &[u8]) -> bool {
        let n = head.len();
        let start = self.ctis.partition_point(|c| c[..n] < *head);
        self.ctis.get(start).is_some_and(|c| c.starts_with(head))
    }

    /// Merges sorted, duplicate-free `new` ids into a new set (one linear pass).
    fn merged(&self, new: &[Cti]) -> SortedCtis {
        let mut out = Vec::with_capacity(self.ctis.len() + new.len());
        let (mut a, mut b) = (self.ctis.iter().peekable(), new.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x < y => a.next(),
                (Some(x), Some(y)) if x == y => {
                    b.next();
                    a.next()
                }
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(c) = next {
                out.push(*c);
            }
        }
        SortedCtis::from_sorted(out)
    }

    fn heap_bytes(&self) -> usize {
        self.ctis.capacity() * std::mem::size_of::<Cti>()
            + self.index.capacity() * std::mem::size_of::<usize>()
    }
}

/// The revoked code ids of one feed: a shared sorted base and a small delta.
#[derive(Debug, Clone, Default)]
pub struct RevokedCodes {
    base: Arc<SortedCtis>,
    delta: Arc<HashSet<Cti>>,
}

impl PartialEq for RevokedCodes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter_delta().all(|c| other.contains(c)) && {
            let mine = self.base.ctis.iter();
            mine.clone().all(|c| other.contains(c))
        }
    }
}
impl Eq for RevokedCodes {}

impl RevokedCodes {
    /// Whether `cti` is revoked. Code ids that are not 16 bytes long are never in the set.
    pub fn contains_slice(&self, cti: &[u8]) -> bool {
        <&Cti>::try_from(cti).is_ok_and(|c| self.contains(c))
    }

    /// Whether `cti` is revoked: a hash lookup in the delta, then the base's index and a binary
    /// search over its bucket.
    pub fn contains(&self, cti: &Cti) -> bool {
        self.delta.contains(cti) || self.base.contains(cti)
    }

    /// For each of `prefixes`, whether some revoked id starts with it (a trip manifest carries
    /// 6-byte cti prefixes, docs/transport.md section 3.1). A binary search in the base per
    /// prefix, and one pass over the delta for all of them, so a manifest of 55 people costs 55
    /// searches and one delta pass, not 55. Prefixes longer than 16 bytes never match.
    pub fn matching_prefixes<const N: usize>(&self, prefixes: &[[u8; N]]) -> Vec<bool> {
        if N > 16 {
            return vec![false; prefixes.len()];
        }
        let mut hit: Vec<bool> = prefixes
            .iter()
            .map(|p| self.base.contains_prefix(p))
            .collect();
        if self.delta.is_empty() {
            return hit;
        }
        let mut sorted: Vec<(&[u8; N], usize)> = prefixes.iter().zip(0..).collect();
        sorted.sort_unstable();
        for c in self.delta.iter() {
            let head = &c[..N];
            let start = sorted.partition_point(|(p, _)| p[..] < *head);
            for (_, i) in sorted[start..].iter().take_while(|(p, _)| p[..] == *head) {
                hit[*i] = true;
            }
        }
        hit
    }

    /// Distinct revoked ids.
    pub fn len(&self) -> usize {
        self.base.ctis.len() + self.delta.len()
    }

    /// Whether none is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter_delta(&self) -> impl Iterator<Item = &Cti> {
        self.delta.iter()
    }

    /// How many entries the delta may hold before it is merged into the base: the larger of
    /// 4,096 and 1/512 of the base (about 19,500 at 10 million), so that a clone copies at most
    /// that many ids and a merge (a pass over the base) happens once per that many additions.
    pub fn delta_bound(&self) -> usize {
        MIN_DELTA.max(self.base.ctis.len() / DELTA_FRACTION)
    }

    /// Adds ids (any order, duplicates allowed). Few go into the delta; when the delta would
    /// outgrow [`RevokedCodes::delta_bound`], delta and new ids are sorted and merged into a new
    /// base in one pass. The base shared with other clones is never changed.
    pub fn extend(&mut self, new: Vec<Cti>) {
        let fresh: Vec<Cti> = new.into_iter().filter(|c| !self.base.contains(c)).collect();
        if fresh.is_empty() {
            return;
        }
        if self.delta.len() + fresh.len() <= self.delta_bound() {
            Arc::make_mut(&mut self.delta).extend(fresh);
            return;
        }
        let mut all = fresh;
        all.extend(self.delta.iter().copied());
        let sorted = SortedCtis::from_unsorted(all);
        self.base = Arc::new(if self.base.ctis.is_empty() {
            sorted
        } else {
            self.base.merged(&sorted.ctis)
        });
        self.delta = Arc::new(HashSet::new());
    }

    /// Merges the delta into the base (after a start, so the rebuilt set is all compact).
    pub fn compact(&mut self) {
        if !self.delta.is_empty() {
            let all: Vec<Cti> = self.delta.iter().copied().collect();
            self.delta = Arc::new(HashSet::new());
            let sorted = SortedCtis::from_unsorted(all);
            self.base = Arc::new(self.base.merged(&sorted.ctis));
        }
    }

    /// Bytes of heap this set holds (base ids and index, delta table), counted from capacities;
    /// a base shared with other clones is counted in full here.
    pub fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the slot; buckets ~ capacity * 8 / 7.
        let delta = self.delta.capacity() * 8 / 7 * (std::mem::size_of::<Cti>() + 1);
        self.base.heap_bytes() + delta
    }
}

/// A map from a key to the latest time named for it (max wins), layered like
/// [`RevokedCodes`]: a shared base and a small delta, merged when the delta outgrows
/// max(256, base / 64) entries. Used for subject revocations (`subject hash -> before`).
#[derive(Debug, Clone)]
pub struct MaxTimeMap<K> {
    base: Arc<HashMap<K, UnixTime>>,
    delta: Arc<HashMap<K, UnixTime>>,
    len: usize,
}

impl<K> Default for MaxTimeMap<K> {
    fn default() -> Self {
        MaxTimeMap {
            base: Arc::new(HashMap::new()),
            delta: Arc::new(HashMap::new()),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Copy> PartialEq for MaxTimeMap<K> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .base
                .keys()
                .chain(self.delta.keys())
                .all(|k| self.get(k) == other.get(k))
    }
}
impl<K: Hash + Eq + Copy> Eq for MaxTimeMap<K> {}

impl<K: Hash + Eq + Copy> MaxTimeMap<K> {
    /// The time recorded for `k`.
    pub fn get(&self, k: &K) -> Option<UnixTime> {
        // A delta value is never below the base's for the same key (see `raise`).
        self.delta.get(k).or_else(|| self.base.get(k)).copied()
    }

    /// Records `t` for `k`, keeping the later of it and any earlier time.
    pub fn raise(&mut self, k: K, t: UnixTime) {
        let old = self.get(&k);
        if old.is_none() {
            self.len += 1;
        }
        if old.is_some_and(|o| o >= t) {
            return;
        }
        Arc::make_mut(&mut self.delta).insert(k, t);
        if self.delta.len() > 256usize.max(self.base.len() / 64) {
            let mut merged = (*self.base).clone();
            merged.extend(self.delta.iter().map(|(k, v)| (*k, *v)));
            self.base = Arc::new(merged);
            self.delta = Arc::new(HashMap::new());
        }
    }

    /// Every recorded key with a time, in no particular order; a key raised since the last
    /// merge may come twice (its older time first), so a caller looking for "any time later
    /// than" gets the same answer as from [`MaxTimeMap::get`].
    pub fn iter(&self) -> impl Iterator<Item = (&K, UnixTime)> {
        self.base
            .iter()
            .chain(self.delta.iter())
            .map(|(k, t)| (k, *t))
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl MaxTimeMap<SubjectHash> {
    /// For each `(prefix, iat)`, whether a subject whose hash starts with `prefix` is recorded
    /// with a time later than `iat` (its codes issued before that time are revoked). One pass
    /// over the map for all of them.
    pub fn matching_prefixes<const N: usize>(&self, people: &[([u8; N], UnixTime)]) -> Vec<bool> {
        let mut hit = vec![false; people.len()];
        if people.is_empty() || self.is_empty() || N > SUBJECT_HASH_LEN {
            return hit;
        }
        let mut sorted: Vec<(&[u8; N], UnixTime, usize)> = people
            .iter()
            .zip(0..)
            .map(|((p, t), i)| (p, *t, i))
            .collect();
        sorted.sort_unstable();
        for (subject, before) in self.iter() {
            let head = &subject.0[..N];
            let start = sorted.partition_point(|(p, _, _)| p[..] < *head);
            for (_, iat, i) in sorted[start..]
                .iter()
                .take_while(|(p, _, _)| p[..] == *head)
            {
                if *iat < before {
                    hit[*i] = true;
                }
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Cti {
        // Spread like random ids: a multiplicative hash of n in the top bytes.
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut c = [0u8; 16];
        c[..8].copy_from_slice(&h.to_be_bytes());
        c[8..].copy_from_slice(&n.to_be_bytes());
        c
    }

    #[test]
    fn small_sets_find_what_was_added_and_nothing_else() {
        let mut r = RevokedCodes::default();
        r.extend(vec![id(1), id(2), id(1)]);
        assert_eq!(r.len(), 2);
        assert!(r.contains(&id(1)) && r.contains(&id(2)));
        assert!(!r.contains(&id(3)));
        assert!(!r.contains_slice(&[1u8; 15]));
        assert!(r.contains_slice(&id(2)));
    }

    #[test]
    fn a_large_batch_goes_to_the_base_and_later_ones_to_the_delta_until_merged() {
        let mut r = RevokedCodes::default();
        r.extend((0..100_000).map(id).collect());
        assert_eq!(r.len(), 100_000);
        assert_eq!(r.base.ctis.len(), 100_000);
        assert_eq!(r.base.bits, 13);
        assert!(r.base.ctis.windows(2).all(|w| w[0] < w[1]));
        assert!((0..100_000).step_by(997).all(|n| r.contains(&id(n))));
        assert!((100_000..101_000).all(|n| !r.contains(&id(n))));

        // A clone shares the base; additions to it leave the original alone.
        let mut c = r.clone();
        c.extend(vec![id(200_000)]);
        assert!(Arc::ptr_eq(&r.base, &c.base));
        assert_eq!(c.delta.len(), 1);
        assert!(c.contains(&id(200_000)) && !r.contains(&id(200_000)));

        // Past the bound (4,096 here) the delta is merged into a new base.
        assert_eq!(c.delta_bound(), 4096);
        c.extend((200_001..204_096).map(id).collect());
        assert_eq!(c.delta.len(), 4096);
        c.extend(vec![id(300_000), id(5)]);
        assert_eq!(c.delta.len(), 0);
        assert_eq!(c.len(), 100_000 + 4096 + 1);
        assert!(c.contains(&id(300_000)) && c.contains(&id(203_000)) && c.contains(&id(5)));
        assert_eq!(r.len(), 100_000);
    }

    #[test]
    fn the_counting_sort_drops_duplicates_across_the_batch() {
        let ids: Vec<Cti> = (0..70_000).chain(0..70_000).map(id).collect();
        let s = SortedCtis::from_unsorted(ids);
        assert_eq!(s.ctis.len(), 70_000);
        assert!(s.ctis.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.index.len(), (1 << s.bits) + 1);
        assert_eq!(*s.index.last().unwrap_or(&0), 70_000);
    }

    #[test]
    fn prefixes_match_in_the_base_and_in_the_delta() {
        let mut r = RevokedCodes::default();
        r.extend((0..10_000).map(id).collect());
        assert!(r.delta.is_empty());
        r.extend(vec![id(20_000)]);
        assert_eq!(r.delta.len(), 1);
        let head = |c: Cti| -> [u8; 6] { c[..6].try_into().unwrap() };
        let mut other = head(id(30_000));
        other[5] ^= 0xff;
        let got = r.matching_prefixes(&[head(id(17)), head(id(20_000)), other, head(id(9_999))]);
        assert_eq!(got, vec![true, true, false, true]);
        assert_eq!(r.matching_prefixes::<6>(&[]), Vec::<bool>::new());
        assert_eq!(r.matching_prefixes(&[[0u8; 17]]), vec![false]);
        assert_eq!(
            RevokedCodes::default().matching_prefixes(&[head(id(1))]),
            vec![false]
        );
    }

    #[test]
    fn memory_is_about_sixteen_bytes_per_id() {
        let mut r = RevokedCodes::default();
        r.extend((0..200_000).map(id).collect());
        // 16 bytes per id, and 2^14 + 1 bucket offsets (14 index bits at 200,000 ids).
        assert_eq!(r.base.bits, 14);
        assert_eq!(r.heap_bytes(), 200_000 * 16 + ((1 << 14) + 1) * 8);
    }

    #[test]
    fn subject_times_keep_the_latest_and_survive_merges() {
        let t = UnixTime::from_secs;
        let mut m: MaxTimeMap<u32> = MaxTimeMap::default();
        m.raise(1, t(10));
        m.raise(1, t(5));
        assert_eq!(m.get(&1), Some(t(10)));
        let snapshot = m.clone();
        for k in 2..1000 {
            m.raise(k, t(u64::from(k)));
        }
        m.raise(1, t(20));
        assert_eq!(m.len(), 999);
        assert_eq!(m.get(&1), Some(t(20)));
        assert_eq!(m.get(&999), Some(t(999)));
        assert_eq!(m.get(&1000), None);
        assert_eq!(snapshot.get(&1), Some(t(10)));
        assert_eq!(snapshot.len(), 1);
        // Iteration sees every key, and for each its latest time among those it yields.
        let mut latest: HashMap<u32, UnixTime> = HashMap::new();
        for (k, v) in m.iter() {
            let e = latest.entry(*k).or_insert(v);
            *e = (*e).max(v);
        }
        assert_eq!(latest.len(), 999);
        assert_eq!(latest.get(&1), Some(&t(20)));
    }
}
