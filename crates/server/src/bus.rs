//! Which bus the server runs on, and how a bus between nodes reads the
//! organizations' streams back from the store.
//!
//! Events read back carry their JSON, not the typed [`Event`]: the frame is
//! built from the JSON as for a replay, and the two events that sinks act on
//! (`session.ended`, `extension.changed`: the session cache forgets, the
//! gateway closes sockets) are rebuilt from it, so sign-out and disabling an
//! extension close its WebSockets on every node.

use crate::ws::frames::durable_frame;
use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use switchboard_bus::nats::{NatsBus, NatsOptions};
use switchboard_bus::{Bus, BusError, Envelope, LocalBus, Position, Scope, StreamSource};
use switchboard_domain::{EndedSessions, Event, EventKind, ExtensionId, OrgId, SessionTag};
use switchboard_store::{Store, StreamedEvent};

/// The bus of this node: in-process without `bus_url` (one node, on either
/// store), NATS with one (several nodes, on PostgreSQL, whose organization
/// streams the bus reads back).
pub async fn connect_bus(
    bus_url: Option<&str>,
    store: Arc<dyn Store>,
) -> anyhow::Result<Arc<dyn Bus>> {
    let Some(url) = bus_url else {
        return Ok(Arc::new(LocalBus::new()));
    };
    // Nodes that hear each other only as stream positions need a store
    // that keeps organization streams (PostgreSQL); the single-node store
    // says it keeps none.
    store
        .stream_heads(Vec::new())
        .await
        .map_err(|e| anyhow::anyhow!("bus_url is set, but {e}"))?;
    let source = Arc::new(StoreStreams { store });
    let bus = NatsBus::connect(NatsOptions::new(url), source).await?;
    Ok(Arc::new(bus))
}

/// The store's organization streams, as the bus reads them.
pub struct StoreStreams {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl StreamSource for StoreStreams {
    async fn after(&self, org: OrgId, after: u64, limit: u32) -> Result<Vec<Envelope>, BusError> {
        let events = self
            .store
            .stream_after(org, after, limit)
            .await
            .map_err(|e| BusError::Source(e.to_string()))?;
        Ok(events
            .into_iter()
            .map(|e| envelope_from_stream(org, e))
            .collect())
    }

