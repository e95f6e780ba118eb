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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::crypto::{
    Cipher, CryptoError, KEY_FILE, MASTER_KEY_ENV, NEXT_KEY_FILE, PREVIOUS_KEY_ENV, key_id,
    parse_key, sealed_key_id,
};
use super::{Secret, Store, StoreError, db};

/// Meta row holding the check value.
const KEY_CHECK: &str = "master_key_check";
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

fn key_file_error(path: &Path) -> impl Fn(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::KeyFile {
        path: path.display().to_string(),
        source,
    }
}

fn read_key_file(path: &Path) -> Result<Option<[u8; 32]>, CryptoError> {
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
fn write_key_file(path: &Path, key: &[u8; 32]) -> Result<(), CryptoError> {
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

fn sync_dir(path: &Path) -> Result<(), CryptoError> {
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(key_file_error(dir))?;
    }
    Ok(())
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

/// The check value's key id, when the store has one.
fn stored_check(database: &redb::Database) -> Result<Option<String>, StoreError> {
    let txn = database.begin_read().map_err(db)?;
    let meta = match txn.open_table(super::META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(db(err)),
    };
    Ok(meta
        .get(KEY_CHECK)
        .map_err(db)?
        .map(|v| v.value().to_owned()))
}

/// Whether a store written before check values holds any sealed value.
fn holds_secrets(database: &redb::Database) -> Result<bool, StoreError> {
    let txn = database.begin_read().map_err(db)?;
    macro_rules! non_empty {
        ($table:expr) => {
            match txn.open_table($table) {
                Ok(table) => table.len().map_err(db)? > 0,
                Err(redb::TableError::TableDoesNotExist(_)) => false,
                Err(err) => return Err(db(err)),
            }
        };
    }
    Ok(non_empty!(super::SERVICE_SECRETS)
        || non_empty!(super::CONNECTIONS)
        || non_empty!(super::events::HOOK_SECRETS))
}

/// Loads the keys for the store in `data_dir` and checks them against it.
pub(super) fn load(
    data_dir: &Path,
    database: &redb::Database,
    config: KeyConfig,
) -> Result<(Cipher, KeySource), StoreError> {
    let check = stored_check(database)?;
    let sealed_before = check.is_some() || holds_secrets(database)?;
    let (cipher, source) = match config.current {
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
                            .as_deref()
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
            if let Some(problem) = first_unopenable(database, &cipher)? {
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

/// A table of sealed strings keyed by name, and the AAD of a row's value.
type SealedTable = (
    redb::TableDefinition<'static, &'static str, &'static str>,
    fn(&str) -> String,
);

/// The key id of the first sealed value `cipher` cannot open, if any.
fn first_unopenable(
    database: &redb::Database,
    cipher: &Cipher,
) -> Result<Option<String>, StoreError> {
    let txn = database.begin_read().map_err(db)?;
    let tables: [SealedTable; 2] = [
        (super::SERVICE_SECRETS, |name| {
            format!("services/{name}/client_secret")
        }),
        (super::events::HOOK_SECRETS, |key| format!("hooks/{key}")),
    ];
    for (definition, aad) in tables {
        let Ok(table) = txn.open_table(definition) else {
            continue;
        };
        for row in table.iter().map_err(db)? {
            let (key, sealed) = row.map_err(db)?;
            if cipher.open(sealed.value(), &aad(key.value())).is_err() {
                return Ok(Some(
                    sealed_key_id(sealed.value())
                        .unwrap_or("unknown")
                        .to_owned(),
                ));
            }
        }
    }
    Ok(None)
}

impl Store {
    /// After the keys are loaded: finishes a rotation that a crash (or a
    /// new environment key) left open, and writes the check value.
    pub(super) fn settle_keys(&self) -> Result<(), StoreError> {
        let cipher = self.cipher();
        let check = stored_check(&self.db)?;
        let pending = match &check {
            Some(sealed) => sealed_key_id(sealed) != Some(cipher.key_id()),
            None => false,
        } || (matches!(self.key_source, KeySource::File(_))
            && self.data_dir.join(NEXT_KEY_FILE).exists());
        if pending {
            let resealed = self.reseal_everything()?;
            tracing::info!(
                resealed,
                key_id = cipher.key_id(),
                "finished a master key rotation"
            );
        } else if check.is_none() {
            let txn = self.db.begin_write().map_err(db)?;
            write_check(&txn, &cipher)?;
            txn.commit().map_err(db)?;
        }
        self.finish_key_file()
    }

    /// Renames `master.key.next` over `master.key`: the rotation is complete.
    fn finish_key_file(&self) -> Result<(), StoreError> {
        let KeySource::File(path) = &self.key_source else {
            return Ok(());
        };
        let next = self.data_dir.join(NEXT_KEY_FILE);
        if next.exists() {
            fs::rename(&next, path).map_err(key_file_error(path))?;
            sync_dir(path)?;
        }
        Ok(())
    }

    /// Re-seals every secret under the primary key, table by table, the
    /// check value last; passes repeat until none is left under another key
    /// (a writer may have sealed with the old key just before the switch).
    fn reseal_everything(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        for _ in 0..8 {
            let cipher = self.cipher();
            let mut pass = 0;
            for table in Resealed::ALL {
                let txn = self.db.begin_write().map_err(db)?;
                pass += reseal_table(&txn, &cipher, table)?;
                txn.commit().map_err(db)?;
            }
            total += pass;
            if pass == 0 {
                break;
            }
        }
        let txn = self.db.begin_write().map_err(db)?;
        write_check(&txn, &self.cipher())?;
        txn.commit().map_err(db)?;
        Ok(total)
    }

    /// Where the master key comes from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// Rotates the master key: a new key seals every secret, crash-safe
    /// (see the module's doc). Only for the key file; with a key from the
    /// environment the answer says how to rotate it.
    pub fn rotate_key(&self) -> Result<Rotation, StoreError> {
        let _one = self
            .rotation
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let KeySource::File(path) = &self.key_source else {
            return Err(StoreError::Invalid(format!(
                "the master key comes from {MASTER_KEY_ENV}: to rotate it, move it to {PREVIOUS_KEY_ENV}, set {MASTER_KEY_ENV} to a new key (32 bytes, base64) and restart; the start re-seals every secret"
            )));
        };
        let current = read_key_file(path)?.ok_or_else(|| StoreError::MissingKey {
            path: path.display().to_string(),
            key_id: self.cipher().key_id().to_owned(),
        })?;
        let next_path = self.data_dir.join(NEXT_KEY_FILE);
        if next_path.exists() {
            // A rotation that did not finish: finish it first.
            fs::remove_file(&next_path).map_err(key_file_error(&next_path))?;
        }
        let key = random_key();
        write_key_file(&next_path, &key)?;
        let previous_key_id = key_id(&current);
        self.set_cipher(Cipher::with_keys(&key, &[current]));
        let resealed = self.reseal_everything()?;
        self.finish_key_file()?;
        tracing::info!(resealed, key_id = %key_id(&key), %previous_key_id, "master key rotated");
        Ok(Rotation {
            key_id: key_id(&key),
            previous_key_id,
            resealed,
        })
    }
}

fn write_check(txn: &WriteTransaction, cipher: &Cipher) -> Result<(), StoreError> {
    let sealed = cipher.seal(&Secret::new(CHECK_TEXT.to_owned()), CHECK_AAD)?;
    let mut meta = txn.open_table(super::META).map_err(db)?;
    meta.insert(KEY_CHECK, sealed.as_str()).map_err(db)?;
    Ok(())
}

/// The tables that hold sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resealed {
    ServiceSecrets,
    Connections,
    HookSecrets,
    Authorizations,
    Artifacts,
}

impl Resealed {
    pub(super) const ALL: [Resealed; 5] = [
        Resealed::ServiceSecrets,
        Resealed::Connections,
        Resealed::HookSecrets,
        Resealed::Authorizations,
        Resealed::Artifacts,
    ];
}

/// Whether `sealed` needs re-sealing under `cipher`'s primary key.
fn stale(cipher: &Cipher, sealed: &str) -> bool {
    sealed_key_id(sealed) != Some(cipher.key_id())
}

/// Re-seals the stale values of one table inside `txn`; returns how many.
pub(super) fn reseal_table(
    txn: &WriteTransaction,
    cipher: &Cipher,
    which: Resealed,
) -> Result<usize, StoreError> {
    let reseal = |sealed: &str, aad: &str| -> Result<String, StoreError> {
        Ok(cipher.seal(&cipher.open(sealed, aad)?, aad)?)
    };
    let mut count = 0;
    match which {
        Resealed::ServiceSecrets | Resealed::HookSecrets => {
            let (definition, prefix) = if which == Resealed::ServiceSecrets {
                (super::SERVICE_SECRETS, "services/")
            } else {
                (super::events::HOOK_SECRETS, "hooks/")
            };
            let mut table = txn.open_table(definition).map_err(db)?;
            let mut updates = Vec::new();
            for row in table.iter().map_err(db)? {
                let (key, sealed) = row.map_err(db)?;
                if stale(cipher, sealed.value()) {
                    let aad = if which == Resealed::ServiceSecrets {
                        format!("{prefix}{}/client_secret", key.value())
                    } else {
                        format!("{prefix}{}", key.value())
                    };
                    updates.push((key.value().to_owned(), reseal(sealed.value(), &aad)?));
                }
            }
            for (key, sealed) in &updates {
                table.insert(key.as_str(), sealed.as_str()).map_err(db)?;
            }
            count += updates.len();
        }
        Resealed::Connections => {
            let mut table = txn.open_table(super::CONNECTIONS).map_err(db)?;
            let mut updates = Vec::new();
            for row in table.iter().map_err(db)? {
                let (link, bytes) = row.map_err(db)?;
                let link = link.value().to_owned();
                let mut connection: super::Connection<String> =
                    serde_json::from_slice(bytes.value()).map_err(|e| {
                        StoreError::Corrupt(format!("connections/{link}"), e.to_string())
                    })?;
                let mut changed = 0;
                connection.credentials =
                    connection.credentials.try_map(|field, sealed: String| {
                        if stale(cipher, &sealed) {
                            changed += 1;
                            reseal(&sealed, &format!("connections/{link}/{field}"))
                        } else {
                            Ok(sealed)
                        }
                    })?;
                if changed > 0 {
                    let bytes = serde_json::to_vec(&connection).map_err(|e| {
                        StoreError::Corrupt(format!("connections/{link}"), e.to_string())
                    })?;
                    updates.push((link, bytes));
                    count += changed;
                }
            }
            for (link, bytes) in &updates {
                table.insert(link.as_str(), bytes.as_slice()).map_err(db)?;
            }
        }
        Resealed::Authorizations => {
            count += super::authorizations::reseal_in(txn, cipher)?;
        }
        Resealed::Artifacts => {
            count += super::plugins::reseal_artifacts_in(txn, cipher)?;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthType, Connection, ConnectionStatus, Credentials, Placement, Service};

    const TOKEN: &str = "tok-sealed-at-rest-1234";

    fn fill(store: &Store) {
        store
            .create_service(
                &Service {
                    name: "svc".into(),
                    auth_type: AuthType::Bearer,
                    base_url: Some("https://api.example.com".into()),
                    allowed_hosts: vec![],
                    placement: Placement::bearer(),
                    oauth: None,
                    has_client_secret: false,
                    problem: None,
                    created_at_ms: 0,
                },
                Some(&Secret::new("client-secret-xyz".into())),
            )
            .unwrap();
        store
            .create_connection(&Connection {
                link_name: "main".into(),
                service: "svc".into(),
                status: ConnectionStatus::Connected,
                scopes: vec![],
                metadata: Default::default(),
                credentials: Credentials::Bearer {
                    token: Secret::new(TOKEN.into()),
                },
                last_error: None,
                created_at_ms: 0,
                updated_at_ms: 0,
                last_refresh_ms: None,
                history: Vec::new(),
            })
            .unwrap();
        store
            .set_hook_secret("p", "h", &Secret::new("hook-secret-abc".into()))
            .unwrap();
        store
            .put_artifact("sha", "compat", b"machine code")
            .unwrap();
    }

    fn check(store: &Store) {
        assert_eq!(
            store.client_secret("svc").unwrap().unwrap().expose(),
            "client-secret-xyz"
        );
        let connection = store.connection("main").unwrap().unwrap();
        assert_eq!(
            connection.credentials,
            Credentials::Bearer {
                token: Secret::new(TOKEN.into())
            }
        );
        assert_eq!(
            store.hook_secret("p", "h").unwrap().unwrap().expose(),
            "hook-secret-abc"
        );
        assert_eq!(
            store.artifact("sha", "compat").unwrap().unwrap(),
            b"machine code"
        );
    }

    fn file_key_id(dir: &Path) -> String {
        key_id(&read_key_file(&dir.join(KEY_FILE)).unwrap().unwrap())
    }

    fn env(key: &[u8; 32]) -> KeyConfig {
        KeyConfig {
            current: Some(B64.encode(key)),
            previous: None,
        }
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fill(&Store::open_with_keys(dir.path(), env(&[1; 32])).unwrap());
        let err = Store::open_with_keys(dir.path(), env(&[2; 32]))
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains(&key_id(&[1; 32])), "{err}");
        // The right key still opens it: nothing was written under the wrong one.
        check(&Store::open_with_keys(dir.path(), env(&[1; 32])).unwrap());
    }

    #[test]
    fn a_missing_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fill(&Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap());
        let saved = fs::read(dir.path().join(KEY_FILE)).unwrap();
        fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let err = Store::open_with_keys(dir.path(), KeyConfig::file())
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::MissingKey { .. }), "{err}");
        assert!(!dir.path().join(KEY_FILE).exists(), "no new key was made");
        fs::write(dir.path().join(KEY_FILE), saved).unwrap();
        check(&Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap());
    }

    #[test]
    fn flipped_bits_in_a_sealed_value_fail_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap();
        fill(&store);
        let sealed = store.sealed_connection("main").unwrap().unwrap();
        let Credentials::Bearer { token } = &sealed.credentials else {
            panic!("bearer");
        };
        // Flip one bit of the ciphertext inside the base64 blob.
        let (head, blob) = token.rsplit_once(':').unwrap();
        let mut bytes = B64.decode(blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let tampered = format!("{head}:{}", B64.encode(bytes));
        let mut row = sealed.clone();
        row.credentials = Credentials::Bearer { token: tampered };
        {
            let txn = store.db.begin_write().unwrap();
            {
                let mut table = txn.open_table(crate::CONNECTIONS).unwrap();
                let bytes = serde_json::to_vec(&row).unwrap();
                table.insert("main", bytes.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let err = store.connection("main").err().unwrap();
        assert!(
            matches!(err, StoreError::Crypto(CryptoError::Authentication)),
            "{err}"
        );
    }

    #[test]
    fn rotation_reseals_everything_under_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap();
        fill(&store);
        let before = file_key_id(dir.path());
        let rotation = store.rotate_key().unwrap();
        assert_eq!(rotation.previous_key_id, before);
        assert_ne!(rotation.key_id, before);
        assert_eq!(rotation.resealed, 4, "{rotation:?}");
        assert_eq!(file_key_id(dir.path()), rotation.key_id);
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        check(&store);
        drop(store);
        let reopened = Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap();
        check(&reopened);
        let sealed = reopened.sealed_connection("main").unwrap().unwrap();
        let Credentials::Bearer { token } = &sealed.credentials else {
            panic!("bearer");
        };
        assert_eq!(sealed_key_id(token), Some(rotation.key_id.as_str()));
        // With the key from the environment, the answer says how to rotate.
        drop(reopened);
        let key = read_key_file(&dir.path().join(KEY_FILE)).unwrap().unwrap();
        let from_env = Store::open_with_keys(dir.path(), env(&key)).unwrap();
        let err = from_env.rotate_key().err().unwrap();
        assert!(err.to_string().contains(PREVIOUS_KEY_ENV), "{err}");
    }

    #[test]
    fn a_crash_mid_rotation_rolls_forward_on_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap();
        fill(&store);
        let old = read_key_file(&dir.path().join(KEY_FILE)).unwrap().unwrap();
        // The rotation wrote the new key and re-sealed one table, then the
        // process died: connections are under the new key, the rest under
        // the old, and `master.key` is still the old key.
        let new = random_key();
        write_key_file(&dir.path().join(NEXT_KEY_FILE), &new).unwrap();
        store.set_cipher(Cipher::with_keys(&new, &[old]));
        {
            let txn = store.db.begin_write().unwrap();
            reseal_table(&txn, &store.cipher(), Resealed::Connections).unwrap();
            txn.commit().unwrap();
        }
        drop(store);
        // The old key alone no longer opens the connection: this is a real
        // half-done state.
        let old_only = Store::open_with_keys(dir.path(), env(&old));
        assert!(
            old_only.map_or(true, |s| s.connection("main").is_err()),
            "the old key alone cannot open the re-sealed connection"
        );
        let reopened = Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap();
        check(&reopened);
        assert_eq!(file_key_id(dir.path()), key_id(&new));
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        drop(reopened);
        // A crash right after the new key was written, before any re-seal.
        let newer = random_key();
        write_key_file(&dir.path().join(NEXT_KEY_FILE), &newer).unwrap();
        check(&Store::open_with_keys(dir.path(), KeyConfig::file()).unwrap());
        assert_eq!(file_key_id(dir.path()), key_id(&newer));
    }

    #[test]
    fn environment_keys_rotate_through_the_previous_key() {
        let dir = tempfile::tempdir().unwrap();
        fill(&Store::open_with_keys(dir.path(), env(&[5; 32])).unwrap());
        let rotated = Store::open_with_keys(
            dir.path(),
            KeyConfig {
                current: Some(B64.encode([6; 32])),
                previous: Some(B64.encode([5; 32])),
            },
        )
        .unwrap();
        check(&rotated);
        drop(rotated);
        // Every secret is under the new key: the previous one is not needed.
        check(&Store::open_with_keys(dir.path(), env(&[6; 32])).unwrap());
        assert!(Store::open_with_keys(dir.path(), env(&[5; 32])).is_err());
    }
}
