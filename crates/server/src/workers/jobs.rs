//! Long work that runs after its request has been answered: a job with an
//! id, a state and progress, which the administrator who started it follows
//! with `GET /api/v1/admin/jobs/{id}` or with `job.updated` frames on the
//! WebSocket.
//!
//! The registry lives in this node's memory (a single-node assumption):
//! a job is gone after a restart, and another node does not know it. It is
//! bounded: an organization has at most [`RUNNING_PER_ORG`] jobs running and
//! keeps its last [`FINISHED_KEPT_PER_ORG`] finished ones for
//! [`FINISHED_KEPT_FOR`]. Each job is a task on the app's tracker; the work
//! watches [`JobProgress::stopping`] so shutdown ends it, and every
//! moment recorded comes from the app's clock.

use crate::clock::Clock;
use crate::ws::frames::job_frame;
use futures_util::FutureExt;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::{Bus, Envelope, Scope};
use switchboard_domain::{ExtensionId, OrgId, Timestamp};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

/// Jobs one organization may have running at once. One import at a time
/// also keeps two imports from racing for the same numbers.
pub const RUNNING_PER_ORG: usize = 1;
/// Finished jobs an organization keeps, newest first.
pub const FINISHED_KEPT_PER_ORG: usize = 20;
/// How long a finished job can still be read.
pub const FINISHED_KEPT_FOR: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `POST /api/v1/admin/extensions/import`.
    ExtensionImport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// A row of an import that could not be created, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

/// The jobs of this node and the tasks that run them.
pub struct JobRunner {
    shared: Arc<Shared>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

struct Shared {
    /// Each organization's jobs, oldest first.
    jobs: Mutex<HashMap<OrgId, VecDeque<Job>>>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
}

impl JobRunner {
    pub fn new(
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                jobs: Mutex::new(HashMap::new()),
                bus,
                clock,
            }),
            tasks,
            shutdown,
        }
    }

    /// Registers a job of `total` rows for `owner` and runs `work` on the
    /// app's tracker. Answers the job as it starts, or refuses when the
    /// organization is at its limit.
    pub fn start<F, Fut>(
        &self,
        org: OrgId,
        owner: ExtensionId,
        kind: JobKind,
        total: usize,
        work: F,
    ) -> Result<Job, JobsBusy>
    where
        F: FnOnce(JobProgress) -> Fut + Send + 'static,
        Fut: Future<Output = JobOutcome> + Send + 'static,
    {
        let job = {
            let now = self.shared.clock.now();
            let mut all = self.shared.jobs.lock();
            let jobs = all.entry(org).or_default();
            prune(jobs, now);
            let running: Vec<&Job> = jobs
                .iter()
                .filter(|j| j.state == JobState::Running)
                .collect();
            if let Some(first) = running.first()
                && running.len() >= RUNNING_PER_ORG
            {
                return Err(JobsBusy {
                    running: first.id.clone(),
                });
            }
            let job = Job {
                id: new_id(),
                kind,
                state: JobState::Running,
                total,
                done: 0,
                created: 0,
                refused: Vec::new(),
                error: None,
                owner,
                finished_at: None,
            };
            jobs.push_back(job.clone());
            job
        };
        let progress = JobProgress {
            shared: Arc::clone(&self.shared),
            shutdown: self.shutdown.clone(),
            org,
            id: job.id.clone(),
            total,
            percent: 0,
        };
        let shared = Arc::clone(&self.shared);
        let id = job.id.clone();
        self.tasks.spawn(async move {
            // A job that panicked must not stay "running" and hold the
            // organization's turn until a restart.
            let outcome = AssertUnwindSafe(work(progress))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!(job = %id, "a job panicked");
                    JobOutcome::Failed(
                        "the job stopped on an internal error, which was logged; check the extensions before importing again"
                            .to_owned(),
                    )
                });
            let finished_at = shared.clock.now();
            shared.update(org, &id, |job| {
                job.finished_at = Some(finished_at);
                match outcome {
                    JobOutcome::Succeeded { created } => {
                        job.state = JobState::Succeeded;
                        job.done = job.total;
                        job.created = created;
                    }
                    JobOutcome::Refused(rows) => {
                        job.state = JobState::Failed;
                        job.error = Some(format!(
                            "{} row{} refused; nothing was created",
                            rows.len(),
                            if rows.len() == 1 { " was" } else { "s were" }
                        ));
                        job.refused = rows;
                    }
                    JobOutcome::Failed(reason) => {
                        job.state = JobState::Failed;
                        job.error = Some(reason);
                    }
                }
                true
            });
        });
        Ok(job)
    }

    /// A job of `org`, if it exists and is still kept.
    pub fn get(&self, org: OrgId, id: &str) -> Option<Job> {
        let now = self.shared.clock.now();
        let mut all = self.shared.jobs.lock();
        let jobs = all.get_mut(&org)?;
        prune(jobs, now);
        jobs.iter().find(|j| j.id == id).cloned()
    }
}

