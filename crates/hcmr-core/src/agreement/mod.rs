//! Bilateral agreements: which of a peer province's health codes a province recognizes, as what,
//! and when; signed by both provinces' node keys.
//!
//! An agreement has a body (the terms) and two signatures. The body is encoded canonically (a CBOR
//! array with definite lengths and shortest integers, RFC 8949 section 4.2.1; maps are avoided so
//! no key order is involved) and each party signs `"hcmr-agreement-v1\0" || body`. A receiver
//! decodes the body and re-encodes it: bytes that do not round-trip are refused, so exactly one
//! encoding of any agreement can carry signatures.
//!
//! ```text
//! body = ["hcmr-agreement", 1, id: bstr .size 16, version: uint, created_at: uint,
//!         proposer: party, acceptor: party, [direction, direction]]
//! party = [province: uint (GB/T 2260), [* key: bstr .size 32]]
//! direction = [issuer: uint, verifier: uint, [* [issued: uint, counts_as: uint]],
//!              max_code_age: uint (seconds), effective_from: uint, effective_until: uint,
//!              max_trust_age: uint (seconds; 0 = no limit)]
//! ```
//! Times are seconds since the Unix epoch (UTC); a direction is in force in
//! `effective_from <= now < effective_until`.

use crate::cbor::uint;
use std::collections::BTreeMap;
use std::fmt;

use ciborium::value::Value;

use crate::code::MAX_TIME;
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::status::HealthStatus;

/// Domain separation for agreement signatures.
const SIGNING_CONTEXT: &[u8] = b"hcmr-agreement-v1\0";
/// First element of an encoded body.
const MAGIC: &str = "hcmr-agreement";
/// Body format version.
const FORMAT: u64 = 1;
/// Most keys a party may pin.
pub const MAX_KEYS_PER_PARTY: usize = 8;

/// An agreement id: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgreementId(pub [u8; 16]);

impl AgreementId {
    /// A fresh random id.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        AgreementId(b)
    }

    /// Parses 32 hex digits.
    ///
    /// # Errors
    /// [`AgreementError::BadId`].
    pub fn from_hex(s: &str) -> Result<Self, AgreementError> {
        hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .map(AgreementId)
            .ok_or_else(|| AgreementError::BadId(s.to_string()))
    }
}

impl fmt::Display for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementId({self})")
    }
}

/// One party: a province and the node keys pinned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The party's province.
    pub province: Province,
    /// The public keys this agreement pins for the party: codes of its province verify only under
    /// these, and its signature on the agreement must be by one of them. 1 to 8 keys.
    pub keys: Vec<PublicKey>,
}

/// The terms for one direction: how `verifier` counts codes issued by `issuer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionTerms {
    /// The province whose codes these terms are about.
    pub issuer: Province,
    /// The province that recognizes them.
    pub verifier: Province,
    /// Issued status -> status as it counts at the verifier. A status that is not a key here is
    /// not recognized at all (Guangdong, with only green and red, maps yellow to red).
    pub status_map: BTreeMap<HealthStatus, HealthStatus>,
    /// The oldest code accepted: `now - iat` must not exceed this, in seconds.
    pub max_code_age_secs: u64,
    /// Start of the window, seconds since the Unix epoch (UTC), inclusive.
    pub effective_from: u64,
    /// End of the window, seconds since the Unix epoch (UTC), exclusive.
    pub effective_until: u64,
    /// How old the verifier's copy of the issuer's trust state (keys, revocations) may be, in
    /// seconds since its last successful sync, before the issuer's codes are refused as stale;
    /// 0: no limit.
    pub max_trust_age_secs: u64,
}

/// Where a direction's window stands at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `now < effective_from`.
    NotYetInForce,
    /// Inside the window.
    InForce,
    /// `now >= effective_until`.
    Expired,
}

impl DirectionTerms {
    /// Where `now` (seconds since the Unix epoch) falls relative to the window.
    pub fn window(&self, now: u64) -> Window {
        if now < self.effective_from {
            Window::NotYetInForce
        } else if now >= self.effective_until {
            Window::Expired
        } else {
            Window::InForce
        }
    }
}

