//! Failed sign-ins counted in PostgreSQL, for every node of the database:
//! the same rules as the server's in-memory limiter, and limits that hold
//! when two nodes count at once.
//!
//! The server comes from `SWITCHBOARD_TEST_POSTGRES`, as for the contract.
//! Tests share its database: each counts accounts and addresses of its own,
//! and only the sweep's test forgets windows, in a year no other test uses.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failures by panicking"
)]

use sqlx::Connection as _;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::Timestamp;
use switchboard_store::{AttemptLimits, PgOptions, PgStore, SignInLimits};
use tokio::sync::Barrier;

/// A moment in 2027, as in the contract.
const T0: i64 = 1_800_000_000_000;
const WINDOW: Duration = Duration::from_secs(60);

fn at(offset_secs: i64) -> Timestamp {
    Timestamp(T0 + offset_secs * 1000)
}

fn limits(per_account: u32, per_address: u32) -> AttemptLimits {
    AttemptLimits {
        window: WINDOW,
        per_account,
        per_address,
    }
}

fn url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES").expect(
        "SWITCHBOARD_TEST_POSTGRES names the PostgreSQL server to test against; \
         start one with scripts/services start DIR",
    )
}

async fn node() -> PgStore {
    PgStore::open(PgOptions::new(url()))
        .await
        .expect("open the store")
}

/// Accounts and client addresses no other test (or earlier run) counts.
struct Names {
    prefix: String,
    address_base: u128,
}

