//! What only a backend that several hosts share offers: telling the other
//! hosts about a change that each keeps in memory (a deploy, the triggers,
//! the admin token), hearing theirs, and rate limits counted across all of
//! them. An embedded backend has one host and answers `None` to
//! [`crate::Backend::cluster`]; the host then limits in memory.

use async_trait::async_trait;

use crate::StoreError;

/// A change another host must act on to serve the same as this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A plugin was deployed, rolled back or deleted: reload its active version.
    Plugin(String),
    /// Triggers made through the API changed: rebuild the trigger index.
    Triggers,
    /// The admin token was rotated: the old one stops working everywhere.
    AdminToken,
    /// Announcements may have been missed (the listener reconnected):
    /// compare everything with the store.
    Resync,
}

impl Change {
    /// The change as the text of a notification.
    pub fn encode(&self) -> String {
        match self {
            Change::Plugin(name) => format!("plugin:{name}"),
            Change::Triggers => "triggers".to_owned(),
            Change::AdminToken => "admin-token".to_owned(),
            Change::Resync => "resync".to_owned(),
        }
    }

    /// The change a notification's text names; `None` for text this build
    /// does not know (a newer host's), which a listener treats as a resync.
    pub fn decode(text: &str) -> Option<Change> {
        match text {
            "triggers" => Some(Change::Triggers),
            "admin-token" => Some(Change::AdminToken),
            "resync" => Some(Change::Resync),
            _ => text
                .strip_prefix("plugin:")
                .filter(|name| !name.is_empty())
                .map(|name| Change::Plugin(name.to_owned())),
        }
    }
}

/// The changes other hosts announce, in the order they were made.
pub type Changes = tokio::sync::mpsc::Receiver<Change>;

/// What a rate limit answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateAnswer {
    /// Go ahead.
    Allowed,
    /// Past the allowance: try again in this many milliseconds.
    RetryAfterMs(u64),
}

/// The shared part of a backend several hosts open at once.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Tells every other host (not this one) about `change`. Best effort:
    /// a host that misses it catches up at its next resync.
    async fn announce(&self, change: &Change) -> Result<(), StoreError>;
    /// Starts hearing the other hosts' changes. The listener reconnects by
    /// itself and sends [`Change::Resync`] after each reconnect; it stops
    /// when the receiver is dropped.
    async fn listen(&self) -> Result<Changes, StoreError>;
    /// Takes one request from `key`'s allowance of `per_minute`, refilled
    /// evenly with a burst of a minute's worth (GCRA), counted over every host.
    async fn take_rate_token(
        &self,
        key: &str,
        now_ms: u64,
        per_minute: u32,
    ) -> Result<RateAnswer, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_back_as_written() {
        for change in [
            Change::Plugin("mailchimp-sync".into()),
            Change::Triggers,
            Change::AdminToken,
            Change::Resync,
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("plugin:"), None);
        assert_eq!(Change::decode("something-newer"), None);
    }
}
