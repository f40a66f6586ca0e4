//! Rules of [`Conversations`](crate::Conversations): direct chats, groups,
//! sends and their idempotency keys, history, read positions, and the
//! walls between organizations.

use super::*;
use crate::{ConversationSummary, Store, StoreError};
use switchboard_domain::{
    ConversationKind, EventKind, GroupChange, MembershipError, MessageKind, SystemAction,
};

pub(super) async fn run_all(store: &dyn Store) {
    opening_a_direct_chat_creates_it_and_tells_both(store).await;
    a_pair_has_one_direct_chat_whichever_side_opens_it(store).await;
    a_direct_chat_needs_another_enabled_extension_of_the_organization(store).await;
    a_conversation_is_visible_to_its_participants_only(store).await;
    conversations_are_listed_most_recent_activity_first(store).await;
    creating_a_group_writes_a_line_and_tells_the_members(store).await;
    a_group_with_a_foreign_member_is_not_created(store).await;
    renaming_a_group_tells_the_members(store).await;
    adding_to_a_group_tells_the_newcomers_too(store).await;
    refused_group_edits_change_nothing(store).await;
    removing_from_a_group_tells_the_removed_and_hides_it_from_them(store).await;
    leaving_a_group_tells_the_leaver_and_ends_their_edits(store).await;
    a_groups_history_has_a_line_for_every_change(store).await;
    a_send_is_stored_and_announced_to_the_participants(store).await;
    a_key_used_again_returns_the_original_and_announces_nothing(store).await;
    a_key_used_again_in_another_conversation_is_a_conflict(store).await;
    keys_belong_to_their_sender(store).await;
    without_a_key_every_send_is_new(store).await;
    only_participants_may_send(store).await;
    the_list_shows_the_last_message_and_the_newest_activity_first(store).await;
    history_pages_back_from_the_newest(store).await;
    history_pages_forward_after_an_anchor(store).await;
    history_holds_its_conversations_messages_only(store).await;
    history_is_for_participants_only(store).await;
    my_own_messages_are_never_unread(store).await;
    reading_tells_everyone_my_position_and_me_my_unread_count(store).await;
    a_read_position_never_moves_back(store).await;
    receipts_show_every_participants_read_position(store).await;
    reading_past_the_end_stops_at_the_last_message(store).await;
    outsiders_can_neither_read_nor_see_receipts(store).await;
    system_lines_are_not_unread(store).await;
    another_organization_cannot_reach_a_conversation(store).await;
    another_organization_cannot_start_a_conversation_with_outsiders(store).await;
}

// ---------------------------------------------------------------------------
// Direct chats.

pub async fn opening_a_direct_chat_creates_it_and_tells_both(store: &dyn Store) {
    let t = team(store, "direct", 2).await;
    let (a, b) = (t.id(0), t.id(1));
    let before = store.latest_cursor().await.expect("latest cursor");
    let opened = store
        .open_direct(OpenDirect {
            org: t.org.id,
            me: a,
            other: b,
            now: at(1),
        })
        .await
        .expect("open direct");
    assert!(opened.value.created);
    let conversation = &opened.value.conversation;
    assert_eq!(conversation.kind, ConversationKind::Direct);
    assert_eq!(conversation.name, None);
    assert_eq!(ids(&conversation.participants), set(&[a, b]));
    assert_eq!(kinds(&opened.events), [EventKind::ConversationCreated]);
    assert_ascending(&opened.events, before, "open_direct");
    assert_eq!(recipients(&opened.events[0]), set(&[a, b]));
    assert_eq!(
        payload(&opened.events[0])["conversation"]["id"],
        conversation.id.0
    );
}

pub async fn a_pair_has_one_direct_chat_whichever_side_opens_it(store: &dyn Store) {
    let t = team(store, "direct", 3).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let conversation = direct(store, t.org.id, a, b, at(1)).await;
    for (me, them) in [(b, a), (a, b)] {
        let again = store
            .open_direct(OpenDirect {
                org: t.org.id,
                me,
                other: them,
                now: at(2),
            })
            .await
            .expect("open direct");
        assert!(!again.value.created, "the pair's chat already exists");
        assert_eq!(again.value.conversation.id, conversation);
        assert!(again.events.is_empty(), "nothing new to announce");
    }
    let with_c = store
        .open_direct(OpenDirect {
            org: t.org.id,
            me: a,
            other: c,
            now: at(3),
        })
        .await
        .expect("open direct");
    assert!(with_c.value.created);
    assert_ne!(with_c.value.conversation.id, conversation);
}

