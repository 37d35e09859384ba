//! The integration suite: the real server on a random port, a fresh SQLite file per test,
//! real HTTP.

mod admin;
mod admin_registrations;
mod admin_users;
mod authorize;
mod cli;
mod client_credentials;
mod console;
mod console_browser;
mod helpers;
mod instances;
mod introspect_revoke;
mod keys;
mod limits;
mod logs;
mod metrics;
mod openapi_check;
mod otp_start;
mod properties;
mod refresh;
mod sms_providers;
mod standards;
mod time_zones;
mod token_exchange;
mod token_forgery;
mod token_sms_otp;
mod well_known;
