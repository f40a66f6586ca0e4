//! Long work that runs after its request has been answered: a job with an
//! id, a state and progress, which the administrator who started it follows
//! with `GET /api/v1/admin/jobs/{id}` or with `job.updated` frames on the
//! WebSocket.
//!
//! Jobs are recorded in the store ([`switchboard_store::Jobs`]), so any
//! node answers a poll, an organization runs at most one job however many
//! nodes it reaches, and a restart reports what it interrupted. What is
//! live stays in this node's memory: the task, its cancellation at
//! shutdown and its progress frames (ephemeral, like typing). A running
//! job reports its progress to the store at most every
//! [`PROGRESS_PERIOD`] and at least every [`HEARTBEAT`], which renews its
//! lease ([`JOB_LEASE`]): a job whose node stops reporting counts as
//! failed. Finished jobs are kept [`FINISHED_KEPT_FOR`], the last
//! [`FINISHED_KEPT_PER_ORG`] of an organization. Each job is a task on the
//! app's tracker; the work watches [`JobProgress::stopping`] so shutdown
//! ends it, and every moment recorded comes from the app's clock.

use crate::clock::Clock;
use crate::ws::frames::job_frame;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::{Bus, Envelope, Scope};
use switchboard_domain::{ExtensionId, OrgId, Timestamp};
use switchboard_store::{
    FinishJob, JOB_LEASE, JobEnd, JobRecord, JobsKept, NewJob, Store, StoreError,
};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

/// Finished jobs an organization keeps, newest first.
pub const FINISHED_KEPT_PER_ORG: usize = 20;
/// How long a finished job can still be read.
pub const FINISHED_KEPT_FOR: Duration = Duration::from_secs(60 * 60);
/// A running job's progress reaches the store at most this often.
pub const PROGRESS_PERIOD: Duration = Duration::from_millis(500);
/// A running job reports at least this often, with or without progress,
/// so that its lease never runs out while its node runs it.
pub const HEARTBEAT: Duration = Duration::from_secs(JOB_LEASE.as_secs() / 3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `POST /api/v1/admin/extensions/import`.
    ExtensionImport,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::ExtensionImport => "extension_import",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "extension_import" => Some(Self::ExtensionImport),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

impl From<switchboard_store::JobState> for JobState {
    fn from(state: switchboard_store::JobState) -> Self {
        match state {
            switchboard_store::JobState::Running => Self::Running,
            switchboard_store::JobState::Succeeded => Self::Succeeded,
            switchboard_store::JobState::Failed => Self::Failed,
        }
    }
}

/// A row of an import that could not be created, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefusedRow {
    /// The line of the CSV, counting the header as line 1.
    pub line: usize,
    /// The extension number on that line.
    pub number: String,
    pub reason: String,
}

/// A job as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    /// Opaque; 32 hexadecimal digits.
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    /// Rows to process.
    pub total: usize,
    /// Rows processed so far (for an import: passwords hashed).
    pub done: usize,
    /// Extensions created; all of them or none.
    pub created: usize,
    /// Rows refused, with reasons; when any is, nothing was created.
    pub refused: Vec<RefusedRow>,
    /// Why the job failed, for people; `null` unless it failed.
    pub error: Option<String>,
    #[serde(skip)]
    owner: ExtensionId,
    #[serde(skip)]
    finished_at: Option<Timestamp>,
}

impl Job {
    /// The job a record holds; a record this server cannot read is the
    /// store's fault.
    fn from_record(record: JobRecord) -> Result<Self, StoreError> {
        let unreadable =
            |what: &str| StoreError::Backend(format!("job {} has an unreadable {what}", record.id));
        let kind = JobKind::parse(&record.kind).ok_or_else(|| unreadable("kind"))?;
        let refused: Vec<RefusedRow> = serde_json::from_str(&record.refused)
            .map_err(|_| unreadable("list of refused rows"))?;
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Self {
            kind,
            state: record.state.into(),
            total: count(record.total),
            done: count(record.done),
            created: count(record.created),
            refused,
            error: record.error,
            owner: record.owner,
            finished_at: record.finished_at,
            id: record.id,
        })
    }
}

/// How a job's work ended.
#[derive(Debug)]
pub enum JobOutcome {
    Succeeded {
        created: usize,
    },
    /// Rows refused; nothing was done.
    Refused(Vec<RefusedRow>),
    /// Nothing was done, for this reason (said to people).
    Failed(String),
}

/// The organization already runs as many jobs as it may.
#[derive(Debug)]
pub struct JobsBusy {
    /// One of the running jobs, for the client to follow.
    pub running: String,
}

