//! The writer task: this node's write connection, its job queue, and group
//! commit.
//!
//! Jobs that are waiting when the writer looks share one transaction, each
//! in a savepoint of its own; every caller is answered once that
//! transaction has committed (or failed), and commit listeners hear the
//! transaction's events first, in cursor order. If the connection breaks
//! the writer connects again; the jobs of the broken transaction fail and
//! their callers may retry.
//!
//! Consecutive chat sends are stored together, with a few statements
//! (`sends::post_chats`) rather than a few each: statements on one
//! connection run one after the other, each waiting for the database's
//! answer, so their count per send bounds how many sends a node stores a
//! second.

use super::PgStore;
use super::sends;
use crate::{
    CommitListener, Committed, NewMessage, Posted, Recorded, RecordsEvents, Result, StoreError,
};
use futures_util::future::BoxFuture;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::OrgId;
use tokio::sync::{mpsc, oneshot};

pub(super) type Listeners = Arc<parking_lot::RwLock<Vec<CommitListener>>>;

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
    work: Work,
    /// The organization whose stream the job may record events in.
    org: Option<OrgId>,
}

enum Work {
    Run(JobFn),
    /// A message sent in a chat, which may be stored with others.
    Send(Box<ChatSend>),
}

struct ChatSend {
    new: NewMessage,
    reply: oneshot::Sender<Result<Committed<Posted>>>,
}

