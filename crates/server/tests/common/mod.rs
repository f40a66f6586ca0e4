//! Test harness: starts the real `switchboard` binary on a loopback port
//! with a temporary data directory and talks to it as clients do.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const PASSWORD: &str = "test-password";
/// How long a test waits for something that should happen; generous, since
/// CI machines are slow. Never a synchronization sleep: waits end as soon
/// as the event arrives.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh server with the demo organization (extensions 101–105, ids 1–5).
    pub fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().to_path_buf();
        let mut s = Self::start_on(&data_dir, "127.0.0.1:0");
        s._temp = Some(temp);
        s
    }

    /// Starts the server on an existing data directory (for restarts).
    pub fn start_on(data_dir: &Path, listen: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--listen",
                listen,
                "--demo",
                "--demo-password",
                PASSWORD,
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
        }
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub async fn sign_in(&self, extension: &str) -> Client {
        self.sign_in_to("demo", extension, PASSWORD).await
    }

    pub async fn sign_in_to(&self, org: &str, extension: &str, password: &str) -> Client {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{}/api/v1/auth/sign-in", self.base))
            .json(&json!({"organization": org, "extension": extension, "password": password}))
            .send()
            .await
            .expect("sign-in request");
        assert_eq!(res.status(), 200, "sign-in of {org}/{extension} failed");
        let body: Value = res.json().await.expect("sign-in body");
        Client {
            http,
            base: self.base.clone(),
            token: body["token"].as_str().expect("token").to_owned(),
            id: body["extension"]["id"].as_i64().expect("id"),
        }
    }

    /// Runs `switchboard admin …` against this server's data directory.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("admin")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .output()
            .expect("run admin");
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in API client using a bearer token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub id: i64,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Client {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    pub async fn direct_with(&self, other: i64) -> i64 {
        let a = self
            .post(
                "/api/v1/conversations/direct",
                json!({"extension_id": other}),
            )
            .await;
        assert!(a.status == 200 || a.status == 201, "direct: {}", a.body);
        a.body["conversation"]["id"]
            .as_i64()
            .expect("conversation id")
    }

    pub async fn send(&self, conversation: i64, text: &str) -> Value {
        let a = self
            .post(
                &format!("/api/v1/conversations/{conversation}/messages"),
                json!({"text": text, "idempotency_key": uuid_like()}),
            )
            .await;
        assert_eq!(a.status, 201, "send: {}", a.body);
        a.body["message"].clone()
    }

    pub async fn ws(&self, cursor: Option<&str>) -> Ws {
        let url = match cursor {
            Some(c) => format!(
                "ws://{}/api/v1/ws?cursor={c}",
                self.base.trim_start_matches("http://")
            ),
            None => format!("ws://{}/api/v1/ws", self.base.trim_start_matches("http://")),
        };
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).expect("header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connect");
        let mut ws = Ws {
            stream,
            cursor: None,
            pending: Default::default(),
        };
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
}

pub async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("k-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The last cursor seen.
    pub cursor: Option<String>,
    /// Frames replayed before `ready`, handed out first.
    pub pending: std::collections::VecDeque<Value>,
}

impl Ws {
    /// Wraps a socket opened with a handshake of the test's own making;
    /// nothing has been read from it yet (not even `ready`).
    pub fn from_stream(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            stream,
            cursor: None,
            pending: Default::default(),
        }
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

    async fn read_frame(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.stream.next())
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

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("ws send");
    }
}

/// Asserts the answer is the API's error shape with the given status and code.
pub fn assert_error(a: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: status (body {})", a.body);
    assert_eq!(
        a.body["error"]["code"], code,
        "{what}: code (body {})",
        a.body
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error has a message: {}",
        a.body
    );
}
