//! `POST /token`: client authentication, then dispatch on `grant_type`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::access::AccessNote;
use super::error::{ErrorCode, OAuthError, client_auth_error};
use super::extract::{Params, client_credentials, refuse_query_credentials};
use super::{AppState, NoStoreJson, method_not_allowed};
use crate::clients::authenticate;
use crate::grants::authorization_code::{self, CodeExchange};
use crate::grants::client_credentials::{self as machine, Credentials};
use crate::grants::refresh_token::{self, Refresh};
use crate::grants::sms_otp::{self, OtpGrant};
use crate::grants::token_exchange::{self, Exchange};
use crate::grants::{GrantType, TokenResponse};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/token", post(token).fallback(method_not_allowed))
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    params: Params,
) -> Response {
    let mut note = AccessNote::default();
    let mut response = match issue(&state, &headers, &uri, &params, &mut note).await {
        Ok(issued) => NoStoreJson(issued).into_response(),
        Err(error) => error.into_response(),
    };
    // The access line of this request names the client and the token issued.
    response.extensions_mut().insert(note);
    response
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    params: &Params,
    note: &mut AccessNote,
) -> Result<TokenResponse, OAuthError> {
    refuse_query_credentials(uri)?;
    let grant_type = params.required("grant_type")?;
    let grant = GrantType::from_wire(grant_type).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            axum::http::StatusCode::BAD_REQUEST,
            "grant_type is not supported",
        )
    })?;
    let credentials = client_credentials(headers, params)?;
    let services = &state.services;
    let client = authenticate(&services.store, &credentials)
        .await
        .map_err(|e| client_auth_error(e, credentials.method))?;
    note.client_id = Some(client.id.clone());

    let response = match grant {
        GrantType::SmsOtp => {
            let request = OtpGrant {
                phone_number: params.required("phone_number")?,
                code: params.required("otp")?,
                scope: params.single("scope")?,
            };
            sms_otp::grant(services, &client, request).await?
        }
        GrantType::TokenExchange => {
            let request = Exchange {
                subject_token: params.required("subject_token")?,
                subject_token_type: params.required("subject_token_type")?,
                actor_token: params.single("actor_token")?,
                actor_token_type: params.single("actor_token_type")?,
                requested_token_type: params.single("requested_token_type")?,
                audiences: params.all("audience"),
                resources: params.all("resource"),
                scope: params.single("scope")?,
            };
            token_exchange::exchange(services, &client, request).await?
        }
        GrantType::ClientCredentials => {
            let request = Credentials {
                audiences: params.all("audience"),
                resources: params.all("resource"),
                scope: params.single("scope")?,
            };
            machine::grant(services, &client, request).await?
        }
        GrantType::AuthorizationCode => {
            let request = CodeExchange {
                code: params.required("code")?,
                redirect_uri: params.single("redirect_uri")?,
                code_verifier: params.single("code_verifier")?,
                audiences: params.all("audience"),
                resources: params.all("resource"),
            };
            authorization_code::grant(services, &client, request).await?
        }
        GrantType::RefreshToken => {
            let request = Refresh {
                refresh_token: params.required("refresh_token")?,
                scope: params.single("scope")?,
                audiences: params.all("audience"),
                resources: params.all("resource"),
            };
            refresh_token::grant(services, &client, request).await?
        }
    };
    note.jti = Some(response.jti.clone());
    Ok(response)
}
