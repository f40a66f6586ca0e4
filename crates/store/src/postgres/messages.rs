//! Messages, history, read positions and receipts on PostgreSQL; sending
//! them is `sends.rs`.

use super::conversations::read_positions;
use super::events::record;
use crate::{Committed, MarkRead, Receipt, Result, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::{
    Attachment, AttachmentState, ConversationId, Delivery, DeliveryStatus, Event, ExtensionId,
    ExtensionRef, ExternalRef, HistoryPage, Message, MessageId, MessageKind, OrgId, PageDirection,
    SystemAction, Timestamp,
};

/// `SELECT` of whole messages with their senders (read by
/// [`message_from_row`]), followed by the rest of the query, as one static
/// string: `select_messages!("WHERE m.id = $1")`.
macro_rules! select_messages {
    ($($rest:literal),* $(,)?) => {
        concat!(
            "SELECT m.id, m.conversation_id, m.kind, m.sender_id, s.number, s.name, m.body, \
             m.system, m.created_at, m.idempotency_key, m.external_sender, m.attachments \
             FROM messages m LEFT JOIN extensions s ON s.id = m.sender_id ",
            $($rest),*
        )
    };
}
pub(super) use select_messages;

/// A message from a row of [`select_messages!`].
pub(super) fn message_from_row(row: &PgRow) -> Result<Message> {
    let kind: String = row.try_get(2)?;
    let sender = match row.try_get::<Option<i64>, _>(3)? {
        Some(id) => Some(ExtensionRef {
            id: ExtensionId(id),
            number: row.try_get(4)?,
            name: row.try_get(5)?,
        }),
        None => None,
    };
    let system: Option<String> = row.try_get(7)?;
    let external: Option<String> = row.try_get(10)?;
    let attachments: Option<String> = row.try_get(11)?;
    Ok(Message {
        id: MessageId(row.try_get(0)?),
        conversation_id: ConversationId(row.try_get(1)?),
        kind: MessageKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown message kind {kind:?}")))?,
        sender,
        external_sender: external.and_then(|s| serde_json::from_str(&s).ok()),
        text: row.try_get(6)?,
        attachments: attachments
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        deliveries: Vec::new(),
        system: system.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: Timestamp(row.try_get(8)?),
        idempotency_key: row.try_get(9)?,
    })
}

/// One message, without its deliveries.
#[allow(dead_code, reason = "for the SMS capability's changes")]
pub(super) async fn message_by_id(
    conn: &mut PgConnection,
    id: MessageId,
) -> Result<Option<Message>> {
    sqlx::query(select_messages!("WHERE m.id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(message_from_row)
        .transpose()
}

/// The message `sender` sent with idempotency key `key`, if any.
pub(super) async fn message_by_key(
    conn: &mut PgConnection,
    sender: ExtensionId,
    key: &str,
) -> Result<Option<Message>> {
    sqlx::query(select_messages!(
        "WHERE m.sender_id = $1 AND m.idempotency_key = $2"
    ))
    .bind(sender.0)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(message_from_row)
    .transpose()
}

/// Unread messages are those written by others after my read position.
/// Counting stops at a bound: past it, "999+" says enough.
pub(super) const UNREAD_COUNT_CAP: i64 = 999;

pub(super) fn count_u32(count: i64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

pub(super) async fn history(
    conn: &mut PgConnection,
    me: ExtensionId,
    conversation: ConversationId,
    page: HistoryPage,
) -> Result<(Vec<Message>, bool)> {
    // Only a conversation with a business number texts, so only its
    // messages can have deliveries.
    let member: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT c.business_number_id FROM participants p
         JOIN conversations c ON c.id = p.conversation_id
         WHERE p.conversation_id = $1 AND p.extension_id = $2 AND p.left_seq IS NULL",
    )
    .bind(conversation.0)
    .bind(me.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(business_number) = member else {
        return Err(StoreError::NotFound("conversation"));
    };
    let fetch = i64::from(page.limit) + 1;
    let rows = match page.direction {
        PageDirection::Before(anchor) => {
            sqlx::query(select_messages!(
                "WHERE m.conversation_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3"
            ))
            .bind(conversation.0)
            .bind(anchor.map_or(i64::MAX, |a| a.0))
            .bind(fetch)
            .fetch_all(&mut *conn)
            .await?
        }
        PageDirection::After(anchor) => {
            sqlx::query(select_messages!(
                "WHERE m.conversation_id = $1 AND m.id > $2 ORDER BY m.id ASC LIMIT $3"
            ))
            .bind(conversation.0)
            .bind(anchor.0)
            .bind(fetch)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let rows = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>>>()?;
    let (mut rows, more) = page.finish(rows);
    if business_number.is_some() {
        attach_deliveries(conn, conversation, &mut rows).await?;
    }
    Ok((rows, more))
}

/// Fills in the deliveries of the messages of a page.
pub(super) async fn attach_deliveries(
    conn: &mut PgConnection,
    conversation: ConversationId,
    messages: &mut [Message],
) -> Result<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    let (lo, hi) = (first.id.0.min(last.id.0), first.id.0.max(last.id.0));
    let rows = sqlx::query(
        "SELECT d.message_id, d.recipient, d.status, d.reason FROM deliveries d
         WHERE d.message_id IN (SELECT id FROM messages
                                WHERE conversation_id = $1 AND id BETWEEN $2 AND $3)
         ORDER BY d.message_id, d.recipient",
    )
    .bind(conversation.0)
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let to: String = r.try_get(1)?;
        let status: String = r.try_get(2)?;
        let (Ok(to), Some(status)) = (E164::parse_strict(&to), DeliveryStatus::parse(&status))
        else {
            continue;
        };
        if let Some(m) = messages.iter_mut().find(|m| m.id.0 == id) {
            m.deliveries.push(Delivery {
                to,
                status,
                reason: r.try_get(3)?,
            });
        }
    }
    Ok(())
}

pub(super) async fn receipts(
    conn: &mut PgConnection,
    me: ExtensionId,
    conversation: ConversationId,
) -> Result<Vec<Receipt>> {
    let receipts = read_positions(conn, conversation).await?;
    if !receipts.iter().any(|r| r.extension_id == me) {
        return Err(StoreError::NotFound("conversation"));
    }
    Ok(receipts)
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

pub(super) fn json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

pub(super) fn attachments_json(attachments: &[Attachment]) -> Result<Option<String>> {
    if attachments.is_empty() {
        Ok(None)
    } else {
        json(attachments, "attachments").map(Some)
    }
}

/// Notes which stored images a message carries, for who may fetch them.
pub(super) async fn link_media(
    conn: &mut PgConnection,
    message: MessageId,
    attachments: &[Attachment],
) -> Result<()> {
    let ready: Vec<&str> = attachments
        .iter()
        .filter(|a| a.state == AttachmentState::Ready)
        .map(|a| a.id.as_str())
        .collect();
    if ready.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO message_media (media_id, message_id)
         SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
    )
    .bind(&ready)
    .bind(message.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The message a row describes once stored as `id`.
pub(super) fn stored(id: MessageId, row: &MessageRow<'_>) -> Message {
    Message {
        id,
        conversation_id: row.conversation,
        kind: row.kind,
        sender: row.sender.cloned(),
        external_sender: row.external.cloned(),
        text: row.body.to_owned(),
        attachments: row.attachments.to_vec(),
        deliveries: Vec::new(),
        system: row.system.cloned(),
        created_at: row.now,
        idempotency_key: row.key.map(str::to_owned),
    }
}

/// Inserts a message (with its images' links). A key already used by the
/// same sender is a backend error here: sends go through
/// [`post_message`], which answers retries.
pub(super) async fn insert_message(
    conn: &mut PgConnection,
    row: MessageRow<'_>,
) -> Result<Message> {
    let system_json = row.system.map(|s| json(s, "system action")).transpose()?;
    let external_json = row.external.map(|e| json(e, "sender")).transpose()?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (conversation_id, kind, sender_id, body, system, idempotency_key,
                               created_at, external_sender, attachments)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(row.conversation.0)
    .bind(row.kind.as_str())
    .bind(row.sender.map(|s| s.id.0))
    .bind(row.body)
    .bind(system_json)
    .bind(row.key)
    .bind(row.now.0)
    .bind(external_json)
    .bind(attachments_json(row.attachments)?)
    .fetch_one(&mut *conn)
    .await?;
    let id = MessageId(id);
    link_media(conn, id, row.attachments).await?;
    Ok(stored(id, &row))
}

/// The extensions a system action names, with their names.
async fn names_in(
    conn: &mut PgConnection,
    action: &SystemAction,
) -> Result<Vec<(ExtensionId, String)>> {
    let ids: Vec<i64> = match action {
        SystemAction::Created { actor_id, .. }
        | SystemAction::Renamed { actor_id, .. }
        | SystemAction::Left { actor_id } => vec![actor_id.0],
        SystemAction::Added {
            actor_id,
            extension_ids,
        }
        | SystemAction::Removed {
            actor_id,
            extension_ids,
        } => std::iter::once(actor_id)
            .chain(extension_ids)
            .map(|e| e.0)
            .collect(),
        _ => Vec::new(),
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT id, name FROM extensions WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((ExtensionId(r.try_get(0)?), r.try_get(1)?)))
        .collect()
}

/// Inserts the system line that tells of `action`.
pub(super) async fn system_message(
    conn: &mut PgConnection,
    conversation: ConversationId,
    action: SystemAction,
    now: Timestamp,
) -> Result<Message> {
    let names = names_in(conn, &action).await?;
    let text = action.render(|id| {
        names
            .iter()
            .find(|(n, _)| *n == id)
            .map_or_else(|| format!("extension {id}"), |(_, name)| name.clone())
    });
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
    .await
}

/// An organization's country from its stored code; a code that no longer
/// parses (it was checked when stored) reads as the United States rather
/// than failing every read.
pub(super) fn country(code: &str) -> Country {
    Country::parse(code).unwrap_or(Country::US)
}

pub(super) fn e164(s: &str) -> Result<E164> {
    E164::parse_strict(s).map_err(|e| StoreError::Backend(format!("stored number {s:?}: {e}")))
}

/// Moves my read position forward, in one statement that checks I am a
/// participant, never moves it back (the `<` is checked again against a
/// row another node changed meanwhile) and counts what stays unread.
pub(super) async fn mark_read(conn: &mut PgConnection, read: &MarkRead) -> Result<Committed<u32>> {
    let &MarkRead {
        me,
        conversation,
        up_to,
        now,
    } = read;
    let row = sqlx::query(
        "WITH p AS (
             SELECT p.last_read_message_id AS was, c.org_id,
                    least($3, coalesce((SELECT max(m.id) FROM messages m
                                        WHERE m.conversation_id = $1), 0)) AS target,
                    array(SELECT q.extension_id FROM participants q
                          WHERE q.conversation_id = $1 AND q.left_seq IS NULL) AS members
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = $1 AND p.extension_id = $2 AND p.left_seq IS NULL),
         moved AS (
             UPDATE participants r SET last_read_message_id = p.target FROM p
             WHERE r.conversation_id = $1 AND r.extension_id = $2
               AND r.last_read_message_id < p.target
             RETURNING 1)
         SELECT p.org_id, p.target, EXISTS (SELECT 1 FROM moved), p.members,
                (SELECT count(*) FROM (
                     SELECT 1 FROM messages m
                     WHERE m.conversation_id = $1 AND m.id > greatest(p.was, p.target)
                       AND m.kind = 'text' AND m.sender_id IS DISTINCT FROM $2
                     LIMIT $4) u)
         FROM p",
    )
    .bind(conversation.0)
    .bind(me.0)
    .bind(up_to.0)
    .bind(UNREAD_COUNT_CAP)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(StoreError::NotFound("conversation"));
    };
    let org = OrgId(row.try_get(0)?);
    let target = MessageId(row.try_get(1)?);
    let moved: bool = row.try_get(2)?;
    let members: Vec<i64> = row.try_get(3)?;
    let unread = count_u32(row.try_get(4)?);
    if !moved {
        return Ok(Committed {
            value: unread,
            events: Vec::new(),
        });
    }
    let members: Arc<[ExtensionId]> = members.into_iter().map(ExtensionId).collect();
    let receipt = record(
        conn,
        org,
        Event::ReceiptUpdated {
            conversation_id: conversation,
            extension_id: me,
            last_read_message_id: target,
        },
        &members,
        now,
    )
    .await?;
    let mine = record(
        conn,
        org,
        Event::UnreadUpdated {
            extension_id: me,
            conversation_id: conversation,
            unread_count: unread,
        },
        &Arc::from([me]),
        now,
    )
    .await?;
    Ok(Committed {
        value: unread,
        events: vec![receipt, mine],
    })
}
