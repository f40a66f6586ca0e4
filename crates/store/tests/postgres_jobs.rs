//! Jobs recorded in PostgreSQL by several nodes: each node reports on and
//! restarts over its own jobs only, and two nodes starting a job of one
//! organization at once never both run one.
//!
//! The server comes from `SWITCHBOARD_TEST_POSTGRES`, as for the contract.
//! Tests share its database: each makes organizations of its own, and its
//! nodes have names no other test uses.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failures by panicking"
)]

use switchboard_domain::{DisplayName, ExtensionId, OrgId, OrgSlug, Timestamp};
use switchboard_store::{
    Directory, JOB_INTERRUPTED_BY_RESTART, JobRecord, JobRunning, JobState, Jobs, NewJob,
    PgOptions, PgStore,
};

/// A moment in 2027, as in the contract.
const T0: i64 = 1_800_000_000_000;

fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0 + offset_ms)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A node named `name`, as a server with that data directory opens it.
async fn node(name: &str) -> PgStore {
    let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").expect(
        "SWITCHBOARD_TEST_POSTGRES names the PostgreSQL server to test against; \
         start one with scripts/services start DIR",
    );
    let mut options = PgOptions::new(url);
    options.node = Some(name.to_owned());
    PgStore::open(options).await.expect("open the store")
}

async fn org(store: &PgStore) -> OrgId {
    store
        .create_org(
            &OrgSlug::parse(&format!("jobs-{}", random_hex())).expect("slug"),
            &DisplayName::parse("Jobs").expect("name"),
        )
        .await
        .expect("create org")
        .id
}

async fn start(store: &PgStore, org: OrgId, now: Timestamp) -> Result<JobRecord, JobRunning> {
    store
        .start_job(NewJob {
            id: format!("{}{}", random_hex(), random_hex()),
            org,
            owner: ExtensionId(1),
            kind: "extension_import".to_owned(),
            total: 10,
            now,
        })
        .await
        .expect("start a job")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_fails_its_own_jobs_only_and_a_job_is_its_nodes_to_report_on() {
    let names = (format!("a-{}", random_hex()), format!("b-{}", random_hex()));
    let a = node(&names.0).await;
    let b = node(&names.1).await;
    let (first, second) = (org(&a).await, org(&a).await);
    let on_a = start(&a, first, at(0)).await.expect("room");
    let on_b = start(&b, second, at(0)).await.expect("room");
    assert_eq!(on_b.node, names.1);

    assert!(
        !a.job_progress(second, on_b.id.clone(), 5, at(10))
            .await
            .expect("progress"),
        "another node's job takes no progress from this one"
    );
    // Node a starts again under its name.
    drop(a);
    let a = node(&names.0).await;
    assert_eq!(a.interrupt_own_jobs(at(20)).await.expect("interrupt"), 1);
    let mine = a
        .job(first, on_a.id.clone(), at(20))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (mine.state, mine.error.as_deref()),
        (JobState::Failed, Some(JOB_INTERRUPTED_BY_RESTART))
    );
    let theirs = a
        .job(second, on_b.id.clone(), at(20))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        theirs.state,
        JobState::Running,
        "another node's job runs on"
    );
    assert!(
        b.job_progress(second, on_b.id.clone(), 5, at(30))
            .await
            .expect("progress")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_a_job_of_one_organization_at_once_run_one() {
    let a = node(&format!("a-{}", random_hex())).await;
    let b = node(&format!("b-{}", random_hex())).await;
    for round in 0..20 {
        let org = org(&a).await;
        let (x, y) = tokio::join!(start(&a, org, at(round)), start(&b, org, at(round)));
        match (x, y) {
            (Ok(running), Err(busy)) | (Err(busy), Ok(running)) => {
                assert_eq!(busy.id, running.id, "round {round}");
            }
            (x, y) => panic!("round {round}: exactly one runs: {x:?}, {y:?}"),
        }
    }
}
