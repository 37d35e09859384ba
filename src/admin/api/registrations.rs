//! `/admin/v1/audiences` and `/admin/v1/clients`: registering, reading, changing and
//! removing them.

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::views::{
    AudienceList, AudienceView, ClientList, ClientView, CreatedClientView, ErrorView, SecretView,
};
use super::{
    Admin, AdminError, Page, Segments, body, bounds, expected_version, present, query_error, tagged,
};
use crate::admin::registrations::{self, AudienceChanges, ClientChanges};
use crate::admin::{ChangeError, audit};
use crate::clients::ClientSecret;
use crate::http::{AppState, NoStoreJson};
use crate::registry::{self, NewAudience, NewClient};
use crate::store::ClientKind;

/// Lists the audiences in the order of their identifiers.
#[utoipa::path(
    get, path = "/admin/v1/audiences", tag = "audiences",
    params(Page),
    responses((status = 200, body = AudienceList), (status = 400, body = ErrorView)),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn list_audiences(
    State(state): State<AppState>,
    admin: Admin,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<AudienceList>, AdminError> {
    admin.require("admin:read")?;
    let Query(page) = page.map_err(query_error)?;
    let (limit, offset) = page.bounds()?;
    let audiences = state.services.store.list_audiences(limit, offset).await?;
    let items = audiences.iter().map(AudienceView::from).collect();
    Ok(Json(AudienceList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AudienceInput {
    /// An absolute URI without fragment, or a short name of letters, digits and `. _ -`.
    identifier: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Access-token lifetime in seconds, 60 to 86400; 900 by default.
    ttl: Option<i64>,
}

/// Registers an audience.
#[utoipa::path(
    post, path = "/admin/v1/audiences", tag = "audiences",
    request_body = AudienceInput,
    responses(
        (status = 201, body = AudienceView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 409, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn create_audience(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: AudienceInput = body(bytes)?;
    let services = &state.services;
    let new = NewAudience {
        identifier: input.identifier,
        scopes: input.scopes,
        ttl: input.ttl,
    };
    let audience = registry::create_audience(&services.store, services.clock.as_ref(), new).await?;
    let actor = admin.actor();
    audit(
        services,
        &actor,
        "audience.created",
        &audience.identifier,
        String::new(),
    )
    .await?;
    let view = AudienceView::from(&audience);
    Ok(tagged(StatusCode::CREATED, audience.version, view))
}

/// Shows one audience.
#[utoipa::path(
    get, path = "/admin/v1/audiences/{identifier}", tag = "audiences",
    params(("identifier" = String, Path, description = "the identifier, percent-encoded")),
    responses(
        (status = 200, body = AudienceView, headers(("ETag" = String))),
        (status = 404, body = ErrorView),
    ),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn read_audience(
    State(state): State<AppState>,
    admin: Admin,
    Segments(identifier): Segments<String>,
) -> Result<Response, AdminError> {
    admin.require("admin:read")?;
    let audience = state
        .services
        .store
        .audience(&identifier)
        .await?
        .ok_or(AdminError::NotFound)?;
    let view = AudienceView::from(&audience);
    Ok(tagged(StatusCode::OK, audience.version, view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AudienceUpdate {
    /// Replaces the scopes the audience defines.
    scopes: Option<Vec<String>>,
    /// Access-token lifetime in seconds, 60 to 86400; tokens already issued keep theirs.
    ttl: Option<i64>,
}

/// Changes an audience's scopes or token lifetime.
#[utoipa::path(
    patch, path = "/admin/v1/audiences/{identifier}", tag = "audiences",
    params(
        ("identifier" = String, Path, description = "the identifier, percent-encoded"),
        ("If-Match" = String, Header, description = "the ETag as last read, or `*`"),
    ),
    request_body = AudienceUpdate,
    responses(
        (status = 200, body = AudienceView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 409, description = "a removed scope is still allowed to clients", body = ErrorView),
        (status = 412, body = ErrorView),
        (status = 428, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn update_audience(
    State(state): State<AppState>,
    admin: Admin,
    Segments(identifier): Segments<String>,
    headers: HeaderMap,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: AudienceUpdate = body(bytes)?;
    let expected = expected_version(&headers)?;
    let changes = AudienceChanges {
        scopes: input.scopes,
        ttl: input.ttl,
    };
    let actor = admin.actor();
    let audience =
        registrations::update_audience(&state.services, &actor, &identifier, changes, expected)
            .await?;
    let view = AudienceView::from(&audience);
    Ok(tagged(StatusCode::OK, audience.version, view))
}

/// Deletes an audience that no client uses and no live grant names.
#[utoipa::path(
    delete, path = "/admin/v1/audiences/{identifier}", tag = "audiences",
    params(
        ("identifier" = String, Path, description = "the identifier, percent-encoded"),
        ("If-Match" = String, Header, description = "the ETag as last read, or `*`"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = ErrorView),
        (status = 409, description = "clients or live grants depend on the audience", body = ErrorView),
        (status = 412, body = ErrorView),
        (status = 428, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn delete_audience(
    State(state): State<AppState>,
    admin: Admin,
    Segments(identifier): Segments<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AdminError> {
    admin.require("admin:write")?;
    let expected = expected_version(&headers)?;
    let actor = admin.actor();
    registrations::delete_audience(&state.services, &actor, &identifier, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ClientQuery {
    /// A client id, or any part of a name regardless of case.
    search: Option<String>,
    /// At most this many clients, 1 to 500; 50 by default.
    limit: Option<i64>,
    /// Clients to skip; 0 by default.
    offset: Option<i64>,
}

/// Lists or searches the clients, in the order they were registered.
#[utoipa::path(
    get, path = "/admin/v1/clients", tag = "clients",
    params(ClientQuery),
    responses((status = 200, body = ClientList), (status = 400, body = ErrorView)),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn list_clients(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<ClientQuery>, QueryRejection>,
) -> Result<Json<ClientList>, AdminError> {
    admin.require("admin:read")?;
    let Query(query) = query.map_err(query_error)?;
    let (limit, offset) = bounds(query.limit, query.offset, 50, 500)?;
    let clients = state
        .services
        .store
        .list_clients(query.search.as_deref(), limit, offset)
        .await?;
    let items = clients.iter().map(ClientView::from).collect();
    Ok(Json(ClientList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientInput {
    /// 1 to 100 characters.
    name: String,
    /// A public client has no secret; `false` by default.
    #[serde(default)]
    public: bool,
    /// Wire names or the short forms; the phone flow by default.
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    /// One of `audiences`; the only one when there is exactly one.
    default_audience: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    first_party: bool,
}

/// Registers a client and shows its secret, this once.
#[utoipa::path(
    post, path = "/admin/v1/clients", tag = "clients",
    request_body = ClientInput,
    responses(
        (status = 201, body = CreatedClientView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 409, description = "an audience it names was removed meanwhile", body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn create_client(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: ClientInput = body(bytes)?;
    let services = &state.services;
    let new = NewClient {
        name: input.name,
        public: input.public,
        grants: input.grant_types,
        audiences: input.audiences,
        default_audience: input.default_audience,
        scopes: input.scopes,
        redirect_uris: input.redirect_uris,
        first_party: input.first_party,
    };
    let created = registry::create_client(&services.store, services.clock.as_ref(), new).await?;
    let actor = admin.actor();
    audit(
        services,
        &actor,
        "client.created",
        &created.client.id,
        String::new(),
    )
    .await?;
    let secret = created.secret.as_ref().map(|s| s.expose().to_owned());
    let answer = CreatedClientView::new(&created.client, secret);
    // The secret is shown this once: never cached.
    let mut response = (StatusCode::CREATED, NoStoreJson(answer)).into_response();
    let etag = super::etag(created.client.version);
    response
        .headers_mut()
        .insert(axum::http::header::ETAG, etag);
    Ok(response)
}

/// Shows one client.
#[utoipa::path(
    get, path = "/admin/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "the client id")),
    responses(
        (status = 200, body = ClientView, headers(("ETag" = String))),
        (status = 404, body = ErrorView),
    ),
    security(("admin_token" = ["admin:read"]))
)]
pub(super) async fn read_client(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
) -> Result<Response, AdminError> {
    admin.require("admin:read")?;
    let client = state
        .services
        .store
        .client(&id)
        .await?
        .ok_or(AdminError::NotFound)?;
    Ok(tagged(
        StatusCode::OK,
        client.version,
        ClientView::from(&client),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientUpdate {
    name: Option<String>,
    grant_types: Option<Vec<String>>,
    /// The audiences the client may get tokens for: its permissions.
    audiences: Option<Vec<String>>,
    /// `null` removes the default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    default_audience: Option<Option<String>>,
    scopes: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    first_party: Option<bool>,
    /// `false` disables the client: it can no longer authenticate, and its tokens are
    /// inactive at introspection. `true` enables it again.
    active: Option<bool>,
}

/// Changes a client; members left out keep their value. The result must pass the checks of
/// a registration.
#[utoipa::path(
    patch, path = "/admin/v1/clients/{id}", tag = "clients",
    params(
        ("id" = String, Path, description = "the client id"),
        ("If-Match" = String, Header, description = "the ETag as last read, or `*`"),
    ),
    request_body = ClientUpdate,
    responses(
        (status = 200, body = ClientView, headers(("ETag" = String))),
        (status = 400, body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 409, description = "an audience it names was removed meanwhile", body = ErrorView),
        (status = 412, body = ErrorView),
        (status = 428, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn update_client(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
    headers: HeaderMap,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let input: ClientUpdate = body(bytes)?;
    let expected = expected_version(&headers)?;
    let changes = ClientChanges {
        name: input.name,
        grant_types: input.grant_types,
        audiences: input.audiences,
        default_audience: input.default_audience,
        scopes: input.scopes,
        redirect_uris: input.redirect_uris,
        first_party: input.first_party,
        active: input.active,
    };
    let actor = admin.actor();
    let client =
        registrations::update_client(&state.services, &actor, &id, changes, expected).await?;
    Ok(tagged(
        StatusCode::OK,
        client.version,
        ClientView::from(&client),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeleteClientQuery {
    /// Revoke the client's live refresh tokens and codes instead of refusing.
    revoke_tokens: Option<bool>,
}

/// Deletes a client. Live refresh tokens or codes make this a conflict unless
/// `revoke_tokens=true`.
#[utoipa::path(
    delete, path = "/admin/v1/clients/{id}", tag = "clients",
    params(
        ("id" = String, Path, description = "the client id"),
        ("If-Match" = String, Header, description = "the ETag as last read, or `*`"),
        DeleteClientQuery,
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 409, description = "the client has live refresh tokens or codes", body = ErrorView),
        (status = 412, body = ErrorView),
        (status = 428, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn delete_client(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
    headers: HeaderMap,
    query: Result<Query<DeleteClientQuery>, QueryRejection>,
) -> Result<StatusCode, AdminError> {
    admin.require("admin:write")?;
    let Query(query) = query.map_err(query_error)?;
    let expected = expected_version(&headers)?;
    let revoke = query.revoke_tokens.unwrap_or(false);
    let actor = admin.actor();
    registrations::delete_client(&state.services, &actor, &id, expected, revoke).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a confidential client's secret and shows the new one, this once.
#[utoipa::path(
    post, path = "/admin/v1/clients/{id}/secret", tag = "clients",
    params(("id" = String, Path, description = "the client id")),
    responses(
        (status = 200, body = SecretView),
        (status = 400, description = "a public client has no secret", body = ErrorView),
        (status = 404, body = ErrorView),
    ),
    security(("admin_token" = ["admin:write"]))
)]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    Segments(id): Segments<String>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let services = &state.services;
    let client = services
        .store
        .client(&id)
        .await?
        .ok_or(AdminError::NotFound)?;
    if client.kind == ClientKind::Public {
        let problem = "a public client has no secret";
        return Err(ChangeError::invalid("client_id", problem).into());
    }
    let secret = ClientSecret::generate();
    if !services
        .store
        .set_client_secret(&id, &secret.hash())
        .await?
    {
        return Err(AdminError::NotFound);
    }
    audit(
        services,
        &admin.actor(),
        "client.secret_rotated",
        &id,
        String::new(),
    )
    .await?;
    let answer = SecretView {
        client_id: id,
        client_secret: secret.expose().to_owned(),
    };
    Ok(NoStoreJson(answer).into_response())
}
