//! GetFeed, served and followed: a feed read from a sequence number, and a *watch* that stays
//! open after the stored entries and pushes each new one as it is appended, so that a
//! revocation reaches a peer (and a verify replica) in about the time of one round trip instead
//! of one sync interval (issue 19, "two seconds, not one sync interval").
//!
//! Serving ([`get_feed`]): `province` empty is this node's own feed; another province's is its
//! feed as this node synced it, for an enrolled verify replica of this node only. A watch waits
//! on the trust change generation ([`super::TrustState::changed`]) and sends the entries above
//! the last one sent; it ends after [`WATCH_MAX`] and as soon as the node starts draining, so
//! an open watch never holds up a graceful shutdown. `limits.request_timeout_secs` does not cut
//! a watch: tonic's server timeout (and the auth layer's slots) cover a call until its answer's
//! headers, not the streamed body, so a watch runs its full [`WATCH_MAX`] whatever that limit.
//!
//! Following ([`watch_once`], [`run_peer_watches`]): every peer with a concluded agreement gets
//! a long-lived task that watches its feed from the last entry held here, verifies and applies
//! each batch as the interval sync does ([`super::sync::PeerSync::apply_peer_entries`]), and
//! resumes from the last sequence number after a drop with a bounded backoff. The interval sync
//! stays as the fallback; both apply under one lock and skip entries already held.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::auth::Principal;
use super::error::ApiError;
use super::sync::{feed_entry_from_proto, feed_entry_to_proto};
use super::NodeState;
use crate::feed::FeedEntry;
use crate::lock::Locked;
use crate::proto;
use crate::province::Province;

/// Longest a watch stays open; the follower opens the next from its last sequence number + 1.
pub(crate) const WATCH_MAX: Duration = Duration::from_secs(300);
/// Feed entries a GetFeed stream holds ahead of the reader.
const FEED_STREAM_BUFFER: usize = 64;
/// Feed entries read from the store at once (on a blocking thread).
const READ_CHUNK: usize = 256;
/// Most entries a follower hands to `apply` at once (those already received).
const MAX_BATCH: usize = 1_000;
/// Longest a follower waits for the next message of a watch before it counts the stream as
/// dead: the server ends every watch within [`WATCH_MAX`].
const WATCH_SILENCE: Duration = Duration::from_secs(330);
/// First wait before a failed peer watch is opened again; doubled after each failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// Longest wait before a failed peer watch is opened again.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the set of watched peers is checked besides after every trust change.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// What feed watches share in the node: the drain signal that ends them, and the lock under
/// which a peer's feed entries are applied (by a watch or by the interval sync).
#[derive(Default)]
pub(crate) struct Watches {
    /// Turns true when the node starts draining: open watches (and FollowState streams) end.
    pub(crate) draining: watch::Sender<bool>,
    /// Held while a batch of a peer's feed is verified, stored and applied, so that a watch and
    /// the interval sync never apply over each other.
    pub(crate) apply_lock: tokio::sync::Mutex<()>,
}

