//! The shared backend: every area in one PostgreSQL database, for several
//! `junction serve` hosts at once. [`Postgres`] holds a pool of
//! connections (tokio-postgres under deadpool) and implements the storage
//! traits natively async: each call is one transaction, a journal batch
//! included. Row locks (`FOR UPDATE`) and unique keys give the guarantees
//! redb gets from its single writer, so they hold across hosts. The
//! schema is created and brought up to date by [`schema`] at open.

mod api_keys;
mod cluster;
mod connect_links;
mod connections;
mod console;
mod executions;
mod journal;
mod kv;
mod plugins;
mod schema;
mod sealed;
mod services;
mod sessions;
mod snapshot;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::StoreError;
use crate::url::PostgresUrl;

pub use schema::LATEST as SCHEMA_VERSION;

/// Connections kept open per host.
const POOL_SIZE: usize = 16;

/// A PostgreSQL database behind the storage traits.
pub struct Postgres {
    pool: Pool,
    /// How to open a connection outside the pool (the change listener's).
    config: tokio_postgres::Config,
    /// Rate checks since the last sweep of lapsed rate limits.
    rate_checks: std::sync::atomic::AtomicU64,
    describe: String,
    /// This open of the backend, as the holder of delivery leases.
    run: String,
    /// How long a lease lasts unless renewed.
    lease: Duration,
}

/// How long a host holds a delivery without renewing its lease, unless told
/// otherwise: a dead host's deliveries run elsewhere this long after it died.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

impl Postgres {
    /// Connects to the database `url` names and brings its schema up to
    /// this build's, refusing one written by a newer build.
    pub async fn open(url: &PostgresUrl) -> Result<Self, StoreError> {
        Self::open_with_lease(url, DEFAULT_LEASE).await
    }

    /// [`Postgres::open`], holding deliveries under leases of `lease`.
    pub async fn open_with_lease(url: &PostgresUrl, lease: Duration) -> Result<Self, StoreError> {
        let mut config = url.config();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("junction");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(StoreError::PoolSetup)?;
        let backend = Postgres {
            pool,
            config,
            rate_checks: std::sync::atomic::AtomicU64::new(0),
            describe: format!("PostgreSQL at {url}"),
            run: new_run_id(),
            lease,
        };
        let mut client = backend.client().await?;
        schema::migrate(&mut client).await?;
        Ok(backend)
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|source| StoreError::Unreachable {
                at: self.describe.clone(),
                source,
            })
    }
}

impl crate::backend::Backend for Postgres {
    fn cluster(&self) -> Option<&dyn crate::cluster::Cluster> {
        Some(self)
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// A run id no other open of any backend has: the time and random bits.
fn new_run_id() -> String {
    use rand::Rng;
    let random: u64 = rand::rng().random();
    format!("{:x}-{random:016x}", junction_core::now_ms())
}

impl Postgres {
    /// When a lease taken or renewed now ends.
    fn lease_until(&self, now: u64) -> i64 {
        big(now.saturating_add(u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)))
    }
}

/// Statements through a connection or a transaction, each prepared once
/// per connection (deadpool's statement cache) rather than on every call.
#[async_trait]
pub(crate) trait Prepared: deadpool_postgres::GenericClient {
    /// Runs `sql`; how many rows it changed.
    async fn run(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let statement = self.prepare_cached(sql).await?;
        Ok(self.execute(&statement, params).await?)
    }

    /// The rows `sql` answers.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.prepare_cached(sql).await?;
        Ok(self.query(&statement, params).await?)
    }

    /// The one row `sql` answers.
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
        let statement = self.prepare_cached(sql).await?;
        Ok(self.query_one(&statement, params).await?)
    }

    /// The row `sql` answers, if any.
    async fn maybe_row(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.prepare_cached(sql).await?;
        Ok(self.query_opt(&statement, params).await?)
    }
}

impl<T: deadpool_postgres::GenericClient> Prepared for T {}

/// Whether `err` ended a transaction only because another one (another
/// host's) conflicted with it, so running it again may well succeed.
fn is_conflict(err: &StoreError) -> bool {
    matches!(err, StoreError::Postgres(err) if err.code().is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    }))
}

/// Whether `err` is a unique key refusing a second row.
fn is_unique_violation(err: &StoreError) -> bool {
    matches!(err, StoreError::Postgres(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION))
}

