//! Services: the API definitions connections are made to, each with its
//! OAuth client secret sealed beside it.

use async_trait::async_trait;

use crate::StoreError;
use junction_core::model::Service;

/// Services and their sealed client secrets.
#[async_trait]
pub trait ServiceRows: Send + Sync {
    /// Writes `service`, which must be new, or must exist when `replace` is
    /// set, with its sealed client secret when given (`None` keeps the
    /// stored one), in one transaction; `has_client_secret` is set from
    /// what is stored.
    async fn put_service(
        &self,
        service: &Service,
        replace: bool,
        sealed_client_secret: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The service with this name.
    async fn service(&self, name: &str) -> Result<Option<Service>, StoreError>;
    /// Every service, by name.
    async fn services(&self) -> Result<Vec<Service>, StoreError>;
    /// The sealed OAuth client secret of `service`.
    async fn sealed_client_secret(&self, service: &str) -> Result<Option<String>, StoreError>;
    /// Removes a service and its secret; refused (`InUse` by the link
    /// names) while a connection uses it.
    async fn delete_service(&self, name: &str) -> Result<(), StoreError>;
}
