//! The identity match: does the document shown match the code's subject? Attempts are limited
//! per code (and per subject at the issuer), counted durably in the store.

use super::convert;
use super::error::ApiError;
use super::{peer, NodeState, TrustState};
use crate::clock::Clock;
use crate::identity::{self};
use crate::proto;
use crate::province::Province;
use crate::store::Store;

/// Most identity matches per code (and per subject at the issuer) in one window: enough for a
/// checkpoint and a second look, far too few to guess a masked number (hundreds of thousands of
/// candidates remain behind 5113*242X).
pub(crate) const MAX_MATCH_ATTEMPTS: u32 = 5;
/// The window of [`MAX_MATCH_ATTEMPTS`], in seconds.
pub(crate) const MATCH_WINDOW_SECS: u64 = 3600;

fn too_many() -> ApiError {
    ApiError::TooManyAttempts(format!(
        "identity match: at most {MAX_MATCH_ATTEMPTS} attempts per code per hour; compare the masked ID with the document by eye"
    ))
}

/// What the identity match needs: the province and subject key (own codes), the trust
/// snapshot (is the code recognized), the store (attempt counts, peer endpoints) and the clock.
/// A peer's code is asked of its issuer's node over `peers`.
pub(crate) struct IdentityMatch<'a> {
    province: Province,
    subject_key: &'a crate::node::keyslot::SubjectKeySlot,
    trust: &'a TrustState,
    store: &'a Store,
    clock: &'a Clock,
    peers: peer::PeerLink<'a>,
}

impl NodeState {
    /// The identity match workflow's part of the node.
    pub(crate) fn identity_match(&self) -> IdentityMatch<'_> {
        IdentityMatch {
            province: self.province,
            subject_key: &self.subject_key,
            trust: &self.trust,
            store: &self.store,
            clock: &self.clock,
            peers: self.peer_link(),
        }
    }
}

impl IdentityMatch<'_> {
    /// Counts an identity-match attempt for `key` (a hashed code id, or a subject hash
    /// zero-padded) at `now`; false when the key is over [`MAX_MATCH_ATTEMPTS`] in its
    /// [`MATCH_WINDOW_SECS`]. Counted in the store, durably, so a restart resets nothing.
    pub(crate) async fn match_allowed(
        &self,
        key: [u8; 16],
        now: crate::UnixTime,
    ) -> Result<bool, ApiError> {
        let n = self
            .store
            .count_match_attempt(key, now, MATCH_WINDOW_SECS)
            .await?;
        Ok(n <= MAX_MATCH_ATTEMPTS)
    }

    /// Does the document shown match the code's subject? Own codes are checked here; a peer's
    /// code is asked of the issuer's node, the only holder of its subject key.
    pub(crate) async fn match_identity(
        &self,
        r: proto::MatchIdentityRequest,
    ) -> Result<proto::MatchIdentityResponse, ApiError> {
        let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
            ApiError::invalid("document_type", "must be set to a known document type")
        })?;
        let number = identity::normalize_document_number(doc_type, &r.document_number)
            .map_err(|e| ApiError::invalid("document_number", e))?;
        let now = self.clock.now();
        let verdict = crate::verify::verify(&r.code, &self.trust.load(), now);
        // Only a code recognized here has a subject worth matching: an expired, revoked or
        // forged code must not become an oracle for document numbers.
        let (Some(claims), Some(cti), Some(issuer), true) = (
            &verdict.claims,
            verdict.cti,
            verdict.issuer,
            verdict.recognized(),
        ) else {
            return Err(ApiError::FailedPrecondition(format!(
                "the code is not recognized here ({}): there is no subject to match",
                verdict.reason.explain()
            )));
        };
        if !self
            .match_allowed(crate::audit::cti_hash(&cti), now)
            .await?
        {
            return Err(too_many());
        }
        let hash = claims.subject.subject_hash;
        if claims.subject.document_type != doc_type {
            return Ok(proto::MatchIdentityResponse {
                matches: false,
                checked_by: self.province.to_string(),
            });
        }
        if issuer == self.province {
            let matches = self.subject_key.get()?.subject_hash(doc_type, &number) == hash;
            return Ok(proto::MatchIdentityResponse {
                matches,
                checked_by: self.province.to_string(),
            });
        }
        let url = self.store.peer_endpoint(issuer)?.ok_or_else(|| {
            ApiError::FailedPrecondition(format!("no endpoint recorded for {issuer}"))
        })?;
        let unreachable = |detail: String| {
            ApiError::PeerUnavailable {
            endpoint: url.clone(),
            detail: format!(
                "{detail}; the identity match needs the issuing province's node: compare the masked ID by eye"
            ),
        }
        };
        let mut client = self
            .peers
            .connect("peer endpoint", &url, peer::Expect::Province(issuer))
            .await
            .map_err(|e| match e {
                ApiError::PeerUnavailable { detail, .. } => unreachable(detail),
                other => unreachable(other.to_string()),
            })?;
        let answer = client
            .match_subject(proto::MatchSubjectRequest {
                subject_hash: hash.to_string(),
                document_type: r.document_type,
                document_number: number,
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::ResourceExhausted => too_many(),
                _ => unreachable(s.message().to_string()),
            })?
            .into_inner();
        Ok(proto::MatchIdentityResponse {
            matches: answer.matches,
            checked_by: issuer.to_string(),
        })
    }

    /// A peer asks whether a document matches one of this node's subject hashes.
    pub(crate) async fn match_subject(
        &self,
        r: &proto::MatchSubjectRequest,
    ) -> Result<proto::MatchSubjectResponse, ApiError> {
        let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
            ApiError::invalid("document_type", "must be set to a known document type")
        })?;
        let number = identity::normalize_document_number(doc_type, &r.document_number)
            .map_err(|e| ApiError::invalid("document_number", e))?;
        let hash: [u8; identity::SUBJECT_HASH_LEN] = hex::decode(&r.subject_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::invalid("subject_hash", "must be 16 hex digits"))?;
        // The limiter counts by 16-byte keys: the 8-byte hash, zero-padded.
        let mut limit_key = [0u8; 16];
        limit_key[..hash.len()].copy_from_slice(&hash);
        if !self.match_allowed(limit_key, self.clock.now()).await? {
            return Err(too_many());
        }
        let mine = self.subject_key.get()?.subject_hash(doc_type, &number);
        Ok(proto::MatchSubjectResponse {
            matches: mine.0 == hash,
        })
    }
}
