//! The event bus: how an event committed on one node reaches the WebSocket
//! gateway of every node with a recipient connected.
//!
//! Events are hints; the store is the truth. A gateway that misses an event
//! (a node restarted, a slow connection was cut) recovers by replaying from
//! the store with the client's cursor, so the bus may be at-most-once. Two
//! buses implement [`Bus`]: the in-process [`LocalBus`], which hands each
//! envelope straight to the local sinks (one node, no I/O), and
//! [`nats::NatsBus`], which carries stream positions and typing between
//! nodes over NATS and reads what it missed back through a
//! [`StreamSource`]. This crate knows neither HTTP nor the store: the server
//! implements [`StreamSource`] over its store.

pub mod nats;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::RwLock;
use std::sync::Arc;
use switchboard_domain::{Cursor, Event, ExtensionId, OrgId};

/// One event on its way to clients. The frame is serialized once, here, and
/// shared by every recipient.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `None` for ephemeral events (typing), which are never replayed.
    pub cursor: Option<Cursor>,
    /// Which nodes it is for.
    pub scope: Scope,
    pub recipients: Arc<[ExtensionId]>,
    /// A recipient not to send it to (the typist does not see their own
    /// typing indicator).
    pub except: Option<ExtensionId>,
    /// The complete WebSocket text frame, UTF-8 JSON; empty for events that
    /// never reach clients.
    pub frame: Bytes,
    /// The durable event itself, for sinks that act on it (ending sessions,
    /// dropping cached ones); `None` for ephemeral frames, and for durable
    /// events read back from the store other than the two that sinks act on
    /// (`session.ended`, `extension.changed`).
    pub event: Option<Arc<Event>>,
}

/// A committed event's place in its organization's stream: the positions of
/// one organization count up by one in commit order, with no holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    pub org: OrgId,
    pub seq: u64,
}

/// Which nodes an envelope is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This node's sinks only: a committed event of a store that keeps no
    /// streams (one node), or a frame about this node's own memory (the
    /// progress of a job it runs).
    Node,
    /// A committed event at its place in its organization's stream: every
    /// node with clients of that organization delivers it, in stream order,
    /// once.
    Stream(Position),
    /// An ephemeral frame for the clients of an organization on every node
    /// (typing): at most once, never replayed.
    Org(OrgId),
}

impl Scope {
    /// The organization whose nodes it is for, unless it stays on this node.
    pub fn org(&self) -> Option<OrgId> {
        match self {
            Self::Node => None,
            Self::Stream(p) => Some(p.org),
            Self::Org(org) => Some(*org),
        }
    }
}

/// Receives envelopes on a node; implemented by the WebSocket gateway. Must
/// not block: it is called on the publisher's task.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, envelope: &Envelope);
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot read the event stream back: {0}")]
    Source(String),
    #[error("cannot use the NATS server at {url}: {reason}")]
    Nats { url: String, reason: String },
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends an envelope to every node it is for (its [`Scope`]), this one
    /// included. Never blocks and never fails: what does not reach another
    /// node now reaches it from the store.
    fn publish(&self, envelope: Envelope);
    /// Registers this node's receiver.
    fn attach(&self, sink: Arc<dyn Sink>);
    /// Follows `org`'s stream on this node, for a client of it that
    /// connects. Once this returns, every event of `org` is either committed
    /// already (so a read of the store that starts now finds it) or will be
    /// delivered to the sinks, in stream order: call it after the client's
    /// connection can receive and before its catch-up reads the store. Each
    /// `Ok` must be paired with one [`Bus::untrack`].
    async fn track(&self, org: OrgId) -> Result<(), BusError>;
    /// The client of `org` that tracked it is gone; with the last one the
    /// node stops following the organization.
    fn untrack(&self, org: OrgId);
    /// Whether the bus reaches the other nodes now, for readiness checks.
    fn is_connected(&self) -> bool;
    /// Stops the bus's tasks, at shutdown.
    async fn close(&self);
}

/// How a bus reads back what it did not hear: each organization's stream of
/// committed events, as the store keeps it. Implemented by the server over
/// its store, so that this crate need not know it.
#[async_trait]
pub trait StreamSource: Send + Sync + 'static {
    /// At most `limit` envelopes of `org`'s stream after position `after`,
    /// oldest first, each with its [`Scope::Stream`] position.
    async fn after(&self, org: OrgId, after: u64, limit: u32) -> Result<Vec<Envelope>, BusError>;
    /// The newest position of each organization asked about (0 for one
    /// with no events).
    async fn heads(&self, orgs: Vec<OrgId>) -> Result<Vec<Position>, BusError>;
}

/// The single-node bus: publishing is a direct call into the local gateway.
#[derive(Default)]
pub struct LocalBus {
    sinks: RwLock<Vec<Arc<dyn Sink>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for LocalBus {
    fn publish(&self, envelope: Envelope) {
        for sink in self.sinks.read().iter() {
            sink.deliver(&envelope);
        }
    }

    fn attach(&self, sink: Arc<dyn Sink>) {
        self.sinks.write().push(sink);
    }

    /// Every commit is this node's, heard in order: nothing to follow.
    async fn track(&self, _: OrgId) -> Result<(), BusError> {
        Ok(())
    }

    fn untrack(&self, _: OrgId) {}

    fn is_connected(&self) -> bool {
        true
    }

    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Option<Cursor>, Vec<ExtensionId>)>>);

    impl Sink for Recorder {
        fn deliver(&self, e: &Envelope) {
            self.0.lock().push((e.cursor, e.recipients.to_vec()));
        }
    }

    #[test]
    fn every_attached_sink_gets_every_envelope_in_order() {
        let bus = LocalBus::new();
        let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        bus.attach(a.clone());
        bus.attach(b.clone());
        for i in 1..=3 {
            bus.publish(Envelope {
                cursor: Some(Cursor(i)),
                scope: Scope::Node,
                recipients: Arc::from([ExtensionId(i)]),
                except: None,
                frame: Bytes::from_static(b"{}"),
                event: None,
            });
        }
        let want: Vec<_> = (1..=3)
            .map(|i| (Some(Cursor(i)), vec![ExtensionId(i)]))
            .collect();
        assert_eq!(*a.0.lock(), want);
        assert_eq!(*b.0.lock(), want);
    }
}
