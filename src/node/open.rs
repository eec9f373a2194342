//! Opening a node, step by step: the key files' permissions, the subject key, the database
//! folder and store, the own feed and signing key (finishing an interrupted rotation), the TLS
//! identity (re-certifying after an interrupted rotation), the peers' feeds, the trust snapshot,
//! and the shared state.

use crate::UnixTime;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::{
    auth, batcher, build_snapshot, keys, listener, log_budget, metrics, Config, ConfigError, Node,
    NodeError, NodeState, TlsState, AUDIT_QUEUE,
};
use crate::feed::FeedState;
use crate::identity::SubjectKey;
use crate::keyfile::{KeyProtection, NodeKeyFile as _};
use crate::keys::NodeKey;
use crate::province::Province;
use crate::store::{Store, StoreError};
use crate::trust::PeerFeed;

impl Node {
    /// Loads the key files, opens the store and builds the trust snapshot.
    ///
    /// # Errors
    /// [`NodeError`] naming the file or setting at fault.
    pub fn open(config: &Config) -> Result<Node, NodeError> {
        Node::open_with_clock(config, crate::clock::Clock::System)
    }

    /// As [`Node::open`], judging every time by `clock` (tests inject one).
    ///
    /// # Errors
    /// As [`Node::open`].
    pub fn open_with_clock(config: &Config, clock: crate::clock::Clock) -> Result<Node, NodeError> {
        if let Some(r) = &config.replica {
            return Node::open_replica(config, r, clock);
        }
        let province = config.province()?;
        check_key_files(config)?;
        let key_protection = config.key_protection()?;
        let (subject_key, subject_form) =
            crate::keyfile::read_subject_key(&config.subject_key_file, &key_protection)
                .map_err(ConfigError::from)?;
        let store = open_store(config, province)?;
        // Stored entries were checked before they were written: no signature is checked
        // again (see FeedState::restore).
        let mut own = FeedState::new(province);
        own.restore(store.feed_iter())?;
        let key = load_key(&config.key_file, &own, &key_protection)?;
        let tls = match &config.tls {
            None => None,
            Some(t) => Some(load_tls(t, province, &key, &key_protection, clock.now())?),
        };
        if subject_form == crate::keyfile::SubjectKeyForm::Hex && key_protection.is_encrypted() {
            encrypt_plain_subject_key(&config.subject_key_file, &subject_key, &key_protection)?;
        }
        let peers = restore_peer_feeds(&store)?;
        let (audit_tx, audit_rx) = tokio::sync::mpsc::channel(AUDIT_QUEUE);
        let state = shared_state(
            config,
            Opened {
                province,
                key: super::keyslot::SigningKey::primary(key),
                subject_key: super::keyslot::SubjectKeySlot::primary(subject_key),
                role: super::replica::NodeRole::Primary,
                key_protection,
                store,
                own,
                peers,
                tls,
                audit_tx,
                clock,
            },
        )?;
        let node = Node {
            audit_rx,
            state: Arc::new(state),
            config: config.clone(),
            metrics_listener: None,
            health_listener: None,
        };
        node.state.caller_admin().reload_callers()?;
        Ok(node)
    }
}

/// What the steps of [`Node::open_with_clock`] loaded, for [`shared_state`].
struct Opened {
    province: Province,
    key: super::keyslot::SigningKey,
    subject_key: super::keyslot::SubjectKeySlot,
    role: super::replica::NodeRole,
    key_protection: KeyProtection,
    store: Store,
    own: FeedState,
    peers: HashMap<Province, PeerFeed>,
    tls: Option<TlsState>,
    audit_tx: tokio::sync::mpsc::Sender<crate::audit::AuditRecord>,
    clock: crate::clock::Clock,
}

