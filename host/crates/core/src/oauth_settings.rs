//! How a service speaks OAuth 2.0: grant, endpoints, scopes, PKCE, extra
//! parameters, client authentication, where the token sits in the response
//! and which fields (and which metadata call) give the connection its
//! metadata. Stored with the service; the client secret is kept apart,
//! sealed, and never part of this record.

use std::collections::BTreeMap;

use crate::field::FieldError;
use serde::{Deserialize, Serialize};

/// The grant a service uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// The browser flow: authorize, callback, code exchange.
    #[default]
    AuthorizationCode,
    /// Machine to machine: no browser.
    ClientCredentials,
}

/// How the client proves itself to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    Body,
    /// HTTP Basic with the client id and secret.
    Basic,
}

fn space() -> String {
    " ".to_owned()
}

fn yes() -> bool {
    true
}

/// A service's OAuth 2.0 settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    /// `authorization-code` (default) or `client-credentials`.
    #[serde(default)]
    pub grant: Grant,
    /// The client id registered with the provider.
    pub client_id: String,
    /// Where the browser is sent (authorization code only).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Where codes (and client credentials) are exchanged for tokens.
    /// May be left out when `issuer` is given: discovery fills it in.
    #[serde(default)]
    pub token_url: String,
    /// RFC 8414 issuer: the endpoints left out are discovered from its
    /// metadata when the service is created, and its `issuer` must match.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where refresh tokens are redeemed; the token URL when absent.
    #[serde(default)]
    pub refresh_url: Option<String>,
    /// RFC 7009 revocation endpoint, if the provider has one.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Scopes asked for by default.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How scopes are joined: `" "` (default), `","` or `"+"`.
    #[serde(default = "space")]
    pub scope_separator: String,
    /// PKCE S256 (on by default).
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Extra authorize parameters (`access_type=offline`, `prompt=consent`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Extra token request parameters.
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    /// Client secret in the body (default) or by HTTP Basic.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Dotted path of the access token in the response (`authed_user.access_token`).
    #[serde(default)]
    pub access_token_path: Option<String>,
    /// Token response fields kept as metadata (`api_domain`, `instance_url`).
    #[serde(default)]
    pub capture: Vec<String>,
    /// A URL called with the new token to learn more (MailChimp's `dc`).
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// The `Authorization` value for the metadata call; `Bearer {token}` when absent.
    #[serde(default)]
    pub metadata_auth: Option<String>,
    /// Fields of the metadata answer kept as metadata (`dc`, `api_endpoint`).
    #[serde(default)]
    pub metadata_capture: Vec<String>,
    /// API statuses that mean "token no longer valid": refresh once and
    /// retry once. `[401]` by default; some APIs answer 403.
    #[serde(default = "unauthorized")]
    pub refresh_on_status: Vec<u16>,
}

fn unauthorized() -> Vec<u16> {
    vec![401]
}

impl OAuthSettings {
    /// Whether the token endpoint needs a client secret: always, except for
    /// an authorization-code client that uses PKCE (a public client).
    pub fn needs_client_secret(&self) -> bool {
        !(self.grant == Grant::AuthorizationCode
            && self.pkce
            && self.client_auth == ClientAuth::Body)
    }

    /// The refresh endpoint.
    pub fn refresh_endpoint(&self) -> &str {
        self.refresh_url.as_deref().unwrap_or(&self.token_url)
    }

    /// Checks what serde cannot: URLs, separators, scopes.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.client_id.trim().is_empty() {
            return Err(FieldError::new("oauth.client_id", "is empty"));
        }
        if self.token_url.is_empty() {
            return Err(FieldError::new(
                "oauth.token_url",
                "is required (or give oauth.issuer to discover it)",
            ));
        }
        check_url("oauth.token_url", &self.token_url)?;
        for (field, url) in [
            ("oauth.authorize_url", &self.authorize_url),
            ("oauth.refresh_url", &self.refresh_url),
            ("oauth.revoke_url", &self.revoke_url),
            ("oauth.metadata_url", &self.metadata_url),
        ] {
            if let Some(url) = url {
                check_url(field, url)?;
            }
        }
        if self.grant == Grant::AuthorizationCode && self.authorize_url.is_none() {
            return Err(FieldError::new(
                "oauth.authorize_url",
                "is required for the authorization-code grant",
            ));
        }
        if ![" ", ",", "+"].contains(&self.scope_separator.as_str()) {
            return Err(FieldError::new(
                "oauth.scope_separator",
                format!("`{}` must be \" \", \",\" or \"+\"", self.scope_separator),
            ));
        }
        for scope in &self.scopes {
            check_scope(scope).map_err(|problem| FieldError::new("oauth.scopes", problem))?;
        }
        Ok(())
    }
}

/// RFC 6749 §3.3: a scope token is visible ASCII except `"` and `\`. The
/// error says what is wrong, to follow the name of the field that holds it.
pub fn check_scope(scope: &str) -> Result<(), String> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\' && b != b',');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "hold scope `{scope}`, which has characters a scope cannot have (spaces, commas, quotes, backslashes or non-ASCII)"
        ))
    }
}

fn check_url(field: &'static str, text: &str) -> Result<(), FieldError> {
    let url = url::Url::parse(text)
        .map_err(|e| FieldError::new(field, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FieldError::new(
            field,
            format!("`{text}` must be http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, format!("`{text}` has no host")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> Result<OAuthSettings, String> {
        let parsed: OAuthSettings = serde_json::from_value(json).map_err(|e| e.to_string())?;
        parsed.validate().map_err(|e| e.to_string())?;
        Ok(parsed)
    }

    #[test]
    fn defaults_and_validation() {
        let ok = settings(serde_json::json!({
            "client_id": "abc", "authorize_url": "https://p.example/auth",
            "token_url": "https://p.example/token", "scopes": ["read", "ZohoCRM.modules.ALL"],
        }))
        .unwrap();
        assert!(ok.pkce && ok.scope_separator == " " && ok.grant == Grant::AuthorizationCode);
        assert!(!ok.needs_client_secret(), "PKCE public client");
        assert_eq!(ok.refresh_endpoint(), "https://p.example/token");

        let err = settings(serde_json::json!({"client_id": "a", "token_url": "https://p/t"}))
            .unwrap_err();
        assert!(err.contains("authorize_url is required"), "{err}");
        let err = settings(serde_json::json!({
            "client_id": "a", "grant": "client-credentials", "token_url": "ftp://p/t"
        }))
        .unwrap_err();
        assert!(err.contains("http or https"), "{err}");
        let err = settings(serde_json::json!({
            "client_id": "a", "grant": "client-credentials", "token_url": "https://p/t",
            "scopes": ["read write"]
        }))
        .unwrap_err();
        assert!(err.contains("scope `read write`"), "{err}");
        let err = settings(serde_json::json!({
            "client_id": "a", "grant": "client-credentials", "token_url": "https://p/t", "scope_sep": ","
        }))
        .unwrap_err();
        assert!(err.contains("scope_sep"), "{err}");
        let cc = settings(serde_json::json!({
            "client_id": "a", "grant": "client-credentials", "token_url": "https://p/t"
        }))
        .unwrap();
        assert!(cc.needs_client_secret());
    }
}
