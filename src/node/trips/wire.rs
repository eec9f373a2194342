//! The CBOR layouts of check reports and handover receipts (docs/transport.md section 6), as
//! the origin opens them: the COSE_Sign1 envelope of the code format, then the payload array.
//! PROVISIONAL: written while the core's `manifest::report` and `manifest::receipt` were being
//! made; swap [`open_report`] and [`open_handover`] for their decoders when they land.

use ciborium::value::Value;

use super::record::{Opened, Record};
use crate::cbor::as_u64;
use crate::code::cose;
use crate::manifest::TripId;
use crate::province::Province;
use crate::store::{StoredHandover, StoredReport};
use crate::UnixTime;

fn bytes<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], String> {
    match v {
        Value::Bytes(b) => b
            .as_slice()
            .try_into()
            .map_err(|_| format!("{what}: must be {N} bytes")),
        _ => Err(format!("{what}: must be a byte string")),
    }
}

fn num(v: &Value, what: &str) -> Result<u64, String> {
    as_u64(v).ok_or_else(|| format!("{what}: must be an unsigned integer"))
}

fn text(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::Text(s) if s.len() <= 200 => Ok(s.clone()),
        Value::Text(_) => Err(format!("{what}: longer than 200 bytes")),
        _ => Err(format!("{what}: must be a text string")),
    }
}

fn province(v: &Value, what: &str) -> Result<Province, String> {
    u32::try_from(num(v, what)?)
        .ok()
        .and_then(|c| Province::from_code(c).ok())
        .ok_or_else(|| format!("{what}: not a GB/T 2260 province code"))
}

fn array<'v>(v: &'v Value, what: &str) -> Result<&'v [Value], String> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(format!("{what}: must be an array")),
    }
}

/// The envelope and the payload array.
fn envelope(b: &[u8]) -> Result<(cose::ParsedSign1, Vec<Value>), String> {
    let parsed = cose::parse(b).map_err(|e| format!("{}: {e}", e.code()))?;
    let payload =
        crate::cbor::decode_exact(&parsed.payload).map_err(|e| format!("payload: {e}"))?;
    let Value::Array(a) = payload else {
        return Err("payload: must be an array".into());
    };
    Ok((parsed, a))
}

fn verifier(p: &cose::ParsedSign1) -> Box<dyn Fn(&crate::keys::PublicKey) -> bool + Send + Sync> {
    let (tbs, sig) = (p.to_be_signed.clone(), p.signature);
    Box::new(move |k| crate::keys::verify_signature(k, &tbs, &sig))
}

/// Opens a check report: `[trip_id, version, manifest_hash, checker, checkpoint, checked_at,
/// verdict (1 PASS, 2 STOP), [* [reason, seat, issuer (0: none), detail]]]`.
///
/// # Errors
/// What is malformed, for INVALID_ARGUMENT.
pub(crate) fn open_report(b: Vec<u8>) -> Result<Opened, String> {
    let (parsed, a) = envelope(&b)?;
    let [trip, version, hash, checker, checkpoint, at, verdict, reasons] = a.as_slice() else {
        return Err(format!("payload: {} elements; a report has 8", a.len()));
    };
    let pass = match num(verdict, "verdict")? {
        1 => true,
        2 => false,
        n => return Err(format!("verdict: {n} is neither 1 (PASS) nor 2 (STOP)")),
    };
    let checker = province(checker, "checker")?;
    let version = num(version, "version")?;
    let reasons = array(reasons, "reasons")?
        .iter()
        .map(|r| match array(r, "reason")? {
            [reason, seat, issuer, detail] => Ok((
                num(reason, "reason")?,
                num(seat, "seat")?,
                u32::try_from(num(issuer, "issuer")?)
                    .map_err(|_| "issuer: too large".to_string())?,
                text(detail, "detail")?,
            )),
            _ => Err("reason: must be [reason, seat, issuer, detail]".to_string()),
        })
        .collect::<Result<_, _>>()?;
    let report = StoredReport {
        checker,
        checkpoint: text(checkpoint, "checkpoint")?,
        checked_at: UnixTime::from_secs(num(at, "checked_at")?),
        version,
        pass,
        reasons,
        signed: b.clone(),
    };
    Ok(Opened::new(
        checker,
        parsed.kid,
        TripId(bytes(trip, "trip_id")?),
        version,
        bytes(hash, "manifest_hash")?,
        Record::Report(report),
        verifier(&parsed),
    ))
}

/// Opens a handover receipt or refusal: `[trip_id, version, manifest_hash, destination,
/// received_at, outcome (1 delivered, 2 refused), reason, [* [seat, present, measure, reason]]]`.
///
/// # Errors
/// What is malformed, for INVALID_ARGUMENT.
pub(crate) fn open_handover(b: Vec<u8>) -> Result<Opened, String> {
    let (parsed, a) = envelope(&b)?;
    let [trip, version, hash, destination, at, outcome, reason, people] = a.as_slice() else {
        return Err(format!("payload: {} elements; a receipt has 8", a.len()));
    };
    let refused = match num(outcome, "outcome")? {
        1 => false,
        2 => true,
        n => {
            return Err(format!(
                "outcome: {n} is neither 1 (delivered) nor 2 (refused)"
            ))
        }
    };
    let destination = province(destination, "destination")?;
    let version = num(version, "version")?;
    let people = array(people, "people")?
        .iter()
        .map(|p| match array(p, "person")? {
            [seat, Value::Bool(present), measure, reason] => {
                let measure = num(measure, "measure")?;
                if measure > 3 {
                    return Err(format!("measure: {measure} is not 0 to 3"));
                }
                Ok((
                    num(seat, "seat")?,
                    *present,
                    measure,
                    text(reason, "reason")?,
                ))
            }
            _ => Err("person: must be [seat, present, measure, reason]".to_string()),
        })
        .collect::<Result<_, _>>()?;
    let handover = StoredHandover {
        destination,
        version,
        received_at: UnixTime::from_secs(num(at, "received_at")?),
        refused,
        reason: text(reason, "reason")?,
        people,
        signed: b.clone(),
    };
    Ok(Opened::new(
        destination,
        parsed.kid,
        TripId(bytes(trip, "trip_id")?),
        version,
        bytes(hash, "manifest_hash")?,
        Record::Handover(handover),
        verifier(&parsed),
    ))
}
