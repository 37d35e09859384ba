//! The one wire error of the OAuth endpoints (RFC 6749 §5.2), and the one mapping from
//! every internal error onto its code and status.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::clients::{AuthMethod, ClientAuthError};
use crate::grants::GrantError;
use crate::limits::{LimitError, Refusal};

/// RFC 6749 §5.2, RFC 8693 §2.2.2 and RFC 8628 §3.5 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    UnsupportedTokenType,
    UnsupportedResponseType,
    AccessDenied,
    SlowDown,
    TemporarilyUnavailable,
    ServerError,
}

/// An error answer: `{"error", "error_description"}` with `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    pub status: StatusCode,
    retry_after: Option<i64>,
    basic_challenge: bool,
}

impl OAuthError {
    pub fn new(
        code: ErrorCode,
        status: StatusCode,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            code,
            description: description.into(),
            status,
            retry_after: None,
            basic_challenge: false,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            ErrorCode::InvalidRequest,
            StatusCode::BAD_REQUEST,
            description,
        )
    }

    pub fn invalid_client(method: AuthMethod) -> Self {
        let mut error = Self::new(
            ErrorCode::InvalidClient,
            StatusCode::UNAUTHORIZED,
            "client authentication failed",
        );
        // RFC 6749 §5.2: a client that tried HTTP Basic gets a 401 with a challenge.
        error.basic_challenge = method == AuthMethod::Basic;
        error
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not complete the request",
        )
    }

    fn with_retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Logs an internal failure once, with its cause chain, and hides it from the client.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(error), "request failed");
        Self::server_error()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            error_description: &self.description,
        };
        let mut response = (self.status, super::NoStoreJson(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="callsign", charset="UTF-8""#),
            );
        }
        response
    }
}

impl From<GrantError> for OAuthError {
    fn from(error: GrantError) -> Self {
        use ErrorCode::*;
        use GrantError as G;
        let bad_request = StatusCode::BAD_REQUEST;
        let (code, description): (ErrorCode, &'static str) = match &error {
            G::GrantNotAllowed => (UnauthorizedClient, "the client may not use this grant type"),
            G::PhoneInvalid(_) => (InvalidRequest, "phone_number is not a valid phone number"),
            G::Limit(limit) => return limit_error(limit),
            G::SmsUnavailable { retry_after } => {
                return OAuthError::new(
                    TemporarilyUnavailable,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the code could not be sent; retry later",
                )
                .with_retry_after(*retry_after);
            }
            // RFC 6749 §5.2: one answer for every kind of bad code, so guessers learn nothing.
            G::OtpNoLiveChallenge | G::OtpMismatch | G::OtpAlreadyUsed => {
                (InvalidGrant, "the code is wrong, expired or already used")
            }
            G::UnsupportedSubjectTokenType => (
                InvalidRequest,
                "subject_token_type must be the phone token type",
            ),
            G::ActorTokenUnsupported => (InvalidRequest, "actor tokens are not supported"),
            G::ActorTokenTypeWithoutToken => (
                InvalidRequest,
                "actor_token_type must not be sent without actor_token",
            ),
            G::UnsupportedRequestedTokenType => (
                InvalidRequest,
                "requested_token_type must be the access token type",
            ),
            // RFC 8693 §2.2.2: an unacceptable subject token is invalid_request.
            G::SubjectToken(_)
            | G::SubjectTokenOtherClient
            | G::SubjectTokenRevoked
            | G::PhoneGone => (
                InvalidRequest,
                "subject_token is not a valid phone token for this client",
            ),
            G::SignupDisabled => (
                InvalidRequest,
                "sign-up is disabled: this phone is not linked to a user",
            ),
            G::UserDisabled => (InvalidRequest, "the user is disabled"),
            G::ResourceInvalid(_) => (
                InvalidTarget,
                "resource must be an absolute URI without a fragment",
            ),
            G::AudienceNotAllowed(_) | G::AudienceUnknown(_) => (
                InvalidTarget,
                "a requested audience is not available to this client",
            ),
            G::NoAudience => (
                InvalidTarget,
                "no audience requested and the client has no default",
            ),
            G::ScopeMalformed => (InvalidScope, "scope is not a list of valid scope tokens"),
            G::ScopeUndefined(_) => (
                InvalidScope,
                "a requested scope is defined by none of the audiences",
            ),
            G::ScopeNotAllowed(_) => (
                InvalidScope,
                "a requested scope is not allowed for this client",
            ),
            G::ScopeBeyondSubject(_) => (
                InvalidScope,
                "a requested scope goes beyond what was granted",
            ),
            // One answer for every bad code, so a code thief learns nothing.
            G::CodeRejected | G::CodeReplayed | G::RedirectMismatch | G::VerifierMismatch => (
                InvalidGrant,
                "the authorization code is invalid, expired or already used",
            ),
            G::VerifierMalformed => (
                InvalidRequest,
                "code_verifier must be 43 to 128 unreserved characters",
            ),
            G::RefreshRejected | G::RefreshReused => (
                InvalidGrant,
                "the refresh token is invalid, expired or revoked",
            ),
            G::Store(e) => return OAuthError::internal(e),
            G::Key(e) => return OAuthError::internal(e),
        };
        tracing::debug!(reason = %error, "request refused");
        OAuthError::new(code, bad_request, description)
    }
}

/// The one mapping of the send limits: a refused region or number type is a bad request
/// (the caller can do nothing but use another number); every cap is `429 slow_down`
/// with `Retry-After`, the same for known and unknown phones.
fn limit_error(error: &LimitError) -> OAuthError {
    let (retry_after, description) = match error {
        LimitError::RegionNotAllowed => {
            return OAuthError::invalid_request("codes are not sent to this region");
        }
        LimitError::NumberTypeRefused(_) => {
            return OAuthError::invalid_request("codes are not sent to this kind of number");
        }
        LimitError::Store(e) => return OAuthError::internal(e),
        LimitError::Suspended => {
            return OAuthError::new(
                ErrorCode::AccessDenied,
                StatusCode::FORBIDDEN,
                "this number is locked after too many wrong codes; the operator can unlock it",
            );
        }
        LimitError::Limited {
            reason: Refusal::Budget,
            retry_after,
        } => (
            *retry_after,
            "the server has sent all the codes it may send today; retry later",
        ),
        LimitError::Limited { retry_after, .. } => {
            (*retry_after, "too many codes requested; retry later")
        }
    };
    OAuthError::new(
        ErrorCode::SlowDown,
        StatusCode::TOO_MANY_REQUESTS,
        description,
    )
    .with_retry_after(retry_after)
}

/// Maps a failed client authentication; `method` decides the challenge header.
pub fn client_auth_error(error: ClientAuthError, method: AuthMethod) -> OAuthError {
    match error {
        ClientAuthError::Store(e) => OAuthError::internal(&e),
        other => {
            tracing::debug!(reason = %other, "client authentication failed");
            OAuthError::invalid_client(method)
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
