//! GetManifest and ListManifests: trips as their origin sees them, with the state computed at
//! read time (docs/transport.md section 6.1).

use super::{Trips, OVERDUE_GRACE_SECS};
use crate::manifest::TripId;
use crate::node::convert;
use crate::node::error::ApiError;
use crate::proto;
use crate::proto::TripState;
use crate::store::{Store, StoredHandover, StoredReport, TripEntry, TripRecord};
use crate::UnixTime;

/// Default and largest page of ListManifests.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Where a trip stands at `now` (pure): cancelled; else refused or delivered by its handover;
/// else open until sealed; else overdue once `now` is past the planned arrival plus
/// [`OVERDUE_GRACE_SECS`]; else in transit once a check was reported; else sealed.
pub(crate) fn state_of(
    t: &TripRecord,
    has_reports: bool,
    handover_refused: Option<bool>,
    now: UnixTime,
) -> TripState {
    if t.cancelled() {
        return TripState::Cancelled;
    }
    match handover_refused {
        Some(true) => return TripState::Refused,
        Some(false) => return TripState::Delivered,
        None => {}
    }
    if t.version == 0 {
        TripState::Open
    } else if now > t.arrival + OVERDUE_GRACE_SECS {
        TripState::Overdue
    } else if has_reports {
        TripState::InTransit
    } else {
        TripState::Sealed
    }
}

/// The state of `t` read from the store.
///
/// # Errors
/// [`crate::store::StoreError`].
pub(crate) fn state_in(
    store: &Store,
    t: &TripRecord,
    now: UnixTime,
) -> Result<TripState, crate::store::StoreError> {
    let handover = store.trip_handover(&t.id)?.map(|h| h.refused);
    let reports = handover.is_none() && t.version > 0 && store.trip_has_reports(&t.id)?;
    Ok(state_of(t, reports, handover, now))
}

/// A person as the API lists them.
pub(crate) fn person(e: &TripEntry) -> proto::TripPerson {
    proto::TripPerson {
        seat: u32::from(e.seat),
        crew: e.crew,
        issuer_province: e.issuer.to_string(),
        status: convert::status_to_proto(Some(e.status)),
        cti: hex::encode(e.cti),
        iat: e.iat.secs(),
        boarded_at: e.boarded_at.secs(),
        subject: Some(proto::MaskedSubject {
            masked_name: e.masked_name.clone(),
            document_type: i32::from(e.document_type.to_u8()),
            masked_document_number: e.masked_document_number.clone(),
            subject_hash: e.subject_hash.to_string(),
        }),
    }
}

/// A check report as the API shows it.
pub(crate) fn check(r: &StoredReport) -> proto::CheckReportView {
    proto::CheckReportView {
        checker_province: r.checker.to_string(),
        checkpoint: r.checkpoint.clone(),
        checked_at: r.checked_at.secs(),
        version: r.version,
        pass: r.pass,
        reasons: r
            .reasons
            .iter()
            .map(|(reason, seat, issuer, detail)| proto::ManifestStopReason {
                reason: i32::try_from(*reason).unwrap_or(0),
                seat: u32::try_from(*seat).unwrap_or(0),
                issuer_province: if *issuer == 0 {
                    String::new()
                } else {
                    issuer.to_string()
                },
                detail: detail.clone(),
            })
            .collect(),
    }
}

