//! Creating a node's folder (`hcmr init`): keys, TLS identity, database, configuration and the
//! first admin's token; and adding callers to a stopped node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{
    config_text, default_peer_timeout, default_sync_interval, Config, ConfigError, LimitsConfig,
    PolicyConfig, RetentionConfig, TlsConfig, CONFIG_FILE,
};
use crate::feed::{FeedEntry, Statement};
use crate::identity::SubjectKey;
use crate::keyfile::NodeKeyFile as _;
use crate::keys::NodeKey;
use crate::province::Province;
use crate::store::Store;

/// What [`init_node`] creates besides the keys and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Address of the checkpoint page, when there is one.
    pub http_listen: Option<SocketAddr>,
    /// URL peers use; `None`: `https://` (or `http://`) + the bound address.
    pub endpoint: Option<String>,
    /// Serve TLS (a node certificate in `tls/`); false: plain text, loopback addresses only.
    pub tls: bool,
    /// Encrypt the key files under the passphrase in this environment variable.
    pub key_passphrase_env: Option<String>,
    /// ... or in this file.
    pub key_passphrase_file: Option<PathBuf>,
    /// Time zone of the times people read (`display_utc_offset`); the default is +08:00.
    pub display_utc_offset: crate::display::DisplayOffset,
}

impl InitOptions {
    /// TLS on, no page, no passphrase, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        InitOptions {
            listen,
            http_listen: None,
            endpoint: None,
            tls: true,
            key_passphrase_env: None,
            key_passphrase_file: None,
            display_utc_offset: crate::display::DisplayOffset::default(),
        }
    }
}

/// File of the first admin's API token, written by `init` in the node's folder (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Creates a node in `dir` with TLS and no page (see [`init_node`]). Returns the path of the
/// config file.
///
/// # Errors
/// As [`init_node`].
pub async fn init(
    province: Province,
    dir: &Path,
    listen: SocketAddr,
    endpoint: Option<String>,
) -> Result<PathBuf, ConfigError> {
    init_with_page(province, dir, listen, None, endpoint).await
}

/// As [`init`], with the address of the checkpoint web page (`http_listen`) when there is one.
///
/// # Errors
/// As [`init_node`].
pub async fn init_with_page(
    province: Province,
    dir: &Path,
    listen: SocketAddr,
    http_listen: Option<SocketAddr>,
    endpoint: Option<String>,
) -> Result<PathBuf, ConfigError> {
    let mut o = InitOptions::new(listen);
    o.http_listen = http_listen;
    o.endpoint = endpoint;
    init_node(province, dir, &o).await
}

