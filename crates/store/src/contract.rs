//! The contract every [`Store`] implementation must meet.
//!
//! Each function here exercises one area of the trait against a store that
//! may already hold other data: it creates its own organizations (with
//! unique slugs) and never assumes particular ids or that the event log is
//! empty. [`run_all`] runs them all; a backend's test file runs each as its
//! own test against a fresh store (see `tests/sqlite_contract.rs`). The
//! functions panic with a message naming the broken rule.
//!
//! What is checked is behaviour a client can observe, never how a backend
//! stores it: not-found across organizations, all-or-nothing changes, the
//! events each change records (kind, audience, cursor order), idempotent
//! sends, paging, forward-only read positions, replay that follows
//! membership periods, and commit listeners that hear every event in order
//! before the caller is answered.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite reports broken rules by panicking"
)]

use crate::{
    CommitListener, Committed, Extension, ExtensionUpdate, NewExtension, NewMessage, Org, Recorded,
    Store, StoreError, StoredEvent, TokenHash,
};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use switchboard_domain::{
    AlertTone, ConversationId, ConversationKind, ConversationName, Cursor, DisplayName,
    ExtensionId, ExtensionNumber, GroupChange, HistoryPage, IdempotencyKey, MembershipError,
    Message, MessageId, MessageKind, MessageText, OrgSlug, Role, SystemAction, Timestamp,
};

/// Runs the whole contract against one store.
pub async fn run_all(store: &dyn Store) {
    organizations(store).await;
    extensions(store).await;
    sessions(store).await;
    direct_chats(store).await;
    groups(store).await;
    messages_and_idempotency(store).await;
    history_paging(store).await;
    read_positions(store).await;
    replay_follows_membership(store).await;
    replay_after_rejoining(store).await;
    organizations_are_isolated(store).await;
    commit_listeners_hear_every_event_in_order(store).await;
}

// ---------------------------------------------------------------------------
// Fixtures.

/// A moment in 2027; the contract passes `now` explicitly everywhere.
const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0.0 + offset_ms)
}

/// A slug no other part of the suite (or an earlier run on the same store)
/// has used.
fn unique_slug(prefix: &str) -> OrgSlug {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = N.fetch_add(1, Ordering::Relaxed);
    OrgSlug::parse(&format!("{prefix}-{nanos}-{n}")).expect("valid slug")
}

fn new_extension(number: &str, name: &str, role: Role) -> NewExtension {
    NewExtension {
        number: ExtensionNumber::parse(number).expect("valid number"),
        name: DisplayName::parse(name).expect("valid name"),
        role,
        password_hash: format!("hash of {number}"),
    }
}

/// An organization with extensions numbered 201, 202, … named "Person 201", ….
struct Team {
    org: Org,
    people: Vec<Extension>,
}

