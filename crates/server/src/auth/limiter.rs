//! The brake on password guessing: failed sign-ins counted per account and
//! per client address within a window.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use switchboard_domain::Timestamp;

/// Limits failed sign-ins per account and per client address. Successful
/// sign-ins clear the account's count. Kept in memory: a restart forgives,
/// which is acceptable for a brake on guessing.
pub struct SignInLimiter {
    window: Duration,
    per_account: u32,
    per_address: u32,
    failures: Mutex<HashMap<LimitKey, Window>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    failures: u32,
}

/// Entries kept before expired ones are swept, bounding memory under a flood
/// of distinct addresses.
const LIMITER_SWEEP_AT: usize = 10_000;

impl SignInLimiter {
    pub fn new(window: Duration, per_account: u32, per_address: u32) -> Self {
        Self {
            window,
            per_account,
            per_address,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: IpAddr) -> [(LimitKey, bool); 2] {
        [
            (LimitKey::Account(account.to_owned()), true),
            (LimitKey::Address(address), false),
        ]
    }

    /// `Err(seconds)` when either limit is reached.
    pub fn check(&self, account: &str, address: IpAddr, now: Timestamp) -> Result<(), u64> {
        let failures = self.failures.lock();
        for (key, is_account) in Self::keys(account, address) {
            let limit = if is_account {
                self.per_account
            } else {
                self.per_address
            };
            if let Some(w) = failures.get(&key) {
                let elapsed = now.since(w.started);
                if elapsed < self.window && w.failures >= limit {
                    return Err((self.window - elapsed).as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, account: &str, address: IpAddr, now: Timestamp) {
        let mut failures = self.failures.lock();
        if failures.len() >= LIMITER_SWEEP_AT {
            let window = self.window;
            failures.retain(|_, w| now.since(w.started) < window);
        }
        for (key, _) in Self::keys(account, address) {
            let w = failures.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.since(w.started) >= self.window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures += 1;
        }
    }

    pub fn succeeded(&self, account: &str) {
        self.failures
            .lock()
            .remove(&LimitKey::Account(account.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_the_limit_and_forgives_after_the_window() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 3, 10);
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Timestamp(1_000_000);
        for _ in 0..3 {
            assert!(limiter.check("demo/101", ip, t0).is_ok());
            limiter.failed("demo/101", ip, t0);
        }
        let wait = limiter.check("demo/101", ip, t0).expect_err("blocked");
        assert_eq!(wait, 60);
        assert!(
            limiter.check("demo/102", ip, t0).is_ok(),
            "other accounts are not blocked"
        );
        assert!(
            limiter
                .check("demo/101", ip, t0.saturating_add(Duration::from_secs(61)))
                .is_ok()
        );
    }

    #[test]
    fn limiter_blocks_an_address_trying_many_accounts() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 100, 5);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t0 = Timestamp(1_000_000);
        for i in 0..5 {
            limiter.failed(&format!("demo/{i}"), ip, t0);
        }
        assert!(limiter.check("demo/999", ip, t0).is_err());
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        assert!(limiter.check("demo/999", other, t0).is_ok());
    }
}
