//! The agreement workflow: proposals made and received ([`propose`]), their conclusion
//! ([`conclude`]), withdrawal and rejection with notices to the other party ([`discard`]),
//! termination ([`terminate`]), and the lists operators and peers read ([`list`]). Every change
//! holds `agreement_lock`, so two cannot interleave their read-check-write steps.

mod conclude;
mod discard;
mod list;
mod propose;
mod terminate;

use std::sync::OnceLock;
use std::time::Duration;

use super::convert::{self, Standing};
use super::error::ApiError;
use super::own_feed::TrustRebuild;
use super::peer::PeerLink;
use super::{NodeState, TrustState};
use crate::agreement::{AgreementId, SignedAgreement};
use crate::clock::Clock;
use crate::proto;
use crate::province::Province;
use crate::store::Store;
use crate::trust::Policy;

/// Default oldest-code limit of a proposed agreement, in seconds (1 day).
pub const DEFAULT_MAX_CODE_AGE_SECS: u64 = 24 * 3600;
/// Most proposals from one province that may await this node's decision at once; more are
/// refused until the operator rejects some (or that province withdraws them), so a stranger
/// cannot fill the store or the operator's list.
pub const MAX_PENDING_PROPOSALS_PER_PROVINCE: usize = 4;

/// What the agreement workflows need: the agreements in the store, the trust snapshot (and its
/// rebuild after a change), the lock that orders changes, the signing key, the links to peers,
/// and what a proposal states about this node (its endpoint, its sync interval).
#[derive(Clone, Copy)]
pub(crate) struct Agreements<'a> {
    province: Province,
    store: &'a Store,
    clock: &'a Clock,
    /// For its clock skew allowance.
    policy: Policy,
    key: &'a crate::node::keyslot::SigningKey,
    trust: &'a TrustState,
    rebuild: TrustRebuild<'a>,
    /// Serialises agreement changes, so two concurrent ones cannot interleave their
    /// read-check-write steps.
    agreement_lock: &'a tokio::sync::Mutex<()>,
    peers: PeerLink<'a>,
    /// A proposal's trust age must cover two sync intervals.
    sync_interval: Duration,
    /// URL peers use to reach this node; set once the listener is bound.
    endpoint: &'a OnceLock<String>,
}

impl NodeState {
    /// The agreement workflows' part of the node.
    pub(crate) fn agreements(&self) -> Agreements<'_> {
        Agreements {
            province: self.province,
            store: &self.store,
            clock: &self.clock,
            policy: self.policy,
            key: &self.key,
            trust: &self.trust,
            rebuild: self.trust_rebuild(),
            agreement_lock: &self.agreement_lock,
            peers: self.peer_link(),
            sync_interval: self.sync_interval,
            endpoint: &self.endpoint,
        }
    }
}

impl Agreements<'_> {
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
                now: self.clock.now(),
            },
        ))
    }

    /// A concluded agreement with `peer` that still matters now: not terminated and with a
    /// direction whose window has not ended.
    pub(crate) fn live_agreement_with(&self, peer: Province) -> Option<AgreementId> {
        let now = self.clock.now();
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
                t.by, t.effective_at
            )));
        }
        Ok((id, newest.body().version + 1))
    }
}
