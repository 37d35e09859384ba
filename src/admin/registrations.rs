//! Changing and removing clients and audiences. Registration itself is in
//! [`crate::registry`], whose checks every change here goes through again, so a client or
//! audience can never be changed into something that could not have been registered.
//!
//! A change or a removal that would break a client, or leave tokens pointing at nothing,
//! is refused with a conflict that names what depends on the record.

use super::{Actor, ChangeError, Expected, audit, settled};
use crate::grants::OPENID_SCOPES;
use crate::registry::{self, NewClient, admin_audience};
use crate::services::Services;
use crate::store::{AudienceRecord, ClientKind, ClientRecord, Versioned};

/// The members of a client that can change; `None` keeps the current value. The kind
/// (public or confidential) cannot change: register a new client instead.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// `Some(None)` removes the default audience.
    pub default_audience: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
    /// `false` disables the client: it can no longer authenticate, and its tokens are
    /// inactive at introspection.
    pub active: Option<bool>,
}

/// Changes a client; the result passes the same checks as a registration.
pub async fn update_client(
    services: &Services,
    actor: &Actor,
    id: &str,
    changes: ClientChanges,
    expected: Expected,
) -> Result<ClientRecord, ChangeError> {
    let store = &services.store;
    let current = store.client(id).await?.ok_or(ChangeError::NotFound)?;
    if !expected.allows(current.version) {
        return Err(ChangeError::VersionMismatch);
    }
    let audiences = changes
        .audiences
        .clone()
        .unwrap_or_else(|| current.audiences.clone());
    // A default the new audiences no longer contain goes with them, unless it was asked for.
    let default_audience = match changes.default_audience.clone() {
        Some(default) => default,
        None => current
            .default_audience
            .clone()
            .filter(|d| audiences.contains(d)),
    };
    let new = NewClient {
        name: changes.name.clone().unwrap_or_else(|| current.name.clone()),
        public: current.kind == ClientKind::Public,
        grants: changes
            .grant_types
            .clone()
            .unwrap_or_else(|| current.grant_types.clone()),
        audiences,
        default_audience,
        scopes: changes
            .scopes
            .clone()
            .unwrap_or_else(|| current.scopes.clone()),
        redirect_uris: changes
            .redirect_uris
            .clone()
            .unwrap_or_else(|| current.redirect_uris.clone()),
        first_party: changes.first_party.unwrap_or(current.first_party),
    };
    // Disabling or enabling alone leaves the registration as it is, so it needs no check:
    // cutting a client off must work even when its settings have gone stale around it
    // (say, an audience lost a scope the client still lists).
    let status_only = ClientChanges {
        active: None,
        ..changes.clone()
    }
    .is_empty();
    let updated = if status_only {
        ClientRecord {
            active: changes.active.unwrap_or(current.active),
            ..current.clone()
        }
    } else {
        changed_client(store, &current, new, &changes).await?
    };
    let actions = client_actions(&current, &updated);
    // Nothing to change: the version stays, and so does every ETag a caller holds.
    if actions.is_empty() {
        return Ok(current);
    }
    let version = settled(store.update_client(&updated, current.version).await?)?;

    for (action, changed) in actions {
        audit(services, actor, action, id, changed).await?;
    }
    Ok(ClientRecord { version, ..updated })
}

impl ClientChanges {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.grant_types.is_none()
            && self.audiences.is_none()
            && self.default_audience.is_none()
            && self.scopes.is_none()
            && self.redirect_uris.is_none()
            && self.first_party.is_none()
            && self.active.is_none()
    }
}

/// The client after `changes`, checked as a registration would be.
async fn changed_client(
    store: &crate::store::Store,
    current: &ClientRecord,
    new: NewClient,
    changes: &ClientChanges,
) -> Result<ClientRecord, ChangeError> {
    let checked = registry::check_client(store, new).await?;
    Ok(ClientRecord {
        name: checked.name,
        grant_types: checked.grant_types,
        audiences: checked.audiences,
        audience_records: checked.audience_records,
        default_audience: checked.default_audience,
        scopes: checked.scopes,
        redirect_uris: checked.redirect_uris,
        first_party: checked.first_party,
        active: changes.active.unwrap_or(current.active),
        ..current.clone()
    })
}

/// The audit events a client change makes: a status change is an event of its own.
fn client_actions(before: &ClientRecord, after: &ClientRecord) -> Vec<(&'static str, String)> {
    let mut changed = Vec::new();
    let mut note = |name: &str, differs: bool| {
        if differs {
            changed.push(name.to_owned());
        }
    };
    note("name", before.name != after.name);
    note("grant_types", before.grant_types != after.grant_types);
    note("audiences", before.audiences != after.audiences);
    note(
        "default_audience",
        before.default_audience != after.default_audience,
    );
    note("scopes", before.scopes != after.scopes);
    note("redirect_uris", before.redirect_uris != after.redirect_uris);
    note("first_party", before.first_party != after.first_party);
    let mut actions = Vec::new();
    if !changed.is_empty() {
        actions.push(("client.updated", changed.join(" ")));
    }
    match (before.active, after.active) {
        (true, false) => actions.push(("client.disabled", String::new())),
        (false, true) => actions.push(("client.enabled", String::new())),
        _ => {}
    }
    actions
}