impl Names {
    fn new() -> Self {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).expect("randomness");
        let prefix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut base = [0u8; 16];
        base[..12].copy_from_slice(&random);
        Self {
            prefix,
            address_base: u128::from_be_bytes(base),
        }
    }

    fn account(&self, n: u32) -> String {
        format!("{}/{n}", self.prefix)
    }

    fn address(&self, n: u32) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self.address_base + u128::from(n)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_refused_at_its_limit_until_its_window_restarts() {
    let store = node().await;
    let names = Names::new();
    let (account, address) = (names.account(1), names.address(1));
    for _ in 0..3 {
        let _failed = store
            .attempt(&account, address, at(0), limits(3, 100))
            .await
            .expect("store")
            .expect("allowed");
    }
    let wait = store
        .attempt(&account, address, at(10), limits(3, 100))
        .await
        .expect("store")
        .expect_err("the fourth guess within the window is refused");
    assert_eq!(wait, 50, "the window started at the first attempt");
    let _other = store
        .attempt(&names.account(2), address, at(10), limits(3, 100))
        .await
        .expect("store")
        .expect("other accounts are not refused");
    let _later = store
        .attempt(&account, address, at(61), limits(3, 100))
        .await
        .expect("store")
        .expect("the window restarts once it has run out");
    for _ in 0..2 {
        let _failed = store
            .attempt(&account, address, at(62), limits(3, 100))
            .await
            .expect("store")
            .expect("the new window counts from one");
    }
    assert!(
        store
            .attempt(&account, address, at(62), limits(3, 100))
            .await
            .expect("store")
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_trying_many_accounts_is_refused_at_its_limit() {
    let store = node().await;
    let names = Names::new();
    let address = names.address(1);
    for i in 0..5 {
        let _failed = store
            .attempt(&names.account(i), address, at(0), limits(100, 5))
            .await
            .expect("store")
            .expect("allowed");
    }
    let wait = store
        .attempt(&names.account(99), address, at(0), limits(100, 5))
        .await
        .expect("store")
        .expect_err("refused");
    assert_eq!(wait, 60);
    let _other = store
        .attempt(&names.account(99), names.address(2), at(0), limits(100, 5))
        .await
        .expect("store")
        .expect("other addresses are not refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_attempt_counts_against_neither_limit() {
    let store = node().await;
    let names = Names::new();
    let address = names.address(1);
    let _failed = store
        .attempt(&names.account(1), address, at(0), limits(1, 2))
        .await
        .expect("store")
        .expect("allowed");
    for _ in 0..3 {
        assert!(
            store
                .attempt(&names.account(1), address, at(0), limits(1, 2))
                .await
                .expect("store")
                .is_err(),
            "the account is at its limit"
        );
    }
    let _second = store
        .attempt(&names.account(2), address, at(0), limits(1, 2))
        .await
        .expect("store")
        .expect("the refused attempts did not count against the address");
    assert!(
        store
            .attempt(&names.account(3), address, at(0), limits(1, 2))
            .await
            .expect("store")
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_clears_the_account_and_gives_the_address_its_attempt_back() {
    let store = node().await;
    let names = Names::new();
    let (account, address) = (names.account(1), names.address(1));
    for _ in 0..2 {
        let _failed = store
            .attempt(&account, address, at(0), limits(3, 3))
            .await
            .expect("store")
            .expect("allowed");
    }
    let signed_in = store
        .attempt(&account, address, at(0), limits(3, 3))
        .await
        .expect("store")
        .expect("allowed");
    store.succeeded(signed_in).await.expect("store");
    let _failed = store
        .attempt(&account, address, at(0), limits(3, 3))
        .await
        .expect("store")
        .expect("the account starts over");
    assert!(
        store
            .attempt(&names.account(2), address, at(0), limits(3, 3))
            .await
            .expect("store")
            .is_err(),
        "the address still counts its two failures and the last one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_attempt_counts_against_nothing() {
    let store = node().await;
    let names = Names::new();
    let (account, address) = (names.account(1), names.address(1));
    for _ in 0..3 {
        let attempt = store
            .attempt(&account, address, at(0), limits(1, 1))
            .await
            .expect("store")
            .expect("allowed: the attempts before were given back");
        store.undecided(attempt).await.expect("store");
    }
    let _failed = store
        .attempt(&account, address, at(0), limits(1, 1))
        .await
        .expect("store")
        .expect("allowed");
    assert!(
        store
            .attempt(&account, address, at(0), limits(1, 1))
            .await
            .expect("store")
            .is_err(),
        "an attempt that is not given back counts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_is_given_back_only_to_the_window_that_took_it() {
    let store = node().await;
    let names = Names::new();
    let (account, address) = (names.account(1), names.address(1));
    let old = store
        .attempt(&account, address, at(0), limits(1, 1))
        .await
        .expect("store")
        .expect("allowed");
    let _failed = store
        .attempt(&account, address, at(61), limits(1, 1))
        .await
        .expect("store")
        .expect("a new window");
    store.undecided(old).await.expect("store");
    assert!(
        store
            .attempt(&account, address, at(62), limits(1, 1))
            .await
            .expect("store")
            .is_err(),
        "the new window keeps its count"
    );
}

/// Attempts made at once, half through each of two nodes; how many were
/// allowed.
async fn allowed_at_once(attempts: u32, make: impl Fn(u32) -> (String, IpAddr)) -> usize {
    let nodes = [Arc::new(node().await), Arc::new(node().await)];
    let start = Arc::new(Barrier::new(attempts as usize));
    let tasks: Vec<_> = (0..attempts)
        .map(|i| {
            let store = Arc::clone(&nodes[(i % 2) as usize]);
            let start = Arc::clone(&start);
            let (account, address) = make(i);
            tokio::spawn(async move {
                start.wait().await;
                store
                    .attempt(&account, address, at(0), limits(5, 7))
                    .await
                    .expect("store")
                    .is_ok()
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        if task.await.expect("task") {
            allowed += 1;
        }
    }
    allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_guessing_one_account_at_once_allow_its_limit_in_total() {
    let names = Names::new();
    let allowed = allowed_at_once(40, |i| (names.account(0), names.address(i))).await;
    assert_eq!(
        allowed, 5,
        "every attempt is counted before the next is checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_guessing_from_one_address_at_once_allow_its_limit_in_total() {
    let names = Names::new();
    let allowed = allowed_at_once(40, |i| (names.account(i), names.address(0))).await;
    assert_eq!(
        allowed, 7,
        "every attempt is counted before the next is checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_windows_are_forgotten_and_live_ones_kept() {
    // In 1970, before every other test's windows, so that this sweep
    // forgets none of theirs.
    let early = |secs: i64| Timestamp(1_000 + secs * 1000);
    let store = node().await;
    let names = Names::new();
    let (old, live, address) = (names.account(1), names.account(2), names.address(1));
    let _failed = store
        .attempt(&old, address, early(0), limits(1, 10))
        .await
        .expect("store")
        .expect("allowed");
    let _failed = store
        .attempt(&live, address, early(30), limits(1, 10))
        .await
        .expect("store")
        .expect("allowed");
    let forgotten = store
        .forget_expired_sign_ins(early(60), WINDOW)
        .await
        .expect("store");
    assert!(
        forgotten >= 2,
        "the first account's window and the address's (which started with it) ran out"
    );

    let mut conn = sqlx::PgConnection::connect(&url()).await.expect("connect");
    let kept: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM sign_in_limits WHERE key = ANY($1) ORDER BY key COLLATE \"C\"",
    )
    .bind(vec![
        format!("account:{old}"),
        format!("account:{live}"),
        format!("address:{address}"),
    ])
    .fetch_all(&mut conn)
    .await
    .expect("read the counts");
    assert_eq!(kept, [format!("account:{live}")]);
    assert!(
        store
            .attempt(&live, address, early(60), limits(1, 10))
            .await
            .expect("store")
            .is_err(),
        "a window that has not run out keeps its count"
    );
}
