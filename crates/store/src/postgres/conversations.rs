//! Conversations on PostgreSQL: direct chats and groups, their participants
//! and membership periods, and the [`Conversations`] capability (whose
//! messages and read positions are in `messages`, sending in `sends`,
//! groups' creation and edits in `groups`).
//!
//! Membership periods hold event cursors, and here a cursor is known only
//! once its event is recorded: a change records its event first and then
//! writes the membership rows with the recorded cursor. What must hold with
//! several nodes is in the database: one direct chat per pair by the unique
//! `direct_key`, and a group's edits one at a time by a lock on the group,
//! with the participant rows they write locked before any event is
//! recorded.

use super::PgStore;
use super::events::record;
use super::groups::{create_group, edit_group};
use super::messages::{self, country, e164, message_from_row, select_messages};
use super::sends;
use crate::{
    Committed, ConversationSummary, Conversations, EditGroup, MarkRead, NewGroup, NewMessage,
    OpenDirect, OpenedDirect, Posted, Receipt, Result, StoreError,
};
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_domain::conversation::direct_key;
use switchboard_domain::phone::Country;
use switchboard_domain::{
    BusinessNumberRef, Conversation, ConversationId, ConversationKind, Event, ExtensionId,
    ExtensionRef, ExternalParticipant, HistoryPage, Message, MessageId, NumberId, OrgId, Timestamp,
};

/// Every current participant's read position, by extension number.
pub(super) async fn read_positions(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Vec<Receipt>> {
    let rows = sqlx::query(
        "SELECT e.id, e.name, p.last_read_message_id FROM participants p
         JOIN extensions e ON e.id = p.extension_id
         WHERE p.conversation_id = $1 AND p.left_seq IS NULL
         ORDER BY length(e.number), e.number",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Receipt {
                extension_id: ExtensionId(r.try_get(0)?),
                name: r.try_get(1)?,
                last_read_message_id: MessageId(r.try_get(2)?),
            })
        })
        .collect()
}

/// The current participants of each of `ids`, by extension number.
async fn participants_of(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<ExtensionRef>>> {
    let rows = sqlx::query(
        "SELECT p.conversation_id, e.id, e.number, e.name FROM participants p
         JOIN extensions e ON e.id = p.extension_id
         WHERE p.conversation_id = ANY($1) AND p.left_seq IS NULL
         ORDER BY p.conversation_id, length(e.number), e.number",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_conversation: HashMap<i64, Vec<ExtensionRef>> = HashMap::new();
    for r in rows {
        by_conversation
            .entry(r.try_get(0)?)
            .or_default()
            .push(ExtensionRef {
                id: ExtensionId(r.try_get(1)?),
                number: r.try_get(2)?,
                name: r.try_get(3)?,
            });
    }
    Ok(by_conversation)
}

/// Who hears of a change to a conversation now: its current participants.
#[allow(dead_code, reason = "for the SMS capability's changes")]
pub(super) async fn current_ids(
    conn: &mut PgConnection,
    conversation: ConversationId,
) -> Result<Arc<[ExtensionId]>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT extension_id FROM participants WHERE conversation_id = $1 AND left_seq IS NULL",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(ExtensionId).collect())
}

/// The outside numbers currently in each of `ids` (conversations with a
/// business number), in the order they joined, with their opt-out from the
/// conversation's business number.
async fn externals_of(
    conn: &mut PgConnection,
    ids: &[i64],
    country_of: impl Fn(i64) -> Country,
) -> Result<HashMap<i64, Vec<ExternalParticipant>>> {
    let rows = sqlx::query(
        "SELECT x.conversation_id, x.number,
                EXISTS (SELECT 1 FROM opt_outs o
                        WHERE o.business_number_id = c.business_number_id AND o.number = x.number)
         FROM external_participants x JOIN conversations c ON c.id = x.conversation_id
         WHERE x.conversation_id = ANY($1) AND x.left_seq IS NULL
         ORDER BY x.conversation_id, x.joined_seq, x.number",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_conversation: HashMap<i64, Vec<ExternalParticipant>> = HashMap::new();
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let number: String = r.try_get(1)?;
        let number = e164(&number)?;
        by_conversation
            .entry(id)
            .or_default()
            .push(ExternalParticipant {
                display: number.display(country_of(id)),
                number,
                opted_out: r.try_get(2)?,
            });
    }
    Ok(by_conversation)
}

/// The outside numbers currently in a conversation, in the order they
/// joined, with their opt-out from business number `number`.
pub(super) async fn externals(
    conn: &mut PgConnection,
    conversation: ConversationId,
    number: NumberId,
    country: Country,
) -> Result<Vec<ExternalParticipant>> {
    let rows = sqlx::query(
        "SELECT x.number, EXISTS (SELECT 1 FROM opt_outs o
                                  WHERE o.business_number_id = $2 AND o.number = x.number)
         FROM external_participants x
         WHERE x.conversation_id = $1 AND x.left_seq IS NULL ORDER BY x.joined_seq, x.number",
    )
    .bind(conversation.0)
    .bind(number.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let number: String = r.try_get(0)?;
            let number = e164(&number)?;
            Ok(ExternalParticipant {
                display: number.display(country),
                number,
                opted_out: r.try_get(1)?,
            })
        })
        .collect()
}