impl Team {
    fn id(&self, i: usize) -> ExtensionId {
        self.people[i].id
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

fn token(n: u8) -> TokenHash {
    TokenHash([n; 32])
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

async fn post(
    store: &dyn Store,
    conversation: ConversationId,
    sender: &Extension,
    body: &str,
    idempotency_key: Option<&str>,
    now: Timestamp,
) -> Committed<crate::Posted> {
    store
        .post_message(NewMessage {
            conversation_id: conversation,
            sender: sender.as_ref(),
            text: text(body),
            idempotency_key: idempotency_key.map(key),
            now,
        })
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

fn kinds(events: &[Recorded]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind).collect()
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

fn ids(participants: &[switchboard_domain::ExtensionRef]) -> BTreeSet<ExtensionId> {
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

// ---------------------------------------------------------------------------
// Organizations and extensions.

/// Organizations: creation, unique slugs, look-up, the alert tone.
pub async fn organizations(store: &dyn Store) {
    let slug = unique_slug("org");
    let org = store
        .create_org(&slug, &DisplayName::parse("Acme Plumbing").expect("name"))
        .await
        .expect("create org");
    assert_eq!(org.slug, slug.as_str());
    assert_eq!(org.name, "Acme Plumbing");
    assert_eq!(
        org.alert_tone,
        AlertTone::Chime,
        "the default tone is chime"
    );

    let again = store
        .create_org(&slug, &DisplayName::parse("Another Acme").expect("name"))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "a taken slug is a conflict: {again:?}"
    );

    assert_eq!(
        store.org_by_slug(&slug).await.expect("org_by_slug"),
        Some(org.clone())
    );
    assert_eq!(
        store
            .org_by_slug(&unique_slug("missing"))
            .await
            .expect("org_by_slug"),
        None
    );
    let second = store
        .create_org(
            &unique_slug("org"),
            &DisplayName::parse("Second").expect("name"),
        )
        .await
        .expect("create org");
    assert_ne!(org.id, second.id);
    let all = store.list_orgs().await.expect("list_orgs");
    assert!(all.contains(&org) && all.contains(&second), "{all:?}");
    assert_eq!(
        all.iter().filter(|o| o.slug == org.slug).count(),
        1,
        "the refused duplicate was not created"
    );

    let toned = store
        .set_alert_tone(org.id, AlertTone::Marimba)
        .await
        .expect("set_alert_tone");
    assert_eq!(toned.alert_tone, AlertTone::Marimba);
    assert_eq!(toned.id, org.id);
    assert_eq!(
        store
            .org_by_slug(&slug)
            .await
            .expect("org")
            .map(|o| o.alert_tone),
        Some(AlertTone::Marimba)
    );
    let other = store
        .org_by_slug(&OrgSlug::parse(&second.slug).expect("slug"))
        .await
        .expect("org");
    assert_eq!(
        other.map(|o| o.alert_tone),
        Some(AlertTone::Chime),
        "only that organization changed"
    );
    let missing = store
        .set_alert_tone(switchboard_domain::OrgId(i64::MAX), AlertTone::Bell)
        .await;
    assert!(is_not_found(&missing), "{missing:?}");
}

/// Extensions: all-or-nothing creation, conflicts, look-ups, updates,
/// password hashes.
pub async fn extensions(store: &dyn Store) {
    let t = team(store, "ext", 3).await;
    let other = team(store, "ext-other", 1).await;
    let first = &t.people[0];
    assert_eq!(first.number, "201");
    assert_eq!(first.name, "Person 201");
    assert_eq!(first.role, Role::Admin);
    assert_eq!(t.people[1].role, Role::Member);
    assert!(!first.disabled && !first.alert_muted);
    assert_eq!(first.org_id, t.org.id);
    assert_eq!(
        set(&t.people.iter().map(|e| e.id).collect::<Vec<_>>()).len(),
        3,
        "ids are distinct"
    );

    // A taken number fails the whole batch.
    let batch = vec![
        new_extension("300", "New One", Role::Member),
        new_extension("201", "Taken", Role::Member),
    ];
    let refused = store.create_extensions(t.org.id, batch, T0).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let twice = vec![
        new_extension("301", "Twin A", Role::Member),
        new_extension("301", "Twin B", Role::Member),
    ];
    let refused = store.create_extensions(t.org.id, twice, T0).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let listed = store.list_extensions(t.org.id).await.expect("list");
    assert_eq!(
        listed.iter().map(|e| e.number.as_str()).collect::<Vec<_>>(),
        ["201", "202", "203"],
        "refused batches created nothing"
    );
    assert_eq!(listed, t.people);

    // Numbers are per organization, and lists are by number.
    let same_number = store
        .create_extensions(
            other.org.id,
            vec![
                new_extension("1000", "Big", Role::Member),
                new_extension("99", "Small", Role::Member),
                new_extension("202", "Same Number", Role::Member),
            ],
            T0,
        )
        .await
        .expect("a number taken in another organization is free here");
    assert_eq!(same_number.len(), 3);
    let numbers: Vec<String> = store
        .list_extensions(other.org.id)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["99", "201", "202", "1000"], "ordered by number");

    // Look-ups stay inside the organization.
    assert_eq!(
        store
            .extension(t.org.id, first.id)
            .await
            .expect("extension"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .extension(other.org.id, first.id)
            .await
            .expect("extension"),
        None
    );
    let (found, hash) = store
        .extension_for_sign_in(t.org.id, &ExtensionNumber::parse("201").expect("number"))
        .await
        .expect("sign-in look-up")
        .expect("found");
    assert_eq!(found, *first);
    assert_eq!(hash, "hash of 201");
    assert!(
        store
            .extension_for_sign_in(t.org.id, &ExtensionNumber::parse("999").expect("number"))
            .await
            .expect("sign-in look-up")
            .is_none()
    );

    // Updates change only what is given.
    let renamed = store
        .update_extension(
            t.org.id,
            t.id(1),
            ExtensionUpdate {
                name: Some(DisplayName::parse("Renamed Person").expect("name")),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.name, "Renamed Person");
    assert_eq!(renamed.number, "202");
    assert_eq!(renamed.role, Role::Member);
    let promoted = store
        .update_extension(
            t.org.id,
            t.id(1),
            ExtensionUpdate {
                role: Some(Role::Admin),
                alert_muted: Some(true),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("promote");
    assert_eq!(promoted.name, "Renamed Person", "the name is kept");
    assert_eq!(promoted.role, Role::Admin);
    assert!(promoted.alert_muted);
    assert_eq!(
        store.extension(t.org.id, t.id(1)).await.expect("extension"),
        Some(promoted)
    );
    for (org, id) in [(other.org.id, t.id(1)), (t.org.id, ExtensionId(i64::MAX))] {
        let r = store
            .update_extension(
                org,
                id,
                ExtensionUpdate {
                    disabled: Some(true),
                    ..ExtensionUpdate::default()
                },
            )
            .await;
        assert!(is_not_found(&r), "update across organizations: {r:?}");
    }
    assert!(
        !store
            .extension(t.org.id, t.id(1))
            .await
            .expect("extension")
            .expect("found")
            .disabled
    );

    // Password hashes.
    store
        .set_password_hash(t.org.id, t.id(2), "new hash".into(), None)
        .await
        .expect("set hash");
    let hash_of = |org| async move {
        store
            .extension_for_sign_in(org, &ExtensionNumber::parse("203").expect("number"))
            .await
            .expect("look-up")
            .map(|(_, h)| h)
    };
    assert_eq!(hash_of(t.org.id).await.as_deref(), Some("new hash"));
    let r = store
        .set_password_hash(other.org.id, t.id(2), "stolen".into(), None)
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(hash_of(t.org.id).await.as_deref(), Some("new hash"));
}

/// Sessions: expiry, revocation, disabled extensions, password changes.
pub async fn sessions(store: &dyn Store) {
    let t = team(store, "sessions", 2).await;
    let (a, b) = (t.id(0), t.id(1));
    store
        .create_session(token(1), a, T0, at(60_000))
        .await
        .expect("create session");
    let s = store
        .session(&token(1), at(1))
        .await
        .expect("session")
        .expect("live");
    assert_eq!(s.extension.id, a);
    assert_eq!(s.org, t.org);
    assert_eq!(s.expires_at, at(60_000));
    assert!(
        store
            .session(&token(1), at(59_999))
            .await
            .expect("session")
            .is_some()
    );
    assert!(
        store
            .session(&token(1), at(60_001))
            .await
            .expect("session")
            .is_none(),
        "expired"
    );
    assert!(
        store
            .session(&token(99), at(1))
            .await
            .expect("session")
            .is_none(),
        "unknown token"
    );

    store
        .revoke_session(&token(1))
        .await
        .expect("revoke session");
    assert!(
        store
            .session(&token(1), at(1))
            .await
            .expect("session")
            .is_none()
    );
    store
        .revoke_session(&token(1))
        .await
        .expect("revoking twice is fine");

    // Several sessions; a password change keeps only the one asked for.
    for n in [2, 3, 4] {
        store
            .create_session(token(n), a, at(10), at(600_000))
            .await
            .expect("create session");
    }
    store
        .create_session(token(5), b, at(10), at(600_000))
        .await
        .expect("create session");
    store
        .set_password_hash(t.org.id, a, "changed".into(), Some(token(2)))
        .await
        .expect("set hash");
    let live = |n: u8| async move {
        store
            .session(&token(n), at(20))
            .await
            .expect("session")
            .is_some()
    };
    assert!(live(2).await, "the kept session lives");
    assert!(!live(3).await && !live(4).await, "the others are revoked");
    assert!(live(5).await, "another extension's session is untouched");
    store
        .set_password_hash(t.org.id, a, "reset".into(), None)
        .await
        .expect("reset");
    assert!(!live(2).await, "a reset revokes every session");

    // Disabling revokes; a disabled extension's sessions never count.
    store
        .update_extension(
            t.org.id,
            b,
            ExtensionUpdate {
                disabled: Some(true),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("disable");
    assert!(!live(5).await, "disabling revokes");
    store
        .create_session(token(6), b, at(30), at(600_000))
        .await
        .expect("create session");
    assert!(!live(6).await, "a disabled extension has no live session");
    store
        .update_extension(
            t.org.id,
            b,
            ExtensionUpdate {
                disabled: Some(false),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("enable");
    assert!(
        !live(5).await,
        "re-enabling does not revive revoked sessions"
    );
    store
        .create_session(token(7), b, at(40), at(600_000))
        .await
        .expect("create session");
    assert!(live(7).await);
}

// ---------------------------------------------------------------------------
// Conversations.

/// Direct chats: one per pair whichever side opens it.
pub async fn direct_chats(store: &dyn Store) {
    let t = team(store, "direct", 4).await;
    let other = team(store, "direct-other", 1).await;
    let (a, b, c, d) = (t.id(0), t.id(1), t.id(2), t.id(3));
    let before = store.latest_cursor().await.expect("latest cursor");

    let opened = store
        .open_direct(t.org.id, a, b, at(1))
        .await
        .expect("open direct");
    assert!(opened.value.created);
    let conversation = &opened.value.conversation;
    assert_eq!(conversation.kind, ConversationKind::Direct);
    assert_eq!(conversation.name, None);
    assert_eq!(ids(&conversation.participants), set(&[a, b]));
    assert_eq!(kinds(&opened.events), ["conversation.created"]);
    assert_ascending(&opened.events, before, "open_direct");
    assert_eq!(recipients(&opened.events[0]), set(&[a, b]));
    assert_eq!(
        payload(&opened.events[0])["conversation"]["id"],
        conversation.id.0
    );

    for (me, them) in [(b, a), (a, b)] {
        let again = store
            .open_direct(t.org.id, me, them, at(2))
            .await
            .expect("open direct");
        assert!(!again.value.created, "the pair's chat already exists");
        assert_eq!(again.value.conversation.id, conversation.id);
        assert!(again.events.is_empty(), "nothing new to announce");
    }
    let with_c = store
        .open_direct(t.org.id, a, c, at(3))
        .await
        .expect("open direct");
    assert!(with_c.value.created);
    assert_ne!(with_c.value.conversation.id, conversation.id);

    let own = store.open_direct(t.org.id, a, a, at(4)).await;
    assert!(
        matches!(
            own,
            Err(StoreError::Membership(MembershipError::DirectWithSelf))
        ),
        "{own:?}"
    );
    let foreign = store.open_direct(t.org.id, a, other.id(0), at(4)).await;
    assert!(is_not_found(&foreign), "{foreign:?}");
    let missing = store
        .open_direct(t.org.id, a, ExtensionId(i64::MAX), at(4))
        .await;
    assert!(is_not_found(&missing), "{missing:?}");
    store
        .update_extension(
            t.org.id,
            d,
            ExtensionUpdate {
                disabled: Some(true),
                ..ExtensionUpdate::default()
            },
        )
        .await
        .expect("disable");
    let disabled = store.open_direct(t.org.id, a, d, at(5)).await;
    assert!(is_not_found(&disabled), "{disabled:?}");

    assert_eq!(
        store
            .conversation_for(b, conversation.id)
            .await
            .expect("conversation_for")
            .map(|c| c.id),
        Some(conversation.id)
    );
    assert!(
        store
            .conversation_for(c, conversation.id)
            .await
            .expect("conversation_for")
            .is_none()
    );
    let listed: Vec<ConversationId> = store
        .conversations_of(a)
        .await
        .expect("list")
        .iter()
        .map(|s| s.conversation.id)
        .collect();
    assert_eq!(
        listed,
        [with_c.value.conversation.id, conversation.id],
        "most recent activity first"
    );
    assert_eq!(store.conversations_of(d).await.expect("list").len(), 0);
}

/// Groups and their edits: system messages, events, audiences, rules.
pub async fn groups(store: &dyn Store) {
    let t = team(store, "groups", 5).await;
    let other = team(store, "groups-other", 1).await;
    let (a, b, c, d, e) = (t.id(0), t.id(1), t.id(2), t.id(3), t.id(4));
    let before = store.latest_cursor().await.expect("latest cursor");

    let created = store
        .create_group(t.org.id, a, name("Sales"), vec![b, c, b, a], at(1))
        .await
        .expect("create group");
    let g = created.value.id;
    assert_eq!(created.value.kind, ConversationKind::Group);
    assert_eq!(created.value.name.as_deref(), Some("Sales"));
    assert_eq!(ids(&created.value.participants), set(&[a, b, c]));
    assert_eq!(created.value.participants.len(), 3, "each member once");
    assert_eq!(
        kinds(&created.events),
        ["conversation.created", "message.created"]
    );
    assert_ascending(&created.events, before, "create_group");
    for event in &created.events {
        assert_eq!(recipients(event), set(&[a, b, c]));
    }
    let history = history_all(store, b, g).await;
    assert_eq!(history.len(), 1);
    let line = &history[0];
    assert_eq!(line.kind, MessageKind::System);
    assert_eq!(line.sender, None);
    assert!(!line.text.is_empty());
    assert_eq!(
        line.system,
        Some(SystemAction::Created {
            actor_id: a,
            name: "Sales".into()
        })
    );
    assert_eq!(
        payload(&created.events[1])["message"]["id"],
        line.id.0,
        "the event carries the stored message"
    );

    // Refused creations create nothing.
    let listed_before = store.conversations_of(a).await.expect("list").len();
    let foreign = store
        .create_group(t.org.id, a, name("Mixed"), vec![b, other.id(0)], at(2))
        .await;
    assert!(is_not_found(&foreign), "{foreign:?}");
    assert_eq!(
        store.conversations_of(a).await.expect("list").len(),
        listed_before
    );

    // Rename.
    let mut last = created.events[1].cursor;
    let renamed = store
        .edit_group(
            t.org.id,
            b,
            g,
            GroupChange::Rename(name("Sales team")),
            at(3),
        )
        .await
        .expect("rename");
    assert_eq!(renamed.value.name.as_deref(), Some("Sales team"));
    assert_eq!(
        kinds(&renamed.events),
        ["message.created", "conversation.updated"]
    );
    assert_ascending(&renamed.events, last, "rename");
    last = renamed.events[1].cursor;
    for event in &renamed.events {
        assert_eq!(recipients(event), set(&[a, b, c]));
    }
    assert_eq!(
        payload(&renamed.events[0])["message"]["system"]["action"],
        "renamed"
    );
    assert_eq!(
        payload(&renamed.events[1])["conversation"]["name"],
        "Sales team"
    );

    // Add.
    let added = store
        .edit_group(t.org.id, c, g, GroupChange::Add(vec![d, d]), at(4))
        .await
        .expect("add");
    assert_eq!(ids(&added.value.participants), set(&[a, b, c, d]));
    assert_eq!(
        kinds(&added.events),
        ["message.created", "conversation.updated"]
    );
    assert_ascending(&added.events, last, "add");
    last = added.events[1].cursor;
    for event in &added.events {
        assert_eq!(
            recipients(event),
            set(&[a, b, c, d]),
            "the newcomer hears of it"
        );
    }
    let system = &payload(&added.events[0])["message"]["system"];
    assert_eq!(system["action"], "added");
    assert_eq!(system["actor_id"], c.0);
    assert_eq!(system["extension_ids"], serde_json::json!([d.0]));
    assert!(
        store
            .conversation_for(d, g)
            .await
            .expect("conversation_for")
            .is_some()
    );

    for (edit, expected) in [
        (
            GroupChange::Add(vec![b]),
            MembershipError::AlreadyParticipant(b),
        ),
        (GroupChange::Add(vec![]), MembershipError::NothingToAdd),
        (GroupChange::Remove(a), MembershipError::RemoveSelf),
        (GroupChange::Remove(e), MembershipError::NotAParticipant(e)),
    ] {
        let r = store.edit_group(t.org.id, a, g, edit.clone(), at(5)).await;
        assert!(
            matches!(&r, Err(StoreError::Membership(m)) if *m == expected),
            "{edit:?}: {r:?}"
        );
    }
    let r = store
        .edit_group(t.org.id, a, g, GroupChange::Add(vec![other.id(0)]), at(5))
        .await;
    assert!(is_not_found(&r), "adding a foreign extension: {r:?}");
    let r = store
        .edit_group(t.org.id, e, g, GroupChange::Rename(name("Mine")), at(5))
        .await;
    assert!(is_not_found(&r), "a non-participant's edit: {r:?}");
    let r = store
        .edit_group(other.org.id, a, g, GroupChange::Rename(name("Mine")), at(5))
        .await;
    assert!(
        is_not_found(&r),
        "an edit through another organization: {r:?}"
    );
    let r = store
        .edit_group(t.org.id, e, g, GroupChange::Add(vec![e]), at(5))
        .await;
    assert!(is_not_found(&r), "adding oneself from outside: {r:?}");
    let direct = store
        .open_direct(t.org.id, a, b, at(5))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    let r = store
        .edit_group(
            t.org.id,
            a,
            direct,
            GroupChange::Rename(name("Nope")),
            at(5),
        )
        .await;
    assert!(
        matches!(r, Err(StoreError::Membership(MembershipError::NotAGroup))),
        "{r:?}"
    );
    let unchanged = store
        .conversation_for(a, g)
        .await
        .expect("conversation_for")
        .expect("visible");
    assert_eq!(unchanged.name.as_deref(), Some("Sales team"));
    assert_eq!(ids(&unchanged.participants), set(&[a, b, c, d]));
    assert_eq!(
        history_all(store, a, g).await.len(),
        3,
        "refused edits wrote no line"
    );

    // Remove.
    let removed = store
        .edit_group(t.org.id, a, g, GroupChange::Remove(d), at(6))
        .await
        .expect("remove");
    assert_eq!(ids(&removed.value.participants), set(&[a, b, c]));
    assert_eq!(
        kinds(&removed.events),
        ["message.created", "conversation.updated"]
    );
    assert_ascending(&removed.events, last, "remove");
    last = removed.events[1].cursor;
    for event in &removed.events {
        assert_eq!(
            recipients(event),
            set(&[a, b, c, d]),
            "the removed hear of it"
        );
    }
    let update = payload(&removed.events[1]);
    assert!(
        !update["conversation"]["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .any(|p| p["id"] == d.0),
        "the update no longer lists the removed: {update}"
    );
    assert!(
        store
            .conversation_for(d, g)
            .await
            .expect("conversation_for")
            .is_none()
    );
    assert!(
        !store
            .conversations_of(d)
            .await
            .expect("list")
            .iter()
            .any(|s| s.conversation.id == g)
    );

    // Leave.
    let left = store
        .edit_group(t.org.id, c, g, GroupChange::Leave, at(7))
        .await
        .expect("leave");
    assert_eq!(ids(&left.value.participants), set(&[a, b]));
    assert_ascending(&left.events, last, "leave");
    for event in &left.events {
        assert_eq!(recipients(event), set(&[a, b, c]), "the leaver hears of it");
    }
    assert_eq!(
        payload(&left.events[0])["message"]["system"],
        serde_json::json!({"action": "left", "actor_id": c.0})
    );
    let r = store
        .edit_group(t.org.id, c, g, GroupChange::Rename(name("Back")), at(8))
        .await;
    assert!(is_not_found(&r), "a leaver can no longer edit: {r:?}");
    let actions: Vec<String> = history_all(store, a, g)
        .await
        .iter()
        .filter_map(|m| m.system.as_ref())
        .map(|s| {
            serde_json::to_value(s).expect("json")["action"]
                .as_str()
                .expect("action")
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["created", "renamed", "added", "removed", "left"]);
}

/// Sends: events, audiences, idempotency keys.
pub async fn messages_and_idempotency(store: &dyn Store) {
    let t = team(store, "messages", 3).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let ab = store
        .open_direct(t.org.id, a.id, b.id, at(1))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    let ac = store
        .open_direct(t.org.id, a.id, c.id, at(1))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    let before = store.latest_cursor().await.expect("latest cursor");

    let first = post(store, ab, a, "Lunch?", Some("key-1"), at(2)).await;
    assert!(!first.value.replayed);
    let message = first.value.message.clone();
    assert_eq!(message.conversation_id, ab);
    assert_eq!(message.kind, MessageKind::Text);
    assert_eq!(message.sender.as_ref().map(|s| s.id), Some(a.id));
    assert_eq!(message.text, "Lunch?");
    assert_eq!(message.created_at, at(2));
    assert_eq!(message.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(kinds(&first.events), ["message.created"]);
    assert_ascending(&first.events, before, "post");
    assert_eq!(recipients(&first.events[0]), set(&[a.id, b.id]));
    let announced: Message =
        serde_json::from_value(payload(&first.events[0])["message"].clone()).expect("message");
    assert_eq!(announced, message, "the event carries the stored message");
    assert_eq!(
        store.latest_cursor().await.expect("latest"),
        first.events[0].cursor
    );

    // The same key again: the original, nothing new.
    let replay = post(store, ab, a, "Lunch? (retry)", Some("key-1"), at(3)).await;
    assert!(replay.value.replayed);
    assert_eq!(replay.value.message, message);
    assert!(replay.events.is_empty(), "a replay announces nothing");
    assert_eq!(
        store.latest_cursor().await.expect("latest"),
        first.events[0].cursor
    );
    assert_eq!(history_all(store, b.id, ab).await, vec![message.clone()]);

    // The same key in another conversation is a conflict, not a replay.
    let elsewhere = store
        .post_message(NewMessage {
            conversation_id: ac,
            sender: a.as_ref(),
            text: text("Lunch?"),
            idempotency_key: Some(key("key-1")),
            now: at(4),
        })
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::Conflict(_))),
        "{elsewhere:?}"
    );
    assert!(history_all(store, a.id, ac).await.is_empty());

    // Keys belong to their sender: another sender's equal key is a new message.
    let theirs = post(store, ab, b, "Sure", Some("key-1"), at(5)).await;
    assert!(!theirs.value.replayed);
    assert_ne!(theirs.value.message.id, message.id);
    assert!(theirs.value.message.id > message.id, "ids grow");

    // Without a key every send is new.
    let x = post(store, ab, a, "same", None, at(6)).await;
    let y = post(store, ab, a, "same", None, at(6)).await;
    assert_ne!(x.value.message.id, y.value.message.id);
    assert_eq!(x.value.message.idempotency_key, None);
    assert_eq!(history_all(store, a.id, ab).await.len(), 4);

    // Only participants may send.
    for (conversation, sender) in [(ab, c), (ConversationId(i64::MAX), a)] {
        let r = store
            .post_message(NewMessage {
                conversation_id: conversation,
                sender: sender.as_ref(),
                text: text("let me in"),
                idempotency_key: Some(key("intruder")),
                now: at(7),
            })
            .await;
        assert!(is_not_found(&r), "{r:?}");
    }
    assert_eq!(history_all(store, a.id, ab).await.len(), 4);

    // The list shows the last message and the newest activity first.
    let listed = store.conversations_of(a.id).await.expect("list");
    assert_eq!(listed[0].conversation.id, ab);
    assert_eq!(
        listed[0].last_message.as_ref().map(|m| m.id),
        Some(y.value.message.id)
    );
    assert_eq!(listed[0].conversation.last_activity_at, at(6));
    assert_eq!(listed[1].conversation.id, ac);
    assert!(listed[1].last_message.is_none());
}

/// History pages in both directions.
pub async fn history_paging(store: &dyn Store) {
    let t = team(store, "paging", 3).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let ab = store
        .open_direct(t.org.id, a.id, b.id, at(1))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    let mut sent = Vec::new();
    for i in 1..=25 {
        let sender = if i % 2 == 0 { a } else { b };
        sent.push(
            post(store, ab, sender, &format!("message {i}"), None, at(i))
                .await
                .value
                .message
                .id,
        );
    }
    let fetch = |before: Option<MessageId>, after: Option<MessageId>, limit: u32| async move {
        let (messages, more) = store
            .history(
                b.id,
                ab,
                page(before.map(|m| m.0), after.map(|m| m.0), limit),
            )
            .await
            .expect("history");
        (messages.iter().map(|m| m.id).collect::<Vec<_>>(), more)
    };

    assert_eq!(fetch(None, None, 10).await, (sent[15..25].to_vec(), true));
    assert_eq!(
        fetch(Some(sent[15]), None, 10).await,
        (sent[5..15].to_vec(), true)
    );
    assert_eq!(
        fetch(Some(sent[5]), None, 10).await,
        (sent[0..5].to_vec(), false)
    );
    assert_eq!(fetch(Some(sent[0]), None, 10).await, (vec![], false));
    assert_eq!(fetch(None, None, 25).await, (sent.clone(), false));
    assert_eq!(fetch(None, None, 200).await, (sent.clone(), false));
    assert_eq!(
        fetch(None, Some(sent[4]), 10).await,
        (sent[5..15].to_vec(), true)
    );
    assert_eq!(
        fetch(None, Some(sent[14]), 10).await,
        (sent[15..25].to_vec(), false)
    );
    assert_eq!(fetch(None, Some(sent[24]), 10).await, (vec![], false));
    assert_eq!(
        fetch(None, Some(MessageId(0)), 3).await,
        (sent[0..3].to_vec(), true)
    );
    let texts: Vec<String> = history_all(store, a.id, ab)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts.first().map(String::as_str), Some("message 1"));
    assert_eq!(texts.last().map(String::as_str), Some("message 25"));

    // Another conversation's messages never appear.
    let other = store
        .open_direct(t.org.id, a.id, t.id(2), at(30))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    post(store, other, a, "elsewhere", None, at(31)).await;
    assert_eq!(
        fetch(None, Some(sent[24]), 10).await,
        (vec![], false),
        "a later message elsewhere is not in this history"
    );

    let r = store.history(t.id(2), ab, page(None, None, 10)).await;
    assert!(is_not_found(&r), "a non-participant's history: {r:?}");
}

/// Read positions: forward only, events, unread counts, receipts.
pub async fn read_positions(store: &dyn Store) {
    let t = team(store, "reads", 3).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let ab = store
        .open_direct(t.org.id, a.id, b.id, at(1))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    let m: Vec<MessageId> = {
        let mut ids = Vec::new();
        for i in 1..=3 {
            ids.push(
                post(store, ab, a, &format!("m{i}"), None, at(i))
                    .await
                    .value
                    .message
                    .id,
            );
        }
        ids
    };
    let unread_of = |me: ExtensionId, conversation: ConversationId| async move {
        store
            .conversations_of(me)
            .await
            .expect("list")
            .into_iter()
            .find(|s| s.conversation.id == conversation)
            .map(|s| s.unread_count)
    };
    assert_eq!(unread_of(b.id, ab).await, Some(3));
    assert_eq!(
        unread_of(a.id, ab).await,
        Some(0),
        "my own messages are read"
    );

    let before = store.latest_cursor().await.expect("latest");
    let read = store
        .mark_read(b.id, ab, m[1], at(10))
        .await
        .expect("mark read");
    assert_eq!(read.value, 1);
    assert_eq!(kinds(&read.events), ["receipt.updated", "unread.updated"]);
    assert_ascending(&read.events, before, "mark_read");
    assert_eq!(recipients(&read.events[0]), set(&[a.id, b.id]));
    assert_eq!(
        recipients(&read.events[1]),
        set(&[b.id]),
        "my unread count is mine"
    );
    assert_eq!(
        payload(&read.events[0]),
        serde_json::json!({"conversation_id": ab.0, "extension_id": b.id.0, "last_read_message_id": m[1].0})
    );
    assert_eq!(
        payload(&read.events[1]),
        serde_json::json!({"conversation_id": ab.0, "unread_count": 1})
    );
    assert_eq!(unread_of(b.id, ab).await, Some(1));

    for back in [m[0], m[1]] {
        let r = store
            .mark_read(b.id, ab, back, at(11))
            .await
            .expect("mark read");
        assert_eq!(r.value, 1, "never backwards");
        assert!(r.events.is_empty(), "nothing moved, nothing announced");
    }
    let receipts = store.receipts(a.id, ab).await.expect("receipts");
    let position = |id: ExtensionId| {
        receipts
            .iter()
            .find(|r| r.extension_id == id)
            .map(|r| r.last_read_message_id)
    };
    assert_eq!(position(b.id), Some(m[1]));
    assert_eq!(position(a.id), Some(MessageId(0)), "a never-read position");
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        receipts
            .iter()
            .find(|r| r.extension_id == b.id)
            .map(|r| r.name.as_str()),
        Some("Person 202")
    );

    // Reading past the end stops at the last message.
    let all = store
        .mark_read(b.id, ab, MessageId(i64::MAX), at(12))
        .await
        .expect("mark read");
    assert_eq!(all.value, 0);
    assert_eq!(
        payload(&all.events[0])["last_read_message_id"],
        m[2].0,
        "the position is the last message"
    );
    assert_eq!(
        store
            .receipts(b.id, ab)
            .await
            .expect("receipts")
            .iter()
            .find(|r| r.extension_id == b.id)
            .map(|r| r.last_read_message_id),
        Some(m[2])
    );
    assert_eq!(unread_of(b.id, ab).await, Some(0));

    // Outsiders learn nothing.
    let r = store.mark_read(c.id, ab, m[2], at(13)).await;
    assert!(is_not_found(&r), "{r:?}");
    let r = store.receipts(c.id, ab).await;
    assert!(is_not_found(&r), "{r:?}");

    // System lines are not unread.
    let g = store
        .create_group(t.org.id, a.id, name("Quiet"), vec![c.id], at(20))
        .await
        .expect("group")
        .value
        .id;
    assert_eq!(unread_of(c.id, g).await, Some(0));
}

// ---------------------------------------------------------------------------
// Replay.

async fn replay(store: &dyn Store, me: ExtensionId, after: Cursor) -> Vec<StoredEvent> {
    let events = store
        .events_after(me, after, 10_000)
        .await
        .expect("events_after");
    let mut last = after;
    for e in &events {
        assert!(e.cursor > last, "replay ascends: {} after {last}", e.cursor);
        last = e.cursor;
    }
    events
}

fn concerns(e: &StoredEvent, conversation: ConversationId) -> bool {
    let v: serde_json::Value = serde_json::from_str(&e.payload).expect("payload JSON");
    [
        &v["message"]["conversation_id"],
        &v["conversation"]["id"],
        &v["conversation_id"],
    ]
    .iter()
    .any(|x| x.as_i64() == Some(conversation.0))
}

fn texts_of(events: &[StoredEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == "message.created")
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.payload).expect("payload JSON");
            v["message"]["text"].as_str().expect("text").to_owned()
        })
        .collect()
}

/// `events_after` follows membership: a newcomer sees nothing from before
/// joining; a removed member sees the removal and nothing after.
pub async fn replay_follows_membership(store: &dyn Store) {
    let t = team(store, "replay", 4).await;
    let other = team(store, "replay-other", 1).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let start = store.latest_cursor().await.expect("latest");

    let g = store
        .create_group(t.org.id, a.id, name("Replay"), vec![b.id], at(1))
        .await
        .expect("group");
    let gid = g.value.id;
    post(store, gid, a, "before c", None, at(2)).await;
    let added = store
        .edit_group(t.org.id, a.id, gid, GroupChange::Add(vec![c.id]), at(3))
        .await
        .expect("add");
    let during = post(store, gid, b, "while c is in", None, at(4)).await;
    let read = store
        .mark_read(c.id, gid, during.value.message.id, at(5))
        .await
        .expect("read");
    let removed = store
        .edit_group(t.org.id, a.id, gid, GroupChange::Remove(c.id), at(6))
        .await
        .expect("remove");
    post(store, gid, a, "after c", None, at(7)).await;
    let renamed = store
        .edit_group(
            t.org.id,
            b.id,
            gid,
            GroupChange::Rename(name("Without C")),
            at(8),
        )
        .await
        .expect("rename");
    let b_read = store
        .mark_read(b.id, gid, MessageId(i64::MAX), at(9))
        .await
        .expect("read");
    let latest = store.latest_cursor().await.expect("latest");
    assert_eq!(
        latest,
        b_read.events.last().expect("events").cursor,
        "latest_cursor is the newest event"
    );

    // The founders see everything, with the payloads recorded.
    let everything = replay(store, a.id, start).await;
    let mine: Vec<_> = everything.iter().filter(|e| concerns(e, gid)).collect();
    assert!(
        texts_of(&everything).contains(&"after c".to_owned()),
        "founders see what came after"
    );
    assert!(mine.len() >= 12, "{mine:?}");
    for recorded in g.events.iter().chain(&renamed.events) {
        let stored = everything
            .iter()
            .find(|e| e.cursor == recorded.cursor)
            .expect("recorded events are replayed");
        assert_eq!(stored.kind, recorded.kind);
        assert_eq!(stored.payload, &*recorded.payload);
    }
    assert!(
        !everything
            .iter()
            .any(|e| e.kind == "unread.updated" && e.cursor == b_read.events[1].cursor),
        "another's unread count is not mine"
    );

    // The newcomer: from the addition to the removal, nothing else.
    let seen = replay(store, c.id, start).await;
    let first = added.events[0].cursor;
    let last = removed.events.last().expect("events").cursor;
    assert!(
        seen.iter().all(|e| e.cursor >= first && e.cursor <= last),
        "c sees only its membership period: {seen:?}"
    );
    let expected: BTreeSet<Cursor> = added
        .events
        .iter()
        .chain(&during.events)
        .chain(&read.events)
        .chain(&removed.events)
        .map(|e| e.cursor)
        .collect();
    let got: BTreeSet<Cursor> = seen.iter().map(|e| e.cursor).collect();
    assert_eq!(got, expected, "c sees every event of its period");
    assert_eq!(
        texts_of(&seen).len(),
        3,
        "the addition line, the message during, the removal line: {:?}",
        texts_of(&seen)
    );
    assert!(texts_of(&seen).contains(&"while c is in".to_owned()));
    assert!(
        seen.last()
            .is_some_and(|e| e.kind == "conversation.updated"),
        "the last thing c sees is the update without it"
    );

    // Paging through replay with a limit.
    let two = store
        .events_after(a.id, start, 2)
        .await
        .expect("events_after");
    assert_eq!(
        two.iter().map(|e| e.cursor).collect::<Vec<_>>(),
        everything
            .iter()
            .take(2)
            .map(|e| e.cursor)
            .collect::<Vec<_>>()
    );
    let rest = replay(store, a.id, two[1].cursor).await;
    assert_eq!(rest.len(), everything.len() - 2);
    assert!(replay(store, a.id, latest).await.is_empty());

    // Other organizations see none of it.
    assert!(
        replay(store, other.id(0), start)
            .await
            .iter()
            .all(|e| !concerns(e, gid)),
        "another organization's replay"
    );
    // Nor does someone who was never a member.
    assert!(replay(store, t.id(3), start).await.is_empty());
}

/// A member who leaves and is added again sees both membership periods and
/// nothing of the time between.
pub async fn replay_after_rejoining(store: &dyn Store) {
    let t = team(store, "rejoin", 3).await;
    let (a, c) = (&t.people[0], &t.people[2]);
    let start = store.latest_cursor().await.expect("latest");
    let g = store
        .create_group(t.org.id, a.id, name("Revolving"), vec![c.id], at(1))
        .await
        .expect("group")
        .value
        .id;
    post(store, g, a, "first period", None, at(2)).await;
    store
        .edit_group(t.org.id, c.id, g, GroupChange::Leave, at(3))
        .await
        .expect("leave");
    post(store, g, a, "while away", None, at(4)).await;
    store
        .edit_group(t.org.id, a.id, g, GroupChange::Add(vec![c.id]), at(5))
        .await
        .expect("add again");
    post(store, g, a, "second period", None, at(6)).await;

    let texts = texts_of(&replay(store, c.id, start).await);
    assert!(
        texts.contains(&"second period".to_owned()),
        "the second period is replayed: {texts:?}"
    );
    assert!(
        !texts.contains(&"while away".to_owned()),
        "nothing from the time away: {texts:?}"
    );
    assert!(
        texts.contains(&"first period".to_owned()),
        "the first period is still replayed after rejoining: {texts:?}"
    );
}

// ---------------------------------------------------------------------------
// Organizations and listeners.

/// Nothing of one organization is reachable through another.
pub async fn organizations_are_isolated(store: &dyn Store) {
    let t = team(store, "iso", 2).await;
    let o = team(store, "iso-other", 2).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let x = &o.people[0];
    let ab = store
        .open_direct(t.org.id, a.id, b.id, at(1))
        .await
        .expect("direct")
        .value
        .conversation
        .id;
    let g = store
        .create_group(t.org.id, a.id, name("Inner"), vec![b.id], at(1))
        .await
        .expect("group")
        .value
        .id;
    let m = post(store, ab, a, "inside", None, at(2))
        .await
        .value
        .message;

    for c in [ab, g] {
        assert!(
            store
                .conversation_for(x.id, c)
                .await
                .expect("conversation_for")
                .is_none()
        );
        let r = store.history(x.id, c, page(None, None, 10)).await;
        assert!(is_not_found(&r), "{r:?}");
        let r = store
            .post_message(NewMessage {
                conversation_id: c,
                sender: x.as_ref(),
                text: text("hello from outside"),
                idempotency_key: None,
                now: at(3),
            })
            .await;
        assert!(is_not_found(&r), "{r:?}");
        let r = store.mark_read(x.id, c, m.id, at(3)).await;
        assert!(is_not_found(&r), "{r:?}");
        let r = store.receipts(x.id, c).await;
        assert!(is_not_found(&r), "{r:?}");
        for edit in [
            GroupChange::Rename(name("Taken")),
            GroupChange::Add(vec![x.id]),
            GroupChange::Remove(b.id),
            GroupChange::Leave,
        ] {
            for org in [o.org.id, t.org.id] {
                let r = store.edit_group(org, x.id, c, edit.clone(), at(3)).await;
                assert!(is_not_found(&r), "{edit:?} through {org}: {r:?}");
            }
        }
    }
    assert!(store.conversations_of(x.id).await.expect("list").is_empty());
    let r = store.open_direct(o.org.id, x.id, a.id, at(4)).await;
    assert!(is_not_found(&r), "{r:?}");
    let r = store
        .create_group(o.org.id, x.id, name("Reach"), vec![a.id], at(4))
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(store.conversations_of(x.id).await.expect("list").is_empty());

    assert!(
        store
            .extension(o.org.id, a.id)
            .await
            .expect("extension")
            .is_none()
    );
    let listed = store.list_extensions(o.org.id).await.expect("list");
    assert_eq!(listed, o.people);
    assert!(
        store
            .extension_for_sign_in(o.org.id, &ExtensionNumber::parse("201").expect("number"))
            .await
            .expect("look-up")
            .is_some_and(|(e, _)| e.id == x.id),
        "the same number means this organization's extension"
    );

    // Nothing changed inside.
    let conversation = store
        .conversation_for(a.id, g)
        .await
        .expect("conversation_for")
        .expect("visible");
    assert_eq!(conversation.name.as_deref(), Some("Inner"));
    assert_eq!(ids(&conversation.participants), set(&[a.id, b.id]));
    assert_eq!(history_all(store, a.id, ab).await, vec![m]);
}

/// Collects every event a listener hears.
fn listen(store: &dyn Store) -> Arc<parking_lot::Mutex<Vec<(Cursor, &'static str)>>> {
    let heard = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let listener: CommitListener =
        Arc::new(move |e: &Recorded| sink.lock().push((e.cursor, e.kind)));
    store.on_commit(listener);
    heard
}

/// Polls futures together on the current task (the contract needs no
/// runtime of its own).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// Listeners hear every committed event once, in cursor order, before the
/// caller that caused it is answered; failed changes announce nothing.
pub async fn commit_listeners_hear_every_event_in_order(store: &dyn Store) {
    let t = team(store, "listen", 4).await;
    let heard = listen(store);
    let g = store
        .create_group(
            t.org.id,
            t.id(0),
            name("Loud"),
            vec![t.id(1), t.id(2), t.id(3)],
            at(1),
        )
        .await
        .expect("group");
    {
        let log = heard.lock();
        for e in &g.events {
            assert!(
                log.contains(&(e.cursor, e.kind)),
                "heard before the caller was answered"
            );
        }
    }
    let gid = g.value.id;

    // Concurrent senders: every event is heard, in cursor order.
    let senders = t.people.clone();
    let bursts = senders.iter().map(|sender| {
        let heard = Arc::clone(&heard);
        async move {
            let mut recorded = Vec::new();
            for i in 0..25 {
                let posted = post(
                    store,
                    gid,
                    sender,
                    &format!("{} says {i}", sender.number),
                    Some(&format!("listen-{}-{i}", sender.number)),
                    at(10 + i),
                )
                .await;
                for e in &posted.events {
                    assert!(
                        heard.lock().contains(&(e.cursor, e.kind)),
                        "heard before the caller was answered"
                    );
                }
                recorded.extend(posted.events);
            }
            let read = store
                .mark_read(sender.id, gid, MessageId(i64::MAX), at(50))
                .await
                .expect("read");
            recorded.extend(read.events);
            recorded
        }
    });
    let recorded: Vec<Recorded> = join_all(bursts.collect())
        .await
        .into_iter()
        .flatten()
        .collect();

    // Refused changes announce nothing.
    let count = heard.lock().len();
    let r = store
        .edit_group(
            t.org.id,
            t.id(0),
            gid,
            GroupChange::Add(vec![t.id(1)]),
            at(60),
        )
        .await;
    assert!(r.is_err());
    let r = store
        .post_message(NewMessage {
            conversation_id: gid,
            sender: t.people[0].as_ref(),
            text: text("replayed"),
            idempotency_key: Some(key("listen-201-0")),
            now: at(61),
        })
        .await
        .expect("replay");
    assert!(r.value.replayed);
    assert_eq!(heard.lock().len(), count, "refusals and replays are silent");

    let log = heard.lock().clone();
    assert!(
        log.windows(2).all(|w| w[0].0 < w[1].0),
        "heard in strictly increasing cursor order"
    );
    let heard_cursors: BTreeSet<Cursor> = log.iter().map(|(c, _)| *c).collect();
    let recorded_cursors: BTreeSet<Cursor> =
        g.events.iter().chain(&recorded).map(|e| e.cursor).collect();
    assert_eq!(
        recorded_cursors.len(),
        g.events.len() + recorded.len(),
        "cursors are unique"
    );
    assert_eq!(
        heard_cursors, recorded_cursors,
        "every event heard once, nothing else"
    );
    assert_eq!(
        log.iter().filter(|(_, k)| *k == "message.created").count(),
        1 + 4 * 25
    );
    assert_eq!(
        history_all(store, t.id(3), gid).await.len(),
        1 + 4 * 25,
        "every send stored once"
    );
}
