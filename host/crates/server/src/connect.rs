//! Connect links and the hosted connect page. The app (with the admin
//! token) asks `POST /v1/connect-links` for a link for one end user and
//! service; the link's URL carries the link's id and expiry sealed with the
//! store's key, so a forged or expired URL is refused before the store is
//! read. `GET /connect/{token}` is public: the first browser to open it is
//! bound to it by a cookie (only the cookie's hash is stored), any other is
//! refused; the page names the app and the scopes, and works without
//! JavaScript. An OAuth service goes through the provider and back to
//! `/oauth/callback`, which checks the same cookie before redeeming the
//! code; an API-key, basic or bearer service takes the secret in a form
//! and seals it at once. A link is used up by the connection it makes.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, stored};
use junction_app::AppError;
use junction_app::connections::checked_end_user;
use junction_core::FieldError;
use junction_oauth::{Requester, Started};
use junction_store::{
    AuthType, ConnectLink, Connection, ConnectionKey, ConnectionStatus, Credentials, Secret,
    now_ms, validate_link_name,
};

/// How long a link works when the request does not say: 30 minutes.
pub const DEFAULT_EXPIRES_IN_S: u64 = 30 * 60;
/// The longest a link may work: 4 hours.
pub const MAX_EXPIRES_IN_S: u64 = 4 * 60 * 60;
/// What the sealed token is sealed for.
const TOKEN_PURPOSE: &str = "connect-link";
/// The cookie that binds a browser to the links it opened.
const BROWSER_COOKIE: &str = "junction_connect";

/// A connect link to issue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnectLink {
    /// The end user the connection will belong to.
    pub end_user: String,
    /// The service to connect.
    pub service: String,
    /// The connection's link name; the service's name (with `-` as `_`) when absent.
    #[serde(default)]
    pub link_name: Option<String>,
    /// Scopes to ask for; the service's defaults when absent.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Seconds the link works: 1 to 14400, 1800 when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 14400)]
    pub expires_in: Option<u64>,
    /// The app's name, shown on the page; the host's `--app-name` when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub app: Option<String>,
}

/// A connect link just issued.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedConnectLink {
    /// Its id.
    pub id: String,
    /// The page to send the end user to; single use.
    pub url: String,
    /// When it stops working.
    pub expires_at_ms: u64,
    /// The end user.
    pub end_user: String,
    /// The service.
    pub service: String,
    /// The connection's link name.
    pub link_name: String,
}

/// The link name a link makes when the request names none: the service's
/// name with `-` as `_`, cut to a link name's 50 characters.
fn default_link_name(service: &str) -> String {
    service.replace('-', "_").chars().take(50).collect()
}

/// Issues a connect link (also for a tool result that needs one).
pub(crate) async fn issue(
    state: &AppState,
    new: NewConnectLink,
) -> Result<IssuedConnectLink, ApiError> {
    let field = |field: &'static str, problem: String| {
        ApiError::from(AppError::Field(FieldError::new(field, problem)))
    };
    checked_end_user(&new.end_user).map_err(AppError::from)?;
    let link_name = new
        .link_name
        .unwrap_or_else(|| default_link_name(&new.service));
    validate_link_name(&link_name).map_err(|p| field("link_name", p))?;
    let scopes = new.scopes.unwrap_or_default();
    for scope in &scopes {
        junction_oauth::settings::check_scope(scope).map_err(|p| field("scopes", p))?;
    }
    let expires_in = new.expires_in.unwrap_or(DEFAULT_EXPIRES_IN_S);
    if !(1..=MAX_EXPIRES_IN_S).contains(&expires_in) {
        return Err(field(
            "expires_in",
            format!("{expires_in} is not from 1 to {MAX_EXPIRES_IN_S} seconds"),
        ));
    }
    let app = new
        .app
        .map(|a| a.trim().to_owned())
        .unwrap_or_else(|| state.config.app_name.clone());
    if app.is_empty() || app.chars().count() > 100 || app.chars().any(char::is_control) {
        return Err(field("app", "must be 1 to 100 characters".into()));
    }
    let store = state.store.clone();
    let service_name = new.service.clone();
    let service = stored(async move { store.service(&service_name).await })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no service named `{}`", new.service)))?;
    let now = now_ms();
    let link = ConnectLink {
        id: format!("cl_{}", hex::encode(rand::random::<[u8; 16]>())),
        end_user: new.end_user,
        service: service.name,
        link_name,
        scopes,
        app,
        created_at_ms: now,
        expires_at_ms: now + expires_in * 1000,
        browser: None,
        used_at_ms: None,
    };
    let token = state.store.seal_token(
        TOKEN_PURPOSE,
        &format!("{}.{}", link.id, link.expires_at_ms),
    )?;
    let (store, row) = (state.store.clone(), link.clone());
    stored(async move { store.backend().put_connect_link(&row).await }).await?;
    tracing::info!(link = %link.id, service = %link.service, "connect link issued");
    Ok(IssuedConnectLink {
        url: format!("{}/connect/{token}", state.public_url.trim_end_matches('/')),
        id: link.id,
        expires_at_ms: link.expires_at_ms,
        end_user: link.end_user,
        service: link.service,
        link_name: link.link_name,
    })
}

