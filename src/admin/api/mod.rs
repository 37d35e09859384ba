//! Handlers of `/admin/v1`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clients::ClientSecret;
use crate::http::AppState;
use crate::keys::Purpose;
use crate::registry::{self, NewAudience, NewClient, RegistryError, admin_audience};
use crate::services::Services;
use crate::store::{AuditEvent, ClientRecord, StoreError};
use crate::tokens::verify_access_token;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/audiences",
            get(list_audiences).post(create_audience),
        )
        .route("/admin/v1/clients", get(list_clients).post(create_client))
        .route("/admin/v1/clients/{id}", get(read_client))
        .route("/admin/v1/clients/{id}/secret", post(rotate_secret))
        .route("/admin/v1/keys", get(list_keys))
        .route("/admin/v1/keys/rotate", post(rotate_keys))
        .route("/admin/v1/audit", get(audit))
}

/// An admin API failure: RFC 6750 for the token, a JSON body naming the problem otherwise.
#[derive(Debug)]
pub enum AdminError {
    /// No bearer token (RFC 6750 §3.1: no error code).
    NoToken,
    InvalidToken,
    InsufficientScope(&'static str),
    Invalid {
        field: &'static str,
        problem: String,
    },
    NotFound,
    Conflict(String),
    Internal,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let challenge = |error: Option<&str>, scope: Option<&str>| {
            let mut value = r#"Bearer realm="callsign admin""#.to_owned();
            if let Some(error) = error {
                value.push_str(&format!(r#", error="{error}""#));
            }
            if let Some(scope) = scope {
                value.push_str(&format!(r#", scope="{scope}""#));
            }
            HeaderValue::from_str(&value).expect("an ASCII challenge")
        };
        let (status, body, www) = match self {
            AdminError::NoToken => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": "a bearer token is required"}),
                Some(challenge(None, None)),
            ),
            AdminError::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": "the token is not a valid admin token"}),
                Some(challenge(Some("invalid_token"), None)),
            ),
            AdminError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                json!({"error": "insufficient_scope", "error_description": format!("the token lacks the {scope} scope")}),
                Some(challenge(Some("insufficient_scope"), Some(scope))),
            ),
            AdminError::Invalid { field, problem } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": problem, "field": field}),
                None,
            ),
            AdminError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "error_description": "no such resource"}),
                None,
            ),
            AdminError::Conflict(what) => (
                StatusCode::CONFLICT,
                json!({"error": "conflict", "error_description": format!("{what} already exists")}),
                None,
            ),
            AdminError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "server_error", "error_description": "the server could not complete the request"}),
                None,
            ),
        };
        let mut response = (status, crate::http::NoStoreJson(body)).into_response();
        if let Some(www) = www {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, www);
        }
        response
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        tracing::error!(error = %error, "admin request failed");
        AdminError::Internal
    }
}

impl From<RegistryError> for AdminError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Invalid { field, problem } => {
                // The registry speaks in command-line flags; the API in JSON members.
                let field = match field {
                    "grant" => "grant_types",
                    "audience" => "audiences",
                    "default-audience" => "default_audience",
                    "scope" => "scopes",
                    "redirect-uri" => "redirect_uris",
                    other => other,
                };
                AdminError::Invalid { field, problem }
            }
            RegistryError::Conflict(what) => AdminError::Conflict(what),
            RegistryError::Store(e) => e.into(),
        }
    }
}

impl From<crate::keys::KeyError> for AdminError {
    fn from(error: crate::keys::KeyError) -> Self {
        tracing::error!(error = %error, "admin key operation failed");
        AdminError::Internal
    }
}

/// The verified caller: a client holding an admin access token.
pub struct Admin {
    client_id: String,
    scopes: Vec<String>,
}

impl Admin {
    fn require(&self, scope: &'static str) -> Result<(), AdminError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(AdminError::InsufficientScope(scope))
        }
    }

    fn actor(&self) -> String {
        format!("client:{}", self.client_id)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned())
            .ok_or(AdminError::NoToken)?;
        let services = &state.services;
        let audience = admin_audience(&services.issuer);
        let now = services.clock.now();
        let keys = services.keys.current();
        let claims = verify_access_token(&keys, &services.issuer, Some(&audience), &token, now)
            .map_err(|_| AdminError::InvalidToken)?;
        if services.store.jti_revoked(&claims.jti).await? {
            return Err(AdminError::InvalidToken);
        }
        // Only machine clients administer (client_credentials: the subject is the client).
        // A person signed in through some app must never hold an admin token.
        if claims.sub != claims.client_id {
            return Err(AdminError::InvalidToken);
        }
        let scopes = claims
            .scope
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect();
        Ok(Admin {
            client_id: claims.client_id,
            scopes,
        })
    }
}

/// A query string that does not fit, named like any other bad input.
fn query_error(rejection: QueryRejection) -> AdminError {
    AdminError::Invalid {
        field: "query",
        problem: rejection.body_text(),
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
    search: Option<String>,
}

impl Page {
    fn bounds(&self) -> Result<(i64, i64), AdminError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=500).contains(&limit) {
            return Err(AdminError::Invalid {
                field: "limit",
                problem: "must be 1 to 500".into(),
            });
        }
        if offset < 0 {
            return Err(AdminError::Invalid {
                field: "offset",
                problem: "must not be negative".into(),
            });
        }
        Ok((limit, offset))
    }
}

