//! Console pages for services and connections — Zoho's flow: "Pick Your
//! Service" (the catalog, searchable, by category) or "Custom Service",
//! then a connection with a link name, "Create and Connect" through the
//! provider, and the connection's page with its status, tokens' times, the
//! plugins that use it and the snippet to call it. Secrets are write-only:
//! no form is ever filled with one.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::json;

use super::session::{Flash, Session};
use super::{
    Chrome, PageError, done, format, in_words, key_values, render, see_other, segment, sentence,
    words,
};
use crate::error::ApiError;
use crate::error::flow_error;
use crate::html::{connection_action_base, connection_path};
use crate::{AppState, stored};
use junction_app::connections::{self as api, ConnectionView};
use junction_app::services::{self as service_api, ServiceInput, ServiceListing};
use junction_oauth::{Started, catalog};
use junction_store::{AuthType, ConnectionKey, Placement, validate_link_name};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(catalog_page).post(create_custom))
        .route("/services/new", get(custom_form))
        .route(
            "/services/catalog/{id}",
            get(catalog_form).post(configure_catalog),
        )
        .route("/services/{name}", get(service_page))
        .route("/services/{name}/delete", post(delete_service))
        .route("/connections", get(list).post(create))
        .route("/connections/new", get(new_form))
        .route("/connections/check", get(check_link))
        .route("/connections/{link}", get(show))
        .route("/connections/{link}/{action}", post(act))
}

/// An error of the OAuth flows (which name no form field) as a sentence.
fn flow_words(err: ApiError) -> String {
    sentence(&err.into_message())
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/oauth/callback", state.public_url.trim_end_matches('/'))
}

/// One service on the catalog page.
struct Card {
    name: String,
    title: String,
    auth: &'static str,
    configured: bool,
    href: String,
    search: String,
}

struct Group {
    name: String,
    cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "services.html")]
struct CatalogPage {
    page: Chrome,
    q: String,
    groups: Vec<Group>,
    shown: usize,
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn catalog_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let listing = service_api::list(&state.store).await?;
    let needle = query.q.trim().to_lowercase();
    let mut groups: BTreeMap<(u8, String), Vec<Card>> = BTreeMap::new();
    for service in listing {
        let card = card(&service);
        if !needle.is_empty() && !card.search.contains(&needle) {
            continue;
        }
        // Your own services first, then the catalog's categories A–Z.
        let key = match (service.source.as_str(), &service.category) {
            ("custom", _) => (0, "Your services".to_owned()),
            (_, Some(category)) => (1, category.clone()),
            (_, None) => (1, "Other".to_owned()),
        };
        groups.entry(key).or_default().push(card);
    }
    let groups: Vec<Group> = groups
        .into_iter()
        .map(|((_, name), cards)| Group { name, cards })
        .collect();
    let shown = groups.iter().map(|g| g.cards.len()).sum();
    let page = CatalogPage {
        page: Chrome::new(&session, "connections", "Pick your service"),
        q: query.q,
        groups,
        shown,
    };
    Ok(render(&page))
}

fn card(listing: &ServiceListing) -> Card {
    let service = &listing.service;
    let title = listing
        .display_name
        .clone()
        .unwrap_or_else(|| service.name.clone());
    let href = if listing.configured {
        format!("/services/{}", segment(&service.name))
    } else {
        format!("/services/catalog/{}", segment(&service.name))
    };
    Card {
        search: format!(
            "{} {} {}",
            service.name,
            title,
            listing.category.as_deref().unwrap_or("")
        )
        .to_lowercase(),
        name: service.name.clone(),
        title,
        auth: format::auth_type(service.auth_type),
        configured: listing.configured,
        href,
    }
}

/// The values of the custom-service form (kept when it comes back with an
/// error; the client secret never is).
#[derive(Deserialize, Default)]
struct CustomFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    auth_type: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    allowed_hosts: String,
    #[serde(default)]
    placement: String,
    #[serde(default)]
    placement_name: String,
    #[serde(default)]
    placement_template: String,
    #[serde(default)]
    grant: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    authorize_url: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    refresh_url: String,
    #[serde(default)]
    revoke_url: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    scope_separator: String,
    #[serde(default)]
    pkce: Option<String>,
    #[serde(default)]
    client_auth: String,
    #[serde(default)]
    authorize_params: String,
    #[serde(default)]
    token_params: String,
}