pub async fn a_direct_chat_needs_another_enabled_extension_of_the_organization(store: &dyn Store) {
    let t = team(store, "direct", 4).await;
    let other = team(store, "direct-other", 1).await;
    let (a, d) = (t.id(0), t.id(3));
    let open = |other: ExtensionId| {
        store.open_direct(OpenDirect {
            org: t.org.id,
            me: a,
            other,
            now: at(4),
        })
    };
    let own = open(a).await;
    assert!(
        matches!(
            own,
            Err(StoreError::Membership(MembershipError::DirectWithSelf))
        ),
        "{own:?}"
    );
    let foreign = open(other.id(0)).await;
    assert!(is_not_found(&foreign), "{foreign:?}");
    let missing = open(ExtensionId(i64::MAX)).await;
    assert!(is_not_found(&missing), "{missing:?}");
    disable(store, t.org.id, d).await;
    let disabled = open(d).await;
    assert!(is_not_found(&disabled), "{disabled:?}");
}

pub async fn a_conversation_is_visible_to_its_participants_only(store: &dyn Store) {
    let t = team(store, "direct", 3).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let conversation = direct(store, t.org.id, a, b, at(1)).await;
    assert_eq!(
        store
            .conversation_for(b, conversation)
            .await
            .expect("conversation_for")
            .map(|c| c.id),
        Some(conversation)
    );
    assert!(
        store
            .conversation_for(c, conversation)
            .await
            .expect("conversation_for")
            .is_none()
    );
}

pub async fn conversations_are_listed_most_recent_activity_first(store: &dyn Store) {
    let t = team(store, "direct", 4).await;
    let (a, b, c, d) = (t.id(0), t.id(1), t.id(2), t.id(3));
    let conversation = direct(store, t.org.id, a, b, at(1)).await;
    let with_c = direct(store, t.org.id, a, c, at(3)).await;
    let listed: Vec<ConversationId> = store
        .conversations_of(a)
        .await
        .expect("list")
        .iter()
        .map(|s| s.conversation.id)
        .collect();
    assert_eq!(listed, [with_c, conversation], "most recent activity first");
    assert_eq!(store.conversations_of(d).await.expect("list").len(), 0);
}

// ---------------------------------------------------------------------------
// Groups.

/// A group "Sales" of 201 (the creator), 202 and 203 in a team of five, and
/// the cursor of the last event of its creation.
async fn sales(store: &dyn Store) -> (Team, ConversationId, Cursor) {
    let t = team(store, "groups", 5).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let created = create_group(store, t.org.id, a, "Sales", &[b, c, b, a], at(1))
        .await
        .expect("create group");
    let last = created.events[1].cursor;
    (t, created.value.id, last)
}

/// [`sales`], renamed "Sales team" by 202 and joined by 204 (added by 203).
async fn sales_team_with_d(store: &dyn Store) -> (Team, ConversationId, Cursor) {
    let (t, g, _) = sales(store).await;
    let (b, c, d) = (t.id(1), t.id(2), t.id(3));
    edit(
        store,
        t.org.id,
        b,
        g,
        GroupChange::Rename(name("Sales team")),
        at(3),
    )
    .await
    .expect("rename");
    let added = edit(store, t.org.id, c, g, GroupChange::Add(vec![d, d]), at(4))
        .await
        .expect("add");
    let last = added.events[1].cursor;
    (t, g, last)
}

