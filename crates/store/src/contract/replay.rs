//! Rules of replay ([`EventLog::events_after`](crate::EventLog::events_after)):
//! a resuming client gets exactly the events of the time it was a
//! participant, in cursor order, with the payloads that were recorded.

use super::*;
use crate::{Store, StoredEvent};
use switchboard_domain::{EndedSessions, EventKind, GroupChange};

pub(super) async fn run_all(store: &dyn Store) {
    latest_cursor_is_the_newest_event(store).await;
    the_log_holds_the_start_and_its_cursors_and_nothing_past_them(store).await;
    founders_replay_everything_with_the_recorded_payloads(store).await;
    another_extensions_unread_count_is_not_replayed(store).await;
    a_newcomer_replays_its_membership_period_only(store).await;
    replay_pages_with_a_limit(store).await;
    other_organizations_and_non_members_replay_none_of_it(store).await;
    a_member_who_rejoins_replays_both_periods_and_nothing_between(store).await;
    session_and_extension_events_are_replayed_to_their_extension_only(store).await;
}

/// Every event `me` may replay after `after`, checked to ascend.
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
        .filter(|e| e.kind == EventKind::MessageCreated)
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.payload).expect("payload JSON");
            v["message"]["text"].as_str().expect("text").to_owned()
        })
        .collect()
}

/// A group's story in a team of four: 201 makes "Replay" with 202, writes
/// "before c", adds 203; 202 writes "while c is in", which 203 reads; 201
/// removes 203 and writes "after c"; 202 renames the group "Without C" and
/// reads everything. 204 is never a member.
struct Story {
    t: Team,
    other: Team,
    start: Cursor,
    group: ConversationId,
    created: Vec<Recorded>,
    added: Vec<Recorded>,
    during: Vec<Recorded>,
    read: Vec<Recorded>,
    removed: Vec<Recorded>,
    renamed: Vec<Recorded>,
    b_read: Vec<Recorded>,
}

async fn story(store: &dyn Store) -> Story {
    let t = team(store, "replay", 4).await;
    let other = team(store, "replay-other", 1).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let start = store.latest_cursor(t.org.id).await.expect("latest");
    let g = create_group(store, t.org.id, a.id, "Replay", &[b.id], at(1))
        .await
        .expect("group");
    let group = g.value.id;
    post_as(store, a, group, "before c", at(2)).await;
    let added = edit(
        store,
        t.org.id,
        a.id,
        group,
        GroupChange::Add(vec![c.id]),
        at(3),
    )
    .await
    .expect("add");
    let during = post_as(store, b, group, "while c is in", at(4)).await;
    let read = mark_read(store, c.id, group, during.value.message.id, at(5))
        .await
        .expect("read");
    let removed = edit(
        store,
        t.org.id,
        a.id,
        group,
        GroupChange::Remove(c.id),
        at(6),
    )
    .await
    .expect("remove");
    post_as(store, a, group, "after c", at(7)).await;
    let renamed = edit(
        store,
        t.org.id,
        b.id,
        group,
        GroupChange::Rename(name("Without C")),
        at(8),
    )
    .await
    .expect("rename");
    let b_read = mark_read(store, b.id, group, MessageId(i64::MAX), at(9))
        .await
        .expect("read");
    Story {
        t,
        other,
        start,
        group,
        created: g.events,
        added: added.events,
        during: during.events,
        read: read.events,
        removed: removed.events,
        renamed: renamed.events,
        b_read: b_read.events,
    }
}

pub async fn latest_cursor_is_the_newest_event(store: &dyn Store) {
    let s = story(store).await;
    assert_eq!(
        store.latest_cursor(s.t.org.id).await.expect("latest"),
        s.b_read.last().expect("events").cursor,
        "latest_cursor is the newest event"
    );
}

pub async fn the_log_holds_the_start_and_its_cursors_and_nothing_past_them(store: &dyn Store) {
    let s = story(store).await;
    let holds = async |cursor: Cursor| store.holds(cursor).await.expect("holds");
    assert!(holds(Cursor::START).await, "the start is always held");
    for e in s.created.iter().chain(&s.removed).chain(&s.b_read) {
        assert!(
            holds(e.cursor).await,
            "a recorded cursor {} is held",
            e.cursor
        );
    }
    let latest = store.latest_cursor(s.t.org.id).await.expect("latest");
    assert!(holds(latest).await, "the latest cursor is held");
    assert!(
        !holds(Cursor(latest.0 + 1)).await,
        "a cursor past the latest is not held"
    );
    assert!(
        !holds(Cursor(i64::MAX)).await,
        "a forged cursor is not held"
    );
}

