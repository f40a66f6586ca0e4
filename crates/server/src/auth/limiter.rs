//! The brake on password guessing: sign-in attempts counted per account and
//! per client address within a window.
//!
//! An attempt is counted before its password is checked, in one atomic
//! step, so the limit holds however many guesses arrive at once; a
//! successful sign-in then gives its count back. A single node counts in
//! memory ([`MemoryLimiter`]), with no write per sign-in. Nodes sharing a
//! PostgreSQL store count in the database ([`SignInLimits`]): counted in
//! each node's memory, N nodes would allow N times the guesses.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::Timestamp;
use switchboard_store::{AttemptLimits, AttemptTicket, SignInLimits, Store, StoreError};

/// Limits failed sign-ins per account and per client address, in this
/// node's memory or in the store, whichever the store calls for.
pub enum SignInLimiter {
    Memory(MemoryLimiter),
    Shared(SharedLimiter),
}

/// An attempt counted against the limits while its password is checked. It
/// stays counted as a failure unless [`SignInLimiter::succeeded`] or
/// [`SignInLimiter::undecided`] gives it back.
#[must_use = "an attempt stays counted unless it is given back on success"]
#[derive(Debug)]
pub enum Attempt {
    Memory(MemoryAttempt),
    Shared(AttemptTicket),
}

impl SignInLimiter {
    /// Counts in the store if it keeps counts for several nodes, in memory
    /// otherwise.
    pub fn for_store(store: Arc<dyn Store>, limits: AttemptLimits) -> Self {
        if store.keeps_sign_in_limits() {
            Self::Shared(SharedLimiter {
                store,
                limits,
                swept: Mutex::new(None),
            })
        } else {
            Self::Memory(MemoryLimiter::new(
                limits.window,
                limits.per_account,
                limits.per_address,
            ))
        }
    }

    /// Counts an attempt before its password is checked, or `Ok(Err(seconds
    /// to wait))` when either limit is reached. Fails only when the store
    /// keeping the counts does: the attempt is then refused, since it could
    /// not be counted.
    pub async fn attempt(
        &self,
        account: &str,
        address: IpAddr,
        now: Timestamp,
    ) -> Result<Result<Attempt, u64>, StoreError> {
        match self {
            Self::Memory(limiter) => {
                Ok(limiter.attempt(account, address, now).map(Attempt::Memory))
            }
            Self::Shared(limiter) => limiter.attempt(account, address, now).await,
        }
    }

    /// The attempt signed in: the account's count is cleared and the
    /// address gets this attempt back.
    pub async fn succeeded(&self, attempt: Attempt) {
        match (self, attempt) {
            (Self::Memory(limiter), Attempt::Memory(attempt)) => limiter.succeeded(attempt),
            (Self::Shared(limiter), Attempt::Shared(ticket)) => {
                if let Err(e) = limiter.store.succeeded(ticket).await {
                    tracing::warn!(error = %e, "cannot clear the failed sign-ins of a success");
                }
            }
            // An attempt is given back to the limiter that counted it.
            _ => {}
        }
    }

    /// The attempt could not be decided (the store or the password workers
    /// failed): it counts against neither limit.
    pub async fn undecided(&self, attempt: Attempt) {
        match (self, attempt) {
            (Self::Memory(limiter), Attempt::Memory(attempt)) => limiter.undecided(attempt),
            (Self::Shared(limiter), Attempt::Shared(ticket)) => {
                if let Err(e) = limiter.store.undecided(ticket).await {
                    tracing::warn!(error = %e, "cannot give back an undecided sign-in");
                }
            }
            _ => {}
        }
    }
}

/// Counts kept in the store, for every node of its database.
pub struct SharedLimiter {
    store: Arc<dyn SignInLimits>,
    limits: AttemptLimits,
    /// When this node last had the store forget windows that ran out.
    swept: Mutex<Option<Timestamp>>,
}

impl SharedLimiter {
    async fn attempt(
        &self,
        account: &str,
        address: IpAddr,
        now: Timestamp,
    ) -> Result<Result<Attempt, u64>, StoreError> {
        let counted = self
            .store
            .attempt(account, address, now, self.limits)
            .await?;
        // Once a window per node is enough: a row whose window ran out is
        // restarted by the next attempt anyway, so sweeping only bounds the
        // table.
        let due = {
            let mut swept = self.swept.lock();
            let due = swept.is_none_or(|last| now.since(last) >= self.limits.window);
            if due {
                *swept = Some(now);
            }
            due
        };
        if due
            && let Err(e) = self
                .store
                .forget_expired_sign_ins(now, self.limits.window)
                .await
        {
            tracing::warn!(error = %e, "cannot sweep expired sign-in counts");
        }
        Ok(counted.map(Attempt::Shared))
    }
}

/// Limits failed sign-ins per account and per client address in this
/// node's memory. Successful sign-ins clear the account's count. A restart
/// forgives, which is acceptable for a brake on guessing.
pub struct MemoryLimiter {
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

/// An attempt counted in memory; see [`Attempt`].
#[must_use = "an attempt stays counted unless it is given back on success"]
#[derive(Debug)]
pub struct MemoryAttempt {
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

impl MemoryLimiter {
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
    pub fn attempt(
        &self,
        account: &str,
        address: IpAddr,
        now: Timestamp,
    ) -> Result<MemoryAttempt, u64> {
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
        Ok(MemoryAttempt {
            account: account.to_owned(),
            address,
            account_window,
            address_window,
        })
    }

    /// The attempt signed in: the account's count is cleared and the
    /// address gets this attempt back.
    pub fn succeeded(&self, attempt: MemoryAttempt) {
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
    pub fn undecided(&self, attempt: MemoryAttempt) {
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

    #[tokio::test]
    async fn a_single_node_store_leaves_the_counts_to_memory() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(
            switchboard_store::SqliteStore::open(switchboard_store::SqliteOptions::new(
                dir.path().join("db.sqlite"),
            ))
            .expect("the store opens"),
        );
        let limits = AttemptLimits {
            window: Duration::from_secs(60),
            per_account: 1,
            per_address: 10,
        };
        let limiter = SignInLimiter::for_store(store, limits);
        assert!(matches!(limiter, SignInLimiter::Memory(_)));
        let t0 = Timestamp(1_000_000);
        let attempt = limiter
            .attempt("demo/101", ip("10.0.0.1"), t0)
            .await
            .expect("counted in memory")
            .expect("allowed");
        limiter.undecided(attempt).await;
        let _failed = limiter
            .attempt("demo/101", ip("10.0.0.1"), t0)
            .await
            .expect("counted in memory")
            .expect("the undecided attempt was given back");
        assert!(matches!(
            limiter.attempt("demo/101", ip("10.0.0.1"), t0).await,
            Ok(Err(60))
        ));
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_forgives_after_the_window() {
        let limiter = MemoryLimiter::new(Duration::from_secs(60), 3, 10);
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
        let limiter = MemoryLimiter::new(Duration::from_secs(60), 100, 5);
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
        let limiter = MemoryLimiter::new(Duration::from_secs(60), 3, 3);
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
        let limiter = MemoryLimiter::new(Duration::from_secs(60), 1, 1);
        let ip = ip("10.0.0.1");
        let t0 = Timestamp(1_000_000);
        for _ in 0..3 {
            let attempt = limiter.attempt("demo/101", ip, t0).expect("allowed");
            limiter.undecided(attempt);
        }
    }

    #[test]
    fn concurrent_attempts_pass_only_up_to_the_limit() {
        let limiter = Arc::new(MemoryLimiter::new(Duration::from_secs(60), 5, 30));
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
