//! Trust lifecycle operations of a node: amendments and terminations of agreements, key
//! rotation and withdrawal, revocations, the feed and agreement state peers pull, and offline
//! bundles.

use crate::lock::Locked;
use std::path::{Path, PathBuf};

use super::convert::{self, Standing};
use super::error::ApiError;
use super::{peer, NodeState};
use crate::agreement::{
    AgreementId, ProposalNotice, ProposalOutcome, SignedAgreement, Termination,
};
use crate::feed::{proof_of_possession, FeedEntry, FeedError, Statement};
use crate::identity;
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

/// How a proposal notice fared.
enum Delivery {
    /// The peer took it.
    Taken,
    /// The peer answered with a refusal (or its certificate is not the one expected): sending it
    /// again would not change that.
    Refused,
    /// The peer could not be reached or did not answer: sent again later.
    Unreachable,
}

fn feed_refused(e: FeedError) -> ApiError {
    ApiError::FailedPrecondition(e.to_string())
}

impl NodeState {
    /// An agreement version as operators see it here.
    pub(crate) fn view(&self, a: &SignedAgreement) -> Result<proto::AgreementView, ApiError> {
        let termination = self.store.termination(a.body().id)?;
        let superseded = a
            .body()
            .peer_of(self.province)
            .map(|p| {
                self.trust
                    .load()
                    .agreements_with(p.province)
                    .iter()
                    .any(|t| {
                        t.agreement.body().id == a.body().id
                            && t.agreement.body().version > a.body().version
                    })
            })
            .unwrap_or(false);
        Ok(convert::agreement_view(
            a,
            self.province,
            Standing {
                superseded,
                termination: termination.as_ref(),
                now: self.now(),
            },
        ))
    }

    /// A concluded agreement with `peer` that still matters now: not terminated and with a
    /// direction whose window has not ended.
    pub(crate) fn live_agreement_with(&self, peer: Province) -> Option<AgreementId> {
        let now = self.now();
        self.trust
            .load()
            .agreements_with(peer)
            .iter()
            .find(|t| {
                t.terminated_at(now).is_none()
                    && t.agreement
                        .body()
                        .directions
                        .iter()
                        .any(|d| d.window(now) != crate::agreement::Window::Expired)
            })
            .map(|t| t.agreement.body().id)
    }

