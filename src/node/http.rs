//! The checkpoint page: a small HTTP server (axum) that serves the page for checkpoint staff and
//! its JSON API. The API calls the same verification as gRPC's VerifyHealthCode, and for a trip
//! manifest the same check as VerifyManifest (each recording the same audit entry); answers carry `Cache-Control: no-store`, so nothing personal stays in
//! the browser's cache.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page (`page/index.html`), `GET /app.js`, `GET /vehicle.js` (a vehicle's verdict), `GET /app.css` its scripts and style |
//! | `GET /vendor/jsqr/jsQR.js` | the QR decoder the camera uses without `BarcodeDetector` (jsQR 1.4.0, vendored: `page/vendor/jsqr/VERSION.md`), `GET /vendor/jsqr/LICENSE` its licence |
//! | `GET /api/info` | `{"province": "510000", "name_zh": "四川省", "name_en": "Sichuan"}` |
//! | `POST /api/verify` | `{"code": "HCMR1:...", "checkpoint_id": "gate-3"}` -> the verdict (see [`verdict_json`]) |
//! | `POST /api/verify-manifest` | `{"manifest": "HCMRT1:...", "checkpoint_id": "gate-3"}` -> the vehicle's verdict (see [`manifest::manifest_json`]) |
//! | `POST /api/identity-match` | `{"code", "document_type": "id-card", "document_number"}` -> `{"matches": bool, "checked_by": "510000"}` |
//! | `POST /api/login` | `{}` -> `{"caller": name}`: checks the token before the page uses it |
//!
//! The four `POST` routes need `Authorization: Bearer <token of a verifier>` (401 without or
//! with an unknown token, 403 for another role) and `Content-Type: application/json`; a request
//! whose `Origin` is not this page's, or that the browser marks as cross-site, gets 403 (see
//! [`guard`]).
//!
//! Errors are `{"error": "field: what is wrong"}` with status 400 (bad input), 409 (the code is not
//! authentic), 503 (the issuer's node is unreachable) or 500.

use crate::UnixTime;
use std::sync::Arc;

mod manifest;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::NodeState;
use crate::display::{display_time, DisplayOffset};
use crate::identity::DocumentType;
use crate::proto;
use crate::status::HealthStatus;
use crate::verify::Verdict;

/// Largest request body accepted, in bytes (a code is at most 4096 characters).
const MAX_BODY: usize = 16 * 1024;

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");
const VEHICLE_JS: &str = include_str!("page/vehicle.js");
/// jsQR (npm `jsqr` 1.4.0, Apache-2.0), unchanged: the camera's decoder where the browser has no
/// `BarcodeDetector`. Served by the node, so the page needs no network beyond it.
const JSQR_JS: &str = include_str!("page/vendor/jsqr/jsQR.js");
const JSQR_LICENSE: &str = include_str!("page/vendor/jsqr/LICENSE");

/// The remote address of a page request, and its connection's calls (TLS listeners, for the
/// idle timeout).
#[derive(Debug, Clone)]
pub(crate) struct Remote(
    pub(crate) std::net::SocketAddr,
    pub(crate) Option<Arc<super::listener::Activity>>,
);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Remote(*stream.remote_addr(), None)
    }
}

/// Counts each request as a call on its connection while it runs (for the idle timeout), and
/// ends it after `limits.request_timeout_secs` (its body read included) with 503: a request
/// whose body never finishes holds its connection no longer than that.
pub(crate) async fn count_calls(
    State(timeout): State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let busy = req
        .extensions()
        .get::<axum::extract::ConnectInfo<Remote>>()
        .and_then(|c| c.0 .1.clone())
        .map(super::listener::CallGuard::new);
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request did not finish within limits.request_timeout_secs".into(),
        ),
    };
    drop(busy);
    response
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, super::listener::TlsListener>,
    > for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, super::listener::TlsListener>) -> Self {
        Remote(*stream.remote_addr(), Some(stream.io().activity()))
    }
}

/// Serves the page on `listener` until `stop` turns true.
pub(crate) async fn serve<L>(
    state: Arc<NodeState>,
    listener: L,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    Remote: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    axum::serve(
        listener,
        router(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                std::time::Duration::from_secs(state.guards.limits.request_timeout_secs),
                count_calls,
            ))
            .into_make_service_with_connect_info::<Remote>(),
    )
    .with_graceful_shutdown(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    })
    .await
}

