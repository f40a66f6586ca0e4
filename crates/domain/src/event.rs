//! The durable events the server records.
//!
//! Each event is stored with the change that caused it, in the same
//! transaction, and gets a [`Cursor`](crate::Cursor). Most are for clients:
//! their JSON form here is the `data` of the WebSocket frame (see
//! `docs/PROTOCOL.md`). A few are for the servers themselves (a session
//! ended, an extension changed): they travel the same way so that every node
//! hears of them in order, and [`EventKind::reaches_clients`] tells them
//! apart.

use crate::delivery::DeliveryStatus;
use crate::phone::E164;
use crate::{Conversation, ConversationId, ExtensionId, Message, MessageId, SessionTag};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Event {
    MessageCreated {
        message: Message,
    },
    ConversationCreated {
        conversation: Conversation,
    },
    ConversationUpdated {
        conversation: Conversation,
    },
    ReceiptUpdated {
        conversation_id: ConversationId,
        extension_id: ExtensionId,
        last_read_message_id: MessageId,
    },
    /// A text to an outside number moved on (sent, delivered, failed).
    DeliveryUpdated {
        conversation_id: ConversationId,
        message_id: MessageId,
        to: E164,
        status: DeliveryStatus,
        reason: Option<String>,
    },
    /// A message changed after it was created (an image arrived).
    MessageUpdated {
        message: Message,
    },
    UnreadUpdated {
        /// Whose count this is; the frame goes to that extension only.
        #[serde(skip_serializing)]
        extension_id: ExtensionId,
        conversation_id: ConversationId,
        unread_count: u32,
    },
    /// One session of the extension ended (signed out). For the servers:
    /// they forget it and close its WebSockets.
    SessionEnded {
        extension_id: ExtensionId,
        session: SessionTag,
    },
    /// The extension changed; what servers cached of it is stale, and
    /// `sessions_ended` says which of its sessions ended with the change.
    ExtensionChanged {
        extension_id: ExtensionId,
        sessions_ended: EndedSessions,
    },
}

/// Which sessions of an extension a change ended.
/// Deserializable so that a node reading the event back from the store
/// knows which sockets to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedSessions {
    /// None: a setting changed (name, role, mute…); its sessions go on.
    None,
    /// Every session except the one kept (if any): the extension was
    /// disabled, or its password changed from one of its sessions.
    AllExcept(Option<SessionTag>),
}

/// What an event is, without its data. The wire name is the frame `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    MessageCreated,
    ConversationCreated,
    ConversationUpdated,
    ReceiptUpdated,
    UnreadUpdated,
    SessionEnded,
    ExtensionChanged,
    DeliveryUpdated,
    MessageUpdated,
}

impl EventKind {
    pub const ALL: [Self; 9] = [
        Self::MessageCreated,
        Self::ConversationCreated,
        Self::ConversationUpdated,
        Self::ReceiptUpdated,
        Self::UnreadUpdated,
        Self::SessionEnded,
        Self::ExtensionChanged,
        Self::DeliveryUpdated,
        Self::MessageUpdated,
    ];

