//! Node configuration (a TOML file written by `hcmr init`); its text in `text.rs`, node creation
//! in `init.rs`.
//!
//! ```toml
//! province = "510000"              # GB/T 2260 province-level code
//! listen = "127.0.0.1:7510"        # gRPC listen address (port 0: any free port)
//! http_listen = "127.0.0.1:8510"   # optional: the checkpoint web page (plain HTTP)
//! metrics_listen = "127.0.0.1:9510" # optional: Prometheus metrics, GET /metrics (TLS with [tls])
//! health_listen = "127.0.0.1:9511" # optional: plain-HTTP status for probes and load balancers,
//!                                  # GET /healthz and GET /readyz (never TLS: it carries no data)
//! endpoint = "http://127.0.0.1:7510"  # optional: URL peers use; default http://<bound address>
//! data_dir = "db"                  # sled database, relative to this file's folder
//! key_file = "node.key"            # Ed25519 signing key, PKCS#8 PEM, mode 0600
//! subject_key_file = "subject.key" # key of the keyed subject hash: 64 hex digits, or PKCS#8
//!                                  # PEM (encrypted with a passphrase), mode 0600
//! sync_interval_secs = 30          # how often peers' trust feeds are pulled, seconds
//! peer_timeout_secs = 10           # longest wait for a peer: connect, TLS, each answer, seconds
//! key_passphrase_env = "HCMR_KEY_PASSPHRASE" # optional: key files encrypted; passphrase from this variable
//! key_passphrase_file = "/run/secrets/hcmr"  # optional: ... or from this file (mode 0600)
//! display_utc_offset = "+08:00"    # times shown to people (card, page, CLI) are in this offset
//!                                  # from UTC, written with it; API, records and logs stay UTC
//!
//! [tls]                            # absent: plain text, allowed on loopback addresses only
//! cert_file = "tls/node.crt"       # node certificate (self-signed, with the node binding)
//! key_file = "tls/node.key"        # its key, PKCS#8 PEM, mode 0600
//!
//! [limits]
//! max_request_bytes = 65536        # largest gRPC request message, bytes
//! max_concurrent_requests = 512    # calls served at once, node-wide; more get RESOURCE_EXHAUSTED
//! caller_requests_per_sec = 200    # sustained rate per caller (token bucket)
//! caller_burst = 400               # burst per caller
//! request_timeout_secs = 30        # longest a call may run, seconds
//! max_concurrent_per_caller = 64   # calls in flight per caller token or peer province
//! max_concurrent_per_address = 256 # calls in flight per remote IP address
//! body_timeout_secs = 5            # longest the request body of a call may take to arrive, seconds
//! max_connections = 4096           # TLS connections open at once (all ports; kept under ulimit -n)
//! max_connections_per_address = 64 # TLS connections open at once from one IP address
//! idle_timeout_secs = 60           # a connection with no call for this long is closed, seconds
//!
//! [policy]
//! clock_skew_secs = 300            # tolerated clock difference for iat, seconds
//! own_max_code_age_secs = 604800   # oldest own code accepted, seconds
//! default_code_lifetime_secs = 300 # code lifetime when a request gives 0, seconds
//!
//! [retention]                      # removed hourly (and at start) once older, days
//! audit_days = 180                 # verification audit records (1 to 3650)
//! access_days = 180                # refused-call records (1 to 3650)
//! issued_days_after_expiry = 7     # issued-code log entries, after the code expired (0 to 3650)
//! trip_days = 28                   # trip data (trips, arrivals, reports, receipts, exposure notices), after arrival (1 to 3650)
//! ```
//!
//! `hcmr init` writes each setting with its meaning, and every optional top-level setting it
//! leaves unset commented out above the first section ([`config_text`]); a top-level setting
//! found inside a section is refused saying where it belongs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::province::Province;

mod init;
mod text;

pub use init::{
    add_caller_offline, add_or_replace_caller_offline, init, init_node, init_replica,
    init_with_page, InitOptions, ReplicaInit, ADMIN_TOKEN_FILE,
};
use text::misplaced_top_level_key;
pub use text::{config_text, TOP_LEVEL_KEYS};

