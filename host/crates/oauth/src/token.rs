//! Token endpoint responses, parsed leniently: providers disagree on nearly
//! every field (see REFERENCE.md). `expires_in` as a number, a string, 0 or
//! missing; `token_type` in any case or missing; `scope` as a string, a comma
//! list, an array or null; JSON or form-encoded bodies; 200 or 201; the token
//! nested under a path (Slack's `authed_user.access_token`); errors as HTTP
//! 200 `{"ok": false}`. Errors are classified so the refresh engine knows
//! whether to retry, ask for re-authorisation, or flag the service.

use std::collections::BTreeMap;

use serde_json::Value;

use junction_store::Secret;

/// How a failed token request should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The grant is gone (`invalid_grant`): an admin must connect again.
    InvalidGrant,
    /// The client is wrong (`invalid_client`): the service definition needs fixing.
    InvalidClient,
    /// Worth retrying later (5xx, 429, timeouts, transport errors).
    Transient,
    /// Anything else the provider refused.
    Rejected,
}

/// A token request that did not yield a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    /// What to do about it.
    pub class: FailureClass,
    /// The provider's error code, when it sent one.
    pub code: Option<String>,
    /// What happened, without any token.
    pub message: String,
}

impl TokenError {
    fn new(class: FailureClass, code: Option<String>, message: impl Into<String>) -> Self {
        TokenError {
            class,
            code,
            message: message.into(),
        }
    }
}

/// Where to find things in a token response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenMapping {
    /// Dotted path of the access token (`authed_user.access_token`); `access_token` when absent.
    pub access_token_path: Option<String>,
    /// Top-level fields to keep as connection metadata (`api_domain`, `instance_url`).
    pub capture: Vec<String>,
}

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// A refresh token, when the provider sent one.
    pub refresh_token: Option<Secret>,
    /// `token_type` as sent, if at all.
    pub token_type: Option<String>,
    /// Seconds until expiry; `None` when unknown (missing or 0).
    pub expires_in: Option<u64>,
    /// Scopes granted, when the provider said.
    pub scopes: Option<Vec<String>>,
    /// The captured metadata fields that were present.
    pub metadata: BTreeMap<String, String>,
}

/// Parses a token endpoint's answer.
pub fn parse(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    mapping: &TokenMapping,
) -> Result<TokenResponse, TokenError> {
    let document = decode_body(content_type, body);
    let success = (200..300).contains(&status);
    let Some(document) = document else {
        let class = if status >= 500 || status == 429 {
            FailureClass::Transient
        } else {
            FailureClass::Rejected
        };
        let what = if success {
            "the token endpoint answered with something that is neither JSON nor a form"
        } else {
            "the token endpoint failed without a JSON or form body"
        };
        return Err(TokenError::new(
            class,
            None,
            format!("{what} (HTTP {status})"),
        ));
    };

    let error_code = document
        .get("error")
        .and_then(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("code").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .filter(|s| !s.is_empty());
    let slack_failure = document.get("ok") == Some(&Value::Bool(false));
    if !success || error_code.is_some() || slack_failure {
        return Err(classify_error(status, error_code, &document));
    }

    let path = mapping
        .access_token_path
        .as_deref()
        .unwrap_or("access_token");
    let access_token = lookup(&document, path)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            TokenError::new(
                FailureClass::Rejected,
                None,
                format!("the token response has no `{path}`"),
            )
        })?;
    // A nested token keeps its siblings (Slack's `authed_user.refresh_token`).
    let parent = path.rsplit_once('.').map(|(parent, _)| parent);
    let sibling = |field: &str| match parent {
        Some(parent) => lookup(&document, &format!("{parent}.{field}")),
        None => document.get(field),
    };
    let refresh_token = sibling("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_owned()));
    let token_type = sibling("token_type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let expires_in = sibling("expires_in").and_then(parse_seconds);
    let scopes = sibling("scope").and_then(parse_scopes);
    let metadata = mapping
        .capture
        .iter()
        .filter_map(|field| {
            let value = lookup(&document, field)?;
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((field.clone(), text))
        })
        .collect();
    Ok(TokenResponse {
        access_token: Secret::new(access_token.to_owned()),
        refresh_token,
        token_type,
        expires_in,
        scopes,
        metadata,
    })
}

/// JSON when the body is a JSON object (whatever the content type says),
/// else a form when it looks like one, else nothing.
fn decode_body(content_type: Option<&str>, body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return Some(map);
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    let declared_form =
        content_type.is_some_and(|c| c.contains("application/x-www-form-urlencoded"));
    let looks_like_form = !text.is_empty()
        && !text.starts_with('<')
        && text.contains('=')
        && !text.contains(char::is_whitespace);
    if !(declared_form || looks_like_form) {
        return None;
    }
    let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    (!map.is_empty()).then_some(map)
}

fn lookup<'a>(document: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = document.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current)
}

