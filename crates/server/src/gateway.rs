//! The WebSocket gateway: one task per connection, a registry of local
//! connections per extension, and the bus sink that fans events out to them.
//!
//! Each connection has a bounded outgoing queue. The sink never waits: when
//! a queue is full the connection is marked too slow and closed; the client
//! resumes from its cursor on reconnect, so nothing is lost and a stalled
//! client cannot make the server's memory grow.

use crate::app::{App, durable_frame};
use crate::auth::{Authed, Credential};
use crate::error::ApiError;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, SinkExt, StreamExt};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use switchboard_bus::{Envelope, Sink};
use switchboard_domain::{ConversationId, Cursor, ExtensionId, MessageId, ReplayGate};
use switchboard_store::TokenHash;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Close code when the session was signed out, its password changed or its
/// extension disabled: the client should go back to sign-in, not reconnect.
pub const SESSION_ENDED: u16 = 4401;

/// Frames that may wait for one connection before it counts as too slow.
pub const OUTGOING_QUEUE: usize = 256;
/// Events read per store query while replaying.
const REPLAY_BATCH: u32 = 500;
/// A client further behind than this reloads over REST instead of replaying.
const REPLAY_LIMIT: usize = 20_000;

struct Outgoing {
    cursor: Option<Cursor>,
    text: Utf8Bytes,
}

struct Connection {
    id: u64,
    tx: mpsc::Sender<Outgoing>,
    session: TokenHash,
    stop: Arc<Stop>,
}

/// Why a connection task stops, besides its client leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    ShuttingDown,
    TooSlow,
    SessionEnded,
}

/// A connection's stop signal: the reason it stopped (none yet while it
/// runs) and the connection task's waker, so the connection loop checks it on
/// every turn with an atomic load (a cancellation token takes a lock for
/// that). The server's shutdown reaches every connection through
/// [`Gateway::stop_all`]; the first reason given is the one kept.
struct Stop {
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
    fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
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

    fn reason(&self) -> StopReason {
        match self.reason.load(Ordering::Acquire) {
            2 => StopReason::TooSlow,
            3 => StopReason::SessionEnded,
            _ => StopReason::ShuttingDown,
        }
    }
}

/// Whether a connection's socket may have something to read. The loop polls
/// the WebSocket only then: each poll zero-fills tungstenite's read buffer
/// before it learns there is nothing to read, and a connection is woken far
/// more often for events to deliver than for frames to read.
struct ReadInterest {
    /// Set by the socket's wake-up (and to begin with): poll it.
    ready: AtomicBool,
    /// The connection task, woken on the socket's behalf.
    task: AtomicWaker,
}

impl std::task::Wake for ReadInterest {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The socket's next frame, polling it only when it has signalled (through
/// `interest`, handed to it as its waker) that it may have one.
fn next_frame<'a>(
    socket: &'a mut WebSocket,
    interest: &'a Arc<ReadInterest>,
    socket_waker: &'a Waker,
) -> impl Future<Output = Option<Result<Message, axum::Error>>> + 'a {
    std::future::poll_fn(move |cx| {
        interest.task.register(cx.waker());
        if !interest.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        match socket.poll_next_unpin(&mut Context::from_waker(socket_waker)) {
            Poll::Ready(frame) => {
                // More frames may already be buffered: look again next time.
                interest.ready.store(true, Ordering::Release);
                Poll::Ready(frame)
            }
            Poll::Pending => Poll::Pending,
        }
    })
}

pub struct Gateway {
    connections: RwLock<HashMap<ExtensionId, Vec<Connection>>>,
    next_id: AtomicU64,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Gateway {
    pub fn new(metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            connections: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            metrics,
        }
    }

