//! The OAuth routes: `POST /v1/connections/{link}/authorize|refresh|revoke`
//! (admin) start a flow, refresh or revoke tokens; `GET /oauth/callback`
//! (public: the provider sends the browser here) finishes a flow and shows a
//! page that says what happened.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::connections::OwnerQuery;
use super::error::{ApiError, ErrorBody, flow_error};
use super::html::{connection_path, escape};
use junction_app::connections::{self as connections, ConnectionView};
use junction_oauth::{FlowError, Started};

/// Where to send the browser, or that the connection is already connected.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthorizeResponse {
    /// The provider's authorize URL (authorization-code grant).
    pub authorize_url: Option<String>,
    /// When the link stops working.
    pub expires_at_ms: Option<u64>,
    /// True when the connection was connected without a browser (client credentials).
    pub connected: bool,
}

/// Starts authorising an oauth2 connection.
///
/// For the authorization-code grant, returns the provider URL to open in a
/// browser (with `state` — single use, 10 minutes — and the PKCE challenge);
/// the provider sends the browser back to `/oauth/callback`. For client
/// credentials, fetches the token now.
#[utoipa::path(
    post,
    path = "/v1/connections/{link}/authorize",
    tag = "connections",
    params(("link" = String, Path, description = "The link name"), OwnerQuery),
    responses(
        (status = 200, body = AuthorizeResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The connection is not an oauth2 connection, or its service is gone or has no usable OAuth settings", body = ErrorBody),
        (status = 502, description = "The provider's token endpoint failed", body = ErrorBody)
    )
)]
pub(crate) async fn authorize_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
    owner: Result<Query<OwnerQuery>, QueryRejection>,
) -> Result<Json<AuthorizeResponse>, ApiError> {
    let key = OwnerQuery::read(owner)?.key(&link);
    let redirect_uri = format!("{}/oauth/callback", state.public_url.trim_end_matches('/'));
    let store = state.store.clone();
    let started = state
        .oauth
        .authorize(&store, &key, &redirect_uri, junction_oauth::Requester::Api)
        .await
        .map_err(flow_error)?;
    Ok(Json(match started {
        Started::Redirect { url, expires_at_ms } => AuthorizeResponse {
            authorize_url: Some(url),
            expires_at_ms: Some(expires_at_ms),
            connected: false,
        },
        Started::Connected => AuthorizeResponse {
            authorize_url: None,
            expires_at_ms: None,
            connected: true,
        },
    }))
}

/// Refreshes an oauth2 connection's token now.
#[utoipa::path(
    post,
    path = "/v1/connections/{link}/refresh",
    tag = "connections",
    params(("link" = String, Path, description = "The link name"), OwnerQuery),
    responses(
        (status = 200, body = ConnectionView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "There is nothing to refresh (no refresh token and no expiry; it stays connected), or the connection is not an oauth2 connection, or its service is gone or has no usable OAuth settings", body = ErrorBody),
        (status = 502, description = "The provider refused or failed; the connection records why", body = ErrorBody)
    )
)]
pub(crate) async fn refresh_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
    owner: Result<Query<OwnerQuery>, QueryRejection>,
) -> Result<Json<ConnectionView>, ApiError> {
    let key = OwnerQuery::read(owner)?.key(&link);
    state.tokens.refresh_now(&key).await.map_err(flow_error)?;
    Ok(Json(connections::get(&state.store, &key).await?))
}

/// Revokes an oauth2 connection's tokens at the provider (RFC 7009) and
/// forgets them; the connection stays, disconnected, and can be authorised again.
#[utoipa::path(
    post,
    path = "/v1/connections/{link}/revoke",
    tag = "connections",
    params(("link" = String, Path, description = "The link name"), OwnerQuery),
    responses(
        (status = 200, body = ConnectionView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The connection is not an oauth2 connection, or its service is gone or has no usable OAuth settings", body = ErrorBody)
    )
)]
pub(crate) async fn revoke_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
    owner: Result<Query<OwnerQuery>, QueryRejection>,
) -> Result<Json<ConnectionView>, ApiError> {
    let key = OwnerQuery::read(owner)?.key(&link);
    state.tokens.revoke(&key).await.map_err(flow_error)?;
    Ok(Json(connections::get(&state.store, &key).await?))
}

/// What the provider sends back.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's redirect back to the host.
pub(crate) async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let error = query
        .error
        .as_deref()
        .map(|code| (code, query.error_description.as_deref()));
    // A flow a connect link's page started ends on the hosted pages, and
    // only in the browser that holds the link.
    if let Some(oauth_state) = query.state.as_deref()
        && let Some(target) = junction_oauth::pending_target(&state.store, oauth_state).await
        && let Some(link) = target.connect_link
    {
        let answer = super::connect::Answer {
            oauth_state,
            code: query.code.as_deref(),
            error,
        };
        return super::connect::callback(&state, &link, answer, &headers).await;
    }
    let finished = state
        .tokens
        .callback(query.state.as_deref(), query.code.as_deref(), error)
        .await;
    // The console's pages are behind a SameSite=Strict cookie, which a
    // redirect chain started at the provider does not carry; a page of this
    // site that moves on by itself does.
    let back = match (&finished.link, finished.from_console) {
        (Some(key), true) => Some(connection_path(key)),
        _ => None,
    };
    match finished.result {
        Ok(()) => {
            let (shown, link) = match &finished.link {
                Some(key) => (key.to_string(), key.link.clone()),
                None => (String::new(), String::new()),
            };
            match back {
                Some(back) => page(
                    StatusCode::OK,
                    "Connected",
                    &format!("The connection {shown} is connected. Going back to the console…"),
                    Some((&back, true)),
                ),
                None => page(
                    StatusCode::OK,
                    "Connected",
                    &format!(
                        "The connection {shown} is connected. Plugins can now call the API with .connection(\"{link}\"). You can close this window."
                    ),
                    None,
                ),
            }
        }
        Err(err) => {
            let status = match &err {
                FlowError::Token(_) | FlowError::Metadata(_) => StatusCode::BAD_GATEWAY,
                FlowError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            page(
                status,
                "Not connected",
                &err.to_string(),
                back.as_deref().map(|b| (b, false)),
            )
        }
    }
}

/// The page the browser lands on; `back` links to the console's connection
/// page, and with `true` goes there by itself.
fn page(status: StatusCode, title: &str, message: &str, back: Option<(&str, bool)>) -> Response {
    let (refresh, link) = match back {
        Some((path, go)) => (
            if go {
                format!(
                    "<meta http-equiv=\"refresh\" content=\"0;url={}\">",
                    escape(path)
                )
            } else {
                String::new()
            },
            format!(
                "<p><a href=\"{}\">Back to the connection</a></p>",
                escape(path)
            ),
        ),
        None => (String::new(), String::new()),
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}<title>Junction — {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}</style>\
         </head><body><h1>{title}</h1><p>{}</p>{link}</body></html>",
        escape(message)
    );
    (status, Html(body)).into_response()
}
