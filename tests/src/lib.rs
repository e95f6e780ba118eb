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

/// One test per plugin language for each scenario: `each_language!(a, b)`
/// turns `async fn a(language: Language)` into the tests `rust::a`,
/// `python::a` and `javascript::a`, so a failure names its language and
/// the languages run in parallel.
#[macro_export]
macro_rules! each_language {
    ($($scenario:ident),* $(,)?) => {
        $crate::each_language!(@in rust, Rust, $($scenario),*);
        $crate::each_language!(@in python, Python, $($scenario),*);
        $crate::each_language!(@in javascript, JavaScript, $($scenario),*);
    };
    (@in $module:ident, $language:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(::junction_host::Language::$language).await
                }
            )*
        }
    };
}
