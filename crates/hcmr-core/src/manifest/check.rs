//! The decision at a checkpoint (docs/transport.md section 5): a pure function of the manifest
//! string, the trust snapshot, the time and the highest version of the trip already seen here.
//! No I/O, no clock.
//!
//! A string that does not decode, or whose signature cannot be checked or does not verify under
//! a key trusted for its origin, stops at that reason alone (nothing else it says is
//! authentic). Past the signature every other check runs, and the STOP lists every reason met,
//! in the order of the section's table, people by seat.

use std::sync::Arc;

use super::{SignedManifest, TripId};
use crate::agreement::ManifestRole;
use crate::feed::{FeedState, KeyState};
use crate::province::Province;
use crate::time::UnixTime;
use crate::trust::{NotInForce, TrustSnapshot, TrustedAgreement};

/// How long before the planned departure a manifest is accepted, in seconds (1 h).
pub const EARLY_SECS: u64 = 3600;
/// How long after the planned arrival a manifest is still accepted, in seconds (12 h).
pub const LATE_SECS: u64 = 12 * 3600;

/// Why a vehicle is stopped (docs/transport.md section 5). [`ManifestReason::as_str`] gives
/// the section's stable identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ManifestReason {
    /// Prefix, Base45, COSE, CBOR or a field rule; the detail names the decoder's fault.
    Malformed,
    /// No key of the origin province is known here: not this province, no agreement with it
    /// and no synced feed of it.
    UnknownIssuer,
    /// No key of the origin with the manifest's kid is trusted here.
    UnknownKey,
    /// The signature does not verify under any trusted key with that kid.
    BadSignature,
    /// The signing key was withdrawn by its province: nothing it signed counts.
    KeyWithdrawn,
    /// A rotation retired the signing key before the manifest was sealed.
    KeyRetired,
    /// No concluded agreement with the origin province.
    NoAgreement,
    /// The newest agreement's window for the direction origin -> here does not hold `now`.
    AgreementNotInForce,
    /// A party terminated the newest agreement.
    AgreementTerminated,
    /// The agreement in force does not accept the origin's manifests in this role.
    ManifestsNotAgreed,
    /// The origin's feed was synced here longer ago than the agreement allows, or never.
    TrustStale,
    /// `now` is more than [`EARLY_SECS`] before the planned departure.
    BeforeWindow,
    /// `now` is more than [`LATE_SECS`] after the planned arrival.
    AfterWindow,
    /// A newer version of the trip was already seen here.
    Superseded,
    /// A person's code, or their subject's codes issued before a time later than the entry's
    /// `iat`, were revoked by the issuer's synced feed.
    Revoked,
}

impl ManifestReason {
    /// Every reason, in the order of section 5's table.
    pub const ALL: [ManifestReason; 15] = [
        ManifestReason::Malformed,
        ManifestReason::UnknownIssuer,
        ManifestReason::UnknownKey,
        ManifestReason::BadSignature,
        ManifestReason::KeyWithdrawn,
        ManifestReason::KeyRetired,
        ManifestReason::NoAgreement,
        ManifestReason::AgreementNotInForce,
        ManifestReason::AgreementTerminated,
        ManifestReason::ManifestsNotAgreed,
        ManifestReason::TrustStale,
        ManifestReason::BeforeWindow,
        ManifestReason::AfterWindow,
        ManifestReason::Superseded,
        ManifestReason::Revoked,
    ];

    /// A stable lower-case identifier, e.g. `manifests_not_agreed`.
    pub fn as_str(self) -> &'static str {
        use ManifestReason::*;
        match self {
            Malformed => "malformed",
            UnknownIssuer => "unknown_issuer",
            UnknownKey => "unknown_key",
            BadSignature => "bad_signature",
            KeyWithdrawn => "key_withdrawn",
            KeyRetired => "key_retired",
            NoAgreement => "no_agreement",
            AgreementNotInForce => "agreement_not_in_force",
            AgreementTerminated => "agreement_terminated",
            ManifestsNotAgreed => "manifests_not_agreed",
            TrustStale => "trust_stale",
            BeforeWindow => "before_window",
            AfterWindow => "after_window",
            Superseded => "superseded",
            Revoked => "revoked",
        }
    }
}