pub async fn creating_a_group_writes_a_line_and_tells_the_members(store: &dyn Store) {
    let t = team(store, "groups", 5).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let before = store.latest_cursor().await.expect("latest cursor");
    let created = create_group(store, t.org.id, a, "Sales", &[b, c, b, a], at(1))
        .await
        .expect("create group");
    let g = created.value.id;
    assert_eq!(created.value.kind, ConversationKind::Group);
    assert_eq!(created.value.name.as_deref(), Some("Sales"));
    assert_eq!(ids(&created.value.participants), set(&[a, b, c]));
    assert_eq!(created.value.participants.len(), 3, "each member once");
    assert_eq!(
        kinds(&created.events),
        [EventKind::ConversationCreated, EventKind::MessageCreated]
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
}

pub async fn a_group_with_a_foreign_member_is_not_created(store: &dyn Store) {
    let (t, _, _) = sales(store).await;
    let other = team(store, "groups-other", 1).await;
    let (a, b) = (t.id(0), t.id(1));
    let listed_before = store.conversations_of(a).await.expect("list").len();
    let foreign = create_group(store, t.org.id, a, "Mixed", &[b, other.id(0)], at(2)).await;
    assert!(is_not_found(&foreign), "{foreign:?}");
    assert_eq!(
        store.conversations_of(a).await.expect("list").len(),
        listed_before
    );
}

pub async fn renaming_a_group_tells_the_members(store: &dyn Store) {
    let (t, g, last) = sales(store).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let renamed = edit(
        store,
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
        [EventKind::MessageCreated, EventKind::ConversationUpdated]
    );
    assert_ascending(&renamed.events, last, "rename");
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
}

pub async fn adding_to_a_group_tells_the_newcomers_too(store: &dyn Store) {
    let (t, g, last) = sales(store).await;
    let (a, b, c, d) = (t.id(0), t.id(1), t.id(2), t.id(3));
    let added = edit(store, t.org.id, c, g, GroupChange::Add(vec![d, d]), at(4))
        .await
        .expect("add");
    assert_eq!(ids(&added.value.participants), set(&[a, b, c, d]));
    assert_eq!(
        kinds(&added.events),
        [EventKind::MessageCreated, EventKind::ConversationUpdated]
    );
    assert_ascending(&added.events, last, "add");
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
}

pub async fn refused_group_edits_change_nothing(store: &dyn Store) {
    let (t, g, _) = sales_team_with_d(store).await;
    let other = team(store, "groups-other", 1).await;
    let (a, b, c, d, e) = (t.id(0), t.id(1), t.id(2), t.id(3), t.id(4));
    for (change, expected) in [
        (
            GroupChange::Add(vec![b]),
            MembershipError::AlreadyParticipant(b),
        ),
        (GroupChange::Add(vec![]), MembershipError::NothingToAdd),
        (GroupChange::Remove(a), MembershipError::RemoveSelf),
        (GroupChange::Remove(e), MembershipError::NotAParticipant(e)),
    ] {
        let r = edit(store, t.org.id, a, g, change.clone(), at(5)).await;
        assert!(
            matches!(&r, Err(StoreError::Membership(m)) if *m == expected),
            "{change:?}: {r:?}"
        );
    }
    let r = edit(
        store,
        t.org.id,
        a,
        g,
        GroupChange::Add(vec![other.id(0)]),
        at(5),
    )
    .await;
    assert!(is_not_found(&r), "adding a foreign extension: {r:?}");
    let r = edit(
        store,
        t.org.id,
        e,
        g,
        GroupChange::Rename(name("Mine")),
        at(5),
    )
    .await;
    assert!(is_not_found(&r), "a non-participant's edit: {r:?}");
    let r = edit(
        store,
        other.org.id,
        a,
        g,
        GroupChange::Rename(name("Mine")),
        at(5),
    )
    .await;
    assert!(
        is_not_found(&r),
        "an edit through another organization: {r:?}"
    );
    let r = edit(store, t.org.id, e, g, GroupChange::Add(vec![e]), at(5)).await;
    assert!(is_not_found(&r), "adding oneself from outside: {r:?}");
    let chat = direct(store, t.org.id, a, b, at(5)).await;
    let r = edit(
        store,
        t.org.id,
        a,
        chat,
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
}

pub async fn removing_from_a_group_tells_the_removed_and_hides_it_from_them(store: &dyn Store) {
    let (t, g, last) = sales_team_with_d(store).await;
    let (a, b, c, d) = (t.id(0), t.id(1), t.id(2), t.id(3));
    let removed = edit(store, t.org.id, a, g, GroupChange::Remove(d), at(6))
        .await
        .expect("remove");
    assert_eq!(ids(&removed.value.participants), set(&[a, b, c]));
    assert_eq!(
        kinds(&removed.events),
        [EventKind::MessageCreated, EventKind::ConversationUpdated]
    );
    assert_ascending(&removed.events, last, "remove");
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
}

pub async fn leaving_a_group_tells_the_leaver_and_ends_their_edits(store: &dyn Store) {
    let (t, g, last) = sales(store).await;
    let (a, b, c) = (t.id(0), t.id(1), t.id(2));
    let left = edit(store, t.org.id, c, g, GroupChange::Leave, at(7))
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
    let r = edit(
        store,
        t.org.id,
        c,
        g,
        GroupChange::Rename(name("Back")),
        at(8),
    )
    .await;
    assert!(is_not_found(&r), "a leaver can no longer edit: {r:?}");
}

pub async fn a_groups_history_has_a_line_for_every_change(store: &dyn Store) {
    let (t, g, _) = sales_team_with_d(store).await;
    let (a, c, d) = (t.id(0), t.id(2), t.id(3));
    edit(store, t.org.id, a, g, GroupChange::Remove(d), at(6))
        .await
        .expect("remove");
    edit(store, t.org.id, c, g, GroupChange::Leave, at(7))
        .await
        .expect("leave");
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

// ---------------------------------------------------------------------------
// Sends and idempotency keys.

/// A team of three with the direct chats 201–202 and 201–203.
async fn two_chats(store: &dyn Store) -> (Team, ConversationId, ConversationId) {
    let t = team(store, "messages", 3).await;
    let ab = direct(store, t.org.id, t.id(0), t.id(1), at(1)).await;
    let ac = direct(store, t.org.id, t.id(0), t.id(2), at(1)).await;
    (t, ab, ac)
}

pub async fn a_send_is_stored_and_announced_to_the_participants(store: &dyn Store) {
    let (t, ab, _) = two_chats(store).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let before = store.latest_cursor().await.expect("latest cursor");
    let first = post_keyed(store, a, ab, "Lunch?", Some("key-1"), at(2)).await;
    assert!(!first.value.replayed);
    let message = first.value.message.clone();
    assert_eq!(message.conversation_id, ab);
    assert_eq!(message.kind, MessageKind::Text);
    assert_eq!(message.sender.as_ref().map(|s| s.id), Some(a.id));
    assert_eq!(message.text, "Lunch?");
    assert_eq!(message.created_at, at(2));
    assert_eq!(message.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(kinds(&first.events), [EventKind::MessageCreated]);
    assert_ascending(&first.events, before, "post");
    assert_eq!(recipients(&first.events[0]), set(&[a.id, b.id]));
    let announced: Message =
        serde_json::from_value(payload(&first.events[0])["message"].clone()).expect("message");
    assert_eq!(announced, message, "the event carries the stored message");
    assert_eq!(
        store.latest_cursor().await.expect("latest"),
        first.events[0].cursor
    );
}

pub async fn a_key_used_again_returns_the_original_and_announces_nothing(store: &dyn Store) {
    let (t, ab, _) = two_chats(store).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let first = post_keyed(store, a, ab, "Lunch?", Some("key-1"), at(2)).await;
    let message = first.value.message.clone();
    let replay = post_keyed(store, a, ab, "Lunch? (retry)", Some("key-1"), at(3)).await;
    assert!(replay.value.replayed);
    assert_eq!(replay.value.message, message);
    assert!(replay.events.is_empty(), "a replay announces nothing");
    assert_eq!(
        store.latest_cursor().await.expect("latest"),
        first.events[0].cursor
    );
    assert_eq!(history_all(store, b.id, ab).await, vec![message]);
}

pub async fn a_key_used_again_in_another_conversation_is_a_conflict(store: &dyn Store) {
    let (t, ab, ac) = two_chats(store).await;
    let a = &t.people[0];
    post_keyed(store, a, ab, "Lunch?", Some("key-1"), at(2)).await;
    let elsewhere = store
        .post_message(message(ac, a, "Lunch?", Some("key-1"), at(4)))
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::Conflict(_))),
        "{elsewhere:?}"
    );
    assert!(history_all(store, a.id, ac).await.is_empty());
}

pub async fn keys_belong_to_their_sender(store: &dyn Store) {
    let (t, ab, _) = two_chats(store).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let mine = post_keyed(store, a, ab, "Lunch?", Some("key-1"), at(2))
        .await
        .value
        .message;
    let theirs = post_keyed(store, b, ab, "Sure", Some("key-1"), at(5)).await;
    assert!(!theirs.value.replayed);
    assert_ne!(theirs.value.message.id, mine.id);
    assert!(theirs.value.message.id > mine.id, "ids grow");
}

pub async fn without_a_key_every_send_is_new(store: &dyn Store) {
    let (t, ab, _) = two_chats(store).await;
    let a = &t.people[0];
    let x = post_as(store, a, ab, "same", at(6)).await;
    let y = post_as(store, a, ab, "same", at(6)).await;
    assert_ne!(x.value.message.id, y.value.message.id);
    assert_eq!(x.value.message.idempotency_key, None);
    assert_eq!(history_all(store, a.id, ab).await.len(), 2);
}

pub async fn only_participants_may_send(store: &dyn Store) {
    let (t, ab, _) = two_chats(store).await;
    let (a, c) = (&t.people[0], &t.people[2]);
    post_as(store, a, ab, "inside", at(2)).await;
    for (conversation, sender) in [(ab, c), (ConversationId(i64::MAX), a)] {
        let r = store
            .post_message(message(
                conversation,
                sender,
                "let me in",
                Some("intruder"),
                at(7),
            ))
            .await;
        assert!(is_not_found(&r), "{r:?}");
    }
    assert_eq!(history_all(store, a.id, ab).await.len(), 1);
}

pub async fn the_list_shows_the_last_message_and_the_newest_activity_first(store: &dyn Store) {
    let (t, ab, ac) = two_chats(store).await;
    let a = &t.people[0];
    post_as(store, a, ab, "first", at(5)).await;
    let last = post_as(store, a, ab, "same", at(6)).await;
    let listed: Vec<ConversationSummary> = store.conversations_of(a.id).await.expect("list");
    assert_eq!(listed[0].conversation.id, ab);
    assert_eq!(
        listed[0].last_message.as_ref().map(|m| m.id),
        Some(last.value.message.id)
    );
    assert_eq!(listed[0].conversation.last_activity_at, at(6));
    assert_eq!(listed[1].conversation.id, ac);
    assert!(listed[1].last_message.is_none());
}

// ---------------------------------------------------------------------------
// History.

/// A team of three whose 201 and 202 wrote 25 messages to each other, and
/// the messages' ids, oldest first.
async fn twenty_five_messages(store: &dyn Store) -> (Team, ConversationId, Vec<MessageId>) {
    let t = team(store, "paging", 3).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let ab = direct(store, t.org.id, a.id, b.id, at(1)).await;
    let mut sent = Vec::new();
    for i in 1..=25 {
        let sender = if i % 2 == 0 { a } else { b };
        let posted = post_as(store, sender, ab, &format!("message {i}"), at(i)).await;
        sent.push(posted.value.message.id);
    }
    (t, ab, sent)
}

/// The ids of a page of `conversation`'s history as `me` sees it.
async fn fetch(
    store: &dyn Store,
    me: ExtensionId,
    conversation: ConversationId,
    before: Option<MessageId>,
    after: Option<MessageId>,
    limit: u32,
) -> (Vec<MessageId>, bool) {
    let (messages, more) = store
        .history(
            me,
            conversation,
            page(before.map(|m| m.0), after.map(|m| m.0), limit),
        )
        .await
        .expect("history");
    (messages.iter().map(|m| m.id).collect(), more)
}

pub async fn history_pages_back_from_the_newest(store: &dyn Store) {
    let (t, ab, sent) = twenty_five_messages(store).await;
    let b = t.id(1);
    let back = |before, limit| fetch(store, b, ab, before, None, limit);
    assert_eq!(back(None, 10).await, (sent[15..25].to_vec(), true));
    assert_eq!(back(Some(sent[15]), 10).await, (sent[5..15].to_vec(), true));
    assert_eq!(back(Some(sent[5]), 10).await, (sent[0..5].to_vec(), false));
    assert_eq!(back(Some(sent[0]), 10).await, (vec![], false));
    assert_eq!(back(None, 25).await, (sent.clone(), false));
    assert_eq!(back(None, 200).await, (sent.clone(), false));
    let texts: Vec<String> = history_all(store, t.id(0), ab)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts.first().map(String::as_str), Some("message 1"));
    assert_eq!(texts.last().map(String::as_str), Some("message 25"));
}

