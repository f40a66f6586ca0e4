//! One task per WebSocket connection: replay, then a loop in which reads,
//! queued events and the answers to sends take turns, writing what is due
//! together in one batch; last, the closing handshake when the server ends
//! the connection.

use super::frames::{self, ClientFrame, SendFrame, error_frame};
use super::hub::{Outgoing, StopReason};
use super::{SESSION_ENDED, replay};
use crate::app::App;
use crate::auth::Authed;
use crate::http::error::ApiError;
use crate::service::messaging::{self, Draft};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use switchboard_domain::{Cursor, EventKind, ReplayGate};
use tungstenite::error::{CapacityError, ProtocolError};

/// Sends of one connection being stored at once; past this the connection
/// stops reading until one finishes.
const SENDS_IN_FLIGHT: usize = 64;

/// How long the server waits, once it has decided to close a connection,
/// for its Close frame to be written and the client's to come back.
const CLOSING_BOUND: Duration = Duration::from_secs(2);

/// The largest frame still read (and discarded) after it was refused as too
/// large: reading it lets the closing handshake finish, but the codec
/// buffers the whole frame to skip it, so a larger one ends the connection
/// at once.
const DRAINABLE_FRAME: usize = 1024 * 1024;

/// How the server ends a connection: a Close frame with this code and
/// reason, then the closing handshake.
struct Closing {
    code: u16,
    reason: Utf8Bytes,
    /// Whether what the client sends after the fault can still be read,
    /// so the server can wait for its Close.
    readable: bool,
}

impl Closing {
    fn new(code: u16, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code,
            reason: reason.into(),
            readable: true,
        }
    }
}

/// The answer to a frame that breaks RFC 6455 (section 7.4.1 lists the
/// codes); `None` when the connection itself failed or the client left, and
/// there is nobody to tell.
fn protocol_close(error: &axum::Error) -> Option<Closing> {
    let error = error.source()?.downcast_ref::<tungstenite::Error>()?;
    match error {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Some(Closing {
                readable: *size <= DRAINABLE_FRAME,
                ..Closing::new(
                    close_code::SIZE,
                    close_reason(format!(
                        "frame of {size} bytes; at most {max_size} are accepted"
                    )),
                )
            })
        }
        tungstenite::Error::Utf8(_) => Some(Closing::new(
            close_code::INVALID,
            "a text frame is not valid UTF-8",
        )),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        tungstenite::Error::Protocol(e) => Some(Closing::new(
            close_code::PROTOCOL,
            close_reason(e.to_string()),
        )),
        _ => None,
    }
}

