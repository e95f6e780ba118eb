//! The `http` interface: `invoke-url`, outbound HTTP done by the host with one
//! shared `reqwest::Client`. With a connection named, the host resolves a
//! relative URL against the connection's base URL and attaches its
//! credentials — only to the hosts the service allows, never when the guest
//! set its own `Authorization`, `Proxy-Authorization` or `Cookie`. Without a
//! connection, only the plugin's `allowed-hosts` can be reached. Redirects are
//! followed by hand so each hop is checked again. Guest arguments are bounded
//! ([`MAX_URL`], [`MAX_HEADER_BYTES`], [`MAX_REQUEST_BODY`]) before the host
//! keeps them. A response reaches the guest without `set-cookie` and with
//! every form of the credential the host attached replaced by
//! [`REDACTED`]. Calls past the budget fail fast, and past a small grace end
//! the execution. Every call is recorded, secrets redacted, texts cut.

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method as ReqMethod, StatusCode};
use url::Url;

use super::HostState;
use super::bindings::junction::plugin::http::{Error, Host, Method, Request, Response};
use super::connections::{LookupError, expand_base_url};
use junction_core::HostPattern;
use junction_core::model::Freshness;
use junction_core::record::{CallRecord, MAX_CALL_RECORDS, MAX_CALL_TEXT, plain_text};
use junction_core::text::truncate_with_marker;
use junction_core::{ConnectionStatus, Credentials, Placement, Secret};
use junction_net::NetworkPolicy;

/// The longest one call may take when the plugin does not say (Zoho's `invokeurl`).
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(40);
/// Redirects followed per call.
const MAX_REDIRECTS: usize = 5;
/// Headers the host sets itself.
const HOST_SET_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];
/// Headers a guest may not set on a request that carries a connection.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
/// Longest request URL, query parameters included.
pub const MAX_URL: usize = 8 * 1024;
/// Most bytes of request header names and values together.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest request body.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;
/// Calls refused for the spent budget before the execution is ended: a
/// plugin that does not look at its errors must not spin on them.
pub const CALLS_PAST_BUDGET: u32 = 10;
/// Response headers a plugin never sees: they carry the session the host holds.
const HIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "set-cookie2"];
/// What replaces the attached credential wherever a response repeats it.
pub const REDACTED: &str = "[REDACTED]";
/// Credentials shorter than this are not searched for in responses: every
/// short string occurs in some body, and no real credential is this short.
const MIN_SCRUBBED: usize = 6;

