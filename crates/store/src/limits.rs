//! The [`SignInLimits`] capability: failed sign-ins counted per account and
//! per client address in the database, so that the limits hold however many
//! nodes the guesses are spread over.
//!
//! The rules are those of the server's in-memory limiter: an attempt is
//! counted before its password is checked, the check of both limits and the
//! counting are one atomic step, a success clears the account's count and
//! gives the address its attempt back, an undecided attempt counts against
//! neither, a window restarts once it has run out, and a count is given back
//! only to the window that took it.

use crate::Result;
use async_trait::async_trait;
use std::net::IpAddr;
use std::time::Duration;
use switchboard_domain::Timestamp;

/// How many failed sign-ins are allowed, per account and per client
/// address, within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    pub window: Duration,
    pub per_account: u32,
    pub per_address: u32,
}

/// An attempt counted against the limits while its password is checked. It
/// stays counted as a failure unless [`SignInLimits::succeeded`] or
/// [`SignInLimits::undecided`] gives it back.
#[must_use = "an attempt stays counted unless it is given back"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptTicket {
    pub(crate) account: String,
    pub(crate) address: IpAddr,
    /// When the windows that counted it started: a count is given back
    /// only to the window that took it.
    pub(crate) account_window: Timestamp,
    pub(crate) address_window: Timestamp,
}

/// Failed sign-ins counted for every node of a database.
#[async_trait]
pub trait SignInLimits: Send + Sync + 'static {
    /// Whether this store keeps the counts. The single-node store keeps
    /// none (its one node counts in memory, without a write per sign-in)
    /// and answers [`crate::StoreError::Backend`] to everything below.
    fn keeps_sign_in_limits(&self) -> bool;

    /// Counts an attempt before its password is checked, or `Ok(Err(seconds
    /// to wait))` when either limit is reached, counting nothing. Checking
    /// both limits and counting are one step for every node: concurrent
    /// attempts cannot all pass the check before any of them is counted.
    async fn attempt(
        &self,
        account: &str,
        address: IpAddr,
        now: Timestamp,
        limits: AttemptLimits,
    ) -> Result<std::result::Result<AttemptTicket, u64>>;

    /// The attempt signed in: the account's count is cleared and the
    /// address gets this attempt back.
    async fn succeeded(&self, ticket: AttemptTicket) -> Result<()>;

    /// The attempt could not be decided (the store or the password workers
    /// failed): it counts against neither limit.
    async fn undecided(&self, ticket: AttemptTicket) -> Result<()>;

    /// Forgets the counts of windows that ran out by `now` (they would
    /// restart anyway); returns how many were forgotten. Counts are kept
    /// one row per account or address, so this bounds the table.
    async fn forget_expired_sign_ins(&self, now: Timestamp, window: Duration) -> Result<u64>;
}

/// The single-node store keeps no counts: its one node counts in memory,
/// which costs no write per sign-in.
#[async_trait]
impl SignInLimits for crate::SqliteStore {
    fn keeps_sign_in_limits(&self) -> bool {
        false
    }

    async fn attempt(
        &self,
        _: &str,
        _: IpAddr,
        _: Timestamp,
        _: AttemptLimits,
    ) -> Result<std::result::Result<AttemptTicket, u64>> {
        Err(kept_in_memory())
    }

    async fn succeeded(&self, _: AttemptTicket) -> Result<()> {
        Err(kept_in_memory())
    }

    async fn undecided(&self, _: AttemptTicket) -> Result<()> {
        Err(kept_in_memory())
    }

    async fn forget_expired_sign_ins(&self, _: Timestamp, _: Duration) -> Result<u64> {
        Err(kept_in_memory())
    }
}

fn kept_in_memory() -> crate::StoreError {
    crate::StoreError::Backend(
        "the SQLite store serves one node and keeps no sign-in counts; \
         its node counts them in memory"
            .into(),
    )
}