/// Issues a connect link: a single-use URL of a hosted page where the end
/// user connects their account of the service, no admin token needed.
#[utoipa::path(
    post,
    path = "/v1/connect-links",
    tag = "end-users",
    request_body(content = NewConnectLink, content_type = "application/json"),
    responses(
        (status = 201, body = IssuedConnectLink),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody)
    )
)]
pub(crate) async fn create_connect_link(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewConnectLink>,
) -> Result<(StatusCode, Json<IssuedConnectLink>), ApiError> {
    Ok((StatusCode::CREATED, Json(issue(&state, new).await?)))
}

/// Why the page will not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a link this host issued (or altered).
    Invalid,
    /// Past its expiry.
    Expired,
    /// Its connection was already made.
    Used,
    /// Another browser opened it first.
    OtherBrowser,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Invalid => StatusCode::NOT_FOUND,
            Refusal::Expired | Refusal::Used => StatusCode::GONE,
            Refusal::OtherBrowser => StatusCode::FORBIDDEN,
        }
    }

    fn words(self) -> (&'static str, &'static str) {
        match self {
            Refusal::Invalid => (
                "This link is not valid",
                "The address is not a connect link, or it was altered. Ask the app for a new link.",
            ),
            Refusal::Expired => (
                "This link has expired",
                "Connect links work for a short time only. Ask the app for a new link.",
            ),
            Refusal::Used => (
                "This link was already used",
                "The account was connected with it already; a link works once. Ask the app for a new link to connect again.",
            ),
            Refusal::OtherBrowser => (
                "This link was opened in another browser",
                "A connect link works only in the browser that first opened it, so a forwarded or intercepted link cannot be completed elsewhere. Open it in that browser, or ask the app for a new link.",
            ),
        }
    }
}

/// The hosted pages, in one template: a link's form, an outcome, a refusal.
#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage {
    title: String,
    /// The app that asks.
    app: String,
    message: String,
    /// The form, when there is one to fill.
    form: Option<ConnectForm>,
    error: Option<String>,
}

/// What the link's form asks for.
struct ConnectForm {
    action: String,
    service: String,
    /// `oauth2`, `api-key`, `basic` or `bearer`.
    auth: &'static str,
    scopes: Vec<String>,
}

fn render(status: StatusCode, page: ConnectPage) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "the connect page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

pub(crate) fn refusal_page(refusal: Refusal, app: &str) -> Response {
    let (title, message) = refusal.words();
    render(
        refusal.status(),
        ConnectPage {
            title: title.to_owned(),
            app: app.to_owned(),
            message: message.to_owned(),
            form: None,
            error: None,
        },
    )
}

/// The page after the account is connected.
pub(crate) fn connected_page(app: &str, service: &str) -> Response {
    render(
        StatusCode::OK,
        ConnectPage {
            title: "Connected".into(),
            app: app.to_owned(),
            message: format!(
                "Your {service} account is connected to {app}. You can close this window."
            ),
            form: None,
            error: None,
        },
    )
}

