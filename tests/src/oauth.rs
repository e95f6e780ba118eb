//! A fake OAuth 2.0 provider on 127.0.0.1: an authorize endpoint that
//! approves (or denies) at once by redirecting back with a code, a token
//! endpoint that checks the code, redirect URI, PKCE verifier and client
//! authentication the way a real one does, a MailChimp-style metadata
//! endpoint, and an API endpoint that accepts only the tokens it issued;
//! and the browser side of the flow ([`browser`], [`follow`], [`connect`]),
//! driven by hand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::serve;

/// What the provider has seen and issued.
#[derive(Default)]
pub struct ProviderState {
    /// code → (redirect_uri, code_challenge, scope)
    /// Code → (redirect URI, PKCE challenge, scope, when it was issued).
    codes: HashMap<String, (String, Option<String>, Option<String>, std::time::Instant)>,
    /// Access tokens it accepts.
    pub access_tokens: Vec<String>,
    /// Every authorize request's query.
    pub authorize_requests: Vec<HashMap<String, String>>,
    /// Every token request's form.
    pub token_requests: Vec<HashMap<String, String>>,
    /// When set, the authorize endpoint denies with this error.
    pub deny_with: Option<String>,
    /// When set, the authorize endpoint shows a consent page with Approve
    /// and Deny buttons (for browser tests) instead of approving at once.
    pub consent_page: bool,
    /// When set, the token endpoint answers this instead of a token.
    pub token_override: Option<(StatusCode, String, String)>,
    /// `expires_in` of the next tokens it issues (as sent: a string).
    pub expires_in: String,
    /// Refresh tokens that can be redeemed once.
    pub live_refresh_tokens: std::collections::HashSet<String>,
    /// Refresh tokens already redeemed: presenting one again revokes the grant.
    pub used_refresh_tokens: std::collections::HashSet<String>,
    /// How many refresh requests arrived.
    pub refresh_requests: u32,
    /// The next this many token requests answer 503.
    pub fail_next: u32,
    /// How long the token endpoint takes to answer (a slow provider widens
    /// the window in which a second refresher could start).
    pub token_delay: std::time::Duration,
    /// Revocation requests: (token_type_hint, token).
    pub revocations: Vec<(String, String)>,
    /// `api_domain` in token responses.
    pub api_domain: String,
    /// The `issuer` its discovery document claims, instead of its own origin.
    pub issuer_override: Option<String>,
    /// The status `/api/me` refuses unknown tokens with (401 by default).
    pub reject_with: u16,
    /// Whether tokens come with a refresh token (MailChimp and GitHub give none).
    pub issue_refresh_tokens: bool,
    /// `/api/me` refuses every token, even one just issued.
    pub refuse_every_token: bool,
    /// Whether a refresh hands out a new refresh token (and retires the
    /// old); Zoho keeps the old one and sends none.
    pub rotate_refresh_tokens: bool,
    /// What the metadata call says the data centre is (MailChimp's `dc`).
    pub dc: String,
    /// `scope` in token answers; MailChimp sends `null`.
    pub scope: Value,
    issued: u32,
}

impl ProviderState {
    /// Invalidates every access token (as if they expired at the provider).
    pub fn expire_access_tokens(&mut self) {
        self.access_tokens.clear();
    }
}

/// The fake provider.
pub struct FakeProvider {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<ProviderState>>,
}

pub const CLIENT_ID: &str = "junction-test-client";
pub const CLIENT_SECRET: &str = "client-secret-77f3";

