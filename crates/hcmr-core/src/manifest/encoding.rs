//! The manifest's encoding (docs/transport.md sections 2 and 3): a canonical CBOR array, signed
//! as an untagged COSE_Sign1 with the code format's envelope, Base45 behind `HCMRT1:`.

use ciborium::value::Value;

use super::{
    province_of, Escort, Manifest, ManifestError, Person, Place, TripId, Vehicle, FIELDS,
    MAX_COSE_BYTES, MAX_MANIFEST_CHARS, PERSON_LEN, PREFIX, TRIP_ID_LEN,
};
use crate::cbor::uint;
use crate::code::{cose, transport};
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;

impl Manifest {
    /// The payload: the array of section 3 in deterministic encoding (RFC 8949 section
    /// 4.2.1: definite lengths, shortest heads), people packed 13 bytes each.
    pub fn to_cbor(&self) -> Vec<u8> {
        let provinces =
            |ps: &[Province]| Value::Array(ps.iter().map(|p| uint(u64::from(p.code()))).collect());
        let people: Vec<u8> = self.people.iter().flat_map(|p| p.pack()).collect();
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.trip_id.0.to_vec()),
            uint(self.version),
            uint(u64::from(self.origin)),
            uint(u64::from(self.destination)),
            provinces(&self.transit),
            Value::Text(self.vehicle.as_str().to_string()),
            Value::Text(self.place.as_str().to_string()),
            uint(self.departure.secs()),
            uint(self.arrival.secs()),
            uint(self.sealed_at.secs()),
            Value::Text(self.escort.as_str().to_string()),
            provinces(&self.issuers),
            Value::Bytes(people),
        ]))
    }

    /// Decodes and checks a payload: exactly one canonical array of 13 fields, each of its type
    /// and rule ([`Manifest::check`]).
    ///
    /// # Errors
    /// A `manifest.*` [`ManifestError`]; a canonical-form fault is reported only when the
    /// fields are otherwise valid.
    pub fn from_cbor(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let value = crate::cbor::decode_exact(bytes)?;
        let not_canonical = crate::cbor::first_non_canonical_byte(&value, bytes);
        let Value::Array(items) = value else {
            return Err(ManifestError::NotArray("it is another CBOR item".into()));
        };
        let n = items.len();
        let Ok(
            [trip_id, version, origin, destination, transit, vehicle, place, departure, arrival, sealed_at, escort, issuers, people],
        ) = <[Value; FIELDS]>::try_from(items)
        else {
            return Err(ManifestError::NotArray(format!("it has {n}")));
        };
        let trip_id = bytes_of(trip_id, "trip_id")?;
        let trip_id: [u8; TRIP_ID_LEN] = trip_id.as_slice().try_into().map_err(|_| {
            ManifestError::field(
                "trip_id",
                format!("has {} bytes; 8 are required", trip_id.len()),
            )
        })?;
        let people = bytes_of(people, "people")?;
        if people.len() % PERSON_LEN != 0 {
            return Err(ManifestError::field(
                "people",
                format!("has {} bytes, not a multiple of {PERSON_LEN}", people.len()),
            ));
        }
        let manifest = Manifest {
            trip_id: TripId(trip_id),
            version: uint_of(version, "version")?,
            origin: code_of(origin, "origin")?,
            destination: code_of(destination, "destination")?,
            transit: provinces(transit, "transit", super::MAX_TRANSIT)?,
            vehicle: Vehicle::new(text(vehicle, "vehicle")?)?,
            place: Place::new(text(place, "place")?)?,
            departure: time(departure, "departure")?,
            arrival: time(arrival, "arrival")?,
            sealed_at: time(sealed_at, "sealed_at")?,
            escort: Escort::new(text(escort, "escort")?)?,
            issuers: provinces(issuers, "issuers", super::MAX_ISSUERS)?,
            people: people
                .chunks_exact(PERSON_LEN)
                .enumerate()
                .map(|(i, b)| Person::unpack(b.try_into().expect("13 bytes"), i + 1))
                .collect::<Result<_, _>>()?,
        };
        manifest.check()?;
        if let Some(offset) = not_canonical {
            return Err(ManifestError::NotCanonical(offset));
        }
        Ok(manifest)
    }
}

/// Signs a manifest into its string, `HCMRT1:` and Base45 of an untagged COSE_Sign1 with
/// protected header `{1: -8, 4: kid}` (docs/transport.md section 2). Deterministic (Ed25519,
/// RFC 8032). The caller checks the manifest first ([`Manifest::check`]) and signs with a key
/// of the origin's province; a manifest that breaks a rule signs, but does not decode.
pub fn sign(manifest: &Manifest, key: &NodeKey) -> String {
    wrap(&cose::sign(manifest.to_cbor(), key).bytes)
}

/// Base45-encodes and prefixes COSE bytes.
pub(crate) fn wrap(cose_bytes: &[u8]) -> String {
    format!("{PREFIX}{}", base45::encode(cose_bytes))
}

