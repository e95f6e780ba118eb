//! The error type handlers return.

use core::fmt;

use crate::http::HttpError;

/// A handler's error: a message that ends up in the execution record as a
/// `plugin-error`.
///
/// Anything that implements [`std::error::Error`] converts into it with `?`, and
/// [`Error::msg`] makes one from text.
///
/// ```
/// use junction_sdk::Error;
/// let err = Error::msg("campaign_id is missing");
/// assert_eq!(err.to_string(), "campaign_id is missing");
/// ```
pub struct Error {
    message: String,
}

impl Error {
    /// Makes an error from a message.
    ///
    /// ```
    /// let err = junction_sdk::Error::msg(format!("no list for campaign {}", "c1"));
    /// assert!(err.to_string().contains("c1"));
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
        }
    }

    /// Adds context in front of the message, like `anyhow`'s `context`.
    ///
    /// ```
    /// let err = junction_sdk::Error::msg("timed out").context("reading the campaign");
    /// assert_eq!(err.to_string(), "reading the campaign: timed out");
    /// ```
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error {
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::msg(format!("JSON: {err}"))
    }
}

impl From<HttpError> for Error {
    fn from(err: HttpError) -> Self {
        Error::msg(err)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error { message }
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::msg(message)
    }
}

/// `Result` with [`Error`] as its default error type.
///
/// ```
/// fn parse(text: &str) -> junction_sdk::Result<u32> {
///     text.parse::<u32>().map_err(junction_sdk::Error::msg)
/// }
/// assert!(parse("x").is_err());
/// ```
pub type Result<T, E = Error> = core::result::Result<T, E>;
