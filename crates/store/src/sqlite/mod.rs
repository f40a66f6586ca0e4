//! The embedded SQLite store.
//!
//! One writer thread owns the only write connection. Writes arrive as jobs on
//! a bounded channel; the writer runs every job that is waiting inside one
//! transaction, commits, and only then answers each caller. One failing job
//! does not undo the others: each runs in its own savepoint, except sends,
//! which check everything before they write (a send that fails after writing
//! after all fails its whole transaction instead). That is group
//! commit: many sends share one fsync, and none is acknowledged before its
//! commit. Reads run on a small pool of read-only connections in WAL mode,
//! which never block the writer.

mod conversations;
mod directory;
mod recent_sends;
mod schema;
mod wal_read_ahead;

pub use recent_sends::IdempotencyWindow;
use recent_sends::RecentSends;
use wal_read_ahead::WalReadAhead;

use crate::{Result, StoreError};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// How hard SQLite works to keep a commit through a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// WAL with `synchronous=NORMAL`: a commit survives the process being
    /// killed; the last commits may be lost if the machine loses power.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced; survives power loss.
    Full,
}

impl Synchronous {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Self::Normal),
            "full" => Some(Self::Full),
            _ => None,
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// Read connections; reads beyond this wait for one to free up.
    pub readers: usize,
    /// Most jobs committed together in one transaction.
    pub max_batch: usize,
    /// WAL frames (pages) after which the WAL should start over. Starting
    /// over pauses commits for two fsyncs, so not too often; until then
    /// the WAL grows.
    pub wal_restart_frames: i64,
    /// WAL frames (pages) the WAL may hold before checkpoints copy them to
    /// the database file. A checkpoint that copies the whole WAL lets the
    /// next commit start it over, and that commit then waits for an fsync
    /// of the WAL's new header: with a checkpoint every 100 ms on a lightly
    /// loaded server, about one commit in six (W4's rate) paid for one.
    pub wal_checkpoint_frames: i64,
    /// How long and how many idempotency keys of sends are remembered.
    pub idempotency: IdempotencyWindow,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            synchronous: Synchronous::Normal,
            readers: 4,
            max_batch: 512,
            wal_restart_frames: 16 * 1024,
            wal_checkpoint_frames: 1024,
            idempotency: IdempotencyWindow::default(),
        }
    }
}

type Listeners = Arc<parking_lot::RwLock<Vec<CommitListener>>>;

/// Values a write returns; those that carry recorded events expose them so
/// the writer can announce them after the commit.
pub(crate) trait RecordsEvents {
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
impl RecordsEvents for Org {}
impl RecordsEvents for Extension {}
impl RecordsEvents for Vec<Extension> {}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;

/// What a job leaves behind: whether it succeeded (else what it changed is
/// undone), the events it recorded, and how to answer its caller.
struct JobOutcome {
    ok: bool,
    events: Vec<Recorded>,
    complete: Completion,
}

type JobFn = Box<dyn FnOnce(&Connection, &mut RecentSends) -> JobOutcome + Send>;

/// Work for the writer, run inside its next transaction.
struct Job {
    run: JobFn,
    /// Whether the job may fail after it has changed something, and so
    /// runs in a savepoint of its own that its failure rolls back. A job
    /// without one must fail only before changing anything; if it fails
    /// after a change after all, its whole transaction fails.
    savepoint: bool,
}

/// Jobs that may wait for the writer; beyond this, callers wait to enqueue.
const WRITE_QUEUE: usize = 4096;

pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    listeners: Listeners,
    _checkpointer: Option<Checkpointer>,
    readers: Arc<ReadPool>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        backend(e)
    }
}

/// Page cache of each connection, in KiB. Larger than SQLite's 2 MiB so hot
/// index pages stay cached, but not much larger: SQLite walks the whole page
/// cache's hash table at the end of a write transaction in which a B-tree
/// split renumbered pages (it moves one through the number of the locking
/// page, 1 GiB / page size + 1, as if the cache held a page past the end of
/// the file). Under load that is most transactions of a database smaller
/// than 1 GiB, and at 64 MiB the walk cost the writer 6 % of its time
/// (measured with perf under W2).
const CACHE_KIB: i64 = 8 * 1024;

