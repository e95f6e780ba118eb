//! The PostgreSQL server the tests share (started by `scripts/test.sh`,
//! named by `JUNCTION_TEST_POSTGRES`) and a new empty database on it for
//! each test, so tests never see each other's rows.

use junction_host::store::StoreUrl;
use junction_host::store::url::PostgresUrl;

/// The test server's URL; a test without one fails saying how to get one.
pub fn server_url() -> PostgresUrl {
    let text = match std::env::var("JUNCTION_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "the PostgreSQL tests need a server: run ./scripts/test.sh, which starts a throwaway cluster, or set JUNCTION_TEST_POSTGRES=postgres://user@127.0.0.1:PORT/postgres"
        ),
    };
    text.parse()
        .expect("JUNCTION_TEST_POSTGRES is a PostgreSQL URL")
}

/// A store URL naming a new, empty database on the test server.
pub async fn fresh_database() -> StoreUrl {
    let server = server_url();
    let (client, connection) = server
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL accepts connections");
    let driver = tokio::spawn(connection);
    let name = format!("junction_e2e_{}", random_suffix());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a test database is created");
    drop(client);
    let _ = driver.await;
    StoreUrl::Postgres(Box::new(server.with_database(&name)))
}

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", std::process::id())
}