/// The signed content of an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementBody {
    /// Chosen by the proposer; the same across versions of one agreement.
    pub id: AgreementId,
    /// Starts at 1.
    pub version: u32,
    /// When the proposer made it, seconds since the Unix epoch (UTC).
    pub created_at: u64,
    /// The party that proposed (signed first).
    pub proposer: Party,
    /// The party that accepted (signed second).
    pub acceptor: Party,
    /// Exactly two: one per direction.
    pub directions: Vec<DirectionTerms>,
}

/// A signature on an agreement body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreementSignature {
    /// The signing key's kid; must be one of the signing party's pinned keys.
    pub kid: Kid,
    /// Ed25519 over `"hcmr-agreement-v1\0" || body`.
    pub signature: [u8; 64],
}

/// An agreement as stored and exchanged: the canonical body bytes and up to two signatures.
///
/// The body and its encoding are private and set together, so the terms read are always the
/// terms the signatures cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAgreement {
    /// The decoded body.
    body: AgreementBody,
    /// The canonical encoding the signatures cover.
    encoded: Vec<u8>,
    /// The proposer's signature (present once proposed).
    pub proposer_signature: Option<AgreementSignature>,
    /// The acceptor's signature (present once accepted).
    pub acceptor_signature: Option<AgreementSignature>,
}

