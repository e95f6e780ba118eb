//! The application layer between the server (and CLI) and the machinery
//! below: the [`registry`] of deployed plugins (upload, versions, load at
//! start, the executor the dispatcher runs deliveries with), and the
//! [`ports`] that wire the runtime's traits to the store, the journal and
//! the token keeper.

pub mod ports;
pub mod registry;

pub use registry::{Registry, RegistryError};
