//! Console pages for plugins: the list (active version, size, triggers,
//! last run, error rate), upload from the browser (component and manifest),
//! and a plugin's page with its versions (activate an older one), granted
//! connections, triggers, recent executions and "Run now" with a payload
//! editor.

use askama::Template;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use super::executions::{Detail, DetailFragment, Row};
use super::session::{self, Flash, Session};
use super::{Chrome, PageError, done, format, in_words, render, see_other, segment, sentence};
use crate::error::ApiError;
use crate::plugins::read_part;
use crate::{AppState, stored};
use junction_app::AppError;
use junction_app::plugins::{self as api, InvokeRequest};
use junction_app::registry::RegistryError;
use junction_app::registry::Upload;
use junction_core::manifest::Manifest;
use junction_store::{ExecutionQuery, validate_plugin_name};

pub fn routes(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/plugins", get(list))
        .route(
            "/plugins/new",
            get(upload_form)
                .post(upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/plugins/{name}", get(show))
        .route("/plugins/{name}/run", post(run))
        .route("/plugins/{name}/rollback", post(rollback))
        .route("/plugins/{name}/delete", post(delete))
}

/// Executions the list's last run and error rate are taken from.
const RECENT: usize = 50;

struct PluginRow {
    name: String,
    version: u32,
    language: String,
    size: String,
    triggers: usize,
    last_run: String,
    last_ok: Option<bool>,
    error_rate: String,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "plugins.html")]
struct ListPage {
    page: Chrome,
    rows: Vec<PluginRow>,
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let plugins = api::list(&state.store, &state.registry).await?;
    let names: Vec<String> = plugins.iter().map(|p| p.name.clone()).collect();
    let store = state.store.clone();
    let recent = stored(async move {
        let mut recent = Vec::new();
        for plugin in names {
            let query = ExecutionQuery {
                end_user: None,
                plugin: Some(plugin),
                ok: None,
                limit: RECENT,
            };
            recent.push(store.executions(&query).await?);
        }
        Ok(recent)
    })
    .await?;
    let rows = plugins
        .iter()
        .zip(recent)
        .map(|(plugin, records)| {
            let failed = records.iter().filter(|r| !r.is_ok()).count();
            PluginRow {
                name: plugin.name.clone(),
                version: plugin.active_version,
                language: language_name(plugin.language),
                size: format::bytes(plugin.size),
                triggers: plugin.triggers.len(),
                last_run: records
                    .first()
                    .map(|r| format::relative(r.started_at_ms))
                    .unwrap_or_else(|| "never".into()),
                last_ok: records.first().map(|r| r.is_ok()),
                error_rate: if records.is_empty() {
                    "—".into()
                } else {
                    format!(
                        "{:.0}% of the last {}",
                        100.0 * failed as f64 / records.len() as f64,
                        records.len()
                    )
                },
                problem: plugin.load_error.clone(),
            }
        })
        .collect();
    let page = ListPage {
        page: Chrome::new(&session, "plugins", "Plugins"),
        rows,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "plugin_upload.html")]
struct UploadPage {
    page: Chrome,
    name: String,
    max: String,
}

fn upload_page(state: &AppState, chrome: Chrome, name: String) -> UploadPage {
    UploadPage {
        page: chrome,
        name,
        max: format::bytes(state.registry.max_component_bytes() as u64),
    }
}

async fn upload_form(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let chrome = Chrome::new(&session, "plugins", "Upload a plugin");
    render(&upload_page(&state, chrome, String::new()))
}

/// What the upload form sent.
#[derive(Default)]
struct UploadFields {
    csrf: Option<String>,
    name: String,
    component: Vec<u8>,
    manifest_file: Vec<u8>,
    manifest_text: String,
}

/// Why an upload form could not be read.
enum UploadProblem {
    /// It did not start with this session's CSRF token.
    Forged,
    /// It broke off or a part was too large, in words.
    Unreadable(String),
}

async fn read_upload(mut form: Multipart, max: usize) -> Result<UploadFields, UploadProblem> {
    let unreadable = |e: ApiError| UploadProblem::Unreadable(sentence(&e.into_message()));
    let mut fields = UploadFields::default();
    while let Some(mut field) = form.next_field().await.map_err(|e| {
        UploadProblem::Unreadable(format!("The upload broke off: {}", e.body_text()))
    })? {
        let part = field.name().unwrap_or("").to_owned();
        // The token comes first, so nothing more is read of a forged form.
        if part != session::CSRF_FIELD && fields.csrf.is_none() {
            return Err(UploadProblem::Forged);
        }
        let bytes = read_part(&mut field, max, &part)
            .await
            .map_err(unreadable)?;
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match part.as_str() {
            session::CSRF_FIELD => fields.csrf = Some(text()),
            "name" => fields.name = text().trim().to_owned(),
            "component" => fields.component = bytes,
            "manifest_file" => fields.manifest_file = bytes,
            "manifest_text" => fields.manifest_text = text(),
            _ => {}
        }
    }
    Ok(fields)
}

/// The manifest: a plugin's project file (`Cargo.toml`, `pyproject.toml` or
/// `package.json`, told by its content) or the JSON form; none is an empty
/// manifest.
fn parse_manifest(fields: &UploadFields) -> Result<Manifest, String> {
    let text = if fields.manifest_text.trim().is_empty() {
        String::from_utf8(fields.manifest_file.clone()).map_err(|_| {
            "The manifest file is not text; choose the plugin's Cargo.toml, pyproject.toml or package.json."
        })?
    } else {
        fields.manifest_text.clone()
    };
    if text.trim().is_empty() {
        return Ok(Manifest::default());
    }
    Manifest::from_project_text(&text, "the manifest")
        .map_err(|e| format!("The manifest: {}", sentence(&e.to_string())))
}

async fn upload(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    let max = state.registry.max_component_bytes();
    let form = form.map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Not an upload",
            "Send the form from the upload page: it posts the component as a file.",
        )
    })?;
    let fields = match read_upload(form, max).await {
        Ok(fields) => fields,
        Err(UploadProblem::Forged) => return Err(session::refused()),
        Err(UploadProblem::Unreadable(message)) => {
            return Ok(upload_error(&state, &session, String::new(), message));
        }
    };
    session::csrf_matches(&session, fields.csrf.as_deref().unwrap_or(""))?;
    let name = fields.name.clone();
    if let Err(reason) = validate_plugin_name(&name) {
        return Ok(upload_error(
            &state,
            &session,
            name,
            format!("Plugin name: {}", sentence(&reason)),
        ));
    }
    if fields.component.is_empty() {
        return Ok(upload_error(
            &state,
            &session,
            name,
            "Choose the component file (the .wasm built for wasm32-wasip2).".into(),
        ));
    }
    let manifest = match parse_manifest(&fields) {
        Ok(manifest) => manifest,
        Err(message) => return Ok(upload_error(&state, &session, name, message)),
    };
    let deployed = api::deploy(
        &state.registry,
        &state.events,
        Upload {
            name: name.clone(),
            component: fields.component,
            manifest,
            grants: None,
        },
    )
    .await;
    match deployed {
        Ok(deployed) => {
            let version = deployed.version;
            let mut text = format!(
                "Version {} of {name} is active ({}, compiled in {:.0} ms).",
                version.version,
                format::bytes(version.size),
                deployed.compile_ms
            );
            if !version.missing_connections.is_empty() {
                text.push_str(&format!(
                    " It asks for connections that do not exist yet: {}.",
                    version.missing_connections.join(", ")
                ));
            }
            Ok(done(
                Flash::ok(text),
                &format!("/plugins/{}", segment(&name)),
            ))
        }
        Err(err) => {
            let not_a_component = matches!(err, AppError::Registry(RegistryError::Load(_)));
            let message = if not_a_component {
                format!(
                    "The file is not a component Junction can run. {}",
                    in_words(err)
                )
            } else {
                in_words(err)
            };
            Ok(upload_error(&state, &session, name, message))
        }
    }
}

