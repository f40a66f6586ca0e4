//! Rules of jobs ([`Jobs`](crate::Jobs)): a job starts running, reports
//! progress and finishes; an organization runs one at a time, even when two
//! starts race; another organization never finds it; a job whose node stops
//! reporting for a lease fails and frees its organization; a restart fails
//! what the previous run left running; finished jobs are forgotten after
//! their time and beyond the count kept.

use super::*;
use crate::{
    FinishJob, JOB_INTERRUPTED_BY_RESTART, JOB_LEASE, JOB_NODE_STOPPED, JobEnd, JobRecord,
    JobRunning, JobState, JobsKept, NewJob, Store,
};
use std::time::Duration;

pub(super) async fn run_all(store: &dyn Store) {
    a_job_starts_running_reports_progress_and_finishes(store).await;
    an_organization_runs_one_job_at_a_time(store).await;
    another_organization_does_not_find_a_job(store).await;
    a_job_whose_node_stops_reporting_fails_and_frees_its_organization(store).await;
    a_restart_fails_the_jobs_its_previous_run_left_running(store).await;
    finished_jobs_are_forgotten_after_their_time_and_beyond_the_count(store).await;
}

/// A job id no other rule has used: ids are unique in the whole store.
fn job_id() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).expect("a short duration")
}

async fn start(
    store: &dyn Store,
    org: OrgId,
    owner: ExtensionId,
    total: u64,
    now: Timestamp,
) -> Result<JobRecord, JobRunning> {
    store
        .start_job(NewJob {
            id: job_id(),
            org,
            owner,
            kind: "extension_import".to_owned(),
            total,
            now,
        })
        .await
        .expect("start a job")
}

async fn started(
    store: &dyn Store,
    org: OrgId,
    owner: ExtensionId,
    total: u64,
    now: Timestamp,
) -> JobRecord {
    start(store, org, owner, total, now)
        .await
        .expect("room for a job")
}

async fn get(store: &dyn Store, org: OrgId, id: &str, now: Timestamp) -> Option<JobRecord> {
    store
        .job(org, id.to_owned(), now)
        .await
        .expect("read a job")
}

async fn finish(store: &dyn Store, job: &JobRecord, end: JobEnd, now: Timestamp) -> bool {
    let created = if end == JobEnd::Succeeded {
        job.total
    } else {
        0
    };
    store
        .finish_job(FinishJob {
            org: job.org,
            id: job.id.clone(),
            end,
            done: job.total,
            created,
            refused: "[]".to_owned(),
            now,
        })
        .await
        .expect("finish a job")
}

pub async fn a_job_starts_running_reports_progress_and_finishes(store: &dyn Store) {
    let t = team(store, "jobs-run", 1).await;
    let job = started(store, t.org.id, t.id(0), 3, at(0)).await;
    assert_eq!(
        (job.org, job.owner, job.kind.as_str(), job.state),
        (t.org.id, t.id(0), "extension_import", JobState::Running)
    );
    assert_eq!((job.total, job.done, job.created), (3, 0, 0));
    assert_eq!((job.refused.as_str(), job.error.as_deref()), ("[]", None));
    assert_eq!((job.started_at, job.finished_at), (at(0), None));
    assert_eq!(
        get(store, t.org.id, &job.id, at(0)).await,
        Some(job.clone())
    );

    assert!(
        store
            .job_progress(t.org.id, job.id.clone(), 2, at(1_000))
            .await
            .expect("progress"),
        "a running job takes its node's progress"
    );
    let read = get(store, t.org.id, &job.id, at(1_000))
        .await
        .expect("kept");
    assert_eq!((read.state, read.done), (JobState::Running, 2));
    assert_eq!(read.reported_at, at(1_000));

    let refused = r#"[{"line":3,"number":"102","reason":"taken"}]"#;
    assert!(
        store
            .finish_job(FinishJob {
                org: t.org.id,
                id: job.id.clone(),
                end: JobEnd::Failed("1 row was refused".to_owned()),
                done: 2,
                created: 0,
                refused: refused.to_owned(),
                now: at(2_000),
            })
            .await
            .expect("finish")
    );
    let failed = get(store, t.org.id, &job.id, at(2_000))
        .await
        .expect("kept");
    assert_eq!((failed.state, failed.done), (JobState::Failed, 2));
    assert_eq!(failed.error.as_deref(), Some("1 row was refused"));
    assert_eq!(failed.refused, refused);
    assert_eq!(failed.finished_at, Some(at(2_000)));
    assert!(
        !store
            .job_progress(t.org.id, job.id.clone(), 3, at(2_500))
            .await
            .expect("progress"),
        "a finished job takes no more progress"
    );

    let next = started(store, t.org.id, t.id(0), 4, at(3_000)).await;
    assert!(finish(store, &next, JobEnd::Succeeded, at(4_000)).await);
    let succeeded = get(store, t.org.id, &next.id, at(4_000))
        .await
        .expect("kept");
    assert_eq!(succeeded.state, JobState::Succeeded);
    assert_eq!((succeeded.done, succeeded.created), (4, 4));
    assert_eq!(succeeded.error, None);
    // Long after its lease, a finished job stays as it finished.
    let later = at(4_000 + 10 * ms(JOB_LEASE));
    assert_eq!(get(store, t.org.id, &next.id, later).await, Some(succeeded));
}

