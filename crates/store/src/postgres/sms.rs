//! Texting outside numbers on PostgreSQL: SMS conversations, the outside
//! participants of conversations, texts and statuses from carriers and
//! opt-outs (the [`Sms`] capability). Sending goes through
//! `sends::post_message`, which writes the outbox rows (`outbox`).
//!
//! Several nodes may take webhooks at once, so what must happen once is
//! held by the database: a webhook is taken by the first insert of its key
//! into `carrier_webhooks`, an SMS conversation is one row per `sms_key`,
//! and a delivery's status moves under the delivery's row lock.
//!
//! Each change takes its organization's stream lock (`lock_stream`) before
//! its first write that may wait on another node's (a webhook key, an SMS
//! conversation's key, an opt-out, a delivery), as every writer of the
//! organization does, and only a business number's row before it (in the
//! order assigning the number takes them): a transaction that holds the
//! stream lock for an earlier write of its group commit then never waits
//! on a row held by one that waits for the stream. The same lock makes a
//! status that arrives before its send was recorded meet that send: the
//! status report and the recording of the carrier's id take turns, so the
//! status is either stored as early before the send looks for early ones,
//! or finds the send.

use super::PgStore;
use super::conversations::{add_participants, current_ids, ids_of, loaded, lock_stream};
use super::events::record;
use super::messages::{
    MessageRow, country, e164, insert_message, link_media, message_by_id, system_message,
};
use crate::{
    Committed, InboundOutcome, InboundText, MediaRecord, OpenSms, OpenedSms, Recorded, Refusal,
    Result, Sms, StatusOutcome, StatusReport, StoreError,
};
use sqlx::{PgConnection, Row};
use switchboard_domain::conversation::sms_key;
use switchboard_domain::delivery::{Inbound, OpenGroup, route_inbound};
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::sms::Keyword;
use switchboard_domain::{
    Attachment, AttachmentState, ConversationId, DeliveryStatus, Event, ExtensionId, ExtensionRef,
    ExternalParticipant, ExternalRef, MessageId, MessageKind, NumberId, OrgId, SystemAction,
    Timestamp,
};

pub(super) async fn org_country(conn: &mut PgConnection, org: OrgId) -> Result<Country> {
    let code: String =
        sqlx::query_scalar("SELECT default_country FROM organizations WHERE id = $1")
            .bind(org.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
    Ok(country(&code))
}

/// The enabled extensions that have a business number, who share its SMS
/// conversations, as a conversation lists its participants.
async fn holders(conn: &mut PgConnection, number: NumberId) -> Result<Vec<ExtensionRef>> {
    let rows = sqlx::query(
        "SELECT e.id, e.number, e.name FROM number_assignments a
         JOIN extensions e ON e.id = a.extension_id
         WHERE a.number_id = $1 AND NOT e.disabled
         ORDER BY length(e.number), e.number COLLATE \"C\"",
    )
    .bind(number.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ExtensionRef {
                id: ExtensionId(r.try_get(0)?),
                number: r.try_get(1)?,
                name: r.try_get(2)?,
            })
        })
        .collect()
}

