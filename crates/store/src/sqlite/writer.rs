//! The writer thread: the only write connection, its job queue, and group
//! commit.
//!
//! Jobs that are waiting when the writer looks share one transaction; each
//! caller is answered once that transaction has committed (or failed), and
//! commit listeners hear the transaction's events first. How a job is kept
//! apart from the others in its transaction is its [`Isolation`].

use super::checkpoint::WalState;
use super::{RecentSends, SqliteStore, backend};
use crate::{CommitListener, Recorded, RecordsEvents, Result, StoreError};
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(super) type Listeners = Arc<parking_lot::RwLock<Vec<CommitListener>>>;

type Completion = Box<dyn FnOnce(Result<()>) + Send>;

/// What a job leaves behind: whether it succeeded (else what it changed is
/// undone), the events it recorded, and how to answer its caller.
struct JobOutcome {
    ok: bool,
    events: Vec<Recorded>,
    complete: Completion,
}

type JobFn = Box<dyn FnOnce(&Connection, &mut RecentSends) -> JobOutcome + Send>;

/// How a job's failure is kept from the other jobs of its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// The job may fail after it has changed something, so it runs in a
    /// savepoint of its own that its failure rolls back.
    Savepoint,
    /// The job checks everything before it changes anything, and runs
    /// without a savepoint (two statements and a copy of every page it
    /// touches fewer: what sends need). If it fails after a change after
    /// all, its whole transaction fails.
    Unguarded,
}

/// Work for the writer, run inside its next transaction.
pub(super) struct Job {
    run: JobFn,
    isolation: Isolation,
}

/// Jobs that may wait for the writer; beyond this, callers wait to enqueue.
pub(super) const WRITE_QUEUE: usize = 4096;

/// A write transaction this slow is logged: every send in it waited.
pub(super) const SLOW_TRANSACTION: std::time::Duration = std::time::Duration::from_millis(100);

impl SqliteStore {
    /// Runs `f` inside the next write transaction, in a savepoint of its
    /// own, and answers once that transaction has committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: RecordsEvents + Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.enqueue(move |conn, _| f(conn), Isolation::Savepoint)
            .await
    }

    /// [`Self::write`] for a send, which also reads and records the
    /// idempotency keys of recent sends. A send checks everything before it
    /// writes, so it runs [`Isolation::Unguarded`].
    pub(super) async fn write_send<T, F>(&self, f: F) -> Result<T>
    where
        T: RecordsEvents + Send + 'static,
        F: FnOnce(&Connection, &mut RecentSends) -> Result<T> + Send + 'static,
    {
        self.enqueue(f, Isolation::Unguarded).await
    }

    async fn enqueue<T, F>(&self, f: F, isolation: Isolation) -> Result<T>
    where
        T: RecordsEvents + Send + 'static,
        F: FnOnce(&Connection, &mut RecentSends) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: JobFn = Box::new(move |conn, recent_sends| {
            let result = f(conn, recent_sends);
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
        });
        let job = Job { run, isolation };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer thread's state: the only write connection, and what it
/// remembers between transactions.
pub(super) struct Writer {
    conn: Connection,
    recent_sends: RecentSends,
    listeners: Listeners,
}

