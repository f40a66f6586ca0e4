//! Messages, history, read positions and receipts.
//!
//! A send checks everything before it writes (it runs without a savepoint of
//! its own, see `writer`), and answers a retried idempotency key with the
//! first message.

use super::RecentSends;
use super::conversations::{participants, read_positions, require_participant};
use super::events::record;
use crate::{Committed, MarkRead, NewMessage, Posted, Receipt, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Arc;
use switchboard_domain::{
    ConversationId, Event, ExtensionId, ExtensionRef, HistoryPage, Message, MessageId, MessageKind,
    PageDirection, SystemAction, Timestamp,
};

pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.kind, m.sender_id, s.number, s.name, \
     m.body, m.system, m.created_at, m.idempotency_key";
pub(super) const MESSAGE_FROM: &str = "messages m LEFT JOIN extensions s ON s.id = m.sender_id";

pub(super) fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
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
        kind: MessageKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown message kind {kind:?}").into(),
            )
        })?,
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

/// Unread messages are those written by others after my read position.
/// Counting stops at a bound: past it, "999+" says enough.
const UNREAD_COUNT_CAP: u32 = 999;

pub(super) fn unread_count(
    conn: &Connection,
    conversation: ConversationId,
    me: ExtensionId,
) -> Result<u32> {
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
    read_positions(conn, conversation)
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

pub(super) fn system_message(
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
        Event::MessageCreated {
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

pub(super) fn mark_read(conn: &Connection, read: &MarkRead) -> Result<Committed<u32>> {
    let &MarkRead {
        me,
        conversation,
        up_to,
        now,
    } = read;
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
        Event::ReceiptUpdated {
            conversation_id: conversation,
            extension_id: me,
            last_read_message_id: MessageId(target),
        },
        &members,
        now,
    )?;
    let mine = record(
        conn,
        Event::UnreadUpdated {
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
