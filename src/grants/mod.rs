//! The grant types of the token endpoint, one module each, and what they share.
//!
//! Grants speak in domain types and [`GrantError`]; the HTTP layer turns requests into
//! them and maps every error to its RFC 6749 wire code in one place.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
mod session;
pub mod sms_otp;
mod targets;
pub mod token_exchange;

use serde::Serialize;

use crate::crypto::random_id;
use crate::keys::{KeyError, Purpose};
use crate::limits::LimitError;
use crate::phone::PhoneError;
use crate::services::Services;
use crate::store::{AudienceRecord, ClientRecord, StoreError};
use crate::tokens::{ACCESS_TOKEN_TYP, AccessTokenClaims, Audience, TokenError};

pub use session::{Session, issue_session_tokens, new_family, userinfo_audience};
pub use targets::{resolve_scopes, resolve_targets};

/// `urn:callsign:params:oauth:grant-type:sms-otp`
pub const SMS_OTP_GRANT: &str = "urn:callsign:params:oauth:grant-type:sms-otp";
/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";
pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// Scopes OpenID Connect defines; they need no audience.
pub const OPENID_SCOPES: [&str; 3] = ["openid", "phone", "offline_access"];
/// The token type URI of phone tokens.
pub const PHONE_TOKEN_TYPE: &str = "urn:callsign:params:oauth:token-type:phone_token";
/// RFC 8693 §3.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    SmsOtp,
    TokenExchange,
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        GrantType::SmsOtp,
        GrantType::TokenExchange,
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
    ];

    /// The `grant_type` value on the wire.
    pub fn as_wire(self) -> &'static str {
        match self {
            GrantType::SmsOtp => SMS_OTP_GRANT,
            GrantType::TokenExchange => TOKEN_EXCHANGE_GRANT,
            GrantType::ClientCredentials => CLIENT_CREDENTIALS_GRANT,
            GrantType::AuthorizationCode => AUTHORIZATION_CODE_GRANT,
            GrantType::RefreshToken => REFRESH_TOKEN_GRANT,
        }
    }

    pub fn from_wire(value: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_wire() == value)
    }

    /// The wire value, or the short forms `sms-otp` and `token-exchange` of the CLI.
    pub fn from_cli(value: &str) -> Option<GrantType> {
        match value {
            "sms-otp" => Some(GrantType::SmsOtp),
            "token-exchange" => Some(GrantType::TokenExchange),
            "client-credentials" => Some(GrantType::ClientCredentials),
            "authorization-code" => Some(GrantType::AuthorizationCode),
            "refresh-token" => Some(GrantType::RefreshToken),
            other => GrantType::from_wire(other),
        }
    }
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The `jti` of the access token, for bookkeeping; never sent.
    #[serde(skip)]
    pub jti: String,
}

/// Why a grant was refused; precise for logs and tests, mapped to wire codes by the HTTP
/// layer.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("the client may not use this grant type")]
    GrantNotAllowed,
    #[error("phone_number: {0}")]
    PhoneInvalid(PhoneError),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("the SMS provider failed")]
    SmsUnavailable { retry_after: i64 },
    #[error("no live challenge with attempts left")]
    OtpNoLiveChallenge,
    #[error("the code does not match")]
    OtpMismatch,
    #[error("the code was used by a concurrent request")]
    OtpAlreadyUsed,
    #[error("subject_token_type is not the phone token type")]
    UnsupportedSubjectTokenType,
    #[error("actor tokens are not supported")]
    ActorTokenUnsupported,
    #[error("actor_token_type was sent without actor_token")]
    ActorTokenTypeWithoutToken,
    #[error("requested_token_type is not the access token type")]
    UnsupportedRequestedTokenType,
    #[error("subject token refused: {0}")]
    SubjectToken(TokenError),
    #[error("the subject token was issued to another client")]
    SubjectTokenOtherClient,
    #[error("the subject token was revoked")]
    SubjectTokenRevoked,
    #[error("the subject token's phone no longer exists")]
    PhoneGone,
    #[error("the phone has no user and sign-up is disabled")]
    SignupDisabled,
    #[error("the user is disabled")]
    UserDisabled,
    #[error("resource {0:?} is not an absolute URI without fragment")]
    ResourceInvalid(String),
    #[error("audience {0:?} is not allowed for the client")]
    AudienceNotAllowed(String),
    #[error("audience {0:?} is not registered")]
    AudienceUnknown(String),
    #[error("no audience requested and the client has no default")]
    NoAudience,
    #[error("scope is not a list of valid scope tokens")]
    ScopeMalformed,
    #[error("scope {0:?} is defined by none of the requested audiences")]
    ScopeUndefined(String),
    #[error("scope {0:?} is not allowed for the client")]
    ScopeNotAllowed(String),
    #[error("scope {0:?} goes beyond the phone token")]
    ScopeBeyondSubject(String),
    #[error("the authorization code is unknown, expired, used, or not this client's")]
    CodeRejected,
    #[error("the authorization code was used twice; its tokens are revoked")]
    CodeReplayed,
    #[error("redirect_uri differs from the authorization request")]
    RedirectMismatch,
    #[error("code_verifier is not 43 to 128 unreserved characters")]
    VerifierMalformed,
    #[error("code_verifier does not match the code challenge")]
    VerifierMismatch,
    #[error("the refresh token is unknown, expired, revoked, or not this client's")]
    RefreshRejected,
    #[error("a rotated refresh token was used again; its family is revoked")]
    RefreshReused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Refuses a client that was not registered for `grant` (RFC 6749 §5.2 unauthorized_client).
