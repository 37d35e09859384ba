//! Managing users and their phones: create, list and search, read with phones and link
//! history, disable and enable, and link, unlink or move a number.
//!
//! A disabled user keeps their data but gets no token from any grant, and the tokens they
//! hold stop working at introspection and at `/userinfo` (see `token_status`).

use super::{Actor, ChangeError, Expected, audit, settled};
use crate::crypto::random_id;
use crate::phone::Phone;
use crate::services::Services;
use crate::store::{LinkOutcome, PhoneLink, UserPhone, UserRecord};

/// A user with the numbers they hold and the history of every link involving them.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: UserRecord,
    pub phones: Vec<UserPhone>,
    pub history: Vec<PhoneLink>,
}

/// What a user's status may be set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn parse(value: &str) -> Option<UserStatus> {
        match value {
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
}

/// Creates an active user, holding `phone_number` when one is given (an invited user has
/// none yet). A number that belongs to someone else is a conflict, and then no user is
/// created.
pub async fn create(
    services: &Services,
    actor: &Actor,
    phone_number: Option<&str>,
) -> Result<UserDetail, ChangeError> {
    let phone = phone_number.map(|n| parse_phone(services, n)).transpose()?;
    let id = random_id("usr_");
    let now = services.clock.now();
    let store = &services.store;
    let detail = match &phone {
        Some(phone) => {
            let outcome = store
                .link_phone(&id, phone.e164(), &random_id("ph_"), now, true)
                .await?;
            if let LinkOutcome::HeldBy(owner) = outcome {
                return Err(held_by(phone, &owner));
            }
            format!("with phone {phone}")
        }
        None => {
            store.insert_user(&id, now).await?;
            String::new()
        }
    };
    audit(services, actor, "user.created", &id, detail).await?;
    read(services, &id).await
}

/// Users in order of creation. `phone` narrows the list to holders of a number: a full
/// number in any form the parser accepts, or a fragment of its digits.
pub async fn list(
    services: &Services,
    phone: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRecord>, ChangeError> {
    let pattern = match phone.map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(full) if full.starts_with('+') || full.starts_with("00") => {
            Some(parse_phone_as(services, full, "phone")?.e164().to_owned())
        }
        Some(fragment) => {
            let digits: String = fragment
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
                .collect();
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                let problem = "must be a phone number starting with + or 1 to 15 digits of one";
                return Err(ChangeError::invalid("phone", problem));
            }
            Some(digits)
        }
    };
    Ok(services
        .store
        .list_users(pattern.as_deref(), limit, offset)
        .await?)
}

/// One user with phones and history.
pub async fn read(services: &Services, id: &str) -> Result<UserDetail, ChangeError> {
    let store = &services.store;
    let user = store.user(id).await?.ok_or(ChangeError::NotFound)?;
    let phones = store.user_phones(id).await?;
    let history = store.phone_history(id).await?;
    Ok(UserDetail {
        user,
        phones,
        history,
    })
}

/// Disables or enables a user. Setting the status a user already has changes nothing and
/// records nothing.
pub async fn set_status(
    services: &Services,
    actor: &Actor,
    id: &str,
    status: UserStatus,
    expected: Expected,
) -> Result<UserDetail, ChangeError> {
    let store = &services.store;
    let user = store.user(id).await?.ok_or(ChangeError::NotFound)?;
    if !expected.allows(user.version) {
        return Err(ChangeError::VersionMismatch);
    }
    if user.status == status.as_str() {
        return read(services, id).await;
    }
    settled(
        store
            .set_user_status(id, status.as_str(), user.version)
            .await?,
    )?;
    let action = match status {
        UserStatus::Active => "user.enabled",
        UserStatus::Disabled => "user.disabled",
    };
    audit(services, actor, action, id, String::new()).await?;
    read(services, id).await
}

