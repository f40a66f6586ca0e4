//! Every frame that crosses the WebSocket, in both directions, in one place
//! (`docs/PROTOCOL.md` describes them for clients). Durable event frames are
//! built once per event and shared by every recipient.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_bus::{Envelope, Position, Scope};
use switchboard_domain::typing::TypingChange;
use switchboard_domain::{ConversationId, Cursor, Message, MessageId};
use switchboard_store::Recorded;

/// Frames a client may send. `Serialize` writes the form that
/// [`parse_client_frame`] reads back, which the fuzz target checks.
#[derive(Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientFrame {
    Typing {
        conversation_id: ConversationId,
    },
    Read {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A struct variant, not a unit one: serde lets extra fields through a
    /// tagged unit variant even with `deny_unknown_fields`.
    Ping {},
    Send(SendFrame),
}

/// A message sent over the WebSocket instead of `POST …/messages`.
#[derive(Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendFrame {
    pub conversation_id: ConversationId,
    #[serde(default)]
    pub text: String,
    pub idempotency_key: String,
    /// Ids of images uploaded before, as `POST …/messages` takes them.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// Reads a client's text frame. The connection reads every text frame with
/// this, and so does the `client_frame` fuzz target, so the fuzzer tries the
/// very code that faces clients.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, serde_json::Error> {
    serde_json::from_str(text)
}

/// The WebSocket frame of a durable event: built once, shared by every
/// recipient.
pub fn durable_frame(kind: &str, cursor: Cursor, payload: &str) -> String {
    let mut frame = String::with_capacity(payload.len() + kind.len() + 48);
    frame.push_str(r#"{"type":""#);
    frame.push_str(kind);
    frame.push_str(r#"","cursor":""#);
    frame.push_str(&cursor.to_string());
    frame.push_str(r#"","data":"#);
    frame.push_str(payload);
    frame.push('}');
    frame
}

/// A committed event on its way to the bus, with its place in its
/// organization's stream where the store keeps one (so the bus can carry it
/// to other nodes), for this node alone where it does not (one node).
pub fn envelope_for(event: &Recorded) -> Envelope {
    let kind = event.kind();
    let frame = if kind.reaches_clients() {
        Bytes::from(durable_frame(kind.as_str(), event.cursor, &event.payload))
    } else {
        Bytes::new()
    };
    let scope = match event.stream {
        Some(p) => Scope::Stream(Position {
            org: p.org,
            seq: p.seq,
        }),
        None => Scope::Node,
    };
    Envelope {
        cursor: Some(event.cursor),
        scope,
        recipients: Arc::clone(&event.recipients),
        except: None,
        frame,
        event: Some(Arc::clone(&event.event)),
    }
}

/// An ephemeral typing frame; never replayed.
pub fn typing_frame(change: TypingChange) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"typing","data":{{"conversation_id":{},"extension_id":{},"active":{}}}}}"#,
        change.conversation_id, change.extension_id, change.active
    ))
}

/// A job's progress or result, for the administrator who started it;
/// ephemeral like typing, never replayed.
pub fn job_frame(job: &crate::workers::jobs::Job) -> Bytes {
    let frame = serde_json::json!({"type": "job.updated", "data": {"job": job}});
    Bytes::from(frame.to_string())
}

/// Replay is over; live events follow from `cursor`.
pub fn ready_frame(cursor: Cursor) -> String {
    format!(r#"{{"type":"ready","cursor":"{cursor}"}}"#)
}

/// The client is too far behind to replay: reload over REST from `cursor`.
pub fn resync_frame(cursor: Cursor) -> String {
    format!(r#"{{"type":"resync","cursor":"{cursor}"}}"#)
}

pub const PONG: &str = r#"{"type":"pong"}"#;

/// The answer to a binary frame: every client frame is JSON text.
pub const BINARY_REFUSED: &str = r#"{"type":"error","data":{"code":"bad_request","message":"binary frames are not accepted: send each frame as text carrying JSON"}}"#;

pub fn error_frame(code: &str, message: &str, idempotency_key: Option<&str>) -> String {
    let mut data = serde_json::json!({"code": code, "message": message});
    if let Some(key) = idempotency_key {
        data["idempotency_key"] = key.into();
    }
    serde_json::json!({"type": "error", "data": data}).to_string()
}

#[derive(Serialize)]
struct SentFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: Sent<'a>,
}

#[derive(Serialize)]
struct Sent<'a> {
    idempotency_key: &'a str,
    message: &'a switchboard_domain::Message,
}