/// The one HTTP client: connection pooling, no automatic redirects (they are
/// followed and checked in [`HostState::invoke_url`]).
pub(crate) fn build_client(network: NetworkPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Proxy variables from the environment would send traffic around
        // the address guard (the proxy, not the guard, picks the address).
        .no_proxy()
        .dns_resolver(network.resolver())
        .user_agent(concat!("junction/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
}

/// How the connection's credential goes on each request.
enum Attach {
    Header(HeaderName, HeaderValue),
    Query(String, Secret),
    Basic(String, Secret),
}

/// A request checked and ready to send.
struct Prepared {
    method: ReqMethod,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    attach: Option<Attach>,
    connection: Option<String>,
    allowed: Vec<HostPattern>,
    timeout: Duration,
    /// The OAuth access token attached, to tell after a 401 whether it was
    /// replaced meanwhile.
    oauth_token: Option<Secret>,
    /// Which addresses may be reached.
    network: NetworkPolicy,
    /// Every form of the attached credential as it may come back.
    scrub: Vec<Vec<u8>>,
    /// API statuses after which an OAuth token is refreshed and the call retried.
    refresh_on_status: Vec<u16>,
}

impl HostState {
    async fn prepare(&mut self, request: Request) -> Result<Prepared, Error> {
        check_request_size(&request)?;
        let method = match request.method {
            Method::Get => ReqMethod::GET,
            Method::Head => ReqMethod::HEAD,
            Method::Post => ReqMethod::POST,
            Method::Put => ReqMethod::PUT,
            Method::Patch => ReqMethod::PATCH,
            Method::Delete => ReqMethod::DELETE,
        };
        // Any `scheme://` is absolute; parse_url then refuses schemes other than http(s).
        let absolute = request.url.contains("://");
        let mut oauth_token = None;
        let mut refresh_on_status = Vec::new();
        let (mut url, attach, allowed) = match &request.connection {
            Some(link) => {
                let (connection, service) =
                    self.granted_connection(link)
                        .await
                        .map_err(|err| match err {
                            LookupError::NotGranted { .. } | LookupError::Unknown(_) => {
                                Error::UnknownConnection(err.to_string())
                            }
                            LookupError::MissingService { .. } | LookupError::Store(_) => {
                                Error::ConnectionUnavailable(err.to_string())
                            }
                        })?;
                if connection.status != ConnectionStatus::Connected {
                    let status = serde_json::to_value(connection.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    return Err(Error::ConnectionUnavailable(format!(
                        "connection `{link}` is {status}{}; connect it again",
                        connection
                            .last_error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    )));
                }
                let base =
                    expand_base_url(&service, &connection).map_err(Error::ConnectionUnavailable)?;
                let url = if absolute {
                    parse_url(&request.url)?
                } else {
                    let base = base.as_deref().ok_or_else(|| {
                        Error::InvalidRequest(format!(
                            "`{}` is relative, but service `{}` has no base URL; use an absolute URL",
                            request.url, service.name
                        ))
                    })?;
                    parse_url(&format!(
                        "{}/{}",
                        base.trim_end_matches('/'),
                        request.url.trim_start_matches('/')
                    ))?
                };
                let mut allowed: Vec<HostPattern> = base
                    .as_deref()
                    .and_then(|b| Url::parse(b).ok())
                    .and_then(|b| HostPattern::from_url(&b))
                    .into_iter()
                    .collect();
                for host in &service.allowed_hosts {
                    match HostPattern::parse(host) {
                        Ok(pattern) => allowed.push(pattern),
                        Err(err) => {
                            tracing::warn!(service = %service.name, error = %err, "ignoring a bad allowed host")
                        }
                    }
                }
                let attach = attachment(link, &connection.credentials, &service.placement)?;
                oauth_token = match &connection.credentials {
                    Credentials::Oauth2 { access_token, .. } => Some(access_token.clone()),
                    _ => None,
                };
                refresh_on_status = service
                    .oauth
                    .as_ref()
                    .map(|o| o.refresh_on_status.clone())
                    .unwrap_or_default();
                (url, Some(attach), allowed)
            }
            None => {
                if !absolute {
                    return Err(Error::InvalidRequest(format!(
                        "`{}` is relative; name a connection to resolve it against, or give an absolute http(s) URL",
                        request.url
                    )));
                }
                (
                    parse_url(&request.url)?,
                    None,
                    self.grants.allowed_hosts.clone(),
                )
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidRequest(
                "user names and passwords in the URL are not allowed; use a connection".into(),
            ));
        }
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &request.query {
                pairs.append_pair(key, value);
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::InvalidRequest(format!("`{name}` is not a valid header name"))
            })?;
            if HOST_SET_HEADERS.contains(&header.as_str()) {
                return Err(Error::InvalidRequest(format!(
                    "the host sets `{header}` itself; remove it from the request"
                )));
            }
            if let Some(link) = &request.connection
                && CREDENTIAL_HEADERS.contains(&header.as_str())
            {
                return Err(Error::Forbidden(format!(
                    "`{header}` may not be set on a request that uses connection `{link}`; the host attaches the connection's credentials"
                )));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                Error::InvalidRequest(format!("the value of header `{name}` is not valid"))
            })?;
            headers.append(header, value);
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout);
        }
        let requested = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(DEFAULT_CALL_TIMEOUT);
        let scrub = attach.as_ref().map(credential_forms).unwrap_or_default();
        let prepared = Prepared {
            method,
            url,
            headers,
            body: request.body,
            scrub,
            attach,
            connection: request.connection,
            allowed,
            timeout: requested.min(remaining),
            oauth_token,
            network: self.shared.network,
            refresh_on_status,
        };
        check_destination(&self.plugin, &prepared, &prepared.url)?;
        Ok(prepared)
    }
}

/// The method as it goes on the wire.
fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

