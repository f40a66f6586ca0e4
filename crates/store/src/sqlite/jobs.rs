//! Jobs on the single-node store (the [`Jobs`] capability). One node runs
//! them all, so it names itself [`NODE`], every running job found as it
//! starts is its previous run's, and the writer alone makes starting a job
//! one step.

use super::SqliteStore;
use crate::jobs::lease_millis;
use crate::{
    FinishJob, JOB_INTERRUPTED_BY_RESTART, JobEnd, JobRecord, JobRunning, JobState, Jobs, JobsKept,
    NewJob, Result,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use switchboard_domain::{ExtensionId, OrgId, Timestamp};

/// The one node of a SQLite database.
const NODE: &str = "local";

const JOB_COLUMNS: &str = "id, org_id, owner_id, kind, state, total, done, created, refused, \
                           error, started_at, finished_at, node, reported_at";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<(JobRecord, String)> {
    let state: String = row.get(4)?;
    Ok((
        JobRecord {
            id: row.get(0)?,
            org: OrgId(row.get(1)?),
            owner: ExtensionId(row.get(2)?),
            kind: row.get(3)?,
            // Checked by the caller, which can return the store's error.
            state: JobState::Running,
            total: count(row.get(5)?),
            done: count(row.get(6)?),
            created: count(row.get(7)?),
            refused: row.get(8)?,
            error: row.get(9)?,
            started_at: Timestamp(row.get(10)?),
            finished_at: row.get::<_, Option<i64>>(11)?.map(Timestamp),
            node: row.get(12)?,
            reported_at: Timestamp(row.get(13)?),
        },
        state,
    ))
}

fn record((mut job, state): (JobRecord, String)) -> Result<JobRecord> {
    job.state = JobState::parse(&state)?;
    Ok(job)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Fails `org`'s running jobs whose lease ran out by `now`, so they stop
/// holding its one running place.
fn fail_lapsed(conn: &Connection, org: OrgId, now: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'failed', error = ?3, finished_at = reported_at + ?4
         WHERE org_id = ?1 AND state = 'running' AND reported_at + ?4 <= ?2",
    )?
    .execute(params![
        org.0,
        now.0,
        crate::JOB_NODE_STOPPED,
        lease_millis()
    ])?;
    Ok(())
}

fn start_job(
    conn: &Connection,
    job: &NewJob,
) -> Result<std::result::Result<JobRecord, JobRunning>> {
    fail_lapsed(conn, job.org, job.now)?;
    let running: Option<String> = conn
        .prepare_cached("SELECT id FROM jobs WHERE org_id = ?1 AND state = 'running' LIMIT 1")?
        .query_row([job.org.0], |r| r.get(0))
        .optional()?;
    if let Some(id) = running {
        return Ok(Err(JobRunning { id }));
    }
    let row = conn
        .prepare_cached(&format!(
            "INSERT INTO jobs (id, org_id, owner_id, kind, state, total, started_at, node, reported_at)
             VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?6)
             RETURNING {JOB_COLUMNS}"
        ))?
        .query_row(
            params![
                job.id,
                job.org.0,
                job.owner.0,
                job.kind,
                stored(job.total),
                job.now.0,
                NODE
            ],
            job_from_row,
        )?;
    Ok(Ok(record(row)?))
}

fn job_progress(
    conn: &Connection,
    org: OrgId,
    id: &str,
    done: u64,
    now: Timestamp,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET done = min(?3, total), reported_at = ?4
             WHERE org_id = ?1 AND id = ?2 AND state = 'running' AND reported_at + ?5 > ?4",
        )?
        .execute(params![org.0, id, stored(done), now.0, lease_millis()])?;
    Ok(changed > 0)
}

fn finish_job(conn: &Connection, finish: &FinishJob) -> Result<bool> {
    let (state, error) = match &finish.end {
        JobEnd::Succeeded => (JobState::Succeeded, None),
        JobEnd::Failed(reason) => (JobState::Failed, Some(reason.as_str())),
    };
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = ?3, error = ?4, done = min(?5, total), created = ?6,
                             refused = ?7, finished_at = ?8, reported_at = ?8
             WHERE org_id = ?1 AND id = ?2 AND node = ?9",
        )?
        .execute(params![
            finish.org.0,
            finish.id,
            state.as_str(),
            error,
            stored(finish.done),
            stored(finish.created),
            finish.refused,
            finish.now.0,
            NODE
        ])?;
    Ok(changed > 0)
}

fn job(conn: &Connection, org: OrgId, id: &str, now: Timestamp) -> Result<Option<JobRecord>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE org_id = ?1 AND id = ?2"
        ))?
        .query_row(params![org.0, id], job_from_row)
        .optional()?;
    Ok(row.map(record).transpose()?.map(|job| job.at(now)))
}

fn forget_jobs(conn: &Connection, org: OrgId, now: Timestamp, kept: JobsKept) -> Result<u64> {
    let keep_for = i64::try_from(kept.for_.as_millis()).unwrap_or(i64::MAX);
    let since = now.0.saturating_sub(keep_for);
    let old = conn
        .prepare_cached(
            "DELETE FROM jobs WHERE org_id = ?1 AND (
                 (state <> 'running' AND finished_at <= ?2)
                 OR (state = 'running' AND reported_at + ?3 <= ?2))",
        )?
        .execute(params![org.0, since, lease_millis()])?;
    let beyond = conn
        .prepare_cached(
            "DELETE FROM jobs WHERE org_id = ?1 AND state <> 'running' AND seq NOT IN (
                 SELECT seq FROM jobs WHERE org_id = ?1 AND state <> 'running'
                 ORDER BY seq DESC LIMIT ?2)",
        )?
        .execute(params![org.0, kept.count])?;
    Ok((old + beyond) as u64)
}

fn interrupt_own_jobs(conn: &Connection, now: Timestamp) -> Result<u64> {
    Ok(conn
        .prepare_cached(
            "UPDATE jobs SET state = 'failed', error = ?2, finished_at = ?1
             WHERE state = 'running' AND node = ?3",
        )?
        .execute(params![now.0, JOB_INTERRUPTED_BY_RESTART, NODE])? as u64)
}

#[async_trait::async_trait]
impl Jobs for SqliteStore {
    async fn start_job(&self, job: NewJob) -> Result<std::result::Result<JobRecord, JobRunning>> {
        self.write(move |c| start_job(c, &job)).await
    }

    async fn job_progress(
        &self,
        org: OrgId,
        id: String,
        done: u64,
        now: Timestamp,
    ) -> Result<bool> {
        self.write(move |c| job_progress(c, org, &id, done, now))
            .await
    }

    async fn finish_job(&self, finish: FinishJob) -> Result<bool> {
        self.write(move |c| finish_job(c, &finish)).await
    }

    async fn job(&self, org: OrgId, id: String, now: Timestamp) -> Result<Option<JobRecord>> {
        self.read(move |c| job(c, org, &id, now)).await
    }

    async fn forget_jobs(&self, org: OrgId, now: Timestamp, kept: JobsKept) -> Result<u64> {
        self.write(move |c| forget_jobs(c, org, now, kept)).await
    }

    async fn interrupt_own_jobs(&self, now: Timestamp) -> Result<u64> {
        self.write(move |c| interrupt_own_jobs(c, now)).await
    }
}
