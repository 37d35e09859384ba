//! Administration: the REST API under `/admin/v1`, a resource server of callsign's own
//! whose callers present RFC 9068 access tokens for the issuer's admin audience
//! (`admin:read` lets them read and `admin:write` change), and the console at `/admin`,
//! server-rendered pages for people who hold the admin role. Every change is audited.

mod api;
mod console;
mod people;
pub mod roles;
mod session;

use axum::Router;

use crate::http::AppState;

pub use console::CONSOLE_CLIENT_ID;

pub fn router() -> Router<AppState> {
    Router::new().merge(api::router()).merge(console::router())
}
