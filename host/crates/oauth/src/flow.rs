//! Connecting a connection: the authorization-code flow (authorize URL with
//! state and PKCE built by the `oauth2` crate; callback that takes the state
//! once, exchanges the code with the same redirect URI and verifier, captures
//! metadata, stores the tokens sealed and marks the connection connected) and
//! the client-credentials grant, which needs no browser.
//!
//! Token requests are sent by our own client rather than `oauth2`'s: the
//! crate's response types are strict about `token_type`, numeric
//! `expires_in` and JSON bodies, which real providers are not (see
//! [`super::token`]). The client follows no redirects and reads at most
//! 1 MiB of an answer.

use std::time::Duration;

use base64::Engine as _;
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::settings::{ClientAuth, Grant, OAuthSettings};
use super::token::{self, FailureClass, TokenError, TokenMapping, TokenResponse};
use junction_net::NetworkPolicy;
use junction_net::root_cause;
use junction_store::{
    AuthType, Connection, ConnectionKey, ConnectionStatus, Credentials, PendingAuthorization,
    PendingTarget, STATE_TTL_MS, Secret, Service, Store, StoreError, now_ms,
};

/// Largest token or metadata answer read.
const MAX_ANSWER: usize = 1024 * 1024;
/// How long a token endpoint may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);
/// The history reason of a refresh.
const TOKEN_REFRESHED: &str = "token refreshed";
/// Refresh attempts when the provider fails transiently.
const REFRESH_ATTEMPTS: u32 = 3;
/// The first retry's delay; each later one doubles, plus up to half in jitter.
const RETRY_BASE: Duration = Duration::from_millis(100);

/// The OAuth HTTP client could not be built (TLS roots, resolver).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OAuth HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("no connection {0}")]
    UnknownConnection(String),
    #[error("connection {link} belongs to service `{service}`, which does not exist")]
    MissingService { link: String, service: String },
    #[error(
        "connection {0} is not an oauth2 connection; its credentials are set when it is created"
    )]
    NotOAuth(String),
    #[error("the service has no usable OAuth settings: {0}")]
    Misconfigured(String),
    #[error(
        "this authorization link is not valid: it was already used, it expired (after 10 minutes), or it was never issued; start again from the connection"
    )]
    BadState,
    #[error("the provider did not grant access: {0}")]
    Denied(String),
    #[error("the token request failed: {0}")]
    Token(#[from] TokenError),
    #[error("the metadata call failed: {0}")]
    Metadata(String),
    #[error(
        "connection {0} has nothing to refresh: its provider issued no refresh token and no expiry, so its token stays valid until it is revoked"
    )]
    NothingToRefresh(String),
    #[error("the refresh another caller was waiting on failed: {0}")]
    SharedFailure(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `authorize` produced.
#[derive(Debug, Clone)]
pub enum Started {
    /// Send the browser here.
    Redirect {
        /// The provider's authorize URL with every parameter.
        url: String,
        /// When its state stops being accepted.
        expires_at_ms: u64,
    },
    /// Client credentials: connected without a browser.
    Connected,
}

/// Who started an authorization, which decides where the browser ends up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// The API: the callback shows a page of its own.
    Api,
    /// The web console: the browser goes back to the connection's page.
    Console,
    /// A connect link's hosted page (the link's id): the callback checks
    /// the browser holds the link.
    ConnectLink(String),
}

/// What a pending authorization's `state` is for, read without a write
/// (an unknown state must cost nothing).
pub async fn pending_target(store: &Store, state: &str) -> Option<PendingTarget> {
    store
        .pending_authorization_link(&state_key(state))
        .await
        .ok()
        .flatten()
}

/// Drops the pending authorization of `state` unfinished: its code is
/// never redeemed. Whether there was one.
pub async fn forget_state(store: &Store, state: &str) -> Result<bool, StoreError> {
    Ok(store
        .take_pending_authorization(&state_key(state))
        .await?
        .is_some())
}

