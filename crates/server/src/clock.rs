//! Time as a dependency. Everything that follows a time rule (sign-in
//! limits, the session cache, typing expiry, and the workers to come) asks
//! the [`Clock`] handed to the app, so tests drive time with a
//! [`ManualClock`] instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use switchboard_domain::Timestamp;
use tokio::sync::watch;

pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
    /// Completes once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: Timestamp) -> Sleep<'_>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    fn sleep_until(&self, at: Timestamp) -> Sleep<'_> {
        let wait = at.since(self.now());
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to: for tests and simulations.
pub struct ManualClock {
    now: AtomicI64,
    moved: watch::Sender<i64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: AtomicI64::new(start.0),
            moved: watch::Sender::new(start.0),
        }
    }

    /// Moves time forward, waking whatever waits for a moment now passed.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = self.now.fetch_add(by, Ordering::AcqRel).saturating_add(by);
        self.moved.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::Acquire))
    }

    fn sleep_until(&self, at: Timestamp) -> Sleep<'_> {
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            while *moved.borrow_and_update() < at.0 {
                if moved.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn a_manual_sleep_ends_only_when_time_is_advanced_past_it() {
        let clock = ManualClock::new(Timestamp(1_000));
        let mut sleep = clock.sleep_until(Timestamp(6_000));
        assert!((&mut sleep).now_or_never().is_none());
        clock.advance(Duration::from_secs(4));
        assert!((&mut sleep).now_or_never().is_none(), "one second short");
        clock.advance(Duration::from_secs(1));
        assert!(sleep.now_or_never().is_some());
        assert_eq!(clock.now(), Timestamp(6_000));
    }
}
