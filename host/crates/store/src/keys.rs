//! The master key's lifecycle. The key comes from `JUNCTION_MASTER_KEY` or
//! from the data directory's `master.key` (0600, created on first start).
//! The store keeps a check value sealed with it, so a start with a missing
//! or different key is refused instead of sealing new secrets under a
//! second key beside unreadable old ones.
//!
//! Rotation re-seals every secret under a new key and survives a crash at
//! any point by rolling forward: the new key is written to
//! `master.key.next` (fsynced) before anything is re-sealed; while that file
//! exists both keys are held, the new one sealing and both opening; each
//! table is re-sealed in a transaction, the check value last; only then is
//! `master.key.next` renamed over `master.key`. A start that finds
//! `master.key.next` finishes the rotation. With keys from the environment
//! the operator rotates by moving the old key to
//! `JUNCTION_PREVIOUS_MASTER_KEY` and setting a new `JUNCTION_MASTER_KEY`;
//! the next start re-seals.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

use crate::StoreError;
use crate::backend::Backend;
use crate::crypto::{
    Cipher, CryptoError, KEY_FILE, MASTER_KEY_ENV, NEXT_KEY_FILE, PREVIOUS_KEY_ENV, key_id,
    parse_key, sealed_key_id,
};
use crate::meta::{SealedArea, keys::KEY_CHECK};
use junction_core::Secret;

const CHECK_TEXT: &str = "junction master key check";
const CHECK_AAD: &str = "meta/master_key_check";

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `JUNCTION_MASTER_KEY` (and `JUNCTION_PREVIOUS_MASTER_KEY`).
    Environment,
    /// `master.key` in the data directory.
    File(PathBuf),
}

/// The keys as configured.
pub struct KeyConfig {
    /// `JUNCTION_MASTER_KEY`, when set.
    pub current: Option<String>,
    /// `JUNCTION_PREVIOUS_MASTER_KEY`, when set.
    pub previous: Option<String>,
}

impl KeyConfig {
    /// From the environment.
    pub fn from_env() -> Self {
        KeyConfig {
            current: std::env::var(MASTER_KEY_ENV).ok(),
            previous: std::env::var(PREVIOUS_KEY_ENV).ok(),
        }
    }

    /// No keys configured: the key file is used.
    pub fn file() -> Self {
        KeyConfig {
            current: None,
            previous: None,
        }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new key's id.
    pub key_id: String,
    /// The key id it replaced.
    pub previous_key_id: String,
    /// Sealed values re-sealed.
    pub resealed: usize,
}

pub(crate) fn key_file_error(path: &Path) -> impl Fn(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::KeyFile {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn read_key_file(path: &Path) -> Result<Option<[u8; 32]>, CryptoError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path)
                .map_err(key_file_error(path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the key file is readable by others; chmod 600 it");
            }
            Ok(Some(parse_key(&text)?))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(key_file_error(path)(err)),
    }
}

/// Writes a new key file (0600), durably; it must not exist yet.
pub(crate) fn write_key_file(path: &Path, key: &[u8; 32]) -> Result<(), CryptoError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(key_file_error(path))?;
    file.write_all(B64.encode(key).as_bytes())
        .map_err(key_file_error(path))?;
    file.sync_all().map_err(key_file_error(path))?;
    sync_dir(path)
}

pub(crate) fn sync_dir(path: &Path) -> Result<(), CryptoError> {
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(key_file_error(dir))?;
    }
    Ok(())
}

pub(crate) fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

