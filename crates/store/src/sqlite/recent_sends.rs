//! The idempotency keys of recent sends, kept in the writer's memory.
//!
//! A client that lost the answer to a send sends it again with the same key
//! and must get the first message back, not a second one. A unique index on
//! random keys would put every send on a random page of that index, one more
//! page written per message. Retries come seconds or minutes after the first
//! attempt, so the writer remembers the keys of a window of sends (see
//! [`IdempotencyWindow`]) in a hash map instead, and rebuilds it from the
//! messages table when the store opens, so a restart forgets nothing.
//!
//! The map holds a hash of (sender, key) and the message id; a hit is
//! confirmed against the stored message, so a hash collision costs a
//! duplicate check, never a wrong answer.

use super::IdempotencyWindow;
use rusqlite::Connection;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use switchboard_domain::{ExtensionId, MessageId, Timestamp};

#[derive(Clone, Copy)]
struct Remembered {
    hash: u64,
    message: MessageId,
    at: Timestamp,
}

/// A change to the map not yet committed, and what it replaced.
struct Pending {
    entry: Remembered,
    replaced: Option<MessageId>,
}

pub(super) struct RecentSends {
    hasher: RandomState,
    by_hash: HashMap<u64, MessageId>,
    /// Committed entries, oldest first, for forgetting them in order.
    order: VecDeque<Remembered>,
    /// Entries of the open transaction; undone if it rolls back.
    pending: Vec<Pending>,
    window: IdempotencyWindow,
}

impl RecentSends {
    /// Remembers the keyed messages of the window before the newest
    /// message, newest first until the window or the capacity is full.
    pub(super) fn load(conn: &Connection, window: IdempotencyWindow) -> rusqlite::Result<Self> {
        let mut sends = Self {
            hasher: RandomState::new(),
            by_hash: HashMap::new(),
            order: VecDeque::new(),
            pending: Vec::new(),
            window,
        };
        // Every message, keyed or not, so the scan stops at the window's
        // start however few of the messages carry keys.
        let mut stmt = conn.prepare(
            "SELECT id, sender_id, idempotency_key, created_at FROM messages ORDER BY id DESC",
        )?;
        let mut rows = stmt.query([])?;
        let mut newest_first = Vec::new();
        let mut cutoff = None;
        while let Some(row) = rows.next()? {
            let at = Timestamp(row.get(3)?);
            let cutoff = *cutoff.get_or_insert(at.0.saturating_sub(window.millis));
            if at.0 < cutoff || newest_first.len() >= window.capacity {
                break;
            }
            let (Some(sender), Some(key)) = (
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, Option<String>>(2)?,
            ) else {
                continue;
            };
            let sender = ExtensionId(sender);
            newest_first.push(Remembered {
                hash: sends.hash(sender, &key),
                message: MessageId(row.get(0)?),
                at,
            });
        }
        sends.by_hash.reserve(newest_first.len());
        for entry in newest_first.into_iter().rev() {
            sends.by_hash.insert(entry.hash, entry.message);
            sends.order.push_back(entry);
        }
        Ok(sends)
    }

    fn hash(&self, sender: ExtensionId, key: &str) -> u64 {
        self.hasher.hash_one((sender.0, key))
    }

    /// The message last sent with this key, if remembered; the caller
    /// confirms it is the sender's and the key's.
    pub(super) fn find(&self, sender: ExtensionId, key: &str) -> Option<MessageId> {
        self.by_hash.get(&self.hash(sender, key)).copied()
    }

    /// Remembers a send in the open transaction.
    pub(super) fn remember(
        &mut self,
        sender: ExtensionId,
        key: &str,
        message: MessageId,
        at: Timestamp,
    ) {
        let hash = self.hash(sender, key);
        let replaced = self.by_hash.insert(hash, message);
        self.pending.push(Pending {
            entry: Remembered { hash, message, at },
            replaced,
        });
    }

    /// Where a job starts; [`Self::undo_to`] forgets what it remembered.
    pub(super) fn mark(&self) -> usize {
        self.pending.len()
    }

    /// Forgets what was remembered since `mark` (its savepoint rolled back).
    pub(super) fn undo_to(&mut self, mark: usize) {
        for undone in self.pending.drain(mark..).rev() {
            match undone.replaced {
                Some(previous) => self.by_hash.insert(undone.entry.hash, previous),
                None => self.by_hash.remove(&undone.entry.hash),
            };
        }
    }

