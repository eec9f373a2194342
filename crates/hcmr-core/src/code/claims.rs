//! The CWT claims set (RFC 8392) of a health code and its health code body.
//!
//! ```text
//! {                       ; CWT claims set, integer keys
//!   1: uint,              ; iss: issuing province, GB/T 2260 code, e.g. 510000
//!   4: uint,              ; exp: code expires, seconds since the Unix epoch (UTC)
//!   6: uint,              ; iat: code issued, seconds since the Unix epoch (UTC)
//!   -38962: [             ; hcode: the health code body (private claim; after GB/T 38962)
//!     uint,               ; status: 1 green, 2 yellow, 3 red (others: unassigned)
//!     uint,               ; status valid until, seconds since the Unix epoch (UTC)
//!     tstr,               ; masked name, e.g. "张*三"
//!     uint,               ; document type (1 resident identity card, 2 passport, ...)
//!     tstr,               ; masked document number, e.g. "5101*1234"
//!     bstr .size 8,       ; keyed subject hash (HMAC-SHA256, truncated to 8 bytes)
//!   ]
//! }
//! ```
//! The map is written in RFC 8949 section 4.2.1 deterministic order. There is no `cti` claim: the
//! code id is derived from the signature ([`super::HealthCode::cti`]). On decode, `iss` may also
//! be the older six-digit text string, times may also be whole-number floats (real EU
//! certificates carried them), unknown keys (including a `cti`) are ignored, and duplicate keys
//! are refused.

use crate::cbor::uint;
use ciborium::value::{Integer, Value};

use super::CodeError;
use crate::identity::{DocumentType, SubjectHash, SUBJECT_HASH_LEN};
use crate::time::UnixTime;

/// CWT claim key of `iss` (RFC 8392 section 4).
pub const CLAIM_ISS: i64 = 1;
/// CWT claim key of `exp`.
pub const CLAIM_EXP: i64 = 4;
/// CWT claim key of `iat`.
pub const CLAIM_IAT: i64 = 6;
/// Private CWT claim key of the health code body.
pub const CLAIM_HCODE: i64 = -38962;
/// Number of elements of the health code body array.
pub const BODY_FIELDS: usize = 6;
/// Latest time accepted in any time claim, in seconds since the Unix epoch:
/// 9999-12-31T23:59:59Z ([`UnixTime::MAX`]).
pub const MAX_TIME: u64 = 253_402_300_799;

/// The subject of a health code as a checkpoint sees it: never the full name or number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Masked name, e.g. `张*三` (see [`crate::identity::mask_name`]).
    pub masked_name: String,
    /// Which document the masked number belongs to.
    pub document_type: DocumentType,
    /// Masked document number, e.g. `5101*1234` (see
    /// [`crate::identity::mask_document_number`]).
    pub masked_document_number: String,
    /// Keyed hash of the document number, 8 bytes (see [`crate::identity::SubjectKey`]).
    pub subject_hash: SubjectHash,
}

/// The claims of a health code. The code id (`cti`) is not a claim: it is derived from the
/// signature, see [`super::HealthCode::cti`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `iss`: the issuing province's GB/T 2260 code in decimal, e.g. `"510000"`. Written as a
    /// CBOR unsigned integer whenever it is a canonical decimal number (always, for codes hcmr
    /// issues); any other text is written as a text string, which only tests of odd issuers use.
    /// Not checked against the province table here: verification reports an unknown issuer as
    /// its own reason.
    pub iss: String,
    /// `iat`: when the code was issued.
    pub iat: UnixTime,
    /// `exp`: when the code (this rendering) expires. Short, since display codes are redrawn
    /// every few minutes.
    pub exp: UnixTime,
    /// Status as issued: 1 green, 2 yellow, 3 red; any other number is carried but never counts
    /// as a colour (see [`crate::status::HealthStatus::from_u64`]).
    pub status: u64,
    /// Until when the status holds; independent of `exp`.
    pub status_valid_until: UnixTime,
    /// Who the code is for.
    pub subject: Subject,
}

fn int(v: i64) -> Value {
    Value::Integer(Integer::from(v))
}

/// `iss` as written: an unsigned integer for a canonical decimal number (no sign, no leading
/// zero, at most `u64::MAX`), so decoding gives back the same text; any other text as is.
fn iss_value(iss: &str) -> Value {
    let canonical = !iss.is_empty()
        && iss.bytes().all(|b| b.is_ascii_digit())
        && (iss == "0" || !iss.starts_with('0'));
    match iss.parse::<u64>() {
        Ok(n) if canonical => uint(n),
        _ => Value::Text(iss.to_string()),
    }
}

