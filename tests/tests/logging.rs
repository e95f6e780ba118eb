//! The host's own log never carries a secret. Alone in its test binary:
//! tracing caches per-callsite interest process-wide, so a scoped subscriber
//! is only reliable when no other test runs beside it.

use junction_tests::echo::EchoServer;
use junction_tests::harness::{Harness, call_error};
use serde_json::json;

const TOKEN: &str = "tok_SuperSecretValue_8c1d2e";

/// Collects everything the host logs at debug level on this thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_stay_out_of_the_host_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new();
    let api = EchoServer::start().await;
    h.add_query_key("hub", &api.origin(), "hapikey", TOKEN);
    h.add_bearer("crm", "http://127.0.0.1:9", TOKEN);
    let plugin = h.load_simple("probe", &["hub", "crm"]);
    let record = h
        .run(&plugin, "call", json!({"url": "/a", "connection": "hub"}))
        .await;
    assert_eq!(record.output().expect("ok")["status"], 200);
    // A failing call (nothing listens on port 9) logs its error too.
    let record = h
        .run(&plugin, "call", json!({"url": "/b", "connection": "crm"}))
        .await;
    assert!(call_error(&record).contains("transport"));

    let log =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        log.contains("invoke-url") && log.contains("hapikey=REDACTED"),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the host log leaks a secret: {log}");
    assert!(
        !serde_json::to_string(&record)
            .expect("json")
            .contains(TOKEN)
    );
}