/// Errors of agreement handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    /// Not 32 hex digits.
    #[error("agreement id {0:?} is not 32 hex digits")]
    BadId(String),
    /// The body bytes do not decode.
    #[error("agreement body does not decode: {0}")]
    Decode(String),
    /// The body decodes but is not in canonical form.
    #[error("agreement body is not in canonical encoding")]
    NotCanonical,
    /// Both parties are one province.
    #[error("an agreement needs two different provinces")]
    SameProvince,
    /// A party with no keys, more than 8, or the same key twice.
    #[error("party {0} must pin 1 to 8 distinct keys")]
    BadKeys(Province),
    /// The directions are not exactly proposer->acceptor and acceptor->proposer.
    #[error("an agreement needs exactly one direction each way between its two parties")]
    BadDirections,
    /// `effective_from >= effective_until`.
    #[error("direction {0}->{1}: effective_from must be before effective_until")]
    BadWindow(Province, Province),
    /// A status mapped to a milder one (red counting as green): refused, since a recognized
    /// code must never be shown as safer than its issuer judged it.
    #[error("direction {0}->{1}: {2} may not count as {3}; a mapping may keep or raise severity")]
    LowersSeverity(Province, Province, HealthStatus, HealthStatus),
    /// `max_code_age_secs` is zero.
    #[error("direction {0}->{1}: max_code_age must be positive")]
    BadMaxAge(Province, Province),
    /// A time (creation, window, termination) after 9999-12-31T23:59:59Z, the latest a code may
    /// carry ([`crate::code::MAX_TIME`]) and the latest RFC 3339 can show.
    #[error("{0} is after 9999-12-31T23:59:59Z")]
    TimeTooLarge(&'static str),
    /// A signature is missing.
    #[error("the {0} has not signed")]
    Unsigned(&'static str),
    /// The signature's kid is not among the party's pinned keys.
    #[error("the {0}'s signature is by a key the agreement does not pin for it")]
    SignerNotPinned(&'static str),
    /// The signature does not verify.
    #[error("the {0}'s signature does not verify")]
    BadSignature(&'static str),
}

impl AgreementBody {
    /// Checks the body's own consistency (not signatures).
    ///
    /// # Errors
    /// [`AgreementError::SameProvince`], [`AgreementError::BadKeys`],
    /// [`AgreementError::BadDirections`], [`AgreementError::BadWindow`],
    /// [`AgreementError::BadMaxAge`] or [`AgreementError::TimeTooLarge`].
    pub fn validate(&self) -> Result<(), AgreementError> {
        let (p, a) = (self.proposer.province, self.acceptor.province);
        // Times are shown as RFC 3339 (agreement lists, verdicts): none after the year 9999.
        if self.created_at > MAX_TIME {
            return Err(AgreementError::TimeTooLarge("created_at"));
        }
        for d in &self.directions {
            if d.effective_from > MAX_TIME {
                return Err(AgreementError::TimeTooLarge("effective_from"));
            }
            if d.effective_until > MAX_TIME {
                return Err(AgreementError::TimeTooLarge("effective_until"));
            }
        }
        if p == a {
            return Err(AgreementError::SameProvince);
        }
        for party in [&self.proposer, &self.acceptor] {
            let mut kids: Vec<[u8; 32]> = party.keys.iter().map(PublicKey::to_bytes).collect();
            kids.sort_unstable();
            kids.dedup();
            if party.keys.is_empty()
                || party.keys.len() > MAX_KEYS_PER_PARTY
                || kids.len() != party.keys.len()
            {
                return Err(AgreementError::BadKeys(party.province));
            }
        }
        let dirs: Vec<(Province, Province)> = self
            .directions
            .iter()
            .map(|d| (d.issuer, d.verifier))
            .collect();
        if dirs.len() != 2 || !dirs.contains(&(p, a)) || !dirs.contains(&(a, p)) {
            return Err(AgreementError::BadDirections);
        }
        for d in &self.directions {
            if d.effective_from >= d.effective_until {
                return Err(AgreementError::BadWindow(d.issuer, d.verifier));
            }
            if d.max_code_age_secs == 0 {
                return Err(AgreementError::BadMaxAge(d.issuer, d.verifier));
            }
            if let Some((from, to)) = d.status_map.iter().find(|(from, to)| to < from) {
                return Err(AgreementError::LowersSeverity(
                    d.issuer, d.verifier, *from, *to,
                ));
            }
        }
        Ok(())
    }

    /// The canonical encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let party = |p: &Party| {
            Value::Array(vec![
                uint(u64::from(p.province.code())),
                Value::Array(
                    p.keys
                        .iter()
                        .map(|k| Value::Bytes(k.to_bytes().to_vec()))
                        .collect(),
                ),
            ])
        };
        let direction = |d: &DirectionTerms| {
            Value::Array(vec![
                uint(u64::from(d.issuer.code())),
                uint(u64::from(d.verifier.code())),
                Value::Array(
                    d.status_map
                        .iter()
                        .map(|(from, to)| {
                            Value::Array(vec![uint(from.to_u64()), uint(to.to_u64())])
                        })
                        .collect(),
                ),
                uint(d.max_code_age_secs),
                uint(d.effective_from),
                uint(d.effective_until),
                uint(d.max_trust_age_secs),
            ])
        };
        let v = Value::Array(vec![
            Value::Text(MAGIC.into()),
            uint(FORMAT),
            Value::Bytes(self.id.0.to_vec()),
            uint(u64::from(self.version)),
            uint(self.created_at),
            party(&self.proposer),
            party(&self.acceptor),
            Value::Array(self.directions.iter().map(direction).collect()),
        ]);
        crate::cbor::encode(&v)
    }

    /// Decodes canonical body bytes and validates the body.
    ///
    /// # Errors
    /// [`AgreementError::Decode`], [`AgreementError::NotCanonical`], or a validation error.
    pub fn decode(bytes: &[u8]) -> Result<Self, AgreementError> {
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| AgreementError::Decode(e.to_string()))?;
        let body = decode_body(v).map_err(AgreementError::Decode)?;
        if body.encode() != bytes {
            return Err(AgreementError::NotCanonical);
        }
        body.validate()?;
        Ok(body)
    }

    /// The terms for codes of `issuer` verified at `verifier`, if this agreement has them.
    pub fn direction(&self, issuer: Province, verifier: Province) -> Option<&DirectionTerms> {
        self.directions
            .iter()
            .find(|d| d.issuer == issuer && d.verifier == verifier)
    }

    /// The party of `province`, if it is one.
    pub fn party(&self, province: Province) -> Option<&Party> {
        [&self.proposer, &self.acceptor]
            .into_iter()
            .find(|p| p.province == province)
    }

    /// The other party, seen from `province`.
    pub fn peer_of(&self, province: Province) -> Option<&Party> {
        if self.proposer.province == province {
            Some(&self.acceptor)
        } else if self.acceptor.province == province {
            Some(&self.proposer)
        } else {
            None
        }
    }
}

type D<T> = Result<T, String>;

/// What a record's signature slot holds, for the error when it holds something else.
const SIGNATURE_SHAPE: &str = "signature: expected null or an array of kid and signature bytes";

fn arr(v: Value, what: &str, len: Option<usize>) -> D<Vec<Value>> {
    match v {
        Value::Array(a) if len.is_none_or(|n| a.len() == n) => Ok(a),
        _ => Err(format!(
            "{what}: expected an array{}",
            len.map(|n| format!(" of {n}")).unwrap_or_default()
        )),
    }
}

