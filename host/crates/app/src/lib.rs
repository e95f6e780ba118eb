//! The application layer between the server (and CLI) and the machinery
//! below: what the API and the console both do, as functions with typed
//! errors ([`error`]) — [`services`], [`connections`] and [`plugins`] — the [`registry`]
//! of deployed plugins (upload, versions, load at start, the executor the
//! dispatcher runs deliveries with), and the [`ports`] that wire the
//! runtime's traits to the store, the journal and the token keeper.

pub mod connections;
pub mod error;
pub mod plugins;
pub mod ports;
pub mod registry;
pub mod services;

pub use error::AppError;
pub use registry::{Registry, RegistryError};
