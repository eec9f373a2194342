//! `POST /api/verify-manifest`: a trip manifest (`HCMRT1:`) scanned at the checkpoint page, and
//! the vehicle's verdict as the page reads it (docs/transport.md section 5).
//!
//! The decision is the core's pure [`crate::manifest::check`] on the node's trust snapshot and
//! clock, as gRPC's VerifyManifest decides it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{error, json_body, no_store, text, ManifestBody};
use crate::agreement::ManifestRole;
use crate::display::{display_time, localize_times, DisplayOffset};
use crate::manifest::{
    province_of, ManifestReason, ManifestVerdict, SignedManifest, StopReason,
};
use crate::node::NodeState;
use crate::province::Province;
use crate::UnixTime;

/// What checkpoint staff read for a reason: Chinese, then English.
fn explain(r: ManifestReason) -> (&'static str, &'static str) {
    use ManifestReason::*;
    match r {
        Malformed => ("无法识别的行程清单", "not a readable trip manifest"),
        UnknownIssuer => ("始发省份不明", "unknown origin province"),
        UnknownKey => ("签名密钥未获认可", "signing key not recognized"),
        BadSignature => ("签名无效，疑似伪造", "invalid signature, possibly forged"),
        KeyWithdrawn => ("签名密钥已被撤回", "signing key withdrawn"),
        KeyRetired => ("签名密钥已退役", "signing key retired before the seal"),
        NoAgreement => ("两省未签互认协议", "no agreement with the origin province"),
        AgreementNotInForce => ("互认协议不在有效期内", "agreement not in force"),
        AgreementTerminated => ("互认协议已终止", "agreement terminated"),
        ManifestsNotAgreed => (
            "互认协议未约定接受行程清单",
            "the agreement does not accept these manifests",
        ),
        TrustStale => ("始发省数据同步过旧", "origin's trust data too old"),
        BeforeWindow => ("未到计划出发时间", "before the planned departure window"),
        AfterWindow => ("已过计划到达时间", "after the planned arrival window"),
        Superseded => ("已有更新版本的清单", "a newer version of this manifest was seen"),
        Revoked => ("登车后健康码被撤销", "revoked since boarding"),
    }
}

/// Whether a STOP for these reasons rests on an authentic manifest: the check halts at the
/// first of these, before or at the signature.
fn authentic(reasons: &[StopReason]) -> bool {
    !reasons.iter().any(|r| {
        matches!(
            r.reason,
            ManifestReason::Malformed
                | ManifestReason::UnknownIssuer
                | ManifestReason::UnknownKey
                | ManifestReason::BadSignature
        )
    })
}

fn province_json(p: Province) -> Value {
    json!({ "code": p.to_string(), "name_zh": p.name_zh(), "name_en": p.name_en() })
}

/// A GB/T 2260 place code with its province.
fn place_json(code: u32) -> Value {
    json!({
        "code": format!("{code:06}"),
        "province": province_of(code, "place").ok().map(province_json),
    })
}

/// One reason of a STOP, with its words for staff. A person's reason reads
/// `seat 7: revoked by 510000 Sichuan since boarding`.
fn reason_json(r: &StopReason, offset: DisplayOffset) -> Value {
    let (zh, en) = explain(r.reason);
    let (zh, en) = match (r.seat, r.issuer) {
        (Some(seat), Some(by)) => (
            format!("{seat}号座位：{}撤销，{zh}", by.name_zh()),
            format!("seat {seat}: revoked by {by} {} since boarding", by.name_en()),
        ),
        (Some(seat), None) => (format!("{seat}号座位：{zh}"), format!("seat {seat}: {en}")),
        _ => (zh.to_string(), en.to_string()),
    };
    json!({
        "reason": r.reason.as_str(),
        "seat": r.seat,
        "issuer": r.issuer.map(province_json),
        "explanation": format!("{zh} / {en}"),
        "detail": localize_times(&r.detail, offset),
    })
}

