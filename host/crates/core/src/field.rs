//! An input that is wrong in one named field. The field is data — its path
//! in the API's JSON (`oauth.token_url`, `credentials.key`) — so each
//! surface can name it in its own words: the API shows the path, the
//! console the label of the form field, and nobody rewrites a message.

/// What is wrong with one field of an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct FieldError {
    /// The field's path in the API's JSON, e.g. `oauth.token_url`.
    pub field: &'static str,
    /// What is wrong, worded to follow the field's name: "is empty",
    /// "`ftp://x` must be http or https".
    pub problem: String,
}

impl FieldError {
    /// `field` is wrong because of `problem`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        FieldError {
            field,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_field_first() {
        let err = FieldError::new("oauth.token_url", "is required");
        assert_eq!(err.to_string(), "oauth.token_url is required");
        assert_eq!(err.field, "oauth.token_url");
    }
}