/// Refuses a request whose URL, headers or body are past the host's bounds.
fn check_request_size(request: &Request) -> Result<(), Error> {
    let url_len = request.url.len()
        + request
            .query
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    if url_len > MAX_URL {
        return Err(Error::InvalidRequest(format!(
            "the URL with its query is {url_len} bytes, above the limit of {MAX_URL} bytes"
        )));
    }
    let header_len: usize = request.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if header_len > MAX_HEADER_BYTES {
        return Err(Error::InvalidRequest(format!(
            "the request headers are {header_len} bytes, above the limit of {MAX_HEADER_BYTES} bytes"
        )));
    }
    if let Some(body) = &request.body
        && body.len() > MAX_REQUEST_BODY
    {
        return Err(Error::InvalidRequest(format!(
            "the request body is {} bytes, above the limit of {MAX_REQUEST_BODY} bytes",
            body.len()
        )));
    }
    Ok(())
}

/// The forms in which the credential `attach` puts on the wire can come
/// back in a response: the secret itself, the whole header value, the Basic
/// base64 form, and their URL- and JSON-escaped spellings.
fn credential_forms(attach: &Attach) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut forms: Vec<String> = Vec::new();
    match attach {
        Attach::Header(_, value) => {
            let whole = String::from_utf8_lossy(value.as_bytes()).into_owned();
            // `Bearer {token}`, `Zoho-oauthtoken {token}`: the token is the last word.
            if let Some(token) = whole.rsplit(' ').next() {
                forms.push(token.to_owned());
            }
            forms.push(whole);
        }
        Attach::Query(_, secret) => forms.push(secret.expose().to_owned()),
        Attach::Basic(user, password) => {
            forms.push(password.expose().to_owned());
            forms.push(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose())),
            );
        }
    }
    let mut all: Vec<Vec<u8>> = Vec::new();
    for form in forms {
        let encoded: String = url::form_urlencoded::byte_serialize(form.as_bytes()).collect();
        let json = serde_json::to_string(&form).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        for variant in [form, encoded, json] {
            if variant.len() >= MIN_SCRUBBED && !all.iter().any(|f| f == variant.as_bytes()) {
                all.push(variant.into_bytes());
            }
        }
    }
    all
}

/// Replaces every form of the credential in `response` with [`REDACTED`]
/// and removes the headers a plugin never sees; returns how many
/// replacements were made.
fn scrub_response(response: &mut Response, forms: &[Vec<u8>]) -> u32 {
    response
        .headers
        .retain(|(name, _)| !HIDDEN_RESPONSE_HEADERS.contains(&name.as_str()));
    if forms.is_empty() {
        return 0;
    }
    let Ok(matcher) = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(forms)
    else {
        // The forms are a handful of short strings; building cannot fail
        // in practice, and if it did the plugin must not get the body.
        response.body.clear();
        response.headers.clear();
        return 1;
    };
    let mut count = 0u32;
    let mut replace = |bytes: &[u8]| -> Option<Vec<u8>> {
        let found = matcher.find_iter(bytes).count();
        if found == 0 {
            return None;
        }
        count = count.saturating_add(found as u32);
        let replacements = vec![REDACTED.as_bytes(); forms.len()];
        Some(matcher.replace_all_bytes(bytes, &replacements))
    };
    for (_, value) in response.headers.iter_mut() {
        if let Some(clean) = replace(value.as_bytes()) {
            *value = String::from_utf8_lossy(&clean).into_owned();
        }
    }
    if let Some(clean) = replace(&response.body) {
        response.body = clean;
    }
    count
}

fn check_destination(plugin: &str, prepared: &Prepared, url: &Url) -> Result<(), Error> {
    // IP literals never reach the resolver, which guards names.
    junction_net::check_url(prepared.network, url).map_err(|e| Error::Forbidden(e.to_string()))?;
    if prepared.allowed.iter().any(|pattern| pattern.matches(url)) {
        return Ok(());
    }
    let origin = HostPattern::from_url(url)
        .map(|p| p.to_string())
        .unwrap_or_else(|| url.scheme().to_owned());
    let list = if prepared.allowed.is_empty() {
        "none".to_owned()
    } else {
        prepared
            .allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::Forbidden(match &prepared.connection {
        Some(link) => format!(
            "the credentials of connection `{link}` are only sent to {list}; `{origin}` is not among them (add it to the service's allowed hosts)"
        ),
        None => format!(
            "plugin `{plugin}` may not call `{origin}` (allowed: {list}); add it to allowed-hosts in [package.metadata.junction]"
        ),
    }))
}