fn open_connection(path: &Path, flags: OpenFlags, sync: Synchronous) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA foreign_keys=ON; \
         PRAGMA temp_store=MEMORY; PRAGMA cache_size=-{CACHE_KIB};",
        sync.pragma()
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database, applies migrations and starts
    /// the writer thread.
    pub fn open(options: SqliteOptions) -> Result<Self> {
        let write_flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = open_connection(&options.path, write_flags, options.synchronous)?;
        schema::migrate(&conn)?;
        let recent_sends = RecentSends::load(&conn, options.idempotency)?;
        // Checkpoints run on their own thread (below), off the commit path,
        // and less often: hot pages written many times between checkpoints
        // are copied to the database file once.
        conn.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
        // Set after the pragma, which clears it.
        conn.wal_hook(Some(note_wal_frames));
        let wal = Arc::new(WalState::default());
        let checkpointer = Checkpointer::start(&options, Arc::clone(&wal))?;

        let (jobs, rx) = mpsc::channel::<Job>(WRITE_QUEUE);
        let max_batch = options.max_batch.max(1);
        let listeners: Listeners = Arc::default();
        let writer_listeners = Arc::clone(&listeners);
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let writer = Writer {
                    conn,
                    recent_sends,
                    listeners: writer_listeners,
                };
                writer.run(rx, max_batch, &wal);
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;

        let readers = options.readers.max(1);
        Ok(Self {
            jobs,
            listeners,
            _checkpointer: Some(checkpointer),
            readers: Arc::new(ReadPool {
                path: options.path,
                idle: Mutex::new(Vec::with_capacity(readers)),
                permits: Semaphore::new(readers),
            }),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Runs `f` inside the next write transaction and answers once that
    /// transaction has committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: RecordsEvents + Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.enqueue(move |conn, _| f(conn), true).await
    }

    /// [`Self::write`] for a send, which also reads and records the
    /// idempotency keys of recent sends. A send checks everything before it
    /// writes, so it runs without a savepoint: two statements and a copy of
    /// every page it touches fewer per message (2–6 % of the server's CPU
    /// at 20,000 msg/s).
    async fn write_send<T, F>(&self, f: F) -> Result<T>
    where
        T: RecordsEvents + Send + 'static,
        F: FnOnce(&Connection, &mut RecentSends) -> Result<T> + Send + 'static,
    {
        self.enqueue(f, false).await
    }

    async fn enqueue<T, F>(&self, f: F, savepoint: bool) -> Result<T>
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
        let job = Job { run, savepoint };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection on the blocking thread pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(&self.readers);
        let result = tokio::task::spawn_blocking(move || {
            let conn = match pool.idle.lock().pop() {
                Some(c) => c,
                None => open_connection(
                    &pool.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    Synchronous::Normal,
                )?,
            };
            let result = f(&conn);
            pool.idle.lock().push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?;
        drop(permit);
        result
    }
}

/// The writer thread's state: the only write connection, and what it
/// remembers between transactions.
struct Writer {
    conn: Connection,
    recent_sends: RecentSends,
    listeners: Listeners,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>, max_batch: usize, wal: &WalState) {
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
                let outcome = if broken {
                    self.run_rolled_back(job.run)
                } else if job.savepoint {
                    self.run_in_savepoint(job.run)
                } else {
                    self.run_unguarded(job.run, &mut broken)
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
                wal.frames.store(WAL_FRAMES_HERE.get(), Ordering::Relaxed);
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
            if wal.full.load(Ordering::Relaxed) {
                let started = std::time::Instant::now();
                if finish_checkpoint(&self.conn) {
                    wal.full.store(false, Ordering::Relaxed);
                }
                let took = started.elapsed();
                if took >= SLOW_TRANSACTION {
                    tracing::warn!(
                        millis = took.as_millis() as u64,
                        "starting the WAL over was slow; the disk may be overloaded"
                    );
                }
            }
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

    /// Runs a job that fails only before it changes anything. If it fails
    /// after a change after all, the transaction is `broken`: it cannot be
    /// committed.
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

/// Copies what the checkpointer has not yet copied, from the writer, between
/// two transactions: with no frame being appended meanwhile the checkpoint
/// can complete, and SQLite then starts the next transaction at the
/// beginning of the WAL again. Without this the WAL never wraps under a
/// steady stream of commits and every commit writes into new file space,
/// which the kernel must allocate and zero first (a third of the writer's
/// time under W2). The checkpointer has already copied all but the last
/// moment's frames; what the pause costs is mostly its two fsyncs (a few
/// milliseconds on a busy disk). True when the WAL was emptied.
fn finish_checkpoint(conn: &Connection) -> bool {
    checkpoint(conn).is_some_and(|(frames, copied)| frames == copied)
}

/// What the writer and the checkpointer tell each other about the WAL.
#[derive(Default)]
struct WalState {
    /// Frames in the WAL after the writer's last commit (including those
    /// already copied to the database file; fewer once it started over).
    frames: AtomicI64,
    /// Set by the checkpointer: the writer should finish the checkpoint so
    /// that the WAL starts over.
    full: AtomicBool,
}

thread_local! {
    /// Frames in the WAL after this thread's last commit, as SQLite's WAL
    /// hook reported them (the hook is a plain function, so the writer
    /// collects the figure from here).
    static WAL_FRAMES_HERE: Cell<i64> = const { Cell::new(0) };
}

/// The write connection's WAL hook: SQLite calls it after every commit.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES_HERE.set(i64::from(frames));
    Ok(())
}

/// A PASSIVE checkpoint: the frames in the WAL and how many of them are
/// now in the database file. `None` when another checkpoint was running.
fn checkpoint(conn: &Connection) -> Option<(i64, i64)> {
    let pass = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match pass {
        Ok((0, frames, copied)) => Some((frames, copied)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "wal checkpoint failed");
            None
        }
    }
}

/// A write transaction this slow is logged: every send in it waited.
const SLOW_TRANSACTION: std::time::Duration = std::time::Duration::from_millis(100);

/// Transaction control runs thousands of times a second: keep it prepared.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Copies the WAL back into the database file every
/// [`CHECKPOINT_INTERVAL`], on its own connection and thread, once it holds
/// `wal_checkpoint_frames`. PASSIVE never waits for readers or the writer;
/// what it cannot copy now it copies next time. Once the WAL holds
/// `wal_restart_frames` it asks the writer to copy the last few frames
/// itself, so that the WAL starts over.
///
/// Before asking, it flushes the database file to disk. SQLite syncs the
/// database only when a checkpoint completes, which is the writer's: left
/// to it, that fsync would write out everything the passes copied since the
/// WAL last started over (8–16 ms at 20k msg/s, every send waiting),
/// where now it writes the last few pages.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Looks at the WAL finished so far.
    #[cfg(test)]
    turns: tokio::sync::watch::Receiver<u64>,
}

/// Often enough that the writer's share of a checkpoint stays small, rarely
/// enough that a page written many times in between is copied once.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Most frames left for the writer to copy when it finishes a checkpoint;
/// copying them pauses its commits, so the checkpointer catches up first.
const WRITER_SHARE: i64 = 256;

impl Checkpointer {
    fn start(options: &SqliteOptions, wal: Arc<WalState>) -> Result<Self> {
        let conn = open_connection(
            &options.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options.synchronous,
        )?;
        let restart_frames = options.wal_restart_frames;
        let checkpoint_frames = options.wal_checkpoint_frames;
        #[cfg(test)]
        let (counted, turns) = tokio::sync::watch::channel(0u64);
        conn.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
        // Read-only is enough to flush a file's pages; nothing is written
        // through this handle.
        let database = std::fs::File::open(&options.path).map_err(|e| {
            StoreError::Backend(format!(
                "cannot open {} to sync it: {e}; the server needs to read and write \
                 every file in its data directory",
                options.path.display()
            ))
        })?;
        let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let mut read_ahead = WalReadAhead::new(&options.path, u64::from(page_size), restart_frames);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut copied_before = 0;
                // One look at the WAL; says how long to wait for the next.
                let mut turn = || {
                    let written = wal.frames.load(Ordering::Relaxed);
                    read_ahead.keep_ready(written);
                    if written < checkpoint_frames {
                        return CHECKPOINT_INTERVAL;
                    }
                    let Some((frames, copied)) = checkpoint(&conn) else {
                        return CHECKPOINT_INTERVAL;
                    };
                    // Frames reach the WAL while a pass copies; a pass that
                    // found few means the WAL is nearly all copied now.
                    let fresh = if copied >= copied_before {
                        copied - copied_before
                    } else {
                        copied
                    };
                    copied_before = copied;
                    if frames < restart_frames {
                        return CHECKPOINT_INTERVAL;
                    }
                    if fresh > WRITER_SHARE {
                        return std::time::Duration::ZERO;
                    }
                    if let Err(e) = database.sync_data() {
                        // The writer's checkpoint syncs it anyway.
                        tracing::warn!(error = %e, "syncing the database file failed");
                    }
                    wal.full.store(true, Ordering::Relaxed);
                    CHECKPOINT_INTERVAL
                };
                let mut wait = CHECKPOINT_INTERVAL;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(wait)
                {
                    wait = turn();
                    #[cfg(test)]
                    counted.send_modify(|n| *n += 1);
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
            #[cfg(test)]
            turns,
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once the queue is drained.
        let handle = self.writer.lock().take();
        let (closed_tx, _) = mpsc::channel::<Job>(1);
        let jobs = std::mem::replace(&mut self.jobs, closed_tx);
        drop(jobs);
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

use crate::{
    CommitListener, Committed, ConversationSummary, Extension, ExtensionUpdate, NewExtension,
    NewMessage, OpenedDirect, Org, Posted, Receipt, Recorded, Session, Store, StoredEvent,
    TokenHash,
};
use switchboard_domain::{
    AlertTone, Conversation, ConversationId, ConversationName, Cursor, DisplayName, ExtensionId,
    ExtensionNumber, GroupChange, HistoryPage, MessageId, OrgId, OrgSlug, Timestamp,
};

/// Readers see the writer's last commit; every method picks the side it needs.
#[async_trait::async_trait]
impl Store for SqliteStore {
    fn on_commit(&self, listener: CommitListener) {
        self.listeners.write().push(listener);
    }

    async fn create_org(&self, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
        let (slug, name) = (slug.clone(), name.clone());
        self.write(move |c| directory::create_org(c, &slug, &name))
            .await
    }

    async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<Org>> {
        let slug = slug.clone();
        self.read(move |c| directory::org_by_slug(c, &slug)).await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        self.read(directory::list_orgs).await
    }

    async fn set_alert_tone(&self, org: OrgId, tone: AlertTone) -> Result<Org> {
        self.write(move |c| directory::set_alert_tone(c, org, tone))
            .await
    }

    async fn create_extensions(
        &self,
        org: OrgId,
        new: Vec<NewExtension>,
        now: Timestamp,
    ) -> Result<Vec<Extension>> {
        self.write(move |c| directory::create_extensions(c, org, &new, now))
            .await
    }

    async fn extension(&self, org: OrgId, id: ExtensionId) -> Result<Option<Extension>> {
        self.read(move |c| directory::extension(c, org, id)).await
    }

    async fn extension_for_sign_in(
        &self,
        org: OrgId,
        number: &ExtensionNumber,
    ) -> Result<Option<(Extension, String)>> {
        let number = number.clone();
        self.read(move |c| directory::extension_for_sign_in(c, org, &number))
            .await
    }

    async fn list_extensions(&self, org: OrgId) -> Result<Vec<Extension>> {
        self.read(move |c| directory::list_extensions(c, org)).await
    }

    async fn update_extension(
        &self,
        org: OrgId,
        id: ExtensionId,
        update: ExtensionUpdate,
    ) -> Result<Extension> {
        self.write(move |c| directory::update_extension(c, org, id, &update))
            .await
    }

    async fn set_password_hash(
        &self,
        org: OrgId,
        id: ExtensionId,
        hash: String,
        keep: Option<TokenHash>,
    ) -> Result<()> {
        self.write(move |c| directory::set_password_hash(c, org, id, &hash, keep.as_ref()))
            .await
    }

    async fn create_session(
        &self,
        token: TokenHash,
        extension: ExtensionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.write(move |c| directory::create_session(c, &token, extension, now, expires_at))
            .await
    }

    async fn session(&self, token: &TokenHash, now: Timestamp) -> Result<Option<Session>> {
        let token = token.clone();
        self.read(move |c| directory::session(c, &token, now)).await
    }

    async fn revoke_session(&self, token: &TokenHash) -> Result<()> {
        let token = token.clone();
        self.write(move |c| directory::revoke_session(c, &token))
            .await
    }

    async fn open_direct(
        &self,
        org: OrgId,
        me: ExtensionId,
        other: ExtensionId,
        now: Timestamp,
    ) -> Result<Committed<OpenedDirect>> {
        self.write(move |c| conversations::open_direct(c, org, me, other, now))
            .await
    }

    async fn create_group(
        &self,
        org: OrgId,
        creator: ExtensionId,
        name: ConversationName,
        members: Vec<ExtensionId>,
        now: Timestamp,
    ) -> Result<Committed<Conversation>> {
        self.write(move |c| conversations::create_group(c, org, creator, &name, &members, now))
            .await
    }

    async fn edit_group(
        &self,
        org: OrgId,
        actor: ExtensionId,
        conversation: ConversationId,
        edit: GroupChange,
        now: Timestamp,
    ) -> Result<Committed<Conversation>> {
        self.write(move |c| conversations::edit_group(c, org, actor, conversation, &edit, now))
            .await
    }

    async fn conversations_of(&self, me: ExtensionId) -> Result<Vec<ConversationSummary>> {
        self.read(move |c| conversations::conversations_of(c, me))
            .await
    }

    async fn conversation_for(
        &self,
        me: ExtensionId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        self.read(move |c| conversations::conversation_for(c, me, id))
            .await
    }

    async fn post_message(&self, message: NewMessage) -> Result<Committed<Posted>> {
        self.write_send(move |c, recent_sends| {
            conversations::post_message(c, recent_sends, &message)
        })
        .await
    }

    async fn history(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        page: HistoryPage,
    ) -> Result<(Vec<switchboard_domain::Message>, bool)> {
        self.read(move |c| conversations::history(c, me, conversation, page))
            .await
    }

    async fn mark_read(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        up_to: MessageId,
        now: Timestamp,
    ) -> Result<Committed<u32>> {
        self.write(move |c| conversations::mark_read(c, me, conversation, up_to, now))
            .await
    }

    async fn receipts(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
    ) -> Result<Vec<Receipt>> {
        self.read(move |c| conversations::receipts(c, me, conversation))
            .await
    }

    async fn events_after(
        &self,
        me: ExtensionId,
        after: Cursor,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.read(move |c| conversations::events_after(c, me, after, limit))
            .await
    }

    async fn latest_cursor(&self) -> Result<Cursor> {
        self.read(conversations::latest_cursor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewExtension, NewMessage};
    use switchboard_domain::{IdempotencyKey, MessageText, Role};

    /// The salt in the WAL header changes each time the WAL starts over.
    fn wal_salt(wal: &Path) -> [u8; 8] {
        let header = std::fs::read(wal).expect("read the WAL");
        header[16..24].try_into().expect("a WAL header")
    }

    /// A store on a new database file, shared by the tasks of a test.
    fn fresh_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard.db");
        let store = SqliteStore::open(SqliteOptions::new(path)).expect("open");
        (dir, Arc::new(store))
    }

    /// An organization with two people and their direct chat.
    async fn two_people_chatting(store: &SqliteStore) -> (Vec<Extension>, ConversationId) {
        let org = store
            .create_org(
                &OrgSlug::parse("steady").expect("slug"),
                &DisplayName::parse("Steady").expect("name"),
            )
            .await
            .expect("org");
        let people = store
            .create_extensions(
                org.id,
                ["201", "202"]
                    .iter()
                    .map(|n| NewExtension {
                        number: ExtensionNumber::parse(n).expect("number"),
                        name: DisplayName::parse(&format!("Person {n}")).expect("name"),
                        role: Role::Member,
                        password_hash: String::new(),
                    })
                    .collect(),
                Timestamp(0),
            )
            .await
            .expect("extensions");
        let chat = store
            .open_direct(org.id, people[0].id, people[1].id, Timestamp(0))
            .await
            .expect("chat")
            .value
            .conversation
            .id;
        (people, chat)
    }

    fn send(sender: &Extension, chat: ConversationId, key: Option<&str>, at: i64) -> NewMessage {
        NewMessage {
            conversation_id: chat,
            sender: sender.as_ref(),
            text: MessageText::parse("On my way").expect("text"),
            idempotency_key: key.map(|k| IdempotencyKey::parse(k).expect("key")),
            now: Timestamp(at),
        }
    }

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

    /// With sends always waiting, the writer never pauses on its own; the
    /// WAL must still start over instead of growing for as long as the
    /// stream lasts.
    const SENDS: u32 = 60_000;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard.db");
        let options = SqliteOptions {
            wal_restart_frames: 1024,
            ..SqliteOptions::new(&path)
        };
        let store = Arc::new(SqliteStore::open(options).expect("open"));
        let (people, chat) = two_people_chatting(&store).await;
        let wal = dir.path().join("switchboard.db-wal");

        // Every send is queued at once, so the writer always has the next
        // batch waiting and never pauses until the last one.
        let sender = people[0].as_ref();
        let mut in_flight = tokio::task::JoinSet::<Result<()>>::new();
        for n in 0..SENDS {
            let (store, sender) = (Arc::clone(&store), sender.clone());
            in_flight.spawn(async move {
                store
                    .post_message(NewMessage {
                        conversation_id: chat,
                        sender,
                        text: MessageText::parse(&format!("message {n}")).expect("text"),
                        idempotency_key: None,
                        now: Timestamp(i64::from(n)),
                    })
                    .await
                    .map(drop)
            });
        }
        // The WAL as it was once the stream was under way (it may have
        // started over at the stream's first write, after setup left the
        // writer idle).
        let mut first = None;
        let mut started_over = false;
        let mut stored = 0;
        while let Some(done) = in_flight.join_next().await {
            done.expect("the send task").expect("stored");
            stored += 1;
            if stored % 1024 == 0 && stored < SENDS {
                let salt = wal_salt(&wal);
                started_over |= *first.get_or_insert(salt) != salt;
            }
        }
        assert!(started_over, "the WAL grew for the whole stream");
    }

    /// Returns once the checkpointer has looked at the WAL at least once
    /// after this was called (the look under way may have begun before).
    async fn checkpointer_looked(store: &SqliteStore) {
        let mut turns = store
            ._checkpointer
            .as_ref()
            .expect("a checkpointer")
            .turns
            .clone();
        let start = *turns.borrow_and_update();
        while *turns.borrow_and_update() < start + 2 {
            turns.changed().await.expect("the checkpointer runs");
        }
    }

    /// The WAL's salt after one send, and again after the checkpointer
    /// had a look at the WAL and one more send: a new salt means the WAL
    /// started over in between.
    async fn wal_salts_across_a_quiet_spell(
        configure: fn(&mut SqliteOptions),
    ) -> ([u8; 8], [u8; 8]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = SqliteOptions::new(dir.path().join("switchboard.db"));
        configure(&mut options);
        let store = SqliteStore::open(options).expect("open");
        let (people, chat) = two_people_chatting(&store).await;
        let wal = dir.path().join("switchboard.db-wal");
        store
            .post_message(send(&people[0], chat, None, 1))
            .await
            .expect("first");
        let before = wal_salt(&wal);
        checkpointer_looked(&store).await;
        store
            .post_message(send(&people[1], chat, None, 2))
            .await
            .expect("second");
        (before, wal_salt(&wal))
    }

    /// Copying the whole WAL would make the next commit start it over, and
    /// that commit would wait for an fsync of the new header: a lightly
    /// loaded server leaves a small WAL to grow.
    #[tokio::test]
    async fn a_small_wal_is_not_started_over_between_light_commits() {
        let (before, after) = wal_salts_across_a_quiet_spell(|_| {}).await;
        assert_eq!(after, before, "the WAL started over");
    }

    /// Past its checkpoint size the WAL is copied while the server is quiet,
    /// and the next commit starts it over.
    #[tokio::test]
    async fn a_wal_past_its_checkpoint_size_is_copied_and_started_over() {
        let (before, after) =
            wal_salts_across_a_quiet_spell(|options| options.wal_checkpoint_frames = 1).await;
        assert_ne!(after, before, "the WAL was not started over");
    }

    /// Whether the file's page at `offset` is in the page cache: a read
    /// that may not wait for the disk fails when it is not. (It still
    /// starts reading the page, so each page can be asked about once; the
    /// file must be opened with random access advice, or the kernel would
    /// read ahead of it too.)
    #[cfg(target_os = "linux")]
    fn cached(file: &std::fs::File, offset: u64) -> bool {
        let mut byte = [0u8; 1];
        match rustix::io::preadv2(
            file,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            offset,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(_) => true,
            Err(rustix::io::Errno::AGAIN) => false,
            Err(e) => panic!("reading the WAL: {e}"),
        }
    }

    /// The WAL's page holding frame `frame` (4 KiB database pages, as the
    /// file system's).
    #[cfg(target_os = "linux")]
    fn wal_page_of(frame: u64) -> u64 {
        (32 + frame * (24 + 4096)) / 4096 * 4096
    }

    /// Drops the WAL from the page cache, as memory reclaim would, and
    /// returns it opened for [`cached`]; `probe` is a page that must have
    /// been dropped (asking about it reads it back).
    #[cfg(target_os = "linux")]
    fn drop_from_memory(wal_path: &Path, probe: u64) -> std::fs::File {
        let wal = std::fs::File::open(wal_path).expect("open the WAL");
        wal.sync_all().expect("sync the WAL");
        rustix::fs::fadvise(&wal, 0, None, rustix::fs::Advice::DontNeed).expect("drop");
        rustix::fs::fadvise(&wal, 0, None, rustix::fs::Advice::Random).expect("no read-ahead");
        assert!(
            !cached(&wal, probe),
            "this file system keeps the WAL cached; the test needs one that can drop it"
        );
        wal
    }

    /// With a WAL that starts over at 64 frames (so the read-ahead keeps 32
    /// frames ahead of the writer) and is copied back once it holds
    /// `checkpoint_frames`: sends until `filled(wal, its salt before)`,
    /// drops the WAL from memory (`dropped` is a page that must have gone),
    /// sends once more and waits for the checkpointer's look. Whether
    /// `page` is in memory again.
    #[cfg(target_os = "linux")]
    async fn read_back_after_a_look(
        checkpoint_frames: i64,
        filled: fn(&Path, [u8; 8]) -> bool,
        dropped: u64,
        page: u64,
    ) -> bool {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(SqliteOptions {
            wal_checkpoint_frames: checkpoint_frames,
            wal_restart_frames: 64,
            ..SqliteOptions::new(dir.path().join("switchboard.db"))
        })
        .expect("open");
        let (people, chat) = two_people_chatting(&store).await;
        let wal_path = dir.path().join("switchboard.db-wal");
        let salt = wal_salt(&wal_path);
        let mut seq = 0;
        let mut send_one = async || {
            seq += 1;
            store
                .post_message(send(&people[0], chat, None, seq))
                .await
                .expect("send");
        };
        while !filled(&wal_path, salt) {
            send_one().await;
        }
        let wal = drop_from_memory(&wal_path, dropped);
        send_one().await;
        checkpointer_looked(&store).await;
        cached(&wal, page)
    }

    /// Once the WAL has started over, the writer writes into pages of its
    /// last lap; any the kernel dropped from memory meanwhile are read back
    /// before the writer gets there, not by its commit.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_wal_ahead_of_the_writer_is_read_back_into_memory() {
        // The checkpointer looks every 100 ms and has the WAL start over
        // once it holds 64 frames; then the writer is a few frames into its
        // second lap.
        let started_over = |wal: &Path, first_lap| wal_salt(wal) != first_lap;
        assert!(
            read_back_after_a_look(1, started_over, wal_page_of(60), wal_page_of(20)).await,
            "the WAL ahead was not read back"
        );
    }

    /// Close to starting over, the writer goes on at the WAL's head next:
    /// its pages are read back before then.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_wal_head_is_read_back_before_the_wal_starts_over() {
        // Never copied back, so the WAL only grows and nothing reads it.
        let past_frame_40 =
            |wal: &Path, _| std::fs::metadata(wal).expect("the WAL").len() >= wal_page_of(40);
        assert!(
            read_back_after_a_look(i64::MAX, past_frame_40, wal_page_of(2), wal_page_of(1)).await,
            "the WAL's head was not read back"
        );
    }
}
