//! Messages, history, read positions and receipts on PostgreSQL.
//!
//! A send is the hot path: one statement checks that the sender is a
//! participant, inserts the message and returns the audience, and a second
//! records its event. Idempotency keys are kept by the unique index
//! `messages_by_idempotency_key`, never in a node's memory, so a retry that
//! lands on another node finds the first send: the insert does nothing on a
//! taken key (waiting, if the first send is still being committed, for its
//! outcome), and the send answers with the original instead.

use super::conversations::{externals, lock_stream, read_positions};
use super::events::{NewEvent, record, record_many};
use crate::{Committed, MarkRead, NewMessage, Posted, Receipt, Refusal, Result, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use switchboard_domain::delivery::Text;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::{
    Attachment, AttachmentState, ConversationId, ConversationKind, Delivery, DeliveryStatus, Event,
    ExtensionId, ExtensionRef, ExternalRef, HistoryPage, Message, MessageId, MessageKind, NumberId,
    OrgId, PageDirection, SystemAction, Timestamp,
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
async fn message_by_key(
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

fn attachments_json(attachments: &[Attachment]) -> Result<Option<String>> {
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
fn stored(id: MessageId, row: &MessageRow<'_>) -> Message {
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

/// A business number as sending needs it.
pub(super) struct SendingNumber {
    pub id: NumberId,
    pub number: E164,
    pub connection: Option<i64>,
    pub sms_enabled: bool,
}

/// What the send's first statement learnt of the conversation.
struct SendTarget {
    org: OrgId,
    kind: ConversationKind,
    recipients: Arc<[ExtensionId]>,
    /// The new message's id, when the statement inserted it.
    inserted: Option<MessageId>,
    /// The business number it texts from, with the organization's country.
    texting: Option<(SendingNumber, Country)>,
}

/// Checks that the sender is a current participant and, in a conversation
/// without a business number, inserts the message, in one statement. `None`
/// when the sender is not a participant; `inserted` is `None` when the key
/// was taken (or the conversation texts, which needs more checks first).
///
/// A keyed insert may wait for another node's send with the same key, so
/// it takes the organization's stream lock first (the insert reads the
/// locked row), as that send did: a transaction holding the stream lock
/// from an earlier write of its batch never waits on a key held by one
/// that waits for the stream. Unkeyed inserts wait on nothing.
async fn send_target(conn: &mut PgConnection, new: &NewMessage) -> Result<Option<SendTarget>> {
    let row = sqlx::query(
        "WITH me AS (
             SELECT c.org_id, c.kind, c.business_number_id,
                    array(SELECT q.extension_id FROM participants q
                          WHERE q.conversation_id = $1 AND q.left_seq IS NULL) AS recipients
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = $1 AND p.extension_id = $2 AND p.left_seq IS NULL),
         stream AS (
             SELECT s.org_id FROM org_streams s JOIN me ON s.org_id = me.org_id
             WHERE $4::text IS NOT NULL FOR UPDATE OF s),
         sent AS (
             INSERT INTO messages (conversation_id, kind, sender_id, body, idempotency_key,
                                   created_at, attachments)
             SELECT $1, 'text', $2, $3, $4, $5, $6 FROM me LEFT JOIN stream ON true
             WHERE me.business_number_id IS NULL
             ON CONFLICT (sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL
             DO NOTHING
             RETURNING id)
         SELECT me.org_id, me.kind, me.recipients, (SELECT id FROM sent),
                n.id, n.number, n.connection_id, n.sms_enabled, o.default_country
         FROM me
         LEFT JOIN business_numbers n ON n.id = me.business_number_id
         LEFT JOIN organizations o ON o.id = me.org_id AND n.id IS NOT NULL",
    )
    .bind(new.conversation_id.0)
    .bind(new.sender.id.0)
    .bind(new.text.as_str())
    .bind(new.idempotency_key.as_ref().map(|k| k.as_str()))
    .bind(new.now.0)
    .bind(attachments_json(&new.attachments)?)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let kind: String = row.try_get(1)?;
    let recipients: Vec<i64> = row.try_get(2)?;
    let texting = match row.try_get::<Option<i64>, _>(4)? {
        Some(id) => {
            let number: String = row.try_get(5)?;
            let code: String = row.try_get(8)?;
            Some((
                SendingNumber {
                    id: NumberId(id),
                    number: e164(&number)?,
                    connection: row.try_get(6)?,
                    sms_enabled: row.try_get(7)?,
                },
                country(&code),
            ))
        }
        None => None,
    };
    Ok(Some(SendTarget {
        org: OrgId(row.try_get(0)?),
        kind: ConversationKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown conversation kind {kind}")))?,
        recipients: recipients.into_iter().map(ExtensionId).collect(),
        inserted: row.try_get::<Option<i64>, _>(3)?.map(MessageId),
        texting,
    }))
}

/// The answer to a send whose key its sender already used: the original
/// message if it was sent in the same conversation, else a conflict.
async fn replay(conn: &mut PgConnection, new: &NewMessage, key: &str) -> Result<Option<Posted>> {
    let Some(original) = message_by_key(conn, new.sender.id, key).await? else {
        return Ok(None);
    };
    if original.conversation_id != new.conversation_id {
        return Err(StoreError::Conflict(
            "this idempotency key was already used for a message in another conversation".into(),
        ));
    }
    Ok(Some(Posted {
        message: original,
        replayed: true,
    }))
}

/// The original of a send whose insert found its key taken.
async fn replayed(conn: &mut PgConnection, new: &NewMessage) -> Result<Committed<Posted>> {
    let found = match &new.idempotency_key {
        Some(key) => replay(conn, new, key.as_str()).await?,
        None => None,
    };
    let posted = found.ok_or_else(|| {
        StoreError::Backend("a send was refused without its key being taken; try again".into())
    })?;
    Ok(Committed {
        value: posted,
        events: Vec::new(),
    })
}

pub(super) async fn post_message(
    conn: &mut PgConnection,
    new: &NewMessage,
) -> Result<Committed<Posted>> {
    let Some(target) = send_target(conn, new).await? else {
        return Err(StoreError::NotFound("conversation"));
    };
    let row = MessageRow {
        conversation: new.conversation_id,
        kind: MessageKind::Text,
        sender: Some(&new.sender),
        external: None,
        body: new.text.as_str(),
        attachments: &new.attachments,
        system: None,
        key: new.idempotency_key.as_ref().map(|k| k.as_str()),
        now: new.now,
    };
    let message = match target.texting {
        None => {
            let Some(id) = target.inserted else {
                return replayed(conn, new).await;
            };
            link_media(conn, id, &new.attachments).await?;
            stored(id, &row)
        }
        Some((number, country)) => {
            if let Some(key) = row.key
                && let Some(original) = replay(conn, new, key).await?
            {
                return Ok(Committed {
                    value: original,
                    events: Vec::new(),
                });
            }
            // Refusals come before anything is written.
            let (connection, texts) = texts_of(conn, new, target.kind, &number, country).await?;
            if row.key.is_some() {
                lock_stream(conn, target.org).await?;
            }
            let Some(id) = insert_keyed(conn, &row).await? else {
                return replayed(conn, new).await;
            };
            let mut message = stored(id, &row);
            message.deliveries =
                queue_texts(conn, &message, connection, &texts, &new.carrier_media).await?;
            link_media(conn, id, &new.attachments).await?;
            message
        }
    };
    let event = record(
        conn,
        target.org,
        Event::MessageCreated {
            message: message.clone(),
        },
        &target.recipients,
        new.now,
    )
    .await?;
    Ok(Committed {
        value: Posted {
            message,
            replayed: false,
        },
        events: vec![event],
    })
}

/// Stores the plain chat sends among `sends` (no images, in a conversation
/// without a business number, by a current member, with a key not used
/// before) with a fixed number of statements, however many they are: ids
/// taken first in the given order, one insert, then their events with
/// [`record_many`]. Each answer is the send's outcome, or `None` for a send
/// that must go through [`post_message`] instead (a text to an outside
/// number, a retry, a refusal), which nothing here has written for.
pub(super) async fn post_chats(
    conn: &mut PgConnection,
    sends: &[&NewMessage],
) -> Result<Vec<Option<Committed<Posted>>>> {
    let count = i64::try_from(sends.len())
        .map_err(|_| StoreError::Backend("too many sends at once".into()))?;
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, $1)",
    )
    .bind(count)
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    if ids.len() != sends.len() {
        return Err(StoreError::Backend("the database gave too few ids".into()));
    }
    let conversations: Vec<i64> = sends.iter().map(|n| n.conversation_id.0).collect();
    let senders: Vec<i64> = sends.iter().map(|n| n.sender.id.0).collect();
    let bodies: Vec<&str> = sends.iter().map(|n| n.text.as_str()).collect();
    let keys: Vec<Option<&str>> = sends
        .iter()
        .map(|n| n.idempotency_key.as_ref().map(|k| k.as_str()))
        .collect();
    let times: Vec<i64> = sends.iter().map(|n| n.now.0).collect();
    let rows = sqlx::query(
        "WITH input AS (
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                                  $5::text[], $6::bigint[])
                 AS i(id, conversation_id, sender_id, body, key, created_at)),
         allowed AS (
             SELECT i.*, c.org_id,
                    array(SELECT q.extension_id FROM participants q
                          WHERE q.conversation_id = i.conversation_id AND q.left_seq IS NULL)
                        AS recipients
             FROM input i
             JOIN participants p ON p.conversation_id = i.conversation_id
                                AND p.extension_id = i.sender_id AND p.left_seq IS NULL
             JOIN conversations c ON c.id = i.conversation_id
             WHERE c.business_number_id IS NULL),
         sent AS (
             INSERT INTO messages (id, conversation_id, kind, sender_id, body, idempotency_key,
                                   created_at)
             SELECT id, conversation_id, 'text', sender_id, body, key, created_at
             FROM allowed ORDER BY id
             ON CONFLICT (sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL
             DO NOTHING
             RETURNING id)
         SELECT a.id, a.org_id, a.recipients FROM allowed a JOIN sent USING (id)",
    )
    .bind(&ids)
    .bind(&conversations)
    .bind(&senders)
    .bind(&bodies)
    .bind(&keys)
    .bind(&times)
    .fetch_all(&mut *conn)
    .await?;
    let mut stored_as = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get(0)?;
        let org: i64 = row.try_get(1)?;
        let recipients: Vec<i64> = row.try_get(2)?;
        stored_as.insert(id, (OrgId(org), recipients));
    }
    let mut messages = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    let mut answers: Vec<Option<usize>> = Vec::with_capacity(sends.len());
    for (new, id) in sends.iter().zip(&ids) {
        let Some((org, recipients)) = stored_as.remove(id) else {
            answers.push(None);
            continue;
        };
        let row = MessageRow {
            conversation: new.conversation_id,
            kind: MessageKind::Text,
            sender: Some(&new.sender),
            external: None,
            body: new.text.as_str(),
            attachments: &[],
            system: None,
            key: new.idempotency_key.as_ref().map(|k| k.as_str()),
            now: new.now,
        };
        let message = stored(MessageId(*id), &row);
        answers.push(Some(messages.len()));
        events.push(NewEvent {
            org,
            event: Event::MessageCreated {
                message: message.clone(),
            },
            recipients: recipients.into_iter().map(ExtensionId).collect(),
            now: new.now,
        });
        messages.push(message);
    }
    let recorded = record_many(conn, events).await?;
    let mut outcomes: Vec<Option<Committed<Posted>>> = messages
        .into_iter()
        .zip(recorded)
        .map(|(message, event)| {
            Some(Committed {
                value: Posted {
                    message,
                    replayed: false,
                },
                events: vec![event],
            })
        })
        .collect();
    Ok(answers
        .into_iter()
        .map(|slot| slot.and_then(|i| outcomes[i].take()))
        .collect())
}

/// Inserts a sent text message; `None` when its sender already used its
/// key (committed by another transaction meanwhile).
async fn insert_keyed(conn: &mut PgConnection, row: &MessageRow<'_>) -> Result<Option<MessageId>> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO messages (conversation_id, kind, sender_id, body, idempotency_key,
                               created_at, attachments)
         VALUES ($1, 'text', $2, $3, $4, $5, $6)
         ON CONFLICT (sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(row.conversation.0)
    .bind(row.sender.map(|s| s.id.0))
    .bind(row.body)
    .bind(row.key)
    .bind(row.now.0)
    .bind(attachments_json(row.attachments)?)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(MessageId))
}