pub async fn founders_replay_everything_with_the_recorded_payloads(store: &dyn Store) {
    let s = story(store).await;
    let everything = replay(store, s.t.id(0), s.start).await;
    let mine: Vec<_> = everything.iter().filter(|e| concerns(e, s.group)).collect();
    assert!(
        texts_of(&everything).contains(&"after c".to_owned()),
        "founders see what came after"
    );
    assert!(mine.len() >= 12, "{mine:?}");
    for recorded in s.created.iter().chain(&s.renamed) {
        let stored = everything
            .iter()
            .find(|e| e.cursor == recorded.cursor)
            .expect("recorded events are replayed");
        assert_eq!(stored.kind, recorded.kind());
        assert_eq!(stored.payload, &*recorded.payload);
    }
}

pub async fn another_extensions_unread_count_is_not_replayed(store: &dyn Store) {
    let s = story(store).await;
    let everything = replay(store, s.t.id(0), s.start).await;
    assert!(
        !everything
            .iter()
            .any(|e| e.kind == EventKind::UnreadUpdated && e.cursor == s.b_read[1].cursor),
        "another's unread count is not mine"
    );
}

pub async fn a_newcomer_replays_its_membership_period_only(store: &dyn Store) {
    let s = story(store).await;
    let seen = replay(store, s.t.id(2), s.start).await;
    let first = s.added[0].cursor;
    let last = s.removed.last().expect("events").cursor;
    assert!(
        seen.iter().all(|e| e.cursor >= first && e.cursor <= last),
        "c sees only its membership period: {seen:?}"
    );
    let expected: BTreeSet<Cursor> = s
        .added
        .iter()
        .chain(&s.during)
        .chain(&s.read)
        .chain(&s.removed)
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
            .is_some_and(|e| e.kind == EventKind::ConversationUpdated),
        "the last thing c sees is the update without it"
    );
}

pub async fn replay_pages_with_a_limit(store: &dyn Store) {
    let s = story(store).await;
    let a = s.t.id(0);
    let everything = replay(store, a, s.start).await;
    let two = store
        .events_after(a, s.start, 2)
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
    let rest = replay(store, a, two[1].cursor).await;
    assert_eq!(rest.len(), everything.len() - 2);
    let latest = store.latest_cursor(s.t.org.id).await.expect("latest");
    assert!(replay(store, a, latest).await.is_empty());
}

pub async fn other_organizations_and_non_members_replay_none_of_it(store: &dyn Store) {
    let s = story(store).await;
    assert!(
        replay(store, s.other.id(0), s.start)
            .await
            .iter()
            .all(|e| !concerns(e, s.group)),
        "another organization's replay"
    );
    assert!(
        replay(store, s.t.id(3), s.start).await.is_empty(),
        "nor does someone who was never a member"
    );
}

pub async fn a_member_who_rejoins_replays_both_periods_and_nothing_between(store: &dyn Store) {
    let t = team(store, "rejoin", 3).await;
    let (a, c) = (&t.people[0], &t.people[2]);
    let start = store.latest_cursor(t.org.id).await.expect("latest");
    let g = create_group(store, t.org.id, a.id, "Revolving", &[c.id], at(1))
        .await
        .expect("group")
        .value
        .id;
    post_as(store, a, g, "first period", at(2)).await;
    edit(store, t.org.id, c.id, g, GroupChange::Leave, at(3))
        .await
        .expect("leave");
    post_as(store, a, g, "while away", at(4)).await;
    edit(
        store,
        t.org.id,
        a.id,
        g,
        GroupChange::Add(vec![c.id]),
        at(5),
    )
    .await
    .expect("add again");
    post_as(store, a, g, "second period", at(6)).await;

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

/// The events for the servers are in the log like any other (a node that
/// missed them on the bus catches up by replay); the caller filters what
/// reaches clients.
pub async fn session_and_extension_events_are_replayed_to_their_extension_only(store: &dyn Store) {
    let t = team(store, "replay-own", 2).await;
    let (a, b) = (t.id(0), t.id(1));
    let start = store.latest_cursor(t.org.id).await.expect("latest");
    let token = sign_in(store, b, T0).await;
    let revoked = store.revoke_session(&token).await.expect("revoke");
    let disabled = disable(store, t.org.id, b).await;

    let seen = replay(store, b, start).await;
    assert_eq!(
        seen.iter().map(|e| (e.cursor, e.kind)).collect::<Vec<_>>(),
        [
            (revoked.events[0].cursor, EventKind::SessionEnded),
            (disabled.events[0].cursor, EventKind::ExtensionChanged),
        ]
    );
    assert!(seen.iter().all(|e| !e.kind.reaches_clients()));
    assert_eq!(seen[0].payload, &*revoked.events[0].payload);
    let changed: serde_json::Value = serde_json::from_str(&seen[1].payload).expect("payload");
    assert_eq!(
        changed["sessions_ended"],
        serde_json::to_value(EndedSessions::AllExcept(None)).expect("json")
    );
    assert!(
        replay(store, a, start).await.is_empty(),
        "another extension replays none of them"
    );
}
