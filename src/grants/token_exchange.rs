//! RFC 8693 token exchange: a phone token of this server becomes an RFC 9068 access token
//! for the user who holds the phone.
//!
//! Checks run in order of trust: the request's token types, then the subject token
//! (algorithm, key, `typ`, signature, `iss`, `aud`, `exp`, then the client it was issued
//! to), then the targets and scopes; only when all pass is anything written.

use tracing::instrument;

use super::{
    ACCESS_TOKEN_TYPE, GrantError, GrantType, PHONE_TOKEN_TYPE, Session, Subject, TokenResponse,
    check_user_status, ensure_allowed, issue_access_token, issue_session_tokens, new_family,
    resolve_scopes, resolve_targets, user_for_phone, userinfo_audience,
};
use crate::services::Services;
use crate::store::{ClientRecord, SubjectState};
use crate::tokens::{PhoneTokenClaims, verify_phone_token};

/// The parameters of a token-exchange request (RFC 8693 §2.1).
#[derive(Debug, Default)]
pub struct Exchange<'a> {
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    pub actor_token: Option<&'a str>,
    pub actor_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub scope: Option<&'a str>,
}

#[instrument(level = "debug", name = "token exchange", skip_all, fields(client_id = %client.id, sub))]
pub async fn exchange(
    services: &Services,
    client: &ClientRecord,
    request: Exchange<'_>,
) -> Result<TokenResponse, GrantError> {
    ensure_allowed(client, GrantType::TokenExchange)?;
    check_token_types(&request)?;
    let (subject, state) = verify_subject(services, client, request.subject_token).await?;
    tracing::Span::current().record("sub", subject.sub.as_str());

    let targets = resolve_targets(client, &request.audiences, &request.resources)?;
    let ceiling = subject.scope.as_deref().and_then(crate::scope::parse);
    let scopes = resolve_scopes(client, &targets, request.scope, ceiling.as_deref())?;
    // A token granted openid serves at userinfo too, as in the browser flow.
    let mut targets = targets;
    if scopes.iter().any(|s| s == "openid") {
        targets.push(userinfo_audience(&services.issuer));
    }

    // The phone and its user's status came with the revocation check, in the same query.
    let SubjectState {
        phone, user_status, ..
    } = state
        .filter(|s| s.phone.e164 == subject.phone_number)
        .ok_or(GrantError::PhoneGone)?;
    let user_id = match &phone.user_id {
        Some(user_id) => {
            check_user_status(user_status.as_deref())?;
            user_id.clone()
        }
        None => user_for_phone(services, &phone).await?,
    };

    // With offline_access, the exchange starts a sign-in that refresh tokens extend.
    if scopes.iter().any(|s| s == "offline_access") {
        let (family_id, created_at) = new_family(services, &client.id, &user_id).await?;
        let audiences: Vec<String> = targets.iter().map(|t| t.identifier.clone()).collect();
        let session = Session {
            client,
            user_id: &user_id,
            targets: &targets,
            scopes: &scopes,
            auth_time: subject.iat,
            amr: subject.amr.clone(),
            nonce: None,
            family_id: Some(&family_id),
            family_created_at: created_at,
            grant_scopes: &scopes,
            grant_audiences: &audiences,
        };
        return issue_session_tokens(services, session).await;
    }
    let amr = subject.amr.clone();
    let subject = Subject {
        id: &user_id,
        auth_time: Some(subject.iat),
        amr,
    };
    issue_access_token(services, client, subject, &targets, &scopes)
}

/// RFC 8693 §2.1: the subject must be a phone token; actor tokens are not supported, and
/// `actor_token_type` must not come without `actor_token`.
fn check_token_types(request: &Exchange<'_>) -> Result<(), GrantError> {
    if request.subject_token_type != PHONE_TOKEN_TYPE {
        return Err(GrantError::UnsupportedSubjectTokenType);
    }
    match (request.actor_token, request.actor_token_type) {
        (Some(_), _) => return Err(GrantError::ActorTokenUnsupported),
        (None, Some(_)) => return Err(GrantError::ActorTokenTypeWithoutToken),
        (None, None) => {}
    }
    if request
        .requested_token_type
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(GrantError::UnsupportedRequestedTokenType);
    }
    Ok(())
}

/// The subject token must be a live phone token of this server issued to this client.
/// Returns it with the state of its phone, read in the same statement as the revocation
/// check; `None` when the phone is gone.
async fn verify_subject(
    services: &Services,
    client: &ClientRecord,
    token: &str,
) -> Result<(PhoneTokenClaims, Option<SubjectState>), GrantError> {
    let now = services.clock.now();
    let claims = verify_phone_token(&services.keys.current(), &services.issuer, token, now)
        .map_err(|e| {
            tracing::debug!(reason = %e, "subject token refused");
            GrantError::SubjectToken(e)
        })?;
    if claims.client_id != client.id {
        tracing::debug!("subject token belongs to another client");
        return Err(GrantError::SubjectTokenOtherClient);
    }
    // RFC 7009: a revoked token must not be usable, here included.
    let store = &services.store;
    let state = store.phone_token_subject(&claims.sub, &claims.jti).await?;
    let revoked = match &state {
        Some(state) => state.revoked,
        // Without its phone the token fails anyway; a revoked one still says so.
        None => store.jti_revoked(&claims.jti).await?,
    };
    if revoked {
        tracing::debug!("subject token was revoked");
        return Err(GrantError::SubjectTokenRevoked);
    }
    Ok((claims, state))
}
