//! The answers of the arrival workflows: a manifest's people, a seat's outcome, a receipt or
//! refusal, an arrival.

use crate::manifest::{Manifest, SignedManifest};
use crate::node::convert;
use crate::proto;
use crate::province::Province;
use crate::store::{ArrivalRecord, SeatOutcome};

/// The people of a manifest by seat, as a receiver confirms them: what the manifest carries (the
/// cti's first 6 bytes in hex, the `iat` as reconstructed from the seal, never before the real
/// one); no name (the manifest has none) and no boarding time.
pub(super) fn trip_people(m: &Manifest) -> Vec<proto::TripPerson> {
    m.people
        .iter()
        .enumerate()
        .map(|(i, p)| proto::TripPerson {
            seat: i as u32 + 1,
            crew: p.crew,
            issuer_province: m
                .issuers
                .get(usize::from(p.issuer))
                .map(ToString::to_string)
                .unwrap_or_default(),
            status: convert::status_to_proto(Some(p.status)),
            cti: hex::encode(p.cti),
            iat: p.iat_bound(m.sealed_at).secs(),
            boarded_at: 0,
            subject: None,
        })
        .collect()
}

/// One seat's recorded outcome.
pub(super) fn person(seat: usize, s: &SeatOutcome) -> proto::HandoverPerson {
    proto::HandoverPerson {
        seat: seat as u32,
        present: s.present,
        measure: i32::try_from(s.measure).unwrap_or(0),
        reason: s.reason.clone(),
    }
}

/// The receipt or refusal of `r`, if signed: a refusal lists no people.
pub(super) fn handover(r: &ArrivalRecord, local: Province) -> Option<proto::HandoverView> {
    let h = r.handover.as_ref()?;
    Some(proto::HandoverView {
        destination_province: local.to_string(),
        version: r.version,
        received_at: h.at.secs(),
        refused: h.refused,
        reason: h.reason.clone(),
        people: if h.refused {
            Vec::new()
        } else {
            r.seats
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| person(i + 1, s)))
                .collect()
        },
        signed: h.signed.clone(),
    })
}

/// An arrival as ListArrivals shows it; `delivered`: whether the origin acknowledged its
/// receipt or refusal.
pub(super) fn arrival(r: &ArrivalRecord, local: Province, delivered: bool) -> proto::ArrivalView {
    let vehicle = SignedManifest::decode(&r.manifest)
        .map(|s| s.manifest.vehicle.as_str().to_string())
        .unwrap_or_default();
    proto::ArrivalView {
        trip_id: r.trip_id.to_string(),
        origin_province: r.origin.to_string(),
        version: r.version,
        vehicle,
        checked_in_at: r.checked_in_at.secs(),
        confirmed: r.confirmed() as u32,
        listed: r.seats.len() as u32,
        handover: handover(r, local),
        delivered,
    }
}