/// Creates a node in `dir`: a new Ed25519 signing key (`node.key`), a subject-hash key
/// (`subject.key`), a TLS key and node certificate (`tls/node.key`, `tls/node.crt`) unless
/// `opts.tls` is false, the sled database (`db/`) holding the province, the first trust feed
/// entry and one caller `admin` with role admin, whose token goes to `admin.token`; and
/// `hcmr.toml`. Secret files have mode 0600; the two private keys are encrypted when a
/// passphrase source is given. Returns the path of the config file.
///
/// # Errors
/// [`ConfigError::Exists`] if `dir` already holds a node; [`ConfigError::Invalid`] for plain
/// text on a non-loopback address; I/O, key and store errors.
pub async fn init_node(
    province: Province,
    dir: &Path,
    opts: &InitOptions,
) -> Result<PathBuf, ConfigError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| ConfigError::Io { path, source }
    };
    let config_path = dir.join(CONFIG_FILE);
    for name in [
        CONFIG_FILE,
        "node.key",
        "subject.key",
        "db",
        "tls",
        ADMIN_TOKEN_FILE,
    ] {
        if dir.join(name).exists() {
            return Err(ConfigError::Exists(dir.join(name).display().to_string()));
        }
    }
    // Refused in init's words (its flags), not the config file's, before anything is made.
    if !opts.tls {
        for (flag, addr) in [
            ("--listen", Some(opts.listen)),
            ("--http-listen", opts.http_listen),
        ] {
            if let Some(a) = addr.filter(|a| !a.ip().is_loopback()) {
                return Err(ConfigError::Invalid {
                    path: flag.into(),
                    detail: format!(
                        "{a} is not a loopback address, and --plaintext would serve plain text to the network: drop --plaintext (init then makes the node's TLS certificate) or listen on 127.0.0.1"
                    ),
                });
            }
        }
    }
    let tls = opts.tls.then(|| TlsConfig {
        cert_file: "tls/node.crt".into(),
        key_file: "tls/node.key".into(),
    });
    let config = Config {
        province: province.to_string(),
        listen: opts.listen,
        http_listen: opts.http_listen,
        metrics_listen: None,
        health_listen: None,
        endpoint: opts.endpoint.clone(),
        data_dir: "db".into(),
        key_file: "node.key".into(),
        subject_key_file: "subject.key".into(),
        sync_interval_secs: default_sync_interval(),
        peer_timeout_secs: default_peer_timeout(),
        key_passphrase_env: opts.key_passphrase_env.clone(),
        key_passphrase_file: opts.key_passphrase_file.clone(),
        display_utc_offset: opts.display_utc_offset,
        tls,
        file_settings: None,
        limits: LimitsConfig::default(),
        policy: PolicyConfig::default(),
        retention: RetentionConfig::default(),
        replica: None,
    };
    // The same checks `load` makes, before anything is written.
    let text = config_text(province, &config);
    let mut resolved = Config::from_toml(&text, &config_path)?;
    if let Some(f) = &opts.key_passphrase_file {
        resolved.key_passphrase_file = Some(f.clone());
    }
    let protection = resolved.key_protection()?;
    // Only now, every check passed: a refused init leaves no folder behind.
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    let key = NodeKey::generate();
    key.write_pem_protected(&dir.join("node.key"), &protection)?;
    crate::keyfile::write_subject_key(
        &dir.join("subject.key"),
        &SubjectKey::generate(),
        &protection,
    )?;
    if opts.tls {
        let tls_dir = dir.join("tls");
        std::fs::create_dir_all(&tls_dir).map_err(io(&tls_dir))?;
        let names = crate::tls::certificate_names(opts.endpoint.as_deref());
        let now = i64::try_from(crate::unix_now().secs()).unwrap_or(i64::MAX);
        let identity =
            crate::tls::TlsIdentity::generate(province, &key, &names, now).map_err(|e| {
                ConfigError::Invalid {
                    path: tls_dir.display().to_string(),
                    detail: e.to_string(),
                }
            })?;
        identity
            .save(
                &tls_dir.join("node.crt"),
                Some(&tls_dir.join("node.key")),
                &protection,
            )
            .map_err(|e| ConfigError::Invalid {
                path: tls_dir.display().to_string(),
                detail: e.to_string(),
            })?;
    }
    let store = Store::open(&dir.join("db"))?;
    store.set_province(province).await?;
    // Entry 1 of the node's trust feed names its first key.
    let genesis = FeedEntry::sign(
        province,
        None,
        crate::unix_now(),
        Statement::Genesis { key: key.public() },
        &key,
    );
    store.append_feed(&genesis).await?;
    let (admin, token) = crate::callers::Caller::new(
        "admin",
        crate::callers::Roles::of(&[crate::callers::Role::Admin]),
        crate::unix_now(),
    )
    .expect("a valid name and role");
    store.put_caller(&admin).await?;
    drop(store);
    crate::fsutil::write_secret_file(
        &dir.join(ADMIN_TOKEN_FILE),
        format!("{}\n", token.as_str()).as_bytes(),
    )
    .map_err(io(&dir.join(ADMIN_TOKEN_FILE)))?;
    std::fs::write(&config_path, text).map_err(io(&config_path))?;
    Ok(config_path)
}

/// Adds a caller to a stopped node's database (the running node holds the database lock: use
/// the AddCaller RPC then). Returns the token, to be shown once. An existing name is refused:
/// see [`add_or_replace_caller_offline`].
///
/// # Errors
/// As [`add_or_replace_caller_offline`].
pub async fn add_caller_offline(
    config: &Config,
    name: &str,
    roles: &[crate::callers::Role],
) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    add_or_replace_caller_offline(config, name, roles, false).await
}

/// Adds a caller to a stopped node's database, or with `replace` replaces one of that name (a
/// new token; its old one stops working). Returns the token, to be shown once.
///
/// # Errors
/// [`ConfigError::Invalid`] for a bad name or no role; [`ConfigError::Caller`] for an existing
/// name without `replace`, or the last admin replaced by a non-admin; [`ConfigError::Store`]
/// (e.g. the node is running).
pub async fn add_or_replace_caller_offline(
    config: &Config,
    name: &str,
    roles: &[crate::callers::Role],
    replace: bool,
) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    let (caller, token) =
        crate::callers::Caller::new(name, crate::callers::Roles::of(roles), crate::unix_now())
            .map_err(|e| ConfigError::Invalid {
                path: "caller".into(),
                detail: e.to_string(),
            })?;
    let store = Store::open(&config.data_dir)?;
    crate::callers::check_add(&store.callers()?, name, caller.roles, replace)?;
    store.put_caller(&caller).await?;
    Ok(token)
}

/// What makes a verify replica (`hcmr init --replica-of`).
#[derive(Debug, Clone)]
pub struct ReplicaInit {
    /// The primary's URL (`https://`).
    pub primary: String,
    /// The primary's certificate (PEM), pinned for this one call.
    pub primary_cert: PathBuf,
    /// An admin token of the primary, used for this one call and not stored.
    pub admin_token: zeroize::Zeroizing<String>,
    /// The name to enroll under.
    pub name: String,
}

