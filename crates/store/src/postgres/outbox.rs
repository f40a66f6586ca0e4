//! The outbox on PostgreSQL: texts to outside numbers waiting for their
//! carrier (the [`Outbox`] capability), drained by every node at once.
//!
//! A claim is a lease: `claim_texts` takes due rows with `FOR UPDATE SKIP
//! LOCKED`, so two nodes claiming together never take the same row, and
//! marks them `sending` with `due_at` at the lease's end and `claimed_by`
//! naming this node. A node that dies holding leases leaves its texts to be
//! claimed again once the leases run out, with the same idempotency key.
//! Every answer about a claimed text (taken, retry, failed) changes the row
//! only while this node still holds the claim: a node whose lease ran out
//! and was taken over learns its answer came too late, and the new holder's
//! state stands. An answer takes the text's organization's stream lock
//! before its row (see `sms`): the row may be held by another node's
//! transaction that waits for that stream.

use super::PgStore;
use super::conversations::lock_stream;
use super::messages::e164;
use super::sms::{
    announce_opt_out, apply_early_statuses, change_opt_out, move_delivery, org_country,
};
use crate::{Committed, Outbox, OutboxText, Result, StoreError};
use sqlx::{PgConnection, Row};
use switchboard_domain::sms::Keyword;
use switchboard_domain::{
    ConnectionId, ConversationId, DeliveryStatus, ExternalRef, MessageId, NumberId, OrgId,
    Timestamp,
};

async fn claim_texts(
    conn: &mut PgConnection,
    node: &str,
    now: Timestamp,
    claim_until: Timestamp,
    limit: u32,
) -> Result<Vec<OutboxText>> {
    let rows = sqlx::query(
        "WITH due AS (
             SELECT id FROM outbox
             WHERE state IN ('pending', 'sending') AND due_at <= $1
             ORDER BY due_at, id LIMIT $3
             FOR UPDATE SKIP LOCKED)
         UPDATE outbox o SET state = 'sending', attempts = o.attempts + 1, due_at = $2,
                             claimed_by = $4
         FROM due WHERE o.id = due.id
         RETURNING o.id, o.message_id, o.connection_id, o.sender, o.recipient, o.body, o.media,
                   o.idempotency_key, o.attempts",
    )
    .bind(now.0)
    .bind(claim_until.0)
    .bind(i64::from(limit))
    .bind(node)
    .fetch_all(&mut *conn)
    .await?;
    let number = |s: &str| {
        switchboard_domain::phone::E164::parse_strict(s)
            .map_err(|e| StoreError::Backend(format!("outbox number {s:?}: {e}")))
    };
    let mut texts = Vec::with_capacity(rows.len());
    for r in rows {
        let media: &str = r.try_get(6)?;
        let attempts: i32 = r.try_get(8)?;
        texts.push(OutboxText {
            id: r.try_get(0)?,
            message_id: MessageId(r.try_get(1)?),
            connection: ConnectionId(r.try_get(2)?),
            from: number(r.try_get(3)?)?,
            to: number(r.try_get(4)?)?,
            body: r.try_get(5)?,
            media: serde_json::from_str(media).unwrap_or_default(),
            idempotency_key: r.try_get(7)?,
            attempts: attempts.max(0) as u32,
        });
    }
    texts.sort_by_key(|t| t.id);
    Ok(texts)
}

/// The delivery an outbox row feeds: its message, recipient and connection.
struct Claimed {
    message: i64,
    to: String,
    connection: i64,
}