impl Watches {
    /// Resolves once the node drains.
    pub(crate) async fn drained(&self) {
        let mut rx = self.draining.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The stream of a GetFeed call.
pub(crate) type FeedStream =
    tokio_stream::wrappers::ReceiverStream<Result<proto::FeedEntry, tonic::Status>>;

/// Whose feed a GetFeed call reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whose {
    /// This node's own.
    Own,
    /// A peer's, as this node synced it.
    Peer(Province),
}

/// Serves GetFeed for `principal`: the stored entries from `from_seq`, then, with `watch`, each
/// new one until [`WATCH_MAX`] or the node drains.
///
/// # Errors
/// INVALID_ARGUMENT naming `province` when it is not a province code; PERMISSION_DENIED naming
/// `province` when another province's feed is asked by anyone but an enrolled verify replica.
pub(crate) fn get_feed(
    state: &Arc<NodeState>,
    principal: Option<&Principal>,
    r: proto::GetFeedRequest,
) -> Result<FeedStream, ApiError> {
    let whose = if r.province.is_empty() {
        Whose::Own
    } else {
        let p: Province = r
            .province
            .parse()
            .map_err(|e| ApiError::invalid("province", e))?;
        if p == state.province {
            Whose::Own
        } else if matches!(principal, Some(Principal::Replica(_))) {
            Whose::Peer(p)
        } else {
            return Err(ApiError::PermissionDenied(format!(
                "province: the feed of {p} as this node synced it is served only to an enrolled verify replica of this node; ask {p}'s node for its own feed"
            )));
        }
    };
    let from = r.from_seq.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel(FEED_STREAM_BUFFER);
    let state = state.clone();
    tokio::spawn(async move {
        if r.watch {
            let watches = &state.watches;
            tokio::select! {
                _ = send_feed(&state, whose, from, true, &tx) => {}
                _ = watches.drained() => {}
                _ = tokio::time::sleep(WATCH_MAX) => {}
            }
        } else {
            send_feed(&state, whose, from, false, &tx).await;
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Sends the stored entries of `whose` from `from`; with `watch`, then waits for each trust
/// change and sends what was appended since, until the reader goes away. A store error ends
/// the stream with its status.
async fn send_feed(
    state: &Arc<NodeState>,
    whose: Whose,
    from: u64,
    watch: bool,
    tx: &tokio::sync::mpsc::Sender<Result<proto::FeedEntry, tonic::Status>>,
) {
    // Subscribed before the first read: an entry appended after it wakes the wait below.
    let mut changed = state.trust.changed.subscribe();
    let mut next = from;
    loop {
        changed.borrow_and_update();
        loop {
            let store = state.store.clone();
            let read = tokio::task::spawn_blocking(move || read_chunk(&store, whose, next)).await;
            let chunk = match read {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(tonic::Status::from(e))).await;
                    return;
                }
                Err(_) => {
                    let _ = tx
                        .send(Err(tonic::Status::internal("feed read failed")))
                        .await;
                    return;
                }
            };
            let n = chunk.len();
            for e in chunk {
                next = e.seq() + 1;
                // A closed channel: the reader went away.
                if tx.send(Ok(feed_entry_to_proto(&e))).await.is_err() {
                    return;
                }
            }
            if n < READ_CHUNK {
                break;
            }
        }
        if !watch {
            return;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tx.closed() => return,
        }
    }
}

/// Up to [`READ_CHUNK`] stored entries of `whose` from `from`.
fn read_chunk(
    store: &crate::store::Store,
    whose: Whose,
    from: u64,
) -> Result<Vec<FeedEntry>, ApiError> {
    let entries: Result<Vec<FeedEntry>, _> = match whose {
        Whose::Own => store.feed_iter_from(from).take(READ_CHUNK).collect(),
        Whose::Peer(p) => store
            .peer_feed_iter_from(p, from)
            .take(READ_CHUNK)
            .collect(),
    };
    Ok(entries?)
}

/// Runs one GetFeed watch call for `province` ("" = the server's own feed) from sequence
/// `from`, handing each batch of received entries (decoded, NOT yet verified) to `apply`,
/// until the server ends the stream (Ok) or it fails (Err). An Err from `apply` ends it.
///
/// A batch is what has arrived by the time the last one was applied (at most 1,000 entries):
/// one entry when they come one by one, many for a backlog. A stream silent for longer than
/// the server's longest watch (330 s) fails as dead.
///
/// # Errors
/// UNAUTHENTICATED when an entry does not decode; the call's status mapped to [`ApiError`]
/// (UNAVAILABLE for an outage, FAILED_PRECONDITION for a refusal); what `apply` returned.
pub(crate) async fn watch_once<F, Fut>(
    client: &mut proto::federation_service_client::FederationServiceClient<
        tonic::transport::Channel,
    >,
    province: &str,
    from: u64,
    mut apply: F,
) -> Result<(), ApiError>
where
    F: FnMut(Vec<crate::feed::FeedEntry>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    use futures_util::{FutureExt as _, StreamExt as _};
    let failed = |s: tonic::Status| super::peer::call_failed("(feed watch)", s);
    let mut stream = client
        .get_feed(proto::GetFeedRequest {
            from_seq: from,
            watch: true,
            province: province.to_string(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    loop {
        let first = match tokio::time::timeout(WATCH_SILENCE, stream.next()).await {
            Err(_) => {
                return Err(ApiError::PeerUnavailable {
                    endpoint: "(feed watch)".into(),
                    detail: format!("the watch was silent for {} s", WATCH_SILENCE.as_secs()),
                })
            }
            Ok(None) => return Ok(()),
            Ok(Some(m)) => m.map_err(failed)?,
        };
        let mut batch = vec![feed_entry_from_proto(&first)?];
        let mut ended = false;
        // Whatever else has arrived already goes in the same batch (a poll that never waits:
        // the stream keeps its state, so nothing is lost when it is not ready).
        while batch.len() < MAX_BATCH {
            match stream.next().now_or_never() {
                None => break,
                Some(None) => {
                    ended = true;
                    break;
                }
                Some(Some(m)) => batch.push(feed_entry_from_proto(&m.map_err(failed)?)?),
            }
        }
        apply(batch).await?;
        if ended {
            return Ok(());
        }
    }
}

/// Keeps a watch open on every peer with a concluded agreement (checked after every trust
/// change and every 10 s) until `stop` turns true; then ends each and waits for them.
pub(crate) async fn run_peer_watches(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    // A verify replica takes its peers' feeds from its primary; `peer_watch = false` polls only.
    if state.role.replica().is_some() || !state.config.peer_watch {
        return;
    }
    let mut tasks: HashMap<Province, (watch::Sender<bool>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    let mut changed = state.trust.changed.subscribe();
    loop {
        changed.borrow_and_update();
        let targets = state.peer_sync().sync_targets();
        let gone: Vec<Province> = tasks
            .iter()
            .filter(|(p, (_, h))| !targets.contains(p) || h.is_finished())
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            if let Some((cancel, h)) = tasks.remove(&p) {
                let _ = cancel.send(true);
                let _ = h.await;
            }
        }
        for p in targets {
            tasks.entry(p).or_insert_with(|| {
                let (cancel, cancelled) = watch::channel(false);
                let h = tokio::spawn(watch_peer(state.clone(), p, cancelled));
                (cancel, h)
            });
        }
        tokio::select! {
            _ = stop.changed() => break,
            r = changed.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
    for (_, (cancel, h)) in tasks {
        let _ = cancel.send(true);
        let _ = h.await;
    }
}

/// Resolves once `rx` turns true (or its sender is gone).
async fn until_true(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// One peer's watch, opened again after each end (at once after the server ended it, after a
/// backoff of 0.25 s doubling to 5 s after a failure) until `cancelled` turns true.
async fn watch_peer(state: Arc<NodeState>, peer: Province, mut cancelled: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let result = tokio::select! {
            r = watch_peer_once(&state, peer) => r,
            _ = until_true(&mut cancelled) => break,
        };
        match result {
            Ok(()) => backoff = BACKOFF_FIRST,
            Err(e) => {
                tracing::debug!(%peer, error = %e, retry_in_ms = backoff.as_millis() as u64, "peer feed watch failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = until_true(&mut cancelled) => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    // A batch being applied when the watch was cancelled runs on (its own task): wait for it.
    let _ = state.watches.apply_lock.lock().await;
}

/// Connects to `peer` and runs one watch of its feed from the last entry held here, applying
/// each batch as the interval sync does; when the server ends the watch, the sync time is
/// refreshed (nothing newer existed).
async fn watch_peer_once(state: &Arc<NodeState>, peer: Province) -> Result<(), ApiError> {
    let url = state
        .store
        .peer_endpoint(peer)?
        .ok_or_else(|| ApiError::FailedPrecondition(format!("no endpoint recorded for {peer}")))?;
    let mut client = state
        .peer_link()
        .connect("peer endpoint", &url, super::peer::Expect::Province(peer))
        .await?;
    let from = state
        .trust
        .peer_feeds
        .locked()
        .get(&peer)
        .map_or(0, |p| p.state.last_seq())
        + 1;
    state.metrics.feed_watch_open(peer, 1);
    let r = watch_once(&mut client, "", from, |entries| {
        state.metrics.feed_watch_entries(peer, entries.len() as u64);
        apply_detached(state.clone(), peer, entries)
    })
    .await;
    state.metrics.feed_watch_open(peer, -1);
    r?;
    apply_detached(state.clone(), peer, Vec::new()).await
}

/// Applies a batch of `peer`'s entries on a task of its own, so that a watch cancelled while
/// it waits never leaves a batch half applied.
async fn apply_detached(
    state: Arc<NodeState>,
    peer: Province,
    entries: Vec<FeedEntry>,
) -> Result<(), ApiError> {
    let n = entries.len();
    let task = tokio::spawn(async move {
        let now = state.now();
        state
            .peer_sync()
            .apply_peer_entries(peer, entries, now)
            .await
    });
    match task.await {
        Ok(Ok(s)) => {
            if n > 0 {
                tracing::info!(%peer, entries = s.entries, last_seq = s.last_seq, "peer feed entries received by watch");
            }
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::Internal("applying a watched batch failed")),
    }
}
