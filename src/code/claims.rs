//! The CWT claims set (RFC 8392) of a health code and its health code body.
//!
//! ```text
//! {                                   ; CWT claims set, integer keys
//!   1: tstr,        ; iss: issuing province, GB/T 2260 six digits, e.g. "510000"
//!   4: uint,        ; exp: code expires, seconds since the Unix epoch (UTC)
//!   6: uint,        ; iat: code issued, seconds since the Unix epoch (UTC)
//!   7: bstr,        ; cti: code id, 16 random bytes
//!   -38962: {       ; hcode: the health code body (private claim; 38962 after GB/T 38962)
//!     1: uint,      ; format version, 1
//!     2: uint,      ; status: 1 green, 2 yellow, 3 red (others: unassigned, never a colour)
//!     3: uint,      ; status valid until, seconds since the Unix epoch (UTC)
//!     4: {          ; subject, only what a checkpoint needs
//!       1: tstr,    ; masked name, e.g. "张*三"
//!       2: uint,    ; document type (1 resident identity card, 2 passport, ...)
//!       3: tstr,    ; masked document number, e.g. "5101**********1234"
//!       4: bstr .size 16 ; keyed subject hash (HMAC-SHA256, truncated)
//!     }
//!   }
//! }
//! ```
//! Maps are written in RFC 8949 section 4.2.1 deterministic order. On decode, times may also be
//! whole-number floats (real EU certificates carried them); unknown keys are ignored; duplicate
//! keys are refused.

use ciborium::value::{Integer, Value};

use super::CodeError;
use crate::identity::{DocumentType, SubjectHash};

/// CWT claim key of `iss` (RFC 8392 section 4).
pub const CLAIM_ISS: i64 = 1;
/// CWT claim key of `exp`.
pub const CLAIM_EXP: i64 = 4;
/// CWT claim key of `iat`.
pub const CLAIM_IAT: i64 = 6;
/// CWT claim key of `cti`.
pub const CLAIM_CTI: i64 = 7;
/// Private CWT claim key of the health code body.
pub const CLAIM_HCODE: i64 = -38962;
/// The body format version this crate writes and reads.
pub const BODY_VERSION: u64 = 1;
/// Latest time accepted in any time claim: 9999-12-31T23:59:59Z.
pub const MAX_TIME: u64 = 253_402_300_799;

/// The subject of a health code as a checkpoint sees it: never the full name or number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Masked name, e.g. `张*三` (see [`crate::identity::mask_name`]).
    pub masked_name: String,
    /// The identity document type.
    pub document_type: DocumentType,
    /// Masked document number, e.g. `5101**********1234`.
    pub masked_document_number: String,
    /// Keyed hash of the document number (see [`crate::identity::SubjectKey`]).
    pub subject_hash: SubjectHash,
}

/// The claims of a health code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `iss`: the issuing province's GB/T 2260 code as written in the code. Not checked against
    /// the province table here: verification reports an unknown issuer as its own reason.
    pub iss: String,
    /// `iat`: issued at, seconds since the Unix epoch (UTC).
    pub iat: u64,
    /// `exp`: the code (this rendering) expires, seconds since the Unix epoch (UTC). Short, since
    /// display codes are redrawn every few minutes.
    pub exp: u64,
    /// `cti`: unique code id, 16 random bytes when issued by hcmr (1 to 64 bytes accepted).
    pub cti: Vec<u8>,
    /// Status as issued: 1 green, 2 yellow, 3 red; any other number is carried but never counts
    /// as a colour (see [`crate::status::HealthStatus::from_u64`]).
    pub status: u64,
    /// Until when the status holds, seconds since the Unix epoch (UTC); independent of `exp`.
    pub status_valid_until: u64,
    /// Who the code is for.
    pub subject: Subject,
}

fn int(v: i64) -> Value {
    Value::Integer(Integer::from(v))
}

fn uint(v: u64) -> Value {
    Value::Integer(Integer::from(v))
}

