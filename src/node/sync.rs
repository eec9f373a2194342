//! Pulling peers' trust state: on an interval, every peer this node has a concluded agreement
//! with is asked for its feed from the last applied entry and for its agreements and
//! terminations with this province. A failure affects only that peer (logged, retried with
//! exponential backoff); verification goes on with the last synced state.

use crate::lock::Locked;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::error::ApiError;
use super::metrics::Metrics;
use super::own_feed::TrustRebuild;
use super::peer::PeerLink;
use super::{convert, peer, NodeState, TrustState};
use crate::agreement::SignedAgreement;
use crate::clock::Clock;
use crate::feed::{FeedEntry, FeedState};
use crate::keys::Kid;
use crate::proto;
use crate::province::Province;
use crate::store::Store;
use crate::trust::PeerFeed;

/// Most feed entries taken from a peer in one sync; the rest come at the next one.
const MAX_ENTRIES_PER_SYNC: usize = 100_000;
/// Longest backoff, as a multiple of the sync interval.
const MAX_BACKOFF_FACTOR: u32 = 32;

/// What one peer's sync did.
#[derive(Debug, Clone)]
pub(crate) struct SyncOutcome {
    pub(crate) peer: Province,
    pub(crate) result: Result<Synced, String>,
}

/// What a successful sync of one peer took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Synced {
    /// Feed entries applied.
    pub(crate) entries: u64,
    /// The peer's last sequence number now held here.
    pub(crate) last_seq: u64,
}

/// The interval loop; ends when `stop` turns true.
pub(crate) async fn run(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    let mut failures: HashMap<Province, (u32, Instant)> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(state.sync_interval) => {}
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        let due: Vec<Province> = state
            .peer_sync()
            .sync_targets()
            .into_iter()
            .filter(|p| failures.get(p).is_none_or(|(_, next)| *next <= now))
            .collect();
        // Withdrawals and rejections a peer was down for (a newcomer has no agreement to sync).
        state.agreements().deliver_proposal_notices(None).await;
        for o in state.peer_sync().sync_peers(&due).await {
            match o.result {
                Ok(_) => {
                    failures.remove(&o.peer);
                }
                Err(e) => {
                    let n = failures.get(&o.peer).map_or(1, |(n, _)| n + 1);
                    let factor = 2u32.saturating_pow(n - 1).min(MAX_BACKOFF_FACTOR);
                    let wait = state.sync_interval * factor;
                    tracing::warn!(peer = %o.peer, failures = n, retry_in_secs = wait.as_secs(), error = %e, "peer sync failed");
                    failures.insert(o.peer, (n, Instant::now() + wait));
                }
            }
        }
    }
}

/// What syncing peers needs: the trust state (peers' feeds in, the snapshot rebuilt), the
/// store the feeds, agreements and terminations go to, the locks that order syncs and
/// agreement changes, the links to peers, and the metrics of each peer's sync.
pub(crate) struct PeerSync<'a> {
    province: Province,
    store: &'a Store,
    clock: &'a Clock,
    trust: &'a TrustState,
    rebuild: TrustRebuild<'a>,
    /// Serialises peer syncs (the interval task and SyncNow).
    sync_lock: &'a tokio::sync::Mutex<()>,
    /// Taken while agreements and terminations synced are stored, as by every agreement change.
    agreement_lock: &'a tokio::sync::Mutex<()>,
    /// Taken while a batch of a peer's feed is applied (by a sync or a watch).
    apply_lock: &'a tokio::sync::Mutex<()>,
    peers: PeerLink<'a>,
    metrics: &'a Metrics,
}

impl NodeState {
    /// The sync workflow's part of the node.
    pub(crate) fn peer_sync(&self) -> PeerSync<'_> {
        PeerSync {
            province: self.province,
            store: &self.store,
            clock: &self.clock,
            trust: &self.trust,
            rebuild: self.trust_rebuild(),
            sync_lock: &self.sync_lock,
            agreement_lock: &self.agreement_lock,
            apply_lock: &self.watches.apply_lock,
            peers: self.peer_link(),
            metrics: &self.metrics,
        }
    }
}

