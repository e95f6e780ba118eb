//! A plugin's key-value namespace as every layer speaks of it: one write,
//! its outcome, the quota it is checked against, and the fixed bounds of
//! keys and values.

/// The longest kv key.
pub const MAX_KV_KEY: usize = 512;
/// The largest kv value.
pub const MAX_KV_VALUE: usize = 1024 * 1024;

/// How much a plugin may keep in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    /// Bytes of keys plus values.
    pub bytes: u64,
    /// Keys.
    pub keys: u64,
}

impl KvQuota {
    /// No limit (tools and tests that write outside any plugin's budget).
    pub const UNLIMITED: KvQuota = KvQuota {
        bytes: u64::MAX,
        keys: u64::MAX,
    };
}

/// What a namespace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvUsage {
    /// Bytes of keys plus values.
    pub bytes: u64,
    /// Keys.
    pub keys: u64,
}

/// One change to a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWrite {
    /// Store `value` under `key`, within `quota`.
    Set {
        plugin: String,
        key: String,
        value: Vec<u8>,
        quota: KvQuota,
    },
    /// Remove `key`.
    Delete { plugin: String, key: String },
}

/// Whether a write was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOutcome {
    /// Applied.
    Written,
    /// Not applied: the key or value is too large, or the write would pass
    /// the quota (the message names which).
    Refused(String),
}

/// Checks a key and value against the fixed bounds.
pub fn validate_kv(key: &str, value: &[u8]) -> Result<(), KvInvalid> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(KvInvalid::KeyLength(key.len()));
    }
    if value.len() > MAX_KV_VALUE {
        return Err(KvInvalid::ValueTooLarge(value.len()));
    }
    Ok(())
}

/// A kv key or value past the fixed bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvInvalid {
    #[error("kv keys must be 1 to {MAX_KV_KEY} bytes, this one is {0}")]
    KeyLength(usize),
    #[error("kv values must be at most {MAX_KV_VALUE} bytes, this one is {0}")]
    ValueTooLarge(usize),
}
