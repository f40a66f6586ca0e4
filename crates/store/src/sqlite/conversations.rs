//! Conversations, messages, read positions and the event log.
//!
//! Every function that changes something runs inside the writer's
//! transaction and records its events there, so the change and its
//! announcement commit together.

use super::RecentSends;
use crate::{
    Committed, ConversationSummary, NewMessage, OpenedDirect, Posted, Receipt, Recorded, Result,
    StoreError, StoredEvent,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Arc;
use switchboard_domain::conversation::{direct_key, group_members};
use switchboard_domain::{
    Conversation, ConversationId, ConversationKind, ConversationName, Cursor, Event, ExtensionId,
    ExtensionRef, GroupChange, HistoryPage, Message, MessageId, MessageKind, OrgId, PageDirection,
    SystemAction, Timestamp,
};

// ---------------------------------------------------------------------------
// Reading conversations and messages.

const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.kind, m.sender_id, s.number, s.name, \
     m.body, m.system, m.created_at, m.idempotency_key";
const MESSAGE_FROM: &str = "messages m LEFT JOIN extensions s ON s.id = m.sender_id";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let kind: String = row.get(2)?;
    let sender = match row.get::<_, Option<i64>>(3)? {
        Some(id) => Some(ExtensionRef {
            id: ExtensionId(id),
            number: row.get(4)?,
            name: row.get(5)?,
        }),
        None => None,
    };
    let system: Option<String> = row.get(7)?;
    Ok(Message {
        id: MessageId(row.get(0)?),
        conversation_id: ConversationId(row.get(1)?),
        kind: if kind == "system" {
            MessageKind::System
        } else {
            MessageKind::Text
        },
        sender,
        text: row.get(6)?,
        system: system.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: Timestamp(row.get(8)?),
        idempotency_key: row.get(9)?,
    })
}

fn message_by_id(conn: &Connection, id: MessageId) -> Result<Option<Message>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = ?1"
        ))?
        .query_row([id.0], message_from_row)
        .optional()?)
}

/// The current participants of a conversation, by extension number.
fn participants(conn: &Connection, id: ConversationId) -> Result<Vec<ExtensionRef>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.number, e.name FROM participants p
         JOIN extensions e ON e.id = p.extension_id
         WHERE p.conversation_id = ?1 AND p.left_seq IS NULL
         ORDER BY length(e.number), e.number",
    )?;
    let rows = stmt.query_map([id.0], |r| {
        Ok(ExtensionRef {
            id: ExtensionId(r.get(0)?),
            number: r.get(1)?,
            name: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Loads a conversation with its participants, with its organization.
fn load(conn: &Connection, id: ConversationId) -> Result<Option<(Conversation, OrgId)>> {
    let row = conn
        .prepare_cached(
            "SELECT c.kind, c.name, c.created_at,
                    coalesce((SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id
                              ORDER BY m.id DESC LIMIT 1), c.created_at),
                    c.org_id
             FROM conversations c WHERE c.id = ?1",
        )?
        .query_row([id.0], |r| {
            let kind: String = r.get(0)?;
            Ok((
                kind,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((kind, name, created_at, last_activity_at, org)) = row else {
        return Ok(None);
    };
    let kind = ConversationKind::parse(&kind)
        .ok_or_else(|| StoreError::Backend(format!("unknown conversation kind {kind}")))?;
    Ok(Some((
        Conversation {
            id,
            kind,
            name,
            participants: participants(conn, id)?,
            created_at: Timestamp(created_at),
            last_activity_at: Timestamp(last_activity_at),
        },
        OrgId(org),
    )))
}

fn is_participant(
    conn: &Connection,
    conversation: ConversationId,
    ext: ExtensionId,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM participants
             WHERE conversation_id = ?1 AND extension_id = ?2 AND left_seq IS NULL",
        )?
        .exists(params![conversation.0, ext.0])?)
}

fn require_participant(
    conn: &Connection,
    conversation: ConversationId,
    ext: ExtensionId,
) -> Result<()> {
    if is_participant(conn, conversation, ext)? {
        Ok(())
    } else {
        Err(StoreError::NotFound("conversation"))
    }
}

pub(super) fn conversation_for(
    conn: &Connection,
    me: ExtensionId,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    if !is_participant(conn, id, me)? {
        return Ok(None);
    }
    Ok(load(conn, id)?.map(|(c, _)| c))
}

/// Unread messages are those written by others after my read position.
/// Counting stops at a bound: past it, "999+" says enough.
const UNREAD_COUNT_CAP: u32 = 999;

fn unread_count(conn: &Connection, conversation: ConversationId, me: ExtensionId) -> Result<u32> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM (
                SELECT 1 FROM messages m, participants p
                WHERE p.conversation_id = ?1 AND p.extension_id = ?2
                  AND m.conversation_id = ?1 AND m.id > p.last_read_message_id
                  AND m.kind = 'text' AND m.sender_id IS NOT ?2
                LIMIT ?3)",
        )?
        .query_row(params![conversation.0, me.0, UNREAD_COUNT_CAP], |r| {
            r.get(0)
        })?)
}

pub(super) fn conversations_of(
    conn: &Connection,
    me: ExtensionId,
) -> Result<Vec<ConversationSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, last.id FROM participants p
         JOIN conversations c ON c.id = p.conversation_id
         LEFT JOIN messages last ON last.id = (
             SELECT m.id FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1)
         WHERE p.extension_id = ?1 AND p.left_seq IS NULL
         ORDER BY coalesce(last.created_at, c.created_at) DESC, c.id DESC",
    )?;
    let ids = stmt
        .query_map([me.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut last = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = ?1"
    ))?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, last_message_id) in ids {
        let id = ConversationId(id);
        let Some((conversation, _)) = load(conn, id)? else {
            continue;
        };
        let last_message = match last_message_id {
            Some(m) => last.query_row([m], message_from_row).optional()?,
            None => None,
        };
        out.push(ConversationSummary {
            conversation,
            last_message,
            unread_count: unread_count(conn, id, me)?,
        });
    }
    Ok(out)
}

