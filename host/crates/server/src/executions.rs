//! `/v1/executions`: the execution history, newest first, filtered by plugin
//! and status, one execution in full (output, logs, calls, timing), and a
//! live stream of executions as they are recorded (server-sent events).

use axum::Json;
use axum::extract::{Path, Query, State};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::{AppState, stored};
use junction_runtime::{ExecutionRecord, Failure, Outcome};
use junction_store::ExecutionQuery;

/// Filters for the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this plugin's executions.
    plugin: Option<String>,
    /// Only those run for this end user.
    end_user: Option<String>,
    /// `ok` or `failed`.
    status: Option<String>,
    /// At most this many (default 50, at most 1000).
    limit: Option<usize>,
}

/// One execution, without its output, logs and calls.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionSummary {
    /// Its id (for `GET /v1/executions/{id}`).
    pub id: String,
    /// The plugin.
    pub plugin: String,
    /// The event's id.
    pub event_id: String,
    /// The event's kind.
    pub event_kind: String,
    /// The end user it ran for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// The delivery it was an attempt of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// Which attempt, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When it started.
    pub started_at_ms: u64,
    /// Wall time.
    pub wall_time_ms: f64,
    /// `ok` or `failed`.
    pub status: String,
    /// How it failed.
    pub failure: Option<Failure>,
    /// The failure's message.
    pub message: Option<String>,
    /// How many `invoke-url` calls it made.
    pub calls: usize,
    /// How many log lines it wrote.
    pub log_lines: usize,
}

impl From<&ExecutionRecord> for ExecutionSummary {
    fn from(record: &ExecutionRecord) -> Self {
        let (status, failure, message) = match &record.outcome {
            Outcome::Ok { .. } => ("ok", None, None),
            Outcome::Failed { failure, message } => {
                ("failed", Some(*failure), Some(message.clone()))
            }
        };
        ExecutionSummary {
            id: record.id.clone(),
            plugin: record.plugin.clone(),
            event_id: record.event_id.clone(),
            event_kind: record.event_kind.clone(),
            end_user: record.end_user.clone(),
            delivery_id: record.delivery_id.clone(),
            attempt: record.attempt,
            started_at_ms: record.started_at_ms,
            wall_time_ms: record.wall_time_ms,
            status: status.to_owned(),
            failure,
            message,
            calls: record.calls.len(),
            log_lines: record.logs.len(),
        }
    }
}

/// Lists executions, newest first.
#[utoipa::path(
    get,
    path = "/v1/executions",
    tag = "executions",
    params(ListQuery),
    responses(
        (status = 200, body = [ExecutionSummary]),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn list_executions(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ExecutionSummary>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let ok = parse_status(query.status.as_deref())?;
    let limit = super::page_limit(query.limit)?;
    let filter = ExecutionQuery {
        plugin: query.plugin,
        end_user: super::connections::end_user_filter(query.end_user)?,
        ok,
        limit,
    };
    let store = state.store.clone();
    let records = stored(async move { store.executions(&filter).await }).await?;
    Ok(Json(records.iter().map(ExecutionSummary::from).collect()))
}

/// One execution in full.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, body = ExecutionRecord),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn get_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    let store = state.store.clone();
    let lookup = id.clone();
    stored(async move { store.execution(&lookup).await })
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no execution with id `{id}`")))
}

pub(crate) fn parse_status(status: Option<&str>) -> Result<Option<bool>, ApiError> {
    match status {
        None => Ok(None),
        Some("ok") => Ok(Some(true)),
        Some("failed") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(format!(
            "status `{other}` is not `ok` or `failed`"
        ))),
    }
}

/// Filters for the live stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only this plugin's executions.
    plugin: Option<String>,
    /// Only those run for this end user.
    end_user: Option<String>,
    /// `ok` or `failed`.
    status: Option<String>,
}

/// Follows executions as they are recorded: a `text/event-stream` whose
/// `execution` events carry an [`ExecutionSummary`] as JSON. A follower too
/// slow to keep up gets a `lagged` event with how many it missed.
#[utoipa::path(
    get,
    path = "/v1/executions/stream",
    tag = "executions",
    params(StreamQuery),
    responses(
        (status = 200, description = "Server-sent events, one `execution` event per recorded execution", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn stream_executions(
    State(state): State<AppState>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<
    axum::response::Sse<
        impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive};
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let ok = parse_status(query.status.as_deref())?;
    let end_user = super::connections::end_user_filter(query.end_user)?;
    let stream = follow(&state, query.plugin, ok, end_user).map(|followed| {
        Ok(match followed {
            Followed::Record(record) => {
                let summary = ExecutionSummary::from(record.as_ref());
                let data = serde_json::to_string(&summary).unwrap_or_default();
                Event::default()
                    .event("execution")
                    .id(summary.id.clone())
                    .data(data)
            }
            Followed::Lagged(missed) => Event::default()
                .event("lagged")
                .data(format!("{{\"missed\": {missed}}}")),
        })
    });
    Ok(axum::response::Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// What a follower of the execution history sees.
pub(crate) enum Followed {
    /// An execution, just recorded.
    Record(std::sync::Arc<ExecutionRecord>),
    /// It fell behind and missed this many.
    Lagged(u64),
}

/// Executions as they are recorded, filtered by plugin, outcome and end user. The
/// stream ends when the server stops, so a follower does not hold up a
/// graceful shutdown.
pub(crate) fn follow(
    state: &AppState,
    plugin: Option<String>,
    ok: Option<bool>,
    end_user: Option<String>,
) -> impl futures::Stream<Item = Followed> + Send + use<> {
    use tokio::sync::broadcast::error::RecvError;
    let receiver = state.events.journal().subscribe();
    let stopping = state.stopping.clone();
    futures::stream::unfold((receiver, stopping), move |(mut receiver, mut stopping)| {
        let plugin = plugin.clone();
        let end_user = end_user.clone();
        async move {
            loop {
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    _ = stopping.wait_for(|stop| *stop) => return None,
                };
                match received {
                    Ok(record) => {
                        if plugin.as_ref().is_some_and(|p| *p != record.plugin)
                            || ok.is_some_and(|want| want != record.is_ok())
                            || end_user
                                .as_ref()
                                .is_some_and(|u| Some(u) != record.end_user.as_ref())
                        {
                            continue;
                        }
                        return Some((Followed::Record(record), (receiver, stopping)));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        return Some((Followed::Lagged(missed), (receiver, stopping)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}