/// The texts a message in a conversation with a business number makes,
/// and the connection they go out through; refused when the number cannot
/// text or the customer opted out.
async fn texts_of(
    conn: &mut PgConnection,
    new: &NewMessage,
    kind: ConversationKind,
    number: &SendingNumber,
    country: Country,
) -> Result<(i64, Vec<Text>)> {
    let connection = match (number.sms_enabled, number.connection) {
        (true, Some(connection)) => connection,
        _ => return Err(Refusal::NumberCannotText.into()),
    };
    let all = externals(conn, new.conversation_id, number.id, country).await?;
    let texts = crate::sms::plan_texts(new, kind, &number.number, all)?;
    Ok((connection, texts))
}

/// Writes a delivery and an outbox row per text, in the send's
/// transaction, in one statement.
pub(super) async fn queue_texts(
    conn: &mut PgConnection,
    message: &Message,
    connection: i64,
    texts: &[Text],
    media: &[String],
) -> Result<Vec<Delivery>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let from: Vec<&str> = texts.iter().map(|t| t.from.as_str()).collect();
    let to: Vec<&str> = texts.iter().map(|t| t.to.as_str()).collect();
    let bodies: Vec<&str> = texts.iter().map(|t| t.body.as_str()).collect();
    let keys = texts
        .iter()
        .map(|_| outbox_key())
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "WITH queued AS (
             INSERT INTO deliveries (message_id, recipient, status, connection_id, updated_at)
             SELECT $1, r, 'queued', $2, $3 FROM unnest($5::text[]) AS r)
         INSERT INTO outbox (message_id, connection_id, sender, recipient, body, media,
                             idempotency_key, state, due_at, created_at)
         SELECT $1, $2, t.sender, t.recipient, t.body, $4, t.key, 'pending', $3, $3
         FROM unnest($6::text[], $5::text[], $7::text[], $8::text[])
              WITH ORDINALITY AS t(sender, recipient, body, key, n)
         ORDER BY t.n",
    )
    .bind(message.id.0)
    .bind(connection)
    .bind(message.created_at.0)
    .bind(json(media, "media")?)
    .bind(&to)
    .bind(&from)
    .bind(&bodies)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    Ok(texts
        .iter()
        .map(|t| Delivery {
            to: t.to.clone(),
            status: DeliveryStatus::Queued,
            reason: None,
        })
        .collect())
}

/// The idempotency key a text carries to the carrier on every attempt: a
/// random UUID, unique per text.
pub(super) fn outbox_key() -> Result<String> {
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