pub(super) fn history(
    conn: &Connection,
    me: ExtensionId,
    conversation: ConversationId,
    page: HistoryPage,
) -> Result<(Vec<Message>, bool)> {
    require_participant(conn, conversation, me)?;
    let fetch = i64::from(page.limit) + 1;
    let rows = match page.direction {
        PageDirection::Before(anchor) => {
            let anchor = anchor.map_or(i64::MAX, |a| a.0);
            conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM}
                 WHERE m.conversation_id = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3"
            ))?
            .query_map(params![conversation.0, anchor, fetch], message_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?
        }
        PageDirection::After(anchor) => conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM}
                 WHERE m.conversation_id = ?1 AND m.id > ?2 ORDER BY m.id ASC LIMIT ?3"
            ))?
            .query_map(params![conversation.0, anchor.0, fetch], message_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    Ok(page.finish(rows))
}

pub(super) fn receipts(
    conn: &Connection,
    me: ExtensionId,
    conversation: ConversationId,
) -> Result<Vec<Receipt>> {
    require_participant(conn, conversation, me)?;
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.name, p.last_read_message_id FROM participants p
         JOIN extensions e ON e.id = p.extension_id
         WHERE p.conversation_id = ?1 AND p.left_seq IS NULL
         ORDER BY length(e.number), e.number",
    )?;
    let rows = stmt.query_map([conversation.0], |r| {
        Ok(Receipt {
            extension_id: ExtensionId(r.get(0)?),
            name: r.get(1)?,
            last_read_message_id: MessageId(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------------------
// The event log.

/// The cursor the next recorded event will get. Only the single writer
/// records events, so this is exact inside its transaction.
fn next_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM events")?
        .query_row([], |r| r.get(0))?)
}

fn record(
    conn: &Connection,
    event: &Event,
    recipients: &Arc<[ExtensionId]>,
    now: Timestamp,
) -> Result<Recorded> {
    let payload = serde_json::to_string(event)
        .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}")))?;
    let (conversation, target) = match event.audience() {
        switchboard_domain::Audience::Conversation(c) => (Some(c.0), None),
        switchboard_domain::Audience::Extension(e) => (None, Some(e.0)),
    };
    conn.prepare_cached(
        "INSERT INTO events (conversation_id, target_extension_id, kind, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![conversation, target, event.kind().as_str(), payload, now.0])?;
    Ok(Recorded {
        cursor: Cursor(conn.last_insert_rowid()),
        kind: event.kind().as_str(),
        payload: payload.into(),
        recipients: Arc::clone(recipients),
    })
}

pub(super) fn events_after(
    conn: &Connection,
    me: ExtensionId,
    after: Cursor,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.seq, e.kind, e.payload FROM events e
         WHERE e.seq > ?1 AND (
            e.target_extension_id = ?2
            OR EXISTS (
                SELECT 1 FROM memberships p
                WHERE p.conversation_id = e.conversation_id AND p.extension_id = ?2
                  AND p.joined_seq <= e.seq AND (p.left_seq IS NULL OR e.seq <= p.left_seq)))
         ORDER BY e.seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![after.0, me.0, limit], |r| {
        Ok(StoredEvent {
            cursor: Cursor(r.get(0)?),
            kind: r.get(1)?,
            payload: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn latest_cursor(conn: &Connection) -> Result<Cursor> {
    Ok(Cursor(
        conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM events")?
            .query_row([], |r| r.get(0))?,
    ))
}

// ---------------------------------------------------------------------------
// Changes.

/// Checks that every id is an enabled extension of `org`.
fn require_extensions(conn: &Connection, org: OrgId, ids: &[ExtensionId]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM extensions WHERE id = ?1 AND org_id = ?2 AND disabled = 0",
    )?;
    for id in ids {
        if !stmt.exists(params![id.0, org.0])? {
            return Err(StoreError::NotFound("extension"));
        }
    }
    Ok(())
}

fn name_lookup(conn: &Connection) -> Result<impl Fn(ExtensionId) -> String + '_> {
    let stmt =
        std::cell::RefCell::new(conn.prepare_cached("SELECT name FROM extensions WHERE id = ?1")?);
    Ok(move |id: ExtensionId| {
        stmt.borrow_mut()
            .query_row([id.0], |r| r.get::<_, String>(0))
            .unwrap_or_else(|_| format!("extension {id}"))
    })
}

/// A message about to be inserted.
struct MessageRow<'a> {
    conversation: ConversationId,
    kind: MessageKind,
    sender: Option<&'a ExtensionRef>,
    body: &'a str,
    system: Option<&'a SystemAction>,
    key: Option<&'a str>,
    now: Timestamp,
}

fn insert_message(conn: &Connection, row: MessageRow<'_>) -> Result<Message> {
    let MessageRow {
        conversation,
        kind,
        sender,
        body,
        system,
        key,
        now,
    } = row;
    let system_json = match system {
        Some(s) => Some(
            serde_json::to_string(s)
                .map_err(|e| StoreError::Backend(format!("cannot encode system action: {e}")))?,
        ),
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, kind, sender_id, body, system, idempotency_key, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        conversation.0,
        kind.as_str(),
        sender.map(|s| s.id.0),
        body,
        system_json,
        key,
        now.0
    ])?;
    // A conversation's last message and activity are read from the messages
    // index, not kept on the conversation row: one page fewer written per
    // message.
    let id = MessageId(conn.last_insert_rowid());
    Ok(Message {
        id,
        conversation_id: conversation,
        kind,
        sender: sender.cloned(),
        text: body.to_owned(),
        system: system.cloned(),
        created_at: now,
        idempotency_key: key.map(str::to_owned),
    })
}

fn system_message(
    conn: &Connection,
    conversation: ConversationId,
    action: SystemAction,
    now: Timestamp,
) -> Result<Message> {
    let text = action.render(name_lookup(conn)?);
    insert_message(
        conn,
        MessageRow {
            conversation,
            kind: MessageKind::System,
            sender: None,
            body: &text,
            system: Some(&action),
            key: None,
            now,
        },
    )
}

fn add_participants(
    conn: &Connection,
    conversation: ConversationId,
    ids: &[ExtensionId],
    joined_seq: i64,
) -> Result<()> {
    // A returning member starts a new membership period.
    let mut stmt = conn.prepare_cached(
        "INSERT INTO participants (conversation_id, extension_id, joined_seq)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (conversation_id, extension_id)
         DO UPDATE SET joined_seq = excluded.joined_seq, left_seq = NULL",
    )?;
    let mut period = conn.prepare_cached(
        "INSERT INTO memberships (conversation_id, extension_id, joined_seq) VALUES (?1, ?2, ?3)",
    )?;
    for id in ids {
        stmt.execute(params![conversation.0, id.0, joined_seq])?;
        period.execute(params![conversation.0, id.0, joined_seq])?;
    }
    Ok(())
}

fn ids_of(conversation: &Conversation) -> Arc<[ExtensionId]> {
    conversation.participants.iter().map(|p| p.id).collect()
}

fn insert_conversation(
    conn: &Connection,
    org: OrgId,
    kind: ConversationKind,
    name: Option<&str>,
    direct_key: Option<&str>,
    creator: ExtensionId,
    now: Timestamp,
) -> Result<ConversationId> {
    conn.prepare_cached(
        "INSERT INTO conversations (org_id, kind, name, direct_key, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        org.0,
        kind.as_str(),
        name,
        direct_key,
        creator.0,
        now.0
    ])?;
    Ok(ConversationId(conn.last_insert_rowid()))
}

fn loaded(conn: &Connection, id: ConversationId) -> Result<Conversation> {
    load(conn, id)?
        .map(|(c, _)| c)
        .ok_or(StoreError::NotFound("conversation"))
}

pub(super) fn open_direct(
    conn: &Connection,
    org: OrgId,
    me: ExtensionId,
    other: ExtensionId,
    now: Timestamp,
) -> Result<Committed<OpenedDirect>> {
    let key = direct_key(me, other)?;
    require_extensions(conn, org, &[other])?;
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM conversations WHERE direct_key = ?1 AND org_id = ?2")?
        .query_row(params![key, org.0], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(Committed {
            value: OpenedDirect {
                conversation: loaded(conn, ConversationId(id))?,
                created: false,
            },
            events: Vec::new(),
        });
    }
    let id = insert_conversation(
        conn,
        org,
        ConversationKind::Direct,
        None,
        Some(&key),
        me,
        now,
    )?;
    add_participants(conn, id, &[me, other], next_seq(conn)?)?;
    let conversation = loaded(conn, id)?;
    let recipients = ids_of(&conversation);
    let event = record(
        conn,
        &Event::ConversationCreated {
            conversation: conversation.clone(),
        },
        &recipients,
        now,
    )?;
    Ok(Committed {
        value: OpenedDirect {
            conversation,
            created: true,
        },
        events: vec![event],
    })
}

pub(super) fn create_group(
    conn: &Connection,
    org: OrgId,
    creator: ExtensionId,
    name: &ConversationName,
    others: &[ExtensionId],
    now: Timestamp,
) -> Result<Committed<Conversation>> {
    let members = group_members(creator, others)?;
    require_extensions(conn, org, &members)?;
    let id = insert_conversation(
        conn,
        org,
        ConversationKind::Group,
        Some(name.as_str()),
        None,
        creator,
        now,
    )?;
    add_participants(conn, id, &members, next_seq(conn)?)?;
    let created = loaded(conn, id)?;
    let recipients = ids_of(&created);
    let first = record(
        conn,
        &Event::ConversationCreated {
            conversation: created,
        },
        &recipients,
        now,
    )?;
    let message = system_message(
        conn,
        id,
        SystemAction::Created {
            actor_id: creator,
            name: name.as_str().to_owned(),
        },
        now,
    )?;
    let second = record(conn, &Event::MessageCreated { message }, &recipients, now)?;
    Ok(Committed {
        value: loaded(conn, id)?,
        events: vec![first, second],
    })
}

pub(super) fn edit_group(
    conn: &Connection,
    org: OrgId,
    actor: ExtensionId,
    id: ConversationId,
    edit: &GroupChange,
    now: Timestamp,
) -> Result<Committed<Conversation>> {
    let Some((before, conversation_org)) = load(conn, id)? else {
        return Err(StoreError::NotFound("conversation"));
    };
    if conversation_org != org || !before.has_participant(actor) {
        return Err(StoreError::NotFound("conversation"));
    }
    let members: Vec<ExtensionId> = before.participants.iter().map(|p| p.id).collect();
    let affected = edit.check(before.kind, actor, &members)?;
    let first_seq = next_seq(conn)?;

    let (action, leaving) = match edit {
        GroupChange::Rename(name) => {
            conn.prepare_cached("UPDATE conversations SET name = ?2 WHERE id = ?1")?
                .execute(params![id.0, name.as_str()])?;
            (
                SystemAction::Renamed {
                    actor_id: actor,
                    name: name.as_str().to_owned(),
                },
                Vec::new(),
            )
        }
        GroupChange::Add(_) => {
            require_extensions(conn, org, &affected)?;
            add_participants(conn, id, &affected, first_seq)?;
            (
                SystemAction::Added {
                    actor_id: actor,
                    extension_ids: affected.clone(),
                },
                Vec::new(),
            )
        }
        GroupChange::Remove(_) => (
            SystemAction::Removed {
                actor_id: actor,
                extension_ids: affected.clone(),
            },
            affected.clone(),
        ),
        GroupChange::Leave => (SystemAction::Left { actor_id: actor }, vec![actor]),
    };

    // Those leaving are told too: the audience is everyone who was or now is
    // a participant.
    let mut audience = members;
    for a in &affected {
        if !audience.contains(a) {
            audience.push(*a);
        }
    }
    let recipients: Arc<[ExtensionId]> = audience.into();

    let message = system_message(conn, id, action, now)?;
    let mut events = vec![record(
        conn,
        &Event::MessageCreated { message },
        &recipients,
        now,
    )?];

    let mut leave = conn.prepare_cached(
        "UPDATE participants SET left_seq = ?3 WHERE conversation_id = ?1 AND extension_id = ?2",
    )?;
    // The update event is recorded while the leavers still count as
    // participants for replay (left_seq is set to its cursor just after).
    let after = loaded_without(conn, id, &leaving)?;
    events.push(record(
        conn,
        &Event::ConversationUpdated {
            conversation: after.clone(),
        },
        &recipients,
        now,
    )?);
    let last_seq = events.last().map_or(first_seq, |e| e.cursor.0);
    let mut end_period = conn.prepare_cached(
        "UPDATE memberships SET left_seq = ?3
         WHERE conversation_id = ?1 AND extension_id = ?2 AND left_seq IS NULL",
    )?;
    for gone in &leaving {
        leave.execute(params![id.0, gone.0, last_seq])?;
        end_period.execute(params![id.0, gone.0, last_seq])?;
    }
    Ok(Committed {
        value: after,
        events,
    })
}

/// The conversation as it will be once `leaving` are gone.
fn loaded_without(
    conn: &Connection,
    id: ConversationId,
    leaving: &[ExtensionId],
) -> Result<Conversation> {
    let mut c = loaded(conn, id)?;
    c.participants.retain(|p| !leaving.contains(&p.id));
    Ok(c)
}

pub(super) fn post_message(
    conn: &Connection,
    recent_sends: &mut RecentSends,
    new: &NewMessage,
) -> Result<Committed<Posted>> {
    let mut stmt = conn.prepare_cached(
        "SELECT extension_id FROM participants WHERE conversation_id = ?1 AND left_seq IS NULL",
    )?;
    let recipients: Arc<[ExtensionId]> = stmt
        .query_map([new.conversation_id.0], |r| Ok(ExtensionId(r.get(0)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into();
    if !recipients.contains(&new.sender.id) {
        return Err(StoreError::NotFound("conversation"));
    }
    let key = new.idempotency_key.as_ref().map(|k| k.as_str());
    if let Some(key) = key {
        let original = match recent_sends.find(new.sender.id, key) {
            Some(id) => message_by_id(conn, id)?.filter(|m| {
                m.sender.as_ref().map(|s| s.id) == Some(new.sender.id)
                    && m.idempotency_key.as_deref() == Some(key)
            }),
            None => None,
        };
        if let Some(original) = original {
            if original.conversation_id != new.conversation_id {
                return Err(StoreError::Conflict(
                    "this idempotency key was already used for a message in another conversation"
                        .into(),
                ));
            }
            return Ok(Committed {
                value: Posted {
                    message: original,
                    replayed: true,
                },
                events: Vec::new(),
            });
        }
    }
    let message = insert_message(
        conn,
        MessageRow {
            conversation: new.conversation_id,
            kind: MessageKind::Text,
            sender: Some(&new.sender),
            body: new.text.as_str(),
            system: None,
            key,
            now: new.now,
        },
    )?;
    let event = record(
        conn,
        &Event::MessageCreated {
            message: message.clone(),
        },
        &recipients,
        new.now,
    )?;
    if let Some(key) = key {
        recent_sends.remember(new.sender.id, key, message.id, new.now);
    }
    Ok(Committed {
        value: Posted {
            message,
            replayed: false,
        },
        events: vec![event],
    })
}

pub(super) fn mark_read(
    conn: &Connection,
    me: ExtensionId,
    conversation: ConversationId,
    up_to: MessageId,
    now: Timestamp,
) -> Result<Committed<u32>> {
    require_participant(conn, conversation, me)?;
    let last: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM messages WHERE conversation_id = ?1")?
        .query_row([conversation.0], |r| r.get(0))?;
    let target = up_to.0.min(last.unwrap_or(0));
    let moved = conn
        .prepare_cached(
            "UPDATE participants SET last_read_message_id = ?3
             WHERE conversation_id = ?1 AND extension_id = ?2 AND last_read_message_id < ?3",
        )?
        .execute(params![conversation.0, me.0, target])?;
    let unread = unread_count(conn, conversation, me)?;
    if moved == 0 {
        return Ok(Committed {
            value: unread,
            events: Vec::new(),
        });
    }
    let members: Arc<[ExtensionId]> = participants(conn, conversation)?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let receipt = record(
        conn,
        &Event::ReceiptUpdated {
            conversation_id: conversation,
            extension_id: me,
            last_read_message_id: MessageId(target),
        },
        &members,
        now,
    )?;
    let mine = record(
        conn,
        &Event::UnreadUpdated {
            extension_id: me,
            conversation_id: conversation,
            unread_count: unread,
        },
        &Arc::from([me]),
        now,
    )?;
    Ok(Committed {
        value: unread,
        events: vec![receipt, mine],
    })
}
