//! Rules of [`Conversations`](crate::Conversations) about messages: sends
//! and their idempotency keys, history pages, read positions and receipts.

use super::*;
use crate::{ConversationSummary, Store, StoreError};
use switchboard_domain::{EventKind, MessageKind};

pub(super) async fn run_all(store: &dyn Store) {
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
    let before = store.latest_cursor(t.org.id).await.expect("latest cursor");
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
        store.latest_cursor(t.org.id).await.expect("latest"),
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
        store.latest_cursor(t.org.id).await.expect("latest"),
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
    let before = store.latest_cursor(t.org.id).await.expect("latest");
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