/// A close reason fits in a control frame: 123 bytes at most.
fn close_reason(mut reason: String) -> Utf8Bytes {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut end = MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason.into()
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

/// Reads and writes take turns in one loop, so the socket is not split into
/// halves that would lock each other on every poll.
pub(super) async fn run(app: Arc<App>, auth: Authed, from: Option<Cursor>, mut socket: WebSocket) {
    let me = auth.session.extension.id;
    let (conn_id, mut rx, stop) = app
        .gateway
        .register(me, auth.token_hash.tag(), &app.shutdown);
    app.metrics.ws_connections.inc();

    let org = auth.session.org.id;
    let mut tracking = false;
    // `Ok(None)`: the client closed; `Ok(Some(_))`: the server closes;
    // `Err(_)`: the connection failed and there is nobody to tell.
    let ending: Result<Option<Closing>, String> = async {
        // This node follows the organization's events before the catch-up
        // reads the store, so each event is in the catch-up or queued for
        // us live (the gate drops what is in both).
        app.bus.track(org).await.map_err(|e| e.to_string())?;
        tracking = true;
        let mut gate = replay::catch_up(&app, me, org, from, &mut socket).await?;

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
                () = &mut stopped => return Ok(Some(stop_closing(stop.reason()))),
                out = rx.recv() => {
                    let Some(out) = out else { return Err("the gateway dropped the connection".to_owned()) };
                    batch.extend(admitted(&mut gate, out));
                }
                Some(answer) = sending.next(), if !sending.is_empty() => batch.push(Utf8Bytes::from(answer)),
                incoming = next_frame(&mut socket, &interest, &socket_waker), if sending.len() < SENDS_IN_FLIGHT => {
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            match frames::parse_client_frame(text.as_str()) {
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
                        // Only text frames carry JSON; the connection stays
                        // open, as for a text frame that is not a frame we know.
                        Some(Ok(Message::Binary(_))) => batch.push(Utf8Bytes::from_static(frames::BINARY_REFUSED)),
                        // Pings are answered by the codec itself.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return Ok(None),
                        Some(Err(e)) => return protocol_close(&e).map(Some).ok_or_else(|| e.to_string()),
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
            // connection is closed, waiting no longer than the closing
            // handshake's bound.
            let write = async {
                for text in batch.drain(..) {
                    socket.feed(Message::Text(text)).await?;
                }
                socket.flush().await
            };
            tokio::select! {
                written = write => written.map_err(|e| e.to_string())?,
                () = &mut stopped => return Ok(Some(stop_closing(stop.reason()))),
            }
        }
    }
    .await;

    // Nothing more is delivered to a connection that is closing.
    app.gateway.unregister(me, conn_id);
    if tracking {
        app.bus.untrack(org);
    }
    let outcome = match ending {
        Ok(Some(closing)) => {
            let code = closing.code;
            close(&mut socket, closing)
                .await
                .map_err(|e| format!("closing with {code}: {e}"))
        }
        // The codec queued the answer to the client's Close; send it.
        Ok(None) => tokio::time::timeout(CLOSING_BOUND, socket.flush())
            .await
            .map_err(|_| "answering the client's Close timed out".to_owned())
            .and_then(|flushed| flushed.map_err(|e| e.to_string())),
        Err(reason) => Err(reason),
    };
    if let Err(reason) = outcome {
        tracing::debug!(extension = %me, conn = conn_id, %reason, "websocket ended");
    }
    app.metrics.ws_connections.dec();
}

/// How a connection told to stop is closed.
fn stop_closing(reason: StopReason) -> Closing {
    match reason {
        StopReason::ShuttingDown => Closing::new(close_code::AWAY, "server shutting down"),
        StopReason::TooSlow => Closing::new(close_code::POLICY, "too slow"),
        StopReason::SessionEnded => Closing::new(SESSION_ENDED, "session ended"),
    }
}

/// Sends the Close frame, then reads and discards what the client still
/// sends until its Close arrives, within [`CLOSING_BOUND`]. Dropping a
/// connection with the client's frames unread resets it, and a reset can
/// destroy the Close frame before the client reads it: the client would see
/// an abnormal closure (1006) instead of the code.
async fn close(socket: &mut WebSocket, closing: Closing) -> Result<(), String> {
    let readable = closing.readable;
    let handshake = async {
        socket
            .send(Message::Close(Some(CloseFrame {
                code: closing.code,
                reason: closing.reason,
            })))
            .await
            .map_err(|e| e.to_string())?;
        if !readable {
            return Ok(());
        }
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {}
                // Another bad frame after the first: skip it too.
                Err(e) if protocol_close(&e).is_some_and(|c| c.readable) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    };
    tokio::time::timeout(CLOSING_BOUND, handshake)
        .await
        .map_err(|_| "the client did not answer the Close in time".to_owned())?
}

/// The frame of a queued event, unless replay already sent it.
fn admitted(gate: &mut ReplayGate, out: Outgoing) -> Option<Utf8Bytes> {
    match out.cursor {
        Some(cursor) if !gate.admit(cursor) => None,
        _ => Some(out.text),
    }
}

/// Stores a message sent over the WebSocket and says how it went: a `sent`
/// frame with the stored message, or an `error` frame; both name the
/// idempotency key so the client can match them to its sends.
async fn send_message(app: &App, auth: &Authed, frame: SendFrame) -> String {
    let draft = Draft {
        conversation_id: frame.conversation_id,
        text: &frame.text,
        idempotency_key: Some(&frame.idempotency_key),
        attachments: &frame.attachments,
    };
    match messaging::post_message(app, &auth.session.extension, draft).await {
        Ok(committed) => {
            let stored = committed
                .events
                .iter()
                .find(|e| e.kind() == EventKind::MessageCreated)
                .map(|e| &*e.payload);
            frames::sent_frame(&frame.idempotency_key, &committed.value.message, stored)
        }
        Err(e) => {
            let e = ApiError::from(e);
            error_frame(e.code, &e.message, Some(&frame.idempotency_key))
        }
    }
}

/// Answers the frames that are not sends; `None` when there is nothing to say.
async fn handle_client_frame(app: &App, auth: &Authed, frame: ClientFrame) -> Option<String> {
    let me = auth.session.extension.id;
    let outcome = match frame {
        ClientFrame::Send(_) => return None,
        ClientFrame::Ping {} => return Some(frames::PONG.to_owned()),
        ClientFrame::Typing { conversation_id } => {
            messaging::typing(app, &auth.session.extension, conversation_id).await
        }
        ClientFrame::Read {
            conversation_id,
            message_id,
        } => messaging::mark_read(app, me, conversation_id, message_id)
            .await
            .map(|_| ()),
    };
    outcome.err().map(|e| {
        let e = ApiError::from(e);
        error_frame(e.code, &e.message, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closing_for(error: tungstenite::Error) -> Option<(u16, bool)> {
        protocol_close(&axum::Error::new(error)).map(|c| (c.code, c.readable))
    }

    fn too_long(size: usize) -> tungstenite::Error {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong {
            size,
            max_size: 1000,
        })
    }

    #[test]
    fn each_protocol_fault_has_its_close_code() {
        use tungstenite::Error;
        assert_eq!(closing_for(Error::Utf8("bad".into())), Some((1007, true)));
        assert_eq!(closing_for(too_long(2000)), Some((1009, true)));
        assert_eq!(
            closing_for(too_long(DRAINABLE_FRAME + 1)),
            Some((1009, false)),
            "a frame too large to skip is not read"
        );
        assert_eq!(
            closing_for(Error::Protocol(ProtocolError::NonZeroReservedBits)),
            Some((1002, true))
        );
        assert_eq!(
            closing_for(Error::Protocol(ProtocolError::UnmaskedFrameFromClient)),
            Some((1002, true))
        );
        assert_eq!(
            closing_for(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)),
            None,
            "a client that vanished is not told"
        );
        assert_eq!(closing_for(Error::ConnectionClosed), None);
    }

    #[test]
    fn a_close_reason_fits_a_control_frame() {
        let reason = close_reason("é".repeat(100));
        assert!(reason.len() <= 123);
        assert!(reason.as_str().chars().all(|c| c == 'é'));
    }
}
