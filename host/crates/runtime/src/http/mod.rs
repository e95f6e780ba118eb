//! The `http` interface: `invoke-url`, outbound HTTP done by the host with one
//! shared `reqwest::Client`. With a connection named, the host resolves a
//! relative URL against the connection's base URL and attaches its
//! credentials — only to the hosts the service allows, never when the guest
//! set its own `Authorization`, `Proxy-Authorization` or `Cookie`. Without a
//! connection, only the plugin's `allowed-hosts` can be reached. An OAuth
//! token about to expire is refreshed first, and a call the API answers
//! with 401 is retried once with a new token.
//!
//! This module owns the interface's state ([`HttpState`]) and the order of
//! one call; each step is its own module: [`budget`] admits it,
//! [`request`] checks and resolves it, [`destination`] says where it may
//! go, [`send`] sends it and follows redirects, [`attach`] puts the
//! credential on and scrubs it out of the response, [`record`] keeps what
//! happened, redacted.

mod attach;
mod budget;
mod destination;
mod record;
mod request;
mod send;

use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker};

use crate::bindings::junction::plugin::http::{self as wit, Error, Host, Request, Response};
use crate::connections::ConnectionsState;
use attach::{Attach, scrub_response};
use budget::CallBudget;
use junction_core::model::Freshness;
use junction_core::record::CallRecord;
use junction_core::{HostPattern, Limits};
use junction_net::NetworkPolicy;
use record::{CallLog, redact};
use request::{Scope, method_name, prepare};

/// The one HTTP client: connection pooling, no automatic redirects (they are
/// followed and checked in [`send`]).
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

/// One execution's outbound HTTP: where it may call, what it may still
/// call, and what it called.
pub(crate) struct HttpState {
    plugin: String,
    client: reqwest::Client,
    network: NetworkPolicy,
    allowed_hosts: Vec<HostPattern>,
    response_bytes: usize,
    deadline: Instant,
    budget: CallBudget,
    log: CallLog,
    /// Why the execution was ended for spinning on a spent budget.
    ended: Option<String>,
}

/// What the calls of one execution left.
pub(crate) struct CallsMade {
    /// The recorded calls.
    pub(crate) calls: Vec<CallRecord>,
    /// Calls past the recorded ones.
    pub(crate) dropped: u64,
    /// Set when the plugin was ended for calling past its budget.
    pub(crate) ended: Option<String>,
}

impl HttpState {
    /// `plugin`'s calls through `client` within `limits` until `deadline`.
    pub(crate) fn new(
        plugin: &str,
        client: reqwest::Client,
        network: NetworkPolicy,
        allowed_hosts: Vec<HostPattern>,
        limits: &Limits,
        deadline: Instant,
    ) -> Self {
        HttpState {
            plugin: plugin.to_owned(),
            client,
            network,
            allowed_hosts,
            response_bytes: limits.response_bytes,
            deadline,
            budget: CallBudget::new(limits.http_calls, limits.http_concurrency),
            log: CallLog::default(),
            ended: None,
        }
    }

    /// The calls made, for the execution record.
    pub(crate) fn finish(self) -> CallsMade {
        CallsMade {
            calls: self.log.calls,
            dropped: self.log.dropped,
            ended: self.ended,
        }
    }
}

/// The `http` interface's view of an execution: its own state, and the
/// connections a request may name.
pub(crate) struct HttpView<'a> {
    pub(crate) http: &'a mut HttpState,
    pub(crate) connections: &'a ConnectionsState,
}

/// The `http` interface's data in the linker.
struct Http;

impl HasData for Http {
    type Data<'a> = HttpView<'a>;
}

/// Links the `http` interface, its view made by `get`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> HttpView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Http>(linker, get)
}

impl Host for HttpView<'_> {
    async fn invoke_url(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let started = Instant::now();
        let method = method_name(request.method).to_owned();
        let connection = request.connection.clone();
        let http = &mut *self.http;

        let _permit = match http.budget.admit() {
            Ok(permit) => permit,
            Err(error) => {
                let url = redact(&request.url, None);
                let plugin = &http.plugin;
                http.log.record(
                    plugin,
                    method,
                    url,
                    None,
                    started,
                    connection,
                    Some(&error),
                    0,
                );
                if let Some(message) = http.budget.spinning() {
                    http.ended = Some(message.clone());
                    return Err(wasmtime::Error::msg(message));
                }
                return Ok(Err(error));
            }
        };

        // Only an admitted call may refresh: an OAuth token about to expire
        // is refreshed before it is used; a failure is recorded on the
        // connection, which `prepare` then reports.
        let granted = match &connection {
            Some(link) => self.connections.key_for(link).await,
            None => None,
        };
        if let Some(link) = &granted
            && let Err(err) = self.connections.source().ensure_fresh(link).await
        {
            tracing::warn!(plugin = %http.plugin, link = %link, error = %err, "refresh before the call failed");
        }
        let retry = granted.as_ref().map(|_| request.clone());
        let given_url = request.url.clone();
        let scope = Scope {
            plugin: &http.plugin,
            connections: self.connections,
            allowed_hosts: &http.allowed_hosts,
            deadline: http.deadline,
            network: http.network,
        };
        let mut prepared = match prepare(&scope, request).await {
            Ok(prepared) => prepared,
            Err(error) => {
                let url = redact(&given_url, None);
                let plugin = &http.plugin;
                http.log.record(
                    plugin,
                    method,
                    url,
                    None,
                    started,
                    connection,
                    Some(&error),
                    0,
                );
                return Ok(Err(error));
            }
        };
        let mut result = send::send(&http.client, http.response_bytes, &mut prepared).await;
        // A 401 with an OAuth token: refresh once (unless it was already
        // replaced) and retry once with the new token.
        if let (Ok(response), Some(link), Some(used), Some(again)) =
            (&result, &granted, prepared.oauth_token.clone(), retry)
            && prepared.refresh_on_status.contains(&response.status)
            && matches!(
                self.connections
                    .source()
                    .after_unauthorized(link, used.expose())
                    .await,
                Ok(Freshness::Refreshed)
            )
        {
            match prepare(&scope, again).await {
                Ok(mut retried) => {
                    result = send::send(&http.client, http.response_bytes, &mut retried).await;
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
        let plugin = &http.plugin;
        http.log.record(
            plugin,
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
