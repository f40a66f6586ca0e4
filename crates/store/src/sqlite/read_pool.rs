//! The read connections: read-only, opened on first need, at most
//! `readers` in use at once. In WAL mode a reader sees the writer's last
//! commit and never blocks it.

use super::{SqliteStore, Synchronous, open_connection};
use crate::{Result, StoreError};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    pub(super) fn new(path: PathBuf, readers: usize) -> Self {
        let readers = readers.max(1);
        Self {
            path,
            idle: Mutex::new(Vec::with_capacity(readers)),
            permits: Semaphore::new(readers),
        }
    }
}

impl SqliteStore {
    /// Runs `f` on a read connection on the blocking thread pool.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
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