/// A decoded manifest whose form is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    /// The kid from the protected header.
    pub kid: Kid,
    /// The content; trusted only once the signature verifies under a key of its origin.
    pub manifest: Manifest,
    cose: Vec<u8>,
    to_be_signed: Vec<u8>,
    signature: [u8; 64],
}

impl SignedManifest {
    /// Decodes a manifest string through every stage: prefix, Base45, COSE_Sign1 (the code
    /// format's envelope rules), the payload's CBOR and field rules.
    ///
    /// # Errors
    /// The first [`ManifestError`] met.
    pub fn decode(s: &str) -> Result<SignedManifest, ManifestError> {
        let text = strip_prefix(s)?;
        let cose_bytes = transport::base45_decode(text).map_err(ManifestError::Base45)?;
        if cose_bytes.len() > MAX_COSE_BYTES {
            return Err(ManifestError::TooLarge(cose_bytes.len()));
        }
        let parsed = cose::parse(&cose_bytes).map_err(ManifestError::Cose)?;
        let manifest = Manifest::from_cbor(&parsed.payload)?;
        Ok(SignedManifest {
            kid: parsed.kid,
            manifest,
            cose: cose_bytes,
            to_be_signed: parsed.to_be_signed,
            signature: parsed.signature,
        })
    }

    /// Whether the signature verifies under `key` (Ed25519, strict). The caller picks the key
    /// by the origin's province and [`SignedManifest::kid`].
    pub fn verify_signature(&self, key: &PublicKey) -> bool {
        crate::keys::verify_signature(key, &self.to_be_signed, &self.signature)
    }

    /// The COSE_Sign1 bytes as received (`manifest_hash` of section 6 is their SHA-256).
    pub fn cose_bytes(&self) -> &[u8] {
        &self.cose
    }

    /// The manifest string again (`HCMRT1:` and Base45 of the COSE_Sign1 bytes as decoded):
    /// the same string a strict decode accepted.
    pub fn to_text(&self) -> String {
        wrap(&self.cose)
    }

    /// The 64-byte Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

/// Removes a scanner's line ending and leading white space, then the prefix.
fn strip_prefix(s: &str) -> Result<&str, ManifestError> {
    let s = s.trim_start().trim_end_matches(['\r', '\n', '\t']);
    if s.is_empty() {
        return Err(ManifestError::Empty);
    }
    let chars = s.chars().count();
    if chars > MAX_MANIFEST_CHARS {
        return Err(ManifestError::TooLong(chars));
    }
    if let Some(rest) = s.strip_prefix(PREFIX) {
        return Ok(rest);
    }
    if let Some((head, _)) = s.split_once(':') {
        // A health code (`HCMR1:`), an EU certificate (`HC1:`), ...: at most 8 characters of
        // untrusted input are echoed back.
        if (1..=8).contains(&head.chars().count())
            && head.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(ManifestError::ForeignPrefix(format!("{head}:")));
        }
    }
    Err(ManifestError::MissingPrefix)
}

fn bytes_of(v: Value, field: &'static str) -> Result<Vec<u8>, ManifestError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(ManifestError::field(field, "is not a byte string")),
    }
}

fn uint_of(v: Value, field: &'static str) -> Result<u64, ManifestError> {
    crate::cbor::as_u64(&v).ok_or_else(|| ManifestError::field(field, "is not an unsigned integer"))
}

/// A six-digit GB/T 2260 code in a province.
fn code_of(v: Value, field: &'static str) -> Result<u32, ManifestError> {
    let n = uint_of(v, field)?;
    let code = u32::try_from(n).map_err(|_| {
        ManifestError::field(field, format!("{n} is not a six-digit GB/T 2260 code"))
    })?;
    province_of(code, field)?;
    Ok(code)
}

/// A time in whole seconds, an unsigned integer (no floats: hcmr writes none) up to 9999.
fn time(v: Value, field: &'static str) -> Result<UnixTime, ManifestError> {
    let t = uint_of(v, field)?;
    if t > UnixTime::MAX.secs() {
        return Err(ManifestError::field(field, "is after the year 9999"));
    }
    Ok(UnixTime::from_secs(t))
}

fn text(v: Value, field: &'static str) -> Result<String, ManifestError> {
    match v {
        Value::Text(s) => Ok(s),
        _ => Err(ManifestError::field(field, "is not a text string")),
    }
}

/// An array of at most `max` province-level codes.
fn provinces(v: Value, field: &'static str, max: usize) -> Result<Vec<Province>, ManifestError> {
    let Value::Array(items) = v else {
        return Err(ManifestError::field(field, "is not an array"));
    };
    if items.len() > max {
        return Err(ManifestError::field(
            field,
            format!("has {} provinces; at most {max}", items.len()),
        ));
    }
    items
        .iter()
        .map(|i| {
            let n = crate::cbor::as_u64(i).ok_or_else(|| {
                ManifestError::field(field, "has an element that is not an unsigned integer")
            })?;
            u32::try_from(n)
                .ok()
                .and_then(|c| Province::from_code(c).ok())
                .ok_or_else(|| {
                    ManifestError::field(
                        field,
                        format!("{n} is not a province-level GB/T 2260 code"),
                    )
                })
        })
        .collect()
}