impl FakeProvider {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ProviderState {
            expires_in: "3600".into(),
            api_domain: "https://api.example.test".into(),
            reject_with: 401,
            issue_refresh_tokens: true,
            rotate_refresh_tokens: true,
            dc: "us6".into(),
            scope: json!("read,write"),
            ..ProviderState::default()
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/metadata", get(metadata))
            .route("/api/me", get(api_me))
            .route("/revoke", post(revoke))
            .route("/.well-known/oauth-authorization-server", get(discovery))
            .with_state(state.clone());
        let addr = serve(app).await;
        FakeProvider { addr, state }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts the access tokens this provider issued and has not revoked,
    /// for mock APIs.
    pub fn token_check(&self) -> crate::server::TokenCheck {
        let state = self.state.clone();
        Arc::new(move |token| lock(&state).access_tokens.iter().any(|t| t == token))
    }
}

type Shared = Arc<Mutex<ProviderState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, ProviderState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// "Junction Test wants to access your account": the request's own
/// parameters go round again with `consent=approve` or `consent=deny`.
fn consent_page(query: &HashMap<String, String>) -> Response {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let hidden: String = query
        .iter()
        .map(|(key, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(key),
                escape(value)
            )
        })
        .collect();
    let scope = query.get("scope").map(|s| escape(s)).unwrap_or_default();
    let html = format!(
        "<!doctype html><html><head><title>Fake Provider: approve access</title></head><body>\
         <h1>Fake Provider</h1><p>An application wants to access your account with the scopes <code id=\"scopes\">{scope}</code>.</p>\
         <form method=\"get\" action=\"/authorize\">{hidden}\
         <button type=\"submit\" name=\"consent\" value=\"approve\" id=\"approve\">Approve</button> \
         <button type=\"submit\" name=\"consent\" value=\"deny\" id=\"deny\">Deny</button></form></body></html>"
    );
    axum::response::Html(html).into_response()
}

async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = lock(&state);
    let Some(redirect) = query.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "missing redirect_uri").into_response();
    };
    let answer = query.get("consent").cloned();
    if s.consent_page && answer.is_none() {
        return consent_page(&query);
    }
    let mut query = query;
    query.remove("consent");
    s.authorize_requests.push(query.clone());
    let oauth_state = query.get("state").cloned().unwrap_or_default();
    let denied = match answer.as_deref() {
        Some("deny") => Some("access_denied".to_owned()),
        _ => s.deny_with.clone(),
    };
    if let Some(error) = denied {
        let location = format!(
            "{redirect}?error={error}&error_description=The+user+said+no&state={oauth_state}"
        );
        return Redirect::to(&location).into_response();
    }
    s.issued += 1;
    let code = format!("code-{}", s.issued);
    s.codes.insert(
        code.clone(),
        (
            redirect.clone(),
            query.get("code_challenge").cloned(),
            query.get("scope").cloned(),
            std::time::Instant::now(),
        ),
    );
    Redirect::to(&format!("{redirect}?code={code}&state={oauth_state}")).into_response()
}

