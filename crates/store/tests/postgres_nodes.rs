//! Several nodes on one PostgreSQL database: each test opens several
//! stores on the database `SWITCHBOARD_TEST_POSTGRES` names, as several
//! nodes would, and writes through them at once.

#![allow(
    clippy::expect_used,
    reason = "a test reports a broken rule by panicking"
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use switchboard_domain::{
    Cursor, DisplayName, ExtensionNumber, IdempotencyKey, MessageText, OrgSlug, Role, Timestamp,
};
use switchboard_store::{
    Conversations, Directory, EventLog, Extension, NewExtension, NewMessage, OpenDirect, Org,
    PgOptions, PgStore,
};

async fn node() -> Arc<PgStore> {
    let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").expect(
        "SWITCHBOARD_TEST_POSTGRES names the PostgreSQL server to test against; \
         start one with scripts/services start DIR",
    );
    Arc::new(
        PgStore::open(PgOptions::new(url))
            .await
            .expect("open the store"),
    )
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random numbers");
    u64::from_le_bytes(bytes)
}

async fn team(store: &PgStore, people: usize) -> (Org, Vec<Extension>) {
    let slug = OrgSlug::parse(&format!("nodes-{:x}", random())).expect("slug");
    let org = store
        .create_org(&slug, &DisplayName::parse("Nodes").expect("name"))
        .await
        .expect("organization");
    let new = (0..people)
        .map(|i| NewExtension {
            number: ExtensionNumber::parse(&format!("{}", 201 + i)).expect("number"),
            name: DisplayName::parse(&format!("Person {i}")).expect("name"),
            role: Role::Member,
            password_hash: "hash".into(),
        })
        .collect();
    let people = store
        .create_extensions(org.id, new, Timestamp(1))
        .await
        .expect("extensions");
    (org, people)
}

/// Opens the direct chat of `people[0]` and `people[other]`.
async fn chat(
    store: &PgStore,
    org: switchboard_domain::OrgId,
    people: &[Extension],
    other: usize,
) -> switchboard_domain::ConversationId {
    store
        .open_direct(OpenDirect {
            org,
            me: people[0].id,
            other: people[other].id,
            now: Timestamp(2),
        })
        .await
        .expect("chat")
        .value
        .conversation
        .id
}

fn send(
    chat: switchboard_domain::ConversationId,
    from: &Extension,
    text: &str,
    key: Option<String>,
) -> NewMessage {
    NewMessage {
        conversation_id: chat,
        sender: from.as_ref(),
        text: MessageText::parse(text).expect("text"),
        attachments: Vec::new(),
        carrier_media: Vec::new(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(&k).expect("key")),
        now: Timestamp(10),
    }
}

