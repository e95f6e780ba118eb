//! The Model Context Protocol at `/mcp` (Streamable HTTP, served by
//! `rmcp`): every plugin whose manifest declares a `tool` is a tool;
//! `tools/call` runs the plugin in the sandbox with the arguments as the
//! event payload (kind `tool.call`) and answers its output as the tool's
//! structured result, or its classified failure as a tool error. Callers
//! authenticate with an API key, which sees only the tools of the plugins
//! it names, or with the admin token, which sees them all.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Value, json};

use super::AppState;
use super::api_keys::{self, Caller};
use super::error::ApiError;
use junction_app::plugins::{self as app, InvokeRequest};
use junction_core::Outcome;
use junction_core::manifest::ToolSpec;

/// The tools of the plugins a caller may run, for one session.
#[derive(Clone)]
pub(crate) struct Tools {
    state: AppState,
}

/// The `/mcp` service.
pub(crate) fn service(state: AppState) -> StreamableHttpService<Tools, LocalSessionManager> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(public) = url::Url::parse(&state.public_url)
        && let Some(host) = public.host_str()
    {
        hosts.push(host.to_owned());
    }
    // No sessions: the current revision (2026-07-28) has none, and older
    // clients are served statelessly too, so any host sharing the store
    // answers any request, behind any load balancer.
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_legacy_session_mode(false);
    StreamableHttpService::new(
        move || {
            Ok(Tools {
                state: state.clone(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Middleware for `/mcp`: the admin token or an API key, as a [`Caller`]
/// the tool handlers read from the request's parts.
pub(crate) async fn require_caller(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = super::auth::caller(
        &state,
        request.headers(),
        "MCP needs `Authorization: Bearer <API key>`",
    )
    .await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

fn caller_of(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| McpError::invalid_request("the request carries no caller", None))
}

/// The end user an app's key (or the admin) names for this MCP request,
/// in the [`api_keys::END_USER_HEADER`] header.
fn named_end_user(context: &RequestContext<RoleServer>) -> Result<Option<String>, McpError> {
    let Some(parts) = context.extensions.get::<axum::http::request::Parts>() else {
        return Ok(None);
    };
    match parts.headers.get(api_keys::END_USER_HEADER) {
        None => Ok(None),
        Some(value) => value.to_str().map(|v| Some(v.to_owned())).map_err(|_| {
            McpError::invalid_params(
                format!("the {} header is not text", api_keys::END_USER_HEADER),
                None,
            )
        }),
    }
}

impl Tools {
    /// Each tool the caller may call, with the plugin behind it, by name.
    async fn offered(&self, caller: &Caller) -> Result<Vec<(String, ToolSpec)>, McpError> {
        let records = self
            .state
            .store
            .plugins()
            .await
            .map_err(|err| McpError::internal_error(err.to_string(), None))?;
        let mut tools: Vec<(String, ToolSpec)> = records
            .iter()
            .filter(|record| match caller {
                Caller::Admin => true,
                Caller::Key(key) => key.plugins.contains(&record.name),
            })
            .filter_map(|record| {
                let tool = record.active()?.manifest.tool.clone()?;
                Some((record.name.clone(), tool))
            })
            .collect();
        tools.sort_by(|a, b| (&a.1.name, &a.0).cmp(&(&b.1.name, &b.0)));
        // Two plugins declaring one name: the first (by plugin name) is it.
        tools.dedup_by(|later, first| later.1.name == first.1.name);
        Ok(tools)
    }
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("junction", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Each tool is a Junction plugin run in a sandbox; its connections' credentials never reach it.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller_of(&context)?;
        let tools = self
            .offered(&caller)
            .await?
            .into_iter()
            .map(|(_, spec)| {
                let schema = match spec.input_schema {
                    Some(Value::Object(schema)) => schema,
                    _ => serde_json::Map::new(),
                };
                Tool::new(spec.name, spec.description, Arc::new(schema))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller_of(&context)?;
        let end_user = match caller.end_user_for(named_end_user(&context)?) {
            Ok(end_user) => end_user,
            Err(refused) => {
                return Err(McpError::invalid_params(refused.into_message(), None));
            }
        };
        let offered = self.offered(&caller).await?;
        let Some((plugin, _)) = offered.iter().find(|(_, spec)| spec.name == request.name) else {
            return Err(McpError::invalid_params(
                format!("no tool named `{}` for this key", request.name),
                None,
            ));
        };
        let arguments = serde_json::value::to_raw_value(&request.arguments.unwrap_or_default())
            .map_err(|err| McpError::invalid_params(format!("the arguments: {err}"), None))?;
        let invoked = app::invoke(
            &self.state.registry,
            &self.state.events,
            plugin,
            InvokeRequest {
                kind: Some("tool.call".to_owned()),
                payload: Some(arguments),
                id: None,
                end_user: end_user.clone(),
            },
        )
        .await;
        let record = match invoked {
            Ok(encoded) => encoded.value,
            Err(err) => {
                let message = ApiError::from(err).into_message();
                return Ok(CallToolResult::structured_error(json!({
                    "reason": "not-run",
                    "message": message,
                }))
                .into());
            }
        };
        Ok(match record.outcome {
            Outcome::Ok { output } => CallToolResult::structured(json!({
                "output": output,
                "execution": record.id,
            })),
            Outcome::Failed { failure, message } => {
                let connect = match &end_user {
                    Some(user) => self.connect_links(user, &record.missing_connections).await,
                    None => Vec::new(),
                };
                let mut error = json!({
                    "reason": failure,
                    "message": message,
                    "execution": record.id,
                });
                if !connect.is_empty() {
                    error["connect"] = Value::Array(connect);
                }
                CallToolResult::structured_error(error)
            }
        }
        .into())
    }
}

impl Tools {
    /// A fresh connect link for each link name `end_user` lacked, so the
    /// agent can hand it to them: the service is the one other connections
    /// of that link name use (the organisation's first).
    async fn connect_links(&self, end_user: &str, missing: &[String]) -> Vec<Value> {
        if missing.is_empty() {
            return Vec::new();
        }
        let known = self
            .state
            .store
            .sealed_connections()
            .await
            .unwrap_or_default();
        let mut links = Vec::new();
        for link in missing {
            let Some(service) = known
                .iter()
                .find(|c| c.link_name == *link)
                .map(|c| c.service.clone())
            else {
                links.push(json!({
                    "link_name": link,
                    "problem": format!("no service is known for link name `{link}`; ask the app's admin"),
                }));
                continue;
            };
            let asked = super::connect::NewConnectLink {
                end_user: end_user.to_owned(),
                service,
                link_name: Some(link.clone()),
                scopes: None,
                expires_in: None,
                app: None,
            };
            match super::connect::issue(&self.state, asked).await {
                Ok(issued) => links.push(json!({
                    "link_name": issued.link_name,
                    "service": issued.service,
                    "url": issued.url,
                    "expires_at_ms": issued.expires_at_ms,
                })),
                Err(err) => links.push(json!({
                    "link_name": link,
                    "problem": err.into_message(),
                })),
            }
        }
        links
    }
}
