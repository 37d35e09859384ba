//! The admin REST API under `/admin/v1`: a resource server of callsign's own. Callers
//! present RFC 9068 access tokens for the issuer's admin audience; `admin:read` lets them
//! read and `admin:write` change. Answers are JSON; every change is audited.

mod api;

pub use api::router;
