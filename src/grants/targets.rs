//! Audiences and scopes of an access token request, shared by every grant that issues
//! access tokens.
//!
//! RFC 8693 §2.1 and RFC 8707 §2: `audience` and `resource` may repeat, and the token must
//! be usable at every target, so each one must be registered and allowed for the client;
//! otherwise `invalid_target`. RFC 9068 §3: each scope must mean something at one of the
//! token's audiences.

use super::{GrantError, OPENID_SCOPES, userinfo_audience};
use crate::services::Services;
use crate::store::{AudienceRecord, ClientRecord};

/// The audiences the token will name: the requested ones, or the client's default.
pub async fn resolve_targets(
    services: &Services,
    client: &ClientRecord,
    audiences: &[String],
    resources: &[String],
) -> Result<Vec<AudienceRecord>, GrantError> {
    for resource in resources {
        if !is_resource_indicator(resource) {
            return Err(GrantError::ResourceInvalid(resource.clone()));
        }
    }
    let mut wanted: Vec<&String> = Vec::new();
    for target in audiences.iter().chain(resources) {
        if !wanted.contains(&target) {
            wanted.push(target);
        }
    }
    if wanted.is_empty() {
        wanted.push(
            client
                .default_audience
                .as_ref()
                .ok_or(GrantError::NoAudience)?,
        );
    }

    let mut targets = Vec::with_capacity(wanted.len());
    for identifier in wanted {
        if !client.audiences.contains(identifier) {
            return Err(GrantError::AudienceNotAllowed(identifier.clone()));
        }
        let audience = services
            .store
            .audience(identifier)
            .await?
            .ok_or_else(|| GrantError::AudienceUnknown(identifier.clone()))?;
        targets.push(audience);
    }
    Ok(targets)
}

/// The scopes granted: each requested scope must be defined by a target, allowed for the
/// client and, when a `ceiling` is given, within it. No scope requested grants none.
pub fn resolve_scopes(
    client: &ClientRecord,
    targets: &[AudienceRecord],
    requested: Option<&str>,
    ceiling: Option<&[String]>,
) -> Result<Vec<String>, GrantError> {
    let Some(requested) = requested else {
        return Ok(Vec::new());
    };
    let scopes = crate::scope::parse(requested).ok_or(GrantError::ScopeMalformed)?;
    for scope in &scopes {
        let openid = OPENID_SCOPES.contains(&scope.as_str());
        if !openid && !targets.iter().any(|t| t.scopes.contains(scope)) {
            return Err(GrantError::ScopeUndefined(scope.clone()));
        }
        if !client.scopes.contains(scope) {
            return Err(GrantError::ScopeNotAllowed(scope.clone()));
        }
        if ceiling.is_some_and(|c| !c.contains(scope)) {
            return Err(GrantError::ScopeBeyondSubject(scope.clone()));
        }
    }
    Ok(scopes)
}

/// The audience records named by identifiers a grant recorded earlier.
pub(super) async fn load_targets(
    services: &Services,
    identifiers: &[String],
) -> Result<Vec<AudienceRecord>, GrantError> {
    let userinfo = userinfo_audience(&services.issuer);
    let mut targets = Vec::with_capacity(identifiers.len());
    for identifier in identifiers {
        if *identifier == userinfo.identifier {
            targets.push(userinfo.clone());
            continue;
        }
        let audience = services.store.audience(identifier).await?;
        targets.push(audience.ok_or_else(|| GrantError::AudienceUnknown(identifier.clone()))?);
    }
    Ok(targets)
}

/// The audiences of a token asked for at the token endpoint under an earlier grant
/// (RFC 8707 §2.2, RFC 6749 §6): each requested one must be in the grant, so a request may
/// narrow the grant but never widen it; none requested keeps the whole grant. A token still
/// granted `openid` keeps the userinfo audience.
pub(super) fn narrow_targets(
    issuer: &str,
    granted: &[String],
    scopes: &[String],
    audiences: &[String],
    resources: &[String],
) -> Result<Vec<String>, GrantError> {
    let mut narrowed: Vec<String> = Vec::new();
    for requested in audiences.iter().chain(resources) {
        if !granted.contains(requested) {
            return Err(GrantError::AudienceNotAllowed(requested.clone()));
        }
        if !narrowed.contains(requested) {
            narrowed.push(requested.clone());
        }
    }
    if narrowed.is_empty() {
        return Ok(granted.to_vec());
    }
    let userinfo = userinfo_audience(issuer).identifier;
    let openid = scopes.iter().any(|s| s == "openid");
    if openid && granted.contains(&userinfo) && !narrowed.contains(&userinfo) {
        narrowed.push(userinfo);
    }
    Ok(narrowed)
}

/// Scopes that still mean something at the narrowed audiences (RFC 9068 §3): asked for
/// explicitly, an orphan is an error; carried over by default, it is dropped.
pub(super) fn scopes_in_reach(
    scopes: &[String],
    targets: &[AudienceRecord],
    explicit: bool,
) -> Result<Vec<String>, GrantError> {
    let mut kept = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let openid = OPENID_SCOPES.contains(&scope.as_str());
        if openid || targets.iter().any(|t| t.scopes.contains(scope)) {
            kept.push(scope.clone());
        } else if explicit {
            return Err(GrantError::ScopeUndefined(scope.clone()));
        }
    }
    Ok(kept)
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn is_resource_indicator(value: &str) -> bool {
    !value.contains(char::is_whitespace)
        && url::Url::parse(value).is_ok_and(|url| url.fragment().is_none())
}