/// Takes the stream lock of text `id`'s organization (see the module's
/// documentation); false when there is no such text.
async fn lock_stream_of(conn: &mut PgConnection, id: i64) -> Result<bool> {
    let org: Option<i64> = sqlx::query_scalar(
        "SELECT c.org_id FROM outbox o JOIN carrier_connections c ON c.id = o.connection_id
         WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(org) = org else {
        return Ok(false);
    };
    lock_stream(conn, OrgId(org)).await?;
    Ok(true)
}

/// Ends this node's claim on text `id` by moving it to `state`, if this
/// node still holds it: `None` when it does not (the text was settled, or
/// its lease ran out and another node claimed it), or when there is no such
/// text (`NotFound`).
async fn settle(
    conn: &mut PgConnection,
    node: &str,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<Option<Claimed>> {
    if !lock_stream_of(conn, id).await? {
        return Err(StoreError::NotFound("outbox text"));
    }
    let row = sqlx::query(
        "UPDATE outbox SET state = $3, last_error = $4
         WHERE id = $1 AND state = 'sending' AND claimed_by = $2
         RETURNING message_id, recipient, connection_id",
    )
    .bind(id)
    .bind(node)
    .bind(state)
    .bind(error)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => Ok(Some(Claimed {
            message: r.try_get(0)?,
            to: r.try_get(1)?,
            connection: r.try_get(2)?,
        })),
        None => {
            tracing::info!(
                text = id,
                "an answer about a text came after its claim was lost; the text's holder decides"
            );
            Ok(None)
        }
    }
}

fn nothing() -> Committed<()> {
    Committed {
        value: (),
        events: Vec::new(),
    }
}

async fn text_accepted(
    conn: &mut PgConnection,
    node: &str,
    id: i64,
    carrier_message_id: &str,
    now: Timestamp,
) -> Result<Committed<()>> {
    let Some(text) = settle(conn, node, id, "sent", None).await? else {
        return Ok(nothing());
    };
    sqlx::query(
        "UPDATE deliveries SET carrier_message_id = $3, updated_at = $4
         WHERE message_id = $1 AND recipient = $2",
    )
    .bind(text.message)
    .bind(&text.to)
    .bind(carrier_message_id)
    .bind(now.0)
    .execute(&mut *conn)
    .await?;
    let events = apply_early_statuses(conn, text.connection, carrier_message_id, now).await?;
    Ok(Committed { value: (), events })
}

async fn text_retry(
    conn: &mut PgConnection,
    node: &str,
    id: i64,
    due_at: Timestamp,
    error: &str,
) -> Result<()> {
    if !lock_stream_of(conn, id).await? {
        return Ok(());
    }
    sqlx::query(
        "UPDATE outbox SET state = 'pending', due_at = $3, last_error = $4, claimed_by = NULL
         WHERE id = $1 AND state = 'sending' AND claimed_by = $2",
    )
    .bind(id)
    .bind(node)
    .bind(due_at.0)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn fail_delivery(
    conn: &mut PgConnection,
    text: &Claimed,
    reason: &str,
    now: Timestamp,
) -> Result<Committed<()>> {
    let events = move_delivery(
        conn,
        MessageId(text.message),
        &text.to,
        DeliveryStatus::Failed,
        Some(reason),
        now,
    )
    .await?
    .into_iter()
    .collect();
    Ok(Committed { value: (), events })
}

async fn text_failed(
    conn: &mut PgConnection,
    node: &str,
    id: i64,
    reason: &str,
    now: Timestamp,
) -> Result<Committed<()>> {
    match settle(conn, node, id, "failed", Some(reason)).await? {
        Some(text) => fail_delivery(conn, &text, reason, now).await,
        None => Ok(nothing()),
    }
}

async fn text_opted_out(
    conn: &mut PgConnection,
    node: &str,
    id: i64,
    reason: &str,
    now: Timestamp,
) -> Result<Committed<()>> {
    let Some(text) = settle(conn, node, id, "failed", Some(reason)).await? else {
        return Ok(nothing());
    };
    let row = sqlx::query(
        "SELECT m.conversation_id, o.sender FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE o.id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let conversation = ConversationId(row.try_get(0)?);
    let from: String = row.try_get(1)?;
    let number = sqlx::query("SELECT id, org_id FROM business_numbers WHERE number = $1")
        .bind(&from)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(number) = number else {
        return fail_delivery(conn, &text, reason, now).await;
    };
    let (number, org) = (NumberId(number.try_get(0)?), OrgId(number.try_get(1)?));
    let to = e164(&text.to)?;
    let who = ExternalRef {
        display: to.display(org_country(conn, org).await?),
        number: to,
    };
    // The opt-out row first, so no event holds the organization's stream
    // while this waits on another node's change of the same opt-out.
    let action = change_opt_out(conn, number, &who, Keyword::Stop, now).await?;
    let mut committed = fail_delivery(conn, &text, reason, now).await?;
    if let Some(action) = action {
        committed
            .events
            .extend(announce_opt_out(conn, org, conversation, action, now).await?);
    }
    Ok(committed)
}

/// Makes this node's own claims due at once (see [`Outbox::release_claims`]):
/// a claim of another node may be in flight, and is left to run out.
async fn release_claims(conn: &mut PgConnection, node: &str, now: Timestamp) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE outbox SET due_at = $1
         WHERE state = 'sending' AND due_at > $1 AND claimed_by = $2",
    )
    .bind(now.0)
    .bind(node)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// The organization of an outbox text.
const TEXT_ORG: &str = "SELECT c.org_id FROM outbox o
                        JOIN carrier_connections c ON c.id = o.connection_id WHERE o.id = $1";

#[async_trait::async_trait]
impl Outbox for PgStore {
    async fn claim_texts(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxText>> {
        let node = self.node();
        self.write(None, move |c| {
            Box::pin(async move { claim_texts(c, &node, now, claim_until, limit).await })
        })
        .await
    }

    async fn text_accepted(
        &self,
        id: i64,
        carrier_message_id: String,
        now: Timestamp,
    ) -> Result<Committed<()>> {
        let node = self.node();
        let org = self.org_found_by(TEXT_ORG, id).await?;
        self.write(org, move |c| {
            Box::pin(async move { text_accepted(c, &node, id, &carrier_message_id, now).await })
        })
        .await
    }

    async fn text_retry(&self, id: i64, due_at: Timestamp, error: String) -> Result<()> {
        let node = self.node();
        let org = self.org_found_by(TEXT_ORG, id).await?;
        self.write(org, move |c| {
            Box::pin(async move { text_retry(c, &node, id, due_at, &error).await })
        })
        .await
    }

    async fn text_failed(&self, id: i64, reason: String, now: Timestamp) -> Result<Committed<()>> {
        let node = self.node();
        let org = self.org_found_by(TEXT_ORG, id).await?;
        self.write(org, move |c| {
            Box::pin(async move { text_failed(c, &node, id, &reason, now).await })
        })
        .await
    }

    async fn text_opted_out(
        &self,
        id: i64,
        reason: String,
        now: Timestamp,
    ) -> Result<Committed<()>> {
        let node = self.node();
        let org = self.org_found_by(TEXT_ORG, id).await?;
        self.write(org, move |c| {
            Box::pin(async move { text_opted_out(c, &node, id, &reason, now).await })
        })
        .await
    }

    async fn next_text_due(&self) -> Result<Option<Timestamp>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(due_at) FROM outbox WHERE state IN ('pending', 'sending')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(due.map(Timestamp))
    }

    async fn release_claims(&self, now: Timestamp) -> Result<u64> {
        let node = self.node();
        self.write(None, move |c| {
            Box::pin(async move { release_claims(c, &node, now).await })
        })
        .await
    }
}
