//! The bus between nodes, over NATS core publish/subscribe.
//!
//! **What travels.** A committed event travels as its stream position only
//! (`switchboard.org.<id>.events`, the position in decimal): every node
//! reads the events themselves from the store, the truth. Typing, which is
//! never stored, travels whole (`switchboard.org.<id>.typing`). The client
//! connects with `no_echo`, so a node never hears itself: it delivers its
//! own commits and typing locally, at once.
//!
//! **Exactly once, in order.** For each organization it *tracks* (while it
//! holds WebSocket connections of it) a node keeps the last stream position
//! it delivered. A position heard (a local commit, a hint from another
//! node, a stream head read by the periodic check) is delivered at once if
//! it is the next one; one further ahead makes the node read the missing
//! events from the store and deliver them in order; one already delivered
//! is dropped. Reads of an organization are coalesced: one in flight, and
//! hints arriving meanwhile only raise its target.
//!
//! **Nothing missed.** Hints may be lost (NATS down, a node that committed
//! and died before publishing, a slow subscriber). Every [`CHECK_EVERY`],
//! and at once on every reconnection, a node compares the heads of the
//! streams it tracks with what it delivered and catches up, so a client
//! sees every event within that period whatever happened to the hints.
//!
//! **Joining a stream.** [`Bus::track`] subscribes, then reads the stream's
//! head from the store, and only then returns: every event up to that head
//! is committed (the connection's catch-up, which reads the store next,
//! finds it) and every later one will be delivered live; the connection's
//! replay gate drops what both bring. A local commit heard while the head
//! is being read is delivered at once and remembered, so the read that
//! follows does not deliver it again.
//!
//! **Never blocking.** Publishing hands positions (coalesced per
//! organization) and typing frames (a bounded queue) to one publisher task;
//! while NATS is unreachable it drops them, and the client library
//! reconnects by itself.

use crate::{Bus, BusError, Envelope, Position, Scope, Sink, StreamSource};
use async_nats::connection::State;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{ExtensionId, OrgId};
use tokio::sync::{Notify, OnceCell, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often a node compares the streams it tracks with the store.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Events read from the store per query while catching up.
const READ_BATCH: u32 = 500;
/// Typing frames waiting for the publisher; past this they are dropped
/// (the typist's client repeats them).
const TYPING_QUEUE: usize = 1024;
/// How long [`Bus::track`] waits for the NATS server to have its
/// subscription. Only a client stuck reconnecting takes longer, and then
/// the periodic check stands in for the hints.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);
/// A subject nobody subscribes to, for [`Inner::barrier`].
const BARRIER_SUBJECT: &str = "switchboard.barrier";

/// How a [`NatsBus`] connects and checks.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:port` (several, comma-separated, for a cluster).
    pub url: String,
    /// The period of the check against the store ([`CHECK_EVERY`]); tests
    /// set it long and call [`NatsBus::run_once`].
    pub check_every: Duration,
}

impl NatsOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            check_every: CHECK_EVERY,
        }
    }
}

/// The bus of several nodes; see the module's documentation.
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    source: Arc<dyn StreamSource>,
    sinks: RwLock<Vec<Arc<dyn Sink>>>,
    orgs: RwLock<HashMap<OrgId, Arc<Tracked>>>,
    outgoing: Mutex<Outgoing>,
    /// Wakes the publisher task.
    publish_now: Notify,
    /// Wakes the check task (a reconnection).
    check_now: Arc<Notify>,
    /// Whether the client is connected, as its events tell.
    connected: watch::Receiver<bool>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// What waits for the publisher task.
#[derive(Default)]
struct Outgoing {
    /// The newest position committed here per organization: a node that
    /// hears it reads everything before it too.
    positions: HashMap<OrgId, u64>,
    typing: VecDeque<(OrgId, Bytes)>,
}

/// An organization this node follows.
struct Tracked {
    state: Mutex<OrgState>,
    /// Set once the first tracker has subscribed and read the head; later
    /// trackers wait for it, and try themselves if it failed.
    joined: OnceCell<()>,
}

#[derive(Default)]
struct OrgState {
    /// Connections holding it; at zero it is no longer tracked.
    holders: usize,
    /// The last position delivered here; `None` until the head was read.
    delivered: Option<u64>,
    /// The highest position heard of.
    target: u64,
    /// Local commits delivered while the head was being read, not to be
    /// delivered again by the read that follows.
    early: BTreeSet<u64>,
    /// A read from the store is in flight.
    reading: bool,
    /// The subscription's task; stopping it unsubscribes.
    listener: Option<JoinHandle<()>>,
    /// No longer tracked: a task still holding it stops.
    gone: bool,
}

