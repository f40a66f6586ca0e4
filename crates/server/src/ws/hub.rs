//! The registry of this node's WebSocket connections per extension, their
//! stop signals, and the bus sink that fans events out to them.
//!
//! Each connection has a bounded outgoing queue. The sink never waits: when
//! a queue is full the connection is marked too slow and closed; the client
//! resumes from its cursor on reconnect, so nothing is lost and a stalled
//! client cannot make the server's memory grow.

use crate::metrics::Metrics;
use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use switchboard_bus::{Envelope, Sink};
use switchboard_domain::{Cursor, EndedSessions, Event, ExtensionId, SessionTag};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames that may wait for one connection before it counts as too slow.
pub const OUTGOING_QUEUE: usize = 256;

pub(super) struct Outgoing {
    pub cursor: Option<Cursor>,
    pub text: Utf8Bytes,
}

struct Connection {
    id: u64,
    tx: mpsc::Sender<Outgoing>,
    session: SessionTag,
    stop: Arc<Stop>,
}

/// Why a connection task stops, besides its client leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopReason {
    ShuttingDown,
    TooSlow,
    SessionEnded,
}

/// A connection's stop signal: the reason it stopped (none yet while it
/// runs) and the connection task's waker, so the connection loop checks it on
/// every turn with an atomic load (a cancellation token takes a lock for
/// that). The server's shutdown reaches every connection through
/// [`Gateway::stop_all`]; the first reason given is the one kept.
pub(super) struct Stop {
    reason: AtomicU8,
    waker: AtomicWaker,
}

const RUNNING: u8 = 0;

impl Stop {
    fn new() -> Self {
        Self {
            reason: AtomicU8::new(RUNNING),
            waker: AtomicWaker::new(),
        }
    }

    /// Stops the connection; true if this was the first reason.
    fn request(&self, reason: StopReason) -> bool {
        let code = match reason {
            StopReason::ShuttingDown => 1,
            StopReason::TooSlow => 2,
            StopReason::SessionEnded => 3,
        };
        let first = self
            .reason
            .compare_exchange(RUNNING, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.waker.wake();
        first
    }

    fn stopped(&self) -> bool {
        self.reason.load(Ordering::Acquire) != RUNNING
    }

    /// Ready once the connection was told to stop.
    pub(super) fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.stopped() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A stop between the load and the registration woke the old waker.
        if self.stopped() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub(super) fn reason(&self) -> StopReason {
        match self.reason.load(Ordering::Acquire) {
            2 => StopReason::TooSlow,
            3 => StopReason::SessionEnded,
            _ => StopReason::ShuttingDown,
        }
    }
}

pub struct Gateway {
    connections: RwLock<HashMap<ExtensionId, Vec<Connection>>>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            connections: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            metrics,
        }
    }

    pub(super) fn register(
        &self,
        ext: ExtensionId,
        session: SessionTag,
        shutdown: &CancellationToken,
    ) -> (u64, mpsc::Receiver<Outgoing>, Arc<Stop>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let stop = Arc::new(Stop::new());
        self.connections
            .write()
            .entry(ext)
            .or_default()
            .push(Connection {
                id,
                tx,
                session,
                stop: Arc::clone(&stop),
            });
        // `stop_all` runs after the shutdown is cancelled and sees every
        // connection registered before it; one registered later sees this.
        if shutdown.is_cancelled() {
            stop.request(StopReason::ShuttingDown);
        }
        (id, rx, stop)
    }

    /// The session of every connection open on this node, with its
    /// extension; a session with several connections is listed once.
    pub fn open_sessions(&self) -> Vec<(ExtensionId, SessionTag)> {
        let connections = self.connections.read();
        let mut open: Vec<(ExtensionId, SessionTag)> = Vec::new();
        for (ext, list) in connections.iter() {
            for c in list {
                if !open
                    .iter()
                    .rev()
                    .take_while(|(e, _)| e == ext)
                    .any(|(_, s)| *s == c.session)
                {
                    open.push((*ext, c.session));
                }
            }
        }
        open
    }

    /// Closes the connections of one session with 4401: it was signed out,
    /// expired, or ended where this node could not hear it.
    pub fn end_session(&self, ext: ExtensionId, session: SessionTag) {
        if let Some(list) = self.connections.read().get(&ext) {
            for c in list.iter().filter(|c| c.session == session) {
                c.stop.request(StopReason::SessionEnded);
            }
        }
    }

    /// Closes every connection of an extension except those of `keep` (its
    /// password was changed, or it was disabled).
    fn end_extension(&self, ext: ExtensionId, keep: Option<SessionTag>) {
        if let Some(list) = self.connections.read().get(&ext) {
            for c in list.iter().filter(|c| Some(c.session) != keep) {
                c.stop.request(StopReason::SessionEnded);
            }
        }
    }

    /// Acts on the events that end sessions, wherever they were committed.
    fn end_what_ended(&self, event: &Event) {
        match event {
            Event::SessionEnded {
                extension_id,
                session,
            } => self.end_session(*extension_id, *session),
            Event::ExtensionChanged {
                extension_id,
                sessions_ended: EndedSessions::AllExcept(keep),
            } => self.end_extension(*extension_id, *keep),
            _ => {}
        }
    }

    /// Closes every connection with 1001: the server is shutting down.
    pub fn stop_all(&self) {
        for list in self.connections.read().values() {
            for c in list {
                c.stop.request(StopReason::ShuttingDown);
            }
        }
    }

    pub(super) fn unregister(&self, ext: ExtensionId, id: u64) {
        let mut map = self.connections.write();
        if let Some(list) = map.get_mut(&ext) {
            list.retain(|c| c.id != id);
            if list.is_empty() {
                map.remove(&ext);
            }
        }
    }

    /// Connections currently open on this node.
    pub fn connection_count(&self) -> usize {
        self.connections.read().values().map(Vec::len).sum()
    }
}

