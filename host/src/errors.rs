//! Helpers for reporting errors from other crates in words a person can act
//! on, shared by the CLI's HTTP client and the OAuth client.

/// The innermost cause of `err`, which says what actually failed (connection
/// refused, timed out, ...) where the outer layers only say "request failed".
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
