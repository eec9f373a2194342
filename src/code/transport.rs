//! The transport encoding around a COSE_Sign1: Base45 (RFC 9285) -> prefix. No compression:
//! the COSE bytes are mostly a signature, a kid and a hash, which are random and do not
//! compress (zlib made a typical code 11 bytes longer; docs/code-format.md section 6).
//!
//! Base45's 45 characters are exactly QR alphanumeric mode's, so the whole string, prefix
//! included, fits the denser QR mode.

use super::{CodeError, MAX_CODE_CHARS, MAX_COSE_BYTES, PREFIX};

/// Prefixes of other schemes, recognised only to say so in the error.
const FOREIGN_PREFIXES: [&str; 3] = ["HC1:", "shc:/", "HCMR"];

/// Base45-encodes and prefixes COSE bytes: the string a QR code carries, `3 * n / 2` characters
/// (rounded up) after the 6-character prefix for `n` bytes.
pub fn wrap(cose: &[u8]) -> String {
    let mut s = String::with_capacity(PREFIX.len() + cose.len().div_ceil(2) * 3);
    s.push_str(PREFIX);
    s.push_str(&base45::encode(cose));
    s
}

/// Strips the prefix and checks and decodes Base45: the COSE bytes, at most
/// [`MAX_COSE_BYTES`].
///
/// Leading white space and trailing `\r`, `\n` and tabs (a scanner's Enter) are ignored; a
/// trailing space is a Base45 character and is kept.
///
/// # Errors
/// A [`CodeError`] of the prefix or Base45 stage.
pub fn unwrap(code: &str) -> Result<Vec<u8>, CodeError> {
    let payload = strip_prefix(code)?;
    let bytes = base45_decode(payload)?;
    if bytes.len() > MAX_COSE_BYTES {
        return Err(CodeError::Base45TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Removes line endings and the `HCMR1:` prefix.
///
/// # Errors
/// [`CodeError::Empty`], [`CodeError::TooLong`], [`CodeError::ForeignPrefix`] or
/// [`CodeError::MissingPrefix`].
pub fn strip_prefix(code: &str) -> Result<&str, CodeError> {
    // Leading white space is never part of a code (it starts with the prefix); trailing CR, LF
    // and tab come from scanners. A trailing space may be Base45 data and is kept.
    let code = code.trim_start().trim_end_matches(['\r', '\n', '\t']);
    if code.is_empty() {
        return Err(CodeError::Empty);
    }
    let chars = code.chars().count();
    if chars > MAX_CODE_CHARS {
        return Err(CodeError::TooLong(chars));
    }
    if let Some(rest) = code.strip_prefix(PREFIX) {
        return Ok(rest);
    }
    for p in FOREIGN_PREFIXES {
        if code.starts_with(p) {
            // Up to the first colon, and never more than 8 characters of untrusted input.
            let shown: String = code
                .split(':')
                .next()
                .unwrap_or(p)
                .chars()
                .take(8)
                .collect();
            return Err(CodeError::ForeignPrefix(format!("{shown}:")));
        }
    }
    Err(CodeError::MissingPrefix)
}

/// Value of a Base45 character (RFC 9285 section 4), `None` outside the alphabet.
fn b45_value(c: u8) -> Option<u32> {
    base45::alphabet::decode(c).map(u32::from)
}

/// Decodes Base45 after checking each RFC 9285 rule, so every fault gets its own error: a
/// character outside the alphabet, a length with `len % 3 == 1`, a triplet above 65535 or a final
/// pair above 255. The `base45` crate then decodes the checked string.
///
/// # Errors
/// [`CodeError::Base45Character`], [`CodeError::Base45Length`] or [`CodeError::Base45Overflow`].
pub fn base45_decode(s: &str) -> Result<Vec<u8>, CodeError> {
    for (position, ch) in s.chars().enumerate() {
        if !ch.is_ascii() || b45_value(ch as u8).is_none() {
            return Err(CodeError::Base45Character { position, ch });
        }
    }
    let b = s.as_bytes();
    if b.len() % 3 == 1 {
        return Err(CodeError::Base45Length(b.len()));
    }
    for (i, chunk) in b.chunks(3).enumerate() {
        let value = chunk
            .iter()
            .rev()
            .fold(0u32, |acc, c| acc * 45 + b45_value(*c).unwrap_or(0));
        let max = if chunk.len() == 3 { 65535 } else { 255 };
        if value > max {
            return Err(CodeError::Base45Overflow {
                position: i * 3,
                value,
                max,
            });
        }
    }
    // Every rule was checked above, so the library cannot refuse what is left.
    base45::decode(b).map_err(|_| CodeError::Base45Length(b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base45_rfc9285_vectors() {
        // RFC 9285 section 4.3 examples.
        assert_eq!(base45_decode("BB8").unwrap(), b"AB");
        assert_eq!(base45_decode("%69 VD92EX0").unwrap(), b"Hello!!");
        assert_eq!(base45_decode("UJCLQE7W581").unwrap(), b"base-45");
        assert_eq!(base45_decode("QED8WEX0").unwrap(), b"ietf!");
        assert_eq!(base45::encode(b"ietf!"), "QED8WEX0");
    }

    #[test]
    fn base45_faults_have_distinct_errors() {
        // RFC 9285 section 6: GGW = 65536 is invalid.
        assert_eq!(
            base45_decode("GGW"),
            Err(CodeError::Base45Overflow {
                position: 0,
                value: 65536,
                max: 65535
            })
        );
        assert_eq!(
            base45_decode("BB8:::"),
            Err(CodeError::Base45Overflow {
                position: 3,
                value: 44 + 44 * 45 + 44 * 2025,
                max: 65535
            })
        );
        // A final pair above 255 (the base45 crate would truncate it silently).
        assert_eq!(
            base45_decode("BB8::"),
            Err(CodeError::Base45Overflow {
                position: 3,
                value: 44 + 44 * 45,
                max: 255
            })
        );
        assert_eq!(base45_decode("BB8A"), Err(CodeError::Base45Length(4)));
        assert_eq!(
            base45_decode("BBa"),
            Err(CodeError::Base45Character {
                position: 2,
                ch: 'a'
            })
        );
        assert_eq!(
            base45_decode("B\u{e9}8"),
            Err(CodeError::Base45Character {
                position: 1,
                ch: '\u{e9}'
            })
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(strip_prefix("HCMR1:ABC\r\n"), Ok("ABC"));
        assert_eq!(strip_prefix("\r\n"), Err(CodeError::Empty));
        assert_eq!(
            strip_prefix("HC1:NCFOXN"),
            Err(CodeError::ForeignPrefix("HC1:".into()))
        );
        assert_eq!(
            strip_prefix("HCMR2:ABC"),
            Err(CodeError::ForeignPrefix("HCMR2:".into()))
        );
        assert_eq!(strip_prefix("ABC"), Err(CodeError::MissingPrefix));
        // No colon: at most 8 characters of the input are echoed back.
        assert_eq!(
            strip_prefix(&format!("HCMR1{}", "A".repeat(4000))),
            Err(CodeError::ForeignPrefix("HCMR1AAA:".into()))
        );
        let long = format!("{PREFIX}{}", "A".repeat(MAX_CODE_CHARS));
        assert!(matches!(strip_prefix(&long), Err(CodeError::TooLong(_))));
    }

    #[test]
    fn no_compression_and_a_size_cap() {
        // The COSE bytes are Base45-encoded as they are: RFC 9285's "ietf!" example.
        assert_eq!(wrap(b"ietf!"), "HCMR1:QED8WEX0");
        assert_eq!(unwrap("HCMR1:QED8WEX0\r\n").unwrap(), b"ietf!");
        let max = wrap(&[0u8; MAX_COSE_BYTES]);
        assert_eq!(max.len(), 6 + MAX_COSE_BYTES / 2 * 3);
        assert_eq!(unwrap(&max).unwrap().len(), MAX_COSE_BYTES);
        let over = wrap(&[0u8; MAX_COSE_BYTES + 1]);
        assert_eq!(
            unwrap(&over),
            Err(CodeError::Base45TooLarge(MAX_COSE_BYTES + 1))
        );
    }
}
