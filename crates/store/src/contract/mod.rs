//! The contract every [`Store`] implementation must meet.
//!
//! Each public function here is one rule, named as the rule, run against a
//! store that may already hold other data: it creates its own organizations
//! (with unique slugs) and never assumes particular ids or that the event log
//! is empty. [`run_all`] runs every rule; a backend's test file runs each as
//! its own test against a fresh store (see `tests/sqlite_contract.rs`). A
//! rule panics with a message naming what broke.
//!
//! What is checked is behaviour a client can observe, never how a backend
//! stores it: not-found across organizations, all-or-nothing changes, the
//! events each change records (kind, audience, cursor order), idempotent
//! sends, paging, forward-only read positions, replay that follows
//! membership periods, and commit listeners that hear every event in order
//! before the caller is answered.
//!
//! Compiled only with the `contract` feature, for backends' tests.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite reports broken rules by panicking"
)]

pub mod conversations;
pub mod directory;
pub mod listeners;
pub mod messages;
pub mod numbers;
pub mod replay;
pub mod sms;

use crate::{
    Committed, EditGroup, Extension, ExtensionUpdate, MarkRead, NewExtension, NewGroup, NewMessage,
    NewSession, OpenDirect, Org, Posted, Recorded, Store, StoreError, TokenHash,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_domain::{
    Conversation, ConversationId, ConversationName, Cursor, DisplayName, EventKind, ExtensionId,
    ExtensionNumber, ExtensionRef, GroupChange, HistoryPage, IdempotencyKey, Message, MessageId,
    MessageText, OrgId, OrgSlug, Role, Timestamp,
};

/// Runs the whole contract against one store.
pub async fn run_all(store: &dyn Store) {
    directory::run_all(store).await;
    conversations::run_all(store).await;
    messages::run_all(store).await;
    replay::run_all(store).await;
    listeners::run_all(store).await;
    numbers::run_all(store).await;
    sms::run_all(store).await;
}

// ---------------------------------------------------------------------------
// Fixtures.

/// A moment in 2027; the contract passes `now` explicitly everywhere.
const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0.0 + offset_ms)
}

/// A slug no other rule has used in this process: a counter, and the
/// process id for stores that outlive a test run.
fn unique_slug(prefix: &str) -> OrgSlug {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    OrgSlug::parse(&format!("{prefix}-{}-{n}", std::process::id())).expect("valid slug")
}

fn new_extension(number: &str, name: &str, role: Role) -> NewExtension {
    NewExtension {
        number: ExtensionNumber::parse(number).expect("valid number"),
        name: DisplayName::parse(name).expect("valid name"),
        role,
        password_hash: format!("hash of {number}"),
    }
}

fn number(s: &str) -> ExtensionNumber {
    ExtensionNumber::parse(s).expect("valid number")
}

/// An organization with extensions numbered 201, 202, … named "Person 201",
/// …; the first is an administrator.
struct Team {
    org: Org,
    people: Vec<Extension>,
}

impl Team {
    fn id(&self, i: usize) -> ExtensionId {
        self.people[i].id
    }

    fn ids(&self) -> Vec<ExtensionId> {
        self.people.iter().map(|p| p.id).collect()
    }
}

async fn team(store: &dyn Store, prefix: &str, size: usize) -> Team {
    let org = store
        .create_org(
            &unique_slug(prefix),
            &DisplayName::parse(&format!("{prefix} team")).expect("name"),
        )
        .await
        .expect("create org");
    let new = (0..size)
        .map(|i| {
            let number = format!("{}", 201 + i);
            let role = if i == 0 { Role::Admin } else { Role::Member };
            new_extension(&number, &format!("Person {number}"), role)
        })
        .collect();
    let people = store
        .create_extensions(org.id, new, T0)
        .await
        .expect("create extensions");
    assert_eq!(
        people.len(),
        size,
        "create_extensions returns every extension"
    );
    Team { org, people }
}

async fn set_disabled(
    store: &dyn Store,
    org: OrgId,
    id: ExtensionId,
    disabled: bool,
) -> crate::Result<Committed<Extension>> {
    store
        .update_extension(
            org,
            id,
            ExtensionUpdate {
                disabled: Some(disabled),
                ..ExtensionUpdate::default()
            },
        )
        .await
}

async fn disable(store: &dyn Store, org: OrgId, id: ExtensionId) -> Committed<Extension> {
    set_disabled(store, org, id, true).await.expect("disable")
}

async fn enable(store: &dyn Store, org: OrgId, id: ExtensionId) -> Committed<Extension> {
    set_disabled(store, org, id, false).await.expect("enable")
}