/// Sends a prepared request, following and re-checking redirects, and reads
/// the body up to `max_body` bytes.
async fn send(
    client: &reqwest::Client,
    plugin: &str,
    max_body: usize,
    prepared: &mut Prepared,
) -> Result<Response, Error> {
    let call_deadline = tokio::time::Instant::now() + prepared.timeout;
    for _ in 0..=MAX_REDIRECTS {
        let mut url = prepared.url.clone();
        let mut builder_headers = prepared.headers.clone();
        let mut basic = None;
        match &prepared.attach {
            Some(Attach::Header(name, value)) => {
                builder_headers.insert(name.clone(), value.clone());
            }
            Some(Attach::Query(name, secret)) => {
                url.query_pairs_mut().append_pair(name, secret.expose());
            }
            Some(Attach::Basic(user, password)) => basic = Some((user, password)),
            None => {}
        }
        let mut builder = client
            .request(prepared.method.clone(), url)
            .headers(builder_headers);
        if let Some((user, password)) = basic {
            builder = builder.basic_auth(user, Some(password.expose()));
        }
        if let Some(body) = &prepared.body {
            builder = builder.body(body.clone());
        }
        let response = tokio::time::timeout_at(call_deadline, builder.send())
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|err| transport_error(&err))?;

        if response.status().is_redirection()
            && let Some(location) = response.headers().get(reqwest::header::LOCATION)
        {
            let location = location.to_str().map_err(|_| {
                Error::Transport("the server redirected to a location that is not text".into())
            })?;
            let next = prepared.url.join(location).map_err(|_| {
                Error::Transport(format!(
                    "the server redirected to an invalid location `{location}`"
                ))
            })?;
            if next.scheme() != "http" && next.scheme() != "https" {
                return Err(Error::Forbidden(format!(
                    "redirect to a `{}` URL",
                    next.scheme()
                )));
            }
            check_destination(plugin, prepared, &next).map_err(|err| match err {
                Error::Forbidden(msg) => Error::Forbidden(format!("redirect refused: {msg}")),
                other => other,
            })?;
            let status = response.status();
            if status == StatusCode::SEE_OTHER
                || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                    && prepared.method == ReqMethod::POST)
            {
                prepared.method = ReqMethod::GET;
                prepared.body = None;
                prepared.headers.remove(reqwest::header::CONTENT_TYPE);
            }
            prepared.url = next;
            continue;
        }

        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > max_body as u64)
        {
            return Err(Error::TooLarge);
        }
        let mut body = Vec::new();
        let mut response = response;
        loop {
            let chunk = tokio::time::timeout_at(call_deadline, response.chunk())
                .await
                .map_err(|_| Error::Timeout)?
                .map_err(|err| transport_error(&err))?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > max_body {
                return Err(Error::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
    Err(Error::Transport(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

impl Host for HostState {
    async fn invoke_url(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let started = Instant::now();
        let method = method_name(request.method).to_owned();
        let connection = request.connection.clone();

        let _permit = match self.admit() {
            Ok(permit) => permit,
            Err(error) => {
                let url = redact(&request.url, None);
                self.record_call(method, url, None, started, connection, Some(&error), 0);
                if self.calls_over_budget > CALLS_PAST_BUDGET {
                    let message = format!(
                        "the plugin went on calling invoke-url after its limit of {} calls ({} calls refused); raise limits.http-calls in the manifest or stop on the error",
                        self.limits.http_calls, self.calls_over_budget
                    );
                    self.limit_exceeded = Some(message.clone());
                    return Err(wasmtime::Error::msg(message));
                }
                return Ok(Err(error));
            }
        };

        // Only an admitted call may refresh: an OAuth token about to expire
        // is refreshed before it is used; a failure is recorded on the
        // connection, which `prepare` then reports.
        let granted = connection
            .as_ref()
            .filter(|link| self.grants.connections.contains(link))
            .cloned();
        if let Some(link) = &granted
            && let Err(err) = self.shared.ports.connections.ensure_fresh(link).await
        {
            tracing::warn!(plugin = %self.plugin, link = %link, error = %err, "refresh before the call failed");
        }
        let retry = granted.as_ref().map(|_| request.clone());
        let given_url = request.url.clone();
        let mut prepared = match self.prepare(request).await {
            Ok(prepared) => prepared,
            Err(error) => {
                let url = redact(&given_url, None);
                self.record_call(method, url, None, started, connection, Some(&error), 0);
                return Ok(Err(error));
            }
        };
        let client = self.shared.http.clone();
        let plugin = self.plugin.clone();
        let mut result = send(&client, &plugin, self.limits.response_bytes, &mut prepared).await;
        // A 401 with an OAuth token: refresh once (unless it was already
        // replaced) and retry once with the new token.
        if let (Ok(response), Some(link), Some(used), Some(again)) =
            (&result, &granted, prepared.oauth_token.clone(), retry)
            && prepared.refresh_on_status.contains(&response.status)
            && matches!(
                self.shared
                    .ports
                    .connections
                    .after_unauthorized(link, used.expose())
                    .await,
                Ok(Freshness::Refreshed)
            )
        {
            match self.prepare(again).await {
                Ok(mut retried) => {
                    result = send(&client, &plugin, self.limits.response_bytes, &mut retried).await;
                    // The first token may be echoed too; scrub both.
                    retried.scrub.append(&mut prepared.scrub);
                    prepared = retried;
                }
                Err(error) => result = Err(error),
            }
        }
        let redactions = match &mut result {
            Ok(response) => scrub_response(response, &prepared.scrub),
            Err(_) => 0,
        };
        let url = match &prepared.attach {
            Some(Attach::Query(name, _)) => {
                // Show that the credential parameter went along, not its value.
                let mut shown = prepared.url.clone();
                shown.query_pairs_mut().append_pair(name, "REDACTED");
                redact(shown.as_str(), Some(name))
            }
            _ => redact(prepared.url.as_str(), None),
        };
        let status = result.as_ref().ok().map(|r| r.status);
        self.record_call(
            prepared.method.to_string(),
            url,
            status,
            started,
            connection,
            result.as_ref().err(),
            redactions,
        );
        Ok(result)
    }
}

impl HostState {
    /// Counts the call against the execution's budgets.
    fn admit(&mut self) -> Result<OwnedSemaphorePermit, Error> {
        if self.calls_started >= self.limits.http_calls {
            self.calls_over_budget += 1;
            return Err(Error::LimitExceeded(format!(
                "this execution already made {} invoke-url calls, its limit; raise limits.http-calls in the manifest",
                self.limits.http_calls
            )));
        }
        self.calls_started += 1;
        self.http_in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                Error::LimitExceeded(format!(
                    "more than {} invoke-url calls in flight at once",
                    self.limits.http_concurrency
                ))
            })
    }

    #[allow(clippy::too_many_arguments)]
    fn record_call(
        &mut self,
        method: String,
        url: String,
        status: Option<u16>,
        started: Instant,
        connection: Option<String>,
        error: Option<&Error>,
        redactions: u32,
    ) {
        let record = CallRecord {
            method,
            url: truncate_with_marker(plain_text(url), MAX_CALL_TEXT),
            status,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            connection,
            error: error.map(|e| truncate_with_marker(plain_text(describe(e)), MAX_CALL_TEXT)),
            redactions,
        };
        // The URL is the redacted one; credentials never reach this line.
        tracing::debug!(
            plugin = %self.plugin,
            method = %record.method,
            url = %record.url,
            status = ?record.status,
            duration_ms = record.duration_ms,
            connection = ?record.connection,
            error = ?record.error,
            redactions,
            "invoke-url"
        );
        if self.calls.len() < MAX_CALL_RECORDS {
            self.calls.push(record);
        } else {
            self.calls_dropped += 1;
        }
    }
}

/// The credential of `link` as it goes on the wire.
fn attachment(
    link: &str,
    credentials: &Credentials<Secret>,
    placement: &Placement,
) -> Result<Attach, Error> {
    let secret = match credentials {
        Credentials::None => {
            return Err(Error::ConnectionUnavailable(format!(
                "connection `{link}` has no credentials yet; connect it"
            )));
        }
        Credentials::Basic { username, password } => {
            return Ok(Attach::Basic(username.clone(), password.clone()));
        }
        Credentials::ApiKey { key } => key,
        Credentials::Bearer { token } => token,
        Credentials::Oauth2 { access_token, .. } => access_token,
    };
    Ok(match placement {
        Placement::Header { name, template } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::ConnectionUnavailable(format!(
                    "the service of `{link}` names an invalid credential header"
                ))
            })?;
            let mut value = HeaderValue::from_str(&template.replace("{token}", secret.expose()))
                .map_err(|_| {
                    Error::ConnectionUnavailable(format!(
                        "the credential of `{link}` cannot be sent in a header"
                    ))
                })?;
            value.set_sensitive(true);
            Attach::Header(name, value)
        }
        Placement::Query { name } => Attach::Query(name.clone(), secret.clone()),
        Placement::Basic { username } => Attach::Basic(
            username.clone().unwrap_or_else(|| "junction".to_owned()),
            secret.clone(),
        ),
    })
}

