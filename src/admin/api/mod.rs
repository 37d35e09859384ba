//! `/admin/v1`: the REST front end of administration, and its OpenAPI 3.1 document at
//! `/admin/v1/openapi.json`, generated from the handlers below.
//!
//! Handlers stay thin: they check the token's scope, read the request, call the functions
//! of [`super::users`] and [`super::registrations`], and shape the answer. Single
//! resources carry an `ETag` (their version); changing or deleting one needs `If-Match`
//! (RFC 9110 §13.1.1), answered with 428 when missing and 412 when stale.

mod registrations;
mod system;
mod users;
mod views;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ServerBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Actor, ChangeError, Expected};
use crate::http::{AppState, NoStoreJson};
use crate::limits::source_address;
use crate::registry::{RegistryError, admin_audience};
use crate::store::StoreError;
use crate::tokens::verify_access_token;

/// The admin routes, with the OpenAPI document of exactly these routes.
pub fn router() -> Router<AppState> {
    let (router, mut document) = documented_routes().split_for_parts();
    complete(&mut document);
    let document = std::sync::Arc::new(document);
    router
        .route(
            "/admin/v1/openapi.json",
            axum::routing::get(move |State(state): State<AppState>| {
                let document = document.clone();
                async move { serve_openapi(&document, &state.services.issuer) }
            }),
        )
        // Every answer under /admin/v1 is JSON, unknown paths and methods included.
        .route(
            "/admin/v1/{*rest}",
            axum::routing::any(|| async { AdminError::NotFound }),
        )
        .method_not_allowed_fallback(|| async { AdminError::MethodNotAllowed })
}

/// The OpenAPI 3.1 document of `/admin/v1`, as `GET /admin/v1/openapi.json` serves it
/// (without the server URL, which comes from the issuer).
pub fn openapi() -> OpenApi {
    let mut document = documented_routes().split_for_parts().1;
    complete(&mut document);
    document
}

/// Adds what every operation shares: the 401 and 403 answers about the token (RFC 6750
/// §3.1) with the challenge in `WWW-Authenticate`, a 400 wherever a path segment or query
/// parameter can be malformed, a 413 wherever a body is read, and a description for each
/// answer that has none (OpenAPI 3.1 requires one), the status's reason phrase.
fn complete(document: &mut OpenApi) {
    let answer = |description: &str| {
        let error = Ref::from_schema_name("ErrorView");
        ResponseBuilder::new()
            .description(description)
            .header(
                "WWW-Authenticate",
                Header::new(ObjectBuilder::new().schema_type(Type::String)),
            )
            .content("application/json", Content::new(Some(error)))
            .build()
    };
    let unauthorized = answer("no token, or one that is not a valid admin token");
    let forbidden = answer("the token lacks the scope the operation needs");
    let too_large = ResponseBuilder::new()
        .description("the body is over the server's size limit")
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorView"))),
        )
        .build();
    let bad_request = ResponseBuilder::new()
        .description("a malformed path segment or query parameter, named in `field`")
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorView"))),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            if has_parameters && !responses.contains_key("400") {
                responses.insert("400".into(), bad_request.clone().into());
            }
            if has_body {
                responses.insert("413".into(), too_large.clone().into());
            }
            responses.insert("401".into(), unauthorized.clone().into());
            responses.insert("403".into(), forbidden.clone().into());
            for (status, response) in responses.iter_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    let reason = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .and_then(|code| code.canonical_reason());
                    response.description = reason.unwrap_or("answer").to_owned();
                }
            }
        }
    }
}

fn documented_routes() -> OpenApiRouter<AppState> {
    let mut base = OpenApi::default();
    base.info.title = "callsign admin API".into();
    base.info.version = "1".into();
    base.info.description = Some(
        "Users and phones, clients and audiences, signing keys and the audit trail of a \
         callsign server. Callers present an access token for the audience `<issuer>/admin` \
         with `admin:read` or `admin:write`."
            .into(),
    );
    base.info.license = None;
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .build();
    base.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("admin_token", SecurityScheme::Http(bearer));
    OpenApiRouter::with_openapi(base)
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::read_user, users::update_user))
        .routes(routes!(users::link_phone))
        .routes(routes!(users::unlink_phone))
        .routes(routes!(users::move_phone))
        .routes(routes!(users::unlock_phone))
        .routes(routes!(
            registrations::list_audiences,
            registrations::create_audience
        ))
        .routes(routes!(
            registrations::read_audience,
            registrations::update_audience,
            registrations::delete_audience
        ))
        .routes(routes!(
            registrations::list_clients,
            registrations::create_client
        ))
        .routes(routes!(
            registrations::read_client,
            registrations::update_client,
            registrations::delete_client
        ))
        .routes(routes!(registrations::rotate_secret))
        .routes(routes!(system::list_keys))
        .routes(routes!(system::rotate_keys))
        .routes(routes!(system::list_audit))
}

