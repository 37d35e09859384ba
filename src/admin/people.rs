//! The users and phones pages of the console. Every change goes through
//! [`crate::admin::users`], the same functions and checks as the admin API.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::console::{Frame, error_page, see_other};
use super::session::{Console, console_path, server_error};
use super::users::{self, UserDetail, UserStatus};
use super::{ChangeError, Expected};
use crate::clock::format_utc;
use crate::http::AppState;
use crate::services::Services;
use crate::store::ADMIN_ROLE;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/unlock", post(unlock))
        .route("/admin/users/{id}", get(show))
        .route("/admin/users/{id}/link", post(link))
        .route("/admin/users/{id}/unlink", post(unlink))
        .route("/admin/users/{id}/move", post(move_phone))
        .route("/admin/users/{id}/status", post(set_status))
}

/// A change refused with a reason a person can act on; a store failure is logged.
fn refusal(error: &ChangeError) -> (StatusCode, String) {
    match error {
        ChangeError::Invalid { field, problem } => {
            let field = match *field {
                "phone_number" | "phone" => "phone number",
                "to" => "user to move to",
                other => other,
            };
            (StatusCode::BAD_REQUEST, format!("The {field} {problem}."))
        }
        ChangeError::NotFound => (
            StatusCode::NOT_FOUND,
            "There is no such user or number.".into(),
        ),
        ChangeError::Conflict(what) => (StatusCode::CONFLICT, format!("{what}.")),
        ChangeError::VersionMismatch => (
            StatusCode::CONFLICT,
            "The user changed since the page was shown; look again.".into(),
        ),
        ChangeError::Store(e) => {
            tracing::error!(error = %e, "console change failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Try again.".into(),
            )
        }
    }
}

struct UserRow {
    id: String,
    status: String,
    created_at: String,
    admin: bool,
    phones: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
struct UsersPage {
    frame: Frame,
    search: String,
    users: Vec<UserRow>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Search {
    phone: Option<String>,
    unlocked: Option<String>,
}

async fn row(services: &Services, detail: UserDetail) -> Result<UserRow, ChangeError> {
    let admin = services.store.has_role(&detail.user.id, ADMIN_ROLE).await?;
    Ok(UserRow {
        created_at: format_utc(detail.user.created_at),
        phones: detail.phones.into_iter().map(|p| p.e164).collect(),
        id: detail.user.id,
        status: detail.user.status,
        admin,
    })
}

async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(search): Query<Search>,
) -> Response {
    let services = &state.services;
    let notice = search.unlocked.as_deref().map(|done| match done {
        "yes" => "The number is unlocked: codes can be sent to it again.",
        _ => "The number was not locked.",
    });
    let search = search.phone.unwrap_or_default();
    let frame = Frame::new(services, &console, "users").with_notice(notice);
    let records = match users::list(services, Some(&search), 100, 0).await {
        Ok(records) => records,
        Err(error) => {
            let (status, message) = refusal(&error);
            let page = UsersPage {
                frame,
                search,
                users: Vec::new(),
                error: Some(message),
            };
            return (status, page).into_response();
        }
    };
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let detail = match users::read(services, &record.id).await {
            Ok(detail) => detail,
            Err(ChangeError::NotFound) => continue,
            Err(e) => return error_response(&e),
        };
        match row(services, detail).await {
            Ok(row) => rows.push(row),
            Err(e) => return error_response(&e),
        }
    }
    UsersPage {
        frame,
        search,
        users: rows,
        error: None,
    }
    .into_response()
}

fn error_response(error: &ChangeError) -> Response {
    let (status, message) = refusal(error);
    error_page(status, &message)
}

async fn create(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let phone = params.single("phone_number").ok().flatten().map(str::trim);
    let phone = phone.filter(|p| !p.is_empty());
    match users::create(services, &console.actor(), phone).await {
        Ok(detail) => see_other(&format!(
            "{}/users/{}?done=created",
            console_path(services),
            detail.user.id
        )),
        Err(error) => error_response(&error),
    }
}

