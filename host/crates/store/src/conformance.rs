//! The conformance suite every backend passes: each trait method, and the
//! guarantees the rest of Junction relies on — a journal batch commits
//! whole, idempotency keys answer with the first event, deliveries are
//! claimed and finished exactly as the dispatcher expects, an OAuth state
//! is taken once however many callbacks race for it, concurrent uploads
//! get distinct version numbers, and through [`Store`] a backend only ever
//! holds ciphertext. A backend's tests call [`conformance_tests!`] with a
//! function that makes an empty backend; see `redb`'s tests.

use std::sync::Arc;

use crate::backend::Backend;
use crate::encoded::Encoded;
use crate::journal::{
    Delivery, DeliveryChange, DeliveryQuery, DeliveryState, EventRecord, ExecutionQuery,
    HistoryBudget, JournalAnswer, JournalEntry, NewEvent,
};
use crate::keys::KeyConfig;
use crate::meta::SealedArea;
use crate::plugins::NewVersion;
use crate::sessions::{ConsoleFlash, ConsoleSession, PendingAuthorization};
use crate::snapshot::{Reads, Snapshot};
use crate::{Store, StoreError};
use junction_core::kv::{KvOutcome, KvQuota, KvWrite};
use junction_core::model::{
    AuthType, Connection, ConnectionStatus, Credentials, Placement, Service,
};
use junction_core::{ExecutionRecord, Manifest, Secret, now_ms};

/// An empty backend, and the directory its keys (and maybe its data) live
/// in for as long as the check runs.
pub struct Fresh {
    /// The backend under test.
    pub backend: Arc<dyn Backend>,
    /// Kept for the key file.
    pub dir: tempfile::TempDir,
    /// The schema version the backend writes.
    pub schema: u32,
}

impl Fresh {
    /// A [`Store`] sealing for this backend with a key file in `dir`.
    pub async fn store(&self) -> Store {
        Store::over(self.backend.clone(), self.dir.path(), KeyConfig::file())
            .await
            .expect("a store opens over a fresh backend")
    }
}

/// Expands to one `#[tokio::test]` per check, each on a fresh backend from
/// `$fresh` (an `async fn() -> Fresh`).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@each $fresh;
            metadata_round_trips,
            services_round_trip_and_refuse_conflicts,
            a_service_in_use_is_not_deleted,
            connections_round_trip_and_report_the_previous_status,
            a_connection_lock_has_one_holder,
            end_users_have_their_own_connections_and_records,
            kv_is_namespaced_counted_and_bounded,
            plugin_versions_activate_and_delete,
            concurrent_uploads_get_distinct_versions,
            artifacts_keep_their_tags_per_engine,
            a_journal_batch_commits_whole,
            idempotency_keys_answer_with_the_first_event,
            deliveries_are_claimed_and_finished,
            claims_hand_out_each_queued_delivery_once,
            hand_retries_apply_to_final_deliveries_only,
            old_finished_events_are_pruned,
            executions_are_listed_and_trimmed,
            triggers_marks_and_hook_secrets,
            an_oauth_state_is_taken_once,
            console_sessions_are_kept_touched_and_ended,
            api_keys_are_found_by_hash_listed_and_revoked,
            a_connect_link_binds_one_browser_and_is_used_once,
            sealed_values_are_listed_and_resealed,
            the_backend_only_sees_ciphertext,
            a_rotation_reseals_everything,
            artifacts_with_a_wrong_tag_are_refused,
            a_snapshot_answers_like_each_area);
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fresh = $fresh().await;
                $crate::conformance::$check(&fresh).await;
            }
        )*
    };
}

fn service(name: &str, auth_type: AuthType) -> Service {
    Service {
        name: name.into(),
        auth_type,
        base_url: Some("https://api.example.com/v1".into()),
        allowed_hosts: vec![],
        placement: Placement::bearer(),
        oauth: None,
        has_client_secret: false,
        problem: None,
        created_at_ms: now_ms(),
    }
}

fn connection<S>(link: &str, service: &str, credentials: Credentials<S>) -> Connection<S> {
    Connection {
        link_name: link.into(),
        end_user: None,
        service: service.into(),
        status: ConnectionStatus::Connected,
        scopes: vec![],
        metadata: Default::default(),
        credentials,
        last_error: None,
        created_at_ms: now_ms(),
        updated_at_ms: now_ms(),
        last_refresh_ms: None,
        history: Vec::new(),
    }
}

fn sealed_bearer(token: &str) -> Credentials<String> {
    Credentials::Bearer {
        token: token.into(),
    }
}

fn version<'a>(component: &'a [u8], sha: &'a str, artifact: &'a [u8]) -> NewVersion<'a> {
    NewVersion {
        component,
        sha256: sha,
        compatibility: "engine-a",
        artifact,
        language: Some(junction_core::Language::Python),
        manifest: Manifest::default(),
        granted_connections: vec![],
        missing_connections: vec![],
    }
}

fn delivery(id: &str, event: &str, plugin: &str, due: u64) -> Delivery {
    Delivery {
        id: id.into(),
        end_user: None,
        event_id: event.into(),
        event_kind: "k".into(),
        plugin: plugin.into(),
        state: DeliveryState::Queued,
        attempts: 0,
        max_retries: 1,
        next_attempt_at_ms: due,
        created_at_ms: due,
        updated_at_ms: due,
        last_error: None,
        executions: vec![],
    }
}

/// An event for `plugins`, one delivery each (`d-<event>-<plugin>`), due at `due`.
pub(crate) fn event(
    id: &str,
    key: Option<&str>,
    accepted_at_ms: u64,
    plugins: &[&str],
    due: u64,
) -> JournalEntry {
    let deliveries: Vec<Delivery> = plugins
        .iter()
        .map(|p| delivery(&format!("d-{id}-{p}"), id, p, due))
        .collect();
    JournalEntry::Event(Box::new(NewEvent {
        event: Encoded::new(EventRecord {
            id: id.into(),
            end_user: None,
            kind: "k".into(),
            payload: "{}".into(),
            source: "api".into(),
            occurred_at_ms: accepted_at_ms,
            accepted_at_ms,
            idempotency_key: key.map(str::to_owned),
            deliveries: deliveries.iter().map(|d| d.id.clone()).collect(),
        })
        .unwrap(),
        deliveries: deliveries
            .into_iter()
            .map(|d| Encoded::new(d).unwrap())
            .collect(),
        schedule_mark: None,
    }))
}

pub(crate) fn record(
    id: &str,
    plugin: &str,
    ok: bool,
    started_at_ms: u64,
    output: &str,
) -> ExecutionRecord {
    let status = if ok {
        serde_json::json!({"status": "ok", "output": output})
    } else {
        serde_json::json!({"status": "failed", "failure": "trap", "message": output})
    };
    let mut value = serde_json::json!({
        "id": id, "plugin": plugin, "event_id": "e", "event_kind": "k",
        "started_at_ms": started_at_ms, "wall_time_ms": 1.0, "peak_memory_bytes": 0,
        "logs": [], "logs_truncated": false, "calls": [],
    });
    value
        .as_object_mut()
        .unwrap()
        .extend(status.as_object().unwrap().clone());
    serde_json::from_value(value).expect("an execution record")
}

pub(crate) const BUDGET: HistoryBudget = HistoryBudget {
    records: 100,
    bytes: u64::MAX,
};

fn queued(plugin: Option<&str>, state: Option<DeliveryState>) -> DeliveryQuery {
    DeliveryQuery {
        state,
        end_user: None,
        plugin: plugin.map(str::to_owned),
        limit: 100,
    }
}

/// Schema version, metadata values and the admin token's hash.
pub async fn metadata_round_trips(fresh: &Fresh) {
    let backend = &fresh.backend;
    assert_eq!(backend.schema_version().await.unwrap(), fresh.schema);
    assert_eq!(backend.meta("nothing-here").await.unwrap(), None);
    backend.set_meta("greeting", "hello").await.unwrap();
    backend.set_meta("greeting", "hello again").await.unwrap();
    assert_eq!(
        backend.meta("greeting").await.unwrap().as_deref(),
        Some("hello again")
    );
    let racers: Vec<_> = (0..6)
        .map(|n| {
            let backend = fresh.backend.clone();
            tokio::spawn(async move { backend.add_meta("first", &format!("racer {n}")).await })
        })
        .collect();
    let mut added = 0;
    for racer in racers {
        if racer.await.unwrap().unwrap() {
            added += 1;
        }
    }
    assert_eq!(added, 1, "exactly one of the racers sets it");
    assert!(
        backend
            .meta("first")
            .await
            .unwrap()
            .unwrap()
            .starts_with("racer ")
    );
    let store = fresh.store().await;
    assert_eq!(store.admin_token_hash().await.unwrap(), None);
    assert!(store.add_admin_token_hash("first-token").await.unwrap());
    assert!(!store.add_admin_token_hash("second-token").await.unwrap());
    assert_eq!(
        store.admin_token_hash().await.unwrap().as_deref(),
        Some("first-token")
    );
    store.set_admin_token_hash("abc123").await.unwrap();
    assert_eq!(
        store.admin_token_hash().await.unwrap().as_deref(),
        Some("abc123")
    );
    assert!(!backend.describe().is_empty());
}