/// How a provider's redirect back ended.
#[derive(Debug)]
pub struct Callback {
    /// The connection it was for, when the state was known.
    pub link: Option<ConnectionKey>,
    /// Whether the web console started the flow.
    pub from_console: bool,
    /// Connected, or why not.
    pub result: Result<(), FlowError>,
}

impl Callback {
    fn unknown(err: FlowError) -> Self {
        Callback {
            link: None,
            from_console: false,
            result: Err(err),
        }
    }
}

/// The OAuth side of the host: the HTTP client token endpoints are called with.
#[derive(Clone)]
pub struct OAuth {
    http: reqwest::Client,
    network: NetworkPolicy,
}

/// The state's key in the store: its sha256, so the state itself is never
/// stored and a lookup compares digests, not the secret.
fn state_key(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn random_state() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl OAuth {
    /// A client that follows no redirects (a token endpoint that redirects
    /// is refused, not followed to wherever it points).
    pub fn new(network: NetworkPolicy) -> Result<Self, ClientError> {
        Self::with_timeout(network, TOKEN_TIMEOUT)
    }

    /// The same with another limit on how long a provider may take.
    pub fn with_timeout(network: NetworkPolicy, timeout: Duration) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Proxy variables from the environment would send traffic around
            // the address guard (the proxy, not the guard, picks the address).
            .no_proxy()
            .dns_resolver(network.resolver())
            .timeout(timeout)
            .build()?;
        Ok(OAuth { http, network })
    }

    /// Starts connecting `link`: for the authorization-code grant, records a
    /// single-use state (with the PKCE verifier, and whether the web console
    /// asked, so the browser can go back there) and returns the provider's
    /// URL; for client credentials, fetches the token now.
    pub async fn authorize(
        &self,
        store: &Store,
        link: &ConnectionKey,
        redirect_uri: &str,
        requester: Requester,
    ) -> Result<Started, FlowError> {
        let (connection, service, settings) = load(store, link).await?;
        if settings.grant == Grant::ClientCredentials {
            let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
            let scopes = scopes_for(&connection, &settings);
            if !scopes.is_empty() {
                form.push(("scope".to_owned(), scopes.join(&settings.scope_separator)));
            }
            let tokens = self
                .token_request(store, &service, &settings, &settings.token_url, form)
                .await;
            return match tokens {
                Ok(tokens) => {
                    self.store_tokens(
                        store,
                        connection,
                        &settings,
                        tokens,
                        scopes,
                        "connected with client credentials",
                    )
                    .await?;
                    Ok(Started::Connected)
                }
                Err(err) => {
                    record_failure(store, link, &err.to_string()).await?;
                    Err(err)
                }
            };
        }

        let authorize_url = settings
            .authorize_url
            .clone()
            .ok_or_else(|| FlowError::Misconfigured("no authorize_url".into()))?;
        let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(authorize_url).map_err(|e| FlowError::Misconfigured(e.to_string()))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_owned())
                    .map_err(|e| FlowError::Misconfigured(format!("the redirect URI: {e}")))?,
            );
        let state = random_state();
        let scopes = scopes_for(&connection, &settings);
        let mut request = client.authorize_url(|| CsrfToken::new(state.clone()));
        // Scopes go in as one parameter: `oauth2` joins them with spaces,
        // and some providers want commas.
        if !scopes.is_empty() {
            request = request.add_extra_param("scope", scopes.join(&settings.scope_separator));
        }
        for (key, value) in &settings.authorize_params {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        let verifier = if settings.pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            Some(Secret::new(verifier.secret().clone()))
        } else {
            None
        };
        let (url, _) = request.url();
        let created_at_ms = now_ms();
        store
            .put_pending_authorization(
                &state_key(&state),
                &PendingAuthorization {
                    link_name: link.link.clone(),
                    end_user: link.end_user.clone(),
                    redirect_uri: redirect_uri.to_owned(),
                    verifier,
                    scopes,
                    created_at_ms,
                    from_console: requester == Requester::Console,
                    connect_link: match requester {
                        Requester::ConnectLink(id) => Some(id),
                        Requester::Api | Requester::Console => None,
                    },
                },
            )
            .await?;
        tracing::info!(link = %link, service = %service.name, "authorization started");
        Ok(Started::Redirect {
            url: url.to_string(),
            expires_at_ms: created_at_ms + STATE_TTL_MS,
        })
    }

    /// Handles the provider's redirect back: `code` and `state`, or `error`.
    /// Says which connection it was for (when the state was known), whether
    /// the console started it, and how it ended.
    pub async fn callback(
        &self,
        store: &Store,
        state: Option<&str>,
        code: Option<&str>,
        error: Option<(&str, Option<&str>)>,
    ) -> Callback {
        let taken = match state {
            Some(s) => Some(store.take_pending_authorization(&state_key(s)).await),
            None => None,
        };
        let pending = match taken {
            Some(Ok(Some(pending))) => pending,
            Some(Err(err)) => return Callback::unknown(err.into()),
            Some(Ok(None)) | None => return Callback::unknown(FlowError::BadState),
        };
        let link = ConnectionKey::new(pending.end_user.as_deref(), &pending.link_name);
        let from_console = pending.from_console;
        let result = if now_ms().saturating_sub(pending.created_at_ms) > STATE_TTL_MS {
            Err(FlowError::BadState)
        } else {
            self.finish(store, pending, code, error).await
        };
        Callback {
            link: Some(link),
            from_console,
            result,
        }
    }

    async fn finish(
        &self,
        store: &Store,
        pending: PendingAuthorization,
        code: Option<&str>,
        error: Option<(&str, Option<&str>)>,
    ) -> Result<(), FlowError> {
        let link = ConnectionKey::new(pending.end_user.as_deref(), &pending.link_name);
        if let Some((code, description)) = error {
            let reason = match description {
                Some(d) => format!("{code} ({d})"),
                None => code.to_owned(),
            };
            record_failure(store, &link, &format!("the provider said {reason}")).await?;
            return Err(FlowError::Denied(reason));
        }
        let code = code.ok_or_else(|| FlowError::Denied("the provider sent no code".into()))?;
        let (connection, service, settings) = load(store, &link).await?;
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), pending.redirect_uri.clone()),
        ];
        if let Some(verifier) = &pending.verifier {
            form.push(("code_verifier".to_owned(), verifier.expose().to_owned()));
        }
        let tokens = match self
            .token_request(store, &service, &settings, &settings.token_url, form)
            .await
        {
            Ok(tokens) => tokens,
            Err(err) => {
                record_failure(store, &link, &err.to_string()).await?;
                return Err(err);
            }
        };
        self.store_tokens(
            store,
            connection,
            &settings,
            tokens,
            pending.scopes,
            "authorised in the browser",
        )
        .await?;
        tracing::info!(link = %link, service = %service.name, "connection authorised");
        Ok(())
    }

    /// Redeems the connection's refresh token and stores what comes back: a
    /// new refresh token replaces the old one, a response without one keeps
    /// it. A refused grant marks the connection `needs-reauth`, a refused
    /// client marks it `error`; other failures only record the reason.
    pub(crate) async fn refresh(
        &self,
        store: &Store,
        link: &ConnectionKey,
    ) -> Result<Connection, FlowError> {
        let (connection, service, settings) = load(store, link).await?;
        let refresh_token = match &connection.credentials {
            Credentials::Oauth2 {
                refresh_token: Some(token),
                ..
            } => Some(token.expose().to_owned()),
            _ => None,
        };
        let form = match (settings.grant, refresh_token) {
            (_, Some(token)) => vec![
                ("grant_type".to_owned(), "refresh_token".to_owned()),
                ("refresh_token".to_owned(), token),
            ],
            // Client credentials have no refresh token: ask for a new token.
            (Grant::ClientCredentials, None) => {
                let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
                let scopes = scopes_for(&connection, &settings);
                if !scopes.is_empty() {
                    form.push(("scope".to_owned(), scopes.join(&settings.scope_separator)));
                }
                form
            }
            (Grant::AuthorizationCode, None) => {
                // MailChimp, GitHub: tokens that never expire and come without
                // a refresh token. Nothing is wrong with such a connection.
                let expired = match &connection.credentials {
                    Credentials::Oauth2 { expires_at_ms, .. } => {
                        expires_at_ms.is_some_and(|at| at <= now_ms())
                    }
                    _ => true,
                };
                if !expired {
                    return Err(FlowError::NothingToRefresh(link.to_string()));
                }
                let reason = "the token expired and the provider gave no refresh token; connect again (some providers need access_type=offline)";
                mark(store, link, Some(ConnectionStatus::NeedsReauth), reason).await?;
                return Err(FlowError::Denied(reason.into()));
            }
        };
        let requested = connection.scopes.clone();
        // Transient failures (5xx, 429, timeouts) are retried with backoff and
        // jitter; the stored token stays in use meanwhile.
        let mut attempt = 0;
        let outcome = loop {
            let result = self
                .token_request(
                    store,
                    &service,
                    &settings,
                    settings.refresh_endpoint(),
                    form.clone(),
                )
                .await;
            match result {
                Err(FlowError::Token(err))
                    if err.class == FailureClass::Transient && attempt + 1 < REFRESH_ATTEMPTS =>
                {
                    attempt += 1;
                    let base = RETRY_BASE.as_millis() as u64 * (1 << attempt);
                    let jitter = rand::random::<u64>() % (base / 2 + 1);
                    tracing::warn!(link = %link, attempt, error = %err, "refresh failed; retrying");
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(tokens) => {
                self.store_tokens(
                    store,
                    connection,
                    &settings,
                    tokens,
                    requested,
                    TOKEN_REFRESHED,
                )
                .await?;
                tracing::info!(link = %link, "token refreshed");
                store
                    .connection(link.end_user(), &link.link)
                    .await?
                    .ok_or_else(|| FlowError::UnknownConnection(link.to_string()))
            }
            Err(FlowError::Token(err)) => {
                if err.class == FailureClass::InvalidClient {
                    flag_service(store, &service.name, Some(&err.message)).await?;
                }
                let status = match err.class {
                    FailureClass::InvalidGrant => Some(ConnectionStatus::NeedsReauth),
                    FailureClass::InvalidClient => Some(ConnectionStatus::Error),
                    FailureClass::Transient | FailureClass::Rejected => None,
                };
                let reason = match err.class {
                    FailureClass::InvalidClient => format!(
                        "service `{}` was refused as a client ({}); fix its client id or secret",
                        service.name, err.message
                    ),
                    _ => format!("refreshing failed: {}", err.message),
                };
                mark(store, link, status, &reason).await?;
                Err(FlowError::Token(err))
            }
            Err(other) => {
                mark(store, link, None, &other.to_string()).await?;
                Err(other)
            }
        }
    }

    /// POSTs a token request with client authentication and the service's
    /// extra parameters, and parses the answer leniently.
    async fn token_request(
        &self,
        store: &Store,
        service: &Service,
        settings: &OAuthSettings,
        url: &str,
        mut form: Vec<(String, String)>,
    ) -> Result<TokenResponse, FlowError> {
        let secret = store.client_secret(&service.name).await?;
        if settings.needs_client_secret() && secret.is_none() {
            return Err(FlowError::Misconfigured(format!(
                "service `{}` needs a client secret and has none",
                service.name
            )));
        }
        for (key, value) in &settings.token_params {
            form.push((key.clone(), value.clone()));
        }
        self.check(url)?;
        let request = self.client_request(url, settings, secret.as_ref(), form);
        let response = request.send().await.map_err(|e| TokenError {
            class: FailureClass::Transient,
            code: None,
            message: if e.is_timeout() {
                "the token endpoint did not answer in time".to_owned()
            } else {
                format!("cannot reach the token endpoint: {}", root_cause(&e))
            },
        })?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(TokenError {
                class: FailureClass::Rejected,
                code: None,
                message: format!(
                    "the token endpoint redirected (HTTP {status}); redirects are not followed"
                ),
            }
            .into());
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(response).await?;
        let mapping = TokenMapping {
            access_token_path: settings.access_token_path.clone(),
            capture: settings.capture.clone(),
        };
        Ok(token::parse(
            status,
            content_type.as_deref(),
            &body,
            &mapping,
        )?)
    }

    /// Refuses URLs whose host is a forbidden IP literal (names are checked
    /// by the client's resolver after DNS).
    fn check(&self, url: &str) -> Result<(), TokenError> {
        let parsed = url::Url::parse(url).map_err(|e| TokenError {
            class: FailureClass::Rejected,
            code: None,
            message: format!("`{url}` is not a URL: {e}"),
        })?;
        junction_net::check_url(self.network, &parsed).map_err(|e| TokenError {
            class: FailureClass::Rejected,
            code: None,
            message: e.to_string(),
        })
    }

    /// RFC 8414 discovery: reads the issuer's metadata and fills in the
    /// endpoints `settings` leaves out. The metadata's `issuer` must be the
    /// one asked for, exactly.
    pub async fn discover(&self, settings: &mut OAuthSettings) -> Result<(), FlowError> {
        let Some(issuer) = settings.issuer.clone() else {
            return Ok(());
        };
        let parsed = url::Url::parse(&issuer)
            .map_err(|e| FlowError::Misconfigured(format!("oauth.issuer `{issuer}`: {e}")))?;
        // The well-known segment goes between the host and the issuer's path.
        let path = parsed.path().trim_end_matches('/');
        let mut metadata_url = parsed.clone();
        metadata_url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        self.check(metadata_url.as_str())?;
        let response = self
            .http
            .get(metadata_url.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FlowError::Metadata(format!("discovery: {}", root_cause(&e))))?;
        if !response.status().is_success() {
            return Err(FlowError::Metadata(format!(
                "discovery at {metadata_url}: HTTP {}",
                response.status().as_u16()
            )));
        }
        let body = read_capped(response).await?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|e| FlowError::Metadata(format!("discovery: not JSON: {e}")))?;
        let found = document["issuer"].as_str().unwrap_or("");
        if found != issuer {
            return Err(FlowError::Misconfigured(format!(
                "the metadata at {metadata_url} names issuer `{found}`, not `{issuer}`"
            )));
        }
        let field = |name: &str| document[name].as_str().map(str::to_owned);
        if settings.authorize_url.is_none() {
            settings.authorize_url = field("authorization_endpoint");
        }
        if settings.token_url.is_empty() {
            settings.token_url = field("token_endpoint").unwrap_or_default();
        }
        if settings.revoke_url.is_none() {
            settings.revoke_url = field("revocation_endpoint");
        }
        Ok(())
    }

    /// A form POST to `url` with the client authenticated as the service says.
    fn client_request(
        &self,
        url: &str,
        settings: &OAuthSettings,
        secret: Option<&Secret>,
        mut form: Vec<(String, String)>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json");
        match settings.client_auth {
            ClientAuth::Basic => {
                request =
                    request.basic_auth(&settings.client_id, secret.map(|s| s.expose().to_owned()));
            }
            ClientAuth::Body => {
                form.push(("client_id".to_owned(), settings.client_id.clone()));
                if let Some(secret) = secret {
                    form.push(("client_secret".to_owned(), secret.expose().to_owned()));
                }
            }
        }
        request.form(&form)
    }

    /// Revokes the connection's tokens at the provider (RFC 7009, when the
    /// service has a revocation endpoint), then forgets them: the connection
    /// is left disconnected, and authorising again reconnects it.
    pub async fn revoke(&self, store: &Store, link: &ConnectionKey) -> Result<(), FlowError> {
        let (mut connection, service, settings) = load(store, link).await?;
        let mut problems = Vec::new();
        if let (
            Some(url),
            Credentials::Oauth2 {
                access_token,
                refresh_token,
                ..
            },
        ) = (&settings.revoke_url, &connection.credentials)
        {
            self.check(url)?;
            let secret = store.client_secret(&service.name).await?;
            // The refresh token first: revoking it ends the whole grant.
            let tokens = refresh_token
                .iter()
                .map(|t| (t, "refresh_token"))
                .chain(std::iter::once((access_token, "access_token")));
            for (token, hint) in tokens {
                let form = vec![
                    ("token".to_owned(), token.expose().to_owned()),
                    ("token_type_hint".to_owned(), hint.to_owned()),
                ];
                let answer = self
                    .client_request(url, &settings, secret.as_ref(), form)
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        problems.push(format!("{hint}: HTTP {}", response.status().as_u16()))
                    }
                    Err(err) => problems.push(format!("{hint}: {}", root_cause(&err))),
                }
            }
        }
        connection.credentials = Credentials::None;
        connection.record(ConnectionStatus::Disconnected, "revoked by the admin");
        connection.last_error = (!problems.is_empty()).then(|| {
            format!(
                "the provider did not confirm the revocation ({}); the tokens were deleted here",
                problems.join(", ")
            )
        });
        connection.updated_at_ms = now_ms();
        store.update_connection(&connection).await?;
        tracing::info!(link = %link, "connection revoked");
        Ok(())
    }

    /// Stores new tokens (and captured metadata) and marks the connection connected.
    async fn store_tokens(
        &self,
        store: &Store,
        mut connection: Connection,
        settings: &OAuthSettings,
        tokens: TokenResponse,
        requested_scopes: Vec<String>,
        reason: &str,
    ) -> Result<(), FlowError> {
        let mut metadata = connection.metadata.clone();
        metadata.extend(tokens.metadata.clone());
        // The metadata call describes the account; a refresh does not change it.
        let connecting = reason != TOKEN_REFRESHED;
        if let Some(url) = settings.metadata_url.as_ref().filter(|_| connecting) {
            metadata.extend(
                self.fetch_metadata(url, settings, &tokens.access_token)
                    .await?,
            );
        }
        let now = now_ms();
        let refresh_token = tokens.refresh_token.or(match &connection.credentials {
            Credentials::Oauth2 { refresh_token, .. } => refresh_token.clone(),
            _ => None,
        });
        connection.credentials = Credentials::Oauth2 {
            access_token: tokens.access_token,
            refresh_token,
            token_type: tokens.token_type,
            expires_at_ms: tokens
                .expires_in
                .map(|s| now.saturating_add(s.saturating_mul(1000))),
        };
        connection.scopes = tokens.scopes.unwrap_or(requested_scopes);
        connection.metadata = metadata;
        if let Some(service) = store.service(&connection.service).await?
            && service.problem.is_some()
        {
            flag_service(store, &service.name, None).await?;
        }
        connection.record(ConnectionStatus::Connected, reason);
        connection.last_error = None;
        connection.last_refresh_ms = Some(now);
        store.update_connection(&connection).await?;
        Ok(())
    }

    /// Calls the service's metadata URL with the new token and keeps the
    /// fields it names (MailChimp: `dc`, `api_endpoint`).
    async fn fetch_metadata(
        &self,
        url: &str,
        settings: &OAuthSettings,
        token: &Secret,
    ) -> Result<Vec<(String, String)>, FlowError> {
        self.check(url)
            .map_err(|e| FlowError::Metadata(e.to_string()))?;
        let template = settings
            .metadata_auth
            .as_deref()
            .unwrap_or("Bearer {token}");
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::AUTHORIZATION,
                template.replace("{token}", token.expose()),
            )
            .send()
            .await
            .map_err(|e| FlowError::Metadata(root_cause(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FlowError::Metadata(format!("HTTP {}", status.as_u16())));
        }
        let body = read_capped(response).await?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|e| FlowError::Metadata(format!("not JSON: {e}")))?;
        Ok(settings
            .metadata_capture
            .iter()
            .filter_map(|field| {
                let value = document.get(field)?;
                let text = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string());
                Some((field.clone(), text))
            })
            .collect())
    }
}