/// A stored `u64` as PostgreSQL's `bigint` (times in ms, counts, sizes):
/// values past `i64::MAX` mean "no limit" and are clamped.
fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `bigint` read back as the `u64` it was written from.
fn unbig(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Decodes a stored JSON document; `what` names it in the error.
fn decode<T: for<'de> serde::Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(what.to_owned(), e.to_string()))
}

#[async_trait]
impl crate::meta::MetaRows for Postgres {
    async fn schema_version(&self) -> Result<u32, StoreError> {
        let client = self.client().await?;
        schema::version(&client).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT value FROM junction_meta WHERE key = $1", &[&key])
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .run(
                "INSERT INTO junction_meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
            .await?;
        Ok(())
    }

    async fn add_meta(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let added = client
            .run(
                "INSERT INTO junction_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await?;
        Ok(added == 1)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    /// The server the tests use, from `JUNCTION_TEST_POSTGRES` (which
    /// `scripts/test.sh` sets after starting a throwaway cluster).
    pub(crate) fn server_url() -> String {
        match std::env::var("JUNCTION_TEST_POSTGRES") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!(
                "the PostgreSQL backend's tests need a server: run ./scripts/test.sh, which starts a throwaway cluster, or set JUNCTION_TEST_POSTGRES=postgres://user@127.0.0.1:PORT/postgres"
            ),
        }
    }

    /// A new, empty database on the test server, by URL.
    pub(crate) async fn fresh_database() -> PostgresUrl {
        let admin: PostgresUrl = server_url().parse().expect("JUNCTION_TEST_POSTGRES parses");
        let (client, connection) = admin
            .config()
            .connect(NoTls)
            .await
            .expect("the test server accepts connections");
        let driver = tokio::spawn(connection);
        let name = format!("junction_test_{}", uuid_like());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a test database is created");
        drop(client);
        let _ = driver.await;
        admin.with_database(&name)
    }

    fn uuid_like() -> String {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..16)
            .map(|_| char::from(b'a' + rng.random_range(0..26)))
            .collect()
    }

    async fn fresh() -> crate::conformance::Fresh {
        let url = fresh_database().await;
        let backend = Postgres::open(&url).await.expect("postgres opens");
        crate::conformance::Fresh {
            backend: Arc::new(backend),
            dir: tempfile::tempdir().expect("a temporary directory"),
            schema: SCHEMA_VERSION,
        }
    }

    crate::conformance_tests!(fresh);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn announcements_reach_the_other_hosts_and_not_their_sender() {
        use crate::cluster::{Change, Cluster};
        use std::time::Duration;
        let url = fresh_database().await;
        let (a, b, c) = (
            Postgres::open(&url).await.unwrap(),
            Postgres::open(&url).await.unwrap(),
            Postgres::open(&url).await.unwrap(),
        );
        let mut heard_by_a = a.listen().await.unwrap();
        let mut heard_by_b = b.listen().await.unwrap();
        let mut heard_by_c = c.listen().await.unwrap();
        // LISTEN is issued by each listener's own task: wait until all three are on.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let listening: i64 = a
                .client()
                .await
                .unwrap()
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND query LIKE 'LISTEN%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if listening >= 3 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the listeners never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let plugin = Change::Plugin("hello".into());
        a.announce(&plugin).await.unwrap();
        a.announce(&Change::AdminToken).await.unwrap();
        let within = Duration::from_secs(5);
        for heard in [&mut heard_by_b, &mut heard_by_c] {
            assert_eq!(
                tokio::time::timeout(within, heard.recv()).await.unwrap(),
                Some(plugin.clone())
            );
            assert_eq!(
                tokio::time::timeout(within, heard.recv()).await.unwrap(),
                Some(Change::AdminToken)
            );
        }
        b.announce(&Change::Triggers).await.unwrap();
        assert_eq!(
            tokio::time::timeout(within, heard_by_a.recv())
                .await
                .unwrap(),
            Some(Change::Triggers),
            "a hears b, and nothing of its own before it"
        );
        // Someone else's text on the channel (a newer build) means "look at everything".
        a.client()
            .await
            .unwrap()
            .execute(
                "SELECT pg_notify('junction_changes', 'other-run something-new')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            tokio::time::timeout(within, heard_by_a.recv())
                .await
                .unwrap(),
            Some(Change::Resync)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journal_batches_of_several_hosts_on_the_same_rows_all_commit() {
        use crate::conformance::{BUDGET, event, record};
        use crate::encoded::Encoded;
        use crate::journal::{JournalEntry, JournalRows};
        let url = fresh_database().await;
        let mut hosts = Vec::new();
        for _ in 0..3 {
            hosts.push(Arc::new(Postgres::open(&url).await.unwrap()));
        }
        // Every batch claims the same idempotency keys (in its own order)
        // and trims the same plugin's history: rows several transactions
        // lock at once, as under load.
        let mut batches = Vec::new();
        for n in 0..24usize {
            let host = hosts[n % 3].clone();
            batches.push(tokio::spawn(async move {
                let mut entries = Vec::new();
                for k in 0..8usize {
                    let key = format!("key-{}", (k * 5 + n) % 8);
                    entries.push(event(&format!("e-{n}-{k}"), Some(&key), 1_000, &["p"], 0));
                    entries.push(JournalEntry::Execution(std::sync::Arc::new(
                        Encoded::new(record(&format!("x-{n}-{k}"), "p", true, 1_000, "ok"))
                            .unwrap(),
                    )));
                }
                host.commit_journal(
                    entries,
                    crate::journal::HistoryBudget {
                        records: 10,
                        ..BUDGET
                    },
                )
                .await
            }));
        }
        for batch in batches {
            batch
                .await
                .unwrap()
                .expect("every batch commits, whichever host it came from");
        }
        let kept: i64 = hosts[0]
            .client()
            .await
            .unwrap()
            .query_one("SELECT count(DISTINCT key) FROM idempotency", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(kept, 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_limit_is_counted_over_every_host() {
        use crate::cluster::{Cluster, RateAnswer};
        let url = fresh_database().await;
        let hosts = [
            Postgres::open(&url).await.unwrap(),
            Postgres::open(&url).await.unwrap(),
            Postgres::open(&url).await.unwrap(),
        ];
        let now = 1_000_000;
        let mut allowed = 0;
        for call in 0..30 {
            if hosts[call % 3]
                .take_rate_token("ip:10.0.0.1", now, 20)
                .await
                .unwrap()
                == RateAnswer::Allowed
            {
                allowed += 1;
            }
        }
        assert_eq!(
            allowed, 20,
            "a minute's allowance in a burst, whichever host is asked"
        );
        match hosts[0]
            .take_rate_token("ip:10.0.0.1", now, 20)
            .await
            .unwrap()
        {
            RateAnswer::RetryAfterMs(wait) => {
                assert_eq!(wait, 3_000, "one request's share of a minute")
            }
            RateAnswer::Allowed => panic!("past the allowance"),
        }
        assert_eq!(
            hosts[1]
                .take_rate_token("ip:10.0.0.2", now, 20)
                .await
                .unwrap(),
            RateAnswer::Allowed,
            "another address has its own allowance"
        );
        assert_eq!(
            hosts[2]
                .take_rate_token("ip:10.0.0.1", now + 3_000, 20)
                .await
                .unwrap(),
            RateAnswer::Allowed,
            "refilled evenly"
        );
    }

    #[tokio::test]
    async fn a_schema_newer_than_this_build_is_refused_and_a_reopen_migrates_nothing() {
        let url = fresh_database().await;
        let first = Postgres::open(&url).await.unwrap();
        drop(first);
        // Opening again finds the schema current and changes nothing.
        let again = Postgres::open(&url).await.unwrap();
        use crate::meta::MetaRows;
        assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
        again
            .client()
            .await
            .unwrap()
            .execute(
                "UPDATE junction_meta SET value = $1 WHERE key = 'schema_version'",
                &[&(SCHEMA_VERSION + 1).to_string()],
            )
            .await
            .unwrap();
        drop(again);
        match Postgres::open(&url).await {
            Err(StoreError::NewerSchema { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            Err(other) => panic!("expected NewerSchema, got {other}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    }

    #[tokio::test]
    async fn hosts_opening_at_once_migrate_once() {
        let url = fresh_database().await;
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Postgres::open(&url).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.unwrap().expect("every host opens");
        }
    }

    /// The attempt of `delivery` as the dispatcher settles it.
    fn settled(delivery: &crate::Delivery, attempt: &str) -> crate::journal::JournalEntry {
        let now = junction_core::now_ms();
        let record = crate::conformance::record(attempt, &delivery.plugin, true, now, "ok");
        let after = crate::journal::apply_change(
            delivery.clone(),
            &crate::DeliveryChange::Succeeded,
            Some(&record),
            now,
        )
        .unwrap();
        crate::journal::JournalEntry::Settled {
            delivery: Box::new(crate::Encoded::new(after).unwrap()),
            previous_due_ms: delivery.next_attempt_at_ms,
            record: Some(Box::new(crate::Encoded::new(record).unwrap())),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lapsed_lease_moves_deliveries_to_another_host_and_the_first_settles_nothing() {
        use crate::journal::{JournalAnswer, JournalRows};
        let url = fresh_database().await;
        let a = Postgres::open_with_lease(&url, Duration::from_millis(300))
            .await
            .unwrap();
        let b = Postgres::open(&url).await.unwrap();
        let c = Postgres::open(&url).await.unwrap();
        let now = junction_core::now_ms();
        let budget = crate::conformance::BUDGET;
        a.commit_journal(
            vec![crate::conformance::event("e", None, now, &["p", "q"], now)],
            budget,
        )
        .await
        .unwrap();
        assert!(
            b.claim_deliveries(10).await.unwrap().is_empty(),
            "a holds what it queued"
        );
        // `a` stops renewing (it died); its lease lapses.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taken = b.claim_deliveries(10).await.unwrap();
        let ids: Vec<&str> = taken.iter().map(|(d, _)| d.id.as_str()).collect();
        assert_eq!(ids, ["d-e-p", "d-e-q"]);
        assert!(taken.iter().all(|(_, event)| event.id == "e"));
        assert!(
            c.claim_deliveries(10).await.unwrap().is_empty(),
            "b holds them now"
        );

        let (p, _) = &taken[0];
        let late = a
            .commit_journal(vec![settled(p, "x-a")], budget)
            .await
            .unwrap();
        assert_eq!(late, [JournalAnswer::Skipped], "a lost its lease");
        let done = b
            .commit_journal(vec![settled(p, "x-b")], budget)
            .await
            .unwrap();
        assert_eq!(done, [JournalAnswer::Written]);
        let stored = b.delivery("d-e-p").await.unwrap().unwrap();
        assert_eq!(stored.executions, ["x-b"], "attempts counted once");
        assert!(
            b.execution("x-a").await.unwrap().is_some(),
            "a's attempt is still recorded"
        );

        assert_eq!(b.renew_leases().await.unwrap(), 1, "q is still held");
        assert_eq!(b.release_leases().await.unwrap(), 1);
        let moved = c.claim_deliveries(10).await.unwrap();
        assert_eq!(moved.len(), 1, "a released delivery is claimed at once");
        assert_eq!(moved[0].0.id, "d-e-q");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hosts_claiming_at_once_never_share_a_delivery() {
        use crate::journal::JournalRows;
        let url = fresh_database().await;
        let source = Postgres::open_with_lease(&url, Duration::from_millis(1))
            .await
            .unwrap();
        let now = junction_core::now_ms();
        let batch: Vec<_> = (0..200)
            .map(|n| crate::conformance::event(&format!("e{n}"), None, now, &["p"], now))
            .collect();
        source
            .commit_journal(batch, crate::conformance::BUDGET)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut hosts = Vec::new();
        for _ in 0..4 {
            hosts.push(Arc::new(Postgres::open(&url).await.unwrap()));
        }
        let claims: Vec<_> = hosts
            .iter()
            .map(|host| {
                let host = host.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let got = host.claim_deliveries(7).await.unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|(d, _)| d.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for claim in claims {
            all.extend(claim.await.unwrap());
        }
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(total, 200, "every delivery claimed");
        assert_eq!(all.len(), 200, "none claimed twice");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_without_its_password() {
        let url: PostgresUrl =
            "postgres://junction:hunter2-secret@127.0.0.1:1/none?connect_timeout=2"
                .parse()
                .unwrap();
        let err = match Postgres::open(&url).await {
            Err(err) => err.to_string(),
            Ok(_) => panic!("nothing listens on port 1"),
        };
        assert!(!err.contains("hunter2-secret"), "{err}");
        assert!(err.contains("127.0.0.1"), "{err}");
    }
}
