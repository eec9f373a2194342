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

/// Value of each byte as a Base45 character (RFC 9285 section 4), [`NOT_BASE45`] outside the
/// alphabet: built at compile time from the `base45` crate's own alphabet.
const B45_VALUE: [u8; 256] = {
    let mut t = [NOT_BASE45; 256];
    let mut i = 0;
    while i < 256 {
        if let Some(v) = base45::alphabet::decode(i as u8) {
            t[i] = v;
        }
        i += 1;
    }
    t
};
/// [`B45_VALUE`] of a byte outside the alphabet.
const NOT_BASE45: u8 = 0xff;

/// Decodes Base45 (RFC 9285 section 4) checking each rule, so every fault gets its own error:
/// a character outside the alphabet (the first one, by character position), then a length with
/// `len % 3 == 1`, then a triplet above 65535 or a final pair above 255 (the first one). The
/// `base45` crate would truncate a final pair above 255 silently and reports no position, so
/// the decoding is here, in one pass after the character check; the crate's alphabet and
/// encoder are the reference (a property test compares both ways).
///
/// # Errors
/// [`CodeError::Base45Character`], [`CodeError::Base45Length`] or [`CodeError::Base45Overflow`].
pub fn base45_decode(s: &str) -> Result<Vec<u8>, CodeError> {
    let b = s.as_bytes();
    if let Some(at) = b
        .iter()
        .position(|c| B45_VALUE[usize::from(*c)] == NOT_BASE45)
    {
        // Base45 is ASCII, so the bytes before the first fault are characters one for one.
        let ch = s[at..].chars().next().unwrap_or('\u{fffd}');
        return Err(CodeError::Base45Character { position: at, ch });
    }
    if b.len() % 3 == 1 {
        return Err(CodeError::Base45Length(b.len()));
    }
    let mut out = Vec::with_capacity(b.len() / 3 * 2 + 1);
    for (i, chunk) in b.chunks(3).enumerate() {
        let value = chunk.iter().rev().fold(0u32, |acc, c| {
            acc * 45 + u32::from(B45_VALUE[usize::from(*c)])
        });
        let max = if chunk.len() == 3 { 65535 } else { 255 };
        if value > max {
            return Err(CodeError::Base45Overflow {
                position: i * 3,
                value,
                max,
            });
        }
        if chunk.len() == 3 {
            out.extend_from_slice(&(value as u16).to_be_bytes());
        } else {
            out.push(value as u8);
        }
    }
    Ok(out)
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

    proptest::proptest! {
        /// Every byte string round-trips through the `base45` crate's encoder and this decoder,
        /// and any string of the alphabet decodes as the crate decodes it, wherever the crate
        /// accepts it and no rule of RFC 9285 is broken.
        #[test]
        fn base45_agrees_with_the_crate(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            text in "[0-9A-Z $%*+./:-]{0,40}",
        ) {
            proptest::prop_assert_eq!(base45_decode(&base45::encode(&bytes)).unwrap(), bytes);
            let ours = base45_decode(&text);
            match base45::decode(&text) {
                Ok(theirs) => {
                    if let Ok(ours) = ours {
                        proptest::prop_assert_eq!(ours, theirs);
                    } else {
                        // Only a final pair above 255, which the crate truncates.
                        let overflow = matches!(
                            ours,
                            Err(CodeError::Base45Overflow { max: 255, .. })
                        );
                        proptest::prop_assert!(overflow, "{ours:?}");
                    }
                }
                Err(_) => proptest::prop_assert!(ours.is_err()),
            }
        }
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
