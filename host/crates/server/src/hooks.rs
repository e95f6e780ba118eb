//! Incoming webhooks: `POST /hooks/{plugin}/{hook}` authenticated by an
//! HMAC-SHA256 signature over `<timestamp>.<body>` with a 5-minute window
//! (a signature is accepted once), or `POST /hooks/{plugin}/{hook}/{secret}`
//! for senders that cannot sign (MailChimp). The body (JSON, form or text)
//! and selected headers become a `webhook.<hook>` event for that plugin.
//! `GET` on the same paths answers 200, which is how some providers check a
//! webhook URL before they use it. `PUT /v1/hooks/{plugin}/{hook}/secret`
//! sets the secret.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ErrorBody};
use super::events::AcceptedEvent;
use super::{AppState, stored};
use junction_events::Incoming;
use junction_store::{Secret, now_ms};

/// The signature header: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Junction-Signature";
/// The timestamp header: Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Junction-Timestamp";
/// How far a signed request's timestamp may be from now.
pub const REPLAY_WINDOW_S: u64 = 300;
/// Largest webhook body.
pub const MAX_HOOK_BODY: usize = junction_events::MAX_PAYLOAD_BYTES;
/// Headers copied into the event besides `x-*` ones.
const KEPT_HEADERS: [&str; 3] = ["content-type", "user-agent", "x-request-id"];

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

async fn secret_of(state: &AppState, plugin: &str, hook: &str) -> Result<Secret, ApiError> {
    if !state.events.index().has_hook(plugin, hook) {
        return Err(ApiError::not_found(format!(
            "no webhook `{hook}` on plugin `{plugin}`"
        )));
    }
    let store = state.store.clone();
    let (p, h) = (plugin.to_owned(), hook.to_owned());
    let secret = stored(async move { store.hook_secret(&p, &h).await }).await?;
    let secret = secret.ok_or_else(|| {
        unauthorized(format!(
            "webhook `{hook}` of plugin `{plugin}` has no secret yet; set one with `junction hook secret {plugin} {hook}`"
        ))
    })?;
    Ok(secret)
}

/// Checks the signature headers; returns the signature (hex) for replay detection.
fn verify_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let timestamp = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            unauthorized(format!(
                "sign the request: send `{TIMESTAMP_HEADER}` and `{SIGNATURE_HEADER}`, or call the path with the secret"
            ))
        })?;
    let seconds: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| unauthorized(format!("`{TIMESTAMP_HEADER}` must be Unix seconds")))?;
    let now = now_ms() / 1000;
    if now.abs_diff(seconds) > REPLAY_WINDOW_S {
        return Err(unauthorized(format!(
            "`{TIMESTAMP_HEADER}` is more than {} minutes from the server's time",
            REPLAY_WINDOW_S / 60
        )));
    }
    let given = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or_else(|| unauthorized(format!("`{SIGNATURE_HEADER}` must be `sha256=<hex>`")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| ApiError::internal("the webhook secret cannot key an HMAC"))?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| unauthorized("the signature does not match the body and timestamp"))?;
    Ok(hex::encode(given))
}

/// The event payload: the body as JSON, form fields or text, plus headers.
fn payload(hook: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let parsed = if body.is_empty() {
        Value::Null
    } else if content_type.contains("json") {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid(format!("the webhook body is not valid JSON: {e}")))?
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut fields = Map::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            fields.insert(key.into_owned(), Value::String(value.into_owned()));
        }
        Value::Object(fields)
    } else {
        let text = std::str::from_utf8(body).map_err(|_| {
            ApiError::invalid("the webhook body must be JSON, form-encoded or UTF-8 text")
        })?;
        Value::String(text.to_owned())
    };
    let mut kept = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let wanted = (KEPT_HEADERS.contains(&name) || name.starts_with("x-"))
            && !name.eq_ignore_ascii_case(SIGNATURE_HEADER);
        if wanted && let Ok(text) = value.to_str() {
            kept.insert(name.to_owned(), Value::String(text.to_owned()));
        }
    }
    Ok(json!({ "hook": hook, "body": parsed, "headers": kept }))
}

async fn accept(
    state: &AppState,
    plugin: &str,
    hook: &str,
    headers: &HeaderMap,
    body: &[u8],
    idempotency_key: Option<String>,
    end_user: Option<String>,
) -> Result<(StatusCode, Json<AcceptedEvent>), ApiError> {
    let payload = payload(hook, headers, body)?;
    let targets = state.events.index().hook_targets(plugin, hook, &payload);
    let replay_guard = idempotency_key.is_some();
    let accepted = state
        .events
        .ingest(Incoming {
            kind: format!("webhook.{hook}"),
            payload: payload.to_string(),
            source: "webhook",
            idempotency_key,
            occurred_at_ms: now_ms(),
            targets: Some(targets),
            schedule_mark: None,
            end_user,
        })
        .await?;
    if accepted.duplicate && replay_guard {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "replayed",
            format!(
                "this request was already accepted as event `{}`; nothing was queued",
                accepted.id
            ),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(accepted.into())))
}

fn body_or_413(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "the webhook body is larger than {MAX_HOOK_BODY} bytes"
            ))
        } else {
            ApiError::invalid(e.body_text())
        }
    })
}

fn caller_key(plugin: &str, hook: &str, headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(|v| format!("hook:{plugin}/{hook}:key:{v}"))
}

/// `?end_user=` on a webhook URL: the end user its events run for (the
/// URL registered at the provider for that end user's account). The
/// hook's own authentication covers it: a signed call's signature is its
/// replay key, so a captured call cannot come again naming someone else.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct HookQuery {
    end_user: Option<String>,
}

fn end_user_of(
    query: Result<Query<HookQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Option<String>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    super::connections::end_user_filter(query.end_user)
}