impl Claims {
    /// Encodes the claims set as deterministic CBOR.
    pub fn to_cbor(&self) -> Vec<u8> {
        let subject = Value::Map(vec![
            (int(1), Value::Text(self.subject.masked_name.clone())),
            (int(2), uint(u64::from(self.subject.document_type.to_u8()))),
            (
                int(3),
                Value::Text(self.subject.masked_document_number.clone()),
            ),
            (int(4), Value::Bytes(self.subject.subject_hash.0.to_vec())),
        ]);
        let body = Value::Map(vec![
            (int(1), uint(BODY_VERSION)),
            (int(2), uint(self.status)),
            (int(3), uint(self.status_valid_until)),
            (int(4), subject),
        ]);
        let claims = Value::Map(vec![
            (int(CLAIM_ISS), Value::Text(self.iss.clone())),
            (int(CLAIM_EXP), uint(self.exp)),
            (int(CLAIM_IAT), uint(self.iat)),
            (int(CLAIM_CTI), Value::Bytes(self.cti.clone())),
            (int(CLAIM_HCODE), body),
        ]);
        let mut out = Vec::with_capacity(160);
        ciborium::into_writer(&claims, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Decodes a CWT claims set.
    ///
    /// # Errors
    /// A `claims.*` [`CodeError`]: not a map, duplicate key, missing claim, wrong type, or a bad
    /// time (NaN, infinite, fractional, negative, after 9999).
    pub fn from_cbor(bytes: &[u8]) -> Result<Claims, CodeError> {
        let value: Value = crate::cbor::decode_exact(bytes)?;
        let map = as_map(value, "claims")?;
        let dup = first_duplicate_key(&map);
        let mut iss = None;
        let mut iat = None;
        let mut exp = None;
        let mut cti = None;
        let mut body = None;
        for (k, v) in map {
            let Some(k) = int_key(&k) else { continue };
            match k {
                CLAIM_ISS => set_once(&mut iss, text(v, "iss")?, "iss", "claims")?,
                CLAIM_IAT => set_once(&mut iat, time(v, "iat")?, "iat", "claims")?,
                CLAIM_EXP => set_once(&mut exp, time(v, "exp")?, "exp", "claims")?,
                CLAIM_CTI => {
                    let b = bytes_of(v, "cti")?;
                    if b.is_empty() || b.len() > 64 {
                        return Err(CodeError::BadClaim("cti", "must be 1 to 64 bytes"));
                    }
                    set_once(&mut cti, b, "cti", "claims")?
                }
                CLAIM_HCODE => set_once(&mut body, v, "hcode", "claims")?,
                _ => {}
            }
        }
        if let Some(k) = dup {
            return Err(CodeError::DuplicateKey(k, "claims"));
        }
        let body = as_map(body.ok_or(CodeError::MissingClaim("hcode"))?, "hcode")?;
        let dup = first_duplicate_key(&body);
        let mut version = None;
        let mut status = None;
        let mut until = None;
        let mut subject = None;
        for (k, v) in body {
            match int_key(&k) {
                Some(1) => set_once(&mut version, uint_of(v, "hcode.version")?, "1", "hcode")?,
                Some(2) => set_once(&mut status, uint_of(v, "hcode.status")?, "2", "hcode")?,
                Some(3) => set_once(
                    &mut until,
                    time(v, "hcode.status_valid_until")?,
                    "3",
                    "hcode",
                )?,
                Some(4) => set_once(&mut subject, v, "4", "hcode")?,
                _ => {}
            }
        }
        if let Some(k) = dup {
            return Err(CodeError::DuplicateKey(k, "hcode"));
        }
        if version.ok_or(CodeError::MissingClaim("hcode.version"))? != BODY_VERSION {
            return Err(CodeError::BadClaim(
                "hcode.version",
                "unsupported body version",
            ));
        }
        let subject = as_map(
            subject.ok_or(CodeError::MissingClaim("hcode.subject"))?,
            "subject",
        )?;
        let dup = first_duplicate_key(&subject);
        let mut name = None;
        let mut doc_type = None;
        let mut number = None;
        let mut hash = None;
        for (k, v) in subject {
            match int_key(&k) {
                Some(1) => set_once(&mut name, text(v, "subject.name")?, "1", "subject")?,
                Some(2) => set_once(
                    &mut doc_type,
                    uint_of(v, "subject.document_type")?,
                    "2",
                    "subject",
                )?,
                Some(3) => set_once(
                    &mut number,
                    text(v, "subject.document_number")?,
                    "3",
                    "subject",
                )?,
                Some(4) => set_once(&mut hash, bytes_of(v, "subject.hash")?, "4", "subject")?,
                _ => {}
            }
        }
        if let Some(k) = dup {
            return Err(CodeError::DuplicateKey(k, "subject"));
        }
        let document_type = DocumentType::from_u64(
            doc_type.ok_or(CodeError::MissingClaim("subject.document_type"))?,
        )
        .ok_or(CodeError::BadClaim(
            "subject.document_type",
            "unassigned document type",
        ))?;
        let hash: [u8; 16] = hash
            .ok_or(CodeError::MissingClaim("subject.hash"))?
            .try_into()
            .map_err(|_| CodeError::BadClaim("subject.hash", "must be 16 bytes"))?;
        Ok(Claims {
            iss: iss.ok_or(CodeError::MissingClaim("iss"))?,
            iat: iat.ok_or(CodeError::MissingClaim("iat"))?,
            exp: exp.ok_or(CodeError::MissingClaim("exp"))?,
            cti: cti.ok_or(CodeError::MissingClaim("cti"))?,
            status: status.ok_or(CodeError::MissingClaim("hcode.status"))?,
            status_valid_until: until.ok_or(CodeError::MissingClaim("hcode.status_valid_until"))?,
            subject: Subject {
                masked_name: name.ok_or(CodeError::MissingClaim("subject.name"))?,
                document_type,
                masked_document_number: number
                    .ok_or(CodeError::MissingClaim("subject.document_number"))?,
                subject_hash: SubjectHash(hash),
            },
        })
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
            Some(int_key(k).map_or_else(|| format!("{k:?}"), |i| i.to_string()))
        }
    })
}

fn int_key(k: &Value) -> Option<i64> {
    match k {
        Value::Integer(i) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn as_map(v: Value, what: &'static str) -> Result<Vec<(Value, Value)>, CodeError> {
    match v {
        Value::Map(m) => Ok(m),
        _ if what == "claims" => Err(CodeError::ClaimsNotMap),
        _ => Err(CodeError::BadClaim(what, "not a map")),
    }
}

fn text(v: Value, what: &'static str) -> Result<String, CodeError> {
    match v {
        Value::Text(s) if s.chars().count() <= 64 => Ok(s),
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
fn time(v: Value, what: &'static str) -> Result<u64, CodeError> {
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
    Ok(t)
}