/// The connection, its service and the service's OAuth settings.
async fn load(
    store: &Store,
    link: &ConnectionKey,
) -> Result<(Connection, Service, OAuthSettings), FlowError> {
    let connection = store
        .connection(link.end_user(), &link.link)
        .await?
        .ok_or_else(|| FlowError::UnknownConnection(link.to_string()))?;
    let service =
        store
            .service(&connection.service)
            .await?
            .ok_or_else(|| FlowError::MissingService {
                link: link.to_string(),
                service: connection.service.clone(),
            })?;
    if service.auth_type != AuthType::Oauth2 {
        return Err(FlowError::NotOAuth(link.to_string()));
    }
    let settings = service.oauth.clone().ok_or_else(|| {
        FlowError::Misconfigured(format!("service `{}` has no oauth settings", service.name))
    })?;
    Ok((connection, service, settings))
}

/// The connection's own scopes, else the service's defaults.
fn scopes_for(connection: &Connection, settings: &OAuthSettings) -> Vec<String> {
    if connection.scopes.is_empty() {
        settings.scopes.clone()
    } else {
        connection.scopes.clone()
    }
}

/// Keeps the reason on the connection; its tokens and status stay as they were.
pub(crate) async fn record_failure(
    store: &Store,
    link: &ConnectionKey,
    reason: &str,
) -> Result<(), StoreError> {
    mark(store, link, None, reason).await
}