fn serve_openapi(document: &OpenApi, issuer: &str) -> Response {
    let mut document = document.clone();
    document.servers = Some(vec![ServerBuilder::new().url(issuer).build()]);
    axum::Json(document).into_response()
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
    /// RFC 9110 §15.5.14: the body is over `[http] max_body_bytes`.
    TooLarge,
    NotFound,
    /// The request conflicts with the current state, described in full.
    Conflict(String),
    /// The path exists, but not with this method.
    MethodNotAllowed,
    /// RFC 6585 §3: the change needs `If-Match`.
    PreconditionRequired,
    /// RFC 9110 §15.5.13: `If-Match` names another version.
    PreconditionFailed,
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
        let plain = |status, error: &str, description: String| {
            let body = json!({"error": error, "error_description": description});
            (status, body, None)
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
            AdminError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "invalid_request", "error_description": "the body is too large", "field": "body"}),
                None,
            ),
            AdminError::MethodNotAllowed => plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "this resource does not take that method".into(),
            ),
            AdminError::NotFound => plain(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource".into(),
            ),
            AdminError::Conflict(description) => {
                plain(StatusCode::CONFLICT, "conflict", description)
            }
            AdminError::PreconditionRequired => plain(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                "send If-Match with the ETag of the resource as last read".into(),
            ),
            AdminError::PreconditionFailed => plain(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the resource has changed since it was read; read it again".into(),
            ),
            AdminError::Internal => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the server could not complete the request".into(),
            ),
        };
        let mut response = (status, NoStoreJson(body)).into_response();
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

impl From<ChangeError> for AdminError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Invalid { field, problem } => AdminError::Invalid {
                field: json_member(field),
                problem,
            },
            ChangeError::NotFound => AdminError::NotFound,
            ChangeError::Conflict(description) => AdminError::Conflict(description),
            ChangeError::VersionMismatch => AdminError::PreconditionFailed,
            // Something the change names, such as an audience, was removed while the
            // change was being made.
            ChangeError::Store(StoreError::MissingReference) => AdminError::Conflict(
                "something the change refers to was removed meanwhile; read it again".into(),
            ),
            ChangeError::Store(e) => e.into(),
        }
    }
}

impl From<RegistryError> for AdminError {
    fn from(error: RegistryError) -> Self {
        ChangeError::from(error).into()
    }
}

impl From<crate::keys::KeyError> for AdminError {
    fn from(error: crate::keys::KeyError) -> Self {
        tracing::error!(error = %error, "admin key operation failed");
        AdminError::Internal
    }
}

/// The registry speaks in command-line flags; the API in JSON members.
fn json_member(field: &'static str) -> &'static str {
    match field {
        "grant" => "grant_types",
        "audience" => "audiences",
        "default-audience" => "default_audience",
        "scope" => "scopes",
        "redirect-uri" => "redirect_uris",
        other => other,
    }
}

/// The verified caller: a client holding an admin access token, and where it called from.
pub struct Admin {
    client_id: String,
    scopes: Vec<String>,
    address: String,
}

impl Admin {
    fn require(&self, scope: &'static str) -> Result<(), AdminError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(AdminError::InsufficientScope(scope))
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            name: format!("client:{}", self.client_id),
            address: self.address.clone(),
        }
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
        // A client disabled or deleted since the token was issued administers no more.
        let client = services.store.client(&claims.client_id).await?;
        if !client.is_some_and(|c| c.active) {
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
            address: caller_address(parts, state),
        })
    }
}

/// The caller's address, through trusted proxies as for the send limits.
fn caller_address(parts: &Parts, state: &AppState) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let trusted = &state.services.settings.limits.trusted_proxies;
    source_address(peer, &forwarded, trusted).to_string()
}

/// The version a change expects, from `If-Match`: required, and one strong entity tag or
/// `*`.
fn expected_version(headers: &HeaderMap) -> Result<Expected, AdminError> {
    let value = headers
        .get(header::IF_MATCH)
        .ok_or(AdminError::PreconditionRequired)?;
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(Expected::Any);
    }
    // A weak tag or a list never matches a single strong version, and tags compare
    // character by character: `"+2"` or `"02"` is not `"2"`.
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()) && (*v == "0" || !v.starts_with('0')))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Expected::Version)
        .ok_or(AdminError::PreconditionFailed)
}

/// The entity tag of a resource at `version`.
fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits make a valid header value")
}

/// A JSON answer carrying the resource's `ETag`.
fn tagged<T: serde::Serialize>(status: StatusCode, version: i64, body: T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

/// Path parameters; a malformed one (such as bad percent-encoding) is answered like any
/// other bad input rather than with the framework's text.
pub(super) struct Segments<T>(pub T);

impl<T, S> FromRequestParts<S> for Segments<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Segments(value)),
            Err(rejection) => Err(AdminError::Invalid {
                field: "path",
                problem: rejection.body_text(),
            }),
        }
    }
}

/// A query string that does not fit, named like any other bad input.
fn query_error(rejection: QueryRejection) -> AdminError {
    AdminError::Invalid {
        field: "query",
        problem: rejection.body_text(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// At most this many items, 1 to 500; 50 by default.
    limit: Option<i64>,
    /// Items to skip; 0 by default.
    offset: Option<i64>,
}

impl Page {
    fn bounds(&self) -> Result<(i64, i64), AdminError> {
        bounds(self.limit, self.offset, 50, 500)
    }
}

fn bounds(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), AdminError> {
    let limit = limit.unwrap_or(default);
    let offset = offset.unwrap_or(0);
    if !(1..=max).contains(&limit) {
        return Err(AdminError::Invalid {
            field: "limit",
            problem: format!("must be 1 to {max}"),
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

/// Reads a JSON body into `T`, naming the problem when it does not fit.
fn body<T: serde::de::DeserializeOwned>(
    bytes: Result<axum::body::Bytes, BytesRejection>,
) -> Result<T, AdminError> {
    let invalid = |problem: String| AdminError::Invalid {
        field: "body",
        problem,
    };
    let bytes = bytes.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AdminError::TooLarge
        } else {
            invalid(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
}

/// Deserialises a member that may be `null` into `Some(None)`, and leaves an absent one
/// `None` (with `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
