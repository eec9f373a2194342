//! TraceSubject at the case's issuing province (docs/tracing.md section 3): the keyed subject
//! hash of the case's document, its 4-byte prefix, the trips this node holds that list it, and
//! the trips every peer holds whose agreement lets this province trace there (FindTrips, asked
//! concurrently, each bounded by the peer timeout). Every manifest a peer returns is taken only
//! when its signature verifies under a key of its origin trusted here and it really lists the
//! case; trips are merged by trip (the latest version, every holder), and each one's fellow
//! travellers computed under the contact rule. Audited: one SUBJECT record, one QUERY_SENT per
//! peer asked.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{held_listing, CALLER_TRACES_PER_MINUTE};
use crate::audit::{AuditRecord, TraceAction, TraceAudit};
use crate::identity;
use crate::manifest::{SignedManifest, TripId};
use crate::node::auth::Principal;
use crate::node::convert;
use crate::node::error::ApiError;
use crate::node::peer;
use crate::node::NodeState;
use crate::proto;
use crate::province::Province;
use crate::trace::{ContactRule, SUBJECT_PREFIX_LEN};
use crate::UnixTime;

/// How far back a trace looks when `since` is 0: 28 days (two incubation periods, the
/// retention of trip data).
pub(crate) const DEFAULT_LOOKBACK_SECS: u64 = 28 * 86_400;

/// A trip found, while the answers are merged.
struct Found {
    signed: SignedManifest,
    held_by: BTreeSet<Province>,
}

/// What one peer answered.
enum PeerAnswer {
    /// Its manifests (not yet verified).
    Answered(Vec<String>),
    /// It could not be reached, timed out or refused: why.
    NotAnswered(String),
}

