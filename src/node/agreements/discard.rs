//! Withdrawing and rejecting pending proposals, and the signed notices (NotifyProposalDropped)
//! that tell the other party to drop its copy, sent again until taken.

use super::super::convert;
use super::super::error::ApiError;
use super::super::peer;
use super::Agreements;
use crate::agreement::{AgreementId, ProposalNotice, ProposalOutcome, SignedAgreement};
use crate::proto;

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

impl Agreements<'_> {
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
            self.clock.now(),
            &*self.key.load()?,
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
        let mut client = match self
            .peers
            .connect(
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
        match tokio::time::timeout(self.peers.peer_timeout * 2, call).await {
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
        from: Option<&super::super::auth::Principal>,
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
        if let Some(super::super::auth::Principal::Node(peer)) = from {
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
        let keys = self.peers.with_feed_keys(n.by, keys);
        n.check(&keys).map_err(|e| {
            ApiError::PermissionDenied(format!(
                "notice for agreement {}: {e} (it must be signed by a key the proposal pins for {})",
                n.id, n.by
            ))
        })?;
        if let Some(super::super::auth::Principal::Node(peer)) = from {
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
}
