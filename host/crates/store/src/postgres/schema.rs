//! The PostgreSQL schema and its migrations: numbered steps, each applied
//! once in its own transaction, the number reached kept in
//! `junction_meta`. Hosts starting together take an advisory lock, so one
//! migrates and the others find the work done; a database migrated by a
//! newer build is refused rather than written in a shape this build does
//! not know.

use crate::StoreError;

/// Every step, oldest first: step `n` (from 1) brings the schema to version `n`.
const MIGRATIONS: &[&str] = &[
    // 1: every area. Text keys compare bytewise (COLLATE "C"), as redb's
    // do, so listings come back in the same order from either backend.
    r#"
    CREATE TABLE services (
        name text COLLATE "C" PRIMARY KEY,
        doc bytea NOT NULL,
        sealed_client_secret text
    );
    CREATE TABLE connections (
        link_name text COLLATE "C" PRIMARY KEY,
        service text COLLATE "C" NOT NULL REFERENCES services (name),
        doc bytea NOT NULL
    );
    CREATE INDEX connections_by_service ON connections (service);
    CREATE TABLE kv (
        plugin text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (plugin, key)
    );
    CREATE TABLE kv_usage (
        plugin text COLLATE "C" PRIMARY KEY,
        bytes bigint NOT NULL,
        keys bigint NOT NULL
    );
    CREATE TABLE plugins (
        name text COLLATE "C" PRIMARY KEY,
        doc bytea NOT NULL
    );
    CREATE TABLE components (
        sha256 text COLLATE "C" PRIMARY KEY,
        bytes bytea NOT NULL
    );
    CREATE TABLE artifacts (
        sha256 text COLLATE "C" NOT NULL,
        compatibility text COLLATE "C" NOT NULL,
        tag text NOT NULL,
        bytes bytea NOT NULL,
        PRIMARY KEY (sha256, compatibility)
    );
    CREATE TABLE events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        accepted_at_ms bigint NOT NULL,
        doc bytea NOT NULL
    );
    CREATE TABLE idempotency (
        key text COLLATE "C" PRIMARY KEY,
        event_id text COLLATE "C" NOT NULL,
        accepted_at_ms bigint NOT NULL
    );
    CREATE TABLE deliveries (
        id text COLLATE "C" PRIMARY KEY,
        event_id text COLLATE "C" NOT NULL,
        plugin text COLLATE "C" NOT NULL,
        state text NOT NULL,
        due_ms bigint NOT NULL,
        doc bytea NOT NULL
    );
    CREATE INDEX deliveries_queue ON deliveries (due_ms, id) WHERE state = 'queued';
    CREATE INDEX deliveries_by_state ON deliveries (state, id);
    CREATE INDEX deliveries_by_event ON deliveries (event_id);
    CREATE TABLE executions (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        plugin text COLLATE "C" NOT NULL,
        ok boolean NOT NULL,
        size bigint NOT NULL,
        doc bytea NOT NULL
    );
    CREATE INDEX executions_by_plugin ON executions (plugin, seq);
    CREATE TABLE triggers (
        id text COLLATE "C" PRIMARY KEY,
        plugin text COLLATE "C",
        doc bytea NOT NULL
    );
    CREATE TABLE schedule_marks (
        key text COLLATE "C" PRIMARY KEY,
        at_ms bigint NOT NULL
    );
    CREATE TABLE hook_secrets (
        plugin text COLLATE "C" NOT NULL,
        hook text COLLATE "C" NOT NULL,
        sealed text NOT NULL,
        PRIMARY KEY (plugin, hook)
    );
    CREATE TABLE oauth_authorizations (
        state_hash text COLLATE "C" PRIMARY KEY,
        created_at_ms bigint NOT NULL,
        doc bytea NOT NULL
    );
    "#,
    // 2: leases, so several hosts share the queue. A queued delivery is
    // held by the run (one open of the backend) that queued or claimed it
    // until `lease_until_ms`, which that run keeps moving forward.
    r#"
    ALTER TABLE deliveries
        ADD COLUMN lease_run text,
        ADD COLUMN lease_until_ms bigint NOT NULL DEFAULT 0;
    CREATE INDEX deliveries_claimable ON deliveries (lease_until_ms) WHERE state = 'queued';
    CREATE INDEX deliveries_held ON deliveries (lease_run) WHERE state = 'queued';
    "#,
    // 3: what lets any host serve any request: console sessions, and rate
    // limits counted across hosts (unlogged: losing them in a crash only
    // forgives a minute of allowance, and they cost no WAL).
    r#"
    CREATE TABLE console_sessions (
        key text COLLATE "C" PRIMARY KEY,
        created_at_ms bigint NOT NULL,
        last_seen_ms bigint NOT NULL,
        flash bytea
    );
    CREATE INDEX console_sessions_by_seen ON console_sessions (last_seen_ms);
    CREATE UNLOGGED TABLE rate_limits (
        key text COLLATE "C" PRIMARY KEY,
        tat_ms bigint NOT NULL
    );
    CREATE INDEX rate_limits_by_tat ON rate_limits (tat_ms);
    "#,
    // 4: each plugin's execution count and bytes beside its records, so a
    // trim is a delete of the oldest rows rather than a ranking of all.
    r#"
    CREATE TABLE execution_totals (
        plugin text COLLATE "C" PRIMARY KEY,
        records bigint NOT NULL,
        bytes bigint NOT NULL
    );
    INSERT INTO execution_totals (plugin, records, bytes)
        SELECT plugin, count(*), coalesce(sum(size), 0) FROM executions GROUP BY plugin;
    "#,
    // 5: API keys, under the sha256 of their secret.
    r#"
    CREATE TABLE api_keys (
        hash text COLLATE "C" PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        created_at_ms bigint NOT NULL,
        doc bytea NOT NULL
    );
    "#,
    // 6: end users. A connection is named by end user and link name (''
    // for the organisation's own, which no end user id can be); executions
    // and deliveries carry the end user they ran for, to filter by.
    r#"
    ALTER TABLE connections ADD COLUMN end_user text COLLATE "C" NOT NULL DEFAULT '';
    ALTER TABLE connections DROP CONSTRAINT connections_pkey;
    ALTER TABLE connections ADD PRIMARY KEY (end_user, link_name);
    ALTER TABLE executions ADD COLUMN end_user text COLLATE "C";
    CREATE INDEX executions_by_end_user ON executions (end_user, seq) WHERE end_user IS NOT NULL;
    ALTER TABLE deliveries ADD COLUMN end_user text COLLATE "C";
    CREATE INDEX deliveries_by_end_user ON deliveries (end_user, id) WHERE end_user IS NOT NULL;
    "#,
    // 7: connect links, each with its expiry beside its JSON for pruning.
    r#"
    CREATE TABLE connect_links (
        id text COLLATE "C" PRIMARY KEY,
        expires_at_ms bigint NOT NULL,
        doc bytea NOT NULL
    );
    CREATE INDEX connect_links_by_expiry ON connect_links (expires_at_ms);
    "#,
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Any fixed number: the advisory lock hosts migrating at once take.
const MIGRATION_LOCK: i64 = 0x6a75_6e63_7469_6f6e; // "junction"

