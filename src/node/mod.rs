//! The node: the gRPC server of one province.
//!
//! [`Node::open`] loads the key, opens the store and builds the trust snapshot;
//! [`Node::serve`] serves the three hcmr services, grpc.health.v1 and server reflection on a
//! bound listener (and, where configured, the checkpoint page and Prometheus metrics at
//! `GET /metrics`), and pulls every peer's trust feed on an interval, until a shutdown future
//! completes; then health turns NOT_SERVING and it drains in-flight calls. [`spawn`] does both
//! on a task, for tests and the demo.
//!
//! Where things live:
//! - the edges: `api/` (the gRPC trait impls, thin), `http` (the checkpoint page), `metrics`,
//!   `health`, `listener` (TLS accept, connection limits), `auth/` (credentials, roles, the
//!   tower layer, rate and in-flight guards), `peer` (calls to other nodes);
//! - the workflows, one file each: `issue` (with the pure checks of `issue_request`),
//!   `verification`, `manifest_check` (a vehicle's trip manifest at a checkpoint),
//!   `identity_match`, `revocation`, `keys`, `agreements/`, `callers`, `sync`, `audit`, `backup`,
//!   `trust_bundle`, `retention`, `trips/` (a trip's origin), `arrival/` (a trip's destination);
//!   `own_feed` appends to the node's feed;
//! - opening and state: `open` (the steps of [`Node::open`]), `config`, `batcher` (verifier
//!   threads), `log_budget` (log lines a second), `convert` and `error` (the wire forms).

mod agreements;
mod api;
mod arrival;
mod audit;
mod auth;
pub mod backup;
mod batcher;
mod callers;
pub mod config;
pub mod convert;
pub mod error;
mod exposure;
mod feed_watch;
mod health;
mod health_port;
mod http;
mod identity_match;
mod issue;
mod issue_request;
mod keys;
mod keyslot;
mod listener;
mod log_budget;
pub mod manifest_check;
mod metrics;
mod open;
mod outbox;
mod own_feed;
mod peer;
mod replica;
mod retention;
mod revocation;
mod sync;
mod trace;
mod trace_trip;
mod trips;
mod trust_bundle;
mod verification;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::transport::server::TcpIncoming;

pub(crate) use callers::role_to_proto;
pub use config::{
    add_caller_offline, add_or_replace_caller_offline, init, init_node, init_replica,
    init_with_page, Config, ConfigError, InitOptions, ReplicaInit, ADMIN_TOKEN_FILE, CONFIG_FILE,
};
pub use error::ApiError;
pub use issue_request::{MAX_CODE_LIFETIME_SECS, MAX_STATUS_VALIDITY_SECS};

use crate::feed::FeedState;
use crate::proto;
use crate::province::Province;
use crate::store::{Store, StoreError};
use crate::trust::{PeerFeed, Policy, TrustSnapshot};

/// Capacity of the audit queue, in records.
const AUDIT_QUEUE: usize = 65_536;

/// Errors that stop a node from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Configuration, key or store problem at start.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key in the key file is not the node's current key in its trust feed.
    #[error("key file {0} does not hold this node's current key (see its trust feed)")]
    KeyMismatch(String),
    /// A key file others can read or write.
    #[error("{path} has mode {mode:o}: key files must be readable by their owner only (chmod 600 {path})")]
    KeyPermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The database folder does not exist.
    #[error("database folder {0} does not exist: was this node created with `hcmr init`, and is data_dir right?")]
    NoDatabase(String),
    /// The database folder cannot be written (a read-only file system or wrong owner).
    #[error("database folder {path} is not writable ({detail}): the node must be able to record revocations and agreements; check the mount and the owner")]
    NotWritable {
        /// The folder.
        path: String,
        /// What the OS said.
        detail: String,
    },
    /// The province in the config differs from the one in the database.
    #[error("config says province {config} but the database belongs to {stored}")]
    ProvinceMismatch {
        /// From the config file.
        config: Province,
        /// From the database.
        stored: Province,
    },
    /// The TLS key or certificate is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Binding or serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Shared state of a running node.
