//! The WebSocket protocol at its edges: frames that break RFC 6455 are
//! answered with the close code the RFC names, the largest valid `send`
//! fits however it is encoded, closes finish their handshake under load,
//! and a cursor the server cannot honour is answered with `resync`.

use crate::common::{Client, PATIENCE, Server, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

/// A client frame as bytes on the wire: `first` is the FIN, RSV and opcode
/// byte; masked with the all-zero key (so the payload reads as it is) unless
/// `masked` is false.
fn raw_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut frame = vec![first];
    match payload.len() {
        n @ 0..=125 => frame.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        frame.extend_from_slice(&[0, 0, 0, 0]);
    }
    frame.extend_from_slice(payload);
    frame
}

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

/// Writes `bytes` on the socket as they are, bypassing the client's codec.
async fn write_raw(ws: &mut Ws, bytes: &[u8]) {
    let tcp = ws.stream.get_mut();
    tcp.write_all(bytes).await.expect("write raw bytes");
    tcp.flush().await.expect("flush raw bytes");
}

/// The close code and reason the server ends the socket with; panics when
/// the connection ends without a Close frame (what a client sees as 1006).
async fn close_of(ws: &mut Ws) -> (u16, String) {
    loop {
        let msg = tokio::time::timeout(PATIENCE, ws.stream.next())
            .await
            .expect("the server closes the socket in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            Some(Ok(Message::Close(None))) => panic!("a Close frame without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the socket broke instead of closing: {e}"),
            None => panic!("the socket ended without a Close frame"),
        }
    }
}

/// Opens a socket, writes `bytes` raw, and returns how the server closes it.
async fn close_after(client: &Client, bytes: &[u8]) -> (u16, String) {
    let mut ws = client.ws(None).await;
    write_raw(&mut ws, bytes).await;
    close_of(&mut ws).await
}

#[tokio::test]
async fn frames_that_break_the_protocol_get_their_close_codes() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let mut fragment_then_text = raw_frame(TEXT, b"a", true);
    fragment_then_text.extend(raw_frame(FIN | TEXT, b"b", true));
    // "a" then the first byte of a three-byte character, then a byte that
    // cannot continue it.
    let mut split_bad_utf8 = raw_frame(TEXT, b"a\xE2", true);
    split_bad_utf8.extend(raw_frame(FIN | CONTINUATION, b"\x28", true));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "invalid UTF-8 in a text frame",
            raw_frame(FIN | TEXT, b"\xff\xfe", true),
            1007,
        ),
        ("invalid UTF-8 across fragments", split_bad_utf8, 1007),
        (
            "a reserved data opcode",
            raw_frame(FIN | 0x3, b"{}", true),
            1002,
        ),
        (
            "a reserved control opcode",
            raw_frame(FIN | 0xB, b"", true),
            1002,
        ),
        (
            "a reserved bit set",
            raw_frame(FIN | RSV1 | TEXT, br#"{"type":"ping"}"#, true),
            1002,
        ),
        (
            "a continuation with nothing to continue",
            raw_frame(FIN | CONTINUATION, b"{}", true),
            1002,
        ),
        (
            "a new message inside a fragmented one",
            fragment_then_text,
            1002,
        ),
        ("a fragmented ping", raw_frame(PING, b"", true), 1002),
        (
            "a ping over 125 bytes",
            raw_frame(FIN | PING, &[b'p'; 126], true),
            1002,
        ),
        (
            "an unmasked frame",
            raw_frame(FIN | TEXT, br#"{"type":"ping"}"#, false),
            1002,
        ),
        (
            "a frame over the size limit",
            raw_frame(FIN | TEXT, &vec![b'a'; 200 * 1024], true),
            1009,
        ),
    ];
    for (what, bytes, code) in cases {
        let (got, reason) = close_after(&alice, &bytes).await;
        assert_eq!(got, code, "{what}: closed with {got} ({reason})");
        assert!(!reason.is_empty(), "{what}: the close says why");
    }
}