/// Runs a trace for the caller `from`.
///
/// # Errors
/// INVALID_ARGUMENT naming the field (`document_type`, `document_number`, `until`,
/// `case_class`), RESOURCE_EXHAUSTED (over [`CALLER_TRACES_PER_MINUTE`] for the caller),
/// UNAVAILABLE (storage). A peer that does not answer is no error: it is listed in
/// `not_answered`.
pub(crate) async fn trace_subject(
    state: &Arc<NodeState>,
    from: Option<&Principal>,
    r: proto::TraceSubjectRequest,
) -> Result<proto::TraceSubjectResponse, ApiError> {
    let now = state.now();
    let caller = match from {
        Some(Principal::Caller(c)) => c.name.clone(),
        _ => "unnamed".to_string(),
    };
    let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
        ApiError::invalid("document_type", "must be set to a known document type")
    })?;
    let number = identity::normalize_document_number(doc_type, &r.document_number)
        .map_err(|e| ApiError::invalid("document_number", e))?;
    let case_class = match proto::CaseClass::try_from(r.case_class) {
        Ok(proto::CaseClass::Unspecified) if r.send_notices => {
            return Err(ApiError::invalid(
                "case_class",
                "must be set when notices are to be sent (confirmed, asymptomatic, suspected)",
            ))
        }
        Ok(c) => c,
        Err(_) => return Err(ApiError::invalid("case_class", "unknown case class")),
    };
    let until = if r.until == 0 {
        now + 1
    } else {
        UnixTime::from_secs(r.until)
    };
    let since = if r.since == 0 {
        now.saturating_sub(DEFAULT_LOOKBACK_SECS)
    } else {
        UnixTime::from_secs(r.since)
    };
    if until <= since {
        return Err(ApiError::invalid("until", "must be after since"));
    }
    let rule = r
        .rule
        .as_ref()
        .map(|c| ContactRule::new(c.rows, c.seats_per_row, c.whole_vehicle))
        .unwrap_or_default();
    let hash = state.subject_key.get()?.subject_hash(doc_type, &number);
    drop(number);
    let mut prefix = [0u8; SUBJECT_PREFIX_LEN];
    prefix.copy_from_slice(&hash.0[..SUBJECT_PREFIX_LEN]);
    if !state
        .trace_limits
        .callers
        .allow(&caller, now, CALLER_TRACES_PER_MINUTE)
    {
        let e = ApiError::TooManyAttempts(format!(
            "TraceSubject: at most {CALLER_TRACES_PER_MINUTE} traces a minute per caller"
        ));
        state.audit.queue(AuditRecord::of_trace(
            now,
            None,
            TraceAudit {
                action: TraceAction::Subject,
                asked_by: caller,
                trip_id: None,
                subject_prefix: Some(prefix),
                count: 0,
                refusal: e.to_string(),
            },
        ));
        return Err(e);
    }
    let local = state.province;

    // Who is asked: every province with an agreement here, when one in force lets this
    // province trace there; the others are not asked.
    let trust = state.trust.load_full();
    let (mut ask, mut not_asked) = (Vec::new(), Vec::new());
    for p in crate::province::PROVINCES {
        let Ok(p) = Province::from_code(p.code) else {
            continue;
        };
        let agreements = trust.agreements_with(p);
        if p == local || agreements.is_empty() {
            continue;
        }
        if agreements
            .iter()
            .filter(|a| a.in_force(local, p, now))
            .any(|a| a.direction(local, p).is_some_and(|d| d.tracing))
        {
            ask.push(p);
        } else {
            not_asked.push(p);
        }
    }

    // Here and at the peers, at once.
    let own = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            held_listing(&state.store, local, &prefix, since, until)
        })
    };
    let query = proto::FindTripsRequest {
        subject_prefix: prefix.to_vec(),
        since: since.secs(),
        until: until.secs(),
    };
    let answers = futures_util::future::join_all(
        ask.iter()
            .map(|p| ask_peer(state, *p, query.clone()))
            .collect::<Vec<_>>(),
    )
    .await;
    let own = own
        .await
        .map_err(|_| ApiError::Internal("a database thread failed"))??;

    let mut found: HashMap<(u32, TripId), Found> = HashMap::new();
    let mut take = |signed: SignedManifest, holder: Province| {
        let key = (signed.manifest.origin, signed.manifest.trip_id);
        match found.get_mut(&key) {
            Some(f) => {
                f.held_by.insert(holder);
                if f.signed.manifest.version < signed.manifest.version {
                    f.signed = signed;
                }
            }
            None => {
                found.insert(
                    key,
                    Found {
                        signed,
                        held_by: BTreeSet::from([holder]),
                    },
                );
            }
        }
    };
    for h in own {
        take(h.signed, local);
    }
    let (mut answered, mut not_answered) = (Vec::new(), Vec::new());
    for (p, answer) in ask.iter().zip(answers) {
        let (count, refusal) = match answer {
            PeerAnswer::Answered(manifests) => {
                answered.push(p.to_string());
                let mut taken = 0u32;
                for text in manifests {
                    match authentic(&text, &trust, now, local, &prefix, since, until) {
                        Ok(signed) => {
                            taken += 1;
                            take(signed, *p);
                        }
                        Err(why) => {
                            tracing::warn!(peer = %p, why, "a manifest returned by a peer was left out of the trace");
                        }
                    }
                }
                (taken, String::new())
            }
            PeerAnswer::NotAnswered(why) => {
                tracing::info!(peer = %p, why, "a peer did not answer a trace query");
                not_answered.push(p.to_string());
                (0, why)
            }
        };
        state.audit.queue(AuditRecord::of_trace(
            now,
            Some(*p),
            TraceAudit {
                action: TraceAction::QuerySent,
                asked_by: caller.clone(),
                trip_id: None,
                subject_prefix: Some(prefix),
                count,
                refusal,
            },
        ));
    }

    let mut trips: Vec<proto::TracedTrip> = found
        .into_values()
        .filter_map(|f| traced_trip(f, local, &prefix, &rule))
        .collect();
    trips.sort_by(|a, b| (a.departure, &a.trip_id).cmp(&(b.departure, &b.trip_id)));
    let mut response = proto::TraceSubjectResponse {
        subject_prefix: hex::encode(prefix),
        trips,
        answered,
        not_answered,
        not_asked: not_asked.iter().map(Province::to_string).collect(),
        notices_queued: 0,
        rule: rule.describe(),
    };
    if r.send_notices {
        response.notices_queued = queue_notices(state, &response, case_class).await?;
    }
    state.audit.queue(AuditRecord::of_trace(
        now,
        None,
        TraceAudit {
            action: TraceAction::Subject,
            asked_by: caller,
            trip_id: None,
            subject_prefix: Some(prefix),
            count: u32::try_from(response.trips.len()).unwrap_or(u32::MAX),
            refusal: String::new(),
        },
    ));
    tracing::info!(
        subject = %response.subject_prefix,
        trips = response.trips.len(),
        answered = response.answered.len(),
        not_answered = response.not_answered.len(),
        "subject traced"
    );
    Ok(response)
}

