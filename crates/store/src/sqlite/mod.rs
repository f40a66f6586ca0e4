//! The embedded SQLite store.
//!
//! **Writes.** One writer thread owns the only write connection
//! (`writer`). Writes arrive as jobs on a bounded channel; the writer runs
//! every job that is waiting inside one transaction, commits, and only then
//! answers each caller: group commit, where many sends share one fsync and
//! none is acknowledged before its commit. One failing job does not undo the
//! others: each runs in a savepoint of its own, except sends, which check
//! everything before they write and so need none.
//!
//! **Reads** run on a small pool of read-only connections (`read_pool`).
//! In WAL mode they see the last commit and never block the writer.
//!
//! **The WAL** is copied back into the database file off the commit path
//! (`checkpoint`): SQLite's own checkpoints are turned off, and a thread
//! of its own copies what the writer appended, on its own connection, once
//! the WAL has grown past a threshold (a WAL copied whole would make the
//! next commit wait for an fsync of the WAL's new header). Under a steady
//! stream of commits a checkpoint never finds the writer idle, so the WAL
//! would never start over and every commit would write into new file space;
//! past a larger threshold the checkpointer flushes the database file and
//! asks the writer to copy the last few frames itself between two
//! transactions, and the next commit starts the WAL over. The writer learns
//! the WAL's size from SQLite's WAL hook after each commit.
//!
//! **The WAL's pages** are kept in memory ahead of the writer
//! (`checkpoint::read_ahead`): SQLite's frames do not line up with the
//! file's pages, so a commit that writes into a page the kernel dropped from
//! its cache would first wait for a disk read.

mod checkpoint;
mod conversations;
mod directory;
mod events;
mod jobs;
mod messages;
mod numbers;
mod options;
mod outbox;
mod read_pool;
mod recent_sends;
mod schema;
mod sms;
mod writer;

#[cfg(test)]
mod fixtures;

pub use options::{IdempotencyWindow, SqliteOptions, Synchronous};

use crate::{Result, StoreError};
use checkpoint::{Checkpointer, WalState};
use parking_lot::Mutex;
use read_pool::ReadPool;
use recent_sends::RecentSends;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;
use writer::{Job, Listeners, WRITE_QUEUE, Writer};

pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    listeners: Listeners,
    _checkpointer: Option<Checkpointer>,
    readers: Arc<ReadPool>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
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
/// index pages stay cached, but not much larger: at the end of a write
/// transaction in which a B-tree split renumbered pages, SQLite walks the
/// whole page cache's hash table, and that walk grows with the cache.
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
    /// the writer and checkpoint threads.
    pub fn open(options: SqliteOptions) -> Result<Self> {
        let write_flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = open_connection(&options.path, write_flags, options.synchronous)?;
        schema::migrate(&conn)?;
        events::begin_run(&conn)?;
        let recent_sends = RecentSends::load(&conn, options.idempotency)?;
        checkpoint::leave_checkpoints_to_the_checkpointer(&conn)?;
        let wal = Arc::new(WalState::default());
        let checkpointer = Checkpointer::start(&options, Arc::clone(&wal))?;

        let (jobs, rx) = mpsc::channel::<Job>(WRITE_QUEUE);
        let max_batch = options.max_batch.max(1);
        let listeners: Listeners = Arc::default();
        let writer = Writer::new(conn, recent_sends, Arc::clone(&listeners));
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx, max_batch, &wal))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;

        Ok(Self {
            jobs,
            listeners,
            _checkpointer: Some(checkpointer),
            readers: Arc::new(ReadPool::new(options.path, options.readers)),
            writer: Mutex::new(Some(writer)),
        })
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
