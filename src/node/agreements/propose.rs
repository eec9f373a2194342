//! Proposing an agreement to a peer, and receiving a peer's proposal (new or an amendment).

use super::super::auth::Principal;
use super::super::convert;
use super::super::error::ApiError;
use super::super::peer;
use super::Agreements;
use super::{DEFAULT_MAX_CODE_AGE_SECS, MAX_PENDING_PROPOSALS_PER_PROVINCE};
use crate::agreement::{AgreementBody, AgreementId, DirectionTerms, Party, Role, SignedAgreement};
use crate::proto;
use crate::UnixTime;

impl Agreements<'_> {
    pub(crate) async fn create_agreement(
        &self,
        mut r: proto::CreateAgreementRequest,
    ) -> Result<proto::AgreementView, ApiError> {
        let now = self.clock.now();
        let peer_codes_here =
            convert::status_map_from_proto("peer_codes_here", &r.peer_codes_here)?;
        let our_codes_there =
            convert::status_map_from_proto("our_codes_there", &r.our_codes_there)?;
        let interval = self.sync_interval.as_secs();
        if r.max_trust_age_secs != 0 && r.max_trust_age_secs < 2 * interval {
            return Err(ApiError::invalid(
                "max_trust_age_secs",
                format!(
                    "{} s is under twice this node's sync interval ({interval} s): healthy peers' codes would flip to TRUST_STALE between syncs",
                    r.max_trust_age_secs
                ),
            ));
        }
        let max_age = match r.max_code_age_secs {
            0 => DEFAULT_MAX_CODE_AGE_SECS,
            a => a,
        };
        let from = if r.effective_from == 0 {
            now
        } else {
            UnixTime::from_secs(r.effective_from)
        };
        let until = UnixTime::from_secs(r.effective_until);
        if until <= from.max(now) {
            return Err(ApiError::invalid(
                "effective_until",
                "must be after effective_from and after now (seconds since the Unix epoch)",
            ));
        }
        // An amendment may leave the peer's endpoint and kid out: the address recorded for the
        // peer, and the keys this node already trusts for it, are used.
        let amended_peer = if r.amends.is_empty() {
            None
        } else {
            let id =
                AgreementId::from_hex(&r.amends).map_err(|e| ApiError::invalid("amends", e))?;
            let a = self
                .store
                .agreement(id)?
                .ok_or_else(|| ApiError::NotFound(format!("no agreement {id}")))?;
            a.body().peer_of(self.province).map(|p| p.province)
        };
        if r.peer_endpoint.is_empty() {
            let peer = amended_peer.ok_or_else(|| {
                ApiError::invalid("peer_endpoint", "required: the peer node's URL")
            })?;
            r.peer_endpoint = self.store.peer_endpoint(peer)?.ok_or_else(|| {
                ApiError::invalid(
                    "peer_endpoint",
                    format!("no address recorded for {peer}: give the peer node's URL"),
                )
            })?;
        }
        let expected_kid = match (r.expected_peer_kid.as_str(), amended_peer) {
            ("", Some(_)) => None,
            (kid, _) => Some(crate::keys::Kid::from_hex(kid).ok_or_else(|| {
                ApiError::invalid(
                    "expected_peer_kid",
                    "required: 16 hex digits, the kid of the peer's current key as its operator reads it from `hcmr info`",
                )
            })?),
        };
        let expect = match (expected_kid, amended_peer) {
            (Some(kid), _) => peer::Expect::Kid(kid),
            (None, Some(p)) => peer::Expect::Province(p),
            (None, None) => return Err(ApiError::Internal("an expected kid or a peer")),
        };
        let mut client = self
            .peers
            .connect("peer_endpoint", &r.peer_endpoint, expect)
            .await?;
        let info = client
            .get_node_info(proto::GetNodeInfoRequest {})
            .await
            .map_err(|s| peer::call_failed(&r.peer_endpoint, s))?
            .into_inner();
        let peer_province: crate::province::Province = info.province.parse().map_err(|e| {
            ApiError::FailedPrecondition(format!("peer reports an invalid province: {e}"))
        })?;
        let peer_keys = info
            .keys
            .iter()
            .map(|k| convert::key_from_proto("peer keys", k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::FailedPrecondition(format!("peer published a bad key: {e}")))?;
        if let Some(expected_kid) = expected_kid.filter(|e| !peer_keys.iter().any(|k| k.kid == *e))
        {
            let got: Vec<String> = peer_keys.iter().map(|k| k.kid.to_string()).collect();
            return Err(ApiError::FailedPrecondition(format!(
                "the node at {} presents key(s) {}, not the expected kid {expected_kid}: refusing to pin it",
                r.peer_endpoint,
                got.join(", ")
            )));
        }
        if peer_province == self.province {
            return Err(ApiError::FailedPrecondition(format!(
                "the peer at {} is this province ({}) itself",
                r.peer_endpoint, self.province
            )));
        }
        if r.amends.is_empty() {
            if let Some(live) = self.live_agreement_with(peer_province) {
                return Err(ApiError::FailedPrecondition(format!(
                    "agreement {live} with {peer_province} is in force: amend it (amends = {live}) or terminate it first"
                )));
            }
        }
        let (id, version) = if r.amends.is_empty() {
            (AgreementId::generate(), 1)
        } else {
            self.amendment_of(&r.amends, peer_province)?
        };
        // An earlier proposal of this id withdrawn or rejected while the peer was down: the peer
        // must drop its copy before a new version with the same number reaches it.
        if version > 1 && self.deliver_proposal_notices(Some(id)).await > 0 {
            return Err(ApiError::FailedPrecondition(format!(
                "the withdrawal or rejection of an earlier proposal of agreement {id} has not reached {peer_province} yet; it is sent again at the next sync (`hcmr sync`)"
            )));
        }
        let body = AgreementBody {
            id,
            version,
            created_at: now,
            proposer: Party {
                province: self.province,
                keys: self.trust.load().own_keys(),
            },
            acceptor: Party {
                province: peer_province,
                keys: peer_keys,
            },
            directions: vec![
                DirectionTerms {
                    issuer: peer_province,
                    verifier: self.province,
                    status_map: peer_codes_here,
                    max_code_age_secs: max_age,
                    max_trust_age_secs: r.max_trust_age_secs,
                    manifests: convert::manifest_terms_from_proto(
                        r.peer_manifests_transit,
                        r.peer_manifests_arrival,
                    ),
                    tracing: r.peer_tracing,
                    effective_from: from,
                    effective_until: until,
                },
                DirectionTerms {
                    issuer: self.province,
                    verifier: peer_province,
                    status_map: our_codes_there,
                    max_code_age_secs: max_age,
                    max_trust_age_secs: r.max_trust_age_secs,
                    manifests: convert::manifest_terms_from_proto(
                        r.our_manifests_transit,
                        r.our_manifests_arrival,
                    ),
                    tracing: r.our_tracing,
                    effective_from: from,
                    effective_until: until,
                },
            ],
        };
        let signed = SignedAgreement::propose(body, &*self.key.load()?)
            .map_err(|e| ApiError::FailedPrecondition(format!("cannot propose: {e}")))?;
        let _guard = self.agreement_lock.lock().await;
        client
            .propose_agreement(proto::ProposeAgreementRequest {
                agreement: Some(convert::signed_to_proto(&signed)),
                proposer_endpoint: self.endpoint.get().cloned().unwrap_or_default(),
            })
            .await
            .map_err(|s| peer::call_failed(&r.peer_endpoint, s))?;
        self.store
            .put_peer(peer_province, &r.peer_endpoint, now)
            .await?;
        self.store.put_agreement(&signed).await?;
        tracing::info!(agreement = %signed.body().id, peer = %peer_province, "agreement proposed");
        self.view(&signed)
    }

    pub(crate) async fn receive_proposal(
        &self,
        r: proto::ProposeAgreementRequest,
        from: Option<&Principal>,
    ) -> Result<proto::ProposeAgreementResponse, ApiError> {
        let a = convert::signed_from_proto(r.agreement.as_ref())?;
        // Over mutual TLS the proposal must come from the province and a key it names.
        if let Some(Principal::Node(peer)) = from {
            let proposer = &a.body().proposer;
            if peer.province != proposer.province || !peer.certified_by_any(&proposer.keys) {
                return Err(ApiError::PermissionDenied(format!(
                    "the proposal is from {} but the calling node's certificate is for {} and not certified by a key the proposal pins",
                    proposer.province, peer.province
                )));
            }
        }
        let ep = &r.proposer_endpoint;
        if !(ep.starts_with("http://") || ep.starts_with("https://"))
            || tonic::transport::Endpoint::from_shared(ep.clone()).is_err()
        {
            return Err(ApiError::invalid(
                "proposer_endpoint",
                format!("{ep:?} is not a URL such as http://127.0.0.1:7510"),
            ));
        }
        if a.acceptor_signature.is_some() {
            return Err(ApiError::invalid(
                "agreement.acceptor_signature",
                "a proposal carries only the proposer's signature",
            ));
        }
        a.check_signature(Role::Proposer)
            .map_err(|e| ApiError::agreement("agreement.proposer_signature", e))?;
        if a.body().acceptor.province != self.province {
            return Err(ApiError::FailedPrecondition(format!(
                "the agreement's acceptor is {}, not this node's province {}",
                a.body().acceptor.province,
                self.province
            )));
        }
        if !a.body().acceptor.keys.contains(&self.key.load()?.public()) {
            return Err(ApiError::FailedPrecondition(
                "the agreement does not pin this node's current key for it".into(),
            ));
        }
        let _guard = self.agreement_lock.lock().await;
        if let Some(existing) = self
            .store
            .agreement_version(a.body().id, a.body().version)?
        {
            if existing.encoded() == a.encoded() {
                // A repeated delivery: nothing new (and nothing changes, not the endpoint).
                return Ok(proto::ProposeAgreementResponse {
                    id: a.body().id.to_string(),
                });
            }
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {} version {} exists with other terms",
                a.body().id,
                a.body().version
            )));
        }
        if let Some(live) = self.live_agreement_with(a.body().proposer.province) {
            if live != a.body().id {
                return Err(ApiError::FailedPrecondition(format!(
                    "agreement {live} with {} is in force here: amend it or terminate it first",
                    a.body().proposer.province
                )));
            }
        }
        let versions = self.store.agreement_versions(a.body().id)?;
        if a.body().version > 1 || !versions.is_empty() {
            self.check_amendment(&a, &versions, from)?;
        }
        let proposer = a.body().proposer.province;
        let pending = self
            .store
            .agreements()?
            .iter()
            .filter(|x| !x.is_concluded() && x.body().proposer.province == proposer)
            .count();
        if pending >= MAX_PENDING_PROPOSALS_PER_PROVINCE {
            return Err(ApiError::TooManyAttempts(format!(
                "{pending} proposals from {proposer} already await {}'s decision (at most {MAX_PENDING_PROPOSALS_PER_PROVINCE}): {}'s operator lists them (`hcmr agreement list`) and rejects some (`hcmr agreement reject ID`), or {proposer} withdraws one it still holds (`hcmr agreement withdraw ID`; a withdrawal its node could not deliver leaves the copy here until rejected)",
                self.province, self.province
            )));
        }
        // The endpoint is kept with the proposal: it becomes the proposer's address only when
        // this node's operator accepts, so an unverified proposal never redirects a peer.
        self.store
            .put_received_proposal(&a, &r.proposer_endpoint)
            .await?;
        tracing::info!(agreement = %a.body().id, version = a.body().version, peer = %a.body().proposer.province, "agreement proposal received");
        Ok(proto::ProposeAgreementResponse {
            id: a.body().id.to_string(),
        })
    }

    /// Checks a received proposal of an agreement id already known here (an amendment): a
    /// concluded version with the same parties exists, the proposal is newer, and it is signed
    /// (and, over mutual TLS, sent) by a key that the concluded version pins for the proposer or
    /// that the proposer's synced trust feed names. Anyone else could otherwise put a version
    /// signed by a key of their own in front of the operator.
    fn check_amendment(
        &self,
        a: &SignedAgreement,
        versions: &[SignedAgreement],
        from: Option<&Principal>,
    ) -> Result<(), ApiError> {
        let ab = a.body();
        let in_force = versions
            .iter()
            .rev()
            .find(|v| v.is_concluded())
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!(
                    "agreement {} version {} amends nothing concluded here: an amendment needs the agreement in force",
                    ab.id, ab.version
                ))
            })?;
        let nb = in_force.body();
        let same_parties = nb.proposer.province == ab.proposer.province
            && nb.acceptor.province == ab.acceptor.province
            || nb.proposer.province == ab.acceptor.province
                && nb.acceptor.province == ab.proposer.province;
        if !same_parties {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {} exists between other provinces",
                ab.id
            )));
        }
        if ab.version <= nb.version {
            return Err(ApiError::FailedPrecondition(format!(
                "agreement {} is at version {}; version {} is not newer",
                ab.id, nb.version, ab.version
            )));
        }
        let pinned = nb
            .party(ab.proposer.province)
            .map(|p| p.keys.clone())
            .unwrap_or_default();
        let trusted = self.peers.with_feed_keys(ab.proposer.province, pinned);
        let kid = a
            .proposer_signature
            .as_ref()
            .map(|s| s.kid.to_string())
            .unwrap_or_default();
        if !a.signed_by_any(Role::Proposer, &trusted) {
            return Err(ApiError::PermissionDenied(format!(
                "agreement {} version {}: an amendment must be signed by a key that version {} pins for {} (or that its trust feed names); key {kid} is not one",
                ab.id, ab.version, nb.version, ab.proposer.province
            )));
        }
        if let Some(Principal::Node(peer)) = from {
            if !peer.certified_by_any(&trusted) {
                return Err(ApiError::PermissionDenied(format!(
                    "agreement {} version {}: the calling node's certificate is not certified by a key this node trusts for {}",
                    ab.id, ab.version, ab.proposer.province
                )));
            }
        }
        Ok(())
    }
}
