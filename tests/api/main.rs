//! The integration suite: the real server on a random port, a fresh SQLite file per test,
//! real HTTP.

mod cli;
mod client_credentials;
mod helpers;
mod limits;
mod logs;
mod metrics;
mod otp_start;
mod properties;
mod sms_providers;
mod token_exchange;
mod token_forgery;
mod token_sms_otp;
mod well_known;
