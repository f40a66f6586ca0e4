//! The writer task: this node's write connection, its job queue, and group
//! commit.
//!
//! Jobs that are waiting when the writer looks share one transaction, each
//! in a savepoint of its own; every caller is answered once that
//! transaction has committed (or failed), and commit listeners hear the
//! transaction's events first, in cursor order. If the connection breaks the
//! writer connects again; the jobs of the broken transaction fail and their
//! callers may retry.

use super::PgStore;
use crate::{CommitListener, Committed, Extension, Org, Recorded, Result, StoreError};
use futures_util::future::BoxFuture;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::OrgId;
use tokio::sync::{mpsc, oneshot};

pub(super) type Listeners = Arc<parking_lot::RwLock<Vec<CommitListener>>>;

/// Values a write returns; those that carry recorded events expose them so
/// the writer can announce them after the commit.
pub trait RecordsEvents {
    fn events(&self) -> &[Recorded] {
        &[]
    }
}

impl<T> RecordsEvents for Committed<T> {
    fn events(&self) -> &[Recorded] {
        &self.events
    }
}

impl RecordsEvents for () {}
impl RecordsEvents for bool {}
impl RecordsEvents for Org {}
impl RecordsEvents for Extension {}
impl RecordsEvents for Vec<Extension> {}
impl RecordsEvents for crate::CarrierConnection {}
impl RecordsEvents for crate::BusinessNumber {}
impl RecordsEvents for Vec<crate::OutboxText> {}
impl RecordsEvents for u64 {}
impl RecordsEvents for crate::JobRecord {}
impl RecordsEvents for std::result::Result<crate::JobRecord, crate::JobRunning> {}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;

struct JobOutcome {
    ok: bool,
    events: Vec<Recorded>,
    complete: Completion,
}

/// A job, given the connection to run on, or `None` when it cannot run
/// (its transaction could not begin or already broke): it then only
/// answers its caller, with the transaction's error.
type JobFn =
    Box<dyn for<'c> FnOnce(Option<&'c mut PgConnection>) -> BoxFuture<'c, JobOutcome> + Send>;

pub(super) struct Job {
    run: JobFn,
    /// The organization whose stream the job may record events in.
    org: Option<OrgId>,
}

/// Jobs that may wait for the writer; beyond this, callers wait to enqueue.
const WRITE_QUEUE: usize = 4096;
/// Jobs in one transaction at most.
const MAX_BATCH: usize = 256;
/// A write transaction this slow is logged: every caller in it waited.
const SLOW_TRANSACTION: Duration = Duration::from_millis(200);

impl PgStore {
    /// Runs `f` inside this node's next write transaction, in a savepoint of
    /// its own, and answers once that transaction has committed.
    ///
    /// `org` is the organization whose events `f` may record (or whose rows
    /// it may lock): the transaction locks the streams of all its jobs'
    /// organizations first, in order, so writes of one organization are
    /// serialized across nodes and two nodes never wait on each other's
    /// locks in opposite orders. A job that names no organization must
    /// record no event in an existing one.
    ///
    /// ```ignore
    /// self.write(Some(org), move |c| Box::pin(async move { create(c, org).await })).await
    /// ```
    pub(super) async fn write<T, F>(&self, org: Option<OrgId>, f: F) -> Result<T>
    where
        T: RecordsEvents + Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: JobFn = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Some(conn) => f(conn).await,
                    None => Err(StoreError::Backend("the write did not run".into())),
                };
                let events = match &result {
                    Ok(value) => value.events().to_vec(),
                    Err(_) => Vec::new(),
                };
                JobOutcome {
                    ok: result.is_ok(),
                    events,
                    complete: Box::new(move |commit| {
                        // The caller may have gone away; the work is committed anyway.
                        let _ = tx.send(commit.and(result));
                    }),
                }
            })
        });
        self.jobs
            .send(Job { run, org })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Connects the writer and starts its task.
pub(super) async fn start(url: String, listeners: Listeners) -> Result<mpsc::Sender<Job>> {
    let conn = PgConnection::connect(&url)
        .await
        .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
    let (jobs, rx) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(run(url, conn, rx, listeners));
    Ok(jobs)
}

