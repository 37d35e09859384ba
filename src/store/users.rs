//! Users and their phones as the admin API manages them: creation, listing, status, and
//! linking, unlinking and moving numbers with their history kept in `phone_links`.

use sqlx::FromRow;

use super::admin::Table;
use super::{Backend, Result, Store, UserRecord, Versioned};

/// A phone a user holds now.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct UserPhone {
    pub e164: String,
    /// 0 while an admin-linked number has not been proved with a code.
    pub verified_at: i64,
}

/// One period in which a phone belonged to a user.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PhoneLink {
    pub e164: String,
    pub user_id: String,
    pub linked_at: i64,
    pub unlinked_at: Option<i64>,
}

/// What linking a number to a user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// The number already belonged to this user; nothing changed.
    AlreadyLinked,
    /// The number belongs to another user, named here; nothing changed.
    HeldBy(String),
}

const BUMP_USER: &str = "UPDATE users SET version = version + 1 WHERE id = $1";
const OPEN_LINK: &str =
    "INSERT INTO phone_links (phone_id, user_id, linked_at) VALUES ($1, $2, $3)";
const CLOSE_LINK: &str = r#"
    UPDATE phone_links SET unlinked_at = $3
    WHERE phone_id = $1 AND user_id = $2 AND unlinked_at IS NULL"#;

