//! How the SQLite store is opened: where, how durably, and the sizes that
//! shape its writer, its WAL and its memory of recent sends.

use std::path::PathBuf;

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

    pub(super) fn pragma(self) -> &'static str {
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
    /// over pauses commits for two fsyncs, so not too often; until then the
    /// WAL grows.
    pub wal_restart_frames: i64,
    /// WAL frames (pages) the WAL may hold before checkpoints copy them to
    /// the database file. Copying a small WAL whole would make the next
    /// commit start it over and wait for an fsync of its new header, so a
    /// lightly loaded server leaves it to grow up to this.
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

/// How long, and how many, idempotency keys of sends are remembered.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyWindow {
    pub millis: i64,
    pub capacity: usize,
}

impl Default for IdempotencyWindow {
    /// A day, as payment APIs keep theirs, and at most a million keys
    /// (the map and its queue then take about 70 MB).
    fn default() -> Self {
        Self {
            millis: 24 * 60 * 60 * 1000,
            capacity: 1_000_000,
        }
    }
}
