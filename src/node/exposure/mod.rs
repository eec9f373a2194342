//! Exposure notices (docs/tracing.md section 5): the tracing node signs one notice per fellow
//! traveller and queues it in the trip outbox for the traveller's issuing province
//! ([`queue_notices`]); that province's node takes it in over `SubmitTripRecord`
//! ([`Exposure::receive`]), matches it against its issued-code log, keeps it
//! (`exposure_notices`) and lists it for its platform ([`Exposure::list`]). hcmr changes no
//! status by itself: the issuing province decides.
//!
//! Every notice queued, taken in or refused is an audit record (`TraceAudit`, actions
//! NOTICE_SENT and NOTICE_RECEIVED).

use crate::audit::{AuditRecord, TraceAction, TraceAudit};
use crate::manifest::TripId;
use crate::node::auth::Principal;
use crate::node::error::ApiError;
use crate::node::NodeState;
use crate::proto;
use crate::province::Province;
use crate::store::{Stored, StoredNotice, TripRecordKind};
use crate::trace::{
    CaseClass, ExposureNotice, NoticeId, SignedExposureNotice, CTI_PREFIX_LEN, MAX_NOTICE_BYTES,
    NOTICE_ID_LEN, SUBJECT_PREFIX_LEN,
};
use crate::UnixTime;

/// Default and largest page of ListExposureNotices.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// One notice to send: a fellow traveller of a case, as the trace found them on a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoticeDraft {
    /// The fellow traveller's issuing province: the notice goes to its node (this node's own
    /// province is stored here directly).
    pub(crate) to: Province,
    /// The trip.
    pub(crate) trip: TripId,
    /// The trip's origin province.
    pub(crate) trip_origin: Province,
    /// The trip's planned departure.
    pub(crate) departure: UnixTime,
    /// The traveller's seat (1 to 99).
    pub(crate) seat: u16,
    /// Seats between the traveller and the case.
    pub(crate) distance: u16,
    /// The traveller was crew.
    pub(crate) crew: bool,
    /// The case's classification.
    pub(crate) case_class: CaseClass,
    /// The first 6 bytes of the traveller's code's cti, from the manifest.
    pub(crate) cti_prefix: [u8; CTI_PREFIX_LEN],
    /// The first 4 bytes of the traveller's keyed subject hash, from the manifest.
    pub(crate) subject_prefix: [u8; SUBJECT_PREFIX_LEN],
}

/// The exposure notice workflows' part of the node.
pub(crate) struct Exposure<'a> {
    state: &'a NodeState,
}

impl NodeState {
    /// The exposure notice workflows.
    pub(crate) fn exposure(&self) -> Exposure<'_> {
        Exposure { state: self }
    }
}

/// Signs one notice per draft with this node's key and queues it for the draft's province in
/// the trip outbox (durable, retried until acknowledged, dead-lettered on a refusal for good);
/// a notice for this node's own province is stored directly, as if received. Each is an audit
/// record (NOTICE_SENT). Returns the number queued or stored.
///
/// # Errors
/// INVALID_ARGUMENT (`exposure_notice`) for a draft that breaks the notice's rules (a seat
/// outside 1 to 99, a distance no seat is at), before anything is queued; UNAVAILABLE when the
/// store fails (the notices queued before stay queued).
pub(crate) async fn queue_notices(
    state: &NodeState,
    drafts: &[NoticeDraft],
) -> Result<u32, ApiError> {
    state.exposure().queue(drafts).await
}

/// Whether an agreement in force lets `from` send this node exposure notices: in the
/// DirectionTerms whose issuer is `from` and verifier this province, the tracing term (the same
/// term that lets `from` trace here, docs/tracing.md section 4).
fn tracing_allowed(state: &NodeState, from: Province) -> bool {
    crate::node::trace::find::tracing_allowed(state, from, state.clock.now())
}