    /// The transaction committed: keep its sends, and forget those that
    /// have left the window.
    pub(super) fn committed(&mut self) {
        self.order
            .extend(self.pending.drain(..).map(|pending| pending.entry));
        let Some(newest) = self.order.back().map(|e| e.at) else {
            return;
        };
        let cutoff = newest.0.saturating_sub(self.window.millis);
        while let Some(oldest) = self.order.front().copied() {
            if oldest.at.0 >= cutoff && self.order.len() <= self.window.capacity {
                break;
            }
            self.order.pop_front();
            // A newer send with a colliding hash took the slot: keep it.
            if self.by_hash.get(&oldest.hash) == Some(&oldest.message) {
                self.by_hash.remove(&oldest.hash);
            }
        }
    }

    /// The transaction rolled back: forget all it remembered.
    pub(super) fn rolled_back(&mut self) {
        self.undo_to(0);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_hash.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty(capacity: usize, millis: i64) -> RecentSends {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, sender_id INTEGER,
                                    idempotency_key TEXT, created_at INTEGER NOT NULL)",
        )
        .expect("table");
        RecentSends::load(&conn, IdempotencyWindow { millis, capacity }).expect("load")
    }

    const A: ExtensionId = ExtensionId(1);
    const B: ExtensionId = ExtensionId(2);

    #[test]
    fn a_key_is_found_for_its_sender_only() {
        let mut sends = empty(10, 1000);
        sends.remember(A, "k", MessageId(7), Timestamp(0));
        sends.committed();
        assert_eq!(sends.find(A, "k"), Some(MessageId(7)));
        assert_eq!(sends.find(B, "k"), None);
        assert_eq!(sends.find(A, "other"), None);
    }

    #[test]
    fn a_rolled_back_send_is_forgotten_and_what_it_replaced_comes_back() {
        let mut sends = empty(10, 1000);
        sends.remember(A, "k", MessageId(1), Timestamp(0));
        sends.committed();
        let mark = sends.mark();
        sends.remember(A, "k", MessageId(2), Timestamp(1));
        sends.remember(A, "new", MessageId(3), Timestamp(1));
        assert_eq!(sends.find(A, "k"), Some(MessageId(2)));
        sends.undo_to(mark);
        assert_eq!(sends.find(A, "k"), Some(MessageId(1)));
        assert_eq!(sends.find(A, "new"), None);

        sends.remember(A, "new", MessageId(4), Timestamp(2));
        sends.rolled_back();
        assert_eq!(sends.find(A, "new"), None);
        assert_eq!(sends.len(), 1);
    }

    #[test]
    fn keys_leave_the_window_by_age_and_by_number() {
        let mut sends = empty(3, 1000);
        for (n, at) in [(1, 0), (2, 10), (3, 500)] {
            sends.remember(A, &format!("k{n}"), MessageId(n), Timestamp(at));
        }
        sends.committed();
        assert_eq!(sends.len(), 3);
        // 1,005 ms after the first: the first has aged out.
        sends.remember(A, "k4", MessageId(4), Timestamp(1005));
        sends.committed();
        assert_eq!(sends.find(A, "k1"), None);
        assert_eq!(sends.find(A, "k2"), Some(MessageId(2)));
        // A fourth key within the window: the oldest gives way.
        sends.remember(A, "k5", MessageId(5), Timestamp(1006));
        sends.committed();
        assert_eq!(sends.find(A, "k2"), None);
        assert_eq!(sends.len(), 3);
        assert_eq!(sends.find(A, "k5"), Some(MessageId(5)));
    }

    #[test]
    fn loading_remembers_the_newest_keys_of_the_window() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, sender_id INTEGER,
                                    idempotency_key TEXT, created_at INTEGER NOT NULL);
             INSERT INTO messages VALUES (1, 1, 'old', 0), (2, 1, 'a', 5000),
                                         (3, 2, NULL, 5100), (4, 2, 'b', 5200),
                                         (5, 1, 'c', 5300);",
        )
        .expect("rows");
        let window = IdempotencyWindow {
            millis: 1000,
            capacity: 2,
        };
        let sends = RecentSends::load(&conn, window).expect("load");
        assert_eq!(sends.find(A, "c"), Some(MessageId(5)));
        assert_eq!(sends.find(B, "b"), Some(MessageId(4)));
        assert_eq!(sends.find(A, "a"), None, "beyond the capacity");
        assert_eq!(sends.find(A, "old"), None, "beyond the window");
    }
}