fn events_subject(org: OrgId) -> String {
    format!("switchboard.org.{}.events", org.0)
}

fn typing_subject(org: OrgId) -> String {
    format!("switchboard.org.{}.typing", org.0)
}

fn org_subjects(org: OrgId) -> String {
    format!("switchboard.org.{}.*", org.0)
}

impl NatsBus {
    /// Connects to NATS and starts the bus's tasks. The connection is made
    /// in the background: a node starts (and serves, on the store) while
    /// NATS is unreachable, and [`Bus::is_connected`] says so.
    pub async fn connect(
        options: NatsOptions,
        source: Arc<dyn StreamSource>,
    ) -> Result<Self, BusError> {
        let (connected_tx, connected) = watch::channel(false);
        let check_now = Arc::new(Notify::new());
        let relay = Arc::new(EventRelay {
            connected: connected_tx,
            reconnected: Arc::clone(&check_now),
        });
        let client = async_nats::ConnectOptions::new()
            .name("switchboard")
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let relay = Arc::clone(&relay);
                async move { relay.heard(event) }
            })
            .connect(options.url.as_str())
            .await
            .map_err(|e| BusError::Nats {
                url: without_credentials(&options.url),
                reason: e.to_string(),
            })?;
        let inner = Arc::new(Inner {
            client,
            source,
            sinks: RwLock::new(Vec::new()),
            orgs: RwLock::new(HashMap::new()),
            outgoing: Mutex::new(Outgoing::default()),
            publish_now: Notify::new(),
            check_now,
            connected,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        inner.tasks.spawn(publisher(Arc::clone(&inner)));
        inner
            .tasks
            .spawn(checker(Arc::clone(&inner), options.check_every));
        Ok(Self { inner })
    }

    /// One check of the tracked streams against the store: reads their
    /// heads and starts catching up those behind. The periodic check and
    /// every reconnection run it; tests call it to drive the check.
    pub async fn run_once(&self) -> Result<(), BusError> {
        self.inner.check().await
    }

    /// Resolves once the client is connected to a NATS server (`true`) or
    /// knows it lost it (`false`).
    pub async fn wait_for_connection(&self, connected: bool) {
        let mut state = self.inner.connected.clone();
        let _ = state.wait_for(|c| *c == connected).await;
    }
}

/// Relays the client's connection events to the bus.
struct EventRelay {
    connected: watch::Sender<bool>,
    /// The check task's wake-up.
    reconnected: Arc<Notify>,
}

impl EventRelay {
    fn heard(&self, event: async_nats::Event) {
        match event {
            async_nats::Event::Connected => {
                tracing::info!("connected to NATS");
                self.connected.send_replace(true);
                self.reconnected.notify_one();
            }
            async_nats::Event::Disconnected => {
                tracing::warn!(
                    "disconnected from NATS; catching up from the store until it is back"
                );
                self.connected.send_replace(false);
            }
            async_nats::Event::Closed => {
                self.connected.send_replace(false);
            }
            other => tracing::debug!(event = %other, "NATS client event"),
        }
    }
}

impl Inner {
    fn deliver(&self, envelope: &Envelope) {
        for sink in self.sinks.read().iter() {
            sink.deliver(envelope);
        }
    }

    fn tracked(&self, org: OrgId) -> Option<Arc<Tracked>> {
        self.orgs.read().get(&org).cloned()
    }

    /// A commit of this node.
    fn committed(self: &Arc<Self>, position: Position, envelope: Envelope) {
        match self.tracked(position.org) {
            None => self.deliver(&envelope),
            Some(tracked) => {
                let mut st = tracked.state.lock();
                match st.delivered {
                    None => {
                        self.deliver(&envelope);
                        st.early.insert(position.seq);
                        st.target = st.target.max(position.seq);
                    }
                    Some(d) if position.seq == d + 1 => {
                        st.delivered = Some(position.seq);
                        self.deliver(&envelope);
                    }
                    Some(d) if position.seq <= d => {}
                    Some(_) => {
                        st.target = st.target.max(position.seq);
                        self.start_reading(position.org, &tracked, &mut st);
                    }
                }
            }
        }
        let mut out = self.outgoing.lock();
        let newest = out.positions.entry(position.org).or_default();
        *newest = (*newest).max(position.seq);
        drop(out);
        self.publish_now.notify_one();
    }