/// Links a number to a user. Linking a number the user already holds changes nothing; a
/// number held by someone else is a conflict (move it instead).
pub async fn link_phone(
    services: &Services,
    actor: &Actor,
    user_id: &str,
    phone_number: &str,
) -> Result<UserDetail, ChangeError> {
    let phone = parse_phone(services, phone_number)?;
    let store = &services.store;
    store.user(user_id).await?.ok_or(ChangeError::NotFound)?;
    let now = services.clock.now();
    let outcome = store
        .link_phone(user_id, phone.e164(), &random_id("ph_"), now, false)
        .await?;
    match outcome {
        LinkOutcome::Linked => {
            let detail = format!("phone {phone}");
            audit(services, actor, "user.phone_linked", user_id, detail).await?;
        }
        LinkOutcome::AlreadyLinked => {}
        LinkOutcome::HeldBy(owner) => return Err(held_by(&phone, &owner)),
    }
    read(services, user_id).await
}

/// Takes a number away from a user; the number stays known, with its history, and can be
/// linked again.
pub async fn unlink_phone(
    services: &Services,
    actor: &Actor,
    user_id: &str,
    phone_number: &str,
) -> Result<UserDetail, ChangeError> {
    let phone = parse_phone(services, phone_number)?;
    let store = &services.store;
    store.user(user_id).await?.ok_or(ChangeError::NotFound)?;
    let now = services.clock.now();
    if !store.unlink_phone(user_id, phone.e164(), now).await? {
        return Err(ChangeError::NotFound);
    }
    let detail = format!("phone {phone}");
    audit(services, actor, "user.phone_unlinked", user_id, detail).await?;
    read(services, user_id).await
}

/// Moves a number from one user to another in one transaction. `from` must hold it now,
/// so a move based on an outdated view changes nothing.
pub async fn move_phone(
    services: &Services,
    actor: &Actor,
    phone_number: &str,
    from: &str,
    to: &str,
) -> Result<UserDetail, ChangeError> {
    let phone = parse_phone(services, phone_number)?;
    if from == to {
        return Err(ChangeError::invalid("to", "must differ from from"));
    }
    let store = &services.store;
    store.user(from).await?.ok_or(ChangeError::NotFound)?;
    if store.user(to).await?.is_none() {
        return Err(ChangeError::invalid("to", format!("no user {to}")));
    }
    let now = services.clock.now();
    if !store.move_phone(phone.e164(), from, to, now).await? {
        return Err(ChangeError::Conflict(format!(
            "user {from} does not hold {phone}"
        )));
    }
    // Recorded for both users, so that either one's trail shows it.
    let detail = format!("phone {phone} to {to}");
    audit(services, actor, "user.phone_moved", from, detail).await?;
    let detail = format!("phone {phone} from {from}");
    audit(services, actor, "user.phone_moved", to, detail).await?;
    read(services, to).await
}

/// Lifts the lock that too many consecutive wrong codes put on a number; false when it was
/// not locked, and then nothing is recorded.
pub async fn unlock_phone(
    services: &Services,
    actor: &Actor,
    phone_number: &str,
) -> Result<(Phone, bool), ChangeError> {
    let phone = parse_phone(services, phone_number)?;
    let unlocked = services.store.unlock_phone(phone.e164()).await?;
    if unlocked {
        audit(
            services,
            actor,
            "phone.unlocked",
            &phone.to_string(),
            String::new(),
        )
        .await?;
    }
    Ok((phone, unlocked))
}

/// Parses a number like every other part of callsign and names `phone_number` when it
/// does not parse.
fn parse_phone(services: &Services, input: &str) -> Result<Phone, ChangeError> {
    parse_phone_as(services, input, "phone_number")
}

fn parse_phone_as(
    services: &Services,
    input: &str,
    field: &'static str,
) -> Result<Phone, ChangeError> {
    Phone::parse(input, services.settings.default_region)
        .map_err(|e| ChangeError::invalid(field, e.to_string()))
}

fn held_by(phone: &Phone, owner: &str) -> ChangeError {
    ChangeError::Conflict(format!("{phone} belongs to user {owner}; move it instead"))
}
