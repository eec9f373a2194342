//! A checkpoint's check of a vehicle by its trip manifest (docs/transport.md section 5): the
//! core's pure [`manifest::check`] on the current trust snapshot and clock, with the highest
//! version of the trip seen here; one audit record per check; the version remembered when the
//! signature verified; a signed check report queued for another province's trip origin, after
//! the answer ([`report`]). The answer's wire form ([`response`]) is shared with `hcmr manifest
//! check --offline`.

use crate::audit::{AuditRecord, ManifestAudit};
use crate::manifest::{
    self, CheckReport, Checkpoint, ManifestReason, ManifestVerdict, SignedManifest,
};
use crate::proto;
use crate::province::Province;
use crate::store::{Store, TripRecordKind};
use crate::trust::TrustSnapshot;
use crate::UnixTime;

use super::error::ApiError;
use super::{AuditSink, NodeState, TrustState};
use crate::clock::Clock;

/// What a manifest check needs: the trust snapshot, the store of seen versions, the audit queue,
/// the metrics and the clock.
pub(crate) struct ManifestCheck<'a> {
    /// A verify replica refuses while not ready ([`super::replica::NodeRole::check_fresh`]).
    role: &'a super::replica::NodeRole,
    trust: &'a TrustState,
    store: &'a Store,
    audit: &'a AuditSink,
    metrics: &'a super::metrics::Metrics,
    clock: &'a Clock,
}

impl NodeState {
    /// The manifest-check workflow's part of the node.
    pub(crate) fn manifest_check(&self) -> ManifestCheck<'_> {
        ManifestCheck {
            role: &self.role,
            trust: &self.trust,
            store: &self.store,
            audit: &self.audit,
            metrics: &self.metrics,
            clock: &self.clock,
        }
    }
}

/// A check done: the answer, and what a report to the trip's origin needs when one is due.
pub(crate) struct Checked {
    /// The answer.
    pub(crate) response: proto::VerifyManifestResponse,
    /// The authentic manifest of another province's trip (signature verified), with the
    /// verdict and the checkpoint, for the report to its origin; `None` when no report is due.
    pub(crate) report: Option<ReportDue>,
}

/// A check to report to the trip's origin (docs/transport.md section 6).
pub(crate) struct ReportDue {
    /// The manifest as checked (its signature verified).
    pub(crate) manifest: SignedManifest,
    /// The origin province, another than this node's.
    pub(crate) origin: Province,
    /// The verdict.
    pub(crate) verdict: ManifestVerdict,
    /// The checkpoint id as recorded.
    pub(crate) checkpoint: String,
    /// When checked.
    pub(crate) checked_at: UnixTime,
}

impl ManifestCheck<'_> {
    /// Checks the manifest string `text` shown at `checkpoint` (the pure decision on the current
    /// snapshot and clock), notes the version when the signature verified, and queues an audit
    /// record. No disk write here: the audit writer stores both with its next batch. A string
    /// that is not a manifest is a STOP `malformed`, not an error.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a checkpoint id that is not one ([`crate::audit::check_checkpoint_id`]);
    /// [`ApiError::Store`] when the seen versions cannot be read.
    pub(crate) fn check(
        &self,
        text: &str,
        checkpoint: &str,
        via: &'static str,
    ) -> Result<Checked, ApiError> {
        let checkpoint = crate::audit::check_checkpoint_id(checkpoint)
            .map_err(|e| ApiError::invalid("checkpoint_id", e))?;
        let now = self.clock.now();
        self.role.check_fresh(now)?;
        let trust = self.trust.load();
        let decoded = SignedManifest::decode(text).ok();
        let seen = match &decoded {
            Some(s) => self.store.seen_manifest_version(s.manifest.trip_id)?,
            None => None,
        };
        let seen = seen.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        // Decoded once: the string is read again only when it did not decode (for the reason).
        let verdict = match &decoded {
            Some(s) => manifest::check_decoded(s, &trust, now, seen),
            None => manifest::check(text, &trust, now, seen),
        };
        let verified = signature_verified(decoded.as_ref(), &verdict);
        self.metrics.manifest_check(&verdict);
        let response = response(decoded.as_ref(), &verdict, trust.local(), now, verified);
        let origin = decoded
            .as_ref()
            .and_then(|s| s.manifest.origin_province().ok());
        // Only a version newer than the one seen here is noted: a rescan of the same version
        // (the common case) adds no allocation and no write to the next audit batch.
        let newer = |s: &SignedManifest| seen.is_none_or(|v| s.manifest.version > u64::from(v));
        if let Some(s) = decoded.as_ref().filter(|s| verified && newer(s)) {
            self.store
                .note_manifest_version(s.manifest.trip_id, s.manifest.version);
            self.store
                .note_manifest_text(s.manifest.trip_id, s.manifest.version, text.trim());
        }
        let claimed = decoded
            .as_ref()
            .zip(origin)
            .map(|(s, o)| (o, s.manifest.trip_id, s.manifest.version));
        self.audit.queue(AuditRecord::of_manifest(
            &verdict, claimed, verified, now, checkpoint, via,
        ));
        tracing::debug!(
            trip = response.trip_id,
            version = response.version,
            pass = response.pass,
            reasons = response.reasons.len(),
            checkpoint,
            via,
            "checked trip manifest"
        );
        let report = match (decoded, origin) {
            (Some(manifest), Some(origin)) if verified && origin != trust.local() => {
                Some(ReportDue {
                    manifest,
                    origin,
                    verdict,
                    checkpoint: crate::audit::checkpoint_id(checkpoint),
                    checked_at: now,
                })
            }
            _ => None,
        };
        Ok(Checked { response, report })
    }
}

