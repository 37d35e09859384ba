//! The JWTs callsign issues and the one place that verifies them.
//!
//! Verification follows RFC 8725: the algorithm is checked against an allow-list and the
//! `kid` looked up among the server's own keys of the expected purpose before anything
//! else in the token is trusted; then the explicit `typ` (RFC 8725 §3.11), the signature,
//! `iss`, `aud` and `exp` against the server's clock.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyRing, Purpose};

/// JOSE `typ` of phone tokens.
pub const PHONE_TOKEN_TYP: &str = "phone-token+jwt";
/// JOSE `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Authentication methods of a phone proven by an SMS code (RFC 8176).
pub const SMS_OTP_AMR: [&str; 2] = ["sms", "otp"];
/// The only algorithms a token may name: never `none`, never HMAC.
const ALLOWED_ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256];
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Claims of a phone token: proof that the holder answered an SMS code for the phone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneTokenClaims {
    pub iss: String,
    /// The phone record's id.
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub phone_number: String,
    pub phone_number_verified: bool,
    pub amr: Vec<String>,
    /// Scopes the client asked for at the SMS step; an exchange may not go beyond them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Claims of an RFC 9068 access token. It carries no phone number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user id (or, for machine clients, the client id).
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the user proved the phone; absent for machine clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// The `aud` claim: a string for one audience, an array for several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut audiences: Vec<String>) -> Audience {
        if audiences.len() == 1 {
            Audience::One(audiences.remove(0))
        } else {
            Audience::Many(audiences)
        }
    }

    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// Why a token was refused; each is logged at debug and mapped to one wire error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWS")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token's kid names no key of the expected purpose")]
    UnknownKid,
    #[error("the token has the wrong typ")]
    WrongTyp,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's issuer is not this server")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token's claims are missing or malformed")]
    BadClaims,
}

trait Expiring {
    fn exp(&self) -> i64;
}

impl Expiring for PhoneTokenClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl Expiring for AccessTokenClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Verifies a phone token of this server: phone-token key, `typ`, `iss`, `aud` (the
/// issuer) and `exp`.
pub fn verify_phone_token(
    keys: &KeyRing,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<PhoneTokenClaims, TokenError> {
    let purpose = Purpose::PhoneToken;
    verify(
        keys,
        purpose,
        PHONE_TOKEN_TYP,
        issuer,
        Some(issuer),
        token,
        now,
    )
}

/// Verifies an access token of this server meant for `audience`, or for any audience
/// when none is given (introspection and revocation, which check the client instead).
pub fn verify_access_token(
    keys: &KeyRing,
    issuer: &str,
    audience: Option<&str>,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, TokenError> {
    let purpose = Purpose::AccessToken;
    verify(
        keys,
        purpose,
        ACCESS_TOKEN_TYP,
        issuer,
        audience,
        token,
        now,
    )
}

fn verify<T: DeserializeOwned + Expiring>(
    keys: &KeyRing,
    purpose: Purpose,
    typ: &str,
    issuer: &str,
    audience: Option<&str>,
    token: &str,
    now: i64,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKid)?;
    let key = keys.find(purpose, kid).ok_or(TokenError::UnknownKid)?;
    // Each key is bound to one algorithm (RFC 8725 §3.1); the header cannot choose another.
    if header.alg != key.algorithm().jwt() {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    if !typ_matches(header.typ.as_deref(), typ) {
        return Err(TokenError::WrongTyp);
    }

    let mut validation = Validation::new(key.algorithm().jwt());
    validation.set_issuer(&[issuer]);
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Expiry is checked below against the server's clock, with no leeway: the server
    // checks tokens it issued itself.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = jsonwebtoken::decode::<T>(token, key.decoding_key(), &validation).map_err(|e| {
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::Json(_) => TokenError::BadClaims,
            _ => TokenError::Malformed,
        }
    })?;
    if data.claims.exp() <= now {
        return Err(TokenError::Expired);
    }
    Ok(data.claims)
}

/// `typ` is a media type: compared case-insensitively, with or without `application/`
/// (RFC 7515 §4.1.9).
fn typ_matches(header_typ: Option<&str>, expected: &str) -> bool {
    let Some(typ) = header_typ else {
        return false;
    };
    let typ = typ.to_ascii_lowercase();
    typ.strip_prefix("application/").unwrap_or(&typ) == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_compared_as_a_media_type() {
        assert!(typ_matches(Some("at+jwt"), "at+jwt"));
        assert!(typ_matches(Some("application/AT+JWT"), "at+jwt"));
        assert!(!typ_matches(Some("JWT"), "at+jwt"));
        assert!(!typ_matches(Some("phone-token+jwt"), "at+jwt"));
        assert!(!typ_matches(None, "at+jwt"));
    }

    #[test]
    fn one_audience_is_a_string_and_several_an_array() {
        let one = serde_json::to_value(Audience::from_list(vec!["a".into()])).unwrap();
        assert_eq!(one, serde_json::json!("a"));
        let many = serde_json::to_value(Audience::from_list(vec!["a".into(), "b".into()]));
        assert_eq!(many.unwrap(), serde_json::json!(["a", "b"]));
    }
}
