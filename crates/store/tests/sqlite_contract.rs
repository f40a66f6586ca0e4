//! The store contract run against the SQLite store: each rule on a fresh
//! database file, the whole suite on a single shared one, and again on a
//! database that was closed and reopened.

use switchboard_store::contract;
use switchboard_store::{SqliteOptions, SqliteStore};

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("switchboard.db")))
        .expect("open the store");
    (dir, store)
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
                        let (_dir, store) = fresh();
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
    let (_dir, store) = fresh();
    contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    use switchboard_domain::{DisplayName, OrgSlug};
    use switchboard_store::Directory;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.db");
    let slug = OrgSlug::parse("kept").expect("slug");
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("open");
        store
            .create_org(&slug, &DisplayName::parse("Kept").expect("name"))
            .await
            .expect("create org");
        contract::run_all(&store).await;
    }
    let store = SqliteStore::open(SqliteOptions::new(&path)).expect("reopen");
    assert!(store.org_by_slug(&slug).await.expect("look-up").is_some());
    // A reopened store keeps meeting the contract: cursors continue.
    contract::run_all(&store).await;
}

/// The files of a database: itself, its WAL and its shared memory.
fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let source = from.with_file_name(format!("switchboard.db{suffix}"));
        if source.exists() {
            std::fs::copy(
                &source,
                to.with_file_name(format!("switchboard.db{suffix}")),
            )
            .expect("copy a database file");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_never_hands_out_a_lost_cursor_again() {
    use switchboard_domain::{DisplayName, OrgSlug};
    use switchboard_store::{Directory, EventLog};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.db");
    let backup_dir = tempfile::tempdir().expect("temp dir");
    let backup = backup_dir.path().join("switchboard.db");
    let org = |slug: &str| {
        (
            OrgSlug::parse(slug).expect("slug"),
            DisplayName::parse("Org").expect("name"),
        )
    };
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("open");
        let (slug, name) = org("before-backup");
        store.create_org(&slug, &name).await.expect("create org");
    }
    copy_database(&path, &backup);
    // After the backup the log goes on, and a client keeps its cursor.
    let lost = {
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("reopen");
        let (slug, name) = org("after-backup");
        let org = store.create_org(&slug, &name).await.expect("create org");
        store.latest_cursor(org.id).await.expect("latest")
    };
    // The operator restores the backup; the log goes on from there.
    let restored = SqliteStore::open(SqliteOptions::new(&backup)).expect("open the backup");
    assert!(
        !restored.holds(lost).await.expect("holds"),
        "a cursor lost with the restore is not held"
    );
    let (slug, name) = org("after-restore");
    let org = restored.create_org(&slug, &name).await.expect("create org");
    let next = restored.latest_cursor(org.id).await.expect("latest");
    assert!(next > lost, "new events come after every lost cursor");
    assert!(
        !restored.holds(lost).await.expect("holds"),
        "a lost cursor is never handed out again"
    );
}
