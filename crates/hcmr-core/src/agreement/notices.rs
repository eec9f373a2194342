//! Notices about agreements: a party's termination, and the withdrawal or rejection of a
//! pending proposal.

use super::*;

/// Domain separation for termination notices.
const TERMINATION_CONTEXT: &[u8] = b"hcmr-termination-v1\0";

/// A party's signed notice that ends an agreement (every version of it) at `effective_at`.
///
/// Signed bytes: `"hcmr-termination-v1\0" || CBOR [id: bstr .size 16, by: uint (GB/T 2260),
/// effective_at: uint, signed_at: uint]`, by a key of the terminating province (pinned in the
/// agreement, or added to that province's trust feed by a rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The agreement ended: every version of it.
    pub id: AgreementId,
    /// The terminating party.
    pub by: Province,
    /// When it takes effect.
    pub effective_at: UnixTime,
    /// When it was signed.
    pub signed_at: UnixTime,
    /// The signing key's kid.
    pub kid: Kid,
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl Termination {
    fn message(
        id: AgreementId,
        by: Province,
        effective_at: UnixTime,
        signed_at: UnixTime,
    ) -> Vec<u8> {
        let mut m = TERMINATION_CONTEXT.to_vec();
        m.extend_from_slice(&crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(id.0.to_vec()),
            uint(u64::from(by.code())),
            uint(effective_at.secs()),
            uint(signed_at.secs()),
        ])));
        m
    }

    /// Signs a termination of agreement `id` by `by`.
    pub fn sign(
        id: AgreementId,
        by: Province,
        effective_at: UnixTime,
        signed_at: UnixTime,
        key: &NodeKey,
    ) -> Self {
        Termination {
            id,
            by,
            effective_at,
            signed_at,
            kid: key.kid(),
            signature: key.sign(&Self::message(id, by, effective_at, signed_at)),
        }
    }

    /// Checks the notice against `agreement` and the keys known for the terminating party
    /// (`party_keys`: its pinned keys and any its feed added).
    ///
    /// # Errors
    /// [`AgreementError::BadDirections`] if `by` is not a party or the id differs;
    /// [`AgreementError::TimeTooLarge`] for a time after the year 9999;
    /// [`AgreementError::SignerNotPinned`] / [`AgreementError::BadSignature`].
    pub fn check(
        &self,
        agreement: &AgreementBody,
        party_keys: &[PublicKey],
    ) -> Result<(), AgreementError> {
        if self.id != agreement.id || agreement.party(self.by).is_none() {
            return Err(AgreementError::BadDirections);
        }
        // The node shows a stored termination's date (RFC 3339): none after the year 9999.
        if self.effective_at > UnixTime::MAX {
            return Err(AgreementError::TimeTooLarge("termination effective_at"));
        }
        if self.signed_at > UnixTime::MAX {
            return Err(AgreementError::TimeTooLarge("termination signed_at"));
        }
        let msg = Self::message(self.id, self.by, self.effective_at, self.signed_at);
        let mut keys = party_keys.iter().filter(|k| k.kid == self.kid).peekable();
        if keys.peek().is_none() {
            return Err(AgreementError::SignerNotPinned("terminating party"));
        }
        if keys.any(|k| crate::keys::verify_signature(k, &msg, &self.signature)) {
            Ok(())
        } else {
            Err(AgreementError::BadSignature("terminating party"))
        }
    }

    /// Storage encoding: CBOR `[id, by, effective_at, signed_at, kid, signature]`.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.id.0.to_vec()),
            uint(u64::from(self.by.code())),
            uint(self.effective_at.secs()),
            uint(self.signed_at.secs()),
            Value::Bytes(self.kid.0.to_vec()),
            Value::Bytes(self.signature.to_vec()),
        ]))
    }

    /// Reads [`Termination::to_record`] bytes.
    ///
    /// # Errors
    /// [`AgreementError::Decode`].
    pub fn from_record(bytes: &[u8]) -> Result<Self, AgreementError> {
        let bad = |w: &str| AgreementError::Decode(format!("termination {w}"));
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| AgreementError::Decode(e.to_string()))?;
        let a = arr(v, "termination", Some(6)).map_err(AgreementError::Decode)?;
        let bytes_n = |v: &Value| match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        };
        Ok(Termination {
            id: AgreementId(
                bytes_n(&a[0])
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("id: expected 16 bytes"))?,
            ),
            by: province(&a[1], "by").map_err(AgreementError::Decode)?,
            effective_at: time(&a[2], "effective_at").map_err(AgreementError::Decode)?,
            signed_at: time(&a[3], "signed_at").map_err(AgreementError::Decode)?,
            kid: bytes_n(&a[4])
                .and_then(|b| Kid::from_slice(&b))
                .ok_or_else(|| bad("kid: expected 8 bytes"))?,
            signature: bytes_n(&a[5])
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("signature: expected 64 bytes"))?,
        })
    }
}

/// Domain separation for proposal notices (withdrawal or rejection).
const PROPOSAL_NOTICE_CONTEXT: &[u8] = b"hcmr-proposal-notice-v1\0";

