//! The trust snapshot: everything the verification decision reads, held in memory.
//!
//! Built from the store (own keys, concluded agreements) when the node starts and rebuilt after
//! every change; the node swaps the whole snapshot atomically (an `Arc` behind a lock held only to
//! clone the pointer), so a verification sees one consistent state and never touches the disk.
//! Agreement signatures are checked once, when an agreement enters the snapshot, not per
//! verification.

use std::collections::HashMap;
use std::sync::Arc;

use crate::agreement::{AgreementError, SignedAgreement};
use crate::keys::{Kid, PublicKey};
use crate::province::Province;

/// Local verification policy: what applies whatever the agreement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How far in the future `iat` may be, in seconds, before a code counts as "not yet valid":
    /// tolerance for clocks that run slow or fast (the EU verifier's 2-hour-slow phone fault).
    pub clock_skew_secs: u64,
    /// The oldest own-province code accepted (`now - iat`), in seconds.
    pub own_max_code_age_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            clock_skew_secs: 300,
            own_max_code_age_secs: 7 * 24 * 3600,
        }
    }
}

/// What a node trusts at one moment.
#[derive(Debug, Clone)]
pub struct TrustSnapshot {
    local: Province,
    own_keys: Vec<PublicKey>,
    policy: Policy,
    /// Concluded agreements (both signatures checked) by peer province, newest version first.
    agreements: HashMap<Province, Vec<Arc<SignedAgreement>>>,
}

impl TrustSnapshot {
    /// A snapshot for the node of `local` whose own codes verify under `own_keys`.
    pub fn new(local: Province, own_keys: Vec<PublicKey>, policy: Policy) -> Self {
        TrustSnapshot {
            local,
            own_keys,
            policy,
            agreements: HashMap::new(),
        }
    }

    /// Adds a concluded agreement that names this node's province as a party.
    ///
    /// # Errors
    /// A signature error if either signature is missing or does not verify;
    /// [`AgreementError::BadDirections`] if the local province is not a party.
    pub fn add_agreement(&mut self, agreement: SignedAgreement) -> Result<(), AgreementError> {
        agreement.check_both()?;
        let peer = agreement
            .body()
            .peer_of(self.local)
            .ok_or(AgreementError::BadDirections)?
            .province;
        let list = self.agreements.entry(peer).or_default();
        list.push(Arc::new(agreement));
        list.sort_by(|a, b| {
            (b.body().version, b.body().created_at).cmp(&(a.body().version, a.body().created_at))
        });
        Ok(())
    }

    /// The province of this node.
    pub fn local(&self) -> Province {
        self.local
    }

    /// The local policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// This node's own public keys.
    pub fn own_keys(&self) -> &[PublicKey] {
        &self.own_keys
    }

    /// Own keys with this kid (kids can collide, so possibly several).
    pub fn own_keys_with(&self, kid: Kid) -> impl Iterator<Item = &PublicKey> {
        self.own_keys.iter().filter(move |k| k.kid == kid)
    }

    /// Concluded agreements with `peer`, newest version first.
    pub fn agreements_with(&self, peer: Province) -> &[Arc<SignedAgreement>] {
        self.agreements.get(&peer).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of concluded agreements in the snapshot.
    pub fn agreement_count(&self) -> usize {
        self.agreements.values().map(Vec::len).sum()
    }
}
