//! Messages, history, read positions and receipts.
//!
//! A send checks everything before it writes (it runs without a savepoint of
//! its own, see `writer`), and answers a retried idempotency key with the
//! first message.

use super::RecentSends;
use super::conversations::{participants, read_positions, require_participant};
use super::events::record;
use super::sms;
use crate::{Committed, MarkRead, NewMessage, Posted, Receipt, Refusal, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Arc;
use switchboard_domain::delivery::Text;
use switchboard_domain::phone::E164;
use switchboard_domain::{
    Attachment, AttachmentState, ConversationId, ConversationKind, Delivery, DeliveryStatus, Event,
    ExtensionId, ExtensionRef, ExternalRef, HistoryPage, Message, MessageId, MessageKind,
    PageDirection, SystemAction, Timestamp,
};

pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.kind, m.sender_id, s.number, s.name, \
     m.body, m.system, m.created_at, m.idempotency_key, m.external_sender, m.attachments";
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
    let external: Option<String> = row.get(10)?;
    let attachments: Option<String> = row.get(11)?;
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
        external_sender: external.and_then(|s| serde_json::from_str(&s).ok()),
        text: row.get(6)?,
        attachments: attachments
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        deliveries: Vec::new(),
        system: system.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: Timestamp(row.get(8)?),
        idempotency_key: row.get(9)?,
    })
}

pub(super) fn message_by_id(conn: &Connection, id: MessageId) -> Result<Option<Message>> {
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
    let (mut rows, more) = page.finish(rows);
    attach_deliveries(conn, conversation, &mut rows)?;
    Ok((rows, more))
}

/// Fills in the deliveries of the messages of a page (texts to outside
/// numbers only; chats have none and cost one indexed look-up).
fn attach_deliveries(
    conn: &Connection,
    conversation: ConversationId,
    messages: &mut [Message],
) -> Result<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    let (lo, hi) = (first.id.0.min(last.id.0), first.id.0.max(last.id.0));
    let mut stmt = conn.prepare_cached(
        "SELECT d.message_id, d.recipient, d.status, d.reason FROM deliveries d
         WHERE d.message_id IN (SELECT id FROM messages WHERE conversation_id = ?1 AND id BETWEEN ?2 AND ?3)
         ORDER BY d.message_id, d.recipient",
    )?;
    let rows = stmt
        .query_map(params![conversation.0, lo, hi], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, to, status, reason) in rows {
        let (Ok(to), Some(status)) = (E164::parse_strict(&to), DeliveryStatus::parse(&status))
        else {
            continue;
        };
        if let Some(m) = messages.iter_mut().find(|m| m.id.0 == id) {
            m.deliveries.push(Delivery { to, status, reason });
        }
    }
    Ok(())
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
pub(super) struct MessageRow<'a> {
    pub conversation: ConversationId,
    pub kind: MessageKind,
    pub sender: Option<&'a ExtensionRef>,
    pub external: Option<&'a ExternalRef>,
    pub body: &'a str,
    pub attachments: &'a [Attachment],
    pub system: Option<&'a SystemAction>,
    pub key: Option<&'a str>,
    pub now: Timestamp,
}

fn json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

