//! Sending over the WebSocket (`--send-over ws`): each sending user's own
//! connection, the one its receiver reads, also carries its `send` frames. A
//! [`Line`] is that user's sending side: the queue into the connection's
//! writer and the sends still waiting for their `sent` or `error` frame, keyed
//! by idempotency key because the server answers up to 64 sends of one
//! connection concurrently, so answers may come out of order.
//!
//! A send holds its `--max-in-flight` permit until it is answered or given up.
//! When a connection closes with sends written to it and unanswered, each of
//! them goes once more, with the same idempotency key, over the reconnected
//! connection (the server's idempotency makes that safe); a send whose second
//! connection also closes under it fails as `ws closed`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::ledger::Ledger;

/// Which way the generator sends its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SendPath {
    /// `POST /api/v1/conversations/{id}/messages` over the keep-alive pool.
    #[default]
    Rest,
    /// `send` frames on the sender's own WebSocket.
    Ws,
    /// Signed carrier webhooks (W5's inbound texts; not a choice of `--send-over`).
    #[value(skip)]
    Webhook,
}

impl SendPath {
    pub fn name(self) -> &'static str {
        match self {
            SendPath::Rest => "rest",
            SendPath::Ws => "ws",
            SendPath::Webhook => "webhook",
        }
    }
}

/// Times a send may be written to a connection: the first time and one retry.
const WRITES: u32 = 2;

/// Where one phase's acknowledgements go, whichever way the sends went.
pub struct Acks {
    pub ledger: Arc<Ledger>,
    last: Mutex<Option<Instant>>,
}

impl Acks {
    pub fn new(ledger: Arc<Ledger>) -> Acks {
        Acks {
            ledger,
            last: Mutex::new(None),
        }
    }

    /// Message `index`, due at `due`, was acknowledged at `now`.
    pub fn acked(&self, index: u64, due: Instant, scheduled_unix_nanos: u64, now: Instant) {
        let latency = now.saturating_duration_since(due).as_nanos() as u64;
        self.ledger.mark_acked(index, latency);
        self.ledger.note_ack(scheduled_unix_nanos, latency);
        let mut last = lock(&self.last);
        *last = Some(last.map_or(now, |last| last.max(now)));
    }

    /// When the latest acknowledgement came, if any did.
    pub fn last(&self) -> Option<Instant> {
        *lock(&self.last)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// One send waiting for its answer.
pub struct Flight {
    acks: Arc<Acks>,
    index: u64,
    due: Instant,
    scheduled_unix_nanos: u64,
    /// Shared with the queued copy: cloning it only counts a reference.
    frame: Utf8Bytes,
    /// Released when the send is answered or given up.
    _permit: OwnedSemaphorePermit,
    writes: u32,
    /// Handed to the current connection's writer (as opposed to still queued).
    written: bool,
}

impl Flight {
    pub fn new(
        acks: Arc<Acks>,
        index: u64,
        due: Instant,
        scheduled_unix_nanos: u64,
        frame: Utf8Bytes,
        permit: OwnedSemaphorePermit,
    ) -> Flight {
        Flight {
            acks,
            index,
            due,
            scheduled_unix_nanos,
            frame,
            _permit: permit,
            writes: 0,
            written: false,
        }
    }

    fn fail(self, reason: &str) {
        self.acks.ledger.mark_failed(self.index, reason);
    }
}

/// A frame for a connection's writer, and the send it belongs to.
pub struct Outgoing {
    pub key: String,
    pub frame: Utf8Bytes,
}

/// The server's answer to one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    Sent,
    Error(&'a str),
}

/// What a closed connection did to the sends it carried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub resent: u64,
    pub failed: u64,
}

/// One user's sending side, shared by the phase that sends and the task that
/// owns the user's connection.
pub struct Line {
    pending: Mutex<HashMap<String, Flight>>,
    queue: mpsc::UnboundedSender<Outgoing>,
}

impl Line {
    /// A line and the receiving end of its queue, for the connection's writer.
    pub fn new() -> (Arc<Line>, mpsc::UnboundedReceiver<Outgoing>) {
        let (queue, outbox) = mpsc::unbounded_channel();
        let line = Line {
            pending: Mutex::new(HashMap::new()),
            queue,
        };
        (Arc::new(line), outbox)
    }

