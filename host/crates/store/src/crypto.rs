//! Encryption of secret fields at rest: XChaCha20-Poly1305 with a key id
//! prefix (for rotation) and AAD that binds each ciphertext to its table, row
//! and field, so a sealed value copied to another row does not open. A
//! [`Cipher`] seals with its primary key and opens with any key it holds, so
//! values sealed before a rotation stay readable until they are re-sealed
//! (the lifecycle of keys is in `keys`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use junction_core::Secret;

/// Prefix of every sealed value; the version of the format.
const FORMAT: &str = "jx1";
const NONCE_LEN: usize = 24;
/// Environment variable holding the master key (base64 or hex of 32 bytes).
pub const MASTER_KEY_ENV: &str = "JUNCTION_MASTER_KEY";
/// Key file created in the data directory when no key is configured.
pub const KEY_FILE: &str = "master.key";
/// The key a rotation moves to, until it completes.
pub const NEXT_KEY_FILE: &str = "master.key.next";
/// Environment variable holding the key a rotation moves away from, when
/// the key comes from the environment.
pub const PREVIOUS_KEY_ENV: &str = "JUNCTION_PREVIOUS_MASTER_KEY";

/// What can go wrong with keys and sealed values.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{MASTER_KEY_ENV} must be 32 bytes in base64 or 64 hex digits")]
    BadKeyFormat,
    #[error("key file {path}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("a secret was sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("a sealed secret is malformed")]
    Malformed,
    #[error("a secret failed authentication: wrong key, or the value was moved or altered")]
    Authentication,
    #[error("a secret could not be encrypted")]
    Encrypt,
}

/// One key and its id.
struct Key {
    id: String,
    aead: XChaCha20Poly1305,
}

impl Key {
    fn new(key: &[u8; 32]) -> Self {
        Key {
            id: key_id(key),
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }
}

/// The id written in front of every value a key seals: a digest of the
/// key, never the key.
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::new_with_prefix(b"junction key id")
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..4])
}

/// The keys that seal and open secret fields.
pub struct Cipher {
    primary: Key,
    /// Keys that only open: the one being rotated away from.
    others: Vec<Key>,
}

impl Cipher {
    /// Makes a cipher from raw key bytes.
    pub fn from_key(key: &[u8; 32]) -> Self {
        Cipher {
            primary: Key::new(key),
            others: Vec::new(),
        }
    }

    /// Seals with `primary`, opens with it and with `others`.
    pub fn with_keys(primary: &[u8; 32], others: &[[u8; 32]]) -> Self {
        let primary = Key::new(primary);
        let others = others
            .iter()
            .map(Key::new)
            .filter(|k| k.id != primary.id)
            .collect();
        Cipher { primary, others }
    }

    /// Whether a value sealed with key `id` can be opened.
    pub fn knows(&self, id: &str) -> bool {
        self.primary.id == id || self.others.iter().any(|k| k.id == id)
    }

    /// The ids of every key held, primary first.
    pub fn key_ids(&self) -> Vec<String> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .map(|k| k.id.clone())
            .collect()
    }

    /// The id written in front of every value this cipher seals.
    pub fn key_id(&self) -> &str {
        &self.primary.id
    }

    /// Seals `secret` for the place named by `aad` (`table/row/field`).
    pub fn seal(&self, secret: &Secret, aad: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.expose().as_bytes(),
            aad: aad.as_bytes(),
        };
        let ciphertext = self
            .primary
            .aead
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::Encrypt)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{FORMAT}:{}:{}", self.primary.id, B64.encode(blob)))
    }

    /// Opens a value sealed for the place named by `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Secret, CryptoError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let blob = B64.decode(blob).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plain = key
            .aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| CryptoError::Malformed)
    }
}

/// The key id of a sealed value, without opening it.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.splitn(3, ':');
    match (parts.next(), parts.next()) {
        (Some(FORMAT), Some(id)) => Some(id),
        _ => None,
    }
}

pub(super) fn parse_key(text: &str) -> Result<[u8; 32], CryptoError> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|_| CryptoError::BadKeyFormat)?
    } else {
        B64.decode(text).map_err(|_| CryptoError::BadKeyFormat)?
    };
    bytes.try_into().map_err(|_| CryptoError::BadKeyFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place() {
        let cipher = Cipher::from_key(&[7u8; 32]);
        let secret = Secret::new("tok-123".to_owned());
        let sealed = cipher.seal(&secret, "connections/a/api_key").unwrap();
        assert!(!sealed.contains("tok-123"));
        assert!(sealed.starts_with(&format!("jx1:{}:", cipher.key_id())));
        let opened = cipher.open(&sealed, "connections/a/api_key").unwrap();
        assert_eq!(opened.expose(), "tok-123");
        assert!(matches!(
            cipher.open(&sealed, "connections/b/api_key"),
            Err(CryptoError::Authentication)
        ));
        let other = Cipher::from_key(&[8u8; 32]);
        assert!(matches!(
            other.open(&sealed, "connections/a/api_key"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_parse_from_hex_and_base64() {
        let hex_key = "00".repeat(32);
        assert_eq!(parse_key(&hex_key).unwrap(), [0u8; 32]);
        assert_eq!(parse_key(&B64.encode([1u8; 32])).unwrap(), [1u8; 32]);
        assert!(parse_key("short").is_err());
    }
}
