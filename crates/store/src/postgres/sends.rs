//! Sending a message on PostgreSQL, the hot path.
//!
//! One statement checks that the sender is a participant, inserts the
//! message and returns the audience, and a second records its event; chat
//! sends waiting together are stored together ([`post_chats`]).
//! Idempotency keys are kept by the unique index
//! `messages_by_idempotency_key`, never in a node's memory, so a retry that
//! lands on another node finds the first send: the insert does nothing on a
//! taken key (waiting, if the first send is still being committed, for its
//! outcome), and the send answers with the original instead.

use super::conversations::{externals, lock_stream};
use super::events::{NewEvent, record, record_many};
use super::messages::{
    MessageRow, attachments_json, country, e164, json, link_media, message_by_key, stored,
};
use crate::{Committed, NewMessage, Posted, Refusal, Result, StoreError};
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use switchboard_domain::delivery::Text;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::{
    ConversationKind, Delivery, DeliveryStatus, Event, ExtensionId, Message, MessageId,
    MessageKind, NumberId, OrgId,
};

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
