//! `/v1/events`, `/v1/deliveries` and `/v1/triggers`: accept an event (202
//! once it is durable), show an event with each delivery's state, list and
//! retry deliveries (the dead-letter list is `?state=dead`), and list, add
//! and remove triggers; plus a webhook's secret, issued once.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ErrorBody, PayloadJson};
use super::{AppState, stored};
use junction_events::index::TriggerSource;
use junction_events::trigger::{Trigger, TriggerKind};
use junction_events::{EventsError, Incoming};
use junction_store::{Change, Delivery, DeliveryQuery, DeliveryState, EventRecord, now_ms};

impl From<EventsError> for ApiError {
    fn from(err: EventsError) -> Self {
        match err {
            EventsError::Invalid(message) => ApiError::invalid(message),
            EventsError::TooLarge(_) => ApiError::too_large(err.to_string()),
            EventsError::NotFound { .. } => ApiError::not_found(err.to_string()),
            EventsError::Conflict(message) => ApiError::conflict(message),
            EventsError::Store(err) => err.into(),
            other => ApiError::failed(&other),
        }
    }
}

/// An event to accept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventRequest {
    /// Its kind, e.g. `lead.created` (a-z, 0-9, `.`, `_`, `-`).
    pub kind: String,
    /// Any JSON, at most 1 MiB, kept as sent.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Option<Box<serde_json::value::RawValue>>,
    /// The same key within 24 h returns the first event and queues nothing.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The end user it runs for: the plugins' requests use their connections.
    #[serde(default)]
    pub end_user: Option<String>,
}

/// An accepted event.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcceptedEvent {
    /// The event's id (the first one's, for a repeated idempotency key).
    pub id: String,
    /// How many plugins it was delivered to.
    pub matched: usize,
    /// Whether an earlier event had this idempotency key.
    pub duplicate: bool,
}

/// An event and where each of its deliveries stands.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventView {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `api`, `webhook`, `schedule` or `connection`.
    pub source: String,
    /// When it happened.
    pub occurred_at_ms: u64,
    /// When it was committed.
    pub accepted_at_ms: u64,
    /// The idempotency key it came with.
    pub idempotency_key: Option<String>,
    /// The end user it runs for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// One per plugin it went to.
    pub deliveries: Vec<Delivery>,
}

impl From<junction_events::Accepted> for AcceptedEvent {
    fn from(accepted: junction_events::Accepted) -> Self {
        AcceptedEvent {
            id: accepted.id,
            matched: accepted.matched,
            duplicate: accepted.duplicate,
        }
    }
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > 256 || key.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "`idempotency_key` must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

/// Accepts an event: it is matched to the triggers, committed with its
/// deliveries (durably, before the answer) and queued for the dispatcher.
/// A kind no trigger matches is accepted with `matched: 0`.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(content = NewEventRequest, content_type = "application/json"),
    responses(
        (status = 202, body = AcceptedEvent),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, description = "Payload over 1 MiB", body = ErrorBody)
    )
)]
pub(crate) async fn send_event(
    State(state): State<AppState>,
    PayloadJson(request): PayloadJson<NewEventRequest>,
) -> Result<(StatusCode, Json<AcceptedEvent>), ApiError> {
    if let Some(key) = &request.idempotency_key {
        check_key(key)?;
    }
    let payload = junction_core::payload_text(request.payload);
    let accepted = state
        .events
        .ingest(Incoming {
            kind: request.kind,
            payload,
            source: "api",
            idempotency_key: request.idempotency_key,
            occurred_at_ms: now_ms(),
            targets: None,
            schedule_mark: None,
            end_user: request.end_user,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted.into())))
}

fn live(state: &AppState, mut delivery: Delivery) -> Delivery {
    if delivery.state == DeliveryState::Queued && state.events.dispatcher().is_running(&delivery.id)
    {
        delivery.state = DeliveryState::Running;
    }
    delivery
}

