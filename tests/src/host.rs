//! The real `junction serve` (in process) on 127.0.0.1:0 with a temporary
//! data directory, and a small HTTP client for its API.

use std::net::SocketAddr;

use junction_host::server::{Server, ServerConfig};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// A running server and what it takes to talk to it.
pub struct TestHost {
    pub dir: TempDir,
    pub config: ServerConfig,
    pub server: Option<Server>,
    pub token: String,
    pub url: String,
    pub http: reqwest::Client,
}

/// An answer: status and body (JSON when it parses, else `Value::Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
    pub json: Value,
}

impl Answer {
    async fn from(response: Response) -> Self {
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// The field an error answer names, if it names one.
    pub fn field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }

    /// The error message of an error answer.
    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
}

/// The CSRF token a console page's first form carries.
pub fn csrf_of(html: &str) -> String {
    html.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the session's CSRF token")
        .to_owned()
}

/// The `name=value` of the cookie `name` a response sets.
pub fn set_cookie(response: &Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the response sets cookie `{name}`"))
}

impl TestHost {
    /// Starts a server with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new(dir.path(), "127.0.0.1:0".parse().expect("addr"));
        config.max_instances = 16;
        // The mock providers listen on 127.0.0.1.
        config.allow_private_network = true;
        adjust(&mut config);
        let server = Server::start(config.clone()).await.expect("server starts");
        let token = server
            .issued_token()
            .expect("the first start issues a token")
            .to_owned();
        Self::serving(dir, config, server, token)
    }

    /// Starts a server on a data directory that already holds a store,
    /// its key and its admin token (a fixture written by another build).
    pub async fn start_in(dir: TempDir) -> Self {
        let mut config = ServerConfig::new(dir.path(), "127.0.0.1:0".parse().expect("addr"));
        config.max_instances = 16;
        config.allow_private_network = true;
        let server = Server::start(config.clone()).await.expect("server starts");
        assert!(
            server.issued_token().is_none(),
            "the data directory has a token"
        );
        let token = std::fs::read_to_string(dir.path().join("admin-token"))
            .expect("admin token")
            .trim()
            .to_owned();
        Self::serving(dir, config, server, token)
    }

    /// Starts a second host on the same store: its own data directory,
    /// holding a copy of this host's master key (as an operator would copy
    /// it, or set JUNCTION_MASTER_KEY on every host), and the same admin
    /// token, which the store holds.
    pub async fn beside(&self) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = junction_host::store::crypto::KEY_FILE;
        std::fs::copy(self.dir.path().join(key), dir.path().join(key)).expect("master key copied");
        let mut config = self.config.clone();
        config.data_dir = dir.path().to_owned();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let server = Server::start(config.clone())
            .await
            .expect("second host starts");
        assert!(
            server.issued_token().is_none(),
            "the store already has an admin token"
        );
        Self::serving(dir, config, server, self.token.clone())
    }

    fn serving(dir: TempDir, config: ServerConfig, server: Server, token: String) -> Self {
        let url = format!("http://{}", server.addr());
        TestHost {
            dir,
            config,
            server: Some(server),
            token,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// Signs in to the console the way the sign-in form does; returns the
    /// session cookie (`junction_session=…`).
    pub async fn console_session(&self) -> String {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let form = http
            .get(format!("{}/login", self.url))
            .send()
            .await
            .expect("sign-in page");
        let login = set_cookie(&form, "junction_login");
        let csrf = login.trim_start_matches("junction_login=").to_owned();
        let signed_in = http
            .post(format!("{}/login", self.url))
            .header("cookie", &login)
            .form(&[
                ("token", self.token.as_str()),
                ("_csrf", &csrf),
                ("next", "/"),
            ])
            .send()
            .await
            .expect("sign in");
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        set_cookie(&signed_in, "junction_session")
    }

    /// The running server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server().addr()
    }

    /// Stops the server gracefully (the store is closed when this returns).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            tokio::time::timeout(std::time::Duration::from_secs(60), server.shutdown())
                .await
                .expect("the server shuts down within a minute")
                .expect("graceful shutdown");
        }
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Whether the Prometheus metric `name` (any labels) reads at least `value`.
    pub async fn metric_at_least(&self, name: &str, value: f64) -> bool {
        self.metrics()
            .await
            .lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .any(|v| v >= value)
    }

    /// Stops and starts the server on the same data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let server = Server::start(config).await.expect("server restarts");
        assert!(server.issued_token().is_none(), "the token is issued once");
        self.url = format!("http://{}", server.addr());
        self.server = Some(server);
    }

    /// A request with the admin token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
    }

    /// Sends a request.
    pub async fn send(&self, request: RequestBuilder) -> Answer {
        Answer::from(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    /// POSTs `body` and expects 201 Created.
    pub async fn create(&self, path: &str, body: &Value) -> Answer {
        let answer = self.post(path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{path}: {}",
            answer.text
        );
        answer
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Uploads a component with an optional manifest and grant list.
    pub async fn upload(
        &self,
        name: &str,
        component: Vec<u8>,
        manifest: Option<&Value>,
        grants: Option<&[&str]>,
    ) -> Answer {
        let mut form = reqwest::multipart::Form::new().part(
            "component",
            reqwest::multipart::Part::bytes(component).file_name("plugin.wasm"),
        );
        if let Some(manifest) = manifest {
            form = form.text("manifest", manifest.to_string());
        }
        if let Some(grants) = grants {
            form = form.text("grants", serde_json::to_string(grants).expect("json"));
        }
        self.send(
            self.request(Method::PUT, &format!("/v1/plugins/{name}"))
                .multipart(form),
        )
        .await
    }

    /// Invokes a plugin with an event.
    /// Polls the event until every delivery is final (succeeded, dead or
    /// cancelled), for at most a minute; the event as it is then.
    pub async fn settled(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let event = self.get(&format!("/v1/events/{id}")).await;
            assert_eq!(event.status, StatusCode::OK, "{}", event.text);
            let done = event.json["deliveries"]
                .as_array()
                .expect("deliveries")
                .iter()
                .all(|d| {
                    matches!(
                        d["state"].as_str(),
                        Some("succeeded" | "dead" | "cancelled")
                    )
                });
            if done {
                return event.json;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "event {id} did not settle: {}",
                event.text
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn invoke(&self, name: &str, kind: &str, payload: Value) -> Answer {
        self.post(
            &format!("/v1/plugins/{name}/invoke"),
            &serde_json::json!({"kind": kind, "payload": payload}),
        )
        .await
    }
}