/// Marks the service as misconfigured (once: a repeated flag changes
/// nothing), or clears the mark.
async fn flag_service(store: &Store, name: &str, problem: Option<&str>) -> Result<(), StoreError> {
    if let Some(mut service) = store.service(name).await? {
        let problem = problem.map(|p| format!("the provider refused the client: {p}"));
        if service.problem == problem {
            return Ok(());
        }
        if problem.is_some() {
            tracing::error!(
                service = name,
                "the provider refused the service's client id or secret"
            );
        }
        service.problem = problem;
        store.update_service(&service, None).await?;
    }
    Ok(())
}

/// Records a failure (and a new status, when it changes) on the connection.
async fn mark(
    store: &Store,
    link: &ConnectionKey,
    status: Option<ConnectionStatus>,
    reason: &str,
) -> Result<(), StoreError> {
    if let Some(mut connection) = store.connection(link.end_user(), &link.link).await? {
        let next = status.unwrap_or(connection.status);
        connection.record(next, reason);
        connection.last_error = Some(reason.to_owned());
        store.update_connection(&connection).await?;
    }
    tracing::warn!(link = %link, reason, ?status, "connection failure");
    Ok(())
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, TokenError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(TokenError {
                        class: FailureClass::Transient,
                        code: None,
                        message: format!("the answer is larger than {MAX_ANSWER} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(TokenError {
                    class: FailureClass::Transient,
                    code: None,
                    message: format!("the answer broke off: {}", root_cause(&e)),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(created_at_ms: u64) -> PendingAuthorization {
        PendingAuthorization {
            link_name: "crm".into(),
            end_user: None,
            redirect_uri: "http://127.0.0.1/oauth/callback".into(),
            verifier: Some(Secret::new("verifier".into())),
            scopes: vec![],
            created_at_ms,
            from_console: false,
            connect_link: None,
        }
    }

    #[tokio::test]
    async fn a_token_endpoint_that_hangs_is_a_transient_failure_and_tokens_stay() {
        use junction_store::{AuthType, Placement, Service};
        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = std::thread::spawn(move || {
            let mut open = Vec::new();
            for stream in listener.incoming().take(8) {
                open.push(stream);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let settings: OAuthSettings = serde_json::from_value(serde_json::json!({
            "client_id": "c", "grant": "client-credentials", "client_auth": "basic",
            "token_url": format!("http://{addr}/token"),
        }))
        .unwrap();
        store
            .create_service(
                &Service {
                    name: "slow".into(),
                    auth_type: AuthType::Oauth2,
                    base_url: None,
                    allowed_hosts: vec![],
                    placement: Placement::bearer(),
                    oauth: Some(settings),
                    has_client_secret: false,
                    problem: None,
                    created_at_ms: now_ms(),
                },
                Some(&Secret::new("s".into())),
            )
            .await
            .unwrap();
        let token = Credentials::Oauth2 {
            access_token: Secret::new("still-valid".into()),
            refresh_token: Some(Secret::new("r".into())),
            token_type: None,
            expires_at_ms: Some(now_ms() + 3_600_000),
        };
        store
            .create_connection(&Connection {
                link_name: "slow".into(),
                end_user: None,
                service: "slow".into(),
                status: ConnectionStatus::Connected,
                scopes: vec![],
                metadata: Default::default(),
                credentials: token.clone(),
                last_error: None,
                created_at_ms: now_ms(),
                updated_at_ms: now_ms(),
                last_refresh_ms: None,
                history: vec![],
            })
            .await
            .unwrap();
        let open = NetworkPolicy {
            allow_private: true,
        };
        let oauth = OAuth::with_timeout(open, Duration::from_millis(200)).unwrap();
        let err = oauth
            .refresh(&store, &ConnectionKey::org("slow"))
            .await
            .unwrap_err();
        match err {
            FlowError::Token(token_err) => {
                assert_eq!(token_err.class, FailureClass::Transient);
                assert!(
                    token_err.message.contains("in time"),
                    "{}",
                    token_err.message
                );
            }
            other => panic!("{other:?}"),
        }
        let after = store.connection(None, "slow").await.unwrap().unwrap();
        assert_eq!(after.credentials, token, "the previous tokens are kept");
        assert_eq!(after.status, ConnectionStatus::Connected);
        assert!(after.last_error.unwrap().contains("in time"));
    }

    #[tokio::test]
    async fn states_expire_and_work_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let oauth = OAuth::new(NetworkPolicy::default()).unwrap();

        let old = now_ms() - STATE_TTL_MS - 1000;
        store
            .put_pending_authorization(&state_key("old-state"), &pending(old))
            .await
            .unwrap();
        let expired = oauth
            .callback(&store, Some("old-state"), Some("code"), None)
            .await
            .result;
        assert!(matches!(expired, Err(FlowError::BadState)), "{expired:?}");

        store
            .put_pending_authorization(&state_key("fresh-state"), &pending(now_ms()))
            .await
            .unwrap();
        // The connection does not exist, so the exchange fails after the
        // state was taken; a second use of the state is refused outright.
        let first = oauth
            .callback(&store, Some("fresh-state"), Some("code"), None)
            .await
            .result;
        assert!(
            matches!(first, Err(FlowError::UnknownConnection(_))),
            "{first:?}"
        );
        let second = oauth
            .callback(&store, Some("fresh-state"), Some("code"), None)
            .await
            .result;
        assert!(matches!(second, Err(FlowError::BadState)), "{second:?}");
        assert_eq!(store.pending_authorization_count().await.unwrap(), 0);
        let wrong = oauth
            .callback(&store, Some("never-issued"), Some("c"), None)
            .await
            .result;
        assert!(matches!(wrong, Err(FlowError::BadState)));
    }
}
