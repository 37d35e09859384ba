//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636), and the issuing of
//! codes at the end of a browser sign-in.
//!
//! Codes are single use: a second use revokes every token the first one produced
//! (RFC 6749 §4.1.2). They are bound to the client and the redirect URI, and PKCE (S256) is
//! required of every client, so a code without its verifier is worthless.

use tracing::instrument;

use super::session::{Session, issue_session_tokens, new_family};
use super::targets::{load_targets, narrow_targets, scopes_in_reach};
use super::{GrantError, GrantType, TokenResponse, ensure_allowed};
use crate::crypto::{b64, constant_time_eq, random_bytes, sha256};
use crate::services::Services;
use crate::store::{ClientRecord, CodeRecord, LoginRequest};
use crate::tokens::SMS_OTP_AMR;

/// The parameters of a code exchange.
#[derive(Debug)]
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    /// RFC 8707 §2.2: targets within the grant, to narrow it for this access token.
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
}

#[instrument(name = "authorization_code grant", skip_all, fields(client_id = %client.id))]
pub async fn grant(
    services: &Services,
    client: &ClientRecord,
    request: CodeExchange<'_>,
) -> Result<TokenResponse, GrantError> {
    ensure_allowed(client, GrantType::AuthorizationCode)?;
    let verifier = request.code_verifier.ok_or(GrantError::VerifierMismatch)?;
    if !is_code_verifier(verifier) {
        return Err(GrantError::VerifierMalformed);
    }
    let now = services.clock.now();
    let store = &services.store;
    let hash = sha256(request.code.as_bytes());
    let code = store.code(&hash).await?.ok_or(GrantError::CodeRejected)?;
    if code.client_id != client.id {
        return Err(GrantError::CodeRejected);
    }
    if code.consumed_at.is_some() {
        return Err(replayed(services, &code).await);
    }
    if code.expires_at <= now {
        return Err(GrantError::CodeRejected);
    }
    let redirect_matches = match request.redirect_uri {
        Some(uri) => uri == code.redirect_uri,
        None => !code.redirect_explicit,
    };
    if !redirect_matches {
        return Err(GrantError::RedirectMismatch);
    }
    if !constant_time_eq(
        challenge_of(verifier).as_bytes(),
        code.code_challenge.as_bytes(),
    ) {
        return Err(GrantError::VerifierMismatch);
    }
    let audiences = narrow_targets(
        &services.issuer,
        &code.audiences,
        &code.scope,
        &request.audiences,
        &request.resources,
    )?;
    if !store.consume_code(&hash, now).await? {
        return Err(replayed(services, &code).await);
    }
    super::ensure_user_active(services, &code.user_id)
        .await
        .map_err(|e| match e {
            GrantError::UserDisabled | GrantError::PhoneGone => GrantError::CodeRejected,
            other => other,
        })?;

    let targets = load_targets(services, &audiences).await?;
    let scopes = scopes_in_reach(&code.scope, &targets, false)?;
    let session = Session {
        client,
        user_id: &code.user_id,
        targets: &targets,
        scopes: &scopes,
        auth_time: code.auth_time,
        amr: SMS_OTP_AMR.map(String::from).to_vec(),
        nonce: code.nonce.as_deref(),
        family_id: Some(&code.family_id),
        family_created_at: code.auth_time,
        grant_scopes: &code.scope,
        grant_audiences: &code.audiences,
    };
    issue_session_tokens(services, session).await
}

/// A code used twice: revoke what its first use produced (RFC 6749 §4.1.2).
async fn replayed(services: &Services, code: &CodeRecord) -> GrantError {
    match services
        .store
        .revoke_family(&code.family_id, services.clock.now())
        .await
    {
        Ok(_) => {
            tracing::warn!(family = %code.family_id, "authorization code replayed; its tokens are revoked");
            let detail = format!(
                "client {}, family {} revoked",
                code.client_id, code.family_id
            );
            let action = "authorization_code.replayed";
            match super::record_security_event(services, action, &code.user_id, detail).await {
                Ok(()) => GrantError::CodeReplayed,
                Err(error) => error.into(),
            }
        }
        Err(error) => error.into(),
    }
}

/// Issues the code that ends a completed sign-in; only its hash is stored.
pub async fn issue_code(services: &Services, login: &LoginRequest) -> Result<String, GrantError> {
    let (Some(user_id), Some(auth_time)) = (&login.user_id, login.auth_time) else {
        return Err(GrantError::CodeRejected);
    };
    let (family_id, _) = new_family(services, &login.client_id, user_id).await?;
    let code = b64(&random_bytes::<32>());
    let record = CodeRecord {
        code_hash: sha256(code.as_bytes()),
        family_id,
        client_id: login.client_id.clone(),
        redirect_uri: login.redirect_uri.clone(),
        redirect_explicit: login.redirect_explicit,
        user_id: user_id.clone(),
        scope: login.scope.clone(),
        audiences: login.audiences.clone(),
        nonce: login.nonce.clone(),
        code_challenge: login.code_challenge.clone(),
        auth_time,
        expires_at: services.clock.now() + services.settings.tokens.code_ttl,
        consumed_at: None,
    };
    services.store.insert_code(&record).await?;
    Ok(code)
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(code_verifier))`.
pub fn challenge_of(verifier: &str) -> String {
    b64(&sha256(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_code_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge is the base64url encoding of 32 bytes: 43 characters.
pub fn is_code_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_sample_pair_matches() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_code_verifier(verifier));
        assert_eq!(
            challenge_of(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_code_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn verifiers_outside_the_syntax_are_refused() {
        assert!(!is_code_verifier("short"));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
        assert!(is_code_verifier(&"a~.-_".repeat(9)));
    }
}
