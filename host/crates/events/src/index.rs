//! Every registered trigger in memory: those in the active version of each
//! plugin's manifest (id `<plugin>.m<index>`) and those added through the
//! API (id `trg_<hex>`, stored in redb). Rebuilt whenever a plugin is
//! deployed, rolled back or deleted, or a trigger is added or removed, and
//! read on every event without touching the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;

use super::trigger::{Trigger, TriggerKind};
use junction_store::{Store, StoreError};

/// Where a trigger was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerSource {
    /// The plugin's manifest (changes with a new deploy).
    Manifest,
    /// `POST /v1/triggers`.
    Api,
}

/// A trigger and the plugin it runs.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Its id.
    pub id: String,
    /// The plugin it runs.
    pub plugin: String,
    /// Where it was declared.
    pub source: TriggerSource,
    /// As written.
    pub spec: Value,
    /// Parsed.
    pub trigger: Trigger,
}

impl Registered {
    /// The key a schedule's last fire time is stored under: stable across
    /// redeploys that keep the schedule, and prefixed by the plugin.
    pub fn schedule_key(&self) -> Option<String> {
        match &self.trigger.kind {
            TriggerKind::Schedule {
                expression,
                timezone,
                ..
            } => Some(format!("{}/{expression}@{timezone}", self.plugin)),
            _ => None,
        }
    }
}

/// Where an event goes: one delivery per plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The plugin.
    pub plugin: String,
    /// The most retries any of its matching triggers allows.
    pub retries: u32,
}

#[derive(Default)]
struct Snapshot {
    triggers: Vec<Registered>,
    concurrency: HashMap<String, u32>,
}

/// The in-memory trigger index.
#[derive(Default)]
pub struct TriggerIndex {
    snapshot: RwLock<Arc<Snapshot>>,
}

/// Why the index could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TriggerIndex {
    /// Reloads every trigger from the store's active plugin versions and
    /// API triggers. A stored trigger that no longer parses is skipped with
    /// a warning rather than stopping the others.
    pub async fn rebuild(&self, store: &Store) -> Result<(), IndexError> {
        let mut snapshot = Snapshot::default();
        let plugins = store.plugins().await?;
        for record in &plugins {
            let Some(active) = record.active() else {
                continue;
            };
            if let Some(n) = active.manifest.limits.concurrency {
                snapshot.concurrency.insert(record.name.clone(), n);
            }
            for (i, spec) in active.manifest.triggers.iter().enumerate() {
                push(
                    &mut snapshot,
                    format!("{}.m{i}", record.name),
                    &record.name,
                    TriggerSource::Manifest,
                    spec,
                );
            }
        }
        for stored in store.api_triggers().await? {
            let (Some(id), Some(plugin)) = (stored["id"].as_str(), stored["plugin"].as_str())
            else {
                continue;
            };
            if plugins.iter().any(|p| p.name == plugin) {
                push(
                    &mut snapshot,
                    id.to_owned(),
                    plugin,
                    TriggerSource::Api,
                    &stored["trigger"],
                );
            }
        }
        if let Ok(mut slot) = self.snapshot.write() {
            *slot = Arc::new(snapshot);
        }
        Ok(())
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Every trigger.
    pub fn all(&self) -> Vec<Registered> {
        self.current().triggers.clone()
    }

    /// The trigger with this id.
    pub fn get(&self, id: &str) -> Option<Registered> {
        self.current().triggers.iter().find(|t| t.id == id).cloned()
    }

    /// The plugin's own concurrency limit, if its manifest sets one.
    pub fn concurrency(&self, plugin: &str) -> Option<u32> {
        self.current().concurrency.get(plugin).copied()
    }

    /// Plugins an event of `kind` with `payload` goes to: event triggers
    /// whose glob and filter match, and for `connection.<state>` events the
    /// connection triggers on that state.
    pub fn targets(&self, kind: &str, payload: &Value) -> Vec<Target> {
        let state = kind.strip_prefix("connection.");
        collect(self.current().triggers.iter().filter(|t| {
            t.trigger.matches_event(kind, payload)
                || matches!((&t.trigger.kind, state),
                    (TriggerKind::Connection { state: wanted }, Some(state)) if wanted == state)
        }))
    }

    /// Whether `plugin` has a webhook trigger named `hook`.
    pub fn has_hook(&self, plugin: &str, hook: &str) -> bool {
        self.current().triggers.iter().any(|t| {
            t.plugin == plugin
                && matches!(&t.trigger.kind, TriggerKind::Webhook { name, .. } if name == hook)
        })
    }

    /// Where a call of `plugin`'s webhook `hook` goes: to the plugin when
    /// one of its triggers for the hook matches the payload.
    pub fn hook_targets(&self, plugin: &str, hook: &str, payload: &Value) -> Vec<Target> {
        collect(self.current().triggers.iter().filter(|t| {
            t.plugin == plugin
                && matches!(&t.trigger.kind, TriggerKind::Webhook { name, filter }
                    if name == hook && filter.iter().all(|c| c.holds(payload)))
        }))
    }

    /// Every schedule trigger.
    pub fn schedules(&self) -> Vec<Registered> {
        self.current()
            .triggers
            .iter()
            .filter(|t| matches!(t.trigger.kind, TriggerKind::Schedule { .. }))
            .cloned()
            .collect()
    }
}

fn push(snapshot: &mut Snapshot, id: String, plugin: &str, source: TriggerSource, spec: &Value) {
    match Trigger::parse(spec) {
        Ok(trigger) => snapshot.triggers.push(Registered {
            id,
            plugin: plugin.to_owned(),
            source,
            spec: spec.clone(),
            trigger,
        }),
        Err(err) => {
            tracing::warn!(trigger = %id, plugin, error = %err, "a stored trigger does not parse; skipped")
        }
    }
}

fn collect<'a>(matching: impl Iterator<Item = &'a Registered>) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    for registered in matching {
        match targets.iter_mut().find(|t| t.plugin == registered.plugin) {
            Some(target) => target.retries = target.retries.max(registered.trigger.retries),
            None => targets.push(Target {
                plugin: registered.plugin.clone(),
                retries: registered.trigger.retries,
            }),
        }
    }
    targets
}