#[tokio::test]
async fn a_frame_announced_far_over_the_limit_is_closed_with_1009_at_once() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    // Only the header: a terabyte is announced, nothing follows.
    let mut header = vec![FIN | TEXT, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    let (code, _) = close_after(&alice, &header).await;
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn a_binary_frame_is_answered_with_an_error_and_the_socket_stays_open() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    ws.stream
        .send(Message::Binary(br#"{"type":"ping"}"#.to_vec().into()))
        .await
        .expect("send binary");
    ws.send(json!({"type": "ping"})).await;
    let error = ws
        .next_frame()
        .await
        .expect("an answer to the binary frame");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["data"]["code"], "bad_request");
    assert!(
        error["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("text")),
        "the error says frames are text: {error}"
    );
    assert_eq!(ws.next_frame().await.expect("pong")["type"], "pong");
}

/// `s` with every character written as a JSON `\u` escape (two for a
/// character outside the Basic Multilingual Plane).
fn escaped(s: &str) -> String {
    let mut out = String::new();
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out
}

#[tokio::test]
async fn the_longest_send_fits_even_with_every_character_escaped() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    let mut ws = alice.ws(None).await;

    // 10,000 characters outside the Basic Multilingual Plane, twelve bytes
    // each as escapes; the longest key; every field name escaped too.
    let text = "\u{1F600}".repeat(10_000);
    let key = "k".repeat(128);
    let frame = format!(
        r#"{{"{}":"{}","{}":{conversation},"{}":"{}","{}":"{}"}}"#,
        escaped("type"),
        escaped("send"),
        escaped("conversation_id"),
        escaped("text"),
        escaped(&text),
        escaped("idempotency_key"),
        escaped(&key),
    );
    assert!(frame.len() > 120_000, "the frame is as large as it gets");
    ws.stream
        .send(Message::Text(frame.into()))
        .await
        .expect("send the frame");
    let sent = ws.next_of("sent").await;
    assert_eq!(sent["data"]["idempotency_key"], key.as_str());
    assert_eq!(sent["data"]["message"]["text"], text.as_str());
}

#[tokio::test]
async fn a_cursor_past_the_newest_event_is_answered_with_resync() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    alice.send(conversation, "before").await;
    let latest = bob.ws(None).await.cursor.expect("ready carries a cursor");

    let mut resumed = bob.ws(Some("999999999999999999")).await;
    let replayed = resumed.take_replayed();
    assert_eq!(
        replayed.len(),
        1,
        "only a resync before ready: {replayed:?}"
    );
    assert_eq!(replayed[0]["type"], "resync");
    assert_eq!(replayed[0]["cursor"], latest.as_str());
    assert_eq!(resumed.cursor.as_deref(), Some(latest.as_str()));

    // The socket is not deaf: what comes next arrives live.
    alice.send(conversation, "after the resync").await;
    resumed.next_message("after the resync").await;
}

/// Copies the files of a data directory (the database and its WAL) to
/// `to`, as an operator's backup does.
fn copy_data_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read the data directory") {
        let entry = entry.expect("a directory entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a data file");
        }
    }
    crate::common::copy_database(to);
}