/// The vehicle's verdict as the page reads it.
///
/// `{"pass": bool, "verdict": "PASS" | "STOP", "explanation": "中文 / English",
///   "signature_verified": bool, "trip_id": hex | null, "version": n | null,
///   "passengers": n | null, "crew": n | null, "headcount": n | null, "vehicle": str | null,
///   "origin": place | null, "destination": place | null, "transit": [province],
///   "place": str | null, "departure": secs | null, "arrival": secs | null,
///   "seal_age_secs": secs | null, "not_rechecked": n | null, "role": "transit" | "arrival" |
///   null, "checked_at": secs, "reasons": [{"reason": "revoked", "seat": 7 | null, "issuer":
///   province | null, "explanation", "detail"}], "shown": {"checked_at", "departure",
///   "arrival"}}`, where a place is `{"code": "511304", "province": province | null}` and a
/// province `{"code", "name_zh", "name_en"}`. The trip's fields are given on PASS, and on a
/// STOP whose manifest is authentic (`signature_verified`); else null. Times are seconds since
/// the Unix epoch (UTC); `shown` has them for people in the node's `display_utc_offset`.
pub(crate) fn manifest_json(
    verdict: &ManifestVerdict,
    text: &str,
    now: UnixTime,
    offset: DisplayOffset,
) -> Value {
    let reasons = verdict.reasons();
    let verified = verdict.passed() || authentic(reasons);
    // The string decoded when the signature verified: the fields the verdict does not carry.
    let decoded = SignedManifest::decode(text).ok().filter(|_| verified);
    let m = decoded.as_ref().map(|d| &d.manifest);
    let headcount = m.map(|m| m.headcount());
    let (pass_age, not_rechecked, role) = match verdict {
        ManifestVerdict::Pass(p) => (Some(p.seal_age_secs), Some(p.not_rechecked), Some(p.role)),
        ManifestVerdict::Stop(_) => (m.map(|m| now.saturating_since(m.sealed_at)), None, None),
    };
    let explanation = match (verdict, reasons.first()) {
        (ManifestVerdict::Pass(_), _) => "放行，请清点人数 / PASS: count the people on board".into(),
        (_, Some(first)) => {
            let (zh, en) = explain(first.reason);
            format!("拦停：{zh} / STOP: {en}")
        }
        (_, None) => "拦停 / STOP".into(),
    };
    json!({
        "pass": verdict.passed(),
        "verdict": if verdict.passed() { "PASS" } else { "STOP" },
        "explanation": explanation,
        "signature_verified": verified,
        "trip_id": m.map(|m| m.trip_id.to_string()),
        "version": m.map(|m| m.version),
        "passengers": headcount.map(|h| h.0),
        "crew": headcount.map(|h| h.1),
        "headcount": headcount.map(|h| h.0 + h.1),
        "vehicle": m.map(|m| m.vehicle.as_str()),
        "origin": m.map(|m| place_json(m.origin)),
        "destination": m.map(|m| place_json(m.destination)),
        "transit": m.map(|m| m.transit.iter().map(|p| province_json(*p)).collect::<Vec<_>>()).unwrap_or_default(),
        "place": m.map(|m| m.place.as_str()),
        "departure": m.map(|m| m.departure.secs()),
        "arrival": m.map(|m| m.arrival.secs()),
        "seal_age_secs": pass_age,
        "not_rechecked": not_rechecked,
        "role": role.map(|r| match r {
            ManifestRole::Transit => "transit",
            ManifestRole::Arrival => "arrival",
        }),
        "checked_at": now.secs(),
        "reasons": reasons.iter().map(|r| reason_json(r, offset)).collect::<Vec<_>>(),
        "shown": {
            "checked_at": display_time(now, offset),
            "departure": m.map(|m| display_time(m.departure, offset)),
            "arrival": m.map(|m| display_time(m.arrival, offset)),
        },
    })
}

/// `POST /api/verify-manifest` (role verifier, through the guard like `/api/verify`).
pub(super) async fn verify_manifest(
    State(s): State<Arc<NodeState>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body: ManifestBody = match json_body(body) {
        Ok(b) => b,
        Err((status, message)) => return error(status, message),
    };
    let (manifest, checkpoint) = match (
        text(&body.manifest, "manifest"),
        text(&body.checkpoint_id, "checkpoint_id"),
    ) {
        (Ok(m), Ok(c)) => (m, c),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    if manifest.is_empty() {
        return error(StatusCode::BAD_REQUEST, "manifest: required".into());
    }
    if let Err(e) = crate::audit::check_checkpoint_id(checkpoint) {
        return error(StatusCode::BAD_REQUEST, format!("checkpoint_id: {e}"));
    }
    let now = s.clock.now();
    let trust = s.trust.load_full();
    let verdict = crate::manifest::check(manifest, &trust, now, None);
    no_store(Json(manifest_json(&verdict, manifest, now, s.display_offset)).into_response())
}