/// A token hash no other rule has used in this process (hashes are keys,
/// and rules may share a store). The counter leads, so tags differ too.
fn new_token() -> TokenHash {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut hash = [0x5b; 32];
    hash[..8].copy_from_slice(&n.to_be_bytes());
    hash[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    TokenHash(hash)
}

/// A session of `extension` from `now`, expiring long after the rules end.
async fn sign_in(store: &dyn Store, extension: ExtensionId, now: Timestamp) -> TokenHash {
    let token = new_token();
    store
        .create_session(NewSession {
            token: token.clone(),
            extension,
            now,
            expires_at: at(600_000),
        })
        .await
        .expect("create session");
    token
}

async fn is_live(store: &dyn Store, token: &TokenHash, now: Timestamp) -> bool {
    store.session(token, now).await.expect("session").is_some()
}

fn text(s: &str) -> MessageText {
    MessageText::parse(s).expect("valid text")
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("valid key")
}

fn name(s: &str) -> ConversationName {
    ConversationName::parse(s).expect("valid name")
}

fn page(before: Option<i64>, after: Option<i64>, limit: u32) -> HistoryPage {
    HistoryPage::parse(before, after, Some(limit)).expect("valid page")
}

/// The direct chat of `me` and `other`, opened (or found) at `now`.
async fn direct(
    store: &dyn Store,
    org: OrgId,
    me: ExtensionId,
    other: ExtensionId,
    now: Timestamp,
) -> ConversationId {
    store
        .open_direct(OpenDirect {
            org,
            me,
            other,
            now,
        })
        .await
        .expect("direct")
        .value
        .conversation
        .id
}

async fn create_group(
    store: &dyn Store,
    org: OrgId,
    creator: ExtensionId,
    group_name: &str,
    members: &[ExtensionId],
    now: Timestamp,
) -> crate::Result<Committed<Conversation>> {
    store
        .create_group(NewGroup {
            org,
            creator,
            name: name(group_name),
            members: members.to_vec(),
            now,
        })
        .await
}

async fn edit(
    store: &dyn Store,
    org: OrgId,
    actor: ExtensionId,
    conversation: ConversationId,
    change: GroupChange,
    now: Timestamp,
) -> crate::Result<Committed<Conversation>> {
    store
        .edit_group(EditGroup {
            org,
            actor,
            conversation,
            change,
            now,
        })
        .await
}

async fn mark_read(
    store: &dyn Store,
    me: ExtensionId,
    conversation: ConversationId,
    up_to: MessageId,
    now: Timestamp,
) -> crate::Result<Committed<u32>> {
    store
        .mark_read(MarkRead {
            me,
            conversation,
            up_to,
            now,
        })
        .await
}

fn message(
    conversation: ConversationId,
    sender: &Extension,
    body: &str,
    idempotency_key: Option<&str>,
    now: Timestamp,
) -> NewMessage {
    NewMessage {
        conversation_id: conversation,
        sender: sender.as_ref(),
        text: text(body),
        attachments: Vec::new(),
        carrier_media: Vec::new(),
        idempotency_key: idempotency_key.map(key),
        now,
    }
}

/// `sender` posts `body` without a key.
async fn post_as(
    store: &dyn Store,
    sender: &Extension,
    conversation: ConversationId,
    body: &str,
    now: Timestamp,
) -> Committed<Posted> {
    post_keyed(store, sender, conversation, body, None, now).await
}

async fn post_keyed(
    store: &dyn Store,
    sender: &Extension,
    conversation: ConversationId,
    body: &str,
    idempotency_key: Option<&str>,
    now: Timestamp,
) -> Committed<Posted> {
    store
        .post_message(message(conversation, sender, body, idempotency_key, now))
        .await
        .unwrap_or_else(|e| panic!("post {body:?}: {e}"))
}

fn recipients(event: &Recorded) -> BTreeSet<ExtensionId> {
    event.recipients.iter().copied().collect()
}

fn set(ids: &[ExtensionId]) -> BTreeSet<ExtensionId> {
    ids.iter().copied().collect()
}

fn payload(event: &Recorded) -> serde_json::Value {
    serde_json::from_str(&event.payload).expect("event payloads are JSON")
}

fn kinds(events: &[Recorded]) -> Vec<EventKind> {
    events.iter().map(Recorded::kind).collect()
}

fn assert_ascending(events: &[Recorded], after: Cursor, what: &str) {
    let mut last = after;
    for e in events {
        assert!(
            e.cursor > last,
            "{what}: cursor {} follows {last}",
            e.cursor
        );
        last = e.cursor;
    }
}

fn ids(participants: &[ExtensionRef]) -> BTreeSet<ExtensionId> {
    participants.iter().map(|p| p.id).collect()
}

async fn history_all(
    store: &dyn Store,
    me: ExtensionId,
    conversation: ConversationId,
) -> Vec<Message> {
    store
        .history(me, conversation, page(None, None, 200))
        .await
        .expect("history")
        .0
}

fn is_not_found<T: std::fmt::Debug>(r: &crate::Result<T>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}
