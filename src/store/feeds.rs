//! The trust feeds: this node's own (`feed`), its peers' as synced (`peer_feeds`), and when each
//! peer was last synced (`sync`).

use super::{corrupt, Store, StoreError};
use crate::feed::FeedEntry;
use crate::province::Province;
use crate::UnixTime;

/// A feed entry from a stored record of `feed` or `peer_feeds`.
fn entry(r: sled::Result<(sled::IVec, sled::IVec)>) -> Result<FeedEntry, StoreError> {
    Ok(FeedEntry::from_record(&r?.1)?)
}

impl Store {
    /// Appends an entry to this node's own trust feed and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_feed(&self, e: &FeedEntry) -> Result<(), StoreError> {
        let key = e.seq().to_be_bytes();
        self.write_or_undo(
            async {
                self.feed.insert(key, e.to_record())?;
                Ok(())
            },
            // Not acknowledged: take it back, so that a later flush cannot publish an entry the
            // node did not apply (peers would then hold a sequence number the node reuses).
            |()| {
                let _ = self.feed.remove(key);
            },
        )
        .await
    }

    /// Appends entries to this node's own feed in one batch and flushes: a verify replica
    /// storing its primary's entries, checked before (all or none are written).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_feed_batch(&self, entries: &[FeedEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(async {
            let mut batch = sled::Batch::default();
            for e in entries {
                batch.insert(&e.seq().to_be_bytes(), e.to_record());
            }
            self.feed.apply_batch(batch)?;
            Ok(())
        })
        .await
    }

    /// This node's feed entries with `seq >= from`, in order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn feed_from(&self, from: u64) -> Result<Vec<FeedEntry>, StoreError> {
        self.feed_iter_from(from).collect()
    }

    /// This node's feed entries with `seq >= from`, in order, read one at a time: a reader that
    /// streams them (`GetFeed`) holds no list of them all.
    pub fn feed_iter_from(&self, from: u64) -> impl Iterator<Item = Result<FeedEntry, StoreError>> {
        self.feed.range(from.to_be_bytes()..).map(entry)
    }

    /// This node's feed entries in order, read one at a time (for a start: no list of them all).
    pub fn feed_iter(&self) -> impl Iterator<Item = Result<FeedEntry, StoreError>> {
        self.feed.iter().map(entry)
    }

    /// A peer's stored feed entries in order, read one at a time.
    pub fn peer_feed_iter(
        &self,
        peer: Province,
    ) -> impl Iterator<Item = Result<FeedEntry, StoreError>> {
        self.peer_feeds
            .scan_prefix(peer.code().to_be_bytes())
            .map(entry)
    }

    /// A peer's stored feed entries with `seq >= from`, in order, read one at a time (a watch
    /// of a peer's feed by a verify replica streams them).
    pub fn peer_feed_iter_from(
        &self,
        peer: Province,
        from: u64,
    ) -> impl Iterator<Item = Result<FeedEntry, StoreError>> {
        let mut start = peer.code().to_be_bytes().to_vec();
        start.extend_from_slice(&from.to_be_bytes());
        let mut end = peer.code().to_be_bytes().to_vec();
        end.extend_from_slice(&u64::MAX.to_be_bytes());
        self.peer_feeds.range(start..=end).map(entry)
    }

    /// A peer's stored feed entries, in order ([`Store::peer_feed_iter`], collected).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peer_feed(&self, peer: Province) -> Result<Vec<FeedEntry>, StoreError> {
        self.peer_feed_iter(peer).collect()
    }

    /// Appends entries of a peer's feed and records the sync time, then flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_peer_feed(
        &self,
        peer: Province,
        entries: &[FeedEntry],
        synced_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(async {
            let mut batch = sled::Batch::default();
            for e in entries {
                let mut k = peer.code().to_be_bytes().to_vec();
                k.extend_from_slice(&e.seq().to_be_bytes());
                batch.insert(k, e.to_record());
            }
            self.peer_feeds.apply_batch(batch)?;
            self.sync
                .insert(peer.code().to_be_bytes(), &synced_at.secs().to_be_bytes())?;
            Ok(())
        })
        .await
    }

    /// Every peer with a synced feed and its last sync time.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn sync_times(&self) -> Result<Vec<(Province, UnixTime)>, StoreError> {
        self.sync
            .iter()
            .map(|r| {
                let (k, v) = r?;
                let code = u32::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("sync", "key length"))?,
                );
                let p = Province::from_code(code).map_err(|e| corrupt("sync", e.to_string()))?;
                let t = u64::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("sync", "value length"))?,
                );
                Ok((p, UnixTime::from_secs(t)))
            })
            .collect()
    }
}
