//! Rules of [`Conversations`](crate::Conversations) about conversations:
//! direct chats, groups and their edits, and the walls between
//! organizations. Messages are in `messages`.

use super::*;
use crate::{Store, StoreError};
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
    another_organization_cannot_reach_a_conversation(store).await;
    another_organization_cannot_start_a_conversation_with_outsiders(store).await;
}

// ---------------------------------------------------------------------------
// Direct chats.

pub async fn opening_a_direct_chat_creates_it_and_tells_both(store: &dyn Store) {
    let t = team(store, "direct", 2).await;
    let (a, b) = (t.id(0), t.id(1));
    let before = store.latest_cursor(t.org.id).await.expect("latest cursor");
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
    let before = store.latest_cursor(t.org.id).await.expect("latest cursor");
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