pub(crate) struct NodeState {
    pub(crate) province: Province,
    /// The current signing key; replaced by a rotation; none on a verify replica.
    pub(crate) key: keyslot::SigningKey,
    pub(crate) key_file: PathBuf,
    /// The subject key; none on a verify replica.
    pub(crate) subject_key: keyslot::SubjectKeySlot,
    /// A primary, or a verify replica with its link to the primary ([`replica`]).
    pub(crate) role: replica::NodeRole,
    /// At a primary: when each enrolled replica last followed.
    pub(crate) replicas_seen: replica::SeenReplicas,
    pub(crate) store: Store,
    pub(crate) policy: Policy,
    pub(crate) default_code_lifetime_secs: u64,
    /// The offset times are shown to people in (the card, the page): `display_utc_offset`.
    pub(crate) display_offset: crate::display::DisplayOffset,
    pub(crate) sync_interval: std::time::Duration,
    /// Longest wait for a peer: connect, TLS handshake, each answer.
    pub(crate) peer_timeout: std::time::Duration,
    /// URL peers use to reach this node; set once the listener is bound.
    pub(crate) endpoint: std::sync::OnceLock<String>,
    /// The trust state verification reads, and what it is rebuilt from.
    pub(crate) trust: TrustState,
    /// Where audit records and refused calls go.
    pub(crate) audit: AuditSink,
    /// What every call and connection passes besides its credentials.
    pub(crate) guards: Guards,
    /// Serialises agreement changes, so two concurrent ones cannot interleave their
    /// read-check-write steps.
    pub(crate) agreement_lock: tokio::sync::Mutex<()>,
    /// Serialises appends to the own feed (and key rotation), which read the last entry.
    pub(crate) feed_lock: tokio::sync::Mutex<()>,
    /// Serialises peer syncs (the interval task and SyncNow).
    pub(crate) sync_lock: tokio::sync::Mutex<()>,
    /// Feed watches ([`feed_watch`]): the drain signal that ends them and the lock that orders
    /// applying a peer's feed entries.
    pub(crate) watches: feed_watch::Watches,
    /// Verify calls in flight, decided together by the verifier threads.
    pub(crate) batcher: batcher::Batcher,
    /// Log lines about calls over their caller's rate: one a second.
    pub(crate) rate_refusal_lines: log_budget::LineBudget,
    /// Log lines about refused calls (other than over a caller's rate).
    pub(crate) refusal_lines: log_budget::LineBudget,
    /// Log lines about refused TLS handshakes and plain-text clients, on every TLS listener.
    pub(crate) handshake_lines: Arc<log_budget::LineBudget>,
    /// How long logs are kept ([`retention`]).
    pub(crate) retention: config::RetentionConfig,
    /// How the key files are protected (a rotation writes the new key the same way).
    pub(crate) key_protection: crate::keyfile::KeyProtection,
    /// TLS state; `None` on a plain-text (loopback development) node.
    pub(crate) tls: Option<TlsState>,
    /// Callers by SHA-256 of their token. Swapped whole when a caller is added or removed.
    pub(crate) callers: ArcSwap<HashMap<[u8; 32], Arc<crate::callers::Caller>>>,
    /// The configuration the node was opened with (paths resolved), for backups.
    pub(crate) config: Config,
    /// Operations metrics (served on `metrics_listen`).
    pub(crate) metrics: metrics::Metrics,
    /// The clock every decision of this node reads.
    pub(crate) clock: crate::clock::Clock,
    /// Wakes the trip outbox's delivery task ([`outbox`]) when a record is queued.
    pub(crate) outbox_wake: tokio::sync::Notify,
    /// Check reports being queued after their answer, each holding a read guard
    /// ([`manifest_check::spawn_report`]); a stopping node takes the write side once its calls
    /// have drained, so that it queues every report it owes before it closes the store.
    pub(crate) reports_in_flight: Arc<tokio::sync::RwLock<()>>,
    /// The rate limits of traces: FindTrips per peer, TraceSubject per caller.
    pub(crate) trace_limits: trace::TraceLimits,
    /// The check reports queued lately, so that a vehicle scanned again at the same checkpoint
    /// with the same verdict is not reported again ([`manifest_check::RecentReports`]).
    pub(crate) recent_reports: manifest_check::RecentReports,
}

