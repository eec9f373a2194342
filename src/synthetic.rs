//! Synthetic residents and codes for the demo and the bench: made-up people with valid GB 11643
//! document numbers, the requests that issue their codes, codes signed here with a key, and codes
//! altered after signing the way a forger would. No real person's data is ever made here.

use crate::UnixTime;
use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};

use crate::code::{transport, Claims, Subject};
use crate::identity::{synthetic_resident_id, DocumentType, SubjectHash};
use crate::node::convert;
use crate::proto;
use crate::status::HealthStatus;

/// A made-up resident: a name and the parts of a GB 11643 resident identity card number (the
/// address code, the birth date `YYYYMMDD`, and a sequence number below 1,000); the check
/// character is computed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resident<'a> {
    /// The full name (shown masked by verifiers).
    pub(crate) name: &'a str,
    /// The GB/T 2260 address code, 6 digits.
    pub(crate) address: &'a str,
    /// The birth date, `YYYYMMDD`.
    pub(crate) birth: &'a str,
    /// The sequence number that tells residents of one address and birth date apart.
    pub(crate) seq: u16,
}

impl Resident<'_> {
    /// The 18-character resident identity card number, with a valid GB 11643 check character.
    pub(crate) fn document_number(&self) -> String {
        synthetic_resident_id(self.address, self.birth, self.seq)
    }

    /// A request to issue a code of `status` for this resident: the status valid for
    /// `status_valid_for_secs` from now, the code for `code_lifetime_secs` (seconds); the default
    /// QR format.
    pub(crate) fn issue_request(
        &self,
        status: HealthStatus,
        status_valid_for_secs: u64,
        code_lifetime_secs: u64,
    ) -> proto::IssueHealthCodeRequest {
        proto::IssueHealthCodeRequest {
            subject: Some(proto::Subject {
                name: self.name.to_string(),
                document_type: proto::DocumentType::ResidentIdentityCard as i32,
                document_number: self.document_number(),
            }),
            status: convert::status_to_proto(Some(status)),
            status_valid_until: (crate::unix_now() + status_valid_for_secs).secs(),
            code_lifetime_secs,
            qr_format: 0,
        }
    }
}

/// The claims of a green code of province `iss` (its GB/T 2260 code) for the synthetic resident
/// 张*三, whose masked number and subject hash are given: for codes signed outside a node.
pub(crate) fn green_claims(
    iss: u32,
    iat: UnixTime,
    exp: UnixTime,
    status_valid_until: UnixTime,
    masked_document_number: String,
    subject_hash: SubjectHash,
) -> Claims {
    Claims {
        iss: iss.to_string(),
        iat,
        exp,
        status: HealthStatus::Green.to_u64(),
        status_valid_until,
        subject: Subject {
            masked_name: "张*三".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number,
            subject_hash,
        },
    }
}

/// A forged copy of `code`: one bit of its signature's `R` flipped, so it decodes, names a
/// trusted kid, and fails the signature check (reason BAD_SIGNATURE). What does not decode is
/// returned as it is.
pub(crate) fn forge_signature(code: &str) -> String {
    let Ok(cose) = transport::unwrap(code) else {
        return code.to_string();
    };
    if let Ok(mut s) = CoseSign1::from_tagged_slice(&cose) {
        s.signature[10] ^= 1;
        if let Ok(bytes) = s.to_tagged_vec() {
            return transport::wrap(&bytes);
        }
    } else if let Ok(mut s) = CoseSign1::from_slice(&cose) {
        s.signature[10] ^= 1;
        if let Ok(bytes) = s.to_vec() {
            return transport::wrap(&bytes);
        }
    }
    code.to_string()
}

/// `code` with its status edited to `status` after signing, the signature kept: what a forger
/// would try (a yellow edited to green). Any verifier answers BAD_SIGNATURE.
///
/// # Errors
/// The decoding stage's message when `code` does not decode.
pub(crate) fn forge_status(code: &str, status: HealthStatus) -> Result<String, String> {
    let cose = transport::unwrap(code).map_err(|e| e.to_string())?;
    let mut sign1 = CoseSign1::from_slice(&cose).map_err(|e| e.to_string())?;
    let mut claims = Claims::from_cbor(sign1.payload.as_deref().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    claims.status = status.to_u64();
    sign1.payload = Some(claims.to_cbor());
    Ok(transport::wrap(&sign1.to_vec().map_err(|e| e.to_string())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_code_decodes_with_the_same_claims_and_a_failing_signature() {
        let key = crate::keys::NodeKey::from_seed(&[0x51; 32]);
        let claims = green_claims(
            510000,
            UnixTime::from_secs(1_700_000_000),
            UnixTime::from_secs(1_700_000_300),
            UnixTime::from_secs(1_701_000_000),
            "5101*1234".into(),
            SubjectHash([9; 8]),
        );
        let code = crate::code::encode(&claims, &key);
        let real = crate::code::HealthCode::decode(&code).unwrap();
        assert!(real.signature_valid(&key.public()));
        let forged = forge_signature(&code);
        assert_ne!(forged, code);
        let f = crate::code::HealthCode::decode(&forged).unwrap();
        assert_eq!(f.claims, real.claims);
        assert_eq!(f.kid, real.kid);
        assert!(!f.signature_valid(&key.public()));
        // Not a code at all: returned as it is.
        assert_eq!(forge_signature("HCMR1:!"), "HCMR1:!");
    }
}
