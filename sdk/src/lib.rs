//! Write Junction plugins — custom functions that run when events fire — in plain Rust.
//!
//! A plugin is one function from an [`Event`] to a JSON-serialisable result. The
//! host runs it in a sandbox; the only ways out are the modules of this crate:
//! [`http`] (outbound HTTP done by the host, with a named connection's
//! credentials attached by the host), [`connections`] (lookup, never secrets),
//! [`kv`] (a private key-value store) and the logging macros ([`info!`] and
//! friends).
//!
//! ```no_run
//! use junction_sdk::{Event, Request, Result};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Sync { campaign_id: String }
//!
//! fn handle(event: Event) -> Result<serde_json::Value> {
//!     let sync: Sync = event.payload()?;
//!     let campaign: serde_json::Value = Request::get(format!("/campaigns/{}", sync.campaign_id))
//!         .connection("mailchimp")
//!         .send()?
//!         .error_for_status()?
//!         .json()?;
//!     junction_sdk::info!("campaign {} has status {}", sync.campaign_id, campaign["status"]);
//!     Ok(campaign)
//! }
//!
//! junction_sdk::export!(handle);
//! ```
//!
//! Build it with `junction build <plugin dir>` (a `cdylib` crate compiled for
//! `wasm32-wasip2`) and run it with `junction run`.

// Lets the generated bindings name this crate by its public path from inside it too.
extern crate self as junction_sdk;

pub mod connections;
mod error;
mod event;
pub mod http;
pub mod kv;
pub mod log;
pub mod tool;

pub use error::{Error, Result};
pub use event::Event;
pub use http::{Method, Request, Response, send_all};
pub use serde_json::{Value, json};

/// Generated bindings for the `junction:plugin` world. Plugin authors do not
/// need them; they are public so that [`export!`] can reach them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "::junction_sdk::bindings",
        runtime_path: "::junction_sdk::__private::wit_bindgen::rt",
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

/// Support for the macros of this crate; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings;

    /// Runs a handler for one event and turns its result into the world's
    /// `result<string, string>`.
    pub fn run<F, O>(event: bindings::Event, handler: F) -> core::result::Result<String, String>
    where
        F: FnOnce(crate::Event) -> crate::Result<O>,
        O: serde::Serialize,
    {
        let event = crate::Event::from(event);
        match handler(event) {
            Ok(output) => serde_json::to_string(&output)
                .map_err(|err| format!("the handler's result cannot be serialised as JSON: {err}")),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// Exports a handler function as the plugin's entry point.
///
/// The function takes an [`Event`] and returns [`Result<T>`](Result) where `T`
/// is anything `serde` can serialise; the host records it as the execution's
/// JSON output. An `Err` becomes a `plugin-error` with the error's message.
///
/// ```no_run
/// fn handle(event: junction_sdk::Event) -> junction_sdk::Result<String> {
///     Ok(format!("got {}", event.kind))
/// }
/// junction_sdk::export!(handle);
/// ```
///
/// A plugin that is an MCP tool may name the type of its arguments, and
/// the host derives the tool's input schema from it at upload (see
/// [`tool`]): `junction_sdk::export!(handle, tool_input = CampaignSync);`
#[macro_export]
macro_rules! export {
    ($handler:path, tool_input = $input:ty) => {
        #[doc(hidden)]
        struct __JunctionPlugin;

        impl $crate::bindings::Guest for __JunctionPlugin {
            fn handle(
                event: $crate::bindings::Event,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                if event.kind == $crate::tool::DESCRIBE_KIND {
                    return Ok($crate::tool::input_schema::<$input>().to_string());
                }
                $crate::__private::run(event, $handler)
            }
        }

        $crate::bindings::__export_plugin_world!(__JunctionPlugin with_types_in $crate::bindings);
    };
    ($handler:path) => {
        #[doc(hidden)]
        struct __JunctionPlugin;

        impl $crate::bindings::Guest for __JunctionPlugin {
            fn handle(
                event: $crate::bindings::Event,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__private::run(event, $handler)
            }
        }

        $crate::bindings::__export_plugin_world!(__JunctionPlugin with_types_in $crate::bindings);
    };
}