/// An event with each delivery's state (queued, running, succeeded, dead,
/// cancelled), attempts, last error and the executions of its attempts.
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, body = EventView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let store = state.store.clone();
    let lookup = id.clone();
    let found = stored(async move {
        let Some(event) = store.event(&lookup).await? else {
            return Ok(None);
        };
        let deliveries = store.deliveries_by_id(&event.deliveries).await?;
        Ok(Some((event, deliveries)))
    })
    .await?;
    let Some((event, deliveries)) = found else {
        return Err(ApiError::not_found(format!("no event with id `{id}`")));
    };
    let EventRecord {
        id,
        kind,
        payload,
        source,
        occurred_at_ms,
        accepted_at_ms,
        idempotency_key,
        end_user,
        ..
    } = event;
    Ok(Json(EventView {
        id,
        kind,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        source,
        occurred_at_ms,
        accepted_at_ms,
        idempotency_key,
        end_user,
        deliveries: deliveries.into_iter().map(|d| live(&state, d)).collect(),
    }))
}

/// Filters for the delivery list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// `queued`, `running`, `succeeded`, `dead` or `cancelled`.
    state: Option<String>,
    /// Only this plugin's.
    plugin: Option<String>,
    /// Only those of events run for this end user.
    end_user: Option<String>,
    /// At most this many (default 50, at most 1000).
    limit: Option<usize>,
}

/// Lists deliveries; `?state=dead` is the dead-letter list.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "events",
    params(DeliveryListQuery),
    responses(
        (status = 200, body = [Delivery]),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    query: Result<Query<DeliveryListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let wanted = match query.state.as_deref() {
        None => None,
        Some(text) => Some(DeliveryState::parse(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "state `{text}` is not one of queued, running, succeeded, dead, cancelled"
            ))
        })?),
    };
    let limit = super::page_limit(query.limit)?;
    // Running deliveries are stored as queued; filter after marking them.
    let stored_state = match wanted {
        Some(DeliveryState::Running) => Some(DeliveryState::Queued),
        other => other,
    };
    let filter = DeliveryQuery {
        state: stored_state,
        plugin: query.plugin,
        end_user: super::connections::end_user_filter(query.end_user)?,
        limit: if wanted == Some(DeliveryState::Running) {
            usize::MAX
        } else {
            limit
        },
    };
    let store = state.store.clone();
    let found = stored(async move { store.deliveries(&filter).await }).await?;
    let list = found
        .into_iter()
        .map(|d| live(&state, d))
        .filter(|d| wanted.is_none_or(|w| d.state == w))
        .take(limit)
        .collect();
    Ok(Json(list))
}

/// Queues a dead or cancelled delivery for one more attempt now.
#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/retry",
    tag = "events",
    params(("id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 202, body = Delivery),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The delivery is not dead or cancelled", body = ErrorBody)
    )
)]
pub(crate) async fn retry_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let delivery = state.events.retry(&id).await?;
    tracing::info!(delivery = %id, plugin = %delivery.plugin, "delivery queued again by hand");
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

/// A registered trigger.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriggerView {
    /// Its id (`<plugin>.m<n>` for manifest triggers, `trg_...` for API ones).
    pub id: String,
    /// The plugin it runs.
    pub plugin: String,
    /// `manifest` or `api`.
    pub source: String,
    /// `event`, `schedule`, `webhook` or `connection`.
    pub kind: String,
    /// As written.
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
    /// For webhooks: the path it is called at (the secret is not shown).
    pub webhook_path: Option<String>,
    /// For schedules: when it fires next.
    pub next_fire_at_ms: Option<u64>,
}

