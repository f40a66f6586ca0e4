//! The NATS bus between "nodes" (several buses in one process) against a
//! real nats-server, over an in-memory stream source standing in for the
//! store. Every test starts its own server on a free loopback port; the
//! binary is `SWITCHBOARD_TEST_NATS_SERVER` (default `/usr/sbin/nats-server`),
//! and a test that cannot start it fails.
//!
//! Tests await what the sinks receive; the periodic check is set far off
//! and driven with `run_once`, except where its running by itself is the
//! point. The deadlines only turn a hang into a failure.

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::nats::{NatsBus, NatsOptions};
use switchboard_bus::{Bus, BusError, Envelope, Position, Scope, Sink, StreamSource};
use switchboard_domain::{Cursor, ExtensionId, OrgId, ReplayGate};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

/// Far enough that a deadline means something is stuck.
const DEADLINE: Duration = Duration::from_secs(30);
const NEVER: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// A nats-server of the test's own.

struct NatsServer {
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = Self { port, child: None };
        server.restart().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port; returns once it accepts
    /// clients, as its log says.
    async fn restart(&mut self) {
        let binary = std::env::var("SWITCHBOARD_TEST_NATS_SERVER")
            .unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
        let mut child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start nats-server at {binary} ({e}); install it (Debian: nats-server) \
                     or set SWITCHBOARD_TEST_NATS_SERVER to its path"
                )
            });
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await.ok().flatten() {
                if line.contains("Server is ready") {
                    return true;
                }
            }
            false
        };
        let ready = tokio::time::timeout(DEADLINE, ready).await.unwrap_or(false);
        assert!(
            ready,
            "nats-server at {binary} did not become ready on port {}",
            self.port
        );
        // Keep reading its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("nats-server stops");
        }
    }
}

// ---------------------------------------------------------------------------
// The store, as far as the bus sees it.

#[derive(Default)]
struct Streams {
    state: Mutex<StreamsState>,
    /// The store is unreachable: reads fail.
    down: std::sync::atomic::AtomicBool,
    /// When set, the next head read stops after reading and waits.
    hold_heads: Mutex<Option<HeadHold>>,
}

#[derive(Default)]
struct StreamsState {
    next_cursor: i64,
    orgs: HashMap<OrgId, Vec<Envelope>>,
}

