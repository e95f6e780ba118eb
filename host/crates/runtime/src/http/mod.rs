//! The `http` interface: `send` and `invoke-url` (one request), `send-many`
//! and `invoke-many` (several in flight at once, up to the execution's
//! in-flight limit), outbound HTTP done by the host with one shared
//! `reqwest::Client`. With a connection named, the host resolves a
//! relative URL against the connection's base URL and attaches its
//! credentials — only to the hosts the service allows, never when the guest
//! set its own `Authorization`, `Proxy-Authorization` or `Cookie`. Without a
//! connection, only the plugin's `allowed-hosts` can be reached. An OAuth
//! token about to expire is refreshed first, and a call the API answers
//! with 401 is retried once with a new token.
//!
//! This module owns the interface's state ([`HttpState`]), the order of
//! one call ([`perform`]) and how a batch shares the budget; each step is its own module: [`budget`] admits it,
//! [`request`] checks and resolves it, [`destination`] says where it may
//! go, [`send`] sends it and follows redirects, [`attach`] puts the
//! credential on and scrubs it out of the response, [`record`] keeps what
//! happened, redacted; [`answer`] holds the response until the guest gets
//! it, as a `reply` (`send`, `send-many`) or a `response` (`invoke-url`,
//! `invoke-many`, the 0.1.0 contract).

mod answer;
mod attach;
mod budget;
mod destination;
mod record;
mod request;
mod send;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker};

use crate::bindings::junction::plugin::http::{self as wit, Error, Host, Reply, Request, Response};
use crate::connections::ConnectionsState;
use answer::Answer;
use attach::{Attach, scrub_response};
use budget::CallBudget;
use junction_core::model::Freshness;
use junction_core::record::CallRecord;
use junction_core::{HostPattern, Limits};
use junction_net::NetworkPolicy;
use record::{CallLog, redact, redact_url};
use request::{Scope, method_name, prepare};

/// The one HTTP client: connection pooling, no automatic redirects (they are
/// followed and checked in [`send`]).
pub fn build_client(network: NetworkPolicy) -> reqwest::Result<reqwest::Client> {
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
    /// The most response bytes one `invoke-many` may hold for the guest:
    /// half its memory, which must also hold the guest's own data.
    batch_bytes: usize,
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
            batch_bytes: limits.memory_bytes / 2,
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

impl HttpState {
    /// What the calls of this execution share while they are in flight.
    fn context<'a>(&'a self, connections: &'a ConnectionsState) -> CallContext<'a> {
        CallContext {
            client: &self.client,
            response_bytes: self.response_bytes,
            scope: Scope {
                plugin: &self.plugin,
                connections,
                allowed_hosts: &self.allowed_hosts,
                deadline: self.deadline,
                network: self.network,
            },
        }
    }

    /// Records a finished call and answers its result.
    fn keep(&mut self, call: Finished) -> Result<Answer, Error> {
        let status = call.result.as_ref().ok().map(|r| r.status);
        self.log.record(
            &self.plugin,
            call.method,
            call.url,
            status,
            call.started,
            call.connection,
            call.result.as_ref().err(),
            call.redactions,
        );
        call.result
    }
}

/// What one call needs from its execution; shared by the calls of a batch.
struct CallContext<'a> {
    client: &'a reqwest::Client,
    response_bytes: usize,
    scope: Scope<'a>,
}

/// A call that is over, for the call log and the guest.
struct Finished {
    method: String,
    /// Redacted.
    url: String,
    started: Instant,
    connection: Option<String>,
    result: Result<Answer, Error>,
    redactions: u32,
}

impl Finished {
    /// A call refused before anything was sent.
    fn refused(request: &Request, started: Instant, error: Error) -> Self {
        Self::refused_as(
            method_name(request.method),
            &request.url,
            request.connection.clone(),
            started,
            error,
        )
    }

    fn refused_as(
        method: &str,
        url: &str,
        connection: Option<String>,
        started: Instant,
        error: Error,
    ) -> Self {
        Finished {
            method: method.to_owned(),
            url: redact(url, None),
            started,
            connection,
            result: Err(error),
            redactions: 0,
        }
    }
}