    async fn heads(&self, orgs: Vec<OrgId>) -> Result<Vec<Position>, BusError> {
        let heads = self
            .store
            .stream_heads(orgs)
            .await
            .map_err(|e| BusError::Source(e.to_string()))?;
        Ok(heads
            .into_iter()
            .map(|h| Position {
                org: h.org,
                seq: h.seq,
            })
            .collect())
    }
}

/// The envelope of an event read back from `org`'s stream: the same frame
/// and recipients as the committing node's [`crate::ws::frames::envelope_for`].
pub fn envelope_from_stream(org: OrgId, e: StreamedEvent) -> Envelope {
    let position = Scope::Stream(Position { org, seq: e.seq });
    if e.kind.reaches_clients() {
        return Envelope {
            cursor: Some(e.cursor),
            scope: position,
            recipients: e.recipients.into(),
            except: None,
            frame: Bytes::from(durable_frame(e.kind.as_str(), e.cursor, &e.payload)),
            event: None,
        };
    }
    let event = server_event(e.kind, &e.payload);
    if event.is_none() {
        tracing::error!(cursor = %e.cursor, kind = e.kind.as_str(), "cannot read a stored event back; no sink acts on it");
    }
    Envelope {
        cursor: Some(e.cursor),
        scope: position,
        // Never a frame: an event no sink can act on goes to nobody.
        recipients: if event.is_some() {
            e.recipients.into()
        } else {
            Arc::from([])
        },
        except: None,
        frame: Bytes::new(),
        event: event.map(Arc::new),
    }
}

#[derive(Deserialize)]
struct SessionEndedData {
    extension_id: ExtensionId,
    session: SessionTag,
}

#[derive(Deserialize)]
struct ExtensionChangedData {
    extension_id: ExtensionId,
    sessions_ended: EndedSessions,
}

/// The typed form of an event meant for the servers, from its stored JSON.
fn server_event(kind: EventKind, payload: &str) -> Option<Event> {
    match kind {
        EventKind::SessionEnded => {
            let d: SessionEndedData = serde_json::from_str(payload).ok()?;
            Some(Event::SessionEnded {
                extension_id: d.extension_id,
                session: d.session,
            })
        }
        EventKind::ExtensionChanged => {
            let d: ExtensionChangedData = serde_json::from_str(payload).ok()?;
            Some(Event::ExtensionChanged {
                extension_id: d.extension_id,
                sessions_ended: d.sessions_ended,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::Cursor;

    fn streamed(event: &Event) -> StreamedEvent {
        StreamedEvent {
            seq: 3,
            cursor: Cursor(42),
            kind: event.kind(),
            payload: serde_json::to_string(event).expect("json"),
            recipients: vec![ExtensionId(7)],
        }
    }

    #[test]
    fn the_events_servers_act_on_are_rebuilt_from_their_json() {
        let tag = SessionTag::new([0x5a; 16]);
        for event in [
            Event::SessionEnded {
                extension_id: ExtensionId(7),
                session: tag,
            },
            Event::ExtensionChanged {
                extension_id: ExtensionId(7),
                sessions_ended: EndedSessions::AllExcept(Some(tag)),
            },
            Event::ExtensionChanged {
                extension_id: ExtensionId(7),
                sessions_ended: EndedSessions::AllExcept(None),
            },
            Event::ExtensionChanged {
                extension_id: ExtensionId(7),
                sessions_ended: EndedSessions::None,
            },
        ] {
            let envelope = envelope_from_stream(OrgId(1), streamed(&event));
            assert_eq!(envelope.event.as_deref(), Some(&event));
            assert!(envelope.frame.is_empty());
            assert_eq!(&*envelope.recipients, &[ExtensionId(7)]);
            assert_eq!(
                envelope.scope,
                Scope::Stream(Position {
                    org: OrgId(1),
                    seq: 3
                })
            );
        }
    }

    #[test]
    fn a_client_event_read_back_has_the_frame_of_a_replay() {
        let event = Event::ReceiptUpdated {
            conversation_id: switchboard_domain::ConversationId(5),
            extension_id: ExtensionId(7),
            last_read_message_id: switchboard_domain::MessageId(9),
        };
        let e = streamed(&event);
        let frame = durable_frame(e.kind.as_str(), e.cursor, &e.payload);
        let envelope = envelope_from_stream(OrgId(1), e);
        assert_eq!(envelope.frame, Bytes::from(frame));
        assert_eq!(envelope.cursor, Some(Cursor(42)));
        assert!(envelope.event.is_none());
    }

    #[tokio::test]
    async fn without_a_url_the_bus_is_in_process_and_a_url_needs_streams() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(
            switchboard_store::SqliteStore::open(switchboard_store::SqliteOptions::new(
                dir.path().join("db.sqlite"),
            ))
            .expect("the store opens"),
        );
        let bus = connect_bus(None, Arc::clone(&store))
            .await
            .expect("the in-process bus");
        assert!(bus.is_connected());
        let refused = connect_bus(Some("nats://127.0.0.1:1"), store).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("bus_url") && message.contains("PostgreSQL"),
            "{message}"
        );
    }

    #[test]
    fn an_unreadable_server_event_goes_to_nobody() {
        let mut e = streamed(&Event::SessionEnded {
            extension_id: ExtensionId(7),
            session: SessionTag::new([1; 16]),
        });
        e.payload = "{}".to_owned();
        let envelope = envelope_from_stream(OrgId(1), e);
        assert!(envelope.event.is_none());
        assert!(envelope.recipients.is_empty());
        assert!(envelope.frame.is_empty());
    }
}
