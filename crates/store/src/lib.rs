//! Persistence for Switchboard.
//!
//! The store's capabilities are traits of their own: [`Directory`]
//! (organizations, extensions, sessions), [`Conversations`] (chats, messages,
//! read positions), [`EventLog`] (listeners and replay), [`Numbers`]
//! (business numbers and carrier connections), [`Sms`] (texts from and to
//! outside numbers), [`Outbox`] (texts waiting for a carrier),
//! [`SignInLimits`] (failed sign-ins counted for every node) and [`Jobs`]
//! (long work, followed from any node). [`Store`] is all
//! of them, the one handle the server holds. Every change that matters is one
//! transaction that also records the events it causes, each with its cursor,
//! so that nothing is announced that was not committed and a client can
//! always resume from the store. The embedded SQLite implementation lives in
//! [`sqlite`], the PostgreSQL one for several nodes in [`postgres`]; both
//! pass the same contract suite (the `contract` feature). This crate knows
//! nothing of HTTP or WebSockets.

#[cfg(feature = "contract")]
pub mod contract;
mod jobs;
mod limits;
mod numbers;
pub mod postgres;
mod sms;
pub mod sqlite;

pub use jobs::{
    FinishJob, JOB_INTERRUPTED_BY_RESTART, JOB_LEASE, JOB_NODE_STOPPED, JobEnd, JobRecord,
    JobRunning, JobState, Jobs, JobsKept, NewJob,
};
pub use limits::{AttemptLimits, AttemptTicket, SignInLimits};
pub use numbers::{
    Assignment, BusinessNumber, CarrierConnection, NewConnection, NewNumber, NumberUpdate, Numbers,
    OwnNumber,
};
pub use sms::{
    InboundOutcome, InboundText, MediaRecord, OpenSms, OpenedSms, Outbox, OutboxText, Refusal, Sms,
    StatusOutcome, StatusReport,
};

use async_trait::async_trait;
use std::sync::Arc;
use switchboard_domain::phone::Country;
use switchboard_domain::{
    AlertTone, Attachment, Conversation, ConversationId, ConversationName, Cursor, DisplayName,
    Event, EventKind, ExtensionId, ExtensionNumber, ExtensionRef, GroupChange, HistoryPage,
    IdempotencyKey, InvalidValue, MembershipError, Message, MessageId, MessageText, OrgId, OrgSlug,
    Role, SessionTag, Timestamp,
};

pub use postgres::{PgOptions, PgStore};
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
    /// Texting rules refuse it (see [`Refusal`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
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
    /// The country numbers typed without `+` belong to, and the one whose
    /// numbers are shown in national form.
    pub default_country: Country,
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

impl TokenHash {
    /// The tag that names this session in events: the hash's first half,
    /// which is no credential (the token cannot be found from it, and the
    /// store looks sessions up by the whole hash).
    pub fn tag(&self) -> SessionTag {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.0[..16]);
        SessionTag::new(bytes)
    }
}

/// A live session with who it belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    pub extension: Extension,
    pub org: Org,
    pub expires_at: Timestamp,
}

/// A durable event as recorded, for commit listeners: the typed event, and
/// its JSON (the `data` of the frame), serialized once when it was stored.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub cursor: Cursor,
    pub event: Arc<Event>,
    pub payload: Arc<str>,
    /// Who should get it live: the audience at commit time.
    pub recipients: Arc<[ExtensionId]>,
    /// Its place in its organization's stream, where the store keeps one
    /// (PostgreSQL, for several nodes); `None` on the single-node store.
    pub stream: Option<StreamPosition>,
}

/// An event's place in its organization's stream: positions of one
/// organization count up by one in commit order, so a node that sees
/// position `n` after `n - 2` knows it missed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    pub org: OrgId,
    pub seq: u64,
}

/// An event read back from its organization's stream, by a node that did
/// not commit it (or missed it live).
#[derive(Debug, Clone)]
pub struct StreamedEvent {
    pub seq: u64,
    pub cursor: Cursor,
    pub kind: EventKind,
    pub payload: String,
    /// The audience at commit time, as [`Recorded::recipients`].
    pub recipients: Vec<ExtensionId>,
}

impl Recorded {
    pub fn kind(&self) -> EventKind {
        self.event.kind()
    }
}