/// The answer to a `send` frame whose message was stored: built around the
/// stored event's JSON when it has the expected shape, encoded anew if not.
pub fn sent_frame(idempotency_key: &str, message: &Message, event_payload: Option<&str>) -> String {
    if let Some(frame) = event_payload.and_then(|p| sent_frame_around(idempotency_key, p)) {
        return frame;
    }
    let sent = SentFrame {
        kind: "sent",
        data: Sent {
            idempotency_key,
            message,
        },
    };
    serde_json::to_string(&sent).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a sent frame");
        error_frame(
            "internal",
            "the message was stored but the answer could not be encoded; it arrives as an event",
            Some(idempotency_key),
        )
    })
}

/// The `sent` frame built around the stored event's JSON (`{"message":…}`),
/// so a send's message is encoded once, not again for its answer; `None`
/// when the payload does not have that shape.
fn sent_frame_around(idempotency_key: &str, event_payload: &str) -> Option<String> {
    let message = event_payload.strip_prefix(r#"{"message":"#)?;
    let key = serde_json::to_string(idempotency_key).ok()?;
    let head = r#"{"type":"sent","data":{"idempotency_key":"#;
    let mut frame = String::with_capacity(head.len() + key.len() + event_payload.len() + 2);
    frame.push_str(head);
    frame.push_str(&key);
    frame.push_str(r#","message":"#);
    frame.push_str(message);
    frame.push('}');
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::{Event, ExtensionId, ExtensionRef, MessageKind, Timestamp};

    #[test]
    fn sent_frame_around_the_event_matches_the_encoded_frame() {
        let message = Message {
            id: MessageId(7),
            conversation_id: ConversationId(3),
            kind: MessageKind::Text,
            sender: Some(ExtensionRef {
                id: ExtensionId(2),
                number: "102".into(),
                name: "Ann \"A\" Lee".into(),
            }),
            external_sender: None,
            text: "héllo\n{\"message\":1}".into(),
            attachments: Vec::new(),
            deliveries: Vec::new(),
            system: None,
            created_at: Timestamp(1_700_000_000_000),
            idempotency_key: Some("k-1".into()),
        };
        let payload = serde_json::to_string(&Event::MessageCreated {
            message: message.clone(),
        })
        .unwrap();
        let key = "k-\"1\"";
        let built = sent_frame_around(key, &payload).expect("a message.created payload");
        let encoded = serde_json::to_string(&SentFrame {
            kind: "sent",
            data: Sent {
                idempotency_key: key,
                message: &message,
            },
        })
        .unwrap();
        let built: serde_json::Value = serde_json::from_str(&built).unwrap();
        let encoded: serde_json::Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(built, encoded);
    }

    #[test]
    fn client_frames_read_back_from_their_written_form() {
        let frames = [
            ClientFrame::Ping {},
            ClientFrame::Typing {
                conversation_id: ConversationId(3),
            },
            ClientFrame::Read {
                conversation_id: ConversationId(3),
                message_id: MessageId(42),
            },
            ClientFrame::Send(SendFrame {
                conversation_id: ConversationId(3),
                text: "héllo\n".into(),
                idempotency_key: "k-1".into(),
                attachments: vec!["ab".repeat(32)],
            }),
        ];
        for frame in frames {
            let written = serde_json::to_string(&frame).unwrap();
            assert_eq!(parse_client_frame(&written).unwrap(), frame, "{written}");
        }
        assert!(
            parse_client_frame(
                r#"{"type":"send","conversation_id":3,"text":"hi","idempotency_key":"k","extra":1}"#
            )
            .is_err()
        );
        assert!(parse_client_frame(r#"{"type":"shout"}"#).is_err());
        assert!(parse_client_frame(r#"{"type":"ping","extra":1}"#).is_err());
    }

    #[test]
    fn sent_frame_around_refuses_other_payloads() {
        assert_eq!(sent_frame_around("k", r#"{"conversation":{}}"#), None);
    }
}
