//! `/admin/v1/users` and `/admin/v1/phones`: users and the numbers they hold.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{ErrorView, UserDetailView, UserList, UserView};
use super::{Admin, AdminError, Segments, body, bounds, expected_version, query_error, tagged};
use crate::admin::users::{self, UserDetail, UserStatus};
use crate::http::{AppState, NoStoreJson};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserQuery {
    /// Users holding this number now: a full number starting with `+`, or a fragment of
    /// its digits.
    phone: Option<String>,
    /// At most this many users, 1 to 500; 50 by default.
    limit: Option<i64>,
    /// Users to skip; 0 by default.
    offset: Option<i64>,
}

/// Lists users in order of creation, or finds them by phone number.
#[utoipa::path(
    get, path = "/admin/v1/users", tag = "users",
    params(UserQuery),
    responses(
        (status = 200, body = UserList),
        (status = 400, body = ErrorView),
    ),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn list_users(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<axum::Json<UserList>, AdminError> {
    admin.require("admin:read")?;
    let Query(query) = query.map_err(query_error)?;
    let (limit, offset) = bounds(query.limit, query.offset, 50, 500)?;
    let found = users::list(&state.services, query.phone.as_deref(), limit, offset).await?;
    let items = found.iter().map(UserView::from).collect();
    Ok(axum::Json(UserList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserInput {
    /// A number to link at once; without it the user is invited, with no phone yet.
    phone_number: Option<String>,
}

/// Creates a user, optionally holding a number.
#[utoipa::path(
    post, path = "/admin/v1/users", tag = "users",
    request_body = NewUserInput,
    responses(
        (status = 201, body = UserDetailView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 409, description = "the number belongs to another user", body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn create_user(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: NewUserInput = if bytes.as_ref().is_ok_and(|b| b.is_empty()) {
        NewUserInput { phone_number: None }
    } else {
        body(bytes)?
    };
    let actor = admin.actor();
    let detail = users::create(&state.services, &actor, input.phone_number.as_deref()).await?;
    Ok(answer(StatusCode::CREATED, &detail))
}

/// Shows a user with their phones and the history of their links.
#[utoipa::path(
    get, path = "/admin/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "the user's id")),
    responses(
        (status = 200, body = UserDetailView, headers(("ETag" = String))),
        (status = 404, body = ErrorView),
    ),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn read_user(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
) -> Result<Response, AdminError> {
    admin.require("admin:read")?;
    let detail = users::read(&state.services, &id).await?;
    Ok(answer(StatusCode::OK, &detail))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserChanges {
    /// `active` or `disabled`. A disabled user gets no tokens, and those they hold stop
    /// working at introspection and at `/userinfo`.
    status: String,
}

/// Disables or enables a user.
#[utoipa::path(
    patch, path = "/admin/v1/users/{id}", tag = "users",
    params(
        ("id" = String, Path, description = "the user's id"),
        ("If-Match" = String, Header, description = "the ETag of the user as last read, or `*`"),
    ),
    request_body = UserChanges,
    responses(
        (status = 200, body = UserDetailView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 412, body = ErrorView),
        (status = 428, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn update_user(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
    headers: HeaderMap,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let changes: UserChanges = body(bytes)?;
    let status = UserStatus::parse(&changes.status).ok_or_else(|| AdminError::Invalid {
        field: "status",
        problem: "must be active or disabled".into(),
    })?;
    let expected = expected_version(&headers)?;
    let services = &state.services;
    let detail = users::set_status(services, &admin.actor(), &id, status, expected).await?;
    Ok(answer(StatusCode::OK, &detail))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PhoneInput {
    /// The number, in any form the server parses; stored as E.164.
    phone_number: String,
}

/// Links a number to a user. The number must not belong to someone else (move it instead).
#[utoipa::path(
    post, path = "/admin/v1/users/{id}/phones", tag = "users",
    params(("id" = String, Path, description = "the user's id")),
    request_body = PhoneInput,
    responses(
        (status = 200, body = UserDetailView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 409, description = "the number belongs to another user", body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn link_phone(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: PhoneInput = body(bytes)?;
    let services = &state.services;
    let detail = users::link_phone(services, &admin.actor(), &id, &input.phone_number).await?;
    Ok(answer(StatusCode::OK, &detail))
}

/// Takes a number away from a user; its history stays.
#[utoipa::path(
    delete, path = "/admin/v1/users/{id}/phones/{phone}", tag = "users",
    params(
        ("id" = String, Path, description = "the user's id"),
        ("phone" = String, Path, description = "the number, E.164 with `+` percent-encoded as `%2B`"),
    ),
    responses(
        (status = 200, body = UserDetailView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 404, description = "no such user, or the user does not hold the number", body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn unlink_phone(
    State(state): State<AppState>,
    admin: Admin,
    Segments((id, phone)): Segments<(String, String)>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let detail = users::unlink_phone(&state.services, &admin.actor(), &id, &phone).await?;
    Ok(answer(StatusCode::OK, &detail))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveInput {
    phone_number: String,
    /// The user who holds the number now.
    from: String,
    /// The user who gets it.
    to: String,
}

/// Moves a number from one user to another in one step, keeping the history. Answers with
/// the user who now holds it.
#[utoipa::path(
    post, path = "/admin/v1/phones/move", tag = "users",
    request_body = MoveInput,
    responses(
        (status = 200, body = UserDetailView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 409, description = "`from` does not hold the number", body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn move_phone(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: MoveInput = body(bytes)?;
    let actor = admin.actor();
    let detail = users::move_phone(
        &state.services,
        &actor,
        &input.phone_number,
        &input.from,
        &input.to,
    )
    .await?;
    Ok(answer(StatusCode::OK, &detail))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UnlockInput {
    phone_number: String,
}

/// The outcome of an unlock.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UnlockView {
    /// The number, E.164.
    phone_number: String,
    /// False when the number was not locked: nothing changed.
    unlocked: bool,
}

/// Lifts the lock that too many consecutive wrong codes put on a number, so codes may be
/// sent to it again.
#[utoipa::path(
    post, path = "/admin/v1/phones/unlock", tag = "users",
    request_body = UnlockInput,
    responses(
        (status = 200, body = UnlockView),
        (status = 400, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn unlock_phone(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: UnlockInput = body(bytes)?;
    let (phone, unlocked) =
        users::unlock_phone(&state.services, &admin.actor(), &input.phone_number).await?;
    let view = UnlockView {
        phone_number: phone.e164().to_owned(),
        unlocked,
    };
    Ok(NoStoreJson(view).into_response())
}

fn answer(status: StatusCode, detail: &UserDetail) -> Response {
    tagged(status, detail.user.version, UserDetailView::from(detail))
}
