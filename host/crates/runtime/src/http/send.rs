//! Sending a prepared request: the credential attached as the service
//! says, redirects followed by hand (at most [`MAX_REDIRECTS`], each
//! destination checked again, a POST turned into a GET where HTTP says so),
//! the whole call within its time limit (the execution's deadline, which
//! the runtime enforces, when the call has none shorter) and the body read
//! up to the plugin's response limit. Transport errors never carry the URL.

use reqwest::{Method as ReqMethod, StatusCode};

use super::answer::{Answer, pack_headers};
use super::attach::Attach;
use super::request::Prepared;
use crate::bindings::junction::plugin::http::Error;

/// Redirects followed per call.
const MAX_REDIRECTS: usize = 5;
/// The most body bytes reserved before any arrive.
const PREALLOCATED_BODY: u64 = 64 * 1024;

/// Sends a prepared request, following and re-checking redirects, and reads
/// the body up to `max_body` bytes.
pub(super) async fn send(
    client: &reqwest::Client,
    max_body: usize,
    prepared: &mut Prepared<'_>,
) -> Result<Answer, Error> {
    let call_deadline = prepared
        .timeout
        .map(|timeout| tokio::time::Instant::now() + timeout);
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
        // One timer for the whole hop, body included (a timer per read would
        // cost each small call three), and none when the execution's
        // deadline is the call's.
        let hop = match call_deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, exchange(builder, max_body))
                .await
                .map_err(|_| Error::Timeout)??,
            None => exchange(builder, max_body).await?,
        };
        let (status, location) = match hop {
            Hop::Answered(response) => return Ok(response),
            Hop::Redirected { status, location } => (status, location),
        };
        let next = prepared.url.join(&location).map_err(|_| {
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
        prepared
            .destinations
            .check(&next)
            .map_err(|err| match err {
                Error::Forbidden(msg) => Error::Forbidden(format!("redirect refused: {msg}")),
                other => other,
            })?;
        if status == StatusCode::SEE_OTHER
            || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                && prepared.method == ReqMethod::POST)
        {
            prepared.method = ReqMethod::GET;
            prepared.body = None;
            prepared.headers.remove(reqwest::header::CONTENT_TYPE);
        }
        prepared.url = next;
    }
    Err(Error::Transport(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// What one request of a call came to.
enum Hop {
    /// The answer, body read.
    Answered(Answer),
    /// A redirect, body left unread.
    Redirected {
        status: StatusCode,
        location: String,
    },
}

/// Sends one request and reads its answer's body up to `max_body` bytes,
/// unless the answer is a redirect.
async fn exchange(builder: reqwest::RequestBuilder, max_body: usize) -> Result<Hop, Error> {
    let mut response = builder.send().await.map_err(|err| transport_error(&err))?;
    if response.status().is_redirection()
        && let Some(location) = response.headers().get(reqwest::header::LOCATION)
    {
        let location = location.to_str().map_err(|_| {
            Error::Transport("the server redirected to a location that is not text".into())
        })?;
        return Ok(Hop::Redirected {
            status: response.status(),
            location: location.to_owned(),
        });
    }
    let status = response.status().as_u16();
    let headers = pack_headers(response.headers());
    if response
        .content_length()
        .is_some_and(|len| len > max_body as u64)
    {
        return Err(Error::TooLarge);
    }
    // Sized from what the server announces, but only up to a small bound:
    // an announced length is a claim, and memory follows the bytes received.
    let announced = response.content_length().unwrap_or(0);
    let mut body =
        Vec::with_capacity(usize::try_from(announced.min(PREALLOCATED_BODY)).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport_error(&err))?
    {
        if body.len() + chunk.len() > max_body {
            return Err(Error::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Hop::Answered(Answer {
        status,
        headers,
        body,
    }))
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
