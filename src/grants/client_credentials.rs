//! The `client_credentials` grant (RFC 6749 §4.4) for machine clients: the access token's
//! subject is the client itself.

use tracing::instrument;

use super::{
    GrantError, GrantType, Subject, TokenResponse, ensure_allowed, issue_access_token,
    resolve_scopes, resolve_targets,
};
use crate::services::Services;
use crate::store::{ClientKind, ClientRecord};

#[derive(Debug, Default)]
pub struct Credentials<'a> {
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub scope: Option<&'a str>,
}

#[instrument(level = "debug", name = "client_credentials grant", skip_all, fields(client_id = %client.id))]
pub async fn grant(
    services: &Services,
    client: &ClientRecord,
    request: Credentials<'_>,
) -> Result<TokenResponse, GrantError> {
    ensure_allowed(client, GrantType::ClientCredentials)?;
    // RFC 6749 §4.4: only confidential clients may use this grant.
    if client.kind != ClientKind::Confidential {
        return Err(GrantError::GrantNotAllowed);
    }
    let targets = resolve_targets(client, &request.audiences, &request.resources)?;
    let scopes = resolve_scopes(client, &targets, request.scope, None)?;
    let subject = Subject {
        id: &client.id,
        auth_time: None,
        amr: Vec::new(),
    };
    let mut response = issue_access_token(services, client, subject, &targets, &scopes)?;
    response.issued_token_type = None;
    Ok(response)
}
