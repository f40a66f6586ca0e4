//! Texting outside numbers: SMS conversations, the outside participants of
//! conversations, texts and statuses from carriers and opt-outs (the
//! [`Sms`] capability). Sending goes through `messages::post_message`,
//! which writes the outbox rows (`outbox`).

use super::SqliteStore;
use super::conversations::{add_participants, ids_of, load, loaded, loaded_without};
use super::events::{next_seq, record};
use super::messages::{MessageRow, insert_message, link_media, message_by_id, system_message};
use crate::{
    Committed, InboundOutcome, InboundText, MediaRecord, OpenSms, OpenedSms, Recorded, Refusal,
    Result, Sms, StatusOutcome, StatusReport, StoreError,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use switchboard_domain::conversation::sms_key;
use switchboard_domain::delivery::{Inbound, OpenGroup, route_inbound};
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::sms::Keyword;
use switchboard_domain::{
    Attachment, AttachmentState, BusinessNumberRef, ConversationId, ConversationKind,
    DeliveryStatus, Event, ExtensionId, ExternalParticipant, ExternalRef, MessageId, MessageKind,
    NumberId, OrgId, SystemAction, Timestamp,
};

/// An organization's country from its stored code; a code that no longer
/// parses (it was checked when stored) reads as the United States rather
/// than failing every read.
pub(super) fn country(code: &str) -> Country {
    Country::parse(code)
        .or_else(|_| Country::parse("US"))
        .expect("US is a country")
}

pub(super) fn org_country(conn: &Connection, org: OrgId) -> Result<Country> {
    let code: String = conn
        .prepare_cached("SELECT default_country FROM organizations WHERE id = ?1")?
        .query_row([org.0], |r| r.get(0))?;
    Ok(country(&code))
}

pub(super) fn org_country_of_conversation(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<Country> {
    let code: String = conn
        .prepare_cached(
            "SELECT o.default_country FROM conversations c JOIN organizations o ON o.id = c.org_id
             WHERE c.id = ?1",
        )?
        .query_row([conversation.0], |r| r.get(0))?;
    Ok(country(&code))
}

fn e164(s: &str) -> Result<E164> {
    E164::parse_strict(s).map_err(|e| StoreError::Backend(format!("stored number {s:?}: {e}")))
}

/// The outside numbers currently in a conversation, in the order they
/// joined, with their opt-out from the conversation's business number.
pub(super) fn externals(
    conn: &Connection,
    conversation: ConversationId,
    number: NumberId,
    country: Country,
) -> Result<Vec<ExternalParticipant>> {
    let mut stmt = conn.prepare_cached(
        "SELECT x.number, EXISTS (SELECT 1 FROM opt_outs o
                                  WHERE o.business_number_id = ?2 AND o.number = x.number)
         FROM external_participants x
         WHERE x.conversation_id = ?1 AND x.left_seq IS NULL ORDER BY x.joined_seq, x.number",
    )?;
    let rows = stmt
        .query_map(params![conversation.0, number.0], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(number, opted_out)| {
            let number = e164(&number)?;
            Ok(ExternalParticipant {
                display: number.display(country),
                number,
                opted_out,
            })
        })
        .collect()
}

pub(super) fn business_number_ref(
    conn: &Connection,
    id: NumberId,
    country: Country,
) -> Result<Option<BusinessNumberRef>> {
    let number: Option<String> = conn
        .prepare_cached("SELECT number FROM business_numbers WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?;
    number
        .map(|n| {
            let number = e164(&n)?;
            Ok(BusinessNumberRef {
                id,
                display: number.display(country),
                number,
            })
        })
        .transpose()
}

/// A business number as sending needs it.
pub(super) struct SendingNumber {
    pub id: NumberId,
    pub number: E164,
    pub connection: Option<i64>,
    pub sms_enabled: bool,
}

/// The business number a conversation texts from, if it has one.
pub(super) fn sending_number(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<Option<(ConversationKind, SendingNumber)>> {
    let row = conn
        .prepare_cached(
            "SELECT c.kind, n.id, n.number, n.connection_id, n.sms_enabled
             FROM conversations c JOIN business_numbers n ON n.id = c.business_number_id
             WHERE c.id = ?1",
        )?
        .query_row([conversation.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .optional()?;
    let Some((kind, id, number, connection, sms_enabled)) = row else {
        return Ok(None);
    };
    let kind = ConversationKind::parse(&kind)
        .ok_or_else(|| StoreError::Backend(format!("unknown conversation kind {kind}")))?;
    Ok(Some((
        kind,
        SendingNumber {
            id: NumberId(id),
            number: e164(&number)?,
            connection,
            sms_enabled,
        },
    )))
}

/// The extensions that have a business number, who share its SMS
/// conversations.
fn holders(conn: &Connection, number: NumberId) -> Result<Vec<ExtensionId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.extension_id FROM number_assignments a
         JOIN extensions e ON e.id = a.extension_id
         WHERE a.number_id = ?1 AND e.disabled = 0 ORDER BY a.extension_id",
    )?;
    let rows = stmt.query_map([number.0], |r| Ok(ExtensionId(r.get(0)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The SMS conversation of a pair of numbers, created with every holder of
/// the business number when it does not exist yet. Returns it, and the
/// event of its creation when it was made.
fn sms_conversation(
    conn: &Connection,
    org: OrgId,
    number: NumberId,
    external: &E164,
    creator: Option<ExtensionId>,
    now: Timestamp,
) -> Result<(ConversationId, Option<Recorded>)> {
    let key = sms_key(number, external);
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM conversations WHERE sms_key = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok((ConversationId(id), None));
    }
    conn.prepare_cached(
        "INSERT INTO conversations (org_id, kind, business_number_id, sms_key, created_by, created_at)
         VALUES (?1, 'sms', ?2, ?3, ?4, ?5)",
    )?
    .execute(params![org.0, number.0, key, creator.map(|c| c.0), now.0])?;
    let id = ConversationId(conn.last_insert_rowid());
    let seq = next_seq(conn)?;
    add_participants(conn, id, &holders(conn, number)?, seq)?;
    conn.prepare_cached(
        "INSERT INTO external_participants (conversation_id, number, joined_seq) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id.0, external.as_str(), seq])?;
    let conversation = loaded(conn, id)?;
    let recipients = ids_of(&conversation);
    let event = record(
        conn,
        Event::ConversationCreated { conversation },
        &recipients,
        now,
    )?;
    Ok((id, Some(event)))
}

fn open_sms(conn: &Connection, open: &OpenSms) -> Result<Committed<OpenedSms>> {
    let usable: Option<bool> = conn
        .prepare_cached(
            "SELECT n.sms_enabled AND n.connection_id IS NOT NULL
             FROM number_assignments a JOIN business_numbers n ON n.id = a.number_id
             WHERE a.number_id = ?1 AND a.extension_id = ?2 AND n.org_id = ?3",
        )?
        .query_row(params![open.from.0, open.me.0, open.org.0], |r| r.get(0))
        .optional()?;
    match usable {
        None => return Err(StoreError::NotFound("business number")),
        Some(false) => return Err(Refusal::NumberCannotText.into()),
        Some(true) => {}
    }
    let (id, created) =
        sms_conversation(conn, open.org, open.from, &open.to, Some(open.me), open.now)?;
    let conversation = loaded(conn, id)?;
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

/// Marks a webhook as taken; false when it was taken before.
fn first_time(conn: &Connection, connection: i64, key: &str, now: Timestamp) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO carrier_webhooks (connection_id, event_key, received_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![connection, key, now.0])?
        == 1)
}

/// The open groups on a business number that have outside participants,
/// for inbound routing.
fn open_groups(conn: &Connection, number: NumberId) -> Result<Vec<OpenGroup>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, x.number,
                coalesce((SELECT max(m.created_at) FROM messages m WHERE m.conversation_id = c.id),
                         c.created_at)
         FROM conversations c JOIN external_participants x ON x.conversation_id = c.id
         WHERE c.business_number_id = ?1 AND c.kind = 'group' AND x.left_seq IS NULL
         ORDER BY c.id",
    )?;
    let rows = stmt
        .query_map([number.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut groups: Vec<OpenGroup> = Vec::new();
    for (id, number, at) in rows {
        let number = e164(&number)?;
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

/// Who hears of a change to a conversation now: its current participants.
pub(super) fn current_ids(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<Arc<[ExtensionId]>> {
    let mut stmt = conn.prepare_cached(
        "SELECT extension_id FROM participants WHERE conversation_id = ?1 AND left_seq IS NULL",
    )?;
    let ids = stmt
        .query_map([conversation.0], |r| Ok(ExtensionId(r.get(0)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids.into())
}

fn accept_inbound(conn: &Connection, text: &InboundText) -> Result<Committed<InboundOutcome>> {
    let number = conn
        .prepare_cached(
            "SELECT n.id, n.org_id FROM business_numbers n
             WHERE n.number = ?1 AND n.connection_id = ?2",
        )?
        .query_row(params![text.to.as_str(), text.connection.0], |r| {
            Ok((NumberId(r.get(0)?), OrgId(r.get(1)?)))
        })
        .optional()?;
    let Some((number, org)) = number else {
        return Err(StoreError::NotFound("business number"));
    };
    if !first_time(conn, text.connection.0, &text.event_key, text.now)? {
        return Ok(Committed {
            value: InboundOutcome::Duplicate,
            events: Vec::new(),
        });
    }
    let mut events = Vec::new();
    let conversation = match route_inbound(&text.from, &open_groups(conn, number)?) {
        Inbound::Group(id) => id,
        Inbound::Sms => {
            let (id, created) = sms_conversation(conn, org, number, &text.from, None, text.now)?;
            events.extend(created);
            id
        }
    };
    let country = org_country(conn, org)?;
    let sender = ExternalRef {
        display: text.from.display(country),
        number: text.from.clone(),
    };
    let recipients = current_ids(conn, conversation)?;
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
    )?;
    events.push(record(
        conn,
        Event::MessageCreated {
            message: message.clone(),
        },
        &recipients,
        text.now,
    )?);
    if let Some(keyword) = Keyword::of(&text.text) {
        events.extend(opt_out_change(
            conn,
            conversation,
            number,
            &sender,
            keyword,
            text.now,
        )?);
    }
    Ok(Committed {
        value: InboundOutcome::Stored(Box::new(message)),
        events,
    })
}

/// Records a STOP or START from `who` to business number `number`, with a
/// system message and the conversation's new state, when it changes
/// anything.
pub(super) fn opt_out_change(
    conn: &Connection,
    conversation: ConversationId,
    number: NumberId,
    who: &ExternalRef,
    keyword: Keyword,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let (changed, action) = match keyword {
        Keyword::Help => return Ok(Vec::new()),
        Keyword::Stop => (
            conn.prepare_cached(
                "INSERT INTO opt_outs (business_number_id, number, keyword, at) VALUES (?1, ?2, 'stop', ?3)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![number.0, who.number.as_str(), now.0])?,
            SystemAction::OptedOut {
                number: who.number.clone(),
                display: who.display.clone(),
            },
        ),
        Keyword::Start => (
            conn.prepare_cached("DELETE FROM opt_outs WHERE business_number_id = ?1 AND number = ?2")?
                .execute(params![number.0, who.number.as_str()])?,
            SystemAction::OptedIn {
                number: who.number.clone(),
                display: who.display.clone(),
            },
        ),
    };
    if changed == 0 {
        return Ok(Vec::new());
    }
    let conversation_now = loaded(conn, conversation)?;
    let recipients = ids_of(&conversation_now);
    let message = system_message(conn, conversation, action, now)?;
    Ok(vec![
        record(conn, Event::MessageCreated { message }, &recipients, now)?,
        record(
            conn,
            Event::ConversationUpdated {
                conversation: conversation_now,
            },
            &recipients,
            now,
        )?,
    ])
}

/// Moves the delivery carrying `carrier_message_id` to `status` if that is
/// forward, recording `delivery.updated`: `None` when no delivery carries
/// that id yet, `Some(None)` when the status does not move.
fn apply_status(
    conn: &Connection,
    connection: i64,
    carrier_message_id: &str,
    status: DeliveryStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Option<Option<Recorded>>> {
    let delivery: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT message_id, recipient FROM deliveries
             WHERE connection_id = ?1 AND carrier_message_id = ?2",
        )?
        .query_row(params![connection, carrier_message_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match delivery {
        Some((message, to)) => Ok(Some(move_delivery(
            conn,
            MessageId(message),
            &to,
            status,
            reason,
            now,
        )?)),
        None => Ok(None),
    }
}

/// Moves the delivery of `message` to `to` on to `status` if that is
/// forward (the domain's rule), recording `delivery.updated` for the
/// conversation's participants; `None` when it does not move.
pub(super) fn move_delivery(
    conn: &Connection,
    message: MessageId,
    to: &str,
    status: DeliveryStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Option<Recorded>> {
    let (current, conversation): (String, i64) = conn
        .prepare_cached(
            "SELECT d.status, m.conversation_id
             FROM deliveries d JOIN messages m ON m.id = d.message_id
             WHERE d.message_id = ?1 AND d.recipient = ?2",
        )?
        .query_row(params![message.0, to], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound("delivery"))?;
    let current = DeliveryStatus::parse(&current)
        .ok_or_else(|| StoreError::Backend(format!("unknown delivery status {current}")))?;
    if !current.moves_to(status) {
        return Ok(None);
    }
    let reason = if status == DeliveryStatus::Failed {
        reason
    } else {
        None
    };
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?3, reason = ?4, updated_at = ?5
         WHERE message_id = ?1 AND recipient = ?2",
    )?
    .execute(params![message.0, to, status.as_str(), reason, now.0])?;
    let conversation = ConversationId(conversation);
    let recipients = current_ids(conn, conversation)?;
    Ok(Some(record(
        conn,
        Event::DeliveryUpdated {
            conversation_id: conversation,
            message_id: message,
            to: e164(to)?,
            status,
            reason: reason.map(str::to_owned),
        },
        &recipients,
        now,
    )?))
}

fn record_status(conn: &Connection, report: &StatusReport) -> Result<Committed<StatusOutcome>> {
    let connection = report.connection.0;
    if !first_time(conn, connection, &report.event_key, report.now)? {
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
    )? {
        Some(Some(event)) => Ok(Committed {
            value: StatusOutcome::Moved,
            events: vec![event],
        }),
        Some(None) => Ok(Committed {
            value: StatusOutcome::Unchanged,
            events: Vec::new(),
        }),
        None => {
            conn.prepare_cached(
                "INSERT INTO early_statuses (connection_id, carrier_message_id, status, reason, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                connection,
                report.carrier_message_id,
                report.status.as_str(),
                report.reason,
                report.now.0
            ])?;
            Ok(Committed {
                value: StatusOutcome::Early,
                events: Vec::new(),
            })
        }
    }
}

/// Applies the statuses that arrived before the carrier's id was recorded.
pub(super) fn apply_early_statuses(
    conn: &Connection,
    connection: i64,
    carrier_message_id: &str,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM early_statuses WHERE connection_id = ?1 AND carrier_message_id = ?2
         RETURNING status, reason",
    )?;
    let early = stmt
        .query_map(params![connection, carrier_message_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut events = Vec::new();
    for (status, reason) in early {
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
        )? {
            events.push(event);
        }
    }
    Ok(events)
}

fn update_attachment(
    conn: &Connection,
    message: MessageId,
    index: usize,
    attachment: &Attachment,
) -> Result<Committed<()>> {
    let Some(mut current) = message_by_id(conn, message)? else {
        return Err(StoreError::NotFound("message"));
    };
    let Some(slot) = current.attachments.get_mut(index) else {
        return Err(StoreError::NotFound("attachment"));
    };
    *slot = attachment.clone();
    let json = serde_json::to_string(&current.attachments)
        .map_err(|e| StoreError::Backend(format!("cannot encode attachments: {e}")))?;
    conn.prepare_cached("UPDATE messages SET attachments = ?2 WHERE id = ?1")?
        .execute(params![message.0, json])?;
    if attachment.state == AttachmentState::Ready {
        link_media(conn, message, std::slice::from_ref(attachment))?;
    }
    let recipients = current_ids(conn, current.conversation_id)?;
    let now = current.created_at;
    let event = record(
        conn,
        Event::MessageUpdated { message: current },
        &recipients,
        now,
    )?;
    Ok(Committed {
        value: (),
        events: vec![event],
    })
}

fn may_see_media(conn: &Connection, me: ExtensionId, media_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM message_media mm
                            JOIN messages m ON m.id = mm.message_id
                            JOIN participants p ON p.conversation_id = m.conversation_id
                            WHERE mm.media_id = ?2 AND p.extension_id = ?1 AND p.left_seq IS NULL)",
        )?
        .query_row(params![me.0, media_id], |r| r.get(0))?)
}

/// Lets the extensions that gain or lose a business number into or out of
/// its SMS conversations, with the events that tell them.
pub(super) fn sync_holders(
    conn: &Connection,
    number: NumberId,
    extension: ExtensionId,
    holds: bool,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let ids = conn
        .prepare_cached(
            "SELECT id FROM conversations WHERE business_number_id = ?1 AND kind = 'sms' ORDER BY id",
        )?
        .query_map([number.0], |r| Ok(ConversationId(r.get(0)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut events = Vec::new();
    for id in ids {
        let Some((before, _)) = load(conn, id)? else {
            continue;
        };
        let member = before.has_participant(extension);
        if member == holds {
            continue;
        }
        let mut audience: Vec<ExtensionId> = before.participants.iter().map(|p| p.id).collect();
        if holds {
            add_participants(conn, id, &[extension], next_seq(conn)?)?;
            audience.push(extension);
            let after = loaded(conn, id)?;
            events.push(record(
                conn,
                Event::ConversationUpdated {
                    conversation: after,
                },
                &Arc::from(audience),
                now,
            )?);
        } else {
            let after = loaded_without(conn, id, &[extension])?;
            let event = record(
                conn,
                Event::ConversationUpdated {
                    conversation: after,
                },
                &Arc::from(audience),
                now,
            )?;
            conn.prepare_cached(
                "UPDATE participants SET left_seq = ?3 WHERE conversation_id = ?1 AND extension_id = ?2",
            )?
            .execute(params![id.0, extension.0, event.cursor.0])?;
            conn.prepare_cached(
                "UPDATE memberships SET left_seq = ?3
                 WHERE conversation_id = ?1 AND extension_id = ?2 AND left_seq IS NULL",
            )?
            .execute(params![id.0, extension.0, event.cursor.0])?;
            events.push(event);
        }
    }
    Ok(events)
}

fn add_media(conn: &Connection, r: &MediaRecord, now: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO media (org_id, id, uploaded_by, content_type, width, height, size,
                            carrier_copy, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        r.org.0,
        r.id,
        r.uploaded_by.map(|e| e.0),
        r.content_type,
        r.width,
        r.height,
        r.size as i64,
        r.carrier_copy,
        now.0
    ])?;
    Ok(())
}

fn media_record(conn: &Connection, org: OrgId, id: &str) -> Result<Option<MediaRecord>> {
    Ok(conn
        .prepare_cached(
            "SELECT uploaded_by, content_type, width, height, size, carrier_copy
             FROM media WHERE org_id = ?1 AND id = ?2",
        )?
        .query_row(params![org.0, id], |r| {
            Ok(MediaRecord {
                org,
                id: id.to_owned(),
                uploaded_by: r.get::<_, Option<i64>>(0)?.map(ExtensionId),
                content_type: r.get(1)?,
                width: r.get(2)?,
                height: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
                carrier_copy: r.get(5)?,
            })
        })
        .optional()?)
}

#[async_trait::async_trait]
impl Sms for SqliteStore {
    async fn add_media(&self, record: MediaRecord, now: Timestamp) -> Result<()> {
        self.write(move |c| add_media(c, &record, now)).await
    }

    async fn media_record(&self, org: OrgId, id: String) -> Result<Option<MediaRecord>> {
        self.read(move |c| media_record(c, org, &id)).await
    }

    async fn open_sms(&self, open: OpenSms) -> Result<Committed<OpenedSms>> {
        self.write(move |c| open_sms(c, &open)).await
    }

    async fn accept_inbound(&self, text: InboundText) -> Result<Committed<InboundOutcome>> {
        self.write(move |c| accept_inbound(c, &text)).await
    }

    async fn record_status(&self, report: StatusReport) -> Result<Committed<StatusOutcome>> {
        self.write(move |c| record_status(c, &report)).await
    }

    async fn update_attachment(
        &self,
        message: MessageId,
        index: usize,
        attachment: Attachment,
    ) -> Result<Committed<()>> {
        self.write(move |c| update_attachment(c, message, index, &attachment))
            .await
    }

    async fn may_see_media(&self, me: ExtensionId, media_id: String) -> Result<bool> {
        self.read(move |c| may_see_media(c, me, &media_id)).await
    }
}