/// Name of the configuration file `hcmr init` writes in the data directory.
pub const CONFIG_FILE: &str = "hcmr.toml";

/// Errors of configuration and node creation. Each names the file or setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has a wrong setting.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the setting.
        detail: String,
    },
    /// `init` would overwrite an existing node.
    #[error("{0} already exists: refusing to overwrite a node (choose an empty --data-dir)")]
    Exists(String),
    /// A province setting or argument is not a GB/T 2260 province.
    #[error("province: {0}")]
    Province(#[from] crate::province::ProvinceError),
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] crate::keyfile::KeyFileError),
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A caller change refused (an existing name, the last admin).
    #[error(transparent)]
    Caller(#[from] crate::callers::AddRefusal),
}

/// Settings of `hcmr serve` given as flags or environment variables, over the file's, each
/// checked like the file's. Its flags are `hcmr serve`'s (clap: the doc of a field is its help).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Overrides {
    /// gRPC listen address (`listen`).
    #[arg(long, env = "HCMR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Checkpoint page address (`http_listen`).
    #[arg(long, env = "HCMR_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Plain-HTTP health port address, GET /healthz and /readyz (`health_listen`).
    #[arg(long, env = "HCMR_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// URL peers use (`endpoint`).
    #[arg(long, env = "HCMR_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Seconds between peer syncs (`sync_interval_secs`).
    #[arg(long, env = "HCMR_SYNC_INTERVAL_SECS")]
    pub sync_interval_secs: Option<u64>,
    /// Longest wait for a peer, seconds (`peer_timeout_secs`).
    #[arg(long, env = "HCMR_PEER_TIMEOUT_SECS")]
    pub peer_timeout_secs: Option<u64>,
    /// Tolerated clock difference for iat, seconds (`policy.clock_skew_secs`).
    #[arg(long, env = "HCMR_CLOCK_SKEW_SECS")]
    pub clock_skew_secs: Option<u64>,
}

/// Local policy settings, all in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Tolerated clock difference when checking `iat`.
    pub clock_skew_secs: u64,
    /// Oldest own-province code accepted.
    pub own_max_code_age_secs: u64,
    /// Code lifetime used when an issue request gives 0.
    pub default_code_lifetime_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let p = crate::trust::Policy::default();
        PolicyConfig {
            clock_skew_secs: p.clock_skew_secs,
            own_max_code_age_secs: p.own_max_code_age_secs,
            default_code_lifetime_secs: 300,
        }
    }
}

pub(super) fn default_sync_interval() -> u64 {
    30
}

pub(super) fn default_peer_timeout() -> u64 {
    10
}

/// TLS settings. Relative paths are resolved against the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The node certificate (PEM), with the node binding extension (see [`crate::tls`]).
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8 PEM, mode 0600; encrypted when a passphrase is configured).
    pub key_file: PathBuf,
}

/// Limits every call passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest gRPC request message, in bytes (1024 to 16 MiB).
    pub max_request_bytes: usize,
    /// Calls served at once, node-wide; more get RESOURCE_EXHAUSTED at once.
    pub max_concurrent_requests: usize,
    /// Sustained calls per second per caller (token bucket).
    pub caller_requests_per_sec: u32,
    /// Calls a caller may make at once after a quiet period.
    pub caller_burst: u32,
    /// Longest a call may run, in seconds (1 to 600): until its answer starts. A streamed
    /// answer runs on past it (a GetFeed watch ends after 300 s, a FollowState stream when its
    /// replica is removed or the node stops).
    pub request_timeout_secs: u64,
    /// Calls in flight (their request body being read, or running) per caller token, per peer
    /// province (node certificate), so no one caller takes the node-wide limit; more get
    /// RESOURCE_EXHAUSTED at once.
    pub max_concurrent_per_caller: usize,
    /// Calls in flight per remote IP address, whoever the caller claims to be; more get
    /// RESOURCE_EXHAUSTED at once.
    pub max_concurrent_per_address: usize,
    /// Longest the request body of a call may take to arrive, in seconds (1 to 60, under
    /// `request_timeout_secs`). The node-wide slot is taken only once the body is in.
    pub body_timeout_secs: u64,
    /// TLS connections open at once on all the node's ports (gRPC, page, metrics); more are
    /// closed at once and counted. Lowered at start to stay 256 under the open-files limit
    /// (`ulimit -n`).
    pub max_connections: usize,
    /// TLS connections open at once from one IP address; more are closed at once and counted.
    pub max_connections_per_address: usize,
    /// A connection with no call in flight for this long (since it was accepted or its last
    /// call ended) is closed, in seconds (1 to 3600). It bounds idle connections and requests
    /// whose headers never finish (HTTP/1 and HTTP/2 alike).
    pub idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_bytes: 64 * 1024,
            max_concurrent_requests: 512,
            caller_requests_per_sec: 200,
            caller_burst: 400,
            request_timeout_secs: 30,
            max_concurrent_per_caller: 64,
            max_concurrent_per_address: 256,
            body_timeout_secs: 5,
            max_connections: 4096,
            max_connections_per_address: 64,
            idle_timeout_secs: 60,
        }
    }
}

