//! Appending to this node's own trust feed (key rotations and withdrawals, revocations).

use crate::lock::Locked;

use super::error::ApiError;
use super::NodeState;
use crate::feed::{FeedEntry, FeedError, Statement};
use crate::keys::NodeKey;

fn feed_refused(e: FeedError) -> ApiError {
    ApiError::FailedPrecondition(e.to_string())
}

impl NodeState {
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
        let entry = FeedEntry::sign(self.province, prev.as_ref(), self.now(), statement, key);
        let mut next = (*state).clone();
        next.apply(&entry).map_err(feed_refused)?;
        self.store.append_feed(&entry).await?;
        *self.trust.own_feed.locked() = std::sync::Arc::new(next);
        self.rebuild_trust()?;
        Ok(entry)
    }
}
