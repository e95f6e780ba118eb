//! Metadata (the schema version, the admin token's hash, the master key's
//! check value) and the sealed values as a whole: where each lives
//! ([`SealedSlot`], which also names the associated data it is sealed
//! with) and the one operation a key rotation needs from a backend,
//! re-sealing an area in one transaction with a function it is handed.
//! The backend never sees a key, only ciphertext in and ciphertext out.

use async_trait::async_trait;

use crate::StoreError;

/// Meta keys the sealing layer reads and writes.
pub mod keys {
    /// The sha256 (hex) of the admin token.
    pub const ADMIN_TOKEN_HASH: &str = "admin_token_sha256";
    /// A known text sealed with the master key, to recognise the key.
    pub const KEY_CHECK: &str = "master_key_check";
}

/// The areas that hold sealed values, in the order a rotation re-seals them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedArea {
    /// Services' OAuth client secrets.
    ServiceSecrets,
    /// Connections' credential fields.
    Connections,
    /// Webhook secrets.
    HookSecrets,
    /// Pending authorizations' PKCE verifiers.
    Authorizations,
    /// Artifact tags.
    Artifacts,
}

impl SealedArea {
    /// Every area.
    pub const ALL: [SealedArea; 5] = [
        SealedArea::ServiceSecrets,
        SealedArea::Connections,
        SealedArea::HookSecrets,
        SealedArea::Authorizations,
        SealedArea::Artifacts,
    ];
}

/// Where one sealed value lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedSlot {
    /// A service's client secret.
    ServiceSecret { service: String },
    /// One credential field of a connection (of an end user, or the
    /// organisation's).
    Credential {
        end_user: Option<String>,
        link: String,
        field: String,
    },
    /// A webhook's secret, `plugin/hook`.
    HookSecret { key: String },
    /// A pending authorization's PKCE verifier.
    Verifier { state_hash: String },
    /// An artifact's tag.
    ArtifactTag {
        sha256: String,
        compatibility: String,
    },
}

impl SealedSlot {
    /// The associated data the value is sealed with: a value moved to
    /// another slot does not open.
    pub fn aad(&self) -> String {
        match self {
            SealedSlot::ServiceSecret { service } => format!("services/{service}/client_secret"),
            SealedSlot::Credential {
                end_user: None,
                link,
                field,
            } => format!("connections/{link}/{field}"),
            // Read from the right, the field and the link name (neither
            // holds `/`) end it, so every end user id gives its own text.
            SealedSlot::Credential {
                end_user: Some(user),
                link,
                field,
            } => format!("end-users/{user}/connections/{link}/{field}"),
            SealedSlot::HookSecret { key } => format!("hooks/{key}"),
            SealedSlot::Verifier { state_hash } => {
                format!("oauth_authorizations/{state_hash}/verifier")
            }
            SealedSlot::ArtifactTag {
                sha256,
                compatibility,
            } => format!("artifacts/{sha256}/{compatibility}"),
        }
    }
}

/// Re-seals one value: `Ok(None)` leaves it as it is.
pub type ResealFn<'a> =
    dyn Fn(&SealedSlot, &str) -> Result<Option<String>, StoreError> + Send + Sync + 'a;
/// A re-sealing function handed to a backend.
pub type Reseal = std::sync::Arc<ResealFn<'static>>;

/// Metadata rows.
#[async_trait]
pub trait MetaRows: Send + Sync {
    /// The schema version the backend's data is at.
    async fn schema_version(&self) -> Result<u32, StoreError>;
    /// A metadata value.
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a metadata value.
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Sets a metadata value unless it has one; whether this call set it
    /// (of hosts racing on a new store, exactly one does).
    async fn add_meta(&self, key: &str, value: &str) -> Result<bool, StoreError>;
}

/// The sealed values as a whole, for the master key's lifecycle.
#[async_trait]
pub trait SealedRows: Send + Sync {
    /// Every sealed value of `area`, with where it lives.
    async fn sealed_values(
        &self,
        area: SealedArea,
    ) -> Result<Vec<(SealedSlot, String)>, StoreError>;
    /// Passes every sealed value of `area` through `reseal` and stores what
    /// it returns, in one transaction; returns how many changed.
    async fn reseal(&self, area: SealedArea, reseal: Reseal) -> Result<usize, StoreError>;
}