/// How long the node keeps its logs, in days (of 86,400 s). China's Cybersecurity Law (2016,
/// art. 21) asks network operators to keep network logs at least six months, hence the
/// defaults of 180 days for the audit and access logs; PIPL asks for no longer than needed.
/// The issued-code log (keyed subject hash, times and status of each issued code) is needed
/// only while a code can still be revoked by its cti, so it is kept a few days past expiry.
/// Trip data (trips at their origin with their sealed versions, check reports and handover;
/// arrivals at the destination; exposure notices; trip records given up on) is kept 28 days
/// after the planned arrival or receipt, whichever is later: two incubation periods, the time
/// a trace may still need it (docs/tracing.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Verification audit records, days after their time (1 to 3650).
    pub audit_days: u32,
    /// Refused-call records, days after their time (1 to 3650).
    pub access_days: u32,
    /// Issued-code log entries, days after the code expired (0 to 3650).
    pub issued_days_after_expiry: u32,
    /// Trip data, days after the planned arrival or receipt, whichever is later (1 to 3650).
    pub trip_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            audit_days: 180,
            access_days: 180,
            issued_days_after_expiry: 7,
            trip_days: 28,
        }
    }
}

/// A node's configuration. Relative paths are resolved against the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The node's province, GB/T 2260 (checked at load).
    pub province: String,
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Address of the checkpoint web page (HTTP); `None`: no page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`; no token, so a management
    /// address); `None`: no endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address of the health port: plain HTTP even on a TLS node (it carries only a status,
    /// for the kubelet's httpGet probes and a load balancer's checks), `GET /healthz` (200
    /// while the node serves, 503 before and once it drains) and `GET /readyz` (200 while it
    /// should take verifications, else 503 with the reason); `None`: no health port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_listen: Option<SocketAddr>,
    /// URL peers use to reach this node; `None`: `http://` + the bound address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// sled database folder.
    pub data_dir: PathBuf,
    /// Ed25519 key file (PKCS#8 PEM). Empty (absent) on a verify replica, which holds no key.
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub key_file: PathBuf,
    /// Subject-hash key file: 64 hex digits, or PKCS#8 PEM, encrypted when a passphrase is
    /// configured ([`crate::keyfile::write_subject_key`]). Empty (absent) on a verify replica.
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub subject_key_file: PathBuf,
    /// How often to pull every peer's trust feed and agreement state, in seconds (1 to 86400).
    #[serde(default = "default_sync_interval")]
    pub sync_interval_secs: u64,
    /// Longest wait for a peer node, in seconds (1 to 300): TCP connect, TLS handshake, and each
    /// answer; a whole sync of one peer gets twice this.
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout_secs: u64,
    /// Environment variable holding the passphrase of the encrypted key files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase_env: Option<String>,
    /// File holding the passphrase of the encrypted key files (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase_file: Option<PathBuf>,
    /// The offset from UTC in which times are shown to people (the card, the checkpoint page,
    /// the CLI with `--dir`): `+08:00` (Beijing time) by default. A bad value is refused naming
    /// `display_utc_offset`. The API, stored records and logs stay UTC.
    #[serde(
        default,
        skip_serializing_if = "crate::display::DisplayOffset::is_default"
    )]
    pub display_utc_offset: crate::display::DisplayOffset,
    /// TLS on every listener and mutual TLS with peers; `None`: plain text (loopback only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// The settings as the file has them, before `serve`'s flags and environment variables
    /// ([`Config::apply_overrides`]): what a backup keeps, so that a one-off flag does not become
    /// the restored node's setting. `None`: nothing was overridden.
    #[serde(skip)]
    pub file_settings: Option<Box<Config>>,
    /// Limits every call passes.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Local policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// How long logs are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Present on a verify replica: the primary it follows (docs/deploy.md). Such a node holds
    /// no signing or subject key (`key_file` and `subject_key_file` are absent) and needs
    /// `[tls]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaConfig>,
}