impl Claims {
    /// Encodes the claims set as deterministic CBOR (RFC 8949 section 4.2.1): keys 1, 4, 6,
    /// -38962, shortest integer forms, definite lengths.
    pub fn to_cbor(&self) -> Vec<u8> {
        let body = Value::Array(vec![
            uint(self.status),
            uint(self.status_valid_until.secs()),
            Value::Text(self.subject.masked_name.clone()),
            uint(u64::from(self.subject.document_type.to_u8())),
            Value::Text(self.subject.masked_document_number.clone()),
            Value::Bytes(self.subject.subject_hash.0.to_vec()),
        ]);
        let claims = Value::Map(vec![
            (int(CLAIM_ISS), iss_value(&self.iss)),
            (int(CLAIM_EXP), uint(self.exp.secs())),
            (int(CLAIM_IAT), uint(self.iat.secs())),
            (int(CLAIM_HCODE), body),
        ]);
        let mut out = Vec::with_capacity(96);
        ciborium::into_writer(&claims, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Decodes a CWT claims set.
    ///
    /// # Errors
    /// A `claims.*` [`CodeError`]: not a map, duplicate key, missing claim, wrong type or length,
    /// or a bad time (NaN, infinite, fractional, negative, after 9999).
    pub fn from_cbor(bytes: &[u8]) -> Result<Claims, CodeError> {
        let value: Value = crate::cbor::decode_exact(bytes)?;
        // Checked after the claims themselves, so that a claims fault is reported as such.
        let not_canonical = crate::cbor::first_non_canonical_byte(&value, bytes);
        let map = as_map(value)?;
        let dup = first_duplicate_key(&map);
        let mut iss = None;
        let mut iat = None;
        let mut exp = None;
        let mut body = None;
        for (k, v) in map {
            let Some(k) = int_key(&k) else { continue };
            match k {
                CLAIM_ISS => set_once(&mut iss, issuer(v)?, "iss", "claims")?,
                CLAIM_IAT => set_once(&mut iat, time(v, "iat")?, "iat", "claims")?,
                CLAIM_EXP => set_once(&mut exp, time(v, "exp")?, "exp", "claims")?,
                CLAIM_HCODE => set_once(&mut body, v, "hcode", "claims")?,
                _ => {}
            }
        }
        if let Some(k) = dup {
            return Err(CodeError::DuplicateKey(k, "claims"));
        }
        let body = match body.ok_or(CodeError::MissingClaim("hcode"))? {
            Value::Array(a) => a,
            _ => return Err(CodeError::BadClaim("hcode", "not an array")),
        };
        let body: Result<[Value; BODY_FIELDS], _> = body.try_into();
        let Ok([status, until, name, doc_type, number, hash]) = body else {
            return Err(CodeError::BadClaim("hcode", "must be an array of 6"));
        };
        let status = uint_of(status, "hcode.status")?;
        let status_valid_until = time(until, "hcode.status_valid_until")?;
        let masked_name = text(name, "subject.name")?;
        // As at issue (`identity::mask_name`): a name must show something.
        if masked_name
            .chars()
            .all(|c| crate::identity::is_zero_width(c) || c.is_whitespace())
        {
            return Err(CodeError::BadClaim(
                "subject.name",
                "has no visible character",
            ));
        }
        let document_type =
            DocumentType::from_u64(uint_of(doc_type, "subject.document_type")?).ok_or(
                CodeError::BadClaim("subject.document_type", "unassigned document type"),
            )?;
        let masked_document_number = text(number, "subject.document_number")?;
        let hash: [u8; SUBJECT_HASH_LEN] = bytes_of(hash, "subject.hash")?
            .try_into()
            .map_err(|_| CodeError::BadClaim("subject.hash", "must be 8 bytes"))?;
        let claims = Claims {
            iss: iss.ok_or(CodeError::MissingClaim("iss"))?,
            iat: iat.ok_or(CodeError::MissingClaim("iat"))?,
            exp: exp.ok_or(CodeError::MissingClaim("exp"))?,
            status,
            status_valid_until,
            subject: Subject {
                masked_name,
                document_type,
                masked_document_number,
                subject_hash: SubjectHash(hash),
            },
        };
        if let Some(offset) = not_canonical {
            return Err(CodeError::NotCanonical {
                part: "claims",
                offset,
            });
        }
        Ok(claims)
    }
}

/// `iss`: an unsigned integer (written by hcmr; kept as its decimal text), or, leniently, the
/// older text form (at most 64 characters).
fn issuer(v: Value) -> Result<String, CodeError> {
    match v {
        Value::Integer(i) => match u64::try_from(i) {
            Ok(n) => Ok(n.to_string()),
            Err(_) => Err(CodeError::BadClaim("iss", "negative")),
        },
        v @ Value::Text(_) => text(v, "iss"),
        _ => Err(CodeError::BadClaim(
            "iss",
            "not an unsigned integer or text string",
        )),
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T, key: &str, map: &'static str) -> Result<(), CodeError> {
    if slot.is_some() {
        return Err(CodeError::DuplicateKey(key.to_string(), map));
    }
    *slot = Some(v);
    Ok(())
}

/// The first key that appears twice in a map, read by the decoder or not (RFC 8949 section 5.6:
/// a map with duplicate keys is not valid). Keys compare by their re-encoding, which is always in
/// shortest form, so two encodings of one value are the same key. Known keys are caught, with
/// their names, by [`set_once`] first; this catches the ones the decoder skips.
fn first_duplicate_key(map: &[(Value, Value)]) -> Option<String> {
    let mut seen = std::collections::HashSet::with_capacity(map.len());
    map.iter().find_map(|(k, _)| {
        if seen.insert(crate::cbor::encode(k)) {
            None
        } else {
            Some(int_key(k).map_or_else(|| key_words(k), |i| i.to_string()))
        }
    })
}

/// A map key that is not an integer, in words: a text key quoted, others by their CBOR type.
fn key_words(k: &Value) -> String {
    match k {
        Value::Text(t) => format!("{t:?}"),
        Value::Bytes(b) => format!("h'{}'", hex::encode(b)),
        Value::Float(f) => format!("{f}"),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(_) => "(an array)".to_string(),
        Value::Map(_) => "(a map)".to_string(),
        Value::Tag(t, _) => format!("(a tag {t} item)"),
        _ => "(an item)".to_string(),
    }
}

fn int_key(k: &Value) -> Option<i64> {
    match k {
        Value::Integer(i) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn as_map(v: Value) -> Result<Vec<(Value, Value)>, CodeError> {
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(CodeError::ClaimsNotMap),
    }
}

fn text(v: Value, what: &'static str) -> Result<String, CodeError> {
    match v {
        Value::Text(s) if s.chars().count() <= 64 => match crate::identity::refused_character(&s) {
            Some((position, ch)) => Err(CodeError::ClaimCharacter { what, ch, position }),
            None => Ok(s),
        },
        Value::Text(_) => Err(CodeError::BadClaim(what, "longer than 64 characters")),
        _ => Err(CodeError::BadClaim(what, "not a text string")),
    }
}

fn bytes_of(v: Value, what: &'static str) -> Result<Vec<u8>, CodeError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(CodeError::BadClaim(what, "not a byte string")),
    }
}

fn uint_of(v: Value, what: &'static str) -> Result<u64, CodeError> {
    match v {
        Value::Integer(i) => u64::try_from(i).map_err(|_| CodeError::BadClaim(what, "negative")),
        _ => Err(CodeError::BadClaim(what, "not an unsigned integer")),
    }
}

/// A NumericDate (RFC 8392 section 2): an unsigned integer, or a float holding a whole number.
fn time(v: Value, what: &'static str) -> Result<UnixTime, CodeError> {
    let t = match v {
        Value::Integer(i) => {
            if i128::from(i) < 0 {
                return Err(CodeError::TimeNegative(what));
            }
            u64::try_from(i).map_err(|_| CodeError::TimeTooLarge(what))?
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(CodeError::TimeNotFinite(what));
            }
            if f < 0.0 {
                return Err(CodeError::TimeNegative(what));
            }
            if f.fract() != 0.0 {
                return Err(CodeError::TimeNotWhole(what));
            }
            if f > MAX_TIME as f64 {
                return Err(CodeError::TimeTooLarge(what));
            }
            f as u64
        }
        _ => return Err(CodeError::BadClaim(what, "not a number")),
    };
    if t > MAX_TIME {
        return Err(CodeError::TimeTooLarge(what));
    }
    Ok(UnixTime::from_secs(t))
}
