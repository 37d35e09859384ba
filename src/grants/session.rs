//! Tokens for a signed-in person: an access token, an ID token when `openid` was granted,
//! and a refresh token when the client may have one and `offline_access` was granted.
//! Shared by the authorization-code, refresh-token and token-exchange grants.

use serde::Serialize;

use super::{GrantError, GrantType, Subject, TokenResponse, issue_access_token};
use crate::crypto::{b64, random_bytes, random_id, sha256};
use crate::keys::Purpose;
use crate::registry::DEFAULT_ACCESS_TOKEN_TTL;
use crate::services::Services;
use crate::store::{AudienceRecord, ClientRecord, RefreshRecord};

/// A sign-in that tokens are issued for.
pub struct Session<'a> {
    pub client: &'a ClientRecord,
    pub user_id: &'a str,
    pub targets: &'a [AudienceRecord],
    pub scopes: &'a [String],
    pub auth_time: i64,
    pub amr: Vec<String>,
    /// The OpenID Connect nonce, echoed in the ID token.
    pub nonce: Option<&'a str>,
    /// The token family, when the tokens descend from a sign-in that can be revoked as one.
    pub family_id: Option<&'a str>,
    /// When the family began (bounds the refresh token's absolute lifetime).
    pub family_created_at: i64,
    /// What a new refresh token carries: the whole grant, even when this access token was
    /// narrowed (RFC 6749 §6: a refresh token's scope never changes).
    pub grant_scopes: &'a [String],
    pub grant_audiences: &'a [String],
}

/// The audience of `GET /userinfo`: tokens granted `openid` carry it.
pub fn userinfo_audience(issuer: &str) -> AudienceRecord {
    AudienceRecord {
        identifier: format!("{issuer}/userinfo"),
        scopes: Vec::new(),
        access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
        created_at: 0,
        version: 1,
    }
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    amr: &'a [String],
    azp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number_verified: Option<bool>,
}

/// Issues the tokens the session's scopes and the client's grants call for.
pub async fn issue_session_tokens(
    services: &Services,
    session: Session<'_>,
) -> Result<TokenResponse, GrantError> {
    let granted = |scope: &str| session.scopes.iter().any(|s| s == scope);
    let client = session.client;
    let subject = Subject {
        id: session.user_id,
        auth_time: Some(session.auth_time),
        amr: session.amr.clone(),
    };
    let mut response =
        issue_access_token(services, client, subject, session.targets, session.scopes)?;
    if let Some(family_id) = session.family_id {
        let expires_at = services.clock.now() + response.expires_in;
        services
            .store
            .record_family_token(&response.jti, family_id, expires_at)
            .await?;
    }
    if granted("openid") {
        response.id_token = Some(id_token(services, &session, granted("phone")).await?);
    }
    let granted_offline = session.grant_scopes.iter().any(|s| s == "offline_access");
    let may_refresh = client
        .grant_types
        .iter()
        .any(|g| g == GrantType::RefreshToken.as_wire());
    if let (true, true, Some(family_id)) = (may_refresh, granted_offline, session.family_id) {
        response.refresh_token = Some(refresh_token(services, &session, family_id).await?);
    }
    Ok(response)
}

async fn id_token(
    services: &Services,
    session: &Session<'_>,
    phone: bool,
) -> Result<String, GrantError> {
    let now = services.clock.now();
    let phone_number = match phone {
        true => services
            .store
            .phone_of_user(session.user_id)
            .await?
            .map(|p| p.e164),
        false => None,
    };
    let claims = IdTokenClaims {
        iss: &services.issuer,
        sub: session.user_id,
        aud: &session.client.id,
        exp: now + services.settings.tokens.id_token_ttl,
        iat: now,
        auth_time: session.auth_time,
        nonce: session.nonce,
        amr: &session.amr,
        azp: &session.client.id,
        phone_number_verified: phone_number.as_ref().map(|_| true),
        phone_number,
    };
    let keys = services.keys.current();
    Ok(keys.active(Purpose::IdToken).sign("JWT", &claims)?)
}

/// A new opaque refresh token in the family; only its hash is stored.
async fn refresh_token(
    services: &Services,
    session: &Session<'_>,
    family_id: &str,
) -> Result<String, GrantError> {
    let now = services.clock.now();
    let tokens = services.settings.tokens;
    let token = b64(&random_bytes::<32>());
    let record = RefreshRecord {
        token_hash: sha256(token.as_bytes()),
        family_id: family_id.to_owned(),
        client_id: session.client.id.clone(),
        subject: session.user_id.to_owned(),
        scope: session.grant_scopes.to_vec(),
        audiences: session.grant_audiences.to_vec(),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: (now + tokens.refresh_idle).min(session.family_created_at + tokens.refresh_max),
        used_at: None,
        family_created_at: session.family_created_at,
        family_revoked: false,
    };
    services.store.insert_refresh(&record).await?;
    Ok(token)
}

/// Starts a token family for a new sign-in.
pub async fn new_family(
    services: &Services,
    client_id: &str,
    subject: &str,
) -> Result<(String, i64), GrantError> {
    let id = random_id("fam_");
    let now = services.clock.now();
    services
        .store
        .insert_family(&id, client_id, subject, now)
        .await?;
    Ok((id, now))
}
