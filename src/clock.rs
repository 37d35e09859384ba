//! The one place that reads the wall clock.
//!
//! Everything else asks a [`Clock`] for the time, so tests can move time forward instead
//! of sleeping, and so no behaviour depends on the host's time zone: all times are whole
//! seconds since the Unix epoch, in UTC.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the single permitted wall-clock read
    fn now(&self) -> i64 {
        let elapsed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the system clock is set after 1970");
        i64::try_from(elapsed.as_secs()).expect("the system clock is before year 292 billion")
    }
}

/// A clock that only moves when told to; used by tests to drive expiry.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock that starts at the current system time.
    pub fn starting_now() -> Self {
        Self(AtomicI64::new(SystemClock.now()))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
