//! The WebSocket half of the client protocol: connect with a bearer token
//! (optionally from a chosen loopback source address), wait for `ready`, then
//! read `message.created` frames and account for the generator's own messages.
//! A receiver that is disconnected comes back with its last cursor, as a real
//! client does, so a server that drops slow readers loses nothing it should not.
//! With `--send-over ws` the same connection also writes the user's `send`
//! frames and reads their `sent` and `error` answers (see `wsend`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::ledger::{Delivery, Ledger};
use crate::stamp::{Clock, Stamp};
use crate::wsend::{Answer, Line, Outgoing};

pub type Socket = WebSocketStream<TcpStream>;

/// Where the server's WebSocket is.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port` as written in the base URL, for the request line and Host header.
    authority: String,
    addr: SocketAddr,
}

impl Endpoint {
    /// From the HTTP base URL, e.g. `http://127.0.0.1:8080`.
    pub async fn from_base_url(base_url: &str) -> Result<Endpoint> {
        let authority = base_url
            .strip_prefix("http://")
            .context("--base-url must start with http:// (the generator speaks plain HTTP to a local server)")?
            .trim_end_matches('/')
            .to_owned();
        if authority.contains('/') {
            bail!("--base-url must have no path");
        }
        let addr = tokio::net::lookup_host(&authority)
            .await
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} resolves to nothing"))?;
        Ok(Endpoint { authority, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Read buffer of a receiver. Small on purpose: tungstenite zero-fills the
/// whole free part of its read buffer before every read, including reads
/// that find nothing; at 64 KiB that fill was 11 % of the generator's CPU
/// under W2. Larger frames still arrive whole, over several reads.
pub const RECEIVER_READ_BUFFER: usize = 8 * 1024;

/// Buffers sized for many connections: tungstenite allocates its read buffer
/// eagerly, 128 KiB by default, which would dwarf what is being measured.
pub fn config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
}

/// Opens `/api/v1/ws` with a bearer token, optionally resuming after `cursor` and
/// optionally from a given source address (to spread ports over 127.0.0.x).
pub async fn connect(
    endpoint: &Endpoint,
    token: &str,
    cursor: Option<&str>,
    source: Option<IpAddr>,
    config: WebSocketConfig,
) -> Result<Socket> {
    let query = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
    let mut request = format!("ws://{}/api/v1/ws{query}", endpoint.authority)
        .into_client_request()
        .context("building the WebSocket request")?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("token is not a valid header value")?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);

    let stream = match source {
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .context("creating a socket")?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("binding to {ip}"))?;
            socket.connect(endpoint.addr).await.context("connecting")?
        }
        None => TcpStream::connect(endpoint.addr)
            .await
            .context("connecting")?,
    };
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (socket, _response) = client_async_with_config(request, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    Ok(socket)
}

/// The parts of a server frame the generator reads; everything else is skipped.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    cursor: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<FrameData<'a>>,
}

#[derive(Deserialize)]
struct FrameData<'a> {
    #[serde(borrow, default)]
    message: Option<MessageBody<'a>>,
    /// On `sent`: which send it answers.
    #[serde(borrow, default)]
    idempotency_key: Option<Cow<'a, str>>,
}

/// An `error` frame (its `data.message` is a string, which [`Frame`] does not
/// read): the error code and, for a failed send, its idempotency key.
#[derive(Deserialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    data: ErrorData<'a>,
}

#[derive(Deserialize)]
struct ErrorData<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
    #[serde(borrow, default)]
    idempotency_key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageBody<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// Waits for the `ready` frame that ends the replay, and answers the cursor it
/// carries. Other frames before it are handed to `on_frame`.
pub async fn await_ready(
    socket: &mut Socket,
    wait: Duration,
    mut on_frame: impl FnMut(&str),
) -> Result<Option<String>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .context("no ready frame in time")?;
        match next {
            Some(Ok(Message::Text(text))) => {
                if let Ok(frame) = serde_json::from_str::<Frame>(&text)
                    && frame.kind == "ready"
                {
                    return Ok(frame.cursor.map(Cow::into_owned));
                }
                on_frame(&text);
            }
            Some(Ok(Message::Close(close))) => bail!("closed before ready: {close:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error).context("reading before ready"),
            None => bail!("closed before ready"),
        }
    }
}

/// Shared by every receiver: the run's phases and the counters of the connections.
pub struct Board {
    pub run: u64,
    pub clock: Clock,
    phases: RwLock<HashMap<u32, Arc<Ledger>>>,
    pub reconnects: AtomicU64,
    pub resyncs: AtomicU64,
    pub frames: AtomicU64,
    pub bad_frames: AtomicU64,
    /// Sends written again over a new connection after theirs closed.
    pub resent: AtomicU64,
    /// `sent` and `error` frames that matched no waiting send.
    pub stray_answers: AtomicU64,
    /// `error` frames not about a send.
    pub errors: AtomicU64,
    lines: RwLock<HashMap<u32, Arc<Line>>>,
}