impl Exposure<'_> {
    /// See [`queue_notices`].
    ///
    /// # Errors
    /// As [`queue_notices`].
    pub(crate) async fn queue(&self, drafts: &[NoticeDraft]) -> Result<u32, ApiError> {
        let s = self.state;
        let now = s.clock.now();
        let notices: Vec<ExposureNotice> = drafts
            .iter()
            .map(|d| {
                let n = ExposureNotice {
                    notice_id: NoticeId(rand::random()),
                    from: s.province,
                    to: d.to,
                    trip_id: d.trip,
                    trip_origin: d.trip_origin,
                    departure: d.departure,
                    seat: d.seat,
                    distance: d.distance,
                    crew: d.crew,
                    case_class: d.case_class,
                    cti_prefix: d.cti_prefix,
                    subject_prefix: d.subject_prefix,
                    issued_at: now,
                };
                n.check()
                    .map(|()| n)
                    .map_err(|e| ApiError::invalid("exposure_notice", e))
            })
            .collect::<Result<_, _>>()?;
        let key = s.key.load_full()?;
        let mut queued = 0u32;
        let mut remote = false;
        for n in notices {
            let bytes = n.sign(&key);
            if n.to == s.province {
                let signed = SignedExposureNotice::decode(&bytes)
                    .map_err(|_| ApiError::Internal("an own exposure notice does not decode"))?;
                self.take_in(&signed, now).await?;
            } else {
                s.store
                    .enqueue_trip_record(n.to, TripRecordKind::ExposureNotice, bytes, now)
                    .await?;
                remote = true;
            }
            tracing::info!(notice = %n.notice_id, to = %n.to, trip = %n.trip_id, "exposure notice queued");
            self.audit(
                now,
                n.to,
                TraceAudit {
                    action: TraceAction::NoticeSent,
                    asked_by: s.province.to_string(),
                    trip_id: Some(n.trip_id),
                    subject_prefix: Some(n.subject_prefix),
                    count: 1,
                    refusal: String::new(),
                },
            );
            queued += 1;
        }
        if remote {
            s.wake_outbox();
        }
        Ok(queued)
    }

    /// Takes in a notice a peer's node sent (`SubmitTripRecordRequest.exposure_notice`) from
    /// `from` (the calling node; `None` or unchecked on a node without TLS): decoded strictly,
    /// signed by the calling node's province under a key trusted here for it, addressed to
    /// this province, under an agreement that lets the signer trace here. Stored once, with
    /// the resident's keyed subject hash when the issued-code log holds the code; the same
    /// notice again answers `duplicate` and changes nothing. Every outcome after decoding is an
    /// audit record (NOTICE_RECEIVED).
    ///
    /// # Errors
    /// INVALID_ARGUMENT (`exposure_notice`: empty, too large, malformed, for another province),
    /// PERMISSION_DENIED (signed for another province than the calling node's; no agreement
    /// lets the signer trace here), UNAUTHENTICATED (no trusted key of the signer with the kid,
    /// or a bad signature), ALREADY_EXISTS (another notice with this id), UNAVAILABLE.
    pub(crate) async fn receive(
        &self,
        from: Option<&Principal>,
        bytes: Vec<u8>,
    ) -> Result<proto::SubmitTripRecordResponse, ApiError> {
        if bytes.is_empty() || bytes.len() > MAX_NOTICE_BYTES {
            return Err(ApiError::invalid(
                "exposure_notice",
                format!(
                    "{} bytes; 1 to {MAX_NOTICE_BYTES} are accepted",
                    bytes.len()
                ),
            ));
        }
        let signed = SignedExposureNotice::decode(&bytes)
            .map_err(|e| ApiError::invalid("exposure_notice", e))?;
        let now = self.state.clock.now();
        let n = &signed.notice;
        let outcome = self.admit(from, &signed).await;
        let (count, refusal) = match &outcome {
            Ok(r) if r.duplicate => (0, String::new()),
            Ok(_) => (1, String::new()),
            Err(e) => (0, e.to_string()),
        };
        let asked_by = match from {
            Some(Principal::Node(p)) => p.province.to_string(),
            _ => n.from.to_string(),
        };
        self.audit(
            now,
            n.from,
            TraceAudit {
                action: TraceAction::NoticeReceived,
                asked_by,
                trip_id: Some(n.trip_id),
                subject_prefix: Some(n.subject_prefix),
                count,
                refusal,
            },
        );
        outcome
    }

    /// The checks and the storing of [`Exposure::receive`].
    async fn admit(
        &self,
        from: Option<&Principal>,
        signed: &SignedExposureNotice,
    ) -> Result<proto::SubmitTripRecordResponse, ApiError> {
        let s = self.state;
        let n = &signed.notice;
        if let Some(Principal::Node(peer)) = from {
            if peer.province != n.from {
                return Err(ApiError::PermissionDenied(format!(
                    "the exposure notice is signed for {}, but the calling node is {}",
                    n.from, peer.province
                )));
            }
        }
        if !tracing_allowed(s, n.from) {
            return Err(ApiError::PermissionDenied(format!(
                "no agreement in force lets {} trace residents of {} (the tracing term)",
                n.from, s.province
            )));
        }
        let keys = s.peer_link().peer_keys(n.from);
        let Some(key) = keys.iter().find(|k| k.kid == signed.kid()) else {
            return Err(ApiError::Unauthenticated(format!(
                "no key of {} with kid {} is trusted here",
                n.from,
                signed.kid()
            )));
        };
        if !signed.verify_signature(key) {
            return Err(ApiError::Unauthenticated(format!(
                "the exposure notice's signature does not verify under {}'s key {}",
                n.from,
                signed.kid()
            )));
        }
        if n.to != s.province {
            return Err(ApiError::invalid(
                "exposure_notice",
                format!("is for {}; this node is {}'s", n.to, s.province),
            ));
        }
        self.take_in(signed, s.clock.now()).await
    }

    /// Matches a verified notice with the issued-code log and stores it.
    async fn take_in(
        &self,
        signed: &SignedExposureNotice,
        now: UnixTime,
    ) -> Result<proto::SubmitTripRecordResponse, ApiError> {
        let s = self.state;
        let n = &signed.notice;
        let subject_hash = s
            .store
            .issued_by_prefix(&n.cti_prefix, &n.subject_prefix)?
            .map(|r| r.subject_hash);
        let stored = s
            .store
            .store_exposure_notice(&StoredNotice {
                id: n.notice_id,
                notice: signed.cose_bytes().to_vec(),
                received_at: now,
                subject_hash,
            })
            .await?;
        match stored {
            Stored::New => {
                tracing::info!(notice = %n.notice_id, from = %n.from, trip = %n.trip_id, matched = subject_hash.is_some(), "exposure notice received");
                Ok(proto::SubmitTripRecordResponse { duplicate: false })
            }
            Stored::Duplicate => Ok(proto::SubmitTripRecordResponse { duplicate: true }),
            Stored::Conflict => Err(ApiError::AlreadyExists(format!(
                "exposure notice {} is stored here with other content",
                n.notice_id
            ))),
        }
    }

    /// Queues the audit record of a notice step.
    fn audit(&self, now: UnixTime, other: Province, trace: TraceAudit) {
        self.state
            .audit
            .queue(AuditRecord::of_trace(now, Some(other), trace));
    }

    /// ListExposureNotices: the notices taken in, newest first, received at or after
    /// `since`, in pages.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (`page_token`), UNAVAILABLE, INTERNAL for a stored notice that no longer
    /// decodes.
    pub(crate) async fn list(
        &self,
        r: proto::ListExposureNoticesRequest,
    ) -> Result<proto::ListExposureNoticesResponse, ApiError> {
        let size = match r.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let below = parse_page_token(&r.page_token)?;
        let (notices, next) = self
            .state
            .store
            .exposure_notices_page(UnixTime::from_secs(r.since), below, size)
            .await?;
        Ok(proto::ListExposureNoticesResponse {
            notices: notices.iter().map(view).collect::<Result<_, _>>()?,
            next_page_token: next.map(hex::encode).unwrap_or_default(),
        })
    }
}

