//! The outbox: texts to outside numbers waiting for their carrier (the
//! [`Outbox`] capability). Rows are written by the send that makes them
//! (`messages::queue_texts`) and handed to the outbox worker with a claim.

use super::SqliteStore;
use super::sms::{apply_early_statuses, move_delivery, opt_out_change, org_country};
use crate::{Committed, Outbox, OutboxText, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::phone::E164;
use switchboard_domain::sms::Keyword;
use switchboard_domain::{
    ConnectionId, ConversationId, DeliveryStatus, ExternalRef, MessageId, NumberId, OrgId,
    Timestamp,
};

fn claim_texts(
    conn: &Connection,
    now: Timestamp,
    claim_until: Timestamp,
    limit: u32,
) -> Result<Vec<OutboxText>> {
    let mut stmt = conn.prepare_cached(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, due_at = ?2
         WHERE id IN (SELECT id FROM outbox
                      WHERE state IN ('pending', 'sending') AND due_at <= ?1
                      ORDER BY due_at, id LIMIT ?3)
         RETURNING id, message_id, connection_id, sender, recipient, body, media,
                   idempotency_key, attempts",
    )?;
    let rows = stmt
        .query_map(params![now.0, claim_until.0, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, u32>(8)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let number = |s: &str| {
        E164::parse_strict(s).map_err(|e| StoreError::Backend(format!("outbox number {s:?}: {e}")))
    };
    let mut texts = Vec::with_capacity(rows.len());
    for (id, message, connection, from, to, body, media, key, attempts) in rows {
        texts.push(OutboxText {
            id,
            message_id: MessageId(message),
            connection: ConnectionId(connection),
            from: number(&from)?,
            to: number(&to)?,
            body,
            media: serde_json::from_str(&media).unwrap_or_default(),
            idempotency_key: key,
            attempts,
        });
    }
    texts.sort_by_key(|t| t.id);
    Ok(texts)
}

/// The delivery an outbox row feeds: its message, recipient and connection.
fn delivery_of(conn: &Connection, id: i64) -> Result<(i64, String, i64)> {
    conn.prepare_cached("SELECT message_id, recipient, connection_id FROM outbox WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or(StoreError::NotFound("outbox text"))
}

fn text_accepted(
    conn: &Connection,
    id: i64,
    carrier_message_id: &str,
    now: Timestamp,
) -> Result<Committed<()>> {
    let (message, to, connection) = delivery_of(conn, id)?;
    conn.prepare_cached("UPDATE outbox SET state = 'sent', last_error = NULL WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached(
        "UPDATE deliveries SET carrier_message_id = ?3, updated_at = ?4
         WHERE message_id = ?1 AND recipient = ?2",
    )?
    .execute(params![message, to, carrier_message_id, now.0])?;
    let events = apply_early_statuses(conn, connection, carrier_message_id, now)?;
    Ok(Committed { value: (), events })
}

fn text_retry(conn: &Connection, id: i64, due_at: Timestamp, error: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET state = 'pending', due_at = ?2, last_error = ?3
         WHERE id = ?1 AND state = 'sending'",
    )?
    .execute(params![id, due_at.0, error])?;
    Ok(())
}

fn text_failed(conn: &Connection, id: i64, reason: &str, now: Timestamp) -> Result<Committed<()>> {
    let (message, to, _) = delivery_of(conn, id)?;
    conn.prepare_cached("UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1")?
        .execute(params![id, reason])?;
    let events = move_delivery(
        conn,
        MessageId(message),
        &to,
        DeliveryStatus::Failed,
        Some(reason),
        now,
    )?
    .into_iter()
    .collect();
    Ok(Committed { value: (), events })
}

fn text_opted_out(
    conn: &Connection,
    id: i64,
    reason: &str,
    now: Timestamp,
) -> Result<Committed<()>> {
    let (conversation, from, to): (i64, String, String) = conn
        .prepare_cached(
            "SELECT m.conversation_id, o.sender, o.recipient
             FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or(StoreError::NotFound("outbox text"))?;
    let mut committed = text_failed(conn, id, reason, now)?;
    let number: Option<(i64, i64)> = conn
        .prepare_cached("SELECT id, org_id FROM business_numbers WHERE number = ?1")?
        .query_row([&from], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((number, org)) = number else {
        return Ok(committed);
    };
    let to = E164::parse_strict(&to)
        .map_err(|e| StoreError::Backend(format!("outbox number {to:?}: {e}")))?;
    let who = ExternalRef {
        display: to.display(org_country(conn, OrgId(org))?),
        number: to,
    };
    committed.events.extend(opt_out_change(
        conn,
        ConversationId(conversation),
        NumberId(number),
        &who,
        Keyword::Stop,
        now,
    )?);
    Ok(committed)
}

fn next_text_due(conn: &Connection) -> Result<Option<Timestamp>> {
    Ok(conn
        .prepare_cached("SELECT min(due_at) FROM outbox WHERE state IN ('pending', 'sending')")?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?
        .map(Timestamp))
}

fn release_claims(conn: &Connection, now: Timestamp) -> Result<u64> {
    Ok(conn
        .prepare_cached("UPDATE outbox SET due_at = ?1 WHERE state = 'sending' AND due_at > ?1")?
        .execute([now.0])? as u64)
}

#[async_trait::async_trait]
impl Outbox for SqliteStore {
    async fn claim_texts(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxText>> {
        self.write(move |c| claim_texts(c, now, claim_until, limit))
            .await
    }

    async fn text_accepted(
        &self,
        id: i64,
        carrier_message_id: String,
        now: Timestamp,
    ) -> Result<Committed<()>> {
        self.write(move |c| text_accepted(c, id, &carrier_message_id, now))
            .await
    }

    async fn text_retry(&self, id: i64, due_at: Timestamp, error: String) -> Result<()> {
        self.write(move |c| text_retry(c, id, due_at, &error)).await
    }

    async fn text_failed(&self, id: i64, reason: String, now: Timestamp) -> Result<Committed<()>> {
        self.write(move |c| text_failed(c, id, &reason, now)).await
    }

    async fn text_opted_out(
        &self,
        id: i64,
        reason: String,
        now: Timestamp,
    ) -> Result<Committed<()>> {
        self.write(move |c| text_opted_out(c, id, &reason, now))
            .await
    }

    async fn next_text_due(&self) -> Result<Option<Timestamp>> {
        self.read(next_text_due).await
    }

    async fn release_claims(&self, now: Timestamp) -> Result<u64> {
        self.write(move |c| release_claims(c, now)).await
    }
}
