//! Copying the WAL back into the database file, off the commit path.
//!
//! SQLite's own checkpoints would run inside a commit, with every send of
//! the batch waiting. Here they are turned off on the write connection and a
//! thread of its own, the checkpointer, copies the WAL on a connection of
//! its own instead. PASSIVE checkpoints never wait for readers or the
//! writer; what one cannot copy now the next copies. The writer only
//! finishes a checkpoint when the checkpointer asks, so that the WAL starts
//! over instead of growing for as long as commits keep coming.
//!
//! The checkpointer also keeps the part of the WAL the writer writes next in
//! memory ([`read_ahead`]).

pub(super) mod read_ahead;

use super::writer::SLOW_TRANSACTION;
use super::{SqliteOptions, open_connection};
use crate::{Result, StoreError};
use read_ahead::WalReadAhead;
use rusqlite::{Connection, OpenFlags};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// What the writer and the checkpointer tell each other about the WAL.
#[derive(Default)]
pub(super) struct WalState {
    /// Frames in the WAL after the writer's last commit (including those
    /// already copied to the database file; fewer once it started over).
    frames: AtomicI64,
    /// Set by the checkpointer: the writer should finish the checkpoint so
    /// that the WAL starts over.
    full: AtomicBool,
}

impl WalState {
    /// Called by the writer after each commit: passes on the WAL's size.
    pub(super) fn note_commit(&self) {
        self.frames.store(WAL_FRAMES_HERE.get(), Ordering::Relaxed);
    }

    /// Called by the writer between two transactions: if the checkpointer
    /// asked, copies what it has not yet copied. With no frame appended
    /// meanwhile the checkpoint can complete, and SQLite then starts the
    /// next transaction at the beginning of the WAL again. The checkpointer
    /// has already copied all but the last moment's frames and flushed the
    /// database file, so the pause is short.
    pub(super) fn start_over_if_asked(&self, conn: &Connection) {
        if !self.full.load(Ordering::Relaxed) {
            return;
        }
        let started = std::time::Instant::now();
        if checkpoint(conn).is_some_and(|(frames, copied)| frames == copied) {
            self.full.store(false, Ordering::Relaxed);
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

/// Turns off the write connection's own checkpoints and has it report the
/// WAL's size after each commit instead.
pub(super) fn leave_checkpoints_to_the_checkpointer(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
    // Set after the pragma, which clears it.
    conn.wal_hook(Some(note_wal_frames));
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

/// Copies the WAL back into the database file every
/// [`CHECKPOINT_INTERVAL`] once it holds `wal_checkpoint_frames`. Once it
/// holds `wal_restart_frames` and the passes have caught up, it flushes the
/// database file and asks the writer to copy the last few frames itself, so
/// that the WAL starts over: SQLite syncs the database file only when a
/// checkpoint completes, and left to the writer that sync would write out
/// everything the passes copied, with every send waiting.
pub(super) struct Checkpointer {
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
    pub(super) fn start(options: &SqliteOptions, wal: Arc<WalState>) -> Result<Self> {
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

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::super::fixtures::{send, two_people_chatting, wal_salt};
    use super::*;
    use crate::{Conversations, NewMessage, Result};
    use std::path::Path;
    use switchboard_domain::{MessageText, Timestamp};

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
                        attachments: Vec::new(),
                        carrier_media: Vec::new(),
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
        rustix::fs::fadvise(&wal, 0, None, rustix::fs::Advice::Random).expect("no read-ahead");
        // The checkpointer may read the page back between the drop and the
        // probe (that is its job); drop again until a probe finds it gone.
        for _ in 0..50 {
            wal.sync_all().expect("sync the WAL");
            rustix::fs::fadvise(&wal, 0, None, rustix::fs::Advice::DontNeed).expect("drop");
            if !cached(&wal, probe) {
                return wal;
            }
        }
        panic!("this file system keeps the WAL cached; the test needs one that can drop it")
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
