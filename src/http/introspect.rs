//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::error::{ErrorCode, OAuthError, client_auth_error};
use super::extract::{Params, client_credentials, refuse_query_credentials};
use super::{AppState, NoStoreJson, method_not_allowed};
use crate::clients::{AuthMethod, authenticate};
use crate::store::{ClientKind, ClientRecord};
use crate::token_status;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/introspect", post(introspect).fallback(method_not_allowed))
        .route("/revoke", post(revoke).fallback(method_not_allowed))
}

async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    params: &Params,
) -> Result<ClientRecord, OAuthError> {
    refuse_query_credentials(uri)?;
    let credentials = client_credentials(headers, params)?;
    authenticate(&state.services.store, &credentials)
        .await
        .map_err(|e| client_auth_error(e, credentials.method))
}

/// RFC 7662 §2.1: only authenticated callers, so the endpoint cannot be used to scan for
/// tokens; public clients cannot authenticate and are refused.
async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    params: Params,
) -> Result<NoStoreJson<serde_json::Value>, OAuthError> {
    let client = caller(&state, &headers, &uri, &params).await?;
    if client.kind == ClientKind::Public {
        return Err(OAuthError::invalid_client(AuthMethod::None));
    }
    let token = params.required("token")?;
    params.single("token_type_hint")?;
    let answer = token_status::introspect(&state.services, &client, token)
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    Ok(NoStoreJson(answer))
}

/// RFC 7009 §2.2: 200 whether or not the token was known; a token of another client is
/// left alone.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = caller(&state, &headers, &uri, &params).await?;
    let token = params.required("token")?;
    if let Some(hint) = params.single("token_type_hint")?
        && !matches!(hint, "access_token" | "refresh_token")
    {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedTokenType,
            StatusCode::BAD_REQUEST,
            "token_type_hint must be access_token or refresh_token",
        ));
    }
    token_status::revoke(&state.services, &client, token)
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    Ok((StatusCode::OK, NoStoreJson(serde_json::json!({}))).into_response())
}