pub async fn an_organization_runs_one_job_at_a_time(store: &dyn Store) {
    let t = team(store, "jobs-one", 2).await;
    let other = team(store, "jobs-other", 1).await;
    let first = started(store, t.org.id, t.id(0), 5, at(0)).await;
    let busy = start(store, t.org.id, t.id(1), 1, at(10))
        .await
        .expect_err("one job at a time");
    assert_eq!(busy.id, first.id, "the refusal names the running job");
    started(store, other.org.id, other.id(0), 1, at(10)).await;

    assert!(finish(store, &first, JobEnd::Succeeded, at(20)).await);
    // Two starts at once: one runs, the other is told of it.
    let (a, b) = futures_util::future::join(
        start(store, t.org.id, t.id(0), 1, at(30)),
        start(store, t.org.id, t.id(1), 1, at(30)),
    )
    .await;
    match (a, b) {
        (Ok(running), Err(busy)) | (Err(busy), Ok(running)) => {
            assert_eq!(busy.id, running.id);
            assert_eq!(
                get(store, t.org.id, &running.id, at(30))
                    .await
                    .map(|j| j.state),
                Some(JobState::Running)
            );
        }
        (a, b) => panic!("exactly one of two racing starts runs: {a:?}, {b:?}"),
    }
}

pub async fn another_organization_does_not_find_a_job(store: &dyn Store) {
    let t = team(store, "jobs-mine", 1).await;
    let other = team(store, "jobs-theirs", 1).await;
    let job = started(store, t.org.id, t.id(0), 2, at(0)).await;
    assert_eq!(get(store, other.org.id, &job.id, at(0)).await, None);
    assert!(
        !store
            .job_progress(other.org.id, job.id.clone(), 1, at(10))
            .await
            .expect("progress"),
        "progress through another organization changes nothing"
    );
    let through_other = JobRecord {
        org: other.org.id,
        ..job.clone()
    };
    assert!(!finish(store, &through_other, JobEnd::Succeeded, at(20)).await);
    let mine = get(store, t.org.id, &job.id, at(20)).await.expect("kept");
    assert_eq!((mine.state, mine.done), (JobState::Running, 0));
    assert_eq!(get(store, t.org.id, &job_id(), at(20)).await, None);
}

pub async fn a_job_whose_node_stops_reporting_fails_and_frees_its_organization(store: &dyn Store) {
    let t = team(store, "jobs-lease", 1).await;
    let lease = ms(JOB_LEASE);
    let job = started(store, t.org.id, t.id(0), 9, at(0)).await;
    // Progress renews the lease.
    assert!(
        store
            .job_progress(t.org.id, job.id.clone(), 3, at(lease - 1))
            .await
            .expect("progress")
    );
    let renewed = at(2 * lease - 2);
    assert_eq!(
        get(store, t.org.id, &job.id, renewed)
            .await
            .map(|j| j.state),
        Some(JobState::Running),
        "still within the renewed lease"
    );
    start(store, t.org.id, t.id(0), 1, renewed)
        .await
        .expect_err("a job within its lease holds the organization");

    let lapsed = at(2 * lease - 1);
    let read = get(store, t.org.id, &job.id, lapsed).await.expect("kept");
    assert_eq!(read.state, JobState::Failed);
    assert_eq!(read.error.as_deref(), Some(JOB_NODE_STOPPED));
    assert_eq!(read.done, 3);
    assert_eq!(
        read.finished_at,
        Some(lapsed),
        "it failed when its lease ran out"
    );
    assert!(
        !store
            .job_progress(t.org.id, job.id.clone(), 4, lapsed)
            .await
            .expect("progress"),
        "a lapsed job takes no more progress"
    );
    let next = started(store, t.org.id, t.id(0), 1, lapsed).await;
    assert_eq!(next.state, JobState::Running);
    let old = get(store, t.org.id, &job.id, at(3 * lease))
        .await
        .expect("kept");
    assert_eq!(
        (old.state, old.error.as_deref()),
        (JobState::Failed, Some(JOB_NODE_STOPPED)),
        "the lapsed job stays failed"
    );
}

