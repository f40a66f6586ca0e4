//! Jobs on PostgreSQL (the [`Jobs`] capability), followed from every node.
//!
//! Every change to a job goes through the writer naming the job's
//! organization, so it holds that organization's stream lock: two nodes
//! starting a job of one organization at once take turns, and the second
//! sees the first's job running. A running job names the node that runs it
//! (`node`) and is a lease renewed by its progress reports (`reported_at`);
//! a job whose lease ran out reads as failed, and the next start in its
//! organization records it so. The unique index on running jobs per
//! organization backs the rule up.

use super::PgStore;
use crate::jobs::lease_millis;
use crate::{
    FinishJob, JOB_INTERRUPTED_BY_RESTART, JOB_NODE_STOPPED, JobEnd, JobRecord, JobRunning,
    JobState, Jobs, JobsKept, NewJob, Result,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use switchboard_domain::{ExtensionId, OrgId, Timestamp};

/// A job's columns, in the order [`job_from_row`] reads them.
macro_rules! job_columns {
    () => {
        "id, org_id, owner_id, kind, state, total, done, created, refused, error, started_at, \
         finished_at, node, reported_at"
    };
}

fn job_from_row(row: &PgRow) -> Result<JobRecord> {
    let state: String = row.try_get(4)?;
    Ok(JobRecord {
        id: row.try_get(0)?,
        org: OrgId(row.try_get(1)?),
        owner: ExtensionId(row.try_get(2)?),
        kind: row.try_get(3)?,
        state: JobState::parse(&state)?,
        total: count(row.try_get(5)?),
        done: count(row.try_get(6)?),
        created: count(row.try_get(7)?),
        refused: row.try_get(8)?,
        error: row.try_get(9)?,
        started_at: Timestamp(row.try_get(10)?),
        finished_at: row.try_get::<Option<i64>, _>(11)?.map(Timestamp),
        node: row.try_get(12)?,
        reported_at: Timestamp(row.try_get(13)?),
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn start_job(
    conn: &mut PgConnection,
    node: &str,
    job: &NewJob,
) -> Result<std::result::Result<JobRecord, JobRunning>> {
    // A job whose node went silent gives up its place.
    sqlx::query(
        "UPDATE jobs SET state = 'failed', error = $3, finished_at = reported_at + $4
         WHERE org_id = $1 AND state = 'running' AND reported_at + $4 <= $2",
    )
    .bind(job.org.0)
    .bind(job.now.0)
    .bind(JOB_NODE_STOPPED)
    .bind(lease_millis())
    .execute(&mut *conn)
    .await?;
    let running: Option<String> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE org_id = $1 AND state = 'running' LIMIT 1")
            .bind(job.org.0)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = running {
        return Ok(Err(JobRunning { id }));
    }
    let row = sqlx::query(concat!(
        "INSERT INTO jobs (id, org_id, owner_id, kind, state, total, started_at, node, reported_at)
         VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $6)
         RETURNING ",
        job_columns!()
    ))
    .bind(&job.id)
    .bind(job.org.0)
    .bind(job.owner.0)
    .bind(&job.kind)
    .bind(stored(job.total))
    .bind(job.now.0)
    .bind(node)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Ok(job_from_row(&row)?))
}

async fn job_progress(
    conn: &mut PgConnection,
    node: &str,
    org: OrgId,
    id: &str,
    done: u64,
    now: Timestamp,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE jobs SET done = LEAST($3, total), reported_at = $4
         WHERE org_id = $1 AND id = $2 AND state = 'running' AND node = $5
               AND reported_at + $6 > $4",
    )
    .bind(org.0)
    .bind(id)
    .bind(stored(done))
    .bind(now.0)
    .bind(node)
    .bind(lease_millis())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

async fn finish_job(conn: &mut PgConnection, node: &str, finish: &FinishJob) -> Result<bool> {
    let (state, error) = match &finish.end {
        JobEnd::Succeeded => (JobState::Succeeded, None),
        JobEnd::Failed(reason) => (JobState::Failed, Some(reason.as_str())),
    };
    let changed = sqlx::query(
        "UPDATE jobs SET state = $3, error = $4, done = LEAST($5, total), created = $6,
                         refused = $7, finished_at = $8, reported_at = $8
         WHERE org_id = $1 AND id = $2 AND node = $9",
    )
    .bind(finish.org.0)
    .bind(&finish.id)
    .bind(state.as_str())
    .bind(error)
    .bind(stored(finish.done))
    .bind(stored(finish.created))
    .bind(&finish.refused)
    .bind(finish.now.0)
    .bind(node)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

async fn forget_jobs(
    conn: &mut PgConnection,
    org: OrgId,
    now: Timestamp,
    kept: JobsKept,
) -> Result<u64> {
    let keep_for = i64::try_from(kept.for_.as_millis()).unwrap_or(i64::MAX);
    let since = now.0.saturating_sub(keep_for);
    let old = sqlx::query(
        "DELETE FROM jobs WHERE org_id = $1 AND (
             (state <> 'running' AND finished_at <= $2)
             OR (state = 'running' AND reported_at + $3 <= $2))",
    )
    .bind(org.0)
    .bind(since)
    .bind(lease_millis())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let beyond = sqlx::query(
        "DELETE FROM jobs WHERE org_id = $1 AND state <> 'running' AND seq NOT IN (
             SELECT seq FROM jobs WHERE org_id = $1 AND state <> 'running'
             ORDER BY seq DESC LIMIT $2)",
    )
    .bind(org.0)
    .bind(i64::from(kept.count))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(old + beyond)
}

async fn interrupt_jobs(
    conn: &mut PgConnection,
    node: &str,
    org: OrgId,
    now: Timestamp,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'failed', error = $3, finished_at = $2
         WHERE org_id = $1 AND state = 'running' AND node = $4",
    )
    .bind(org.0)
    .bind(now.0)
    .bind(JOB_INTERRUPTED_BY_RESTART)
    .bind(node)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

#[async_trait::async_trait]
impl Jobs for PgStore {
    async fn start_job(&self, job: NewJob) -> Result<std::result::Result<JobRecord, JobRunning>> {
        let node = self.node();
        self.write(Some(job.org), move |c| {
            Box::pin(async move { start_job(c, &node, &job).await })
        })
        .await
    }

    async fn job_progress(
        &self,
        org: OrgId,
        id: String,
        done: u64,
        now: Timestamp,
    ) -> Result<bool> {
        let node = self.node();
        self.write(Some(org), move |c| {
            Box::pin(async move { job_progress(c, &node, org, &id, done, now).await })
        })
        .await
    }

    async fn finish_job(&self, finish: FinishJob) -> Result<bool> {
        let node = self.node();
        self.write(Some(finish.org), move |c| {
            Box::pin(async move { finish_job(c, &node, &finish).await })
        })
        .await
    }

    async fn job(&self, org: OrgId, id: String, now: Timestamp) -> Result<Option<JobRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.0)
        .bind(&id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|row| job_from_row(&row))
            .transpose()?
            .map(|job| job.at(now)))
    }

    async fn forget_jobs(&self, org: OrgId, now: Timestamp, kept: JobsKept) -> Result<u64> {
        self.write(Some(org), move |c| {
            Box::pin(async move { forget_jobs(c, org, now, kept).await })
        })
        .await
    }

    async fn interrupt_own_jobs(&self, now: Timestamp) -> Result<u64> {
        // One write per organization, each under its organization's lock
        // as every other change to its jobs.
        let node = self.node();
        let orgs: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT org_id FROM jobs WHERE state = 'running' AND node = $1",
        )
        .bind(&*node)
        .fetch_all(self.pool())
        .await?;
        let mut interrupted = 0;
        for org in orgs.into_iter().map(OrgId) {
            let node = self.node();
            interrupted += self
                .write(Some(org), move |c| {
                    Box::pin(async move { interrupt_jobs(c, &node, org, now).await })
                })
                .await?;
        }
        Ok(interrupted)
    }
}