/// The routes.
pub(crate) fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/vehicle.js",
            get(|| async { page(VEHICLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/vendor/jsqr/jsQR.js",
            get(|| async { page(JSQR_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/vendor/jsqr/LICENSE",
            get(|| async { page(JSQR_LICENSE, "text/plain; charset=utf-8") }),
        )
        .route("/api/info", get(info))
        .merge(
            Router::new()
                .route("/api/login", post(login))
                .route("/api/verify", post(verify))
                .route("/api/verify-manifest", post(manifest::verify_manifest))
                .route("/api/identity-match", post(identity_match))
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard)),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Every API call that acts: refuses cross-site requests (CSRF) and callers without a verifier
/// token.
///
/// The page sends its token in the `Authorization` header, which a browser never attaches by
/// itself, so another site cannot make a logged-in browser call the API; on top of that a
/// request must be `application/json` (which a cross-site form cannot send without a CORS
/// preflight, and no CORS is allowed), and an `Origin` or `Sec-Fetch-Site` header that shows
/// another site is refused with 403.
async fn guard(
    State(s): State<Arc<NodeState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_string();
    let headers = req.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    // HTTP/2 carries the host in the request URI's authority, not in a Host header.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let foreign_origin = match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host,
    ) {
        (Some(origin), Some(host)) => {
            let o = origin
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            o != host
        }
        (Some(_), None) => true,
        _ => false,
    };
    if cross_site || foreign_origin {
        return error(
            StatusCode::FORBIDDEN,
            "cross-site request refused: use the page this node serves".into(),
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/json"));
    if !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type: must be application/json".into(),
        );
    }
    let remote = req
        .extensions()
        .get::<axum::extract::ConnectInfo<Remote>>()
        .map(|c| c.0 .0);
    let token = super::auth::bearer(headers.get(header::AUTHORIZATION));
    match s.authenticate_caller(token, crate::callers::Role::Verifier, "the checkpoint page") {
        Ok(caller) => {
            let mut req = req;
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(denied) => {
            s.record_denial(&path, &denied, remote);
            let status = match denied.status.code() {
                tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::FORBIDDEN,
            };
            let mut r = error(status, denied.status.message().to_string());
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            r
        }
    }
}

/// `POST /api/login` with the token in `Authorization`: `{"caller": name}` when it is a
/// verifier's (the guard has checked it).
async fn login(axum::Extension(caller): axum::Extension<Arc<crate::callers::Caller>>) -> Response {
    no_store(Json(json!({ "caller": caller.name })).into_response())
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    no_store(r)
}

fn error(status: StatusCode, message: String) -> Response {
    no_store((status, Json(json!({ "error": message }))).into_response())
}

fn api_error(e: ApiError) -> Response {
    let status = match e.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::FailedPrecondition | tonic::Code::NotFound => StatusCode::CONFLICT,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// A field of a request body that must be a string when present. Any JSON is taken here, so
/// that a wrong type is answered with the field's name ("code: must be a string"), as the page
/// and its tests expect, rather than with serde's position in the text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Str(String),
    Other(serde::de::IgnoredAny),
}

/// The string in `field` ("" when absent or null); the error names the field.
fn text<'a>(value: &'a Option<Text>, field: &'static str) -> Result<&'a str, String> {
    match value {
        Some(Text::Str(s)) => Ok(s),
        None => Ok(""),
        Some(Text::Other(_)) => Err(format!("{field}: must be a string")),
    }
}

/// The body of `POST /api/verify`.
#[derive(Deserialize)]
struct VerifyBody {
    #[serde(default)]
    code: Option<Text>,
    #[serde(default)]
    checkpoint_id: Option<Text>,
}

/// The body of `POST /api/verify-manifest`.
#[derive(Deserialize)]
struct ManifestBody {
    #[serde(default)]
    manifest: Option<Text>,
    #[serde(default)]
    checkpoint_id: Option<Text>,
}

/// The body of `POST /api/identity-match`.
#[derive(Deserialize)]
struct MatchBody {
    #[serde(default)]
    code: Option<Text>,
    #[serde(default)]
    document_type: Option<Text>,
    #[serde(default)]
    document_number: Option<Text>,
}

async fn info(State(s): State<Arc<NodeState>>) -> Response {
    no_store(
        Json(json!({
            "province": s.province.to_string(),
            "name_zh": s.province.name_zh(),
            "name_en": s.province.name_en(),
        }))
        .into_response(),
    )
}

/// The verdict as the page reads it.
///
/// `{"recognized": bool, "verdict": "RECOGNIZED" | "NOT RECOGNIZED", "reason": "ok" | ...,
///   "explanation": "中文 / English", "detail": str, "issued_status": "green" | ... | null,
///   "local_status": "green" | ... | null, "issuer": {"code", "name_zh", "name_en"} | null,
///   "subject": {"masked_name", "masked_document_number", "document_type"} | null,
///   "exp": secs | null, "status_valid_until": secs | null, "verified_at": secs,
///   "issuer_state_age_secs": secs | null, "shown": {"verified_at": str,
///   "status_valid_until": str | null, "exp": str | null, "detail": str}}`; times are seconds since the Unix
/// epoch (UTC); `shown` has the same times for people, in the node's `display_utc_offset`
/// ([`crate::display::display_time`], e.g. `2026-12-04T11:43:00+08:00`).
pub(crate) fn verdict_json(v: &Verdict, now: UnixTime, offset: DisplayOffset) -> Value {
    let c = v.claims.as_ref();
    let shown = |t: UnixTime| display_time(t, offset);
    json!({
        "recognized": v.recognized(),
        "verdict": if v.recognized() { "RECOGNIZED" } else { "NOT RECOGNIZED" },
        "reason": v.reason.as_str(),
        "explanation": v.reason.explain(),
        "detail": v.detail,
        "issued_status": v.issued_status().map(HealthStatus::as_str),
        "local_status": v.local_status.map(HealthStatus::as_str),
        "issuer": v.issuer.map(|p| json!({
            "code": p.to_string(), "name_zh": p.name_zh(), "name_en": p.name_en(),
        })),
        "subject": c.map(|c| json!({
            "masked_name": c.subject.masked_name,
            "masked_document_number": c.subject.masked_document_number,
            "document_type": c.subject.document_type.label(),
        })),
        "exp": c.map(|c| c.exp.secs()),
        "status_valid_until": c.map(|c| c.status_valid_until.secs()),
        "verified_at": now.secs(),
        "issuer_state_age_secs": v.issuer_synced_at.map(|t| now.saturating_since(t)),
        "shown": {
            "verified_at": shown(now),
            "status_valid_until": c.map(|c| shown(c.status_valid_until)),
            "exp": c.map(|c| shown(c.exp)),
            "detail": crate::display::localize_times(&v.detail, offset),
        },
    })
}

/// A request body: a JSON object read into `T`; every failure is `{"error": ...}` like the rest
/// of the API. Not `axum::Json`: its rejections carry axum's own wording and statuses, and a
/// struct would also take a JSON array; the page and its tests expect these messages.
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, (StatusCode, String)> {
    let bytes = body.map_err(|e| (e.status(), format!("body: {}", e.body_text())))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => {
            serde_json::from_value(v).map_err(|e| (StatusCode::BAD_REQUEST, format!("body: {e}")))
        }
        Ok(_) => Err((
            StatusCode::BAD_REQUEST,
            "body: must be a JSON object".into(),
        )),
        Err(e) => Err((StatusCode::BAD_REQUEST, format!("body: not JSON: {e}"))),
    }
}

async fn verify(
    State(s): State<Arc<NodeState>>,
    axum::Extension(caller): axum::Extension<Arc<crate::callers::Caller>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body: VerifyBody = match json_body(body) {
        Ok(b) => b,
        Err((status, message)) => return error(status, message),
    };
    if text(&body.code, "code").is_ok_and(str::is_empty) {
        return error(StatusCode::BAD_REQUEST, "code: required".into());
    }
    let (code, checkpoint) = match (
        text(&body.code, "code"),
        text(&body.checkpoint_id, "checkpoint_id"),
    ) {
        (Ok(c), Ok(p)) => (c, p),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    match s
        .verification()
        .verify_and_audit(
            &format!("caller {}", caller.name),
            vec![code.to_string()],
            checkpoint,
            "http",
        )
        .await
    {
        Ok((verdicts, now)) => match verdicts.first() {
            Some(verdict) => {
                no_store(Json(verdict_json(verdict, now, s.display_offset)).into_response())
            }
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "no verdict".into()),
        },
        Err(e @ ApiError::InvalidArgument { .. }) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Document types as the page names them.
fn document_type(name: &str) -> Option<DocumentType> {
    Some(match name {
        "id-card" | "" => DocumentType::ResidentIdentityCard,
        "passport" => DocumentType::Passport,
        "hk-macao-permit" => DocumentType::HkMacaoTravelPermit,
        "taiwan-permit" => DocumentType::TaiwanTravelPermit,
        "foreigner-residence" => DocumentType::ForeignerPermanentResidence,
        "other" => DocumentType::Other,
        _ => return None,
    })
}

async fn identity_match(
    State(s): State<Arc<NodeState>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body: MatchBody = match json_body(body) {
        Ok(b) => b,
        Err((status, message)) => return error(status, message),
    };
    let fields = (
        text(&body.code, "code"),
        text(&body.document_type, "document_type"),
        text(&body.document_number, "document_number"),
    );
    let (code, doc_type, number) = match fields {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return error(StatusCode::BAD_REQUEST, e)
        }
    };
    let Some(doc_type) = document_type(doc_type) else {
        return error(
            StatusCode::BAD_REQUEST,
            "document_type: use id-card, passport, hk-macao-permit, taiwan-permit, foreigner-residence or other".into(),
        );
    };
    let r = proto::MatchIdentityRequest {
        code: code.to_string(),
        document_type: i32::from(doc_type.to_u8()),
        document_number: number.to_string(),
    };
    match s.identity_match().match_identity(r).await {
        Ok(m) => no_store(
            Json(json!({ "matches": m.matches, "checked_by": m.checked_by })).into_response(),
        ),
        Err(e) => api_error(e),
    }
}
