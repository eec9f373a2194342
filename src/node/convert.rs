//! Conversions between the generated protobuf types and the domain types. The proto carries
//! times as `uint64` seconds since the Unix epoch: they become [`UnixTime`] here.

use crate::agreement::{
    AgreementId, AgreementSignature, DirectionTerms, ManifestRole, ManifestTerms, ProposalNotice,
    ProposalOutcome, Role, SignedAgreement, Termination,
};
use crate::code::Subject;
use crate::identity::DocumentType;
use crate::keys::{Kid, PublicKey};
use crate::manifest::{Manifest, ManifestReason, ManifestVerdict};
use crate::proto;
use crate::province::Province;
use crate::status::HealthStatus;
use crate::verify::Verdict;
use crate::UnixTime;

use super::error::ApiError;

/// A proto status to a colour; `None` for UNSPECIFIED or an unknown number.
pub fn status_from_proto(v: i32) -> Option<HealthStatus> {
    u64::try_from(v).ok().and_then(HealthStatus::from_u64)
}

/// A colour (or none) to the proto enum value.
pub fn status_to_proto(s: Option<HealthStatus>) -> i32 {
    match s {
        None => proto::HealthStatus::Unspecified as i32,
        Some(HealthStatus::Green) => proto::HealthStatus::Green as i32,
        Some(HealthStatus::Yellow) => proto::HealthStatus::Yellow as i32,
        Some(HealthStatus::Red) => proto::HealthStatus::Red as i32,
    }
}

/// A proto document type; `None` for UNSPECIFIED or unknown.
pub fn document_type_from_proto(v: i32) -> Option<DocumentType> {
    u64::try_from(v)
        .ok()
        .filter(|v| *v != 0)
        .and_then(DocumentType::from_u64)
}

/// The masked subject of a code.
pub fn masked_subject(s: &Subject) -> proto::MaskedSubject {
    proto::MaskedSubject {
        masked_name: s.masked_name.clone(),
        document_type: i32::from(s.document_type.to_u8()),
        masked_document_number: s.masked_document_number.clone(),
        subject_hash: s.subject_hash.to_string(),
    }
}

/// A public key for the API.
pub fn key_info(k: &PublicKey) -> proto::PublicKeyInfo {
    proto::PublicKeyInfo {
        kid: k.kid.0.to_vec(),
        public_key: k.to_bytes().to_vec(),
    }
}

/// A public key from the API; the kid, when given, must match the key.
///
/// # Errors
/// INVALID_ARGUMENT on `field`.
pub fn key_from_proto(
    field: &'static str,
    k: &proto::PublicKeyInfo,
) -> Result<PublicKey, ApiError> {
    let key = PublicKey::from_bytes(&k.public_key).map_err(|e| ApiError::invalid(field, e))?;
    if !k.kid.is_empty() && k.kid != key.kid.0 {
        return Err(ApiError::invalid(
            field,
            "kid does not match the public key",
        ));
    }
    Ok(key)
}

/// Status mappings from the API.
///
/// # Errors
/// INVALID_ARGUMENT on `field` for an unspecified status or a status listed twice.
pub fn status_map_from_proto(
    field: &'static str,
    m: &[proto::StatusMapping],
) -> Result<std::collections::BTreeMap<HealthStatus, HealthStatus>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for e in m {
        let from = status_from_proto(e.issued).ok_or_else(|| {
            ApiError::invalid(field, "issued status must be green, yellow or red")
        })?;
        let to = status_from_proto(e.counts_as)
            .ok_or_else(|| ApiError::invalid(field, "counts_as must be green, yellow or red"))?;
        if to < from {
            return Err(ApiError::invalid(
                field,
                format!("{from} may not count as {to}: a mapping may keep or raise severity"),
            ));
        }
        if out.insert(from, to).is_some() {
            return Err(ApiError::invalid(field, format!("{from} is mapped twice")));
        }
    }
    Ok(out)
}

/// The manifest term of a direction from the API's two flags (docs/transport.md section 4):
/// `transit` and `arrival` as in `DirectionTerms.manifests_transit` / `manifests_arrival` or the
/// `peer_manifests_*` / `our_manifests_*` pairs of CreateAgreementRequest. Both false: none, the
/// direction keeps the encoding of agreements made before the term.
pub fn manifest_terms_from_proto(transit: bool, arrival: bool) -> ManifestTerms {
    match (transit, arrival) {
        (false, false) => ManifestTerms::none(),
        (true, false) => ManifestTerms::transit(),
        (false, true) => ManifestTerms::arrival(),
        (true, true) => ManifestTerms::both(),
    }
}

