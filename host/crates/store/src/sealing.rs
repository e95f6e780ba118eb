//! [`Store`]: the one layer that holds the master key. Everything above it
//! sees secrets opened ([`Secret`]); every backend below it sees them sealed
//! (`String`), so a backend never holds a key and its files never hold a
//! secret in plain text. It also keeps the rules no backend should repeat:
//! names are valid, a connection's credentials fit its service's auth type,
//! an artifact's tag proves this host produced it, and a committed change of
//! a connection's status is announced.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::connections::ConnectionChange;
use crate::crypto::Cipher;
use crate::journal::{
    Delivery, DeliveryQuery, EventRecord, ExecutionQuery, HistoryBudget, JournalAnswer,
    JournalEntry,
};
use crate::keys::{self, KeyConfig, KeySource, Rotation};
use crate::meta::{SealedSlot, keys::ADMIN_TOKEN_HASH};
use crate::plugins::{NewVersion, PluginRecord};
use crate::sessions::{PendingAuthorization, PendingTarget};
use crate::url::StoreUrl;
use crate::{StoreError, redb::RedbBackend};
use junction_core::kv::{KvOutcome, KvQuota, KvUsage, KvWrite};
use junction_core::model::{
    AuthType, Connection, ConnectionStatus, Credentials, Service, validate_link_name,
    validate_service_name,
};
use junction_core::{ExecutionRecord, Secret, validate_plugin_name};

/// The open store: a backend and the keys that seal for it.
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Swapped by a key rotation; sealing takes the current one.
    cipher: RwLock<Arc<Cipher>>,
    key_source: KeySource,
    /// One key rotation at a time.
    rotation: tokio::sync::Mutex<()>,
    data_dir: PathBuf,
    changes: tokio::sync::broadcast::Sender<ConnectionChange>,
}

