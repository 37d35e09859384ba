//! What the server knows about a token it issued: introspection (RFC 7662) and
//! revocation (RFC 7009).
//!
//! A client learns about its own tokens, and a resource-server client about access tokens
//! for the audiences it is registered with; everything else is `{"active": false}`, so the
//! endpoint is no oracle for tokens of others.

use serde_json::{Value, json};

use crate::crypto::sha256;
use crate::services::Services;
use crate::store::{ClientRecord, StoreError};
use crate::tokens::{AccessTokenClaims, verify_access_token, verify_phone_token};

fn inactive() -> Value {
    json!({"active": false})
}

/// A JWT has two dots; anything else may be a refresh token.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The RFC 7662 answer for `token`, as seen by `client`.
pub async fn introspect(
    services: &Services,
    client: &ClientRecord,
    token: &str,
) -> Result<Value, StoreError> {
    let now = services.clock.now();
    let store = &services.store;
    if !looks_like_jwt(token) {
        let Some(refresh) = store.refresh_token(&sha256(token.as_bytes())).await? else {
            return Ok(inactive());
        };
        let live = refresh.used_at.is_none() && !refresh.family_revoked && refresh.expires_at > now;
        // The caller is authenticated, hence active: it is the refresh token's client.
        if !live
            || refresh.client_id != client.id
            || !user_active(services, &refresh.subject).await?
        {
            return Ok(inactive());
        }
        return Ok(json!({
            "active": true, "token_type": "refresh_token", "client_id": refresh.client_id,
            "sub": refresh.subject, "scope": refresh.scope.join(" "), "iss": services.issuer,
            "iat": refresh.created_at, "exp": refresh.expires_at,
        }));
    }

    let keys = services.keys.current();
    if let Ok(claims) = verify_access_token(&keys, &services.issuer, None, token, now) {
        if !may_see(client, &claims) || store.jti_revoked(&claims.jti).await? {
            return Ok(inactive());
        }
        if claims.sub != claims.client_id && !user_active(services, &claims.sub).await? {
            return Ok(inactive());
        }
        // A token of a client disabled or deleted since is dead with it.
        if claims.client_id != client.id && !client_active(services, &claims.client_id).await? {
            return Ok(inactive());
        }
        let mut answer = serde_json::to_value(&claims).unwrap_or_else(|_| json!({}));
        answer["active"] = json!(true);
        answer["token_type"] = json!("Bearer");
        return Ok(answer);
    }
    if let Ok(claims) = verify_phone_token(&keys, &services.issuer, token, now) {
        if claims.client_id != client.id || store.jti_revoked(&claims.jti).await? {
            return Ok(inactive());
        }
        if !phone_usable(services, &claims.sub).await? {
            return Ok(inactive());
        }
        return Ok(json!({
            "active": true, "token_type": "phone_token", "client_id": claims.client_id,
            "sub": claims.sub, "iss": claims.iss, "aud": claims.aud, "iat": claims.iat,
            "exp": claims.exp, "jti": claims.jti,
        }));
    }
    Ok(inactive())
}

/// Revokes `token` if it is one of `client`'s; unknown and foreign tokens change nothing
/// (RFC 7009 §2.2). A refresh token takes its whole family with it, access tokens
/// included.
pub async fn revoke(
    services: &Services,
    client: &ClientRecord,
    token: &str,
) -> Result<(), StoreError> {
    let now = services.clock.now();
    let store = &services.store;
    if !looks_like_jwt(token) {
        if let Some(refresh) = store.refresh_token(&sha256(token.as_bytes())).await?
            && refresh.client_id == client.id
            && store.revoke_family(&refresh.family_id, now).await?
        {
            tracing::info!(client_id = %client.id, family = %refresh.family_id, "refresh token family revoked");
        }
        return Ok(());
    }
    let keys = services.keys.current();
    let jwt = match verify_access_token(&keys, &services.issuer, None, token, now) {
        Ok(claims) => Some((claims.client_id, claims.jti, claims.exp)),
        Err(_) => verify_phone_token(&keys, &services.issuer, token, now)
            .ok()
            .map(|claims| (claims.client_id, claims.jti, claims.exp)),
    };
    if let Some((client_id, jti, exp)) = jwt
        && client_id == client.id
    {
        store.revoke_jti(&jti, exp).await?;
        tracing::info!(client_id = %client.id, jti = %jti, "token revoked");
    }
    Ok(())
}

/// A client sees its own tokens, and access tokens for an audience it is registered with.
fn may_see(client: &ClientRecord, claims: &AccessTokenClaims) -> bool {
    claims.client_id == client.id || client.audiences.iter().any(|a| claims.aud.contains(a))
}

/// Whether a client exists and is enabled.
pub async fn client_active(services: &Services, client_id: &str) -> Result<bool, StoreError> {
    Ok(services
        .store
        .client(client_id)
        .await?
        .is_some_and(|c| c.active))
}

/// A phone still exists and does not belong to a disabled user.
async fn phone_usable(services: &Services, phone_id: &str) -> Result<bool, StoreError> {
    Ok(
        match services.store.phone_with_user_status(phone_id).await? {
            None => false,
            Some((phone, status)) => phone.user_id.is_none() || status.as_deref() == Some("active"),
        },
    )
}

async fn user_active(services: &Services, user_id: &str) -> Result<bool, StoreError> {
    Ok(services
        .store
        .user(user_id)
        .await?
        .is_some_and(|u| u.status == "active"))
}