const CREATE_META: &str = r#"CREATE TABLE IF NOT EXISTS junction_meta (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
)"#;

/// The version the database's schema is at (0 for an empty database).
pub(super) async fn version(client: &tokio_postgres::Client) -> Result<u32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('junction_meta') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt(
            "SELECT value FROM junction_meta WHERE key = 'schema_version'",
            &[],
        )
        .await?;
    match row {
        None => Ok(0),
        Some(row) => {
            let text: String = row.get(0);
            text.parse().map_err(|e: std::num::ParseIntError| {
                StoreError::Corrupt("junction_meta/schema_version".into(), e.to_string())
            })
        }
    }
}

/// Brings the schema to [`LATEST`], or refuses a newer one.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    // Session-level: held across the steps' own transactions, released below.
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = migrate_locked(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    outcome
}

async fn migrate_locked(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    client.batch_execute(CREATE_META).await?;
    let found = version(client).await?;
    if found > LATEST {
        return Err(StoreError::NewerSchema {
            found,
            known: LATEST,
        });
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let number = index as u32 + 1;
        let txn = client.transaction().await?;
        txn.batch_execute(step).await?;
        txn.execute(
            "INSERT INTO junction_meta (key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&number.to_string()],
        )
        .await?;
        txn.commit().await?;
        tracing::info!(version = number, "PostgreSQL schema migrated");
    }
    Ok(())
}
