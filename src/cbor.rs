//! CBOR helpers shared by the code format and agreements (ciborium underneath).

use ciborium::value::Value;

use crate::code::CodeError;

/// Most nesting accepted in any CBOR input; our structures need at most 6.
const MAX_DEPTH: usize = 16;

/// Decodes exactly one CBOR item from `bytes`, refusing trailing bytes and deep nesting.
///
/// # Errors
/// [`CodeError::Cbor`] for malformed input or nesting over 16 levels, [`CodeError::CborTrailing`]
/// for bytes after the item.
pub(crate) fn decode_exact(bytes: &[u8]) -> Result<Value, CodeError> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|e| CodeError::Cbor(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodeError::CborTrailing(rest.len()));
    }
    Ok(value)
}

/// Encodes a value (definite lengths, shortest integer forms: ciborium's defaults).
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing to a Vec cannot fail");
    out
}
