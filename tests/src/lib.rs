//! Support for Junction's end-to-end tests: building the plugins once,
//! a harness around the real runtime and store, and mock providers — small
//! axum servers on 127.0.0.1 that speak MailChimp's and Zoho CRM's wire
//! formats and record what they received.

pub mod browser;
pub mod echo;
pub mod end_users;
pub mod harness;
pub mod host;
pub mod load;
pub mod mailchimp;
pub mod mcp;
pub mod oauth;
pub mod plugins;
pub mod postgres;
pub mod server;
pub mod zoho;
