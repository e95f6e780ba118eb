//! A plain server that records every request: to prove what reached a host
//! (and what did not), and to serve redirects, slow and huge responses.

use std::net::SocketAddr;
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
}

impl EchoServer {
    pub async fn start() -> Self {
        let journal = Journal::default();
        let addr = serve(Router::new().fallback(handle).with_state(journal.clone())).await;
        EchoServer { addr, journal }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn handle(
    State(journal): State<Journal>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    journal.record(&method, &uri, &headers, &body);
    let query: Vec<(String, String)> = query_pairs(&uri);
    match uri.path() {
        "/redirect" => {
            let to = query
                .iter()
                .find(|(k, _)| k == "to")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        "/huge" => vec![b'z'; 11 * 1024 * 1024].into_response(),
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