/// One reason of a STOP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReason {
    /// Why.
    pub reason: ManifestReason,
    /// The person's seat (1-based) for a person's reason ([`ManifestReason::Revoked`]).
    pub seat: Option<usize>,
    /// The province whose feed revoked that person.
    pub issuer: Option<Province>,
    /// More for a human (the decoder's fault, the window, the versions); never personal data.
    pub detail: String,
}

/// The green lane: count heads against `passengers + crew`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPass {
    /// The trip.
    pub trip_id: TripId,
    /// The version shown.
    pub version: u64,
    /// Passengers listed.
    pub passengers: usize,
    /// Crew listed.
    pub crew: usize,
    /// GB/T 2260 county code of the departure.
    pub origin: u32,
    /// GB/T 2260 code of the destination.
    pub destination: u32,
    /// Provinces passed through, in order.
    pub transit: Vec<Province>,
    /// Seconds from the seal to `now` (0 if sealed later than `now`).
    pub seal_age_secs: u64,
    /// People not re-checked because no feed of their issuer is held here: their boarding
    /// decision at the origin stands.
    pub not_rechecked: usize,
    /// The role the manifest was checked in.
    pub role: ManifestRole,
}

/// A stopped vehicle: every reason found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestStop {
    /// The trip, when the string decoded (not authentic unless the signature verified).
    pub trip_id: Option<TripId>,
    /// Its version, likewise.
    pub version: Option<u64>,
    /// At least one; in the order of section 5's table, people by seat.
    pub reasons: Vec<StopReason>,
}

/// The vehicle's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestVerdict {
    /// Every check passed.
    Pass(ManifestPass),
    /// At least one check failed.
    Stop(ManifestStop),
}

impl ManifestVerdict {
    /// Whether the vehicle passes.
    pub fn passed(&self) -> bool {
        matches!(self, ManifestVerdict::Pass(_))
    }

    /// The reasons of a STOP, in order; none for a PASS.
    pub fn reasons(&self) -> &[StopReason] {
        match self {
            ManifestVerdict::Pass(_) => &[],
            ManifestVerdict::Stop(s) => &s.reasons,
        }
    }
}

fn stop(reason: ManifestReason, detail: impl Into<String>) -> StopReason {
    StopReason {
        reason,
        seat: None,
        issuer: None,
        detail: detail.into(),
    }
}

/// Decides whether the vehicle whose manifest string is `text` passes the checkpoint of the
/// node whose trust is `trust`, at `now`, when `seen_version` is the highest version of the
/// trip seen here before (docs/transport.md section 5). The role is arrival when this node's
/// province is the destination's, else transit. A manifest of this node's own province needs
/// no agreement (like its own codes). Pure: same inputs, same verdict.
pub fn check(
    text: &str,
    trust: &TrustSnapshot,
    now: UnixTime,
    seen_version: Option<u32>,
) -> ManifestVerdict {
    let signed = match SignedManifest::decode(text) {
        Ok(s) => s,
        Err(e) => {
            return ManifestVerdict::Stop(ManifestStop {
                trip_id: None,
                version: None,
                reasons: vec![stop(
                    ManifestReason::Malformed,
                    format!("{}: {e}", e.code()),
                )],
            })
        }
    };
    check_decoded(&signed, trust, now, seen_version)
}

