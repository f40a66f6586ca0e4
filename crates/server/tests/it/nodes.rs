//! Several nodes of one deployment: real server processes on one
//! PostgreSQL database and one nats-server (`common::Cluster`), with their
//! clients spread across them. Chat, receipts, typing, sign-out and
//! disabling an extension cross nodes; a client resumes on any node; a node
//! killed mid-burst or NATS stopped mid-burst loses nothing and repeats
//! nothing; the outbox sends each text once whichever node sends it, also
//! when one dies holding it; an import started on one node is followed and
//! guarded (one at a time) on another.
//!
//! These need PostgreSQL whatever `SWITCHBOARD_TEST_BACKEND` says: they
//! fail when `SWITCHBOARD_TEST_POSTGRES` is unset. Every test has a cluster
//! of its own; every wait ends on an event, with a deadline.

use crate::common::{Client, Cluster, PATIENCE, Server, Ws};
use crate::jobs;
use crate::sms::{
    BUSINESS, CUSTOMER, open_sms, send, telnyx_connection, telnyx_status, telnyx_webhook,
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchboard_carriers::standin::{Misbehaviour, TelnyxStandin};
use tokio::sync::watch;

/// The same signed-in session, talking to another node.
fn on(client: &Client, node: &Server) -> Client {
    Client {
        base: node.base.clone(),
        ..client.clone()
    }
}

#[tokio::test]
async fn two_people_on_two_nodes_chat_live_and_read_receipts_come_back() {
    let cluster = Cluster::start(2);
    let alice = cluster.node(0).sign_in("101").await;
    let bob = cluster.node(1).sign_in("102").await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;

    let conversation = alice.direct_with(bob.id).await;
    let created = bob_ws.next_of("conversation.created").await;
    assert_eq!(created["data"]["conversation"]["id"], conversation);

    let sent = alice.send(conversation, "Lunch at noon?").await;
    let got = bob_ws.next_message("Lunch at noon?").await;
    assert_eq!(got["data"]["message"]["id"], sent["id"]);
    assert_eq!(got["data"]["message"]["sender"]["name"], "Alice Archer");
    assert!(got["cursor"].as_str().is_some(), "a durable event");
    let own = alice_ws.next_message("Lunch at noon?").await;
    assert_eq!(own["data"]["message"]["id"], sent["id"]);

    // Bob reads on his node; Alice's learns of it.
    let read = bob
        .post(
            &format!("/api/v1/conversations/{conversation}/read"),
            json!({"message_id": sent["id"]}),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let receipt = alice_ws.next_of("receipt.updated").await;
    assert_eq!(receipt["data"]["extension_id"], bob.id);
    assert_eq!(receipt["data"]["last_read_message_id"], sent["id"]);

    // Bob answers over his WebSocket.
    bob_ws
        .send(json!({"type": "send", "conversation_id": conversation, "text": "Sounds good", "idempotency_key": "reply-1"}))
        .await;
    let reply = bob_ws.next_of("sent").await;
    let got = alice_ws.next_message("Sounds good").await;
    assert_eq!(got["data"]["message"]["id"], reply["data"]["message"]["id"]);
    assert_eq!(got["data"]["message"]["sender"]["id"], bob.id);
}

#[tokio::test]
async fn a_client_resumes_on_another_node_and_on_its_own_with_exactly_what_it_missed() {
    let cluster = Cluster::start(2);
    let alice_1 = cluster.node(0).sign_in("101").await;
    let alice_2 = on(&alice_1, cluster.node(1));
    let bob_1 = cluster.node(0).sign_in("102").await;
    let bob_2 = on(&bob_1, cluster.node(1));
    let conversation = alice_1.direct_with(bob_1.id).await;

    let mut bob_ws = bob_1.ws(None).await;
    for i in 0..5 {
        alice_2.send(conversation, &format!("before {i}")).await;
    }
    let seen = bob_ws.texts_until("before 4").await;
    assert_eq!(seen.len(), 5, "{seen:?}");
    let cursor = bob_ws.cursor.clone().expect("cursor");
    drop(bob_ws);

    // Missed while away, sent on the other node.
    for i in 0..20 {
        alice_2.send(conversation, &format!("away {i}")).await;
    }
    let want: Vec<String> = (0..20)
        .map(|i| format!("away {i}"))
        .chain((0..10).map(|i| format!("live {i}")))
        .collect();

    // On node 2, with live sends on node 1 racing the replay.
    let mut on_2 = bob_2.ws(Some(&cursor)).await;
    let sender = alice_1.clone();
    let live = tokio::spawn(async move {
        for i in 0..10 {
            sender.send(conversation, &format!("live {i}")).await;
        }
    });
    assert_eq!(
        on_2.texts_until("live 9").await,
        want,
        "every missed event once, in order, on node 2"
    );
    live.await.expect("sender");

    // On node 1, from the same cursor: the same events.
    let mut on_1 = bob_1.ws(Some(&cursor)).await;
    assert_eq!(
        on_1.texts_until("live 9").await,
        want,
        "every missed event once, in order, on node 1"
    );

    // Nothing was queued twice on either: the next message is the next sent.
    alice_2.send(conversation, "after").await;
    for ws in [&mut on_2, &mut on_1] {
        assert_eq!(
            ws.next_of("message.created").await["data"]["message"]["text"],
            "after"
        );
    }
}

#[tokio::test]
async fn typing_crosses_nodes_and_a_send_clears_it_there() {
    let cluster = Cluster::start(2);
    let alice = cluster.node(0).sign_in("101").await;
    let bob = cluster.node(1).sign_in("102").await;
    let conversation = alice.direct_with(bob.id).await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;

    alice_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let on = bob_ws.next_of("typing").await;
    assert_eq!(on["data"]["active"], true);
    assert_eq!(on["data"]["extension_id"], alice.id);
    assert_eq!(on["data"]["conversation_id"], conversation);
    assert!(on.get("cursor").is_none(), "typing is ephemeral");

    bob_ws
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let on = alice_ws.next_of("typing").await;
    assert_eq!(on["data"]["active"], true);
    assert_eq!(on["data"]["extension_id"], bob.id);

    // Alice's send ends her indicator on Bob's node too; the message and
    // the end come in either order.
    alice.send(conversation, "done typing").await;
    let (mut saw_message, mut saw_stop) = (false, false);
    while !(saw_message && saw_stop) {
        let f = bob_ws.next_frame().await.expect("frame");
        match f["type"].as_str() {
            Some("message.created") => saw_message = true,
            Some("typing") => {
                assert_eq!(f["data"]["active"], false);
                assert_eq!(f["data"]["extension_id"], alice.id);
                saw_stop = true;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn signing_out_on_one_node_closes_the_websocket_on_another_and_every_node_refuses_the_token()
{
    use switchboard::auth::session_cache::SESSION_CACHE_TTL;
    let cluster = Cluster::start(3);
    let laptop = cluster.node(0).sign_in("102").await;
    let phone = cluster.node(1).sign_in("102").await;
    let laptop_on_2 = on(&laptop, cluster.node(1));
    let laptop_on_3 = on(&laptop, cluster.node(2));
    // The laptop's session holds a socket on node 2, as does the phone's;
    // node 3 holds none of the organization's but has seen the session.
    let mut laptop_ws = laptop_on_2.ws(None).await;
    let mut phone_ws = phone.ws(None).await;
    assert_eq!(laptop_on_3.get("/api/v1/me").await.status, 200);

    let out = laptop.post("/api/v1/auth/sign-out", json!({})).await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert_eq!(
        laptop_ws.close_of().await,
        Some((4401, "session ended".to_owned())),
        "the socket on node 2 is closed"
    );
    assert_eq!(laptop_on_2.get("/api/v1/me").await.status, 401);

    // Node 3 heard nothing (it follows no stream of the organization); its
    // cached session runs out within SESSION_CACHE_TTL.
    let refused = tokio::time::timeout(SESSION_CACHE_TTL + PATIENCE, async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if laptop_on_3.get("/api/v1/me").await.status == 401 {
                return;
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "node 3 refuses the token");

    // The phone's session lives on.
    phone_ws.send(json!({"type": "ping"})).await;
    assert_eq!(phone_ws.next_of("pong").await["type"], "pong");
    assert_eq!(phone.get("/api/v1/me").await.status, 200);
}

#[tokio::test]
async fn disabling_an_extension_on_one_node_closes_its_websockets_on_the_others() {
    let cluster = Cluster::start(3);
    let admin = cluster.node(0).sign_in("101").await;
    let carol = cluster.node(1).sign_in("103").await;
    let mut carol_on_2 = on(&carol, cluster.node(1)).ws(None).await;
    let mut carol_on_3 = on(&carol, cluster.node(2)).ws(None).await;

    let path = format!("/api/v1/admin/extensions/{}", carol.id);
    let disabled = admin
        .call("PATCH", &path, Some(json!({"disabled": true})))
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    for (node, ws) in [(2, &mut carol_on_2), (3, &mut carol_on_3)] {
        assert_eq!(
            ws.close_of().await,
            Some((4401, "session ended".to_owned())),
            "the socket on node {node} is closed"
        );
    }
    for node in 0..3 {
        let me = on(&carol, cluster.node(node)).get("/api/v1/me").await;
        assert_eq!(me.status, 401, "node {} refuses the token", node + 1);
    }
}

#[tokio::test]
async fn an_import_started_on_one_node_is_followed_and_guarded_on_another() {
    let cluster = Cluster::start(2);
    let alice = cluster.node(0).sign_in("101").await;
    let alice_on_2 = on(&alice, cluster.node(1));
    let mut ws_on_2 = alice_on_2.ws(None).await;

    let first = jobs::accepted(&jobs::import(&alice, &jobs::large_file(200)).await, 200);
    let id = first["id"].as_str().expect("id");
    let path = format!("/api/v1/admin/jobs/{id}");
    // The other node knows the job and keeps the organization to one
    // import at a time, as a single node does.
    let second = jobs::import(
        &alice_on_2,
        "number,name,password\n150,Late Comer,late-password-1\n",
    )
    .await;
    jobs::refused_for_running(&second, id);
    let polled = alice_on_2.get(&path).await;
    assert_eq!(
        polled.status, 200,
        "the other node answers the poll: {}",
        polled.body
    );
    assert_eq!(polled.body["job"]["id"], id);

    // Progress crosses to the other node, and its poll sees the end.
    let last = jobs::follow(&mut ws_on_2, id)
        .await
        .pop()
        .expect("the finished job");
    assert_eq!(last["state"], "succeeded", "{last}");
    let polled = alice_on_2.get(&path).await;
    assert_eq!(polled.status, 200, "{}", polled.body);
    assert_eq!(&polled.body["job"], &last);
    assert_eq!(last["created"], 200);
}

// ---------------------------------------------------------------------------
// Bursts: senders with idempotency keys on both nodes, readers on both.

/// Extensions sending, each on its node, two streams at once.
const SENDERS: [(&str, usize); 4] = [("101", 0), ("102", 0), ("103", 1), ("104", 1)];
const STREAMS_PER_SENDER: usize = 2;
const SENDS_PER_STREAM: usize = 25;
const PLANNED: usize = SENDERS.len() * STREAMS_PER_SENDER * SENDS_PER_STREAM;
/// Readers: an extension's WebSocket on a node.
const READERS: [(&str, usize); 4] = [("105", 0), ("103", 0), ("105", 1), ("102", 1)];
/// The last message, sent once the burst is over.
const DONE: &str = "done";

struct Ledger {
    /// Key → acknowledged message id.
    acknowledged: Mutex<HashMap<String, i64>>,
    /// Answers that were neither an acknowledgement nor a dead node.
    unexpected: Mutex<Vec<String>>,
    /// Sends retried on another node after their own died.
    moved: AtomicUsize,
    acks: watch::Sender<usize>,
}

impl Ledger {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            acknowledged: Mutex::new(HashMap::new()),
            unexpected: Mutex::new(Vec::new()),
            moved: AtomicUsize::new(0),
            acks: watch::Sender::new(0),
        })
    }

    async fn wait_for_acks(&self, count: usize) {
        let mut acks = self.acks.subscribe();
        tokio::time::timeout(PATIENCE, acks.wait_for(|n| *n >= count))
            .await
            .expect("enough sends were acknowledged")
            .expect("the ledger lives");
    }
}

/// Sends `SENDS_PER_STREAM` messages with keys `{name}-{i}`, one after the
/// other; when the node stops answering, the send is retried with the same
/// key on `fallback`, where the rest go too.
async fn send_burst(
    client: Client,
    mut fallback: Option<String>,
    name: String,
    conversation: i64,
    ledger: Arc<Ledger>,
) {
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let mut base = client.base.clone();
    for i in 0..SENDS_PER_STREAM {
        let key = format!("{name}-{i}");
        let mut retried = false;
        loop {
            let answer = client
                .http
                .post(format!("{base}{path}"))
                .bearer_auth(&client.token)
                .json(&json!({"text": key, "idempotency_key": key}))
                .send()
                .await;
            let answer = match answer {
                Ok(res) => {
                    let status = res.status().as_u16();
                    res.json::<Value>().await.map(|body| (status, body))
                }
                Err(e) => Err(e),
            };
            match answer {
                // A retry finds the message if its first attempt committed.
                Ok((status, body)) if status == 201 || (retried && status == 200) => {
                    let id = body["message"]["id"].as_i64().expect("message id");
                    ledger.acknowledged.lock().insert(key, id);
                    ledger.acks.send_modify(|n| *n += 1);
                    break;
                }
                Ok((status, body)) => {
                    ledger
                        .unexpected
                        .lock()
                        .push(format!("{key}: {status} {body}"));
                    return;
                }
                Err(e) => match fallback.take() {
                    Some(other) => {
                        base = other;
                        retried = true;
                        ledger.moved.fetch_add(1, Ordering::SeqCst);
                    }
                    None => {
                        ledger.unexpected.lock().push(format!("{key}: {e}"));
                        return;
                    }
                },
            }
        }
    }
}

/// The text messages a reader saw (id, text), in order, until `DONE`
/// (true) or the end of its connection (false); the socket is handed back
/// for its cursor.
type ReadTexts = (Vec<(i64, String)>, Ws, bool);

/// A reader: its extension, its node, its client and what it reads.
type Reader = (
    &'static str,
    usize,
    Client,
    tokio::task::JoinHandle<ReadTexts>,
);

/// Reads `ws` until `DONE` or its end.
async fn read_texts(mut ws: Ws) -> ReadTexts {
    let mut seen = Vec::new();
    while let Some(frame) = ws.next_frame_or_end().await {
        let message = &frame["data"]["message"];
        if frame["type"] != "message.created" || message["kind"] != "text" {
            continue;
        }
        let text = message["text"].as_str().expect("text").to_owned();
        let done = text == DONE;
        seen.push((message["id"].as_i64().expect("id"), text));
        if done {
            return (seen, ws, true);
        }
    }
    (seen, ws, false)
}

struct Burst {
    conversation: i64,
    /// A client on a node that stays up.
    creator: Client,
    ledger: Arc<Ledger>,
    senders: Vec<tokio::task::JoinHandle<()>>,
    readers: Vec<Reader>,
}

impl Burst {
    /// Creates the group of 101–105 on node `stays_up`, opens the readers'
    /// sockets, and starts the senders; those of node `dies` (if any) go
    /// to `stays_up` when theirs stops answering.
    async fn start(cluster: &Cluster, stays_up: usize, dies: Option<usize>) -> Self {
        let creator = cluster.node(stays_up).sign_in("101").await;
        let conversation = creator.create_group("Burst", &[2, 3, 4, 5]).await;
        let mut readers = Vec::new();
        for (ext, node) in READERS {
            let client = cluster.node(node).sign_in(ext).await;
            let ws = client.ws(None).await;
            readers.push((ext, node, client, tokio::spawn(read_texts(ws))));
        }
        let ledger = Ledger::new();
        let mut senders = Vec::new();
        for (ext, node) in SENDERS {
            let client = cluster.node(node).sign_in(ext).await;
            let fallback = (Some(node) == dies).then(|| cluster.node(stays_up).base.clone());
            for stream in 0..STREAMS_PER_SENDER {
                senders.push(tokio::spawn(send_burst(
                    client.clone(),
                    fallback.clone(),
                    format!("burst-{ext}-{stream}"),
                    conversation,
                    Arc::clone(&ledger),
                )));
            }
        }
        Self {
            conversation,
            creator,
            ledger,
            senders,
            readers,
        }
    }

    /// Waits for the senders, checks every send was acknowledged once and
    /// is in the history exactly once, sends `DONE`, and returns the
    /// history's text messages (ids in order).
    async fn finish(&mut self) -> Vec<i64> {
        for task in self.senders.drain(..) {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the senders finish")
                .expect("sender task");
        }
        let unexpected = self.ledger.unexpected.lock().clone();
        assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
        let acknowledged = self.ledger.acknowledged.lock().clone();
        assert_eq!(acknowledged.len(), PLANNED, "every send was acknowledged");
        self.creator.send(self.conversation, DONE).await;

        let history = self.creator.whole_history(self.conversation).await;
        let texts: Vec<&Value> = history.iter().filter(|m| m["kind"] == "text").collect();
        let mut by_key: HashMap<&str, Vec<i64>> = HashMap::new();
        for m in &texts {
            // The burst's own keys; `DONE` has one of the client's making.
            if let Some(key) = m["idempotency_key"]
                .as_str()
                .filter(|k| k.starts_with("burst-"))
            {
                assert_eq!(m["text"], key, "the text is intact");
                by_key
                    .entry(key)
                    .or_default()
                    .push(m["id"].as_i64().expect("id"));
            }
        }
        for (key, id) in &acknowledged {
            assert_eq!(
                by_key.get(key.as_str()),
                Some(&vec![*id]),
                "acknowledged message {key} (id {id}) is in the history exactly once"
            );
        }
        assert_eq!(
            texts.len(),
            PLANNED + 1,
            "the burst and {DONE}, nothing more"
        );
        texts
            .iter()
            .map(|m| m["id"].as_i64().expect("id"))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_burst_loses_no_acknowledged_message_and_its_clients_resume_elsewhere() {
    const KILL_AFTER: usize = PLANNED / 4;
    let (dies, stays_up) = (0, 1);
    let mut cluster = Cluster::start(2);
    let mut burst = Burst::start(&cluster, stays_up, Some(dies)).await;

    burst.ledger.wait_for_acks(KILL_AFTER).await;
    cluster.kill(dies);
    let history = burst.finish().await;
    assert!(
        burst.ledger.moved.load(Ordering::SeqCst) > 0,
        "senders of the dead node went on on the other"
    );

    for (ext, node, client, task) in burst.readers.drain(..) {
        let (mut seen, ws, done) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the reader finishes")
            .expect("reader task");
        if node == dies {
            assert!(!done, "{ext}'s node died under it");
            let cursor = ws.cursor.clone().expect("a cursor");
            let resumed = on(&client, cluster.node(stays_up)).ws(Some(&cursor)).await;
            let (rest, _, done) = read_texts(resumed).await;
            assert!(done, "{ext} resumed up to {DONE}");
            seen.extend(rest);
        } else {
            assert!(done, "{ext} read up to {DONE}");
        }
        let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids, history,
            "{ext}'s socket on node {node}: every message once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stopped_and_restarted_mid_burst_loses_nothing_and_repeats_nothing() {
    const STOP_AT: usize = PLANNED / 4;
    const RESTART_AT: usize = PLANNED * 3 / 5;
    let mut cluster = Cluster::start(2);
    let mut burst = Burst::start(&cluster, 1, None).await;

    burst.ledger.wait_for_acks(STOP_AT).await;
    cluster.nats.stop();
    // The nodes serve and commit without the bus.
    burst.ledger.wait_for_acks(RESTART_AT).await;
    cluster.nats.restart();
    let history = burst.finish().await;

    for (ext, node, _, task) in burst.readers.drain(..) {
        let (seen, _, done) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the reader finishes")
            .expect("reader task");
        assert!(
            done,
            "{ext}'s socket on node {node} stayed open up to {DONE}"
        );
        let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids, history,
            "{ext}'s socket on node {node}: every message once, in order"
        );
    }
}

// ---------------------------------------------------------------------------
// The outbox across nodes.

/// Every node's public URL: one deployment has one, behind its load
/// balancer, and it goes into every request to the carrier (the status
/// webhook), which must be the same whichever node sends a text.
const PUBLIC_URL: &str = "http://switchboard.test";

/// Waits up to `patience` until the stand-in has created `count` texts.
async fn await_created(telnyx: &TelnyxStandin, count: usize, patience: Duration) {
    tokio::time::timeout(patience, telnyx.wait_for_created(count))
        .await
        .expect("the carrier was asked for every text");
}

/// Reports every text the stand-in created as delivered, through `node`,
/// as Telnyx does, and waits until `ws` has seen each message of `ids`
/// delivered. A report is applied only once the sending node has recorded
/// the carrier's acceptance, so then no text is left to send.
async fn deliver_all(
    node: &Server,
    connection: i64,
    telnyx: &TelnyxStandin,
    ws: &mut Ws,
    ids: &HashSet<i64>,
) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let at = i64::try_from(at).expect("seconds fit");
    for created in telnyx.messages_created() {
        let event = format!("ev-{}", created.id);
        let report = telnyx_status(&created.id, &event, "delivered");
        let answer = telnyx_webhook(node, connection, &report, at).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let mut pending = ids.clone();
    while !pending.is_empty() {
        let frame = ws.next_of("delivery.updated").await;
        if frame["data"]["status"] == "delivered" {
            let id = frame["data"]["message_id"].as_i64().expect("message id");
            pending.remove(&id);
        }
    }
}

/// Sends `texts` to the SMS conversation `id`, at once, by `clients` in
/// turn; returns the messages' ids.
async fn send_texts(clients: &[Client], id: i64, texts: &[String]) -> HashSet<i64> {
    let sends = texts.iter().enumerate().map(|(i, text)| {
        let client = &clients[i % clients.len()];
        async move {
            let sent = send(client, id, json!({ "text": text })).await;
            assert_eq!(sent.status, 201, "{}", sent.body);
            assert_eq!(sent.body["message"]["deliveries"][0]["to"], CUSTOMER);
            sent.body["message"]["id"].as_i64().expect("id")
        }
    });
    futures_util::future::join_all(sends)
        .await
        .into_iter()
        .collect()
}

/// The create requests the stand-in received, as (idempotency key, body).
fn creates(telnyx: &TelnyxStandin) -> Vec<(String, Vec<u8>)> {
    telnyx
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/messages")
        .map(|r| {
            let key = r.header("idempotency-key").expect("a key").to_owned();
            (key, r.body)
        })
        .collect()
}

fn created_texts(telnyx: &TelnyxStandin) -> Vec<String> {
    let mut texts: Vec<String> = telnyx
        .messages_created()
        .into_iter()
        .map(|m| {
            assert_eq!((m.from.as_str(), m.to.as_str()), (BUSINESS, CUSTOMER));
            m.text
        })
        .collect();
    texts.sort();
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn texts_sent_on_three_nodes_reach_the_carrier_exactly_once() {
    let telnyx = TelnyxStandin::start().await.expect("start the stand-in");
    let cluster = Cluster::start_with(3, &[("SWITCHBOARD_PUBLIC_URL", PUBLIC_URL)]);
    let connection = telnyx_connection(cluster.node(0), &telnyx);
    let watcher = cluster.node(0).sign_in("102").await;
    let mut watch_ws = watcher.ws(None).await;
    let mut clients = Vec::new();
    for (node, ext) in [(0, "101"), (1, "102"), (2, "101")] {
        clients.push(cluster.node(node).sign_in(ext).await);
    }
    let id = open_sms(&clients[0], CUSTOMER).await["id"]
        .as_i64()
        .expect("id");

    // Each node's outbox is woken by its own sends: all three drain the
    // one queue at once.
    let mut texts: Vec<String> = (0..45).map(|i| format!("text {i:02}")).collect();
    let ids = send_texts(&clients, id, &texts).await;
    await_created(&telnyx, texts.len(), PATIENCE).await;
    deliver_all(cluster.node(1), connection, &telnyx, &mut watch_ws, &ids).await;

    let creates = creates(&telnyx);
    assert_eq!(creates.len(), texts.len(), "one request per text");
    let keys: HashSet<&String> = creates.iter().map(|(key, _)| key).collect();
    assert_eq!(keys.len(), texts.len(), "a key per text");
    texts.sort();
    assert_eq!(created_texts(&telnyx), texts, "each text once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn texts_held_by_a_node_that_dies_are_sent_once_by_the_others_with_the_same_key() {
    use switchboard::workers::outbox::IDLE_LOOK;
    // The dying node's held requests stay unanswered until it is killed;
    // its claims run out REQUEST_TIMEOUT + CLAIM_MARGIN later.
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    const CLAIM_MARGIN: Duration = Duration::from_millis(200);
    let telnyx = TelnyxStandin::start().await.expect("start the stand-in");
    let timeout = REQUEST_TIMEOUT.as_millis().to_string();
    let margin = CLAIM_MARGIN.as_millis().to_string();
    let mut cluster = Cluster::start_with(
        3,
        &[
            ("SWITCHBOARD_PUBLIC_URL", PUBLIC_URL),
            ("SWITCHBOARD_SMS__REQUEST_TIMEOUT_MS", &timeout),
            ("SWITCHBOARD_SMS__CLAIM_MARGIN_MS", &margin),
        ],
    );
    let connection = telnyx_connection(cluster.node(0), &telnyx);
    let alice = cluster.node(0).sign_in("101").await;
    let watcher = cluster.node(1).sign_in("102").await;
    let mut watch_ws = watcher.ws(None).await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");

    // The carrier creates each text it is asked for and holds its answer;
    // node 0, whose outbox its client's sends wake, dies holding them.
    let mut texts: Vec<String> = (0..8).map(|i| format!("held {i}")).collect();
    telnyx.misbehave(Misbehaviour::Hold, texts.len());
    let ids = send_texts(std::slice::from_ref(&alice), id, &texts).await;
    tokio::time::timeout(PATIENCE, telnyx.wait_for_held(1))
        .await
        .expect("node 1 sent a text");
    cluster.kill(0);
    let before_kill = creates(&telnyx);
    telnyx.behave();

    // The others take the texts over once the claims run out, at their
    // next look.
    let takeover = IDLE_LOOK + REQUEST_TIMEOUT + CLAIM_MARGIN + PATIENCE;
    await_created(&telnyx, texts.len(), takeover).await;
    watch_ws.wait_up_to(takeover);
    deliver_all(cluster.node(1), connection, &telnyx, &mut watch_ws, &ids).await;

    texts.sort();
    assert_eq!(
        created_texts(&telnyx),
        texts,
        "the customer gets each text once"
    );
    let after_kill = creates(&telnyx).split_off(before_kill.len());
    assert!(!before_kill.is_empty());
    for (key, body) in &before_kill {
        let again: Vec<_> = after_kill.iter().filter(|(k, _)| k == key).collect();
        assert!(
            !again.is_empty(),
            "the text of key {key} was sent again after its node died"
        );
        assert!(
            again.iter().all(|(_, b)| b == body),
            "the same request each time, so the carrier answers it as the first"
        );
    }
}
