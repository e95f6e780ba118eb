//! `junction token rotate`: issues a new admin token. With the server
//! stopped it rewrites the store directly; with the server running (which
//! holds the redb file) it asks the server, which writes the new token to the
//! same 0600 file. Either way the token never crosses the network.

use reqwest::Method;

use super::CliError;
use super::client::{Client, ServerArgs};
use crate::server::auth::{AdminAuth, token_path};
use crate::store::{DB_FILE, Store, StoreError};

/// `junction token rotate`.
pub async fn rotate(server: &ServerArgs) -> Result<(), CliError> {
    let data_dir = &server.data_dir;
    if !data_dir.join(DB_FILE).is_file() {
        return Err(CliError::Usage(format!(
            "no Junction data in {}; start `junction serve` there first, or give --data-dir",
            data_dir.display()
        )));
    }
    let path = token_path(data_dir);
    let token = match Store::open(data_dir) {
        Ok(store) => {
            let (auth, _) = AdminAuth::load_or_issue(&store)?;
            auth.rotate(&store)?
        }
        Err(StoreError::Db(redb::Error::DatabaseAlreadyOpen)) => {
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
