//! The refresh token grant (RFC 6749 §6) with rotation: every use returns a new refresh
//! token, and using a rotated one again revokes its whole family (RFC 9700 §4.14.2). A
//! refresh may narrow the scope and the audiences, never widen them.

use tracing::instrument;

use super::session::{Session, issue_session_tokens};
use super::targets::{load_targets, narrow_targets, scopes_in_reach};
use super::{GrantError, GrantType, TokenResponse, ensure_allowed};
use crate::crypto::sha256;
use crate::services::Services;
use crate::store::{ClientRecord, RefreshRecord};
use crate::tokens::SMS_OTP_AMR;

#[derive(Debug, Default)]
pub struct Refresh<'a> {
    pub refresh_token: &'a str,
    pub scope: Option<&'a str>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
}

#[instrument(name = "refresh_token grant", skip_all, fields(client_id = %client.id))]
pub async fn grant(
    services: &Services,
    client: &ClientRecord,
    request: Refresh<'_>,
) -> Result<TokenResponse, GrantError> {
    ensure_allowed(client, GrantType::RefreshToken)?;
    let now = services.clock.now();
    let store = &services.store;
    let hash = sha256(request.refresh_token.as_bytes());
    let token = store
        .refresh_token(&hash)
        .await?
        .ok_or(GrantError::RefreshRejected)?;
    // Bound to its client: another client's attempt changes nothing (RFC 6749 §6).
    if token.client_id != client.id || token.family_revoked || token.expires_at <= now {
        return Err(GrantError::RefreshRejected);
    }
    if token.used_at.is_some() {
        return Err(reused(services, &token).await);
    }
    let scopes = narrow_scopes(&token, request.scope)?;
    let audiences = narrow_targets(
        &services.issuer,
        &token.audiences,
        &scopes,
        &request.audiences,
        &request.resources,
    )?;
    let userinfo = super::userinfo_audience(&services.issuer).identifier;
    let (scopes, audiences) = within_client(client, &userinfo, scopes, audiences, &request)?;
    super::ensure_user_active(services, &token.subject)
        .await
        .map_err(|e| match e {
            GrantError::UserDisabled | GrantError::PhoneGone => GrantError::RefreshRejected,
            other => other,
        })?;
    if !store.use_refresh_token(&hash, now).await? {
        return Err(reused(services, &token).await);
    }

    let targets = load_targets(services, &audiences).await?;
    let scopes = scopes_in_reach(&scopes, &targets, request.scope.is_some())?;
    let session = Session {
        client,
        user_id: &token.subject,
        targets: &targets,
        scopes: &scopes,
        auth_time: token.auth_time,
        amr: SMS_OTP_AMR.map(String::from).to_vec(),
        nonce: None,
        family_id: Some(&token.family_id),
        family_created_at: token.family_created_at,
        grant_scopes: &token.scope,
        grant_audiences: &token.audiences,
    };
    issue_session_tokens(services, session).await
}

/// A rotated token presented again: whoever holds the family's tokens may be an attacker,
/// so all of them stop working.
async fn reused(services: &Services, token: &RefreshRecord) -> GrantError {
    match services
        .store
        .revoke_family(&token.family_id, services.clock.now())
        .await
    {
        Ok(_) => {
            tracing::warn!(family = %token.family_id, "refresh token reused; its family is revoked");
            let detail = format!(
                "client {}, family {} revoked",
                token.client_id, token.family_id
            );
            let action = "refresh_token.reused";
            match super::record_security_event(services, action, &token.subject, detail).await {
                Ok(()) => GrantError::RefreshReused,
                Err(error) => error.into(),
            }
        }
        Err(error) => error.into(),
    }
}

/// Permissions taken from the client since the sign-in are taken from its refreshes too: an
/// audience or scope the client may no longer have is dropped, or refused when the request
/// names it. The userinfo audience is the server's own and stays.
fn within_client(
    client: &ClientRecord,
    userinfo: &str,
    scopes: Vec<String>,
    audiences: Vec<String>,
    request: &Refresh<'_>,
) -> Result<(Vec<String>, Vec<String>), GrantError> {
    let allowed = |a: &String| a == userinfo || client.audiences.contains(a);
    let named = !request.audiences.is_empty() || !request.resources.is_empty();
    if let Some(lost) = audiences.iter().find(|a| !allowed(a)) {
        // Named in the request, or the last audience the grant had: refused.
        if named || !audiences.iter().any(allowed) {
            return Err(GrantError::AudienceNotAllowed(lost.clone()));
        }
    }
    if let Some(lost) = scopes.iter().find(|s| !client.scopes.contains(s))
        && request.scope.is_some()
    {
        return Err(GrantError::ScopeNotAllowed(lost.clone()));
    }
    let audiences = audiences.into_iter().filter(allowed).collect();
    let scopes = scopes
        .into_iter()
        .filter(|s| client.scopes.contains(s))
        .collect();
    Ok((scopes, audiences))
}

fn narrow_scopes(
    token: &RefreshRecord,
    requested: Option<&str>,
) -> Result<Vec<String>, GrantError> {
    let Some(requested) = requested else {
        return Ok(token.scope.clone());
    };
    let scopes = crate::scope::parse(requested).ok_or(GrantError::ScopeMalformed)?;
    match scopes.iter().find(|s| !token.scope.contains(s)) {
        Some(wider) => Err(GrantError::ScopeBeyondSubject(wider.clone())),
        None => Ok(scopes),
    }
}
