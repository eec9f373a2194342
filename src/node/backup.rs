//! Backup and restore of a node (the format is [`crate::backup`]).
//!
//! `NodeBackup::export_backup` writes a backup while the node serves (the admin RPC
//! `OperatorService/ExportBackup`, `hcmr backup`); [`restore`] makes a new node folder from one,
//! offline (`hcmr restore`).

use crate::UnixTime;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::Status;
use zeroize::Zeroizing;

use super::config::{Config, TlsConfig, CONFIG_FILE};
use super::error::ApiError;
use super::NodeState;
use crate::backup::{file_kind, BackupError, BackupFile, Item, Summary, Writer};
use crate::proto;
use crate::province::Province;
use crate::store::Store;

/// Bytes per `BackupChunk` of the RPC.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Records imported per sled batch on restore.
const IMPORT_BATCH: usize = 4096;

/// The configuration as a backup holds it: the file's settings (not `serve`'s one-off flags and
/// environment variables), with the paths of the layout `hcmr init` makes, so that the restored
/// folder is self-contained.
fn backup_config(config: &Config, created: UnixTime) -> Result<String, ApiError> {
    let mut c = config.file_settings.as_deref().unwrap_or(config).clone();
    c.data_dir = "db".into();
    c.key_file = "node.key".into();
    c.subject_key_file = "subject.key".into();
    if c.tls.is_some() {
        c.tls = Some(TlsConfig {
            cert_file: "tls/node.crt".into(),
            key_file: "tls/node.key".into(),
        });
    }
    let body = toml::to_string_pretty(&c)
        .map_err(|e| ApiError::FailedPrecondition(format!("serializing the configuration: {e}")))?;
    let province = config
        .province()
        .map_err(|e| ApiError::FailedPrecondition(e.to_string()))?;
    Ok(format!(
        "# hcmr node of {} ({}): its hcmr.toml settings, from a backup taken {}.\n{body}",
        province.name_en(),
        province,
        created
    ))
}

fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| {
        ApiError::FailedPrecondition(format!("backup: reading {}: {e}", path.display()))
    })
}

fn backup_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::FailedPrecondition(format!("backup: {e}"))
}

/// What a backup needs: the configuration (the files it names), the province, the store, and
/// the feed lock that keeps key rotations out while it is taken.
pub(crate) struct NodeBackup<'a> {
    province: Province,
    config: &'a Config,
    store: &'a Store,
    feed_lock: &'a tokio::sync::Mutex<()>,
}