    /// A position heard from another node or read as a stream's head.
    fn heard(self: &Arc<Self>, position: Position) {
        let Some(tracked) = self.tracked(position.org) else {
            return;
        };
        let mut st = tracked.state.lock();
        if st.gone {
            return;
        }
        // Also when the target is not new: a read that failed stopped
        // short of it, and this is the next try.
        st.target = st.target.max(position.seq);
        if st.delivered.is_some() {
            self.start_reading(position.org, &tracked, &mut st);
        }
    }

    /// Starts a read of `org` up to its target, unless one is in flight
    /// (it reads on to the raised target).
    fn start_reading(self: &Arc<Self>, org: OrgId, tracked: &Arc<Tracked>, st: &mut OrgState) {
        let behind = st.delivered.is_some_and(|d| d < st.target);
        if st.reading || st.gone || !behind {
            return;
        }
        st.reading = true;
        let inner = Arc::clone(self);
        let tracked = Arc::clone(tracked);
        self.tasks.spawn(async move {
            tokio::select! {
                () = inner.stop.cancelled() => {}
                () = inner.read_up(org, &tracked) => {}
            }
        });
    }

    /// Reads `org`'s stream from the store and delivers it in order until
    /// it has delivered its target.
    async fn read_up(&self, org: OrgId, tracked: &Tracked) {
        loop {
            let from = {
                let mut st = tracked.state.lock();
                match st.delivered {
                    Some(d) if d < st.target && !st.gone => d,
                    _ => {
                        st.reading = false;
                        return;
                    }
                }
            };
            let read = self.source.after(org, from, READ_BATCH).await;
            let mut st = tracked.state.lock();
            let envelopes = match read {
                Ok(envelopes) => envelopes,
                Err(e) => {
                    // The next check or hint tries again.
                    tracing::warn!(org = org.0, error = %e, "cannot catch up with an organization's events");
                    st.reading = false;
                    return;
                }
            };
            if envelopes.is_empty() {
                // A position beyond the store's head (not one a node
                // published after its commit): nothing to wait for.
                tracing::warn!(
                    org = org.0,
                    target = st.target,
                    "a stream position beyond the store's head"
                );
                st.target = st.delivered.unwrap_or(0);
                st.reading = false;
                return;
            }
            if st.gone {
                st.reading = false;
                return;
            }
            for envelope in envelopes {
                let Scope::Stream(position) = envelope.scope else {
                    continue;
                };
                let delivered = st.delivered.unwrap_or(0);
                if position.seq <= delivered {
                    continue;
                }
                if position.seq != delivered + 1 {
                    tracing::error!(
                        org = org.0,
                        delivered,
                        read = position.seq,
                        "the stream read back has a hole; reading again"
                    );
                    break;
                }
                st.delivered = Some(position.seq);
                if !st.early.remove(&position.seq) {
                    self.deliver(&envelope);
                }
            }
        }
    }

    /// Joins `org`'s stream: subscribes, reads the head, and from then on
    /// delivers what follows it.
    async fn join(self: &Arc<Self>, org: OrgId, tracked: &Arc<Tracked>) -> Result<(), BusError> {
        let subscribed = {
            let mut st = tracked.state.lock();
            if st.listener.is_none() {
                let (tx, rx) = oneshot::channel();
                st.listener = Some(self.tasks.spawn(listen(Arc::clone(self), org, tx)));
                Some(rx)
            } else {
                None
            }
        };
        // Hints published from now on reach this node (unless NATS is
        // down, when the periodic check stands in for them).
        if let Some(rx) = subscribed
            && *self.connected.borrow()
        {
            let _ = tokio::time::timeout(SUBSCRIBE_WAIT, rx).await;
            self.barrier().await;
        }
        let heads = self.source.heads(vec![org]).await?;
        let head = heads.iter().find(|p| p.org == org).map_or(0, |p| p.seq);
        let mut st = tracked.state.lock();
        st.delivered = Some(head);
        st.early.retain(|&seq| seq > head);
        st.target = st.target.max(head);
        self.start_reading(org, tracked, &mut st);
        Ok(())
    }

    /// Returns once the server has read what this client sent before (its
    /// subscriptions), or after a bound if it cannot answer: the server
    /// answers a request nobody listens to with "no responders", in order
    /// with the rest of the connection.
    async fn barrier(&self) {
        let _ = tokio::time::timeout(
            SUBSCRIBE_WAIT,
            self.client.request(BARRIER_SUBJECT, Bytes::new()),
        )
        .await;
    }

