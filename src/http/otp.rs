//! `POST /otp/start`: send a one-time code to a phone.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::routing::post;

use super::error::{OAuthError, client_auth_error};
use super::extract::{FormOrJson, Peer, client_credentials, refuse_query_credentials};
use super::{AppState, NoStoreJson, method_not_allowed};
use crate::clients::authenticate;
use crate::grants::sms_otp::{self, OtpStart, Started};
use crate::grants::{GrantType, ensure_allowed};
use crate::limits::source_address;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/otp/start", post(start_otp).fallback(method_not_allowed))
}

async fn start_otp(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    uri: Uri,
    FormOrJson(params): FormOrJson,
) -> Result<NoStoreJson<Started>, OAuthError> {
    refuse_query_credentials(&uri)?;
    let credentials = client_credentials(&headers, &params)?;
    let services = &state.services;
    let client = authenticate(&services.store, &credentials)
        .await
        .map_err(|e| client_auth_error(e, credentials.method))?;
    ensure_allowed(&client, GrantType::SmsOtp)?;
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let request = OtpStart {
        phone_number: params.required("phone_number")?,
        ui_locales: params.single("ui_locales")?,
        source: source_address(peer, &forwarded, &services.settings.limits.trusted_proxies),
    };
    let started = sms_otp::start(services, &client, request).await?;
    Ok(NoStoreJson(started))
}