pub async fn history_pages_forward_after_an_anchor(store: &dyn Store) {
    let (t, ab, sent) = twenty_five_messages(store).await;
    let forward = |after, limit| fetch(store, t.id(1), ab, None, Some(after), limit);
    assert_eq!(forward(sent[4], 10).await, (sent[5..15].to_vec(), true));
    assert_eq!(forward(sent[14], 10).await, (sent[15..25].to_vec(), false));
    assert_eq!(forward(sent[24], 10).await, (vec![], false));
    assert_eq!(forward(MessageId(0), 3).await, (sent[0..3].to_vec(), true));
}

pub async fn history_holds_its_conversations_messages_only(store: &dyn Store) {
    let (t, ab, sent) = twenty_five_messages(store).await;
    let a = &t.people[0];
    let other = direct(store, t.org.id, a.id, t.id(2), at(30)).await;
    post_as(store, a, other, "elsewhere", at(31)).await;
    assert_eq!(
        fetch(store, t.id(1), ab, None, Some(sent[24]), 10).await,
        (vec![], false),
        "a later message elsewhere is not in this history"
    );
}

pub async fn history_is_for_participants_only(store: &dyn Store) {
    let (t, ab, _) = twenty_five_messages(store).await;
    let r = store.history(t.id(2), ab, page(None, None, 10)).await;
    assert!(is_not_found(&r), "a non-participant's history: {r:?}");
}