/// The trust state of a running node: the snapshot every verification reads, the feeds it is
/// built from, and the lock that orders rebuilds.
pub(crate) struct TrustState {
    /// The snapshot verification reads. Swapped whole after every trust change, so a Verify
    /// call takes one pointer and never waits on a writer.
    pub(crate) snapshot: ArcSwap<TrustSnapshot>,
    /// This node's own feed as applied. A std mutex: held only to clone or replace the `Arc`.
    pub(crate) own_feed: Mutex<Arc<FeedState>>,
    /// Peers' feeds as synced. A std mutex: held only to read or replace entries.
    pub(crate) peer_feeds: Mutex<HashMap<Province, PeerFeed>>,
    /// Serialises snapshot rebuilds, so an older rebuild never replaces a newer one.
    pub(crate) rebuild_lock: Mutex<()>,
    /// A generation counted up after every change of trust state or callers (a snapshot
    /// rebuild: own feed appended, a peer's feed synced, an agreement or termination stored;
    /// the caller table reloaded): what feed watches and replicas' FollowState wait on.
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
}

impl TrustState {
    /// Counts the change generation up, waking every watch.
    pub(crate) fn notify_changed(&self) {
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The current snapshot (one pointer load; never waits on a writer).
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<TrustSnapshot>> {
        self.snapshot.load()
    }

    /// The current snapshot, as an `Arc` to keep past the call.
    pub(crate) fn load_full(&self) -> Arc<TrustSnapshot> {
        self.snapshot.load_full()
    }
}

/// Where a node's records of calls go: verification audit records through a bounded queue to
/// their writer, refused calls through a tally.
pub(crate) struct AuditSink {
    /// Audit records on their way to the store (bounded: a full queue drops and counts, so the
    /// log never slows a checkpoint).
    pub(crate) tx: tokio::sync::mpsc::Sender<crate::audit::AuditRecord>,
    /// Audit records dropped because the queue was full.
    pub(crate) dropped: std::sync::atomic::AtomicU64,
    /// Refused calls counted by kind until the audit writer stores them (bounded memory; a
    /// flood of refusals never takes the audit queue's room).
    pub(crate) refusals: Arc<audit::RefusalTally>,
}

/// The guards every call and connection passes besides its credentials.
pub(crate) struct Guards {
    /// Per-caller request rates.
    pub(crate) rate: auth::RateLimiter,
    /// Connections open on the TLS listeners, node-wide and per remote address.
    pub(crate) connections: Arc<listener::ConnGate>,
    /// Calls in flight per caller and per remote address (their own limits, under the
    /// node-wide one).
    pub(crate) in_flight: Arc<auth::InFlight>,
    /// Slots of the node-wide concurrency limit.
    pub(crate) concurrency: Arc<tokio::sync::Semaphore>,
    /// Limits from the config.
    pub(crate) limits: config::LimitsConfig,
}

/// A node's TLS identity while it runs.
pub(crate) struct TlsState {
    /// The certified key served and presented to peers; swapped after a key rotation.
    pub(crate) cert: Arc<crate::tls::CertSource>,
    /// The identity on disk (for re-certification).
    pub(crate) identity: Mutex<crate::tls::TlsIdentity>,
    /// Where the certificate is written.
    pub(crate) cert_file: PathBuf,
}

impl NodeState {
    /// Now by the node's clock.
    pub(crate) fn now(&self) -> crate::UnixTime {
        self.clock.now()
    }