/// The manifest term as the API's two flags: (transit, arrival).
pub fn manifest_terms_to_proto(m: ManifestTerms) -> (bool, bool) {
    (
        m.allows(ManifestRole::Transit),
        m.allows(ManifestRole::Arrival),
    )
}

fn direction_to_proto(d: &DirectionTerms) -> proto::DirectionTerms {
    let (manifests_transit, manifests_arrival) = manifest_terms_to_proto(d.manifests);
    proto::DirectionTerms {
        issuer_province: d.issuer.to_string(),
        verifier_province: d.verifier.to_string(),
        status_map: d
            .status_map
            .iter()
            .map(|(a, b)| proto::StatusMapping {
                issued: status_to_proto(Some(*a)),
                counts_as: status_to_proto(Some(*b)),
            })
            .collect(),
        max_code_age_secs: d.max_code_age_secs,
        max_trust_age_secs: d.max_trust_age_secs,
        effective_from: d.effective_from.secs(),
        effective_until: d.effective_until.secs(),
        manifests_transit,
        manifests_arrival,
        tracing: d.tracing,
    }
}

fn signature_to_proto(s: &Option<AgreementSignature>) -> Option<proto::AgreementSignature> {
    s.as_ref().map(|s| proto::AgreementSignature {
        kid: s.kid.0.to_vec(),
        signature: s.signature.to_vec(),
    })
}

/// The wire form of a signed agreement.
pub fn signed_to_proto(a: &SignedAgreement) -> proto::SignedAgreement {
    proto::SignedAgreement {
        body: a.encoded().to_vec(),
        proposer_signature: signature_to_proto(&a.proposer_signature),
        acceptor_signature: signature_to_proto(&a.acceptor_signature),
    }
}

fn signature_from_proto(
    field: &'static str,
    s: &Option<proto::AgreementSignature>,
) -> Result<Option<AgreementSignature>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    Ok(Some(AgreementSignature {
        kid: Kid::from_slice(&s.kid)
            .ok_or_else(|| ApiError::invalid(field, "kid must be 8 bytes"))?,
        signature: s
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::invalid(field, "signature must be 64 bytes"))?,
    }))
}

/// A received signed agreement: body decoded and validated; signatures parsed, not checked.
///
/// # Errors
/// INVALID_ARGUMENT naming the field.
pub fn signed_from_proto(a: Option<&proto::SignedAgreement>) -> Result<SignedAgreement, ApiError> {
    let a = a.ok_or_else(|| ApiError::invalid("agreement", "missing"))?;
    SignedAgreement::from_parts(
        a.body.clone(),
        signature_from_proto("agreement.proposer_signature", &a.proposer_signature)?,
        signature_from_proto("agreement.acceptor_signature", &a.acceptor_signature)?,
    )
    .map_err(|e| ApiError::invalid("agreement.body", e))
}

/// A proposal notice (withdrawal or rejection) for the wire.
pub fn proposal_notice_to_proto(n: &ProposalNotice) -> proto::ProposalNotice {
    proto::ProposalNotice {
        id: n.id.0.to_vec(),
        version: n.version,
        by_province: n.by.to_string(),
        outcome: match n.outcome {
            ProposalOutcome::Withdrawn => proto::ProposalOutcome::Withdrawn,
            ProposalOutcome::Rejected => proto::ProposalOutcome::Rejected,
        } as i32,
        signed_at: n.signed_at.secs(),
        kid: n.kid.0.to_vec(),
        signature: n.signature.to_vec(),
    }
}