/// Three nodes send into one organization at once while readers resume
/// from the last cursor they were given, again and again: every reader ends
/// with every event exactly once, in cursor order, because no event ever
/// becomes visible behind a cursor already handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_resuming_while_three_nodes_write_miss_nothing_and_see_nothing_twice() {
    let nodes = [node().await, node().await, node().await];
    let (org, people) = team(&nodes[0], 2).await;
    let chat = chat(&nodes[0], org.id, &people, 1).await;
    let start = nodes[0].latest_cursor(org.id).await.expect("latest");
    let reader = people[1].id;

    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut readers = Vec::new();
    for store in &nodes {
        let store = Arc::clone(store);
        let writing = Arc::clone(&writing);
        readers.push(tokio::spawn(async move {
            let mut seen: Vec<Cursor> = Vec::new();
            let mut last = start;
            loop {
                let done = !writing.load(std::sync::atomic::Ordering::Acquire);
                // A resume at a random moment: from the last cursor given.
                let page = store
                    .events_after(reader, last, 1 + (random() % 50) as u32)
                    .await
                    .expect("replay");
                for e in &page {
                    assert!(
                        e.cursor > last,
                        "replay went back from {last} to {}",
                        e.cursor
                    );
                    seen.push(e.cursor);
                    last = e.cursor;
                }
                if done && page.is_empty() {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        }));
    }

    let mut writers = Vec::new();
    for (n, store) in nodes.iter().enumerate() {
        let store = Arc::clone(store);
        let from = people[0].clone();
        writers.push(tokio::spawn(async move {
            for i in 0..150 {
                store
                    .post_message(send(chat, &from, &format!("node {n} text {i}"), None))
                    .await
                    .expect("send");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    writing.store(false, std::sync::atomic::Ordering::Release);

    let everything: Vec<Cursor> = nodes[0]
        .events_after(reader, start, 10_000)
        .await
        .expect("replay")
        .iter()
        .map(|e| e.cursor)
        .collect();
    assert_eq!(everything.len(), 450, "every send recorded one event");
    for r in readers {
        let seen = r.await.expect("reader");
        assert_eq!(
            seen, everything,
            "a resuming reader saw every event once, in order"
        );
    }
}

/// A send retried on another node (its answer was lost) finds the first
/// one: one message, the retry replayed and announced to nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_retried_on_another_node_is_stored_once() {
    let (a, b) = (node().await, node().await);
    let (org, people) = team(&a, 2).await;
    let chat = chat(&a, org.id, &people, 1).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        for store in [&a, &b] {
            let store = Arc::clone(store);
            let from = people[0].clone();
            tasks.push(tokio::spawn(async move {
                store
                    .post_message(send(chat, &from, "once", Some(format!("key-{i}"))))
                    .await
                    .expect("send")
            }));
        }
    }
    let mut stored = 0;
    let mut ids = BTreeSet::new();
    for t in tasks {
        let posted = t.await.expect("task");
        if posted.value.replayed {
            assert!(
                posted.events.is_empty(),
                "a replayed send announces nothing"
            );
        } else {
            stored += 1;
        }
        ids.insert(posted.value.message.id);
    }
    assert_eq!(stored, 20, "each key stored once");
    assert_eq!(ids.len(), 20, "both attempts of a key got the same message");
}

/// Two nodes opening the same direct chats from both sides at once make
/// one chat per pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_chat_opened_on_two_nodes_at_once_is_made_once() {
    let (a, b) = (node().await, node().await);
    let (org, people) = team(&a, 8).await;
    let mut tasks = Vec::new();
    for i in 1..people.len() {
        for (store, flip) in [(&a, false), (&b, true)] {
            let store = Arc::clone(store);
            let (me, other) = if flip {
                (people[i].id, people[0].id)
            } else {
                (people[0].id, people[i].id)
            };
            tasks.push(tokio::spawn(async move {
                store
                    .open_direct(OpenDirect {
                        org: org.id,
                        me,
                        other,
                        now: Timestamp(5),
                    })
                    .await
                    .expect("open")
            }));
        }
    }
    let mut created = 0;
    let mut chats = BTreeSet::new();
    for t in tasks {
        let opened = t.await.expect("task");
        created += usize::from(opened.value.created);
        chats.insert(opened.value.conversation.id);
    }
    assert_eq!(created, people.len() - 1);
    assert_eq!(chats.len(), people.len() - 1);
}

/// Two nodes sending in many organizations, in opposite orders, never wait
/// on each other's locks in a cycle: every send succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_writing_many_organizations_in_opposite_orders_all_succeed() {
    let (a, b) = (node().await, node().await);
    let mut chats = Vec::new();
    for _ in 0..8 {
        let (org, people) = team(&a, 2).await;
        let chat = chat(&a, org.id, &people, 1).await;
        chats.push((chat, people[0].clone()));
    }
    let chats = Arc::new(chats);
    let mut tasks = Vec::new();
    for round in 0..20 {
        for (n, store) in [&a, &b].into_iter().enumerate() {
            for i in 0..chats.len() {
                let idx = if n == 0 { i } else { chats.len() - 1 - i };
                let store = Arc::clone(store);
                let chats = Arc::clone(&chats);
                tasks.push(tokio::spawn(async move {
                    let (chat, from) = &chats[idx];
                    store
                        .post_message(send(*chat, from, &format!("round {round}"), None))
                        .await
                }));
            }
        }
    }
    for t in tasks {
        t.await.expect("task").expect("every send succeeds");
    }
}

/// Sends waiting for one node's writer together are stored together; each
/// answers as it would alone: members' sends are stored once each and
/// announced in message order with stream positions that leave no hole, a
/// retried key gets its first message back, and a send into a chat its
/// sender is not in is refused, storing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_stored_together_answer_as_they_would_alone() {
    let store = node().await;
    let (org, people) = team(&store, 3).await;
    let mut chats = Vec::new();
    for other in [1, 2] {
        let chat = chat(&store, org.id, &people, other).await;
        chats.push(chat);
    }
    let start = store.latest_cursor(org.id).await.expect("latest");

    // Person 0 in both chats, keyed and not; each key twice; person 2
    // into the chat of 0 and 1, which is not theirs.
    let mut sends = Vec::new();
    for i in 0..30 {
        let chat = chats[i % 2];
        let key = (i % 3 == 0).then(|| format!("together-{i}"));
        sends.push(send(chat, &people[0], &format!("text {i}"), key.clone()));
        if key.is_some() {
            sends.push(send(chat, &people[0], &format!("text {i}"), key));
        }
    }
    for i in 0..3 {
        sends.push(send(chats[0], &people[2], &format!("not mine {i}"), None));
    }
    let outcomes =
        futures_util::future::join_all(sends.into_iter().map(|s| store.post_message(s))).await;

    let mut stored = BTreeSet::new();
    let mut replayed = 0;
    let mut refused = 0;
    for outcome in outcomes {
        match outcome {
            Ok(posted) if posted.value.replayed => {
                assert!(posted.events.is_empty(), "a replay announces nothing");
                replayed += 1;
            }
            Ok(posted) => {
                assert_eq!(posted.events.len(), 1, "a send announces itself");
                assert!(stored.insert(posted.value.message.id), "a new message");
            }
            Err(switchboard_store::StoreError::NotFound(_)) => refused += 1,
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    assert_eq!((stored.len(), replayed, refused), (30, 10, 3));

    let events = store
        .events_after(people[0].id, start, 1_000)
        .await
        .expect("replay");
    let announced: Vec<i64> = events
        .iter()
        .map(|e| {
            assert_eq!(e.kind, switchboard_domain::EventKind::MessageCreated);
            let payload: serde_json::Value =
                serde_json::from_str(&e.payload).expect("a JSON payload");
            payload["message"]["id"].as_i64().expect("a message id")
        })
        .collect();
    let in_order: Vec<i64> = stored.iter().map(|id| id.0).collect();
    assert_eq!(
        announced, in_order,
        "every message announced once, in message order"
    );
    let heads = store
        .stream_after(org.id, 0, 10_000)
        .await
        .expect("the organization's stream");
    let positions: Vec<u64> = heads.iter().map(|e| e.seq).collect();
    let first = positions.first().copied().expect("some events");
    assert_eq!(
        positions,
        (first..first + positions.len() as u64).collect::<Vec<_>>(),
        "stream positions count up by one"
    );
}
