//! The web console at `/`: server-rendered pages (askama templates, checked
//! at compile time, in `host/templates/`) with htmx for the few live parts,
//! every asset compiled into the binary. Pages call the same handlers as the
//! `/v1` API, so a form is validated exactly as an API request is; this
//! module owns the routes, the page chrome, error pages and the security
//! headers every console response carries.

mod api_keys;
mod assets;
mod connections;
mod end_users;
mod executions;
mod format;
mod plugins;
pub mod session;

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
pub use crate::html::{escape, segment};
pub use session::Sessions;
use session::{Flash, Session};

/// The page frame: title, which section is lit, the session's CSRF token
/// (every form and htmx request carries it) and the one-time message.
pub struct Chrome {
    pub title: String,
    pub section: &'static str,
    pub csrf: String,
    pub flash: Option<Flash>,
}

impl Chrome {
    /// The frame for a page of `section`, taking the session's message.
    pub fn new(session: &Session, section: &'static str, title: impl Into<String>) -> Self {
        Chrome {
            title: title.into(),
            section,
            csrf: session.csrf.clone(),
            flash: session.flash.clone(),
        }
    }

    /// The same frame with an error shown in place of the message.
    pub fn with_error(mut self, message: impl Into<String>) -> Self {
        self.flash = Some(Flash::error(message));
        self
    }
}

/// A page that could not be shown, or a request that could not be done,
/// in words.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", message)
    }
}

impl From<junction_app::AppError> for PageError {
    fn from(err: junction_app::AppError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        let title = match err.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "That conflicts with what is there",
            StatusCode::PAYLOAD_TOO_LARGE => "Too large",
            StatusCode::BAD_GATEWAY => "The provider failed",
            StatusCode::SERVICE_UNAVAILABLE => "Not available",
            s if s.is_server_error() => "Something went wrong on the server",
            _ => "That did not work",
        };
        PageError::new(err.status, title, sentence(&err.into_message()))
    }
}

/// The label of the form field that edits the API field `field`.
fn label(field: &str) -> &str {
    match field {
        "name" => "Name",
        "auth_type" => "Auth type",
        "base_url" => "Base URL",
        "allowed_hosts" => "Allowed hosts",
        "placement.name" => "Header or parameter name",
        "placement.template" => "Header value",
        "oauth" => "OAuth",
        "oauth.authorize_url" => "Authorize URL",
        "oauth.token_url" => "Access token URL",
        "oauth.refresh_url" => "Refresh token URL",
        "oauth.revoke_url" => "Revoke URL",
        "oauth.metadata_url" => "Metadata URL",
        "oauth.client_id" | "client_id" => "Client ID",
        "oauth.scope_separator" => "Scope separator",
        "oauth.scopes" | "scopes" => "Scopes",
        "oauth.issuer" => "Issuer",
        "client_secret" => "Client secret",
        "credentials.key" => "API key",
        "credentials.token" => "Token",
        "credentials.password" => "Password",
        other => other,
    }
}

/// An application error as a sentence about the form: a wrong field is
/// named by its label.
pub(crate) fn in_words(err: junction_app::AppError) -> String {
    match err.field() {
        Some(wrong) => sentence(&format!("{} {}", label(wrong.field), wrong.problem)),
        None => sentence(&ApiError::from(err).into_message()),
    }
}

/// An API message as a sentence: capitalised, ending in a full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    /// Escaped, with quoted names as code.
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: &self.title,
            message: format::rich(&self.message),
        };
        let mut response = render(&page);
        *response.status_mut() = self.status;
        response
    }
}

/// Renders a template; a template that fails to render is a 500.
pub fn render<T: Template>(template: &T) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render; see the server log",
            )
                .into_response()
        }
    }
}

/// 303 to `location` (after a form post).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// 303 to `location`, leaving `flash` for the page there.
pub fn done(flash: Flash, location: &str) -> Response {
    let mut response = see_other(location);
    response.extensions_mut().insert(session::LeftFlash(flash));
    response
}