#[tokio::test]
async fn a_client_resuming_after_a_restore_of_an_older_backup_resyncs_and_misses_nothing() {
    let mut first = Server::start();
    let alice = first.sign_in("101").await;
    let bob = first.sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    alice.send(conversation, "before the backup").await;
    first.sigterm();
    assert!(first.wait().success());
    let backup = tempfile::tempdir().expect("temp dir");
    copy_data_dir(&first.data_dir, backup.path());

    // Life goes on after the backup; Bob's client keeps its cursor.
    let lost = {
        let second = Server::start_on(&first.data_dir, "127.0.0.1:0");
        let alice = second.sign_in("101").await;
        let bob = second.sign_in("102").await;
        let mut bob_ws = bob.ws(None).await;
        alice.send(conversation, "lost with the restore").await;
        bob_ws.next_message("lost with the restore").await;
        bob_ws.cursor.clone().expect("cursor")
    };

    // The operator restores the backup, and people write again before
    // Bob's client comes back.
    let restored = Server::start_on(backup.path(), "127.0.0.1:0");
    let alice = restored.sign_in("101").await;
    let bob = restored.sign_in("102").await;
    alice.send(conversation, "after the restore").await;

    let mut bob_ws = bob.ws(Some(&lost)).await;
    let replayed = bob_ws.take_replayed();
    assert_eq!(
        replayed.first().map(|f| f["type"].clone()),
        Some(json!("resync")),
        "a cursor from the lost history is answered with resync: {replayed:?}"
    );
    let history = bob
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await;
    let texts: Vec<_> = history.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        texts.contains(&"after the restore".to_owned()),
        "the reload finds it: {texts:?}"
    );
    alice.send(conversation, "live after the restore").await;
    bob_ws.next_message("live after the restore").await;
}

/// Clients sending frames without pause while the server shuts down.
const BUSY_CLIENTS: usize = 50;

/// How one busy client's socket ended.
enum Ended {
    Closed(u16),
    Broken(String),
}

/// Sends pings without pause on one half; the other half starts reading
/// only once `go` turns true (the server is shutting down by then), so the
/// server's answers pile up unread and its writes wait, as with a client
/// under load. Reads until the server closes, then finishes the closing
/// handshake.
async fn stay_busy(
    ws: Ws,
    started: tokio::sync::mpsc::Sender<()>,
    mut go: tokio::sync::watch::Receiver<bool>,
) -> Ended {
    let (mut tx, mut rx) = ws.stream.split();
    let writer = tokio::spawn(async move {
        let ping = Message::Text(json!({"type": "ping"}).to_string().into());
        let mut sent = 0u32;
        while tx.send(ping.clone()).await.is_ok() {
            sent += 1;
            if sent == 100 {
                let _ = started.send(()).await;
            }
        }
    });
    let _ = go.wait_for(|go| *go).await;
    let ended = loop {
        match tokio::time::timeout(PATIENCE, rx.next()).await {
            Err(_) => break Ended::Broken("no Close in time".to_owned()),
            Ok(Some(Ok(Message::Close(Some(frame))))) => break Ended::Closed(frame.code.into()),
            Ok(Some(Ok(Message::Close(None)))) => break Ended::Broken("no close code".to_owned()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => break Ended::Broken(e.to_string()),
            Ok(None) => break Ended::Broken("ended without a Close".to_owned()),
        }
    };
    // Reading on sends our answer to the Close and sees the server hang up.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, rx.next()).await {}
    writer.abort();
    ended
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_busy_socket_sees_1001_when_the_server_shuts_down() {
    let mut server = Server::start();
    let mut clients = Vec::new();
    for number in ["101", "102", "103", "104", "105"] {
        clients.push(server.sign_in(number).await);
    }
    let (started, mut all_started) = tokio::sync::mpsc::channel(BUSY_CLIENTS);
    let (go, going) = tokio::sync::watch::channel(false);
    let mut busy = Vec::new();
    for i in 0..BUSY_CLIENTS {
        let ws = clients[i % clients.len()].ws(None).await;
        busy.push(tokio::spawn(stay_busy(ws, started.clone(), going.clone())));
    }
    for _ in 0..BUSY_CLIENTS {
        all_started.recv().await.expect("a client started");
    }

    server.sigterm();
    go.send_replace(true);

    let mut broken = Vec::new();
    for client in busy {
        match client.await.expect("client task") {
            Ended::Closed(1001) => {}
            Ended::Closed(code) => broken.push(format!("closed with {code}")),
            Ended::Broken(why) => broken.push(why),
        }
    }
    assert!(
        broken.is_empty(),
        "sockets that did not see 1001: {broken:?}"
    );
    assert!(server.wait().success());
}
