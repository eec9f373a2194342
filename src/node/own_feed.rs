//! Appending to this node's own trust feed (key rotations and withdrawals, revocations), and
//! rebuilding the trust snapshot after any trust change ([`TrustRebuild`], which every workflow
//! that changes trust holds).

use crate::lock::Locked;

use super::error::ApiError;
use super::{NodeState, TrustState};
use crate::clock::Clock;
use crate::feed::{FeedEntry, FeedError, FeedState, Statement};
use crate::keys::NodeKey;
use crate::province::Province;
use crate::store::{Store, StoreError};
use crate::trust::{PeerFeed, Policy};

fn feed_refused(e: FeedError) -> ApiError {
    ApiError::FailedPrecondition(e.to_string())
}

/// What a rebuild of the trust snapshot reads: the agreements and terminations in the store,
/// the feeds in memory and the policy; it writes the snapshot.
#[derive(Clone, Copy)]
pub(crate) struct TrustRebuild<'a> {
    province: Province,
    store: &'a Store,
    policy: Policy,
    trust: &'a TrustState,
}

impl NodeState {
    /// The part of the node a trust rebuild reaches.
    pub(crate) fn trust_rebuild(&self) -> TrustRebuild<'_> {
        TrustRebuild {
            province: self.province,
            store: &self.store,
            policy: self.policy,
            trust: &self.trust,
        }
    }
}

impl TrustRebuild<'_> {
    /// Rebuilds the trust snapshot from the store and the in-memory feeds, and swaps it in.
    pub(crate) fn rebuild_trust(&self) -> Result<(), StoreError> {
        let _g = self.trust.rebuild_lock.locked();
        let own = self.trust.own_feed.locked().clone();
        let peers: Vec<PeerFeed> = self.trust.peer_feeds.locked().values().cloned().collect();
        let snapshot = super::build_snapshot(self.province, self.store, self.policy, own, peers)?;
        self.trust.snapshot.store(std::sync::Arc::new(snapshot));
        self.trust.notify_changed();
        Ok(())
    }
}

/// What appending to the own feed needs: the feed as applied (in the trust state), the lock
/// that orders appends, the store it is written to, and the clock that stamps entries.
#[derive(Clone, Copy)]
pub(crate) struct OwnFeed<'a> {
    province: Province,
    store: &'a Store,
    clock: &'a Clock,
    /// Serialises appends (and key rotation), which read the last entry.
    feed_lock: &'a tokio::sync::Mutex<()>,
    /// The own feed as applied is `trust.own_feed`.
    trust: &'a TrustState,
    rebuild: TrustRebuild<'a>,
}

impl NodeState {
    /// The own feed's part of the node.
    pub(crate) fn own_feed(&self) -> OwnFeed<'_> {
        OwnFeed {
            province: self.province,
            store: &self.store,
            clock: &self.clock,
            feed_lock: &self.feed_lock,
            trust: &self.trust,
            rebuild: self.trust_rebuild(),
        }
    }
}

impl<'a> OwnFeed<'a> {
    /// Takes the lock that orders appends: held from reading the feed to appending to it, so
    /// two changes cannot both append what only one should.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'a, ()> {
        self.feed_lock.lock().await
    }

    /// The own feed as applied now.
    pub(crate) fn state(&self) -> std::sync::Arc<FeedState> {
        self.trust.own_feed.locked().clone()
    }

    /// Signs `statement` as the next own feed entry with `key`, checks it applies, stores it
    /// durably, and rebuilds the trust snapshot. The caller holds `feed_lock`.
    pub(crate) async fn append_own(
        &self,
        _held: &tokio::sync::MutexGuard<'_, ()>,
        statement: Statement,
        key: &NodeKey,
    ) -> Result<FeedEntry, ApiError> {
        let state = self.trust.own_feed.locked().clone();
        let prev = self.store.feed_from(state.last_seq())?.into_iter().next();
        let entry = FeedEntry::sign(
            self.province,
            prev.as_ref(),
            self.clock.now(),
            statement,
            key,
        );
        let mut next = (*state).clone();
        next.apply(&entry).map_err(feed_refused)?;
        self.store.append_feed(&entry).await?;
        *self.trust.own_feed.locked() = std::sync::Arc::new(next);
        self.rebuild.rebuild_trust()?;
        Ok(entry)
    }
}
