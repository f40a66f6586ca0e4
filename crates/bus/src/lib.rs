//! The event bus: how an event committed on one node reaches the WebSocket
//! gateway of every node with a recipient connected.
//!
//! Events are hints; the store is the truth. A gateway that misses an event
//! (a node restarted, a slow connection was cut) recovers by replaying from
//! the store with the client's cursor, so the bus may be at-most-once. The
//! in-process bus here hands each envelope straight to the local gateway;
//! a NATS bus will implement the same trait for several nodes. This crate
//! does no I/O and knows nothing of HTTP.

use bytes::Bytes;
use parking_lot::RwLock;
use std::sync::Arc;
use switchboard_domain::{Cursor, Event, ExtensionId};

/// One event on its way to clients. The frame is serialized once, here, and
/// shared by every recipient.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `None` for ephemeral events (typing), which are never replayed.
    pub cursor: Option<Cursor>,
    pub recipients: Arc<[ExtensionId]>,
    /// A recipient not to send it to (the typist does not see their own
    /// typing indicator).
    pub except: Option<ExtensionId>,
    /// The complete WebSocket text frame, UTF-8 JSON; empty for events that
    /// never reach clients.
    pub frame: Bytes,
    /// The durable event itself, for sinks that act on it (ending sessions,
    /// dropping cached ones); `None` for ephemeral frames.
    pub event: Option<Arc<Event>>,
}

/// Receives envelopes on a node; implemented by the WebSocket gateway. Must
/// not block: it is called on the publisher's task.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, envelope: &Envelope);
}

pub trait Bus: Send + Sync + 'static {
    /// Sends an envelope to every node, this one included.
    fn publish(&self, envelope: Envelope);
    /// Registers this node's receiver.
    fn attach(&self, sink: Arc<dyn Sink>);
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

impl Bus for LocalBus {
    fn publish(&self, envelope: Envelope) {
        for sink in self.sinks.read().iter() {
            sink.deliver(&envelope);
        }
    }

    fn attach(&self, sink: Arc<dyn Sink>) {
        self.sinks.write().push(sink);
    }
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