/// An event read back for a resuming client.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub cursor: Cursor,
    pub kind: EventKind,
    pub payload: String,
}

/// A change and the events it recorded, in cursor order.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    pub value: T,
    pub events: Vec<Recorded>,
}

/// Values a write returns; those that carry recorded events expose them so
/// a writer (either backend's) can announce them after the commit.
pub(crate) trait RecordsEvents {
    fn events(&self) -> &[Recorded] {
        &[]
    }
}

impl<T> RecordsEvents for Committed<T> {
    fn events(&self) -> &[Recorded] {
        &self.events
    }
}

impl RecordsEvents for () {}
impl RecordsEvents for bool {}
impl RecordsEvents for u64 {}
impl RecordsEvents for Org {}
impl RecordsEvents for Extension {}
impl RecordsEvents for Vec<Extension> {}
impl RecordsEvents for CarrierConnection {}
impl RecordsEvents for BusinessNumber {}
impl RecordsEvents for Vec<OutboxText> {}
impl RecordsEvents for JobRecord {}
impl RecordsEvents for std::result::Result<JobRecord, JobRunning> {}

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
    /// Images sent with it, already stored.
    pub attachments: Vec<Attachment>,
    /// The carrier copies of those images, for texts to outside numbers.
    pub carrier_media: Vec<String>,
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

// ---------------------------------------------------------------------------
// Commands: the writes that take more than three arguments.

/// Find or make the direct chat between `me` and `other`.
#[derive(Debug, Clone)]
pub struct OpenDirect {
    pub org: OrgId,
    pub me: ExtensionId,
    pub other: ExtensionId,
    pub now: Timestamp,
}

/// Create a group of `creator` and `members` (repeats are dropped).
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub org: OrgId,
    pub creator: ExtensionId,
    pub name: ConversationName,
    pub members: Vec<ExtensionId>,
    pub now: Timestamp,
}

/// `actor` changes a group: renames it, adds, removes or leaves.
#[derive(Debug, Clone)]
pub struct EditGroup {
    pub org: OrgId,
    pub actor: ExtensionId,
    pub conversation: ConversationId,
    pub change: GroupChange,
    pub now: Timestamp,
}

/// A session signed in with the token whose hash is `token`.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: TokenHash,
    pub extension: ExtensionId,
    pub now: Timestamp,
    pub expires_at: Timestamp,
}

/// Move `me`'s read position in `conversation` forward to `up_to`.
#[derive(Debug, Clone)]
pub struct MarkRead {
    pub me: ExtensionId,
    pub conversation: ConversationId,
    pub up_to: MessageId,
    pub now: Timestamp,
}

/// A new password hash for `extension`; every session of it ends except
/// `keep` (the session that changed it, if any).
#[derive(Debug, Clone)]
pub struct NewPassword {
    pub org: OrgId,
    pub extension: ExtensionId,
    pub hash: String,
    pub keep: Option<TokenHash>,
}

// ---------------------------------------------------------------------------
// The capabilities.

/// Called with each recorded event; see [`EventLog::on_commit`].
pub type CommitListener = Arc<dyn Fn(&Recorded) + Send + Sync>;

/// Organizations, extensions and sessions.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    async fn create_org(&self, slug: &OrgSlug, name: &DisplayName) -> Result<Org>;
    async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<Org>>;
    async fn list_orgs(&self) -> Result<Vec<Org>>;
    async fn set_alert_tone(&self, org: OrgId, tone: AlertTone) -> Result<Org>;
    /// Sets the country of numbers typed without `+` (new organizations
    /// start with [`Country::US`]).
    async fn set_default_country(&self, org: OrgId, country: Country) -> Result<Org>;

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
    /// Changes what `update` gives and records
    /// [`Event::ExtensionChanged`]: ending every session when the extension
    /// is disabled (its sessions are revoked), none otherwise. A change that
    /// would leave an organization that had an enabled administrator without
    /// one is a conflict and changes nothing.
    async fn update_extension(
        &self,
        org: OrgId,
        id: ExtensionId,
        update: ExtensionUpdate,
    ) -> Result<Committed<Extension>>;
    /// Sets a new password hash, revokes every session of the extension
    /// except `keep`, and records [`Event::ExtensionChanged`] saying so.
    async fn set_password_hash(&self, change: NewPassword) -> Result<Committed<()>>;

    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// The session if it exists, has not expired and its extension is enabled.
    async fn session(&self, token: &TokenHash, now: Timestamp) -> Result<Option<Session>>;
    /// Of the sessions named by `tags`, those still live at `now` (they
    /// exist, have not expired and their extension is enabled), in one
    /// look-up however many are asked about. Servers use it to end the
    /// WebSockets of sessions ended where they could not hear it (the admin
    /// command line on the same database) or expired.
    async fn live_sessions(&self, tags: Vec<SessionTag>, now: Timestamp)
    -> Result<Vec<SessionTag>>;
    /// Ends the session and records [`Event::SessionEnded`] with its tag;
    /// a session that does not exist records nothing.
    async fn revoke_session(&self, token: &TokenHash) -> Result<Committed<()>>;
}

