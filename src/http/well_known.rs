//! Discovery (OpenID Connect Discovery 1.0, RFC 8414), the JWKS, and the operator's static
//! documents under `/.well-known/`.
//!
//! Discovery and the JWKS are generated from the configuration and the keys; a static file
//! of the same name is refused at start-up and could not shadow them anyway, since the
//! router matches the fixed paths first.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::error::OAuthError;
use super::{AppState, public_max_age};
use crate::grants::{GrantType, OPENID_SCOPES};
use crate::keys::{KeyRing, Purpose};
use crate::services::Services;
use crate::store::StoreError;

const DISCOVERY_MAX_AGE: u32 = 300;
const MAX_STATIC_FILE: u64 = 64 * 1024;
/// Names served from configuration and keys, never from files.
const RESERVED: [&str; 3] = [
    "openid-configuration",
    "oauth-authorization-server",
    "jwks.json",
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/{file}", get(static_file))
}

/// RFC 8414 §3: `/.well-known/oauth-authorization-server` followed by the issuer's path.
pub(super) fn root_router(issuer_path: &str) -> Router<AppState> {
    let path = format!("/.well-known/oauth-authorization-server{issuer_path}");
    Router::new().route(&path, get(discovery))
}

/// One document for both discovery paths (RFC 8414 §3, OpenID Connect Discovery §4),
/// served as prebuilt bytes.
async fn discovery(State(state): State<AppState>) -> Result<Response, OAuthError> {
    let body = state
        .discovery
        .current(&state.services)
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    let json = HeaderValue::from_static("application/json");
    let cache = public_max_age(DISCOVERY_MAX_AGE);
    Ok((
        [(header::CONTENT_TYPE, json), (header::CACHE_CONTROL, cache)],
        body,
    )
        .into_response())
}

/// The discovery document as last built, with what it was built from. It is built again
/// when this process changed the audiences, when the keys changed, and at least once per
/// key refresh interval, which is also how soon a change made by another instance or the
/// CLI shows (well within the document's own `max-age`). Discovery is public metadata: no
/// check depends on it.
#[derive(Debug, Default)]
pub struct DiscoveryDocument {
    built: Mutex<Option<Built>>,
}

#[derive(Debug)]
struct Built {
    catalogue: u64,
    keys: Arc<KeyRing>,
    at: i64,
    body: Bytes,
}

impl DiscoveryDocument {
    async fn current(&self, services: &Services) -> Result<Bytes, StoreError> {
        let catalogue = services.store.catalogue_changes();
        let keys = services.keys.current();
        let now = services.clock.now();
        let refresh = services.keys.settings().refresh_interval;
        {
            let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(built) = built.as_ref()
                && built.catalogue == catalogue
                && Arc::ptr_eq(&built.keys, &keys)
                && now - built.at < refresh
                && now >= built.at
            {
                return Ok(built.body.clone());
            }
        }
        let scopes = services.store.all_scopes().await?;
        let document = metadata(&services.issuer, &scopes, &keys);
        let body = Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        *built = Some(Built {
            catalogue,
            keys,
            at: now,
            body: body.clone(),
        });
        Ok(body)
    }
}

fn metadata(issuer: &str, scopes: &[String], keys: &KeyRing) -> serde_json::Value {
    let grant_types: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_wire()).collect();
    let mut scopes_supported: Vec<&str> = OPENID_SCOPES.to_vec();
    scopes_supported.extend(scopes.iter().map(String::as_str));
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "sms_otp_endpoint": format!("{issuer}/otp/start"),
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": keys.algorithms(Purpose::IdToken),
        "access_token_signing_alg_values_supported": keys.algorithms(Purpose::AccessToken),
        "phone_token_signing_alg_values_supported": keys.algorithms(Purpose::PhoneToken),
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes_supported,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "auth_time",
            "amr", "nonce", "azp", "phone_number", "phone_number_verified",
        ],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "claims_parameter_supported": false,
    })
}

async fn jwks(State(state): State<AppState>) -> Response {
    let cache = public_max_age(state.services.settings.jwks_max_age);
    let json = HeaderValue::from_static("application/json");
    let jwks = Bytes::from_owner(state.services.keys.current().jwks());
    (
        [(header::CONTENT_TYPE, json), (header::CACHE_CONTROL, cache)],
        jwks,
    )
        .into_response()
}

async fn static_file(State(state): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    match state.static_files.files.get(&name) {
        Some((content_type, body)) => {
            let cache = public_max_age(DISCOVERY_MAX_AGE);
            (
                [
                    (header::CONTENT_TYPE, content_type.clone()),
                    (header::CACHE_CONTROL, cache),
                ],
                body.clone(),
            )
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The operator's documents, read once at start-up.
#[derive(Debug, Default)]
pub struct StaticFiles {
    files: HashMap<String, (HeaderValue, Bytes)>,
}

impl StaticFiles {
    /// Reads every regular file of `dir` with a plain name; a missing folder serves nothing.
    pub fn load(dir: &Path) -> std::io::Result<StaticFiles> {
        let mut files = HashMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StaticFiles::default()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let metadata = entry.metadata()?;
            if !metadata.is_file() || !is_plain_name(&name) {
                continue;
            }
            if RESERVED.contains(&name.as_str()) {
                tracing::warn!(file = %name, "ignored: the server generates this document");
                continue;
            }
            if metadata.len() > MAX_STATIC_FILE {
                tracing::warn!(file = %name, "ignored: larger than 64 KiB");
                continue;
            }
            let body = Bytes::from(std::fs::read(entry.path())?);
            files.insert(name.clone(), (content_type(&name), body));
        }
        Ok(StaticFiles { files })
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn content_type(name: &str) -> HeaderValue {
    let value = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some(_) => "application/octet-stream",
        // Apple's app-site-association file has no extension and is JSON.
        None if name == "apple-app-site-association" => "application/json",
        None => "application/octet-stream",
    };
    HeaderValue::from_static(value)
}