/// [`check`] of a manifest already decoded (by [`SignedManifest::decode`]): the same decision
/// from the signature on, for a caller that needs the decoded manifest too and decodes once.
pub fn check_decoded(
    signed: &SignedManifest,
    trust: &TrustSnapshot,
    now: UnixTime,
    seen_version: Option<u32>,
) -> ManifestVerdict {
    let m = &signed.manifest;
    let halt = |r: StopReason| {
        ManifestVerdict::Stop(ManifestStop {
            trip_id: Some(m.trip_id),
            version: Some(m.version),
            reasons: vec![r],
        })
    };
    // Never fails for a decoded manifest; a fault would be malformed.
    let (origin, destination) = match (m.origin_province(), m.destination_province()) {
        (Ok(o), Ok(d)) => (o, d),
        (Err(e), _) | (_, Err(e)) => return halt(stop(ManifestReason::Malformed, e.to_string())),
    };
    let local = trust.local();
    let role = if destination == local {
        ManifestRole::Arrival
    } else {
        ManifestRole::Transit
    };
    let own = origin == local;
    let agreements = trust.agreements_with(origin);
    let in_force = trust.agreement_in_force(origin, now);

    // The keys: own keys, else those of the agreement in force (or the newest, so that the
    // reason given for a dead agreement rests on an authentic manifest), else a synced feed.
    let keys: Vec<KeyState> = if own {
        trust.own().keys().to_vec()
    } else if let Some(a) = in_force.ok().or(agreements.first()) {
        trust.issuer_keys(origin, a)
    } else if let Some(p) = trust.peer_feed(origin) {
        p.state.keys().to_vec()
    } else {
        return halt(stop(
            ManifestReason::UnknownIssuer,
            format!("no key of {origin} is known at {local}"),
        ));
    };
    let candidates: Vec<&KeyState> = keys.iter().filter(|k| k.key.kid == signed.kid).collect();
    if candidates.is_empty() {
        return halt(stop(
            ManifestReason::UnknownKey,
            format!("kid {} is not a key of {origin} trusted here", signed.kid),
        ));
    }
    let Some(signer) = candidates
        .into_iter()
        .find(|k| signed.verify_signature(&k.key))
    else {
        return halt(stop(
            ManifestReason::BadSignature,
            format!("kid {}", signed.kid),
        ));
    };

    let mut reasons = Vec::new();
    if let Some(t) = signer.withdrawn_at {
        reasons.push(stop(
            ManifestReason::KeyWithdrawn,
            format!("kid {} withdrawn at {t}", signed.kid),
        ));
    }
    if let Some(t) = signer.retired_at.filter(|t| m.sealed_at > *t) {
        reasons.push(stop(
            ManifestReason::KeyRetired,
            format!(
                "kid {} retired at {t}, manifest sealed at {}",
                signed.kid, m.sealed_at
            ),
        ));
    }
    if !own {
        agreement_reasons(trust, origin, in_force, role, now, &mut reasons);
    }
    if now < m.departure.saturating_sub(EARLY_SECS) {
        reasons.push(stop(
            ManifestReason::BeforeWindow,
            format!(
                "planned departure {}; accepted from {EARLY_SECS} s before",
                m.departure
            ),
        ));
    }
    if now > m.arrival.saturating_add(LATE_SECS) {
        reasons.push(stop(
            ManifestReason::AfterWindow,
            format!(
                "planned arrival {}; accepted until {LATE_SECS} s after",
                m.arrival
            ),
        ));
    }
    if let Some(seen) = seen_version.filter(|s| m.version < u64::from(*s)) {
        reasons.push(stop(
            ManifestReason::Superseded,
            format!("version {} shown; version {seen} was seen here", m.version),
        ));
    }
    let not_rechecked = people_reasons(m, trust, &mut reasons);

    if !reasons.is_empty() {
        return ManifestVerdict::Stop(ManifestStop {
            trip_id: Some(m.trip_id),
            version: Some(m.version),
            reasons,
        });
    }
    let (passengers, crew) = m.headcount();
    ManifestVerdict::Pass(ManifestPass {
        trip_id: m.trip_id,
        version: m.version,
        passengers,
        crew,
        origin: m.origin,
        destination: m.destination,
        transit: m.transit.clone(),
        seal_age_secs: now.saturating_since(m.sealed_at),
        not_rechecked,
        role,
    })
}