impl Shared {
    /// Changes a job; when `change` says so, its owner is told with a
    /// `job.updated` frame (ephemeral, like typing: never replayed).
    fn update(&self, org: OrgId, id: &str, change: impl FnOnce(&mut Job) -> bool) {
        let told = {
            let mut all = self.jobs.lock();
            let Some(job) = all
                .get_mut(&org)
                .and_then(|jobs| jobs.iter_mut().find(|j| j.id == id))
            else {
                return;
            };
            if !change(job) {
                return;
            }
            (job.owner, job_frame(job))
        };
        let (owner, frame) = told;
        // Ephemeral, like typing: it reaches the owner's WebSockets on
        // every node.
        self.bus.publish(Envelope {
            cursor: None,
            scope: Scope::Org(org),
            recipients: Arc::from([owner]),
            except: None,
            frame,
            event: None,
        });
    }
}

/// Drops the finished jobs past their time or beyond the number kept;
/// running jobs always stay.
fn prune(jobs: &mut VecDeque<Job>, now: Timestamp) {
    let keep_for = i64::try_from(FINISHED_KEPT_FOR.as_millis()).unwrap_or(i64::MAX);
    jobs.retain(|j| j.finished_at.is_none_or(|at| now.0 - at.0 < keep_for));
    let mut finished = jobs.iter().filter(|j| j.finished_at.is_some()).count();
    jobs.retain(|j| {
        if finished > FINISHED_KEPT_PER_ORG && j.finished_at.is_some() {
            finished -= 1;
            false
        } else {
            true
        }
    });
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
    id: String,
    total: usize,
    /// The percentage last told to the owner.
    percent: usize,
}

impl JobProgress {
    /// `done` rows are processed. The owner hears of it when the whole
    /// percentage moves, so a large job sends about a hundred frames, not
    /// one per row.
    pub fn advance(&mut self, done: usize) {
        let percent = (done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100);
        let tell = percent != self.percent;
        self.percent = percent;
        self.shared.update(self.org, &self.id, |job| {
            job.done = done.min(job.total);
            tell
        });
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

    fn runner(clock: Arc<ManualClock>) -> JobRunner {
        JobRunner::new(
            Arc::new(LocalBus::new()),
            clock,
            TaskTracker::new(),
            CancellationToken::new(),
        )
    }

    /// Runs a job that succeeds at once and answers it as it ends.
    async fn finished(runner: &JobRunner, org: OrgId) -> Job {
        let job = runner
            .start(
                org,
                ExtensionId(1),
                JobKind::ExtensionImport,
                1,
                |_| async { JobOutcome::Succeeded { created: 1 } },
            )
            .expect("room for a job");
        wait_for_tasks(runner).await;
        runner.get(org, &job.id).expect("kept")
    }

    async fn wait_for_tasks(runner: &JobRunner) {
        runner.tasks.close();
        runner.tasks.wait().await;
        runner.tasks.reopen();
    }

    #[tokio::test]
    async fn an_organization_runs_one_job_at_a_time_and_others_are_not_held_up() {
        let runner = runner(Arc::new(ManualClock::new(Timestamp(0))));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let first = runner
            .start(
                OrgId(1),
                ExtensionId(1),
                JobKind::ExtensionImport,
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
            .expect("room for a job");
        assert_eq!(first.state, JobState::Running);
        let busy = runner
            .start(
                OrgId(1),
                ExtensionId(2),
                JobKind::ExtensionImport,
                1,
                |_| async { JobOutcome::Succeeded { created: 1 } },
            )
            .expect_err("one import at a time");
        assert_eq!(busy.running, first.id);
        assert!(
            runner.get(OrgId(2), &first.id).is_none(),
            "not visible to another organization"
        );
        let other = runner
            .start(
                OrgId(2),
                ExtensionId(9),
                JobKind::ExtensionImport,
                1,
                |_| async { JobOutcome::Succeeded { created: 1 } },
            )
            .expect("another organization is not held up");
        let _ = release.send(());
        wait_for_tasks(&runner).await;

        let first = runner.get(OrgId(1), &first.id).expect("kept");
        assert_eq!(first.state, JobState::Failed);
        assert_eq!((first.done, first.created, first.refused.len()), (2, 0, 1));
        assert!(
            first
                .error
                .as_deref()
                .is_some_and(|e| e.contains("nothing was created"))
        );
        let other = runner.get(OrgId(2), &other.id).expect("kept");
        assert_eq!(other.state, JobState::Succeeded);
        runner
            .start(
                OrgId(1),
                ExtensionId(2),
                JobKind::ExtensionImport,
                1,
                |_| async { JobOutcome::Succeeded { created: 1 } },
            )
            .expect("room again once the first has finished");
    }

    #[tokio::test]
    async fn finished_jobs_are_kept_for_a_while_and_only_so_many() {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let runner = runner(Arc::clone(&clock));
        let first = finished(&runner, OrgId(1)).await;
        assert_eq!(
            (first.state, first.created, first.done),
            (JobState::Succeeded, 1, 1)
        );
        clock.advance(FINISHED_KEPT_FOR - Duration::from_secs(1));
        assert!(runner.get(OrgId(1), &first.id).is_some(), "still kept");
        clock.advance(Duration::from_secs(1));
        assert!(
            runner.get(OrgId(1), &first.id).is_none(),
            "gone after its time"
        );

        let mut ids = Vec::new();
        for _ in 0..=FINISHED_KEPT_PER_ORG {
            ids.push(finished(&runner, OrgId(1)).await.id);
        }
        assert!(
            runner.get(OrgId(1), &ids[0]).is_none(),
            "the oldest made room"
        );
        assert!(ids[1..].iter().all(|id| runner.get(OrgId(1), id).is_some()));
    }
}