impl Store {
    /// Opens (creating if needed) the default store, redb in `data_dir`,
    /// with the master key from the environment or the key file.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_keys(data_dir, KeyConfig::from_env()).await
    }

    /// Opens the redb store in `data_dir` with these keys.
    pub async fn open_with_keys(data_dir: &Path, config: KeyConfig) -> Result<Self, StoreError> {
        Self::open_url(&StoreUrl::Redb { path: None }, data_dir, config).await
    }

    /// Opens the store `url` names; `data_dir` holds the key file (and,
    /// for `redb:` without a path, the database).
    pub async fn open_url(
        url: &StoreUrl,
        data_dir: &Path,
        config: KeyConfig,
    ) -> Result<Self, StoreError> {
        Self::open_url_with_lease(url, data_dir, config, crate::postgres::DEFAULT_LEASE).await
    }

    /// [`Store::open_url`] for a host that runs deliveries: a backend
    /// several hosts share holds this host's deliveries under leases of
    /// `lease`, which the host renews while it lives.
    pub async fn open_url_with_lease(
        url: &StoreUrl,
        data_dir: &Path,
        config: KeyConfig,
        lease: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let backend: Arc<dyn Backend> = match url {
            StoreUrl::Redb { path } => {
                Arc::new(RedbBackend::open(path.as_deref().unwrap_or(data_dir)).await?)
            }
            StoreUrl::Postgres(url) => {
                Arc::new(crate::postgres::Postgres::open_with_lease(url, lease).await?)
            }
        };
        Self::over(backend, data_dir, config).await
    }

    /// Seals for `backend` with the keys `config` names (the key file is in
    /// `data_dir`), finishing a rotation a crash left open.
    pub async fn over(
        backend: Arc<dyn Backend>,
        data_dir: &Path,
        config: KeyConfig,
    ) -> Result<Self, StoreError> {
        let (cipher, key_source) = keys::load(data_dir, &*backend, config).await?;
        let store = Store {
            backend,
            cipher: RwLock::new(Arc::new(cipher)),
            key_source,
            rotation: tokio::sync::Mutex::new(()),
            data_dir: data_dir.to_owned(),
            changes: tokio::sync::broadcast::Sender::new(256),
        };
        store.settle_keys().await?;
        Ok(store)
    }

    /// The backend, for what needs no secret (and for tests).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The keys sealing and opening secrets now.
    fn cipher(&self) -> Arc<Cipher> {
        self.cipher
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn set_cipher(&self, cipher: Cipher) {
        *self
            .cipher
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(cipher);
    }

    fn seal(&self, secret: &Secret, slot: &SealedSlot) -> Result<String, StoreError> {
        Ok(self.cipher().seal(secret, &slot.aad())?)
    }

    fn open_sealed(&self, sealed: &str, slot: &SealedSlot) -> Result<Secret, StoreError> {
        Ok(self.cipher().open(sealed, &slot.aad())?)
    }

    /// Seals `text` for `purpose` into a URL-safe token that only this
    /// store's keys open (and that opens for no other purpose): what a
    /// connect link's URL carries, so a forged one is refused unread.
    pub fn seal_token(&self, purpose: &str, text: &str) -> Result<String, StoreError> {
        use base64::Engine as _;
        let sealed = self
            .cipher()
            .seal(&Secret::new(text.to_owned()), &format!("tokens/{purpose}"))?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The text of a token [`Store::seal_token`] made for `purpose`; `None`
    /// for anything else (altered, made for another purpose, or sealed
    /// with a key this store no longer has).
    pub fn open_token(&self, purpose: &str, token: &str) -> Option<String> {
        use base64::Engine as _;
        if token.len() > 1024 {
            return None;
        }
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()?;
        let sealed = String::from_utf8(sealed).ok()?;
        self.cipher()
            .open(&sealed, &format!("tokens/{purpose}"))
            .ok()
            .map(|secret| secret.expose().to_owned())
    }

    /// Tells the other hosts sharing the backend about `change`; nothing
    /// when it has one host. A failure is only logged: the others catch up
    /// at their next resync.
    pub async fn tell_other_hosts(&self, change: crate::cluster::Change) {
        if let Some(cluster) = self.backend.cluster()
            && let Err(err) = cluster.announce(&change).await
        {
            tracing::warn!(change = %change.encode(), error = %err, "cannot tell the other hosts about a change; they pick it up at their next resync");
        }
    }

    /// The data directory (the key file's home).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Connection status changes as they are committed.
    pub fn connection_changes(&self) -> tokio::sync::broadcast::Receiver<ConnectionChange> {
        self.changes.subscribe()
    }

    fn announce(&self, connection: &Connection, previous: Option<ConnectionStatus>) {
        if previous == Some(connection.status) {
            return;
        }
        let reason = connection
            .history
            .last()
            .map(|h| h.reason.clone())
            .or_else(|| connection.last_error.clone());
        // Nobody listening (no server running) is fine.
        let _ = self.changes.send(ConnectionChange {
            link_name: connection.link_name.clone(),
            end_user: connection.end_user.clone(),
            service: connection.service.clone(),
            status: connection.status,
            previous,
            reason,
        });
    }

    // ----- keys and metadata -----

    /// After the keys are loaded: finishes a rotation that a crash (or a
    /// new environment key) left open, and writes the check value.
    async fn settle_keys(&self) -> Result<(), StoreError> {
        let cipher = self.cipher();
        let (pending, has_check) =
            keys::rotation_pending(&*self.backend, &cipher, &self.key_source, &self.data_dir)
                .await?;
        if pending {
            let resealed = self.reseal_everything().await?;
            tracing::info!(
                resealed,
                key_id = cipher.key_id(),
                "finished a master key rotation"
            );
        } else if !has_check {
            keys::write_check(&*self.backend, &cipher).await?;
        }
        self.finish_key_file().await
    }

    async fn reseal_everything(&self) -> Result<usize, StoreError> {
        keys::reseal_everything(&*self.backend, &|| self.cipher()).await
    }

    async fn finish_key_file(&self) -> Result<(), StoreError> {
        let (source, dir) = (self.key_source.clone(), self.data_dir.clone());
        tokio::task::spawn_blocking(move || keys::finish_key_file(&source, &dir)).await?
    }

    /// Where the master key comes from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// Rotates the master key: a new key seals every secret, crash-safe
    /// (see [`keys`]). Only for the key file; with a key from the
    /// environment the answer says how to rotate it.
    pub async fn rotate_key(&self) -> Result<Rotation, StoreError> {
        let _one = self.rotation.lock().await;
        if self.backend.cluster().is_some() {
            return Err(keys::shared_rotation());
        }
        let KeySource::File(path) = &self.key_source else {
            return Err(keys::environment_rotation());
        };
        let (path, dir) = (path.clone(), self.data_dir.clone());
        let current_id = self.cipher().key_id().to_owned();
        let (cipher, key_id, previous_key_id) =
            tokio::task::spawn_blocking(move || keys::begin_rotation(&path, &dir, &current_id))
                .await??;
        self.set_cipher(cipher);
        let resealed = self.reseal_everything().await?;
        self.finish_key_file().await?;
        tracing::info!(resealed, %key_id, %previous_key_id, "master key rotated");
        Ok(Rotation {
            key_id,
            previous_key_id,
            resealed,
        })
    }

    /// The schema version the backend's data is at.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.backend.schema_version().await
    }

    /// The sha256 (hex) of the admin token, once one was issued.
    pub async fn admin_token_hash(&self) -> Result<Option<String>, StoreError> {
        self.backend.meta(ADMIN_TOKEN_HASH).await
    }

    /// Records the sha256 (hex) of the first admin token unless another
    /// host sharing the store issued one first; whether this one is it.
    pub async fn add_admin_token_hash(&self, hash: &str) -> Result<bool, StoreError> {
        self.backend.add_meta(ADMIN_TOKEN_HASH, hash).await
    }

    /// Records the sha256 (hex) of a new admin token; the old one stops working.
    pub async fn set_admin_token_hash(&self, hash: &str) -> Result<(), StoreError> {
        self.backend.set_meta(ADMIN_TOKEN_HASH, hash).await
    }

    // ----- services -----

    fn seal_client_secret(
        &self,
        service: &str,
        secret: Option<&Secret>,
    ) -> Result<Option<String>, StoreError> {
        secret
            .map(|secret| {
                self.seal(
                    secret,
                    &SealedSlot::ServiceSecret {
                        service: service.to_owned(),
                    },
                )
            })
            .transpose()
    }

    /// Adds a new service, with its OAuth client secret if it has one.
    pub async fn create_service(
        &self,
        service: &Service,
        client_secret: Option<&Secret>,
    ) -> Result<(), StoreError> {
        validate_service_name(&service.name).map_err(StoreError::Invalid)?;
        let sealed = self.seal_client_secret(&service.name, client_secret)?;
        self.backend
            .put_service(service, false, sealed.as_deref())
            .await
    }

    /// Replaces an existing service's definition (its name stays); a new
    /// client secret replaces the stored one, `None` keeps it.
    pub async fn update_service(
        &self,
        service: &Service,
        client_secret: Option<&Secret>,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_client_secret(&service.name, client_secret)?;
        self.backend
            .put_service(service, true, sealed.as_deref())
            .await
    }

    /// The OAuth client secret of `service`, opened.
    pub async fn client_secret(&self, service: &str) -> Result<Option<Secret>, StoreError> {
        let Some(sealed) = self.backend.sealed_client_secret(service).await? else {
            return Ok(None);
        };
        let slot = SealedSlot::ServiceSecret {
            service: service.to_owned(),
        };
        self.open_sealed(&sealed, &slot).map(Some)
    }

    /// The service with this name.
    pub async fn service(&self, name: &str) -> Result<Option<Service>, StoreError> {
        self.backend.service(name).await
    }

    /// Every service, by name.
    pub async fn services(&self) -> Result<Vec<Service>, StoreError> {
        self.backend.services().await
    }

    /// Removes a service no connection uses.
    pub async fn delete_service(&self, name: &str) -> Result<(), StoreError> {
        self.backend.delete_service(name).await
    }

    // ----- connections -----

    fn seal_connection(&self, connection: &Connection) -> Result<Connection<String>, StoreError> {
        let link = &connection.link_name;
        let credentials = connection.credentials.clone().try_map(|field, secret| {
            self.seal(
                &secret,
                &SealedSlot::Credential {
                    end_user: connection.end_user.clone(),
                    link: link.clone(),
                    field: field.to_owned(),
                },
            )
        })?;
        Ok(connection.clone().with_credentials(credentials))
    }

    fn open_connection(&self, row: Connection<String>) -> Result<Connection, StoreError> {
        let link = row.link_name.clone();
        let credentials = row.credentials.clone().try_map(|field, sealed| {
            self.open_sealed(
                &sealed,
                &SealedSlot::Credential {
                    end_user: row.end_user.clone(),
                    link: link.clone(),
                    field: field.to_owned(),
                },
            )
        })?;
        Ok(row.with_credentials(credentials))
    }

    /// Adds a new connection of an existing service; its credentials must
    /// be of the kind the service uses.
    pub async fn create_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        validate_link_name(&connection.link_name).map_err(StoreError::Invalid)?;
        if let Some(user) = &connection.end_user {
            junction_core::model::validate_end_user(user).map_err(StoreError::Invalid)?;
        }
        let service = self
            .backend
            .service(&connection.service)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "service",
                name: connection.service.clone(),
            })?;
        let matches = matches!(
            (service.auth_type, &connection.credentials),
            (AuthType::Oauth2, Credentials::None)
                | (AuthType::ApiKey, Credentials::ApiKey { .. })
                | (AuthType::Basic, Credentials::Basic { .. })
                | (AuthType::Bearer, Credentials::Bearer { .. })
                | (AuthType::Oauth2, Credentials::Oauth2 { .. })
        );
        if !matches {
            let hint = if service.auth_type == AuthType::Oauth2 {
                "; create it without credentials and authorise it".to_owned()
            } else {
                format!(
                    "; give `credentials` with type `{}`",
                    service.auth_type.as_str()
                )
            };
            return Err(StoreError::Invalid(format!(
                "service `{}` uses {} credentials{hint}",
                service.name,
                service.auth_type.as_str()
            )));
        }
        let row = self.seal_connection(connection)?;
        self.backend.create_connection(&row).await?;
        if connection.status == ConnectionStatus::Connected {
            self.announce(connection, None);
        }
        Ok(())
    }

    /// Replaces an existing connection (new tokens, status, metadata).
    pub async fn update_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let row = self.seal_connection(connection)?;
        let previous = self.backend.update_connection(&row).await?;
        self.announce(connection, previous);
        Ok(())
    }

    /// Takes the refresh lock of `end_user`'s (or the organisation's)
    /// `link`, one holder across every host on the store (see
    /// [`crate::connections::ConnectionRows::lock_connection`]).
    pub async fn lock_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Box<dyn crate::connections::ConnectionLock>, StoreError> {
        self.backend.lock_connection(end_user, link).await
    }

    /// `end_user`'s (or, for `None`, the organisation's) connection with
    /// this link name, secrets opened.
    pub async fn connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Option<Connection>, StoreError> {
        match self.backend.connection(end_user, link).await? {
            Some(row) => self.open_connection(row).map(Some),
            None => Ok(None),
        }
    }

    /// `end_user`'s connections with their secrets still sealed.
    pub async fn sealed_end_user_connections(
        &self,
        end_user: &str,
    ) -> Result<Vec<Connection<String>>, StoreError> {
        self.backend.end_user_connections(end_user).await
    }

    /// Every end user with a connection, with how many they have, by id.
    pub async fn end_users(&self) -> Result<Vec<(String, usize)>, StoreError> {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for row in self.backend.connections().await? {
            if let Some(user) = row.end_user {
                *counts.entry(user).or_default() += 1;
            }
        }
        Ok(counts.into_iter().collect())
    }

    /// Every connection (the organisation's, then each end user's), secrets opened.
    pub async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.backend
            .connections()
            .await?
            .into_iter()
            .map(|row| self.open_connection(row))
            .collect()
    }

    /// Every connection with its secrets still sealed: for listings, which
    /// need only whether a secret exists, not the secret.
    pub async fn sealed_connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        self.backend.connections().await
    }

    /// The connection with this link name, its secrets still sealed.
    pub async fn sealed_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Option<Connection<String>>, StoreError> {
        self.backend.connection(end_user, link).await
    }

    /// Removes a connection.
    pub async fn delete_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<(), StoreError> {
        self.backend.delete_connection(end_user, link).await
    }

    // ----- sessions -----

    /// Records a pending authorization under the state's hash, and drops
    /// expired ones.
    pub async fn put_pending_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
        let slot = SealedSlot::Verifier {
            state_hash: state_hash.to_owned(),
        };
        let verifier = pending
            .verifier
            .as_ref()
            .map(|v| self.seal(v, &slot))
            .transpose()?;
        let row = PendingAuthorization {
            link_name: pending.link_name.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            verifier,
            scopes: pending.scopes.clone(),
            created_at_ms: pending.created_at_ms,
            from_console: pending.from_console,
            end_user: pending.end_user.clone(),
            connect_link: pending.connect_link.clone(),
        };
        self.backend
            .put_pending_authorization(state_hash, &row)
            .await
    }

    /// The connection a pending authorization is for, read only.
    pub async fn pending_authorization_link(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingTarget>, StoreError> {
        self.backend.pending_authorization_link(state_hash).await
    }

    /// Takes the pending authorization for this state hash: a second
    /// callback with the same state finds nothing.
    pub async fn take_pending_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let Some(row) = self.backend.take_pending_authorization(state_hash).await? else {
            return Ok(None);
        };
        let slot = SealedSlot::Verifier {
            state_hash: state_hash.to_owned(),
        };
        let verifier = row
            .verifier
            .map(|sealed| self.open_sealed(&sealed, &slot))
            .transpose()?;
        Ok(Some(PendingAuthorization {
            link_name: row.link_name,
            redirect_uri: row.redirect_uri,
            verifier,
            scopes: row.scopes,
            created_at_ms: row.created_at_ms,
            from_console: row.from_console,
            end_user: row.end_user,
            connect_link: row.connect_link,
        }))
    }

    /// How many authorizations are pending (for tests and metrics).
    pub async fn pending_authorization_count(&self) -> Result<u64, StoreError> {
        self.backend.pending_authorization_count().await
    }

    // ----- kv -----

    /// The value under `key` in `plugin`'s namespace.
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.kv_get(plugin, key).await
    }

    /// Applies one write in a transaction of its own; the server's plugins
    /// write through the journal's group commit instead.
    pub async fn kv_write(&self, write: &KvWrite) -> Result<KvOutcome, StoreError> {
        self.backend.kv_write(write).await
    }

    /// Stores `value` under `key` in `plugin`'s namespace, without a quota.
    pub async fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let write = KvWrite::Set {
            plugin: plugin.to_owned(),
            key: key.to_owned(),
            value: value.to_vec(),
            quota: KvQuota::UNLIMITED,
        };
        match self.backend.kv_write(&write).await? {
            KvOutcome::Written => Ok(()),
            KvOutcome::Refused(why) => Err(StoreError::Invalid(why)),
        }
    }

    /// Removes `key` from `plugin`'s namespace.
    pub async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let write = KvWrite::Delete {
            plugin: plugin.to_owned(),
            key: key.to_owned(),
        };
        self.backend.kv_write(&write).await.map(|_| ())
    }

    /// What `plugin`'s namespace holds.
    pub async fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError> {
        self.backend.kv_usage(plugin).await
    }

    /// The keys in `plugin`'s namespace that start with `prefix`, in order.
    pub async fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.backend.kv_keys(plugin, prefix).await
    }

    // ----- plugins -----

    /// The tag proving an artifact is this host's: its sha256, sealed.
    async fn artifact_tag(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact: Vec<u8>,
    ) -> Result<(String, Vec<u8>), StoreError> {
        let (artifact, digest) = tokio::task::spawn_blocking(move || {
            let digest = hex::encode(Sha256::digest(&artifact));
            (artifact, digest)
        })
        .await?;
        let slot = SealedSlot::ArtifactTag {
            sha256: sha256.to_owned(),
            compatibility: compatibility.to_owned(),
        };
        Ok((self.seal(&Secret::new(digest), &slot)?, artifact))
    }

    /// Stores a new version of `name` (creating the plugin) and makes it
    /// active: concurrent uploads get distinct versions.
    pub async fn add_plugin_version(
        &self,
        name: &str,
        new: NewVersion<'_>,
    ) -> Result<PluginRecord, StoreError> {
        validate_plugin_name(name).map_err(StoreError::Invalid)?;
        let (tag, _) = self
            .artifact_tag(new.sha256, new.compatibility, new.artifact.to_vec())
            .await?;
        self.backend.add_plugin_version(name, new, &tag).await
    }

    /// The plugin called `name`.
    pub async fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.backend.plugin(name).await
    }

    /// Every plugin, by name.
    pub async fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.backend.plugins().await
    }

    /// Several areas read from one view (connections come back sealed).
    pub async fn snapshot(&self, reads: &crate::Reads) -> Result<crate::Snapshot, StoreError> {
        self.backend.snapshot(reads).await
    }

    /// Makes `version` of `name` active again.
    pub async fn activate_plugin_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<PluginRecord, StoreError> {
        self.backend.activate_plugin_version(name, version).await
    }

    /// Removes `name`, its unshared components and artifacts, and its kv
    /// namespace; returns the removed record.
    pub async fn delete_plugin(&self, name: &str) -> Result<PluginRecord, StoreError> {
        self.backend.delete_plugin(name).await
    }

    /// The component with this sha256.
    pub async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.component(sha256).await
    }

    /// The artifact precompiled from `sha256` by an engine with this
    /// compatibility hash, if its tag proves this host produced it. A tag
    /// that does not verify is reported, not trusted.
    pub async fn artifact(
        &self,
        sha256: &str,
        compatibility: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((tag, bytes)) = self.backend.artifact(sha256, compatibility).await? else {
            return Ok(None);
        };
        let slot = SealedSlot::ArtifactTag {
            sha256: sha256.to_owned(),
            compatibility: compatibility.to_owned(),
        };
        let expected = self.open_sealed(&tag, &slot)?;
        let (bytes, actual) = tokio::task::spawn_blocking(move || {
            let actual = hex::encode(Sha256::digest(&bytes));
            (bytes, actual)
        })
        .await?;
        if expected.expose() != actual {
            return Err(StoreError::Corrupt(
                format!("artifacts/{sha256}"),
                "the artifact does not match its tag".into(),
            ));
        }
        Ok(Some(bytes))
    }

    /// Stores an artifact precompiled from `sha256` (after a wasmtime
    /// upgrade), dropping artifacts of other engines for the same component.
    pub async fn put_artifact(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let (tag, artifact) = self
            .artifact_tag(sha256, compatibility, artifact.to_vec())
            .await?;
        self.backend
            .put_artifact(sha256, compatibility, &tag, &artifact)
            .await
    }

    // ----- the journal -----

    /// Applies a batch of journal entries in one transaction.
    pub async fn commit_journal(
        &self,
        entries: Vec<JournalEntry>,
        retention: HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError> {
        self.backend.commit_journal(entries, retention).await
    }

    /// The event with this id.
    pub async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.backend.event(id).await
    }

    /// The delivery with this id.
    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.backend.delivery(id).await
    }

    /// The deliveries with these ids that exist.
    pub async fn deliveries_by_id(&self, ids: &[String]) -> Result<Vec<Delivery>, StoreError> {
        self.backend.deliveries_by_id(ids).await
    }

    /// Deliveries matching `query`, newest first.
    pub async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        self.backend.deliveries(query).await
    }

    /// Every queued delivery with its event, soonest due first.
    pub async fn pending_deliveries(&self) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        self.backend.pending_deliveries().await
    }

    /// Claims queued deliveries no running host holds (see
    /// [`crate::journal::JournalRows::claim_deliveries`]).
    pub async fn claim_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        self.backend.claim_deliveries(limit).await
    }

    /// Extends this host's leases on the deliveries it holds.
    pub async fn renew_leases(&self) -> Result<u64, StoreError> {
        self.backend.renew_leases().await
    }

    /// Lets go of the deliveries this host holds.
    pub async fn release_leases(&self) -> Result<u64, StoreError> {
        self.backend.release_leases().await
    }

    /// Drops old finished events; returns how many went.
    pub async fn prune_events(&self, keep: u64, max_age_ms: u64) -> Result<u64, StoreError> {
        self.backend.prune_events(keep, max_age_ms).await
    }

    /// Stores execution records outside a journal batch.
    pub async fn insert_executions(
        &self,
        records: Vec<ExecutionRecord>,
        retention: HistoryBudget,
    ) -> Result<(), StoreError> {
        self.backend.insert_executions(records, retention).await
    }

    /// The execution with this id.
    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        self.backend.execution(id).await
    }

    /// Executions matching `query`, newest first.
    pub async fn executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.backend.executions(query).await
    }

    // ----- triggers -----

    /// Every API-registered trigger.
    pub async fn api_triggers(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        self.backend.api_triggers().await
    }

    /// Stores (or replaces) an API trigger.
    pub async fn put_trigger(
        &self,
        id: &str,
        trigger: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.backend.put_trigger(id, trigger).await
    }

    /// Removes these triggers; returns how many existed.
    pub async fn delete_triggers(&self, ids: &[String]) -> Result<usize, StoreError> {
        self.backend.delete_triggers(ids).await
    }

    /// Each schedule's last fire time.
    pub async fn schedule_marks(
        &self,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        self.backend.schedule_marks().await
    }

    /// Records when a schedule last fired.
    pub async fn set_schedule_mark(&self, key: &str, at_ms: u64) -> Result<(), StoreError> {
        self.backend.set_schedule_mark(key, at_ms).await
    }

    /// The webhook's secret, opened.
    pub async fn hook_secret(
        &self,
        plugin: &str,
        hook: &str,
    ) -> Result<Option<Secret>, StoreError> {
        let Some(sealed) = self.backend.sealed_hook_secret(plugin, hook).await? else {
            return Ok(None);
        };
        let slot = SealedSlot::HookSecret {
            key: format!("{plugin}/{hook}"),
        };
        self.open_sealed(&sealed, &slot).map(Some)
    }

    /// Seals and stores a webhook's secret, replacing any earlier one.
    pub async fn set_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
        secret: &Secret,
    ) -> Result<(), StoreError> {
        let slot = SealedSlot::HookSecret {
            key: format!("{plugin}/{hook}"),
        };
        let sealed = self.seal(secret, &slot)?;
        self.backend
            .set_sealed_hook_secret(plugin, hook, &sealed)
            .await
    }

    /// Forgets a deleted plugin's webhook secrets, schedule marks and API
    /// triggers.
    pub async fn forget_plugin_events(&self, plugin: &str) -> Result<(), StoreError> {
        self.backend.forget_plugin_events(plugin).await
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;
    use crate::crypto::{
        CryptoError, KEY_FILE, NEXT_KEY_FILE, PREVIOUS_KEY_ENV, key_id, sealed_key_id,
    };
    use crate::keys::{random_key, read_key_file, write_key_file};
    use crate::meta::SealedArea;
    use junction_core::model::Placement;

    const TOKEN: &str = "tok-sealed-at-rest-1234";

    async fn open(dir: &Path, config: KeyConfig) -> Result<Store, StoreError> {
        Store::open_with_keys(dir, config).await
    }

    async fn fill(store: &Store) {
        let service = Service {
            name: "svc".into(),
            auth_type: AuthType::Bearer,
            base_url: Some("https://api.example.com".into()),
            allowed_hosts: vec![],
            placement: Placement::bearer(),
            oauth: None,
            has_client_secret: false,
            problem: None,
            created_at_ms: 0,
        };
        let secret = Secret::new("client-secret-xyz".into());
        store.create_service(&service, Some(&secret)).await.unwrap();
        let connection = Connection {
            link_name: "main".into(),
            end_user: None,
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
        };
        store.create_connection(&connection).await.unwrap();
        let hook = Secret::new("hook-secret-abc".into());
        store.set_hook_secret("p", "h", &hook).await.unwrap();
        store
            .put_artifact("sha", "compat", b"machine code")
            .await
            .unwrap();
    }

    async fn check(store: &Store) {
        let secret = store.client_secret("svc").await.unwrap().unwrap();
        assert_eq!(secret.expose(), "client-secret-xyz");
        let connection = store.connection(None, "main").await.unwrap().unwrap();
        assert_eq!(
            connection.credentials,
            Credentials::Bearer {
                token: Secret::new(TOKEN.into())
            }
        );
        let hook = store.hook_secret("p", "h").await.unwrap().unwrap();
        assert_eq!(hook.expose(), "hook-secret-abc");
        let artifact = store.artifact("sha", "compat").await.unwrap().unwrap();
        assert_eq!(artifact, b"machine code");
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

    #[tokio::test]
    async fn a_wrong_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fill(&open(dir.path(), env(&[1; 32])).await.unwrap()).await;
        let err = open(dir.path(), env(&[2; 32])).await.err().unwrap();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains(&key_id(&[1; 32])), "{err}");
        // The right key still opens it: nothing was written under the wrong one.
        check(&open(dir.path(), env(&[1; 32])).await.unwrap()).await;
    }

    #[tokio::test]
    async fn a_missing_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fill(&open(dir.path(), KeyConfig::file()).await.unwrap()).await;
        let saved = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let err = open(dir.path(), KeyConfig::file()).await.err().unwrap();
        assert!(matches!(err, StoreError::MissingKey { .. }), "{err}");
        assert!(!dir.path().join(KEY_FILE).exists(), "no new key was made");
        std::fs::write(dir.path().join(KEY_FILE), saved).unwrap();
        check(&open(dir.path(), KeyConfig::file()).await.unwrap()).await;
    }

    #[tokio::test]
    async fn flipped_bits_in_a_sealed_value_fail_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), KeyConfig::file()).await.unwrap();
        fill(&store).await;
        // Flip one bit of the ciphertext inside the base64 blob.
        store
            .backend()
            .reseal(
                SealedArea::Connections,
                Arc::new(|_, sealed: &str| {
                    let (head, blob) = sealed.rsplit_once(':').unwrap();
                    let mut bytes = B64.decode(blob).unwrap();
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0x01;
                    Ok(Some(format!("{head}:{}", B64.encode(bytes))))
                }),
            )
            .await
            .unwrap();
        let err = store.connection(None, "main").await.err().unwrap();
        assert!(
            matches!(err, StoreError::Crypto(CryptoError::Authentication)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn rotation_reseals_everything_under_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), KeyConfig::file()).await.unwrap();
        fill(&store).await;
        let before = file_key_id(dir.path());
        let rotation = store.rotate_key().await.unwrap();
        assert_eq!(rotation.previous_key_id, before);
        assert_ne!(rotation.key_id, before);
        assert_eq!(rotation.resealed, 4, "{rotation:?}");
        assert_eq!(file_key_id(dir.path()), rotation.key_id);
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        check(&store).await;
        drop(store);
        let reopened = open(dir.path(), KeyConfig::file()).await.unwrap();
        check(&reopened).await;
        let sealed = reopened
            .sealed_connection(None, "main")
            .await
            .unwrap()
            .unwrap();
        let Credentials::Bearer { token } = &sealed.credentials else {
            panic!("bearer");
        };
        assert_eq!(sealed_key_id(token), Some(rotation.key_id.as_str()));
        // With the key from the environment, the answer says how to rotate.
        drop(reopened);
        let key = read_key_file(&dir.path().join(KEY_FILE)).unwrap().unwrap();
        let from_env = open(dir.path(), env(&key)).await.unwrap();
        let err = from_env.rotate_key().await.err().unwrap();
        assert!(err.to_string().contains(PREVIOUS_KEY_ENV), "{err}");
    }

    #[tokio::test]
    async fn a_crash_mid_rotation_rolls_forward_on_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), KeyConfig::file()).await.unwrap();
        fill(&store).await;
        let old = read_key_file(&dir.path().join(KEY_FILE)).unwrap().unwrap();
        // The rotation wrote the new key and re-sealed one area, then the
        // process died: connections are under the new key, the rest under
        // the old, and `master.key` is still the old key.
        let new = random_key();
        write_key_file(&dir.path().join(NEXT_KEY_FILE), &new).unwrap();
        let both = Arc::new(Cipher::with_keys(&new, &[old]));
        store
            .backend()
            .reseal(
                SealedArea::Connections,
                Arc::new(move |slot, sealed: &str| {
                    let aad = slot.aad();
                    Ok(Some(both.seal(&both.open(sealed, &aad)?, &aad)?))
                }),
            )
            .await
            .unwrap();
        drop(store);
        // The old key alone no longer opens the connection: this is a real
        // half-done state.
        let old_only = open(dir.path(), env(&old)).await;
        if let Ok(store) = old_only {
            assert!(store.connection(None, "main").await.is_err());
        }
        let reopened = open(dir.path(), KeyConfig::file()).await.unwrap();
        check(&reopened).await;
        assert_eq!(file_key_id(dir.path()), key_id(&new));
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        drop(reopened);
        // A crash right after the new key was written, before any re-seal.
        let newer = random_key();
        write_key_file(&dir.path().join(NEXT_KEY_FILE), &newer).unwrap();
        check(&open(dir.path(), KeyConfig::file()).await.unwrap()).await;
        assert_eq!(file_key_id(dir.path()), key_id(&newer));
    }

    #[tokio::test]
    async fn environment_keys_rotate_through_the_previous_key() {
        let dir = tempfile::tempdir().unwrap();
        fill(&open(dir.path(), env(&[5; 32])).await.unwrap()).await;
        let both = KeyConfig {
            current: Some(B64.encode([6; 32])),
            previous: Some(B64.encode([5; 32])),
        };
        let rotated = open(dir.path(), both).await.unwrap();
        check(&rotated).await;
        drop(rotated);
        // Every secret is under the new key: the previous one is not needed.
        check(&open(dir.path(), env(&[6; 32])).await.unwrap()).await;
        assert!(open(dir.path(), env(&[5; 32])).await.is_err());
    }

    #[tokio::test]
    async fn a_store_url_puts_the_redb_file_where_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let (data, elsewhere) = (dir.path().join("data"), dir.path().join("db"));
        let url: StoreUrl = format!("redb:{}", elsewhere.display()).parse().unwrap();
        let store = Store::open_url(&url, &data, KeyConfig::file())
            .await
            .unwrap();
        fill(&store).await;
        assert!(elsewhere.join(crate::DB_FILE).exists());
        assert!(!data.join(crate::DB_FILE).exists());
        assert!(
            data.join(KEY_FILE).exists(),
            "the key stays in the data directory"
        );
        assert!(store.backend().describe().contains("db"));
        drop(store);
        check(
            &Store::open_url(&url, &data, KeyConfig::file())
                .await
                .unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn the_redb_file_holds_no_secret_in_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), KeyConfig::file()).await.unwrap();
        fill(&store).await;
        drop(store);
        let file = std::fs::read(dir.path().join(crate::DB_FILE)).unwrap();
        for plain in [TOKEN, "client-secret-xyz", "hook-secret-abc"] {
            let found = file
                .windows(plain.len())
                .any(|window| window == plain.as_bytes());
            assert!(!found, "{plain} is in the redb file in plain text");
        }
    }
}
