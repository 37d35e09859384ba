//! The SMS one-time-code flow: `POST /otp/start` sends a code, and the
//! `urn:callsign:params:oauth:grant-type:sms-otp` grant trades it for a phone token.
//!
//! Every wrong, expired, used or exhausted code gets the same answer, and starting a
//! challenge never looks at whether the phone is known, so neither step tells a caller
//! anything about who is registered.

use std::net::IpAddr;

use tracing::instrument;

use super::{GrantError, GrantType, PHONE_TOKEN_TYPE, TokenResponse, ensure_allowed};
use crate::crypto::random_id;
use crate::keys::Purpose;
use crate::limits::{self, Destination, LimitError, StartRequest};
use crate::otp::OtpCode;
use crate::phone::Phone;
use crate::services::Services;
use crate::sms::{self, SmsMessage};
use crate::store::{ClientRecord, NewChallenge, PhoneRecord};
use crate::tokens::{PHONE_TOKEN_TYP, PhoneTokenClaims, SMS_OTP_AMR};

/// What the start endpoint answers; the same for every phone.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Started {
    pub expires_in: i64,
    pub resend_in: i64,
}

/// What a caller of `POST /otp/start` asks for, and from where.
#[derive(Debug, Clone, Copy)]
pub struct OtpStart<'a> {
    pub phone_number: &'a str,
    /// OpenID Connect `ui_locales`: the message's language preferences.
    pub ui_locales: Option<&'a str>,
    /// The address the request came from, for the per-address limit.
    pub source: IpAddr,
}

/// Creates (or replaces) the challenge for this phone and client and sends its code, if
/// every send limit lets it through. The caller has checked that the client may use the
/// OTP machinery: `POST /otp/start` needs the sms-otp grant, the sign-in pages the
/// authorization code grant.
#[instrument(name = "otp start", skip_all, fields(client_id = %client.id, phone))]
pub async fn start(
    services: &Services,
    client: &ClientRecord,
    request: OtpStart<'_>,
) -> Result<Started, GrantError> {
    let phone = Phone::parse(request.phone_number, services.settings.default_region)
        .map_err(GrantError::PhoneInvalid)?;
    tracing::Span::current().record("phone", tracing::field::display(&phone));
    let destination = Destination::of(&phone);
    let refused = |error: LimitError| {
        if let Some(reason) = error.refusal() {
            let region = destination.region_label();
            services.metrics.refused(reason, &client.id, &region);
        }
        GrantError::Limit(error)
    };
    limits::check_destination(&services.settings.limits, &destination).map_err(refused)?;

    let otp = services.settings.otp;
    let now = services.clock.now();
    let test_code = services.settings.sms.test_code(phone.e164(), now);
    let code = match test_code {
        Some(fixed) => OtpCode::new(fixed.to_owned()),
        None => OtpCode::generate(otp.length),
    };
    let id = random_id("otp_");
    let challenge = NewChallenge {
        code_hash: services.otp.hash(&id, code.expose()),
        id,
        phone: phone.e164().to_owned(),
        client_id: client.id.clone(),
        attempts: otp.max_attempts,
        expires_at: now + otp.ttl,
        created_at: now,
    };
    let admission = StartRequest {
        challenge: &challenge,
        destination: &destination,
        source: request.source,
        test_number: test_code.is_some(),
    };
    limits::admit(services, admission).await.map_err(refused)?;

    if test_code.is_none() {
        let text = sms::compose(
            &services.settings.sms,
            request.ui_locales,
            code.expose(),
            otp.ttl,
        );
        if let Err(error) = services.sms.send(&SmsMessage::new(phone, text)).await {
            // The code may or may not have arrived: it stops working, and its resend
            // cooldown keeps a retried start from sending a second one straight away.
            services.store.disable_challenge(&challenge.id).await?;
            let provider = services.sms.provider();
            services.metrics.delivery_failed(provider);
            tracing::error!(error = %error, provider, "SMS delivery failed");
            return Err(GrantError::SmsUnavailable {
                retry_after: otp.resend_after,
            });
        }
        services
            .metrics
            .code_sent(&client.id, &destination.region_label());
    }
    tracing::debug!("code sent");
    Ok(Started {
        expires_in: otp.ttl,
        resend_in: otp.resend_after,
    })
}

/// The parameters of the SMS OTP grant.
#[derive(Debug)]
pub struct OtpGrant<'a> {
    pub phone_number: &'a str,
    pub code: &'a str,
    pub scope: Option<&'a str>,
}

