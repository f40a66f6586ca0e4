//! One task per WebSocket connection: replay, then a loop in which reads,
//! queued events and the answers to sends take turns, writing what is due
//! together in one batch.

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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use switchboard_domain::{Cursor, EventKind, ReplayGate};

/// Sends of one connection being stored at once; past this the connection
/// stops reading until one finishes.
const SENDS_IN_FLIGHT: usize = 64;

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

    let result = async {
        // Live events are already queued for us; now catch up from the store.
        let mut gate = replay::catch_up(&app, me, from, &mut socket).await?;

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

/// Stores a message sent over the WebSocket and says how it went: a `sent`
/// frame with the stored message, or an `error` frame; both name the
/// idempotency key so the client can match them to its sends.
async fn send_message(app: &App, auth: &Authed, frame: SendFrame) -> String {
    let draft = Draft {
        conversation_id: frame.conversation_id,
        text: &frame.text,
        idempotency_key: Some(&frame.idempotency_key),
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
        ClientFrame::Ping => return Some(frames::PONG.to_owned()),
        ClientFrame::Typing { conversation_id } => {
            messaging::typing(app, me, conversation_id).await
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