impl Node {
    /// Opens a verify replica: no signing or subject key; the TLS identity must be a replica
    /// certificate (binding version 2) of the node's province, whose certifying key becomes the
    /// anchor of the own feed it follows; the store and the feeds as followed so far.
    fn open_replica(
        config: &Config,
        r: &super::config::ReplicaConfig,
        clock: crate::clock::Clock,
    ) -> Result<Node, NodeError> {
        let province = config.province()?;
        let Some(t) = &config.tls else {
            return Err(ConfigError::Invalid {
                path: "replica".into(),
                detail: "a verify replica needs [tls]".into(),
            }
            .into());
        };
        check_key_permissions(&t.key_file)?;
        let key_protection = config.key_protection()?;
        let store = open_store(config, province)?;
        let mut own = FeedState::new(province);
        own.restore(store.feed_iter())?;
        let identity = crate::tls::TlsIdentity::load(&t.cert_file, &t.key_file, &key_protection)?;
        let now = i64::try_from(clock.now().secs()).unwrap_or(i64::MAX);
        let bad = |detail: String| crate::tls::TlsError::File {
            path: t.cert_file.display().to_string(),
            detail,
        };
        let mine = crate::tls::check_node_certificate(identity.certificate_der(), now)
            .map_err(|e| bad(format!("not a usable replica certificate: {e}")))?;
        if !mine.replica || mine.province != province {
            return Err(bad(format!(
                "not a verify replica's certificate of {province} (made by `hcmr init --replica-of`)"
            ))
            .into());
        }
        let anchor = *mine
            .keys
            .last()
            .ok_or_else(|| bad("no certification by the primary".into()))?;
        let tls = TlsState {
            cert: Arc::new(crate::tls::CertSource(ArcSwap::new(
                identity.certified_key()?,
            ))),
            identity: Mutex::new(identity),
            cert_file: t.cert_file.clone(),
        };
        let instance = store.instance_id()?;
        let peers = restore_peer_feeds(&store)?;
        let (audit_tx, audit_rx) = tokio::sync::mpsc::channel(AUDIT_QUEUE);
        let link = super::replica::ReplicaLink::new(
            r.primary.clone(),
            r.name.clone(),
            instance,
            anchor,
            std::time::Duration::from_secs(r.max_lag_secs),
        );
        let state = shared_state(
            config,
            Opened {
                province,
                key: super::keyslot::SigningKey::replica(&r.primary),
                subject_key: super::keyslot::SubjectKeySlot::replica(&r.primary),
                role: super::replica::NodeRole::Replica(Box::new(link)),
                key_protection,
                store,
                own,
                peers,
                tls: Some(tls),
                audit_tx,
                clock,
            },
        )?;
        let node = Node {
            audit_rx,
            state: Arc::new(state),
            config: config.clone(),
            metrics_listener: None,
            health_listener: None,
        };
        node.state.caller_admin().reload_callers()?;
        Ok(node)
    }
}

/// Refuses key files (signing key, subject key, TLS key) that others can read or write.
fn check_key_files(config: &Config) -> Result<(), NodeError> {
    check_key_permissions(&config.key_file)?;
    check_key_permissions(&config.subject_key_file)?;
    if let Some(t) = &config.tls {
        check_key_permissions(&t.key_file)?;
    }
    Ok(())
}

/// Opens the store in `data_dir`, which must exist, be writable, and belong to `province`.
fn open_store(config: &Config, province: Province) -> Result<Store, NodeError> {
    if !config.data_dir.is_dir() {
        return Err(NodeError::NoDatabase(config.data_dir.display().to_string()));
    }
    let probe = config.data_dir.join(".hcmr-write-probe");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| NodeError::NotWritable {
            path: config.data_dir.display().to_string(),
            detail: e.to_string(),
        })?;
    let store = Store::open(&config.data_dir)?;
    let stored = store.province()?;
    if stored != province {
        return Err(NodeError::ProvinceMismatch {
            config: province,
            stored,
        });
    }
    Ok(store)
}

/// Loads the TLS identity of `t`, checks that it speaks for `province`, and re-certifies it by
/// `key` when a rotation crashed before doing so.
fn load_tls(
    t: &super::config::TlsConfig,
    province: Province,
    key: &NodeKey,
    key_protection: &KeyProtection,
    now: UnixTime,
) -> Result<TlsState, NodeError> {
    let identity = crate::tls::TlsIdentity::load(&t.cert_file, &t.key_file, key_protection)?;
    let now = i64::try_from(now.secs()).unwrap_or(i64::MAX);
    let mine =
        crate::tls::check_node_certificate(identity.certificate_der(), now).map_err(|e| {
            crate::tls::TlsError::File {
                path: t.cert_file.display().to_string(),
                detail: format!("not a usable node certificate: {e}"),
            }
        })?;
    if mine.province != province {
        return Err(crate::tls::TlsError::File {
            path: t.cert_file.display().to_string(),
            detail: format!(
                "the certificate speaks for {}, not for this node's province {province}",
                mine.province
            ),
        }
        .into());
    }
    // A rotation that crashed before re-certifying: certify with the current key.
    let identity = if mine.keys.contains(&key.public()) {
        identity
    } else {
        let renewed = identity.recertified(key, now)?;
        renewed.save(&t.cert_file, None, key_protection)?;
        tracing::warn!(kid = %key.kid(), "node certificate re-certified by the current key");
        renewed
    };
    Ok(TlsState {
        cert: Arc::new(crate::tls::CertSource(ArcSwap::new(
            identity.certified_key()?,
        ))),
        identity: Mutex::new(identity),
        cert_file: t.cert_file.clone(),
    })
}