/// Checks the code against the live challenge and issues a phone token.
#[instrument(name = "sms-otp grant", skip_all, fields(client_id = %client.id, phone))]
pub async fn grant(
    services: &Services,
    client: &ClientRecord,
    request: OtpGrant<'_>,
) -> Result<TokenResponse, GrantError> {
    ensure_allowed(client, GrantType::SmsOtp)?;
    let phone = Phone::parse(request.phone_number, services.settings.default_region)
        .map_err(GrantError::PhoneInvalid)?;
    tracing::Span::current().record("phone", tracing::field::display(&phone));
    let scope = match request.scope {
        Some(scope) => Some(client_scopes(client, scope)?),
        None => None,
    };

    let record = verify_code(services, client, &phone, request.code).await?;
    // A disabled user's phone proves nothing that could become a token.
    if let Some(user_id) = &record.user_id {
        super::ensure_user_active(services, user_id).await?;
    }
    let now = services.clock.now();

    let ttl = services.settings.phone_token_ttl;
    let mut aud = vec![services.issuer.clone()];
    aud.extend(services.settings.phone_token_audiences.iter().cloned());
    let claims = PhoneTokenClaims {
        iss: services.issuer.clone(),
        sub: record.id,
        aud,
        exp: now + ttl,
        iat: now,
        jti: random_id(""),
        client_id: client.id.clone(),
        phone_number: record.e164,
        phone_number_verified: true,
        amr: SMS_OTP_AMR.map(String::from).to_vec(),
        scope: scope.and_then(|s| crate::scope::join(&s)),
    };
    let keys = services.keys.current();
    let key = keys.active(Purpose::PhoneToken);
    let token = key.sign(PHONE_TOKEN_TYP, &claims)?;
    tracing::info!(sub = %claims.sub, jti = %claims.jti, kid = key.kid(), "phone token issued");
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        issued_token_type: Some(PHONE_TOKEN_TYPE),
        expires_in: ttl,
        scope: None,
        refresh_token: None,
        id_token: None,
        jti: claims.jti,
    })
}

/// Starts a challenge for a sign-in page. `Ok(None)` when a code is on its way, or when one
/// sent a moment ago for this phone and client still works (say, the person went back and
/// started again): the page asks for that one. `Ok(Some(reason))` names why the phone page
/// must be shown again: `wait`, `locked`, `phone` or `unavailable`.
pub async fn start_from_page(
    services: &Services,
    client: &ClientRecord,
    request: OtpStart<'_>,
) -> Result<Option<&'static str>, GrantError> {
    let reason = match start(services, client, request).await {
        Ok(_)
        | Err(GrantError::Limit(LimitError::Limited {
            reason: limits::Refusal::Cooldown,
            ..
        })) => return Ok(None),
        Err(GrantError::Limit(LimitError::Limited { .. })) => "wait",
        Err(GrantError::Limit(LimitError::Suspended)) => "locked",
        Err(GrantError::Limit(LimitError::RegionNotAllowed | LimitError::NumberTypeRefused(_))) => {
            "phone"
        }
        Err(GrantError::SmsUnavailable { .. }) => "unavailable",
        Err(GrantError::PhoneInvalid(_)) => "phone",
        Err(e) => return Err(e),
    };
    Ok(Some(reason))
}

/// Checks `code` against the live challenge of this phone and client and records the phone
/// as verified. The attempt is counted before the code is compared, in one conditional
/// update, so parallel guesses cannot exceed the limit; the code works once.
pub async fn verify_code(
    services: &Services,
    client: &ClientRecord,
    phone: &Phone,
    code: &str,
) -> Result<PhoneRecord, GrantError> {
    let now = services.clock.now();
    let store = &services.store;
    let metrics = &services.metrics;
    let Some(attempt) = store.spend_attempt(phone.e164(), &client.id, now).await? else {
        metrics.code_checked(&client.id, false);
        return Err(GrantError::OtpNoLiveChallenge);
    };
    if !services.otp.matches(&attempt.id, code, &attempt.code_hash) {
        metrics.code_checked(&client.id, false);
        limits::record_failure(services, phone).await?;
        if attempt.attempts_left == 0 {
            tracing::warn!("attempts exhausted: the code is dead");
            limits::record_exhaustion(services, phone).await?;
        } else {
            tracing::debug!("wrong code");
        }
        return Err(GrantError::OtpMismatch);
    }
    if !store.consume_challenge(&attempt.id, now).await? {
        metrics.code_checked(&client.id, false);
        return Err(GrantError::OtpAlreadyUsed);
    }
    metrics.code_checked(&client.id, true);
    store.clear_backoff(phone.e164(), attempt.failures).await?;
    Ok(store
        .verify_phone(&random_id("ph_"), phone.e164(), now)
        .await?)
}

/// Scopes asked for at the SMS step must be allowed for the client.
fn client_scopes(client: &ClientRecord, scope: &str) -> Result<Vec<String>, GrantError> {
    let scopes = crate::scope::parse(scope).ok_or(GrantError::ScopeMalformed)?;
    match scopes.iter().find(|s| !client.scopes.contains(s)) {
        Some(refused) => Err(GrantError::ScopeNotAllowed(refused.clone())),
        None => Ok(scopes),
    }
}