/// A handover as the API shows it; `people` only when asked.
pub(crate) fn handover(h: &StoredHandover, people: bool) -> proto::HandoverView {
    proto::HandoverView {
        destination_province: h.destination.to_string(),
        version: h.version,
        received_at: h.received_at.secs(),
        refused: h.refused,
        reason: h.reason.clone(),
        people: if people {
            h.people
                .iter()
                .map(|(seat, present, measure, reason)| proto::HandoverPerson {
                    seat: u32::try_from(*seat).unwrap_or(0),
                    present: *present,
                    measure: i32::try_from(*measure).unwrap_or(0),
                    reason: reason.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        signed: h.signed.clone(),
    }
}

/// A trip as the API shows it: `full` with its people, checks and the handover's people
/// (GetManifest), else without them (ListManifests).
fn manifest_view(
    store: &Store,
    t: &TripRecord,
    now: UnixTime,
    full: bool,
) -> Result<proto::ManifestView, ApiError> {
    let handover_record = store.trip_handover(&t.id)?;
    let reports = if full {
        store.trip_reports(&t.id)?
    } else {
        Vec::new()
    };
    let has_reports = if full {
        !reports.is_empty()
    } else {
        t.version > 0 && store.trip_has_reports(&t.id)?
    };
    let state = state_of(
        t,
        has_reports,
        handover_record.as_ref().map(|h| h.refused),
        now,
    );
    let manifest = match t.version {
        0 => String::new(),
        v => store.trip_version(&t.id, v)?.unwrap_or_default(),
    };
    Ok(proto::ManifestView {
        trip_id: t.id.to_string(),
        state: state as i32,
        vehicle: t.vehicle.clone(),
        origin: t.origin.to_string(),
        destination: t.destination.to_string(),
        place: t.place.clone(),
        transit: t.transit.iter().map(ToString::to_string).collect(),
        departure: t.departure.secs(),
        arrival: t.arrival.secs(),
        escort: t.escort.clone(),
        created_at: t.created_at.secs(),
        version: t.version,
        manifest,
        sealed_at: t.sealed_at.map_or(0, UnixTime::secs),
        changed_since_seal: t.changed_since_seal,
        people: if full {
            t.people.iter().map(person).collect()
        } else {
            Vec::new()
        },
        checks: reports.iter().map(check).collect(),
        handover: handover_record.as_ref().map(|h| handover(h, full)),
    })
}

/// A page token: the creation time and trip id of the last trip shown, 32 hex digits.
fn page_token(t: &TripRecord) -> String {
    format!("{:016x}{}", t.created_at.secs(), t.id)
}

fn parse_page_token(s: &str) -> Result<Option<(UnixTime, TripId)>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid("page_token", "not a token of ListManifests");
    let b = hex::decode(s).map_err(|_| bad())?;
    let (time, id): (&[u8], &[u8]) = (b.get(..8).ok_or_else(bad)?, b.get(8..).ok_or_else(bad)?);
    Ok(Some((
        UnixTime::from_secs(u64::from_be_bytes(time.try_into().map_err(|_| bad())?)),
        TripId(id.try_into().map_err(|_| bad())?),
    )))
}

impl Trips<'_> {
    /// One trip with its people, checks and handover.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (trip id), NOT_FOUND, UNAVAILABLE.
    pub(crate) fn get(
        &self,
        r: &proto::GetManifestRequest,
    ) -> Result<proto::ManifestView, ApiError> {
        let id = super::parse_trip_id(&r.trip_id)?;
        let t = self.load(&id)?;
        manifest_view(self.store, &t, self.clock.now(), true)
    }

    /// Trips of this origin, newest first, in pages, optionally of one state.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (state, page token), UNAVAILABLE.
    pub(crate) async fn list(
        &self,
        r: proto::ListManifestsRequest,
    ) -> Result<proto::ListManifestsResponse, ApiError> {
        let wanted = TripState::try_from(r.state)
            .map_err(|_| ApiError::invalid("state", format!("{} is not a trip state", r.state)))?;
        let size = match r.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let from = parse_page_token(&r.page_token)?;
        let now = self.clock.now();
        let store = self.store.clone();
        let (trips, more) = self
            .store
            .trips_newest_first(from, size, move |t| {
                Ok(wanted == TripState::Unspecified || state_in(&store, t, now)? == wanted)
            })
            .await?;
        let next_page_token = match trips.last() {
            Some(t) if more => page_token(t),
            _ => String::new(),
        };
        Ok(proto::ListManifestsResponse {
            manifests: trips
                .iter()
                .map(|t| manifest_view(self.store, t, now, false))
                .collect::<Result<_, _>>()?,
            next_page_token,
        })
    }
}