fn path_is_empty(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

/// A verify replica's settings (`[replica]`), written by `hcmr init --replica-of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// The primary's URL (`https://...`), which the replica follows and names in refusals.
    pub primary: String,
    /// The name this replica was enrolled under at the primary (1 to 64 of A-Z a-z 0-9 . _ -).
    pub name: String,
    /// Longest the replica may go without hearing from its primary before it says NOT_SERVING,
    /// in seconds (2 to 86400).
    #[serde(default = "default_max_lag")]
    pub max_lag_secs: u64,
}

pub(super) fn default_max_lag() -> u64 {
    30
}

impl Config {
    /// Reads and checks a config file, resolving relative paths against its folder.
    ///
    /// # Errors
    /// [`ConfigError::Io`], [`ConfigError::Invalid`] naming the setting, or
    /// [`ConfigError::Province`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and checks the TOML text of a config file that is (or will be) at `path`,
    /// resolving relative paths against its folder, as [`Config::load`] does.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting and `path`, or [`ConfigError::Province`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            detail: misplaced_top_level_key(text).unwrap_or_else(|| e.to_string()),
        })?;
        c.province()?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut paths = vec![&mut c.data_dir];
        for p in [&mut c.key_file, &mut c.subject_key_file] {
            if !path_is_empty(p) {
                paths.push(p);
            }
        }
        if let Some(t) = c.tls.as_mut() {
            paths.push(&mut t.cert_file);
            paths.push(&mut t.key_file);
        }
        if let Some(f) = c.key_passphrase_file.as_mut() {
            paths.push(f);
        }
        for p in paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        c.validate(&path.display().to_string())?;
        Ok(c)
    }

    /// Checks every setting; errors name the setting and `source` (the file, or the flag or
    /// environment variable that overrode it).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] or [`ConfigError::Province`].
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        let c = self;
        c.province()?;
        let invalid = |detail: String| ConfigError::Invalid {
            path: source.to_string(),
            detail,
        };
        let scheme = if c.tls.is_some() {
            "https://"
        } else {
            "http://"
        };
        // Two listeners cannot share an address: the node would fail to bind the second.
        let listeners = [
            ("listen", Some(c.listen)),
            ("http_listen", c.http_listen),
            ("metrics_listen", c.metrics_listen),
            ("health_listen", c.health_listen),
        ];
        for (i, (a, x)) in listeners.iter().enumerate() {
            for (b, y) in &listeners[i + 1..] {
                if let (Some(x), Some(y)) = (x, y) {
                    if x == y && x.port() != 0 {
                        return Err(invalid(format!(
                            "{b}: {y} is also {a}'s address: give each listener its own port"
                        )));
                    }
                }
            }
        }
        if let Some(e) = &c.endpoint {
            // A URL a peer can dial (peers refuse anything else as proposer_endpoint): no
            // control, bidi or other non-URL characters that would reach logs and terminals.
            if e.parse::<http::Uri>().map_or(true, |u| u.host().is_none()) {
                return Err(invalid(format!(
                    "endpoint: {e:?} is not a URL such as https://hcmr.sc.example:7510"
                )));
            }
            if !e.starts_with(scheme) {
                return Err(invalid(format!(
                    "endpoint: {e:?} must start with {scheme} ({})",
                    if c.tls.is_some() {
                        "the node serves TLS"
                    } else {
                        "there is no [tls] section, so the node serves plain text"
                    }
                )));
            }
        }
        // The health port is left out: it is plain HTTP on every node and carries no data.
        if c.tls.is_none() {
            for (name, addr) in [
                ("listen", Some(c.listen)),
                ("http_listen", c.http_listen),
                ("metrics_listen", c.metrics_listen),
            ] {
                if let Some(a) = addr {
                    if !a.ip().is_loopback() {
                        return Err(invalid(format!(
                            "{name}: {a} is not a loopback address, and without a [tls] section the node would serve plain text to the network; add [tls] (hcmr init writes one) or listen on 127.0.0.1"
                        )));
                    }
                }
            }
        }
        match &c.replica {
            None => {
                if path_is_empty(&c.key_file) || path_is_empty(&c.subject_key_file) {
                    return Err(invalid(
                        "key_file and subject_key_file are required (only a verify replica, with a [replica] section, has neither)".into(),
                    ));
                }
            }
            Some(r) => {
                if !path_is_empty(&c.key_file) || !path_is_empty(&c.subject_key_file) {
                    return Err(invalid(
                        "replica: a verify replica holds no signing or subject key: remove key_file and subject_key_file".into(),
                    ));
                }
                if c.tls.is_none() {
                    return Err(invalid(
                        "replica: a verify replica needs a [tls] section (its primary knows it by its enrolled certificate)".into(),
                    ));
                }
                if !r.primary.starts_with("https://")
                    || r.primary
                        .parse::<http::Uri>()
                        .map_or(true, |u| u.host().is_none())
                {
                    return Err(invalid(format!(
                        "replica.primary: {:?} is not a URL such as https://hcmr.sc.example:7510",
                        r.primary
                    )));
                }
                crate::callers::check_name(&r.name)
                    .map_err(|e| invalid(format!("replica.name: {e}")))?;
                if !(2..=86_400).contains(&r.max_lag_secs) {
                    return Err(invalid(format!(
                        "replica.max_lag_secs: {} is outside 2 to 86400 seconds",
                        r.max_lag_secs
                    )));
                }
            }
        }
        if !(1..=300).contains(&c.peer_timeout_secs) {
            return Err(invalid(format!(
                "peer_timeout_secs: {} is outside 1 to 300 seconds",
                c.peer_timeout_secs
            )));
        }
        let l = &c.limits;
        if !(1024..=16 * 1024 * 1024).contains(&l.max_request_bytes) {
            return Err(invalid(format!(
                "limits.max_request_bytes: {} is outside 1024 to 16777216",
                l.max_request_bytes
            )));
        }
        if l.max_concurrent_requests == 0
            || l.caller_requests_per_sec == 0
            || l.caller_burst == 0
            || l.max_concurrent_per_caller == 0
            || l.max_concurrent_per_address == 0
            || l.max_connections == 0
            || l.max_connections_per_address == 0
        {
            return Err(invalid(
                "limits: max_concurrent_requests, max_concurrent_per_caller, max_concurrent_per_address, max_connections, max_connections_per_address, caller_requests_per_sec and caller_burst must be positive".into(),
            ));
        }
        if !(1..=600).contains(&l.request_timeout_secs) {
            return Err(invalid(format!(
                "limits.request_timeout_secs: {} is outside 1 to 600 seconds",
                l.request_timeout_secs
            )));
        }
        if !(1..=3600).contains(&l.idle_timeout_secs) {
            return Err(invalid(format!(
                "limits.idle_timeout_secs: {} is outside 1 to 3600 seconds",
                l.idle_timeout_secs
            )));
        }
        if !(1..=60).contains(&l.body_timeout_secs) || l.body_timeout_secs >= l.request_timeout_secs
        {
            return Err(invalid(format!(
                "limits.body_timeout_secs: {} is outside 1 to 60 seconds or not under limits.request_timeout_secs ({})",
                l.body_timeout_secs, l.request_timeout_secs
            )));
        }
        if !(1..=86_400).contains(&c.sync_interval_secs) {
            return Err(ConfigError::Invalid {
                path: source.to_string(),
                detail: format!(
                    "sync_interval_secs: {} is outside 1 to 86400 seconds",
                    c.sync_interval_secs
                ),
            });
        }
        let r = &c.retention;
        for (name, days, least) in [
            ("audit_days", r.audit_days, 1),
            ("access_days", r.access_days, 1),
            ("issued_days_after_expiry", r.issued_days_after_expiry, 0),
            ("trip_days", r.trip_days, 1),
        ] {
            if !(least..=3650).contains(&days) {
                return Err(invalid(format!(
                    "retention.{name}: {days} is outside {least} to 3650 days"
                )));
            }
        }
        let p = &c.policy;
        if p.clock_skew_secs > 86_400 {
            return Err(ConfigError::Invalid {
                path: source.to_string(),
                detail: format!(
                    "policy.clock_skew_secs: {} is over one day (86400); such a skew would accept codes from far in the future",
                    p.clock_skew_secs
                ),
            });
        }
        if p.default_code_lifetime_secs == 0 || p.own_max_code_age_secs == 0 {
            return Err(ConfigError::Invalid {
                path: source.to_string(),
                detail:
                    "policy: default_code_lifetime_secs and own_max_code_age_secs must be positive"
                        .into(),
            });
        }
        Ok(())
    }

    /// Applies settings given as flags or environment variables over those of the file, then
    /// checks the result; errors name the override.
    ///
    /// # Errors
    /// As [`Config::validate`].
    pub fn apply_overrides(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        let mut file = self
            .file_settings
            .take()
            .map_or_else(|| self.clone(), |f| *f);
        file.file_settings = None;
        let mut from = Vec::new();
        if let Some(v) = o.listen {
            self.listen = v;
            from.push("--listen/HCMR_LISTEN");
        }
        if let Some(v) = o.http_listen {
            self.http_listen = Some(v);
            from.push("--http-listen/HCMR_HTTP_LISTEN");
        }
        if let Some(v) = o.health_listen {
            self.health_listen = Some(v);
            from.push("--health-listen/HCMR_HEALTH_LISTEN");
        }
        if let Some(v) = &o.endpoint {
            self.endpoint = Some(v.clone());
            from.push("--endpoint/HCMR_ENDPOINT");
        }
        if let Some(v) = o.sync_interval_secs {
            self.sync_interval_secs = v;
            from.push("--sync-interval-secs/HCMR_SYNC_INTERVAL_SECS");
        }
        if let Some(v) = o.peer_timeout_secs {
            self.peer_timeout_secs = v;
            from.push("--peer-timeout-secs/HCMR_PEER_TIMEOUT_SECS");
        }
        if let Some(v) = o.clock_skew_secs {
            self.policy.clock_skew_secs = v;
            from.push("--clock-skew-secs/HCMR_CLOCK_SKEW_SECS");
        }
        if from.is_empty() {
            return Ok(());
        }
        self.file_settings = Some(Box::new(file));
        self.validate(&format!("settings from {}", from.join(", ")))
    }

    /// The configured province.
    ///
    /// # Errors
    /// [`ConfigError::Province`].
    pub fn province(&self) -> Result<Province, ConfigError> {
        Ok(self.province.parse()?)
    }

    /// How the key files are protected: the passphrase source of these settings, if any.
    ///
    /// # Errors
    /// [`ConfigError::Key`] when the variable or file is configured but unusable.
    pub fn key_protection(&self) -> Result<crate::keyfile::KeyProtection, ConfigError> {
        Ok(crate::keyfile::KeyProtection::from_sources(
            self.key_passphrase_env.as_deref(),
            self.key_passphrase_file.as_deref(),
        )?)
    }

    /// The verification policy of these settings.
    pub fn trust_policy(&self) -> crate::trust::Policy {
        crate::trust::Policy {
            clock_skew_secs: self.policy.clock_skew_secs,
            own_max_code_age_secs: self.policy.own_max_code_age_secs,
        }
    }
}