/// Reads a JSON body into `T`, naming the problem when it does not fit.
fn body<T: serde::de::DeserializeOwned>(
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<T, AdminError> {
    let invalid = |problem: String| AdminError::Invalid {
        field: "body",
        problem,
    };
    let bytes = bytes.map_err(|rejection| invalid(rejection.body_text()))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
}

async fn audit_change(
    services: &Services,
    admin: &Admin,
    action: &str,
    subject: &str,
) -> Result<(), AdminError> {
    let event = AuditEvent {
        at: services.clock.now(),
        actor: admin.actor(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail: String::new(),
    };
    tracing::info!(actor = %event.actor, action, subject, "admin change");
    Ok(services.store.record_audit(&event).await?)
}

fn audience_json(audience: &crate::store::AudienceRecord) -> Value {
    json!({
        "identifier": audience.identifier, "scopes": audience.scopes,
        "ttl": audience.access_token_ttl, "created_at": audience.created_at,
    })
}

fn client_json(client: &ClientRecord) -> Value {
    json!({
        "client_id": client.id, "name": client.name, "type": client.kind.as_str(),
        "grant_types": client.grant_types, "audiences": client.audiences,
        "default_audience": client.default_audience, "scopes": client.scopes,
        "redirect_uris": client.redirect_uris, "first_party": client.first_party,
        "active": client.active, "created_at": client.created_at,
    })
}

async fn list_audiences(
    State(state): State<AppState>,
    admin: Admin,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    admin.require("admin:read")?;
    let Query(page) = page.map_err(query_error)?;
    let (limit, offset) = page.bounds()?;
    let audiences = state.services.store.list_audiences(limit, offset).await?;
    Ok(Json(
        json!({"items": audiences.iter().map(audience_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AudienceInput {
    identifier: String,
    #[serde(default)]
    scopes: Vec<String>,
    ttl: Option<i64>,
}

async fn create_audience(
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
    audit_change(services, &admin, "audience.created", &audience.identifier).await?;
    Ok((StatusCode::CREATED, Json(audience_json(&audience))).into_response())
}

async fn list_clients(
    State(state): State<AppState>,
    admin: Admin,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    admin.require("admin:read")?;
    let Query(page) = page.map_err(query_error)?;
    let (limit, offset) = page.bounds()?;
    let clients = state
        .services
        .store
        .list_clients(page.search.as_deref(), limit, offset)
        .await?;
    Ok(Json(
        json!({"items": clients.iter().map(client_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientInput {
    name: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    default_audience: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    first_party: bool,
}

async fn create_client(
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
    audit_change(services, &admin, "client.created", &created.client.id).await?;
    let mut answer = client_json(&created.client);
    answer["client_secret"] = json!(created.secret.as_ref().map(ClientSecret::expose));
    // The secret is shown this once: never cached.
    Ok((StatusCode::CREATED, crate::http::NoStoreJson(answer)).into_response())
}

async fn read_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    admin.require("admin:read")?;
    let client = state
        .services
        .store
        .client(&id)
        .await?
        .ok_or(AdminError::NotFound)?;
    Ok(Json(client_json(&client)))
}

async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    admin.require("admin:write")?;
    let services = &state.services;
    let client = services
        .store
        .client(&id)
        .await?
        .ok_or(AdminError::NotFound)?;
    if client.kind == crate::store::ClientKind::Public {
        let problem = "a public client has no secret".to_owned();
        return Err(AdminError::Invalid {
            field: "client_id",
            problem,
        });
    }
    let secret = ClientSecret::generate();
    if !services
        .store
        .set_client_secret(&id, &secret.hash())
        .await?
    {
        return Err(AdminError::NotFound);
    }
    audit_change(services, &admin, "client.secret_rotated", &id).await?;
    let answer = json!({"client_id": id, "client_secret": secret.expose()});
    Ok(crate::http::NoStoreJson(answer).into_response())
}

async fn list_keys(State(state): State<AppState>, admin: Admin) -> Result<Json<Value>, AdminError> {
    admin.require("admin:read")?;
    let keys = state.services.store.signing_keys().await?;
    let items: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"kid": k.kid, "purpose": k.purpose, "algorithm": k.algorithm, "state": k.state,
                   "created_at": k.created_at, "activate_at": k.activate_at,
                   "retired_at": k.retired_at})
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateInput {
    purpose: Option<String>,
}

async fn rotate_keys(
    State(state): State<AppState>,
    admin: Admin,
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Value>, AdminError> {
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
    let keys = &state.services.keys;
    let mut rotated = Vec::new();
    for purpose in purposes {
        let next = keys.rotate(purpose, &admin.actor()).await?;
        rotated.push(
            json!({"kid": next.kid, "purpose": next.purpose, "activate_at": next.activate_at}),
        );
    }
    Ok(Json(json!({ "rotated": rotated })))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    admin.require("admin:read")?;
    let Query(query) = query.map_err(query_error)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::Invalid {
            field: "limit",
            problem: "must be 1 to 1000".into(),
        });
    }
    let events = state.services.store.recent_audit_events(limit).await?;
    let items: Vec<Value> = events
        .iter()
        .map(|e| json!({"at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject, "detail": e.detail}))
        .collect();
    Ok(Json(json!({ "items": items })))
}