pub(crate) fn trigger_view(
    state: &AppState,
    registered: &junction_events::index::Registered,
) -> TriggerView {
    let (kind, webhook_path, next) = match &registered.trigger.kind {
        TriggerKind::Event { .. } => ("event", None, None),
        TriggerKind::Schedule {
            schedule, timezone, ..
        } => (
            "schedule",
            None,
            junction_events::scheduler::next_after(
                schedule,
                timezone,
                state.events.clock().now_ms(),
            ),
        ),
        TriggerKind::Webhook { name, .. } => (
            "webhook",
            Some(format!("/hooks/{}/{name}", registered.plugin)),
            None,
        ),
        TriggerKind::Connection { .. } => ("connection", None, None),
    };
    TriggerView {
        id: registered.id.clone(),
        plugin: registered.plugin.clone(),
        source: match registered.source {
            TriggerSource::Manifest => "manifest",
            TriggerSource::Api => "api",
        }
        .to_owned(),
        kind: kind.to_owned(),
        trigger: registered.spec.clone(),
        webhook_path,
        next_fire_at_ms: next,
    }
}

/// Filter for the trigger list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TriggerListQuery {
    /// Only this plugin's.
    plugin: Option<String>,
}

/// Lists every registered trigger: the active manifests' and the API's.
#[utoipa::path(
    get,
    path = "/v1/triggers",
    tag = "events",
    params(TriggerListQuery),
    responses((status = 200, body = [TriggerView]), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_triggers(
    State(state): State<AppState>,
    query: Result<Query<TriggerListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<TriggerView>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let list = state
        .events
        .index()
        .all()
        .iter()
        .filter(|t| query.plugin.as_ref().is_none_or(|p| *p == t.plugin))
        .map(|t| trigger_view(&state, t))
        .collect();
    Ok(Json(list))
}

/// A trigger to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTriggerRequest {
    /// The plugin it runs.
    pub plugin: String,
    /// As in a manifest: `{"event": "lead.*", "filter": {...}}`,
    /// `{"schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin"}`,
    /// `{"webhook": "stripe"}` or `{"connection": "needs-reauth"}`.
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
}

/// Adds a trigger to a deployed plugin (kept across deploys until removed).
#[utoipa::path(
    post,
    path = "/v1/triggers",
    tag = "events",
    request_body(content = NewTriggerRequest, content_type = "application/json"),
    responses(
        (status = 201, body = TriggerView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn create_trigger(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewTriggerRequest>,
) -> Result<(StatusCode, Json<TriggerView>), ApiError> {
    Trigger::parse(&request.trigger).map_err(|e| ApiError::invalid(format!("trigger: {e}")))?;
    let store = state.store.clone();
    let plugin = request.plugin.clone();
    if stored(async move { store.plugin(&plugin).await })
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no plugin named `{}`",
            request.plugin
        )));
    }
    let id = format!("trg_{}", hex::encode(rand::random::<[u8; 8]>()));
    let trigger = serde_json::json!({
        "id": id,
        "plugin": request.plugin,
        "trigger": request.trigger,
        "created_at_ms": now_ms(),
    });
    let store = state.store.clone();
    let key = id.clone();
    stored(async move { store.put_trigger(&key, &trigger).await }).await?;
    state.events.reload_triggers().await?;
    state.store.tell_other_hosts(Change::Triggers).await;
    let registered = state
        .events
        .index()
        .get(&id)
        .ok_or_else(|| ApiError::internal("the new trigger is not in the index"))?;
    Ok((StatusCode::CREATED, Json(trigger_view(&state, &registered))))
}

/// Removes a trigger added through the API (manifest triggers change with a deploy).
#[utoipa::path(
    delete,
    path = "/v1/triggers/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The trigger's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Declared in a manifest", body = ErrorBody)
    )
)]
pub(crate) async fn delete_trigger(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if let Some(t) = state.events.index().get(&id)
        && t.source == TriggerSource::Manifest
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "trigger `{id}` is declared in plugin `{}`'s manifest; deploy a version without it",
                t.plugin
            ),
        ));
    }
    let store = state.store.clone();
    let ids = vec![id.clone()];
    let removed = stored(async move { store.delete_triggers(&ids).await }).await?;
    if removed == 0 {
        return Err(ApiError::not_found(format!("no trigger with id `{id}`")));
    }
    state.events.reload_triggers().await?;
    state.store.tell_other_hosts(Change::Triggers).await;
    Ok(StatusCode::NO_CONTENT)
}
