//! Text made safe for pages and paths: HTML escaping and path-segment
//! encoding, shared by the console and the OAuth callback's pages.

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
