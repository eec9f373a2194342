//! The trust snapshot: everything the verification decision reads, held in memory.
//!
//! Built from the store (own trust feed, concluded agreements, terminations, peers' synced feeds)
//! when the node starts and rebuilt after every change; the node swaps the whole snapshot
//! atomically (`ArcSwap`), so a verification sees one consistent state, never waits for a writer
//! and never touches the disk. Signatures of agreements and terminations are checked when they
//! enter the snapshot; feed entries when they are applied to a [`FeedState`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::agreement::{AgreementError, DirectionTerms, SignedAgreement, Termination, Window};
use crate::feed::{FeedState, KeyState};
use crate::keys::PublicKey;
use crate::province::Province;
use crate::time::UnixTime;

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

/// A concluded agreement as the verifier uses it: its newest concluded version and any
/// termination.
#[derive(Debug, Clone)]
pub struct TrustedAgreement {
    /// The newest concluded version (both signatures checked).
    pub agreement: SignedAgreement,
    /// A checked termination notice, if a party ended it.
    pub termination: Option<Termination>,
}

impl TrustedAgreement {
    /// When a termination took effect, if it has by `now`.
    pub fn terminated_at(&self, now: UnixTime) -> Option<UnixTime> {
        self.termination
            .as_ref()
            .map(|t| t.effective_at)
            .filter(|t| *t <= now)
    }

    /// The terms for `issuer`'s codes at `verifier`.
    pub fn direction(&self, issuer: Province, verifier: Province) -> Option<&DirectionTerms> {
        self.agreement.body().direction(issuer, verifier)
    }

    /// In force for that direction at `now`: concluded, not terminated, inside its window.
    pub fn in_force(&self, issuer: Province, verifier: Province, now: UnixTime) -> bool {
        self.terminated_at(now).is_none()
            && self
                .direction(issuer, verifier)
                .is_some_and(|d| d.window(now) == Window::InForce)
    }
}

/// Why no agreement recognizes an issuer's objects at a time
/// ([`TrustSnapshot::agreement_in_force`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotInForce {
    /// No agreement with the issuer at all.
    NoAgreement,
    /// The newest agreement was terminated at this time.
    Terminated(UnixTime),
    /// The newest agreement's direction comes into force at this time.
    NotYet(UnixTime),
    /// The newest agreement's direction ended at this time.
    Ended(UnixTime),
}

/// What this node knows of a peer province's trust feed.
#[derive(Debug, Clone)]
pub struct PeerFeed {
    /// The peer's feed as applied (keys, revocations).
    pub state: Arc<FeedState>,
    /// When it was last synced successfully.
    pub synced_at: UnixTime,
}

/// What a node trusts at one moment.
#[derive(Debug, Clone)]
pub struct TrustSnapshot {
    local: Province,
    policy: Policy,
    own: Arc<FeedState>,
    /// By peer province; newest first (by creation time, then version).
    agreements: HashMap<Province, Vec<Arc<TrustedAgreement>>>,
    peers: HashMap<Province, PeerFeed>,
}

impl TrustSnapshot {
    /// A snapshot for the node of `local` whose own keys and revocations are `own`.
    pub fn new(local: Province, own: Arc<FeedState>, policy: Policy) -> Self {
        TrustSnapshot {
            local,
            policy,
            own,
            agreements: HashMap::new(),
            peers: HashMap::new(),
        }
    }

