//! Agreements and what surrounds them: the versions (`agreements`), termination notices
//! (`terminations`), the endpoints received proposals gave (`proposals`), the peers' addresses
//! (`peers`), and the withdrawals and rejections not yet delivered (`notice_outbox`).

use ciborium::value::Value;

use super::{corrupt, Store, StoreError};
use crate::agreement::{
    AgreementId, ProposalNotice, ProposalOutcome, SignedAgreement, Termination,
};
use crate::cbor::uint;
use crate::province::Province;
use crate::UnixTime;

/// A proposal notice (withdrawal or rejection) the other party has not taken yet, with where
/// and to whom it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredNotice {
    /// Sent again as signed at every retry, so the peer checks the original signature.
    pub notice: ProposalNotice,
    /// The other party.
    pub peer: Province,
    /// Its node's endpoint URL, kept here: for a rejection it is the one the proposal gave,
    /// removed from `proposals` with the proposal.
    pub endpoint: String,
    /// The keys its node's certificate must be certified by (those the proposal pins for it).
    pub keys: Vec<crate::keys::PublicKey>,
}

impl UndeliveredNotice {
    /// Key in `notice_outbox`: one pending notice per agreement and outcome.
    fn key(id: AgreementId, outcome: ProposalOutcome) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[..16].copy_from_slice(&id.0);
        k[16] = match outcome {
            ProposalOutcome::Withdrawn => 1,
            ProposalOutcome::Rejected => 2,
        };
        k
    }

    /// Storage encoding: CBOR `[notice: bstr (ProposalNotice::to_record), peer: uint,
    /// endpoint: tstr, keys: [* bstr .size 32]]`.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.notice.to_record()),
            uint(u64::from(self.peer.code())),
            Value::Text(self.endpoint.clone()),
            Value::Array(
                self.keys
                    .iter()
                    .map(|k| Value::Bytes(k.to_bytes().to_vec()))
                    .collect(),
            ),
        ]))
    }

    fn from_record(bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = |w: &str| corrupt("notice_outbox", w);
        let Value::Array(a) = crate::cbor::decode_exact(bytes).map_err(|e| bad(&e.to_string()))?
        else {
            return Err(bad("not an array"));
        };
        let [Value::Bytes(n), Value::Integer(p), Value::Text(endpoint), Value::Array(keys)] =
            a.as_slice()
        else {
            return Err(bad("not [notice, peer, endpoint, keys]"));
        };
        let peer = u32::try_from(*p)
            .ok()
            .and_then(|c| Province::from_code(c).ok())
            .ok_or_else(|| bad("peer is not a province"))?;
        let keys = keys
            .iter()
            .map(|k| match k {
                Value::Bytes(b) => crate::keys::PublicKey::from_bytes(b).ok(),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a key is not an Ed25519 public key"))?;
        Ok(UndeliveredNotice {
            notice: ProposalNotice::from_record(n)?,
            peer,
            endpoint: endpoint.clone(),
            keys,
        })
    }
}

/// Key in `agreements` and `proposals`: the id, then the version big-endian, so the versions of
/// one agreement are adjacent and in order.
fn agreement_key(id: AgreementId, version: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id.0);
    k[16..].copy_from_slice(&version.to_be_bytes());
    k
}

/// A `peers` value: CBOR `[endpoint, updated_at]`.
fn peer_record(endpoint: &str, now: UnixTime) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        Value::Text(endpoint.into()),
        uint(now.secs()),
    ]))
}

