//! BoardPerson: a passenger or crew member boards by their health code, decided exactly as
//! VerifyHealthCode decides it (the same verification on the node's trust snapshot and clock,
//! audited the same way), then held to the trip's rules (docs/transport.md section 3.5).

use super::{Trips, BOARDING_MARGIN_SECS};
use crate::code::HealthCode;
use crate::identity::SubjectHash;
use crate::manifest::{EventDetail, Person, TripId, MAX_ISSUERS, MAX_PEOPLE};
use crate::node::error::ApiError;
use crate::proto;
use crate::proto::BoardingRefusal;
use crate::province::Province;
use crate::status::HealthStatus;
use crate::store::{NewEvent, TripEntry, TripRecord};
use crate::verify::Verdict;
use crate::UnixTime;

/// The checkpoint id boarding verifications are audited under.
const AUDIT_CHECKPOINT: &str = "trip-boarding";

/// Why a person was not boarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The refusal.
    pub(crate) kind: BoardingRefusal,
    /// For a human; no personal data.
    pub(crate) detail: String,
    /// The verification's reason, for NOT_RECOGNIZED.
    pub(crate) verify_reason: i32,
    /// The other trip, for ON_ANOTHER_MANIFEST.
    pub(crate) other: Option<TripId>,
}

impl Refusal {
    fn new(kind: BoardingRefusal, detail: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            detail: detail.into(),
            verify_reason: 0,
            other: None,
        }
    }
}

/// The code's part of the decision (pure): recognized here, green as it counts here, and a
/// status that holds until `arrival` plus [`BOARDING_MARGIN_SECS`]. The status as verified.
///
/// The code's own `exp` is not held to the arrival: a code shown on a phone is a rendering
/// redrawn every few minutes, and a checkpoint re-checks revocations, not `exp`
/// (docs/transport.md section 3.5).
///
/// # Errors
/// The [`Refusal`] of the first rule broken.
pub(crate) fn judge_code(v: &Verdict, arrival: UnixTime) -> Result<HealthStatus, Refusal> {
    if !v.recognized() {
        return Err(Refusal {
            verify_reason: v.reason as i32,
            ..Refusal::new(
                BoardingRefusal::NotRecognized,
                format!("{}: {}", v.reason.as_str(), v.detail),
            )
        });
    }
    let status = v.local_status.unwrap_or(HealthStatus::Red);
    if status != HealthStatus::Green {
        return Err(Refusal::new(
            BoardingRefusal::StatusNotGreen,
            format!("the status counts as {} here", status.as_str()),
        ));
    }
    let needed = arrival + BOARDING_MARGIN_SECS;
    let until = v
        .claims
        .as_ref()
        .map_or(UnixTime::from_secs(0), |c| c.status_valid_until);
    if until < needed {
        return Err(Refusal::new(
            BoardingRefusal::StatusEndsBeforeArrival,
            format!(
                "the status holds until {} ({}), before the planned arrival plus {} h ({})",
                crate::rfc3339(until.secs()),
                until.secs(),
                BOARDING_MARGIN_SECS / 3600,
                crate::rfc3339(needed.secs()),
            ),
        ));
    }
    Ok(status)
}

/// The trip's part of the decision (pure): the holder not already on it, room for one more
/// person and their issuer, and the seat (`requested` 1 to 99, or 0: the lowest free).
///
/// # Errors
/// ALREADY_ON_THIS_MANIFEST, MANIFEST_FULL or SEAT_TAKEN.
pub(crate) fn choose_seat(
    t: &TripRecord,
    issuer: Province,
    subject: &SubjectHash,
    requested: u32,
) -> Result<u8, Refusal> {
    if let Some(p) = t.holder(issuer, subject) {
        return Err(Refusal::new(
            BoardingRefusal::AlreadyOnThisManifest,
            format!("already on this trip in seat {}", p.seat),
        ));
    }
    if t.people.len() >= MAX_PEOPLE {
        return Err(Refusal::new(
            BoardingRefusal::ManifestFull,
            format!("the trip holds {MAX_PEOPLE} people, the most a manifest lists"),
        ));
    }
    let mut issuers: Vec<Province> = t.people.iter().map(|p| p.issuer).collect();
    issuers.sort_unstable();
    issuers.dedup();
    if !issuers.contains(&issuer) && issuers.len() >= MAX_ISSUERS {
        return Err(Refusal::new(
            BoardingRefusal::ManifestFull,
            format!("the trip's codes come from {MAX_ISSUERS} provinces already, the most a manifest lists"),
        ));
    }
    let taken = |s: u8| t.people.iter().any(|p| p.seat == s);
    if requested == 0 {
        return (1..=MAX_PEOPLE as u8)
            .find(|s| !taken(*s))
            .ok_or_else(|| Refusal::new(BoardingRefusal::ManifestFull, "no free seat"));
    }
    let seat = requested as u8; // checked 1 to 99 by the caller
    if taken(seat) {
        return Err(Refusal::new(
            BoardingRefusal::SeatTaken,
            format!("seat {seat} is taken"),
        ));
    }
    Ok(seat)
}