    /// Queues a send for the connection; fails it when the connection's task is gone.
    pub fn submit(&self, key: String, flight: Flight) {
        let mut pending = lock(&self.pending);
        let frame = flight.frame.clone();
        if self
            .queue
            .send(Outgoing {
                key: key.clone(),
                frame,
            })
            .is_err()
        {
            drop(pending);
            flight.fail("ws gone");
            return;
        }
        if let Some(earlier) = pending.insert(key, flight) {
            drop(pending);
            earlier.fail("ws key reused");
        }
    }

    /// The writer is about to put `key`'s frame on the current connection.
    pub fn writing(&self, key: &str) {
        if let Some(flight) = lock(&self.pending).get_mut(key) {
            flight.written = true;
            flight.writes += 1;
        }
    }

    /// An answer came for `key` at `now`; false when no send waits for that key.
    pub fn answer(&self, key: &str, answer: Answer<'_>, now: Instant) -> bool {
        let Some(flight) = lock(&self.pending).remove(key) else {
            return false;
        };
        match answer {
            Answer::Sent => {
                flight
                    .acks
                    .acked(flight.index, flight.due, flight.scheduled_unix_nanos, now);
            }
            Answer::Error(code) => flight.fail(&format!("ws {code}")),
        }
        true
    }

    /// The connection closed: every send written to it and unanswered is
    /// queued again for the next connection if it has a write left, and fails
    /// otherwise. Sends still queued stay queued.
    pub fn connection_lost(&self) -> Lost {
        let mut lost = Lost::default();
        let mut failed = Vec::new();
        let mut pending = lock(&self.pending);
        let keys: Vec<String> = pending
            .iter()
            .filter(|(_, flight)| flight.written)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            let Some(flight) = pending.get_mut(&key) else {
                continue;
            };
            flight.written = false;
            let again = Outgoing {
                key: key.clone(),
                frame: flight.frame.clone(),
            };
            if flight.writes < WRITES && self.queue.send(again).is_ok() {
                lost.resent += 1;
            } else if let Some(flight) = pending.remove(&key) {
                failed.push(flight);
            }
        }
        drop(pending);
        lost.failed = failed.len() as u64;
        for flight in failed {
            flight.fail("ws closed");
        }
        lost
    }

    /// Sends waiting for an answer.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.pending).len()
    }
}

#[derive(Serialize)]
struct SendFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    conversation_id: i64,
    text: &'a str,
    idempotency_key: &'a str,
}