impl Board {
    pub fn new(run: u64, clock: Clock) -> Board {
        Board {
            run,
            clock,
            phases: RwLock::new(HashMap::new()),
            reconnects: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            stray_answers: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lines: RwLock::new(HashMap::new()),
        }
    }

    /// A new sending side for `user`'s connection; the receiver of that user
    /// takes the queue.
    pub fn open_line(&self, user: u32) -> mpsc::UnboundedReceiver<Outgoing> {
        let (line, outbox) = Line::new();
        let mut lines = match self.lines.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        lines.insert(user, line);
        outbox
    }

    /// The sending side of `user`'s connection, if it has one.
    pub fn line(&self, user: u32) -> Option<Arc<Line>> {
        let lines = match self.lines.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        lines.get(&user).cloned()
    }

    pub fn register(&self, phase: u32, ledger: Arc<Ledger>) {
        let mut phases = match self.phases.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        phases.insert(phase, ledger);
    }

    fn ledger(&self, phase: u32) -> Option<Arc<Ledger>> {
        let phases = match self.phases.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        phases.get(&phase).cloned()
    }
}

enum Event {
    Lost,
    Stop,
}

/// One receiving user's connection.
pub struct Receiver {
    pub user: u32,
    pub token: String,
    pub socket: Socket,
    pub cursor: Option<String>,
    /// The user's send queue, when messages go over this connection.
    pub outbox: Option<mpsc::UnboundedReceiver<Outgoing>>,
}

/// What the reading half keeps between frames and across reconnects.
struct Reading {
    user: u32,
    token: String,
    cursor: Option<String>,
    line: Option<Arc<Line>>,
    cache: Option<(u32, Arc<Ledger>)>,
}

impl Receiver {
    /// Reads frames (and writes queued sends) until `stop` turns true,
    /// reconnecting with the last cursor whenever the server closes the connection.
    pub async fn run(self, endpoint: Endpoint, board: Arc<Board>, mut stop: watch::Receiver<bool>) {
        let Receiver {
            user,
            token,
            mut socket,
            cursor,
            mut outbox,
        } = self;
        let line = outbox.as_ref().and_then(|_| board.line(user));
        let mut reading = Reading {
            user,
            token,
            cursor,
            line: line.clone(),
            cache: None,
        };
        loop {
            let (mut sink, mut stream) = socket.split();
            let event = {
                let read = async {
                    loop {
                        match stream.next().await {
                            Some(Ok(Message::Text(text))) => reading.handle(&text, &board),
                            Some(Ok(Message::Close(_)) | Err(_)) | None => return Event::Lost,
                            Some(Ok(_)) => {}
                        }
                    }
                };
                let write = async {
                    if let (Some(outbox), Some(line)) = (outbox.as_mut(), line.as_ref()) {
                        while let Some(out) = outbox.recv().await {
                            line.writing(&out.key);
                            if sink.send(Message::Text(out.frame)).await.is_err() {
                                return Event::Lost;
                            }
                        }
                    }
                    std::future::pending().await
                };
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => Event::Stop,
                    event = read => event,
                    event = write => event,
                }
            };
            match event {
                Event::Stop => {
                    if let Ok(mut socket) = sink.reunite(stream) {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
                    }
                    return;
                }
                Event::Lost => {
                    drop((sink, stream));
                    if let Some(line) = &line {
                        let lost = line.connection_lost();
                        board.resent.fetch_add(lost.resent, Ordering::Relaxed);
                    }
                    match reading.reconnect(&endpoint, &board, &mut stop).await {
                        Some(next) => socket = next,
                        None => return,
                    }
                }
            }
        }
    }
}

