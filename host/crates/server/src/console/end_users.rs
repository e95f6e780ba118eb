//! Console pages for end users — the embedding app's users who have
//! connected accounts: who they are, each one's connections, issuing a
//! connect link for one (to copy and send them), and deleting one (their
//! OAuth tokens revoked at the providers, every connection removed).

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::connections::ConnectionRow;
use super::session::{Flash, Session};
use super::{Chrome, PageError, done, format, in_words, render};
use crate::AppState;
use crate::connect::{self, NewConnectLink};
use crate::stored;
use junction_app::connections::{self as api, Owner};

/// The end-user pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/end-users", get(list))
        .route("/end-users/connect-link", post(issue_link))
        .route("/end-users/{id}", get(show))
        .route("/end-users/{id}/delete", post(delete))
}

#[derive(Template)]
#[template(path = "end_users.html")]
struct ListPage {
    page: Chrome,
    /// Id, its path segment, how many connections.
    users: Vec<(String, String, usize)>,
    /// Every service, for the connect-link form.
    services: Vec<String>,
    /// A link just issued: its URL and when it expires.
    issued: Option<(String, String)>,
    /// The connect-link form's end user.
    end_user: String,
}

async fn list_page(
    state: &AppState,
    session: &Session,
    issued: Option<(String, String)>,
    end_user: String,
    error: Option<String>,
) -> Result<Response, PageError> {
    let users = api::end_users(&state.store).await?;
    let store = state.store.clone();
    let services = stored(async move { store.services().await })
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let mut chrome = Chrome::new(session, "end-users", "End users");
    if let Some(error) = error {
        chrome = chrome.with_error(error);
    }
    let page = ListPage {
        page: chrome,
        users: users
            .into_iter()
            .map(|u| (u.id.clone(), super::segment(&u.id), u.connections))
            .collect(),
        services,
        issued,
        end_user,
    };
    Ok(render(&page))
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    list_page(&state, &session, None, String::new(), None).await
}

/// The connect-link form.
#[derive(serde::Deserialize)]
struct LinkFields {
    end_user: String,
    service: String,
    #[serde(default)]
    link_name: String,
}

/// Issues a connect link and shows it to copy.
async fn issue_link(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(fields): Form<LinkFields>,
) -> Result<Response, PageError> {
    let link_name = fields.link_name.trim().to_owned();
    let asked = NewConnectLink {
        end_user: fields.end_user.trim().to_owned(),
        service: fields.service,
        link_name: (!link_name.is_empty()).then_some(link_name),
        scopes: None,
        expires_in: None,
        app: None,
    };
    let end_user = asked.end_user.clone();
    match connect::issue(&state, asked).await {
        Ok(issued) => {
            let expires = format::relative(issued.expires_at_ms);
            list_page(
                &state,
                &session,
                Some((issued.url, expires)),
                end_user,
                None,
            )
            .await
        }
        Err(err) => {
            let mut response =
                list_page(&state, &session, None, end_user, Some(err.into_message())).await?;
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(response)
        }
    }
}

#[derive(Template)]
#[template(path = "end_user.html")]
struct UserPage {
    page: Chrome,
    id: String,
    segment: String,
    connections: Vec<ConnectionRow>,
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let views = api::list(&state.store, &Owner::EndUser(id.clone())).await?;
    if views.is_empty() {
        return Err(PageError::not_found(format!(
            "End user `{id}` has no connections."
        )));
    }
    let page = UserPage {
        page: Chrome::new(&session, "end-users", format!("End user {id}")),
        segment: super::segment(&id),
        connections: views.iter().map(ConnectionRow::from).collect(),
        id,
    };
    Ok(render(&page))
}

async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match api::delete_end_user(&state.store, &state.tokens, &id).await {
        Ok(done_) => {
            let mut message = format!(
                "End user `{id}` is deleted: {} connection(s) removed, {} revoked at the provider.",
                done_.deleted.len(),
                done_.revoked.len()
            );
            if !done_.problems.is_empty() {
                message.push_str(&format!(
                    " Not confirmed by the provider: {}.",
                    done_.problems.join("; ")
                ));
            }
            done(Flash::ok(message), "/end-users")
        }
        Err(err) => done(
            Flash::error(in_words(err)),
            &format!("/end-users/{}", super::segment(&id)),
        ),
    }
}