fn u(v: &Value, what: &str) -> D<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("{what}: negative")),
        _ => Err(format!("{what}: expected an unsigned integer")),
    }
}

fn province(v: &Value, what: &str) -> D<Province> {
    let c = u(v, what)?;
    let c = u32::try_from(c).map_err(|_| format!("{what}: out of range"))?;
    Province::from_code(c).map_err(|e| format!("{what}: {e}"))
}

fn status(v: &Value, what: &str) -> D<HealthStatus> {
    HealthStatus::from_u64(u(v, what)?).ok_or_else(|| format!("{what}: unassigned status"))
}

fn decode_party(v: Value, what: &str) -> D<Party> {
    let mut a = arr(v, what, Some(2))?.into_iter();
    let province = province(&a.next().unwrap_or(Value::Null), what)?;
    let keys = arr(a.next().unwrap_or(Value::Null), what, None)?
        .into_iter()
        .map(|k| match k {
            Value::Bytes(b) => PublicKey::from_bytes(&b).map_err(|e| format!("{what}: {e}")),
            _ => Err(format!("{what}: key is not a byte string")),
        })
        .collect::<D<Vec<_>>>()?;
    Ok(Party { province, keys })
}

fn decode_direction(v: Value) -> D<DirectionTerms> {
    let a = arr(v, "direction", Some(7))?;
    let mut status_map = BTreeMap::new();
    for pair in arr(a[2].clone(), "status map", None)? {
        let p = arr(pair, "status map entry", Some(2))?;
        let from = status(&p[0], "issued status")?;
        if status_map
            .insert(from, status(&p[1], "local status")?)
            .is_some()
        {
            return Err("status map: issued status appears twice".into());
        }
    }
    Ok(DirectionTerms {
        issuer: province(&a[0], "issuer")?,
        verifier: province(&a[1], "verifier")?,
        status_map,
        max_code_age_secs: u(&a[3], "max_code_age")?,
        effective_from: u(&a[4], "effective_from")?,
        effective_until: u(&a[5], "effective_until")?,
        max_trust_age_secs: u(&a[6], "max_trust_age")?,
    })
}

fn decode_body(v: Value) -> D<AgreementBody> {
    let mut a = arr(v, "body", Some(8))?.into_iter();
    let mut next = || a.next().unwrap_or(Value::Null);
    if next() != Value::Text(MAGIC.into()) {
        return Err("not an hcmr agreement".into());
    }
    if u(&next(), "format")? != FORMAT {
        return Err("unsupported agreement format".into());
    }
    let id = match next() {
        Value::Bytes(b) => AgreementId(b.try_into().map_err(|_| "id: expected 16 bytes")?),
        _ => return Err("id: expected a byte string".into()),
    };
    let version = u32::try_from(u(&next(), "version")?).map_err(|_| "version: out of range")?;
    let created_at = u(&next(), "created_at")?;
    let proposer = decode_party(next(), "proposer")?;
    let acceptor = decode_party(next(), "acceptor")?;
    let directions = arr(next(), "directions", None)?
        .into_iter()
        .map(decode_direction)
        .collect::<D<Vec<_>>>()?;
    Ok(AgreementBody {
        id,
        version,
        created_at,
        proposer,
        acceptor,
        directions,
    })
}

fn signing_message(encoded: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + encoded.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(encoded);
    m
}

impl SignedAgreement {
    /// The terms (decoded from, and always equal to, [`SignedAgreement::encoded`]).
    pub fn body(&self) -> &AgreementBody {
        &self.body
    }

    /// The canonical body bytes the signatures cover.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Validates a new body and signs it as the proposer.
    ///
    /// # Errors
    /// A validation error, or [`AgreementError::SignerNotPinned`] when `key` is not pinned for the
    /// proposer.
    pub fn propose(body: AgreementBody, key: &NodeKey) -> Result<Self, AgreementError> {
        body.validate()?;
        if !body.proposer.keys.contains(&key.public()) {
            return Err(AgreementError::SignerNotPinned("proposer"));
        }
        let encoded = body.encode();
        let signature = AgreementSignature {
            kid: key.kid(),
            signature: key.sign(&signing_message(&encoded)),
        };
        Ok(SignedAgreement {
            body,
            encoded,
            proposer_signature: Some(signature),
            acceptor_signature: None,
        })
    }

