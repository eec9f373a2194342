//! CreateManifest: a new trip of this origin, nothing signed yet.

use super::Trips;
use crate::manifest::{
    province_of, Escort, EventDetail, Place, TripId, Vehicle, MAX_TRANSIT, MAX_TRIP_SECS,
};
use crate::node::error::ApiError;
use crate::proto;
use crate::province::Province;
use crate::store::{NewEvent, TripRecord};
use crate::UnixTime;

/// A six-digit GB/T 2260 code from the API.
fn code_of(field: &'static str, s: &str) -> Result<u32, ApiError> {
    let s = s.trim();
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            field,
            "must be a six-digit GB/T 2260 code",
        ));
    }
    s.parse()
        .map_err(|_| ApiError::invalid(field, "must be a six-digit GB/T 2260 code"))
}

/// A CreateManifest request's fields once checked.
#[derive(Debug)]
pub(crate) struct Checked {
    /// GB/T 2260 county code of the departure.
    pub(crate) origin: u32,
    /// GB/T 2260 code of the destination.
    pub(crate) destination: u32,
    /// Provinces passed through.
    pub(crate) transit: Vec<Province>,
    /// Plate or train and carriage.
    pub(crate) vehicle: Vehicle,
    /// Destination place.
    pub(crate) place: Place,
    /// The escort's masked name.
    pub(crate) escort: Escort,
}

/// The checked content of a CreateManifest request (pure: the rules of docs/transport.md
/// section 3 that hold before anyone boards, at `now`, for an origin in `province`).
///
/// # Errors
/// INVALID_ARGUMENT naming the first field that breaks a rule.
pub(crate) fn check_request(
    r: &proto::CreateManifestRequest,
    province: Province,
    now: UnixTime,
) -> Result<Checked, ApiError> {
    let vehicle = Vehicle::new(r.vehicle.clone()).map_err(|e| ApiError::invalid("vehicle", e))?;
    let origin = code_of("origin", &r.origin)?;
    let origin_province =
        province_of(origin, "origin").map_err(|e| ApiError::invalid("origin", e))?;
    if origin_province != province {
        return Err(ApiError::invalid(
            "origin",
            format!("{origin} is in {origin_province}, not in this node's province {province}"),
        ));
    }
    if origin % 100 == 0 {
        return Err(ApiError::invalid(
            "origin",
            format!("{origin} is not a county-level code (its last two digits are 00)"),
        ));
    }
    let destination = code_of("destination", &r.destination)?;
    let destination_province =
        province_of(destination, "destination").map_err(|e| ApiError::invalid("destination", e))?;
    if destination_province == province {
        return Err(ApiError::invalid(
            "destination",
            format!("{destination} is in this node's own province: a trip goes to another"),
        ));
    }
    let place = Place::new(r.place.clone()).map_err(|e| ApiError::invalid("place", e))?;
    if r.transit.len() > MAX_TRANSIT {
        return Err(ApiError::invalid(
            "transit",
            format!("{} provinces; at most {MAX_TRANSIT}", r.transit.len()),
        ));
    }
    let mut transit = Vec::with_capacity(r.transit.len());
    for t in &r.transit {
        let c = code_of("transit", t)?;
        let p = Province::from_code(c)
            .map_err(|_| ApiError::invalid("transit", format!("{c} is not a province code")))?;
        transit.push(p);
    }
    let (departure, arrival) = (
        UnixTime::from_secs(r.departure),
        UnixTime::from_secs(r.arrival),
    );
    if r.departure == 0 || departure > UnixTime::MAX {
        return Err(ApiError::invalid(
            "departure",
            "must be a time before the year 10000",
        ));
    }
    let Some(secs) = arrival.checked_since(departure).filter(|s| *s > 0) else {
        return Err(ApiError::invalid("arrival", "must be after departure"));
    };
    if secs > MAX_TRIP_SECS {
        return Err(ApiError::invalid(
            "arrival",
            format!("is {secs} s after departure; at most {MAX_TRIP_SECS} s (72 h)"),
        ));
    }
    if arrival <= now {
        return Err(ApiError::invalid("arrival", "is already past"));
    }
    let escort = Escort::new(r.escort.clone()).map_err(|e| ApiError::invalid("escort", e))?;
    if !escort.as_str().contains('*') {
        // A manifest holds no full name: the escort is shown as identity::mask_name shows one.
        return Err(ApiError::invalid(
            "escort",
            "must be a masked name (e.g. \"王*\"), never a full name",
        ));
    }
    Ok(Checked {
        origin,
        destination,
        transit,
        vehicle,
        place,
        escort,
    })
}

impl Trips<'_> {
    /// Creates a trip with a new random id.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming the field; UNAVAILABLE when the store fails.
    pub(crate) async fn create(
        &self,
        r: proto::CreateManifestRequest,
    ) -> Result<proto::CreateManifestResponse, ApiError> {
        let now = self.clock.now();
        let Checked {
            origin,
            destination,
            transit,
            vehicle,
            place,
            escort,
        } = check_request(&r, self.province, now)?;
        let _held = self.store.lock_trips().await;
        // 8 random bytes: a repeat is unlikely beyond any count of trips, but never overwrite.
        let id = loop {
            let id = TripId(rand::random());
            if self.store.trip(&id)?.is_none() {
                break id;
            }
        };
        let t = TripRecord {
            id,
            vehicle: vehicle.as_str().to_string(),
            origin,
            destination,
            place: place.as_str().to_string(),
            transit,
            departure: UnixTime::from_secs(r.departure),
            arrival: UnixTime::from_secs(r.arrival),
            escort: escort.as_str().to_string(),
            created_at: now,
            cancelled_at: None,
            version: 0,
            sealed_at: None,
            changed_since_seal: false,
            people: Vec::new(),
            removals: Vec::new(),
        };
        let event = self.sign_event(
            &t,
            now,
            0,
            EventDetail::Created {
                vehicle,
                origin,
                destination,
                departure: t.departure,
                arrival: t.arrival,
            },
        )?;
        self.store
            .create_trip(
                &t,
                NewEvent {
                    at: now,
                    signed: &event,
                },
            )
            .await?;
        tracing::info!(trip = %id, origin, destination, "trip created");
        Ok(proto::CreateManifestResponse {
            trip_id: id.to_string(),
        })
    }
}