fn parse_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|err| {
        Error::InvalidRequest(format!(
            "`{}` is not a valid URL: {err}",
            redact(text, None)
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::InvalidRequest(format!(
            "only http and https URLs can be called, not `{}`",
            url.scheme()
        )));
    }
    Ok(url)
}

fn transport_error(err: &reqwest::Error) -> Error {
    if err.is_timeout() {
        return Error::Timeout;
    }
    // reqwest's messages carry the URL, which may hold a key: leave it out.
    let mut message = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    message.push_str(if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    });
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport(message)
}

fn describe(error: &Error) -> String {
    match error {
        Error::UnknownConnection(m) => format!("unknown-connection: {m}"),
        Error::ConnectionUnavailable(m) => format!("connection-unavailable: {m}"),
        Error::Forbidden(m) => format!("forbidden: {m}"),
        Error::InvalidRequest(m) => format!("invalid-request: {m}"),
        Error::Timeout => "timeout".to_owned(),
        Error::TooLarge => "too-large".to_owned(),
        Error::LimitExceeded(m) => format!("limit-exceeded: {m}"),
        Error::Transport(m) => format!("transport: {m}"),
    }
}

/// Query parameter names whose values are never shown.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "sig",
        "auth",
        "code",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The URL for records and logs: no user info, secret-looking query values