/// Queues an exposure notice to each contact's issuing province for the traced trips
/// (docs/tracing.md section 5): this province's own residents are stored here at once; a
/// peer's only when an agreement in force lets this province trace there (its direction
/// `this province -> peer` has the tracing term), else the peer would refuse it. The number
/// queued.
///
/// # Errors
/// INVALID_ARGUMENT naming `case_class` when it is not set; [`ApiError::Store`] when the
/// outbox cannot be written.
pub(crate) async fn queue_notices(
    state: &NodeState,
    response: &proto::TraceSubjectResponse,
    case_class: proto::CaseClass,
) -> Result<u32, ApiError> {
    use crate::node::exposure::NoticeDraft;
    use crate::trace::CaseClass;
    let case_class = match case_class {
        proto::CaseClass::Confirmed => CaseClass::Confirmed,
        proto::CaseClass::Asymptomatic => CaseClass::Asymptomatic,
        proto::CaseClass::Suspected => CaseClass::Suspected,
        proto::CaseClass::Unspecified => {
            return Err(ApiError::invalid(
                "case_class",
                "a case class is needed to send exposure notices",
            ))
        }
    };
    let now = state.clock.now();
    let local = state.province;
    let trust = state.trust.load();
    let may_notify = |to: Province| {
        to == local
            || trust
                .agreements_with(to)
                .iter()
                .filter(|a| a.in_force(local, to, now))
                .any(|a| a.direction(local, to).is_some_and(|d| d.tracing))
    };
    let bad = |what: &str| {
        ApiError::Internal(match what {
            "trip" => "a traced trip's id is not 16 hex digits",
            "origin" => "a traced trip's origin is not a province",
            _ => "a fellow traveller's entry does not read back",
        })
    };
    let mut drafts = Vec::new();
    for t in &response.trips {
        let trip = crate::manifest::TripId(
            hex::decode(&t.trip_id)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("trip"))?,
        );
        let trip_origin: Province = t.origin_province.parse().map_err(|_| bad("origin"))?;
        for f in t.fellows.iter().filter(|f| f.contact) {
            let to: Province = f.issuer.parse().map_err(|_| bad("fellow"))?;
            if !may_notify(to) {
                continue;
            }
            drafts.push(NoticeDraft {
                to,
                trip,
                trip_origin,
                departure: UnixTime::from_secs(t.departure),
                seat: u16::try_from(f.seat).map_err(|_| bad("fellow"))?,
                distance: u16::try_from(f.distance).map_err(|_| bad("fellow"))?,
                crew: f.crew,
                case_class,
                cti_prefix: hex::decode(&f.cti_prefix)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("fellow"))?,
                subject_prefix: hex::decode(&f.subject_prefix)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("fellow"))?,
            });
        }
    }
    crate::node::exposure::queue_notices(state, &drafts).await
}

/// Asks `p` for the trips listing the case (FindTrips over mutual TLS, certified by a key
/// trusted for `p`), within twice the peer timeout in all.
async fn ask_peer(state: &NodeState, p: Province, query: proto::FindTripsRequest) -> PeerAnswer {
    let call = async {
        let url = state
            .store
            .peer_endpoint(p)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no endpoint recorded for {p}"))?;
        let mut client = state
            .peer_link()
            .connect("peer endpoint", &url, peer::Expect::Province(p))
            .await
            .map_err(|e| e.to_string())?;
        client
            .find_trips(query)
            .await
            .map(|a| a.into_inner().manifests)
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    };
    match tokio::time::timeout(state.peer_timeout * 2, call).await {
        Ok(Ok(manifests)) => PeerAnswer::Answered(manifests),
        Ok(Err(why)) => PeerAnswer::NotAnswered(why),
        Err(_) => PeerAnswer::NotAnswered(format!(
            "did not answer within {} s",
            (state.peer_timeout * 2).as_secs()
        )),
    }
}