pub async fn a_restart_fails_the_jobs_its_previous_run_left_running(store: &dyn Store) {
    let t = team(store, "jobs-restart", 1).await;
    let other = team(store, "jobs-restart-other", 1).await;
    let finished = started(store, t.org.id, t.id(0), 1, at(0)).await;
    assert!(finish(store, &finished, JobEnd::Succeeded, at(10)).await);
    let running = started(store, t.org.id, t.id(0), 4, at(20)).await;
    let also = started(store, other.org.id, other.id(0), 4, at(20)).await;

    assert!(
        store
            .interrupt_own_jobs(at(1_000))
            .await
            .expect("interrupt")
            >= 2,
        "both running jobs are failed"
    );
    for (org, id) in [(t.org.id, &running.id), (other.org.id, &also.id)] {
        let job = get(store, org, id, at(1_000)).await.expect("kept");
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.error.as_deref(), Some(JOB_INTERRUPTED_BY_RESTART));
        assert_eq!(job.finished_at, Some(at(1_000)));
    }
    let kept = get(store, t.org.id, &finished.id, at(1_000))
        .await
        .expect("kept");
    assert_eq!(
        kept.state,
        JobState::Succeeded,
        "a finished job stays as it was"
    );
    started(store, t.org.id, t.id(0), 1, at(1_000)).await;
}

pub async fn finished_jobs_are_forgotten_after_their_time_and_beyond_the_count(store: &dyn Store) {
    let t = team(store, "jobs-forget", 1).await;
    let kept = JobsKept {
        for_: Duration::from_secs(3_600),
        count: 3,
    };
    let hour = ms(kept.for_);
    let old = started(store, t.org.id, t.id(0), 1, at(0)).await;
    assert!(finish(store, &old, JobEnd::Succeeded, at(10)).await);
    let mut recent = Vec::new();
    for i in 0..4 {
        let now = at(hour + i * 100);
        let job = started(store, t.org.id, t.id(0), 1, now).await;
        assert!(finish(store, &job, JobEnd::Succeeded, at(hour + i * 100 + 50)).await);
        recent.push(job.id);
    }
    let running = started(store, t.org.id, t.id(0), 1, at(hour + 1_000)).await;

    let now = at(hour + 1_010);
    let forgotten = store
        .forget_jobs(t.org.id, now, kept)
        .await
        .expect("forget");
    assert_eq!(
        forgotten, 2,
        "the one past its time and the oldest beyond the count"
    );
    assert_eq!(get(store, t.org.id, &old.id, now).await, None);
    assert_eq!(get(store, t.org.id, &recent[0], now).await, None);
    for id in &recent[1..] {
        assert!(get(store, t.org.id, id, now).await.is_some());
    }
    assert_eq!(
        get(store, t.org.id, &running.id, now)
            .await
            .map(|j| j.state),
        Some(JobState::Running),
        "a running job is never forgotten"
    );
    let other = team(store, "jobs-forget-other", 1).await;
    let theirs = started(store, other.org.id, other.id(0), 1, at(0)).await;
    assert!(finish(store, &theirs, JobEnd::Succeeded, at(10)).await);
    store
        .forget_jobs(t.org.id, at(3 * hour), kept)
        .await
        .expect("forget");
    assert!(
        get(store, other.org.id, &theirs.id, at(10)).await.is_some(),
        "forgetting is per organization"
    );
}
