//! The node's signing keys while it serves: rotation (the new key written beside the old
//! one, named in the own feed, then renamed into place), withdrawal, and re-certifying the TLS
//! certificate after either.

use crate::lock::Locked;
use std::path::{Path, PathBuf};

use super::convert;
use super::error::ApiError;
use super::own_feed::OwnFeed;
use super::{NodeState, TlsState};
use crate::clock::Clock;
use crate::feed::{proof_of_possession, Statement};
use crate::keyfile::NodeKeyFile as _;
use crate::keys::{Kid, NodeKey};
use crate::proto;
use crate::province::Province;

/// Where a rotation writes the new key before the feed names it.
pub(crate) fn pending_key_path(key_file: &Path) -> PathBuf {
    let mut p = key_file.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Moves the old key file aside (`<key_file>.<old kid>.retired`) and the pending one into place.
pub(crate) fn install_key_file(key_file: &Path, pending: &Path, old: Kid) -> std::io::Result<()> {
    let mut retired = key_file.as_os_str().to_owned();
    retired.push(format!(".{old}.retired"));
    std::fs::rename(key_file, PathBuf::from(retired))?;
    std::fs::rename(pending, key_file)?;
    if let Some(dir) = key_file.parent() {
        // Make the renames durable.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What the key workflows need: the signing key and its file (and how key files are
/// protected), the TLS identity re-certified after a change, and the own feed that records it.
pub(crate) struct KeyAdmin<'a> {
    province: Province,
    key: &'a crate::node::keyslot::SigningKey,
    key_file: &'a Path,
    key_protection: &'a crate::keyfile::KeyProtection,
    tls: Option<&'a TlsState>,
    clock: &'a Clock,
    own_feed: OwnFeed<'a>,
}

impl NodeState {
    /// The key workflows' part of the node.
    pub(crate) fn key_admin(&self) -> KeyAdmin<'_> {
        KeyAdmin {
            province: self.province,
            key: &self.key,
            key_file: &self.key_file,
            key_protection: &self.key_protection,
            tls: self.tls.as_ref(),
            clock: &self.clock,
            own_feed: self.own_feed(),
        }
    }
}

impl KeyAdmin<'_> {
    /// Re-certifies the node certificate after a key change: adds the current key's
    /// certification, writes the file and serves the new certificate.
    /// A failure is logged, not returned: the change itself is recorded, and the next start
    /// re-certifies.
    pub(crate) fn refresh_tls_certificate(&self) {
        let Some(tls) = self.tls else {
            return;
        };
        let now = i64::try_from(self.clock.now().secs()).unwrap_or(i64::MAX);
        let Some(key) = self.key.get() else {
            return;
        };
        let mut identity = tls.identity.locked();
        let result = identity.recertified(&key, now).and_then(|renewed| {
            renewed.save(&tls.cert_file, None, self.key_protection)?;
            let certified = renewed.certified_key()?;
            Ok((renewed, certified))
        });
        match result {
            Ok((renewed, certified)) => {
                *identity = renewed;
                tls.cert.0.store(certified);
                tracing::info!(file = %tls.cert_file.display(), "node certificate re-certified");
            }
            Err(e) => {
                tracing::error!(error = %e, "node certificate could not be re-certified; restart the node to retry")
            }
        }
    }

    /// Makes a new signing key; the old key signs the rotation statement.
    pub(crate) async fn rotate_key(&self) -> Result<proto::RotateKeyResponse, ApiError> {
        let held = self.own_feed.lock().await;
        let old = self.key.load_full()?;
        let new = NodeKey::generate();
        let pending = pending_key_path(self.key_file);
        if pending.exists() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} exists: a rotation is half done; restart the node to complete it",
                pending.display()
            )));
        }
        new.write_pem_protected(&pending, self.key_protection)
            .map_err(|e| ApiError::FailedPrecondition(format!("writing the new key: {e}")))?;
        let statement = Statement::KeyRotation {
            key: new.public(),
            pop: proof_of_possession(self.province, &new),
        };
        let entry = match self.own_feed.append_own(&held, statement, &old).await {
            Ok(e) => e,
            Err(e) => {
                let _ = std::fs::remove_file(&pending);
                return Err(e);
            }
        };
        install_key_file(self.key_file, &pending, old.kid()).map_err(|e| {
            ApiError::FailedPrecondition(format!(
                "the rotation is recorded but the key file could not be replaced ({e}); restart the node to complete it"
            ))
        })?;
        let public = new.public();
        self.key.store(std::sync::Arc::new(new));
        tracing::info!(old = %old.kid(), new = %public.kid, seq = entry.seq(), "key rotated");
        self.refresh_tls_certificate();
        Ok(proto::RotateKeyResponse {
            new_key: Some(convert::key_info(&public)),
            retired_kid: old.kid().0.to_vec(),
            seq: entry.seq(),
        })
    }

    /// Withdraws one of this node's keys at once (not the current one).
    pub(crate) async fn withdraw_key(
        &self,
        kid: &str,
    ) -> Result<proto::WithdrawKeyResponse, ApiError> {
        let kid =
            Kid::from_hex(kid).ok_or_else(|| ApiError::invalid("kid", "must be 16 hex digits"))?;
        let held = self.own_feed.lock().await;
        let current = self.key.load_full()?;
        if current.kid() == kid {
            return Err(ApiError::FailedPrecondition(
                "that is the current signing key: rotate first, then withdraw it".into(),
            ));
        }
        let state = self.own_feed.state();
        let target = state
            .keys()
            .iter()
            .find(|k| k.key.kid == kid && k.withdrawn_at.is_none())
            .map(|k| k.key)
            .ok_or_else(|| {
                ApiError::NotFound(format!("no key {kid} of this node that is not withdrawn"))
            })?;
        let entry = self
            .own_feed
            .append_own(&held, Statement::KeyWithdrawal { key: target }, &current)
            .await?;
        tracing::warn!(%kid, seq = entry.seq(), "key withdrawn");
        Ok(proto::WithdrawKeyResponse { seq: entry.seq() })
    }
}