/// Security headers on every console response: no framing, no scripts or
/// styles but the console's own, no caching of pages that show account data.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !is_asset {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The console's routes.
pub fn router(state: AppState) -> Router<AppState> {
    let upload_limit = state.config.max_component_bytes + 1024 * 1024;
    let signed_in = Router::new()
        .route("/", get(overview))
        .route("/logout", post(logout))
        .merge(connections::routes())
        .merge(end_users::routes())
        .merge(api_keys::routes())
        .merge(plugins::routes(upload_limit))
        .merge(executions::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            session::require_session,
        ));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/assets/{file}", get(assets::asset))
        .merge(signed_in)
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Whether a request is a browser's asking for a page (for HTML 404s).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    token: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// Only paths of this site are followed after sign-in: one leading `/`, no
/// `//` or `/\\` (which browsers read as another host), no control
/// characters or whitespace (which browsers strip, turning `/\t/evil` into
/// `//evil`), judged before and after percent-decoding.
fn local_path(next: Option<&str>) -> String {
    fn same_origin(path: &str) -> bool {
        path.starts_with('/')
            && !path.starts_with("//")
            && !path.starts_with("/\\")
            && !path.contains('\\')
            && !path.chars().any(|c| c.is_control() || c.is_whitespace())
    }
    match next {
        Some(path)
            if same_origin(path)
                && same_origin(
                    &url::form_urlencoded::parse(format!("p={path}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default(),
                ) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    next: String,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let token = session::new_login_token();
    let page = LoginPage {
        token: token.clone(),
        next,
        error,
        notice,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    session::with_cookie(
        response,
        state.console.cookie_value(
            session::LOGIN_COOKIE,
            &token,
            Some(std::time::Duration::from_secs(3600)),
        ),
    )
}

async fn login_page(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let notice = query
        .expired
        .map(|_| "Your session has ended. Sign in again to go on.".to_owned());
    login_form(
        &state,
        StatusCode::OK,
        local_path(query.next.as_deref()),
        None,
        notice,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_form(
            &state,
            StatusCode::BAD_REQUEST,
            "/".into(),
            Some("The sign-in form was incomplete; enter the admin token.".into()),
            None,
        );
    };
    let next = local_path(Some(&form.next));
    if !session::login_token_matches(&headers, &form.csrf) {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            next,
            Some(
                "The sign-in form had expired or came from another site. Enter the token again."
                    .into(),
            ),
            None,
        );
    }
    let token = form.token.trim();
    if token.is_empty() || !state.auth.verify(token) {
        tracing::info!("console sign-in refused: wrong admin token");
        return login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            next,
            Some(
                "That is not the admin token. It is in the data directory's admin-token file (junction-data/admin-token by default); `junction serve` printed it on first start.".into(),
            ),
            None,
        );
    }
    tracing::info!("console sign-in");
    let cookie = match state.console.create().await {
        Ok(cookie) => cookie,
        Err(err) => return PageError::from(ApiError::from(err)).into_response(),
    };
    let response = session::with_cookie(see_other(&next), cookie);
    session::with_cookie(response, state.console.clear_cookie(session::LOGIN_COOKIE))
}

async fn logout(
    State(state): State<AppState>,
    axum::Extension(session): axum::Extension<Session>,
) -> Response {
    if let Err(err) = state.console.end(&session).await {
        return PageError::from(ApiError::from(err)).into_response();
    }
    session::with_cookie(
        see_other("/login"),
        state.console.clear_cookie(session::SESSION_COOKIE),
    )
}

/// A step of the getting-started list.
struct Step {
    done: bool,
    title: &'static str,
    /// HTML-free words; quoted commands are shown as code.
    text: String,
    href: String,
    action: &'static str,
}

impl Step {
    fn html(&self) -> String {
        format::rich(&self.text)
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    page: Chrome,
    steps: Vec<Step>,
    connections: usize,
    connected: usize,
    plugins: usize,
    dead: usize,
    rows: Vec<executions::Row>,
}

async fn overview(
    State(state): State<AppState>,
    axum::Extension(session): axum::Extension<Session>,
) -> Result<Response, PageError> {
    // One view, so the figures agree with each other.
    let reads = junction_store::Reads {
        connections: true,
        plugins: true,
        executions: Some(junction_store::ExecutionQuery {
            end_user: None,
            plugin: None,
            ok: None,
            limit: 10,
        }),
        deliveries: Some(junction_store::DeliveryQuery {
            end_user: None,
            state: Some(junction_store::DeliveryState::Dead),
            plugin: None,
            limit: 1000,
        }),
    };
    let junction_store::Snapshot {
        connections,
        plugins,
        executions: recent,
        deliveries,
    } = super::stored(state.store.snapshot(&reads)).await?;
    let dead = deliveries.len();
    let connected = connections
        .iter()
        .filter(|c| c.status == junction_store::ConnectionStatus::Connected)
        .count();
    let first_plugin = plugins.first().map(|p| p.name.clone());
    let steps = vec![
        Step {
            done: connected > 0,
            title: "Connect a service",
            text: "Pick a service (or define your own), give the connection a link name and authorise it. Plugins then call the API by that name and never see a token.".into(),
            href: "/services".into(),
            action: "Pick your service",
        },
        Step {
            done: !plugins.is_empty(),
            title: "Upload a plugin",
            text: "Upload a component built for wasm32-wasip2 with its Cargo.toml as the manifest. For the example: `junction build plugins/hello` (it prints the component's path), then upload that `hello.wasm` with `plugins/hello/Cargo.toml`.".into(),
            href: "/plugins/new".into(),
            action: "Upload a plugin",
        },
        Step {
            done: !recent.is_empty(),
            title: "Run it",
            text: "Open the plugin and press Run now with an event payload; the execution shows its output, logs and every API call.".into(),
            href: first_plugin
                .map(|name| format!("/plugins/{}", segment(&name)))
                .unwrap_or_else(|| "/plugins".into()),
            action: "Run a plugin",
        },
    ];
    let page = OverviewPage {
        page: Chrome::new(&session, "overview", "Overview"),
        steps,
        connections: connections.len(),
        connected,
        plugins: plugins.len(),
        dead,
        rows: recent.iter().map(executions::Row::from).collect(),
    };
    Ok(render(&page))
}

/// The HTML 404 for browsers.
pub fn not_found_page() -> Response {
    PageError::not_found(
        "There is no page at this address. Use the menu to find connections, plugins and executions.",
    )
    .into_response()
}

/// Parses `key=value` lines (extra parameters, metadata); blank lines and
/// `#` comments are skipped.
pub fn key_values(text: &str, what: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "{what}, line {}: write each as key=value (`{line}` has no =)",
                n + 1
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{what}, line {}: the key is empty", n + 1));
        }
        map.insert(key.to_owned(), value.trim().to_owned());
    }
    Ok(map)
}

/// Splits a list typed with spaces, commas or new lines.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_field_is_named_by_its_label() {
        use junction_app::AppError;
        use junction_core::FieldError;
        let err = AppError::Field(FieldError::new("oauth.token_url", "is required"));
        assert_eq!(in_words(err), "Access token URL is required.");
        let err = AppError::Field(FieldError::quoted("client_secret", "is empty"));
        assert_eq!(in_words(err), "Client secret is empty.");
        // Errors about no field keep their own words.
        let err = AppError::NotFound("no service named `x`".into());
        assert_eq!(in_words(err), "No service named `x`.");
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/plugins/hello")), "/plugins/hello");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
        assert_eq!(local_path(Some("/\t/evil.example")), "/");
        assert_eq!(local_path(Some("/%09/evil.example")), "/");
        assert_eq!(local_path(Some("/%2F/evil.example")), "/");
        assert_eq!(local_path(Some("/%5Cevil.example")), "/");
        assert_eq!(local_path(Some("/ /evil.example")), "/");
        assert_eq!(local_path(Some("/\n/evil.example")), "/");
        assert_eq!(
            local_path(Some("/deliveries?state=dead")),
            "/deliveries?state=dead"
        );
    }

    #[test]
    fn parses_key_values_and_words() {
        let map = key_values("access_type = offline\n# note\n\nprompt=consent", "x").unwrap();
        assert_eq!(map.get("access_type").map(String::as_str), Some("offline"));
        assert_eq!(map.len(), 2);
        let err = key_values("nonsense", "Extra parameters").unwrap_err();
        assert!(err.contains("line 1") && err.contains("key=value"), "{err}");
        assert_eq!(words("a b,c\nd"), vec!["a", "b", "c", "d"]);
        assert_eq!(sentence("the name is taken"), "The name is taken.");
        assert_eq!(segment("a b/c+d"), "a%20b%2Fc%2Bd");
    }
}
