//! Persistence for Switchboard.
//!
//! [`Store`] is the one interface the server uses to read and change state.
//! Every change that matters is one transaction that also records the events
//! it causes, each with its cursor, so that nothing is announced that was not
//! committed and a client can always resume from the store. The SQLite
//! implementation lives in [`sqlite`]; a PostgreSQL one must pass the same
//! [`contract`] suite. This crate knows nothing of HTTP or WebSockets.

pub mod contract;
pub mod sqlite;

use async_trait::async_trait;
use std::sync::Arc;
use switchboard_domain::{
    AlertTone, Conversation, ConversationId, ConversationName, Cursor, DisplayName, ExtensionId,
    ExtensionNumber, ExtensionRef, GroupChange, HistoryPage, IdempotencyKey, InvalidValue,
    MembershipError, Message, MessageId, MessageText, OrgId, OrgSlug, Role, Timestamp,
};

pub use sqlite::{IdempotencyWindow, SqliteOptions, SqliteStore, Synchronous};

/// What can go wrong in the store. Expected outcomes (not found, conflict,
/// a membership rule) are values the caller maps to answers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The database failed; the message is for the log, not for clients.
    #[error("database: {0}")]
    Backend(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Org {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub alert_tone: AlertTone,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Extension {
    pub id: ExtensionId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub number: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(skip)]
    pub alert_muted: bool,
}

impl Extension {
    pub fn as_ref(&self) -> ExtensionRef {
        ExtensionRef {
            id: self.id,
            number: self.number.clone(),
            name: self.name.clone(),
        }
    }
}

/// An extension to create. The password arrives already hashed: hashing is
/// the server's job and never happens inside a transaction.
#[derive(Debug, Clone)]
pub struct NewExtension {
    pub number: ExtensionNumber,
    pub name: DisplayName,
    pub role: Role,
    pub password_hash: String,
}

/// Fields of an extension an administrator or its owner may change; `None`
/// leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ExtensionUpdate {
    pub name: Option<DisplayName>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub alert_muted: Option<bool>,
}

/// The SHA-256 of a session token. Tokens themselves are never stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

/// A live session with who it belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    pub extension: Extension,
    pub org: Org,
    pub expires_at: Timestamp,
}

/// A durable event as recorded: the payload is the JSON `data` of the frame,
/// serialized once when the event is stored.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub cursor: Cursor,
    pub kind: &'static str,
    pub payload: Arc<str>,
    /// Who should get it live: the audience at commit time.
    pub recipients: Arc<[ExtensionId]>,
}

/// An event read back for a resuming client.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub cursor: Cursor,
    pub kind: String,
    pub payload: String,
}

/// A change and the events it recorded, in cursor order.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    pub value: T,
    pub events: Vec<Recorded>,
}

/// What a direct-chat request found or made.
#[derive(Debug, Clone)]
pub struct OpenedDirect {
    pub conversation: Conversation,
    pub created: bool,
}

/// A conversation in my list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub last_message: Option<Message>,
    pub unread_count: u32,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: ConversationId,
    pub sender: ExtensionRef,
    pub text: MessageText,
    pub idempotency_key: Option<IdempotencyKey>,
    pub now: Timestamp,
}

/// The outcome of a send.
#[derive(Debug, Clone)]
pub struct Posted {
    pub message: Message,
    /// True when the idempotency key had been used: `message` is the
    /// original and nothing new was stored or announced.
    pub replayed: bool,
}

/// One participant's read position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    pub extension_id: ExtensionId,
    pub name: String,
    pub last_read_message_id: MessageId,
}

/// Called with each recorded event, in cursor order, right after the commit
/// that made it durable and before the caller is answered. Must not block.
pub type CommitListener = Arc<dyn Fn(&Recorded) + Send + Sync>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Registers a listener for committed events (the server publishes them
    /// on the bus from here, so they go out in order).
    fn on_commit(&self, listener: CommitListener);

    // Organizations.
    async fn create_org(&self, slug: &OrgSlug, name: &DisplayName) -> Result<Org>;
    async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<Org>>;
    async fn list_orgs(&self) -> Result<Vec<Org>>;
    async fn set_alert_tone(&self, org: OrgId, tone: AlertTone) -> Result<Org>;

    // Extensions.
    /// Creates all of them or none (a number already taken is a conflict).
    async fn create_extensions(
        &self,
        org: OrgId,
        new: Vec<NewExtension>,
        now: Timestamp,
    ) -> Result<Vec<Extension>>;
    async fn extension(&self, org: OrgId, id: ExtensionId) -> Result<Option<Extension>>;
    /// The extension and its password hash, for sign-in.
    async fn extension_for_sign_in(
        &self,
        org: OrgId,
        number: &ExtensionNumber,
    ) -> Result<Option<(Extension, String)>>;
    /// Every extension of the organization, by number.
    async fn list_extensions(&self, org: OrgId) -> Result<Vec<Extension>>;
    /// Disabling an extension also revokes its sessions.
    async fn update_extension(
        &self,
        org: OrgId,
        id: ExtensionId,
        update: ExtensionUpdate,
    ) -> Result<Extension>;
    /// Sets a new password hash and revokes every session of the extension
    /// except `keep`.
    async fn set_password_hash(
        &self,
        org: OrgId,
        id: ExtensionId,
        hash: String,
        keep: Option<TokenHash>,
    ) -> Result<()>;

    // Sessions.
    async fn create_session(
        &self,
        token: TokenHash,
        extension: ExtensionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// The session if it exists, has not expired and its extension is enabled.
    async fn session(&self, token: &TokenHash, now: Timestamp) -> Result<Option<Session>>;
    async fn revoke_session(&self, token: &TokenHash) -> Result<()>;

    // Conversations.
    /// The direct chat between `me` and `other`, created if needed.
    async fn open_direct(
        &self,
        org: OrgId,
        me: ExtensionId,
        other: ExtensionId,
        now: Timestamp,
    ) -> Result<Committed<OpenedDirect>>;
    async fn create_group(
        &self,
        org: OrgId,
        creator: ExtensionId,
        name: ConversationName,
        members: Vec<ExtensionId>,
        now: Timestamp,
    ) -> Result<Committed<Conversation>>;
    async fn edit_group(
        &self,
        org: OrgId,
        actor: ExtensionId,
        conversation: ConversationId,
        edit: GroupChange,
        now: Timestamp,
    ) -> Result<Committed<Conversation>>;
    /// My conversations, most recent activity first.
    async fn conversations_of(&self, me: ExtensionId) -> Result<Vec<ConversationSummary>>;
    /// One conversation, if `me` is a participant.
    async fn conversation_for(
        &self,
        me: ExtensionId,
        id: ConversationId,
    ) -> Result<Option<Conversation>>;

    // Messages.
    async fn post_message(&self, message: NewMessage) -> Result<Committed<Posted>>;
    /// A page of history and whether more lies beyond it, if `me` is a
    /// participant.
    async fn history(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        page: HistoryPage,
    ) -> Result<(Vec<Message>, bool)>;
    /// Moves my read position forward to `up_to` (never back). Returns my
    /// unread count afterwards.
    async fn mark_read(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        up_to: MessageId,
        now: Timestamp,
    ) -> Result<Committed<u32>>;
    async fn receipts(&self, me: ExtensionId, conversation: ConversationId)
    -> Result<Vec<Receipt>>;

    // Events.
    /// Durable events after `after` that `me` may see, oldest first.
    async fn events_after(
        &self,
        me: ExtensionId,
        after: Cursor,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// The newest cursor recorded.
    async fn latest_cursor(&self) -> Result<Cursor>;
}