impl PeerSync<'_> {
    /// Peers with a concluded agreement (whatever its state: a termination must still reach us).
    pub(crate) fn sync_targets(&self) -> Vec<Province> {
        let trust = self.trust.load();
        let mut v: Vec<Province> = crate::province::PROVINCES
            .iter()
            .filter_map(|p| Province::from_code(p.code).ok())
            .filter(|p| !trust.agreements_with(*p).is_empty())
            .collect();
        v.sort();
        v
    }

    /// Syncs the given peers at the same time, each bounded by twice the peer timeout, so that
    /// a slow, silent or broken peer delays only its own sync.
    pub(crate) async fn sync_peers(&self, peers: &[Province]) -> Vec<SyncOutcome> {
        let _g = self.sync_lock.lock().await;
        let limit = self.peers.peer_timeout * 2;
        let runs = peers.iter().map(|p| async move {
            let result = match tokio::time::timeout(limit, self.sync_peer(*p)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "peer {p}: no complete answer within {} s",
                    limit.as_secs()
                )),
            };
            self.metrics.peer_sync(*p, result.is_ok());
            SyncOutcome { peer: *p, result }
        });
        futures_util::future::join_all(runs).await
    }

    /// Syncs one peer: feed entries from the next sequence number (all or nothing), then
    /// agreements and terminations.
    async fn sync_peer(&self, peer: Province) -> Result<Synced, ApiError> {
        let url = self.store.peer_endpoint(peer)?.ok_or_else(|| {
            ApiError::FailedPrecondition(format!("no endpoint recorded for {peer}"))
        })?;
        let mut client = self
            .peers
            .connect("peer endpoint", &url, peer::Expect::Province(peer))
            .await?;
        let current = self
            .trust
            .peer_feeds
            .locked()
            .get(&peer)
            .map(|p| p.state.clone())
            .unwrap_or_else(|| Arc::new(FeedState::new(peer)));
        let mut stream = client
            .get_feed(proto::GetFeedRequest {
                from_seq: current.last_seq() + 1,
                ..Default::default()
            })
            .await
            .map_err(|s| peer::call_failed(&url, s))?
            .into_inner();
        let mut entries = Vec::new();
        while let Some(m) = stream
            .message()
            .await
            .map_err(|s| peer::call_failed(&url, s))?
        {
            entries.push(feed_entry_from_proto(&m)?);
            if entries.len() >= MAX_ENTRIES_PER_SYNC {
                break;
            }
        }
        let synced = self
            .apply_peer_entries(peer, entries, self.clock.now())
            .await?;
        self.sync_agreements(peer, &mut client, &url).await?;
        if synced.entries > 0 {
            tracing::info!(%peer, entries = synced.entries, last_seq = synced.last_seq, "peer feed synced");
        }
        Ok(synced)
    }

    /// Verifies and applies a batch of `peer`'s feed entries, all or nothing, as a sync or a
    /// watch ([`super::feed_watch`]) received them: under the apply lock, entries already held
    /// are skipped, the rest must extend the feed held (signatures, chain, sequence), the
    /// result must contain a key pinned for `peer` by an agreement; then they are stored, the
    /// sync time recorded (also for an empty batch: nothing newer existed) and the trust
    /// snapshot rebuilt.
    ///
    /// # Errors
    /// UNAUTHENTICATED when the entries do not verify or the feed is not anchored; the store's.
    ///
    /// `synced_at` is the time the peer's state is as of: now for a sync or a watch here; at a
    /// verify replica, when its primary synced that peer.
    pub(crate) async fn apply_peer_entries(
        &self,
        peer: Province,
        entries: Vec<FeedEntry>,
        synced_at: crate::UnixTime,
    ) -> Result<Synced, ApiError> {
        let _g = self.apply_lock.lock().await;
        let current = self
            .trust
            .peer_feeds
            .locked()
            .get(&peer)
            .map(|p| p.state.clone())
            .unwrap_or_else(|| Arc::new(FeedState::new(peer)));
        let held = current.last_seq();
        let entries: Vec<FeedEntry> = entries.into_iter().filter(|e| e.seq() > held).collect();
        let mut next = (*current).clone();
        next.apply_all(&entries)
            .map_err(|e| ApiError::Unauthenticated(format!("feed of {peer} refused: {e}")))?;
        let pinned: Vec<_> = self
            .trust
            .load()
            .agreements_with(peer)
            .iter()
            .filter_map(|a| a.agreement.body().party(peer).map(|p| p.keys.clone()))
            .flatten()
            .collect();
        if !next.contains_any(&pinned) {
            return Err(ApiError::Unauthenticated(format!(
                "feed of {peer} refused: {}",
                crate::feed::FeedError::NotAnchored(peer)
            )));
        }
        self.store
            .append_peer_feed(peer, &entries, synced_at)
            .await?;
        let last_seq = next.last_seq();
        self.trust.peer_feeds.locked().insert(
            peer,
            PeerFeed {
                state: Arc::new(next),
                synced_at,
            },
        );
        self.rebuild.rebuild_trust()?;
        Ok(Synced {
            entries: entries.len() as u64,
            last_seq,
        })
    }

    /// Takes the peer's concluded agreements and terminations with us that we lack.
    async fn sync_agreements(
        &self,
        peer: Province,
        client: &mut proto::federation_service_client::FederationServiceClient<
            tonic::transport::Channel,
        >,
        url: &str,
    ) -> Result<(), ApiError> {
        let r = client
            .get_agreements(proto::GetAgreementsRequest {
                province: self.province.to_string(),
            })
            .await
            .map_err(|s| peer::call_failed(url, s))?
            .into_inner();
        let _g = self.agreement_lock.lock().await;
        let mut changed = false;
        for a in &r.agreements {
            let a: SignedAgreement = convert::signed_from_proto(Some(a))?;
            let b = a.body();
            if a.check_both().is_err()
                || b.party(peer).is_none()
                || b.party(self.province).is_none()
            {
                tracing::warn!(%peer, agreement = %b.id, "peer sent an agreement that does not verify; ignored");
                continue;
            }
            // Our own signature must be by a key of ours (ever): a body the peer made up, pinning
            // a key of its choosing for this province, verifies against itself but was never
            // signed here.
            let own: Vec<_> = self
                .trust
                .load()
                .own()
                .keys()
                .iter()
                .map(|k| k.key)
                .collect();
            let ours_signed = b
                .party(self.province)
                .is_some_and(|p| p.keys.iter().all(|k| own.contains(k)));
            if !ours_signed {
                tracing::warn!(%peer, agreement = %b.id, "peer sent an agreement that pins keys this node never had; ignored");
                continue;
            }
            let known = self.store.agreement_version(b.id, b.version)?;
            if known.is_none_or(|k| !k.is_concluded()) {
                self.store.put_agreement(&a).await?;
                changed = true;
            }
        }
        if changed {
            self.rebuild.rebuild_trust()?;
        }
        for t in &r.terminations {
            let t = convert::termination_from_proto(t)?;
            if self
                .store
                .termination(t.id)?
                .is_some_and(|old| old.effective_at <= t.effective_at)
            {
                continue;
            }
            let mut check = (**self.trust.load()).clone();
            match check.add_termination(t.clone()) {
                Ok(()) => {
                    self.store.put_termination(&t).await?;
                    self.rebuild.rebuild_trust()?;
                    tracing::info!(%peer, agreement = %t.id, effective_at = t.effective_at.secs(), "termination received by sync");
                }
                Err(e) => {
                    tracing::warn!(%peer, agreement = %t.id, error = %e, "peer sent a termination that does not verify; ignored")
                }
            }
        }
        Ok(())
    }
}