/// Loads conversations with their participants and organizations, in the
/// order of `ids` (those that do not exist are left out), in three
/// statements however many are asked for.
pub(super) async fn load_many(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<Vec<(Conversation, OrgId)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT c.id, c.kind, c.name, c.created_at,
                coalesce((SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id
                          ORDER BY m.id DESC LIMIT 1), c.created_at),
                c.org_id, c.business_number_id, o.default_country, n.number
         FROM conversations c JOIN organizations o ON o.id = c.org_id
         LEFT JOIN business_numbers n ON n.id = c.business_number_id
         WHERE c.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut found: HashMap<i64, (Conversation, OrgId, Country)> = HashMap::new();
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let kind: String = r.try_get(1)?;
        let kind = ConversationKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown conversation kind {kind}")))?;
        let code: String = r.try_get(7)?;
        let country = country(&code);
        let business_number = match (
            r.try_get::<Option<i64>, _>(6)?,
            r.try_get::<Option<String>, _>(8)?,
        ) {
            (Some(number_id), Some(number)) => {
                let number = e164(&number)?;
                Some(BusinessNumberRef {
                    id: NumberId(number_id),
                    display: number.display(country),
                    number,
                })
            }
            _ => None,
        };
        let conversation = Conversation {
            id: ConversationId(id),
            kind,
            name: r.try_get(2)?,
            participants: Vec::new(),
            externals: Vec::new(),
            business_number,
            created_at: Timestamp(r.try_get(3)?),
            last_activity_at: Timestamp(r.try_get(4)?),
        };
        found.insert(id, (conversation, OrgId(r.try_get(5)?), country));
    }
    let mut participants = participants_of(conn, ids).await?;
    let texting: Vec<i64> = found
        .iter()
        .filter(|(_, (c, _, _))| c.business_number.is_some())
        .map(|(&id, _)| id)
        .collect();
    let mut externals = if texting.is_empty() {
        HashMap::new()
    } else {
        externals_of(conn, &texting, |id| {
            found
                .get(&id)
                .map_or(Country::US, |(_, _, country)| *country)
        })
        .await?
    };
    Ok(ids
        .iter()
        .filter_map(|id| {
            let (mut conversation, org, _) = found.remove(id)?;
            conversation.participants = participants.remove(id).unwrap_or_default();
            conversation.externals = externals.remove(id).unwrap_or_default();
            Some((conversation, org))
        })
        .collect())
}

