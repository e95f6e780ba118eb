//! What each call leaves behind: a [`CallRecord`] in the execution record
//! (the first [`MAX_CALL_RECORDS`], the rest counted) and a debug line, both
//! with the URL redacted — no user info, no secret-looking query values,
//! not the connection's own query credential — and texts cut to size.

use std::time::Instant;

use url::Url;

use crate::bindings::junction::plugin::http::Error;
use junction_core::record::{CallRecord, MAX_CALL_RECORDS, MAX_CALL_TEXT, plain_text};
use junction_core::text::truncate_with_marker;

/// One execution's calls.
#[derive(Default)]
pub(super) struct CallLog {
    /// The first [`MAX_CALL_RECORDS`] calls.
    pub(super) calls: Vec<CallRecord>,
    /// Calls past those, only counted.
    pub(super) dropped: u64,
}

impl CallLog {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &mut self,
        plugin: &str,
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
            plugin = %plugin,
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
            self.dropped += 1;
        }
    }
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
pub(super) fn redact(text: &str, secret_param: Option<&str>) -> String {
    match Url::parse(text) {
        Ok(url) => redact_url(url, secret_param),
        // Not a URL we can take apart: keep only what precedes a query.
        Err(_) => text.split('?').next().unwrap_or_default().to_owned(),
    }
}

/// [`redact`] for a URL already parsed: a call's own URL is not parsed a
/// second time (parsing a host name is most of a refused call's cost).
pub(super) fn redact_url(mut url: Url, secret_param: Option<&str>) -> String {
    if !url.username().is_empty() {
        let _ = url.set_username("");
    }
    if url.password().is_some() {
        let _ = url.set_password(None);
    }
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
    url.into()
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

        /// A call's parsed URL is shown exactly as its text would be.
        #[test]
        fn redacting_a_parsed_url_matches_redacting_its_text(
            user in "(|u|u:p)",
            query in "(|a=1|token=s3cr3t&b=2|key=x&key=y)",
        ) {
            let at = if user.is_empty() { String::new() } else { format!("{user}@") };
            let text = format!("https://{at}api.example.com/a/b?{query}");
            let parsed = Url::parse(&text).unwrap();
            proptest::prop_assert_eq!(redact_url(parsed, Some("key")), redact(&text, Some("key")));
        }
    }
}
