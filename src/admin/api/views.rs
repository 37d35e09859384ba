//! The JSON shapes of `/admin/v1`: what the handlers answer, and what the OpenAPI document
//! says they answer, from the same types.

use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::users::UserDetail;
use crate::store::{AudienceRecord, AuditEvent, ClientRecord, KeyRecord, PhoneLink, UserRecord};

/// An error answer. `field` names the member or parameter of a `400`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    pub error: String,
    pub error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An audience: an API, or a group of APIs sharing one identifier.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceView {
    pub identifier: String,
    /// The scopes the audience defines.
    pub scopes: Vec<String>,
    /// Lifetime in seconds of the access tokens issued for it.
    pub ttl: i64,
    pub created_at: i64,
}

impl From<&AudienceRecord> for AudienceView {
    fn from(audience: &AudienceRecord) -> Self {
        AudienceView {
            identifier: audience.identifier.clone(),
            scopes: audience.scopes.clone(),
            ttl: audience.access_token_ttl,
            created_at: audience.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceList {
    pub items: Vec<AudienceView>,
}

/// A registered client; its secret is never part of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// `public` or `confidential`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Wire names of the grant types the client may use.
    pub grant_types: Vec<String>,
    /// The audiences the client may get tokens for.
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    /// A disabled client cannot authenticate, and its tokens are inactive.
    pub active: bool,
    pub created_at: i64,
}

impl From<&ClientRecord> for ClientView {
    fn from(client: &ClientRecord) -> Self {
        ClientView {
            client_id: client.id.clone(),
            name: client.name.clone(),
            kind: client.kind.as_str().to_owned(),
            grant_types: client.grant_types.clone(),
            audiences: client.audiences.clone(),
            default_audience: client.default_audience.clone(),
            scopes: client.scopes.clone(),
            redirect_uris: client.redirect_uris.clone(),
            first_party: client.first_party,
            active: client.active,
            created_at: client.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<ClientView>,
}

/// A client just registered, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClientView {
    pub client_id: String,
    /// `null` for a public client.
    pub client_secret: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub grant_types: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub first_party: bool,
    pub active: bool,
    pub created_at: i64,
}

impl CreatedClientView {
    pub fn new(client: &ClientRecord, secret: Option<String>) -> Self {
        let view = ClientView::from(client);
        CreatedClientView {
            client_id: view.client_id,
            client_secret: secret,
            name: view.name,
            kind: view.kind,
            grant_types: view.grant_types,
            audiences: view.audiences,
            default_audience: view.default_audience,
            scopes: view.scopes,
            redirect_uris: view.redirect_uris,
            first_party: view.first_party,
            active: view.active,
            created_at: view.created_at,
        }
    }
}

/// A client's new secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    pub client_id: String,
    pub client_secret: String,
}

/// A user as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: i64,
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        UserView {
            id: user.id.clone(),
            status: user.status.clone(),
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
}

/// A number a user holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneView {
    /// E.164.
    pub phone_number: String,
    /// When its holder last answered a code; `null` for a number an admin linked that has
    /// not been proved yet.
    pub verified_at: Option<i64>,
}

/// One period in which a number belonged to a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneLinkView {
    pub phone_number: String,
    pub user_id: String,
    pub linked_at: i64,
    /// `null` while the link lasts.
    pub unlinked_at: Option<i64>,
}

impl From<&PhoneLink> for PhoneLinkView {
    fn from(link: &PhoneLink) -> Self {
        PhoneLinkView {
            phone_number: link.e164.clone(),
            user_id: link.user_id.clone(),
            linked_at: link.linked_at,
            unlinked_at: link.unlinked_at,
        }
    }
}

/// A user with the numbers they hold, and every link of those numbers and of the numbers
/// they held before, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetailView {
    pub id: String,
    pub status: String,
    pub created_at: i64,
    pub phones: Vec<PhoneView>,
    pub phone_history: Vec<PhoneLinkView>,
}

impl From<&UserDetail> for UserDetailView {
    fn from(detail: &UserDetail) -> Self {
        UserDetailView {
            id: detail.user.id.clone(),
            status: detail.user.status.clone(),
            created_at: detail.user.created_at,
            phones: detail
                .phones
                .iter()
                .map(|p| PhoneView {
                    phone_number: p.e164.clone(),
                    verified_at: (p.verified_at > 0).then_some(p.verified_at),
                })
                .collect(),
            phone_history: detail.history.iter().map(PhoneLinkView::from).collect(),
        }
    }
}

/// A signing key, without its private part.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    /// `phone_token`, `access_token` or `id_token`.
    pub purpose: String,
    pub algorithm: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    pub created_at: i64,
    /// When a `next` key starts signing.
    pub activate_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl From<&KeyRecord> for KeyView {
    fn from(key: &KeyRecord) -> Self {
        KeyView {
            kid: key.kid.clone(),
            purpose: key.purpose.clone(),
            algorithm: key.algorithm.clone(),
            state: key.state.clone(),
            created_at: key.created_at,
            activate_at: key.activate_at,
            retired_at: key.retired_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub kid: String,
    pub purpose: String,
    pub activate_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKeys {
    pub rotated: Vec<RotatedKey>,
}

/// One event of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub at: i64,
    /// `client:<id>` for an API change; `startup`, `scheduler` or `cli:<user>` for keys.
    pub actor: String,
    pub action: String,
    /// The id of what changed: a user, client, audience or key.
    pub subject: String,
    pub detail: String,
    /// The caller's address; empty for changes not made over HTTP.
    pub address: String,
}

impl From<&AuditEvent> for AuditView {
    fn from(event: &AuditEvent) -> Self {
        AuditView {
            at: event.at,
            actor: event.actor.clone(),
            action: event.action.clone(),
            subject: event.subject.clone(),
            detail: event.detail.clone(),
            address: event.address.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditView>,
}
