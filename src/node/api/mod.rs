//! The gRPC services: decode the request, call the core, encode the answer.

use crate::lock::Locked;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Principal;
use super::convert;
use super::error::ApiError;
use super::peer;
use super::NodeState;
use crate::agreement::{AgreementBody, AgreementId, DirectionTerms, Party, Role, SignedAgreement};
use crate::code::{Claims, Subject};
use crate::identity;
use crate::proto;
use crate::store::IssuedRecord;

/// Longest code lifetime a request may ask for, in seconds (7 days).
pub const MAX_CODE_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// Longest a status may be declared valid ahead, in seconds (366 days).
pub const MAX_STATUS_VALIDITY_SECS: u64 = 366 * 24 * 3600;
/// Default oldest-code limit of a proposed agreement, in seconds (1 day).
pub const DEFAULT_MAX_CODE_AGE_SECS: u64 = 24 * 3600;

/// Agreement versions in a ListAgreements page when the request does not say.
const DEFAULT_AGREEMENT_PAGE: u32 = 100;
/// Most agreement versions in one ListAgreements page: 500 of the largest (8 keys a party, every
/// status mapped) stay well under a client's default 4 MiB message limit.
const MAX_AGREEMENT_PAGE: u32 = 500;
/// Length of a ListAgreements cursor: created_at (8) ‖ id (16) ‖ version (4), big-endian.
const AGREEMENT_CURSOR_LEN: usize = 28;
/// Most proposals from one province that may await this node's decision at once; more are
/// refused until the operator rejects some (or that province withdraws them), so a stranger
/// cannot fill the store or the operator's list.
pub const MAX_PENDING_PROPOSALS_PER_PROVINCE: usize = 4;

/// The order of ListAgreements (oldest first) as bytes that sort the same way.
fn agreement_cursor(a: &SignedAgreement) -> [u8; AGREEMENT_CURSOR_LEN] {
    let b = a.body();
    let mut c = [0u8; AGREEMENT_CURSOR_LEN];
    c[..8].copy_from_slice(&b.created_at.to_be_bytes());
    c[8..24].copy_from_slice(&b.id.0);
    c[24..].copy_from_slice(&b.version.to_be_bytes());
    c
}