/// The SMS conversation of a pair of numbers, created with every holder of
/// the business number when it does not exist yet. Returns it, and the
/// event of its creation when it was made.
async fn sms_conversation(
    conn: &mut PgConnection,
    org: OrgId,
    number: NumberId,
    external: &E164,
    creator: Option<ExtensionId>,
    now: Timestamp,
) -> Result<(ConversationId, Option<Recorded>)> {
    let key = sms_key(number, external);
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM conversations WHERE sms_key = $1")
            .bind(&key)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = existing {
        return Ok((ConversationId(id), None));
    }
    // Who holds the number cannot change until this commits, so a holder
    // assigned meanwhile on another node is either let in here or finds
    // this conversation (see `numbers::sync_holders`). The number is locked
    // before the stream, in the order assigning takes them; the callers
    // hold it already.
    sqlx::query("SELECT 1 FROM business_numbers WHERE id = $1 FOR SHARE")
        .bind(number.0)
        .execute(&mut *conn)
        .await?;
    lock_stream(conn, org).await?;
    // Two nodes opening the pair at once: the unique key lets one insert
    // and the other, once the first commits, find its row.
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO conversations (org_id, kind, business_number_id, sms_key, created_by, created_at)
         VALUES ($1, 'sms', $2, $3, $4, $5)
         ON CONFLICT (sms_key) DO NOTHING RETURNING id",
    )
    .bind(org.0)
    .bind(number.0)
    .bind(&key)
    .bind(creator.map(|c| c.0))
    .bind(now.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = created else {
        let id: i64 = sqlx::query_scalar("SELECT id FROM conversations WHERE sms_key = $1")
            .bind(&key)
            .fetch_one(&mut *conn)
            .await?;
        return Ok((ConversationId(id), None));
    };
    let id = ConversationId(id);
    let holders = holders(conn, number).await?;
    let opted_out: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM opt_outs WHERE business_number_id = $1 AND number = $2)",
    )
    .bind(number.0)
    .bind(external.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let country = org_country(conn, org).await?;
    // The conversation as it is once its members are in: their rows carry
    // the cursor of the event that announces it.
    let mut conversation = loaded(conn, id).await?;
    conversation.participants = holders;
    conversation.externals = vec![ExternalParticipant {
        number: external.clone(),
        display: external.display(country),
        opted_out,
    }];
    let recipients = ids_of(&conversation);
    let event = record(
        conn,
        org,
        Event::ConversationCreated { conversation },
        &recipients,
        now,
    )
    .await?;
    add_participants(conn, id, &recipients, event.cursor.0).await?;
    sqlx::query(
        "INSERT INTO external_participants (conversation_id, number, joined_seq) VALUES ($1, $2, $3)",
    )
    .bind(id.0)
    .bind(external.as_str())
    .bind(event.cursor.0)
    .execute(&mut *conn)
    .await?;
    Ok((id, Some(event)))
}

async fn open_sms(conn: &mut PgConnection, open: &OpenSms) -> Result<Committed<OpenedSms>> {
    let usable: Option<bool> = sqlx::query_scalar(
        "SELECT n.sms_enabled AND n.connection_id IS NOT NULL
         FROM number_assignments a JOIN business_numbers n ON n.id = a.number_id
         WHERE a.number_id = $1 AND a.extension_id = $2 AND n.org_id = $3
         FOR SHARE OF n",
    )
    .bind(open.from.0)
    .bind(open.me.0)
    .bind(open.org.0)
    .fetch_optional(&mut *conn)
    .await?;
    match usable {
        None => return Err(StoreError::NotFound("business number")),
        Some(false) => return Err(Refusal::NumberCannotText.into()),
        Some(true) => {}
    }
    let (id, created) =
        sms_conversation(conn, open.org, open.from, &open.to, Some(open.me), open.now).await?;
    let conversation = loaded(conn, id).await?;
    if !conversation.has_participant(open.me) {
        // Only when the holder is disabled, which signs it out first.
        return Err(StoreError::NotFound("conversation"));
    }
    Ok(Committed {
        value: OpenedSms {
            conversation,
            created: created.is_some(),
        },
        events: created.into_iter().collect(),
    })
}

