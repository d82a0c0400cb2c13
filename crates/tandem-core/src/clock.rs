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

/// A clock that runs with the system clock plus an offset tests can advance;
/// once frozen, it stands still (but for the advances).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset: Mutex<Duration>,
    /// The system clock's time when [`ShiftedClock::freeze`] stopped it.
    frozen: Mutex<Option<DateTime<Utc>>>,
}

impl ShiftedClock {
    /// Moves this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset += by;
    }

    /// Stops this clock where it is: from now on it moves only by
    /// [`ShiftedClock::advance`], so a rule of "within N seconds" holds
    /// however slowly the test runs.
    pub fn freeze(&self) {
        let mut frozen = self.frozen.lock().unwrap_or_else(|p| p.into_inner());
        if frozen.is_none() {
            *frozen = Some(SystemClock.now());
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = *self.offset.lock().unwrap_or_else(|p| p.into_inner());
        let frozen = *self.frozen.lock().unwrap_or_else(|p| p.into_inner());
        frozen.unwrap_or_else(|| SystemClock.now()) + offset
    }
}