/// A feed entry from the wire.
///
/// # Errors
/// UNAUTHENTICATED when it does not decode (a peer's feed is refused whole).
pub(crate) fn feed_entry_from_proto(m: &proto::FeedEntry) -> Result<FeedEntry, ApiError> {
    let kid = Kid::from_slice(&m.kid)
        .ok_or_else(|| ApiError::Unauthenticated("feed entry kid must be 8 bytes".into()))?;
    let sig: [u8; 64] =
        m.signature.as_slice().try_into().map_err(|_| {
            ApiError::Unauthenticated("feed entry signature must be 64 bytes".into())
        })?;
    FeedEntry::from_parts(m.entry.clone(), kid, sig)
        .map_err(|e| ApiError::Unauthenticated(format!("feed entry: {e}")))
}

/// A feed entry for the wire.
pub(crate) fn feed_entry_to_proto(e: &FeedEntry) -> proto::FeedEntry {
    proto::FeedEntry {
        entry: e.encoded().to_vec(),
        kid: e.signer().0.to_vec(),
        signature: e.signature().to_vec(),
    }
}

/// A sync outcome as SyncNow answers it.
pub(crate) fn outcome_to_proto(o: &SyncOutcome) -> proto::PeerSyncResult {
    match &o.result {
        Ok(s) => proto::PeerSyncResult {
            province: o.peer.to_string(),
            ok: true,
            entries: s.entries,
            last_seq: s.last_seq,
            error: String::new(),
        },
        Err(e) => proto::PeerSyncResult {
            province: o.peer.to_string(),
            ok: false,
            entries: 0,
            last_seq: 0,
            error: e.clone(),
        },
    }
}