impl Store {
    /// Stores a termination notice (replacing an earlier one of the same agreement).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_termination(&self, t: &Termination) -> Result<(), StoreError> {
        self.write(async {
            self.terminations.insert(t.id.0, t.to_record())?;
            Ok(())
        })
        .await
    }

    /// Every stored termination notice.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn terminations(&self) -> Result<Vec<Termination>, StoreError> {
        self.terminations
            .iter()
            .map(|r| Ok(Termination::from_record(&r?.1)?))
            .collect()
    }

    /// The termination notice of agreement `id`, if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn termination(&self, id: AgreementId) -> Result<Option<Termination>, StoreError> {
        match self.terminations.get(id.0)? {
            None => Ok(None),
            Some(v) => Ok(Some(Termination::from_record(&v)?)),
        }
    }

    /// Keeps a notice the other party has not taken, replacing an earlier one of the same
    /// agreement and outcome.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_undelivered(&self, n: &UndeliveredNotice) -> Result<(), StoreError> {
        self.write(async {
            self.notice_outbox.insert(
                UndeliveredNotice::key(n.notice.id, n.notice.outcome),
                n.to_record(),
            )?;
            Ok(())
        })
        .await
    }

    /// Every notice not yet taken by its peer.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn undelivered(&self) -> Result<Vec<UndeliveredNotice>, StoreError> {
        self.notice_outbox
            .iter()
            .map(|r| UndeliveredNotice::from_record(&r?.1))
            .collect()
    }

    /// Forgets an undelivered notice (taken, or refused by the peer).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_undelivered(
        &self,
        id: AgreementId,
        outcome: ProposalOutcome,
    ) -> Result<(), StoreError> {
        self.write(async {
            self.notice_outbox
                .remove(UndeliveredNotice::key(id, outcome))?;
            Ok(())
        })
        .await
    }

    /// Stores an agreement version, replacing the record of the same id and version.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_agreement(&self, a: &SignedAgreement) -> Result<(), StoreError> {
        self.write(async {
            self.agreements
                .insert(agreement_key(a.body().id, a.body().version), a.to_record())?;
            Ok(())
        })
        .await
    }

    /// The newest stored version of agreement `id`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement(&self, id: AgreementId) -> Result<Option<SignedAgreement>, StoreError> {
        match self.agreements.scan_prefix(id.0).next_back() {
            None => Ok(None),
            Some(r) => Ok(Some(SignedAgreement::from_record(&r?.1)?)),
        }
    }

    /// A stored agreement version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement_version(
        &self,
        id: AgreementId,
        version: u32,
    ) -> Result<Option<SignedAgreement>, StoreError> {
        match self.agreements.get(agreement_key(id, version))? {
            None => Ok(None),
            Some(v) => Ok(Some(SignedAgreement::from_record(&v)?)),
        }
    }

    /// Every stored agreement version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreements(&self) -> Result<Vec<SignedAgreement>, StoreError> {
        self.agreements
            .iter()
            .map(|r| Ok(SignedAgreement::from_record(&r?.1)?))
            .collect()
    }

    /// Every stored version of agreement `id`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement_versions(&self, id: AgreementId) -> Result<Vec<SignedAgreement>, StoreError> {
        self.agreements
            .scan_prefix(id.0)
            .map(|r| Ok(SignedAgreement::from_record(&r?.1)?))
            .collect()
    }

    /// Stores a proposal received from a peer and the endpoint it gave, which is not the
    /// peer's address until the operator accepts (see [`Store::proposal_endpoint`]).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_received_proposal(
        &self,
        a: &SignedAgreement,
        endpoint: &str,
    ) -> Result<(), StoreError> {
        self.write(async {
            let k = agreement_key(a.body().id, a.body().version);
            self.proposals.insert(k, endpoint.as_bytes())?;
            self.agreements.insert(k, a.to_record())?;
            Ok(())
        })
        .await
    }

    /// The endpoint a received proposal gave for its proposer, if stored.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn proposal_endpoint(
        &self,
        id: AgreementId,
        version: u32,
    ) -> Result<Option<String>, StoreError> {
        match self.proposals.get(agreement_key(id, version))? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| corrupt("proposals", "endpoint is not UTF-8")),
        }
    }

    /// Removes agreement versions that are not concluded (a rejected or withdrawn proposal)
    /// and their proposal endpoints.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_agreement_versions(
        &self,
        id: AgreementId,
        versions: &[u32],
    ) -> Result<(), StoreError> {
        self.write(async {
            for v in versions {
                let k = agreement_key(id, *v);
                self.agreements.remove(k)?;
                self.proposals.remove(k)?;
            }
            Ok(())
        })
        .await
    }

    /// Records that the operator accepted a received proposal: the concluded agreement, and
    /// the endpoint the proposal gave as the peer's address (updated at `now`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_accepted(
        &self,
        a: &SignedAgreement,
        endpoint: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(async {
            let k = agreement_key(a.body().id, a.body().version);
            self.agreements.insert(k, a.to_record())?;
            self.peers.insert(
                a.body().proposer.province.code().to_be_bytes(),
                peer_record(endpoint, now),
            )?;
            self.proposals.remove(k)?;
            Ok(())
        })
        .await
    }

    /// Records where a peer province's node is reached (updated at `now`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_peer(
        &self,
        p: Province,
        endpoint: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(async {
            self.peers
                .insert(p.code().to_be_bytes(), peer_record(endpoint, now))?;
            Ok(())
        })
        .await
    }

    /// The recorded endpoint of a peer province's node.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peer_endpoint(&self, p: Province) -> Result<Option<String>, StoreError> {
        let Some(v) = self.peers.get(p.code().to_be_bytes())? else {
            return Ok(None);
        };
        match crate::cbor::decode_exact(&v).map_err(|e| corrupt("peers", e.to_string()))? {
            Value::Array(a) if a.len() == 2 => match &a[0] {
                Value::Text(t) => Ok(Some(t.clone())),
                _ => Err(corrupt("peers", "endpoint is not text")),
            },
            _ => Err(corrupt("peers", "not a peer record")),
        }
    }
}
