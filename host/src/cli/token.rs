//! `junction token rotate`: issues a new admin token; `junction key
//! rotate`: re-seals every secret under a new master key. With the server
//! stopped each rewrites the store directly; with the server running (which
//! holds the redb file) it asks the server, which does the same. Neither the
//! token nor a key ever crosses the network.

use reqwest::Method;

use super::CliError;
use super::client::{Client, ServerArgs};
use junction_server::auth::{AdminAuth, token_path};
use junction_store::keys::KeyConfig;
use junction_store::{DB_FILE, Store, StoreError};

/// The data directory, when it holds Junction data.
fn existing_data_dir(server: &ServerArgs) -> Result<&std::path::Path, CliError> {
    let data_dir = server.data_dir.as_path();
    if !data_dir.join(DB_FILE).is_file() {
        return Err(CliError::Usage(format!(
            "no Junction data in {}; start `junction serve` there first, or give --data-dir",
            data_dir.display()
        )));
    }
    Ok(data_dir)
}

/// `junction token rotate`.
pub async fn rotate(server: &ServerArgs) -> Result<(), CliError> {
    let data_dir = existing_data_dir(server)?;
    let path = token_path(data_dir);
    let token = match Store::open_url(&server.store, data_dir, KeyConfig::from_env()).await {
        Ok(store) => {
            let (auth, _) = AdminAuth::load_or_issue(&store).await?;
            auth.rotate(&store).await?
        }
        Err(StoreError::InUse { .. }) => {
            let client = Client::new(server)?;
            let _: serde_json::Value = client
                .send(client.request(Method::POST, &["v1", "token", "rotate"])?)
                .await?;
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| {
                    CliError::Usage(format!(
                        "the server rotated the token but {} cannot be read: {e}",
                        path.display()
                    ))
                })?
        }
        Err(other) => return Err(other.into()),
    };
    println!(
        "new admin token (the old one no longer works; also in {}):",
        path.display()
    );
    println!("{token}");
    Ok(())
}

/// `junction key rotate`.
pub async fn rotate_key(server: &ServerArgs) -> Result<(), CliError> {
    let data_dir = existing_data_dir(server)?;
    let (key_id, previous, resealed) =
        match Store::open_url(&server.store, data_dir, KeyConfig::from_env()).await {
            Ok(store) => {
                let rotation = store.rotate_key().await?;
                (
                    rotation.key_id,
                    rotation.previous_key_id,
                    rotation.resealed as u64,
                )
            }
            Err(StoreError::InUse { .. }) => {
                let client = Client::new(server)?;
                let answer: serde_json::Value = client
                    .send(client.request(Method::POST, &["v1", "key", "rotate"])?)
                    .await?;
                let text = |field: &str| answer[field].as_str().unwrap_or("?").to_owned();
                (
                    text("key_id"),
                    text("previous_key_id"),
                    answer["resealed"].as_u64().unwrap_or(0),
                )
            }
            Err(other) => return Err(other.into()),
        };
    println!(
        "master key rotated: {resealed} secrets re-sealed under key {key_id} (was {previous}); {} holds the new key",
        data_dir.join(junction_store::crypto::KEY_FILE).display()
    );
    Ok(())
}