    pub(crate) fn endpoint(&self) -> String {
        self.endpoint.get().cloned().unwrap_or_default()
    }
}

/// Builds the snapshot: own feed, concluded agreements whose signatures verify, peers' feeds,
/// and terminations whose signatures verify. Anything that fails its check is left out and
/// logged, never trusted.
fn build_snapshot(
    province: Province,
    store: &Store,
    policy: Policy,
    own: Arc<FeedState>,
    peers: Vec<PeerFeed>,
) -> Result<TrustSnapshot, StoreError> {
    let mut snapshot = TrustSnapshot::new(province, own, policy);
    for a in store.agreements()? {
        if !a.is_concluded() {
            continue;
        }
        let id = a.body().id;
        if let Err(e) = snapshot.add_agreement(a) {
            tracing::warn!(agreement = %id, error = %e, "stored agreement left out of the trust snapshot");
        }
    }
    for p in peers {
        snapshot.set_peer_feed(p);
    }
    for t in store.terminations()? {
        let id = t.id;
        if let Err(e) = snapshot.add_termination(t) {
            tracing::warn!(agreement = %id, error = %e, "stored termination left out of the trust snapshot");
        }
    }
    Ok(snapshot)
}

/// An opened node, ready to serve.
pub struct Node {
    state: Arc<NodeState>,
    config: Config,
    audit_rx: tokio::sync::mpsc::Receiver<crate::audit::AuditRecord>,
    /// Where [`Node::serve`] serves `GET /metrics`, if anywhere.
    metrics_listener: Option<TcpListener>,
    health_listener: Option<TcpListener>,
}

impl Node {
    /// What the trust snapshot holds, for `hcmr bench scale`: (revocations in the peers' feeds,
    /// heap bytes of the peers' revoked-code sets, agreements).
    pub fn trust_figures(&self) -> (usize, usize, usize) {
        let trust = self.state.trust.load();
        let (mut n, mut bytes) = (0, 0);
        for p in crate::province::PROVINCES {
            if let Some(f) = Province::from_code(p.code)
                .ok()
                .and_then(|p| trust.peer_feed(p))
            {
                n += f.state.revocation_count();
                bytes += f.state.revoked_codes_heap_bytes();
            }
        }
        (n, bytes, trust.agreement_count())
    }

    /// The node's province.
    pub fn province(&self) -> Province {
        self.state.province
    }

    /// Serves the Prometheus metrics endpoint (`GET /metrics`) on `listener` too (bound to the
    /// config's `metrics_listen`), over TLS with the node certificate when the node has TLS.
    pub fn with_metrics_listener(mut self, listener: Option<TcpListener>) -> Node {
        self.metrics_listener = listener;
        self
    }