/// A proposal notice from the wire (signature not checked).
///
/// # Errors
/// INVALID_ARGUMENT naming the field.
pub fn proposal_notice_from_proto(n: &proto::ProposalNotice) -> Result<ProposalNotice, ApiError> {
    Ok(ProposalNotice {
        id: AgreementId(
            n.id.as_slice()
                .try_into()
                .map_err(|_| ApiError::invalid("notice.id", "must be 16 bytes"))?,
        ),
        version: n.version,
        by: n
            .by_province
            .parse()
            .map_err(|e| ApiError::invalid("notice.by_province", e))?,
        outcome: match proto::ProposalOutcome::try_from(n.outcome) {
            Ok(proto::ProposalOutcome::Withdrawn) => ProposalOutcome::Withdrawn,
            Ok(proto::ProposalOutcome::Rejected) => ProposalOutcome::Rejected,
            _ => {
                return Err(ApiError::invalid(
                    "notice.outcome",
                    "must be WITHDRAWN or REJECTED",
                ))
            }
        },
        signed_at: UnixTime::from_secs(n.signed_at),
        kid: Kid::from_slice(&n.kid)
            .ok_or_else(|| ApiError::invalid("notice.kid", "must be 8 bytes"))?,
        signature: n
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::invalid("notice.signature", "must be 64 bytes"))?,
    })
}

/// A termination notice for the wire.
pub fn termination_to_proto(t: &Termination) -> proto::TerminationNotice {
    proto::TerminationNotice {
        id: t.id.0.to_vec(),
        by_province: t.by.to_string(),
        effective_at: t.effective_at.secs(),
        signed_at: t.signed_at.secs(),
        kid: t.kid.0.to_vec(),
        signature: t.signature.to_vec(),
    }
}

/// A termination notice from the wire (signature not checked).
///
/// # Errors
/// INVALID_ARGUMENT naming the field.
pub fn termination_from_proto(t: &proto::TerminationNotice) -> Result<Termination, ApiError> {
    Ok(Termination {
        id: AgreementId(
            t.id.as_slice()
                .try_into()
                .map_err(|_| ApiError::invalid("notice.id", "must be 16 bytes"))?,
        ),
        by: t
            .by_province
            .parse()
            .map_err(|e| ApiError::invalid("notice.by_province", e))?,
        effective_at: UnixTime::from_secs(t.effective_at),
        signed_at: UnixTime::from_secs(t.signed_at),
        kid: Kid::from_slice(&t.kid)
            .ok_or_else(|| ApiError::invalid("notice.kid", "must be 8 bytes"))?,
        signature: t
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::invalid("notice.signature", "must be 64 bytes"))?,
    })
}

/// Where an agreement version stands, beyond its signatures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Standing<'a> {
    /// A newer concluded version exists.
    pub superseded: bool,
    /// The agreement's termination notice, if any.
    pub termination: Option<&'a Termination>,
    /// The time to judge the termination at.
    pub now: UnixTime,
}

/// The state of an agreement as seen by the node of `local`.
pub fn agreement_state(
    a: &SignedAgreement,
    local: Province,
    standing: Standing<'_>,
) -> proto::AgreementState {
    if a.check_both().is_ok() {
        if standing
            .termination
            .is_some_and(|t| t.effective_at <= standing.now)
        {
            proto::AgreementState::Terminated
        } else if standing.superseded {
            proto::AgreementState::Superseded
        } else {
            proto::AgreementState::Concluded
        }
    } else if a.check_signature(Role::Proposer).is_ok() && a.body().proposer.province == local {
        proto::AgreementState::Proposed
    } else {
        proto::AgreementState::AwaitingAcceptance
    }
}

/// An agreement for operators.
pub fn agreement_view(
    a: &SignedAgreement,
    local: Province,
    standing: Standing<'_>,
) -> proto::AgreementView {
    let b = a.body();
    proto::AgreementView {
        id: b.id.to_string(),
        version: b.version,
        proposer_province: b.proposer.province.to_string(),
        acceptor_province: b.acceptor.province.to_string(),
        proposer_keys: b.proposer.keys.iter().map(key_info).collect(),
        acceptor_keys: b.acceptor.keys.iter().map(key_info).collect(),
        directions: b.directions.iter().map(direction_to_proto).collect(),
        created_at: b.created_at.secs(),
        state: agreement_state(a, local, standing) as i32,
        signed: Some(signed_to_proto(a)),
        terminated_at: standing.termination.map_or(0, |t| t.effective_at.secs()),
        terminated_by: standing
            .termination
            .map(|t| t.by.to_string())
            .unwrap_or_default(),
    }
}

