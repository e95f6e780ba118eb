//! A guest's request checked and resolved before anything is sent: its
//! size bounds ([`MAX_URL`], [`MAX_HEADER_BYTES`], [`MAX_REQUEST_BODY`]),
//! the URL (absolute, or relative to the connection's base URL), the headers
//! a guest may set, the connection's credential and where it may go, and the
//! call's time limit within the execution's.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use reqwest::Method as ReqMethod;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::attach::{Attach, attachment, credential_forms};
use super::destination::Destinations;
use super::record::redact;
use crate::bindings::junction::plugin::http::{Error, Method, Request};
use crate::connections::{ConnectionsState, LookupError, expand_base_url};
use junction_core::{ConnectionStatus, Credentials, HostPattern, Secret};
use junction_net::NetworkPolicy;

/// The longest one call may take when the plugin does not say (Zoho's `invokeurl`).
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(40);
/// Headers the host sets itself.
const HOST_SET_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];
/// Headers a guest may not set on a request that carries a connection.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
/// Longest request URL, query parameters included.
pub(crate) const MAX_URL: usize = 8 * 1024;
/// Most bytes of request header names and values together.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest request body.
pub(crate) const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

/// What a request is checked against.
pub(super) struct Scope<'a> {
    /// The calling plugin.
    pub(super) plugin: &'a str,
    /// The connections it was granted.
    pub(super) connections: &'a ConnectionsState,
    /// Where it may call without a connection.
    pub(super) allowed_hosts: &'a [HostPattern],
    /// When the execution ends.
    pub(super) deadline: Instant,
    /// Which addresses may be reached.
    pub(super) network: NetworkPolicy,
}

/// A request checked and ready to send.
pub(super) struct Prepared<'a> {
    pub(super) method: ReqMethod,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Vec<u8>>,
    pub(super) attach: Option<Attach>,
    pub(super) destinations: Destinations<'a>,
    /// The call's own time limit when it ends before the execution's
    /// deadline; `None` when the deadline comes first, which the runtime
    /// already enforces around the whole execution (a second timer per
    /// call would cost every call for nothing).
    pub(super) timeout: Option<Duration>,
    /// The OAuth access token attached, to tell after a 401 whether it was
    /// replaced meanwhile.
    pub(super) oauth_token: Option<Secret>,
    /// Every form of the attached credential as it may come back.
    pub(super) scrub: Vec<Vec<u8>>,
    /// API statuses after which an OAuth token is refreshed and the call retried.
    pub(super) refresh_on_status: Vec<u16>,
}

/// Checks `request` and resolves what it needs: the URL, the headers, the
/// credential, the allowed destinations and the time it may take.
pub(super) async fn prepare<'a>(
    scope: &Scope<'a>,
    request: Request,
) -> Result<Prepared<'a>, Error> {
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
                scope
                    .connections
                    .granted_connection(link)
                    .await
                    .map_err(|err| match err {
                        LookupError::NotGranted { .. }
                        | LookupError::Unknown(_)
                        | LookupError::EndUserHasNone { .. } => {
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
            (url, Some(attach), Cow::Owned(allowed))
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
                Cow::Borrowed(scope.allowed_hosts),
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
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("`{name}` is not a valid header name")))?;
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
    let remaining = scope.deadline.saturating_duration_since(Instant::now());
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
        destinations: Destinations {
            plugin: scope.plugin,
            connection: request.connection,
            allowed,
            network: scope.network,
        },
        timeout: (requested < remaining).then_some(requested),
        oauth_token,
        refresh_on_status,
    };
    prepared.destinations.check(&prepared.url)?;
    Ok(prepared)
}
/// The method as it goes on the wire.
pub(super) fn method_name(method: Method) -> &'static str {
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
