//! Server benchmark: `POST /v1/plugins/hello/invoke` over loopback with N
//! concurrent clients (requests/s, p50/p99 latency), the web console's
//! busiest pages for a signed-in browser, and the time a restart takes until
//! 100 deployed plugins are ready to serve.
//!
//! Run with `cargo bench -p junction-tests --bench server`. Each invoke is a
//! real execution whose record is durably committed before the response;
//! commits are grouped, so concurrency shares fsyncs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_host::server::Server;
use junction_tests::host::TestHost;
use junction_tests::load::{load, post_load};
use junction_tests::plugins::component_bytes;
use serde_json::json;

const RUN_FOR: Duration = Duration::from_secs(4);

/// Appends a custom section so each copy of a component has its own sha256.
fn with_custom_section(mut bytes: Vec<u8>, tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"junction-bench";
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name);
    body.extend_from_slice(tag.as_bytes());
    bytes.push(0);
    leb(body.len(), &mut bytes);
    bytes.extend_from_slice(&body);
    bytes
}

async fn invoke_load(host: &Arc<TestHost>, clients: usize) {
    let report = post_load(
        host,
        clients,
        RUN_FOR,
        "/v1/plugins/hello/invoke",
        json!({"kind": "hello", "payload": {"n": 1}}),
        reqwest::StatusCode::OK,
    )
    .await;
    println!(
        "{}",
        report.line(&format!("invoke hello  clients {clients:>3}"), "req")
    );
}

async fn page_load(host: &Arc<TestHost>, clients: usize, path: &'static str, session: &str) {
    let session = session.to_owned();
    let report = load(
        host,
        clients,
        RUN_FOR,
        move |host| {
            host.http
                .get(format!("{}{path}", host.url))
                .header("cookie", &session)
        },
        reqwest::StatusCode::OK,
    )
    .await;
    println!(
        "{}",
        report.line(&format!("console {path:<14} clients {clients:>3}"), "page")
    );
}

async fn restart_with_plugins(count: usize) {
    let mut host = TestHost::start().await;
    let hello = component_bytes("hello");
    let uploads = Instant::now();
    for i in 0..count {
        let bytes = with_custom_section(hello.clone(), &i.to_string());
        let answer = host.upload(&format!("hello-{i}"), bytes, None, None).await;
        assert_eq!(
            answer.status,
            reqwest::StatusCode::CREATED,
            "{}",
            answer.text
        );
    }
    println!(
        "deploy {count} distinct components: {:.1} s ({:.0} ms each, compile included)",
        uploads.elapsed().as_secs_f64(),
        uploads.elapsed().as_secs_f64() * 1000.0 / count as f64
    );
    host.stop().await;
    let mut samples = Vec::new();
    for _ in 0..5 {
        let mut config = host.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let started = Instant::now();
        let server = Server::start(config).await.expect("restart");
        let ready = started.elapsed();
        let report = server.load_report();
        assert_eq!(
            report.from_artifact, count,
            "every plugin from its artifact"
        );
        // Ready means serving: the last plugin answers.
        let url = format!(
            "http://{}/v1/plugins/hello-{}/invoke",
            server.addr(),
            count - 1
        );
        let answer = reqwest::Client::new()
            .post(url)
            .bearer_auth(&host.token)
            .json(&json!({"kind": "hello"}))
            .send()
            .await
            .expect("invoke");
        assert!(answer.status().is_success());
        let _ = answer.bytes().await;
        samples.push(ready);
        server.shutdown().await.expect("shutdown");
    }
    samples.sort();
    println!(
        "restart with {count} plugins ready: median {:.0} ms, min {:.0} ms, max {:.0} ms (5 restarts, all from artifacts)",
        samples[2].as_secs_f64() * 1000.0,
        samples[0].as_secs_f64() * 1000.0,
        samples[4].as_secs_f64() * 1000.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async {
        if smoke {
            let host = Arc::new(TestHost::start().await);
            host.upload("hello", component_bytes("hello"), None, None).await;
            let answer = host.invoke("hello", "hello", json!({})).await;
            assert_eq!(answer.json["status"], "ok");
            println!("server bench smoke run ok; `cargo bench -p junction-tests --bench server` for figures");
            return;
        }
        println!(
            "machine: {} cores",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );
        let host = Arc::new(TestHost::start().await);
        let answer = host.upload("hello", component_bytes("hello"), None, None).await;
        assert_eq!(answer.status, reqwest::StatusCode::CREATED);
        for _ in 0..200 {
            host.invoke("hello", "hello", json!({})).await;
        }
        for clients in [1, 4, 16, 64] {
            invoke_load(&host, clients).await;
        }
        // The execution list renders its newest 100 rows; the plugin page
        // reads the plugin, its triggers and 20 executions.
        let session = host.console_session().await;
        for path in ["/executions", "/plugins/hello", "/"] {
            for clients in [1, 16] {
                page_load(&host, clients, path, &session).await;
            }
        }
        restart_with_plugins(100).await;
    });
}
