//! Console pages for end users — the embedding app's users who have
//! connected accounts: who they are, each one's connections, and deleting
//! one (their OAuth tokens revoked at the providers, every connection
//! removed).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::connections::ConnectionRow;
use super::session::{Flash, Session};
use super::{Chrome, PageError, done, in_words, render};
use crate::AppState;
use junction_app::connections::{self as api, Owner};

/// The end-user pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/end-users", get(list))
        .route("/end-users/{id}", get(show))
        .route("/end-users/{id}/delete", post(delete))
}

#[derive(Template)]
#[template(path = "end_users.html")]
struct ListPage {
    page: Chrome,
    /// Id, its path segment, how many connections.
    users: Vec<(String, String, usize)>,
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let users = api::end_users(&state.store).await?;
    let page = ListPage {
        page: Chrome::new(&session, "end-users", "End users"),
        users: users
            .into_iter()
            .map(|u| (u.id.clone(), super::segment(&u.id), u.connections))
            .collect(),
    };
    Ok(render(&page))
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
