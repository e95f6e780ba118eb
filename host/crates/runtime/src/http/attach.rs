//! The connection's credential on the wire and out of every response: how
//! it is attached ([`Attach`]), every form in which it can come back, and
//! the scrubbing that replaces those forms with [`REDACTED`] before the
//! plugin sees a response.

use reqwest::header::{HeaderName, HeaderValue};

use super::answer::Answer;
use crate::bindings::junction::plugin::http::Error;
use junction_core::{Credentials, Placement, Secret};

/// What replaces the attached credential wherever a response repeats it.
pub(crate) const REDACTED: &str = "[REDACTED]";
/// Credentials shorter than this are not searched for in responses: every
/// short string occurs in some body, and no real credential is this short.
const MIN_SCRUBBED: usize = 6;

/// How the connection's credential goes on each request.
pub(super) enum Attach {
    Header(HeaderName, HeaderValue),
    Query(String, Secret),
    Basic(String, Secret),
}

/// The credential of `link` as it goes on the wire.
pub(super) fn attachment(
    link: &str,
    credentials: &Credentials<Secret>,
    placement: &Placement,
) -> Result<Attach, Error> {
    let secret = match credentials {
        Credentials::None => {
            return Err(Error::ConnectionUnavailable(format!(
                "connection `{link}` has no credentials yet; connect it"
            )));
        }
        Credentials::Basic { username, password } => {
            return Ok(Attach::Basic(username.clone(), password.clone()));
        }
        Credentials::ApiKey { key } => key,
        Credentials::Bearer { token } => token,
        Credentials::Oauth2 { access_token, .. } => access_token,
    };
    Ok(match placement {
        Placement::Header { name, template } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::ConnectionUnavailable(format!(
                    "the service of `{link}` names an invalid credential header"
                ))
            })?;
            let mut value = HeaderValue::from_str(&template.replace("{token}", secret.expose()))
                .map_err(|_| {
                    Error::ConnectionUnavailable(format!(
                        "the credential of `{link}` cannot be sent in a header"
                    ))
                })?;
            value.set_sensitive(true);
            Attach::Header(name, value)
        }
        Placement::Query { name } => Attach::Query(name.clone(), secret.clone()),
        Placement::Basic { username } => Attach::Basic(
            username.clone().unwrap_or_else(|| "junction".to_owned()),
            secret.clone(),
        ),
    })
}

/// The forms in which the credential `attach` puts on the wire can come
/// back in a response: the secret itself, the whole header value, the Basic
/// base64 form, and their URL- and JSON-escaped spellings.
pub(super) fn credential_forms(attach: &Attach) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut forms: Vec<String> = Vec::new();
    match attach {
        Attach::Header(_, value) => {
            let whole = String::from_utf8_lossy(value.as_bytes()).into_owned();
            // `Bearer {token}`, `Zoho-oauthtoken {token}`: the token is the last word.
            if let Some(token) = whole.rsplit(' ').next() {
                forms.push(token.to_owned());
            }
            forms.push(whole);
        }
        Attach::Query(_, secret) => forms.push(secret.expose().to_owned()),
        Attach::Basic(user, password) => {
            forms.push(password.expose().to_owned());
            forms.push(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose())),
            );
        }
    }
    let mut all: Vec<Vec<u8>> = Vec::new();
    for form in forms {
        let encoded: String = url::form_urlencoded::byte_serialize(form.as_bytes()).collect();
        let json = serde_json::to_string(&form).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        for variant in [form, encoded, json] {
            if variant.len() >= MIN_SCRUBBED && !all.iter().any(|f| f == variant.as_bytes()) {
                all.push(variant.into_bytes());
            }
        }
    }
    all
}

/// Replaces every form of the credential in `response`'s headers and body
/// with [`REDACTED`]; returns how many replacements were made.
pub(super) fn scrub_response(response: &mut Answer, forms: &[Vec<u8>]) -> u32 {
    if forms.is_empty() {
        return 0;
    }
    let Ok(matcher) = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(forms)
    else {
        // The forms are a handful of short strings; building cannot fail
        // in practice, and if it did the plugin must not get the body.
        response.body.clear();
        response.headers.clear();
        return 1;
    };
    let mut count = 0u32;
    let mut replace = |bytes: &[u8]| -> Option<Vec<u8>> {
        let found = matcher.find_iter(bytes).count();
        if found == 0 {
            return None;
        }
        count = count.saturating_add(found as u32);
        let replacements = vec![REDACTED.as_bytes(); forms.len()];
        Some(matcher.replace_all_bytes(bytes, &replacements))
    };
    // The block is scrubbed whole: a credential is gone from names and
    // values alike. `[REDACTED]` holds no `\n`, so lines stay lines.
    if let Some(clean) = replace(response.headers.as_bytes()) {
        response.headers = String::from_utf8_lossy(&clean).into_owned();
    }
    if let Some(clean) = replace(&response.body) {
        response.body = clean;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every form of an attached credential is gone from what the plugin gets.
        #[test]
        fn scrubbing_removes_every_form_of_the_credential(token in "[A-Za-z0-9+/=_.-]{8,40}", noise in "[a-z ]{0,30}") {
            let attach = Attach::Header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
            let forms = credential_forms(&attach);
            let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            let mut response = Answer {
                status: 200,
                headers: format!("x-echo: Bearer {token}\nx-other: {noise}\n"),
                body: format!("{noise}{token}{noise}{encoded}{{\"t\":\"{token}\"}}").into_bytes(),
            };
            let count = scrub_response(&mut response, &forms);
            let body = String::from_utf8_lossy(&response.body).into_owned();
            proptest::prop_assert!(!body.contains(&token), "{}", body);
            proptest::prop_assert!(!response.headers.contains(&token), "{}", response.headers);
            proptest::prop_assert_eq!(response.headers.lines().count(), 2);
            proptest::prop_assert!(count >= 3, "{}", count);
        }
    }
}