#[derive(Template)]
#[template(path = "service_form.html")]
struct CustomPage {
    page: Chrome,
    f: CustomFields,
    redirect_uri: String,
}

async fn custom_form(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let page = CustomPage {
        page: Chrome::new(&session, "connections", "Custom service"),
        f: CustomFields {
            auth_type: "oauth2".into(),
            grant: "authorization-code".into(),
            placement: "header".into(),
            placement_name: "Authorization".into(),
            placement_template: "Bearer {token}".into(),
            scope_separator: " ".into(),
            pkce: Some("on".into()),
            client_auth: "body".into(),
            ..CustomFields::default()
        },
        redirect_uri: redirect_uri(&state),
    };
    render(&page)
}

fn opt(text: &str) -> serde_json::Value {
    let text = text.trim();
    if text.is_empty() {
        serde_json::Value::Null
    } else {
        json!(text)
    }
}

/// The form as the API's service definition.
fn custom_input(f: &CustomFields) -> Result<ServiceInput, String> {
    if f.name.trim().is_empty() {
        return Err("Give the service a name (for example `acme`).".into());
    }
    if f.auth_type.parse::<AuthType>().is_err() {
        return Err(
            "Choose how the service authenticates: OAuth 2.0, API key, bearer token or HTTP Basic."
                .into(),
        );
    }
    // Left empty, credentials go in `Authorization: Bearer {token}`.
    let placement = match (f.placement.as_str(), f.placement_name.trim()) {
        (_, "") => serde_json::Value::Null,
        ("query", name) => json!({"in": "query", "name": name}),
        (_, name) => {
            json!({"in": "header", "name": name, "template": f.placement_template.trim()})
        }
    };
    let oauth = if f.auth_type == "oauth2" {
        let authorize_params = key_values(&f.authorize_params, "Extra authorize parameters")?;
        let token_params = key_values(&f.token_params, "Extra token parameters")?;
        json!({
            "grant": if f.grant.is_empty() { "authorization-code" } else { f.grant.as_str() },
            "client_id": f.client_id.trim(),
            "issuer": opt(&f.issuer),
            "authorize_url": opt(&f.authorize_url),
            "token_url": f.token_url.trim(),
            "refresh_url": opt(&f.refresh_url),
            "revoke_url": opt(&f.revoke_url),
            "scopes": words(&f.scopes),
            "scope_separator": if f.scope_separator.is_empty() { " " } else { f.scope_separator.as_str() },
            "pkce": f.pkce.is_some(),
            "client_auth": if f.client_auth.is_empty() { "body" } else { f.client_auth.as_str() },
            "authorize_params": authorize_params,
            "token_params": token_params,
        })
    } else {
        serde_json::Value::Null
    };
    let secret = if f.auth_type == "oauth2" {
        opt(&f.client_secret)
    } else {
        serde_json::Value::Null
    };
    let definition = json!({
        "name": f.name.trim(),
        "auth_type": f.auth_type,
        "base_url": opt(&f.base_url),
        "allowed_hosts": words(&f.allowed_hosts),
        "placement": if f.auth_type == "basic" { serde_json::Value::Null } else { placement },
        "oauth": oauth,
        "client_secret": secret,
    });
    serde_json::from_value(definition).map_err(|e| sentence(&e.to_string()))
}

