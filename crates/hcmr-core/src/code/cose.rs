//! COSE_Sign1 (RFC 9052 section 4.2) with EdDSA (alg -8) for health codes, on top of `coset`.

use ciborium::value::Value;
use coset::{iana, AsCborValue, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};

use super::CodeError;
use crate::keys::{Kid, NodeKey};

/// CBOR tag of COSE_Sign1 (RFC 9052 section 2).
pub const TAG_COSE_SIGN1: u64 = 18;
/// CBOR tag of a CWT (RFC 8392 section 6), which may wrap the COSE_Sign1.
pub const TAG_CWT: u64 = 61;

/// A parsed COSE_Sign1 whose headers passed hcmr's rules, not yet signature-checked.
#[derive(Debug, Clone)]
pub struct ParsedSign1 {
    /// The kid from the protected header.
    pub kid: Kid,
    /// The payload (the CWT claims set).
    pub payload: Vec<u8>,
    /// The Sig_structure bytes the signature covers (RFC 9052 section 4.4), with empty
    /// external AAD.
    pub to_be_signed: Vec<u8>,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

/// Signs `payload` into an untagged COSE_Sign1 (RFC 9052 section 2: the `HCMR1:` prefix gives
/// the context, so tag 18 would be one wasted byte): protected header {alg: EdDSA, kid}, empty
/// unprotected header.
pub fn sign(payload: Vec<u8>, key: &NodeKey) -> Signed {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.kid().0.to_vec())
        .build();
    let mut signature = [0u8; 64];
    let bytes = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| {
            signature = key.sign(tbs);
            signature.to_vec()
        })
        .build()
        .to_vec()
        .expect("encoding a COSE_Sign1 we built cannot fail");
    Signed { bytes, signature }
}

/// A COSE_Sign1 as [`sign`] made it.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The untagged COSE_Sign1 bytes.
    pub bytes: Vec<u8>,
    /// Its Ed25519 signature (also inside `bytes`).
    pub signature: [u8; 64],
}

/// RFC 9052 section 3.1: a recipient that does not understand a header parameter listed in
/// `crit` (label 2) must reject the message. hcmr understands none, so any `crit` in the protected
/// header is refused here, before `coset` parses the headers (it would refuse an unregistered
/// label with a generic structure error instead).
fn refuse_critical_headers(sign1: &Value) -> Result<(), CodeError> {
    let Value::Array(parts) = sign1 else {
        return Ok(());
    };
    let Some(Value::Bytes(protected)) = parts.first() else {
        return Ok(());
    };
    if protected.is_empty() {
        return Ok(());
    }
    // Decoded here first so that a malformed header is described in words (coset would give
    // ciborium's debug text, `Syntax(3)`).
    let header = crate::cbor::decode_exact(protected).map_err(|e| {
        CodeError::NotCoseSign1(format!("the protected header is not well-formed: {e}"))
    })?;
    if let Value::Map(entries) = header {
        let crit = Value::Integer(2.into());
        // An empty `crit` array is malformed (RFC 9052: `[+ label]`): coset reports that.
        let names_labels = |v: &Value| !matches!(v, Value::Array(a) if a.is_empty());
        if entries.iter().any(|(k, v)| *k == crit && names_labels(v)) {
            return Err(CodeError::CriticalHeader);
        }
    }
    Ok(())
}

/// A coset error in words. Its Display is words except for a CBOR decoding failure, which
/// [`refuse_critical_headers`] has already reported in words for the only bytes coset decodes
/// itself (the protected header).
fn coset_words(e: &coset::CoseError) -> String {
    match e {
        coset::CoseError::DecodeFailed(_) => "a header is not well-formed CBOR".to_string(),
        other => other.to_string(),
    }
}

/// An algorithm as its COSE number and IANA name, e.g. `-7 (ES256)`, or its text label.
fn algorithm_words(alg: &coset::Algorithm) -> String {
    use coset::{iana::EnumI64, RegisteredLabelWithPrivate as L};
    match alg {
        L::Assigned(a) => format!("{} ({a:?})", a.to_i64()),
        L::PrivateUse(n) => format!("{n} (private use)"),
        L::Text(t) => format!("{t:?}"),
    }
}

/// Parses COSE bytes in the one encoding hcmr writes: an untagged COSE_Sign1 (no tag 18, no
/// tag 61), canonical CBOR (definite lengths, unchunked strings, shortest heads), an empty
/// unprotected header; then checks the protected header (alg EdDSA, no crit, an 8-byte kid) and
/// the shape of the payload and signature. The canonical checks come last, so a code with
/// another fault reports that fault.
///
/// # Errors
/// A `cbor.*` or `cose.*` [`CodeError`].
pub fn parse(bytes: &[u8]) -> Result<ParsedSign1, CodeError> {
    let value = crate::cbor::decode_exact(bytes)?;
    if let Value::Tag(t, _) = value {
        return Err(CodeError::UnexpectedTag(t));
    }
    let not_canonical = crate::cbor::first_non_canonical_byte(&value, bytes);
    refuse_critical_headers(&value)?;
    let sign1 =
        CoseSign1::from_cbor_value(value).map_err(|e| CodeError::NotCoseSign1(coset_words(&e)))?;
    let protected = &sign1.protected.header;
    match &protected.alg {
        None => return Err(CodeError::MissingAlgorithm),
        Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA)) => {}
        Some(other) => return Err(CodeError::UnsupportedAlgorithm(algorithm_words(other))),
    }
    if !protected.crit.is_empty() {
        return Err(CodeError::CriticalHeader);
    }
    let unprotected_kid = &sign1.unprotected.key_id;
    if protected.key_id.is_empty() {
        return Err(if unprotected_kid.is_empty() {
            CodeError::MissingKid
        } else {
            CodeError::KidUnprotected
        });
    }
    if !unprotected_kid.is_empty() && unprotected_kid != &protected.key_id {
        return Err(CodeError::KidConflict);
    }
    let protected_not_canonical = match &sign1.protected.original_data {
        Some(raw) => crate::cbor::decode_exact(raw)
            .ok()
            .and_then(|v| crate::cbor::first_non_canonical_byte(&v, raw)),
        None => None,
    };
    let kid =
        Kid::from_slice(&protected.key_id).ok_or(CodeError::KidLength(protected.key_id.len()))?;
    let payload = match &sign1.payload {
        Some(p) if !p.is_empty() => p.clone(),
        _ => return Err(CodeError::MissingPayload),
    };
    let signature: [u8; 64] = sign1
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| CodeError::SignatureLength(sign1.signature.len()))?;
    if !sign1.unprotected.is_empty() {
        return Err(CodeError::UnprotectedNotEmpty);
    }
    if let Some(offset) = not_canonical {
        return Err(CodeError::NotCanonical {
            part: "COSE_Sign1",
            offset,
        });
    }
    if let Some(offset) = protected_not_canonical {
        return Err(CodeError::NotCanonical {
            part: "protected header",
            offset,
        });
    }
    Ok(ParsedSign1 {
        kid,
        to_be_signed: sign1.tbs_data(b""),
        payload,
        signature,
    })
}