impl Reading {
    fn handle(&mut self, text: &Utf8Bytes, board: &Board) {
        board.frames.fetch_add(1, Ordering::Relaxed);
        let frame = match serde_json::from_str::<Frame>(text) {
            Ok(frame) => frame,
            Err(_) => {
                match serde_json::from_str::<ErrorFrame>(text) {
                    Ok(error) if error.kind == "error" => self.answer(
                        error.data.idempotency_key.as_deref(),
                        Answer::Error(&error.data.code),
                        board,
                    ),
                    _ => {
                        board.bad_frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
                return;
            }
        };
        if let Some(cursor) = frame.cursor {
            // Every frame carries one: reuse the buffer.
            let kept = self.cursor.get_or_insert_with(String::new);
            kept.clear();
            kept.push_str(&cursor);
        }
        match frame.kind.as_ref() {
            "message.created" => {}
            "sent" => {
                let key = frame
                    .data
                    .as_ref()
                    .and_then(|d| d.idempotency_key.as_deref());
                self.answer(key, Answer::Sent, board);
                return;
            }
            "resync" => {
                board.resyncs.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => return,
        }
        let now = board.clock.now_unix_nanos();
        let Some(stamp) = frame
            .data
            .and_then(|d| d.message)
            .and_then(|m| m.text)
            .and_then(|t| Stamp::parse(&t))
        else {
            return;
        };
        if stamp.run != board.run {
            return;
        }
        let ledger = match &self.cache {
            Some((phase, ledger)) if *phase == stamp.phase => ledger.clone(),
            _ => {
                let Some(ledger) = board.ledger(stamp.phase) else {
                    return;
                };
                self.cache = Some((stamp.phase, ledger.clone()));
                ledger
            }
        };
        let latency = now.saturating_sub(stamp.scheduled_unix_nanos);
        if ledger.record_delivery(self.user, stamp.sender, stamp.seq, latency) == Delivery::First {
            ledger.note_delivery(stamp.scheduled_unix_nanos, latency);
        }
    }

    /// Hands the answer to a send to this user's line.
    fn answer(&self, key: Option<&str>, answer: Answer<'_>, board: &Board) {
        let Some(key) = key else {
            board.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let matched = self
            .line
            .as_ref()
            .is_some_and(|line| line.answer(key, answer, Instant::now()));
        if !matched {
            board.stray_answers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A new connection, or `None` when told to stop before one was made.
    async fn reconnect(
        &mut self,
        endpoint: &Endpoint,
        board: &Board,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Socket> {
        let mut backoff = Duration::from_millis(50);
        loop {
            if *stop.borrow() {
                return None;
            }
            board.reconnects.fetch_add(1, Ordering::Relaxed);
            let attempt = async {
                let mut socket = connect(
                    endpoint,
                    &self.token,
                    self.cursor.as_deref(),
                    None,
                    config(RECEIVER_READ_BUFFER),
                )
                .await?;
                // Replayed events arrive before `ready`; account for them as they come.
                let mut replayed = Vec::new();
                let cursor = await_ready(&mut socket, Duration::from_secs(10), |text| {
                    replayed.push(text.to_owned())
                })
                .await?;
                anyhow::Ok((socket, cursor, replayed))
            };
            match attempt.await {
                Ok((socket, cursor, replayed)) => {
                    self.cache = None;
                    for text in replayed {
                        self.handle(&Utf8Bytes::from(text), board);
                    }
                    if cursor.is_some() {
                        self.cursor = cursor;
                    }
                    return Some(socket);
                }
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.wait_for(|stop| *stop) => return None,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_frames() {
        let text = r#"{"type":"message.created","cursor":"1290","data":{"message":{"id":42,"conversation_id":7,"kind":"text","sender":{"id":1,"number":"101","name":"Alice \"A\" Archer"},"text":"lg 1 0 3 4 5","created_at":"2026-11-25T16:04:05.123Z","idempotency_key":"k"}}}"#;
        let frame: Result<Frame, _> = serde_json::from_str(text);
        let Ok(frame) = frame else {
            panic!("frame did not parse");
        };
        assert_eq!(frame.kind, "message.created");
        assert_eq!(frame.cursor.as_deref(), Some("1290"));
        let stamp = frame
            .data
            .and_then(|d| d.message)
            .and_then(|m| m.text)
            .and_then(|t| Stamp::parse(&t));
        assert_eq!(stamp.map(|s| (s.sender, s.seq)), Some((3, 4)));
    }

    #[test]
    fn reads_other_frames() {
        for text in [
            r#"{"type":"ready","cursor":"1"}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"typing","data":{"conversation_id":7,"extension_id":2,"active":true}}"#,
        ] {
            assert!(serde_json::from_str::<Frame>(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn reads_send_answers() {
        let sent = r#"{"type":"sent","data":{"idempotency_key":"lg-1-2-3-4","message":{"id":42,"conversation_id":7,"text":"lg 1 2 3 4 5","idempotency_key":"lg-1-2-3-4"}}}"#;
        let frame: Result<Frame, _> = serde_json::from_str(sent);
        let Ok(frame) = frame else {
            panic!("sent frame did not parse");
        };
        assert_eq!(frame.kind, "sent");
        assert_eq!(
            frame.data.and_then(|d| d.idempotency_key).as_deref(),
            Some("lg-1-2-3-4")
        );

        let error = r#"{"type":"error","data":{"code":"forbidden","message":"not a member","idempotency_key":"k\"1"}}"#;
        assert!(serde_json::from_str::<Frame>(error).is_err());
        let frame: Result<ErrorFrame, _> = serde_json::from_str(error);
        let Ok(frame) = frame else {
            panic!("error frame did not parse");
        };
        assert_eq!(frame.kind, "error");
        assert_eq!(frame.data.code, "forbidden");
        assert_eq!(frame.data.idempotency_key.as_deref(), Some("k\"1"));
    }
}