    /// Serves the health port (`GET /healthz`, `GET /readyz`) on `listener` too (bound to the
    /// config's `health_listen`), in plain HTTP on every node: it carries no data.
    pub fn with_health_listener(mut self, listener: Option<TcpListener>) -> Node {
        self.health_listener = listener;
        self
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets in-flight
    /// calls finish and flushes the store.
    ///
    /// # Errors
    /// [`NodeError::Transport`] or [`NodeError::Store`].
    pub async fn serve(
        self,
        listener: TcpListener,
        http_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        let addr = listener.local_addr()?;
        let endpoint = endpoint_url(&self.config, addr);
        let _ = self.state.endpoint.set(endpoint.clone());
        let state = self.state.clone();

        // NOT_SERVING until the tasks below run; true on `draining` ends open Watch streams.
        let (draining, draining_rx) = tokio::sync::watch::channel(false);
        let (health, health_service) = health::NodeHealth::new(draining_rx).await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?;

        if state.tls.is_none() {
            tracing::warn!(%addr, "PLAIN TEXT: no [tls] section, so calls and API tokens cross the network unencrypted and peer nodes cannot be authenticated (federation calls are open). For loopback development only; `hcmr init` writes a TLS configuration by default");
        }
        tracing::info!(
            province = %state.province,
            name = state.province.name_en(),
            kid = %state.key.get().map(|k| k.kid().to_string()).unwrap_or_else(|| "none (verify replica)".into()),
            %addr,
            %endpoint,
            tls = state.tls.is_some(),
            callers = state.callers.load().len(),
            version = env!("CARGO_PKG_VERSION"),
            "hcmr node serving"
        );
        // One stop signal for everything the node runs: the gRPC server, the checkpoint page,
        // the sync loop, retention, the trip outbox, the audit writer and, at a verify replica,
        // the audit shipper.
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        // A verify replica follows its primary instead of syncing and watching peers, and owes
        // no trip records (its checks' reports are the primary's to sign).
        let (sync_task, watch_task) = if state.role.replica().is_some() {
            (
                tokio::spawn(replica::follow::run(state.clone(), stop_rx.clone())),
                tokio::spawn(async {}),
            )
        } else {
            (
                tokio::spawn(sync::run(state.clone(), stop_rx.clone())),
                tokio::spawn(feed_watch::run_peer_watches(state.clone(), stop_rx.clone())),
            )
        };
        let retention_task = tokio::spawn(retention::run(state.clone(), stop_rx.clone()));
        let overdue_task = tokio::spawn(trips::run_overdue_check(state.clone(), stop_rx.clone()));
        let outbox_task = tokio::spawn(outbox::run(state.clone(), stop_rx.clone()));
        // At a verify replica, audit records wait in the outbox until the primary holds them.
        let ship_gate = match state.role.replica() {
            Some(_) => Some(Arc::new(replica::ship::ShipGate::new(
                state.store.audit_outbox_next()?.saturating_sub(1),
            ))),
            None => None,
        };
        let audit_task = tokio::spawn(audit::audit_writer(
            state.store.clone(),
            self.audit_rx,
            state.audit.refusals.clone(),
            ship_gate.clone(),
            stop_rx.clone(),
        ));
        let ship_task = ship_gate
            .clone()
            .map(|gate| tokio::spawn(replica::ship::run(state.clone(), gate, stop_rx.clone())));
        let http_task = match http_listener {
            Some(l) => Some(spawn_side_listener(
                &state,
                l,
                &stop_rx,
                Side::Page,
                http::serve::<TcpListener>,
                http::serve::<listener::TlsListener>,
            )?),
            None => None,
        };
        let metrics_task = match self.metrics_listener {
            Some(l) => Some(spawn_side_listener(
                &state,
                l,
                &stop_rx,
                Side::Metrics,
                metrics::serve::<TcpListener>,
                metrics::serve::<listener::TlsListener>,
            )?),
            None => None,
        };
        // The health port answers 503 until the node serves, and while it drains.
        let health_port_task = self
            .health_listener
            .map(|l| health_port::spawn(state.clone(), l, health.phase(), stop_rx.clone()));
        // The snapshot is in place and the tasks run: ready (a replica: once synced).
        health.start_serving(&state).await;
        let mut grpc_stop = stop_rx.clone();
        let drain_state = state.clone();
        let shutdown = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = grpc_stop.changed() => {}
            }
            // Health checkers learn first, then in-flight calls drain (Watch streams end).
            health.stop().await;
            let _ = draining.send(true);
            // Feed watches and FollowState streams end too.
            drain_state.watches.draining.send_replace(true);
            tracing::info!("shutting down: health NOT_SERVING, draining in-flight calls");
        };
        let max = state.guards.limits.max_request_bytes;
        let router = tonic::transport::Server::builder()
            .timeout(std::time::Duration::from_secs(
                state.guards.limits.request_timeout_secs,
            ))
            .max_concurrent_streams(Some(256))
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
            .layer(auth::AuthLayer {
                state: state.clone(),
            })
            .add_service(health_service)
            .add_service(reflection)
            .add_service(
                proto::health_code_service_server::HealthCodeServiceServer::new(
                    api::HealthCodeApi(state.clone()),
                )
                .max_decoding_message_size(max),
            )
            .add_service(
                proto::federation_service_server::FederationServiceServer::new(api::FederationApi(
                    state.clone(),
                ))
                .max_decoding_message_size(max),
            )
            .add_service(
                proto::operator_service_server::OperatorServiceServer::new(api::OperatorApi(
                    state.clone(),
                ))
                .max_decoding_message_size(max),
            )
            .add_service(
                proto::trip_service_server::TripServiceServer::new(api::TripApi(state.clone()))
                    .max_decoding_message_size(max),
            )
            .add_service(
                proto::arrival_service_server::ArrivalServiceServer::new(api::ArrivalApi(
                    state.clone(),
                ))
                .max_decoding_message_size(max),
            )
            .add_service(
                proto::trace_service_server::TraceServiceServer::new(api::TraceApi(state.clone()))
                    .max_decoding_message_size(max),
            )
            .add_service(
                proto::replica_service_server::ReplicaServiceServer::new(api::ReplicaApi(
                    state.clone(),
                ))
                .max_decoding_message_size(max),
            );
        let served = match &state.tls {
            Some(t) => {
                let config = crate::tls::server_config(t.cert.clone(), &[b"h2"])?;
                let rx = listener::tls_acceptor(listener, config, state.clone(), stop_rx.clone());
                let incoming = tokio_stream::wrappers::ReceiverStream::new(rx).map(|a| {
                    Ok::<_, std::io::Error>(a.guarded_with(crate::tls::stream::Coalesced::new))
                });
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
            None => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
        };
        // Calls have drained; the check reports they left are queued before anything stops.
        let _ = state.reports_in_flight.write().await;
        let _ = stop.send(true);
        let _ = sync_task.await;
        let _ = watch_task.await;
        let _ = retention_task.await;
        let _ = overdue_task.await;
        let _ = outbox_task.await;
        if let Some(t) = http_task {
            if let Ok(Err(e)) = t.await {
                tracing::error!(error = %e, "checkpoint page stopped with an error");
            }
        }
        if let Some(t) = metrics_task {
            if let Ok(Err(e)) = t.await {
                tracing::error!(error = %e, "metrics endpoint stopped with an error");
            }
        }
        if let Some(t) = health_port_task {
            if let Ok(Err(e)) = t.await {
                tracing::error!(error = %e, "health port stopped with an error");
            }
        }
        let _ = audit_task.await;
        // The audit writer's last batch is in the outbox: a replica sends what it can.
        if let (Some(t), Some(gate)) = (ship_task, ship_gate) {
            let _ = t.await;
            replica::ship::final_ship(state.clone(), gate).await;
        }
        served?;
        state.store.flush().await?;
        tracing::info!(province = %state.province, "hcmr node stopped");
        Ok(())
    }
}

/// The URL peers and clients use to reach a node of `config` bound at `addr`: the config's
/// `endpoint` if set, else [`crate::client::node_url`] (`https://` with TLS, `http://` without).
pub fn endpoint_url(config: &Config, addr: SocketAddr) -> String {
    config
        .endpoint
        .clone()
        .unwrap_or_else(|| crate::client::node_url(config.tls.is_some(), addr))
}

/// The HTTP endpoints a node serves beside gRPC, on listeners of their own.
#[derive(Clone, Copy)]
enum Side {
    /// The checkpoint page (`http_listen`).
    Page,
    /// Prometheus metrics (`metrics_listen`).
    Metrics,
}

type SideTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Serves a side endpoint on `l` on a task: over TLS with the node certificate (`tls`) when the
/// node has TLS, else in plain HTTP (`plain`), which is logged as loopback-development only.
fn spawn_side_listener<P, T>(
    state: &Arc<NodeState>,
    l: TcpListener,
    stop: &tokio::sync::watch::Receiver<bool>,
    side: Side,
    plain: fn(Arc<NodeState>, TcpListener, tokio::sync::watch::Receiver<bool>) -> P,
    tls: fn(Arc<NodeState>, listener::TlsListener, tokio::sync::watch::Receiver<bool>) -> T,
) -> Result<SideTask, NodeError>
where
    P: Future<Output = std::io::Result<()>> + Send + 'static,
    T: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let addr = l.local_addr()?;
    Ok(match &state.tls {
        Some(t) => {
            match side {
                Side::Page => {
                    tracing::info!(http_addr = %addr, "checkpoint page serving at https://{addr}/")
                }
                Side::Metrics => {
                    tracing::info!(metrics_addr = %addr, "metrics serving at https://{addr}/metrics")
                }
            }
            let config = crate::tls::server_config(t.cert.clone(), &[b"h2", b"http/1.1"])?;
            let rx = listener::tls_acceptor(l, config, state.clone(), stop.clone());
            let tls_listener = listener::TlsListener { rx, local: addr };
            tokio::spawn(tls(state.clone(), tls_listener, stop.clone()))
        }
        None => {
            match side {
                Side::Page => {
                    tracing::warn!(http_addr = %addr, "checkpoint page serving in PLAIN HTTP at http://{addr}/ (loopback development only)")
                }
                Side::Metrics => {
                    tracing::warn!(metrics_addr = %addr, "metrics serving in PLAIN HTTP at http://{addr}/metrics (loopback development only)")
                }
            }
            tokio::spawn(plain(state.clone(), l, stop.clone()))
        }
    })
}