impl NodeState {
    /// The backup workflow's part of the node.
    pub(crate) fn backup(&self) -> NodeBackup<'_> {
        NodeBackup {
            province: self.province,
            config: &self.config,
            store: &self.store,
            feed_lock: &self.feed_lock,
        }
    }

    /// The stream of the ExportBackup RPC: the backup is written on a task (so a large one is not
    /// cut by the request timeout, which ends at the response headers), then sent in chunks of
    /// [`CHUNK`] bytes; a failure ends the stream with its status. It takes the node, not a
    /// [`NodeBackup`], because the task outlives the call.
    pub(crate) fn backup_stream(
        self: Arc<Self>,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<proto::BackupChunk, Status>> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut file = match self.backup().export_backup().await {
                Ok((file, _)) => file,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            let sent = tokio::task::spawn_blocking(move || loop {
                let mut data = vec![0u8; CHUNK];
                let n = match file.read(&mut data) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(backup_failed(e).into()));
                        return;
                    }
                };
                data.truncate(n);
                if tx.blocking_send(Ok(proto::BackupChunk { data })).is_err() {
                    // The caller went away.
                    return;
                }
            })
            .await;
            if let Err(e) = sent {
                tracing::error!(error = %e, "backup stream failed");
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

impl NodeBackup<'_> {
    /// The node folder's files as a backup holds them.
    fn backup_files(&self, created: UnixTime) -> Result<Vec<BackupFile>, ApiError> {
        let kind = |name| file_kind(name).expect("a file of crate::backup::FILES");
        let c = &self.config;
        let mut files = vec![
            BackupFile {
                kind: kind("hcmr.toml"),
                data: Zeroizing::new(backup_config(c, created)?.into_bytes()),
            },
            BackupFile {
                kind: kind("node.key"),
                data: read_file(&c.key_file)?,
            },
        ];
        let pending = super::keys::pending_key_path(&c.key_file);
        if pending.exists() {
            files.push(BackupFile {
                kind: kind("node.key.new"),
                data: read_file(&pending)?,
            });
        }
        files.push(BackupFile {
            kind: kind("subject.key"),
            data: read_file(&c.subject_key_file)?,
        });
        if let Some(t) = &c.tls {
            files.push(BackupFile {
                kind: kind("tls/node.crt"),
                data: read_file(&t.cert_file)?,
            });
            files.push(BackupFile {
                kind: kind("tls/node.key"),
                data: read_file(&t.key_file)?,
            });
        }
        Ok(files)
    }

    /// Writes a backup of this node to an anonymous temporary file (mode 0600, in the node's
    /// folder when it can) and returns it rewound, with its size. Consistent while the node
    /// serves: the feed lock keeps key rotations out (the key files and the feed agree), and
    /// [`Store::export`] copies the database while no write runs.
    pub(crate) async fn export_backup(&self) -> Result<(std::fs::File, u64), ApiError> {
        let _feed = self.feed_lock.lock().await;
        let created = crate::unix_now();
        let files = self.backup_files(created)?;
        let folder = self
            .config
            .data_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let tmp = tempfile::tempfile_in(&folder)
            .or_else(|_| tempfile::tempfile())
            .map_err(backup_failed)?;
        let writer = Writer::new(
            std::io::BufWriter::with_capacity(1 << 16, tmp),
            self.province,
            created,
            files,
        );
        let writer = self
            .store
            .export(writer, |w, item| w.item(item).map_err(BackupError::from_io))
            .await
            .map_err(|e| match e {
                BackupError::Store(s) => ApiError::Store(s),
                other => backup_failed(other),
            })?;
        let (out, records, size) = writer.finish().map_err(backup_failed)?;
        let mut file = out.into_inner().map_err(|e| backup_failed(e.error()))?;
        file.seek(SeekFrom::Start(0)).map_err(backup_failed)?;
        tracing::info!(records, bytes = size, "backup exported");
        Ok((file, size))
    }
}

impl BackupError {
    /// An I/O error of the temporary backup file.
    fn from_io(source: std::io::Error) -> BackupError {
        BackupError::Io {
            path: "temporary backup file".into(),
            source,
        }
    }
}

