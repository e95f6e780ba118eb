//! Encryption of secret fields at rest: XChaCha20-Poly1305 with a key id
//! prefix (for rotation) and AAD that binds each ciphertext to its table, row
//! and field, so a sealed value copied to another row does not open.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::secret::Secret;

/// Prefix of every sealed value; the version of the format.
const FORMAT: &str = "jx1";
const NONCE_LEN: usize = 24;
/// Environment variable holding the master key (base64 or hex of 32 bytes).
pub const MASTER_KEY_ENV: &str = "JUNCTION_MASTER_KEY";
/// Key file created in the data directory when no key is configured.
pub const KEY_FILE: &str = "master.key";

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

/// The keys that seal and open secret fields.
pub struct Cipher {
    key_id: String,
    aead: XChaCha20Poly1305,
}

impl Cipher {
    /// Makes a cipher from raw key bytes.
    pub fn from_key(key: &[u8; 32]) -> Self {
        let digest = Sha256::new_with_prefix(b"junction key id")
            .chain_update(key)
            .finalize();
        Cipher {
            key_id: hex::encode(&digest[..4]),
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// The key from `JUNCTION_MASTER_KEY`, else from the data directory's key
    /// file, created (0600) on first use.
    pub fn load(data_dir: &Path) -> Result<Self, CryptoError> {
        Self::load_with(data_dir, std::env::var(MASTER_KEY_ENV).ok())
    }

    /// The key given as text (what `JUNCTION_MASTER_KEY` holds), else the
    /// data directory's key file, created (0600) on first use.
    pub fn load_with(data_dir: &Path, configured: Option<String>) -> Result<Self, CryptoError> {
        if let Some(text) = configured {
            return Ok(Self::from_key(&parse_key(&text)?));
        }
        let path = data_dir.join(KEY_FILE);
        let io_err = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let mode = fs::metadata(&path).map_err(io_err)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "the key file is readable by others; chmod 600 it");
                }
                Ok(Self::from_key(&parse_key(&text)?))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_err)?;
                file.write_all(B64.encode(key).as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Self::from_key(&key))
            }
            Err(err) => Err(io_err(err)),
        }
    }

    /// The id written in front of every value this cipher seals.
    pub fn key_id(&self) -> &str {
        &self.key_id
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
            .aead
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::Encrypt)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{FORMAT}:{}:{}", self.key_id, B64.encode(blob)))
    }

    /// Opens a value sealed for the place named by `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Secret, CryptoError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        if key_id != self.key_id {
            return Err(CryptoError::UnknownKey(key_id.to_owned()));
        }
        let blob = B64.decode(blob).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plain = self
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

fn parse_key(text: &str) -> Result<[u8; 32], CryptoError> {
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

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        // The key file is used whatever the environment says.
        let first = Cipher::load_with(dir.path(), None).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = Cipher::load_with(dir.path(), None).unwrap();
        assert_eq!(first.key_id(), second.key_id());
        let configured = Cipher::load_with(dir.path(), Some("11".repeat(32))).unwrap();
        assert_ne!(configured.key_id(), first.key_id(), "a configured key wins");
    }
}
