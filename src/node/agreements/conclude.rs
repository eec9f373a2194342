//! Concluding an agreement: the operator approves a peer's proposal here, or the peer's
//! acceptance of this node's proposal arrives.

use super::super::auth::Principal;
use super::super::convert;
use super::super::error::ApiError;
use super::super::peer;
use super::Agreements;
use crate::agreement::AgreementId;
use crate::proto;

impl Agreements<'_> {
    pub(crate) async fn receive_acceptance(
        &self,
        r: proto::AcceptAgreementRequest,
        from: Option<&Principal>,
    ) -> Result<proto::AcceptAgreementResponse, ApiError> {
        let a = convert::signed_from_proto(r.agreement.as_ref())?;
        if a.body().proposer.province != self.province {
            return Err(ApiError::FailedPrecondition(format!(
                "the agreement's proposer is {}, not this node's province {}",
                a.body().proposer.province,
                self.province
            )));
        }
        if let Some(Principal::Node(peer)) = from {
            if peer.province != a.body().acceptor.province {
                return Err(ApiError::PermissionDenied(format!(
                    "the acceptance is for {} but the calling node's certificate is for {}",
                    a.body().acceptor.province,
                    peer.province
                )));
            }
        }
        a.check_both()
            .map_err(|e| ApiError::agreement("agreement", e))?;
        let _guard = self.agreement_lock.lock().await;
        // Only a proposal this node made and still holds can be accepted: not one withdrawn,
        // not one this node never signed.
        match self
            .store
            .agreement_version(a.body().id, a.body().version)?
        {
            None => {
                return Err(ApiError::FailedPrecondition(format!(
                    "agreement {} version {} is not a proposal of this node (it was withdrawn, or never made here)",
                    a.body().id,
                    a.body().version
                )))
            }
            Some(existing) if existing.encoded() != a.encoded() => {
                return Err(ApiError::FailedPrecondition(format!(
                    "agreement {} version {} was proposed with other terms",
                    a.body().id,
                    a.body().version
                )));
            }
            Some(existing) if existing.is_concluded() => {
                // A repeated delivery.
                return Ok(proto::AcceptAgreementResponse {
                    id: a.body().id.to_string(),
                });
            }
            Some(_) => {}
        }
        self.store.put_agreement(&a).await?;
        self.rebuild.rebuild_trust()?;
        tracing::info!(agreement = %a.body().id, peer = %a.body().acceptor.province, "agreement concluded (accepted by peer)");
        Ok(proto::AcceptAgreementResponse {
            id: a.body().id.to_string(),
        })
    }

    pub(crate) async fn approve(&self, id: &str) -> Result<proto::AgreementView, ApiError> {
        let id = AgreementId::from_hex(id).map_err(|e| ApiError::invalid("id", e))?;
        let _guard = self.agreement_lock.lock().await;
        let mut a = self
            .store
            .agreement(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no agreement {id}")))?;
        if a.body().acceptor.province != self.province {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {id} was proposed by this node; the peer {} accepts it",
                a.body().acceptor.province
            )));
        }
        if a.acceptor_signature.is_some() {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {id} has nothing awaiting this node's acceptance: version {} is already accepted (a later proposal, if any, was withdrawn by its proposer or rejected here)",
                a.body().version
            )));
        }
        if let Some(t) = self.store.termination(id)? {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {id} is terminated by {} from {}: it can no longer be amended",
                t.by, t.effective_at
            )));
        }
        a.accept(&*self.key.load()?)
            .map_err(|e| ApiError::FailedPrecondition(format!("cannot accept: {e}")))?;
        let proposer = a.body().proposer.province;
        // The endpoint the proposal gave (proposals stored before it was kept with them: the
        // peer's recorded address).
        let url = match self.store.proposal_endpoint(id, a.body().version)? {
            Some(u) => u,
            None => self.store.peer_endpoint(proposer)?.ok_or_else(|| {
                ApiError::FailedPrecondition(format!("no endpoint recorded for {proposer}"))
            })?,
        };
        // Deliver first: if the proposer cannot be told, nothing changes here and the operator
        // can retry. The proposer must be the node the approved proposal pins.
        let mut client = self
            .peers
            .connect(
                "proposer endpoint",
                &url,
                peer::Expect::Keys(proposer, a.body().proposer.keys.clone()),
            )
            .await?;
        client
            .accept_agreement(proto::AcceptAgreementRequest {
                agreement: Some(convert::signed_to_proto(&a)),
            })
            .await
            .map_err(|s| peer::call_failed(&url, s))?;
        // Now verified (the operator approved the proposal's keys and its node answered): the
        // proposal's endpoint becomes the proposer's address.
        self.store.put_accepted(&a, &url, self.clock.now()).await?;
        self.rebuild.rebuild_trust()?;
        tracing::info!(agreement = %id, peer = %proposer, "agreement concluded (accepted here)");
        self.view(&a)
    }
}