/// Loads a conversation with its participants, with its organization.
pub(super) async fn load(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Option<(Conversation, OrgId)>> {
    Ok(load_many(conn, &[id.0]).await?.pop())
}

pub(super) async fn loaded(conn: &mut PgConnection, id: ConversationId) -> Result<Conversation> {
    load(conn, id)
        .await?
        .map(|(c, _)| c)
        .ok_or(StoreError::NotFound("conversation"))
}

/// The conversation as it will be once `leaving` are gone.
pub(super) async fn loaded_without(
    conn: &mut PgConnection,
    id: ConversationId,
    leaving: &[ExtensionId],
) -> Result<Conversation> {
    let mut c = loaded(conn, id).await?;
    c.participants.retain(|p| !leaving.contains(&p.id));
    Ok(c)
}

pub(super) fn ids_of(conversation: &Conversation) -> Arc<[ExtensionId]> {
    conversation.participants.iter().map(|p| p.id).collect()
}

async fn is_participant(
    conn: &mut PgConnection,
    conversation: ConversationId,
    ext: ExtensionId,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM participants
                        WHERE conversation_id = $1 AND extension_id = $2 AND left_seq IS NULL)",
    )
    .bind(conversation.0)
    .bind(ext.0)
    .fetch_one(&mut *conn)
    .await?)
}

async fn conversation_for(
    conn: &mut PgConnection,
    me: ExtensionId,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    if !is_participant(conn, id, me).await? {
        return Ok(None);
    }
    Ok(load(conn, id).await?.map(|(c, _)| c))
}

async fn conversations_of(
    conn: &mut PgConnection,
    me: ExtensionId,
) -> Result<Vec<ConversationSummary>> {
    let rows = sqlx::query(
        "SELECT c.id, last.id,
                (SELECT count(*) FROM (
                     SELECT 1 FROM messages m
                     WHERE m.conversation_id = c.id AND m.id > p.last_read_message_id
                       AND m.kind = 'text' AND m.sender_id IS DISTINCT FROM $1
                     LIMIT $2) u)
         FROM participants p JOIN conversations c ON c.id = p.conversation_id
         LEFT JOIN LATERAL (SELECT m.id, m.created_at FROM messages m
                            WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1) last
                ON true
         WHERE p.extension_id = $1 AND p.left_seq IS NULL
         ORDER BY coalesce(last.created_at, c.created_at) DESC, c.id DESC",
    )
    .bind(me.0)
    .bind(messages::UNREAD_COUNT_CAP)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut last_ids = Vec::new();
    let mut unread: HashMap<i64, u32> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get(0)?;
        ids.push(id);
        if let Some(last) = r.try_get::<Option<i64>, _>(1)? {
            last_ids.push(last);
        }
        unread.insert(id, messages::count_u32(r.try_get(2)?));
    }
    let mut last: HashMap<i64, Message> = HashMap::with_capacity(last_ids.len());
    if !last_ids.is_empty() {
        let rows = sqlx::query(select_messages!("WHERE m.id = ANY($1)"))
            .bind(&last_ids)
            .fetch_all(&mut *conn)
            .await?;
        for r in &rows {
            let m = message_from_row(r)?;
            last.insert(m.conversation_id.0, m);
        }
    }
    Ok(load_many(conn, &ids)
        .await?
        .into_iter()
        .map(|(conversation, _)| {
            let id = conversation.id.0;
            ConversationSummary {
                last_message: last.remove(&id),
                unread_count: unread.get(&id).copied().unwrap_or(0),
                conversation,
            }
        })
        .collect())
}