impl Work {
    /// Answers the caller with `why` (the job did not run).
    async fn fail(self, why: StoreError) {
        match self {
            Work::Run(run) => (run(None).await.complete)(Err(why)),
            Work::Send(send) => {
                let _ = send.reply.send(Err(why));
            }
        }
    }
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
            .send(Job {
                work: Work::Run(run),
                org,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Sends a message without images in `org`: as `sends::post_message`
    /// in a write of its own would, but stored together with the chat sends
    /// waiting beside it.
    pub(super) async fn post_chat(&self, org: OrgId, new: NewMessage) -> Result<Committed<Posted>> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                work: Work::Send(Box::new(ChatSend { new, reply })),
                org: Some(org),
            })
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
        let why = StoreError::Backend(e.to_string());
        for job in batch.drain(..) {
            job.work.fail(why.clone()).await;
        }
        return (Err(why), events, done);
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
    let mut sends: Vec<ChatSend> = Vec::new();
    for job in batch.drain(..) {
        if let Some(e) = &broken {
            job.work.fail(e.clone()).await;
            continue;
        }
        match job.work {
            Work::Send(send) => sends.push(*send),
            Work::Run(run) => {
                if !sends.is_empty() {
                    let outcome = chat_sends(conn, std::mem::take(&mut sends)).await;
                    broken = settle(outcome, &mut events, &mut done);
                    if let Some(e) = &broken {
                        (run(None).await.complete)(Err(e.clone()));
                        continue;
                    }
                }
                let outcome = run_job(conn, run).await;
                broken = settle(outcome, &mut events, &mut done);
            }
        }
    }
    if !sends.is_empty() {
        if let Some(e) = &broken {
            for send in sends {
                let _ = send.reply.send(Err(e.clone()));
            }
        } else {
            let outcome = chat_sends(conn, sends).await;
            broken = settle(outcome, &mut events, &mut done);
        }
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

/// What running jobs added to a transaction: their events and completions
/// when their savepoints ended well, and the error that broke the
/// transaction if one did (the jobs are answered all the same).
struct Ran {
    events: Vec<Recorded>,
    done: Vec<Completion>,
    broken: Option<StoreError>,
}

fn settle(ran: Ran, events: &mut Vec<Recorded>, done: &mut Vec<Completion>) -> Option<StoreError> {
    events.extend(ran.events);
    done.extend(ran.done);
    ran.broken
}

/// Runs one job in a savepoint of its own.
async fn run_job(conn: &mut PgConnection, run: JobFn) -> Ran {
    if let Err(e) = sqlx::raw_sql("SAVEPOINT job").execute(&mut *conn).await {
        let e = StoreError::Backend(e.to_string());
        let outcome = run(None).await;
        return Ran {
            events: Vec::new(),
            done: vec![outcome.complete],
            broken: Some(e),
        };
    }
    let outcome = run(Some(&mut *conn)).await;
    let end = if outcome.ok {
        sqlx::raw_sql("RELEASE job").execute(&mut *conn).await
    } else {
        sqlx::raw_sql("ROLLBACK TO job; RELEASE job")
            .execute(&mut *conn)
            .await
    };
    match end {
        Ok(_) => Ran {
            events: if outcome.ok {
                outcome.events
            } else {
                Vec::new()
            },
            done: vec![outcome.complete],
            broken: None,
        },
        Err(e) => Ran {
            events: Vec::new(),
            done: vec![outcome.complete],
            broken: Some(StoreError::Backend(e.to_string())),
        },
    }
}

/// Stores consecutive chat sends: together where they can be
/// (`sends::post_chats`, in one savepoint), and the rest one by one,
/// after them, as `sends::post_message` does. Every send of one
/// conversation goes the same way, so their order holds.
async fn chat_sends(conn: &mut PgConnection, sends: Vec<ChatSend>) -> Ran {
    let mut ran = Ran {
        events: Vec::new(),
        done: Vec::with_capacity(sends.len()),
        broken: None,
    };
    let mut alone: Vec<ChatSend> = Vec::new();
    if sends.len() == 1 {
        alone = sends;
    } else {
        let together = together(conn, &sends).await;
        for (send, outcome) in sends.into_iter().zip(together) {
            match outcome {
                Some(committed) => {
                    ran.events.extend(committed.events.iter().cloned());
                    let reply = send.reply;
                    ran.done.push(Box::new(move |commit| {
                        let _ = reply.send(commit.map(|()| committed));
                    }));
                }
                None => alone.push(send),
            }
        }
    }
    for send in alone {
        let ChatSend { new, reply } = send;
        let run: JobFn = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Some(conn) => sends::post_message(conn, &new).await,
                    None => Err(StoreError::Backend("the write did not run".into())),
                };
                let events = match &result {
                    Ok(value) => value.events.clone(),
                    Err(_) => Vec::new(),
                };
                JobOutcome {
                    ok: result.is_ok(),
                    events,
                    complete: Box::new(move |commit| {
                        let _ = reply.send(commit.and(result));
                    }),
                }
            })
        });
        if let Some(e) = &ran.broken {
            (run(None).await.complete)(Err(e.clone()));
            continue;
        }
        let one = run_job(conn, run).await;
        ran.events.extend(one.events);
        ran.done.extend(one.done);
        ran.broken = one.broken;
    }
    ran
}

/// `sends::post_chats` in a savepoint: when it fails, nothing of it
/// stays and every send goes alone.
async fn together(conn: &mut PgConnection, sends: &[ChatSend]) -> Vec<Option<Committed<Posted>>> {
    let nothing = || sends.iter().map(|_| None).collect();
    if sqlx::raw_sql("SAVEPOINT chats")
        .execute(&mut *conn)
        .await
        .is_err()
    {
        return nothing();
    }
    let news: Vec<&NewMessage> = sends.iter().map(|s| &s.new).collect();
    match sends::post_chats(conn, &news).await {
        Ok(outcomes) => match sqlx::raw_sql("RELEASE chats").execute(&mut *conn).await {
            Ok(_) => outcomes,
            Err(_) => nothing(),
        },
        Err(e) => {
            tracing::warn!(error = %e, sends = sends.len(), "chat sends stored together failed; storing them one by one");
            let _ = sqlx::raw_sql("ROLLBACK TO chats; RELEASE chats")
                .execute(&mut *conn)
                .await;
            nothing()
        }
    }
}

/// Answers every job of a batch that could not run with `why`.
async fn fail_all(batch: &mut Vec<Job>, why: &str) {
    for job in batch.drain(..) {
        job.work.fail(StoreError::Backend(why.to_owned())).await;
    }
}