/// Marks a webhook as taken; false when it was taken before. A node taking
/// the same webhook at the same moment waits on this insert and then finds
/// it taken.
async fn first_time(
    conn: &mut PgConnection,
    connection: i64,
    key: &str,
    now: Timestamp,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO carrier_webhooks (connection_id, event_key, received_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(connection)
    .bind(key)
    .bind(now.0)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// The open groups on a business number that have outside participants,
/// for inbound routing.
async fn open_groups(conn: &mut PgConnection, number: NumberId) -> Result<Vec<OpenGroup>> {
    let rows = sqlx::query(
        "SELECT c.id, x.number,
                coalesce((SELECT max(m.created_at) FROM messages m WHERE m.conversation_id = c.id),
                         c.created_at)
         FROM conversations c JOIN external_participants x ON x.conversation_id = c.id
         WHERE c.business_number_id = $1 AND c.kind = 'group' AND x.left_seq IS NULL
         ORDER BY c.id",
    )
    .bind(number.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut groups: Vec<OpenGroup> = Vec::new();
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let number = e164(r.try_get::<&str, _>(1)?)?;
        let at: i64 = r.try_get(2)?;
        match groups.last_mut() {
            Some(g) if g.id.0 == id => g.externals.push(number),
            _ => groups.push(OpenGroup {
                id: ConversationId(id),
                externals: vec![number],
                last_activity_at: Timestamp(at),
            }),
        }
    }
    Ok(groups)
}

async fn accept_inbound(
    conn: &mut PgConnection,
    text: &InboundText,
) -> Result<Committed<InboundOutcome>> {
    // The number is read `FOR SHARE`, ahead of the stream lock, since the
    // text may open a conversation with the number's holders (see
    // `sms_conversation`).
    let number = sqlx::query(
        "SELECT n.id, n.org_id FROM business_numbers n
         WHERE n.number = $1 AND n.connection_id = $2 FOR SHARE",
    )
    .bind(text.to.as_str())
    .bind(text.connection.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(number) = number else {
        return Err(StoreError::NotFound("business number"));
    };
    let (number, org) = (NumberId(number.try_get(0)?), OrgId(number.try_get(1)?));
    lock_stream(conn, org).await?;
    if !first_time(conn, text.connection.0, &text.event_key, text.now).await? {
        return Ok(Committed {
            value: InboundOutcome::Duplicate,
            events: Vec::new(),
        });
    }
    let country = org_country(conn, org).await?;
    let sender = ExternalRef {
        display: text.from.display(country),
        number: text.from.clone(),
    };
    let mut events = Vec::new();
    let conversation = match route_inbound(&text.from, &open_groups(conn, number).await?) {
        Inbound::Group(id) => id,
        Inbound::Sms => {
            let (id, created) =
                sms_conversation(conn, org, number, &text.from, None, text.now).await?;
            events.extend(created);
            id
        }
    };
    let message = insert_message(
        conn,
        MessageRow {
            conversation,
            kind: MessageKind::Text,
            sender: None,
            external: Some(&sender),
            body: &text.text,
            attachments: &text.attachments,
            system: None,
            key: None,
            now: text.now,
        },
    )
    .await?;
    let recipients = current_ids(conn, conversation).await?;
    events.push(
        record(
            conn,
            org,
            Event::MessageCreated {
                message: message.clone(),
            },
            &recipients,
            text.now,
        )
        .await?,
    );
    if let Some(keyword) = Keyword::of(&text.text)
        && let Some(action) = change_opt_out(conn, number, &sender, keyword, text.now).await?
    {
        events.extend(announce_opt_out(conn, org, conversation, action, text.now).await?);
    }
    Ok(Committed {
        value: InboundOutcome::Stored(Box::new(message)),
        events,
    })
}

/// Writes a STOP or START from `who` to business number `number`; the
/// system action to announce when it changed anything.
pub(super) async fn change_opt_out(
    conn: &mut PgConnection,
    number: NumberId,
    who: &ExternalRef,
    keyword: Keyword,
    now: Timestamp,
) -> Result<Option<SystemAction>> {
    let (changed, action) = match keyword {
        Keyword::Help => return Ok(None),
        Keyword::Stop => (
            sqlx::query(
                "INSERT INTO opt_outs (business_number_id, number, keyword, at)
                 VALUES ($1, $2, 'stop', $3) ON CONFLICT DO NOTHING",
            )
            .bind(number.0)
            .bind(who.number.as_str())
            .bind(now.0)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            SystemAction::OptedOut {
                number: who.number.clone(),
                display: who.display.clone(),
            },
        ),
        Keyword::Start => (
            sqlx::query("DELETE FROM opt_outs WHERE business_number_id = $1 AND number = $2")
                .bind(number.0)
                .bind(who.number.as_str())
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            SystemAction::OptedIn {
                number: who.number.clone(),
                display: who.display.clone(),
            },
        ),
    };
    Ok((changed > 0).then_some(action))
}

/// Leaves the system message of an opt-out change in the conversation and
/// records it with the conversation's new state.
pub(super) async fn announce_opt_out(
    conn: &mut PgConnection,
    org: OrgId,
    conversation: ConversationId,
    action: SystemAction,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let conversation_now = loaded(conn, conversation).await?;
    let recipients = ids_of(&conversation_now);
    let message = system_message(conn, conversation, action, now).await?;
    Ok(vec![
        record(
            conn,
            org,
            Event::MessageCreated { message },
            &recipients,
            now,
        )
        .await?,
        record(
            conn,
            org,
            Event::ConversationUpdated {
                conversation: conversation_now,
            },
            &recipients,
            now,
        )
        .await?,
    ])
}

/// Moves the delivery carrying `carrier_message_id` to `status` if that is
/// forward, recording `delivery.updated`: `None` when no delivery carries
/// that id yet, `Some(None)` when the status does not move.
async fn apply_status(
    conn: &mut PgConnection,
    connection: i64,
    carrier_message_id: &str,
    status: DeliveryStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Option<Option<Recorded>>> {
    let delivery = sqlx::query(
        "SELECT message_id, recipient FROM deliveries
         WHERE connection_id = $1 AND carrier_message_id = $2",
    )
    .bind(connection)
    .bind(carrier_message_id)
    .fetch_optional(&mut *conn)
    .await?;
    match delivery {
        Some(row) => {
            let message = MessageId(row.try_get(0)?);
            let to: String = row.try_get(1)?;
            Ok(Some(
                move_delivery(conn, message, &to, status, reason, now).await?,
            ))
        }
        None => Ok(None),
    }
}

/// Moves the delivery of `message` to `to` on to `status` if that is
/// forward (the domain's rule), recording `delivery.updated` for the
/// conversation's participants; `None` when it does not move. The
/// delivery's row is locked while its status is read, so two nodes applying
/// reports at once each move it from the status the other left.
pub(super) async fn move_delivery(
    conn: &mut PgConnection,
    message: MessageId,
    to: &str,
    status: DeliveryStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Option<Recorded>> {
    let row = sqlx::query(
        "SELECT d.status, m.conversation_id, c.org_id
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         JOIN conversations c ON c.id = m.conversation_id
         WHERE d.message_id = $1 AND d.recipient = $2
         FOR UPDATE OF d",
    )
    .bind(message.0)
    .bind(to)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("delivery"))?;
    let current: &str = row.try_get(0)?;
    let conversation = ConversationId(row.try_get(1)?);
    let org = OrgId(row.try_get(2)?);
    let current = DeliveryStatus::parse(current)
        .ok_or_else(|| StoreError::Backend(format!("unknown delivery status {current}")))?;
    if !current.moves_to(status) {
        return Ok(None);
    }
    let reason = if status == DeliveryStatus::Failed {
        reason
    } else {
        None
    };
    sqlx::query(
        "UPDATE deliveries SET status = $3, reason = $4, updated_at = $5
         WHERE message_id = $1 AND recipient = $2",
    )
    .bind(message.0)
    .bind(to)
    .bind(status.as_str())
    .bind(reason)
    .bind(now.0)
    .execute(&mut *conn)
    .await?;
    let recipients = current_ids(conn, conversation).await?;
    Ok(Some(
        record(
            conn,
            org,
            Event::DeliveryUpdated {
                conversation_id: conversation,
                message_id: message,
                to: e164(to)?,
                status,
                reason: reason.map(str::to_owned),
            },
            &recipients,
            now,
        )
        .await?,
    ))
}

async fn record_status(
    conn: &mut PgConnection,
    report: &StatusReport,
) -> Result<Committed<StatusOutcome>> {
    let connection = report.connection.0;
    let org: Option<i64> =
        sqlx::query_scalar("SELECT org_id FROM carrier_connections WHERE id = $1")
            .bind(connection)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(org) = org else {
        return Err(StoreError::NotFound("carrier connection"));
    };
    lock_stream(conn, OrgId(org)).await?;
    if !first_time(conn, connection, &report.event_key, report.now).await? {
        return Ok(Committed {
            value: StatusOutcome::Duplicate,
            events: Vec::new(),
        });
    }
    match apply_status(
        conn,
        connection,
        &report.carrier_message_id,
        report.status,
        report.reason.as_deref(),
        report.now,
    )
    .await?
    {
        Some(Some(event)) => Ok(Committed {
            value: StatusOutcome::Moved,
            events: vec![event],
        }),
        Some(None) => Ok(Committed {
            value: StatusOutcome::Unchanged,
            events: Vec::new(),
        }),
        None => {
            sqlx::query(
                "INSERT INTO early_statuses (connection_id, carrier_message_id, status, reason, received_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(connection)
            .bind(&report.carrier_message_id)
            .bind(report.status.as_str())
            .bind(&report.reason)
            .bind(report.now.0)
            .execute(&mut *conn)
            .await?;
            Ok(Committed {
                value: StatusOutcome::Early,
                events: Vec::new(),
            })
        }
    }
}

/// Applies the statuses that arrived before the carrier's id was recorded.
/// The caller holds the organization's stream lock, as [`record_status`]
/// does before it looks for the id: a status taken on another node
/// meanwhile is either stored as early before this looks, or finds the id.
pub(super) async fn apply_early_statuses(
    conn: &mut PgConnection,
    connection: i64,
    carrier_message_id: &str,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let rows = sqlx::query(
        "DELETE FROM early_statuses WHERE connection_id = $1 AND carrier_message_id = $2
         RETURNING status, reason, received_at",
    )
    .bind(connection)
    .bind(carrier_message_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut early = Vec::with_capacity(rows.len());
    for r in rows {
        let status: String = r.try_get(0)?;
        let reason: Option<String> = r.try_get(1)?;
        let at: i64 = r.try_get(2)?;
        early.push((at, status, reason));
    }
    // In the order they arrived, as they would have applied on time.
    early.sort_by_key(|(at, _, _)| *at);
    let mut events = Vec::new();
    for (_, status, reason) in early {
        let Some(status) = DeliveryStatus::parse(&status) else {
            continue;
        };
        if let Some(Some(event)) = apply_status(
            conn,
            connection,
            carrier_message_id,
            status,
            reason.as_deref(),
            now,
        )
        .await?
        {
            events.push(event);
        }
    }
    Ok(events)
}

async fn update_attachment(
    conn: &mut PgConnection,
    message: MessageId,
    index: usize,
    attachment: &Attachment,
) -> Result<Committed<()>> {
    let org: Option<i64> = sqlx::query_scalar(
        "SELECT c.org_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1",
    )
    .bind(message.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(org) = org else {
        return Err(StoreError::NotFound("message"));
    };
    let org = OrgId(org);
    lock_stream(conn, org).await?;
    // Locked, so that two images of one message fetched on two nodes each
    // keep the other's.
    sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE")
        .bind(message.0)
        .execute(&mut *conn)
        .await?;
    let Some(mut current) = message_by_id(conn, message).await? else {
        return Err(StoreError::NotFound("message"));
    };
    let Some(slot) = current.attachments.get_mut(index) else {
        return Err(StoreError::NotFound("attachment"));
    };
    *slot = attachment.clone();
    let json = serde_json::to_string(&current.attachments)
        .map_err(|e| StoreError::Backend(format!("cannot encode attachments: {e}")))?;
    sqlx::query("UPDATE messages SET attachments = $2 WHERE id = $1")
        .bind(message.0)
        .bind(json)
        .execute(&mut *conn)
        .await?;
    if attachment.state == AttachmentState::Ready {
        link_media(conn, message, std::slice::from_ref(attachment)).await?;
    }
    let recipients = current_ids(conn, current.conversation_id).await?;
    let now = current.created_at;
    let event = record(
        conn,
        org,
        Event::MessageUpdated { message: current },
        &recipients,
        now,
    )
    .await?;
    Ok(Committed {
        value: (),
        events: vec![event],
    })
}

async fn add_media(conn: &mut PgConnection, r: &MediaRecord, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO media (org_id, id, uploaded_by, content_type, width, height, size,
                            carrier_copy, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(r.org.0)
    .bind(&r.id)
    .bind(r.uploaded_by.map(|e| e.0))
    .bind(&r.content_type)
    .bind(dimension(r.width)?)
    .bind(dimension(r.height)?)
    .bind(i64::try_from(r.size).map_err(|_| StoreError::Backend("media too large".into()))?)
    .bind(&r.carrier_copy)
    .bind(now.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn dimension(d: u32) -> Result<i32> {
    i32::try_from(d).map_err(|_| StoreError::Backend(format!("an image {d} pixels across")))
}

/// The organization of a carrier connection.
const CONNECTION_ORG: &str = "SELECT org_id FROM carrier_connections WHERE id = $1";

#[async_trait::async_trait]
impl Sms for PgStore {
    async fn open_sms(&self, open: OpenSms) -> Result<Committed<OpenedSms>> {
        self.write(Some(open.org), move |c| {
            Box::pin(async move { open_sms(c, &open).await })
        })
        .await
    }

    async fn accept_inbound(&self, text: InboundText) -> Result<Committed<InboundOutcome>> {
        let org = self.org_found_by(CONNECTION_ORG, text.connection.0).await?;
        self.write(org, move |c| {
            Box::pin(async move { accept_inbound(c, &text).await })
        })
        .await
    }

    async fn record_status(&self, report: StatusReport) -> Result<Committed<StatusOutcome>> {
        let org = self
            .org_found_by(CONNECTION_ORG, report.connection.0)
            .await?;
        self.write(org, move |c| {
            Box::pin(async move { record_status(c, &report).await })
        })
        .await
    }

    async fn update_attachment(
        &self,
        message: MessageId,
        index: usize,
        attachment: Attachment,
    ) -> Result<Committed<()>> {
        let org = self
            .org_found_by(
                "SELECT c.org_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.id = $1",
                message.0,
            )
            .await?;
        self.write(org, move |c| {
            Box::pin(async move { update_attachment(c, message, index, &attachment).await })
        })
        .await
    }

    async fn may_see_media(&self, me: ExtensionId, media_id: String) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM message_media mm
                            JOIN messages m ON m.id = mm.message_id
                            JOIN participants p ON p.conversation_id = m.conversation_id
                            WHERE mm.media_id = $2 AND p.extension_id = $1 AND p.left_seq IS NULL)",
        )
        .bind(me.0)
        .bind(media_id)
        .fetch_one(self.pool())
        .await?)
    }

    async fn add_media(&self, record: MediaRecord, now: Timestamp) -> Result<()> {
        self.write(Some(record.org), move |c| {
            Box::pin(async move { add_media(c, &record, now).await })
        })
        .await
    }

    async fn media_record(&self, org: OrgId, id: String) -> Result<Option<MediaRecord>> {
        let row = sqlx::query(
            "SELECT uploaded_by, content_type, width, height, size, carrier_copy
             FROM media WHERE org_id = $1 AND id = $2",
        )
        .bind(org.0)
        .bind(&id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let width: i32 = r.try_get(2)?;
        let height: i32 = r.try_get(3)?;
        let size: i64 = r.try_get(4)?;
        Ok(Some(MediaRecord {
            org,
            id,
            uploaded_by: r.try_get::<Option<i64>, _>(0)?.map(ExtensionId),
            content_type: r.try_get(1)?,
            width: width.max(0) as u32,
            height: height.max(0) as u32,
            size: size.max(0) as u64,
            carrier_copy: r.try_get(5)?,
        }))
    }
}