/// Longest a replica's check may lie from the primary's clock to be reported, in seconds.
const REPLICA_CHECK_WINDOW_SECS: u64 = 3600;

/// At a primary: the report of a manifest check made at one of its enrolled verify replicas,
/// as the replica made it (its verdict is what the checkpoint was told): checked (its form,
/// this province as the checker, a time within an hour of this node's clock, another province
/// as the origin), signed with this node's key and queued for the origin as a report of its
/// own.
///
/// # Errors
/// INVALID_ARGUMENT naming `report`, `origin` or `report.checked_at`.
pub(crate) async fn report_replica_check(
    state: &NodeState,
    payload: &[u8],
    origin: &str,
) -> Result<(), ApiError> {
    let report = CheckReport::from_cbor(payload).map_err(|e| ApiError::invalid("report", e))?;
    report.check().map_err(|e| ApiError::invalid("report", e))?;
    let origin: Province = origin.parse().map_err(|e| ApiError::invalid("origin", e))?;
    if report.checker != state.province {
        return Err(ApiError::invalid(
            "report",
            format!(
                "checker {} is not this province {}",
                report.checker, state.province
            ),
        ));
    }
    if origin == state.province {
        return Err(ApiError::invalid(
            "origin",
            "a check of this province's own trip is not reported",
        ));
    }
    let now = state.now();
    if report.checked_at.secs().abs_diff(now.secs()) > REPLICA_CHECK_WINDOW_SECS {
        return Err(ApiError::invalid(
            "report.checked_at",
            format!(
                "{} is more than {REPLICA_CHECK_WINDOW_SECS} s from this node's clock ({now})",
                report.checked_at
            ),
        ));
    }
    let key = state.key.load()?;
    queue_report(
        state,
        origin,
        report.trip_id,
        report.sign(&key),
        report.checked_at,
    )
    .await;
    Ok(())
}

