//! The [`Jobs`] capability: long work (CSV imports) recorded in the
//! database, so that any node answers a poll about a job, an organization
//! runs one job at a time however many nodes it reaches, and a restart
//! reports what it interrupted.
//!
//! A running job is held by the node that runs it, as a lease: the node
//! reports progress at least every third of [`JOB_LEASE`], and a job whose
//! node has not reported for a whole lease counts as failed (its node
//! stopped) for every reader, and no longer keeps its organization from
//! starting another. A starting node fails its own previous run's running
//! jobs at once ([`Jobs::interrupt_own_jobs`]).

use crate::Result;
use async_trait::async_trait;
use std::time::Duration;
use switchboard_domain::{ExtensionId, OrgId, Timestamp};

/// How long a running job's node may go without reporting before the job
/// counts as failed. Nodes report at least every third of it.
pub const JOB_LEASE: Duration = Duration::from_secs(30);

/// Why a job whose node went silent failed, for people.
pub const JOB_NODE_STOPPED: &str = "the server running this job stopped before it finished; check the result before starting it again";

/// Why a job running when its node restarted failed, for people.
pub const JOB_INTERRUPTED_BY_RESTART: &str = "the job was interrupted by a restart of the server running it; check the result before \
     starting it again";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(crate::StoreError::Backend(format!(
                "unknown job state {other:?}"
            ))),
        }
    }
}

/// A job to record as running on this node.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Chosen by the caller; unique.
    pub id: String,
    pub org: OrgId,
    /// Who started it, and hears of it.
    pub owner: ExtensionId,
    /// What the job does, named by the caller (`extension_import`).
    pub kind: String,
    pub total: u64,
    pub now: Timestamp,
}

/// A job as recorded, with its lease already applied: a running job whose
/// node stopped reporting reads as [`JobState::Failed`] with
/// [`JOB_NODE_STOPPED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: String,
    pub org: OrgId,
    pub owner: ExtensionId,
    pub kind: String,
    pub state: JobState,
    pub total: u64,
    pub done: u64,
    pub created: u64,
    /// What the job refused, as the JSON its caller gave (`[]` when none).
    pub refused: String,
    pub error: Option<String>,
    pub started_at: Timestamp,
    /// When it finished, or when its lease ran out.
    pub finished_at: Option<Timestamp>,
    /// The node that runs or ran it.
    pub node: String,
    /// When its node last reported on it.
    pub reported_at: Timestamp,
}

impl JobRecord {
    /// Applies the lease at `now`: a job still running whose node has not
    /// reported for [`JOB_LEASE`] failed when the lease ran out.
    pub(crate) fn at(mut self, now: Timestamp) -> Self {
        if self.state == JobState::Running && lease_ran_out(self.reported_at, now) {
            self.state = JobState::Failed;
            self.error = Some(JOB_NODE_STOPPED.to_owned());
            self.finished_at = Some(lease_end(self.reported_at));
        }
        self
    }
}

pub(crate) fn lease_millis() -> i64 {
    i64::try_from(JOB_LEASE.as_millis()).unwrap_or(i64::MAX)
}

/// When a lease renewed at `reported_at` runs out.
pub(crate) fn lease_end(reported_at: Timestamp) -> Timestamp {
    Timestamp(reported_at.0.saturating_add(lease_millis()))
}

fn lease_ran_out(reported_at: Timestamp, now: Timestamp) -> bool {
    lease_end(reported_at) <= now
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Succeeded,
    /// For this reason, said to people.
    Failed(String),
}

/// A job's end, as its node records it.
#[derive(Debug, Clone)]
pub struct FinishJob {
    pub org: OrgId,
    pub id: String,
    pub end: JobEnd,
    pub done: u64,
    pub created: u64,
    /// JSON, as [`JobRecord::refused`].
    pub refused: String,
    pub now: Timestamp,
}

/// The organization already runs a job (one that still holds its lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRunning {
    pub id: String,
}

/// Which finished jobs an organization keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobsKept {
    /// How long after it finished a job is kept.
    pub for_: Duration,
    /// How many finished jobs are kept at most, the newest.
    pub count: u32,
}

/// Jobs recorded for every node of a database.
#[async_trait]
pub trait Jobs: Send + Sync + 'static {
    /// Records `job` as running on this node, or `Ok(Err(running))` when
    /// its organization already runs one whose lease holds. The check and
    /// the record are one step for every node: two nodes starting a job of
    /// one organization at once never both succeed.
    async fn start_job(&self, job: NewJob) -> Result<std::result::Result<JobRecord, JobRunning>>;

    /// This node's progress on a running job, which also renews its lease.
    /// False when the job is no longer this node's to report on (it ended,
    /// or its lease ran out and it counts as failed).
    async fn job_progress(&self, org: OrgId, id: String, done: u64, now: Timestamp)
    -> Result<bool>;

    /// Records how a job of this node ended; the node that ran it knows,
    /// so this holds even after its lease ran out. False when there is no
    /// such job of this node.
    async fn finish_job(&self, finish: FinishJob) -> Result<bool>;

    /// A job of `org` as it stands at `now` (see [`JobRecord`]); another
    /// organization's job is not found.
    async fn job(&self, org: OrgId, id: String, now: Timestamp) -> Result<Option<JobRecord>>;

    /// Forgets `org`'s jobs that finished (or whose lease ran out) longer
    /// than `kept.for_` ago, and its finished ones beyond the newest
    /// `kept.count`; running jobs stay. Returns how many were forgotten.
    async fn forget_jobs(&self, org: OrgId, now: Timestamp, kept: JobsKept) -> Result<u64>;

    /// Fails every job still running on this node's previous run (with
    /// [`JOB_INTERRUPTED_BY_RESTART`]), as a server starts: that run is
    /// over. Where several nodes share the store, another node's jobs are
    /// left to their leases. Returns how many it failed.
    async fn interrupt_own_jobs(&self, now: Timestamp) -> Result<u64>;
}
