//! Node configuration (a TOML file written by `hcmr init`) and node creation.
//!
//! ```toml
//! province = "510000"              # GB/T 2260 province-level code
//! listen = "127.0.0.1:7510"        # gRPC listen address (port 0: any free port)
//! http_listen = "127.0.0.1:8510"   # optional: the checkpoint web page (plain HTTP)
//! endpoint = "http://127.0.0.1:7510"  # optional: URL peers use; default http://<bound address>
//! data_dir = "db"                  # sled database, relative to this file's folder
//! key_file = "node.key"            # Ed25519 signing key, PKCS#8 PEM, mode 0600
//! subject_key_file = "subject.key" # key of the keyed subject hash, 64 hex digits, mode 0600
//! sync_interval_secs = 30          # how often peers' trust feeds are pulled, seconds
//!
//! [policy]
//! clock_skew_secs = 300            # tolerated clock difference for iat, seconds
//! own_max_code_age_secs = 604800   # oldest own code accepted, seconds
//! default_code_lifetime_secs = 300 # code lifetime when a request gives 0, seconds
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::feed::{FeedEntry, Statement};
use crate::identity::SubjectKey;
use crate::keys::NodeKey;
use crate::province::Province;
use crate::store::Store;

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
    Key(#[from] crate::keys::KeyError),
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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

fn default_sync_interval() -> u64 {
    30
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
    /// URL peers use to reach this node; `None`: `http://` + the bound address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// sled database folder.
    pub data_dir: PathBuf,
    /// Ed25519 key file (PKCS#8 PEM).
    pub key_file: PathBuf,
    /// Subject-hash key file (64 hex digits).
    pub subject_key_file: PathBuf,
    /// How often to pull every peer's trust feed and agreement state, in seconds (1 to 86400).
    #[serde(default = "default_sync_interval")]
    pub sync_interval_secs: u64,
    /// Local policy.
    #[serde(default)]
    pub policy: PolicyConfig,
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
        let mut c: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        c.province()?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.data_dir, &mut c.key_file, &mut c.subject_key_file] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(e) = &c.endpoint {
            if !e.starts_with("http://") {
                return Err(ConfigError::Invalid {
                    path: path.display().to_string(),
                    detail: format!(
                        "endpoint: {e:?} must start with http:// (nodes serve plain-text gRPC; TLS is not available yet)"
                    ),
                });
            }
        }
        if !(1..=86_400).contains(&c.sync_interval_secs) {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                detail: format!(
                    "sync_interval_secs: {} is outside 1 to 86400 seconds",
                    c.sync_interval_secs
                ),
            });
        }
        let p = &c.policy;
        if p.clock_skew_secs > 86_400 {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                detail: format!(
                    "policy.clock_skew_secs: {} is over one day (86400); such a skew would accept codes from far in the future",
                    p.clock_skew_secs
                ),
            });
        }
        if p.default_code_lifetime_secs == 0 || p.own_max_code_age_secs == 0 {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                detail:
                    "policy: default_code_lifetime_secs and own_max_code_age_secs must be positive"
                        .into(),
            });
        }
        Ok(c)
    }

    /// The configured province.
    ///
    /// # Errors
    /// [`ConfigError::Province`].
    pub fn province(&self) -> Result<Province, ConfigError> {
        Ok(self.province.parse()?)
    }

    /// The verification policy of these settings.
    pub fn trust_policy(&self) -> crate::trust::Policy {
        crate::trust::Policy {
            clock_skew_secs: self.policy.clock_skew_secs,
            own_max_code_age_secs: self.policy.own_max_code_age_secs,
        }
    }
}

/// Reads a subject key file (64 hex digits).
///
/// # Errors
/// [`ConfigError::Io`] or [`ConfigError::Invalid`].
pub fn read_subject_key(path: &Path) -> Result<SubjectKey, ConfigError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
        ConfigError::Io {
            path: path.display().to_string(),
            source,
        }
    })?);
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ConfigError::Invalid {
            path: path.display().to_string(),
            detail: "expected 64 hex digits".into(),
        })?;
    Ok(SubjectKey::from_bytes(bytes))
}

/// Creates a node in `dir`: a new Ed25519 key (`node.key`, mode 0600), a subject-hash key
/// (`subject.key`, mode 0600), the sled database (`db/`) holding the province and key metadata,
/// and `hcmr.toml`. Returns the path of the config file.
///
/// # Errors
/// [`ConfigError::Exists`] if `dir` already holds a node; I/O and store errors.
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
/// As [`init`].
pub async fn init_with_page(
    province: Province,
    dir: &Path,
    listen: SocketAddr,
    http_listen: Option<SocketAddr>,
    endpoint: Option<String>,
) -> Result<PathBuf, ConfigError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| ConfigError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config_path = dir.join(CONFIG_FILE);
    for name in [CONFIG_FILE, "node.key", "subject.key", "db"] {
        if dir.join(name).exists() {
            return Err(ConfigError::Exists(dir.join(name).display().to_string()));
        }
    }
    let key = NodeKey::generate();
    key.write_pem(&dir.join("node.key"))?;
    let subject = SubjectKey::generate();
    let hexkey = zeroize::Zeroizing::new(format!("{}\n", hex::encode(subject.as_bytes())));
    crate::fsutil::write_secret_file(&dir.join("subject.key"), hexkey.as_bytes())
        .map_err(io(&dir.join("subject.key")))?;
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
    drop(store);
    let config = Config {
        province: province.to_string(),
        listen,
        http_listen,
        endpoint,
        data_dir: "db".into(),
        key_file: "node.key".into(),
        subject_key_file: "subject.key".into(),
        sync_interval_secs: default_sync_interval(),
        policy: PolicyConfig::default(),
    };
    let text = format!(
        "# hcmr node of {} ({}), written by `hcmr init`.\n{}",
        province.name_en(),
        province,
        toml::to_string_pretty(&config).expect("a Config always serializes")
    );
    std::fs::write(&config_path, text).map_err(io(&config_path))?;
    Ok(config_path)
}
