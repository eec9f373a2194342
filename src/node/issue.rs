//! Code-making (IssueHealthCode): the request is checked and turned into claims
//! ([`super::issue_request`]), signed, logged in the issued-code log, and rendered as asked.

use crate::lock::Locked;
use std::sync::{Arc, Mutex};

use super::convert;
use super::error::ApiError;
use super::issue_request::{claims_for, IssuePolicy};
use super::NodeState;
use crate::clock::Clock;
use crate::code::Claims;
use crate::display::DisplayOffset;
use crate::feed::FeedState;
use crate::proto;
use crate::province::Province;
use crate::store::{IssuedRecord, Store};

/// What code-making needs: the node's province, signing key and subject key, the default
/// lifetime, its own feed (subjects revoked), the store (the issued-code log), the display
/// offset (the card) and the clock.
pub(crate) struct Issuer<'a> {
    province: Province,
    key: &'a crate::node::keyslot::SigningKey,
    subject_key: &'a crate::node::keyslot::SubjectKeySlot,
    default_code_lifetime_secs: u64,
    own_feed: &'a Mutex<Arc<FeedState>>,
    store: &'a Store,
    display_offset: DisplayOffset,
    clock: &'a Clock,
}

impl NodeState {
    /// The code-making workflow's part of the node.
    pub(crate) fn issuer(&self) -> Issuer<'_> {
        Issuer {
            province: self.province,
            key: &self.key,
            subject_key: &self.subject_key,
            default_code_lifetime_secs: self.default_code_lifetime_secs,
            own_feed: &self.trust.own_feed,
            store: &self.store,
            display_offset: self.display_offset,
            clock: &self.clock,
        }
    }
}

impl Issuer<'_> {
    /// Issues a health code: checks the request, signs the claims, logs the code in the
    /// issued-code log and renders it as asked.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming the field for a bad request ([`claims_for`]); FAILED_PRECONDITION
    /// when the image cannot be drawn (INTERNAL when its thread failed); the store's error when
    /// the log cannot be written.
    pub(crate) async fn issue(
        &self,
        r: proto::IssueHealthCodeRequest,
    ) -> Result<proto::IssueHealthCodeResponse, ApiError> {
        let now = self.clock.now();
        let policy = IssuePolicy {
            issuer: self.province,
            default_code_lifetime_secs: self.default_code_lifetime_secs,
            subject_key: self.subject_key.get()?,
        };
        let (claims, status) = claims_for(&r, now, &policy, |hash| {
            self.own_feed.locked().subject_revoked_before(hash)
        })?;
        // The code id is the signature's first 16 bytes: known only once signed.
        let crate::code::Encoded { code, cti } =
            crate::code::encode_with_cti(&claims, &*self.key.load()?);
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
        let (qr_image, qr_media_type) = self
            .code_image(r.qr_format, &code, &cti, &claims, status)
            .await?;
        Ok(proto::IssueHealthCodeResponse {
            code,
            cti: hex::encode(cti),
            iat: claims.iat.secs(),
            exp: claims.exp.secs(),
            kid: self.key.load()?.kid().to_string(),
            subject: Some(convert::masked_subject(&claims.subject)),
            qr_image,
            qr_media_type: qr_media_type.to_string(),
        })
    }

    /// The image of a code asked for with `qr_format`: (bytes, media type). The card (an A6
    /// PNG drawn by resvg, tens of milliseconds) is drawn on the blocking pool, as verification
    /// is, so it never holds up a runtime worker; a QR code alone is small enough to draw here.
    async fn code_image(
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
                let png = tokio::task::spawn_blocking(move || crate::card::card_png(&info))
                    .await
                    .map_err(|_| ApiError::Internal("the card rendering thread failed"))?
                    .map_err(|e| failed(e.to_string()))?;
                Ok((png, "image/png"))
            }
            Err(_) => Err(ApiError::invalid("qr_format", "unknown format")),
        }
    }
}
