//! What a code-making request (IssueHealthCode) may ask for: the subject's document, the status
//! and how long it holds, the code's lifetime. [`claims_for`] turns a request into the claims
//! to sign, or says which field is wrong; it reads no clock, store or key file, so its rules
//! are tested here without a node.

use crate::code::{Claims, Subject};
use crate::identity::{self, SubjectHash, SubjectKey};
use crate::proto;
use crate::province::Province;
use crate::status::HealthStatus;
use crate::UnixTime;

use super::convert;
use super::error::ApiError;

/// Longest code lifetime a request may ask for, in seconds (7 days).
pub const MAX_CODE_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// Longest a status may be declared valid ahead, in seconds (366 days).
pub const MAX_STATUS_VALIDITY_SECS: u64 = 366 * 24 * 3600;

/// What the node decides for every request: who issues, the lifetime when none is asked for,
/// and the key that hashes document numbers.
pub(crate) struct IssuePolicy<'a> {
    /// The issuing province (`iss`).
    pub(crate) issuer: Province,
    /// Lifetime of a display code when the request gives 0, in seconds.
    pub(crate) default_code_lifetime_secs: u64,
    /// Hashes the document number into the subject hash; the number itself is never kept.
    pub(crate) subject_key: &'a SubjectKey,
}

/// A request field that cannot be issued; INVALID_ARGUMENT naming the field.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub(crate) struct IssueError {
    /// The field, e.g. `subject.document_number`.
    pub(crate) field: &'static str,
    /// What is wrong with it.
    pub(crate) detail: String,
}

impl IssueError {
    fn new(field: &'static str, detail: impl ToString) -> IssueError {
        IssueError {
            field,
            detail: detail.to_string(),
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> ApiError {
        ApiError::invalid(e.field, e.detail)
    }
}

/// The claims to sign for `r` at `now`, and the status.
/// `revoked_before` answers, for the subject's hash, the time before which its codes are
/// revoked in this node's own feed: a code issued in the same second as such a revocation is
/// dated at that time, so the new status stands.
///
/// # Errors
/// [`IssueError`] naming the first wrong field, in the order: subject, document type, document
/// number, name, status, status_valid_until, code_lifetime_secs.
pub(crate) fn claims_for(
    r: &proto::IssueHealthCodeRequest,
    now: UnixTime,
    policy: &IssuePolicy<'_>,
    revoked_before: impl FnOnce(&SubjectHash) -> Option<UnixTime>,
) -> Result<(Claims, HealthStatus), IssueError> {
    let s = r
        .subject
        .as_ref()
        .ok_or_else(|| IssueError::new("subject", "missing"))?;
    let doc_type = convert::document_type_from_proto(s.document_type).ok_or_else(|| {
        IssueError::new(
            "subject.document_type",
            "must be set to a known document type",
        )
    })?;
    let number = identity::normalize_document_number(doc_type, &s.document_number)
        .map_err(|e| IssueError::new("subject.document_number", e))?;
    let masked_name =
        identity::mask_name(&s.name).map_err(|e| IssueError::new("subject.name", e))?;
    let status = convert::status_from_proto(r.status)
        .ok_or_else(|| IssueError::new("status", "must be green, yellow or red"))?;
    let status_valid_until = UnixTime::from_secs(r.status_valid_until);
    if status_valid_until <= now {
        return Err(IssueError::new(
            "status_valid_until",
            format!(
                "must be after now ({now}); it is {} s since the Unix epoch",
                r.status_valid_until
            ),
        ));
    }
    if status_valid_until > now + MAX_STATUS_VALIDITY_SECS {
        return Err(IssueError::new(
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
            crate::card::card_default_lifetime(status_valid_until.saturating_since(now))
        }
        0 => policy.default_code_lifetime_secs,
        l if l > MAX_CODE_LIFETIME_SECS => {
            return Err(IssueError::new(
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
        subject_hash: policy.subject_key.subject_hash(doc_type, &number),
    };
    drop(number);
    // A code issued in the same second as a revocation of its subject ("codes issued before
    // T", T = that second + 1) would fall under it: date it T, so the new status stands.
    let iat = revoked_before(&subject.subject_hash).map_or(now, |before| now.max(before));
    let claims = Claims {
        iss: policy.issuer.to_string(),
        iat,
        exp: iat + lifetime,
        status: status.to_u64(),
        status_valid_until,
        subject,
    };
    Ok((claims, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

    fn key() -> SubjectKey {
        SubjectKey::from_bytes([7; 32])
    }

    fn policy(key: &SubjectKey) -> IssuePolicy<'_> {
        IssuePolicy {
            issuer: Province::from_code(510000).unwrap(),
            default_code_lifetime_secs: 300,
            subject_key: key,
        }
    }

    fn request() -> proto::IssueHealthCodeRequest {
        proto::IssueHealthCodeRequest {
            subject: Some(proto::Subject {
                name: "张三".into(),
                document_type: proto::DocumentType::ResidentIdentityCard as i32,
                document_number: "11010519491231002X".into(),
            }),
            status: proto::HealthStatus::Green as i32,
            status_valid_until: (NOW + 86_400).secs(),
            ..Default::default()
        }
    }

    fn field(r: &proto::IssueHealthCodeRequest) -> &'static str {
        let k = key();
        claims_for(r, NOW, &policy(&k), |_| None).unwrap_err().field
    }

    #[test]
    fn a_good_request_gets_the_default_lifetime_and_a_masked_subject() {
        let k = key();
        let (c, status) = claims_for(&request(), NOW, &policy(&k), |_| None).unwrap();
        assert_eq!(status, HealthStatus::Green);
        assert_eq!((c.iat, c.exp), (NOW, NOW + 300));
        assert_eq!(c.iss, "510000");
        assert_ne!(c.subject.masked_document_number, "11010519491231002X");
    }

    #[test]
    fn each_wrong_field_is_named() {
        let mut r = request();
        r.subject = None;
        assert_eq!(field(&r), "subject");
        let mut r = request();
        r.status = 0;
        assert_eq!(field(&r), "status");
        let mut r = request();
        r.status_valid_until = NOW.secs();
        assert_eq!(field(&r), "status_valid_until");
        let mut r = request();
        r.status_valid_until = (NOW + MAX_STATUS_VALIDITY_SECS + 1).secs();
        assert_eq!(field(&r), "status_valid_until");
        let mut r = request();
        r.code_lifetime_secs = MAX_CODE_LIFETIME_SECS + 1;
        assert_eq!(field(&r), "code_lifetime_secs");
        let mut r = request();
        r.subject.as_mut().unwrap().document_number = "123".into();
        assert_eq!(field(&r), "subject.document_number");
    }

    #[test]
    fn a_card_without_a_lifetime_lasts_as_its_status_does() {
        let mut r = request();
        r.qr_format = proto::QrFormat::CardPng as i32;
        let k = key();
        let (c, _) = claims_for(&r, NOW, &policy(&k), |_| None).unwrap();
        assert_eq!(
            c.exp.saturating_since(c.iat),
            crate::card::card_default_lifetime(86_400)
        );
    }

    #[test]
    fn a_code_issued_in_the_second_of_a_revocation_is_dated_after_it() {
        let k = key();
        let (c, _) = claims_for(&request(), NOW, &policy(&k), |_| Some(NOW + 1)).unwrap();
        assert_eq!(c.iat, NOW + 1);
        let (c, _) = claims_for(&request(), NOW, &policy(&k), |_| Some(NOW - 10)).unwrap();
        assert_eq!(c.iat, NOW);
    }
}