async fn run(url: String, conn: PgConnection, mut rx: mpsc::Receiver<Job>, listeners: Listeners) {
    let mut conn = Some(conn);
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match PgConnection::connect(&url).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::error!(error = %e, "the writer cannot reach PostgreSQL");
                    fail_all(&mut batch, "the database cannot be reached; try again").await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let started = std::time::Instant::now();
        let jobs = batch.len();
        let outcome = run_batch(c, &mut batch).await;
        let took = started.elapsed();
        if took >= SLOW_TRANSACTION {
            tracing::warn!(
                jobs,
                millis = took.as_millis() as u64,
                "a write transaction was slow; the database may be overloaded"
            );
        }
        let (commit, events, done) = outcome;
        if let Err(e) = &commit {
            tracing::warn!(error = %e, jobs, "a write transaction failed");
            // A connection in an unknown state is not reused.
            if let Some(c) = conn.take() {
                let _ = c.close().await;
            }
        } else if !events.is_empty() {
            let listeners = listeners.read();
            for event in &events {
                for listener in listeners.iter() {
                    listener(event);
                }
            }
        }
        for complete in done {
            complete(commit.clone());
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
    tracing::debug!("postgres writer stopped");
}

type BatchOutcome = (Result<()>, Vec<Recorded>, Vec<Completion>);

async fn run_batch(conn: &mut PgConnection, batch: &mut Vec<Job>) -> BatchOutcome {
    let mut events = Vec::new();
    let mut done: Vec<Completion> = Vec::with_capacity(batch.len());
    if let Err(e) = sqlx::raw_sql("BEGIN").execute(&mut *conn).await {
        for job in batch.drain(..) {
            done.push((job.run)(None).await.complete);
        }
        return (Err(StoreError::Backend(e.to_string())), events, done);
    }
    let mut broken: Option<StoreError> = None;
    let orgs: BTreeSet<i64> = batch.iter().filter_map(|j| j.org).map(|o| o.0).collect();
    if !orgs.is_empty() {
        let orgs: Vec<i64> = orgs.into_iter().collect();
        // Sorted, so that every node takes them in the same order.
        if let Err(e) = sqlx::query(
            "SELECT org_id FROM org_streams WHERE org_id = ANY($1) ORDER BY org_id FOR UPDATE",
        )
        .bind(&orgs)
        .fetch_all(&mut *conn)
        .await
        {
            broken = Some(StoreError::Backend(e.to_string()));
        }
    }
    for job in batch.drain(..) {
        if broken.is_some() {
            done.push((job.run)(None).await.complete);
            continue;
        }
        if let Err(e) = sqlx::raw_sql("SAVEPOINT job").execute(&mut *conn).await {
            broken = Some(StoreError::Backend(e.to_string()));
            done.push((job.run)(None).await.complete);
            continue;
        }
        let outcome = (job.run)(Some(&mut *conn)).await;
        let end = if outcome.ok {
            sqlx::raw_sql("RELEASE job").execute(&mut *conn).await
        } else {
            sqlx::raw_sql("ROLLBACK TO job; RELEASE job")
                .execute(&mut *conn)
                .await
        };
        match end {
            Ok(_) if outcome.ok => events.extend(outcome.events),
            Ok(_) => {}
            Err(e) => broken = Some(StoreError::Backend(e.to_string())),
        }
        done.push(outcome.complete);
    }
    let commit = match broken {
        Some(e) => {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            Err(StoreError::Backend(format!(
                "a write failed halfway ({e}); the writes stored with it were undone, try again"
            )))
        }
        None => sqlx::raw_sql("COMMIT")
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(|e| StoreError::Backend(e.to_string())),
    };
    if commit.is_err() {
        events.clear();
    }
    (commit, events, done)
}

/// Answers every job of a batch that could not run with `why`.
async fn fail_all(batch: &mut Vec<Job>, why: &str) {
    for job in batch.drain(..) {
        let outcome = (job.run)(None).await;
        (outcome.complete)(Err(StoreError::Backend(why.to_owned())));
    }
}