fn upload_error(state: &AppState, session: &Session, name: String, message: String) -> Response {
    let chrome = Chrome::new(session, "plugins", "Upload a plugin").with_error(message);
    let mut response = render(&upload_page(state, chrome, name));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// A plugin's language as the console shows it.
fn language_name(language: Option<junction_core::Language>) -> String {
    language.map_or_else(|| "—".to_owned(), |l| l.display_name().to_owned())
}

struct VersionRow {
    version: u32,
    active: bool,
    language: String,
    size: String,
    sha: String,
    uploaded: String,
    granted: String,
}

struct TriggerRow {
    id: String,
    text: String,
    next: String,
}

/// A trigger as written, in a line: `event: campaign.*, retries: 3`.
fn describe_trigger(trigger: &serde_json::Value) -> String {
    match trigger.as_object() {
        Some(fields) => fields
            .iter()
            .map(|(key, value)| match value.as_str() {
                Some(text) => format!("{key}: {text}"),
                None => format!("{key}: {value}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => trigger.to_string(),
    }
}

#[derive(Template)]
#[template(path = "plugin.html")]
struct PluginPage {
    page: Chrome,
    name: String,
    version: u32,
    language: String,
    size: String,
    problem: Option<String>,
    granted: Vec<String>,
    missing: Vec<String>,
    allowed_hosts: Vec<String>,
    versions: Vec<VersionRow>,
    triggers: Vec<TriggerRow>,
    rows: Vec<Row>,
    /// The live list's filter.
    stream: String,
    payload: String,
    kind: String,
    result: Option<Detail>,
    /// The MCP tool it offers: name, description, input schema as JSON.
    tool: Option<(String, String, String)>,
}

async fn plugin_page(
    state: &AppState,
    session: &Session,
    name: &str,
    kind: String,
    payload: String,
    result: Option<Detail>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let detail = api::get(&state.store, &state.registry, name).await?;
    let triggers: Vec<TriggerRow> = state
        .events
        .index()
        .all()
        .iter()
        .filter(|t| t.plugin == name)
        .map(|t| {
            let view = crate::events::trigger_view(state, t);
            TriggerRow {
                id: view.id,
                text: describe_trigger(&view.trigger),
                next: view
                    .next_fire_at_ms
                    .map(|ms| format!("next {}", format::relative(ms)))
                    .or(view.webhook_path)
                    .unwrap_or_default(),
            }
        })
        .collect();
    let store = state.store.clone();
    let plugin = name.to_owned();
    let records = stored(async move {
        store
            .executions(&ExecutionQuery {
                end_user: None,
                plugin: Some(plugin),
                ok: None,
                limit: 20,
            })
            .await
    })
    .await?;
    let summary = &detail.summary;
    let mut chrome = Chrome::new(session, "plugins", format!("Plugin {name}"));
    if let Some(error) = error {
        chrome = chrome.with_error(error);
    }
    let page = PluginPage {
        page: chrome,
        name: summary.name.clone(),
        version: summary.active_version,
        language: language_name(summary.language),
        size: format::bytes(summary.size),
        problem: summary.load_error.clone(),
        granted: summary.granted_connections.clone(),
        missing: summary.missing_connections.clone(),
        allowed_hosts: summary.allowed_hosts.clone(),
        versions: detail
            .versions
            .iter()
            .rev()
            .map(|v| VersionRow {
                version: v.version,
                active: v.version == summary.active_version,
                language: language_name(v.language),
                size: format::bytes(v.size),
                sha: v.sha256.chars().take(12).collect(),
                uploaded: format::time(v.created_at_ms),
                granted: v.granted_connections.join(", "),
            })
            .collect(),
        triggers,
        rows: records.iter().map(Row::from).collect(),
        stream: format!("plugin={}", segment(name)),
        payload,
        kind,
        result,
        tool: detail
            .versions
            .iter()
            .find(|v| v.version == summary.active_version)
            .and_then(|v| v.manifest.tool.as_ref())
            .map(|tool| {
                (
                    tool.name.clone(),
                    tool.description.clone(),
                    serde_json::to_string_pretty(&tool.input_schema).unwrap_or_default(),
                )
            }),
    };
    Ok(render(&page))
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    plugin_page(
        &state,
        &session,
        &name,
        "invoke".into(),
        "{\n  \"name\": \"Ada\"\n}".into(),
        None,
        None,
    )
    .await
}

#[derive(Deserialize)]
struct RunFields {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    payload: String,
}

/// Where in the payload JSON is broken, in words.
fn payload_error(err: &serde_json::Error) -> String {
    format!(
        "The payload is not valid JSON: {} (line {}, column {}).",
        sentence(&err.to_string())
            .trim_end_matches('.')
            .split(" at line")
            .next()
            .unwrap_or(""),
        err.line(),
        err.column()
    )
}

/// `POST /plugins/{name}/run`: runs the active version now. An htmx request
/// gets the execution record in place; a plain form post its page.
async fn run(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<RunFields>,
) -> Result<Response, PageError> {
    let htmx = headers.contains_key("hx-request");
    let kind = fields.kind.trim().to_owned();
    let payload_text = if fields.payload.trim().is_empty() {
        "{}"
    } else {
        fields.payload.as_str()
    };
    let fail = |message: String| async {
        if htmx {
            Ok((
                StatusCode::OK,
                axum::response::Html(format!(
                    "<div class=\"flash error\" role=\"alert\" id=\"run-error\">{}</div>",
                    super::escape(&message)
                )),
            )
                .into_response())
        } else {
            plugin_page(
                &state,
                &session,
                &name,
                kind.clone(),
                fields.payload.clone(),
                None,
                Some(message),
            )
            .await
            .map(|mut response| {
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
            })
        }
    };
    let payload: Box<serde_json::value::RawValue> = match serde_json::from_str(payload_text) {
        Ok(payload) => payload,
        Err(err) => return fail(payload_error(&err)).await,
    };
    let request = InvokeRequest {
        end_user: None,
        kind: Some(kind.clone()).filter(|k| !k.is_empty()),
        payload: Some(payload),
        id: None,
    };
    let record = match api::invoke(&state.registry, &state.events, &name, request).await {
        Ok(encoded) => encoded.value,
        Err(err @ AppError::Registry(RegistryError::NotFound(_))) => return Err(err.into()),
        Err(err) => return fail(in_words(err)).await,
    };
    if htmx {
        let detail = Detail::from(&record);
        return Ok(render(&DetailFragment { detail: &detail }));
    }
    Ok(see_other(&format!("/executions/{}", segment(&record.id))))
}

#[derive(Deserialize)]
struct RollbackFields {
    version: u32,
}

async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(fields): Form<RollbackFields>,
) -> Response {
    let page = format!("/plugins/{}", segment(&name));
    let flash = match api::rollback(
        &state.store,
        &state.registry,
        &state.events,
        &name,
        Some(fields.version),
    )
    .await
    {
        Ok(_) => Flash::ok(format!(
            "Version {} of {name} is active again.",
            fields.version
        )),
        Err(err) => Flash::error(in_words(err)),
    };
    done(flash, &page)
}

async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match api::delete(&state.registry, &state.events, &name).await {
        Ok(_) => done(
            Flash::ok(format!(
                "{name} is deleted, with every version, its key-value data and its triggers."
            )),
            "/plugins",
        ),
        Err(err) => done(
            Flash::error(in_words(err)),
            &format!("/plugins/{}", segment(&name)),
        ),
    }
}