/// One admitted call: resolve, attach, send, retry once after a 401 with a
/// refreshed token, scrub the credential out of the answer.
async fn perform(context: &CallContext<'_>, request: Request, started: Instant) -> Finished {
    let scope = &context.scope;
    let connections = scope.connections;
    let connection = request.connection.clone();
    // Only an admitted call may refresh: an OAuth token about to expire
    // is refreshed before it is used; a failure is recorded on the
    // connection, which `prepare` then reports.
    let granted = match &connection {
        Some(link) => connections.key_for(link).await,
        None => None,
    };
    if let Some(link) = &granted
        && let Err(err) = connections.source().ensure_fresh(link).await
    {
        tracing::warn!(plugin = %scope.plugin, link = %link, error = %err, "refresh before the call failed");
    }
    let retry = granted.as_ref().map(|_| request.clone());
    let method = method_name(request.method);
    let given_url = request.url.clone();
    let mut prepared = match prepare(scope, request).await {
        Ok(prepared) => prepared,
        Err(error) => {
            return Finished::refused_as(method, &given_url, connection, started, error);
        }
    };
    let mut result = send::send(context.client, context.response_bytes, &mut prepared).await;
    // A 401 with an OAuth token: refresh once (unless it was already
    // replaced) and retry once with the new token.
    if let (Ok(response), Some(link), Some(used), Some(again)) =
        (&result, &granted, prepared.oauth_token.clone(), retry)
        && prepared.refresh_on_status.contains(&response.status)
        && matches!(
            connections
                .source()
                .after_unauthorized(link, used.expose())
                .await,
            Ok(Freshness::Refreshed)
        )
    {
        match prepare(scope, again).await {
            Ok(mut retried) => {
                result = send::send(context.client, context.response_bytes, &mut retried).await;
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
    let mut shown = prepared.url;
    let url = match &prepared.attach {
        Some(Attach::Query(name, _)) => {
            // Show that the credential parameter went along, not its value.
            shown.query_pairs_mut().append_pair(name, "REDACTED");
            redact_url(shown, Some(name))
        }
        _ => redact_url(shown, None),
    };
    Finished {
        method: prepared.method.to_string(),
        url,
        started,
        connection,
        result,
        redactions,
    }
}

impl Host for HttpView<'_> {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Reply, Error>> {
        Ok(self.call(request).await?.map(Answer::into_reply))
    }

    async fn send_many(
        &mut self,
        requests: Vec<Request>,
    ) -> wasmtime::Result<Vec<Result<Reply, Error>>> {
        self.call_many("send-many", requests, Answer::into_reply)
            .await
    }

    async fn invoke_url(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        Ok(self.call(request).await?.map(Answer::into_response))
    }

    async fn invoke_many(
        &mut self,
        requests: Vec<Request>,
    ) -> wasmtime::Result<Vec<Result<Response, Error>>> {
        self.call_many("invoke-many", requests, Answer::into_response)
            .await
    }
}

impl HttpView<'_> {
    /// One call: admitted, performed, recorded. An error ends the execution.
    async fn call(&mut self, request: Request) -> wasmtime::Result<Result<Answer, Error>> {
        let started = Instant::now();
        let http = &mut *self.http;
        let _permit = match http.budget.admit() {
            Ok(permit) => permit,
            Err(error) => {
                let refused = http.keep(Finished::refused(&request, started, error));
                if let Some(message) = http.budget.spinning() {
                    http.ended = Some(message.clone());
                    return Err(wasmtime::Error::msg(message));
                }
                return Ok(refused);
            }
        };
        let finished = perform(&http.context(self.connections), request, started).await;
        Ok(http.keep(finished))
    }

    /// A batch given to `function`: each request admitted against the
    /// budget, at most the in-flight limit sent at once, all recorded, the
    /// answers made into what `function` returns by `shape`. An error ends
    /// the execution.
    async fn call_many<T>(
        &mut self,
        function: &str,
        requests: Vec<Request>,
        shape: fn(Answer) -> T,
    ) -> wasmtime::Result<Vec<Result<T, Error>>> {
        let started = Instant::now();
        let http = &mut *self.http;
        let limit = http.budget.limit();
        if requests.len() > limit as usize {
            // Answering each one would cost the host memory for nothing.
            let message = format!(
                "{function} was given {} requests, more than this execution's limit of {limit} invoke-url calls in all; raise limits.http-calls in the manifest or send fewer at once",
                requests.len()
            );
            http.ended = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        let admitted: Vec<(Request, Result<(), Error>)> = requests
            .into_iter()
            .map(|request| {
                let admitted = http.budget.take();
                (request, admitted)
            })
            .collect();
        if admitted.iter().any(|(_, admitted)| admitted.is_err()) {
            http.budget.batch_refused();
        }
        let in_flight = http.budget.in_flight();
        // The answers wait here until the last call is over: together they
        // may hold no more than half the plugin's memory, which could not
        // take much more anyway.
        let room = AtomicUsize::new(http.batch_bytes);
        let context = http.context(self.connections);
        let calls = admitted.into_iter().map(|(request, admitted)| {
            let (context, in_flight, room) = (&context, &in_flight, &room);
            async move {
                if let Err(error) = admitted {
                    return Finished::refused(&request, started, error);
                }
                let Ok(_place) = in_flight.acquire().await else {
                    let error = Error::LimitExceeded("the execution is ending".into());
                    return Finished::refused(&request, started, error);
                };
                let mut finished = perform(context, request, Instant::now()).await;
                if let Ok(response) = &finished.result {
                    let size = response.body.len();
                    let fits = room
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                            left.checked_sub(size)
                        })
                        .is_ok();
                    if !fits {
                        finished.result = Err(Error::TooLarge);
                    }
                }
                finished
            }
        });
        let finished = futures::future::join_all(calls).await;
        let answers = finished
            .into_iter()
            .map(|call| http.keep(call).map(shape))
            .collect();
        if let Some(message) = http.budget.spinning() {
            http.ended = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(answers)
    }
}
