//! The sealed values of PostgreSQL's areas, listed where they live and
//! re-sealed one area per transaction (the rows locked while it runs).

use async_trait::async_trait;

use super::{Postgres, Prepared, decode};
use crate::StoreError;
use crate::encoded::encode;
use crate::meta::{Reseal, ResealFn, SealedArea, SealedSlot};
use junction_core::model::Connection;

/// Passes each sealed value of `area` through `each` inside `txn`, storing
/// what it returns; returns how many values changed.
async fn visit(
    txn: &deadpool_postgres::Transaction<'_>,
    area: SealedArea,
    each: &ResealFn<'_>,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    match area {
        SealedArea::ServiceSecrets => {
            let rows = txn
                .rows(
                    "SELECT name, sealed_client_secret FROM services \
                     WHERE sealed_client_secret IS NOT NULL ORDER BY name FOR UPDATE",
                    &[],
                )
                .await?;
            for row in &rows {
                let name: &str = row.get(0);
                let slot = SealedSlot::ServiceSecret {
                    service: name.to_owned(),
                };
                if let Some(new) = each(&slot, row.get(1))? {
                    txn.run(
                        "UPDATE services SET sealed_client_secret = $2 WHERE name = $1",
                        &[&name, &new],
                    )
                    .await?;
                    changed += 1;
                }
            }
        }
        SealedArea::Connections => {
            let rows = txn
                .rows(
                    "SELECT link_name, doc, end_user FROM connections ORDER BY end_user, link_name FOR UPDATE",
                    &[],
                )
                .await?;
            for row in &rows {
                let link: &str = row.get(0);
                let end_user: &str = row.get(2);
                let mut connection: Connection<String> =
                    decode(&format!("connections/{link}"), row.get(1))?;
                let mut fields = 0;
                connection.credentials = connection.credentials.try_map(|field, sealed| {
                    let slot = SealedSlot::Credential {
                        end_user: connection.end_user.clone(),
                        link: link.to_owned(),
                        field: field.to_owned(),
                    };
                    Ok::<_, StoreError>(match each(&slot, &sealed)? {
                        Some(new) => {
                            fields += 1;
                            new
                        }
                        None => sealed,
                    })
                })?;
                if fields > 0 {
                    let doc = encode(&format!("connections/{link}"), &connection)?;
                    txn.run(
                        "UPDATE connections SET doc = $2 WHERE link_name = $1 AND end_user = $3",
                        &[&link, &doc, &end_user],
                    )
                    .await?;
                    changed += fields;
                }
            }
        }
        SealedArea::HookSecrets => {
            let rows = txn
                .rows(
                    "SELECT plugin, hook, sealed FROM hook_secrets ORDER BY plugin, hook FOR UPDATE",
                    &[],
                )
                .await?;
            for row in &rows {
                let (plugin, hook): (&str, &str) = (row.get(0), row.get(1));
                let slot = SealedSlot::HookSecret {
                    key: format!("{plugin}/{hook}"),
                };
                if let Some(new) = each(&slot, row.get(2))? {
                    txn.run(
                        "UPDATE hook_secrets SET sealed = $3 WHERE plugin = $1 AND hook = $2",
                        &[&plugin, &hook, &new],
                    )
                    .await?;
                    changed += 1;
                }
            }
        }
        SealedArea::Authorizations => {
            let rows = txn
                .rows(
                    "SELECT state_hash, doc FROM oauth_authorizations ORDER BY state_hash FOR UPDATE",
                    &[],
                )
                .await?;
            for row in &rows {
                let state_hash: &str = row.get(0);
                let mut parsed: super::sessions::Row = decode("oauth_authorizations", row.get(1))?;
                let Some(sealed) = &parsed.verifier else {
                    continue;
                };
                let slot = SealedSlot::Verifier {
                    state_hash: state_hash.to_owned(),
                };
                if let Some(new) = each(&slot, sealed)? {
                    parsed.verifier = Some(new);
                    let doc = encode("oauth_authorizations", &parsed)?;
                    txn.run(
                        "UPDATE oauth_authorizations SET doc = $2 WHERE state_hash = $1",
                        &[&state_hash, &doc],
                    )
                    .await?;
                    changed += 1;
                }
            }
        }
        SealedArea::Artifacts => {
            let rows = txn
                .rows(
                    "SELECT sha256, compatibility, tag FROM artifacts \
                     ORDER BY sha256, compatibility FOR UPDATE",
                    &[],
                )
                .await?;
            for row in &rows {
                let (sha256, compatibility): (&str, &str) = (row.get(0), row.get(1));
                let slot = SealedSlot::ArtifactTag {
                    sha256: sha256.to_owned(),
                    compatibility: compatibility.to_owned(),
                };
                if let Some(tag) = each(&slot, row.get(2))? {
                    txn.run(
                        "UPDATE artifacts SET tag = $3 WHERE sha256 = $1 AND compatibility = $2",
                        &[&sha256, &compatibility, &tag],
                    )
                    .await?;
                    changed += 1;
                }
            }
        }
    }
    Ok(changed)
}

#[async_trait]
impl crate::meta::SealedRows for Postgres {
    async fn sealed_values(
        &self,
        area: SealedArea,
    ) -> Result<Vec<(SealedSlot, String)>, StoreError> {
        let found = std::sync::Mutex::new(Vec::new());
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        visit(&txn, area, &|slot: &SealedSlot, sealed: &str| {
            found
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push((slot.clone(), sealed.to_owned()));
            Ok(None)
        })
        .await?;
        txn.rollback().await?;
        Ok(found
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner()))
    }

    async fn reseal(&self, area: SealedArea, reseal: Reseal) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let changed = visit(&txn, area, &*reseal).await?;
        txn.commit().await?;
        Ok(changed)
    }
}