/// At a verify replica: hands a check's report to the primary, which signs and queues it (best
/// effort: three tries a second apart; the check's audit record reaches the primary either
/// way).
async fn forward_to_primary(state: &NodeState, origin: Province, report: &CheckReport) {
    let payload = report.to_cbor();
    for attempt in 1..=3 {
        let sent = async {
            let channel = state.primary_channel().await?;
            proto::replica_service_client::ReplicaServiceClient::new(channel)
                .report_manifest_check(proto::ReportManifestCheckRequest {
                    report: payload.clone(),
                    origin: origin.to_string(),
                })
                .await
                .map_err(|s| {
                    super::peer::call_failed(state.primary_url().unwrap_or_default(), s)
                })?;
            Ok::<_, ApiError>(())
        }
        .await;
        match sent {
            Ok(()) => return,
            Err(e) if attempt == 3 => {
                tracing::warn!(%origin, error = %e, "a check report could not be handed to the primary; the check's audit record goes there all the same")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
}

/// Whether `verdict` rests on a signature verified under a key trusted for the origin: a PASS,
/// or a STOP past the stages of decoding, key and signature (the core stops at those alone).
pub fn signature_verified(decoded: Option<&SignedManifest>, verdict: &ManifestVerdict) -> bool {
    decoded.is_some()
        && !verdict.reasons().iter().any(|r| {
            matches!(
                r.reason,
                ManifestReason::Malformed
                    | ManifestReason::UnknownIssuer
                    | ManifestReason::UnknownKey
                    | ManifestReason::BadSignature
            )
        })
}

/// The wire form of a reason.
pub fn reason_to_proto(r: ManifestReason) -> proto::ManifestReason {
    use proto::ManifestReason as P;
    match r {
        ManifestReason::Malformed => P::Malformed,
        ManifestReason::UnknownIssuer => P::UnknownIssuer,
        ManifestReason::UnknownKey => P::UnknownKey,
        ManifestReason::BadSignature => P::BadSignature,
        ManifestReason::KeyWithdrawn => P::KeyWithdrawn,
        ManifestReason::KeyRetired => P::KeyRetired,
        ManifestReason::NoAgreement => P::NoAgreement,
        ManifestReason::AgreementNotInForce => P::AgreementNotInForce,
        ManifestReason::AgreementTerminated => P::AgreementTerminated,
        ManifestReason::ManifestsNotAgreed => P::ManifestsNotAgreed,
        ManifestReason::TrustStale => P::TrustStale,
        ManifestReason::BeforeWindow => P::BeforeWindow,
        ManifestReason::AfterWindow => P::AfterWindow,
        ManifestReason::Superseded => P::Superseded,
        ManifestReason::Revoked => P::Revoked,
    }
}

/// The answer to VerifyManifest for `verdict` on the manifest `decoded` (when the string
/// decoded) at the node of province `local` at `now`. The trip's fields come from the decoded
/// manifest even when its signature did not verify (`signature_verified` says so, and a reader
/// must not take them for the origin's word then).
pub fn response(
    decoded: Option<&SignedManifest>,
    verdict: &ManifestVerdict,
    local: Province,
    now: UnixTime,
    signature_verified: bool,
) -> proto::VerifyManifestResponse {
    let mut r = proto::VerifyManifestResponse {
        pass: verdict.passed(),
        reasons: verdict
            .reasons()
            .iter()
            .map(|r| proto::ManifestStopReason {
                reason: reason_to_proto(r.reason) as i32,
                seat: r.seat.map_or(0, |s| s as u32),
                issuer_province: r.issuer.map(|p| p.to_string()).unwrap_or_default(),
                detail: r.detail.clone(),
            })
            .collect(),
        checked_at: now.secs(),
        explanation: verdict.explain(),
        signature_verified,
        ..Default::default()
    };
    if let Some(s) = decoded {
        let m = &s.manifest;
        let (passengers, crew) = m.headcount();
        let arrival = m.destination_province().is_ok_and(|d| d == local);
        r.trip_id = m.trip_id.to_string();
        r.version = m.version;
        r.passengers = passengers as u32;
        r.crew = crew as u32;
        r.vehicle = m.vehicle.to_string();
        r.origin = m.origin.to_string();
        r.destination = m.destination.to_string();
        r.place = m.place.to_string();
        r.transit = m.transit.iter().map(ToString::to_string).collect();
        r.departure = m.departure.secs();
        r.arrival = m.arrival.secs();
        r.seal_age_secs = now.saturating_since(m.sealed_at);
        r.role = if arrival { "arrival" } else { "transit" }.to_string();
    }
    if let ManifestVerdict::Pass(p) = verdict {
        r.not_rechecked = p.not_rechecked as u32;
    }
    r
}

/// The decision alone, as `hcmr manifest check --offline` makes it with a trust bundle: no
/// seen versions, no audit, no report.
pub fn check_offline(
    text: &str,
    trust: &TrustSnapshot,
    now: UnixTime,
) -> proto::VerifyManifestResponse {
    let decoded = SignedManifest::decode(text).ok();
    let verdict = manifest::check(text, trust, now, None);
    let verified = signature_verified(decoded.as_ref(), &verdict);
    response(decoded.as_ref(), &verdict, trust.local(), now, verified)
}

/// A manifest check's audit part, as ListAuditRecords answers it.
pub(crate) fn audit_to_proto(m: &ManifestAudit) -> proto::ManifestCheckRecord {
    proto::ManifestCheckRecord {
        trip_id: m.trip_id.map(|t| t.to_string()).unwrap_or_default(),
        version: m.version,
        signature_verified: m.signature_verified,
        reasons: m
            .reasons
            .iter()
            .map(|r| proto::ManifestStopReason {
                reason: reason_to_proto(r.reason) as i32,
                seat: r.seat.map_or(0, u32::from),
                issuer_province: r.issuer.map(|p| p.to_string()).unwrap_or_default(),
                detail: String::new(),
            })
            .collect(),
    }
}

/// Reports a check to the trip's origin on a task of its own, off the answer's path
/// ([`report`]); a stopping node waits for it ([`NodeState::reports_in_flight`]).
pub(crate) fn spawn_report(state: &std::sync::Arc<NodeState>, due: ReportDue) {
    if !state.recent_reports.first(&due) {
        return;
    }
    let in_flight = state.reports_in_flight.clone().try_read_owned();
    let state = state.clone();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        report(state, due).await;
    });
}

/// How long a check stays "the same" for its report, in seconds: the same trip version checked
/// again at the same checkpoint with the same verdict (the same reasons by seat) within this
/// time adds nothing to the trip's path, and is audited here but not reported again.
pub(crate) const REPORT_REPEAT_SECS: u64 = 600;

/// Most checks remembered for [`REPORT_REPEAT_SECS`]: past it, the older ones are forgotten
/// (a forgotten repeat is reported again, which is only a duplicate at the origin).
const RECENT_REPORTS_MAX: usize = 4096;

/// The checks reported lately: (trip, version, checkpoint, verdict fingerprint) with the time
/// of the report. In memory only: after a restart a repeat may be reported once more.
#[derive(Default)]
pub(crate) struct RecentReports(std::sync::Mutex<std::collections::HashMap<ReportKey, UnixTime>>);

/// What makes two checks the same for their report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReportKey {
    trip: crate::manifest::TripId,
    version: u64,
    checkpoint: String,
    pass: bool,
    reasons: Vec<(ManifestReason, Option<usize>)>,
}