/// New, replace, list, secret kept or replaced, delete.
pub async fn services_round_trip_and_refuse_conflicts(fresh: &Fresh) {
    let backend = &fresh.backend;
    backend
        .put_service(&service("zeta", AuthType::Bearer), false, None)
        .await
        .unwrap();
    backend
        .put_service(&service("alpha", AuthType::Oauth2), false, Some("sealed-1"))
        .await
        .unwrap();
    let again = backend
        .put_service(&service("alpha", AuthType::Oauth2), false, None)
        .await;
    assert!(matches!(again, Err(StoreError::Exists { .. })), "{again:?}");
    let missing = backend
        .put_service(&service("nope", AuthType::Bearer), true, None)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    let alpha = backend.service("alpha").await.unwrap().unwrap();
    assert!(alpha.has_client_secret);
    assert!(
        !backend
            .service("zeta")
            .await
            .unwrap()
            .unwrap()
            .has_client_secret
    );
    assert_eq!(
        backend
            .sealed_client_secret("alpha")
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-1")
    );
    let names: Vec<String> = backend
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta"], "by name");

    // Replacing without a secret keeps it; with one replaces it.
    let mut changed = service("alpha", AuthType::Oauth2);
    changed.base_url = Some("https://other.example.com".into());
    backend.put_service(&changed, true, None).await.unwrap();
    let back = backend.service("alpha").await.unwrap().unwrap();
    assert_eq!(back.base_url.as_deref(), Some("https://other.example.com"));
    assert!(back.has_client_secret);
    backend
        .put_service(&changed, true, Some("sealed-2"))
        .await
        .unwrap();
    assert_eq!(
        backend
            .sealed_client_secret("alpha")
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-2")
    );

    backend.delete_service("alpha").await.unwrap();
    assert!(backend.service("alpha").await.unwrap().is_none());
    assert!(
        backend
            .sealed_client_secret("alpha")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        backend.delete_service("alpha").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A service with connections stays until they are gone.
pub async fn a_service_in_use_is_not_deleted(fresh: &Fresh) {
    let backend = &fresh.backend;
    backend
        .put_service(&service("svc", AuthType::Bearer), false, None)
        .await
        .unwrap();
    backend
        .create_connection(&connection("main", "svc", sealed_bearer("x")))
        .await
        .unwrap();
    match backend.delete_service("svc").await {
        Err(StoreError::ServiceInUse {
            service,
            connections,
        }) => {
            assert_eq!(service, "svc");
            assert_eq!(connections, ["main"]);
        }
        other => panic!("expected ServiceInUse, got {other:?}"),
    }
    backend.delete_connection(None, "main").await.unwrap();
    backend.delete_service("svc").await.unwrap();
}

/// A connection's refresh lock has one holder: a second taker waits until
/// it is released (or dropped), and other links' locks are free meanwhile.
pub async fn a_connection_lock_has_one_holder(fresh: &Fresh) {
    use std::time::Duration;
    let backend = &fresh.backend;
    let first = backend.lock_connection(None, "main").await.unwrap();
    let waiter = {
        let backend = backend.clone();
        tokio::spawn(async move { backend.lock_connection(None, "main").await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiter.is_finished(), "a second holder got the lock");
    let other = tokio::time::timeout(
        Duration::from_secs(10),
        backend.lock_connection(None, "other"),
    )
    .await
    .expect("another link's lock is free")
    .unwrap();
    other.release().await;
    first.release().await;
    let second = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter gets the lock once it is released")
        .unwrap()
        .unwrap();
    drop(second);
    let after_drop = tokio::time::timeout(
        Duration::from_secs(10),
        backend.lock_connection(None, "main"),
    )
    .await
    .expect("a dropped lock is let go")
    .unwrap();
    after_drop.release().await;
}

/// A connect link is bound to the first browser only, used once by that
/// browser only (of racing uses exactly one wins), and long-expired links
/// are dropped when a new one is stored.
pub async fn a_connect_link_binds_one_browser_and_is_used_once(fresh: &Fresh) {
    use crate::connect_links::{ConnectLink, KEEP_EXPIRED_MS};
    let backend = &fresh.backend;
    let now = now_ms();
    let link = |id: &str, created: u64| ConnectLink {
        id: id.into(),
        end_user: "ana".into(),
        service: "svc".into(),
        link_name: "main".into(),
        scopes: vec!["read".into()],
        app: "Acme".into(),
        created_at_ms: created,
        expires_at_ms: created + 60_000,
        browser: None,
        used_at_ms: None,
    };
    let old = now - KEEP_EXPIRED_MS - 120_000;
    backend.put_connect_link(&link("old", old)).await.unwrap();
    backend.put_connect_link(&link("cl", now)).await.unwrap();
    assert!(
        backend.connect_link("old").await.unwrap().is_none(),
        "a link expired over a day ago is dropped"
    );
    assert_eq!(
        backend.connect_link("cl").await.unwrap().unwrap(),
        link("cl", now)
    );
    assert!(backend.connect_link("nope").await.unwrap().is_none());
    assert!(
        backend
            .bind_connect_link("nope", "b")
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        !backend.use_connect_link("cl", "b1", now).await.unwrap(),
        "an unbound link cannot be used"
    );
    let bound = backend
        .bind_connect_link("cl", "b1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bound.browser.as_deref(), Some("b1"));
    let second = backend
        .bind_connect_link("cl", "b2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second.browser.as_deref(),
        Some("b1"),
        "the first browser keeps it"
    );
    assert!(!backend.use_connect_link("cl", "b2", now).await.unwrap());
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let backend = backend.clone();
            tokio::spawn(async move { backend.use_connect_link("cl", "b1", now).await })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        if racer.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "a link is used exactly once");
    let used = backend.connect_link("cl").await.unwrap().unwrap();
    assert_eq!(used.used_at_ms, Some(now));
}

/// An end user's connection is its own row beside the organisation's of
/// the same link name: found, listed, locked, sealed and deleted apart;
/// executions and deliveries are listed by the end user they ran for.
pub async fn end_users_have_their_own_connections_and_records(fresh: &Fresh) {
    use std::time::Duration;
    let store = fresh.store().await;
    let backend = &fresh.backend;
    store
        .create_service(&service("svc", AuthType::Bearer), None)
        .await
        .unwrap();
    let owned = |user: Option<&str>, token: &str| {
        let mut c = connection(
            "main",
            "svc",
            Credentials::Bearer {
                token: Secret::new(token.into()),
            },
        );
        c.end_user = user.map(str::to_owned);
        c
    };
    store
        .create_connection(&owned(None, "org-token"))
        .await
        .unwrap();
    store
        .create_connection(&owned(Some("u1"), "u1-token"))
        .await
        .unwrap();
    store
        .create_connection(&owned(Some("u/2-ü"), "u2-token"))
        .await
        .unwrap();
    let again = store.create_connection(&owned(Some("u1"), "other")).await;
    assert!(matches!(again, Err(StoreError::Exists { .. })), "{again:?}");
    let bad = store.create_connection(&owned(Some(" padded"), "t")).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    let token_of = |c: Connection| match c.credentials {
        Credentials::Bearer { token } => token.expose().to_owned(),
        other => panic!("{other:?}"),
    };
    let read = |user: Option<&'static str>| {
        let store = &store;
        async move { store.connection(user, "main").await.unwrap() }
    };
    assert_eq!(token_of(read(None).await.unwrap()), "org-token");
    assert_eq!(token_of(read(Some("u1")).await.unwrap()), "u1-token");
    assert_eq!(token_of(read(Some("u/2-ü")).await.unwrap()), "u2-token");
    assert!(read(Some("u3")).await.is_none());

    let listed: Vec<Option<String>> = backend
        .connections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.end_user)
        .collect();
    assert_eq!(
        listed,
        [None, Some("u/2-ü".into()), Some("u1".into())],
        "the organisation's first, then by end user"
    );
    let mine = backend.end_user_connections("u1").await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].end_user.as_deref(), Some("u1"));
    assert!(backend.end_user_connections("u").await.unwrap().is_empty());
    assert_eq!(
        store.end_users().await.unwrap(),
        [("u/2-ü".to_owned(), 1), ("u1".to_owned(), 1)]
    );

    // One end user's sealed token does not open as another's.
    let mut u1_row = backend
        .connection(Some("u1"), "main")
        .await
        .unwrap()
        .unwrap();
    let u2_row = backend
        .connection(Some("u/2-ü"), "main")
        .await
        .unwrap()
        .unwrap();
    u1_row.credentials = u2_row.credentials.clone();
    backend.update_connection(&u1_row).await.unwrap();
    assert!(
        store.connection(Some("u1"), "main").await.is_err(),
        "a credential moved between end users must not open"
    );

    // Locks are per end user.
    let held = backend.lock_connection(Some("u1"), "main").await.unwrap();
    let other = tokio::time::timeout(
        Duration::from_secs(10),
        backend.lock_connection(None, "main"),
    )
    .await
    .expect("the organisation's lock is another lock")
    .unwrap();
    other.release().await;
    held.release().await;

    backend.delete_connection(Some("u1"), "main").await.unwrap();
    assert!(read(Some("u1")).await.is_none());
    assert!(read(None).await.is_some(), "the organisation's stays");
    assert!(matches!(
        backend.delete_connection(Some("u1"), "main").await,
        Err(StoreError::NotFound { .. })
    ));

    // Records by end user.
    let mut records = Vec::new();
    for (id, user) in [
        ("x-0", None),
        ("x-1", Some("u1")),
        ("x-2", Some("u2")),
        ("x-3", Some("u1")),
    ] {
        let mut r = record(id, "p", true, 1, "out");
        r.end_user = user.map(str::to_owned);
        records.push(r);
    }
    backend.insert_executions(records, BUDGET).await.unwrap();
    for plugin in [None, Some("p".to_owned())] {
        let query = ExecutionQuery {
            plugin,
            ok: None,
            end_user: Some("u1".into()),
            limit: 10,
        };
        let ids: Vec<String> = backend
            .executions(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["x-3", "x-1"]);
    }
    let JournalEntry::Event(mut new) = event("ev", None, now_ms(), &["p", "q"], now_ms()) else {
        unreachable!()
    };
    for delivery in &mut new.deliveries {
        delivery.value.end_user = Some("u1".into());
        *delivery = Encoded::new(delivery.value.clone()).unwrap();
    }
    backend
        .commit_journal(
            vec![
                JournalEntry::Event(new),
                event("ev2", None, now_ms(), &["p"], now_ms()),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    for state in [None, Some(DeliveryState::Queued)] {
        let mut query = queued(None, state);
        query.end_user = Some("u1".into());
        let found: Vec<String> = backend
            .deliveries(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(found, ["d-ev-p", "d-ev-q"], "{state:?}");
    }
}

/// Create, read, update (answering the previous status), list, delete.
pub async fn connections_round_trip_and_report_the_previous_status(fresh: &Fresh) {
    let backend = &fresh.backend;
    let orphan = backend
        .create_connection(&connection("x", "nope", sealed_bearer("t")))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
    backend
        .put_service(&service("svc", AuthType::Bearer), false, None)
        .await
        .unwrap();
    let main = connection("main", "svc", sealed_bearer("sealed-token"));
    backend.create_connection(&main).await.unwrap();
    backend
        .create_connection(&connection("alpha", "svc", sealed_bearer("t2")))
        .await
        .unwrap();
    let dup = backend.create_connection(&main).await;
    assert!(matches!(dup, Err(StoreError::Exists { .. })), "{dup:?}");
    assert_eq!(
        backend.connection(None, "main").await.unwrap().unwrap(),
        main
    );

    let mut expired = main.clone();
    expired.status = ConnectionStatus::NeedsReauth;
    expired.last_error = Some("refresh failed".into());
    let previous = backend.update_connection(&expired).await.unwrap();
    assert_eq!(previous, Some(ConnectionStatus::Connected));
    assert_eq!(
        backend.connection(None, "main").await.unwrap().unwrap(),
        expired
    );
    let ghost = backend
        .update_connection(&connection("ghost", "svc", sealed_bearer("t")))
        .await;
    assert!(
        matches!(ghost, Err(StoreError::NotFound { .. })),
        "{ghost:?}"
    );

    let links: Vec<String> = backend
        .connections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.link_name)
        .collect();
    assert_eq!(links, ["alpha", "main"], "by link name");
    backend.delete_connection(None, "main").await.unwrap();
    assert!(backend.connection(None, "main").await.unwrap().is_none());
    assert!(matches!(
        backend.delete_connection(None, "main").await,
        Err(StoreError::NotFound { .. })
    ));
}

fn set(plugin: &str, key: &str, value: &[u8], quota: KvQuota) -> KvWrite {
    KvWrite::Set {
        plugin: plugin.into(),
        key: key.into(),
        value: value.to_vec(),
        quota,
    }
}

/// Namespaces, prefix listing, usage, quotas and invalid writes.
pub async fn kv_is_namespaced_counted_and_bounded(fresh: &Fresh) {
    let backend = &fresh.backend;
    let open = KvQuota::UNLIMITED;
    for (plugin, key, value) in [
        ("a", "cursor/2", &b"yy"[..]),
        ("a", "cursor/1", b"x"),
        ("a", "other", b"z"),
        ("b", "cursor/1", b"w"),
    ] {
        let written = backend
            .kv_write(&set(plugin, key, value, open))
            .await
            .unwrap();
        assert_eq!(written, KvOutcome::Written);
    }
    assert_eq!(
        backend.kv_keys("a", "cursor/").await.unwrap(),
        ["cursor/1", "cursor/2"]
    );
    assert_eq!(backend.kv_keys("a", "").await.unwrap().len(), 3);
    assert_eq!(
        backend.kv_get("b", "cursor/1").await.unwrap().unwrap(),
        b"w"
    );
    assert_eq!(backend.kv_get("b", "other").await.unwrap(), None);
    let usage = backend.kv_usage("a").await.unwrap();
    assert_eq!(usage.keys, 3);
    assert_eq!(usage.bytes, (8 + 2) + (8 + 1) + (5 + 1));

    // Overwriting counts the difference; deleting gives it back.
    backend
        .kv_write(&set("a", "other", b"zzz", open))
        .await
        .unwrap();
    assert_eq!(backend.kv_usage("a").await.unwrap().bytes, usage.bytes + 2);
    let delete = KvWrite::Delete {
        plugin: "a".into(),
        key: "other".into(),
    };
    assert_eq!(backend.kv_write(&delete).await.unwrap(), KvOutcome::Written);
    assert_eq!(backend.kv_write(&delete).await.unwrap(), KvOutcome::Written);
    let after = backend.kv_usage("a").await.unwrap();
    assert_eq!((after.keys, after.bytes), (2, (8 + 2) + (8 + 1)));

    // Quotas refuse, and a refused write changes nothing.
    let two_keys = KvQuota {
        bytes: u64::MAX,
        keys: 2,
    };
    let refused = backend
        .kv_write(&set("a", "third", b"v", two_keys))
        .await
        .unwrap();
    assert!(matches!(refused, KvOutcome::Refused(_)), "{refused:?}");
    let few_bytes = KvQuota {
        bytes: 20,
        keys: 100,
    };
    let refused = backend
        .kv_write(&set("a", "cursor/1", &[0; 30], few_bytes))
        .await
        .unwrap();
    assert!(matches!(refused, KvOutcome::Refused(_)), "{refused:?}");
    assert_eq!(
        backend.kv_get("a", "cursor/1").await.unwrap().unwrap(),
        b"x"
    );
    let empty_key = backend.kv_write(&set("a", "", b"v", open)).await.unwrap();
    assert!(matches!(empty_key, KvOutcome::Refused(_)), "{empty_key:?}");
    assert_eq!(backend.kv_usage("a").await.unwrap(), after);
    assert_eq!(backend.kv_usage("nobody").await.unwrap().keys, 0);
}

/// Versions count up, activate, and a delete takes what only it used.
pub async fn plugin_versions_activate_and_delete(fresh: &Fresh) {
    let backend = &fresh.backend;
    let one = backend
        .add_plugin_version("demo", version(b"one", "sha-1", b"a1"), "tag-1")
        .await
        .unwrap();
    assert_eq!((one.active_version, one.versions.len()), (1, 1));
    backend
        .add_plugin_version("shared", version(b"one", "sha-1", b"a1"), "tag-1")
        .await
        .unwrap();
    let two = backend
        .add_plugin_version("demo", version(b"two", "sha-2", b"a2"), "tag-2")
        .await
        .unwrap();
    assert_eq!(two.active_version, 2);
    assert_eq!(two.versions[1].size, 3);
    // The language is kept with each version.
    assert_eq!(
        two.versions[1].language,
        Some(junction_core::Language::Python)
    );
    assert_eq!(backend.component("sha-2").await.unwrap().unwrap(), b"two");
    let back = backend.activate_plugin_version("demo", 1).await.unwrap();
    assert_eq!(back.active().unwrap().sha256, "sha-1");
    assert_eq!(
        backend
            .plugin("demo")
            .await
            .unwrap()
            .unwrap()
            .active_version,
        1
    );
    assert!(matches!(
        backend.activate_plugin_version("demo", 7).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        backend.activate_plugin_version("ghost", 1).await,
        Err(StoreError::NotFound { .. })
    ));
    let names: Vec<String> = backend
        .plugins()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["demo", "shared"]);

    let open = KvQuota::UNLIMITED;
    backend
        .kv_write(&set("demo", "k", b"v", open))
        .await
        .unwrap();
    backend
        .kv_write(&set("demo-2", "k", b"v", open))
        .await
        .unwrap();
    let removed = backend.delete_plugin("demo").await.unwrap();
    assert_eq!(removed.versions.len(), 2);
    assert!(backend.plugin("demo").await.unwrap().is_none());
    assert!(backend.component("sha-2").await.unwrap().is_none());
    assert!(
        backend
            .artifact("sha-2", "engine-a")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        backend.component("sha-1").await.unwrap().is_some(),
        "still used by `shared`"
    );
    assert!(
        backend
            .artifact("sha-1", "engine-a")
            .await
            .unwrap()
            .is_some()
    );
    assert!(backend.kv_get("demo", "k").await.unwrap().is_none());
    assert!(backend.kv_get("demo-2", "k").await.unwrap().is_some());
    assert!(matches!(
        backend.delete_plugin("demo").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Uploads racing for one name get 1..=n, each once.
pub async fn concurrent_uploads_get_distinct_versions(fresh: &Fresh) {
    let uploads = (0..8).map(|n| {
        let backend = fresh.backend.clone();
        tokio::spawn(async move {
            let sha = format!("sha-{n}");
            backend
                .add_plugin_version("racer", version(b"bytes", &sha, b"art"), "tag")
                .await
                .map(|record| record.active_version)
        })
    });
    let mut numbers = Vec::new();
    for upload in uploads.collect::<Vec<_>>() {
        numbers.push(upload.await.unwrap().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<u32>>());
    let record = fresh.backend.plugin("racer").await.unwrap().unwrap();
    let mut stored: Vec<u32> = record.versions.iter().map(|v| v.version).collect();
    stored.sort_unstable();
    assert_eq!(stored, (1..=8).collect::<Vec<u32>>());
}

/// An artifact comes back with its tag; a new engine's replaces the old.
pub async fn artifacts_keep_their_tags_per_engine(fresh: &Fresh) {
    let backend = &fresh.backend;
    backend
        .add_plugin_version("demo", version(b"c", "sha-1", b"machine"), "tag-a")
        .await
        .unwrap();
    assert_eq!(
        backend.artifact("sha-1", "engine-a").await.unwrap(),
        Some(("tag-a".to_owned(), b"machine".to_vec()))
    );
    assert!(
        backend
            .artifact("sha-1", "engine-b")
            .await
            .unwrap()
            .is_none()
    );
    backend
        .put_artifact("sha-1", "engine-b", "tag-b", b"newer")
        .await
        .unwrap();
    assert_eq!(
        backend.artifact("sha-1", "engine-b").await.unwrap(),
        Some(("tag-b".to_owned(), b"newer".to_vec()))
    );
    assert!(
        backend
            .artifact("sha-1", "engine-a")
            .await
            .unwrap()
            .is_none(),
        "another engine's artifact of the same component goes"
    );
}

/// One batch: an execution, an event with deliveries, a kv write and a
/// refused kv write, answered in order and all visible after.
pub async fn a_journal_batch_commits_whole(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    // Records alone, as a flood of invokes commits them.
    let only_records = ["x-0a", "x-0b"]
        .map(|id| {
            JournalEntry::Execution(std::sync::Arc::new(
                Encoded::new(record(id, "p", true, now, "done")).unwrap(),
            ))
        })
        .into();
    let answers = backend.commit_journal(only_records, BUDGET).await.unwrap();
    assert_eq!(answers, [JournalAnswer::Written, JournalAnswer::Written]);
    for id in ["x-0a", "x-0b"] {
        assert!(backend.execution(id).await.unwrap().is_some(), "{id}");
    }
    let answers = backend
        .commit_journal(
            vec![
                JournalEntry::Execution(std::sync::Arc::new(
                    Encoded::new(record("x-1", "p", true, now, "done")).unwrap(),
                )),
                event("e1", None, now, &["p", "q"], now),
                JournalEntry::Kv(Box::new(set("p", "k", b"v", KvQuota::UNLIMITED))),
                JournalEntry::Kv(Box::new(set(
                    "p",
                    "k2",
                    b"v",
                    KvQuota {
                        bytes: 1,
                        keys: 100,
                    },
                ))),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0], JournalAnswer::Written);
    assert_eq!(
        answers[1],
        JournalAnswer::Event {
            id: "e1".into(),
            matched: 2,
            duplicate: false
        }
    );
    assert_eq!(answers[2], JournalAnswer::Kv(KvOutcome::Written));
    assert!(
        matches!(&answers[3], JournalAnswer::Kv(KvOutcome::Refused(_))),
        "a refused write is an answer, the batch still commits: {:?}",
        answers[3]
    );
    assert!(backend.execution("x-1").await.unwrap().is_some());
    let stored = backend.event("e1").await.unwrap().unwrap();
    assert_eq!(stored.deliveries, ["d-e1-p", "d-e1-q"]);
    assert_eq!(backend.kv_get("p", "k").await.unwrap().unwrap(), b"v");
    assert!(backend.kv_get("p", "k2").await.unwrap().is_none());
    let by_id = backend
        .deliveries_by_id(&["d-e1-q".into(), "missing".into(), "d-e1-p".into()])
        .await
        .unwrap();
    let ids: Vec<&str> = by_id.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d-e1-q", "d-e1-p"]);
    assert_eq!(backend.pending_deliveries().await.unwrap().len(), 2);

    // A schedule event commits its mark with it.
    let JournalEntry::Event(mut scheduled) = event("e2", None, now, &["p"], now) else {
        unreachable!()
    };
    scheduled.schedule_mark = Some(("p/* * * * *@UTC".into(), 42));
    backend
        .commit_journal(vec![JournalEntry::Event(scheduled)], BUDGET)
        .await
        .unwrap();
    assert_eq!(
        backend
            .schedule_marks()
            .await
            .unwrap()
            .get("p/* * * * *@UTC"),
        Some(&42)
    );

    // A slot is fired once: an event for a slot the mark has passed is a
    // duplicate (another host fired it), a later slot fires.
    let slot = |id: &str, occurred_at_ms: u64, mark: u64| {
        let JournalEntry::Event(mut new) = event(id, None, now, &["p"], now) else {
            unreachable!()
        };
        let mut record = new.event.value.clone();
        record.occurred_at_ms = occurred_at_ms;
        new.event = Encoded::new(record).unwrap();
        new.schedule_mark = Some(("p/* * * * *@UTC".into(), mark));
        JournalEntry::Event(new)
    };
    let fired = backend
        .commit_journal(vec![slot("e3", 60_000, 60_500)], BUDGET)
        .await
        .unwrap();
    assert!(
        matches!(
            &fired[0],
            JournalAnswer::Event {
                duplicate: false,
                ..
            }
        ),
        "{fired:?}"
    );
    let again = backend
        .commit_journal(vec![slot("e4", 60_000, 60_700)], BUDGET)
        .await
        .unwrap();
    assert!(
        matches!(
            &again[0],
            JournalAnswer::Event {
                duplicate: true,
                ..
            }
        ),
        "the same slot again: {again:?}"
    );
    assert!(backend.event("e4").await.unwrap().is_none());
    assert_eq!(
        backend.schedule_marks().await.unwrap()["p/* * * * *@UTC"],
        60_500
    );
    let next = backend
        .commit_journal(vec![slot("e5", 120_000, 120_100)], BUDGET)
        .await
        .unwrap();
    assert!(
        matches!(
            &next[0],
            JournalAnswer::Event {
                duplicate: false,
                ..
            }
        ),
        "{next:?}"
    );
}

/// A key seen within the window answers with the first event, in one
/// batch and across batches, and stores nothing new.
pub async fn idempotency_keys_answer_with_the_first_event(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    let answers = backend
        .commit_journal(
            vec![
                event("e1", Some("key-1"), now, &["p"], now),
                event("e2", Some("key-1"), now, &["p"], now),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    let first = JournalAnswer::Event {
        id: "e1".into(),
        matched: 1,
        duplicate: true,
    };
    assert_eq!(answers[1], first);
    let later = backend
        .commit_journal(vec![event("e3", Some("key-1"), now, &["p"], now)], BUDGET)
        .await
        .unwrap();
    assert_eq!(later, [first]);
    assert!(backend.event("e2").await.unwrap().is_none());
    assert!(backend.event("e3").await.unwrap().is_none());
    assert_eq!(backend.pending_deliveries().await.unwrap().len(), 1);
    let other = backend
        .commit_journal(vec![event("e4", Some("key-2"), now, &["p"], now)], BUDGET)
        .await
        .unwrap();
    assert!(matches!(
        &other[0],
        JournalAnswer::Event {
            duplicate: false,
            ..
        }
    ));
}

/// What a start claims is every queued delivery, soonest first; a settled
/// attempt moves it (retry later, succeeded, dead) exactly once.
pub async fn deliveries_are_claimed_and_finished(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    backend
        .commit_journal(
            vec![
                event("late", None, now, &["p"], now + 5_000),
                event("soon", None, now, &["p", "q"], now),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    let claimed = backend.pending_deliveries().await.unwrap();
    let order: Vec<&str> = claimed.iter().map(|(d, _)| d.id.as_str()).collect();
    assert_eq!(order.len(), 3);
    assert_eq!(order[2], "d-late-p", "soonest due first: {order:?}");
    let (first, its_event) = &claimed[0];
    assert_eq!(its_event.id, first.event_id);

    // Finish each the way the dispatcher does: its new state, with the
    // attempt's record, replaces the queued one.
    let settle = |before: &Delivery, change: DeliveryChange, id: &str| {
        let attempt = record(id, &before.plugin, true, now, "ok");
        let after =
            crate::journal::apply_change(before.clone(), &change, Some(&attempt), now).unwrap();
        JournalEntry::Settled {
            delivery: Box::new(Encoded::new(after).unwrap()),
            previous_due_ms: before.next_attempt_at_ms,
            record: Some(Box::new(Encoded::new(attempt).unwrap())),
        }
    };
    let p = backend.delivery("d-soon-p").await.unwrap().unwrap();
    let q = backend.delivery("d-soon-q").await.unwrap().unwrap();
    backend
        .commit_journal(
            vec![
                settle(&p, DeliveryChange::Succeeded, "x-p"),
                settle(
                    &q,
                    DeliveryChange::Retry {
                        at_ms: now + 60_000,
                        error: "503".into(),
                    },
                    "x-q",
                ),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    let p = backend.delivery("d-soon-p").await.unwrap().unwrap();
    assert_eq!(p.state, DeliveryState::Succeeded);
    assert_eq!(
        (p.attempts, p.executions.clone()),
        (1, vec!["x-p".to_owned()])
    );
    let q = backend.delivery("d-soon-q").await.unwrap().unwrap();
    assert_eq!(q.state, DeliveryState::Queued);
    assert_eq!(q.next_attempt_at_ms, now + 60_000);
    assert_eq!(q.last_error.as_deref(), Some("503"));
    let pending: Vec<String> = backend
        .pending_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| d.id)
        .collect();
    assert_eq!(
        pending,
        ["d-late-p", "d-soon-q"],
        "due order, the success gone"
    );

    backend
        .commit_journal(
            vec![settle(
                &q,
                DeliveryChange::Dead {
                    error: "503".into(),
                },
                "x-q2",
            )],
            BUDGET,
        )
        .await
        .unwrap();
    let dead = backend
        .deliveries(&queued(None, Some(DeliveryState::Dead)))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].executions, ["x-q", "x-q2"]);
    assert_eq!(
        backend
            .deliveries(&queued(Some("p"), None))
            .await
            .unwrap()
            .len(),
        2
    );
    let limited = DeliveryQuery {
        limit: 1,
        ..queued(None, None)
    };
    assert_eq!(backend.deliveries(&limited).await.unwrap().len(), 1);
    assert_eq!(backend.pending_deliveries().await.unwrap().len(), 1);
    assert_eq!(
        backend.execution("x-q2").await.unwrap().unwrap().plugin,
        "q"
    );
}

/// A claim hands out each queued delivery once, with its event; what this
/// host queues later it already holds, so no later claim hands it out; a
/// settled attempt of a held delivery is applied.
pub async fn claims_hand_out_each_queued_delivery_once(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    backend
        .commit_journal(
            vec![
                event("late", None, now, &["p"], now + 5_000),
                event("soon", None, now, &["p", "q"], now),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    let first = backend.claim_deliveries(100).await.unwrap();
    let claimed: Vec<&str> = first.iter().map(|(d, _)| d.id.as_str()).collect();
    // A backend that shares its queue between hosts holds what this host
    // queued from the start; one that a single process owns hands it out
    // on the first claim. Either way nothing is handed out twice.
    assert!(
        claimed.is_empty() || claimed.len() == 3,
        "all or nothing of what this host queued: {claimed:?}"
    );
    for (delivery, its_event) in &first {
        assert_eq!(its_event.id, delivery.event_id);
    }
    assert!(backend.claim_deliveries(100).await.unwrap().is_empty());
    backend
        .commit_journal(vec![event("later", None, now, &["p"], now)], BUDGET)
        .await
        .unwrap();
    assert!(
        backend.claim_deliveries(100).await.unwrap().is_empty(),
        "queued by this host, so already held by it"
    );
    backend.renew_leases().await.unwrap();

    let p = backend.delivery("d-soon-p").await.unwrap().unwrap();
    let attempt = record("x-claimed", "p", true, now, "ok");
    let after =
        crate::journal::apply_change(p.clone(), &DeliveryChange::Succeeded, Some(&attempt), now)
            .unwrap();
    let answers = backend
        .commit_journal(
            vec![JournalEntry::Settled {
                delivery: Box::new(Encoded::new(after).unwrap()),
                previous_due_ms: p.next_attempt_at_ms,
                record: Some(Box::new(Encoded::new(attempt).unwrap())),
            }],
            BUDGET,
        )
        .await
        .unwrap();
    assert_eq!(answers, [JournalAnswer::Written]);
    assert_eq!(
        backend.delivery("d-soon-p").await.unwrap().unwrap().state,
        DeliveryState::Succeeded
    );
    assert_eq!(backend.pending_deliveries().await.unwrap().len(), 3);
    backend.release_leases().await.unwrap();
}

/// Cancelling applies to a queued delivery, a requeue to a final one.
pub async fn hand_retries_apply_to_final_deliveries_only(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    backend
        .commit_journal(vec![event("e1", None, now, &["p"], now)], BUDGET)
        .await
        .unwrap();
    let change = |change: DeliveryChange| JournalEntry::Delivery {
        id: "d-e1-p".into(),
        change,
    };
    let requeue = DeliveryChange::Requeue { at_ms: now + 1 };
    assert_eq!(
        backend
            .commit_journal(vec![change(requeue.clone())], BUDGET)
            .await
            .unwrap(),
        [JournalAnswer::Skipped],
        "a queued delivery is not requeued"
    );
    let cancelled = DeliveryChange::Cancelled {
        reason: "plugin deleted".into(),
    };
    assert_eq!(
        backend
            .commit_journal(vec![change(cancelled.clone())], BUDGET)
            .await
            .unwrap(),
        [JournalAnswer::Written]
    );
    assert_eq!(
        backend
            .commit_journal(vec![change(cancelled)], BUDGET)
            .await
            .unwrap(),
        [JournalAnswer::Skipped],
        "a final delivery is not cancelled again"
    );
    assert!(backend.pending_deliveries().await.unwrap().is_empty());
    backend
        .commit_journal(vec![change(requeue)], BUDGET)
        .await
        .unwrap();
    let back = backend.delivery("d-e1-p").await.unwrap().unwrap();
    assert_eq!(back.state, DeliveryState::Queued);
    assert_eq!(back.max_retries, back.attempts, "a hand retry runs once");
    assert_eq!(backend.pending_deliveries().await.unwrap().len(), 1);
    let missing = JournalEntry::Delivery {
        id: "nope".into(),
        change: DeliveryChange::Succeeded,
    };
    assert_eq!(
        backend.commit_journal(vec![missing], BUDGET).await.unwrap(),
        [JournalAnswer::Skipped]
    );
}

/// Events whose deliveries are all final go once old, dead letters with
/// them; idempotency keys outlive their events.
pub async fn old_finished_events_are_pruned(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    backend
        .commit_journal(
            vec![
                event("old", None, now - 10 * day, &["p"], 0),
                event("keyed", Some("k-1"), now - 9 * day, &["p"], 0),
                event("recent", None, now - day, &["p"], 0),
                event("unfinished", None, now - 10 * day, &["p"], 0),
            ],
            BUDGET,
        )
        .await
        .unwrap();
    for id in ["old", "recent", "keyed"] {
        let dead = JournalEntry::Delivery {
            id: format!("d-{id}-p"),
            change: DeliveryChange::Dead {
                error: "boom".into(),
            },
        };
        backend.commit_journal(vec![dead], BUDGET).await.unwrap();
    }
    let removed = backend.prune_events(100, 7 * day).await.unwrap();
    assert_eq!(removed, 2, "the two old finished events");
    assert!(backend.event("old").await.unwrap().is_none());
    assert!(backend.delivery("d-old-p").await.unwrap().is_none());
    assert!(backend.event("recent").await.unwrap().is_some());
    assert!(
        backend.event("unfinished").await.unwrap().is_some(),
        "a queued delivery keeps its event"
    );
    let dead = backend
        .deliveries(&queued(None, Some(DeliveryState::Dead)))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let again = backend
        .commit_journal(
            vec![event("keyed-again", Some("k-1"), now, &["p"], 0)],
            BUDGET,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            &again[0],
            JournalAnswer::Event {
                duplicate: true,
                ..
            }
        ),
        "{again:?}"
    );
}

/// Listing by plugin and outcome, newest first; trimming by records and
/// bytes, always keeping the newest.
pub async fn executions_are_listed_and_trimmed(fresh: &Fresh) {
    let backend = &fresh.backend;
    let records = (0..6)
        .map(|n| record(&format!("a-{n}"), "a", n % 2 == 0, n, "out"))
        .chain([record("b-0", "b", true, 9, "out")])
        .collect();
    backend.insert_executions(records, BUDGET).await.unwrap();
    let query = |plugin: Option<&str>, ok: Option<bool>, limit: usize| ExecutionQuery {
        plugin: plugin.map(str::to_owned),
        end_user: None,
        ok,
        limit,
    };
    let ids = |records: Vec<ExecutionRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(
        ids(backend
            .executions(&query(Some("a"), None, 3))
            .await
            .unwrap()),
        ["a-5", "a-4", "a-3"]
    );
    assert_eq!(
        ids(backend
            .executions(&query(Some("a"), Some(false), 10))
            .await
            .unwrap()),
        ["a-5", "a-3", "a-1"]
    );
    assert_eq!(
        ids(backend.executions(&query(None, None, 2)).await.unwrap()),
        ["b-0", "a-5"]
    );
    assert!(
        backend
            .executions(&query(None, None, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        backend
            .execution("a-2")
            .await
            .unwrap()
            .unwrap()
            .started_at_ms,
        2
    );
    assert!(backend.execution("zzz").await.unwrap().is_none());

    // Three records per plugin: the oldest go, their ids with them.
    let three = HistoryBudget::records(3);
    backend
        .insert_executions(vec![record("a-6", "a", true, 6, "out")], three)
        .await
        .unwrap();
    assert_eq!(
        ids(backend
            .executions(&query(Some("a"), None, 10))
            .await
            .unwrap()),
        ["a-6", "a-5", "a-4"]
    );
    assert!(backend.execution("a-0").await.unwrap().is_none());
    assert!(
        backend.execution("b-0").await.unwrap().is_some(),
        "another plugin's"
    );

    // By bytes: one big record over the budget is still kept, alone.
    let tiny = HistoryBudget {
        records: 100,
        bytes: 10,
    };
    backend
        .insert_executions(vec![record("a-7", "a", true, 7, &"x".repeat(1000))], tiny)
        .await
        .unwrap();
    assert_eq!(
        ids(backend
            .executions(&query(Some("a"), None, 10))
            .await
            .unwrap()),
        ["a-7"]
    );
}

/// API triggers, schedule marks and sealed hook secrets, and forgetting a
/// plugin's without touching its namesakes.
pub async fn triggers_marks_and_hook_secrets(fresh: &Fresh) {
    let backend = &fresh.backend;
    let trigger = |plugin: &str| serde_json::json!({"plugin": plugin, "event": "x"});
    backend.put_trigger("t1", &trigger("a")).await.unwrap();
    backend.put_trigger("t2", &trigger("ab")).await.unwrap();
    backend.put_trigger("t1", &trigger("a")).await.unwrap();
    assert_eq!(backend.api_triggers().await.unwrap().len(), 2);
    assert_eq!(
        backend
            .delete_triggers(&["t2".into(), "ghost".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(backend.api_triggers().await.unwrap(), [trigger("a")]);
    backend.put_trigger("t3", &trigger("ab")).await.unwrap();

    for plugin in ["a", "ab"] {
        backend
            .set_sealed_hook_secret(plugin, "x", &format!("sealed-{plugin}"))
            .await
            .unwrap();
        backend
            .set_schedule_mark(&format!("{plugin}/* * * * *@UTC"), 1)
            .await
            .unwrap();
    }
    backend
        .set_schedule_mark("a/* * * * *@UTC", 2)
        .await
        .unwrap();
    backend
        .set_schedule_mark("a/* * * * *@UTC", 1)
        .await
        .unwrap();
    assert_eq!(
        backend.schedule_marks().await.unwrap()["a/* * * * *@UTC"],
        2,
        "a mark never moves back"
    );
    assert_eq!(
        backend
            .sealed_hook_secret("a", "x")
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-a")
    );
    assert!(
        backend
            .sealed_hook_secret("a", "y")
            .await
            .unwrap()
            .is_none()
    );
    backend.forget_plugin_events("a").await.unwrap();
    assert!(
        backend
            .sealed_hook_secret("a", "x")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        backend
            .sealed_hook_secret("ab", "x")
            .await
            .unwrap()
            .is_some()
    );
    let marks = backend.schedule_marks().await.unwrap();
    assert_eq!(marks.keys().collect::<Vec<_>>(), ["ab/* * * * *@UTC"]);
    let left = backend.api_triggers().await.unwrap();
    assert!(left.iter().all(|t| t["plugin"] == "ab"), "{left:?}");
}

fn pending(link: &str, created_at_ms: u64) -> PendingAuthorization<String> {
    PendingAuthorization {
        link_name: link.into(),
        end_user: None,
        redirect_uri: "http://127.0.0.1/oauth/callback".into(),
        verifier: Some("sealed-verifier".into()),
        scopes: vec!["read".into()],
        created_at_ms,
        from_console: true,
        connect_link: None,
    }
}

/// A state is read without being taken, taken once however many callbacks
/// race, and expired ones are purged.
pub async fn an_oauth_state_is_taken_once(fresh: &Fresh) {
    let backend = &fresh.backend;
    let now = now_ms();
    backend
        .put_pending_authorization("stale", &pending("old", now - crate::STATE_TTL_MS - 1))
        .await
        .unwrap();
    backend
        .put_pending_authorization("hash-1", &pending("main", now))
        .await
        .unwrap();
    assert_eq!(
        backend.pending_authorization_count().await.unwrap(),
        1,
        "the stale one went"
    );
    assert_eq!(
        backend.pending_authorization_link("hash-1").await.unwrap(),
        Some(crate::sessions::PendingTarget {
            key: junction_core::model::ConnectionKey::org("main"),
            connect_link: None,
        })
    );
    assert!(
        backend
            .pending_authorization_link("made-up")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        backend
            .take_pending_authorization("made-up")
            .await
            .unwrap()
            .is_none()
    );

    let racers: Vec<_> = (0..8)
        .map(|_| {
            let backend = fresh.backend.clone();
            tokio::spawn(async move { backend.take_pending_authorization("hash-1").await })
        })
        .collect();
    let mut taken = Vec::new();
    for racer in racers {
        if let Some(found) = racer.await.unwrap().unwrap() {
            taken.push(found);
        }
    }
    assert_eq!(
        taken,
        [pending("main", now)],
        "exactly one callback gets it"
    );
    assert_eq!(backend.pending_authorization_count().await.unwrap(), 0);
}

/// Console sessions: started with the idle and the oldest ones dropped,
/// touched forward only, their message taken by exactly one of several
/// requests, ended one by one or all at once.
pub async fn console_sessions_are_kept_touched_and_ended(fresh: &Fresh) {
    let backend = &fresh.backend;
    let session = |seen: u64| ConsoleSession {
        created_at_ms: seen,
        last_seen_ms: seen,
        flash: None,
    };
    backend
        .start_console_session("idle", &session(100), 0, 10)
        .await
        .unwrap();
    for (key, seen) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
        backend
            .start_console_session(key, &session(seen), 500, 2)
            .await
            .unwrap();
    }
    assert!(
        backend.console_session("idle").await.unwrap().is_none(),
        "idle past the cutoff"
    );
    assert!(
        backend.console_session("a").await.unwrap().is_none(),
        "the least recently seen goes when the limit is reached"
    );
    assert_eq!(
        backend.console_session("c").await.unwrap(),
        Some(session(3_000))
    );

    assert!(backend.touch_console_session("b", 5_000).await.unwrap());
    assert!(backend.touch_console_session("b", 4_000).await.unwrap());
    assert_eq!(
        backend
            .console_session("b")
            .await
            .unwrap()
            .unwrap()
            .last_seen_ms,
        5_000,
        "a late touch does not move it back"
    );
    assert!(!backend.touch_console_session("gone", 5_000).await.unwrap());

    let flash = ConsoleFlash {
        kind: "ok".into(),
        text: "Plugin `hello` deployed".into(),
    };
    assert_eq!(
        backend.swap_console_flash("b", Some(&flash)).await.unwrap(),
        None
    );
    assert_eq!(
        backend
            .console_session("b")
            .await
            .unwrap()
            .unwrap()
            .flash
            .as_ref(),
        Some(&flash)
    );
    let takers: Vec<_> = (0..6)
        .map(|_| {
            let backend = fresh.backend.clone();
            tokio::spawn(async move { backend.swap_console_flash("b", None).await })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        if let Some(found) = taker.await.unwrap().unwrap() {
            taken.push(found);
        }
    }
    assert_eq!(taken, [flash], "one request shows the message");
    assert_eq!(
        backend.swap_console_flash("gone", None).await.unwrap(),
        None
    );

    backend.end_console_session("b").await.unwrap();
    assert!(backend.console_session("b").await.unwrap().is_none());
    assert_eq!(backend.end_console_sessions().await.unwrap(), 1);
    assert!(backend.console_session("c").await.unwrap().is_none());
}

/// API keys: found only by their hash, listed oldest first, revoked by id.
pub async fn api_keys_are_found_by_hash_listed_and_revoked(fresh: &Fresh) {
    use crate::api_keys::ApiKey;
    let backend = &fresh.backend;
    let key = |id: &str, at: u64, end_user: Option<&str>| ApiKey {
        id: id.into(),
        name: format!("key {id}"),
        end_user: end_user.map(str::to_owned),
        plugins: vec!["hello".into(), "mailchimp-sync".into()],
        created_at_ms: at,
    };
    backend
        .put_api_key("hash-b", &key("key_b", 2, None))
        .await
        .unwrap();
    backend
        .put_api_key("hash-a", &key("key_a", 1, Some("user-42")))
        .await
        .unwrap();
    assert_eq!(
        backend.api_key_by_hash("hash-a").await.unwrap(),
        Some(key("key_a", 1, Some("user-42")))
    );
    assert_eq!(
        backend.api_key_by_hash("key_a").await.unwrap(),
        None,
        "not by id"
    );
    let listed: Vec<String> = backend
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, ["key_a", "key_b"]);
    assert!(backend.delete_api_key("key_a").await.unwrap());
    assert!(!backend.delete_api_key("key_a").await.unwrap());
    assert_eq!(backend.api_key_by_hash("hash-a").await.unwrap(), None);
    assert_eq!(backend.api_keys().await.unwrap().len(), 1);
}

/// Every area's sealed values are listed where they live, and a reseal
/// replaces exactly the ones its function returns.
pub async fn sealed_values_are_listed_and_resealed(fresh: &Fresh) {
    let backend = &fresh.backend;
    backend
        .put_service(&service("svc", AuthType::Basic), false, Some("s-client"))
        .await
        .unwrap();
    let tokens = Credentials::Oauth2 {
        access_token: "a-sealed".to_owned(),
        refresh_token: Some("r-sealed".to_owned()),
        token_type: None,
        expires_at_ms: None,
    };
    backend
        .create_connection(&connection("main", "svc", tokens))
        .await
        .unwrap();
    backend
        .set_sealed_hook_secret("p", "h", "s-hook")
        .await
        .unwrap();
    backend
        .put_pending_authorization("state", &pending("main", now_ms()))
        .await
        .unwrap();
    backend
        .add_plugin_version("p", version(b"c", "sha", b"art"), "s-tag")
        .await
        .unwrap();
    let mut total = 0;
    for area in SealedArea::ALL {
        let values = backend.sealed_values(area).await.unwrap();
        assert!(!values.is_empty(), "{area:?} lists its value");
        total += values.len();
    }
    assert_eq!(total, 6, "two credential fields and one of each other");
    let aads: Vec<String> = backend
        .sealed_values(SealedArea::Connections)
        .await
        .unwrap()
        .into_iter()
        .map(|(slot, _)| slot.aad())
        .collect();
    assert!(
        aads.iter().all(|aad| aad.starts_with("connections/main/")),
        "{aads:?}"
    );

    for area in SealedArea::ALL {
        let changed = backend
            .reseal(
                area,
                Arc::new(|_, sealed: &str| {
                    Ok((sealed != "r-sealed").then(|| format!("{sealed}+new")))
                }),
            )
            .await
            .unwrap();
        assert_eq!(changed, 1, "{area:?}: only what the function replaced");
    }
    assert_eq!(
        backend
            .sealed_client_secret("svc")
            .await
            .unwrap()
            .as_deref(),
        Some("s-client+new")
    );
    let row = backend.connection(None, "main").await.unwrap().unwrap();
    assert_eq!(
        row.credentials,
        Credentials::Oauth2 {
            access_token: "a-sealed+new".to_owned(),
            refresh_token: Some("r-sealed".to_owned()),
            token_type: None,
            expires_at_ms: None,
        }
    );
    assert_eq!(
        backend
            .sealed_hook_secret("p", "h")
            .await
            .unwrap()
            .as_deref(),
        Some("s-hook+new")
    );
    assert_eq!(
        backend
            .artifact("sha", "engine-a")
            .await
            .unwrap()
            .unwrap()
            .0,
        "s-tag+new"
    );
    let taken = backend
        .take_pending_authorization("state")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.verifier.as_deref(), Some("sealed-verifier+new"));
}

/// Through [`Store`], every secret reaches the backend sealed and comes back
/// opened.
pub async fn the_backend_only_sees_ciphertext(fresh: &Fresh) {
    const CLIENT: &str = "client-secret-plain-1234";
    const TOKEN: &str = "bearer-token-plain-5678";
    const HOOK: &str = "hook-secret-plain-9012";
    const VERIFIER: &str = "pkce-verifier-plain-3456";
    let store = fresh.store().await;
    store
        .create_service(
            &service("oauth", AuthType::Oauth2),
            Some(&Secret::new(CLIENT.into())),
        )
        .await
        .unwrap();
    store
        .create_service(&service("svc", AuthType::Bearer), None)
        .await
        .unwrap();
    let token = Credentials::Bearer {
        token: Secret::new(TOKEN.into()),
    };
    store
        .create_connection(&connection("main", "svc", token.clone()))
        .await
        .unwrap();
    store
        .set_hook_secret("p", "h", &Secret::new(HOOK.into()))
        .await
        .unwrap();
    store
        .put_pending_authorization(
            "state",
            &PendingAuthorization {
                link_name: "main".into(),
                end_user: None,
                redirect_uri: "http://127.0.0.1/cb".into(),
                verifier: Some(Secret::new(VERIFIER.into())),
                scopes: vec![],
                created_at_ms: now_ms(),
                from_console: false,
                connect_link: None,
            },
        )
        .await
        .unwrap();

    let backend = &fresh.backend;
    for area in SealedArea::ALL {
        for (slot, sealed) in backend.sealed_values(area).await.unwrap() {
            for plain in [CLIENT, TOKEN, HOOK, VERIFIER] {
                assert!(
                    !sealed.contains(plain),
                    "{} holds a secret in plain text",
                    slot.aad()
                );
            }
        }
    }
    let row = backend.connection(None, "main").await.unwrap().unwrap();
    assert!(!serde_json::to_string(&row).unwrap().contains(TOKEN));

    assert_eq!(
        store
            .client_secret("oauth")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        CLIENT
    );
    assert_eq!(
        store
            .connection(None, "main")
            .await
            .unwrap()
            .unwrap()
            .credentials,
        token
    );
    assert_eq!(
        store.hook_secret("p", "h").await.unwrap().unwrap().expose(),
        HOOK
    );
    let taken = store
        .take_pending_authorization("state")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.verifier.unwrap().expose(), VERIFIER);

    // A sealed value moved to another slot does not open there.
    let sealed = backend.sealed_hook_secret("p", "h").await.unwrap().unwrap();
    backend
        .set_sealed_hook_secret("q", "h", &sealed)
        .await
        .unwrap();
    assert!(store.hook_secret("q", "h").await.is_err());

    // The rules above the backend: names and credential kinds.
    let wrong_kind = Credentials::ApiKey {
        key: Secret::new("k".into()),
    };
    let refused = store
        .create_connection(&connection("other", "svc", wrong_kind))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let bad_name = store
        .create_connection(&connection("Main-1", "svc", token))
        .await;
    assert!(
        matches!(bad_name, Err(StoreError::Invalid(_))),
        "{bad_name:?}"
    );
}

/// A key rotation re-seals every area, and a store over the same backend
/// opens everything with the new key afterwards.
pub async fn a_rotation_reseals_everything(fresh: &Fresh) {
    let store = fresh.store().await;
    store
        .create_service(
            &service("svc", AuthType::Bearer),
            Some(&Secret::new("cs".into())),
        )
        .await
        .unwrap();
    let token = Credentials::Bearer {
        token: Secret::new("tok".into()),
    };
    store
        .create_connection(&connection("main", "svc", token.clone()))
        .await
        .unwrap();
    store
        .set_hook_secret("p", "h", &Secret::new("hs".into()))
        .await
        .unwrap();
    store
        .add_plugin_version("p", version(b"c", "sha", b"machine"))
        .await
        .unwrap();
    let before = sealed_connections(fresh).await;
    let reopened = if fresh.backend.cluster().is_some() {
        // Each host of several holds the key: rotating one host's file
        // would strand the others, so the store refuses and says how.
        let refused = store.rotate_key().await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Invalid(why) if why.contains(crate::crypto::PREVIOUS_KEY_ENV)),
            "{refused}"
        );
        drop(store);
        let old = std::fs::read_to_string(fresh.dir.path().join(crate::crypto::KEY_FILE)).unwrap();
        let new = {
            use base64::Engine as _;
            use rand::RngCore;
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let keys = |previous: Option<String>| KeyConfig {
            current: Some(new.clone()),
            previous,
        };
        let both = Store::over(
            fresh.backend.clone(),
            fresh.dir.path(),
            keys(Some(old.trim().to_owned())),
        )
        .await
        .unwrap();
        drop(both);
        assert_ne!(before, sealed_connections(fresh).await);
        Store::over(fresh.backend.clone(), fresh.dir.path(), keys(None))
            .await
            .expect("the new key alone opens everything once a start re-sealed")
    } else {
        let rotation = store.rotate_key().await.unwrap();
        assert_ne!(rotation.key_id, rotation.previous_key_id);
        assert_eq!(
            rotation.resealed, 4,
            "client secret, token, hook secret, artifact tag"
        );
        assert_ne!(before, sealed_connections(fresh).await);
        drop(store);
        fresh.store().await
    };
    assert_eq!(
        reopened
            .client_secret("svc")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "cs"
    );
    assert_eq!(
        reopened
            .connection(None, "main")
            .await
            .unwrap()
            .unwrap()
            .credentials,
        token
    );
    assert_eq!(
        reopened
            .hook_secret("p", "h")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "hs"
    );
    assert_eq!(
        reopened.artifact("sha", "engine-a").await.unwrap().unwrap(),
        b"machine"
    );
}

async fn sealed_connections(fresh: &Fresh) -> Vec<String> {
    fresh
        .backend
        .sealed_values(SealedArea::Connections)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, sealed)| sealed)
        .collect()
}

/// An artifact whose bytes do not match its tag, or whose tag was made for
/// another component, is refused rather than run.
pub async fn artifacts_with_a_wrong_tag_are_refused(fresh: &Fresh) {
    let store = fresh.store().await;
    store
        .add_plugin_version("demo", version(b"c", "sha-1", b"machine code"))
        .await
        .unwrap();
    assert_eq!(
        store.artifact("sha-1", "engine-a").await.unwrap().unwrap(),
        b"machine code"
    );
    let (tag, _) = fresh
        .backend
        .artifact("sha-1", "engine-a")
        .await
        .unwrap()
        .unwrap();
    fresh
        .backend
        .put_artifact("sha-1", "engine-a", &tag, b"evil code")
        .await
        .unwrap();
    assert!(matches!(
        store.artifact("sha-1", "engine-a").await,
        Err(StoreError::Corrupt(..))
    ));
    store
        .put_artifact("sha-2", "engine-a", b"other")
        .await
        .unwrap();
    let (other_tag, _) = fresh
        .backend
        .artifact("sha-2", "engine-a")
        .await
        .unwrap()
        .unwrap();
    fresh
        .backend
        .put_artifact("sha-1", "engine-a", &other_tag, b"other")
        .await
        .unwrap();
    assert!(store.artifact("sha-1", "engine-a").await.is_err());
    let bad_name = store
        .add_plugin_version("Bad Name", version(b"x", "sha-3", b"a"))
        .await;
    assert!(
        matches!(bad_name, Err(StoreError::Invalid(_))),
        "{bad_name:?}"
    );
}

/// A snapshot's parts are what each area's own read gives, and parts not
/// asked for stay empty.
pub async fn a_snapshot_answers_like_each_area(fresh: &Fresh) {
    let backend = &fresh.backend;
    let nothing = backend.snapshot(&Reads::default()).await.unwrap();
    assert!(nothing.connections.is_empty() && nothing.plugins.is_empty());
    assert!(nothing.executions.is_empty() && nothing.deliveries.is_empty());

    backend
        .put_service(&service("svc", AuthType::Bearer), false, None)
        .await
        .unwrap();
    for link in ["one", "two"] {
        backend
            .create_connection(&connection(link, "svc", sealed_bearer("sealed")))
            .await
            .unwrap();
    }
    for name in ["alpha", "beta"] {
        backend
            .add_plugin_version(name, version(b"c", "sha", b"a"), "tag")
            .await
            .unwrap();
    }
    let records = (0..4)
        .map(|n| record(&format!("r-{n}"), "alpha", n % 2 == 0, n, "out"))
        .collect();
    backend.insert_executions(records, BUDGET).await.unwrap();
    let now = now_ms();
    backend
        .commit_journal(vec![event("e", None, now, &["alpha", "beta"], now)], BUDGET)
        .await
        .unwrap();

    let executions = ExecutionQuery {
        plugin: Some("alpha".into()),
        end_user: None,
        ok: Some(true),
        limit: 10,
    };
    let deliveries = queued(Some("beta"), Some(DeliveryState::Queued));
    let all = Reads {
        connections: true,
        plugins: true,
        executions: Some(executions.clone()),
        deliveries: Some(deliveries.clone()),
    };
    let Snapshot {
        connections,
        plugins,
        executions: records,
        deliveries: queue,
    } = backend.snapshot(&all).await.unwrap();
    assert_eq!(connections, backend.connections().await.unwrap());
    assert_eq!(connections.len(), 2);
    let names = |plugins: &[crate::PluginRecord]| -> Vec<String> {
        plugins.iter().map(|p| p.name.clone()).collect()
    };
    assert_eq!(names(&plugins), names(&backend.plugins().await.unwrap()));
    assert_eq!(names(&plugins), ["alpha", "beta"]);
    let ids = |records: &[ExecutionRecord]| -> Vec<String> {
        records.iter().map(|r| r.id.clone()).collect()
    };
    assert_eq!(ids(&records), ["r-2", "r-0"]);
    assert_eq!(
        ids(&records),
        ids(&backend.executions(&executions).await.unwrap())
    );
    let delivery_ids: Vec<&str> = queue.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(delivery_ids, ["d-e-beta"]);

    let only_plugins = backend
        .snapshot(&Reads {
            plugins: true,
            ..Reads::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&only_plugins.plugins), ["alpha", "beta"]);
    assert!(only_plugins.connections.is_empty() && only_plugins.executions.is_empty());
}