/// A node serving on a background task.
pub struct NodeHandle {
    /// The bound gRPC address.
    pub addr: SocketAddr,
    /// The bound address of the checkpoint page, when the config sets `http_listen`.
    pub http_addr: Option<SocketAddr>,
    /// The bound address of the metrics endpoint (`GET /metrics`), when the config sets
    /// `metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    /// The bound address of the health port (`GET /healthz`, `/readyz`), when the config sets
    /// `health_listen`.
    pub health_addr: Option<SocketAddr>,
    /// The URL to reach it, `https://` (`http://` without TLS) + `addr` unless the config sets
    /// one.
    pub endpoint: String,
    /// The node's province.
    pub province: Province,
    /// The node certificate clients pin (`tls/node.crt`); `None` without TLS.
    pub tls_cert: Option<PathBuf>,
    /// The folder of the node's config file.
    pub dir: PathBuf,
    store: Store,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl NodeHandle {
    /// Fault injection for tests of storage failures: while `Some`, every flush of the node's
    /// store fails with this message, as on a failing disk.
    #[doc(hidden)]
    pub fn inject_flush_failure(&self, message: Option<&str>) {
        self.store.inject_flush_failure(message);
    }

    /// Stops the node gracefully and waits until it has flushed and released its database.
    ///
    /// # Errors
    /// What the server task returned.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(());
        self.task
            .await
            .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?
    }
}

