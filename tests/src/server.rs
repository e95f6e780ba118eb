//! Starting a mock server on 127.0.0.1:0, and what every mock records.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};

/// Serves `router` on a fresh loopback port until the test's runtime ends.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// One request a mock received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The requests a mock received, in order.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Received>>>);

impl Journal {
    pub fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
        let query = query_pairs(uri);
        let received = Received {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query,
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(received);
    }

    pub fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn matching(&self, method: &str, path_prefix: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The decoded query parameters of a request, in order.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Decides whether a mock API accepts a token: a fixed one, or whatever a
/// fake OAuth provider has issued and not yet revoked.
pub type TokenCheck = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Accepts exactly `token`.
pub fn fixed_token(token: &str) -> TokenCheck {
    let token = token.to_owned();
    std::sync::Arc::new(move |presented| presented == token)
}