// ---------------------------------------------------------------------------
// Read positions.

/// A team of three whose 201 wrote three messages to 202, and their ids.
async fn three_unread(store: &dyn Store) -> (Team, ConversationId, Vec<MessageId>) {
    let t = team(store, "reads", 3).await;
    let a = &t.people[0];
    let ab = direct(store, t.org.id, a.id, t.id(1), at(1)).await;
    let mut m = Vec::new();
    for i in 1..=3 {
        m.push(
            post_as(store, a, ab, &format!("m{i}"), at(i))
                .await
                .value
                .message
                .id,
        );
    }
    (t, ab, m)
}

async fn unread_of(
    store: &dyn Store,
    me: ExtensionId,
    conversation: ConversationId,
) -> Option<u32> {
    store
        .conversations_of(me)
        .await
        .expect("list")
        .into_iter()
        .find(|s| s.conversation.id == conversation)
        .map(|s| s.unread_count)
}

pub async fn my_own_messages_are_never_unread(store: &dyn Store) {
    let (t, ab, _) = three_unread(store).await;
    assert_eq!(unread_of(store, t.id(1), ab).await, Some(3));
    assert_eq!(
        unread_of(store, t.id(0), ab).await,
        Some(0),
        "my own messages are read"
    );
}

pub async fn reading_tells_everyone_my_position_and_me_my_unread_count(store: &dyn Store) {
    let (t, ab, m) = three_unread(store).await;
    let (a, b) = (t.id(0), t.id(1));
    let before = store.latest_cursor().await.expect("latest");
    let read = mark_read(store, b, ab, m[1], at(10))
        .await
        .expect("mark read");
    assert_eq!(read.value, 1);
    assert_eq!(
        kinds(&read.events),
        [EventKind::ReceiptUpdated, EventKind::UnreadUpdated]
    );
    assert_ascending(&read.events, before, "mark_read");
    assert_eq!(recipients(&read.events[0]), set(&[a, b]));
    assert_eq!(
        recipients(&read.events[1]),
        set(&[b]),
        "my unread count is mine"
    );
    assert_eq!(
        payload(&read.events[0]),
        serde_json::json!({"conversation_id": ab.0, "extension_id": b.0, "last_read_message_id": m[1].0})
    );
    assert_eq!(
        payload(&read.events[1]),
        serde_json::json!({"conversation_id": ab.0, "unread_count": 1})
    );
    assert_eq!(unread_of(store, b, ab).await, Some(1));
}

