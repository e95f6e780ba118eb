//! How the console writes times, sizes, durations and states for people.

use crate::html::escape;
use junction_store::{AuthType, ConnectionStatus, now_ms};

/// `2026-11-28 21:46:10 UTC`.
pub fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// `3 min ago`, `in 2 h`.
pub fn relative(ms: u64) -> String {
    let now = now_ms();
    let (delta, future) = if ms > now {
        (ms - now, true)
    } else {
        (now - ms, false)
    };
    let secs = delta / 1000;
    let amount = match secs {
        0..=4 => return "just now".to_owned(),
        5..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// `1.4 MiB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// `12.3 ms`, `1.20 s`.
pub fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// The words and CSS class of a connection status.
pub fn status(status: ConnectionStatus) -> (&'static str, &'static str) {
    match status {
        ConnectionStatus::Connected => ("connected", "ok"),
        ConnectionStatus::Disconnected => ("disconnected", "idle"),
        ConnectionStatus::NeedsReauth => ("needs re-authorisation", "warn"),
        ConnectionStatus::Error => ("error", "bad"),
    }
}

/// How an auth type is called on screen.
pub fn auth_type(auth: AuthType) -> &'static str {
    match auth {
        AuthType::Oauth2 => "OAuth 2.0",
        AuthType::ApiKey => "API key",
        AuthType::Basic => "HTTP Basic",
        AuthType::Bearer => "Bearer token",
    }
}

/// Text for a page, HTML-escaped, with `backticked` names set as code (the
/// API's messages quote names that way).
pub fn rich(text: &str) -> String {
    let escaped = escape(text);
    let parts: Vec<&str> = escaped.split('`').collect();
    let mut out = String::with_capacity(escaped.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        let quoted = i % 2 == 1;
        // An unmatched last quote stays as written.
        if quoted && i == parts.len() - 1 {
            out.push('`');
            out.push_str(part);
        } else if quoted {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_become_code_and_html_stays_text() {
        assert_eq!(
            rich("no service named `a<b>`"),
            "no service named <code>a&lt;b&gt;</code>"
        );
        assert_eq!(rich("one ` quote"), "one ` quote");
        assert_eq!(rich("<script>"), "&lt;script&gt;");
    }

    #[test]
    fn writes_for_people() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1_048_576), "3.0 MiB");
        assert_eq!(millis(12.34), "12.3 ms");
        assert_eq!(millis(1500.0), "1.50 s");
        assert_eq!(relative(now_ms()), "just now");
        assert_eq!(relative(now_ms() - 120_000), "2 min ago");
        assert!(relative(now_ms() + 7_300_000).starts_with("in 2 h"));
    }
}