/// A verdict as the API answers it.
pub fn verdict_to_proto(v: &Verdict, now: UnixTime) -> proto::VerifyHealthCodeResponse {
    let c = v.claims.as_ref();
    proto::VerifyHealthCodeResponse {
        verdict: if v.recognized() {
            proto::Verdict::Recognized as i32
        } else {
            proto::Verdict::NotRecognized as i32
        },
        reason: v.reason as i32,
        detail: v.detail.clone(),
        explanation: v.reason.explain().to_string(),
        issuer_province: v.issuer.map(|p| p.to_string()).unwrap_or_default(),
        issued_status: status_to_proto(v.issued_status()),
        local_status: status_to_proto(v.local_status),
        subject: c.map(|c| masked_subject(&c.subject)),
        exp: c.map_or(0, |c| c.exp.secs()),
        iat: c.map_or(0, |c| c.iat.secs()),
        status_valid_until: c.map_or(0, |c| c.status_valid_until.secs()),
        cti: v.cti.map(hex::encode).unwrap_or_default(),
        signature_verified: v.signature_verified,
        agreement_id: v.agreement.map(|a| a.to_string()).unwrap_or_default(),
        verified_at: now.secs(),
        issuer_state_synced_at: v.issuer_synced_at.map_or(0, UnixTime::secs),
        issuer_state_age_secs: v.issuer_synced_at.map_or(0, |t| now.saturating_since(t)),
        issuer_state_synced: v.issuer_synced_at.is_some(),
    }
}

/// A manifest reason's proto number: the enum follows docs/transport.md section 5's table, as
/// [`ManifestReason::number`] does.
pub fn manifest_reason_to_proto(r: ManifestReason) -> i32 {
    i32::from(r.number())
}