/// Restores the backup at `from` into the new folder `data_dir` (which must not exist), offline:
/// checks the format, version and checksum first, then writes the files and imports every tree
/// into a new database `data_dir/db` in a staging folder beside `data_dir`, opens the restored
/// database and checks its province against the backup's header and configuration, and only
/// then renames the staging folder to `data_dir`. On any failure nothing is left at
/// `data_dir`.
///
/// # Errors
/// [`BackupError::Exists`], [`BackupError::NotABackup`], [`BackupError::Version`],
/// [`BackupError::Damaged`] naming what is wrong, [`BackupError::Mismatch`], I/O and store
/// errors.
pub async fn restore(from: &Path, data_dir: &Path) -> Result<Summary, BackupError> {
    if std::fs::symlink_metadata(data_dir).is_ok() {
        return Err(BackupError::Exists(data_dir.display().to_string()));
    }
    // Format, version and checksum, before anything is created.
    crate::backup::check(from)?;
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|source| BackupError::Io {
        path: parent.display().to_string(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".hcmr-restore-")
        .tempdir_in(&parent)
        .map_err(|source| BackupError::Io {
            path: parent.display().to_string(),
            source,
        })?;
    let root = staging.path().to_path_buf();
    let summary = {
        let store = Store::open(&root.join("db"))?;
        let mut tree: Vec<u8> = Vec::new();
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let summary = crate::backup::read(from, |item| {
            match item {
                Item::File(kind, data) => write_restored_file(&root, kind, &data)?,
                Item::Tree(name) => {
                    if !batch.is_empty() {
                        store.import(&tree, batch.drain(..))?;
                    }
                    tree = name.to_vec();
                    // Created even when it holds no record.
                    store.import(&tree, [])?;
                }
                Item::Record(k, v) => {
                    batch.push((k, v));
                    if batch.len() >= IMPORT_BATCH {
                        store.import(&tree, batch.drain(..))?;
                    }
                }
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            store.import(&tree, batch.drain(..))?;
        }
        store.flush().await?;
        let stored = store.province()?;
        if stored != summary.province {
            return Err(BackupError::Mismatch(format!(
                "the header says province {} but the database belongs to {stored}",
                summary.province
            )));
        }
        summary
    };
    let config =
        Config::load(&root.join(CONFIG_FILE)).map_err(|e| BackupError::Config(e.to_string()))?;
    let configured = config
        .province()
        .map_err(|e| BackupError::Config(e.to_string()))?;
    if configured != summary.province {
        return Err(BackupError::Mismatch(format!(
            "the header says province {} but hcmr.toml says {configured}",
            summary.province
        )));
    }
    let mut paths = vec![
        ("data_dir", &config.data_dir, "db"),
        ("key_file", &config.key_file, "node.key"),
        ("subject_key_file", &config.subject_key_file, "subject.key"),
    ];
    if let Some(t) = &config.tls {
        paths.push(("tls.cert_file", &t.cert_file, "tls/node.crt"));
        paths.push(("tls.key_file", &t.key_file, "tls/node.key"));
    }
    for (setting, path, expected) in paths {
        if *path != root.join(expected) {
            return Err(BackupError::Config(format!(
                "{setting} is {}, not {expected} in the node folder",
                path.display()
            )));
        }
        if !path.exists() {
            return Err(BackupError::Config(format!(
                "{setting}: the backup holds no {expected}"
            )));
        }
    }
    if std::fs::symlink_metadata(data_dir).is_ok() {
        return Err(BackupError::Exists(data_dir.display().to_string()));
    }
    let root = staging.keep();
    std::fs::rename(&root, data_dir).map_err(|source| {
        let _ = std::fs::remove_dir_all(&root);
        BackupError::Io {
            path: data_dir.display().to_string(),
            source,
        }
    })?;
    // Make the rename durable.
    if let Ok(d) = std::fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(summary)
}

/// Writes one file of a backup into the staging folder (secret files mode 0600).
fn write_restored_file(
    root: &Path,
    kind: crate::backup::FileKind,
    data: &[u8],
) -> Result<(), BackupError> {
    let path = root.join(kind.name);
    let io = |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if kind.secret {
        crate::fsutil::write_secret_file(&path, data).map_err(io)
    } else {
        std::fs::write(&path, data).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::config::Overrides;

    /// A backup keeps the file's settings: `serve --listen ... --sync-interval-secs 7` ran the
    /// node, and the restored node must not take those one-off flags as its settings.
    #[test]
    fn a_backup_keeps_the_file_settings_not_the_flags_serve_ran_with() {
        let text = "province = \"510000\"\nlisten = \"127.0.0.1:7510\"\ndata_dir = \"db\"\n\
                    key_file = \"node.key\"\nsubject_key_file = \"subject.key\"\n\
                    sync_interval_secs = 30\n";
        let mut c = Config::from_toml(text, std::path::Path::new("/srv/sc/hcmr.toml")).unwrap();
        c.apply_overrides(&Overrides {
            listen: Some("127.0.0.1:7331".parse().unwrap()),
            sync_interval_secs: Some(7),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.sync_interval_secs, 7, "the node runs with the flag");
        // Applying more overrides keeps the file's settings, not the first overrides'.
        c.apply_overrides(&Overrides {
            peer_timeout_secs: Some(20),
            ..Overrides::default()
        })
        .unwrap();
        let kept = backup_config(&c, UnixTime::from_secs(1_796_000_000)).unwrap();
        let restored: Config = toml::from_str(&kept).unwrap();
        assert_eq!(restored.listen, "127.0.0.1:7510".parse().unwrap());
        assert_eq!(restored.sync_interval_secs, 30);
        assert_eq!(
            restored.peer_timeout_secs,
            c.file_settings.unwrap().peer_timeout_secs
        );
        assert_ne!(restored.peer_timeout_secs, 20);
        assert!(kept.starts_with("# hcmr node of Sichuan (510000): its hcmr.toml settings"));
    }
}