/// A signed webhook call.
pub(crate) async fn signed_hook(
    State(state): State<AppState>,
    Path((plugin, hook)): Path<(String, String)>,
    query: Result<Query<HookQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<AcceptedEvent>), ApiError> {
    let end_user = end_user_of(query)?;
    let secret = secret_of(&state, &plugin, &hook).await?;
    let body = body_or_413(body)?;
    let signature = verify_signature(secret.expose().as_bytes(), &headers, &body)?;
    // The signature is the replay guard: within the window it can be sent
    // again, and the durable idempotency index refuses it.
    let key = format!("hook:{plugin}/{hook}:sig:{signature}");
    accept(&state, &plugin, &hook, &headers, &body, Some(key), end_user).await
}

/// A webhook call with the secret as the last path segment.
pub(crate) async fn secret_path_hook(
    State(state): State<AppState>,
    Path((plugin, hook, given)): Path<(String, String, String)>,
    query: Result<Query<HookQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<AcceptedEvent>), ApiError> {
    let end_user = end_user_of(query)?;
    let secret = secret_of(&state, &plugin, &hook).await?;
    if !bool::from(secret.expose().as_bytes().ct_eq(given.as_bytes())) {
        return Err(unauthorized("the secret in the path is not this webhook's"));
    }
    let body = body_or_413(body)?;
    let key = caller_key(&plugin, &hook, &headers);
    accept(&state, &plugin, &hook, &headers, &body, key, end_user).await
}

/// `GET` on a webhook path: 200 when it exists (providers check URLs this way).
pub(crate) async fn check_hook(
    State(state): State<AppState>,
    Path((plugin, hook)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !state.events.index().has_hook(&plugin, &hook) {
        return Err(ApiError::not_found(format!(
            "no webhook `{hook}` on plugin `{plugin}`"
        )));
    }
    Ok(Json(json!({ "ok": true })))
}

/// `GET` on a webhook path with its secret: 200 when the secret is right.
pub(crate) async fn check_secret_hook(
    State(state): State<AppState>,
    Path((plugin, hook, given)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let secret = secret_of(&state, &plugin, &hook).await?;
    if !bool::from(secret.expose().as_bytes().ct_eq(given.as_bytes())) {
        return Err(unauthorized("the secret in the path is not this webhook's"));
    }
    Ok(Json(json!({ "ok": true })))
}

/// A webhook secret to set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookSecretRequest {
    /// 16 to 256 visible ASCII characters; `junction hook secret` makes a random one.
    pub secret: String,
}

/// Where and how a webhook is called (never the secret itself).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookInfo {
    /// The path to call with a signature.
    pub url_path: String,
    /// The path for senders that cannot sign: the secret takes the last segment.
    pub url_path_with_secret: String,
    /// How to sign.
    pub signing: String,
}

/// Sets a plugin's webhook secret (write-only; the old one stops working).
/// The secret is sealed at rest and never returned.
#[utoipa::path(
    put,
    path = "/v1/hooks/{plugin}/{hook}/secret",
    tag = "events",
    params(
        ("plugin" = String, Path, description = "The plugin"),
        ("hook" = String, Path, description = "Its webhook trigger's name")
    ),
    request_body(content = HookSecretRequest, content_type = "application/json"),
    responses(
        (status = 200, body = HookInfo),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn set_hook_secret(
    State(state): State<AppState>,
    Path((plugin, hook)): Path<(String, String)>,
    ApiJson(request): ApiJson<HookSecretRequest>,
) -> Result<Json<HookInfo>, ApiError> {
    if !state.events.index().has_hook(&plugin, &hook) {
        return Err(ApiError::not_found(format!(
            "plugin `{plugin}` has no webhook trigger named `{hook}`"
        )));
    }
    let secret = request.secret;
    let ok = (16..=256).contains(&secret.len())
        && secret.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if !ok {
        return Err(ApiError::invalid(
            "the secret must be 16 to 256 visible ASCII characters without `/`",
        ));
    }
    let store = state.store.clone();
    let sealed = Secret::new(secret);
    let (p, h) = (plugin.clone(), hook.clone());
    stored(async move { store.set_hook_secret(&p, &h, &sealed).await }).await?;
    tracing::info!(plugin = %plugin, hook = %hook, "webhook secret set");
    Ok(Json(HookInfo {
        url_path_with_secret: format!("/hooks/{plugin}/{hook}/<secret>"),
        url_path: format!("/hooks/{plugin}/{hook}"),
        signing: format!(
            "send `{}: <unix seconds>` and `{}: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\" keyed with the secret>`; a timestamp more than 5 minutes away is refused, and so is a signature used before",
            TIMESTAMP_HEADER, SIGNATURE_HEADER
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A signature made with the secret over the timestamp and body is
        /// accepted; any other body, or another secret, is refused.
        #[test]
        fn signatures_hold_for_exactly_their_body(secret in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64), body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256), flip in proptest::prelude::any::<proptest::sample::Index>()) {
            let timestamp = (junction_store::now_ms() / 1000).to_string();
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(&body);
            let signature = hex::encode(mac.finalize().into_bytes());
            let mut headers = HeaderMap::new();
            headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
            headers.insert(SIGNATURE_HEADER, format!("sha256={signature}").parse().unwrap());
            proptest::prop_assert!(verify_signature(&secret, &headers, &body).is_ok());
            let mut other_secret = secret.clone();
            other_secret.push(1);
            proptest::prop_assert!(verify_signature(&other_secret, &headers, &body).is_err());
            if !body.is_empty() {
                let mut tampered = body.clone();
                let at = flip.index(tampered.len());
                tampered[at] ^= 0x01;
                proptest::prop_assert!(verify_signature(&secret, &headers, &tampered).is_err());
            }
        }
    }
}