struct HeadHold {
    read: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl Streams {
    /// Commits one event of `org` and returns its envelope, as the commit
    /// listener would publish it.
    fn commit(&self, org: OrgId) -> Envelope {
        let mut state = self.state.lock();
        state.next_cursor += 1;
        let cursor = Cursor(state.next_cursor);
        let stream = state.orgs.entry(org).or_default();
        let seq = stream.len() as u64 + 1;
        let envelope = Envelope {
            cursor: Some(cursor),
            scope: Scope::Stream(Position { org, seq }),
            recipients: Arc::from([ExtensionId(1)]),
            except: None,
            frame: Bytes::from(format!(r#"{{"org":{},"seq":{seq}}}"#, org.0)),
            event: None,
        };
        stream.push(envelope.clone());
        envelope
    }

    /// The events of `org` after `cursor`, as a resuming client's catch-up
    /// reads them.
    fn events_after(&self, org: OrgId, cursor: Cursor) -> Vec<Envelope> {
        let state = self.state.lock();
        state
            .orgs
            .get(&org)
            .map(|s| {
                s.iter()
                    .filter(|e| e.cursor > Some(cursor))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn reachable(&self) -> Result<(), BusError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BusError::Source("the store is down".to_owned()));
        }
        Ok(())
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next head read reports once it has read, then waits for the
    /// release.
    fn hold_next_head_read(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (read, was_read) = oneshot::channel();
        let (release, released) = oneshot::channel();
        *self.hold_heads.lock() = Some(HeadHold {
            read,
            release: released,
        });
        (was_read, release)
    }
}

#[async_trait]
impl StreamSource for Streams {
    async fn after(&self, org: OrgId, after: u64, limit: u32) -> Result<Vec<Envelope>, BusError> {
        self.reachable()?;
        let state = self.state.lock();
        Ok(state
            .orgs
            .get(&org)
            .map(|s| {
                s.iter()
                    .skip(after as usize)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn heads(&self, orgs: Vec<OrgId>) -> Result<Vec<Position>, BusError> {
        self.reachable()?;
        let heads: Vec<Position> = {
            let state = self.state.lock();
            orgs.iter()
                .map(|&org| Position {
                    org,
                    seq: state.orgs.get(&org).map_or(0, |s| s.len() as u64),
                })
                .collect()
        };
        let hold = self.hold_heads.lock().take();
        if let Some(hold) = hold {
            let _ = hold.read.send(());
            let _ = hold.release.await;
        }
        Ok(heads)
    }
}

// ---------------------------------------------------------------------------
// A node's sinks.

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Envelope>>,
    changed: Notify,
}

impl Sink for Recorder {
    fn deliver(&self, envelope: &Envelope) {
        self.seen.lock().push(envelope.clone());
        self.changed.notify_waiters();
    }
}

impl Recorder {
    /// The stream positions of `org` delivered, in delivery order.
    fn positions(&self, org: OrgId) -> Vec<u64> {
        self.seen
            .lock()
            .iter()
            .filter_map(|e| match e.scope {
                Scope::Stream(p) if p.org == org => Some(p.seq),
                _ => None,
            })
            .collect()
    }

    fn typing(&self) -> Vec<Envelope> {
        self.seen
            .lock()
            .iter()
            .filter(|e| matches!(e.scope, Scope::Org(_)))
            .cloned()
            .collect()
    }

    /// Waits until what was delivered satisfies `done`.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Envelope]) -> bool) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if done(&self.seen.lock()) {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(DEADLINE, wait).await.is_err() {
            panic!("{what}: never came; delivered {}", self.summary());
        }
    }

    async fn wait_for_positions(&self, org: OrgId, count: u64) {
        self.wait_for(&format!("{count} events of org {}", org.0), |seen| {
            seen.iter()
                .filter(|e| matches!(e.scope, Scope::Stream(p) if p.org == org))
                .count() as u64
                >= count
        })
        .await;
    }

    /// How many were delivered, and the last few.
    fn summary(&self) -> String {
        let seen = self.seen.lock();
        let last: Vec<String> = seen
            .iter()
            .rev()
            .take(5)
            .map(|e| format!("{:?}", e.scope))
            .collect();
        format!("{} envelopes, the last: {last:?}", seen.len())
    }
}

struct Node {
    bus: NatsBus,
    seen: Arc<Recorder>,
}

async fn node(server: &NatsServer, streams: &Arc<Streams>, check_every: Duration) -> Node {
    let node = node_at(&server.url(), streams, check_every).await;
    node.bus.wait_for_connection(true).await;
    node
}

/// A node, whether or not NATS answers at `url`.
async fn node_at(url: &str, streams: &Arc<Streams>, check_every: Duration) -> Node {
    let options = NatsOptions {
        url: url.to_owned(),
        check_every,
    };
    let bus = NatsBus::connect(options, Arc::clone(streams) as Arc<dyn StreamSource>)
        .await
        .expect("the bus connects");
    let seen = Arc::new(Recorder::default());
    bus.attach(Arc::clone(&seen) as Arc<dyn Sink>);
    Node { bus, seen }
}

impl Node {
    /// Commits an event of `org` on this node: stored, then published by
    /// the commit listener.
    fn commit(&self, streams: &Streams, org: OrgId) {
        self.bus.publish(streams.commit(org));
    }
}

fn one_to(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

const ORG: OrgId = OrgId(1);

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_on_either_node_reach_both_in_order_exactly_once() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = node(&server, &streams, NEVER).await;
    let b = node(&server, &streams, NEVER).await;
    a.bus.track(ORG).await.expect("a tracks");
    b.bus.track(ORG).await.expect("b tracks");

    const N: u64 = 300;
    for i in 0..N {
        // Mostly A, sometimes B, as two nodes serving one organization.
        if i % 3 == 2 {
            b.commit(&streams, ORG);
        } else {
            a.commit(&streams, ORG);
        }
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    a.seen.wait_for_positions(ORG, N).await;
    b.seen.wait_for_positions(ORG, N).await;
    // A check finds nothing more to deliver.
    a.bus.run_once().await.expect("a checks");
    b.bus.run_once().await.expect("b checks");
    a.bus.untrack(ORG);
    b.bus.untrack(ORG);
    assert_eq!(a.seen.positions(ORG), one_to(N));
    assert_eq!(b.seen.positions(ORG), one_to(N));
    a.bus.close().await;
    b.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_track_an_organization_hears_only_its_own_commits() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = node(&server, &streams, NEVER).await;
    let b = node(&server, &streams, NEVER).await;
    let other = OrgId(2);
    b.bus.track(ORG).await.expect("b tracks");

    // A tracks nothing, yet its sinks (the session cache) hear its commits.
    a.commit(&streams, other);
    a.commit(&streams, ORG);
    assert_eq!(a.seen.positions(other), vec![1]);
    assert_eq!(a.seen.positions(ORG), vec![1]);
    b.seen.wait_for_positions(ORG, 1).await;
    b.bus.run_once().await.expect("b checks");
    assert_eq!(b.seen.positions(ORG), vec![1]);
    assert_eq!(b.seen.positions(other), Vec::<u64>::new());
    a.bus.close().await;
    b.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_hints_are_filled_from_the_store() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = node(&server, &streams, NEVER).await;
    let b = node(&server, &streams, NEVER).await;
    b.bus.track(ORG).await.expect("b tracks");

    a.commit(&streams, ORG);
    b.seen.wait_for_positions(ORG, 1).await;
    // Committed by a node that died before publishing.
    streams.commit(ORG);
    streams.commit(ORG);
    // The next hint says 4: B reads 2 and 3 with it.
    a.commit(&streams, ORG);
    b.seen.wait_for_positions(ORG, 4).await;
    assert_eq!(b.seen.positions(ORG), one_to(4));

    // Nothing is published at all: the check finds it.
    streams.commit(ORG);
    b.bus.run_once().await.expect("b checks");
    b.seen.wait_for_positions(ORG, 5).await;
    b.bus.run_once().await.expect("b checks again");
    assert_eq!(b.seen.positions(ORG), one_to(5));
    a.bus.close().await;
    b.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_check_runs_by_itself() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let b = node(&server, &streams, Duration::from_millis(20)).await;
    b.bus.track(ORG).await.expect("b tracks");
    // Committed elsewhere, never published.
    streams.commit(ORG);
    streams.commit(ORG);
    b.seen.wait_for_positions(ORG, 2).await;
    assert_eq!(b.seen.positions(ORG), one_to(2));
    b.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_stopped_and_restarted_mid_stream_loses_nothing_and_repeats_nothing() {
    let mut server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = node(&server, &streams, NEVER).await;
    let b = node(&server, &streams, NEVER).await;
    a.bus.track(ORG).await.expect("a tracks");
    b.bus.track(ORG).await.expect("b tracks");

    for _ in 0..50 {
        a.commit(&streams, ORG);
    }
    b.seen.wait_for_positions(ORG, 50).await;

    server.stop().await;
    a.bus.wait_for_connection(false).await;
    b.bus.wait_for_connection(false).await;
    assert!(!a.bus.is_connected() && !b.bus.is_connected());
    // Both nodes go on committing; each delivers its own commits at once
    // (reading the other's from the store when it sees a gap), and the
    // last, B's, reaches A only through the check on reconnecting.
    for i in 0..49 {
        if i % 2 == 0 {
            a.commit(&streams, ORG);
        } else {
            b.commit(&streams, ORG);
        }
    }
    a.seen.wait_for_positions(ORG, 99).await;
    // A's last commit follows B's, so no gap tells B of it: B's periodic
    // check finds it (an hour away here, so run by hand).
    b.bus.run_once().await.expect("b checks");
    b.seen.wait_for_positions(ORG, 99).await;
    b.commit(&streams, ORG);
    assert_eq!(b.seen.positions(ORG), one_to(100));
    assert_eq!(a.seen.positions(ORG), one_to(99));
    server.restart().await;
    // The check on reconnecting catches each node up (the periodic one is
    // an hour away).
    a.seen.wait_for_positions(ORG, 100).await;
    b.seen.wait_for_positions(ORG, 100).await;

    // Hints flow again.
    a.bus.wait_for_connection(true).await;
    b.bus.wait_for_connection(true).await;
    for _ in 0..50 {
        a.commit(&streams, ORG);
    }
    b.seen.wait_for_positions(ORG, 150).await;
    a.bus.run_once().await.expect("a checks");
    b.bus.run_once().await.expect("b checks");
    assert_eq!(a.seen.positions(ORG), one_to(150));
    assert_eq!(b.seen.positions(ORG), one_to(150));
    a.bus.close().await;
    b.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_crosses_nodes_once_and_only_to_those_tracking() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = node(&server, &streams, NEVER).await;
    let b = node(&server, &streams, NEVER).await;
    let c = node(&server, &streams, NEVER).await;
    let other = OrgId(2);
    a.bus.track(ORG).await.expect("a tracks");
    b.bus.track(ORG).await.expect("b tracks");
    c.bus.track(other).await.expect("c tracks");

    let typing = |org: OrgId, who: i64| Envelope {
        cursor: None,
        scope: Scope::Org(org),
        recipients: Arc::from([ExtensionId(1), ExtensionId(2)]),
        except: Some(ExtensionId(who)),
        frame: Bytes::from(format!(r#"{{"type":"typing","who":{who}}}"#)),
        event: None,
    };
    a.bus.publish(typing(ORG, 1));
    a.bus.publish(typing(other, 2));
    // The typist's own node delivers at once.
    assert_eq!(a.seen.typing().len(), 2);
    b.seen
        .wait_for("typing in org 1", |seen| !seen.is_empty())
        .await;
    c.seen
        .wait_for("typing in org 2", |seen| !seen.is_empty())
        .await;
    // A later typing in org 1 arrives after anything B could have had of
    // org 2, from the same publisher.
    a.bus.publish(typing(ORG, 2));
    b.seen
        .wait_for("the second typing in org 1", |seen| seen.len() >= 2)
        .await;

    let got = b.seen.typing();
    assert_eq!(got.len(), 2, "B tracks org 1 only");
    assert_eq!(got[0].scope, Scope::Org(ORG));
    assert_eq!(&*got[0].recipients, &[ExtensionId(1), ExtensionId(2)]);
    assert_eq!(got[0].except, Some(ExtensionId(1)));
    assert_eq!(got[0].frame, typing(ORG, 1).frame);
    assert_eq!(got[1].frame, typing(ORG, 2).frame);
    let got = c.seen.typing();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].scope, Scope::Org(other));
    // No echo: A heard only what it published itself.
    assert_eq!(a.seen.typing().len(), 3);
    a.bus.close().await;
    b.bus.close().await;
    c.bus.close().await;
}

/// A connection resuming on B while A commits: whatever the interleaving,
/// its catch-up (read after `track`) and the live events through its replay
/// gate give every event after its cursor once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_before_the_catch_up_leaves_no_hole() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = Arc::new(node(&server, &streams, NEVER).await);
    let b = node(&server, &streams, NEVER).await;
    for _ in 0..10 {
        a.commit(&streams, ORG);
    }
    let resume_from = streams.events_after(ORG, Cursor::START)[4]
        .cursor
        .expect("a durable event");

    const N: u64 = 400;
    let writer = tokio::spawn({
        let a = Arc::clone(&a);
        let streams = Arc::clone(&streams);
        async move {
            for i in 10..N {
                a.commit(&streams, ORG);
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    // The connection is registered (B's recorder hears everything), then
    // tracks, then catches up from the store.
    tokio::task::yield_now().await;
    b.bus.track(ORG).await.expect("b tracks");
    let replayed = streams.events_after(ORG, resume_from);
    writer.await.expect("the writer finished");
    // One more, surely after the catch-up: once it is delivered live, so is
    // everything between the head `track` read and it.
    a.commit(&streams, ORG);
    b.seen
        .wait_for("the last event, live", |seen| {
            seen.iter().any(|e| {
                e.scope
                    == Scope::Stream(Position {
                        org: ORG,
                        seq: N + 1,
                    })
            })
        })
        .await;
    b.bus.run_once().await.expect("b checks");

    let mut gate = ReplayGate::new(resume_from);
    let mut sent = Vec::new();
    for e in replayed.iter().chain(b.seen.seen.lock().iter()) {
        if let (Some(cursor), Scope::Stream(p)) = (e.cursor, e.scope)
            && gate.admit(cursor)
        {
            sent.push(p.seq);
        }
    }
    assert_eq!(sent, (6..=N + 1).collect::<Vec<_>>());
    a.bus.close().await;
    b.bus.close().await;
}

/// A commit of B's own, heard while `track` reads the head: delivered at
/// once, and not again by the read that follows the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_commit_during_the_head_read_is_delivered_once() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let b = Arc::new(node(&server, &streams, NEVER).await);
    for _ in 0..5 {
        streams.commit(ORG);
    }
    let (head_read, release) = streams.hold_next_head_read();
    let tracking = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.bus.track(ORG).await }
    });
    head_read.await.expect("the head was read");
    b.commit(&streams, ORG);
    assert_eq!(b.seen.positions(ORG), vec![6]);
    release.send(()).expect("the head read waits");
    tracking.await.expect("track ran").expect("b tracks");
    b.commit(&streams, ORG);
    b.seen.wait_for_positions(ORG, 2).await;
    b.bus.run_once().await.expect("b checks");
    // The read for 6 (between the head, 5, and the commit) has run by the
    // time 7 is delivered: it was delivered in order after it.
    assert_eq!(b.seen.positions(ORG), vec![6, 7]);
}

/// A node starts, tracks and delivers while NATS does not answer, catching
/// up from the store; once NATS is there, it hears the other nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_while_nats_is_unreachable() {
    let streams = Arc::new(Streams::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let a = node_at(&format!("nats://127.0.0.1:{port}"), &streams, NEVER).await;
    assert!(!a.bus.is_connected());
    a.bus.track(ORG).await.expect("a tracks without NATS");
    a.commit(&streams, ORG);
    assert_eq!(a.seen.positions(ORG), vec![1]);
    // Another node's commit, found by the check.
    streams.commit(ORG);
    a.bus.run_once().await.expect("a checks");
    a.seen.wait_for_positions(ORG, 2).await;

    let mut server = NatsServer { port, child: None };
    server.restart().await;
    a.bus.wait_for_connection(true).await;
    assert!(a.bus.is_connected());
    let b = node(&server, &streams, NEVER).await;
    b.bus.track(ORG).await.expect("b tracks");
    b.commit(&streams, ORG);
    a.bus.run_once().await.expect("a checks");
    a.seen.wait_for_positions(ORG, 3).await;
    b.commit(&streams, ORG);
    a.seen.wait_for_positions(ORG, 4).await;
    a.bus.run_once().await.expect("a checks");
    assert_eq!(a.seen.positions(ORG), one_to(4));
    assert_eq!(b.seen.positions(ORG), vec![3, 4]);
    a.bus.close().await;
    b.bus.close().await;
}

/// A store that fails the head read fails `track` (the connection ends
/// and its client comes back); the next one joins the stream whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_join_is_tried_again_by_the_next_connection() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let a = node(&server, &streams, NEVER).await;
    let b = node(&server, &streams, NEVER).await;
    a.commit(&streams, ORG);
    streams.set_down(true);
    assert!(b.bus.track(ORG).await.is_err());
    streams.set_down(false);
    b.bus.track(ORG).await.expect("b tracks");
    a.commit(&streams, ORG);
    b.seen.wait_for_positions(ORG, 1).await;
    // A read that fails is tried again by the next check.
    streams.set_down(true);
    streams.commit(ORG);
    assert!(b.bus.run_once().await.is_err());
    streams.set_down(false);
    b.bus.run_once().await.expect("b checks");
    b.seen.wait_for_positions(ORG, 2).await;
    b.bus.run_once().await.expect("b checks again");
    assert_eq!(b.seen.positions(ORG), vec![2, 3]);
    a.bus.close().await;
    b.bus.close().await;
}

/// A small deterministic generator, so a failing interleaving of choices
/// can be run again.
struct Choices(u64);

impl Choices {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    async fn pause(&mut self) {
        for _ in 0..self.below(4) {
            tokio::task::yield_now().await;
        }
    }
}

/// What one connection was sent: its catch-up from the store, then the
/// node's live deliveries from its registration on, through a replay gate;
/// as stream positions.
fn sent_to(replayed: &[Envelope], live: &[Envelope], from: Cursor) -> Vec<u64> {
    let mut gate = ReplayGate::new(from);
    replayed
        .iter()
        .chain(live)
        .filter_map(|e| match (e.cursor, e.scope) {
            (Some(c), Scope::Stream(p)) if gate.admit(c) => Some(p.seq),
            _ => None,
        })
        .collect()
}

/// Connections come and go on three nodes while the three commit: each is
/// sent every event after its cursor once, in order, with no hole, whether
/// it closed early or stayed to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_resuming_at_random_moments_while_three_nodes_commit() {
    let server = NatsServer::start().await;
    let streams = Arc::new(Streams::default());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(node(&server, &streams, NEVER).await));
    }
    const PER_NODE: u64 = 150;
    let mut writers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (n, streams) = (Arc::clone(n), Arc::clone(&streams));
        writers.push(tokio::spawn(async move {
            let mut choices = Choices(0x9e37_79b9 + i as u64);
            for _ in 0..PER_NODE {
                n.commit(&streams, ORG);
                choices.pause().await;
            }
        }));
    }
    // Each node: connections that close early, then one that stays.
    let mut connections = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (n, streams) = (Arc::clone(n), Arc::clone(&streams));
        connections.push(tokio::spawn(async move {
            let mut choices = Choices(0x5151_2323 + i as u64);
            let mut closed = Vec::new();
            for round in 0..6 {
                choices.pause().await;
                let registered = n.seen.seen.lock().len();
                n.bus.track(ORG).await.expect("tracks");
                let all = streams.events_after(ORG, Cursor::START);
                let resume_at = choices.below(all.len() as u64 + 1) as usize;
                let from = match resume_at {
                    0 => Cursor::START,
                    k => all[k - 1].cursor.expect("durable"),
                };
                let replayed = streams.events_after(ORG, from);
                if round == 5 {
                    return (closed, Some((registered, replayed, from, resume_at as u64)));
                }
                choices.pause().await;
                n.bus.untrack(ORG);
                let live = n.seen.seen.lock()[registered..].to_vec();
                closed.push((sent_to(&replayed, &live, from), resume_at as u64));
            }
            (closed, None)
        }));
    }
    for w in writers {
        w.await.expect("a writer finished");
    }
    let mut open = Vec::new();
    for (n, c) in nodes.iter().zip(connections) {
        let (closed, stays) = c.await.expect("the connections ran");
        for (sent, resume_at) in closed {
            let want: Vec<u64> = (resume_at + 1..resume_at + 1 + sent.len() as u64).collect();
            assert_eq!(sent, want, "a connection that closed early");
        }
        open.push((Arc::clone(n), stays.expect("the last connection stays")));
    }
    // One more commit after everything: once a node delivered it, it has
    // delivered everything before it.
    nodes[0].commit(&streams, ORG);
    let last = 3 * PER_NODE + 1;
    for (n, (registered, replayed, from, resume_at)) in open {
        n.seen
            .wait_for("the last commit", |seen| {
                seen.iter().any(|e| {
                    e.scope
                        == Scope::Stream(Position {
                            org: ORG,
                            seq: last,
                        })
                })
            })
            .await;
        n.bus.run_once().await.expect("checks");
        let live = n.seen.seen.lock()[registered..].to_vec();
        assert_eq!(
            sent_to(&replayed, &live, from),
            (resume_at + 1..=last).collect::<Vec<_>>(),
            "a connection that stayed"
        );
        // Nor did the node deliver any event twice meanwhile.
        let mut positions: Vec<u64> = live
            .iter()
            .filter_map(|e| match e.scope {
                Scope::Stream(p) => Some(p.seq),
                _ => None,
            })
            .collect();
        let delivered = positions.len();
        positions.sort_unstable();
        positions.dedup();
        assert_eq!(positions.len(), delivered, "an event delivered twice");
    }
    for n in nodes {
        n.bus.close().await;
    }
}