pub async fn a_read_position_never_moves_back(store: &dyn Store) {
    let (t, ab, m) = three_unread(store).await;
    let b = t.id(1);
    mark_read(store, b, ab, m[1], at(10))
        .await
        .expect("mark read");
    for back in [m[0], m[1]] {
        let r = mark_read(store, b, ab, back, at(11))
            .await
            .expect("mark read");
        assert_eq!(r.value, 1, "never backwards");
        assert!(r.events.is_empty(), "nothing moved, nothing announced");
    }
}

pub async fn receipts_show_every_participants_read_position(store: &dyn Store) {
    let (t, ab, m) = three_unread(store).await;
    let (a, b) = (t.id(0), t.id(1));
    mark_read(store, b, ab, m[1], at(10))
        .await
        .expect("mark read");
    let receipts = store.receipts(a, ab).await.expect("receipts");
    let position = |id: ExtensionId| {
        receipts
            .iter()
            .find(|r| r.extension_id == id)
            .map(|r| r.last_read_message_id)
    };
    assert_eq!(position(b), Some(m[1]));
    assert_eq!(position(a), Some(MessageId(0)), "a never-read position");
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        receipts
            .iter()
            .find(|r| r.extension_id == b)
            .map(|r| r.name.as_str()),
        Some("Person 202")
    );
}

