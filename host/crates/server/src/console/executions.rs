//! Console pages for what ran: the execution list (filtered by plugin and
//! outcome, with new executions streamed in over server-sent events as
//! rendered rows), one execution in full (output, logs, `invoke-url` calls,
//! timing), and the dead-letter list with "retry".

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures::StreamExt;
use serde::Deserialize;

use super::session::{Flash, Session};
use super::{Chrome, PageError, done, format, render, sentence};
use crate::executions::{Followed, follow, parse_status};
use crate::{AppState, stored};
use junction_runtime::{ExecutionRecord, Failure, Outcome};
use junction_store::{DeliveryQuery, DeliveryState, ExecutionQuery};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/executions", get(list))
        .route("/executions/stream", get(stream))
        .route("/executions/{id}", get(show))
        .route("/deliveries", get(deliveries))
        .route("/deliveries/{id}/retry", post(retry))
}

/// An execution in a list.
pub struct Row {
    pub id: String,
    pub plugin: String,
    pub kind: String,
    pub started: String,
    pub ago: String,
    pub wall: String,
    pub ok: bool,
    pub failure: String,
    pub calls: usize,
}

/// A failure's kind in words.
pub fn failure_words(failure: Failure) -> &'static str {
    match failure {
        Failure::Trap => "crashed",
        Failure::Timeout => "timed out",
        Failure::MemoryLimit => "ran out of memory",
        Failure::LimitExceeded => "went over a limit",
        Failure::PluginError => "returned an error",
    }
}

impl From<&ExecutionRecord> for Row {
    fn from(record: &ExecutionRecord) -> Self {
        let failure = match &record.outcome {
            Outcome::Ok { .. } => String::new(),
            Outcome::Failed { failure, message } => {
                let mut text = format!("{}: {message}", failure_words(*failure));
                if text.len() > 160 {
                    let mut cut = 157;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push('…');
                }
                text
            }
        };
        Row {
            id: record.id.clone(),
            plugin: record.plugin.clone(),
            kind: record.event_kind.clone(),
            started: format::time(record.started_at_ms),
            ago: format::relative(record.started_at_ms),
            wall: format::millis(record.wall_time_ms),
            ok: record.is_ok(),
            failure,
            calls: record.calls.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "execution_row.html")]
struct RowFragment<'a> {
    row: &'a Row,
}

#[derive(Deserialize)]
struct Filter {
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    status: String,
}

impl Filter {
    fn plugin(&self) -> Option<String> {
        Some(self.plugin.trim().to_owned()).filter(|p| !p.is_empty())
    }

    fn ok(&self) -> Result<Option<bool>, PageError> {
        let status = Some(self.status.as_str()).filter(|s| !s.is_empty());
        parse_status(status).map_err(|_| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "Unknown status",
                format!("Filter by status “ok” or “failed”, not “{}”.", self.status),
            )
        })
    }

    /// The same filter as a query string for the live stream.
    fn query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(plugin) = self.plugin() {
            query.append_pair("plugin", &plugin);
        }
        if !self.status.is_empty() {
            query.append_pair("status", &self.status);
        }
        query.finish()
    }
}

#[derive(Template)]
#[template(path = "executions.html")]
struct ListPage {
    page: Chrome,
    plugins: Vec<String>,
    plugin: String,
    status: String,
    stream: String,
    rows: Vec<Row>,
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    let ok = filter.ok()?;
    let reads = junction_store::Reads {
        plugins: true,
        executions: Some(ExecutionQuery {
            end_user: None,
            plugin: filter.plugin(),
            ok,
            limit: 100,
        }),
        ..Default::default()
    };
    let junction_store::Snapshot {
        executions: records,
        plugins,
        ..
    } = stored(state.store.snapshot(&reads)).await?;
    let page = ListPage {
        page: Chrome::new(&session, "executions", "Executions"),
        plugins: plugins.into_iter().map(|p| p.name).collect(),
        stream: filter.query(),
        plugin: filter.plugin,
        status: filter.status,
        rows: records.iter().map(Row::from).collect(),
    };
    Ok(render(&page))
}