/// The `send` frame of one message.
pub fn send_frame(conversation: i64, text: &str, key: &str) -> Utf8Bytes {
    let frame = SendFrame {
        kind: "send",
        conversation_id: conversation,
        text,
        idempotency_key: key,
    };
    // Encoding a struct of strings and a number cannot fail.
    serde_json::to_string(&frame).unwrap_or_default().into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::ledger::Topology;

    const MS: Duration = Duration::from_millis(1);

    fn setup(messages: u64) -> (Arc<Acks>, Arc<Semaphore>, Instant) {
        let ledger = Arc::new(Ledger::new(Topology::Pairs { users: 2 }, messages));
        (
            Arc::new(Acks::new(ledger)),
            Arc::new(Semaphore::new(10)),
            Instant::now(),
        )
    }

    fn flight(acks: &Arc<Acks>, permits: &Arc<Semaphore>, index: u64, due: Instant) -> Flight {
        acks.ledger.mark_sent(index);
        let permit = permits.clone().try_acquire_owned();
        let Ok(permit) = permit else {
            panic!("no permit left");
        };
        Flight::new(
            acks.clone(),
            index,
            due,
            0,
            send_frame(7, "hi", &format!("k{index}")),
            permit,
        )
    }

    fn queued(outbox: &mut mpsc::UnboundedReceiver<Outgoing>) -> Vec<String> {
        std::iter::from_fn(|| outbox.try_recv().ok().map(|o| o.key)).collect()
    }

    #[test]
    fn answers_out_of_order_are_matched_by_key() {
        let (acks, permits, start) = setup(3);
        let (line, mut outbox) = Line::new();
        for index in 0..3 {
            line.submit(format!("k{index}"), flight(&acks, &permits, index, start));
        }
        assert_eq!(queued(&mut outbox), ["k0", "k1", "k2"]);
        for key in ["k0", "k1", "k2"] {
            line.writing(key);
        }
        assert_eq!(permits.available_permits(), 7);

        assert!(line.answer("k2", Answer::Sent, start + 30 * MS));
        assert!(line.answer("k0", Answer::Sent, start + 10 * MS));
        assert!(line.answer("k1", Answer::Error("forbidden"), start + 20 * MS));
        assert!(!line.answer("k1", Answer::Sent, start + 40 * MS));
        assert!(!line.answer("other", Answer::Sent, start));
        assert_eq!(line.waiting(), 0);
        assert_eq!(permits.available_permits(), 10);
        assert_eq!(acks.last(), Some(start + 30 * MS));

        let tally = acks.ledger.summarize();
        assert_eq!((tally.acked, tally.failed, tally.unanswered), (2, 1, 0));
        assert_eq!(tally.errors.get("ws forbidden"), Some(&1));
        assert_eq!(tally.ack_latency.max_us / 1_000, 30);
    }

    #[test]
    fn a_closed_connection_resends_written_sends_once() {
        let (acks, permits, start) = setup(3);
        let (line, mut outbox) = Line::new();
        for index in 0..3 {
            line.submit(format!("k{index}"), flight(&acks, &permits, index, start));
        }
        // k0 and k1 reached the connection, k2 is still queued when it closes.
        let _ = queued(&mut outbox);
        line.writing("k0");
        line.writing("k1");
        assert_eq!(
            line.connection_lost(),
            Lost {
                resent: 2,
                failed: 0
            }
        );
        let mut again = queued(&mut outbox);
        again.sort();
        assert_eq!(again, ["k0", "k1"]);

        // The next connection takes k0 and k2 and closes too: k0 has had its
        // retry, k2 gets one.
        line.writing("k0");
        line.writing("k2");
        assert_eq!(
            line.connection_lost(),
            Lost {
                resent: 1,
                failed: 1
            }
        );
        assert_eq!(queued(&mut outbox), ["k2"]);
        line.writing("k1");
        line.writing("k2");
        assert!(line.answer("k1", Answer::Sent, start + MS));
        assert!(line.answer("k2", Answer::Sent, start + MS));
        assert!(!line.answer("k0", Answer::Sent, start + MS));

        let tally = acks.ledger.summarize();
        assert_eq!((tally.acked, tally.failed), (2, 1));
        assert_eq!(tally.errors.get("ws closed"), Some(&1));
        assert_eq!(permits.available_permits(), 10);
    }

    #[test]
    fn a_gone_connection_fails_sends_at_once() {
        let (acks, permits, start) = setup(1);
        let (line, outbox) = Line::new();
        drop(outbox);
        line.submit("k0".into(), flight(&acks, &permits, 0, start));
        assert_eq!(line.waiting(), 0);
        assert_eq!(permits.available_permits(), 10);
        assert_eq!(acks.ledger.summarize().errors.get("ws gone"), Some(&1));
    }

    #[test]
    fn send_frames_follow_the_protocol() {
        let frame: serde_json::Value = serde_json::from_str(&send_frame(7, "a \"b\"", "k-1"))
            .unwrap_or(serde_json::Value::Null);
        assert_eq!(
            frame,
            serde_json::json!({"type": "send", "conversation_id": 7, "text": "a \"b\"", "idempotency_key": "k-1"})
        );
    }
}
