//! The durable events the server records and sends to clients.
//!
//! Each event is stored with the change that caused it, in the same
//! transaction, and gets a [`Cursor`](crate::Cursor). Its JSON form here is
//! the `data` of the WebSocket frame (see `docs/PROTOCOL.md`).

use crate::{Conversation, ConversationId, ExtensionId, Message, MessageId};
use serde::Serialize;

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
    UnreadUpdated {
        /// Whose count this is; the frame goes to that extension only.
        #[serde(skip_serializing)]
        extension_id: ExtensionId,
        conversation_id: ConversationId,
        unread_count: u32,
    },
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
    /// The frame `type` on the WebSocket.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MessageCreated { .. } => "message.created",
            Self::ConversationCreated { .. } => "conversation.created",
            Self::ConversationUpdated { .. } => "conversation.updated",
            Self::ReceiptUpdated { .. } => "receipt.updated",
            Self::UnreadUpdated { .. } => "unread.updated",
        }
    }

    pub fn audience(&self) -> Audience {
        match self {
            Self::MessageCreated { message } => Audience::Conversation(message.conversation_id),
            Self::ConversationCreated { conversation }
            | Self::ConversationUpdated { conversation } => Audience::Conversation(conversation.id),
            Self::ReceiptUpdated {
                conversation_id, ..
            } => Audience::Conversation(*conversation_id),
            Self::UnreadUpdated { extension_id, .. } => Audience::Extension(*extension_id),
        }
    }
}
