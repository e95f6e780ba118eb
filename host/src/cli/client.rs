//! The HTTP client the CLI's server commands share: finds the server from
//! `--url`/`--token`, `JUNCTION_URL`/`JUNCTION_TOKEN`, or the local data
//! directory's `admin-token` file, and turns API errors into messages.

use std::path::PathBuf;

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DEFAULT_DATA_DIR;
use junction_net::root_cause;
use junction_server::auth::token_path;

/// Where the server listens by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

/// How to reach the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's URL.
    #[arg(long, env = "JUNCTION_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// The admin token; by default read from the data directory's admin-token file.
    #[arg(long, env = "JUNCTION_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The data directory holding admin-token, when no token is given.
    #[arg(long, env = "JUNCTION_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The store, for commands that open it when no server holds it.
    #[arg(long, env = "JUNCTION_STORE", default_value = "redb:")]
    pub store: junction_store::StoreUrl,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no admin token: give --token or JUNCTION_TOKEN, or run where {0} exists (`junction serve` writes it on first start)"
    )]
    NoToken(String),
    #[error("`{0}` is not a server URL: {1}")]
    BadUrl(String, String),
    #[error("cannot reach the server at {url}: {message} (is `junction serve` running?)")]
    Unreachable { url: String, message: String },
    #[error("the server refused the admin token: {0}")]
    Unauthorized(String),
    #[error("{message} ({status} {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the server's answer could not be read: {0}")]
    BadResponse(String),
}

/// A client of one server.
pub struct Client {
    base: url::Url,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// Resolves the server and the token from `args`.
    pub fn new(args: &ServerArgs) -> Result<Self, ClientError> {
        let base = url::Url::parse(&args.url)
            .map_err(|e| ClientError::BadUrl(args.url.clone(), e.to_string()))?;
        let token = match &args.token {
            Some(token) => token.clone(),
            None => {
                let path = token_path(&args.data_dir);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_owned())
                    .map_err(|_| ClientError::NoToken(path.display().to_string()))?
            }
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ClientError::BadUrl(args.url.clone(), e.to_string()))?;
        Ok(Client { base, token, http })
    }

    /// A request to the path made of `segments` (each percent-encoded, so a
    /// name cannot change the route), with the admin token.
    pub fn request(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<RequestBuilder, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ClientError::BadUrl(self.base.to_string(), "it cannot be a base".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(self.http.request(method, url).bearer_auth(&self.token))
    }

    /// Sends `request` and decodes a JSON answer, or the API's error.
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send_raw(request).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    /// Sends `request`; a non-2xx answer becomes a [`ClientError`].
    pub async fn send_raw(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.to_string(),
            message: root_cause(&e),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let code = body["error"]["code"].as_str().unwrap_or("error").to_owned();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("the server gave no reason")
            .to_owned();
        if status == 401 {
            return Err(ClientError::Unauthorized(message));
        }
        Err(ClientError::Api {
            status,
            code,
            message,
        })
    }

    /// GET the path as JSON.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        self.send(self.request(Method::GET, segments)?).await
    }

    /// `method` `body` to the path, JSON both ways.
    pub async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.request(method, segments)?.json(body)).await
    }

    /// DELETE the path.
    pub async fn delete(&self, segments: &[&str]) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, segments)?)
            .await?;
        Ok(())
    }
}

/// An enum's name as the API spells it (`needs-reauth`, `memory-limit`).
pub fn kebab<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Prints `value` as pretty JSON.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: cannot print JSON: {err}"),
    }
}
