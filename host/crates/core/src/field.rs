//! An input that is wrong in one named field. The field is data — its path
//! in the API's JSON (`oauth.token_url`, `credentials.key`) — so each
//! surface can name it in its own words: the API shows the path, the
//! console the label of the form field, and nobody rewrites a message.

/// What is wrong with one field of an input. Its message is the field's
/// path, then the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path in the API's JSON, e.g. `oauth.token_url`.
    pub field: &'static str,
    /// What is wrong, worded to follow the field's name: "is empty",
    /// "`ftp://x` must be http or https".
    pub problem: String,
    /// Whether the message shows the path in backticks.
    quoted: bool,
}

impl FieldError {
    /// `field` is wrong because of `problem`: "base_url `x` is not a URL".
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        FieldError {
            field,
            problem: problem.into(),
            quoted: false,
        }
    }

    /// The same, the path in backticks: "`kind` must be ...".
    pub fn quoted(field: &'static str, problem: impl Into<String>) -> Self {
        FieldError {
            quoted: true,
            ..FieldError::new(field, problem)
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.quoted {
            write!(f, "`{}` {}", self.field, self.problem)
        } else {
            write!(f, "{} {}", self.field, self.problem)
        }
    }
}

impl std::error::Error for FieldError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_field_first() {
        let err = FieldError::new("oauth.token_url", "is required");
        assert_eq!(err.to_string(), "oauth.token_url is required");
        assert_eq!(err.field, "oauth.token_url");
        let quoted = FieldError::quoted("kind", "is too long");
        assert_eq!(quoted.to_string(), "`kind` is too long");
        assert_eq!(quoted.problem, "is too long");
    }
}
