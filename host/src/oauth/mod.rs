//! OAuth 2.0 connections. So far: lenient parsing and classification of
//! token endpoint responses ([`token`]). Service definitions, the catalog,
//! the authorize/callback flow and the refresh engine build on it.

pub mod token;
