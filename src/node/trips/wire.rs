//! Check reports and handover receipts as the origin opens them: the core's strict decoders
//! (`manifest::SignedCheckReport`, `manifest::SignedReceipt`, docs/transport.md section 6), and
//! what the store keeps of them.

use super::record::{Opened, Record, Signed};
use crate::manifest::{
    EventKind, Outcome, ReportVerdict, SignedCheckReport, SignedReceipt, SignedTripEvent,
};
use crate::store::{StoredHandover, StoredReport};

/// Opens a check report.
///
/// # Errors
/// The decoder's fault with its identifier, for INVALID_ARGUMENT.
pub(crate) fn open_report(b: Vec<u8>) -> Result<Opened, String> {
    let s = SignedCheckReport::decode(&b).map_err(|e| format!("{}: {e}", e.code()))?;
    let r = &s.report;
    let stored = StoredReport {
        checker: r.checker,
        checkpoint: r.checkpoint.as_str().to_string(),
        checked_at: r.checked_at,
        version: r.version,
        pass: r.verdict == ReportVerdict::Pass,
        reasons: r
            .reasons
            .iter()
            .map(|x| {
                (
                    u64::from(x.reason.number()),
                    x.seat.map_or(0, |s| s as u64),
                    x.issuer.map_or(0, |p| p.code()),
                    String::new(),
                )
            })
            .collect(),
        signed: b,
    };
    let (signer, kid, trip, version) = (r.checker, s.kid(), r.trip_id, r.version);
    Ok(Opened::new(
        signer,
        kid,
        trip,
        version,
        Record::Report(stored),
        Signed::Report(s),
    ))
}

/// Opens a destination's check-in event (docs/tracing.md section 2).
///
/// # Errors
/// The decoder's fault with its identifier, or another kind of event, for INVALID_ARGUMENT.
pub(crate) fn open_arrival(b: Vec<u8>) -> Result<Opened, String> {
    let s = SignedTripEvent::decode(&b).map_err(|e| format!("{}: {e}", e.code()))?;
    let e = &s.event;
    if e.kind() != EventKind::Arrived {
        return Err(format!(
            "record.field: a {} event; only an arrived event is taken",
            e.kind().as_str()
        ));
    }
    let (signer, kid, trip, version, at) = (e.recorder, s.kid(), e.trip_id, e.version, e.at);
    Ok(Opened::new(
        signer,
        kid,
        trip,
        version,
        Record::Event { at, signed: b },
        Signed::Event(s),
    ))
}

/// Opens a handover receipt or refusal.
///
/// # Errors
/// The decoder's fault with its identifier, for INVALID_ARGUMENT.
pub(crate) fn open_handover(b: Vec<u8>) -> Result<Opened, String> {
    let s = SignedReceipt::decode(&b).map_err(|e| format!("{}: {e}", e.code()))?;
    let r = &s.receipt;
    let stored = StoredHandover {
        destination: r.destination,
        version: r.version,
        received_at: r.received_at,
        refused: r.outcome == Outcome::Refused,
        reason: r.reason.as_str().to_string(),
        people: r
            .people
            .iter()
            .map(|p| {
                (
                    p.seat as u64,
                    p.present,
                    p.measure as u64,
                    p.reason.as_str().to_string(),
                )
            })
            .collect(),
        signed: b,
    };
    let (signer, kid, trip, version) = (r.destination, s.kid(), r.trip_id, r.version);
    Ok(Opened::new(
        signer,
        kid,
        trip,
        version,
        Record::Handover(stored),
        Signed::Receipt(s),
    ))
}