/// `3600`, `3600.0`, `"3600"`; 0 and anything else mean "no known expiry".
fn parse_seconds(value: &Value) -> Option<u64> {
    let seconds = match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }?;
    (seconds > 0).then_some(seconds)
}

/// A space- or comma-separated string, or an array of strings; null is unknown.
fn parse_scopes(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(
            s.split([' ', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

fn classify_error(
    status: u16,
    code: Option<String>,
    document: &serde_json::Map<String, Value>,
) -> TokenError {
    let description = document
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let shown = code.clone().unwrap_or_else(|| "no error code".to_owned());
    // A 5xx says the provider is in trouble, whatever its body claims.
    let class = if status >= 500 || status == 429 {
        FailureClass::Transient
    } else {
        match code.as_deref() {
            Some("invalid_grant") => FailureClass::InvalidGrant,
            Some("invalid_client") | Some("unauthorized_client") => FailureClass::InvalidClient,
            Some("temporarily_unavailable") | Some("server_error") => FailureClass::Transient,
            _ => FailureClass::Rejected,
        }
    };
    TokenError::new(
        class,
        code,
        format!("the token endpoint refused (HTTP {status}, {shown}{description})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> TokenResponse {
        parse(
            200,
            Some("application/json"),
            body.as_bytes(),
            &TokenMapping::default(),
        )
        .unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    #[test]
    fn expires_in_as_number_string_zero_or_missing() {
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":3600}"#).expires_in,
            Some(3600)
        );
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":"3600"}"#).expires_in,
            Some(3600)
        );
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":3600.0}"#).expires_in,
            Some(3600)
        );
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":0}"#).expires_in,
            None
        );
        assert_eq!(ok(r#"{"access_token":"a"}"#).expires_in, None);
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":null}"#).expires_in,
            None
        );
    }

    #[test]
    fn token_type_and_scope_in_any_shape() {
        let t = ok(r#"{"access_token":"a","token_type":"BEARER","scope":"read write"}"#);
        assert_eq!(t.token_type.as_deref(), Some("BEARER"));
        assert_eq!(t.scopes.unwrap(), ["read", "write"]);
        let t = ok(r#"{"access_token":"a","scope":"read,write"}"#);
        assert_eq!(t.scopes.unwrap(), ["read", "write"]);
        let t = ok(r#"{"access_token":"a","scope":["read","write"]}"#);
        assert_eq!(t.scopes.unwrap(), ["read", "write"]);
        let t = ok(r#"{"access_token":"a","scope":null}"#);
        assert!(t.scopes.is_none() && t.token_type.is_none());
    }

    #[test]
    fn form_encoded_and_201_bodies() {
        let t = parse(
            200,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"access_token=gho_abc&token_type=bearer&scope=repo%2Cuser",
            &TokenMapping::default(),
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "gho_abc");
        assert_eq!(t.scopes.unwrap(), ["repo", "user"]);
        // Some providers mislabel the form as text/plain.
        let t = parse(
            201,
            Some("text/plain"),
            b"access_token=x&expires_in=60",
            &TokenMapping::default(),
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(60));
    }

    #[test]
    fn nested_tokens_and_metadata_capture() {
        let mapping = TokenMapping {
            access_token_path: Some("authed_user.access_token".into()),
            capture: vec!["team.id".into(), "api_domain".into()],
        };
        let body = br#"{"ok":true,"access_token":"xoxb-bot","team":{"id":"T1"},
            "authed_user":{"id":"U1","access_token":"xoxp-user","refresh_token":"xoxe-r","expires_in":43200}}"#;
        let t = parse(200, None, body, &mapping).unwrap();
        assert_eq!(t.access_token.expose(), "xoxp-user");
        assert_eq!(t.refresh_token.unwrap().expose(), "xoxe-r");
        assert_eq!(t.expires_in, Some(43200));
        assert_eq!(t.metadata.get("team.id").map(String::as_str), Some("T1"));
        assert!(!t.metadata.contains_key("api_domain"));
    }

    #[test]
    fn errors_are_classified() {
        let err = |status: u16, body: &str| {
            parse(
                status,
                Some("application/json"),
                body.as_bytes(),
                &TokenMapping::default(),
            )
            .unwrap_err()
        };
        assert_eq!(
            err(400, r#"{"error":"invalid_grant"}"#).class,
            FailureClass::InvalidGrant
        );
        assert_eq!(
            err(401, r#"{"error":"invalid_client"}"#).class,
            FailureClass::InvalidClient
        );
        assert_eq!(
            err(503, r#"{"error":"invalid_grant"}"#).class,
            FailureClass::Transient
        );
        assert_eq!(err(429, "slow down").class, FailureClass::Transient);
        assert_eq!(
            err(400, r#"{"error":"invalid_request"}"#).class,
            FailureClass::Rejected
        );
        // Slack: HTTP 200 with ok=false; an error field on a 200 too.
        assert_eq!(
            err(200, r#"{"ok":false,"error":"invalid_code"}"#).class,
            FailureClass::Rejected
        );
        assert_eq!(
            err(200, r#"{"error":"invalid_grant"}"#).class,
            FailureClass::InvalidGrant
        );
        // HTML from a misconfigured endpoint is a failure, not a token.
        let html = err(200, "<html><body>Sign in</body></html>");
        assert!(
            html.message.contains("neither JSON nor a form"),
            "{}",
            html.message
        );
        assert_eq!(err(200, r#"{"token":"x"}"#).class, FailureClass::Rejected);
        let described = err(
            400,
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
        );
        assert!(described.message.contains("invalid_grant: expired"));
    }

    proptest::proptest! {
        /// No answer, however malformed, makes the parser panic.
        #[test]
        fn any_answer_is_parsed_or_classified(status in 100u16..600, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), json in proptest::prelude::any::<bool>()) {
            let content_type = if json { "application/json" } else { "application/x-www-form-urlencoded" };
            let _ = parse(status, Some(content_type), &body, &TokenMapping::default());
        }

        /// Whatever form `expires_in` takes, the token and its lifetime come through.
        #[test]
        fn tokens_and_lifetimes_survive_every_spelling(token in "[A-Za-z0-9._~-]{1,40}", seconds in 0u64..10_000_000, form in 0u8..3) {
            let expires = match form {
                0 => serde_json::json!(seconds),
                1 => serde_json::json!(seconds.to_string()),
                _ => serde_json::json!(seconds as f64),
            };
            let body = serde_json::json!({"access_token": token, "token_type": "BEARER", "expires_in": expires}).to_string();
            let parsed = ok(&body);
            proptest::prop_assert_eq!(parsed.access_token.expose(), token.as_str());
            proptest::prop_assert_eq!(parsed.expires_in, (seconds > 0).then_some(seconds));
        }
    }
}
