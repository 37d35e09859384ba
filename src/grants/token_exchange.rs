//! RFC 8693 token exchange: a phone token of this server becomes an RFC 9068 access token
//! for the user who holds the phone.
//!
//! Checks run in order of trust: the request's token types, then the subject token
//! (algorithm, key, `typ`, signature, `iss`, `aud`, `exp`, then the client it was issued
//! to), then the targets and scopes; only when all pass is anything written.

use tracing::instrument;

use super::{
    ACCESS_TOKEN_TYPE, GrantError, GrantType, PHONE_TOKEN_TYPE, Subject, TokenResponse,
    ensure_allowed, issue_access_token, resolve_scopes, resolve_targets,
};
use crate::crypto::random_id;
use crate::services::Services;
use crate::store::{ClientRecord, PhoneRecord};
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

#[instrument(name = "token exchange", skip_all, fields(client_id = %client.id, sub))]
pub async fn exchange(
    services: &Services,
    client: &ClientRecord,
    request: Exchange<'_>,
) -> Result<TokenResponse, GrantError> {
    ensure_allowed(client, GrantType::TokenExchange)?;
    check_token_types(&request)?;
    let subject = verify_subject(services, client, request.subject_token)?;
    tracing::Span::current().record("sub", subject.sub.as_str());

    let targets = resolve_targets(services, client, &request.audiences, &request.resources).await?;
    let ceiling = subject.scope.as_deref().and_then(crate::scope::parse);
    let scopes = resolve_scopes(client, &targets, request.scope, ceiling.as_deref())?;

    let phone = services
        .store
        .phone(&subject.sub)
        .await?
        .filter(|p| p.e164 == subject.phone_number)
        .ok_or(GrantError::PhoneGone)?;
    let user_id = user_of(services, &phone).await?;

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
fn verify_subject(
    services: &Services,
    client: &ClientRecord,
    token: &str,
) -> Result<PhoneTokenClaims, GrantError> {
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
    Ok(claims)
}

/// The user holding the phone, created on first exchange when sign-up is enabled.
async fn user_of(services: &Services, phone: &PhoneRecord) -> Result<String, GrantError> {
    let store = &services.store;
    if let Some(user_id) = &phone.user_id {
        let user = store.user(user_id).await?.ok_or(GrantError::PhoneGone)?;
        if user.status != "active" {
            return Err(GrantError::UserDisabled);
        }
        return Ok(user.id);
    }
    if !services.settings.create_users {
        return Err(GrantError::SignupDisabled);
    }
    let now = services.clock.now();
    let user_id = store
        .link_new_user(&phone.id, &random_id("usr_"), now)
        .await?;
    tracing::info!(user_id = %user_id, phone_id = %phone.id, "user created for phone");
    Ok(user_id)
}
