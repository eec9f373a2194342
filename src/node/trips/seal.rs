//! SealManifest: the manifest as it stands, signed with the node's current key (version 1 the
//! first time, each later seal the next version, which supersedes the last), stored before it
//! is answered.

use qrcode::EcLevel;

use super::Trips;
use crate::manifest::{self, Escort, Manifest, Person, Place, Vehicle};
use crate::node::error::ApiError;
use crate::proto;
use crate::province::Province;
use crate::store::TripRecord;
use crate::UnixTime;

/// The smallest QR version (1 to 40) holding `s` as one alphanumeric segment at error
/// correction level M (ISO/IEC 18004): the symbol of the windshield card (docs/transport.md
/// sections 3.2 and 3.4), built by the same [`crate::qr`] code; `None` when none holds it.
pub(crate) fn qr_version_m(s: &str) -> Option<u32> {
    crate::qr::matrix_at(s, EcLevel::M)
        .ok()
        .map(|m| u32::from(m.version))
}

/// The manifest of `t` as version `t.version + 1` sealed at `sealed_at` (pure): issuers in
/// order of first appearance by seat, people in seat order (the manifest's seat is the position,
/// so gaps left by removals close up), each person's age from their `iat` to `sealed_at`
/// rounded up to whole minutes (section 3.1). Checked by [`Manifest::check`].
///
/// # Errors
/// FAILED_PRECONDITION when the manifest breaks a rule (nobody on board, sealed more than 72 h
/// after departure, a code too old for the age field).
pub(crate) fn build(t: &TripRecord, sealed_at: UnixTime) -> Result<Manifest, ApiError> {
    let fail = |e: &dyn std::fmt::Display| {
        ApiError::FailedPrecondition(format!("trip {} cannot be sealed: {e}", t.id))
    };
    if t.people.is_empty() {
        return Err(fail(&"nobody is on board"));
    }
    let mut issuers: Vec<Province> = Vec::new();
    let mut people = Vec::with_capacity(t.people.len());
    for p in &t.people {
        let index = match issuers.iter().position(|i| *i == p.issuer) {
            Some(i) => i,
            None => {
                issuers.push(p.issuer);
                issuers.len() - 1
            }
        };
        let minutes = sealed_at
            .checked_since(p.iat)
            .ok_or_else(|| fail(&format!("seat {}: its code was issued after now", p.seat)))?
            .div_ceil(60);
        let age_minutes = u16::try_from(minutes).map_err(|_| {
            fail(&format!(
                "seat {}: its code was issued {minutes} minutes ago, more than 65,535",
                p.seat
            ))
        })?;
        people.push(Person {
            issuer: u8::try_from(index).map_err(|_| fail(&"more than 16 issuers"))?,
            status: p.status,
            crew: p.crew,
            age_minutes,
            cti: p.cti[..6].try_into().expect("a cti has 16 bytes"),
            subject: p.subject_hash.0[..4]
                .try_into()
                .expect("a subject hash has 8 bytes"),
        });
    }
    let m = Manifest {
        trip_id: t.id,
        version: t.version + 1,
        origin: t.origin,
        destination: t.destination,
        transit: t.transit.clone(),
        vehicle: Vehicle::new(t.vehicle.clone()).map_err(|e| fail(&e))?,
        place: Place::new(t.place.clone()).map_err(|e| fail(&e))?,
        departure: t.departure,
        arrival: t.arrival,
        sealed_at,
        escort: Escort::new(t.escort.clone()).map_err(|e| fail(&e))?,
        issuers,
        people,
    };
    m.check().map_err(|e| fail(&e))?;
    Ok(m)
}

impl Trips<'_> {
    /// Seals the trip: signs its manifest with the current key, stores the version (and the
    /// trip among those awaiting a handover), then answers it.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (trip id), NOT_FOUND, FAILED_PRECONDITION (cancelled, handed over,
    /// nobody on board, a rule of the manifest), UNAVAILABLE (store).
    pub(crate) async fn seal(
        &self,
        r: proto::SealManifestRequest,
    ) -> Result<proto::SealManifestResponse, ApiError> {
        let id = super::parse_trip_id(&r.trip_id)?;
        let _held = self.store.lock_trips().await;
        let mut t = self.load_changeable(&id)?;
        let now = self.clock.now();
        let m = build(&t, now)?;
        let key = self.key.load_full()?;
        let signed = manifest::sign(&m, &key);
        t.version = m.version;
        t.sealed_at = Some(now);
        t.changed_since_seal = false;
        self.store.seal_trip(&t, &signed).await?;
        let qr_version = qr_version_m(&signed).unwrap_or(0);
        tracing::info!(
            trip = %id,
            version = t.version,
            people = t.people.len(),
            characters = signed.len(),
            qr_version,
            kid = %key.kid(),
            "manifest sealed"
        );
        Ok(proto::SealManifestResponse {
            characters: u32::try_from(signed.len()).unwrap_or(u32::MAX),
            manifest: signed,
            version: t.version,
            sealed_at: now.secs(),
            qr_version,
        })
    }
}