/// Whether a store written before check values holds any sealed value.
async fn holds_secrets(backend: &dyn Backend) -> Result<bool, StoreError> {
    for area in [
        SealedArea::ServiceSecrets,
        SealedArea::Connections,
        SealedArea::HookSecrets,
    ] {
        if !backend.sealed_values(area).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The keys as found: from the environment, or the key files (created on
/// a first start). Reads files, so it runs on the blocking pool.
fn configured_keys(
    data_dir: &Path,
    config: KeyConfig,
    check: Option<&str>,
    sealed_before: bool,
) -> Result<(Cipher, KeySource), StoreError> {
    // The key file's home, private to the owner, even when the backend
    // keeps its data elsewhere.
    crate::create_private_dir(data_dir)?;
    Ok(match config.current {
        Some(text) => {
            let current = parse_key(&text)?;
            let previous = config
                .previous
                .as_deref()
                .map(parse_key)
                .transpose()?
                .into_iter()
                .collect::<Vec<_>>();
            (
                Cipher::with_keys(&current, &previous),
                KeySource::Environment,
            )
        }
        None => {
            let path = data_dir.join(KEY_FILE);
            let next = read_key_file(&data_dir.join(NEXT_KEY_FILE))?;
            let current = match read_key_file(&path)? {
                Some(key) => Some(key),
                None if sealed_before && next.is_none() => {
                    return Err(StoreError::MissingKey {
                        path: path.display().to_string(),
                        key_id: check
                            .and_then(sealed_key_id)
                            .unwrap_or("unknown")
                            .to_owned(),
                    });
                }
                None => None,
            };
            let cipher = match (next, current) {
                (Some(next), Some(current)) => Cipher::with_keys(&next, &[current]),
                (Some(next), None) => Cipher::from_key(&next),
                (None, Some(current)) => Cipher::from_key(&current),
                (None, None) => {
                    let key = random_key();
                    write_key_file(&path, &key)?;
                    Cipher::from_key(&key)
                }
            };
            (cipher, KeySource::File(path))
        }
    })
}

/// Loads the keys for the store in `data_dir` and checks them against what
/// `backend` holds.
pub(crate) async fn load(
    data_dir: &Path,
    backend: &dyn Backend,
    config: KeyConfig,
) -> Result<(Cipher, KeySource), StoreError> {
    let check = backend.meta(KEY_CHECK).await?;
    let sealed_before = check.is_some() || holds_secrets(backend).await?;
    let (cipher, source) = {
        let (dir, check) = (data_dir.to_owned(), check.clone());
        tokio::task::spawn_blocking(move || {
            configured_keys(&dir, config, check.as_deref(), sealed_before)
        })
        .await??
    };
    match &check {
        Some(sealed) => {
            let sealed_with = sealed_key_id(sealed).unwrap_or("unknown").to_owned();
            if !cipher.knows(&sealed_with) {
                return Err(StoreError::WrongKey {
                    sealed_with,
                    configured: cipher.key_ids().join(", "),
                });
            }
            let opened = cipher
                .open(sealed, CHECK_AAD)
                .map_err(|_| StoreError::WrongKey {
                    sealed_with: sealed_with.clone(),
                    configured: cipher.key_ids().join(", "),
                })?;
            if opened.expose() != CHECK_TEXT {
                return Err(StoreError::Corrupt(
                    format!("meta/{KEY_CHECK}"),
                    "the check value opened to something else".into(),
                ));
            }
        }
        None if sealed_before => {
            // A store from before check values: the key must open what is there.
            if let Some(problem) = first_unopenable(backend, &cipher).await? {
                return Err(StoreError::WrongKey {
                    sealed_with: problem,
                    configured: cipher.key_ids().join(", "),
                });
            }
        }
        None => {}
    }
    Ok((cipher, source))
}

/// The key id of the first sealed value `cipher` cannot open, if any.
async fn first_unopenable(
    backend: &dyn Backend,
    cipher: &Cipher,
) -> Result<Option<String>, StoreError> {
    for area in [SealedArea::ServiceSecrets, SealedArea::HookSecrets] {
        for (slot, sealed) in backend.sealed_values(area).await? {
            if cipher.open(&sealed, &slot.aad()).is_err() {
                return Ok(Some(sealed_key_id(&sealed).unwrap_or("unknown").to_owned()));
            }
        }
    }
    Ok(None)
}

/// Writes the check value under `cipher`'s primary key.
pub(crate) async fn write_check(backend: &dyn Backend, cipher: &Cipher) -> Result<(), StoreError> {
    let sealed = cipher.seal(&Secret::new(CHECK_TEXT.to_owned()), CHECK_AAD)?;
    backend.set_meta(KEY_CHECK, &sealed).await
}

/// Whether a rotation is pending: the check value is under another key, or
/// `master.key.next` exists.
pub(crate) async fn rotation_pending(
    backend: &dyn Backend,
    cipher: &Cipher,
    source: &KeySource,
    data_dir: &Path,
) -> Result<(bool, bool), StoreError> {
    let check = backend.meta(KEY_CHECK).await?;
    let stale_check = match &check {
        Some(sealed) => sealed_key_id(sealed) != Some(cipher.key_id()),
        None => false,
    };
    let next = data_dir.join(NEXT_KEY_FILE);
    let next_exists = matches!(source, KeySource::File(_))
        && tokio::task::spawn_blocking(move || next.exists()).await?;
    Ok((stale_check || next_exists, check.is_some()))
}

/// Renames `master.key.next` over `master.key`: the rotation is complete.
pub(crate) fn finish_key_file(source: &KeySource, data_dir: &Path) -> Result<(), StoreError> {
    let KeySource::File(path) = source else {
        return Ok(());
    };
    let next = data_dir.join(NEXT_KEY_FILE);
    if next.exists() {
        fs::rename(&next, path).map_err(key_file_error(path))?;
        sync_dir(path)?;
    }
    Ok(())
}

/// Re-seals every secret under the primary key of `current()`, area by
/// area, the check value last; passes repeat until none is left under
/// another key (a writer may have sealed with the old key just before the
/// switch).
pub(crate) async fn reseal_everything(
    backend: &dyn Backend,
    current: &(dyn Fn() -> Arc<Cipher> + Send + Sync),
) -> Result<usize, StoreError> {
    let mut total = 0;
    for _ in 0..8 {
        let mut pass = 0;
        for area in SealedArea::ALL {
            let cipher = current();
            pass += backend
                .reseal(
                    area,
                    Arc::new(move |slot, sealed| {
                        if sealed_key_id(sealed) == Some(cipher.key_id()) {
                            return Ok(None);
                        }
                        let aad = slot.aad();
                        Ok(Some(cipher.seal(&cipher.open(sealed, &aad)?, &aad)?))
                    }),
                )
                .await?;
        }
        total += pass;
        if pass == 0 {
            break;
        }
    }
    write_check(backend, &current()).await?;
    Ok(total)
}

/// The answer to a rotation asked for while the key comes from the
/// environment.
pub(crate) fn environment_rotation() -> StoreError {
    StoreError::Invalid(format!(
        "the master key comes from {MASTER_KEY_ENV}: to rotate it, move it to {PREVIOUS_KEY_ENV}, set {MASTER_KEY_ENV} to a new key (32 bytes, base64) and restart; the start re-seals every secret"
    ))
}

/// Why the key file is not rotated in place on a shared backend: the other
/// hosts would keep the old key and stop opening what the new one sealed.
pub(crate) fn shared_rotation() -> StoreError {
    StoreError::Invalid(format!(
        "several hosts share this store, and each holds the master key: stop them all, give every host the old key as {PREVIOUS_KEY_ENV} and a new one as {MASTER_KEY_ENV}, and start them again; the first start re-seals every secret under the new key"
    ))
}

/// Starts a rotation of the key file: writes `master.key.next` with a new
/// key (dropping one an unfinished rotation left) and returns the keys to
/// seal with from now on, with the new and the previous key's ids.
pub(crate) fn begin_rotation(
    path: &Path,
    data_dir: &Path,
    current_id: &str,
) -> Result<(Cipher, String, String), StoreError> {
    let current = read_key_file(path)?.ok_or_else(|| StoreError::MissingKey {
        path: path.display().to_string(),
        key_id: current_id.to_owned(),
    })?;
    let next_path = data_dir.join(NEXT_KEY_FILE);
    if next_path.exists() {
        fs::remove_file(&next_path).map_err(key_file_error(&next_path))?;
    }
    let key = random_key();
    write_key_file(&next_path, &key)?;
    Ok((
        Cipher::with_keys(&key, &[current]),
        key_id(&key),
        key_id(&current),
    ))
}