pub fn ensure_allowed(client: &ClientRecord, grant: GrantType) -> Result<(), GrantError> {
    if client.grant_types.iter().any(|g| g == grant.as_wire()) {
        Ok(())
    } else {
        Err(GrantError::GrantNotAllowed)
    }
}

/// Who the access token is about and how they authenticated.
pub struct Subject<'a> {
    pub id: &'a str,
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
}

/// Signs an RFC 9068 access token for `targets` and builds the response. The lifetime is
/// the shortest of the targets' lifetimes, so the token outlives none of its audiences'
/// policies.
pub fn issue_access_token(
    services: &Services,
    client: &ClientRecord,
    subject: Subject<'_>,
    targets: &[AudienceRecord],
    scopes: &[String],
) -> Result<TokenResponse, GrantError> {
    let now = services.clock.now();
    let ttl = targets
        .iter()
        .map(|a| a.access_token_ttl)
        .min()
        .unwrap_or(0);
    let scope = crate::scope::join(scopes);
    let claims = AccessTokenClaims {
        iss: services.issuer.clone(),
        sub: subject.id.to_owned(),
        aud: Audience::from_list(targets.iter().map(|a| a.identifier.clone()).collect()),
        exp: now + ttl,
        iat: now,
        jti: random_id(""),
        client_id: client.id.clone(),
        scope: scope.clone(),
        auth_time: subject.auth_time,
        amr: subject.amr,
    };
    let keys = services.keys.current();
    let key = keys.active(Purpose::AccessToken);
    let access_token = key.sign(ACCESS_TOKEN_TYP, &claims)?;
    tracing::info!(
        client_id = %client.id, sub = %claims.sub, jti = %claims.jti, kid = key.kid(),
        "access token issued"
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        expires_in: ttl,
        scope,
        refresh_token: None,
        id_token: None,
        jti: claims.jti,
    })
}

/// Records a security event in the audit trail, with the server itself as actor.
async fn record_security_event(
    services: &Services,
    action: &str,
    subject: &str,
    detail: String,
) -> Result<(), StoreError> {
    let event = crate::store::AuditEvent {
        at: services.clock.now(),
        actor: "server".into(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail,
        address: String::new(),
    };
    services.store.record_audit(&event).await
}

/// Refuses tokens for a user who is disabled or gone.
pub async fn ensure_user_active(services: &Services, user_id: &str) -> Result<(), GrantError> {
    let user = services.store.user(user_id).await?;
    check_user_status(user.as_ref().map(|u| u.status.as_str()))
}

/// Refuses a user whose status is not active, or who is gone (`None`).
pub fn check_user_status(status: Option<&str>) -> Result<(), GrantError> {
    match status {
        Some("active") => Ok(()),
        Some(_) => Err(GrantError::UserDisabled),
        None => Err(GrantError::PhoneGone),
    }
}

/// The user holding a verified phone, created on first sign-in when sign-up is enabled.
pub async fn user_for_phone(
    services: &Services,
    phone: &crate::store::PhoneRecord,
) -> Result<String, GrantError> {
    let store = &services.store;
    if let Some(user_id) = &phone.user_id {
        ensure_user_active(services, user_id).await?;
        return Ok(user_id.clone());
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
