//! `POST /api/verify-manifest`: a trip manifest (`HCMRT1:`) scanned at the checkpoint page, and
//! the vehicle's verdict as the page reads it (docs/transport.md section 5).
//!
//! The check is the node's manifest-check workflow ([`crate::node::manifest_check`]), the one
//! gRPC's VerifyManifest calls: the same decision, the same remembered versions, the same audit
//! record (`via` `http`) and the same report to the trip's origin.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{api_error, error, json_body, no_store, text, ManifestBody};
use crate::display::{display_time, localize_times, DisplayOffset};
use crate::manifest::{province_of, ManifestReason};
use crate::node::manifest_check::{reason_to_proto, spawn_report};
use crate::node::NodeState;
use crate::proto;
use crate::province::Province;
use crate::UnixTime;

/// A reason of the answer back in the core's terms (for its words), `None` for one this build
/// does not know.
fn core_reason(wire: i32) -> Option<ManifestReason> {
    ManifestReason::ALL
        .into_iter()
        .find(|r| reason_to_proto(*r) as i32 == wire)
}

/// "中文 / English" -> ("中文", "English").
fn split(text: &str) -> (&str, &str) {
    text.split_once(" / ").unwrap_or((text, ""))
}

fn province_json(p: Province) -> Value {
    json!({ "code": p.to_string(), "name_zh": p.name_zh(), "name_en": p.name_en() })
}

/// A GB/T 2260 place code (six digits, as the answer writes it) with its province.
fn place_json(code: &str) -> Value {
    let province = code
        .parse::<u32>()
        .ok()
        .and_then(|c| province_of(c, "place").ok());
    json!({ "code": code, "province": province.map(province_json) })
}

/// One reason of a STOP, with its words for staff. A person's reason reads
/// `seat 7: revoked by 510000 Sichuan since boarding`.
fn reason_json(r: &proto::ManifestStopReason, offset: DisplayOffset) -> Value {
    let reason = core_reason(r.reason);
    let (zh, en) = split(reason.map_or("停车检查 / STOP", ManifestReason::explain));
    let issuer = r.issuer_province.parse::<Province>().ok();
    let (zh, en) = match (r.seat, issuer) {
        (0, _) => (zh.to_string(), en.to_string()),
        (seat, Some(by)) if reason == Some(ManifestReason::Revoked) => (
            format!("{seat}号座位：健康码登车后已被{}撤销", by.name_zh()),
            format!(
                "seat {seat}: revoked by {by} {} since boarding",
                by.name_en()
            ),
        ),
        (seat, _) => (format!("{seat}号座位：{zh}"), format!("seat {seat}: {en}")),
    };
    json!({
        "reason": reason.map_or("unspecified", ManifestReason::as_str),
        "seat": (r.seat > 0).then_some(r.seat),
        "issuer": issuer.map(province_json),
        "explanation": format!("{zh} / {en}"),
        "detail": localize_times(&r.detail, offset),
    })
}

/// The vehicle's verdict as the page reads it, from the workflow's answer `r`.
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
/// province `{"code", "name_zh", "name_en"}`. The trip's fields are given only when the
/// manifest is authentic (`signature_verified`): what a forged one claims is not shown;
/// `not_rechecked` only on PASS. Times are seconds since the Unix epoch (UTC); `shown` has them
/// for people in the node's `display_utc_offset`.
pub(crate) fn manifest_json(r: &proto::VerifyManifestResponse, offset: DisplayOffset) -> Value {
    let trip = r.signature_verified && !r.trip_id.is_empty();
    let when = |v: Value| if trip { v } else { Value::Null };
    let shown = |t: u64| when(json!(display_time(UnixTime::from_secs(t), offset)));
    let transit: Vec<Value> = if trip {
        r.transit
            .iter()
            .filter_map(|p| p.parse::<Province>().ok())
            .map(province_json)
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "pass": r.pass,
        "verdict": if r.pass { "PASS" } else { "STOP" },
        "explanation": r.explanation,
        "signature_verified": r.signature_verified,
        "trip_id": when(json!(r.trip_id)),
        "version": when(json!(r.version)),
        "passengers": when(json!(r.passengers)),
        "crew": when(json!(r.crew)),
        "headcount": when(json!(r.passengers + r.crew)),
        "vehicle": when(json!(r.vehicle)),
        "origin": when(place_json(&r.origin)),
        "destination": when(place_json(&r.destination)),
        "transit": transit,
        "place": when(json!(r.place)),
        "departure": when(json!(r.departure)),
        "arrival": when(json!(r.arrival)),
        "seal_age_secs": when(json!(r.seal_age_secs)),
        "not_rechecked": if r.pass { json!(r.not_rechecked) } else { Value::Null },
        "role": when(json!(r.role)),
        "checked_at": r.checked_at,
        "reasons": r.reasons.iter().map(|x| reason_json(x, offset)).collect::<Vec<_>>(),
        "shown": {
            "checked_at": display_time(UnixTime::from_secs(r.checked_at), offset),
            "departure": shown(r.departure),
            "arrival": shown(r.arrival),
        },
    })
}

/// `POST /api/verify-manifest` (role verifier, through the guard like `/api/verify`): the
/// manifest-check workflow, audited `via` `http`; a report due to the trip's origin is sent off
/// the answer's path, as gRPC's VerifyManifest does.
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
    let checked = match s.manifest_check().check(manifest, checkpoint, "http") {
        Ok(c) => c,
        Err(e) => return api_error(e),
    };
    if let Some(due) = checked.report {
        spawn_report(&s, due);
    }
    no_store(Json(manifest_json(&checked.response, s.display_offset)).into_response())
}