    /// Adds the acceptor's signature after checking the proposer's.
    ///
    /// # Errors
    /// A proposer signature error, or [`AgreementError::SignerNotPinned`] when `key` is not
    /// pinned for the acceptor.
    pub fn accept(&mut self, key: &NodeKey) -> Result<(), AgreementError> {
        self.check_signature(Role::Proposer)?;
        if !self.body.acceptor.keys.contains(&key.public()) {
            return Err(AgreementError::SignerNotPinned("acceptor"));
        }
        self.acceptor_signature = Some(AgreementSignature {
            kid: key.kid(),
            signature: key.sign(&signing_message(&self.encoded)),
        });
        Ok(())
    }

    /// Builds from received parts: decodes and validates the body; does not check signatures.
    ///
    /// # Errors
    /// As [`AgreementBody::decode`].
    pub fn from_parts(
        encoded: Vec<u8>,
        proposer_signature: Option<AgreementSignature>,
        acceptor_signature: Option<AgreementSignature>,
    ) -> Result<Self, AgreementError> {
        let body = AgreementBody::decode(&encoded)?;
        Ok(SignedAgreement {
            body,
            encoded,
            proposer_signature,
            acceptor_signature,
        })
    }

    /// Checks one party's signature: present, by a key pinned for that party, and valid.
    ///
    /// # Errors
    /// [`AgreementError::Unsigned`], [`AgreementError::SignerNotPinned`] or
    /// [`AgreementError::BadSignature`].
    pub fn check_signature(&self, role: Role) -> Result<(), AgreementError> {
        let (sig, party, name) = match role {
            Role::Proposer => (&self.proposer_signature, &self.body.proposer, "proposer"),
            Role::Acceptor => (&self.acceptor_signature, &self.body.acceptor, "acceptor"),
        };
        let sig = sig.as_ref().ok_or(AgreementError::Unsigned(name))?;
        let msg = signing_message(&self.encoded);
        let mut pinned = party.keys.iter().filter(|k| k.kid == sig.kid).peekable();
        if pinned.peek().is_none() {
            return Err(AgreementError::SignerNotPinned(name));
        }
        // Kids may collide: any pinned key with this kid that verifies will do.
        if pinned.any(|k| crate::keys::verify_signature(k, &msg, &sig.signature)) {
            Ok(())
        } else {
            Err(AgreementError::BadSignature(name))
        }
    }

    /// Whether `role`'s signature verifies under one of `keys` (keys trusted here for that
    /// party, whatever the body pins): an amendment must be signed by a key the agreement in
    /// force pins, not only by one its own body names.
    pub fn signed_by_any(&self, role: Role, keys: &[PublicKey]) -> bool {
        let sig = match role {
            Role::Proposer => &self.proposer_signature,
            Role::Acceptor => &self.acceptor_signature,
        };
        let Some(sig) = sig else {
            return false;
        };
        let msg = signing_message(&self.encoded);
        keys.iter()
            .filter(|k| k.kid == sig.kid)
            .any(|k| crate::keys::verify_signature(k, &msg, &sig.signature))
    }

    /// Checks both signatures: the agreement is concluded.
    ///
    /// # Errors
    /// The first signature error.
    pub fn check_both(&self) -> Result<(), AgreementError> {
        self.check_signature(Role::Proposer)?;
        self.check_signature(Role::Acceptor)
    }

    /// Whether both parties have signed (signatures not checked).
    pub fn is_concluded(&self) -> bool {
        self.proposer_signature.is_some() && self.acceptor_signature.is_some()
    }

