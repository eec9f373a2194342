//! The one clock a node judges by: code times (iat, exp), agreement windows, terminations,
//! sync ages, audit times. Production uses the system clock; tests inject an offset or a fixed
//! time, so that "a phone two hours slow" or "the day after the agreement ends" are exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::UnixTime;

/// A source of "now".
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// The system clock shifted by this many seconds (negative: behind).
    Offset(i64),
    /// A settable time (seconds since the Unix epoch, as [`UnixTime::secs`]), for tests that
    /// step through time.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A clock that reads `t` until [`Clock::set`] moves it.
    pub fn manual(t: UnixTime) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(t.secs())))
    }

    /// Moves a manual clock to `t`; other clocks ignore it.
    pub fn set(&self, t: UnixTime) {
        if let Clock::Manual(a) = self {
            a.store(t.secs(), Ordering::SeqCst);
        }
    }

    /// Now, by this clock.
    pub fn now(&self) -> UnixTime {
        match self {
            Clock::System => crate::unix_now(),
            Clock::Offset(d) => {
                UnixTime::from_secs(crate::unix_now().secs().saturating_add_signed(*d))
            }
            Clock::Manual(a) => UnixTime::from_secs(a.load(Ordering::SeqCst)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_what_they_are_told() {
        let t = UnixTime::from_secs;
        let m = Clock::manual(t(1_600_000_000));
        assert_eq!(m.now(), t(1_600_000_000));
        m.set(t(1_600_000_060));
        assert_eq!(m.clone().now(), t(1_600_000_060), "clones share the time");
        let sys = Clock::System.now();
        let ahead = Clock::Offset(7200).now();
        assert!((7199..=7201).contains(&ahead.saturating_since(sys)));
        assert!(Clock::Offset(-10).now() < Clock::System.now() + 1);
    }
}