/// A page saying the connection was not made, and why.
pub(crate) fn failed_page(status: StatusCode, app: &str, why: &str) -> Response {
    render(
        status,
        ConnectPage {
            title: "Not connected".into(),
            app: app.to_owned(),
            message: format!("{why} Open the link again to retry."),
            form: None,
            error: None,
        },
    )
}

/// The browser cookie's value in `headers`, if it carries one.
pub(crate) fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    super::html::cookie(headers, BROWSER_COOKIE)
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .map(str::to_owned)
}

/// What a link stores of the browser holding it: the cookie's hash, per link.
pub(crate) fn browser_hash(link_id: &str, cookie: &str) -> String {
    hex::encode(Sha256::digest(format!(
        "junction connect browser\0{link_id}\0{cookie}"
    )))
}

/// Whether the browser of `headers` holds `link`.
pub(crate) fn held_by(link: &ConnectLink, headers: &HeaderMap) -> Option<String> {
    let hash = browser_hash(&link.id, &browser_cookie(headers)?);
    (link.browser.as_deref() == Some(hash.as_str())).then_some(hash)
}

/// The link `token` names, if it may still be used.
async fn open_link(state: &AppState, token: &str) -> Result<ConnectLink, Refusal> {
    let opened = state
        .store
        .open_token(TOKEN_PURPOSE, token)
        .ok_or(Refusal::Invalid)?;
    let (id, expires) = opened.split_once('.').ok_or(Refusal::Invalid)?;
    let expires: u64 = expires.parse().map_err(|_| Refusal::Invalid)?;
    if now_ms() >= expires {
        return Err(Refusal::Expired);
    }
    let (store, id) = (state.store.clone(), id.to_owned());
    let link = stored(async move { store.backend().connect_link(&id).await })
        .await
        .map_err(|err| {
            tracing::error!(error = %err.into_message(), "cannot read a connect link");
            Refusal::Invalid
        })?
        .ok_or(Refusal::Invalid)?;
    if link.used_at_ms.is_some() {
        return Err(Refusal::Used);
    }
    Ok(link)
}

fn cookie_header(state: &AppState, value: &str) -> Option<HeaderValue> {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{BROWSER_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={MAX_EXPIRES_IN_S}{secure}"
    ))
    .ok()
}

/// The form of a link for `service`.
fn form(token: &str, link: &ConnectLink, service: &junction_store::Service) -> ConnectForm {
    let scopes = if link.scopes.is_empty() {
        service
            .oauth
            .as_ref()
            .map(|o| o.scopes.clone())
            .unwrap_or_default()
    } else {
        link.scopes.clone()
    };
    ConnectForm {
        action: format!("/connect/{token}"),
        service: service.name.clone(),
        auth: service.auth_type.as_str(),
        scopes,
    }
}

fn form_page(app: &str, form: ConnectForm, error: Option<String>) -> ConnectPage {
    ConnectPage {
        title: format!("Connect your {} account", form.service),
        app: app.to_owned(),
        message: format!(
            "{app} asks to use your {} account. It never sees your password or token: they are kept encrypted, and used only for the calls {app} makes for you.",
            form.service
        ),
        form: Some(form),
        error,
    }
}