    /// The frame `type` on the WebSocket, and the name stored in the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MessageCreated => "message.created",
            Self::ConversationCreated => "conversation.created",
            Self::ConversationUpdated => "conversation.updated",
            Self::ReceiptUpdated => "receipt.updated",
            Self::UnreadUpdated => "unread.updated",
            Self::SessionEnded => "session.ended",
            Self::ExtensionChanged => "extension.changed",
            Self::DeliveryUpdated => "delivery.updated",
            Self::MessageUpdated => "message.updated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether clients get events of this kind, live and on replay. The
    /// others are for the servers only.
    pub const fn reaches_clients(self) -> bool {
        !matches!(self, Self::SessionEnded | Self::ExtensionChanged)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`EventKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?}")]
pub struct UnknownEventKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownEventKind(s.to_owned()))
    }
}

/// Who may see an event, now and when resuming later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every extension that is a participant of the conversation at the
    /// moment the event is recorded (for a removal: including the one
    /// removed, so that they learn of it).
    Conversation(ConversationId),
    /// One extension's own devices.
    Extension(ExtensionId),
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Self::MessageCreated { .. } => EventKind::MessageCreated,
            Self::ConversationCreated { .. } => EventKind::ConversationCreated,
            Self::ConversationUpdated { .. } => EventKind::ConversationUpdated,
            Self::ReceiptUpdated { .. } => EventKind::ReceiptUpdated,
            Self::UnreadUpdated { .. } => EventKind::UnreadUpdated,
            Self::SessionEnded { .. } => EventKind::SessionEnded,
            Self::ExtensionChanged { .. } => EventKind::ExtensionChanged,
            Self::DeliveryUpdated { .. } => EventKind::DeliveryUpdated,
            Self::MessageUpdated { .. } => EventKind::MessageUpdated,
        }
    }

    pub fn audience(&self) -> Audience {
        match self {
            Self::MessageCreated { message } | Self::MessageUpdated { message } => {
                Audience::Conversation(message.conversation_id)
            }
            Self::DeliveryUpdated {
                conversation_id, ..
            } => Audience::Conversation(*conversation_id),
            Self::ConversationCreated { conversation }
            | Self::ConversationUpdated { conversation } => Audience::Conversation(conversation.id),
            Self::ReceiptUpdated {
                conversation_id, ..
            } => Audience::Conversation(*conversation_id),
            Self::UnreadUpdated { extension_id, .. }
            | Self::SessionEnded { extension_id, .. }
            | Self::ExtensionChanged { extension_id, .. } => Audience::Extension(*extension_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_wire_names_and_parse_back() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "message.created",
                "conversation.created",
                "conversation.updated",
                "receipt.updated",
                "unread.updated",
                "session.ended",
                "extension.changed",
                "delivery.updated",
                "message.updated",
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(
            "message.deleted".parse::<EventKind>(),
            Err(UnknownEventKind("message.deleted".into()))
        );
    }

    #[test]
    fn only_the_servers_own_events_stay_away_from_clients() {
        let internal: Vec<EventKind> = EventKind::ALL
            .into_iter()
            .filter(|k| !k.reaches_clients())
            .collect();
        assert_eq!(
            internal,
            [EventKind::SessionEnded, EventKind::ExtensionChanged]
        );
    }

    #[test]
    fn session_events_go_to_their_extension_and_name_sessions_by_tag() {
        let tag = SessionTag::new([1; 16]);
        let ended = Event::SessionEnded {
            extension_id: ExtensionId(7),
            session: tag,
        };
        assert_eq!(ended.kind(), EventKind::SessionEnded);
        assert_eq!(ended.audience(), Audience::Extension(ExtensionId(7)));
        assert_eq!(
            serde_json::to_value(&ended).expect("json"),
            serde_json::json!({"extension_id": 7, "session": "01".repeat(16)})
        );
        let changed = |sessions_ended| Event::ExtensionChanged {
            extension_id: ExtensionId(7),
            sessions_ended,
        };
        assert_eq!(
            changed(EndedSessions::None).audience(),
            Audience::Extension(ExtensionId(7))
        );
        assert_eq!(
            serde_json::to_value(changed(EndedSessions::None)).expect("json"),
            serde_json::json!({"extension_id": 7, "sessions_ended": "none"})
        );
        assert_eq!(
            serde_json::to_value(changed(EndedSessions::AllExcept(Some(tag)))).expect("json"),
            serde_json::json!({"extension_id": 7, "sessions_ended": {"all_except": "01".repeat(16)}})
        );
        assert_eq!(
            serde_json::to_value(changed(EndedSessions::AllExcept(None))).expect("json"),
            serde_json::json!({"extension_id": 7, "sessions_ended": {"all_except": null}})
        );
    }
}