impl Sink for Gateway {
    fn deliver(&self, envelope: &Envelope) {
        if let Some(event) = &envelope.event {
            self.end_what_ended(event);
            if !event.kind().reaches_clients() {
                return;
            }
        }
        let Ok(text) = Utf8Bytes::try_from(envelope.frame.clone()) else {
            tracing::error!("dropping an event frame that is not UTF-8");
            return;
        };
        let connections = self.connections.read();
        let mut delivered = 0u64;
        for recipient in envelope.recipients.iter() {
            if envelope.except == Some(*recipient) {
                continue;
            }
            let Some(list) = connections.get(recipient) else {
                continue;
            };
            for c in list {
                let frame = Outgoing {
                    cursor: envelope.cursor,
                    text: text.clone(),
                };
                match c.tx.try_send(frame) {
                    Ok(()) => delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if c.stop.request(StopReason::TooSlow) {
                            self.metrics.slow_clients_disconnected.inc();
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        self.metrics.frames_delivered.inc_by(delivered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_wakes_the_waiting_connection_and_keeps_the_first_reason() {
        let stop = Arc::new(Stop::new());
        let waiting = wait_on_own_thread(Arc::clone(&stop));
        assert!(stop.request(StopReason::TooSlow));
        assert!(!stop.request(StopReason::SessionEnded));
        // Generous: a lost wake-up leaves the task waiting for ever.
        waiting
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the stop woke the waiting task");
        assert_eq!(stop.reason(), StopReason::TooSlow);
    }

    /// Waits for `stop` on a runtime of its own thread, once that wait has
    /// been polled; the receiver hears when the wait is over.
    fn wait_on_own_thread(stop: Arc<Stop>) -> std::sync::mpsc::Receiver<()> {
        let (polled, was_polled) = std::sync::mpsc::channel();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut first = true;
                std::future::poll_fn(|cx| {
                    let ready = stop.poll_stopped(cx);
                    if first {
                        first = false;
                        let _ = polled.send(());
                    }
                    ready
                })
                .await;
            });
            let _ = done.send(());
        });
        was_polled.recv().expect("the task was polled");
        finished
    }
}
