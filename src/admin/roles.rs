//! Who may use the admin console: users holding the `admin` role, named by their phone.
//! Used by the CLI; nothing here knows about HTTP.

use crate::clock::Clock;
use crate::crypto::random_id;
use crate::phone::Phone;
use crate::store::{ADMIN_ROLE, AuditEvent, LinkOutcome, Store, StoreError};

/// The outcome of granting or revoking the admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub user_id: Option<String>,
    /// False when nothing changed: the role was already held (grant) or not held (revoke).
    pub changed: bool,
    /// A user (and perhaps the phone record) was created for the grant.
    pub created_user: bool,
}

/// Gives the admin role to the user holding `phone`, creating the user, and the phone
/// record (not yet verified) when absent, in one transaction, as the admin API's user
/// creation does.
pub async fn grant_admin(
    store: &Store,
    clock: &dyn Clock,
    phone: &Phone,
    actor: &str,
) -> Result<RoleChange, StoreError> {
    let now = clock.now();
    let holder = store
        .phone_by_number(phone.e164())
        .await?
        .and_then(|record| record.user_id);
    let (user_id, created_user) = match holder {
        Some(user_id) => (user_id, false),
        None => {
            let candidate = random_id("usr_");
            let outcome = store
                .link_phone(&candidate, phone.e164(), &random_id("ph_"), now, true)
                .await?;
            match outcome {
                LinkOutcome::Linked => {
                    let detail = format!("with phone {phone}");
                    audit(store, now, actor, "user.created", &candidate, &detail).await?;
                    (candidate, true)
                }
                // Linked to someone by another request in the meantime: that user.
                LinkOutcome::AlreadyLinked | LinkOutcome::HeldBy(_) => {
                    let holder = store
                        .phone_by_number(phone.e164())
                        .await?
                        .and_then(|record| record.user_id);
                    (holder.ok_or(StoreError::MissingReference)?, false)
                }
            }
        }
    };
    let changed = store.grant_role(&user_id, ADMIN_ROLE, now).await?;
    if changed {
        audit(store, now, actor, "role.granted", &user_id, "role admin").await?;
    }
    Ok(RoleChange {
        user_id: Some(user_id),
        changed,
        created_user,
    })
}

/// Takes the admin role from the user holding `phone` and ends that user's console
/// sessions.
pub async fn revoke_admin(
    store: &Store,
    clock: &dyn Clock,
    phone: &Phone,
    actor: &str,
) -> Result<RoleChange, StoreError> {
    let user_id = store
        .phone_by_number(phone.e164())
        .await?
        .and_then(|record| record.user_id);
    let Some(user_id) = user_id else {
        return Ok(RoleChange {
            user_id: None,
            changed: false,
            created_user: false,
        });
    };
    let changed = store.revoke_role(&user_id, ADMIN_ROLE).await?;
    if changed {
        audit(
            store,
            clock.now(),
            actor,
            "role.revoked",
            &user_id,
            "role admin",
        )
        .await?;
    }
    Ok(RoleChange {
        user_id: Some(user_id),
        changed,
        created_user: false,
    })
}

async fn audit(
    store: &Store,
    at: i64,
    actor: &str,
    action: &str,
    user_id: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: user_id.to_owned(),
        detail: detail.to_owned(),
        address: String::new(),
    };
    tracing::info!(actor, action, subject = user_id, "admin change");
    store.record_audit(&event).await
}