async fn unlock(
    State(state): State<AppState>,
    console: Console,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let phone = params.text("phone_number");
    match users::unlock_phone(services, &console.actor(), &phone).await {
        Ok((_, unlocked)) => {
            let done = if unlocked { "yes" } else { "no" };
            see_other(&format!("{}/users?unlocked={done}", console_path(services)))
        }
        Err(error) => error_response(&error),
    }
}

struct PhoneRow {
    e164: String,
    verified: String,
}

struct LinkRow {
    e164: String,
    user_id: String,
    linked_at: String,
    unlinked_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user.html")]
struct UserPage {
    frame: Frame,
    user: UserRow,
    phones: Vec<PhoneRow>,
    history: Vec<LinkRow>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The user is created.",
        "linked" => "The number is linked.",
        "unlinked" => "The number is unlinked.",
        "moved" => "The number is moved; this is the user who holds it now.",
        "active" => "The user is enabled.",
        "disabled" => "The user is disabled.",
        _ => return None,
    })
}

/// The user's page, with `error` above it when a change was refused.
async fn user_page(
    services: &Services,
    console: &Console,
    id: &str,
    error: Option<(StatusCode, String)>,
    done: Option<&str>,
) -> Response {
    let detail = match users::read(services, id).await {
        Ok(detail) => detail,
        Err(e) => return error_response(&e),
    };
    let phones = detail
        .phones
        .iter()
        .map(|p| PhoneRow {
            e164: p.e164.clone(),
            verified: if p.verified_at > 0 {
                format_utc(p.verified_at)
            } else {
                "not yet".into()
            },
        })
        .collect();
    let history = detail
        .history
        .iter()
        .map(|l| LinkRow {
            e164: l.e164.clone(),
            user_id: l.user_id.clone(),
            linked_at: format_utc(l.linked_at),
            unlinked_at: l.unlinked_at.map(format_utc).unwrap_or_default(),
        })
        .collect();
    let user = match row(services, detail).await {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let page = UserPage {
        frame: Frame::new(services, console, "users").with_notice(notice(done)),
        user,
        phones,
        history,
        error,
    };
    (status, page).into_response()
}

async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    user_page(&state.services, &console, &id, None, done.done.as_deref()).await
}

/// After a change: back to the user's page saying what happened, or the page with the
/// reason it was refused.
async fn answer(
    services: &Services,
    console: &Console,
    id: &str,
    outcome: Result<UserDetail, ChangeError>,
    done: &str,
) -> Response {
    match outcome {
        Ok(detail) => see_other(&format!(
            "{}/users/{}?done={done}",
            console_path(services),
            detail.user.id
        )),
        Err(ChangeError::Store(e)) => server_error(&e),
        Err(error) => user_page(services, console, id, Some(refusal(&error)), None).await,
    }
}

async fn link(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let phone = params.text("phone_number");
    let outcome = users::link_phone(services, &console.actor(), &id, &phone).await;
    answer(services, &console, &id, outcome, "linked").await
}

async fn unlink(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let phone = params.text("phone_number");
    let outcome = users::unlink_phone(services, &console.actor(), &id, &phone).await;
    answer(services, &console, &id, outcome, "unlinked").await
}

async fn move_phone(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let phone = params.text("phone_number");
    let to = params.text("to");
    let outcome = users::move_phone(services, &console.actor(), &phone, &id, &to).await;
    answer(services, &console, &id, outcome, "moved").await
}

async fn set_status(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let services = &state.services;
    let params = match console.form(body) {
        Ok(params) => params,
        Err(stale) => return stale.into_response(),
    };
    let wanted = params.single("status").ok().flatten().unwrap_or_default();
    let Some(status) = UserStatus::parse(wanted) else {
        return error_page(StatusCode::BAD_REQUEST, "A user is active or disabled.");
    };
    if status == UserStatus::Disabled && id == console.user_id {
        let refused = (
            StatusCode::CONFLICT,
            "You cannot disable yourself: ask another admin.".to_owned(),
        );
        return user_page(services, &console, &id, Some(refused), None).await;
    }
    let outcome = users::set_status(services, &console.actor(), &id, status, Expected::Any).await;
    answer(services, &console, &id, outcome, status.as_str()).await
}
