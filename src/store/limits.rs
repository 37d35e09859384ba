//! The counters behind the abuse limits (`crate::limits`), kept in the database so that
//! they hold across instances.
//!
//! A start is admitted by one transaction that stores the challenge and passes every
//! counter; the first refusal rolls all of it back, so a refused start consumes nothing
//! and concurrent starts can never pass a cap together. Windows are keyed by their start
//! (a multiple of the window length); a sliding cap weighs the previous window by the
//! part of it still inside the last `window` seconds.

use super::{Backend, NewChallenge, Result, Store};

/// One cap to pass: at most `max` hits on `(kind, key)` per `window` seconds.
#[derive(Debug, Clone)]
pub struct CounterCheck {
    pub kind: &'static str,
    pub key: String,
    pub window: i64,
    pub max: i64,
    /// Weigh in the previous window (a sliding window) instead of resetting at each
    /// window start.
    pub sliding: bool,
}

/// Growing waits between sends to a phone that is not being verified.
#[derive(Debug, Clone, Copy)]
pub struct BackoffRule {
    /// Unverified sends after which a wait is imposed.
    pub after: i64,
    pub base: i64,
    pub max: i64,
    /// A phone quiet for this long starts again from zero.
    pub reset_after: i64,
}

/// Everything one start must pass, in the order it is checked.
pub struct SendAdmission<'a> {
    pub challenge: &'a NewChallenge,
    /// Challenges of this phone and client created after this time are in the resend
    /// cooldown.
    pub cooldown_start: i64,
    pub backoff: Option<BackoffRule>,
    pub counters: Vec<CounterCheck>,
}

/// Why a start was or was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The challenge of this phone and client was created at `since`.
    CoolingDown {
        since: i64,
    },
    /// The phone is locked out until then (too many exhausted challenges).
    LockedOut {
        until: i64,
    },
    /// The phone is locked after too many consecutive wrong codes, until an operator
    /// unlocks it.
    Suspended,
    /// The phone's next send may go out then.
    BackingOff {
        until: i64,
    },
    /// The cap of `kind` is full; its current window ends at `window_end`.
    Capped {
        kind: &'static str,
        window_end: i64,
    },
}

const PHONE_BLOCK: &str = "phone";