/// A page token: the receipt time and id of the last notice shown, 32 hex digits.
fn parse_page_token(s: &str) -> Result<Option<[u8; 8 + NOTICE_ID_LEN]>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid("page_token", "not a token of ListExposureNotices"))
}

/// A stored notice as the platform reads it.
fn view(s: &StoredNotice) -> Result<proto::ExposureNoticeView, ApiError> {
    let n = SignedExposureNotice::decode(&s.notice)
        .map_err(|_| ApiError::Internal("a stored exposure notice does not decode"))?
        .notice;
    Ok(proto::ExposureNoticeView {
        notice_id: n.notice_id.to_string(),
        from_province: n.from.to_string(),
        trip_id: n.trip_id.to_string(),
        trip_origin: n.trip_origin.to_string(),
        departure: n.departure.secs(),
        seat: u32::from(n.seat),
        distance: u32::from(n.distance),
        crew: n.crew,
        case_class: n.case_class as i32,
        subject_hash: match s.subject_hash {
            Some(h) => h.to_string(),
            None => hex::encode(n.subject_prefix),
        },
        cti_prefix: hex::encode(n.cti_prefix),
        matched: s.subject_hash.is_some(),
        received_at: s.received_at.secs(),
    })
}

#[cfg(test)]
mod tests;