/// The extensions `ids`, which must all be enabled extensions of `org`,
/// by extension number.
pub(super) async fn usable_extensions(
    conn: &mut PgConnection,
    org: OrgId,
    ids: &[ExtensionId],
) -> Result<Vec<ExtensionRef>> {
    let raw: Vec<i64> = ids.iter().map(|e| e.0).collect();
    let rows = sqlx::query(
        "SELECT id, number, name FROM extensions
         WHERE id = ANY($1) AND org_id = $2 AND NOT disabled
         ORDER BY length(number), number",
    )
    .bind(&raw)
    .bind(org.0)
    .fetch_all(&mut *conn)
    .await?;
    let refs = rows
        .iter()
        .map(|r| {
            Ok(ExtensionRef {
                id: ExtensionId(r.try_get(0)?),
                number: r.try_get(1)?,
                name: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.iter().any(|id| !refs.iter().any(|r| r.id == *id)) {
        return Err(StoreError::NotFound("extension"));
    }
    Ok(refs)
}

/// Starts a membership period for each of `ids` (a returning member starts
/// a new one) at cursor `joined_seq`, in one statement.
pub(super) async fn add_participants(
    conn: &mut PgConnection,
    conversation: ConversationId,
    ids: &[ExtensionId],
    joined_seq: i64,
) -> Result<()> {
    let raw: Vec<i64> = ids.iter().map(|e| e.0).collect();
    sqlx::query(
        "WITH joined AS (
             INSERT INTO participants (conversation_id, extension_id, joined_seq)
             SELECT $1, unnest($2::bigint[]), $3
             ON CONFLICT (conversation_id, extension_id)
             DO UPDATE SET joined_seq = EXCLUDED.joined_seq, left_seq = NULL
             RETURNING extension_id)
         INSERT INTO memberships (conversation_id, extension_id, joined_seq)
         SELECT $1, extension_id, $3 FROM joined",
    )
    .bind(conversation.0)
    .bind(&raw)
    .bind(joined_seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends the membership periods of `ids` at cursor `left_seq`, in one
/// statement.
pub(super) async fn remove_participants(
    conn: &mut PgConnection,
    conversation: ConversationId,
    ids: &[ExtensionId],
    left_seq: i64,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let raw: Vec<i64> = ids.iter().map(|e| e.0).collect();
    sqlx::query(
        "WITH gone AS (
             UPDATE participants SET left_seq = $3
             WHERE conversation_id = $1 AND extension_id = ANY($2)
             RETURNING extension_id)
         UPDATE memberships m SET left_seq = $3 FROM gone
         WHERE m.conversation_id = $1 AND m.extension_id = gone.extension_id
           AND m.left_seq IS NULL",
    )
    .bind(conversation.0)
    .bind(&raw)
    .bind(left_seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn open_direct(
    conn: &mut PgConnection,
    open: &OpenDirect,
) -> Result<Committed<OpenedDirect>> {
    let &OpenDirect {
        org,
        me,
        other,
        now,
    } = open;
    let key = direct_key(me, other)?;
    let rows = sqlx::query(
        "SELECT e.id, e.number, e.name, e.org_id = $2 AND NOT e.disabled,
                (SELECT c.id FROM conversations c WHERE c.direct_key = $3 AND c.org_id = $2)
         FROM extensions e WHERE e.id = ANY($1)
         ORDER BY length(e.number), e.number",
    )
    .bind([me.0, other.0].as_slice())
    .bind(org.0)
    .bind(&key)
    .fetch_all(&mut *conn)
    .await?;
    let mut pair = Vec::with_capacity(2);
    let mut existing = None;
    for r in &rows {
        let id = ExtensionId(r.try_get(0)?);
        let usable: bool = r.try_get(3)?;
        if id == other && !usable {
            return Err(StoreError::NotFound("extension"));
        }
        existing = r.try_get::<Option<i64>, _>(4)?;
        pair.push(ExtensionRef {
            id,
            number: r.try_get(1)?,
            name: r.try_get(2)?,
        });
    }
    if pair.len() != 2 {
        return Err(StoreError::NotFound("extension"));
    }
    if let Some(id) = existing {
        return found_direct(conn, ConversationId(id)).await;
    }
    // Another node may be creating the same chat: the unique key makes the
    // insert wait for it and then do nothing, and the chat it made is read.
    // The organization's stream is locked first, as that node's was: a
    // transaction holding the stream lock (for an earlier write of its
    // batch) while waiting on a key held by one that waits for the stream
    // would deadlock.
    lock_stream(conn, org).await?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO conversations (org_id, kind, direct_key, created_by, created_at)
         VALUES ($1, 'direct', $2, $3, $4)
         ON CONFLICT (direct_key) DO NOTHING RETURNING id",
    )
    .bind(org.0)
    .bind(&key)
    .bind(me.0)
    .bind(now.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = inserted else {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE direct_key = $1 AND org_id = $2",
        )
        .bind(&key)
        .bind(org.0)
        .fetch_optional(&mut *conn)
        .await?;
        let id = id.ok_or(StoreError::NotFound("conversation"))?;
        return found_direct(conn, ConversationId(id)).await;
    };
    let id = ConversationId(id);
    let conversation = Conversation {
        id,
        kind: ConversationKind::Direct,
        name: None,
        participants: pair,
        externals: Vec::new(),
        business_number: None,
        created_at: now,
        last_activity_at: now,
    };
    let recipients = ids_of(&conversation);
    let event = record(
        conn,
        org,
        Event::ConversationCreated {
            conversation: conversation.clone(),
        },
        &recipients,
        now,
    )
    .await?;
    add_participants(conn, id, &recipients, event.cursor.0).await?;
    Ok(Committed {
        value: OpenedDirect {
            conversation,
            created: true,
        },
        events: vec![event],
    })
}

/// Takes the lock that recording an event of `org` takes (its stream row,
/// see `events`), ahead of a write that may wait on another node's.
pub(super) async fn lock_stream(conn: &mut PgConnection, org: OrgId) -> Result<()> {
    sqlx::query(
        "INSERT INTO org_streams (org_id, seq) VALUES ($1, 0)
         ON CONFLICT (org_id) DO UPDATE SET seq = org_streams.seq",
    )
    .bind(org.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn found_direct(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Committed<OpenedDirect>> {
    Ok(Committed {
        value: OpenedDirect {
            conversation: loaded(conn, id).await?,
            created: false,
        },
        events: Vec::new(),
    })
}

#[async_trait::async_trait]
impl Conversations for PgStore {
    async fn open_direct(&self, open: OpenDirect) -> Result<Committed<OpenedDirect>> {
        self.write(Some(open.org), move |c| {
            Box::pin(async move { open_direct(c, &open).await })
        })
        .await
    }

    async fn create_group(&self, group: NewGroup) -> Result<Committed<Conversation>> {
        self.write(Some(group.org), move |c| {
            Box::pin(async move { create_group(c, &group).await })
        })
        .await
    }

    async fn edit_group(&self, edit: EditGroup) -> Result<Committed<Conversation>> {
        self.write(Some(edit.org), move |c| {
            Box::pin(async move { edit_group(c, &edit).await })
        })
        .await
    }

    async fn conversations_of(&self, me: ExtensionId) -> Result<Vec<ConversationSummary>> {
        conversations_of(&mut *self.reader().await?, me).await
    }

    async fn conversation_for(
        &self,
        me: ExtensionId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        conversation_for(&mut *self.reader().await?, me, id).await
    }

    async fn post_message(&self, message: NewMessage) -> Result<Committed<Posted>> {
        let org = self.org_of_conversation(message.conversation_id).await?;
        if let Some(org) = org
            && message.attachments.is_empty()
            && message.carrier_media.is_empty()
        {
            return self.post_chat(org, message).await;
        }
        self.write(org, move |c| {
            Box::pin(async move { sends::post_message(c, &message).await })
        })
        .await
    }

    async fn history(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        page: HistoryPage,
    ) -> Result<(Vec<Message>, bool)> {
        messages::history(&mut *self.reader().await?, me, conversation, page).await
    }

    async fn mark_read(&self, read: MarkRead) -> Result<Committed<u32>> {
        let org = self.org_of_conversation(read.conversation).await?;
        self.write(org, move |c| {
            Box::pin(async move { messages::mark_read(c, &read).await })
        })
        .await
    }

    async fn receipts(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
    ) -> Result<Vec<Receipt>> {
        messages::receipts(&mut *self.reader().await?, me, conversation).await
    }
}
