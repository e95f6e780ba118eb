//! Console pages for API keys: the keys apps and agents use (listed
//! without their secrets), issuing one — its secret shown on that page
//! only — and revoking one.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::session::{Flash, Session};
use super::{Chrome, PageError, done, render};
use crate::AppState;
use crate::api_keys::{self, NewApiKey};
use crate::stored;
use junction_store::ApiKey;

/// The API-key pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(issue))
        .route("/api-keys/{id}/delete", post(revoke))
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    page: Chrome,
    keys: Vec<ApiKey>,
    /// Every plugin, for the form.
    plugins: Vec<String>,
    /// A key just issued: shown here once.
    issued: Option<String>,
}

async fn page(
    state: &AppState,
    session: &Session,
    issued: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let store = state.store.clone();
    let keys = stored(async move { store.backend().api_keys().await }).await?;
    let store = state.store.clone();
    let plugins = stored(async move { store.plugins().await })
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut chrome = Chrome::new(session, "api-keys", "API keys");
    if let Some(error) = error {
        chrome = chrome.with_error(error);
    }
    Ok(render(&KeysPage {
        page: chrome,
        keys,
        plugins,
        issued,
    }))
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    page(&state, &session, None, None).await
}

/// The form's fields, as pairs: `plugin` repeats, once per box ticked.
async fn issue(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let end_user = field("end_user");
    let new = NewApiKey {
        name: field("name"),
        end_user: (!end_user.is_empty()).then_some(end_user),
        plugins: fields
            .iter()
            .filter(|(k, _)| k == "plugin")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    match api_keys::issue(&state, new).await {
        Ok(issued) => page(&state, &session, Some(issued.key), None).await,
        Err(err) => {
            let mut response = page(&state, &session, None, Some(err.into_message())).await?;
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(response)
        }
    }
}

async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let (store, key) = (state.store.clone(), id.clone());
    match stored(async move { store.backend().delete_api_key(&key).await }).await {
        Ok(true) => {
            tracing::info!(key = %id, "API key revoked");
            done(
                Flash::ok(format!("API key `{id}` is revoked.")),
                "/api-keys",
            )
        }
        Ok(false) => done(Flash::error(format!("No API key `{id}`.")), "/api-keys"),
        Err(err) => done(Flash::error(err.into_message()), "/api-keys"),
    }
}