/// The agreement with a peer origin (`in_force`, as [`TrustSnapshot::agreement_in_force`]
/// found it): in force for origin -> here, accepting manifests in `role`, and the origin's feed
/// fresh enough.
fn agreement_reasons(
    trust: &TrustSnapshot,
    origin: Province,
    in_force: Result<&Arc<TrustedAgreement>, NotInForce>,
    role: ManifestRole,
    now: UnixTime,
    reasons: &mut Vec<StopReason>,
) {
    let local = trust.local();
    let agreement = match in_force {
        Ok(a) => a,
        Err(why) => {
            reasons.push(match why {
                NotInForce::NoAgreement => stop(
                    ManifestReason::NoAgreement,
                    format!("no agreement between {origin} and {local}"),
                ),
                NotInForce::Terminated(t) => stop(
                    ManifestReason::AgreementTerminated,
                    format!("terminated at {t}"),
                ),
                NotInForce::NotYet(t) => stop(
                    ManifestReason::AgreementNotInForce,
                    format!("in force from {t}"),
                ),
                NotInForce::Ended(t) => {
                    stop(ManifestReason::AgreementNotInForce, format!("ended at {t}"))
                }
            });
            return;
        }
    };
    let Some(terms) = agreement.direction(origin, local) else {
        return; // in_force found the direction
    };
    if !terms.manifests.allows(role) {
        reasons.push(stop(
            ManifestReason::ManifestsNotAgreed,
            format!(
                "the agreement accepts {origin}'s manifests for {}; this check is {}",
                terms.manifests,
                match role {
                    ManifestRole::Transit => "transit",
                    ManifestRole::Arrival => "arrival",
                }
            ),
        ));
    }
    let max_age = terms.max_trust_age_secs;
    if max_age > 0 {
        match trust.peer_feed(origin).map(|p| p.synced_at) {
            None => reasons.push(stop(
                ManifestReason::TrustStale,
                format!("the trust state of {origin} was never synced here"),
            )),
            Some(t) if now.saturating_since(t) > max_age => reasons.push(stop(
                ManifestReason::TrustStale,
                format!(
                    "the trust state of {origin} is {} s old; the agreement allows {max_age} s",
                    now.saturating_since(t)
                ),
            )),
            Some(_) => {}
        }
    }
}

/// Re-checks each person against the synced feed of their issuer (this node's own for its own
/// province); pushes a [`ManifestReason::Revoked`] per revoked seat, in seat order. Returns how
/// many people have an issuer whose feed is not held here.
fn people_reasons(
    m: &super::Manifest,
    trust: &TrustSnapshot,
    reasons: &mut Vec<StopReason>,
) -> usize {
    let mut not_rechecked = 0;
    let mut revoked: Vec<(usize, Province, &'static str)> = Vec::new();
    for (index, issuer) in m.issuers.iter().enumerate() {
        let seats: Vec<usize> = (0..m.people.len())
            .filter(|&i| usize::from(m.people[i].issuer) == index)
            .collect();
        if seats.is_empty() {
            continue;
        }
        let feed: Option<&FeedState> = if *issuer == trust.local() {
            Some(trust.own())
        } else {
            trust.peer_feed(*issuer).map(|p| p.state.as_ref())
        };
        let Some(feed) = feed else {
            not_rechecked += seats.len();
            continue;
        };
        let ctis: Vec<[u8; 6]> = seats.iter().map(|&i| m.people[i].cti).collect();
        let subjects: Vec<([u8; 4], UnixTime)> = seats
            .iter()
            .map(|&i| (m.people[i].subject, m.people[i].iat_bound(m.sealed_at)))
            .collect();
        let by_cti = feed.revoked_cti_prefixes(&ctis);
        let by_subject = feed.revoked_subject_prefixes(&subjects);
        for (k, &i) in seats.iter().enumerate() {
            if by_cti[k] {
                revoked.push((i + 1, *issuer, "its code is revoked (cti prefix)"));
            } else if by_subject[k] {
                revoked.push((
                    i + 1,
                    *issuer,
                    "its subject's codes issued before a later time are revoked",
                ));
            }
        }
    }
    revoked.sort_by_key(|(seat, _, _)| *seat);
    reasons.extend(revoked.into_iter().map(|(seat, issuer, why)| StopReason {
        reason: ManifestReason::Revoked,
        seat: Some(seat),
        issuer: Some(issuer),
        detail: format!("seat {seat}: {why} by {issuer}"),
    }));
    not_rechecked
}

#[cfg(test)]
mod tests;
