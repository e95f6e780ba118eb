//! A plain server that records every request: to prove what reached a host
//! (and what did not), and to serve redirects, slow, held, sized and huge
//! responses. It counts the requests it holds at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::server::{Journal, query_pairs, serve};

pub struct EchoServer {
    pub addr: SocketAddr,
    pub journal: Journal,
    held: Held,
}

/// Requests inside `/hold` now, and the most there were at once.
#[derive(Clone, Default)]
struct Held {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct EchoState {
    journal: Journal,
    held: Held,
}

impl EchoServer {
    pub async fn start() -> Self {
        let journal = Journal::default();
        let held = Held::default();
        let state = EchoState {
            journal: journal.clone(),
            held: held.clone(),
        };
        let addr = serve(Router::new().fallback(handle).with_state(state)).await;
        EchoServer {
            addr,
            journal,
            held,
        }
    }

    /// The most requests `/hold` held at once so far.
    pub fn most_held_at_once(&self) -> usize {
        self.held.most.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The first value of query parameter `name`.
fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn handle(
    State(EchoState { journal, held }): State<EchoState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    journal.record(&method, &uri, &headers, &body);
    let query: Vec<(String, String)> = query_pairs(&uri);
    match uri.path() {
        "/redirect" => {
            let to = param(&query, "to").unwrap_or_default().to_owned();
            (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        "/huge" => vec![b'z'; 11 * 1024 * 1024].into_response(),
        // Waits `ms` milliseconds (default 200) while counting the requests
        // waiting here at once.
        "/hold" => {
            let ms = param(&query, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(200);
            let now = held.now.fetch_add(1, Ordering::SeqCst) + 1;
            held.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            held.now.fetch_sub(1, Ordering::SeqCst);
            "held".into_response()
        }
        // `bytes` bytes of `s`.
        "/sized" => {
            let bytes = param(&query, "bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0usize);
            vec![b's'; bytes.min(64 * 1024 * 1024)].into_response()
        }
        // Everything the request carried, in the body and in headers, plus
        // a session cookie: what a careless or hostile API hands back.
        "/mirror" => {
            let all: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let auth = headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let body =
                serde_json::json!({ "uri": uri.to_string(), "query": query, "headers": all });
            (
                [
                    (
                        header::SET_COOKIE,
                        "session=s3ss10n-c00kie; HttpOnly".to_owned(),
                    ),
                    (
                        header::HeaderName::from_static("x-seen-authorization"),
                        auth,
                    ),
                ],
                axum::Json(body),
            )
                .into_response()
        }
        _ => {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            axum::Json(serde_json::json!({ "path": uri.path(), "authorization": auth }))
                .into_response()
        }
    }
}
