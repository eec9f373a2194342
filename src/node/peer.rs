//! Calls from this node to a peer node's FederationService.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tonic::transport::Channel;

use super::error::ApiError;
use super::{NodeState, TlsState};
use crate::keys::PublicKey;
use crate::lock::Locked;
use crate::proto::federation_service_client::FederationServiceClient;
use crate::province::Province;
use crate::store::Store;
use crate::trust::PeerFeed;

/// What calling a peer needs: this node's TLS identity, the peer timeout, and what says which
/// keys a peer's certificate must be certified by (the agreements in the store, the peers'
/// synced feeds).
#[derive(Clone, Copy)]
pub(crate) struct PeerLink<'a> {
    province: Province,
    store: &'a Store,
    peer_feeds: &'a Mutex<HashMap<Province, PeerFeed>>,
    tls: Option<&'a TlsState>,
    /// Longest wait for a peer: connect, TLS handshake, each answer.
    pub(super) peer_timeout: Duration,
}

impl NodeState {
    /// The part of the node calls to peers (and the checks of peers' certificates) reach.
    pub(crate) fn peer_link(&self) -> PeerLink<'_> {
        PeerLink {
            province: self.province,
            store: &self.store,
            peer_feeds: &self.trust.peer_feeds,
            tls: self.tls.as_ref(),
            peer_timeout: self.peer_timeout,
        }
    }
}

impl PeerLink<'_> {
    /// The node keys this node trusts for `peer`: those pinned by a concluded agreement with it
    /// or by a proposal this node made (its operator checked the peer's kid), and those its
    /// synced trust feed names (when anchored in a pinned key), less withdrawn ones. A proposal
    /// received from `peer` and not yet accepted counts for nothing: its keys are only claimed.
    pub(crate) fn peer_keys(&self, peer: Province) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = Vec::new();
        if let Ok(agreements) = self.store.agreements() {
            for a in agreements {
                if !a.is_concluded() && a.body().proposer.province != self.province {
                    continue;
                }
                if let Some(party) = a.body().peer_of(self.province) {
                    if party.province == peer {
                        keys.extend(party.keys.iter().copied());
                    }
                }
            }
        }
        self.with_feed_keys(peer, keys)
    }

    /// `pinned` keys of `peer` plus those its synced trust feed names when the feed is anchored
    /// in one of them, less withdrawn ones.
    pub(crate) fn with_feed_keys(
        &self,
        peer: Province,
        mut keys: Vec<PublicKey>,
    ) -> Vec<PublicKey> {
        let feeds = self.peer_feeds.locked();
        if let Some(f) = feeds.get(&peer) {
            if f.state.contains_any(&keys) {
                for k in f.state.keys() {
                    if k.withdrawn_at.is_some() {
                        keys.retain(|x| *x != k.key);
                    } else if !keys.contains(&k.key) {
                        keys.push(k.key);
                    }
                }
            }
        }
        keys
    }
}

/// Whom a call to a peer must reach.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// The node of this province, certified by a key this node trusts for it (pinned in an
    /// agreement or named by its trust feed).
    Province(crate::province::Province),
    /// A node whose certificate is certified by a key with this kid (before any agreement: the
    /// kid its operator read out of band).
    Kid(crate::keys::Kid),
    /// The node of this province, certified by one of these keys (a proposal being accepted:
    /// the keys it pins, which the operator has just approved).
    Keys(crate::province::Province, Vec<crate::keys::PublicKey>),
}

impl PeerLink<'_> {
    /// Connects to a peer node's federation API at `url`. On a node with TLS the URL must be
    /// `https://`, the call presents this node's certificate, and the peer's certificate must meet
    /// `expect`; on a plain-text node (development) `http://` only.
    ///
    /// # Errors
    /// INVALID_ARGUMENT on `field` for a URL that does not parse or has the wrong scheme;
    /// UNAVAILABLE when the peer cannot be reached or its certificate is refused.
    pub(crate) async fn connect(
        &self,
        field: &'static str,
        url: &str,
        expect: Expect,
    ) -> Result<FederationServiceClient<Channel>, ApiError> {
        let scheme = if self.tls.is_some() {
            "https://"
        } else {
            "http://"
        };
        if !url.starts_with(scheme) {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{url:?} must be a URL such as {scheme}127.0.0.1:7510 ({})",
                    if self.tls.is_some() {
                        "this node uses TLS and talks to peers over mutual TLS only"
                    } else {
                        "this node runs without TLS"
                    }
                ),
            ));
        }
        let tls = match self.tls {
            None => None,
            Some(t) => {
                let config = match &expect {
                    Expect::Province(p) => {
                        let p = *p;
                        let keys = self.peer_keys(p);
                        crate::tls::peer_client_config(t.cert.clone(), Some(p), move |c| {
                            c.certified_by_any(&keys)
                        })
                    }
                    Expect::Kid(kid) => {
                        let kid = *kid;
                        crate::tls::peer_client_config(t.cert.clone(), None, move |c| {
                            c.keys.iter().any(|k| k.kid == kid)
                        })
                    }
                    Expect::Keys(p, keys) => {
                        let keys = keys.clone();
                        crate::tls::peer_client_config(t.cert.clone(), Some(*p), move |c| {
                            c.certified_by_any(&keys)
                        })
                    }
                }
                .map_err(|e| ApiError::PeerUnavailable {
                    endpoint: url.to_string(),
                    detail: e.to_string(),
                })?;
                Some(config)
            }
        };
        let channel = crate::client::channel(url, tls, self.peer_timeout)
            .await
            .map_err(|e| match e {
                crate::client::ClientError::BadUrl { .. } => {
                    ApiError::invalid(field, format!("{url:?} is not a URL"))
                }
                // The peer answered, but its certificate is not the one expected: an impostor or a
                // misconfigured endpoint, not an outage.
                crate::client::ClientError::WrongCertificate { detail, .. } => {
                    ApiError::FailedPrecondition(match &expect {
                        Expect::Kid(kid) => format!(
                            "the node at {url} does not present a certificate certified by the expected kid {kid}: refusing to pin it ({detail})"
                        ),
                        Expect::Province(p) | Expect::Keys(p, _) => format!(
                            "the node at {url} is not the node of {p} this node trusts ({detail})"
                        ),
                    })
                }
                other => ApiError::PeerUnavailable {
                    endpoint: url.to_string(),
                    detail: other.to_string(),
                },
            })?;
        Ok(FederationServiceClient::new(channel))
    }
}

/// Maps a failed call to a peer.
pub(crate) fn call_failed(url: &str, s: tonic::Status) -> ApiError {
    match s.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition
        | tonic::Code::Unauthenticated
        | tonic::Code::PermissionDenied
        | tonic::Code::NotFound
        // A limit of the peer's (e.g. its pending proposals from this province) refuses the
        // call: the peer answered, so it is no outage.
        | tonic::Code::ResourceExhausted => {
            ApiError::FailedPrecondition(format!("peer {url} refused: {}", s.message()))
        }
        // In words, not the gRPC code's name: operators read these through the CLI.
        tonic::Code::DeadlineExceeded => ApiError::PeerUnavailable {
            endpoint: url.to_string(),
            detail: format!("did not answer in time: {}", s.message()),
        },
        _ => ApiError::PeerUnavailable {
            endpoint: url.to_string(),
            detail: s.message().to_string(),
        },
    }
}