/// The jobs this node runs, and the way to every node's jobs in the store.
pub struct JobRunner {
    shared: Arc<Shared>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

struct Shared {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
}

impl JobRunner {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared { store, bus, clock }),
            tasks,
            shutdown,
        }
    }

    /// Records a job of `total` rows for `owner` and runs `work` on the
    /// app's tracker. Answers the job as it starts, or refuses when the
    /// organization already runs one, on this node or another.
    pub async fn start<F, Fut>(
        &self,
        org: OrgId,
        owner: ExtensionId,
        kind: JobKind,
        total: usize,
        work: F,
    ) -> Result<Result<Job, JobsBusy>, StoreError>
    where
        F: FnOnce(JobProgress) -> Fut + Send + 'static,
        Fut: Future<Output = JobOutcome> + Send + 'static,
    {
        let started = self
            .shared
            .store
            .start_job(NewJob {
                id: new_id(),
                org,
                owner,
                kind: kind.as_str().to_owned(),
                total: total as u64,
                now: self.shared.clock.now(),
            })
            .await?;
        let job = match started {
            Ok(record) => Job::from_record(record)?,
            Err(running) => {
                return Ok(Err(JobsBusy {
                    running: running.id,
                }));
            }
        };
        let (done, reported) = watch::channel(0);
        let progress = JobProgress {
            shared: Arc::clone(&self.shared),
            shutdown: self.shutdown.clone(),
            org,
            job: job.clone(),
            done,
            percent: 0,
        };
        let shared = Arc::clone(&self.shared);
        let running = job.clone();
        self.tasks.spawn(async move {
            let id = running.id.clone();
            // A job that panicked must not stay "running" and hold the
            // organization's turn until its lease runs out.
            let work = AssertUnwindSafe(work(progress)).catch_unwind();
            let outcome = tokio::select! {
                biased;
                outcome = work => outcome.unwrap_or_else(|_| {
                    tracing::error!(job = %id, "a job panicked");
                    JobOutcome::Failed(
                        "the job stopped on an internal error, which was logged; check the extensions before importing again"
                            .to_owned(),
                    )
                }),
                never = keep_reporting(&shared, org, &id, reported.clone()) => match never {},
            };
            let done = *reported.borrow();
            shared.finish(org, running, outcome, done).await;
        });
        Ok(Ok(job))
    }

    /// A job of `org`, if it exists and is still kept, whichever node
    /// runs or ran it.
    pub async fn get(&self, org: OrgId, id: &str) -> Result<Option<Job>, StoreError> {
        let now = self.shared.clock.now();
        let Some(record) = self.shared.store.job(org, id.to_owned(), now).await? else {
            return Ok(None);
        };
        let job = Job::from_record(record)?;
        if job
            .finished_at
            .is_some_and(|at| now.since(at) >= FINISHED_KEPT_FOR)
        {
            return Ok(None);
        }
        Ok(Some(job))
    }
}

/// Reports a running job's progress to the store, which renews its lease:
/// soon after it moves, but at most every [`PROGRESS_PERIOD`], and every
/// [`HEARTBEAT`] when it does not. Runs until the job's task drops it.
async fn keep_reporting(
    shared: &Shared,
    org: OrgId,
    id: &str,
    mut done: watch::Receiver<usize>,
) -> Infallible {
    let mut reported = shared.clock.now();
    let mut moving = true;
    let mut held = true;
    loop {
        tokio::select! {
            () = shared.clock.sleep_until(reported.saturating_add(HEARTBEAT)) => {}
            changed = done.changed(), if moving => {
                if changed.is_err() {
                    // The work let go of its progress; the heartbeat goes on.
                    moving = false;
                    continue;
                }
                shared.clock.sleep_until(reported.saturating_add(PROGRESS_PERIOD)).await;
            }
        }
        let now = shared.clock.now();
        let value = *done.borrow_and_update();
        match shared
            .store
            .job_progress(org, id.to_owned(), value as u64, now)
            .await
        {
            Ok(true) => held = true,
            Ok(false) if held => {
                held = false;
                tracing::warn!(job = %id, "a job's lease ran out while it ran; other nodes see it failed");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "a job's progress could not be recorded")
            }
        }
        reported = now;
    }
}

