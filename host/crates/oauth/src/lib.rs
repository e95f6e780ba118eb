//! OAuth 2.0 connections: a service's OAuth settings ([`settings`]), the
//! authorize/callback and client-credentials flows ([`flow`]), and lenient
//! parsing and classification of token endpoint responses ([`token`]), and
//! the single-flight refresh engine ([`refresh`]). The catalog builds on these.

pub mod catalog;
pub mod flow;
pub mod refresh;
pub mod token;

pub use flow::{
    Callback, ClientError, FlowError, OAuth, Requester, Started, forget_state, pending_target,
};
pub use junction_core::model::Freshness;
pub use junction_core::oauth_settings::{self as settings, ClientAuth, Grant, OAuthSettings};
pub use refresh::{SweepReport, TokenKeeper, UNAUTHORIZED_INTERVAL};
