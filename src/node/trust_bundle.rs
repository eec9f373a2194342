//! The signed offline bundle of this node's trust state (ExportTrustBundle).

use crate::lock::Locked;

use super::error::ApiError;
use super::NodeState;
use crate::agreement::SignedAgreement;
use crate::proto;

impl NodeState {
    /// A signed offline bundle of this node's trust state.
    pub(crate) fn export_bundle(&self) -> Result<proto::ExportTrustBundleResponse, ApiError> {
        let now = self.now();
        let key = self.key.load_full();
        let peers = self
            .trust
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
