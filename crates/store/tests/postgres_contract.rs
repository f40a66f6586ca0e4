//! The store contract run against the PostgreSQL store: every rule, the
//! whole suite on one store, and again through a second store on the same
//! database (as a second node would open it).
//!
//! The server to use comes from `SWITCHBOARD_TEST_POSTGRES` (a URL;
//! `scripts/services start` starts one and prints it). All tests share its
//! database: rules make their own organizations and never assume an empty
//! log, and every store that opens it runs the migrations, under their lock.

use switchboard_store::contract;
use switchboard_store::{PgOptions, PgStore};

async fn fresh() -> PgStore {
    let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").expect(
        "SWITCHBOARD_TEST_POSTGRES names the PostgreSQL server to test against; \
         start one with scripts/services start DIR",
    );
    PgStore::open(PgOptions::new(url))
        .await
        .expect("open the store")
}

/// One test per rule, in a module per part of the contract.
macro_rules! contract_tests {
    ($($part:ident: [$($rule:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $part {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $rule() {
                        let store = fresh().await;
                        contract::$part::$rule(&store).await;
                    }
                )*
            }
        )*
    };
}

switchboard_store::every_contract_rule!(contract_tests);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_on_one_store() {
    let store = fresh().await;
    contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_store_on_the_same_database_meets_the_contract_too() {
    use switchboard_domain::{DisplayName, OrgSlug};
    use switchboard_store::Directory;
    let first = fresh().await;
    let slug = OrgSlug::parse(&format!("kept-{}", std::process::id())).expect("slug");
    first
        .create_org(&slug, &DisplayName::parse("Kept").expect("name"))
        .await
        .expect("create org");
    let second = fresh().await;
    assert!(second.org_by_slug(&slug).await.expect("look-up").is_some());
    contract::run_all(&second).await;
    contract::run_all(&first).await;
}
