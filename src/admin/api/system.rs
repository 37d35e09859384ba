//! `/admin/v1/keys` and `/admin/v1/audit`: the signing keys and the audit trail.

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::views::{AuditList, AuditView, ErrorView, KeyList, KeyView, RotatedKey, RotatedKeys};
use super::{Admin, AdminError, body, bounds, query_error};
use crate::admin::audit;
use crate::http::AppState;
use crate::keys::Purpose;
use crate::store::AuditFilter;

/// Lists every signing key, without paging.
#[utoipa::path(
    get, path = "/admin/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList)),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn list_keys(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Json<KeyList>, AdminError> {
    admin.require("admin:read")?;
    let keys = state.services.store.signing_keys().await?;
    let items = keys.iter().map(KeyView::from).collect();
    Ok(Json(KeyList { items }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateInput {
    /// `phone_token`, `access_token` or `id_token`; all three without it.
    purpose: Option<String>,
}

/// Starts a key rotation: the new key is published now and signs later.
#[utoipa::path(
    post, path = "/admin/v1/keys/rotate", tag = "keys",
    request_body(content = Option<RotateInput>, description = "optional"),
    responses((status = 200, body = RotatedKeys), (status = 400, body = ErrorView)),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn rotate_keys(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<RotatedKeys>, AdminError> {
    admin.require("admin:write")?;
    let input: RotateInput = if bytes.as_ref().is_ok_and(|b| b.is_empty()) {
        RotateInput::default()
    } else {
        body(bytes)?
    };
    let purposes = match input.purpose.as_deref() {
        None => Purpose::ALL.to_vec(),
        Some(name) => vec![Purpose::parse(name).ok_or_else(|| AdminError::Invalid {
            field: "purpose",
            problem: "must be phone_token, access_token or id_token".into(),
        })?],
    };
    let services = &state.services;
    let actor = admin.actor();
    let mut rotated = Vec::new();
    for purpose in purposes {
        let next = services.keys.rotate(purpose, &actor.name).await?;
        // The key's own events carry no address; this one says who asked, from where.
        let detail = purpose.as_str().to_owned();
        audit(
            services,
            &actor,
            "key.rotation_requested",
            &next.kid,
            detail,
        )
        .await?;
        rotated.push(RotatedKey {
            kid: next.kid,
            purpose: next.purpose,
            activate_at: next.activate_at,
        });
    }
    Ok(Json(RotatedKeys { rotated }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// An action, or a prefix ending in `.` such as `user.`.
    action: Option<String>,
    /// The acting party, e.g. `client:cl_…`.
    actor: Option<String>,
    /// What changed: a user, client or audience id, or a key's `kid`.
    subject: Option<String>,
    /// Events at or after this time (seconds since the epoch).
    since: Option<i64>,
    /// Events at or before this time.
    until: Option<i64>,
    /// At most this many events, 1 to 1000; 100 by default.
    limit: Option<i64>,
    /// Events to skip; 0 by default.
    offset: Option<i64>,
}

/// The audit trail, newest first, filtered and paged.
#[utoipa::path(
    get, path = "/admin/v1/audit", tag = "audit",
    params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, body = ErrorView)),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn list_audit(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditList>, AdminError> {
    admin.require("admin:read")?;
    let Query(query) = query.map_err(query_error)?;
    let (limit, offset) = bounds(query.limit, query.offset, 100, 1000)?;
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since > until
    {
        return Err(AdminError::Invalid {
            field: "until",
            problem: "must not be before since".into(),
        });
    }
    let filter = AuditFilter {
        action: query.action.unwrap_or_default(),
        actor: query.actor.unwrap_or_default(),
        subject: query.subject.unwrap_or_default(),
        since: query.since,
        until: query.until,
        limit,
        offset,
    };
    let events = state.services.store.audit_events_where(&filter).await?;
    let items = events.iter().map(AuditView::from).collect();
    Ok(Json(AuditList { items }))
}
