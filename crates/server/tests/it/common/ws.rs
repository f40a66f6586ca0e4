//! A client's WebSocket: frames replayed before `ready` are handed out
//! first, then live ones; every wait ends after `PATIENCE` at the latest.

use super::PATIENCE;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message, handshake::client::Request};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What ends a read quietly.
#[derive(PartialEq, Eq)]
enum End {
    /// A close, or the end of the stream.
    Closed,
    /// That, or a broken connection.
    AnyWay,
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The last cursor seen.
    pub cursor: Option<String>,
    /// Frames replayed before `ready`, handed out first.
    pending: VecDeque<Value>,
    /// How long one read may wait.
    patience: Duration,
}

impl Ws {
    /// Connects and reads up to `ready`, keeping what was replayed before it.
    pub async fn open(request: Request) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connect");
        let mut ws = Self::from_stream(stream);
        let mut replayed = Vec::new();
        loop {
            let frame = ws.read_frame().await.expect("closed before ready");
            if frame["type"] == "ready" {
                break;
            }
            replayed.push(frame);
        }
        ws.pending.extend(replayed);
        ws
    }

    /// Wraps a socket opened with a handshake of the test's own making;
    /// nothing has been read from it yet (not even `ready`).
    pub fn from_stream(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            stream,
            cursor: None,
            pending: VecDeque::new(),
            patience: PATIENCE,
        }
    }

    /// Waits up to `patience` for each frame from now on, for what takes
    /// longer than [`PATIENCE`] by design.
    pub fn wait_up_to(&mut self, patience: Duration) {
        self.patience = patience;
    }

    /// The frames replayed before `ready` that have not been read yet.
    pub fn take_replayed(&mut self) -> Vec<Value> {
        self.pending.drain(..).collect()
    }

    /// The next frame, whatever it is; None when the connection closed.
    pub async fn next_frame(&mut self) -> Option<Value> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(frame);
        }
        self.read_frame().await
    }

    /// The next frame; None when the connection ended in any way, its
    /// server killed under it included.
    pub async fn next_frame_or_end(&mut self) -> Option<Value> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(frame);
        }
        self.read(End::AnyWay).await
    }

    async fn read_frame(&mut self) -> Option<Value> {
        self.read(End::Closed).await
    }

    async fn read(&mut self, end: End) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(self.patience, self.stream.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("frame is JSON");
                    if let Some(c) = v["cursor"].as_str() {
                        self.cursor = Some(c.to_owned());
                    }
                    return Some(v);
                }
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed)) => return None,
                Some(Err(_)) if end == End::AnyWay => return None,
                Some(Err(e)) => panic!("websocket error: {e}"),
            }
        }
    }

    /// The next message.created frame whose text is `text`, skipping others.
    pub async fn next_message(&mut self, text: &str) -> Value {
        loop {
            let frame = self.next_of("message.created").await;
            if frame["data"]["message"]["text"] == text {
                return frame;
            }
        }
    }

    /// The next frame of the given type, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next_frame()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The texts of the next `message.created` frames, up to `last`.
    pub async fn texts_until(&mut self, last: &str) -> Vec<String> {
        let mut texts = Vec::new();
        loop {
            let frame = self.next_of("message.created").await;
            let text = frame["data"]["message"]["text"]
                .as_str()
                .expect("text")
                .to_owned();
            let done = text == last;
            texts.push(text);
            if done {
                return texts;
            }
        }
    }

    /// The close code and reason the server ends the socket with; None
    /// when it ends without them.
    pub async fn close_of(&mut self) -> Option<(u16, String)> {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("the socket is closed")
            {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("ws send");
    }
}