/// Creates a verify replica of `province` in `dir`: a TLS key, enrolled at the primary
/// (OperatorService.EnrollReplica with the admin token), and a certificate carrying the
/// primary's certification (node binding version 2); `hcmr.toml` with `[replica]` and `[tls]`,
/// no signing or subject key; an empty database it fills by following the primary.
///
/// # Errors
/// [`ConfigError::Exists`] over a node; [`ConfigError::Invalid`] naming the flag for a bad
/// primary URL or name, or the primary's refusal; [`ConfigError::Io`].
pub async fn init_replica(
    province: Province,
    dir: &Path,
    opts: &InitOptions,
    r: &ReplicaInit,
) -> Result<PathBuf, ConfigError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| ConfigError::Io { path, source }
    };
    let config_path = dir.join(CONFIG_FILE);
    for name in [CONFIG_FILE, "db", "tls"] {
        if dir.join(name).exists() {
            return Err(ConfigError::Exists(dir.join(name).display().to_string()));
        }
    }
    let config = Config {
        province: province.to_string(),
        listen: opts.listen,
        http_listen: opts.http_listen,
        metrics_listen: None,
        health_listen: None,
        endpoint: opts.endpoint.clone(),
        data_dir: "db".into(),
        key_file: PathBuf::new(),
        subject_key_file: PathBuf::new(),
        sync_interval_secs: default_sync_interval(),
        peer_timeout_secs: default_peer_timeout(),
        key_passphrase_env: opts.key_passphrase_env.clone(),
        key_passphrase_file: opts.key_passphrase_file.clone(),
        display_utc_offset: opts.display_utc_offset,
        tls: Some(TlsConfig {
            cert_file: "tls/node.crt".into(),
            key_file: "tls/node.key".into(),
        }),
        file_settings: None,
        limits: LimitsConfig::default(),
        policy: PolicyConfig::default(),
        retention: RetentionConfig::default(),
        replica: Some(super::ReplicaConfig {
            primary: r.primary.clone(),
            name: r.name.clone(),
            max_lag_secs: super::default_max_lag(),
        }),
    };
    let text = config_text(province, &config);
    let mut resolved = Config::from_toml(&text, &config_path).map_err(|e| match e {
        ConfigError::Invalid { detail, .. } => ConfigError::Invalid {
            path: "--replica-of/--name".into(),
            detail,
        },
        other => other,
    })?;
    if let Some(f) = &opts.key_passphrase_file {
        resolved.key_passphrase_file = Some(f.clone());
    }
    let protection = resolved.key_protection()?;
    let refused = |detail: String| ConfigError::Invalid {
        path: "--replica-of".into(),
        detail,
    };
    let (key_der, spki) =
        crate::tls::TlsIdentity::generate_replica_key().map_err(|e| refused(e.to_string()))?;
    let channel = crate::client::connect(
        &r.primary,
        Some(&r.primary_cert),
        Some(r.admin_token.as_str()),
    )
    .await
    .map_err(|e| refused(format!("{}: {e}", r.primary)))?;
    let enrolled = crate::proto::operator_service_client::OperatorServiceClient::new(channel)
        .enroll_replica(crate::proto::EnrollReplicaRequest {
            name: r.name.clone(),
            spki,
        })
        .await
        .map_err(|s| {
            refused(format!(
                "the primary refused the enrollment: {}",
                s.message()
            ))
        })?
        .into_inner();
    let key = crate::keys::PublicKey::from_bytes(&enrolled.certifying_key)
        .map_err(|e| refused(format!("the primary's certifying key: {e}")))?;
    let signature: [u8; 64] = enrolled
        .certification
        .as_slice()
        .try_into()
        .map_err(|_| refused("the primary's certification is not 64 bytes".into()))?;
    let names = crate::tls::certificate_names(opts.endpoint.as_deref());
    let now = i64::try_from(crate::unix_now().secs()).unwrap_or(i64::MAX);
    let identity = crate::tls::TlsIdentity::replica(
        key_der,
        province,
        &names,
        crate::tls::Certification { key, signature },
        now,
    )
    .map_err(|e| refused(format!("the primary's certification: {e}")))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir).map_err(io(&tls_dir))?;
    identity
        .save(
            &tls_dir.join("node.crt"),
            Some(&tls_dir.join("node.key")),
            &protection,
        )
        .map_err(|e| ConfigError::Invalid {
            path: tls_dir.display().to_string(),
            detail: e.to_string(),
        })?;
    let store = Store::open(&dir.join("db"))?;
    store.set_province(province).await?;
    store.instance_id()?;
    drop(store);
    std::fs::write(&config_path, text).map_err(io(&config_path))?;
    Ok(config_path)
}