impl RecentReports {
    /// Whether `due` is to be reported: not when the same check was reported less than
    /// [`REPORT_REPEAT_SECS`] before it. Notes it when it is.
    fn first(&self, due: &ReportDue) -> bool {
        let key = ReportKey {
            trip: due.manifest.manifest.trip_id,
            version: due.manifest.manifest.version,
            checkpoint: due.checkpoint.clone(),
            pass: due.verdict.passed(),
            reasons: due
                .verdict
                .reasons()
                .iter()
                .map(|r| (r.reason, r.seat))
                .collect(),
        };
        let now = due.checked_at;
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = recent.get(&key) {
            if now.saturating_since(*at) < REPORT_REPEAT_SECS && *at <= now {
                return false;
            }
        }
        if recent.len() >= RECENT_REPORTS_MAX {
            recent.retain(|_, at| now.saturating_since(*at) < REPORT_REPEAT_SECS);
            if recent.len() >= RECENT_REPORTS_MAX {
                recent.clear();
            }
        }
        recent.insert(key, now);
        true
    }
}

/// Reports a check to the trip's origin (docs/transport.md section 6): the check report,
/// signed with this node's key, queued in the trip outbox for the origin's node (stored and
/// flushed first, then delivered and retried by the outbox task). A report that cannot be
/// queued is logged, and the verdict given stands.
async fn report(state: std::sync::Arc<NodeState>, due: ReportDue) {
    let trip = due.manifest.manifest.trip_id;
    let checkpoint = match report_checkpoint(&due.checkpoint) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%trip, error = %e, "no check report: the checkpoint id does not fit one");
            return;
        }
    };
    let report = CheckReport::of_verdict(
        &due.manifest,
        &due.verdict,
        state.province,
        checkpoint,
        due.checked_at,
    );
    // A verify replica holds no key: the primary signs the report and queues it.
    let Some(key) = state.key.get() else {
        forward_to_primary(&state, due.origin, &report).await;
        return;
    };
    queue_report(&state, due.origin, trip, report.sign(&key), due.checked_at).await;
}

