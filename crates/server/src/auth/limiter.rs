//! The brake on password guessing: sign-in attempts counted per account and
//! per client address within a window.
//!
//! An attempt is counted before its password is checked, under the
//! limiter's lock, so the limit holds however many guesses arrive at once;
//! a successful sign-in then gives its count back.

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
    /// Attempts that failed or are still being checked.
    failures: u32,
}

/// An attempt counted against the limits while its password is checked. It
/// stays counted as a failure unless [`SignInLimiter::succeeded`] gives it
/// back.
#[must_use = "an attempt stays counted unless it is given back on success"]
#[derive(Debug)]
pub struct Attempt {
    account: String,
    address: IpAddr,
    /// When the windows that counted it started: a count is given back
    /// only to the window that took it.
    account_window: Timestamp,
    address_window: Timestamp,
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

    /// Counts an attempt before its password is checked, or `Err(seconds
    /// to wait)` when either limit is reached. Checking both limits and
    /// counting happen under one lock, so concurrent attempts cannot all
    /// pass the check before any of them is counted.
    pub fn attempt(&self, account: &str, address: IpAddr, now: Timestamp) -> Result<Attempt, u64> {
        let mut failures = self.failures.lock();
        if failures.len() >= LIMITER_SWEEP_AT {
            let window = self.window;
            failures.retain(|_, w| now.since(w.started) < window);
        }
        let keys = [
            (LimitKey::Account(account.to_owned()), self.per_account),
            (LimitKey::Address(address), self.per_address),
        ];
        for (key, limit) in &keys {
            if let Some(w) = failures.get(key) {
                let elapsed = now.since(w.started);
                if elapsed < self.window && w.failures >= *limit {
                    return Err((self.window - elapsed).as_secs().max(1));
                }
            }
        }
        let (mut account_window, mut address_window) = (now, now);
        for (key, _) in keys {
            let is_address = matches!(key, LimitKey::Address(_));
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
            if is_address {
                address_window = w.started;
            } else {
                account_window = w.started;
            }
        }
        Ok(Attempt {
            account: account.to_owned(),
            address,
            account_window,
            address_window,
        })
    }

    /// The attempt signed in: the account's count is cleared and the
    /// address gets this attempt back.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut failures = self.failures.lock();
        failures.remove(&LimitKey::Account(attempt.account.clone()));
        Self::give_back(
            &mut failures,
            LimitKey::Address(attempt.address),
            attempt.address_window,
        );
    }

    /// The attempt could not be decided (the store or the password workers
    /// failed): it counts against neither limit.
    pub fn undecided(&self, attempt: Attempt) {
        let mut failures = self.failures.lock();
        Self::give_back(
            &mut failures,
            LimitKey::Account(attempt.account),
            attempt.account_window,
        );
        Self::give_back(
            &mut failures,
            LimitKey::Address(attempt.address),
            attempt.address_window,
        );
    }

    fn give_back(failures: &mut HashMap<LimitKey, Window>, key: LimitKey, window: Timestamp) {
        if let Some(w) = failures.get_mut(&key)
            && w.started == window
        {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_forgives_after_the_window() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 3, 10);
        let ip = ip("127.0.0.1");
        let t0 = Timestamp(1_000_000);
        for _ in 0..3 {
            let _failed = limiter.attempt("demo/101", ip, t0).expect("allowed");
        }
        let wait = limiter.attempt("demo/101", ip, t0).expect_err("blocked");
        assert_eq!(wait, 60);
        assert!(
            limiter.attempt("demo/102", ip, t0).is_ok(),
            "other accounts are not blocked"
        );
        assert!(
            limiter
                .attempt("demo/101", ip, t0.saturating_add(Duration::from_secs(61)))
                .is_ok()
        );
    }

    #[test]
    fn limiter_blocks_an_address_trying_many_accounts() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 100, 5);
        let ip = ip("10.0.0.1");
        let t0 = Timestamp(1_000_000);
        for i in 0..5 {
            let _failed = limiter
                .attempt(&format!("demo/{i}"), ip, t0)
                .expect("allowed");
        }
        assert!(limiter.attempt("demo/999", ip, t0).is_err());
        assert!(
            limiter
                .attempt("demo/999", self::ip("10.0.0.2"), t0)
                .is_ok()
        );
    }

    #[test]
    fn a_success_clears_the_account_and_gives_the_address_its_attempt_back() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 3, 3);
        let ip = ip("10.0.0.1");
        let t0 = Timestamp(1_000_000);
        for _ in 0..2 {
            let _failed = limiter.attempt("demo/101", ip, t0).expect("allowed");
        }
        let signed_in = limiter.attempt("demo/101", ip, t0).expect("allowed");
        limiter.succeeded(signed_in);
        let _failed = limiter
            .attempt("demo/101", ip, t0)
            .expect("the account starts over");
        assert!(
            limiter.attempt("demo/102", ip, t0).is_err(),
            "the address still counts its two failures and the last one"
        );
    }

    #[test]
    fn an_undecided_attempt_counts_against_nothing() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 1, 1);
        let ip = ip("10.0.0.1");
        let t0 = Timestamp(1_000_000);
        for _ in 0..3 {
            let attempt = limiter.attempt("demo/101", ip, t0).expect("allowed");
            limiter.undecided(attempt);
        }
    }

    #[test]
    fn concurrent_attempts_pass_only_up_to_the_limit() {
        let limiter = Arc::new(SignInLimiter::new(Duration::from_secs(60), 5, 30));
        let start = Arc::new(Barrier::new(100));
        let t0 = Timestamp(1_000_000);
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let (limiter, start) = (Arc::clone(&limiter), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    limiter.attempt("demo/101", ip("10.0.0.1"), t0).is_ok()
                })
            })
            .collect();
        let allowed = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .filter(|ok| *ok)
            .count();
        assert_eq!(
            allowed, 5,
            "every attempt is counted before the next is checked"
        );
    }
}