/// Notes which stored images a message carries, for who may fetch them.
pub(super) fn link_media(
    conn: &Connection,
    message: MessageId,
    attachments: &[Attachment],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO message_media (media_id, message_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for a in attachments
        .iter()
        .filter(|a| a.state == AttachmentState::Ready)
    {
        stmt.execute(params![a.id, message.0])?;
    }
    Ok(())
}

pub(super) fn insert_message(conn: &Connection, row: MessageRow<'_>) -> Result<Message> {
    let MessageRow {
        conversation,
        kind,
        sender,
        external,
        body,
        attachments,
        system,
        key,
        now,
    } = row;
    let system_json = system.map(|s| json(s, "system action")).transpose()?;
    let external_json = external.map(|e| json(e, "sender")).transpose()?;
    let attachments_json = if attachments.is_empty() {
        None
    } else {
        Some(json(attachments, "attachments")?)
    };
    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, kind, sender_id, body, system, idempotency_key,
                               created_at, external_sender, attachments)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        conversation.0,
        kind.as_str(),
        sender.map(|s| s.id.0),
        body,
        system_json,
        key,
        now.0,
        external_json,
        attachments_json
    ])?;
    // A conversation's last message and activity are read from the messages
    // index, not kept on the conversation row: one page fewer written per
    // message.
    let id = MessageId(conn.last_insert_rowid());
    if !attachments.is_empty() {
        link_media(conn, id, attachments)?;
    }
    Ok(Message {
        id,
        conversation_id: conversation,
        kind,
        sender: sender.cloned(),
        external_sender: external.cloned(),
        text: body.to_owned(),
        attachments: attachments.to_vec(),
        deliveries: Vec::new(),
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
            external: None,
            body: &text,
            attachments: &[],
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
    let recipients = sms::current_ids(conn, new.conversation_id)?;
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
    // Checked before anything is written: a send runs without a savepoint.
    let texting = match sms::sending_number(conn, new.conversation_id)? {
        Some((kind, number)) => Some(texts_of(conn, new, kind, number)?),
        None => None,
    };
    let mut message = insert_message(
        conn,
        MessageRow {
            conversation: new.conversation_id,
            kind: MessageKind::Text,
            sender: Some(&new.sender),
            external: None,
            body: new.text.as_str(),
            attachments: &new.attachments,
            system: None,
            key,
            now: new.now,
        },
    )?;
    if let Some((connection, texts)) = texting {
        message.deliveries = queue_texts(conn, &message, connection, &texts, &new.carrier_media)?;
    }
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

/// The texts a message in a conversation with a business number makes,
/// and the connection they go out through; refused when the number cannot
/// text or the customer opted out.
fn texts_of(
    conn: &Connection,
    new: &NewMessage,
    kind: ConversationKind,
    number: sms::SendingNumber,
) -> Result<(i64, Vec<Text>)> {
    let connection = match (number.sms_enabled, number.connection) {
        (true, Some(connection)) => connection,
        _ => return Err(Refusal::NumberCannotText.into()),
    };
    let country = sms::org_country_of_conversation(conn, new.conversation_id)?;
    let all = sms::externals(conn, new.conversation_id, number.id, country)?;
    let texts = crate::sms::plan_texts(new, kind, &number.number, all)?;
    Ok((connection, texts))
}

/// Writes a delivery and an outbox row per text, in the send's transaction.
fn queue_texts(
    conn: &Connection,
    message: &Message,
    connection: i64,
    texts: &[Text],
    media: &[String],
) -> Result<Vec<Delivery>> {
    let media = json(media, "media")?;
    let mut delivery = conn.prepare_cached(
        "INSERT INTO deliveries (message_id, recipient, status, connection_id, updated_at)
         VALUES (?1, ?2, 'queued', ?3, ?4)",
    )?;
    let mut outbox = conn.prepare_cached(
        "INSERT INTO outbox (message_id, connection_id, sender, recipient, body, media,
                             idempotency_key, state, due_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
    )?;
    let mut deliveries = Vec::with_capacity(texts.len());
    for text in texts {
        delivery.execute(params![
            message.id.0,
            text.to.as_str(),
            connection,
            message.created_at.0
        ])?;
        outbox.execute(params![
            message.id.0,
            connection,
            text.from.as_str(),
            text.to.as_str(),
            text.body,
            media,
            outbox_key()?,
            message.created_at.0
        ])?;
        deliveries.push(Delivery {
            to: text.to.clone(),
            status: DeliveryStatus::Queued,
            reason: None,
        });
    }
    Ok(deliveries)
}

/// The idempotency key a text carries to the carrier on every attempt: a
/// random UUID, unique per text.
fn outbox_key() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| StoreError::Backend(format!("no randomness for a text's key: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
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