    /// Adds a concluded agreement version that names this node's province as a party. A newer
    /// version of an agreement already present replaces it (amendment); an older one is ignored.
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
        let id = agreement.body().id;
        if let Some(i) = list.iter().position(|t| t.agreement.body().id == id) {
            if list[i].agreement.body().version >= agreement.body().version {
                return Ok(());
            }
            let termination = list[i].termination.clone();
            list[i] = Arc::new(TrustedAgreement {
                agreement,
                termination,
            });
        } else {
            list.push(Arc::new(TrustedAgreement {
                agreement,
                termination: None,
            }));
        }
        // Newest first: the agreement (any id) most recently created, so that the reason given
        // when none is in force comes from the latest arrangement between the two provinces.
        list.sort_by(|a, b| {
            let key = |t: &TrustedAgreement| {
                let b = t.agreement.body();
                (b.created_at, b.version, b.id)
            };
            key(b).cmp(&key(a))
        });
        Ok(())
    }

    /// Records a peer's synced feed.
    pub fn set_peer_feed(&mut self, peer: PeerFeed) {
        self.peers.insert(peer.state.province(), peer);
    }

    /// Adds a termination of an agreement already added. The signer must be a key of the
    /// terminating party: pinned in the agreement or named in its trust feed.
    ///
    /// # Errors
    /// [`AgreementError::BadId`] for an unknown agreement; a signature error.
    pub fn add_termination(&mut self, t: Termination) -> Result<(), AgreementError> {
        // The keys that may sign for the terminating party at the notice's time: its synced feed
        // (anchored in the pinned keys) without withdrawn keys or keys retired before the notice
        // was signed; without a feed, the pinned keys.
        let keys = |snap: &TrustSnapshot, a: &SignedAgreement| -> Vec<PublicKey> {
            let pinned: Vec<PublicKey> = a
                .body()
                .party(t.by)
                .map(|p| p.keys.clone())
                .unwrap_or_default();
            let feed = if t.by == snap.local {
                Some(&snap.own)
            } else {
                snap.peers.get(&t.by).map(|p| &p.state)
            };
            match feed {
                Some(f) if f.contains_any(&pinned) => f
                    .keys()
                    .iter()
                    .filter(|k| k.withdrawn_at.is_none())
                    .filter(|k| k.retired_at.is_none_or(|r| t.signed_at <= r))
                    .map(|k| k.key)
                    .collect(),
                _ => pinned,
            }
        };
        for list in self.agreements.values() {
            if let Some(i) = list.iter().position(|x| x.agreement.body().id == t.id) {
                let known = keys(self, &list[i].agreement);
                t.check(list[i].agreement.body(), &known)?;
                let peer = list[i]
                    .agreement
                    .body()
                    .peer_of(self.local)
                    .map(|p| p.province);
                let peer = peer.ok_or(AgreementError::BadDirections)?;
                let list = self.agreements.get_mut(&peer).expect("found above");
                let current = &list[i];
                // The earliest effective termination wins: a party cannot postpone an end.
                if current
                    .termination
                    .as_ref()
                    .is_some_and(|old| old.effective_at <= t.effective_at)
                {
                    return Ok(());
                }
                list[i] = Arc::new(TrustedAgreement {
                    agreement: current.agreement.clone(),
                    termination: Some(t),
                });
                return Ok(());
            }
        }
        Err(AgreementError::BadId(t.id.to_string()))
    }

    /// The province of this node.
    pub fn local(&self) -> Province {
        self.local
    }

    /// The local policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// This node's own feed state (keys and revocations).
    pub fn own(&self) -> &FeedState {
        &self.own
    }

    /// This node's active keys (neither retired nor withdrawn): what it publishes and pins.
    pub fn own_keys(&self) -> Vec<PublicKey> {
        self.own.current_key().into_iter().copied().collect()
    }

    /// Agreements with `peer`, newest first.
    pub fn agreements_with(&self, peer: Province) -> &[Arc<TrustedAgreement>] {
        self.agreements.get(&peer).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The agreement under which `issuer`'s objects (codes, manifests) are recognized here at
    /// `now`, or why there is none: what `verify` and `manifest::check` both decide by.
    ///
    /// # Errors
    /// [`NotInForce`]: no agreement at all, or the newest one terminated, not yet in force, or
    /// ended (for the direction issuer -> this node).
    pub fn agreement_in_force(
        &self,
        issuer: Province,
        now: UnixTime,
    ) -> Result<&Arc<TrustedAgreement>, NotInForce> {
        let agreements = self.agreements_with(issuer);
        let Some(newest) = agreements.first() else {
            return Err(NotInForce::NoAgreement);
        };
        if let Some(a) = agreements
            .iter()
            .find(|a| a.in_force(issuer, self.local, now))
        {
            return Ok(a);
        }
        if let Some(t) = newest.terminated_at(now) {
            return Err(NotInForce::Terminated(t));
        }
        let d = newest
            .direction(issuer, self.local)
            .expect("validated agreements have both directions");
        Err(match d.window(now) {
            Window::NotYetInForce => NotInForce::NotYet(d.effective_from),
            _ => NotInForce::Ended(d.effective_until),
        })
    }

    /// The synced feed of `peer`, if any.
    pub fn peer_feed(&self, peer: Province) -> Option<&PeerFeed> {
        self.peers.get(&peer)
    }

    /// The keys to verify `issuer`'s codes with under `agreement`: the issuer's feed when it is
    /// anchored in the agreement's pinned keys, else the pinned keys alone.
    pub fn issuer_keys(&self, issuer: Province, agreement: &TrustedAgreement) -> Vec<KeyState> {
        let pinned = agreement
            .agreement
            .body()
            .party(issuer)
            .map(|p| p.keys.as_slice())
            .unwrap_or(&[]);
        match self.peers.get(&issuer) {
            Some(p) if p.state.contains_any(pinned) => p.state.keys().to_vec(),
            _ => pinned
                .iter()
                .map(|k| KeyState {
                    key: *k,
                    retired_at: None,
                    withdrawn_at: None,
                })
                .collect(),
        }
    }

    /// Number of agreements in the snapshot.
    pub fn agreement_count(&self) -> usize {
        self.agreements.values().map(Vec::len).sum()
    }
}
