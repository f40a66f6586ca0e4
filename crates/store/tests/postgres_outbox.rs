//! The outbox drained by several nodes sharing one PostgreSQL database: each
//! text is claimed by one node only, a dead node's texts are taken over
//! with the same idempotency key once its leases run out, and a late answer
//! from a node that lost its claim changes nothing.
//!
//! The server comes from `SWITCHBOARD_TEST_POSTGRES`, as for the contract.
//! The outbox is one queue for the whole database, so each test makes a
//! database of its own on that server (the contract's rules drain the
//! outbox of the shared one), and writes its texts' rows directly, so that
//! only the outbox is under test.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failures by panicking"
)]

use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use switchboard_domain::{ConnectionId, DeliveryStatus, Timestamp};
use switchboard_store::{Outbox, OutboxText, PgOptions, PgStore, Sms, StatusReport};
use tokio::sync::Barrier;

/// A moment in 2027, as in the contract.
const T0: i64 = 1_800_000_000_000;

fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0 + offset_ms)
}

/// A database of one test's own, dropped when the test ends well (one left
/// by a failed test is named for it, to look into).
struct Scratch {
    server: String,
    name: String,
    url: String,
}

impl Scratch {
    async fn new(test: &str) -> Self {
        let server = std::env::var("SWITCHBOARD_TEST_POSTGRES").expect(
            "SWITCHBOARD_TEST_POSTGRES names the PostgreSQL server to test against; \
             start one with scripts/services start DIR",
        );
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).expect("randomness");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("outbox_{test}_{suffix}");
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (server.as_str(), String::new()),
        };
        let authority_end = base.find("://").map_or(0, |i| i + 3);
        let root = match base[authority_end..].find('/') {
            Some(slash) => &base[..authority_end + slash],
            None => base,
        };
        let url = format!("{root}/{name}{query}");
        let mut admin = PgConnection::connect(&server).await.expect("connect");
        // The name is this file's label and hex digits: nothing to escape.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create the test's database");
        Self { server, name, url }
    }

    async fn node(&self) -> PgStore {
        PgStore::open(PgOptions::new(self.url.clone()))
            .await
            .expect("open the store")
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect")
    }

    async fn drop_database(self) {
        let mut admin = PgConnection::connect(&self.server).await.expect("connect");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .expect("drop the test's database");
    }
}

/// Queues `count` texts due at `at(0)`, each with its message and its
/// delivery, as a send would; returns their outbox ids.
async fn queue_texts(conn: &mut PgConnection, count: i64) -> Vec<i64> {
    let org: i64 = sqlx::query_scalar(
        "INSERT INTO organizations (slug, name, created_at) VALUES ('outbox', 'Outbox', $1)
         RETURNING id",
    )
    .bind(T0)
    .fetch_one(&mut *conn)
    .await
    .expect("organization");
    let connection: i64 = sqlx::query_scalar(
        "INSERT INTO carrier_connections (org_id, kind, name, settings, sealed_secret, created_at)
         VALUES ($1, 'simulator', 'Simulator', '{}', '\\x01', $2) RETURNING id",
    )
    .bind(org)
    .bind(T0)
    .fetch_one(&mut *conn)
    .await
    .expect("connection");
    let conversation: i64 = sqlx::query_scalar(
        "INSERT INTO conversations (org_id, kind, created_at) VALUES ($1, 'sms', $2) RETURNING id",
    )
    .bind(org)
    .bind(T0)
    .fetch_one(&mut *conn)
    .await
    .expect("conversation");
    sqlx::query(
        "WITH m AS (
             INSERT INTO messages (conversation_id, kind, body, created_at)
             SELECT $1, 'text', 'text ' || n, $2 FROM generate_series(1, $4) n
             RETURNING id),
         d AS (
             INSERT INTO deliveries (message_id, recipient, status, connection_id, updated_at)
             SELECT id, '+14155550100', 'queued', $3, $2 FROM m)
         INSERT INTO outbox (message_id, connection_id, sender, recipient, body,
                             idempotency_key, state, due_at, created_at)
         SELECT id, $3, '+14155550199', '+14155550100', 'hello', 'key-' || id, 'pending', $2, $2
         FROM m",
    )
    .bind(conversation)
    .bind(T0)
    .bind(connection)
    .bind(count)
    .execute(&mut *conn)
    .await
    .expect("queue texts");
    sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .expect("outbox ids")
}

