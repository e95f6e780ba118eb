//! The built-in service catalog ("Pick Your Service"): `catalog.toml`,
//! compiled into the binary, with each provider's real endpoints and quirks.
//! An entry becomes a service when an admin gives its client id (and
//! secret); until then it is listed as not configured.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::OAuthSettings;
use junction_store::{AuthType, Placement, Service};

const CATALOG: &str = include_str!("catalog.toml");

/// One provider in the catalog.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Its id, also the default service name.
    pub id: String,
    /// The provider's name for people.
    pub display_name: String,
    /// A grouping for pickers.
    pub category: String,
    /// Where the provider documents its API authentication.
    pub docs: String,
    /// How its connections authenticate.
    pub auth_type: AuthType,
    /// API base URL (may hold `{metadata}` placeholders).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Extra origins credentials may go to.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How credentials are attached; `Authorization: Bearer {token}` when absent.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// OAuth settings without the client id.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub oauth: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    service: Vec<CatalogEntry>,
}

/// Why a catalog entry cannot become a service.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the built-in catalog is invalid: {0}")]
    Invalid(String),
    #[error("no catalog entry `{0}`; GET /v1/services lists them")]
    Unknown(String),
}

/// Every entry of the built-in catalog, parsed once.
pub fn entries() -> Result<&'static [CatalogEntry], CatalogError> {
    static PARSED: OnceLock<Result<Vec<CatalogEntry>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            toml::from_str::<CatalogFile>(CATALOG)
                .map(|file| file.service)
                .map_err(|e| e.to_string())
        })
        .as_deref()
        .map_err(|e| CatalogError::Invalid(e.clone()))
}

/// The entry with this id.
pub fn entry(id: &str) -> Result<&'static CatalogEntry, CatalogError> {
    entries()?
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| CatalogError::Unknown(id.to_owned()))
}

impl CatalogEntry {
    /// The entry's OAuth settings with `client_id` filled in.
    pub fn oauth_settings(&self, client_id: &str) -> Result<Option<OAuthSettings>, CatalogError> {
        let Some(table) = &self.oauth else {
            return Ok(None);
        };
        let mut table = table.clone();
        table.insert(
            "client_id".into(),
            toml::Value::String(client_id.to_owned()),
        );
        toml::Value::Table(table)
            .try_into()
            .map(Some)
            .map_err(|e: toml::de::Error| CatalogError::Invalid(format!("{}: {e}", self.id)))
    }

    /// The entry as a service named `name`, for `client_id` (empty until
    /// configured).
    pub fn to_service(&self, name: &str, client_id: &str) -> Result<Service, CatalogError> {
        Ok(Service {
            name: name.to_owned(),
            auth_type: self.auth_type,
            base_url: self.base_url.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            placement: match (self.auth_type, &self.placement) {
                (AuthType::Basic, _) => Placement::Basic { username: None },
                (_, Some(p)) => p.clone(),
                (_, None) => Placement::bearer(),
            },
            oauth: self.oauth_settings(client_id)?,
            has_client_secret: false,
            problem: None,
            created_at_ms: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_complete_and_valid() {
        let entries = entries().unwrap();
        assert!(entries.len() >= 25, "{} entries", entries.len());
        let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), entries.len(), "ids are unique");
        for required in [
            "google",
            "microsoft",
            "zoho-crm",
            "mailchimp",
            "slack",
            "github",
            "hubspot",
            "salesforce",
            "dropbox",
            "shopify",
            "stripe",
            "notion",
            "airtable",
            "asana",
            "atlassian",
            "box",
            "calendly",
            "discord",
            "intercom",
            "linear",
            "pipedrive",
            "quickbooks",
            "xero",
            "zendesk",
            "twilio",
            "sendgrid",
        ] {
            assert!(ids.contains(&required), "{required} is missing");
        }
        for entry in entries {
            junction_store::validate_service_name(&entry.id).unwrap();
            let service = entry.to_service(&entry.id, "client-id").unwrap();
            assert_eq!(
                service.oauth.is_some(),
                entry.auth_type == AuthType::Oauth2,
                "{}",
                entry.id
            );
            if let Some(oauth) = &service.oauth {
                oauth
                    .validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.id));
                assert!(oauth.token_url.starts_with("https://"), "{}", entry.id);
            }
            for host in &entry.allowed_hosts {
                junction_core::HostPattern::parse(host)
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.id));
            }
        }
        let mailchimp = entry("mailchimp").unwrap().to_service("mc", "id").unwrap();
        assert_eq!(mailchimp.oauth.unwrap().metadata_capture[0], "dc");
        assert!(matches!(entry("nope"), Err(CatalogError::Unknown(_))));
    }
}