    /// The id and next version for amending agreement `amends` with `peer`.
    pub(crate) fn amendment_of(
        &self,
        amends: &str,
        peer: Province,
    ) -> Result<(AgreementId, u32), ApiError> {
        let id = AgreementId::from_hex(amends).map_err(|e| ApiError::invalid("amends", e))?;
        let newest = self
            .store
            .agreement(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no agreement {id}")))?;
        if !newest.is_concluded() {
            return Err(ApiError::FailedPrecondition(
                if newest.body().proposer.province == self.province {
                    format!(
                        "agreement {id} version {} awaits the peer's acceptance: wait for it, or withdraw it (`hcmr agreement withdraw {id}`)",
                        newest.body().version
                    )
                } else {
                    format!(
                        "agreement {id} version {} proposed by {} awaits this node's decision: accept it or reject it (`hcmr agreement reject {id}`)",
                        newest.body().version,
                        newest.body().proposer.province
                    )
                },
            ));
        }
        if newest.body().peer_of(self.province).map(|p| p.province) != Some(peer) {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {id} is not between {} and the peer {peer}",
                self.province
            )));
        }
        if let Some(t) = self.store.termination(id)? {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {id} is terminated by {} from {}; propose a new one once it has ended",
                t.by,
                crate::rfc3339(t.effective_at)
            )));
        }
        Ok((id, newest.body().version + 1))
    }

    /// Signs `statement` as the next own feed entry with `key`, checks it applies, stores it
    /// durably, and rebuilds the trust snapshot. The caller holds `feed_lock`.
    async fn append_own(
        &self,
        _held: &tokio::sync::MutexGuard<'_, ()>,
        statement: Statement,
        key: &NodeKey,
    ) -> Result<FeedEntry, ApiError> {
        let state = self.own_feed.locked().clone();
        let prev = self.store.feed_from(state.last_seq())?.into_iter().next();
        let entry = FeedEntry::sign(self.province, prev.as_ref(), self.now(), statement, key);
        let mut next = (*state).clone();
        next.apply(&entry).map_err(feed_refused)?;
        self.store.append_feed(&entry).await?;
        *self.own_feed.locked() = std::sync::Arc::new(next);
        self.rebuild_trust()?;
        Ok(entry)
    }

    /// Re-certifies the node certificate after a key change: adds the current key's
    /// certification, writes the file and serves the new certificate.
    /// A failure is logged, not returned: the change itself is recorded, and the next start
    /// re-certifies.
    pub(crate) fn refresh_tls_certificate(&self) {
        let Some(tls) = &self.tls else {
            return;
        };
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        let mut identity = tls.identity.locked();
        let result = identity
            .recertified(&self.key.load(), now)
            .and_then(|renewed| {
                renewed.save(&tls.cert_file, None, &self.key_protection)?;
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

    /// Deletes the pending (not concluded) versions of agreement `id`: a proposal a peer made
    /// (`withdraw` false: the operator rejects it) or one this node made (`withdraw` true), and
    /// sends the other party a signed notice (NotifyProposalDropped) so it drops its copy too.
    /// Returns the versions deleted and whether the peer took the notice.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a bad id; NOT_FOUND for an id unknown here; FAILED_PRECONDITION
    /// when nothing of it is pending, or the pending proposal is the other side's (reject what
    /// a peer proposed, withdraw what this node proposed).
    pub(crate) async fn discard_proposal(
        &self,
        id: &str,
        withdraw: bool,
    ) -> Result<(Vec<u32>, bool), ApiError> {
        let id = AgreementId::from_hex(id).map_err(|e| ApiError::invalid("id", e))?;
        let _g = self.agreement_lock.lock().await;
        let all = self.store.agreement_versions(id)?;
        if all.is_empty() {
            return Err(ApiError::NotFound(format!("no agreement {id}")));
        }
        let pending: Vec<SignedAgreement> = all.into_iter().filter(|a| !a.is_concluded()).collect();
        let Some(first) = pending.first() else {
            // A known agreement with nothing pending: refused like accepting one twice.
            return Err(ApiError::FailedPrecondition(if withdraw {
                format!("agreement {id} has no proposal of this node awaiting the peer's acceptance: nothing to withdraw")
            } else {
                format!("agreement {id} has no proposal awaiting this node's acceptance: nothing to reject")
            }));
        };
        let ours = first.body().proposer.province == self.province;
        if ours != withdraw {
            return Err(ApiError::FailedPrecondition(if ours {
                format!("agreement {id} was proposed by this node: withdraw it (`hcmr agreement withdraw {id}`)")
            } else {
                format!(
                    "agreement {id} was proposed by {}: reject it (`hcmr agreement reject {id}`)",
                    first.body().proposer.province
                )
            }));
        }
        let dropped: Vec<&SignedAgreement> = pending
            .iter()
            .filter(|a| (a.body().proposer.province == self.province) == ours)
            .collect();
        let versions: Vec<u32> = dropped.iter().map(|a| a.body().version).collect();
        let newest = dropped[dropped.len() - 1];
        let peer = newest
            .body()
            .peer_of(self.province)
            .map(|p| p.province)
            .expect("a pending proposal here has this node as a party");
        // Where the other party is reached, and the keys its node must be certified by: for a
        // withdrawal the acceptor's keys this node pinned; for a rejection the proposer's keys
        // its proposal pins, at the endpoint it gave.
        let url = if withdraw {
            self.store.peer_endpoint(peer)?
        } else {
            match self.store.proposal_endpoint(id, newest.body().version)? {
                Some(u) => Some(u),
                None => self.store.peer_endpoint(peer)?,
            }
        };
        let peer_keys = newest
            .body()
            .party(peer)
            .map(|p| p.keys.clone())
            .unwrap_or_default();
        self.store.remove_agreement_versions(id, &versions).await?;
        tracing::info!(agreement = %id, ?versions, withdrawn = withdraw, "agreement proposal discarded");
        let outcome = if withdraw {
            ProposalOutcome::Withdrawn
        } else {
            ProposalOutcome::Rejected
        };
        let notice = ProposalNotice::sign(
            id,
            newest.body().version,
            self.province,
            outcome,
            self.now(),
            &self.key.load(),
        );
        let notified = match url {
            None => {
                tracing::warn!(%peer, "no endpoint recorded for the peer: it is not told; its operator drops its copy");
                false
            }
            Some(endpoint) => {
                let n = crate::store::UndeliveredNotice {
                    notice,
                    peer,
                    endpoint,
                    keys: peer_keys,
                };
                match self.send_proposal_notice(&n).await {
                    Delivery::Taken => true,
                    Delivery::Refused => false,
                    Delivery::Unreachable => {
                        // Kept and sent again every sync interval and at `hcmr sync`.
                        self.store.put_undelivered(&n).await?;
                        false
                    }
                }
            }
        };
        Ok((versions, notified))
    }

    /// Sends a proposal notice to its peer once.
    async fn send_proposal_notice(&self, n: &crate::store::UndeliveredNotice) -> Delivery {
        let peer = n.peer;
        let id = n.notice.id;
        let mut client = match peer::connect(
            self,
            "peer endpoint",
            &n.endpoint,
            peer::Expect::Keys(peer, n.keys.clone()),
        )
        .await
        {
            Ok(c) => c,
            Err(ApiError::PeerUnavailable { .. }) => {
                tracing::warn!(%peer, agreement = %id, "peer unreachable; the proposal notice is sent again at the next sync");
                return Delivery::Unreachable;
            }
            Err(e) => {
                tracing::warn!(%peer, agreement = %id, error = %e, "the proposal notice cannot be sent; the peer's operator drops its copy");
                return Delivery::Refused;
            }
        };
        let call = client.notify_proposal_dropped(proto::NotifyProposalDroppedRequest {
            notice: Some(convert::proposal_notice_to_proto(&n.notice)),
        });
        match tokio::time::timeout(self.peer_timeout * 2, call).await {
            Ok(Ok(r)) => {
                tracing::info!(%peer, agreement = %id, versions = ?r.get_ref().versions, "peer took the proposal notice");
                Delivery::Taken
            }
            Ok(Err(s))
                if !matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::ResourceExhausted
                ) =>
            {
                tracing::warn!(%peer, agreement = %id, status = %s, "peer refused the proposal notice; its operator drops its copy");
                Delivery::Refused
            }
            Ok(Err(s)) => {
                tracing::warn!(%peer, agreement = %id, status = %s, "peer did not take the proposal notice; it is sent again at the next sync");
                Delivery::Unreachable
            }
            Err(_) => {
                tracing::warn!(%peer, agreement = %id, "peer did not answer in time; the proposal notice is sent again at the next sync");
                Delivery::Unreachable
            }
        }
    }

    /// Sends again the proposal notices peers have not taken (of agreement `only`, if given);
    /// each is forgotten once taken or refused. Returns how many are still undelivered.
    pub(crate) async fn deliver_proposal_notices(&self, only: Option<AgreementId>) -> usize {
        let pending = match self.store.undelivered() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "undelivered proposal notices cannot be read");
                return 0;
            }
        };
        let mut left = 0;
        for n in pending
            .iter()
            .filter(|n| only.is_none_or(|id| id == n.notice.id))
        {
            match self.send_proposal_notice(n).await {
                Delivery::Unreachable => left += 1,
                Delivery::Taken | Delivery::Refused => {
                    if let Err(e) = self
                        .store
                        .remove_undelivered(n.notice.id, n.notice.outcome)
                        .await
                    {
                        tracing::error!(error = %e, "a delivered proposal notice could not be forgotten; it is sent again");
                    }
                }
            }
        }
        left
    }

    /// A peer's signed notice that it withdrew (as proposer) or rejected (as acceptor) a pending
    /// proposal: the matching pending versions are deleted here. Returns the versions deleted
    /// (none when nothing matching is pending: a repeated delivery).
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a malformed notice; PERMISSION_DENIED when the notice is in this
    /// node's name, comes from another province's certificate, or is not signed (or, over mutual
    /// TLS, sent) by a key the pending proposal pins for the acting party: nothing changes.
    pub(crate) async fn receive_proposal_notice(
        &self,
        r: proto::NotifyProposalDroppedRequest,
        from: Option<&super::auth::Principal>,
    ) -> Result<Vec<u32>, ApiError> {
        let n = convert::proposal_notice_from_proto(
            r.notice
                .as_ref()
                .ok_or_else(|| ApiError::invalid("notice", "missing"))?,
        )?;
        if n.by == self.province {
            return Err(ApiError::PermissionDenied(
                "a peer cannot drop a proposal in this province's name".into(),
            ));
        }
        if let Some(super::auth::Principal::Node(peer)) = from {
            if peer.province != n.by {
                return Err(ApiError::PermissionDenied(format!(
                    "the notice is from {} but the calling node's certificate is for {}",
                    n.by, peer.province
                )));
            }
        }
        let _g = self.agreement_lock.lock().await;
        // A withdrawal drops what `by` proposed to this node; a rejection what this node
        // proposed to `by`.
        let (proposer, acceptor) = match n.outcome {
            ProposalOutcome::Withdrawn => (n.by, self.province),
            ProposalOutcome::Rejected => (self.province, n.by),
        };
        let matching: Vec<SignedAgreement> = self
            .store
            .agreement_versions(n.id)?
            .into_iter()
            .filter(|a| {
                !a.is_concluded()
                    && a.body().version <= n.version
                    // A notice delivered late does not drop a proposal made after it.
                    && a.body().created_at <= n.signed_at.saturating_add(self.policy.clock_skew_secs)
                    && a.body().proposer.province == proposer
                    && a.body().acceptor.province == acceptor
            })
            .collect();
        if matching.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys: Vec<crate::keys::PublicKey> = Vec::new();
        for a in &matching {
            if let Some(p) = a.body().party(n.by) {
                keys.extend(p.keys.iter().copied());
            }
        }
        let keys = self.with_feed_keys(n.by, keys);
        n.check(&keys).map_err(|e| {
            ApiError::PermissionDenied(format!(
                "notice for agreement {}: {e} (it must be signed by a key the proposal pins for {})",
                n.id, n.by
            ))
        })?;
        if let Some(super::auth::Principal::Node(peer)) = from {
            if !peer.certified_by_any(&keys) {
                return Err(ApiError::PermissionDenied(format!(
                    "notice for agreement {}: the calling node's certificate is not certified by a key the proposal pins for {}",
                    n.id, n.by
                )));
            }
        }
        let versions: Vec<u32> = matching.iter().map(|a| a.body().version).collect();
        self.store
            .remove_agreement_versions(n.id, &versions)
            .await?;
        match n.outcome {
            ProposalOutcome::Withdrawn => {
                tracing::info!(agreement = %n.id, ?versions, by = %n.by, "agreement proposal withdrawn by its proposer")
            }
            ProposalOutcome::Rejected => {
                tracing::warn!(agreement = %n.id, ?versions, by = %n.by, "agreement proposal rejected by the peer")
            }
        }
        Ok(versions)
    }

    /// Makes a new signing key; the old key signs the rotation statement.
    pub(crate) async fn rotate_key(&self) -> Result<proto::RotateKeyResponse, ApiError> {
        let held = self.feed_lock.lock().await;
        let old = self.key.load_full();
        let new = NodeKey::generate();
        let pending = pending_key_path(&self.key_file);
        if pending.exists() {
            return Err(ApiError::FailedPrecondition(format!(
                "{} exists: a rotation is half done; restart the node to complete it",
                pending.display()
            )));
        }
        new.write_pem_protected(&pending, &self.key_protection)
            .map_err(|e| ApiError::FailedPrecondition(format!("writing the new key: {e}")))?;
        let statement = Statement::KeyRotation {
            key: new.public(),
            pop: proof_of_possession(self.province, &new),
        };
        let entry = match self.append_own(&held, statement, &old).await {
            Ok(e) => e,
            Err(e) => {
                let _ = std::fs::remove_file(&pending);
                return Err(e);
            }
        };
        install_key_file(&self.key_file, &pending, old.kid()).map_err(|e| {
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
        let held = self.feed_lock.lock().await;
        let current = self.key.load_full();
        if current.kid() == kid {
            return Err(ApiError::FailedPrecondition(
                "that is the current signing key: rotate first, then withdraw it".into(),
            ));
        }
        let state = self.own_feed.locked().clone();
        let target = state
            .keys()
            .iter()
            .find(|k| k.key.kid == kid && k.withdrawn_at.is_none())
            .map(|k| k.key)
            .ok_or_else(|| {
                ApiError::NotFound(format!("no key {kid} of this node that is not withdrawn"))
            })?;
        let entry = self
            .append_own(&held, Statement::KeyWithdrawal { key: target }, &current)
            .await?;
        tracing::warn!(%kid, seq = entry.seq(), "key withdrawn");
        Ok(proto::WithdrawKeyResponse { seq: entry.seq() })
    }

    /// Revokes one code this node issued.
    pub(crate) async fn revoke_code(&self, cti: &str) -> Result<proto::RevokeResponse, ApiError> {
        let bytes: crate::code::Cti = hex::decode(cti.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::invalid("cti", "must be 32 hex digits"))?;
        let Some(issued) = self.store.issued(&bytes)? else {
            return Err(ApiError::NotFound(format!(
                "no code {cti} was issued by this node, or it expired more than {} days ago \
                 (retention.issued_days_after_expiry)",
                self.retention.issued_days_after_expiry
            )));
        };
        // A revocation that changes nothing adds nothing to the feed: a code already revoked, by
        // its own entry or by its subject's, is answered so (a retry after a lost answer is
        // safe). Checked under the feed lock, so two concurrent calls cannot both append.
        let held = self.feed_lock.lock().await;
        let state = self.own_feed.locked().clone();
        if state.is_revoked(&bytes, &issued.subject_hash, issued.iat) {
            tracing::info!(cti, "code already revoked: nothing added");
            return Ok(proto::RevokeResponse {
                seq: 0,
                already_revoked: true,
            });
        }
        let key = self.key.load_full();
        let entry = self
            .append_own(&held, Statement::RevokeCode { cti: bytes }, &key)
            .await?;
        tracing::info!(cti, seq = entry.seq(), "code revoked");
        Ok(proto::RevokeResponse {
            seq: entry.seq(),
            already_revoked: false,
        })
    }

    /// Revokes every code of a subject issued before a time.
    pub(crate) async fn revoke_subject(
        &self,
        r: proto::RevokeSubjectRequest,
    ) -> Result<proto::RevokeResponse, ApiError> {
        let now = self.now();
        let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
            ApiError::invalid("document_type", "must be set to a known document type")
        })?;
        let number = identity::normalize_document_number(doc_type, &r.document_number)
            .map_err(|e| ApiError::invalid("document_number", e))?;
        let before = if r.issued_before == 0 {
            now + 1
        } else {
            r.issued_before
        };
        // Only this node's clock stamps the codes it issues, so no skew allowance: a later
        // `before` would also revoke codes issued after this request (the new status's).
        if before > now + 1 {
            return Err(ApiError::invalid(
                "issued_before",
                "must not be in the future (it would revoke codes not yet issued)",
            ));
        }
        let subject_hash = self.subject_key.subject_hash(doc_type, &number);
        drop(number);
        let held = self.feed_lock.lock().await;
        // A revocation that changes nothing adds nothing: an earlier one of this subject that
        // reaches as late or later already revokes every code this one would.
        let earlier = self.own_feed.locked().subject_revoked_before(&subject_hash);
        if earlier.is_some_and(|t| t >= before) {
            tracing::info!(subject = %subject_hash, before, "subject already revoked: nothing added");
            return Ok(proto::RevokeResponse {
                seq: 0,
                already_revoked: true,
            });
        }
        let key = self.key.load_full();
        let entry = self
            .append_own(
                &held,
                Statement::RevokeSubject {
                    subject_hash,
                    before,
                },
                &key,
            )
            .await?;
        tracing::info!(subject = %subject_hash, before, seq = entry.seq(), "subject revoked");
        Ok(proto::RevokeResponse {
            seq: entry.seq(),
            already_revoked: false,
        })
    }

    /// Terminates a concluded agreement; tells the peer, which otherwise learns at its next sync.
    pub(crate) async fn terminate(
        &self,
        r: proto::TerminateAgreementRequest,
    ) -> Result<proto::TerminateAgreementResponse, ApiError> {
        let now = self.now();
        let id = AgreementId::from_hex(&r.id).map_err(|e| ApiError::invalid("id", e))?;
        let effective_at = if r.effective_at == 0 {
            now
        } else {
            r.effective_at
        };
        if effective_at.saturating_add(self.policy.clock_skew_secs) < now {
            return Err(ApiError::invalid("effective_at", "must not be in the past"));
        }
        let _g = self.agreement_lock.lock().await;
        let trust = self.trust.load();
        let concluded = crate::province::PROVINCES
            .iter()
            .filter_map(|p| Province::from_code(p.code).ok())
            .flat_map(|p| trust.agreements_with(p).iter())
            .find(|t| t.agreement.body().id == id)
            .map(|t| t.agreement.clone())
            .ok_or_else(|| ApiError::NotFound(format!("no concluded agreement {id}")))?;
        if let Some(old) = self.store.termination(id)? {
            if old.effective_at <= effective_at {
                return Err(ApiError::FailedPrecondition(format!(
                    "agreement {id} is already terminated by {} from {}",
                    old.by,
                    crate::rfc3339(old.effective_at)
                )));
            }
        }
        let t = Termination::sign(id, self.province, effective_at, now, &self.key.load());
        let mut check = (**trust).clone();
        check
            .add_termination(t.clone())
            .map_err(|e| ApiError::FailedPrecondition(format!("cannot terminate: {e}")))?;
        self.store.put_termination(&t).await?;
        self.rebuild_trust()?;
        tracing::info!(agreement = %id, effective_at, "agreement terminated here");
        let peer = concluded
            .body()
            .peer_of(self.province)
            .map(|p| p.province)
            .expect("a concluded agreement of ours has a peer");
        let notified = match self.store.peer_endpoint(peer)? {
            None => false,
            Some(url) => match peer::connect(self, "peer endpoint", &url, peer::Expect::Province(peer)).await {
                Ok(mut c) => c
                    .notify_termination(proto::NotifyTerminationRequest {
                        notice: Some(convert::termination_to_proto(&t)),
                    })
                    .await
                    .map_err(|s| tracing::warn!(%peer, status = %s, "peer did not take the termination; it learns at its next sync"))
                    .is_ok(),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "peer unreachable; it learns of the termination at its next sync");
                    false
                }
            },
        };
        Ok(proto::TerminateAgreementResponse {
            agreement: Some(self.view(&concluded)?),
            peer_notified: notified,
        })
    }

    /// A peer's termination notice.
    pub(crate) async fn receive_termination(
        &self,
        r: proto::NotifyTerminationRequest,
    ) -> Result<(), ApiError> {
        let t = convert::termination_from_proto(
            r.notice
                .as_ref()
                .ok_or_else(|| ApiError::invalid("notice", "missing"))?,
        )?;
        if t.by == self.province {
            return Err(ApiError::FailedPrecondition(
                "a peer cannot terminate in this province's name".into(),
            ));
        }
        let _g = self.agreement_lock.lock().await;
        if self
            .store
            .termination(t.id)?
            .is_some_and(|old| old.effective_at <= t.effective_at)
        {
            return Ok(());
        }
        let mut check = (**self.trust.load()).clone();
        check.add_termination(t.clone()).map_err(|e| match e {
            crate::agreement::AgreementError::BadId(_) => {
                ApiError::NotFound(format!("no concluded agreement {}", t.id))
            }
            other => ApiError::agreement("notice", other),
        })?;
        self.store.put_termination(&t).await?;
        self.rebuild_trust()?;
        tracing::info!(agreement = %t.id, by = %t.by, effective_at = t.effective_at, "agreement terminated by peer");
        Ok(())
    }

    /// Concluded agreements and terminations with `province`, for its sync.
    pub(crate) fn agreements_for(
        &self,
        province: &str,
    ) -> Result<proto::GetAgreementsResponse, ApiError> {
        let p: Province = province
            .parse()
            .map_err(|e| ApiError::invalid("province", e))?;
        let mut agreements = Vec::new();
        let mut terminations = Vec::new();
        for a in self.store.agreements()? {
            if a.is_concluded() && a.body().peer_of(self.province).map(|x| x.province) == Some(p) {
                if let Some(t) = self.store.termination(a.body().id)? {
                    if !terminations.iter().any(|x: &Termination| x.id == t.id) {
                        terminations.push(t);
                    }
                }
                agreements.push(convert::signed_to_proto(&a));
            }
        }
        Ok(proto::GetAgreementsResponse {
            agreements,
            terminations: terminations
                .iter()
                .map(convert::termination_to_proto)
                .collect(),
        })
    }

    /// A signed offline bundle of this node's trust state.
    pub(crate) fn export_bundle(&self) -> Result<proto::ExportTrustBundleResponse, ApiError> {
        let now = self.now();
        let key = self.key.load_full();
        let peers = self
            .peer_feeds
            .locked()
            .iter()
            .map(|(p, f)| (*p, f.synced_at))
            .collect::<Vec<_>>();
        let peers = peers
            .into_iter()
            .map(|(p, t)| Ok((p, t, self.store.peer_feed(p)?)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let content = crate::bundle::BundleContent {
            province: self.province,
            exported_at: now,
            policy: self.policy,
            own_feed: self.store.feed_from(1)?,
            peers,
            agreements: self
                .store
                .agreements()?
                .into_iter()
                .filter(SignedAgreement::is_concluded)
                .collect(),
            terminations: self.store.terminations()?,
        };
        Ok(proto::ExportTrustBundleResponse {
            bundle: crate::bundle::export(&content, &key),
            kid: key.kid().0.to_vec(),
            exported_at: now,
        })
    }
}