async fn create_custom(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(mut fields): Form<CustomFields>,
) -> Response {
    let outcome = match custom_input(&fields) {
        Ok(input) => service_api::create(&state.store, &state.oauth, input)
            .await
            .map_err(in_words),
        Err(message) => Err(message),
    };
    match outcome {
        Ok(service) => done(
            Flash::ok(format!(
                "Service `{}` is saved. Now create a connection to it.",
                service.name
            )),
            &format!("/connections/new?service={}", segment(&service.name)),
        ),
        Err(message) => {
            fields.client_secret.clear();
            let page = CustomPage {
                page: Chrome::new(&session, "connections", "Custom service").with_error(message),
                f: fields,
                redirect_uri: redirect_uri(&state),
            };
            let mut response = render(&page);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

#[derive(Template)]
#[template(path = "catalog_form.html")]
struct CatalogFormPage {
    page: Chrome,
    id: String,
    title: String,
    docs: String,
    oauth: bool,
    name: String,
    client_id: String,
    redirect_uri: String,
}

fn catalog_entry(id: &str) -> Result<&'static catalog::CatalogEntry, PageError> {
    catalog::entry(id).map_err(|_| {
        PageError::not_found(format!(
            "The catalog has no service `{id}`. Pick one from the list, or define a custom service."
        ))
    })
}

async fn catalog_form(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let entry = catalog_entry(&id)?;
    let page = CatalogFormPage {
        page: Chrome::new(
            &session,
            "connections",
            format!("Set up {}", entry.display_name),
        ),
        id: entry.id.clone(),
        title: entry.display_name.clone(),
        docs: entry.docs.clone(),
        oauth: entry.auth_type == AuthType::Oauth2,
        name: entry.id.clone(),
        client_id: String::new(),
        redirect_uri: redirect_uri(&state),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct CatalogFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

async fn configure_catalog(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(fields): Form<CatalogFields>,
) -> Result<Response, PageError> {
    let entry = catalog_entry(&id)?;
    let oauth = entry.auth_type == AuthType::Oauth2;
    let input = ServiceInput {
        name: Some(fields.name.trim().to_owned()).filter(|n| !n.is_empty()),
        auth_type: None,
        catalog: Some(entry.id.clone()),
        client_id: Some(fields.client_id.trim().to_owned()).filter(|_| oauth),
        base_url: None,
        allowed_hosts: Vec::new(),
        placement: None,
        oauth: None,
        client_secret: Some(fields.client_secret.clone()).filter(|s| oauth && !s.is_empty()),
    };
    match service_api::create(&state.store, &state.oauth, input).await {
        Ok(service) => Ok(done(
            Flash::ok(format!(
                "{} is set up as `{}`. Now create a connection.",
                entry.display_name, service.name
            )),
            &format!("/connections/new?service={}", segment(&service.name)),
        )),
        Err(err) => {
            let page = CatalogFormPage {
                page: Chrome::new(
                    &session,
                    "connections",
                    format!("Set up {}", entry.display_name),
                )
                .with_error(in_words(err)),
                id: entry.id.clone(),
                title: entry.display_name.clone(),
                docs: entry.docs.clone(),
                oauth,
                name: fields.name,
                client_id: fields.client_id,
                redirect_uri: redirect_uri(&state),
            };
            let mut response = render(&page);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
    }
}

/// A connection in a list.
pub(super) struct ConnectionRow {
    pub(super) link: String,
    /// The end user it belongs to, empty for the organisation's.
    pub(super) end_user: String,
    /// Its page.
    pub(super) href: String,
    pub(super) service: String,
    pub(super) status: &'static str,
    pub(super) status_class: &'static str,
    pub(super) expires: String,
    pub(super) used_by: String,
}

impl From<&api::ConnectionView> for ConnectionRow {
    fn from(view: &api::ConnectionView) -> Self {
        let (status, status_class) = format::status(view.status);
        ConnectionRow {
            link: view.link_name.clone(),
            end_user: view.end_user.clone().unwrap_or_default(),
            href: connection_path(&ConnectionKey::new(
                view.end_user.as_deref(),
                &view.link_name,
            )),
            service: view.service.clone(),
            status,
            status_class,
            expires: view
                .expires_at_ms
                .map(format::relative)
                .unwrap_or_else(|| "—".into()),
            used_by: if view.used_by.is_empty() {
                "—".into()
            } else {
                view.used_by.join(", ")
            },
        }
    }
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    page: Chrome,
    name: String,
    auth: &'static str,
    base_url: String,
    allowed_hosts: String,
    placement: String,
    oauth: Vec<(&'static str, String)>,
    has_client_secret: bool,
    problem: Option<String>,
    redirect_uri: String,
    connections: Vec<ConnectionRow>,
}

async fn service_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let service = service_api::get(&state.store, &name).await?;
    let all = api::list(&state.store, &api::Owner::Everyone).await?;
    let placement = match &service.placement {
        Placement::Header { name, template } => format!("header {name}: {template}"),
        Placement::Query { name } => format!("query parameter {name}"),
        Placement::Basic { .. } => "HTTP Basic (user name and password)".into(),
    };
    let oauth = service
        .oauth
        .as_ref()
        .map(|o| {
            let grant = match o.grant {
                junction_oauth::Grant::AuthorizationCode => "authorization code (browser)",
                junction_oauth::Grant::ClientCredentials => "client credentials (no browser)",
            };
            let mut rows = vec![
                ("Grant", grant.to_owned()),
                ("Client ID", o.client_id.clone()),
                ("Authorize URL", o.authorize_url.clone().unwrap_or_default()),
                ("Access token URL", o.token_url.clone()),
                (
                    "Refresh token URL",
                    o.refresh_url
                        .clone()
                        .unwrap_or_else(|| "the access token URL".into()),
                ),
                ("Default scopes", o.scopes.join(" ")),
                ("PKCE", if o.pkce { "on" } else { "off" }.to_owned()),
            ];
            if let Some(revoke) = &o.revoke_url {
                rows.push(("Revoke URL", revoke.clone()));
            }
            for (key, value) in &o.authorize_params {
                rows.push(("Extra authorize parameter", format!("{key}={value}")));
            }
            rows
        })
        .unwrap_or_default();
    let page = ServicePage {
        page: Chrome::new(&session, "connections", format!("Service {name}")),
        auth: format::auth_type(service.auth_type),
        base_url: service.base_url.clone().unwrap_or_default(),
        allowed_hosts: service.allowed_hosts.join(", "),
        placement,
        oauth,
        has_client_secret: service.has_client_secret,
        problem: service.problem.clone(),
        redirect_uri: redirect_uri(&state),
        connections: all
            .iter()
            .filter(|c| c.service == service.name)
            .map(ConnectionRow::from)
            .collect(),
        name: service.name,
    };
    Ok(render(&page))
}

async fn delete_service(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match service_api::delete(&state.store, &name).await {
        Ok(_) => done(
            Flash::ok(format!("Service `{name}` is deleted.")),
            "/services",
        ),
        Err(err) => done(
            Flash::error(in_words(err)),
            &format!("/services/{}", segment(&name)),
        ),
    }
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ListPage {
    page: Chrome,
    connections: Vec<ConnectionRow>,
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let all = api::list(&state.store, &api::Owner::Everyone).await?;
    let page = ListPage {
        page: Chrome::new(&session, "connections", "Connections"),
        connections: all.iter().map(ConnectionRow::from).collect(),
    };
    Ok(render(&page))
}

/// The values of the new-connection form (secrets are never sent back).
#[derive(Deserialize, Default)]
struct NewFields {
    #[serde(default)]
    service: String,
    #[serde(default)]
    link_name: String,
    /// The end user it belongs to; empty for the organisation's.
    #[serde(default)]
    end_user: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "connection_form.html")]
struct NewPage {
    page: Chrome,
    services: Vec<(String, String)>,
    /// The chosen service: its name and auth type (`oauth2`, `api-key`, ...).
    chosen: Option<(String, &'static str)>,
    default_scopes: String,
    f: NewFields,
}

async fn new_page(
    state: &AppState,
    session: &Session,
    fields: NewFields,
    error: Option<String>,
) -> Result<Response, PageError> {
    let store = state.store.clone();
    let services = stored(async move { store.services().await }).await?;
    let chosen = services.iter().find(|s| s.name == fields.service);
    let default_scopes = chosen
        .and_then(|s| s.oauth.as_ref())
        .map(|o| o.scopes.join(" "))
        .unwrap_or_default();
    let mut chrome = Chrome::new(session, "connections", "New connection");
    if let Some(error) = error {
        chrome = chrome.with_error(error);
    }
    let page = NewPage {
        page: chrome,
        chosen: chosen.map(|s| (s.name.clone(), s.auth_type.as_str())),
        services: services
            .iter()
            .map(|s| (s.name.clone(), format::auth_type(s.auth_type).to_owned()))
            .collect(),
        default_scopes,
        f: fields,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct NewQuery {
    #[serde(default)]
    service: String,
}

async fn new_form(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<NewQuery>,
) -> Result<Response, PageError> {
    let fields = NewFields {
        service: query.service,
        ..NewFields::default()
    };
    new_page(&state, &session, fields, None).await
}

#[derive(Deserialize)]
struct CheckQuery {
    #[serde(default)]
    link_name: String,
}

/// `GET /connections/check`: the link-name hint shown as you type.
async fn check_link(
    State(state): State<AppState>,
    Query(query): Query<CheckQuery>,
) -> Result<Response, PageError> {
    let name = query.link_name.trim().to_owned();
    let (class, text) = if name.is_empty() {
        (
            "hint",
            "Lower-case letters, digits and _; it starts with a letter and never changes."
                .to_owned(),
        )
    } else if let Err(reason) = validate_link_name(&name) {
        ("bad", sentence(&reason))
    } else {
        let store = state.store.clone();
        let lookup = name.clone();
        let taken = stored(async move { store.sealed_connection(None, &lookup).await })
            .await?
            .is_some();
        if taken {
            ("bad", format!("`{name}` is taken by another connection."))
        } else {
            (
                "ok",
                format!("`{name}` is free. Plugins will call .connection(\"{name}\")."),
            )
        }
    };
    let html = format!(
        "<span class=\"check {class}\">{}</span>",
        super::escape(&text)
    );
    Ok(axum::response::Html(html).into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(fields): Form<NewFields>,
) -> Result<Response, PageError> {
    let store = state.store.clone();
    let wanted = fields.service.clone();
    let service = stored(async move { store.service(&wanted).await }).await?;
    let Some(service) = service else {
        let message = "Choose the service this connection belongs to.".to_owned();
        return error_form(&state, &session, fields, message).await;
    };
    let link = fields.link_name.trim().to_owned();
    if let Err(reason) = validate_link_name(&link) {
        return error_form(
            &state,
            &session,
            fields,
            format!("Link name: {}", sentence(&reason)),
        )
        .await;
    }
    let credentials = match service.auth_type {
        AuthType::Oauth2 => None,
        AuthType::ApiKey => Some(api::CredentialsInput::ApiKey {
            key: fields.key.clone(),
        }),
        AuthType::Bearer => Some(api::CredentialsInput::Bearer {
            token: fields.token.clone(),
        }),
        AuthType::Basic => Some(api::CredentialsInput::Basic {
            username: fields.username.clone(),
            password: fields.password.clone(),
        }),
    };
    let metadata = match key_values(&fields.metadata, "Metadata") {
        Ok(map) => map,
        Err(message) => return error_form(&state, &session, fields, message).await,
    };
    let scopes = if service.auth_type == AuthType::Oauth2 {
        words(&fields.scopes)
    } else {
        Vec::new()
    };
    let end_user = fields.end_user.trim().to_owned();
    let end_user = (!end_user.is_empty()).then_some(end_user);
    let key = ConnectionKey::new(end_user.as_deref(), &link);
    let input = api::CreateConnection {
        link_name: link.clone(),
        end_user,
        service: service.name.clone(),
        credentials,
        metadata,
        scopes,
    };
    if let Err(err) = api::create(&state.store, input).await {
        let message = in_words(err);
        return error_form(&state, &session, fields, message).await;
    }
    let page = connection_path(&key);
    if service.auth_type != AuthType::Oauth2 {
        return Ok(done(
            Flash::ok(format!("Connection {key} is created and connected.")),
            &page,
        ));
    }
    Ok(connect(&state, &key).await)
}

async fn error_form(
    state: &AppState,
    session: &Session,
    mut fields: NewFields,
    message: String,
) -> Result<Response, PageError> {
    fields.key.clear();
    fields.token.clear();
    fields.password.clear();
    let mut response = new_page(state, session, fields, Some(message)).await?;
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}

/// Starts the OAuth flow: off to the provider, or (client credentials)
/// straight back to the connection's page.
async fn connect(state: &AppState, key: &ConnectionKey) -> Response {
    let page = connection_path(key);
    match state
        .oauth
        .authorize(
            &state.store,
            key,
            &redirect_uri(state),
            junction_oauth::Requester::Console,
        )
        .await
    {
        Ok(Started::Redirect { url, .. }) => see_other(&url),
        Ok(Started::Connected) => done(
            Flash::ok(format!("{key} is connected (client credentials).")),
            &page,
        ),
        Err(err) => done(
            Flash::error(format!(
                "Could not start connecting: {}",
                flow_words(flow_error(err))
            )),
            &page,
        ),
    }
}

#[derive(Template)]
#[template(path = "connection.html")]
struct ConnectionPage {
    page: Chrome,
    /// Where its action forms post, before `/{action}`, and the query after.
    action: (String, String),
    c: ConnectionView,
    oauth: bool,
    status: &'static str,
    status_class: &'static str,
    expires: String,
    last_refresh: String,
    created: String,
    history: Vec<(String, &'static str, &'static str, String)>,
    snippet: String,
    manifest: String,
}

/// Whose connection a page means: `?end_user=`, absent for the organisation's.
#[derive(Deserialize, Default)]
pub(super) struct OwnerQuery {
    #[serde(default)]
    end_user: Option<String>,
}

impl OwnerQuery {
    fn key(&self, link: &str) -> ConnectionKey {
        ConnectionKey::new(self.end_user.as_deref().filter(|u| !u.is_empty()), link)
    }
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(link): Path<String>,
    Query(owner): Query<OwnerQuery>,
) -> Result<Response, PageError> {
    let key = owner.key(&link);
    let view = api::get(&state.store, &key).await?;
    let (status, status_class) = format::status(view.status);
    let when = |ms: Option<u64>| match ms {
        Some(ms) => format!("{} ({})", format::time(ms), format::relative(ms)),
        None => "—".to_owned(),
    };
    let page = ConnectionPage {
        page: Chrome::new(&session, "connections", format!("Connection {key}")),
        action: connection_action_base(&key),
        oauth: view.auth_type == Some(AuthType::Oauth2),
        status,
        status_class,
        expires: when(view.expires_at_ms),
        last_refresh: when(view.last_refresh_ms),
        created: format::time(view.created_at_ms),
        history: view
            .history
            .iter()
            .rev()
            .map(|change| {
                let (label, class) = format::status(change.status);
                (
                    format::time(change.at_ms),
                    label,
                    class,
                    change.reason.clone(),
                )
            })
            .collect(),
        snippet: format!(
            "use junction_sdk::Request;\n\nlet campaigns: serde_json::Value = Request::get(\"/campaigns\")\n    .connection(\"{link}\")\n    .send()?\n    .error_for_status()?\n    .json()?;"
        ),
        manifest: format!("[package.metadata.junction]\nconnections = [\"{link}\"]"),
        c: view,
    };
    Ok(render(&page))
}

async fn act(
    State(state): State<AppState>,
    Path((link, action)): Path<(String, String)>,
    Query(owner): Query<OwnerQuery>,
) -> Result<Response, PageError> {
    let key = owner.key(&link);
    let page = connection_path(&key);
    let outcome = match action.as_str() {
        "connect" => return Ok(connect(&state, &key).await),
        "refresh" => after_flow(&state, &key, state.tokens.refresh_now(&key).await)
            .await
            .map(|view| {
                format!(
                    "The token is refreshed; it expires {}.",
                    view.expires_at_ms
                        .map(format::relative)
                        .unwrap_or_else(|| "when the provider decides".into())
                )
            }),
        "revoke" => after_flow(&state, &key, state.tokens.revoke(&key).await)
            .await
            .map(|_| format!("The tokens of {key} are revoked; connect again to use it.")),
        "delete" => {
            return Ok(match api::delete(&state.store, &key).await {
                Ok(_) => done(
                    Flash::ok(format!("Connection {key} and its credentials are deleted.")),
                    "/connections",
                ),
                Err(err) => done(Flash::error(in_words(err)), &page),
            });
        }
        other => {
            return Err(PageError::not_found(format!(
                "A connection has no action `{other}`."
            )));
        }
    };
    let flash = match outcome {
        Ok(message) => Flash::ok(message),
        Err(err) if err.status == StatusCode::NOT_FOUND => return Err(err.into()),
        Err(err) => Flash::error(flow_words(err)),
    };
    Ok(done(flash, &page))
}

/// The connection as it is after an OAuth `flow` on it, or why the flow failed.
async fn after_flow<T>(
    state: &AppState,
    key: &ConnectionKey,
    flow: Result<T, junction_oauth::FlowError>,
) -> Result<ConnectionView, ApiError> {
    flow.map_err(flow_error)?;
    Ok(api::get(&state.store, key).await?)
}