/// What a [`ProposalNotice`] says happened to a pending proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalOutcome {
    /// The proposer withdrew it (sent to the acceptor).
    Withdrawn,
    /// The acceptor rejected it (sent to the proposer).
    Rejected,
}

impl ProposalOutcome {
    fn code(self) -> u64 {
        match self {
            ProposalOutcome::Withdrawn => 1,
            ProposalOutcome::Rejected => 2,
        }
    }
}

/// A party's signed notice that a pending proposal (every version of agreement `id` up to
/// `version` pending from the same proposer) is dropped: withdrawn by its proposer or rejected by
/// its acceptor. The other party drops its copy too, so neither side keeps a proposal that can
/// no longer conclude.
///
/// Signed bytes: `"hcmr-proposal-notice-v1\0" || CBOR [id: bstr .size 16, version: uint,
/// by: uint (GB/T 2260), outcome: uint (1 withdrawn, 2 rejected), signed_at: uint]`, by a key
/// the pending proposal pins for `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalNotice {
    /// The agreement the pending proposal would conclude or amend.
    pub id: AgreementId,
    /// The newest version dropped.
    pub version: u32,
    /// The acting party.
    pub by: Province,
    /// Withdrawn or rejected.
    pub outcome: ProposalOutcome,
    /// When it was signed.
    pub signed_at: UnixTime,
    /// The signing key's kid.
    pub kid: Kid,
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl ProposalNotice {
    fn message(
        id: AgreementId,
        version: u32,
        by: Province,
        outcome: ProposalOutcome,
        signed_at: UnixTime,
    ) -> Vec<u8> {
        let mut m = PROPOSAL_NOTICE_CONTEXT.to_vec();
        m.extend_from_slice(&crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(id.0.to_vec()),
            uint(u64::from(version)),
            uint(u64::from(by.code())),
            uint(outcome.code()),
            uint(signed_at.secs()),
        ])));
        m
    }

    /// Signs a notice that `by` dropped agreement `id` up to `version`.
    pub fn sign(
        id: AgreementId,
        version: u32,
        by: Province,
        outcome: ProposalOutcome,
        signed_at: UnixTime,
        key: &NodeKey,
    ) -> Self {
        ProposalNotice {
            id,
            version,
            by,
            outcome,
            signed_at,
            kid: key.kid(),
            signature: key.sign(&Self::message(id, version, by, outcome, signed_at)),
        }
    }

    /// Storage encoding (an undelivered notice): CBOR `[id, version, by, outcome, signed_at,
    /// kid, signature]`.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.id.0.to_vec()),
            uint(u64::from(self.version)),
            uint(u64::from(self.by.code())),
            uint(self.outcome.code()),
            uint(self.signed_at.secs()),
            Value::Bytes(self.kid.0.to_vec()),
            Value::Bytes(self.signature.to_vec()),
        ]))
    }

    /// Reads [`ProposalNotice::to_record`] bytes.
    ///
    /// # Errors
    /// [`AgreementError::Decode`].
    pub fn from_record(bytes: &[u8]) -> Result<Self, AgreementError> {
        let bad = |w: &str| AgreementError::Decode(format!("proposal notice {w}"));
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| AgreementError::Decode(e.to_string()))?;
        let a = arr(v, "proposal notice", Some(7)).map_err(AgreementError::Decode)?;
        let bytes_n = |v: &Value| match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        };
        Ok(ProposalNotice {
            id: AgreementId(
                bytes_n(&a[0])
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("id: expected 16 bytes"))?,
            ),
            version: u(&a[1], "version")
                .map_err(AgreementError::Decode)?
                .try_into()
                .map_err(|_| bad("version: too large"))?,
            by: province(&a[2], "by").map_err(AgreementError::Decode)?,
            outcome: match u(&a[3], "outcome").map_err(AgreementError::Decode)? {
                1 => ProposalOutcome::Withdrawn,
                2 => ProposalOutcome::Rejected,
                _ => return Err(bad("outcome: expected 1 or 2")),
            },
            signed_at: time(&a[4], "signed_at").map_err(AgreementError::Decode)?,
            kid: bytes_n(&a[5])
                .and_then(|b| Kid::from_slice(&b))
                .ok_or_else(|| bad("kid: expected 8 bytes"))?,
            signature: bytes_n(&a[6])
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("signature: expected 64 bytes"))?,
        })
    }

    /// Checks the signature against `keys` (those the pending proposal pins for `by`).
    ///
    /// # Errors
    /// [`AgreementError::SignerNotPinned`] when no key has the notice's kid;
    /// [`AgreementError::BadSignature`] when none verifies.
    pub fn check(&self, keys: &[PublicKey]) -> Result<(), AgreementError> {
        let msg = Self::message(self.id, self.version, self.by, self.outcome, self.signed_at);
        let mut keys = keys.iter().filter(|k| k.kid == self.kid).peekable();
        if keys.peek().is_none() {
            return Err(AgreementError::SignerNotPinned("notifying party"));
        }
        if keys.any(|k| crate::keys::verify_signature(k, &msg, &self.signature)) {
            Ok(())
        } else {
            Err(AgreementError::BadSignature("notifying party"))
        }
    }
}