    fn register(
        &self,
        ext: ExtensionId,
        session: TokenHash,
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

    /// Closes the connections of one session (it was signed out).
    pub fn end_session(&self, ext: ExtensionId, session: &TokenHash) {
        if let Some(list) = self.connections.read().get(&ext) {
            for c in list.iter().filter(|c| &c.session == session) {
                c.stop.request(StopReason::SessionEnded);
            }
        }
    }

    /// Closes every connection of an extension except those of `keep` (its
    /// password was changed, or it was disabled).
    pub fn end_extension(&self, ext: ExtensionId, keep: Option<&TokenHash>) {
        if let Some(list) = self.connections.read().get(&ext) {
            for c in list.iter().filter(|c| Some(&c.session) != keep) {
                c.stop.request(StopReason::SessionEnded);
            }
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

    fn unregister(&self, ext: ExtensionId, id: u64) {
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

#[derive(Deserialize)]
pub struct WsParams {
    cursor: Option<String>,
}

/// Frames a client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientFrame {
    Typing {
        conversation_id: ConversationId,
    },
    Read {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    Ping,
    Send(SendFrame),
}

/// A message sent over the WebSocket instead of `POST …/messages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFrame {
    conversation_id: ConversationId,
    text: String,
    idempotency_key: String,
}

/// Largest client frame accepted: a send carries up to 10,000 characters,
/// like the REST body limit.
const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Read in small chunks: most client frames are tiny, and an idle
/// connection should cost little.
const READ_BUFFER: usize = 4096;
/// Frames ready together are written at once; a batch larger than this many
/// bytes is written in parts as it is gathered.
const WRITE_BATCH: usize = 16 * 1024;
/// Sends of one connection being stored at once; past this the connection
/// stops reading until one finishes.
const SENDS_IN_FLIGHT: usize = 64;

/// `GET /api/v1/ws`: upgrades an authenticated request to the event stream.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    auth: Authed,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // A cookie rides along on cross-site WebSocket requests too; only our own
    // pages may use it.
    if auth.credential == Credential::Cookie && !same_origin(&headers) {
        return Err(ApiError::forbidden(
            "WebSocket connections with a session cookie must come from this site",
        ));
    }
    let from = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            Some(Cursor::parse(c).ok_or_else(|| ApiError::bad_request("cursor must be a number"))?)
        }
    };
    let tasks = app.tasks.clone();
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        // Frames are written in batches and flushed at the end of each.
        .write_buffer_size(WRITE_BATCH)
        // Client frames are tiny; the default 128 KiB read buffer would be
        // most of an idle connection's memory.
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| tasks.track_future(run_connection(app, auth, from, socket))))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser: a browser always sends Origin on WebSocket requests.
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// Reads and writes take turns in one loop, so the socket is not split into
/// halves that would lock each other on every poll.
async fn run_connection(app: Arc<App>, auth: Authed, from: Option<Cursor>, mut socket: WebSocket) {
    let me = auth.session.extension.id;
    let (conn_id, mut rx, stop) = app
        .gateway
        .register(me, auth.token_hash.clone(), &app.shutdown);
    app.metrics.ws_connections.inc();

    let result = async {
        // Live events are already queued for us; now catch up from the store.
        let latest = app.store.latest_cursor().await.map_err(|e| e.to_string())?;
        let mut gate = ReplayGate::new(from.unwrap_or(latest));
        if let Some(from) = from {
            let mut replayed = 0usize;
            loop {
                let events = app
                    .store
                    .events_after(me, gate.last(), REPLAY_BATCH)
                    .await
                    .map_err(|e| e.to_string())?;
                if events.is_empty() {
                    break;
                }
                replayed += events.len();
                if replayed > REPLAY_LIMIT {
                    let frame = format!(r#"{{"type":"resync","cursor":"{latest}"}}"#);
                    socket.send(Message::Text(frame.into())).await.map_err(|e| e.to_string())?;
                    gate = ReplayGate::new(latest.max(from));
                    break;
                }
                for e in events {
                    if gate.admit(e.cursor) {
                        let frame = durable_frame(&e.kind, e.cursor, &e.payload);
                        socket.send(Message::Text(frame.into()))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        let ready = format!(r#"{{"type":"ready","cursor":"{}"}}"#, gate.last().max(latest));
        socket.send(Message::Text(ready.into())).await.map_err(|e| e.to_string())?;

        // Sends being stored; each answers with a `sent` or `error` frame.
        let mut sending = FuturesUnordered::new();
        // Frames due at the same moment (an echo and the answer to the send
        // that caused it, a burst of events) leave in one write.
        let mut batch: Vec<Utf8Bytes> = Vec::new();
        let mut stopped = std::future::poll_fn(|cx| stop.poll_stopped(cx));
        let interest = Arc::new(ReadInterest {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let socket_waker = Waker::from(interest.clone());
        loop {
            tokio::select! {
                biased;
                () = &mut stopped => {
                    let (code, reason) = match stop.reason() {
                        StopReason::ShuttingDown => (close_code::AWAY, "server shutting down"),
                        StopReason::TooSlow => (close_code::POLICY, "too slow"),
                        StopReason::SessionEnded => (SESSION_ENDED, "session ended"),
                    };
                    let _ = socket.send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    }))).await;
                    return Ok(());
                }
                out = rx.recv() => {
                    let Some(out) = out else { return Ok(()) };
                    batch.extend(admitted(&mut gate, out));
                }
                Some(answer) = sending.next(), if !sending.is_empty() => batch.push(Utf8Bytes::from(answer)),
                incoming = next_frame(&mut socket, &interest, &socket_waker), if sending.len() < SENDS_IN_FLIGHT => {
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<ClientFrame>(text.as_str()) {
                                Ok(ClientFrame::Send(frame)) => {
                                    // Stored concurrently; answered once committed.
                                    sending.push(send_message(&app, &auth, frame));
                                }
                                Ok(frame) => {
                                    if let Some(reply) = handle_client_frame(&app, &auth, frame).await {
                                        batch.push(reply.into());
                                    }
                                }
                                Err(e) => {
                                    batch.push(error_frame("bad_request", &format!("unreadable frame: {e}"), None).into());
                                }
                            }
                        }
                        Some(Ok(Message::Close(_))) | None => return Ok(()),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            while let Ok(out) = rx.try_recv() {
                batch.extend(admitted(&mut gate, out));
            }
            while let Some(Some(answer)) = sending.next().now_or_never() {
                batch.push(Utf8Bytes::from(answer));
            }
            // A client that stopped reading blocks this write once the
            // socket buffers fill; its queue then overflows and the
            // connection is dropped without waiting further.
            let write = async {
                for text in batch.drain(..) {
                    socket.feed(Message::Text(text)).await?;
                }
                socket.flush().await
            };
            tokio::select! {
                written = write => written.map_err(|e| e.to_string())?,
                () = &mut stopped => return Err(format!("{:?} while writing", stop.reason())),
            }
        }
    }
    .await;

    if let Err(reason) = result {
        tracing::debug!(extension = %me, conn = conn_id, %reason, "websocket ended");
    }
    app.gateway.unregister(me, conn_id);
    app.metrics.ws_connections.dec();
}

/// The frame of a queued event, unless replay already sent it.
fn admitted(gate: &mut ReplayGate, out: Outgoing) -> Option<Utf8Bytes> {
    match out.cursor {
        Some(cursor) if !gate.admit(cursor) => None,
        _ => Some(out.text),
    }
}

fn error_frame(code: &str, message: &str, idempotency_key: Option<&str>) -> String {
    let mut data = serde_json::json!({"code": code, "message": message});
    if let Some(key) = idempotency_key {
        data["idempotency_key"] = key.into();
    }
    serde_json::json!({"type": "error", "data": data}).to_string()
}

#[derive(Serialize)]
struct SentFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: Sent<'a>,
}

#[derive(Serialize)]
struct Sent<'a> {
    idempotency_key: &'a str,
    message: &'a switchboard_domain::Message,
}

/// Stores a message sent over the WebSocket and says how it went: a `sent`
/// frame with the stored message, or an `error` frame; both name the
/// idempotency key so the client can match them to its sends.
async fn send_message(app: &App, auth: &Authed, frame: SendFrame) -> String {
    let key = frame.idempotency_key;
    let fail = |e: ApiError| error_frame(e.code, &e.message, Some(&key));
    let parsed = switchboard_domain::MessageText::parse(&frame.text)
        .and_then(|text| Ok((text, switchboard_domain::IdempotencyKey::parse(&key)?)));
    let (text, idempotency_key) = match parsed {
        Ok(v) => v,
        Err(e) => return fail(e.into()),
    };
    let me = &auth.session.extension;
    let posted = app
        .store
        .post_message(switchboard_store::NewMessage {
            conversation_id: frame.conversation_id,
            sender: me.as_ref(),
            text,
            idempotency_key: Some(idempotency_key),
            now: app.clock.now(),
        })
        .await;
    match posted {
        Ok(committed) => {
            if !committed.value.replayed {
                app.typing.stopped(frame.conversation_id, me.id);
            }
            let stored = committed
                .events
                .iter()
                .find(|e| e.kind == "message.created")
                .and_then(|e| sent_frame_around(&key, &e.payload));
            if let Some(frame) = stored {
                return frame;
            }
            let sent = SentFrame {
                kind: "sent",
                data: Sent {
                    idempotency_key: &key,
                    message: &committed.value.message,
                },
            };
            serde_json::to_string(&sent).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot encode a sent frame");
                error_frame("internal", "the message was stored but the answer could not be encoded; it arrives as an event", Some(&key))
            })
        }
        Err(e) => fail(e.into()),
    }
}

/// The `sent` frame built around the stored event's JSON (`{"message":…}`),
/// so a send's message is encoded once, not again for its answer; `None`
/// when the payload does not have that shape.
fn sent_frame_around(idempotency_key: &str, event_payload: &str) -> Option<String> {
    let message = event_payload.strip_prefix(r#"{"message":"#)?;
    let key = serde_json::to_string(idempotency_key).ok()?;
    let head = r#"{"type":"sent","data":{"idempotency_key":"#;
    let mut frame = String::with_capacity(head.len() + key.len() + event_payload.len() + 2);
    frame.push_str(head);
    frame.push_str(&key);
    frame.push_str(r#","message":"#);
    frame.push_str(message);
    frame.push('}');
    Some(frame)
}

async fn handle_client_frame(app: &Arc<App>, auth: &Authed, frame: ClientFrame) -> Option<String> {
    let me = auth.session.extension.id;
    match frame {
        ClientFrame::Send(_) => None,
        ClientFrame::Ping => Some(r#"{"type":"pong"}"#.to_owned()),
        ClientFrame::Typing { conversation_id } => {
            match app.store.conversation_for(me, conversation_id).await {
                Ok(Some(c)) => {
                    let recipients = c.participants.iter().map(|p| p.id).collect();
                    app.typing.typing(conversation_id, me, recipients);
                    None
                }
                Ok(None) => Some(error_frame(
                    "not_found",
                    "conversation does not exist or is not visible to you",
                    None,
                )),
                Err(e) => {
                    tracing::error!(error = %e, "typing lookup failed");
                    Some(error_frame("internal", "could not record typing", None))
                }
            }
        }
        ClientFrame::Read {
            conversation_id,
            message_id,
        } => match app
            .store
            .mark_read(me, conversation_id, message_id, app.clock.now())
            .await
        {
            Ok(_) => None,
            Err(e) => {
                let err = ApiError::from(e);
                Some(error_frame(err.code, &err.message, None))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::{Event, ExtensionRef, MessageKind, Timestamp};

    #[test]
    fn sent_frame_around_the_event_matches_the_encoded_frame() {
        let message = switchboard_domain::Message {
            id: MessageId(7),
            conversation_id: ConversationId(3),
            kind: MessageKind::Text,
            sender: Some(ExtensionRef {
                id: ExtensionId(2),
                number: "102".into(),
                name: "Ann \"A\" Lee".into(),
            }),
            text: "héllo\n{\"message\":1}".into(),
            system: None,
            created_at: Timestamp(1_700_000_000_000),
            idempotency_key: Some("k-1".into()),
        };
        let payload = serde_json::to_string(&Event::MessageCreated {
            message: message.clone(),
        })
        .unwrap();
        let key = "k-\"1\"";
        let built = sent_frame_around(key, &payload).expect("a message.created payload");
        let encoded = serde_json::to_string(&SentFrame {
            kind: "sent",
            data: Sent {
                idempotency_key: key,
                message: &message,
            },
        })
        .unwrap();
        let built: serde_json::Value = serde_json::from_str(&built).unwrap();
        let encoded: serde_json::Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(built, encoded);
    }

    #[test]
    fn sent_frame_around_refuses_other_payloads() {
        assert_eq!(sent_frame_around("k", r#"{"conversation":{}}"#), None);
    }

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
