//! Texting outside numbers: the [`Sms`] capability (SMS conversations,
//! texts and statuses from carriers, opt-outs) and the [`Outbox`] the
//! carriers are fed from.
//!
//! A text to an outside number is stored with its message, in the same
//! transaction, as an outbox row; a worker sends it later. The store hands
//! rows out with a claim that runs out (`due_at`), so a text whose sender
//! died is sent again rather than lost; what keeps that from reaching the
//! customer twice is the row's idempotency key, stable across attempts.

use crate::{Committed, NewMessage, Result};
use async_trait::async_trait;
use switchboard_domain::delivery::{self, Participants, Sender, Text};
use switchboard_domain::phone::E164;
use switchboard_domain::{
    Attachment, ConnectionId, Conversation, ConversationKind, DeliveryStatus, ExtensionId,
    ExternalParticipant, Message, MessageId, NumberId, OrgId, Timestamp,
};

/// The texts a message sent from the business number `from` makes to the
/// conversation's outside participants `all`. A conversation with one
/// customer refuses the send when they opted out; a group texts those who
/// did not.
pub(crate) fn plan_texts(
    new: &NewMessage,
    kind: ConversationKind,
    from: &E164,
    all: Vec<ExternalParticipant>,
) -> Result<Vec<Text>> {
    if kind != ConversationKind::Group
        && let Some(out) = all.iter().find(|x| x.opted_out)
    {
        return Err(Refusal::RecipientOptedOut(out.display.clone()).into());
    }
    let externals: Vec<E164> = all
        .into_iter()
        .filter(|x| !x.opted_out)
        .map(|x| x.number)
        .collect();
    let plan = delivery::plan(
        Participants {
            kind,
            extensions: &[],
            externals: &externals,
            business_number: Some(from),
        },
        &Sender::Extension {
            id: new.sender.id,
            name: new.sender.name.clone(),
        },
        new.text.as_str(),
    );
    Ok(plan.texts)
}

/// Why a text cannot be sent or a conversation opened: outcomes the user
/// can act on, each with its own answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("You have no SMS-enabled number. Ask an administrator to assign one.")]
    NoSmsNumber,
    #[error(
        "{0} opted out of texts (they texted STOP). They must text START before you can text them again."
    )]
    RecipientOptedOut(String),
    #[error(
        "This conversation's number can no longer send texts (SMS is off or it has no carrier). Ask an administrator."
    )]
    NumberCannotText,
}

impl Refusal {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSmsNumber => "no_sms_number",
            Self::RecipientOptedOut(_) => "recipient_opted_out",
            Self::NumberCannotText => "number_cannot_text",
        }
    }
}

/// Find or make the SMS conversation between business number `from`
/// (one of `me`'s) and `to`.
#[derive(Debug, Clone)]
pub struct OpenSms {
    pub org: OrgId,
    pub me: ExtensionId,
    pub from: NumberId,
    pub to: E164,
    pub now: Timestamp,
}

#[derive(Debug, Clone)]
pub struct OpenedSms {
    pub conversation: Conversation,
    pub created: bool,
}

/// A text from outside, as a carrier's webhook brought it.
#[derive(Debug, Clone)]
pub struct InboundText {
    pub connection: ConnectionId,
    /// What makes this webhook unique for the carrier (its message id, or
    /// its event id): a second webhook with the same key changes nothing.
    pub event_key: String,
    pub from: E164,
    pub to: E164,
    pub text: String,
    /// One per image, `pending` until fetched.
    pub attachments: Vec<Attachment>,
    pub now: Timestamp,
}

/// What became of an inbound text.
#[derive(Debug, Clone)]
pub enum InboundOutcome {
    /// Stored as this message.
    Stored(Box<Message>),
    /// The same webhook was taken before; nothing changed.
    Duplicate,
}

/// A carrier's report on a text it was given.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub connection: ConnectionId,
    pub event_key: String,
    pub carrier_message_id: String,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub now: Timestamp,
}

/// What became of a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The text's status moved.
    Moved,
    /// The text was already at or past it (a late or repeated report).
    Unchanged,
    /// The same webhook was taken before.
    Duplicate,
    /// No text has that carrier id yet: kept until the send is recorded.
    Early,
}