impl Writer {
    pub(super) fn new(conn: Connection, recent_sends: RecentSends, listeners: Listeners) -> Self {
        Self {
            conn,
            recent_sends,
            listeners,
        }
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Job>, max_batch: usize, wal: &WalState) {
        let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
        let mut done: Vec<Completion> = Vec::with_capacity(max_batch);
        let mut events: Vec<Recorded> = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let jobs = batch.len();
            if let Err(e) = run_cached(&self.conn, "BEGIN IMMEDIATE") {
                let err = backend(e);
                for job in batch.drain(..) {
                    let outcome = self.run_rolled_back(job.run);
                    (outcome.complete)(Err(err.clone()));
                }
                continue;
            }
            let mut broken = false;
            for job in batch.drain(..) {
                // Once the transaction is broken nothing more may be kept:
                // SQLite may even have ended it, and a statement outside a
                // transaction commits on its own.
                let outcome = match (broken, job.isolation) {
                    (true, _) => self.run_rolled_back(job.run),
                    (false, Isolation::Savepoint) => self.run_in_savepoint(job.run),
                    (false, Isolation::Unguarded) => self.run_unguarded(job.run, &mut broken),
                };
                broken |= self.conn.is_autocommit();
                if outcome.ok {
                    events.extend(outcome.events);
                }
                done.push(outcome.complete);
            }
            let commit = if broken {
                Err(StoreError::Backend(
                    "a write failed halfway; the writes stored with it were undone, try again"
                        .into(),
                ))
            } else {
                run_cached(&self.conn, "COMMIT").map_err(backend)
            };
            let took = started.elapsed();
            if took >= SLOW_TRANSACTION {
                // Every send in the batch waited this long: worth knowing.
                tracing::warn!(
                    jobs,
                    millis = took.as_millis() as u64,
                    "a write transaction was slow; the disk may be overloaded"
                );
            }
            if commit.is_ok() {
                self.recent_sends.committed();
                wal.note_commit();
            } else {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.recent_sends.rolled_back();
                events.clear();
            }
            // Listeners hear of events in cursor order, after the commit and
            // before any caller is answered.
            if !events.is_empty() {
                let listeners = self.listeners.read();
                for event in &events {
                    for listener in listeners.iter() {
                        listener(event);
                    }
                }
                events.clear();
            }
            for complete in done.drain(..) {
                complete(commit.clone());
            }
            wal.start_over_if_asked(&self.conn);
        }
        tracing::debug!("sqlite writer stopped");
    }

    /// A job whose transaction could not begin, or broke, still owes its
    /// caller an answer, and its completion is only reachable by running it:
    /// run it in a savepoint that is always rolled back, so it changes
    /// nothing.
    fn run_rolled_back(&mut self, job: JobFn) -> JobOutcome {
        let mark = self.recent_sends.mark();
        let savepoint = self.conn.execute_batch("SAVEPOINT job").is_ok();
        let out = job(&self.conn, &mut self.recent_sends);
        if savepoint {
            let _ = self.conn.execute_batch("ROLLBACK TO job; RELEASE job");
        }
        self.recent_sends.undo_to(mark);
        out
    }

    /// Runs an [`Isolation::Unguarded`] job. If it fails after a change
    /// after all, the transaction is `broken`: it cannot be committed.
    fn run_unguarded(&mut self, job: JobFn, broken: &mut bool) -> JobOutcome {
        let before = self.conn.total_changes();
        let outcome = job(&self.conn, &mut self.recent_sends);
        if !outcome.ok && self.conn.total_changes() != before {
            *broken = true;
        }
        outcome
    }

    fn run_in_savepoint(&mut self, job: JobFn) -> JobOutcome {
        let mark = self.recent_sends.mark();
        let outcome = match run_cached(&self.conn, "SAVEPOINT job") {
            Err(e) => failed(job(&self.conn, &mut self.recent_sends), backend(e)),
            Ok(()) => {
                let outcome = job(&self.conn, &mut self.recent_sends);
                let end = if outcome.ok {
                    run_cached(&self.conn, "RELEASE job")
                } else {
                    run_cached(&self.conn, "ROLLBACK TO job")
                        .and_then(|()| run_cached(&self.conn, "RELEASE job"))
                };
                match end {
                    Ok(()) => outcome,
                    Err(e) => failed(outcome, backend(e)),
                }
            }
        };
        if !outcome.ok {
            self.recent_sends.undo_to(mark);
        }
        outcome
    }
}

/// A job's outcome turned into the failure `err`.
fn failed(outcome: JobOutcome, err: StoreError) -> JobOutcome {
    let complete = outcome.complete;
    JobOutcome {
        ok: false,
        events: Vec::new(),
        complete: Box::new(move |_| complete(Err(err))),
    }
}