/// A manifest a peer returned, taken only when it is authentic (signed by its origin under a
/// key trusted here), lists the case (this province, `prefix`) and departs in the window.
fn authentic(
    text: &str,
    trust: &crate::trust::TrustSnapshot,
    now: UnixTime,
    local: Province,
    prefix: &[u8; SUBJECT_PREFIX_LEN],
    since: UnixTime,
    until: UnixTime,
) -> Result<SignedManifest, String> {
    let signed = SignedManifest::decode(text).map_err(|e| e.to_string())?;
    crate::trace::verify_origin(&signed, trust, now).map_err(|e| e.to_string())?;
    let m = &signed.manifest;
    if !crate::trace::lists(m, local, prefix) {
        return Err(format!("trip {} does not list the case", m.trip_id));
    }
    if m.departure < since || m.departure >= until {
        return Err(format!("trip {} departs outside the window", m.trip_id));
    }
    Ok(signed)
}

/// The answer's form of a trip found: the case's seat and everyone else under `rule`.
fn traced_trip(
    f: Found,
    local: Province,
    prefix: &[u8; SUBJECT_PREFIX_LEN],
    rule: &ContactRule,
) -> Option<proto::TracedTrip> {
    let m = &f.signed.manifest;
    let traced = crate::trace::fellow_travellers(m, local, prefix, rule)?;
    Some(proto::TracedTrip {
        trip_id: m.trip_id.to_string(),
        origin_province: m
            .origin_province()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        held_by: f.held_by.iter().map(Province::to_string).collect(),
        version: m.version,
        vehicle: m.vehicle.to_string(),
        origin: m.origin.to_string(),
        destination: m.destination.to_string(),
        transit: m.transit.iter().map(Province::to_string).collect(),
        departure: m.departure.secs(),
        arrival: m.arrival.secs(),
        case_seat: traced.case_seats.first().copied().unwrap_or(0),
        case_crew: traced.case_crew,
        fellows: traced
            .fellows
            .iter()
            .map(|x| proto::FellowTraveller {
                issuer: x.issuer.to_string(),
                subject_prefix: hex::encode(x.subject_prefix),
                cti_prefix: hex::encode(x.cti_prefix),
                seat: x.seat,
                crew: x.crew,
                distance: x.distance,
                rows_apart: x.rows_apart,
                contact: x.contact,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcmr_core::testkit::{self, prov, sc_key, stranger, AH, NOW};

    #[test]
    fn only_a_manifest_signed_by_its_origin_that_lists_the_case_in_the_window_is_taken() {
        // At Anhui (which trusts Sichuan's key), tracing an Anhui resident on a Sichuan bus.
        let trust = testkit::transit_checkpoint();
        let m = crate::manifest::Manifest {
            issuers: vec![prov(AH), prov(testkit::CQ), prov(testkit::GZ)],
            ..testkit::trip(6)
        };
        let case = testkit::rider(4).subject; // issuer index 0: Anhui
        let (since, until) = (NOW, NOW + 86_400);
        let genuine = crate::manifest::sign(&m, &sc_key());
        let taken = authentic(&genuine, &trust, NOW, prov(AH), &case, since, until).unwrap();
        assert_eq!(taken.manifest, m);
        // Another key, though it names Sichuan: a peer cannot invent a trip.
        let forged = crate::manifest::sign(&m, &stranger());
        let e = authentic(&forged, &trust, NOW, prov(AH), &case, since, until).unwrap_err();
        assert!(e.contains("is not a key of 510000"), "{e}");
        // Genuine, but not listing the case (seat 2 is Chongqing's).
        let other = testkit::rider(2).subject;
        let e = authentic(&genuine, &trust, NOW, prov(AH), &other, since, until).unwrap_err();
        assert!(e.contains("does not list the case"), "{e}");
        // Genuine, but departing after the window.
        let e = authentic(&genuine, &trust, NOW, prov(AH), &case, since, NOW + 60).unwrap_err();
        assert!(e.contains("outside the window"), "{e}");
        // Not a manifest at all.
        assert!(authentic("HCMRT1:XYZ", &trust, NOW, prov(AH), &case, since, until).is_err());
    }
}