    /// Compares the tracked streams with their heads in the store.
    async fn check(self: &Arc<Self>) -> Result<(), BusError> {
        let orgs: Vec<OrgId> = self
            .orgs
            .read()
            .iter()
            .filter(|(_, t)| t.state.lock().delivered.is_some())
            .map(|(org, _)| *org)
            .collect();
        if orgs.is_empty() {
            return Ok(());
        }
        for head in self.source.heads(orgs).await? {
            self.heard(head);
        }
        Ok(())
    }
}

/// The subscription of one tracked organization: positions and typing from
/// the other nodes. Stopping the task drops the subscriber, which
/// unsubscribes.
async fn listen(inner: Arc<Inner>, org: OrgId, subscribed: oneshot::Sender<()>) {
    let mut subscriber = tokio::select! {
        () = inner.stop.cancelled() => return,
        made = inner.client.subscribe(org_subjects(org)) => match made {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(org = org.0, error = %e, "cannot subscribe to an organization's events");
                return;
            }
        },
    };
    let _ = subscribed.send(());
    let events = events_subject(org);
    loop {
        let message = tokio::select! {
            () = inner.stop.cancelled() => return,
            message = subscriber.next() => match message {
                Some(m) => m,
                None => return,
            },
        };
        if message.subject.as_str() == events {
            match parse_position(&message.payload) {
                Some(seq) => inner.heard(Position { org, seq }),
                None => tracing::warn!(org = org.0, "ignoring an unreadable stream position"),
            }
        } else {
            match decode_typing(org, &message.payload) {
                Some(envelope) => inner.deliver(&envelope),
                None => tracing::warn!(org = org.0, "ignoring an unreadable typing frame"),
            }
        }
    }
}

/// Sends what [`Inner::committed`] and typing left for the other nodes.
async fn publisher(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            () = inner.stop.cancelled() => return,
            () = inner.publish_now.notified() => {}
        }
        let (positions, typing) = {
            let mut out = inner.outgoing.lock();
            (
                std::mem::take(&mut out.positions),
                std::mem::take(&mut out.typing),
            )
        };
        // While disconnected the client would only queue them until its
        // queue blocks; the other nodes' checks find the positions anyway.
        if inner.client.connection_state() != State::Connected {
            continue;
        }
        for (org, seq) in positions {
            let payload = Bytes::from(seq.to_string());
            if let Err(e) = inner.client.publish(events_subject(org), payload).await {
                tracing::debug!(org = org.0, error = %e, "cannot publish a stream position");
            }
        }
        for (org, payload) in typing {
            if let Err(e) = inner.client.publish(typing_subject(org), payload).await {
                tracing::debug!(org = org.0, error = %e, "cannot publish a typing frame");
            }
        }
    }
}

/// Checks the tracked streams every `period` and after every reconnection.
async fn checker(inner: Arc<Inner>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = inner.stop.cancelled() => return,
            _ = ticks.tick() => {}
            () = inner.check_now.notified() => {
                // The client sent its subscriptions again as it
                // reconnected: once the server has them, hints reach us
                // again, and this check finds what was committed before.
                inner.barrier().await;
            }
        }
        if let Err(e) = inner.check().await {
            tracing::warn!(error = %e, "cannot check the organizations' streams");
        }
    }
}

/// A NATS URL fit for a log: `nats://user:password@host` names the host
/// only.
fn without_credentials(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}{}", &one[..scheme + 3], &one[at + 1..])
            }
            (None, Some(at)) => one[at + 1..].to_owned(),
            _ => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_position(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload).ok()?.parse().ok()
}

/// A typing frame between nodes: the recipients (comma-separated ids), a
/// newline, the extension not to send it to (or nothing), a newline, the
/// frame.
fn encode_typing(envelope: &Envelope) -> Bytes {
    let mut out = String::with_capacity(envelope.frame.len() + 16 * envelope.recipients.len());
    for (i, r) in envelope.recipients.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.0.to_string());
    }
    out.push('\n');
    if let Some(except) = envelope.except {
        out.push_str(&except.0.to_string());
    }
    out.push('\n');
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&envelope.frame);
    Bytes::from(bytes)
}