/// Claims until nothing is due, a few texts at a time, as a node's worker
/// does in steps.
async fn claim_all(node: &PgStore) -> Vec<OutboxText> {
    let mut claimed = Vec::new();
    loop {
        let texts = node
            .claim_texts(at(0), at(3_600_000), 7)
            .await
            .expect("claim");
        if texts.is_empty() {
            return claimed;
        }
        claimed.extend(texts);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_draining_at_once_claim_every_text_exactly_once() {
    let scratch = Scratch::new("three").await;
    let nodes: Vec<Arc<PgStore>> = vec![
        Arc::new(scratch.node().await),
        Arc::new(scratch.node().await),
        Arc::new(scratch.node().await),
    ];
    let queued = queue_texts(&mut scratch.connect().await, 600).await;
    let start = Arc::new(Barrier::new(nodes.len()));
    let drains: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = Arc::clone(node);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let claimed = claim_all(&node).await;
                for text in &claimed {
                    node.text_accepted(text.id, format!("carrier-{}", text.id), at(1))
                        .await
                        .expect("accepted");
                }
                claimed
            })
        })
        .collect();
    let mut claims: BTreeMap<i64, usize> = BTreeMap::new();
    for drain in drains {
        for text in drain.await.expect("a node's drain") {
            assert_eq!(text.attempts, 1, "text {} was tried before", text.id);
            assert_eq!(text.idempotency_key, format!("key-{}", text.message_id.0));
            *claims.entry(text.id).or_default() += 1;
        }
    }
    let twice: Vec<_> = claims.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "claimed by two nodes: {twice:?}");
    assert_eq!(
        claims.keys().copied().collect::<Vec<_>>(),
        queued,
        "every text claimed"
    );
    let mut db = scratch.connect().await;
    let unsent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox o JOIN deliveries d ON d.message_id = o.message_id
         WHERE o.state <> 'sent' OR o.attempts <> 1
            OR d.carrier_message_id IS DISTINCT FROM 'carrier-' || o.id",
    )
    .fetch_one(&mut db)
    .await
    .expect("count");
    assert_eq!(unsent, 0, "each text sent once, with its node's answer");
    for node in &nodes {
        assert_eq!(node.next_text_due().await.expect("due"), None);
    }
    drop(db);
    drop(nodes);
    scratch.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_texts_are_taken_over_with_the_same_keys_and_its_late_answers_change_nothing()
{
    let scratch = Scratch::new("takeover").await;
    let old = scratch.node().await;
    let new = scratch.node().await;
    let mut db = scratch.connect().await;
    queue_texts(&mut db, 4).await;

    let held = old.claim_texts(at(0), at(100), 10).await.expect("claim");
    assert_eq!(held.len(), 4);
    assert!(
        new.claim_texts(at(50), at(150), 10)
            .await
            .expect("claim")
            .is_empty(),
        "a lease that has not run out is not taken over"
    );
    assert_eq!(
        new.release_claims(at(60)).await.expect("release"),
        0,
        "a starting node leaves another node's claims to run out"
    );
    assert_eq!(new.next_text_due().await.expect("due"), Some(at(100)));

    // The old node stops answering; its leases run out and the new node
    // takes every text over, with the key each text had.
    let taken = new.claim_texts(at(100), at(200), 10).await.expect("claim");
    let keys = |texts: &[OutboxText]| -> BTreeSet<(i64, String)> {
        texts
            .iter()
            .map(|t| (t.id, t.idempotency_key.clone()))
            .collect()
    };
    assert_eq!(keys(&taken), keys(&held), "the same texts, the same keys");
    assert!(taken.iter().all(|t| t.attempts == 2));

    // The old node's answers arrive late: none of them moves a text the new
    // node holds.
    let late = old
        .text_accepted(held[0].id, "late-carrier-id".into(), at(110))
        .await
        .expect("a late answer is not an error");
    assert!(late.events.is_empty());
    let late = old
        .text_failed(held[1].id, "timed out".into(), at(110))
        .await
        .expect("a late failure is not an error");
    assert!(late.events.is_empty());
    old.text_retry(held[2].id, at(120), "503".into())
        .await
        .expect("a late retry is not an error");
    let late = old
        .text_opted_out(held[3].id, "opted out".into(), at(110))
        .await
        .expect("a late refusal is not an error");
    assert!(late.events.is_empty());
    assert_eq!(old.release_claims(at(130)).await.expect("release"), 0);
    assert!(
        old.claim_texts(at(150), at(250), 10)
            .await
            .expect("claim")
            .is_empty(),
        "the new node's leases stand (a late retry did not make a text due)"
    );
    let rows = sqlx::query("SELECT state, coalesce(last_error, '') FROM outbox ORDER BY id")
        .fetch_all(&mut db)
        .await
        .expect("outbox");
    for row in rows {
        let state: String = row.get(0);
        let error: String = row.get(1);
        assert_eq!((state.as_str(), error.as_str()), ("sending", ""));
    }
    let moved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE status <> 'queued' OR carrier_message_id IS NOT NULL",
    )
    .fetch_one(&mut db)
    .await
    .expect("deliveries");
    assert_eq!(moved, 0, "no delivery moved on a late answer");
    let opted_out: i64 = sqlx::query_scalar("SELECT count(*) FROM opt_outs")
        .fetch_one(&mut db)
        .await
        .expect("opt-outs");
    assert_eq!(opted_out, 0);

    // The new node's answers are the ones that count.
    for text in &taken {
        new.text_accepted(text.id, format!("carrier-{}", text.id), at(160))
            .await
            .expect("accepted");
    }
    let sent: Vec<(String, Option<String>)> = sqlx::query(
        "SELECT o.state, d.carrier_message_id FROM outbox o
         JOIN deliveries d ON d.message_id = o.message_id ORDER BY o.id",
    )
    .fetch_all(&mut db)
    .await
    .expect("outbox")
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let expected: Vec<(String, Option<String>)> = taken
        .iter()
        .map(|t| ("sent".to_owned(), Some(format!("carrier-{}", t.id))))
        .collect();
    assert_eq!(sent, expected);
    assert_eq!(new.next_text_due().await.expect("due"), None);
    drop(db);
    drop((old, new));
    scratch.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_releases_its_own_claims_only() {
    let scratch = Scratch::new("release").await;
    let first = scratch.node().await;
    let second = scratch.node().await;
    queue_texts(&mut scratch.connect().await, 2).await;
    let mine = first.claim_texts(at(0), at(100), 1).await.expect("claim");
    let theirs = second.claim_texts(at(0), at(100), 1).await.expect("claim");
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    assert_ne!(mine[0].id, theirs[0].id);
    // As a node restarting its worker: its own claims are due at once,
    // the other node's stay until they run out.
    assert_eq!(first.release_claims(at(10)).await.expect("release"), 1);
    assert_eq!(first.next_text_due().await.expect("due"), Some(at(10)));
    let again = second
        .claim_texts(at(10), at(110), 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1, "only the released text is due");
    assert_eq!(again[0].id, mine[0].id);
    assert_eq!(again[0].idempotency_key, mine[0].idempotency_key);
    drop((first, second));
    scratch.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_status_that_races_its_send_on_another_node_is_applied() {
    let scratch = Scratch::new("race").await;
    let sender = Arc::new(scratch.node().await);
    let webhooks = Arc::new(scratch.node().await);
    let mut db = scratch.connect().await;
    queue_texts(&mut db, 200).await;
    let connection: i64 = sqlx::query_scalar("SELECT id FROM carrier_connections")
        .fetch_one(&mut db)
        .await
        .expect("connection");
    let texts = claim_all(&sender).await;
    assert_eq!(texts.len(), 200);
    let ids: Vec<i64> = texts.iter().map(|t| t.id).collect();
    // The carrier reports delivery while the sending node is still
    // recording that the carrier took the text: on one node or the other,
    // each status must end up applied.
    let start = Arc::new(Barrier::new(2));
    let accepting = {
        let (sender, start, ids) = (Arc::clone(&sender), Arc::clone(&start), ids.clone());
        tokio::spawn(async move {
            start.wait().await;
            let answers = ids.iter().map(|&id| {
                let sender = Arc::clone(&sender);
                async move {
                    sender
                        .text_accepted(id, format!("race-{id}"), at(2))
                        .await
                        .expect("accepted")
                }
            });
            futures_util::future::join_all(answers).await;
        })
    };
    let reporting = {
        let (webhooks, start) = (Arc::clone(&webhooks), Arc::clone(&start));
        tokio::spawn(async move {
            start.wait().await;
            let reports = ids.iter().map(|&id| {
                let webhooks = Arc::clone(&webhooks);
                async move {
                    webhooks
                        .record_status(StatusReport {
                            connection: ConnectionId(connection),
                            event_key: format!("status-{id}"),
                            carrier_message_id: format!("race-{id}"),
                            status: DeliveryStatus::Delivered,
                            reason: None,
                            now: at(2),
                        })
                        .await
                        .expect("status")
                }
            });
            futures_util::future::join_all(reports).await;
        })
    };
    accepting.await.expect("accepting");
    reporting.await.expect("reporting");
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM early_statuses")
        .fetch_one(&mut db)
        .await
        .expect("early statuses");
    assert_eq!(waiting, 0, "no status waits for a send already recorded");
    let statuses: Vec<String> = sqlx::query_scalar("SELECT DISTINCT status FROM deliveries")
        .fetch_all(&mut db)
        .await
        .expect("deliveries");
    assert_eq!(statuses, ["delivered"]);
    drop(db);
    drop((sender, webhooks));
    scratch.drop_database().await;
}
