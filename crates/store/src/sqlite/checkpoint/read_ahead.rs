//! Keeps the stretch of the WAL the writer writes next in the page cache.
//!
//! SQLite writes each WAL frame as a 24-byte header and then a page, so the
//! frames do not line up with the file's pages and nearly every write covers
//! part of one. When that page is no longer in the page cache, the kernel
//! reads it from disk before the write goes on: inside a commit, with every
//! send of the batch waiting. The writer comes back to each part of the WAL
//! once a lap, and memory reclaim may drop cached file pages that look cold
//! in between, even with memory to spare.
//!
//! So the checkpointer asks the kernel to read ahead of the writer
//! (`posix_fadvise(WILLNEED)`: it reads only the pages that are missing and
//! does not wait for them).

use std::fs::File;
use std::num::NonZeroU64;
use std::path::PathBuf;

/// The WAL file's own header, before the first frame.
const WAL_HEADER_BYTES: u64 = 32;
/// Each frame's header, before its page.
const FRAME_HEADER_BYTES: u64 = 24;
/// How far ahead of the writer to keep the WAL cached: far enough that a
/// read started here finishes before the writer gets there even when the
/// disk stalls for a while, and no more than half a lap, beyond which the
/// pages are the writer's next lap's, not this one's.
const READ_AHEAD_FRAMES: i64 = 8192;

pub(super) struct WalReadAhead {
    path: PathBuf,
    /// Opened on first use: SQLite creates the WAL with the first write.
    /// (Closing it cannot drop any of SQLite's POSIX locks: it takes them
    /// on the database and shared-memory files, never on the WAL.)
    file: Option<File>,
    frame_bytes: u64,
    /// Where the writer starts over from the first frame.
    restart_frames: i64,
    /// Frames to keep cached ahead of it.
    ahead: i64,
    /// The writer's position at the last look; nothing to do until it moves.
    seen: i64,
}

impl WalReadAhead {
    pub(super) fn new(database: &std::path::Path, page_size: u64, restart_frames: i64) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: path.into(),
            file: None,
            frame_bytes: FRAME_HEADER_BYTES + page_size,
            restart_frames,
            ahead: READ_AHEAD_FRAMES.min(restart_frames / 2).max(1),
            seen: -1,
        }
    }

    /// `frames`: the WAL's frames after the writer's last commit, which is
    /// where it writes next.
    pub(super) fn keep_ready(&mut self, frames: i64) {
        if frames == self.seen {
            return;
        }
        self.seen = frames;
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = &self.file else { return };
        self.advise(file, frames);
        // Close to starting over, the writer goes on at the WAL's head.
        if frames + self.ahead >= self.restart_frames {
            self.advise(file, 0);
        }
    }

    fn advise(&self, file: &File, first_frame: i64) {
        let offset = WAL_HEADER_BYTES + first_frame.max(0) as u64 * self.frame_bytes;
        let len = NonZeroU64::new(self.ahead as u64 * self.frame_bytes);
        // Only advice: a failure costs the writer a read, nothing else.
        if let Err(e) = will_need(file, offset, len) {
            tracing::debug!(error = %e, "reading the WAL ahead failed");
        }
    }
}

#[cfg(target_os = "linux")]
fn will_need(file: &File, offset: u64, len: Option<NonZeroU64>) -> std::io::Result<()> {
    Ok(rustix::fs::fadvise(
        file,
        offset,
        len,
        rustix::fs::Advice::WillNeed,
    )?)
}

/// Elsewhere the writer reads what it needs for itself.
#[cfg(not(target_os = "linux"))]
fn will_need(_: &File, _: u64, _: Option<NonZeroU64>) -> std::io::Result<()> {
    Ok(())
}