/// `GET /executions/stream`: each new execution as a rendered table row,
/// for htmx's SSE extension to put on top of the list.
async fn stream(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    let ok = filter.ok()?;
    let events = follow(&state, filter.plugin(), ok, None).filter_map(|followed| async move {
        match followed {
            Followed::Record(record) => {
                let row = Row::from(record.as_ref());
                let html = RowFragment { row: &row }.render().ok()?;
                Some(Ok::<_, std::convert::Infallible>(
                    Event::default().event("execution").data(html),
                ))
            }
            // The page reloads to catch up; a row-by-row list cannot.
            Followed::Lagged(_) => Some(Ok(Event::default().event("lagged").data("reload"))),
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A log line as shown.
pub struct LogRow {
    pub at: String,
    pub level: String,
    pub message: String,
}

/// An `invoke-url` call as shown.
pub struct CallRow {
    pub method: String,
    pub url: String,
    pub status: String,
    pub ok: bool,
    pub duration: String,
    pub connection: String,
}

#[derive(Template)]
#[template(path = "execution.html")]
pub struct DetailPage {
    page: Chrome,
    detail: Detail,
}

/// One execution, ready to show (also the "Run now" result).
pub struct Detail {
    pub row: Row,
    pub event_id: String,
    pub delivery: Option<(String, u32)>,
    pub failure_kind: String,
    pub message: String,
    pub output: String,
    pub memory: String,
    pub logs: Vec<LogRow>,
    pub logs_truncated: bool,
    pub calls: Vec<CallRow>,
}

impl From<&ExecutionRecord> for Detail {
    fn from(record: &ExecutionRecord) -> Self {
        let (failure_kind, message, output) = match &record.outcome {
            Outcome::Ok { output } => (
                String::new(),
                String::new(),
                serde_json::to_string_pretty(output).unwrap_or_default(),
            ),
            Outcome::Failed { failure, message } => (
                failure_words(*failure).to_owned(),
                message.clone(),
                String::new(),
            ),
        };
        Detail {
            row: Row::from(record),
            event_id: record.event_id.clone(),
            delivery: record
                .delivery_id
                .clone()
                .map(|id| (id, record.attempt.unwrap_or(1))),
            failure_kind,
            message,
            output,
            memory: format::bytes(record.peak_memory_bytes),
            logs: record
                .logs
                .iter()
                .map(|line| LogRow {
                    at: format::millis(line.at_ms),
                    level: line.level.clone(),
                    message: line.message.clone(),
                })
                .collect(),
            logs_truncated: record.logs_truncated,
            calls: record
                .calls
                .iter()
                .map(|call| CallRow {
                    method: call.method.clone(),
                    url: call.url.clone(),
                    status: match (call.status, &call.error) {
                        (Some(status), _) => status.to_string(),
                        (None, Some(error)) => error.clone(),
                        (None, None) => "—".into(),
                    },
                    ok: call.status.is_some_and(|s| s < 400),
                    duration: format::millis(call.duration_ms),
                    connection: call.connection.clone().unwrap_or_else(|| "—".into()),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "execution_detail.html")]
pub struct DetailFragment<'a> {
    pub detail: &'a Detail,
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let store = state.store.clone();
    let lookup = id.clone();
    let record = stored(async move { store.execution(&lookup).await })
        .await?
        .ok_or_else(|| {
            PageError::not_found(format!(
                "There is no execution `{id}`; it may be older than the history keeps."
            ))
        })?;
    let page = DetailPage {
        page: Chrome::new(&session, "executions", format!("Execution {id}")),
        detail: Detail::from(&record),
    };
    Ok(render(&page))
}

struct DeliveryRow {
    id: String,
    plugin: String,
    kind: String,
    event_id: String,
    attempts: u32,
    updated: String,
    error: String,
    last_execution: Option<String>,
    retryable: bool,
    state: String,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    page: Chrome,
    state: String,
    rows: Vec<DeliveryRow>,
}

#[derive(Deserialize)]
struct DeliveryFilter {
    #[serde(default)]
    state: String,
}

async fn deliveries(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(filter): Query<DeliveryFilter>,
) -> Result<Response, PageError> {
    let wanted = if filter.state.is_empty() {
        "dead".to_owned()
    } else {
        filter.state
    };
    let parsed = DeliveryState::parse(&wanted).ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Unknown delivery state",
            format!(
                "Show deliveries that are queued, succeeded, dead or cancelled, not “{wanted}”."
            ),
        )
    })?;
    let store = state.store.clone();
    let query = DeliveryQuery {
        end_user: None,
        state: Some(parsed),
        plugin: None,
        limit: 200,
    };
    let found = stored(async move { store.deliveries(&query).await }).await?;
    let page = DeliveriesPage {
        page: Chrome::new(&session, "deliveries", "Dead letters"),
        rows: found
            .into_iter()
            .map(|d| DeliveryRow {
                retryable: matches!(d.state, DeliveryState::Dead | DeliveryState::Cancelled),
                state: d.state.as_str().to_owned(),
                id: d.id,
                plugin: d.plugin,
                kind: d.event_kind,
                event_id: d.event_id,
                attempts: d.attempts,
                updated: format::relative(d.updated_at_ms),
                error: d.last_error.unwrap_or_default(),
                last_execution: d.executions.last().cloned(),
            })
            .collect(),
        state: wanted,
    };
    Ok(render(&page))
}

async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.events.retry(&id).await {
        Ok(delivery) => done(
            Flash::ok(format!(
                "Delivery {id} to {} is queued for another attempt; it shows under Executions when it runs.",
                delivery.plugin
            )),
            "/deliveries",
        ),
        Err(err) => done(
            Flash::error(sentence(&crate::error::ApiError::from(err).into_message())),
            "/deliveries",
        ),
    }
}