/// A manifest verdict as the API answers it (VerifyManifest, CheckInManifest). `decoded` is the
/// manifest when its string decoded (its route fields are shown, authentic only when
/// `signature_verified`); `local` is this node's province, which decides the role; `now` the
/// decision time.
pub fn manifest_verdict_to_proto(
    verdict: &ManifestVerdict,
    decoded: Option<&Manifest>,
    local: Province,
    now: UnixTime,
) -> proto::VerifyManifestResponse {
    let unverified = [
        ManifestReason::Malformed,
        ManifestReason::UnknownIssuer,
        ManifestReason::UnknownKey,
        ManifestReason::BadSignature,
    ];
    let reasons: Vec<proto::ManifestStopReason> = verdict
        .reasons()
        .iter()
        .map(|r| proto::ManifestStopReason {
            reason: manifest_reason_to_proto(r.reason),
            seat: r.seat.map_or(0, |s| s as u32),
            issuer_province: r.issuer.map(|p| p.to_string()).unwrap_or_default(),
            detail: r.detail.clone(),
        })
        .collect();
    let explanation = match verdict {
        ManifestVerdict::Pass(_) => {
            "核验通过，请清点人数 / PASS: count heads against the manifest".to_string()
        }
        ManifestVerdict::Stop(s) => {
            let mut ids: Vec<&str> = Vec::new();
            for r in &s.reasons {
                if !ids.contains(&r.reason.as_str()) {
                    ids.push(r.reason.as_str());
                }
            }
            format!("停车检查 / STOP: {}", ids.join(", "))
        }
    };
    let mut out = proto::VerifyManifestResponse {
        pass: verdict.passed(),
        signature_verified: !verdict
            .reasons()
            .iter()
            .any(|r| unverified.contains(&r.reason)),
        reasons,
        checked_at: now.secs(),
        explanation,
        ..Default::default()
    };
    if let Some(m) = decoded {
        let (passengers, crew) = m.headcount();
        let arrival = m.destination_province().is_ok_and(|d| d == local);
        out.trip_id = m.trip_id.to_string();
        out.version = m.version;
        out.passengers = passengers as u32;
        out.crew = crew as u32;
        out.vehicle = m.vehicle.as_str().to_string();
        out.origin = m.origin.to_string();
        out.destination = m.destination.to_string();
        out.place = m.place.as_str().to_string();
        out.transit = m.transit.iter().map(|p| p.to_string()).collect();
        out.departure = m.departure.secs();
        out.arrival = m.arrival.secs();
        out.seal_age_secs = now.saturating_since(m.sealed_at);
        out.role = if arrival { "arrival" } else { "transit" }.to_string();
    }
    if let ManifestVerdict::Pass(p) = verdict {
        out.not_rechecked = p.not_rechecked as u32;
        out.seal_age_secs = p.seal_age_secs;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::ManifestTerms;

    #[test]
    fn the_manifest_flags_map_to_the_term_and_back() {
        let cases = [
            ((false, false), ManifestTerms::none(), 0),
            ((true, false), ManifestTerms::transit(), 1),
            ((false, true), ManifestTerms::arrival(), 2),
            ((true, true), ManifestTerms::both(), 3),
        ];
        for ((transit, arrival), term, bits) in cases {
            let m = manifest_terms_from_proto(transit, arrival);
            assert_eq!(m, term, "({transit}, {arrival})");
            assert_eq!(m.bits(), bits);
            assert_eq!(manifest_terms_to_proto(m), (transit, arrival));
        }
    }

    #[test]
    fn a_direction_shows_its_manifest_term() {
        let p = |c| Province::from_code(c).unwrap();
        let mut d = DirectionTerms {
            issuer: p(510000),
            verifier: p(330000),
            status_map: [(HealthStatus::Green, HealthStatus::Green)].into(),
            max_code_age_secs: 86_400,
            effective_from: UnixTime::from_secs(1_700_000_000),
            effective_until: UnixTime::from_secs(1_800_000_000),
            max_trust_age_secs: 0,
            manifests: ManifestTerms::arrival(),
            tracing: false,
        };
        let v = direction_to_proto(&d);
        assert_eq!(
            (v.manifests_transit, v.manifests_arrival),
            (false, true),
            "{v:?}"
        );
        assert_eq!(
            (v.issuer_province.as_str(), v.verifier_province.as_str()),
            ("510000", "330000")
        );
        d.manifests = ManifestTerms::none();
        let v = direction_to_proto(&d);
        assert_eq!((v.manifests_transit, v.manifests_arrival), (false, false));
    }

    #[test]
    fn every_manifest_reason_maps_to_its_proto_name() {
        for r in ManifestReason::ALL {
            let p = proto::ManifestReason::try_from(manifest_reason_to_proto(r)).unwrap();
            assert_eq!(
                p.as_str_name(),
                format!("MANIFEST_REASON_{}", r.as_str().to_uppercase()),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_manifest_verdict_shows_the_trip_and_the_role() {
        use hcmr_core::testkit::{sc_key, snapshot, trip, NOW, SC, ZJ};
        let m = trip(2);
        let text = crate::manifest::sign(&m, &sc_key());
        // At Sichuan, its own manifest: PASS in transit (the destination is Zhejiang).
        let own = snapshot(SC, &sc_key(), Vec::new());
        let v = crate::manifest::check(&text, &own, NOW, None);
        let p = manifest_verdict_to_proto(&v, Some(&m), own.local(), NOW);
        assert!(
            p.pass && p.signature_verified && p.reasons.is_empty(),
            "{p:?}"
        );
        assert_eq!(
            (p.trip_id.as_str(), p.version, p.passengers, p.crew),
            ("7e7e7e7e7e7e7e7e", 1, 1, 1)
        );
        assert_eq!(
            (
                p.vehicle.as_str(),
                p.origin.as_str(),
                p.destination.as_str()
            ),
            ("川R·12345", "511304", "330200")
        );
        assert_eq!((p.role.as_str(), p.checked_at), ("transit", NOW.secs()));
        assert_eq!(p.transit, vec!["340000".to_string()]);
        // At Zhejiang without an agreement: STOP, unknown issuer, in the arrival role.
        let zj = snapshot(ZJ, &hcmr_core::testkit::zj_key(), Vec::new());
        let v = crate::manifest::check(&text, &zj, NOW, None);
        let p = manifest_verdict_to_proto(&v, Some(&m), zj.local(), NOW);
        assert!(!p.pass && !p.signature_verified);
        assert_eq!(p.role, "arrival");
        assert_eq!(
            p.reasons[0].reason,
            proto::ManifestReason::UnknownIssuer as i32
        );
        assert!(
            p.explanation.contains("unknown_issuer"),
            "{}",
            p.explanation
        );
        // Not decoded: no trip.
        let v = crate::manifest::check("HCMRT1:", &zj, NOW, None);
        let p = manifest_verdict_to_proto(&v, None, zj.local(), NOW);
        assert_eq!((p.trip_id.as_str(), p.version), ("", 0));
        assert_eq!(p.reasons[0].reason, proto::ManifestReason::Malformed as i32);
    }
}
