//! What grants and endpoints work with: settings, store, keys, SMS sender, clock, limits
//! and metrics.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::keys::Keys;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::otp::OtpHasher;
use crate::sms::SmsSender;
use crate::store::Store;

#[derive(Debug)]
pub struct Services {
    /// The issuer identifier, exactly as every token's `iss` and the discovery document
    /// carry it.
    pub issuer: String,
    pub settings: Settings,
    pub store: Store,
    pub keys: Keys,
    pub sms: Arc<dyn SmsSender>,
    pub clock: Arc<dyn Clock>,
    pub otp: OtpHasher,
    pub limiter: Limiter,
    pub metrics: Metrics,
}

impl std::fmt::Debug for dyn SmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsSender")
    }
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