impl Shared {
    /// Records how a job ended, forgets what is no longer kept, and tells
    /// its owner.
    async fn finish(&self, org: OrgId, mut job: Job, outcome: JobOutcome, done: usize) {
        let now = self.clock.now();
        job.finished_at = Some(now);
        job.done = done.min(job.total);
        let end = match outcome {
            JobOutcome::Succeeded { created } => {
                job.state = JobState::Succeeded;
                job.done = job.total;
                job.created = created;
                JobEnd::Succeeded
            }
            JobOutcome::Refused(rows) => {
                job.state = JobState::Failed;
                let reason = format!(
                    "{} row{} refused; nothing was created",
                    rows.len(),
                    if rows.len() == 1 { " was" } else { "s were" }
                );
                job.error = Some(reason.clone());
                job.refused = rows;
                JobEnd::Failed(reason)
            }
            JobOutcome::Failed(reason) => {
                job.state = JobState::Failed;
                job.error = Some(reason.clone());
                JobEnd::Failed(reason)
            }
        };
        let refused = serde_json::to_string(&job.refused).unwrap_or_else(|_| "[]".to_owned());
        let finish = FinishJob {
            org,
            id: job.id.clone(),
            end,
            done: job.done as u64,
            created: job.created as u64,
            refused,
            now,
        };
        match self.store.finish_job(finish).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job = %job.id, "a finished job was no longer recorded"),
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "a job's end could not be recorded")
            }
        }
        let kept = JobsKept {
            for_: FINISHED_KEPT_FOR,
            count: FINISHED_KEPT_PER_ORG as u32,
        };
        if let Err(e) = self.store.forget_jobs(org, now, kept).await {
            tracing::warn!(error = %e, "old jobs could not be forgotten");
        }
        self.tell(org, &job);
    }

    /// Tells a job's owner of it with a `job.updated` frame (ephemeral,
    /// like typing: never replayed), on every node that holds the owner's
    /// WebSockets.
    fn tell(&self, org: OrgId, job: &Job) {
        self.bus.publish(Envelope {
            cursor: None,
            scope: Scope::Org(org),
            recipients: Arc::from([job.owner]),
            except: None,
            frame: job_frame(job),
            event: None,
        });
    }
}

/// 128 random bits: a job id says nothing about other jobs.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Not a secret, only a name: a clock-derived id still works.
        tracing::warn!(error = %e, "no randomness for a job id");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a job's work uses to report progress and to learn that the server
/// is stopping.
pub struct JobProgress {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    org: OrgId,
    /// The job as its owner last heard of it.
    job: Job,
    /// Rows done, for the reports to the store.
    done: watch::Sender<usize>,
    /// The percentage last told to the owner.
    percent: usize,
}

impl JobProgress {
    /// `done` rows are processed. The owner hears of it when the whole
    /// percentage moves, so a large job sends about a hundred frames, not
    /// one per row; the store hears of it within [`PROGRESS_PERIOD`].
    pub fn advance(&mut self, done: usize) {
        let done = done.min(self.job.total);
        self.done.send_replace(done);
        self.job.done = done;
        let percent = (done * 100).checked_div(self.job.total).unwrap_or(100);
        if percent != self.percent {
            self.percent = percent;
            self.shared.tell(self.org, &self.job);
        }
    }