/// `hcmr.v1.HealthCodeService`.
pub struct HealthCodeApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.FederationService`.
pub struct FederationApi(pub(crate) Arc<NodeState>);
/// `hcmr.v1.OperatorService`.
pub struct OperatorApi(pub(crate) Arc<NodeState>);

impl NodeState {
    async fn issue(
        &self,
        r: proto::IssueHealthCodeRequest,
    ) -> Result<proto::IssueHealthCodeResponse, ApiError> {
        let now = self.now();
        let s = r
            .subject
            .ok_or_else(|| ApiError::invalid("subject", "missing"))?;
        let doc_type = convert::document_type_from_proto(s.document_type).ok_or_else(|| {
            ApiError::invalid(
                "subject.document_type",
                "must be set to a known document type",
            )
        })?;
        let number = identity::normalize_document_number(doc_type, &s.document_number)
            .map_err(|e| ApiError::invalid("subject.document_number", e))?;
        let masked_name =
            identity::mask_name(&s.name).map_err(|e| ApiError::invalid("subject.name", e))?;
        let status = convert::status_from_proto(r.status)
            .ok_or_else(|| ApiError::invalid("status", "must be green, yellow or red"))?;
        if r.status_valid_until <= now {
            return Err(ApiError::invalid(
                "status_valid_until",
                format!(
                    "must be after now ({}); it is {} s since the Unix epoch",
                    crate::rfc3339(now),
                    r.status_valid_until
                ),
            ));
        }
        if r.status_valid_until > now + MAX_STATUS_VALIDITY_SECS {
            return Err(ApiError::invalid(
                "status_valid_until",
                format!(
                    "at most {} days ahead: a health status is re-assessed long before that",
                    MAX_STATUS_VALIDITY_SECS / 86_400
                ),
            ));
        }
        let lifetime = match r.code_lifetime_secs {
            // A printed card is a static code: a display code's five minutes would make it
            // useless by the time it is handed over.
            0 if r.qr_format == proto::QrFormat::CardPng as i32 => {
                crate::card::card_default_lifetime(r.status_valid_until - now)
            }
            0 => self.default_code_lifetime_secs,
            l if l > MAX_CODE_LIFETIME_SECS => {
                return Err(ApiError::invalid(
                    "code_lifetime_secs",
                    format!(
                        "at most {MAX_CODE_LIFETIME_SECS} seconds ({} days)",
                        MAX_CODE_LIFETIME_SECS / 86_400
                    ),
                ))
            }
            l => l,
        };
        let subject = Subject {
            masked_name,
            document_type: doc_type,
            masked_document_number: identity::mask_document_number(&number),
            subject_hash: self.subject_key.subject_hash(doc_type, &number),
        };
        drop(number);
        // A code issued in the same second as a revocation of its subject ("codes issued before
        // T", T = that second + 1) would fall under it: date it T, so the new status stands.
        let iat = self
            .own_feed
            .locked()
            .subject_revoked_before(&subject.subject_hash)
            .map_or(now, |before| now.max(before));
        let claims = Claims {
            iss: self.province.to_string(),
            iat,
            exp: iat + lifetime,
            status: status.to_u64(),
            status_valid_until: r.status_valid_until,
            subject,
        };
        // The code id is the signature's first 16 bytes: known only once signed.
        let crate::code::Encoded { code, cti } =
            crate::code::encode_with_cti(&claims, &self.key.load());
        self.store
            .log_issued(&IssuedRecord {
                cti,
                iat: claims.iat,
                exp: claims.exp,
                status: claims.status,
                status_valid_until: claims.status_valid_until,
                subject_hash: claims.subject.subject_hash,
            })
            .await?;
        tracing::debug!(cti = %hex::encode(cti), %status, "issued health code");
        let (qr_image, qr_media_type) =
            self.code_image(r.qr_format, &code, &cti, &claims, status)?;
        Ok(proto::IssueHealthCodeResponse {
            code,
            cti: hex::encode(cti),
            iat: claims.iat,
            exp: claims.exp,
            kid: self.key.load().kid().to_string(),
            subject: Some(convert::masked_subject(&claims.subject)),
            qr_image,
            qr_media_type: qr_media_type.to_string(),
        })
    }

    /// The image of a code asked for with `qr_format`: (bytes, media type).
    fn code_image(
        &self,
        format: i32,
        code: &str,
        cti: &crate::code::Cti,
        claims: &Claims,
        status: crate::status::HealthStatus,
    ) -> Result<(Vec<u8>, &'static str), ApiError> {
        let failed = |e: String| ApiError::FailedPrecondition(format!("rendering the code: {e}"));
        match proto::QrFormat::try_from(format) {
            Ok(proto::QrFormat::None) => Ok((Vec::new(), "")),
            Ok(proto::QrFormat::Png) => Ok((
                crate::qr::encode_png(code, 8).map_err(|e| failed(e.to_string()))?,
                "image/png",
            )),
            Ok(proto::QrFormat::Svg) => Ok((
                crate::qr::encode_svg(code)
                    .map_err(|e| failed(e.to_string()))?
                    .into_bytes(),
                "image/svg+xml",
            )),
            Ok(proto::QrFormat::CardPng) => {
                let info = crate::card::CardInfo {
                    code: code.to_string(),
                    masked_name: claims.subject.masked_name.clone(),
                    masked_document_number: claims.subject.masked_document_number.clone(),
                    issuer: self.province,
                    status,
                    exp: claims.exp,
                    status_valid_until: claims.status_valid_until,
                    cti_hex: hex::encode(cti),
                    utc_offset: self.display_offset,
                };
                Ok((
                    crate::card::card_png(&info).map_err(|e| failed(e.to_string()))?,
                    "image/png",
                ))
            }
            Err(_) => Err(ApiError::invalid("qr_format", "unknown format")),
        }
    }

    async fn create_agreement(
        &self,
        mut r: proto::CreateAgreementRequest,
    ) -> Result<proto::AgreementView, ApiError> {
        let now = self.now();
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
            r.effective_from
        };
        if r.effective_until <= from.max(now) {
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
        let mut client = peer::connect(self, "peer_endpoint", &r.peer_endpoint, expect).await?;
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
                    effective_from: from,
                    effective_until: r.effective_until,
                },
                DirectionTerms {
                    issuer: self.province,
                    verifier: peer_province,
                    status_map: our_codes_there,
                    max_code_age_secs: max_age,
                    max_trust_age_secs: r.max_trust_age_secs,
                    effective_from: from,
                    effective_until: r.effective_until,
                },
            ],
        };
        let signed = SignedAgreement::propose(body, &self.key.load())
            .map_err(|e| ApiError::FailedPrecondition(format!("cannot propose: {e}")))?;
        let _guard = self.agreement_lock.lock().await;
        client
            .propose_agreement(proto::ProposeAgreementRequest {
                agreement: Some(convert::signed_to_proto(&signed)),
                proposer_endpoint: self.endpoint(),
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

    async fn receive_proposal(
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
        if !a.body().acceptor.keys.contains(&self.key.load().public()) {
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
        let trusted = self.with_feed_keys(ab.proposer.province, pinned);
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

    /// One page of the agreement versions stored here, oldest first (creation time, id,
    /// version), in `r.state` if set.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a `page_token` that is not one or was made for another state.
    pub(crate) fn list_agreements(
        &self,
        r: &proto::ListAgreementsRequest,
    ) -> Result<proto::ListAgreementsResponse, ApiError> {
        let size = match r.page_size {
            0 => DEFAULT_AGREEMENT_PAGE,
            n => n.min(MAX_AGREEMENT_PAGE),
        } as usize;
        let after = match r.page_token.as_str() {
            "" => None,
            t => {
                let raw = hex::decode(t)
                    .ok()
                    .filter(|b| b.len() == AGREEMENT_CURSOR_LEN + 4)
                    .ok_or_else(|| {
                        ApiError::invalid("page_token", "not a next_page_token of ListAgreements")
                    })?;
                let (cursor, state) = raw.split_at(AGREEMENT_CURSOR_LEN);
                if state != r.state.to_be_bytes() {
                    return Err(ApiError::invalid(
                        "page_token",
                        "made for another state: `state` must be that of the call that returned it",
                    ));
                }
                Some(cursor.to_vec())
            }
        };
        let mut all = self.store.agreements()?;
        all.sort_by_key(agreement_cursor);
        let mut page = Vec::new();
        let mut next = None;
        for a in all.iter().filter(|a| {
            after
                .as_ref()
                .is_none_or(|c| agreement_cursor(a).as_slice() > c.as_slice())
        }) {
            let v = self.view(a)?;
            if r.state != 0 && v.state != r.state {
                continue;
            }
            if page.len() == size {
                // More follow: continue after the last one shown.
                next = page.last().map(|(c, _): &([u8; AGREEMENT_CURSOR_LEN], _)| {
                    let mut t = c.to_vec();
                    t.extend_from_slice(&r.state.to_be_bytes());
                    hex::encode(t)
                });
                break;
            }
            page.push((agreement_cursor(a), v));
        }
        Ok(proto::ListAgreementsResponse {
            agreements: page.into_iter().map(|(_, v)| v).collect(),
            next_page_token: next.unwrap_or_default(),
        })
    }

    async fn receive_acceptance(
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
        self.rebuild_trust()?;
        tracing::info!(agreement = %a.body().id, peer = %a.body().acceptor.province, "agreement concluded (accepted by peer)");
        Ok(proto::AcceptAgreementResponse {
            id: a.body().id.to_string(),
        })
    }

    async fn approve(&self, id: &str) -> Result<proto::AgreementView, ApiError> {
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
                t.by,
                crate::rfc3339(t.effective_at)
            )));
        }
        a.accept(&self.key.load())
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
        let mut client = peer::connect(
            self,
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
        self.store.put_accepted(&a, &url, self.now()).await?;
        self.rebuild_trust()?;
        tracing::info!(agreement = %id, peer = %proposer, "agreement concluded (accepted here)");
        self.view(&a)
    }
}

#[tonic::async_trait]
impl proto::health_code_service_server::HealthCodeService for HealthCodeApi {
    async fn issue_health_code(
        &self,
        request: Request<proto::IssueHealthCodeRequest>,
    ) -> Result<Response<proto::IssueHealthCodeResponse>, Status> {
        let started = std::time::Instant::now();
        let issued = self.0.issue(request.into_inner()).await;
        self.0.metrics.issue(started.elapsed(), issued.is_ok());
        Ok(Response::new(issued?))
    }

    async fn verify_health_code(
        &self,
        request: Request<proto::VerifyHealthCodeRequest>,
    ) -> Result<Response<proto::VerifyHealthCodeResponse>, Status> {
        let checkpoint = checkpoint_of(&request, &request.get_ref().checkpoint_id).to_string();
        let who = caller_of(&request);
        let code = request.into_inner().code;
        let (verdicts, now) = self
            .0
            .verify_and_audit(&who, vec![code], &checkpoint, "grpc")
            .await?;
        let verdict = verdicts
            .first()
            .ok_or(ApiError::Internal("no verdict for the code"))?;
        Ok(Response::new(convert::verdict_to_proto(verdict, now)))
    }

    async fn batch_verify_health_codes(
        &self,
        request: Request<proto::BatchVerifyHealthCodesRequest>,
    ) -> Result<Response<proto::BatchVerifyHealthCodesResponse>, Status> {
        let checkpoint = checkpoint_of(&request, &request.get_ref().checkpoint_id).to_string();
        let who = caller_of(&request);
        let remote = remote_of(&request);
        let codes = request.into_inner().codes;
        if codes.is_empty() {
            return Err(ApiError::invalid("codes", "at least one code is needed").into());
        }
        if codes.len() > MAX_BATCH_CODES {
            return Err(ApiError::invalid(
                "codes",
                format!(
                    "at most {MAX_BATCH_CODES} codes per call, got {}",
                    codes.len()
                ),
            )
            .into());
        }
        // The caller's rate counts codes: the call took one, the other codes take theirs.
        self.0.take_codes(
            &who,
            codes.len() - 1,
            "/hcmr.v1.HealthCodeService/BatchVerifyHealthCodes",
            remote,
        )?;
        let (verdicts, now) = self
            .0
            .verify_and_audit(&who, codes, &checkpoint, "grpc")
            .await?;
        Ok(Response::new(proto::BatchVerifyHealthCodesResponse {
            results: verdicts
                .iter()
                .map(|v| convert::verdict_to_proto(v, now))
                .collect(),
        }))
    }

    async fn match_identity(
        &self,
        request: Request<proto::MatchIdentityRequest>,
    ) -> Result<Response<proto::MatchIdentityResponse>, Status> {
        Ok(Response::new(
            self.0.match_identity(request.into_inner()).await?,
        ))
    }

    async fn revoke_health_code(
        &self,
        request: Request<proto::RevokeHealthCodeRequest>,
    ) -> Result<Response<proto::RevokeResponse>, Status> {
        Ok(Response::new(
            self.0.revoke_code(&request.get_ref().cti).await?,
        ))
    }

    async fn revoke_subject(
        &self,
        request: Request<proto::RevokeSubjectRequest>,
    ) -> Result<Response<proto::RevokeResponse>, Status> {
        Ok(Response::new(
            self.0.revoke_subject(request.into_inner()).await?,
        ))
    }
}

/// Most codes one BatchVerifyHealthCodes call may carry: 256 typical codes (about 220
/// characters each) fit the default 64 KiB request limit.
pub(crate) const MAX_BATCH_CODES: usize = 256;

/// The checkpoint id of a verification: the request field, else the `x-hcmr-checkpoint`
/// metadata, else empty.
/// Who made a call, as the access log names them (`caller NAME`, `peer PROVINCE`), for the
/// verifier's turns; empty on an unchecked node.
fn caller_of<T>(request: &Request<T>) -> String {
    match request.extensions().get::<Principal>() {
        Some(Principal::Caller(c)) => format!("caller {}", c.name),
        Some(Principal::Node(p)) => format!("peer {}", p.province),
        _ => String::new(),
    }
}

/// The remote address of a call.
fn remote_of<T>(request: &Request<T>) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<super::listener::TlsConnInfo>()
        .and_then(|t| t.remote)
        .or_else(|| request.remote_addr())
}

fn checkpoint_of<'a, T>(request: &'a Request<T>, field: &'a str) -> &'a str {
    if field.is_empty() {
        request
            .metadata()
            .get("x-hcmr-checkpoint")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    } else {
        field
    }
}

#[tonic::async_trait]
impl proto::federation_service_server::FederationService for FederationApi {
    async fn get_node_info(
        &self,
        _request: Request<proto::GetNodeInfoRequest>,
    ) -> Result<Response<proto::GetNodeInfoResponse>, Status> {
        let s = &self.0;
        Ok(Response::new(proto::GetNodeInfoResponse {
            province: s.province.to_string(),
            province_name: s.province.name_en().to_string(),
            keys: s
                .trust
                .load()
                .own_keys()
                .iter()
                .map(convert::key_info)
                .collect(),
            endpoint: s.endpoint(),
            software_version: env!("CARGO_PKG_VERSION").to_string(),
        }))
    }

    async fn propose_agreement(
        &self,
        request: Request<proto::ProposeAgreementRequest>,
    ) -> Result<Response<proto::ProposeAgreementResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(
            self.0
                .receive_proposal(request.into_inner(), from.as_ref())
                .await?,
        ))
    }

    async fn accept_agreement(
        &self,
        request: Request<proto::AcceptAgreementRequest>,
    ) -> Result<Response<proto::AcceptAgreementResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(
            self.0
                .receive_acceptance(request.into_inner(), from.as_ref())
                .await?,
        ))
    }

    async fn notify_termination(
        &self,
        request: Request<proto::NotifyTerminationRequest>,
    ) -> Result<Response<proto::NotifyTerminationResponse>, Status> {
        self.0.receive_termination(request.into_inner()).await?;
        Ok(Response::new(proto::NotifyTerminationResponse {}))
    }

    async fn notify_proposal_dropped(
        &self,
        request: Request<proto::NotifyProposalDroppedRequest>,
    ) -> Result<Response<proto::NotifyProposalDroppedResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        let versions = self
            .0
            .receive_proposal_notice(request.into_inner(), from.as_ref())
            .await?;
        Ok(Response::new(proto::NotifyProposalDroppedResponse {
            versions,
        }))
    }

    type GetFeedStream = tokio_stream::Iter<std::vec::IntoIter<Result<proto::FeedEntry, Status>>>;

    async fn get_feed(
        &self,
        request: Request<proto::GetFeedRequest>,
    ) -> Result<Response<Self::GetFeedStream>, Status> {
        let from = request.get_ref().from_seq.max(1);
        let entries = self.0.store.feed_from(from).map_err(ApiError::from)?;
        let items: Vec<Result<proto::FeedEntry, Status>> = entries
            .iter()
            .map(|e| Ok(super::sync::feed_entry_to_proto(e)))
            .collect();
        Ok(Response::new(tokio_stream::iter(items)))
    }

    async fn match_subject(
        &self,
        request: Request<proto::MatchSubjectRequest>,
    ) -> Result<Response<proto::MatchSubjectResponse>, Status> {
        Ok(Response::new(
            self.0.match_subject(request.get_ref()).await?,
        ))
    }

    async fn get_agreements(
        &self,
        request: Request<proto::GetAgreementsRequest>,
    ) -> Result<Response<proto::GetAgreementsResponse>, Status> {
        // Over mutual TLS a peer learns only its own agreements, whatever it asks.
        if let Some(Principal::Node(peer)) = request.extensions().get::<Principal>() {
            if request.get_ref().province != peer.province.to_string() {
                return Err(ApiError::PermissionDenied(format!(
                    "province: the calling node is {}, not {}",
                    peer.province,
                    request.get_ref().province
                ))
                .into());
            }
        }
        Ok(Response::new(
            self.0.agreements_for(&request.get_ref().province)?,
        ))
    }
}

#[tonic::async_trait]
impl proto::operator_service_server::OperatorService for OperatorApi {
    async fn create_agreement(
        &self,
        request: Request<proto::CreateAgreementRequest>,
    ) -> Result<Response<proto::CreateAgreementResponse>, Status> {
        let view = self.0.create_agreement(request.into_inner()).await?;
        Ok(Response::new(proto::CreateAgreementResponse {
            agreement: Some(view),
        }))
    }

    async fn list_agreements(
        &self,
        request: Request<proto::ListAgreementsRequest>,
    ) -> Result<Response<proto::ListAgreementsResponse>, Status> {
        Ok(Response::new(self.0.list_agreements(request.get_ref())?))
    }

    async fn approve_agreement(
        &self,
        request: Request<proto::ApproveAgreementRequest>,
    ) -> Result<Response<proto::ApproveAgreementResponse>, Status> {
        let view = self.0.approve(&request.get_ref().id).await?;
        Ok(Response::new(proto::ApproveAgreementResponse {
            agreement: Some(view),
        }))
    }

    async fn terminate_agreement(
        &self,
        request: Request<proto::TerminateAgreementRequest>,
    ) -> Result<Response<proto::TerminateAgreementResponse>, Status> {
        Ok(Response::new(self.0.terminate(request.into_inner()).await?))
    }

    async fn reject_agreement(
        &self,
        request: Request<proto::RejectAgreementRequest>,
    ) -> Result<Response<proto::RejectAgreementResponse>, Status> {
        let (versions, peer_notified) = self
            .0
            .discard_proposal(&request.get_ref().id, false)
            .await?;
        Ok(Response::new(proto::RejectAgreementResponse {
            versions,
            peer_notified,
        }))
    }

    async fn withdraw_agreement(
        &self,
        request: Request<proto::WithdrawAgreementRequest>,
    ) -> Result<Response<proto::WithdrawAgreementResponse>, Status> {
        let (versions, peer_notified) =
            self.0.discard_proposal(&request.get_ref().id, true).await?;
        Ok(Response::new(proto::WithdrawAgreementResponse {
            versions,
            peer_notified,
        }))
    }

    async fn rotate_key(
        &self,
        _request: Request<proto::RotateKeyRequest>,
    ) -> Result<Response<proto::RotateKeyResponse>, Status> {
        Ok(Response::new(self.0.rotate_key().await?))
    }

    async fn withdraw_key(
        &self,
        request: Request<proto::WithdrawKeyRequest>,
    ) -> Result<Response<proto::WithdrawKeyResponse>, Status> {
        Ok(Response::new(
            self.0.withdraw_key(&request.get_ref().kid).await?,
        ))
    }

    async fn sync_now(
        &self,
        _request: Request<proto::SyncNowRequest>,
    ) -> Result<Response<proto::SyncNowResponse>, Status> {
        self.0.deliver_proposal_notices(None).await;
        let targets = self.0.sync_targets();
        let peers = self
            .0
            .sync_peers(&targets)
            .await
            .iter()
            .map(super::sync::outcome_to_proto)
            .collect();
        Ok(Response::new(proto::SyncNowResponse { peers }))
    }

    async fn list_audit_records(
        &self,
        request: Request<proto::ListAuditRecordsRequest>,
    ) -> Result<Response<proto::ListAuditRecordsResponse>, Status> {
        Ok(Response::new(self.0.list_audit(request.get_ref())?))
    }

    async fn export_trust_bundle(
        &self,
        _request: Request<proto::ExportTrustBundleRequest>,
    ) -> Result<Response<proto::ExportTrustBundleResponse>, Status> {
        Ok(Response::new(self.0.export_bundle()?))
    }

    async fn add_caller(
        &self,
        request: Request<proto::AddCallerRequest>,
    ) -> Result<Response<proto::AddCallerResponse>, Status> {
        Ok(Response::new(
            self.0.add_caller(request.into_inner()).await?,
        ))
    }

    async fn list_callers(
        &self,
        _request: Request<proto::ListCallersRequest>,
    ) -> Result<Response<proto::ListCallersResponse>, Status> {
        Ok(Response::new(self.0.list_callers()?))
    }

    async fn remove_caller(
        &self,
        request: Request<proto::RemoveCallerRequest>,
    ) -> Result<Response<proto::RemoveCallerResponse>, Status> {
        let by = match request.extensions().get::<Principal>() {
            Some(Principal::Caller(c)) => Some(c.clone()),
            _ => None,
        };
        Ok(Response::new(
            self.0
                .remove_caller(&request.get_ref().name, by.as_ref())
                .await?,
        ))
    }

    async fn list_access_denials(
        &self,
        request: Request<proto::ListAccessDenialsRequest>,
    ) -> Result<Response<proto::ListAccessDenialsResponse>, Status> {
        // Refusals counted but not yet written are written first, so the list shows every
        // refusal made before this call (issue 14 fault 10: it lagged by up to 200 ms).
        if let Err((e, lost)) = self.0.refusals.flush(&self.0.store).await {
            tracing::error!(error = %e, lost, "refused-call records could not be stored");
        }
        Ok(Response::new(self.0.list_denials(request.get_ref())?))
    }

    type ExportBackupStream =
        tokio_stream::wrappers::ReceiverStream<Result<proto::BackupChunk, Status>>;

    async fn export_backup(
        &self,
        _request: Request<proto::ExportBackupRequest>,
    ) -> Result<Response<Self::ExportBackupStream>, Status> {
        Ok(Response::new(self.0.clone().backup_stream()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeKey;
    use crate::province::Province;
    use crate::status::HealthStatus::{Green, Red, Yellow};
    use prost::Message;

    /// A full ListAgreements page of the largest agreement views (8 keys a party, every status
    /// mapped both ways, terminated, the longest next_page_token) fits a client's default
    /// 4 MiB message limit.
    #[test]
    fn a_full_page_of_the_largest_agreements_fits_the_default_message_limit() {
        let keys =
            |n: u8| -> Vec<NodeKey> { (0..8).map(|i| NodeKey::from_seed(&[n + i; 32])).collect() };
        let (a_keys, b_keys) = (keys(1), keys(100));
        let (a, b) = (
            Province::from_code(510000).unwrap(),
            Province::from_code(440000).unwrap(),
        );
        let dir = |issuer, verifier| DirectionTerms {
            issuer,
            verifier,
            status_map: [(Green, Green), (Yellow, Red), (Red, Red)]
                .into_iter()
                .collect(),
            max_code_age_secs: crate::code::MAX_TIME,
            max_trust_age_secs: crate::code::MAX_TIME,
            effective_from: crate::code::MAX_TIME / 2,
            effective_until: crate::code::MAX_TIME,
        };
        let body = AgreementBody {
            id: AgreementId([0xff; 16]),
            version: u32::MAX,
            created_at: crate::code::MAX_TIME / 2,
            proposer: Party {
                province: a,
                keys: a_keys.iter().map(NodeKey::public).collect(),
            },
            acceptor: Party {
                province: b,
                keys: b_keys.iter().map(NodeKey::public).collect(),
            },
            directions: vec![dir(a, b), dir(b, a)],
        };
        let mut signed = SignedAgreement::propose(body, &a_keys[0]).unwrap();
        signed.accept(&b_keys[0]).unwrap();
        let t = crate::agreement::Termination::sign(
            signed.body().id,
            b,
            crate::code::MAX_TIME,
            crate::code::MAX_TIME,
            &b_keys[0],
        );
        let view = convert::agreement_view(
            &signed,
            a,
            convert::Standing {
                superseded: false,
                termination: Some(&t),
                now: crate::code::MAX_TIME,
            },
        );
        let page = proto::ListAgreementsResponse {
            agreements: vec![view; MAX_AGREEMENT_PAGE as usize],
            next_page_token: "f".repeat(2 * (AGREEMENT_CURSOR_LEN + 4)),
        };
        let len = page.encoded_len();
        assert!(len < 4 * 1024 * 1024, "{len} bytes");
    }
}
