//! Terminating a concluded agreement, and a peer's termination notice.

use super::super::convert;
use super::super::error::ApiError;
use super::super::peer;
use super::Agreements;
use crate::agreement::{AgreementId, Termination};
use crate::proto;
use crate::province::Province;
use crate::UnixTime;

impl Agreements<'_> {
    /// Terminates a concluded agreement; tells the peer, which otherwise learns at its next sync.
    pub(crate) async fn terminate(
        &self,
        r: proto::TerminateAgreementRequest,
    ) -> Result<proto::TerminateAgreementResponse, ApiError> {
        let now = self.clock.now();
        let id = AgreementId::from_hex(&r.id).map_err(|e| ApiError::invalid("id", e))?;
        let effective_at = if r.effective_at == 0 {
            now
        } else {
            UnixTime::from_secs(r.effective_at)
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
                    old.by, old.effective_at
                )));
            }
        }
        let t = Termination::sign(id, self.province, effective_at, now, &*self.key.load()?);
        let mut check = (**trust).clone();
        check
            .add_termination(t.clone())
            .map_err(|e| ApiError::FailedPrecondition(format!("cannot terminate: {e}")))?;
        self.store.put_termination(&t).await?;
        self.rebuild.rebuild_trust()?;
        tracing::info!(
            agreement = %id,
            effective_at = effective_at.secs(),
            "agreement terminated here"
        );
        let peer = concluded
            .body()
            .peer_of(self.province)
            .map(|p| p.province)
            .expect("a concluded agreement of ours has a peer");
        let notified = match self.store.peer_endpoint(peer)? {
            None => false,
            Some(url) => match self.peers.connect("peer endpoint", &url, peer::Expect::Province(peer)).await {
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
        self.rebuild.rebuild_trust()?;
        tracing::info!(agreement = %t.id, by = %t.by, effective_at = t.effective_at.secs(), "agreement terminated by peer");
        Ok(())
    }
}