fn token_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({"error": error}))).into_response()
}

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let delay = lock(&state).token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = lock(&state);
    s.token_requests.push(form.clone());
    if s.fail_next > 0 {
        s.fail_next -= 1;
        if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
            s.refresh_requests += 1;
        }
        return token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    if let Some((status, content_type, body)) = s.token_override.clone() {
        return (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    }
    // Client authentication: HTTP Basic or the body, never neither.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let client_ok = match basic {
        Some(pair) => pair == format!("{CLIENT_ID}:{CLIENT_SECRET}"),
        None => {
            // A confidential client: the secret is required, as at every
            // provider Junction talks to.
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        }
    };
    if !client_ok {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            // Single use (removed now) and valid for ten minutes (RFC 6749).
            let Some((redirect, challenge, _scope, issued)) = s.codes.remove(&code) else {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if issued.elapsed() > std::time::Duration::from_secs(600) {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if form.get("redirect_uri") != Some(&redirect) {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if let Some(challenge) = challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            }
        }
        Some("client_credentials") => {}
        Some("refresh_token") if !s.rotate_refresh_tokens => {
            s.refresh_requests += 1;
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            if !s.live_refresh_tokens.contains(&presented) {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            // Zoho: a new access token, no new refresh token; the old one stays.
            s.issued += 1;
            let access = format!("access-token-{}", s.issued);
            s.access_tokens.push(access.clone());
            let answer = json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": s.expires_in,
                "scope": s.scope,
                "api_domain": s.api_domain,
            });
            return (StatusCode::OK, axum::Json(answer)).into_response();
        }
        Some("refresh_token") => {
            s.refresh_requests += 1;
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            if s.used_refresh_tokens.contains(&presented) {
                // Reuse detection (RFC 9700): the whole grant is revoked.
                s.access_tokens.clear();
                s.live_refresh_tokens.clear();
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if !s.live_refresh_tokens.remove(&presented) {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            s.used_refresh_tokens.insert(presented);
        }
        _ => return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    s.issued += 1;
    let access = format!("access-token-{}", s.issued);
    let refresh = format!("refresh-token-{}", s.issued);
    s.access_tokens.push(access.clone());
    let mut answer = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": s.expires_in,
        "scope": s.scope,
        "api_domain": s.api_domain,
    });
    if s.issue_refresh_tokens {
        s.live_refresh_tokens.insert(refresh.clone());
        answer["refresh_token"] = json!(refresh);
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

async fn discovery(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin = format!("http://{host}");
    let issuer = lock(&state)
        .issuer_override
        .clone()
        .unwrap_or_else(|| origin.clone());
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{origin}/authorize"),
        "token_endpoint": format!("{origin}/token"),
        "revocation_endpoint": format!("{origin}/revoke"),
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn revoke(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = lock(&state);
    let token = form.get("token").cloned().unwrap_or_default();
    let hint = form.get("token_type_hint").cloned().unwrap_or_default();
    s.access_tokens.retain(|t| *t != token);
    s.live_refresh_tokens.remove(&token);
    s.revocations.push((hint, token));
    StatusCode::OK.into_response()
}

fn bearer_ok(state: &Shared, headers: &HeaderMap, scheme: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(scheme))
        .map(str::to_owned);
    presented.is_some_and(|t| lock(state).access_tokens.contains(&t))
}

async fn metadata(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !bearer_ok(&state, &headers, "OAuth ") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let dc = lock(&state).dc.clone();
    axum::Json(json!({"dc": dc, "api_endpoint": format!("https://{dc}.api.mailchimp.com"), "accountname": "Demo"}))
        .into_response()
}

async fn api_me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if lock(&state).refuse_every_token || !bearer_ok(&state, &headers, "Bearer ") {
        let status =
            StatusCode::from_u16(lock(&state).reject_with).unwrap_or(StatusCode::UNAUTHORIZED);
        return (status, axum::Json(json!({"error": "invalid_token"}))).into_response();
    }
    axum::Json(json!({"id": "user-1", "name": "Ada"})).into_response()
}

/// The service definition for this provider, as the API takes it.
pub fn service_json(name: &str, provider: &FakeProvider, extra: Value) -> Value {
    let mut oauth = json!({
        "client_id": CLIENT_ID,
        "authorize_url": format!("{}/authorize", provider.origin()),
        "token_url": format!("{}/token", provider.origin()),
        "scopes": ["read", "write"],
        "scope_separator": ",",
        "authorize_params": {"access_type": "offline"},
        "capture": ["api_domain"],
        "metadata_url": format!("{}/metadata", provider.origin()),
        "metadata_auth": "OAuth {token}",
        "metadata_capture": ["dc"],
        "revoke_url": format!("{}/revoke", provider.origin()),
    });
    if let (Some(target), Some(extra)) = (oauth.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            target.insert(key.clone(), value.clone());
        }
    }
    json!({
        "name": name,
        "auth_type": "oauth2",
        "base_url": provider.origin(),
        "oauth": oauth,
        "client_secret": CLIENT_SECRET,
    })
}

/// A client that does not follow redirects, like a browser we drive by hand.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Opens `url`, expects a redirect, returns where it points.
pub async fn follow(url: &str) -> String {
    let response = browser().get(url).send().await.expect("provider answers");
    assert!(response.status().is_redirection(), "{}", response.status());
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned()
}

/// Connects `link` on `host` through the browser flow: the authorize URL,
/// the provider's redirect back, the callback page.
pub async fn connect(host: &crate::host::TestHost, link: &str) {
    let started = host
        .post(&format!("/v1/connections/{link}/authorize"), &json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let url = started.json["authorize_url"].as_str().expect("url");
    let callback = follow(url).await;
    let page = browser().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::OK, "{link}");
}
