//! Durability and shutdown: a message acknowledged with 201 survives the
//! process being killed mid-burst, exactly once, and a retry with its
//! idempotency key finds it; SIGTERM closes WebSockets with "going away"
//! and exits cleanly.

use crate::common::{Client, PATIENCE, Server};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Sends in flight at once per sender.
const STREAMS_PER_SENDER: usize = 2;
/// Sends each stream would make if the server lived.
const SENDS_PER_STREAM: usize = 40;
/// The server is killed once this many sends have been acknowledged.
const KILL_AFTER: usize = 120;

#[derive(Debug, Clone)]
struct Attempt {
    sender: usize,
    key: String,
}

#[derive(Default)]
struct Ledger {
    attempted: parking_lot::Mutex<Vec<Attempt>>,
    /// Key → acknowledged message id.
    acknowledged: parking_lot::Mutex<HashMap<String, i64>>,
    /// Answers that were neither 201 nor a broken connection.
    unexpected: parking_lot::Mutex<Vec<String>>,
    acks: AtomicUsize,
    enough: Notify,
}

async fn stream_of_sends(
    client: Client,
    sender: usize,
    stream: usize,
    conversation: i64,
    ledger: Arc<Ledger>,
) {
    let path = format!("/api/v1/conversations/{conversation}/messages");
    for i in 0..SENDS_PER_STREAM {
        let key = format!("burst-{sender}-{stream}-{i}");
        ledger.attempted.lock().push(Attempt {
            sender,
            key: key.clone(),
        });
        let sent = client
            .http
            .post(format!("{}{path}", client.base))
            .bearer_auth(&client.token)
            .json(&json!({"text": key, "idempotency_key": key}))
            .send()
            .await;
        let Ok(res) = sent else {
            // The server is gone; this send may or may not have committed.
            return;
        };
        let status = res.status().as_u16();
        let Ok(body) = res.json::<Value>().await else {
            return;
        };
        if status != 201 {
            ledger
                .unexpected
                .lock()
                .push(format!("{key}: {status} {body}"));
            return;
        }
        let id = body["message"]["id"].as_i64().expect("message id");
        assert_eq!(body["message"]["idempotency_key"], key.as_str());
        ledger.acknowledged.lock().insert(key, id);
        if ledger.acks.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            ledger.enough.notify_one();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_a_kill_exactly_once() {
    let mut server = Server::start();
    let numbers = ["101", "102", "103", "104", "105"];
    let mut senders = Vec::new();
    for n in numbers {
        senders.push(server.sign_in(n).await);
    }
    let created = senders[0]
        .post(
            "/api/v1/conversations/group",
            json!({"name": "Burst", "member_ids": [2, 3, 4, 5]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let conversation = created.body["conversation"]["id"].as_i64().expect("id");

    let ledger = Arc::new(Ledger::default());
    let mut tasks = Vec::new();
    for (sender, client) in senders.iter().enumerate() {
        for stream in 0..STREAMS_PER_SENDER {
            tasks.push(tokio::spawn(stream_of_sends(
                client.clone(),
                sender,
                stream,
                conversation,
                Arc::clone(&ledger),
            )));
        }
    }

    tokio::time::timeout(PATIENCE, ledger.enough.notified())
        .await
        .expect("enough sends were acknowledged");
    server.kill();
    for task in tasks {
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("senders notice the server is gone")
            .expect("sender task");
    }

    let unexpected = ledger.unexpected.lock().clone();
    assert!(
        unexpected.is_empty(),
        "only 201 or a broken connection: {unexpected:?}"
    );
    let acknowledged = ledger.acknowledged.lock().clone();
    let attempted = ledger.attempted.lock().clone();
    let planned = numbers.len() * STREAMS_PER_SENDER * SENDS_PER_STREAM;
    assert!(acknowledged.len() >= KILL_AFTER);
    assert!(
        attempted.len() < planned,
        "the kill interrupted the burst ({} of {planned} attempted)",
        attempted.len()
    );

    // Same data directory, new process.
    let restarted = Server::start_on(&server.data_dir, "127.0.0.1:0");
    let mut again = Vec::new();
    for n in numbers {
        again.push(restarted.sign_in(n).await);
    }

    let history = again[0].whole_history(conversation).await;
    let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for m in &history {
        if let Some(key) = m["idempotency_key"].as_str() {
            by_key
                .entry(key.to_owned())
                .or_default()
                .push(m["id"].as_i64().expect("id"));
            assert_eq!(m["text"], key, "the text is intact");
        }
    }
    for (key, id) in &acknowledged {
        assert_eq!(
            by_key.get(key),
            Some(&vec![*id]),
            "acknowledged message {key} (id {id}) is in the history exactly once"
        );
    }
    for (key, ids) in &by_key {
        assert_eq!(ids.len(), 1, "{key} stored once: {ids:?}");
        assert!(
            attempted.iter().any(|a| &a.key == key),
            "{key} was sent by someone"
        );
    }

    // Retrying with the same key finds the original; sends that were in
    // flight at the kill are stored now if they were not before, and then
    // every attempted key is in the history exactly once.
    for attempt in &attempted {
        let client = &again[attempt.sender];
        let retry = client
            .post(
                &format!("/api/v1/conversations/{conversation}/messages"),
                json!({"text": attempt.key, "idempotency_key": attempt.key}),
            )
            .await;
        match acknowledged.get(&attempt.key) {
            Some(id) => {
                assert_eq!(
                    retry.status, 200,
                    "retry of acknowledged {}: {}",
                    attempt.key, retry.body
                );
                assert_eq!(retry.body["message"]["id"], *id, "the original message");
            }
            None if by_key.contains_key(&attempt.key) => {
                assert_eq!(
                    retry.status, 200,
                    "retry of committed {}: {}",
                    attempt.key, retry.body
                );
                assert_eq!(retry.body["message"]["id"], by_key[&attempt.key][0]);
            }
            None => assert_eq!(
                retry.status, 201,
                "retry of lost {}: {}",
                attempt.key, retry.body
            ),
        }
    }
    let after = again[0].whole_history(conversation).await;
    let keys: Vec<&str> = after
        .iter()
        .filter_map(|m| m["idempotency_key"].as_str())
        .collect();
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "no key twice after the retries");
    assert_eq!(
        keys.len(),
        attempted.len(),
        "every attempted send is stored once"
    );
    assert_eq!(
        after.len(),
        keys.len() + 1,
        "the texts plus the group's creation line"
    );
}

#[tokio::test]
async fn sigterm_closes_websockets_with_going_away_and_exits_zero() {
    let mut server = Server::start();
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let mut sockets = vec![alice.ws(None).await, bob.ws(None).await];
    let conversation = alice.direct_with(bob.id).await;
    alice.send(conversation, "before shutdown").await;

    server.sigterm();

    for ws in &mut sockets {
        loop {
            let msg = tokio::time::timeout(PATIENCE, ws.stream.next())
                .await
                .expect("the server closes the socket in time");
            match msg {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), 1001, "going away: {frame:?}");
                    break;
                }
                Some(Ok(Message::Close(None))) => panic!("a Close frame without a code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the socket broke instead of closing: {e}"),
                None => panic!("the socket ended without a Close frame"),
            }
        }
    }

    let status = server.wait();
    assert!(status.success(), "exit status {status:?}");

    // The data is intact for the next start.
    let restarted = Server::start_on(&server.data_dir, "127.0.0.1:0");
    let alice = restarted.sign_in("101").await;
    let history = alice
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await;
    assert_eq!(history.body["messages"][0]["text"], "before shutdown");
}