/// An image stored for an organization: uploaded by an extension, or
/// fetched from a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub org: OrgId,
    /// The content's SHA-256, hex.
    pub id: String,
    pub uploaded_by: Option<ExtensionId>,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// The copy made for carriers.
    pub carrier_copy: Option<String>,
}

#[async_trait]
pub trait Sms: Send + Sync + 'static {
    /// The SMS conversation of the pair of numbers, created if need be
    /// with every extension that has the business number.
    async fn open_sms(&self, open: OpenSms) -> Result<Committed<OpenedSms>>;
    /// Stores a text from outside in the conversation it lands in (the SMS
    /// conversation of the pair, opened if need be), once per `event_key`.
    /// STOP and START keywords change the number's opt-out and leave a
    /// system message saying so. An unknown business number, or one not
    /// served by `connection`, is not found and nothing is written.
    async fn accept_inbound(&self, text: InboundText) -> Result<Committed<InboundOutcome>>;
    /// Applies a carrier's status report, once per `event_key`, never
    /// moving a status backwards.
    async fn record_status(&self, report: StatusReport) -> Result<Committed<StatusOutcome>>;
    /// Replaces attachment `index` of a message (an inbound image was
    /// fetched, or could not be) and records `message.updated`.
    async fn update_attachment(
        &self,
        message: MessageId,
        index: usize,
        attachment: Attachment,
    ) -> Result<Committed<()>>;
    /// Whether `me` may see a message carrying the attachment `media_id`.
    async fn may_see_media(&self, me: ExtensionId, media_id: String) -> Result<bool>;
    /// Notes an image of an organization (the same content again keeps the
    /// first record).
    async fn add_media(&self, record: MediaRecord, now: Timestamp) -> Result<()>;
    async fn media_record(&self, org: OrgId, id: String) -> Result<Option<MediaRecord>>;
}

/// A text the outbox worker is to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxText {
    pub id: i64,
    pub message_id: MessageId,
    pub connection: ConnectionId,
    pub from: E164,
    pub to: E164,
    pub body: String,
    /// Content ids of the carrier copies of the message's images.
    pub media: Vec<String>,
    /// The same on every attempt, so a carrier that honours idempotency
    /// keys creates the text once however often it is asked.
    pub idempotency_key: String,
    /// Attempts made, this one included.
    pub attempts: u32,
}

#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` texts that are due at `now` (pending ones whose
    /// time has come, and those whose earlier claim ran out) until
    /// `claim_until`, counting an attempt for each. Nodes claiming at once
    /// never get the same text; where several share the store, a text
    /// another node took over once this node's claim ran out is the new
    /// holder's, and this node's answers about it (taken, retry, failed)
    /// then change nothing.
    async fn claim_texts(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxText>>;
    /// The carrier took the text and calls it `carrier_message_id`; any
    /// status it reported before this was recorded is applied now.
    async fn text_accepted(
        &self,
        id: i64,
        carrier_message_id: String,
        now: Timestamp,
    ) -> Result<Committed<()>>;
    /// The attempt failed but may succeed later: try again at `due_at`.
    async fn text_retry(&self, id: i64, due_at: Timestamp, error: String) -> Result<()>;
    /// The text will not be sent: its delivery fails with `reason`.
    async fn text_failed(&self, id: i64, reason: String, now: Timestamp) -> Result<Committed<()>>;
    /// The carrier refused the text because the customer opted out with it:
    /// the delivery fails with `reason`, and the customer is opted out of
    /// the business number here too (with a system note), as if they had
    /// texted STOP to us.
    async fn text_opted_out(
        &self,
        id: i64,
        reason: String,
        now: Timestamp,
    ) -> Result<Committed<()>>;
    /// When the next text falls due (a pending one's time, or a claim's
    /// end), if any is waiting.
    async fn next_text_due(&self) -> Result<Option<Timestamp>>;
    /// Makes due at once every claimed text whose claim cannot belong to a
    /// sender still at work, and says how many it moved. Called as a server
    /// starts. With one node per database (SQLite) that is every claim: one
    /// still open can only be from a run that died. Where several nodes
    /// share the store (PostgreSQL), a claim names the node that holds it,
    /// and only this node's own are released: another node's may be in
    /// flight, and is taken over only once its lease runs out (a node that
    /// restarts has a new name, so its previous run's claims wait for that
    /// too).
    async fn release_claims(&self, now: Timestamp) -> Result<u64>;
}
