//! Revoking codes this node issued: one code by its id, or every code of a subject issued
//! before a time. Each is a signed entry of the own feed, so peers learn it at their next sync.

use crate::UnixTime;

use super::config::RetentionConfig;
use super::convert;
use super::error::ApiError;
use super::own_feed::OwnFeed;
use super::NodeState;
use crate::clock::Clock;
use crate::feed::Statement;
use crate::identity::{self};
use crate::proto;
use crate::store::Store;

/// What revoking needs: the issued codes (in the store, kept as long as `retention` says), the
/// subject key that hashes a document, the signing key, and the own feed the revocation goes to.
pub(crate) struct Revocation<'a> {
    store: &'a Store,
    retention: &'a RetentionConfig,
    subject_key: &'a crate::node::keyslot::SubjectKeySlot,
    key: &'a crate::node::keyslot::SigningKey,
    clock: &'a Clock,
    own_feed: OwnFeed<'a>,
}

impl NodeState {
    /// The revocation workflows' part of the node.
    pub(crate) fn revocation(&self) -> Revocation<'_> {
        Revocation {
            store: &self.store,
            retention: &self.retention,
            subject_key: &self.subject_key,
            key: &self.key,
            clock: &self.clock,
            own_feed: self.own_feed(),
        }
    }
}

impl Revocation<'_> {
    /// Revokes one code this node issued.
    pub(crate) async fn revoke_code(&self, cti: &str) -> Result<proto::RevokeResponse, ApiError> {
        let bytes: crate::code::Cti = hex::decode(cti.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::invalid("cti", "must be 32 hex digits"))?;
        let Some(issued) = self.store.issued(&bytes)? else {
            return Err(ApiError::NotFound(format!(
                "no code {cti} was issued by this node, or it expired more than {} days ago \
                 (retention.issued_days_after_expiry)",
                self.retention.issued_days_after_expiry
            )));
        };
        // A revocation that changes nothing adds nothing to the feed: a code already revoked, by
        // its own entry or by its subject's, is answered so (a retry after a lost answer is
        // safe). Checked under the feed lock, so two concurrent calls cannot both append.
        let held = self.own_feed.lock().await;
        let state = self.own_feed.state();
        if state.is_revoked(&bytes, &issued.subject_hash, issued.iat) {
            tracing::info!(cti, "code already revoked: nothing added");
            return Ok(proto::RevokeResponse {
                seq: 0,
                already_revoked: true,
            });
        }
        let key = self.key.load_full()?;
        let entry = self
            .own_feed
            .append_own(&held, Statement::RevokeCode { cti: bytes }, &key)
            .await?;
        tracing::info!(cti, seq = entry.seq(), "code revoked");
        Ok(proto::RevokeResponse {
            seq: entry.seq(),
            already_revoked: false,
        })
    }

    /// Revokes every code of a subject issued before a time.
    pub(crate) async fn revoke_subject(
        &self,
        r: proto::RevokeSubjectRequest,
    ) -> Result<proto::RevokeResponse, ApiError> {
        let now = self.clock.now();
        let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
            ApiError::invalid("document_type", "must be set to a known document type")
        })?;
        let number = identity::normalize_document_number(doc_type, &r.document_number)
            .map_err(|e| ApiError::invalid("document_number", e))?;
        let before = if r.issued_before == 0 {
            now + 1
        } else {
            UnixTime::from_secs(r.issued_before)
        };
        // Only this node's clock stamps the codes it issues, so no skew allowance: a later
        // `before` would also revoke codes issued after this request (the new status's).
        if before > now + 1 {
            return Err(ApiError::invalid(
                "issued_before",
                "must not be in the future (it would revoke codes not yet issued)",
            ));
        }
        let subject_hash = self.subject_key.get()?.subject_hash(doc_type, &number);
        drop(number);
        let held = self.own_feed.lock().await;
        // A revocation that changes nothing adds nothing: an earlier one of this subject that
        // reaches as late or later already revokes every code this one would.
        let earlier = self.own_feed.state().subject_revoked_before(&subject_hash);
        if earlier.is_some_and(|t| t >= before) {
            tracing::info!(
                subject = %subject_hash,
                before = before.secs(),
                "subject already revoked: nothing added"
            );
            return Ok(proto::RevokeResponse {
                seq: 0,
                already_revoked: true,
            });
        }
        let key = self.key.load_full()?;
        let entry = self
            .own_feed
            .append_own(
                &held,
                Statement::RevokeSubject {
                    subject_hash,
                    before,
                },
                &key,
            )
            .await?;
        tracing::info!(
            subject = %subject_hash,
            before = before.secs(),
            seq = entry.seq(),
            "subject revoked"
        );
        Ok(proto::RevokeResponse {
            seq: entry.seq(),
            already_revoked: false,
        })
    }
}