impl Store {
    /// Creates an active user with no phone.
    pub async fn insert_user(&self, id: &str, now: i64) -> Result<UserRecord> {
        const INSERT: &str = r#"
            INSERT INTO users (id, status, created_at, version)
            VALUES ($1, 'active', $2, 1)
            RETURNING id, status, created_at, version"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, UserRecord>(INSERT).bind(id).bind(now).fetch_one(pool).await
        })?)
    }

    /// Users in order of creation, `limit` at most after `offset`. `phone` keeps those
    /// holding a number now: a full E.164 number matches exactly, digits match anywhere.
    pub async fn list_users(
        &self,
        phone: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UserRecord>> {
        const SELECT: &str = r#"
            SELECT u.id, u.status, u.created_at, u.version
            FROM users u
            WHERE $1 = ''
               OR EXISTS (SELECT 1 FROM phones p WHERE p.user_id = u.id AND p.e164 LIKE $1)
            ORDER BY u.created_at, u.id
            LIMIT $2 OFFSET $3"#;
        // Only digits and a leading '+' reach this point, so nothing needs escaping.
        let pattern = match phone {
            None => String::new(),
            Some(e164) if e164.starts_with('+') => e164.to_owned(),
            Some(digits) => format!("%{digits}%"),
        };
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, UserRecord>(SELECT)
                .bind(pattern)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?)
    }

    /// The numbers a user holds now.
    pub async fn user_phones(&self, user_id: &str) -> Result<Vec<UserPhone>> {
        const SELECT: &str = r#"
            SELECT e164, verified_at
            FROM phones
            WHERE user_id = $1
            ORDER BY e164"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, UserPhone>(SELECT).bind(user_id).fetch_all(pool).await
        })?)
    }

    /// Every link of the user's current numbers and every number the user ever held,
    /// oldest first.
    pub async fn phone_history(&self, user_id: &str) -> Result<Vec<PhoneLink>> {
        const SELECT: &str = r#"
            SELECT p.e164, l.user_id, l.linked_at, l.unlinked_at
            FROM phone_links l
            JOIN phones p ON p.id = l.phone_id
            WHERE l.user_id = $1 OR p.user_id = $1
            ORDER BY l.linked_at, l.id"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, PhoneLink>(SELECT).bind(user_id).fetch_all(pool).await
        })?)
    }

    /// Sets a user's status if its version is still `expected`.
    pub async fn set_user_status(
        &self,
        id: &str,
        status: &str,
        expected: i64,
    ) -> Result<Versioned> {
        const UPDATE: &str = r#"
            UPDATE users SET status = $2, version = version + 1
            WHERE id = $1 AND version = $3
            RETURNING version"#;
        let version = on_backend!(self, pool => {
            sqlx::query_scalar::<_, i64>(UPDATE)
                .bind(id)
                .bind(status)
                .bind(expected)
                .fetch_optional(pool)
                .await
        })?;
        self.versioned(Table::Users, id, version).await
    }

    /// Links `e164` to a user, creating the phone (not yet verified) when the number is
    /// new, and with `new_user` the user too, in one transaction. A number held by someone
    /// else stays where it is, and then no user is created.
    pub async fn link_phone(
        &self,
        user_id: &str,
        e164: &str,
        new_phone_id: &str,
        now: i64,
        new_user: bool,
    ) -> Result<LinkOutcome> {
        const INSERT_USER: &str =
            "INSERT INTO users (id, status, created_at, version) VALUES ($1, 'active', $2, 1)";
        const INSERT: &str = r#"
            INSERT INTO phones (id, e164, user_id, verified_at, created_at)
            VALUES ($1, $2, NULL, 0, $3)
            ON CONFLICT (e164) DO NOTHING"#;
        const CLAIM: &str = r#"
            UPDATE phones SET user_id = $1
            WHERE e164 = $2 AND user_id IS NULL
            RETURNING id"#;
        const OWNER: &str = "SELECT user_id FROM phones WHERE e164 = $1";
        Ok(on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            if new_user {
                sqlx::query(INSERT_USER).bind(user_id).bind(now).execute(&mut *tx).await?;
            }
            sqlx::query(INSERT).bind(new_phone_id).bind(e164).bind(now).execute(&mut *tx).await?;
            let claimed = sqlx::query_scalar::<_, String>(CLAIM)
                .bind(user_id)
                .bind(e164)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match claimed {
                Some(phone_id) => {
                    sqlx::query(OPEN_LINK).bind(&phone_id).bind(user_id).bind(now)
                        .execute(&mut *tx).await?;
                    sqlx::query(BUMP_USER).bind(user_id).execute(&mut *tx).await?;
                    LinkOutcome::Linked
                }
                None => {
                    let owner = sqlx::query_scalar::<_, Option<String>>(OWNER)
                        .bind(e164)
                        .fetch_one(&mut *tx)
                        .await?
                        .unwrap_or_default();
                    if owner == user_id {
                        LinkOutcome::AlreadyLinked
                    } else {
                        LinkOutcome::HeldBy(owner)
                    }
                }
            };
            if outcome == LinkOutcome::Linked {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok::<_, sqlx::Error>(outcome)
        })?)
    }

    /// Takes `e164` away from a user; false when the user does not hold it.
    pub async fn unlink_phone(&self, user_id: &str, e164: &str, now: i64) -> Result<bool> {
        const RELEASE: &str = r#"
            UPDATE phones SET user_id = NULL
            WHERE e164 = $2 AND user_id = $1
            RETURNING id"#;
        Ok(on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let released = sqlx::query_scalar::<_, String>(RELEASE)
                .bind(user_id)
                .bind(e164)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(phone_id) = released else {
                tx.rollback().await?;
                return Ok(false);
            };
            sqlx::query(CLOSE_LINK).bind(&phone_id).bind(user_id).bind(now)
                .execute(&mut *tx).await?;
            sqlx::query(BUMP_USER).bind(user_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        })?)
    }

    /// Moves `e164` from one user to another in one transaction, closing the old link and
    /// opening the new one; false when `from` does not hold the number (then nothing
    /// changed).
    pub async fn move_phone(&self, e164: &str, from: &str, to: &str, now: i64) -> Result<bool> {
        const MOVE: &str = r#"
            UPDATE phones SET user_id = $3
            WHERE e164 = $1 AND user_id = $2
            RETURNING id"#;
        Ok(on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query_scalar::<_, String>(MOVE)
                .bind(e164)
                .bind(from)
                .bind(to)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(phone_id) = moved else {
                tx.rollback().await?;
                return Ok(false);
            };
            sqlx::query(CLOSE_LINK).bind(&phone_id).bind(from).bind(now)
                .execute(&mut *tx).await?;
            sqlx::query(OPEN_LINK).bind(&phone_id).bind(to).bind(now).execute(&mut *tx).await?;
            sqlx::query(BUMP_USER).bind(from).execute(&mut *tx).await?;
            sqlx::query(BUMP_USER).bind(to).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        })?)
    }
}