/// The peers' feeds as last synced; a stored feed that does not verify is left out (logged).
fn restore_peer_feeds(store: &Store) -> Result<HashMap<Province, PeerFeed>, NodeError> {
    let mut peers = HashMap::new();
    for (peer, synced_at) in store.sync_times()? {
        let mut state = FeedState::new(peer);
        match state.restore(store.peer_feed_iter(peer)) {
            Ok(()) => {
                let state = Arc::new(state);
                peers.insert(peer, PeerFeed { state, synced_at });
            }
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(%peer, error = %e, "stored peer feed does not verify; it is left out")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(peers)
}

/// The node's shared state: the trust snapshot built from what was opened, the settings of
/// `config`, and the guards, queues and metrics a serving node needs.
fn shared_state(config: &Config, o: Opened) -> Result<NodeState, StoreError> {
    let policy = config.trust_policy();
    let own = Arc::new(o.own);
    let snapshot = build_snapshot(
        o.province,
        &o.store,
        policy,
        own.clone(),
        o.peers.values().cloned().collect(),
    )?;
    Ok(NodeState {
        province: o.province,
        key: o.key,
        key_file: config.key_file.clone(),
        subject_key: o.subject_key,
        role: o.role,
        replicas_seen: Default::default(),
        store: o.store,
        policy,
        default_code_lifetime_secs: config.policy.default_code_lifetime_secs,
        display_offset: config.display_utc_offset,
        sync_interval: std::time::Duration::from_secs(config.sync_interval_secs),
        peer_timeout: std::time::Duration::from_secs(config.peer_timeout_secs),
        endpoint: std::sync::OnceLock::new(),
        trust: super::TrustState {
            snapshot: ArcSwap::from_pointee(snapshot),
            own_feed: Mutex::new(own),
            peer_feeds: Mutex::new(o.peers),
            rebuild_lock: Mutex::new(()),
            changed: tokio::sync::watch::Sender::new(0),
        },
        audit: super::AuditSink {
            tx: o.audit_tx,
            dropped: std::sync::atomic::AtomicU64::new(0),
            refusals: Arc::default(),
        },
        guards: super::Guards {
            rate: auth::RateLimiter::new(
                config.limits.caller_requests_per_sec,
                config.limits.caller_burst,
            ),
            in_flight: Arc::default(),
            connections: Arc::new(listener::ConnGate::new(
                listener::connection_limit(config.limits.max_connections),
                config.limits.max_connections_per_address,
            )),
            concurrency: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_concurrent_requests,
            )),
            limits: config.limits,
        },
        agreement_lock: tokio::sync::Mutex::new(()),
        feed_lock: tokio::sync::Mutex::new(()),
        sync_lock: tokio::sync::Mutex::new(()),
        watches: Default::default(),
        batcher: batcher::Batcher::start(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ),
        rate_refusal_lines: log_budget::LineBudget::new(1),
        refusal_lines: log_budget::LineBudget::new(auth::REFUSAL_LINES_PER_SEC),
        handshake_lines: Arc::new(log_budget::LineBudget::new(
            listener::HANDSHAKE_LINES_PER_SEC,
        )),
        retention: config.retention,
        key_protection: o.key_protection,
        outbox_wake: tokio::sync::Notify::new(),
        reports_in_flight: Arc::default(),
        trace_limits: super::trace::TraceLimits::default(),
        recent_reports: Default::default(),
        tls: o.tls,
        callers: ArcSwap::from_pointee(HashMap::new()),
        config: config.clone(),
        metrics: metrics::Metrics::default(),
        clock: o.clock,
    })
}

/// Refuses a key file that others can read or write (group or world bits set).
fn check_key_permissions(path: &std::path::Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(NodeError::KeyPermissions {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
    }
    Ok(())
}

/// Reads the node key, finishing a rotation a crash interrupted: the rotation writes the new key
/// to `<key_file>.new`, records the rotation in the feed, then renames; if the feed already names
/// the new key, the rename is completed here.
fn load_key(
    key_file: &std::path::Path,
    own: &FeedState,
    protection: &crate::keyfile::KeyProtection,
) -> Result<NodeKey, NodeError> {
    let current = own.current_key().copied();
    let key = NodeKey::read_pem_protected(key_file, protection).map_err(ConfigError::from)?;
    if Some(key.public()) == current {
        return Ok(key);
    }
    let pending = keys::pending_key_path(key_file);
    if pending.exists() {
        let new = NodeKey::read_pem_protected(&pending, protection).map_err(ConfigError::from)?;
        if Some(new.public()) == current {
            keys::install_key_file(key_file, &pending, key.kid())?;
            tracing::warn!(kid = %new.kid(), "completed a key rotation interrupted by a crash");
            return Ok(new);
        }
    }
    Err(NodeError::KeyMismatch(key_file.display().to_string()))
}

/// Rewrites a plain hex subject key file (of a node made before subject keys could be
/// encrypted) encrypted under `protection`, through a new file renamed over the old one, so a
/// crash leaves one form or the other, both readable. Called once every other key file has
/// been read under the same passphrase, so a node that cannot start is never changed.
fn encrypt_plain_subject_key(
    path: &Path,
    key: &SubjectKey,
    protection: &crate::keyfile::KeyProtection,
) -> Result<(), NodeError> {
    let mut new = path.as_os_str().to_owned();
    new.push(".new");
    let new = PathBuf::from(new);
    let io = |e: std::io::Error| {
        NodeError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", new.display()),
        ))
    };
    match std::fs::remove_file(&new) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    crate::keyfile::write_subject_key(&new, key, protection).map_err(ConfigError::from)?;
    std::fs::rename(&new, path).map_err(io)?;
    tracing::warn!(
        file = %path.display(),
        "the subject key file was plain hex while the other key files are encrypted: rewritten encrypted with their passphrase"
    );
    Ok(())
}
