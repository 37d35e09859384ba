//! `GET /userinfo` (OpenID Connect Core §5.3): a resource of callsign's own, protected by
//! RFC 6750 bearer tokens whose audience is the issuer's userinfo audience.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{AppState, NoStoreJson};
use crate::grants::userinfo_audience;
use crate::tokens::verify_access_token;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/userinfo", get(userinfo).post(userinfo))
}

/// An RFC 6750 §3 answer: the status and the `WWW-Authenticate` challenge.
fn challenge(status: StatusCode, error: Option<&str>) -> Response {
    let value = match error {
        Some(error) => format!(r#"Bearer realm="callsign", error="{error}""#),
        None => r#"Bearer realm="callsign""#.to_owned(),
    };
    let mut response = status.into_response();
    let header = HeaderValue::from_str(&value).expect("a quoted ASCII challenge");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, header);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    // RFC 6750 §2.3 and RFC 9700 §4.3.2: no tokens in URLs.
    let query = uri.query().unwrap_or_default();
    if form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == "access_token") {
        return challenge(StatusCode::BAD_REQUEST, Some("invalid_request"));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = bearer else {
        return challenge(StatusCode::UNAUTHORIZED, None);
    };
    let services = &state.services;
    let keys = services.keys.current();
    let audience = userinfo_audience(&services.issuer).identifier;
    let now = services.clock.now();
    let Ok(claims) = verify_access_token(&keys, &services.issuer, Some(&audience), token, now)
    else {
        return challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"));
    };
    let store = &services.store;
    let revoked = store.jti_revoked(&claims.jti).await;
    let user = store.user(&claims.sub).await;
    let (Ok(false), Ok(Some(user))) = (revoked, user) else {
        return challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"));
    };
    if user.status != "active" {
        return challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"));
    }
    // A token of a client disabled or deleted since is dead with it.
    match crate::token_status::client_active(services, &claims.client_id).await {
        Ok(true) => {}
        Ok(false) => return challenge(StatusCode::UNAUTHORIZED, Some("invalid_token")),
        Err(error) => return super::error::OAuthError::internal(&error).into_response(),
    }
    let scopes: Vec<&str> = claims
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .collect();
    if !scopes.contains(&"openid") {
        return challenge(StatusCode::FORBIDDEN, Some("insufficient_scope"));
    }
    let mut answer = json!({"sub": user.id});
    if scopes.contains(&"phone") {
        match store.phone_of_user(&user.id).await {
            Ok(Some(phone)) => {
                answer["phone_number"] = json!(phone.e164);
                answer["phone_number_verified"] = json!(true);
            }
            Ok(None) => {}
            Err(error) => return super::error::OAuthError::internal(&error).into_response(),
        }
    }
    NoStoreJson(answer).into_response()
}