fn decode_typing(org: OrgId, payload: &Bytes) -> Option<Envelope> {
    let first = payload.iter().position(|&b| b == b'\n')?;
    let second = first + 1 + payload[first + 1..].iter().position(|&b| b == b'\n')?;
    let recipients = std::str::from_utf8(&payload[..first]).ok()?;
    let recipients: Vec<ExtensionId> = if recipients.is_empty() {
        Vec::new()
    } else {
        recipients
            .split(',')
            .map(|r| r.parse().ok().map(ExtensionId))
            .collect::<Option<_>>()?
    };
    let except = std::str::from_utf8(&payload[first + 1..second]).ok()?;
    let except = if except.is_empty() {
        None
    } else {
        Some(ExtensionId(except.parse().ok()?))
    };
    let frame = payload.slice(second + 1..);
    // Sinks pass the frame on as WebSocket text.
    std::str::from_utf8(&frame).ok()?;
    Some(Envelope {
        cursor: None,
        scope: Scope::Org(org),
        recipients: recipients.into(),
        except,
        frame,
        event: None,
    })
}

#[async_trait]
impl Bus for NatsBus {
    fn publish(&self, envelope: Envelope) {
        match envelope.scope {
            Scope::Node => self.inner.deliver(&envelope),
            Scope::Stream(position) => self.inner.committed(position, envelope),
            Scope::Org(org) => {
                self.inner.deliver(&envelope);
                let payload = encode_typing(&envelope);
                let mut out = self.inner.outgoing.lock();
                if out.typing.len() < TYPING_QUEUE {
                    out.typing.push_back((org, payload));
                }
                drop(out);
                self.inner.publish_now.notify_one();
            }
        }
    }

    fn attach(&self, sink: Arc<dyn Sink>) {
        self.inner.sinks.write().push(sink);
    }

    async fn track(&self, org: OrgId) -> Result<(), BusError> {
        let tracked = {
            let mut orgs = self.inner.orgs.write();
            let tracked = orgs.entry(org).or_insert_with(|| {
                Arc::new(Tracked {
                    state: Mutex::new(OrgState::default()),
                    joined: OnceCell::new(),
                })
            });
            tracked.state.lock().holders += 1;
            Arc::clone(tracked)
        };
        let joined = tracked
            .joined
            .get_or_try_init(|| self.inner.join(org, &tracked))
            .await;
        if let Err(e) = joined {
            self.untrack(org);
            return Err(e);
        }
        Ok(())
    }

    fn untrack(&self, org: OrgId) {
        let mut orgs = self.inner.orgs.write();
        let Some(tracked) = orgs.get(&org) else {
            return;
        };
        let mut st = tracked.state.lock();
        st.holders = st.holders.saturating_sub(1);
        if st.holders > 0 {
            return;
        }
        st.gone = true;
        if let Some(listener) = st.listener.take() {
            listener.abort();
        }
        drop(st);
        orgs.remove(&org);
    }

    fn is_connected(&self) -> bool {
        self.inner.client.connection_state() == State::Connected
    }

    async fn close(&self) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::Cursor;

    #[test]
    fn a_typing_frame_crosses_whole() {
        let envelope = Envelope {
            cursor: None,
            scope: Scope::Org(OrgId(7)),
            recipients: Arc::from([ExtensionId(1), ExtensionId(22)]),
            except: Some(ExtensionId(22)),
            frame: Bytes::from_static(br#"{"type":"typing","data":{"a":"x\ny"}}"#),
            event: None,
        };
        let back = decode_typing(OrgId(7), &encode_typing(&envelope)).expect("decodes");
        assert_eq!(back.recipients, envelope.recipients);
        assert_eq!(back.except, envelope.except);
        assert_eq!(back.frame, envelope.frame);
        assert_eq!(back.scope, Scope::Org(OrgId(7)));

        let nobody = Envelope {
            recipients: Arc::from([]),
            except: None,
            ..envelope
        };
        let back = decode_typing(OrgId(7), &encode_typing(&nobody)).expect("decodes");
        assert!(back.recipients.is_empty());
        assert_eq!(back.except, None);
        assert_eq!(back.cursor, None::<Cursor>);
    }

    #[test]
    fn credentials_stay_out_of_errors() {
        assert_eq!(
            without_credentials("nats://me:secret@10.0.0.1:4222,tls://tok@h:1"),
            "nats://10.0.0.1:4222,tls://h:1"
        );
        assert_eq!(without_credentials("u:p@h:4222"), "h:4222");
        assert_eq!(
            without_credentials("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }

    #[test]
    fn unreadable_payloads_are_refused() {
        for bad in [&b""[..], b"1,2", b"1,x\n\n{}", b"1\nnope\n{}", b"1\n\n\xff"] {
            assert!(
                decode_typing(OrgId(1), &Bytes::copy_from_slice(bad)).is_none(),
                "{bad:?}"
            );
        }
        assert_eq!(parse_position(b"42"), Some(42));
        assert_eq!(parse_position(b"-1"), None);
        assert_eq!(parse_position(b"4 2"), None);
    }
}