/// Transaction control runs thousands of times a second: keep it prepared.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fresh_store, send, two_people_chatting};
    use super::super::{IdempotencyWindow, SqliteOptions};
    use super::*;
    use crate::{Conversations, Directory, NewExtension};
    use switchboard_domain::{
        ConversationId, DisplayName, ExtensionNumber, MessageId, Role, Timestamp,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_retried_after_a_restart_gets_the_first_message_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard.db");
        let (people, chat, first) = {
            let store = SqliteStore::open(SqliteOptions::new(&path)).expect("open");
            let (people, chat) = two_people_chatting(&store).await;
            let first = store
                .post_message(send(&people[0], chat, Some("retry-me"), 1))
                .await
                .expect("first attempt");
            (people, chat, first.value.message)
        };
        let store = SqliteStore::open(SqliteOptions::new(&path)).expect("reopen");
        let retry = store
            .post_message(send(&people[0], chat, Some("retry-me"), 2))
            .await
            .expect("retry");
        assert!(retry.value.replayed);
        assert_eq!(retry.value.message, first);
        let other = store
            .post_message(send(&people[1], chat, Some("retry-me"), 3))
            .await
            .expect("another sender's equal key");
        assert!(!other.value.replayed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_with_one_key_in_one_transaction_store_one_message() {
        let (_dir, store) = fresh_store();
        let (people, chat) = two_people_chatting(&store).await;
        // Queued together, so the writer takes many of them in one batch.
        let mut attempts = tokio::task::JoinSet::new();
        for n in 0..200 {
            let (store, new) = (Arc::clone(&store), send(&people[0], chat, Some("once"), n));
            attempts.spawn(async move { store.post_message(new).await });
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut new_messages = 0;
        while let Some(done) = attempts.join_next().await {
            let posted = done.expect("task").expect("stored");
            ids.insert(posted.value.message.id);
            new_messages += usize::from(!posted.value.replayed);
        }
        assert_eq!(ids.len(), 1, "every attempt got the same message");
        assert_eq!(new_messages, 1);
    }

    async fn stored_ids(
        store: &SqliteStore,
        chat: ConversationId,
    ) -> std::collections::BTreeSet<MessageId> {
        store
            .read(move |c| {
                let mut stmt = c.prepare("SELECT id FROM messages WHERE conversation_id = ?1")?;
                let ids = stmt
                    .query_map([chat.0], |r| Ok(MessageId(r.get(0)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(ids)
            })
            .await
            .expect("stored messages")
    }

    /// Sends run without savepoints; a send refused before it writes must
    /// not take the sends stored with it down.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_sends_leave_the_sends_of_their_transaction_alone() {
        let (_dir, store) = fresh_store();
        let (people, chat) = two_people_chatting(&store).await;
        let outsider = store
            .create_extensions(
                people[0].org_id,
                vec![NewExtension {
                    number: ExtensionNumber::parse("209").expect("number"),
                    name: DisplayName::parse("Outsider").expect("name"),
                    role: Role::Member,
                    password_hash: String::new(),
                }],
                Timestamp(0),
            )
            .await
            .expect("outsider")
            .remove(0);
        let mut attempts = tokio::task::JoinSet::new();
        for n in 0..400 {
            let sender = if n % 2 == 0 { &people[0] } else { &outsider };
            let key = format!("send-{n}");
            let (store, new) = (Arc::clone(&store), send(sender, chat, Some(&key), n));
            attempts.spawn(async move { (n, store.post_message(new).await) });
        }
        let mut stored = 0;
        while let Some(done) = attempts.join_next().await {
            let (n, posted) = done.expect("task");
            if n % 2 == 0 {
                posted.expect("a participant's send is stored");
                stored += 1;
            } else {
                assert!(matches!(posted, Err(StoreError::NotFound(_))), "{posted:?}");
            }
        }
        assert_eq!(stored, 200);
        assert_eq!(stored_ids(&store, chat).await.len(), 200);
    }

    /// A job without a savepoint that fails after changing something, or
    /// under which the transaction ended (as SQLite ends it on some I/O
    /// errors), must not leave its change behind, nor let anything stored
    /// with it be reported as failed yet kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_failing_halfway_fails_its_whole_transaction() {
        let (_dir, store) = fresh_store();
        let (people, chat) = two_people_chatting(&store).await;
        let mut attempts = tokio::task::JoinSet::new();
        for n in 0..300 {
            let (sending, new) = (Arc::clone(&store), send(&people[0], chat, None, n));
            attempts.spawn(async move { Some(sending.post_message(new).await.map(|p| p.value)) });
            if n % 50 == 25 {
                let store = Arc::clone(&store);
                attempts.spawn(async move {
                    let halfway = store
                        .write_send(move |conn, _| -> Result<()> {
                            if n % 100 == 75 {
                                // What SQLite does on some I/O errors.
                                conn.execute_batch("ROLLBACK")?;
                            } else {
                                conn.execute(
                                    "INSERT INTO organizations (slug, name, created_at)
                                     VALUES (?1, 'Halfway', 0)",
                                    [format!("halfway-{n}")],
                                )?;
                            }
                            Err(StoreError::Backend("failed halfway".into()))
                        })
                        .await;
                    assert!(halfway.is_err());
                    None
                });
            }
        }
        let mut acknowledged = std::collections::BTreeSet::new();
        let mut refused = 0;
        while let Some(done) = attempts.join_next().await {
            match done.expect("task") {
                Some(Ok(posted)) => {
                    acknowledged.insert(posted.message.id);
                }
                Some(Err(_)) => refused += 1,
                None => {}
            }
        }
        let orgs = store.list_orgs().await.expect("orgs");
        assert!(
            orgs.iter().all(|o| !o.slug.as_str().starts_with("halfway")),
            "a failed job's change was committed"
        );
        assert_eq!(
            stored_ids(&store, chat).await,
            acknowledged,
            "stored exactly what was acknowledged"
        );
        assert_eq!(acknowledged.len() + refused, 300);
    }

    /// When SQLite ends the transaction under a job (as it does on some I/O
    /// errors), the jobs after it in the batch must not run outside a
    /// transaction, where each statement would commit on its own while
    /// their callers are told they failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_runs_outside_a_transaction_that_sqlite_ended() {
        let (_dir, store) = fresh_store();
        let (people, chat) = two_people_chatting(&store).await;
        // Hold the writer until every job below is queued, so they share
        // one transaction.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let holding = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .write(move |_| {
                        let _ = started.send(());
                        let _ = held.recv();
                        Ok(())
                    })
                    .await
            })
        };
        running.await.expect("the writer runs the holding job");
        let mut attempts = tokio::task::JoinSet::new();
        let queued = |store: &SqliteStore| WRITE_QUEUE - store.jobs.capacity();
        for n in 0..21 {
            let store_for_job = Arc::clone(&store);
            let before = queued(&store);
            if n == 10 {
                attempts.spawn(async move {
                    store_for_job
                        .write_send(|conn, _| -> Result<()> {
                            conn.execute_batch("ROLLBACK")?;
                            Err(StoreError::Backend("the disk failed".into()))
                        })
                        .await
                        .map(|()| None)
                });
            } else {
                let new = send(&people[0], chat, None, n);
                attempts.spawn(async move {
                    store_for_job
                        .post_message(new)
                        .await
                        .map(|p| Some(p.value.message.id))
                });
            }
            // In order: each job is queued before the next is sent.
            while queued(&store) == before {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).expect("release the writer");
        holding.await.expect("task").expect("the holding job");
        let mut acknowledged = std::collections::BTreeSet::new();
        while let Some(done) = attempts.join_next().await {
            if let Ok(Some(id)) = done.expect("task") {
                acknowledged.insert(id);
            }
        }
        assert_eq!(
            stored_ids(&store, chat).await,
            acknowledged,
            "stored exactly what was acknowledged"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_is_remembered_for_the_window_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteOptions {
            idempotency: IdempotencyWindow {
                millis: 60_000,
                capacity: 100,
            },
            ..SqliteOptions::new(dir.path().join("switchboard.db"))
        };
        let store = SqliteStore::open(options).expect("open");
        let (people, chat) = two_people_chatting(&store).await;
        let first = store
            .post_message(send(&people[0], chat, Some("k"), 0))
            .await
            .expect("first");
        let within = store
            .post_message(send(&people[0], chat, Some("k"), 60_000))
            .await
            .expect("a minute later");
        assert_eq!(within.value.message.id, first.value.message.id);
        // The window ends at the newest remembered send.
        store
            .post_message(send(&people[1], chat, Some("later"), 60_001))
            .await
            .expect("a later send moves the window");
        let after = store
            .post_message(send(&people[0], chat, Some("k"), 60_002))
            .await
            .expect("past the window");
        assert!(!after.value.replayed);
        assert_ne!(after.value.message.id, first.value.message.id);
    }
}