fn refused(r: Refusal) -> proto::BoardPersonResponse {
    proto::BoardPersonResponse {
        boarded: false,
        refusal: r.kind as i32,
        verify_reason: r.verify_reason,
        detail: r.detail,
        seat: 0,
        other_trip_id: r.other.map(|t| t.to_string()).unwrap_or_default(),
        person: None,
    }
}

impl Trips<'_> {
    /// Boards the holder of `r.code` on the trip, or says why not (an answer, not an error).
    ///
    /// # Errors
    /// INVALID_ARGUMENT (trip id, seat), NOT_FOUND (no such trip), FAILED_PRECONDITION (the
    /// trip was cancelled or handed over), UNAVAILABLE (store).
    pub(crate) async fn board(
        &self,
        who: &str,
        r: proto::BoardPersonRequest,
    ) -> Result<proto::BoardPersonResponse, ApiError> {
        let id = super::parse_trip_id(&r.trip_id)?;
        if r.seat > MAX_PEOPLE as u32 {
            return Err(ApiError::invalid(
                "seat",
                format!(
                    "{} is not a seat: 1 to {MAX_PEOPLE}, or 0 for the lowest free",
                    r.seat
                ),
            ));
        }
        let arrival = self.load_changeable(&id)?.arrival;
        let (verdicts, now) = self
            .verification
            .verify_and_audit(who, vec![r.code.clone()], AUDIT_CHECKPOINT, "grpc")
            .await?;
        let verdict = verdicts
            .first()
            .ok_or(ApiError::Internal("no verdict for the code"))?;
        let status = match judge_code(verdict, arrival) {
            Ok(s) => s,
            Err(refusal) => return Ok(refused(refusal)),
        };
        // Recognized, so it decodes; the entry is the core's from the code itself.
        let code = HealthCode::decode(&r.code)
            .map_err(|_| ApiError::Internal("a recognized code did not decode"))?;
        let issuer = verdict
            .issuer
            .ok_or(ApiError::Internal("a recognized code without an issuer"))?;
        let subject = code.claims.subject.subject_hash;

        let held = self.store.lock_trips().await;
        let written = 'decide: {
            let mut t = self.load_changeable(&id)?;
            if let Some(other) = self.store.trip_holding(issuer, &subject)? {
                if other != id && self.holds(&other, issuer, &subject)? {
                    break 'decide Err(Refusal {
                        other: Some(other),
                        ..Refusal::new(
                            BoardingRefusal::OnAnotherManifest,
                            format!("on trip {other}, not delivered, refused or cancelled"),
                        )
                    });
                }
            }
            let seat = match choose_seat(&t, issuer, &subject, r.seat) {
                Ok(s) => s,
                Err(refusal) => break 'decide Err(refusal),
            };
            // The manifest's own rules for the entry (issuer index, a code issued before the
            // seal).
            Person::from_code(&code, 0, status, r.crew, now)
                .map_err(|e| ApiError::FailedPrecondition(format!("code: {e}")))?;
            let c = &code.claims;
            let entry = TripEntry {
                seat,
                crew: r.crew,
                issuer,
                status,
                cti: code.cti(),
                iat: c.iat,
                status_valid_until: c.status_valid_until,
                subject_hash: subject,
                boarded_at: now,
                masked_name: c.subject.masked_name.clone(),
                document_type: c.subject.document_type,
                masked_document_number: c.subject.masked_document_number.clone(),
            };
            let person = super::view::person(&entry);
            let at = t.people.partition_point(|p| p.seat < seat);
            t.people.insert(at, entry);
            t.changed_since_seal = t.version > 0;
            let event = self.sign_event(
                &t,
                now,
                seat,
                EventDetail::Boarded {
                    issuer,
                    status,
                    crew: r.crew,
                },
            )?;
            self.store
                .update_trip_unflushed(
                    &t,
                    &[(issuer, subject)],
                    &[],
                    NewEvent {
                        at: now,
                        signed: &event,
                    },
                )
                .await?;
            Ok((seat, person))
        };
        drop(held);
        // The write is acknowledged only once durable, and boardings of other trips share this
        // flush (group commit). A refusal flushes too: what the store said under the lock may
        // be another boarding's write that is not yet durable.
        self.store.flush().await?;
        let (seat, person) = match written {
            Ok(w) => w,
            Err(refusal) => return Ok(refused(refusal)),
        };
        tracing::info!(trip = %id, seat, issuer = %issuer, crew = r.crew, "person boarded");
        Ok(proto::BoardPersonResponse {
            boarded: true,
            refusal: BoardingRefusal::Unspecified as i32,
            verify_reason: 0,
            detail: String::new(),
            seat: u32::from(seat),
            other_trip_id: String::new(),
            person: Some(person),
        })
    }

    /// Whether trip `id` still holds the person: not cancelled, not handed over, and listing
    /// them (the holders' index may name a trip they have left).
    fn holds(
        &self,
        id: &TripId,
        issuer: Province,
        subject: &SubjectHash,
    ) -> Result<bool, ApiError> {
        let Some(t) = self.store.trip(id)? else {
            return Ok(false);
        };
        Ok(!t.cancelled()
            && t.holder(issuer, subject).is_some()
            && self.store.trip_handover(id)?.is_none())
    }
}
