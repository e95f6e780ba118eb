//! Text made safe for pages and paths: HTML escaping, path-segment
//! encoding, the console path of a connection and reading a cookie,
//! shared by the console, the OAuth callback's and the connect pages.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use junction_store::ConnectionKey;

/// HTML-escapes text from providers and users.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes one path segment. Link, plugin and service names are
/// URL-safe already; this keeps anything else from changing the path.
pub fn segment(text: &str) -> String {
    // Form encoding writes a space as `+` (and a `+` as `%2B`); a path wants `%20`.
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The console page of the connection `key` names.
pub(crate) fn connection_path(key: &ConnectionKey) -> String {
    let (base, query) = connection_action_base(key);
    format!("{base}{query}")
}

/// The connection's page path, and the query (`?end_user=…` or empty)
/// that its action URLs (`{path}/{action}{query}`) carry too.
pub(crate) fn connection_action_base(key: &ConnectionKey) -> (String, String) {
    let base = format!("/connections/{}", segment(&key.link));
    let query = match key.end_user() {
        Some(user) => format!(
            "?end_user={}",
            url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>()
        ),
        None => String::new(),
    };
    (base, query)
}

/// The value of cookie `name` in the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}
