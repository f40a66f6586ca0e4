//! The rules of Switchboard and nothing else.
//!
//! This crate holds identifiers, validated values ("parse, don't validate"),
//! conversations and their membership rules, system messages, the events the
//! server publishes and who hears them (`delivery`), sessions as other nodes
//! may name them, phone numbers (`phone`), SMS segments and opt-out keywords (`sms`), cursor ordering
//! and the typing state machine. It performs no I/O, reads no clock (callers
//! pass `now`) and must never depend on tokio, sqlx, rusqlite, axum, reqwest
//! or any other crate that does; CI checks that.

pub mod carrier;
pub mod conversation;
pub mod cursor;
pub mod delivery;
pub mod event;
pub mod ids;
pub mod message;
pub mod phone;
pub mod session;
pub mod sms;
pub mod system;
pub mod time;
pub mod typing;
pub mod values;

pub use carrier::CarrierKind;
pub use conversation::{
    BusinessNumberRef, Conversation, ConversationKind, ExternalParticipant, GroupChange,
    MembershipError,
};
pub use cursor::{Cursor, ReplayGate};
pub use delivery::DeliveryStatus;
pub use event::{Audience, EndedSessions, Event, EventKind, UnknownEventKind};
pub use ids::{ConnectionId, ConversationId, ExtensionId, MessageId, NumberId, OrgId};
pub use message::{
    Attachment, AttachmentState, Delivery, ExternalRef, HistoryPage, Message, MessageKind,
    PageDirection,
};
pub use session::SessionTag;
pub use system::SystemAction;
pub use time::Timestamp;
pub use values::{
    AlertTone, ConversationName, DisplayName, ExtensionNumber, IdempotencyKey, InvalidValue,
    MessageText, OrgSlug, Password, Role,
};

/// A colleague as other people see them: enough to show a name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtensionRef {
    pub id: ExtensionId,
    pub number: String,
    pub name: String,
}
