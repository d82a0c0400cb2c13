//! Time as a dependency: production reads the system clock, tests move a
//! manual one, so expiry rules are tested without sleeping.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        #[allow(clippy::disallowed_methods)]
        Utc::now()
    }
}

/// A clock that runs with the system clock plus an offset tests can advance.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset: Mutex<Duration>,
}

impl ShiftedClock {
    /// Moves this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = *self.offset.lock().unwrap_or_else(|p| p.into_inner());
        SystemClock.now() + offset
    }
}
