//! The store contract run against the SQLite store, each part on a fresh
//! database file, and the whole suite once more on a single shared one.

use switchboard_store::contract;
use switchboard_store::{SqliteOptions, SqliteStore};

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("switchboard.db")))
        .expect("open the store");
    (dir, store)
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, store) = fresh();
                contract::$name(&store).await;
            }
        )*
    };
}

contract_tests!(
    organizations,
    extensions,
    sessions,
    direct_chats,
    groups,
    messages_and_idempotency,
    history_paging,
    read_positions,
    replay_follows_membership,
    replay_after_rejoining,
    organizations_are_isolated,
    commit_listeners_hear_every_event_in_order,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_on_one_store() {
    let (_dir, store) = fresh();
    contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    use switchboard_domain::{DisplayName, OrgSlug};
    use switchboard_store::Store;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.db");
    let slug = OrgSlug::parse("kept").expect("slug");
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("open");
        store
            .create_org(&slug, &DisplayName::parse("Kept").expect("name"))
            .await
            .expect("create org");
    }
    let store = SqliteStore::open(SqliteOptions::new(&path)).expect("reopen");
    assert!(store.org_by_slug(&slug).await.expect("look-up").is_some());
    // A reopened store keeps meeting the contract: cursors continue.
    contract::messages_and_idempotency(&store).await;
    contract::replay_follows_membership(&store).await;
}