    /// The storage encoding: a CBOR array `[body: bstr, proposer_sig, acceptor_sig]`, each
    /// signature `null` or `[kid: bstr .size 8, sig: bstr .size 64]`.
    pub fn to_record(&self) -> Vec<u8> {
        let sig = |s: &Option<AgreementSignature>| match s {
            None => Value::Null,
            Some(s) => Value::Array(vec![
                Value::Bytes(s.kid.0.to_vec()),
                Value::Bytes(s.signature.to_vec()),
            ]),
        };
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.encoded.clone()),
            sig(&self.proposer_signature),
            sig(&self.acceptor_signature),
        ]))
    }

    /// Reads [`SignedAgreement::to_record`] bytes.
    ///
    /// # Errors
    /// [`AgreementError::Decode`] or a body error.
    pub fn from_record(bytes: &[u8]) -> Result<Self, AgreementError> {
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| AgreementError::Decode(e.to_string()))?;
        let a = arr(v, "record", Some(3)).map_err(AgreementError::Decode)?;
        let sig = |v: &Value| -> Result<Option<AgreementSignature>, AgreementError> {
            match v {
                Value::Null => Ok(None),
                Value::Array(p) => match p.as_slice() {
                    [Value::Bytes(k), Value::Bytes(s)] => Ok(Some(AgreementSignature {
                        kid: Kid::from_slice(k).ok_or_else(|| {
                            AgreementError::Decode("signature kid: expected 8 bytes".into())
                        })?,
                        signature: s.as_slice().try_into().map_err(|_| {
                            AgreementError::Decode("signature: expected 64 bytes".into())
                        })?,
                    })),
                    _ => Err(AgreementError::Decode(SIGNATURE_SHAPE.into())),
                },
                _ => Err(AgreementError::Decode(SIGNATURE_SHAPE.into())),
            }
        };
        let Value::Bytes(encoded) = &a[0] else {
            return Err(AgreementError::Decode(
                "record body: expected a byte string".into(),
            ));
        };
        Self::from_parts(encoded.clone(), sig(&a[1])?, sig(&a[2])?)
    }
}

/// Which party of an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Signed first.
    Proposer,
    /// Signed second.
    Acceptor,
}

#[cfg(test)]
mod tests;

/// Domain separation for termination notices.
const TERMINATION_CONTEXT: &[u8] = b"hcmr-termination-v1\0";

/// A party's signed notice that ends an agreement (every version of it) at `effective_at`.
///
/// Signed bytes: `"hcmr-termination-v1\0" || CBOR [id: bstr .size 16, by: uint (GB/T 2260),
/// effective_at: uint, signed_at: uint]`, by a key of the terminating province (pinned in the
/// agreement, or added to that province's trust feed by a rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The agreement.
    pub id: AgreementId,
    /// The terminating party.
    pub by: Province,
    /// When it takes effect, seconds since the Unix epoch (UTC).
    pub effective_at: u64,
    /// When it was signed, seconds since the Unix epoch (UTC).
    pub signed_at: u64,
    /// The signing key's kid.
    pub kid: Kid,
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl Termination {
    fn message(id: AgreementId, by: Province, effective_at: u64, signed_at: u64) -> Vec<u8> {
        let mut m = TERMINATION_CONTEXT.to_vec();
        m.extend_from_slice(&crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(id.0.to_vec()),
            uint(u64::from(by.code())),
            uint(effective_at),
            uint(signed_at),
        ])));
        m
    }

    /// Signs a termination of agreement `id` by `by`.
    pub fn sign(
        id: AgreementId,
        by: Province,
        effective_at: u64,
        signed_at: u64,
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
        if self.effective_at > MAX_TIME {
            return Err(AgreementError::TimeTooLarge("termination effective_at"));
        }
        if self.signed_at > MAX_TIME {
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
            uint(self.effective_at),
            uint(self.signed_at),
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
            effective_at: u(&a[2], "effective_at").map_err(AgreementError::Decode)?,
            signed_at: u(&a[3], "signed_at").map_err(AgreementError::Decode)?,
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
    /// The agreement.
    pub id: AgreementId,
    /// The newest version dropped.
    pub version: u32,
    /// The acting party.
    pub by: Province,
    /// Withdrawn or rejected.
    pub outcome: ProposalOutcome,
    /// When it was signed, seconds since the Unix epoch (UTC).
    pub signed_at: u64,
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
        signed_at: u64,
    ) -> Vec<u8> {
        let mut m = PROPOSAL_NOTICE_CONTEXT.to_vec();
        m.extend_from_slice(&crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(id.0.to_vec()),
            uint(u64::from(version)),
            uint(u64::from(by.code())),
            uint(outcome.code()),
            uint(signed_at),
        ])));
        m
    }

    /// Signs a notice that `by` dropped agreement `id` up to `version`.
    pub fn sign(
        id: AgreementId,
        version: u32,
        by: Province,
        outcome: ProposalOutcome,
        signed_at: u64,
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
            uint(self.signed_at),
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
            signed_at: u(&a[4], "signed_at").map_err(AgreementError::Decode)?,
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