/// `GET /connect/{token}`: binds the link to this browser and shows its form.
pub(crate) async fn connect_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let app = state.config.app_name.clone();
    let link = match open_link(&state, &token).await {
        Ok(link) => link,
        Err(refusal) => return refusal_page(refusal, &app),
    };
    let (cookie, fresh) = match browser_cookie(&headers) {
        Some(cookie) => (cookie, false),
        None => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            (URL_SAFE_NO_PAD.encode(bytes), true)
        }
    };
    let hash = browser_hash(&link.id, &cookie);
    let (store, id, wanted) = (state.store.clone(), link.id.clone(), hash.clone());
    let bound = stored(async move { store.backend().bind_connect_link(&id, &wanted).await }).await;
    let link = match bound {
        Ok(Some(link)) if link.browser.as_deref() == Some(hash.as_str()) => link,
        Ok(Some(link)) => return refusal_page(Refusal::OtherBrowser, &link.app),
        Ok(None) => return refusal_page(Refusal::Invalid, &app),
        Err(err) => {
            return failed_page(StatusCode::INTERNAL_SERVER_ERROR, &app, &err.into_message());
        }
    };
    let (store, name) = (state.store.clone(), link.service.clone());
    let service = match stored(async move { store.service(&name).await }).await {
        Ok(Some(service)) => service,
        _ => {
            return failed_page(
                StatusCode::NOT_FOUND,
                &link.app,
                &format!("The service `{}` is no longer set up.", link.service),
            );
        }
    };
    let mut response = render(
        StatusCode::OK,
        form_page(&link.app, form(&token, &link, &service), None),
    );
    if fresh && let Some(value) = cookie_header(&state, &cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// What the link's form sends (secrets for static-credential services).
#[derive(Deserialize, Default)]
pub(crate) struct Submitted {
    #[serde(default)]
    key: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /connect/{token}`: off to the provider (OAuth), or the secret
/// stored sealed and the link used up.
pub(crate) async fn connect_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(submitted): Form<Submitted>,
) -> Response {
    let app = state.config.app_name.clone();
    let link = match open_link(&state, &token).await {
        Ok(link) => link,
        Err(refusal) => return refusal_page(refusal, &app),
    };
    let Some(browser) = held_by(&link, &headers) else {
        return refusal_page(Refusal::OtherBrowser, &link.app);
    };
    let (store, name) = (state.store.clone(), link.service.clone());
    let Ok(Some(service)) = stored(async move { store.service(&name).await }).await else {
        return failed_page(
            StatusCode::NOT_FOUND,
            &link.app,
            &format!("The service `{}` is no longer set up.", link.service),
        );
    };
    let key = ConnectionKey::new(Some(&link.end_user), &link.link_name);
    let credentials = match service.auth_type {
        AuthType::Oauth2 => Credentials::None,
        AuthType::ApiKey => Credentials::ApiKey {
            key: Secret::new(submitted.key),
        },
        AuthType::Bearer => Credentials::Bearer {
            token: Secret::new(submitted.token),
        },
        AuthType::Basic => Credentials::Basic {
            username: submitted.username,
            password: Secret::new(submitted.password),
        },
    };
    let empty = match &credentials {
        Credentials::ApiKey { key } => key.expose().is_empty(),
        Credentials::Bearer { token } => token.expose().is_empty(),
        Credentials::Basic { password, .. } => password.expose().is_empty(),
        _ => false,
    };
    if empty {
        let page = form_page(
            &link.app,
            form(&token, &link, &service),
            Some("Fill in the secret to connect.".into()),
        );
        return render(StatusCode::BAD_REQUEST, page);
    }
    if let Err(why) = save(&state, &key, &link, credentials).await {
        return failed_page(StatusCode::BAD_REQUEST, &link.app, &why);
    }
    if service.auth_type == AuthType::Oauth2 {
        let redirect_uri = format!("{}/oauth/callback", state.public_url.trim_end_matches('/'));
        let started = state
            .oauth
            .authorize(
                &state.store,
                &key,
                &redirect_uri,
                Requester::ConnectLink(link.id.clone()),
            )
            .await;
        return match started {
            Ok(Started::Redirect { url, .. }) => axum::response::Redirect::to(&url).into_response(),
            Ok(Started::Connected) => finish(&state, &link, &browser, &service.name).await,
            Err(err) => failed_page(
                StatusCode::BAD_GATEWAY,
                &link.app,
                &super::error::flow_error(err).into_message(),
            ),
        };
    }
    finish(&state, &link, &browser, &service.name).await
}

/// Uses the link up and says the account is connected.
pub(crate) async fn finish(
    state: &AppState,
    link: &ConnectLink,
    browser: &str,
    service: &str,
) -> Response {
    let (store, id, browser) = (state.store.clone(), link.id.clone(), browser.to_owned());
    match stored(async move {
        store
            .backend()
            .use_connect_link(&id, &browser, now_ms())
            .await
    })
    .await
    {
        Ok(true) => {
            tracing::info!(link = %link.id, "connect link used");
            connected_page(&link.app, service)
        }
        Ok(false) => refusal_page(Refusal::Used, &link.app),
        Err(err) => failed_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &link.app,
            &err.into_message(),
        ),
    }
}

/// Stores the end user's connection: new, or with new credentials.
async fn save(
    state: &AppState,
    key: &ConnectionKey,
    link: &ConnectLink,
    credentials: Credentials<Secret>,
) -> Result<(), String> {
    let existing = state
        .store
        .connection(key.end_user(), &key.link)
        .await
        .map_err(|e| e.to_string())?;
    let connected = credentials.has_secret();
    match existing {
        Some(connection) if connection.service != link.service => Err(format!(
            "You already have a connection `{}` of another service; ask the app for a link with another link name.",
            key.link
        )),
        Some(mut connection) => {
            if connected {
                connection.credentials = credentials;
                connection.last_error = None;
                connection.record(
                    ConnectionStatus::Connected,
                    "connected through a connect link",
                );
                state
                    .store
                    .update_connection(&connection)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        None => {
            let now = now_ms();
            let connection = Connection {
                link_name: key.link.clone(),
                end_user: key.end_user.clone(),
                service: link.service.clone(),
                status: if connected {
                    ConnectionStatus::Connected
                } else {
                    ConnectionStatus::Disconnected
                },
                scopes: link.scopes.clone(),
                metadata: Default::default(),
                credentials,
                last_error: None,
                created_at_ms: now,
                updated_at_ms: now,
                last_refresh_ms: None,
                history: Vec::new(),
            };
            state
                .store
                .create_connection(&connection)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// The provider's answer to a flow a connect link started.
pub(crate) struct Answer<'a> {
    /// The `state` it came back with.
    pub oauth_state: &'a str,
    /// The authorization code, when granted.
    pub code: Option<&'a str>,
    /// The provider's error and its description, when refused.
    pub error: Option<(&'a str, Option<&'a str>)>,
}

/// Finishes a connect link's OAuth flow at `/oauth/callback`: only in the
/// browser that holds the link (anywhere else the state is dropped and
/// its code never redeemed), and only while the link is unused and live.
pub(crate) async fn callback(
    state: &AppState,
    link_id: &str,
    answer: Answer<'_>,
    headers: &HeaderMap,
) -> Response {
    let app = state.config.app_name.clone();
    let (store, id) = (state.store.clone(), link_id.to_owned());
    let link = match stored(async move { store.backend().connect_link(&id).await }).await {
        Ok(Some(link)) => link,
        Ok(None) => return refuse(state, answer.oauth_state, Refusal::Invalid, &app).await,
        Err(err) => {
            return failed_page(StatusCode::INTERNAL_SERVER_ERROR, &app, &err.into_message());
        }
    };
    let refusal = if link.used_at_ms.is_some() {
        Some(Refusal::Used)
    } else if now_ms() >= link.expires_at_ms {
        Some(Refusal::Expired)
    } else {
        None
    };
    let browser = match (refusal, held_by(&link, headers)) {
        (Some(refusal), _) => return refuse(state, answer.oauth_state, refusal, &link.app).await,
        (None, None) => {
            tracing::warn!(link = %link.id, "a connect link's flow came back in another browser");
            return refuse(state, answer.oauth_state, Refusal::OtherBrowser, &link.app).await;
        }
        (None, Some(browser)) => browser,
    };
    let finished = state
        .tokens
        .callback(Some(answer.oauth_state), answer.code, answer.error)
        .await;
    match finished.result {
        Ok(()) => finish(state, &link, &browser, &link.service).await,
        Err(err) => {
            let status = match &err {
                junction_oauth::FlowError::Token(_) | junction_oauth::FlowError::Metadata(_) => {
                    StatusCode::BAD_GATEWAY
                }
                junction_oauth::FlowError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            failed_page(status, &link.app, &format!("{err}."))
        }
    }
}

/// Drops the flow's state unfinished and shows why.
async fn refuse(state: &AppState, oauth_state: &str, refusal: Refusal, app: &str) -> Response {
    if let Err(err) = junction_oauth::forget_state(&state.store, oauth_state).await {
        tracing::error!(error = %err, "cannot drop a refused authorization");
    }
    refusal_page(refusal, app)
}