/// Direct chats, groups, messages, history, read positions and receipts.
#[async_trait]
pub trait Conversations: Send + Sync + 'static {
    /// The direct chat between `me` and `other`, created if needed.
    async fn open_direct(&self, open: OpenDirect) -> Result<Committed<OpenedDirect>>;
    async fn create_group(&self, group: NewGroup) -> Result<Committed<Conversation>>;
    async fn edit_group(&self, edit: EditGroup) -> Result<Committed<Conversation>>;
    /// My conversations, most recent activity first.
    async fn conversations_of(&self, me: ExtensionId) -> Result<Vec<ConversationSummary>>;
    /// One conversation, if `me` is a participant.
    async fn conversation_for(
        &self,
        me: ExtensionId,
        id: ConversationId,
    ) -> Result<Option<Conversation>>;

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
    async fn mark_read(&self, read: MarkRead) -> Result<Committed<u32>>;
    async fn receipts(&self, me: ExtensionId, conversation: ConversationId)
    -> Result<Vec<Receipt>>;
}

/// The durable event log: live listeners and replay.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Registers a listener for committed events (the server publishes them
    /// on the bus from here, so they go out in order).
    ///
    /// Listeners run on the committing thread, after the commit that made
    /// the events durable and before any caller of that commit is answered,
    /// each event once and in cursor order. Every commit waits for them, so
    /// a listener must be a bounded, non-blocking handoff (a `try_send`, a
    /// publish to a bounded queue), never I/O or heavy work.
    fn on_commit(&self, listener: CommitListener);

    /// Durable events after `after` that `me` may see, oldest first.
    ///
    /// That includes the events meant for the servers rather than for
    /// clients (see [`EventKind::reaches_clients`]): the caller decides what
    /// reaches a client.
    async fn events_after(
        &self,
        me: ExtensionId,
        after: Cursor,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// The newest cursor an extension of `org` may be given: every event of
    /// `org` committed later has a higher one. (With several nodes writing,
    /// another organization's newer cursor is no such promise.)
    async fn latest_cursor(&self, org: OrgId) -> Result<Cursor>;
    /// Whether `cursor` is one this log handed out and can replay from:
    /// [`Cursor::START`], or a cursor it recorded. A client resuming from
    /// any other cursor got it from a history this log does not have (it
    /// was forged, or the database was restored from an older backup) and
    /// must reload. Each run of a log (each opening of the store) begins
    /// beyond every cursor an earlier run may have handed out, so a cursor
    /// lost with a restore never comes back to name another event.
    async fn holds(&self, cursor: Cursor) -> Result<bool>;

    /// Whether the database answers, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// The events of `org`'s stream after position `after`, oldest first:
    /// how a node catches up with what other nodes committed. Only stores
    /// that keep streams (see [`Recorded::stream`]) have them; the
    /// single-node store answers [`StoreError::Backend`].
    async fn stream_after(&self, org: OrgId, after: u64, limit: u32) -> Result<Vec<StreamedEvent>>;
    /// The newest position of each organization's stream asked about
    /// (an organization with no events is at 0).
    async fn stream_heads(&self, orgs: Vec<OrgId>) -> Result<Vec<StreamPosition>>;
}

/// Every capability: the one handle the server holds (`Arc<dyn Store>`).
pub trait Store:
    Directory + Conversations + EventLog + Numbers + Sms + Outbox + SignInLimits + Jobs
{
}

impl<T: Directory + Conversations + EventLog + Numbers + Sms + Outbox + SignInLimits + Jobs> Store
    for T
{
}
