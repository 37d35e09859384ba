//! callsign: an OAuth 2.0 / OpenID Connect authorization server built around the phone.
//!
//! A person proves they hold a phone by answering an SMS one-time code and receives a
//! short-lived phone token; apps exchange it (RFC 8693) for RFC 9068 access tokens that
//! resource servers verify on their own from the published JWKS.
//!
//! The crate is laid out by concern, with dependencies pointing downward:
//! [`http`] → [`grants`] → [`tokens`] / [`keys`] / [`store`] / [`sms`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod grants;
pub mod http;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod otp;
pub mod phone;
pub mod registry;
pub mod scope;
pub mod services;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod token_status;
pub mod tokens;

pub use app::Application;
pub use config::Config;
