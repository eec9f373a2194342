//! The signed offline bundle of this node's trust state (ExportTrustBundle).

use crate::lock::Locked;
use std::collections::HashMap;
use std::sync::Mutex;

use super::error::ApiError;
use super::NodeState;
use crate::agreement::SignedAgreement;
use crate::clock::Clock;
use crate::proto;
use crate::province::Province;
use crate::store::Store;
use crate::trust::{PeerFeed, Policy};

/// What ExportTrustBundle needs: the node's identity and signing key, its policy, the peers'
/// feeds as synced (which peers, and when), the store (feeds, agreements, terminations) and
/// the clock.
pub(crate) struct TrustBundle<'a> {
    province: Province,
    key: &'a crate::node::keyslot::SigningKey,
    policy: Policy,
    peer_feeds: &'a Mutex<HashMap<Province, PeerFeed>>,
    store: &'a Store,
    clock: &'a Clock,
}

impl NodeState {
    /// The trust bundle workflow's part of the node.
    pub(crate) fn trust_bundle(&self) -> TrustBundle<'_> {
        TrustBundle {
            province: self.province,
            key: &self.key,
            policy: self.policy,
            peer_feeds: &self.trust.peer_feeds,
            store: &self.store,
            clock: &self.clock,
        }
    }
}

impl TrustBundle<'_> {
    /// A signed offline bundle of this node's trust state.
    pub(crate) fn export_bundle(&self) -> Result<proto::ExportTrustBundleResponse, ApiError> {
        let now = self.clock.now();
        let key = self.key.load_full()?;
        let peers = self
            .peer_feeds
            .locked()
            .iter()
            .map(|(p, f)| (*p, f.synced_at))
            .collect::<Vec<_>>();
        let peers = peers
            .into_iter()
            .map(|(province, synced_at)| {
                Ok(crate::bundle::BundlePeer {
                    province,
                    synced_at,
                    entries: self.store.peer_feed(province)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let content = crate::bundle::BundleContent {
            province: self.province,
            exported_at: now,
            policy: self.policy,
            own_feed: self.store.feed_from(1)?,
            peers,
            agreements: self
                .store
                .agreements()?
                .into_iter()
                .filter(SignedAgreement::is_concluded)
                .collect(),
            terminations: self.store.terminations()?,
        };
        Ok(proto::ExportTrustBundleResponse {
            bundle: crate::bundle::export(&content, &key),
            kid: key.kid().0.to_vec(),
            exported_at: now.secs(),
        })
    }
}
