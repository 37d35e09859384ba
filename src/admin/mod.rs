//! Administration of callsign: users and phones, clients and audiences.
//!
//! The changes themselves live in plain functions on [`Services`] ([`users`],
//! [`registrations`]) that take the acting party for the audit trail, so that every
//! front end (the REST API under `/admin/v1`, a server-rendered console) makes exactly the
//! same checks and leaves the same trail. [`api`] is the REST front end: a resource server
//! of callsign's own whose callers present RFC 9068 access tokens for the issuer's admin
//! audience; `admin:read` lets them read and `admin:write` change. `console` is the web
//! front end at `/admin`: server-rendered pages for people who hold the admin role
//! ([`roles`]), signed in with their phone.

mod api;
mod console;
mod people;
pub mod registrations;
pub mod roles;
mod session;
pub mod users;

pub use api::openapi;
pub use console::CONSOLE_CLIENT_ID;

use axum::Router;

use crate::http::AppState;

/// The admin API and the console.
pub fn router() -> Router<AppState> {
    Router::new().merge(api::router()).merge(console::router())
}

use crate::registry::RegistryError;
use crate::services::Services;
use crate::store::{AuditEvent, StoreError, Versioned};

/// Who makes a change, and from where, as the audit trail records it.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `client:<id>` for an API caller.
    pub name: String,
    /// The caller's address; empty when there is none.
    pub address: String,
}

/// The version a change expects its record to have (from an HTTP `If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Whatever the current version is (`If-Match: *`).
    Any,
    Version(i64),
}

impl Expected {
    fn allows(self, version: i64) -> bool {
        match self {
            Expected::Any => true,
            Expected::Version(expected) => expected == version,
        }
    }
}

/// Why an admin change was refused; nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("no such record")]
    NotFound,
    /// The change conflicts with the current state, which the text describes.
    #[error("{0}")]
    Conflict(String),
    /// The record changed since the version the caller expected.
    #[error("the record has changed since it was read")]
    VersionMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChangeError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        ChangeError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl From<RegistryError> for ChangeError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Invalid { field, problem } => ChangeError::Invalid { field, problem },
            RegistryError::Conflict(what) => {
                ChangeError::Conflict(format!("{what} already exists"))
            }
            RegistryError::Store(e) => ChangeError::Store(e),
        }
    }
}

/// The new version after a conditional change, or why there is none.
fn settled(outcome: Versioned) -> Result<i64, ChangeError> {
    match outcome {
        Versioned::Done(version) => Ok(version),
        Versioned::Stale => Err(ChangeError::VersionMismatch),
        Versioned::Missing => Err(ChangeError::NotFound),
    }
}

/// Writes one event of the audit trail, and the same line to the log. `detail` must carry
/// no secret and no full phone number.
pub(crate) async fn audit(
    services: &Services,
    actor: &Actor,
    action: &str,
    subject: &str,
    detail: String,
) -> Result<(), StoreError> {
    tracing::info!(actor = %actor.name, action, subject, detail, "admin change");
    let event = AuditEvent {
        at: services.clock.now(),
        actor: actor.name.clone(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail,
        address: actor.address.clone(),
    };
    services.store.record_audit(&event).await
}