    /// Completes when the server starts shutting down.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.shutdown.clone().cancelled_owned()
    }

    pub fn is_stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use switchboard_bus::LocalBus;
    use switchboard_store::{SqliteOptions, SqliteStore};

    /// A runner on a store of its own, kept as long as the directory.
    fn runner(clock: Arc<ManualClock>) -> (tempfile::TempDir, JobRunner) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(SqliteOptions::new(dir.path().join("switchboard.db")))
            .expect("open the store");
        let runner = JobRunner::new(
            Arc::new(store),
            Arc::new(LocalBus::new()),
            clock,
            TaskTracker::new(),
            CancellationToken::new(),
        );
        (dir, runner)
    }

    async fn start<F, Fut>(
        runner: &JobRunner,
        org: OrgId,
        owner: ExtensionId,
        total: usize,
        work: F,
    ) -> Result<Job, JobsBusy>
    where
        F: FnOnce(JobProgress) -> Fut + Send + 'static,
        Fut: Future<Output = JobOutcome> + Send + 'static,
    {
        runner
            .start(org, owner, JobKind::ExtensionImport, total, work)
            .await
            .expect("the store answers")
    }

    async fn get(runner: &JobRunner, org: OrgId, id: &str) -> Option<Job> {
        runner.get(org, id).await.expect("the store answers")
    }

    /// Runs a job that succeeds at once and answers it as it ends.
    async fn finished(runner: &JobRunner, org: OrgId) -> Job {
        let job = start(runner, org, ExtensionId(1), 1, |_| async {
            JobOutcome::Succeeded { created: 1 }
        })
        .await
        .expect("room for a job");
        wait_for_tasks(runner).await;
        get(runner, org, &job.id).await.expect("kept")
    }

    async fn wait_for_tasks(runner: &JobRunner) {
        runner.tasks.close();
        runner.tasks.wait().await;
        runner.tasks.reopen();
    }

    #[tokio::test]
    async fn an_organization_runs_one_job_at_a_time_and_others_are_not_held_up() {
        let (_dir, runner) = runner(Arc::new(ManualClock::new(Timestamp(0))));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let first = start(
            &runner,
            OrgId(1),
            ExtensionId(1),
            3,
            |mut progress| async move {
                progress.advance(2);
                let _ = wait.await;
                JobOutcome::Refused(vec![RefusedRow {
                    line: 3,
                    number: "102".into(),
                    reason: "extension 102 already exists".into(),
                }])
            },
        )
        .await
        .expect("room for a job");
        assert_eq!(first.state, JobState::Running);
        let busy = start(&runner, OrgId(1), ExtensionId(2), 1, |_| async {
            JobOutcome::Succeeded { created: 1 }
        })
        .await
        .expect_err("one import at a time");
        assert_eq!(busy.running, first.id);
        assert!(
            get(&runner, OrgId(2), &first.id).await.is_none(),
            "not visible to another organization"
        );
        let other = start(&runner, OrgId(2), ExtensionId(9), 1, |_| async {
            JobOutcome::Succeeded { created: 1 }
        })
        .await
        .expect("another organization is not held up");
        let _ = release.send(());
        wait_for_tasks(&runner).await;

        let first = get(&runner, OrgId(1), &first.id).await.expect("kept");
        assert_eq!(first.state, JobState::Failed);
        assert_eq!((first.done, first.created, first.refused.len()), (2, 0, 1));
        assert!(
            first
                .error
                .as_deref()
                .is_some_and(|e| e.contains("nothing was created"))
        );
        let other = get(&runner, OrgId(2), &other.id).await.expect("kept");
        assert_eq!(other.state, JobState::Succeeded);
        start(&runner, OrgId(1), ExtensionId(2), 1, |_| async {
            JobOutcome::Succeeded { created: 1 }
        })
        .await
        .expect("room again once the first has finished");
    }

    #[tokio::test]
    async fn finished_jobs_are_kept_for_a_while_and_only_so_many() {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let (_dir, runner) = runner(Arc::clone(&clock));
        let first = finished(&runner, OrgId(1)).await;
        assert_eq!(
            (first.state, first.created, first.done),
            (JobState::Succeeded, 1, 1)
        );
        clock.advance(FINISHED_KEPT_FOR - Duration::from_secs(1));
        assert!(
            get(&runner, OrgId(1), &first.id).await.is_some(),
            "still kept"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            get(&runner, OrgId(1), &first.id).await.is_none(),
            "gone after its time"
        );

        let mut ids = Vec::new();
        for _ in 0..=FINISHED_KEPT_PER_ORG {
            ids.push(finished(&runner, OrgId(1)).await.id);
        }
        assert!(
            get(&runner, OrgId(1), &ids[0]).await.is_none(),
            "the oldest made room"
        );
        for id in &ids[1..] {
            assert!(get(&runner, OrgId(1), id).await.is_some());
        }
    }

    #[tokio::test]
    async fn a_running_job_reports_its_progress_to_the_store_and_renews_its_lease() {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let (_dir, runner) = runner(Arc::clone(&clock));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let (advanced, has_advanced) = tokio::sync::oneshot::channel::<()>();
        let job = start(
            &runner,
            OrgId(1),
            ExtensionId(1),
            10,
            |mut progress| async move {
                progress.advance(4);
                let _ = advanced.send(());
                let _ = wait.await;
                JobOutcome::Succeeded { created: 10 }
            },
        )
        .await
        .expect("room for a job");
        has_advanced.await.expect("the job advanced");
        // Nothing moves: several leases pass, reported by the heartbeat.
        for _ in 0..(3 * JOB_LEASE.as_secs() / HEARTBEAT.as_secs()) {
            let before = runner
                .shared
                .store
                .job(OrgId(1), job.id.clone(), clock.now())
                .await
                .expect("read")
                .expect("kept")
                .reported_at;
            clock.advance(HEARTBEAT);
            let reported = async {
                loop {
                    let reported = runner
                        .shared
                        .store
                        .job(OrgId(1), job.id.clone(), clock.now())
                        .await
                        .expect("read")
                        .expect("kept")
                        .reported_at;
                    if reported != before {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), reported)
                .await
                .expect("the heartbeat reports");
        }
        let running = get(&runner, OrgId(1), &job.id).await.expect("kept");
        assert_eq!(
            (running.state, running.done),
            (JobState::Running, 4),
            "the lease held and the progress was reported"
        );
        let _ = release.send(());
        wait_for_tasks(&runner).await;
        let done = get(&runner, OrgId(1), &job.id).await.expect("kept");
        assert_eq!(
            (done.state, done.done, done.created),
            (JobState::Succeeded, 10, 10)
        );
    }
}