/// Deletes a client. Refresh tokens or authorization codes it could still use make this a
/// conflict, unless `revoke_tokens` revokes them first.
pub async fn delete_client(
    services: &Services,
    actor: &Actor,
    id: &str,
    expected: Expected,
    revoke_tokens: bool,
) -> Result<(), ChangeError> {
    let store = &services.store;
    let current = store.client(id).await?.ok_or(ChangeError::NotFound)?;
    if !expected.allows(current.version) {
        return Err(ChangeError::VersionMismatch);
    }
    let now = services.clock.now();
    let live = store.live_grants_of_client(id, now).await?;
    if live > 0 && !revoke_tokens {
        return Err(ChangeError::Conflict(format!(
            "client {id} still has {live} live refresh tokens or authorization codes; \
             delete with revoke_tokens=true to revoke them"
        )));
    }
    let revoked = store.revoke_client_families(id, now).await?;
    settled(store.delete_client(id, current.version).await?)?;
    let detail = match revoked {
        0 => String::new(),
        n => format!("{n} token families revoked"),
    };
    Ok(audit(services, actor, "client.deleted", id, detail).await?)
}

/// The members of an audience that can change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AudienceChanges {
    pub scopes: Option<Vec<String>>,
    pub ttl: Option<i64>,
}

/// Changes an audience's scopes or token lifetime. Removing a scope that some client is
/// allowed, and that none of that client's other audiences defines, is a conflict naming
/// the clients: take the scope from them first.
pub async fn update_audience(
    services: &Services,
    actor: &Actor,
    identifier: &str,
    changes: AudienceChanges,
    expected: Expected,
) -> Result<AudienceRecord, ChangeError> {
    let store = &services.store;
    let current = store
        .audience(identifier)
        .await?
        .ok_or(ChangeError::NotFound)?;
    if !expected.allows(current.version) {
        return Err(ChangeError::VersionMismatch);
    }
    let scopes = match &changes.scopes {
        Some(scopes) => registry::validate_scopes(scopes)?,
        None => current.scopes.clone(),
    };
    let ttl = match changes.ttl {
        Some(ttl) => registry::validate_ttl(ttl)?,
        None => current.access_token_ttl,
    };
    let removed: Vec<&String> = current
        .scopes
        .iter()
        .filter(|s| !scopes.contains(s))
        .collect();
    let broken = clients_needing(services, identifier, &removed).await?;
    if !broken.is_empty() {
        return Err(ChangeError::Conflict(format!(
            "clients {} are allowed scopes that only this audience defines; \
             take those scopes from them first",
            broken.join(", ")
        )));
    }
    let updated = AudienceRecord {
        scopes,
        access_token_ttl: ttl,
        ..current.clone()
    };
    let mut changed = Vec::new();
    if updated.scopes != current.scopes {
        changed.push("scopes");
    }
    if updated.access_token_ttl != current.access_token_ttl {
        changed.push("ttl");
    }
    // Nothing to change: the version stays, and so does every ETag a caller holds.
    if changed.is_empty() {
        return Ok(current);
    }
    let version = settled(store.update_audience(&updated, current.version).await?)?;
    let detail = changed.join(" ");
    audit(services, actor, "audience.updated", identifier, detail).await?;
    Ok(AudienceRecord { version, ..updated })
}

/// The clients of an audience that hold one of `removed` and would lose its definition.
async fn clients_needing(
    services: &Services,
    identifier: &str,
    removed: &[&String],
) -> Result<Vec<String>, ChangeError> {
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    let store = &services.store;
    let mut broken = Vec::new();
    for client_id in store.clients_of_audience(identifier).await? {
        let Some(client) = store.client(&client_id).await? else {
            continue;
        };
        let mut defined_elsewhere = Vec::new();
        for other in client.audiences.iter().filter(|a| *a != identifier) {
            if let Some(audience) = store.audience(other).await? {
                defined_elsewhere.extend(audience.scopes);
            }
        }
        let needs = client.scopes.iter().any(|s| {
            removed.contains(&s)
                && !OPENID_SCOPES.contains(&s.as_str())
                && !defined_elsewhere.contains(s)
        });
        if needs {
            broken.push(client_id);
        }
    }
    Ok(broken)
}

/// Deletes an audience that no client refers to and no live grant names. The admin API's
/// own audience cannot be deleted.
pub async fn delete_audience(
    services: &Services,
    actor: &Actor,
    identifier: &str,
    expected: Expected,
) -> Result<(), ChangeError> {
    let store = &services.store;
    let current = store
        .audience(identifier)
        .await?
        .ok_or(ChangeError::NotFound)?;
    if !expected.allows(current.version) {
        return Err(ChangeError::VersionMismatch);
    }
    if identifier == admin_audience(&services.issuer) {
        return Err(ChangeError::Conflict(
            "the admin API's own audience cannot be deleted".into(),
        ));
    }
    refuse_if_used(services, identifier).await?;
    let live = store
        .live_grants_for_audience(identifier, services.clock.now())
        .await?;
    if live > 0 {
        return Err(ChangeError::Conflict(format!(
            "{live} live refresh tokens or authorization codes are for audience {identifier}"
        )));
    }
    match store.delete_audience(identifier, current.version).await? {
        // A client may have been given the audience since the check above; the removal
        // then found it in use, which is a conflict rather than a stale version.
        Versioned::Stale => {
            refuse_if_used(services, identifier).await?;
            return Err(ChangeError::VersionMismatch);
        }
        outcome => settled(outcome)?,
    };
    Ok(audit(
        services,
        actor,
        "audience.deleted",
        identifier,
        String::new(),
    )
    .await?)
}

/// Refuses the removal of an audience that a client is allowed or has as its default.
async fn refuse_if_used(services: &Services, identifier: &str) -> Result<(), ChangeError> {
    let clients = services.store.clients_of_audience(identifier).await?;
    if clients.is_empty() {
        return Ok(());
    }
    Err(ChangeError::Conflict(format!(
        "audience {identifier} is used by clients {}; take it from them first",
        clients.join(", ")
    )))
}