/// Opens the node of `config`, binds `config.listen` (port 0 picks a free port) and serves on a
/// task until [`NodeHandle::shutdown`].
///
/// # Errors
/// [`NodeError`] from opening or binding.
pub async fn spawn(config: &Config) -> Result<NodeHandle, NodeError> {
    spawn_with_clock(config, crate::clock::Clock::System).await
}

/// As [`spawn`], judging every time by `clock`.
///
/// # Errors
/// As [`spawn`].
pub async fn spawn_with_clock(
    config: &Config,
    clock: crate::clock::Clock,
) -> Result<NodeHandle, NodeError> {
    let node = Node::open_with_clock(config, clock)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let http_listener = match config.http_listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let http_addr = http_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let metrics_listener = match config.metrics_listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let health_listener = match config.health_listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let health_addr = health_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let node = node
        .with_metrics_listener(metrics_listener)
        .with_health_listener(health_listener);
    let endpoint = endpoint_url(config, addr);
    let province = node.province();
    let store = node.state.store.clone();
    let tls_cert = config.tls.as_ref().map(|t| t.cert_file.clone());
    let dir = config
        .data_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node.serve(listener, http_listener, async {
        let _ = rx.await;
    }));
    Ok(NodeHandle {
        addr,
        http_addr,
        metrics_addr,
        health_addr,
        endpoint,
        province,
        tls_cert,
        dir,
        store,
        shutdown: tx,
        task,
    })
}