/// Queues a signed check report for the trip's origin and wakes the outbox; a failure is
/// logged (the check's verdict stands).
async fn queue_report(
    state: &NodeState,
    origin: Province,
    trip: crate::manifest::TripId,
    signed: Vec<u8>,
    checked_at: UnixTime,
) {
    match state
        .store
        .enqueue_trip_record(origin, TripRecordKind::CheckReport, signed, checked_at)
        .await
    {
        Ok(seq) => {
            state.wake_outbox();
            tracing::debug!(%trip, %origin, seq, "check report queued for the origin");
        }
        Err(e) => tracing::error!(
            %trip,
            %origin,
            error = %e,
            "a check report could not be queued for the trip's origin; the check's verdict stands"
        ),
    }
}

/// The checkpoint as a report names it: the recorded id when it fits a report's 64 bytes, else
/// its longest prefix that does (an id is 64 characters, of up to 4 bytes each).
fn report_checkpoint(recorded: &str) -> Result<Checkpoint, crate::manifest::RecordError> {
    let mut end = recorded.len().min(Checkpoint::MAX_BYTES);
    while !recorded.is_char_boundary(end) {
        end -= 1;
    }
    Checkpoint::new(&recorded[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_checkpoint_in_at_most_64_bytes_on_a_character_boundary() {
        assert_eq!(
            report_checkpoint("皖苏界G40收费站").unwrap().as_str(),
            "皖苏界G40收费站"
        );
        // 64 characters of 4 bytes: the first 16 fit.
        let long = "𠀀".repeat(crate::audit::MAX_CHECKPOINT_ID);
        assert_eq!(report_checkpoint(&long).unwrap().as_str(), "𠀀".repeat(16));
        // 3-byte characters: 21 of them (63 bytes).
        let han = "界".repeat(30);
        assert_eq!(report_checkpoint(&han).unwrap().as_str(), "界".repeat(21));
    }

    #[test]
    fn every_reason_has_its_wire_number() {
        for (i, r) in ManifestReason::ALL.into_iter().enumerate() {
            assert_eq!(reason_to_proto(r) as i32, i as i32 + 1, "{r:?}");
            assert_eq!(reason_to_proto(r) as i32, i32::from(r.number()));
        }
    }

    fn due(checkpoint: &str, seats: &[usize], at: u64) -> ReportDue {
        use hcmr_core::testkit;
        let text = crate::manifest::sign(&testkit::trip(5), &testkit::sc_key());
        let manifest = SignedManifest::decode(&text).unwrap();
        let verdict = ManifestVerdict::Stop(crate::manifest::ManifestStop {
            trip_id: Some(testkit::TRIP_ID),
            version: Some(1),
            reasons: seats
                .iter()
                .map(|&seat| crate::manifest::StopReason {
                    reason: ManifestReason::Revoked,
                    seat: Some(seat),
                    issuer: Some(testkit::prov(testkit::SC)),
                    detail: String::new(),
                })
                .collect(),
        });
        ReportDue {
            manifest,
            origin: testkit::prov(testkit::SC),
            verdict,
            checkpoint: checkpoint.to_string(),
            checked_at: UnixTime::from_secs(at),
        }
    }

    #[test]
    fn a_repeated_check_is_reported_once_per_window_and_a_new_verdict_at_once() {
        let recent = RecentReports::default();
        let t = 1_700_000_000;
        assert!(recent.first(&due("G50-gate", &[3], t)));
        // The same vehicle scanned again at the same gate, same verdict: not again.
        assert!(!recent.first(&due("G50-gate", &[3], t + 60)));
        assert!(!recent.first(&due("G50-gate", &[3], t + REPORT_REPEAT_SECS - 1)));
        // Another checkpoint, or another verdict (a second seat revoked since): reported.
        assert!(recent.first(&due("G40-gate", &[3], t + 60)));
        assert!(recent.first(&due("G50-gate", &[3, 5], t + 120)));
        // The window is from the last report: past it, the same check is reported again.
        assert!(recent.first(&due("G50-gate", &[3], t + REPORT_REPEAT_SECS)));
        assert!(!recent.first(&due("G50-gate", &[3], t + REPORT_REPEAT_SECS + 1)));
    }
}