/// (and the connection's own query parameter) replaced by `REDACTED`.
pub(crate) fn redact(text: &str, secret_param: Option<&str>) -> String {
    let Ok(mut url) = Url::parse(text) else {
        // Not a URL we can take apart: keep only what precedes a query.
        return text.split('?').next().unwrap_or_default().to_owned();
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hide = looks_secret(&k) || secret_param == Some(k.as_ref());
                (
                    k.into_owned(),
                    if hide {
                        "REDACTED".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_secrets() {
        let shown = redact(
            "https://u:p@api.x.com/a?apikey=s3cr3t&count=10&hapikey=zz",
            Some("hapikey"),
        );
        assert!(!shown.contains("s3cr3t") && !shown.contains("zz") && !shown.contains("u:p"));
        assert!(shown.contains("count=10"));
    }

    proptest::proptest! {
        /// Redaction never shows a secret-named query value.
        #[test]
        fn redaction_hides_secret_query_values(value in "[A-Za-z0-9]{8,24}", name in "(api_key|token|access_token|client_secret|password|sig)") {
            let shown = redact(&format!("https://api.example.com/a?{name}={value}&count=10"), None);
            proptest::prop_assert!(!shown.contains(&value), "{}", shown);
            proptest::prop_assert!(shown.contains("count=10"));
        }

        /// Every form of an attached credential is gone from what the plugin gets.
        #[test]
        fn scrubbing_removes_every_form_of_the_credential(token in "[A-Za-z0-9+/=_.-]{8,40}", noise in "[a-z ]{0,30}") {
            let attach = Attach::Header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
            let forms = credential_forms(&attach);
            let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            let mut response = Response {
                status: 200,
                headers: vec![("x-echo".into(), format!("Bearer {token}")), ("set-cookie".into(), "s=1".into())],
                body: format!("{noise}{token}{noise}{encoded}{{\"t\":\"{token}\"}}").into_bytes(),
            };
            let count = scrub_response(&mut response, &forms);
            let body = String::from_utf8_lossy(&response.body).into_owned();
            proptest::prop_assert!(!body.contains(&token), "{}", body);
            proptest::prop_assert!(!response.headers.iter().any(|(_, v)| v.contains(&token)));
            proptest::prop_assert!(!response.headers.iter().any(|(n, _)| n == "set-cookie"));
            proptest::prop_assert!(count >= 3, "{}", count);
        }
    }
}
