//! What the application functions (services, connections, plugins)
//! refuse and why, as kinds a surface maps to its
//! own answers: the API to statuses and codes, the console to form
//! messages. A [`FieldError`] names the wrong field as data.

use junction_core::FieldError;
use junction_store::StoreError;

/// Why an application function refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// One field of the input is wrong.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The input is wrong as a whole.
    #[error("{0}")]
    Invalid(String),
    /// What it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// It is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// It cannot be done now (a plugin whose active version cannot load).
    #[error("{0}")]
    Unavailable(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The built-in service catalog cannot be read: a defect of this build.
    #[error("the built-in service catalog")]
    Catalog(#[source] junction_oauth::catalog::CatalogError),
    /// The store did not return what it had just written.
    #[error("the store did not return the {0} it just wrote")]
    NotKept(&'static str),
}

impl AppError {
    /// The field that is wrong, when one is.
    pub fn field(&self) -> Option<&FieldError> {
        match self {
            AppError::Field(field) => Some(field),
            _ => None,
        }
    }
}
