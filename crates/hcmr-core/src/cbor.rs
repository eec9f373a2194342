//! CBOR helpers shared by the code format and agreements (ciborium underneath).

use ciborium::value::Value;

/// A CBOR input that does not decode to exactly one well-formed item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// Not well-formed, or nested too deep; the text says where and what was expected.
    #[error("CBOR: not well-formed: {0}")]
    Malformed(String),
    /// This many bytes follow the one item.
    #[error("CBOR: {0} bytes after the item")]
    Trailing(usize),
}

/// Most nesting accepted in any CBOR input; our structures need at most 6.
const MAX_DEPTH: usize = 16;

/// Decodes exactly one CBOR item from `bytes`, refusing trailing bytes and deep nesting.
///
/// # Errors
/// [`CborError::Malformed`] for malformed input or nesting over 16 levels (its text says where
/// and what was expected, see [`describe_error`]), [`CborError::Trailing`] for bytes after the
/// item.
pub fn decode_exact(bytes: &[u8]) -> Result<Value, CborError> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|e| CborError::Malformed(describe_error(&e, bytes)))?;
    if !rest.is_empty() {
        return Err(CborError::Trailing(rest.len()));
    }
    Ok(value)
}

/// Encodes a value (definite lengths, shortest integer forms: ciborium's defaults).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// Where `bytes` first differs from its canonical re-encoding (definite lengths, the shortest
/// head of each integer, length and float, no chunked strings: RFC 8949 section 4.2.1 without
/// key sorting), or `None` when it is canonical. `value` is `bytes` decoded.
pub fn first_non_canonical_byte(value: &Value, bytes: &[u8]) -> Option<usize> {
    let canonical = encode(value);
    if canonical == bytes {
        return None;
    }
    Some(
        canonical
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(bytes.len())),
    )
}

/// A ciborium decoding error in words: where (a byte offset into `bytes`) and what was expected,
/// never the Rust debug text of the error (`Io(Error { kind: UnexpectedEof, ... })`,
/// `Syntax(29)`).
pub fn describe_error<T: std::fmt::Debug>(e: &ciborium::de::Error<T>, bytes: &[u8]) -> String {
    use ciborium::de::Error;
    match e {
        // Reading from a slice fails only at its end.
        Error::Io(_) => format!(
            "the input ends early, at byte {}, inside an item; more bytes were expected",
            bytes.len()
        ),
        Error::Syntax(offset) => describe_syntax(bytes, *offset),
        // serde's words, e.g. "invalid type: break, expected non-break" for a stray 0xff.
        Error::Semantic(_, msg) if msg.contains("break") => {
            "a break (0xff) outside an indefinite-length item; an item was expected".to_string()
        }
        Error::Semantic(Some(offset), msg) => format!("the item at byte {offset}: {msg}"),
        Error::Semantic(None, msg) => format!("an item of an unexpected kind: {msg}"),
        Error::RecursionLimitExceeded => {
            format!("nested deeper than {MAX_DEPTH} levels, the most accepted")
        }
    }
}

/// What is wrong with the item head at `offset`, judged from the byte itself.
fn describe_syntax(bytes: &[u8], offset: usize) -> String {
    let Some(&b) = bytes.get(offset) else {
        return format!("the input ends early at byte {offset}; another item was expected");
    };
    let (major, info) = (b >> 5, b & 0x1f);
    let what = match (major, info) {
        (7, 31) => "a break (0xff) outside an indefinite-length item".to_string(),
        (_, 28..=30) => format!("reserved additional information {info}, which no item uses"),
        (0 | 1 | 6, 31) => "an indefinite length on an item that has none".to_string(),
        (3, _) => "a text string that is not valid UTF-8".to_string(),
        _ => "an item that is not allowed here".to_string(),
    };
    format!("byte {offset} (0x{b:02x}): {what}; a well-formed item head was expected")
}

/// A CBOR unsigned integer (major type 0) holding `v`.
pub fn uint(v: u64) -> Value {
    Value::Integer(ciborium::value::Integer::from(v))
}

/// The value of a CBOR unsigned integer that fits a `u64`; `None` for anything else.
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> String {
        match decode_exact(bytes) {
            Err(CborError::Malformed(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decode_errors_are_words_with_an_offset() {
        // An array of 4 with only one item: the input ends early.
        let e = err(&[0x84, 0x01]);
        assert_eq!(
            e,
            "the input ends early, at byte 2, inside an item; more bytes were expected"
        );
        // Additional information 29 is reserved (ciborium: "Syntax(1)").
        let e = err(&[0x82, 0x1d, 0x00]);
        assert_eq!(
            e,
            "byte 1 (0x1d): reserved additional information 29, which no item uses; \
             a well-formed item head was expected"
        );
        let e = err(&[0xff]);
        assert_eq!(
            e,
            "a break (0xff) outside an indefinite-length item; an item was expected"
        );
        let e = err(&[0x62, 0xff, 0xfe]);
        assert!(e.contains("not valid UTF-8"), "{e}");
        let mut deep = vec![0x81; 40];
        deep.push(0x00);
        assert_eq!(
            err(&deep),
            "nested deeper than 16 levels, the most accepted"
        );
        for b in [
            &[0x84, 0x01][..],
            &[0x82, 0x1d, 0x00],
            &[0xff],
            &[0x62, 0xff, 0xfe],
        ] {
            let e = err(b);
            for debug in ["Io(", "Syntax(", "Semantic(", "kind:", "UnexpectedEof"] {
                assert!(!e.contains(debug), "{e}");
            }
        }
    }
}