const UPSERT_CHALLENGE: &str = r#"
    INSERT INTO otp_challenges (id, phone, client_id, code_hash, attempts_left,
                                expires_at, created_at, consumed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
    ON CONFLICT (phone, client_id) DO UPDATE
    SET id = excluded.id,
        code_hash = excluded.code_hash,
        attempts_left = excluded.attempts_left,
        expires_at = excluded.expires_at,
        created_at = excluded.created_at,
        consumed_at = NULL
    WHERE otp_challenges.created_at <= $8
    RETURNING id"#;
const CHALLENGE_CREATED: &str =
    "SELECT created_at FROM otp_challenges WHERE phone = $1 AND client_id = $2";
// Whether the phone is locked out until some time, and whether it is locked after wrong
// codes, in one statement.
const HELD: &str = r#"
    SELECT (SELECT b.blocked_until FROM limit_blocks b
            WHERE b.kind = $1 AND b.key = $2 AND b.blocked_until > $3) AS blocked_until,
           EXISTS (SELECT 1 FROM phone_failures f
                   WHERE f.phone = $2 AND f.locked_at IS NOT NULL) AS suspended"#;
// $2 now, $3 the gap after a first send, $4 after, $5 base, $6 max, $7 reset time.
const BACKOFF: &str = r#"
    INSERT INTO phone_backoff (phone, unverified, gap, next_at, last_at)
    VALUES ($1, 1, $3, $2 + $3, $2)
    ON CONFLICT (phone) DO UPDATE
    SET unverified = CASE WHEN phone_backoff.last_at < $7 THEN 1
                          ELSE phone_backoff.unverified + 1 END,
        gap = CASE WHEN phone_backoff.last_at < $7 THEN $3
                   WHEN phone_backoff.unverified + 1 < $4 THEN 0
                   WHEN phone_backoff.gap = 0 THEN $5
                   WHEN phone_backoff.gap * 2 > $6 THEN $6
                   ELSE phone_backoff.gap * 2 END,
        next_at = $2 + CASE WHEN phone_backoff.last_at < $7 THEN $3
                            WHEN phone_backoff.unverified + 1 < $4 THEN 0
                            WHEN phone_backoff.gap = 0 THEN $5
                            WHEN phone_backoff.gap * 2 > $6 THEN $6
                            ELSE phone_backoff.gap * 2 END,
        last_at = $2
    WHERE phone_backoff.next_at <= $2 OR phone_backoff.last_at < $7
    RETURNING unverified"#;
const BACKOFF_NEXT: &str = "SELECT next_at FROM phone_backoff WHERE phone = $1";
// Passes when previous * $5 + (current + 1) * $6 <= $7, i.e. the weighted count stays
// within the cap: $5 is the part of the previous window still inside the sliding window
// (0 for a fixed window), $6 the window length and $7 the cap times the window length.
const COUNT: &str = r#"
    INSERT INTO limit_counters (kind, key, window_start, hits)
    SELECT $1, $2, $3, 1
    WHERE $5 * COALESCE((SELECT p.hits FROM limit_counters p
                         WHERE p.kind = $1 AND p.key = $2 AND p.window_start = $4), 0)
          + $6 <= $7
    ON CONFLICT (kind, key, window_start) DO UPDATE
    SET hits = limit_counters.hits + 1
    WHERE $5 * COALESCE((SELECT p.hits FROM limit_counters p
                         WHERE p.kind = $1 AND p.key = $2 AND p.window_start = $4), 0)
          + (limit_counters.hits + 1) * $6 <= $7
    RETURNING hits"#;
const BUMP: &str = r#"
    INSERT INTO limit_counters (kind, key, window_start, hits)
    VALUES ($1, $2, $3, 1)
    ON CONFLICT (kind, key, window_start) DO UPDATE
    SET hits = limit_counters.hits + 1
    RETURNING hits"#;
// $2 now, $3 the count that locks.
const FAILURE: &str = r#"
    INSERT INTO phone_failures (phone, consecutive, locked_at)
    VALUES ($1, 1, CASE WHEN $3 <= 1 THEN $2 END)
    ON CONFLICT (phone) DO UPDATE
    SET consecutive = phone_failures.consecutive + 1,
        locked_at = COALESCE(phone_failures.locked_at,
                             CASE WHEN phone_failures.consecutive + 1 >= $3 THEN $2 END)
    RETURNING consecutive"#;
const BLOCK: &str = r#"
    INSERT INTO limit_blocks (kind, key, blocked_until)
    VALUES ($1, $2, $3)
    ON CONFLICT (kind, key) DO UPDATE
    SET blocked_until = excluded.blocked_until"#;

impl Store {
    /// Stores the challenge if the start passes the cooldown, the lockout, the back-off
    /// and every counter; otherwise changes nothing and says what refused it.
    pub async fn admit_send(&self, request: &SendAdmission<'_>, now: i64) -> Result<Admission> {
        let challenge = request.challenge;
        let admission = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            // The first statement writes, so SQLite takes its write lock before any read.
            let stored = sqlx::query_scalar::<_, String>(UPSERT_CHALLENGE)
                .bind(&challenge.id)
                .bind(&challenge.phone)
                .bind(&challenge.client_id)
                .bind(&challenge.code_hash)
                .bind(challenge.attempts)
                .bind(challenge.expires_at)
                .bind(challenge.created_at)
                .bind(request.cooldown_start)
                .fetch_optional(&mut *tx)
                .await?;
            let refusal = 'check: {
                if stored.is_none() {
                    let since = sqlx::query_scalar::<_, i64>(CHALLENGE_CREATED)
                        .bind(&challenge.phone)
                        .bind(&challenge.client_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    break 'check Some(Admission::CoolingDown { since: since.unwrap_or(now) });
                }
                let (blocked, suspended) = sqlx::query_as::<_, (Option<i64>, bool)>(HELD)
                    .bind(PHONE_BLOCK)
                    .bind(&challenge.phone)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                if let Some(until) = blocked {
                    break 'check Some(Admission::LockedOut { until });
                }
                if suspended {
                    break 'check Some(Admission::Suspended);
                }
                if let Some(rule) = request.backoff {
                    let first_gap = if rule.after <= 1 { rule.base } else { 0 };
                    let passed = sqlx::query_scalar::<_, i64>(BACKOFF)
                        .bind(&challenge.phone)
                        .bind(now)
                        .bind(first_gap)
                        .bind(rule.after)
                        .bind(rule.base)
                        .bind(rule.max)
                        .bind(now - rule.reset_after)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if passed.is_none() {
                        let until = sqlx::query_scalar::<_, i64>(BACKOFF_NEXT)
                            .bind(&challenge.phone)
                            .fetch_optional(&mut *tx)
                            .await?;
                        break 'check Some(Admission::BackingOff { until: until.unwrap_or(now) });
                    }
                }
                for check in &request.counters {
                    let start = now - now.rem_euclid(check.window);
                    let previous_weight =
                        if check.sliding { check.window - (now - start) } else { 0 };
                    let passed = sqlx::query_scalar::<_, i64>(COUNT)
                        .bind(check.kind)
                        .bind(&check.key)
                        .bind(start)
                        .bind(start - check.window)
                        .bind(previous_weight)
                        .bind(check.window)
                        .bind(check.max * check.window)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if passed.is_none() {
                        let window_end = start + check.window;
                        break 'check Some(Admission::Capped { kind: check.kind, window_end });
                    }
                }
                None
            };
            match refusal {
                Some(refusal) => {
                    tx.rollback().await?;
                    Ok::<Admission, sqlx::Error>(refusal)
                }
                None => {
                    tx.commit().await?;
                    Ok(Admission::Admitted)
                }
            }
        })?;
        Ok(admission)
    }

    /// Counts one challenge of `phone` exhausted by wrong codes in the fixed window of
    /// `window` seconds; the `max`-th locks the phone out until `now + lockout`. True when
    /// this call locked it.
    pub async fn record_exhaustion(
        &self,
        phone: &str,
        now: i64,
        window: i64,
        max: i64,
        lockout: i64,
    ) -> Result<bool> {
        let start = now - now.rem_euclid(window);
        let locked = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let hits = sqlx::query_scalar::<_, i64>(BUMP)
                .bind("exhausted")
                .bind(phone)
                .bind(start)
                .fetch_one(&mut *tx)
                .await?;
            let locked = hits >= max;
            if locked {
                sqlx::query(BLOCK)
                    .bind(PHONE_BLOCK)
                    .bind(phone)
                    .bind(now + lockout)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(locked)
        })?;
        Ok(locked)
    }

    /// Forgets the unverified sends of a phone that was just verified, and its wrong codes
    /// when `failures` says it had some (as its spent attempt reported).
    pub async fn clear_backoff(&self, phone: &str, failures: bool) -> Result<()> {
        const BACKOFF: &str = "DELETE FROM phone_backoff WHERE phone = $1";
        const FAILURES: &str = "DELETE FROM phone_failures WHERE phone = $1";
        on_backend!(self, pool => {
            sqlx::query(BACKOFF).bind(phone).execute(pool).await?;
            if failures {
                sqlx::query(FAILURES).bind(phone).execute(pool).await?;
            }
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Counts one wrong code for `phone`; the `max`-th consecutive one locks the phone and
    /// kills its live challenges, in the same transaction. True when this call locked it.
    pub async fn record_failure(&self, phone: &str, now: i64, max: i64) -> Result<bool> {
        const KILL: &str = "UPDATE otp_challenges SET attempts_left = 0 WHERE phone = $1";
        let locked = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let consecutive = sqlx::query_scalar::<_, i64>(FAILURE)
                .bind(phone)
                .bind(now)
                .bind(max)
                .fetch_one(&mut *tx)
                .await?;
            let locked = consecutive == max;
            if consecutive >= max {
                sqlx::query(KILL).bind(phone).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(locked)
        })?;
        Ok(locked)
    }

    /// Lifts the lock of a phone and forgets its wrong codes; false when it was not locked.
    pub async fn unlock_phone(&self, phone: &str) -> Result<bool> {
        const UNLOCK: &str =
            "DELETE FROM phone_failures WHERE phone = $1 AND locked_at IS NOT NULL";
        let removed = on_backend!(self, pool => {
            sqlx::query(UNLOCK).bind(phone).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(removed > 0)
    }

    /// Makes a challenge unusable while keeping it, so its resend cooldown still runs:
    /// used when its code may or may not have been delivered.
    pub async fn disable_challenge(&self, id: &str) -> Result<()> {
        const DISABLE: &str = "UPDATE otp_challenges SET attempts_left = 0 WHERE id = $1";
        on_backend!(self, pool => sqlx::query(DISABLE).bind(id).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Deletes counter windows that started before `windows_before`, ended blocks, and
    /// back-off rows untouched since `backoff_before`; returns the rows removed.
    pub async fn prune_limits(
        &self,
        now: i64,
        windows_before: i64,
        backoff_before: i64,
    ) -> Result<u64> {
        const COUNTERS: &str = "DELETE FROM limit_counters WHERE window_start < $1";
        const BLOCKS: &str = "DELETE FROM limit_blocks WHERE blocked_until <= $1";
        const BACKOFF: &str = "DELETE FROM phone_backoff WHERE last_at < $1";
        let removed = on_backend!(self, pool => {
            let counters = sqlx::query(COUNTERS).bind(windows_before).execute(pool).await?;
            let blocks = sqlx::query(BLOCKS).bind(now).execute(pool).await?;
            let backoff = sqlx::query(BACKOFF).bind(backoff_before).execute(pool).await?;
            Ok::<u64, sqlx::Error>(
                counters.rows_affected() + blocks.rows_affected() + backoff.rows_affected(),
            )
        })?;
        Ok(removed)
    }
}