pub async fn reading_past_the_end_stops_at_the_last_message(store: &dyn Store) {
    let (t, ab, m) = three_unread(store).await;
    let b = t.id(1);
    let all = mark_read(store, b, ab, MessageId(i64::MAX), at(12))
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
            .receipts(b, ab)
            .await
            .expect("receipts")
            .iter()
            .find(|r| r.extension_id == b)
            .map(|r| r.last_read_message_id),
        Some(m[2])
    );
    assert_eq!(unread_of(store, b, ab).await, Some(0));
}

pub async fn outsiders_can_neither_read_nor_see_receipts(store: &dyn Store) {
    let (t, ab, m) = three_unread(store).await;
    let c = t.id(2);
    let r = mark_read(store, c, ab, m[2], at(13)).await;
    assert!(is_not_found(&r), "{r:?}");
    let r = store.receipts(c, ab).await;
    assert!(is_not_found(&r), "{r:?}");
}

pub async fn system_lines_are_not_unread(store: &dyn Store) {
    let t = team(store, "reads", 3).await;
    let (a, c) = (t.id(0), t.id(2));
    let g = create_group(store, t.org.id, a, "Quiet", &[c], at(20))
        .await
        .expect("group")
        .value
        .id;
    assert_eq!(unread_of(store, c, g).await, Some(0));
}

// ---------------------------------------------------------------------------
// Organizations are walled off.

/// Two teams of two; the first has a direct chat and a group "Inner", with
/// one message in the chat.
async fn inner_and_outer(
    store: &dyn Store,
) -> (Team, Team, ConversationId, ConversationId, Message) {
    let t = team(store, "iso", 2).await;
    let o = team(store, "iso-other", 2).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let ab = direct(store, t.org.id, a.id, b.id, at(1)).await;
    let g = create_group(store, t.org.id, a.id, "Inner", &[b.id], at(1))
        .await
        .expect("group")
        .value
        .id;
    let m = post_as(store, a, ab, "inside", at(2)).await.value.message;
    (t, o, ab, g, m)
}

pub async fn another_organization_cannot_reach_a_conversation(store: &dyn Store) {
    let (t, o, ab, g, m) = inner_and_outer(store).await;
    let (a, b, x) = (&t.people[0], &t.people[1], &o.people[0]);
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
            .post_message(message(c, x, "hello from outside", None, at(3)))
            .await;
        assert!(is_not_found(&r), "{r:?}");
        let r = mark_read(store, x.id, c, m.id, at(3)).await;
        assert!(is_not_found(&r), "{r:?}");
        let r = store.receipts(x.id, c).await;
        assert!(is_not_found(&r), "{r:?}");
        for change in [
            GroupChange::Rename(name("Taken")),
            GroupChange::Add(vec![x.id]),
            GroupChange::Remove(b.id),
            GroupChange::Leave,
        ] {
            for org in [o.org.id, t.org.id] {
                let r = edit(store, org, x.id, c, change.clone(), at(3)).await;
                assert!(is_not_found(&r), "{change:?} through {org}: {r:?}");
            }
        }
    }
    assert!(store.conversations_of(x.id).await.expect("list").is_empty());

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

pub async fn another_organization_cannot_start_a_conversation_with_outsiders(store: &dyn Store) {
    let (t, o, _, _, _) = inner_and_outer(store).await;
    let (a, x) = (&t.people[0], &o.people[0]);
    let r = store
        .open_direct(OpenDirect {
            org: o.org.id,
            me: x.id,
            other: a.id,
            now: at(4),
        })
        .await;
    assert!(is_not_found(&r), "{r:?}");
    let r = create_group(store, o.org.id, x.id, "Reach", &[a.id], at(4)).await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(store.conversations_of(x.id).await.expect("list").is_empty());
}
