//! The node: the gRPC server of one province.
//!
//! [`Node::open`] loads the key, opens the store and builds the trust snapshot;
//! [`Node::serve`] serves the three hcmr services, grpc.health.v1 and server reflection on a
//! bound listener until a shutdown future completes, then drains in-flight calls. [`spawn`] does
//! both on a task, for tests and the demo.

pub mod config;
pub mod convert;
pub mod error;
mod peer;
mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

pub use config::{init, Config, ConfigError, CONFIG_FILE};
pub use error::ApiError;

use crate::identity::SubjectKey;
use crate::keys::NodeKey;
use crate::proto;
use crate::province::Province;
use crate::store::{Store, StoreError};
use crate::trust::{Policy, TrustSnapshot};

/// Errors that stop a node from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Configuration, key or store problem at start.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key in the key file is not one the store records for this node.
    #[error("key file {0} holds a key this node's database does not record")]
    KeyMismatch(String),
    /// The province in the config differs from the one in the database.
    #[error("config says province {config} but the database belongs to {stored}")]
    ProvinceMismatch {
        /// From the config file.
        config: Province,
        /// From the database.
        stored: Province,
    },
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
    pub(crate) key: NodeKey,
    pub(crate) subject_key: SubjectKey,
    pub(crate) store: Store,
    pub(crate) policy: Policy,
    pub(crate) default_code_lifetime_secs: u64,
    /// URL peers use to reach this node; set once the listener is bound.
    pub(crate) endpoint: std::sync::OnceLock<String>,
    /// The snapshot verification reads. Swapped whole after every trust change, so a Verify
    /// call takes one pointer and never waits on a writer.
    pub(crate) trust: ArcSwap<TrustSnapshot>,
    /// Serialises agreement changes, so two concurrent ones cannot interleave their
    /// read-check-write steps or rebuild the snapshot from a half-updated store.
    pub(crate) agreement_lock: tokio::sync::Mutex<()>,
}

impl NodeState {
    /// Rebuilds the trust snapshot from the store and swaps it in.
    pub(crate) fn rebuild_trust(&self) -> Result<(), StoreError> {
        let snapshot = build_snapshot(self.province, &self.store, self.policy)?;
        self.trust.store(Arc::new(snapshot));
        Ok(())
    }

    pub(crate) fn endpoint(&self) -> String {
        self.endpoint.get().cloned().unwrap_or_default()
    }
}

/// Builds the snapshot: own keys from the store, and every concluded agreement whose signatures
/// verify. An agreement that fails its check is left out and logged, never trusted.
fn build_snapshot(
    province: Province,
    store: &Store,
    policy: Policy,
) -> Result<TrustSnapshot, StoreError> {
    let own = store.keys()?.into_iter().map(|r| r.key).collect();
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
    Ok(snapshot)
}

/// An opened node, ready to serve.
pub struct Node {
    state: Arc<NodeState>,
    config: Config,
}

impl Node {
    /// Loads the key files, opens the store and builds the trust snapshot.
    ///
    /// # Errors
    /// [`NodeError`] naming the file or setting at fault.
    pub fn open(config: &Config) -> Result<Node, NodeError> {
        let province = config.province()?;
        let key = NodeKey::read_pem(&config.key_file).map_err(ConfigError::from)?;
        let subject_key = config::read_subject_key(&config.subject_key_file)?;
        let store = Store::open(&config.data_dir)?;
        let stored = store.province()?;
        if stored != province {
            return Err(NodeError::ProvinceMismatch {
                config: province,
                stored,
            });
        }
        if !store.keys()?.iter().any(|r| r.key == key.public()) {
            return Err(NodeError::KeyMismatch(
                config.key_file.display().to_string(),
            ));
        }
        let policy = config.trust_policy();
        let snapshot = build_snapshot(province, &store, policy)?;
        Ok(Node {
            state: Arc::new(NodeState {
                province,
                key,
                subject_key,
                store,
                policy,
                default_code_lifetime_secs: config.policy.default_code_lifetime_secs,
                endpoint: std::sync::OnceLock::new(),
                trust: ArcSwap::from_pointee(snapshot),
                agreement_lock: tokio::sync::Mutex::new(()),
            }),
            config: config.clone(),
        })
    }

    /// The node's province.
    pub fn province(&self) -> Province {
        self.state.province
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets in-flight
    /// calls finish and flushes the store.
    ///
    /// # Errors
    /// [`NodeError::Transport`] or [`NodeError::Store`].
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        let addr = listener.local_addr()?;
        let endpoint = self
            .config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let _ = self.state.endpoint.set(endpoint.clone());
        let state = self.state.clone();

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<proto::health_code_service_server::HealthCodeServiceServer<service::HealthCodeApi>>()
            .await;
        health_reporter
            .set_serving::<proto::federation_service_server::FederationServiceServer<service::FederationApi>>()
            .await;
        health_reporter
            .set_serving::<proto::operator_service_server::OperatorServiceServer<service::OperatorApi>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?;

        tracing::info!(
            province = %state.province,
            name = state.province.name_en(),
            kid = %state.key.kid(),
            %addr,
            %endpoint,
            version = env!("CARGO_PKG_VERSION"),
            "hcmr node serving (plain-text gRPC: for loopback and development)"
        );
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(
                proto::health_code_service_server::HealthCodeServiceServer::new(
                    service::HealthCodeApi(state.clone()),
                ),
            )
            .add_service(
                proto::federation_service_server::FederationServiceServer::new(
                    service::FederationApi(state.clone()),
                ),
            )
            .add_service(proto::operator_service_server::OperatorServiceServer::new(
                service::OperatorApi(state.clone()),
            ))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        state.store.flush().await?;
        tracing::info!(province = %state.province, "hcmr node stopped");
        Ok(())
    }
}

/// A node serving on a background task.
pub struct NodeHandle {
    /// The bound address.
    pub addr: SocketAddr,
    /// The URL to reach it, `http://` + `addr` unless the config sets one.
    pub endpoint: String,
    /// The node's province.
    pub province: Province,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl NodeHandle {
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
    let node = Node::open(config)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let endpoint = config
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let province = node.province();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node.serve(listener, async {
        let _ = rx.await;
    }));
    Ok(NodeHandle {
        addr,
        endpoint,
        province,
        shutdown: tx,
        task,
    })
}
