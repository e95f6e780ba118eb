//! Every sealed value in the redb file, by area: listed for the key check
//! and re-sealed in place, one transaction per area, for a rotation.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use crate::meta::{Reseal, ResealFn, SealedArea, SealedSlot};
use junction_core::model::Connection;

/// A table of sealed strings keyed by name, and where a row's value lives.
type NamedTable = (
    TableDefinition<'static, &'static str, &'static str>,
    fn(&str) -> SealedSlot,
);

fn named_table(area: SealedArea) -> Option<NamedTable> {
    match area {
        SealedArea::ServiceSecrets => Some((super::services::SERVICE_SECRETS, |name| {
            SealedSlot::ServiceSecret {
                service: name.to_owned(),
            }
        })),
        SealedArea::HookSecrets => {
            Some(
                (super::journal::HOOK_SECRETS, |key| SealedSlot::HookSecret {
                    key: key.to_owned(),
                }),
            )
        }
        _ => None,
    }
}

/// Passes `area`'s values through `each` inside `txn`, storing the ones it
/// replaces; returns how many it replaced.
fn visit_in(
    txn: &WriteTransaction,
    area: SealedArea,
    each: &ResealFn<'_>,
) -> Result<usize, StoreError> {
    if let Some((definition, slot)) = named_table(area) {
        let mut table = txn.open_table(definition).map_err(db)?;
        let mut updates = Vec::new();
        for row in table.iter().map_err(db)? {
            let (key, sealed) = row.map_err(db)?;
            if let Some(new) = each(&slot(key.value()), sealed.value())? {
                updates.push((key.value().to_owned(), new));
            }
        }
        for (key, sealed) in &updates {
            table.insert(key.as_str(), sealed.as_str()).map_err(db)?;
        }
        return Ok(updates.len());
    }
    match area {
        SealedArea::Connections => {
            let mut table = txn
                .open_table(super::connections::CONNECTIONS)
                .map_err(db)?;
            let mut updates = Vec::new();
            let mut count = 0;
            for row in table.iter().map_err(db)? {
                let (link, bytes) = row.map_err(db)?;
                let link = link.value().to_owned();
                let mut connection: Connection<String> = serde_json::from_slice(bytes.value())
                    .map_err(|e| corrupt(format!("connections/{link}"), e))?;
                let end_user = connection.end_user.clone();
                let connection_link = connection.link_name.clone();
                let mut changed = 0;
                connection.credentials = connection.credentials.try_map(|field, sealed| {
                    let slot = SealedSlot::Credential {
                        end_user: end_user.clone(),
                        link: connection_link.clone(),
                        field: field.to_owned(),
                    };
                    Ok::<_, StoreError>(match each(&slot, &sealed)? {
                        Some(new) => {
                            changed += 1;
                            new
                        }
                        None => sealed,
                    })
                })?;
                if changed > 0 {
                    let bytes = serde_json::to_vec(&connection)
                        .map_err(|e| corrupt(format!("connections/{link}"), e))?;
                    updates.push((link, bytes));
                    count += changed;
                }
            }
            for (link, bytes) in &updates {
                table.insert(link.as_str(), bytes.as_slice()).map_err(db)?;
            }
            Ok(count)
        }
        SealedArea::Authorizations => {
            let mut table = txn
                .open_table(super::sessions::AUTHORIZATIONS)
                .map_err(db)?;
            let mut updates = Vec::new();
            for row in table.iter().map_err(db)? {
                let (key, bytes) = row.map_err(db)?;
                let mut parsed = super::sessions::decode(bytes.value())?;
                let Some(sealed) = &parsed.verifier else {
                    continue;
                };
                let slot = SealedSlot::Verifier {
                    state_hash: key.value().to_owned(),
                };
                if let Some(new) = each(&slot, sealed)? {
                    parsed.verifier = Some(new);
                    updates.push((key.value().to_owned(), super::sessions::encode(&parsed)?));
                }
            }
            for (key, bytes) in &updates {
                table.insert(key.as_str(), bytes.as_slice()).map_err(db)?;
            }
            Ok(updates.len())
        }
        SealedArea::Artifacts => {
            let mut table = txn.open_table(super::plugins::ARTIFACTS).map_err(db)?;
            let mut updates = Vec::new();
            for row in table.iter().map_err(db)? {
                let (key, value) = row.map_err(db)?;
                let (sha256, compatibility) = key.value();
                let slot = SealedSlot::ArtifactTag {
                    sha256: sha256.to_owned(),
                    compatibility: compatibility.to_owned(),
                };
                if let Some(tag) = each(&slot, value.value().0)? {
                    updates.push((sha256.to_owned(), compatibility.to_owned(), tag));
                }
            }
            for (sha, compatibility, tag) in &updates {
                // Read again for the bytes: holding every artifact at once
                // would cost their total size in memory.
                let bytes = match table
                    .get((sha.as_str(), compatibility.as_str()))
                    .map_err(db)?
                {
                    Some(row) => row.value().1.to_vec(),
                    None => continue,
                };
                table
                    .insert(
                        (sha.as_str(), compatibility.as_str()),
                        (tag.as_str(), bytes.as_slice()),
                    )
                    .map_err(db)?;
            }
            Ok(updates.len())
        }
        SealedArea::ServiceSecrets | SealedArea::HookSecrets => Ok(0),
    }
}

impl Redb {
    fn reseal(&self, area: SealedArea, each: &ResealFn<'_>) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let count = visit_in(&txn, area, each)?;
        if count > 0 {
            txn.commit().map_err(db)?;
        }
        Ok(count)
    }

    fn sealed_values(&self, area: SealedArea) -> Result<Vec<(SealedSlot, String)>, StoreError> {
        if let Some((definition, slot)) = named_table(area) {
            let txn = self.db.begin_read().map_err(db)?;
            let table = txn.open_table(definition).map_err(db)?;
            let mut out = Vec::new();
            for row in table.iter().map_err(db)? {
                let (key, sealed) = row.map_err(db)?;
                out.push((slot(key.value()), sealed.value().to_owned()));
            }
            return Ok(out);
        }
        // The other areas keep sealed values inside rows: walk them with a
        // visitor that collects and changes nothing (the write is dropped).
        let found = std::sync::Mutex::new(Vec::new());
        let txn = self.db.begin_write().map_err(db)?;
        visit_in(&txn, area, &|slot: &SealedSlot, sealed: &str| {
            found
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push((slot.clone(), sealed.to_owned()));
            Ok(None)
        })?;
        txn.abort().map_err(db)?;
        Ok(found
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner()))
    }
}

#[async_trait]
impl crate::meta::SealedRows for RedbBackend {
    async fn sealed_values(
        &self,
        area: SealedArea,
    ) -> Result<Vec<(SealedSlot, String)>, StoreError> {
        self.run(move |redb| redb.sealed_values(area)).await
    }

    async fn reseal(&self, area: SealedArea, reseal: Reseal) -> Result<usize, StoreError> {
        self.run(move |redb| redb.reseal(area, &*reseal)).await
    }
}
