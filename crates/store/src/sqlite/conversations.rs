//! Conversations: direct chats and groups, their participants and
//! membership periods, and the [`Conversations`] capability (whose messages
//! and read positions are in `messages`).
//!
//! Every function that changes something runs inside the writer's
//! transaction and records its events there, so the change and its
//! announcement commit together.

use super::SqliteStore;
use super::events::{next_seq, record};
use super::messages::{
    self, MESSAGE_COLUMNS, MESSAGE_FROM, message_from_row, system_message, unread_count,
};
use super::sms;
use crate::{
    Committed, ConversationSummary, Conversations, EditGroup, MarkRead, NewGroup, NewMessage,
    OpenDirect, OpenedDirect, Posted, Receipt, Result, StoreError,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Arc;
use switchboard_domain::conversation::{direct_key, group_members};
use switchboard_domain::delivery::group_change_audience;
use switchboard_domain::{
    Conversation, ConversationId, ConversationKind, Event, ExtensionId, ExtensionRef, GroupChange,
    HistoryPage, Message, MessageId, NumberId, OrgId, SystemAction, Timestamp,
};

/// The current participants of a conversation by extension number, each
/// read by `row` from: extension id, number, name, read position.
fn current_participants<T>(
    conn: &Connection,
    id: ConversationId,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.number, e.name, p.last_read_message_id FROM participants p
         JOIN extensions e ON e.id = p.extension_id
         WHERE p.conversation_id = ?1 AND p.left_seq IS NULL
         ORDER BY length(e.number), e.number",
    )?;
    let rows = stmt.query_map([id.0], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The current participants of a conversation, by extension number.
pub(super) fn participants(conn: &Connection, id: ConversationId) -> Result<Vec<ExtensionRef>> {
    current_participants(conn, id, |r| {
        Ok(ExtensionRef {
            id: ExtensionId(r.get(0)?),
            number: r.get(1)?,
            name: r.get(2)?,
        })
    })
}

/// Every participant's read position, by extension number.
pub(super) fn read_positions(conn: &Connection, id: ConversationId) -> Result<Vec<Receipt>> {
    current_participants(conn, id, |r| {
        Ok(Receipt {
            extension_id: ExtensionId(r.get(0)?),
            name: r.get(2)?,
            last_read_message_id: MessageId(r.get(3)?),
        })
    })
}

/// Loads a conversation with its participants, with its organization.
pub(super) fn load(conn: &Connection, id: ConversationId) -> Result<Option<(Conversation, OrgId)>> {
    let row = conn
        .prepare_cached(
            "SELECT c.kind, c.name, c.created_at,
                    coalesce((SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id
                              ORDER BY m.id DESC LIMIT 1), c.created_at),
                    c.org_id, c.business_number_id, o.default_country
             FROM conversations c JOIN organizations o ON o.id = c.org_id WHERE c.id = ?1",
        )?
        .query_row([id.0], |r| {
            let kind: String = r.get(0)?;
            Ok((
                kind,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()?;
    let Some((kind, name, created_at, last_activity_at, org, number, country)) = row else {
        return Ok(None);
    };
    let kind = ConversationKind::parse(&kind)
        .ok_or_else(|| StoreError::Backend(format!("unknown conversation kind {kind}")))?;
    let (externals, business_number) = match number {
        Some(number) => {
            let country = sms::country(&country);
            let number = NumberId(number);
            (
                sms::externals(conn, id, number, country)?,
                sms::business_number_ref(conn, number, country)?,
            )
        }
        None => (Vec::new(), None),
    };
    Ok(Some((
        Conversation {
            id,
            kind,
            name,
            participants: participants(conn, id)?,
            externals,
            business_number,
            created_at: Timestamp(created_at),
            last_activity_at: Timestamp(last_activity_at),
        },
        OrgId(org),
    )))
}

fn is_participant(
    conn: &Connection,
    conversation: ConversationId,
    ext: ExtensionId,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM participants
             WHERE conversation_id = ?1 AND extension_id = ?2 AND left_seq IS NULL",
        )?
        .exists(params![conversation.0, ext.0])?)
}

pub(super) fn require_participant(
    conn: &Connection,
    conversation: ConversationId,
    ext: ExtensionId,
) -> Result<()> {
    if is_participant(conn, conversation, ext)? {
        Ok(())
    } else {
        Err(StoreError::NotFound("conversation"))
    }
}

fn conversation_for(
    conn: &Connection,
    me: ExtensionId,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    if !is_participant(conn, id, me)? {
        return Ok(None);
    }
    Ok(load(conn, id)?.map(|(c, _)| c))
}

fn conversations_of(conn: &Connection, me: ExtensionId) -> Result<Vec<ConversationSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, last.id FROM participants p
         JOIN conversations c ON c.id = p.conversation_id
         LEFT JOIN messages last ON last.id = (
             SELECT m.id FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1)
         WHERE p.extension_id = ?1 AND p.left_seq IS NULL
         ORDER BY coalesce(last.created_at, c.created_at) DESC, c.id DESC",
    )?;
    let ids = stmt
        .query_map([me.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut last = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = ?1"
    ))?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, last_message_id) in ids {
        let id = ConversationId(id);
        let Some((conversation, _)) = load(conn, id)? else {
            continue;
        };
        let last_message = match last_message_id {
            Some(m) => last.query_row([m], message_from_row).optional()?,
            None => None,
        };
        out.push(ConversationSummary {
            conversation,
            last_message,
            unread_count: unread_count(conn, id, me)?,
        });
    }
    Ok(out)
}

/// Checks that every id is an enabled extension of `org`.
fn require_extensions(conn: &Connection, org: OrgId, ids: &[ExtensionId]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM extensions WHERE id = ?1 AND org_id = ?2 AND disabled = 0",
    )?;
    for id in ids {
        if !stmt.exists(params![id.0, org.0])? {
            return Err(StoreError::NotFound("extension"));
        }
    }
    Ok(())
}

pub(super) fn add_participants(
    conn: &Connection,
    conversation: ConversationId,
    ids: &[ExtensionId],
    joined_seq: i64,
) -> Result<()> {
    // A returning member starts a new membership period.
    let mut stmt = conn.prepare_cached(
        "INSERT INTO participants (conversation_id, extension_id, joined_seq)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (conversation_id, extension_id)
         DO UPDATE SET joined_seq = excluded.joined_seq, left_seq = NULL",
    )?;
    let mut period = conn.prepare_cached(
        "INSERT INTO memberships (conversation_id, extension_id, joined_seq) VALUES (?1, ?2, ?3)",
    )?;
    for id in ids {
        stmt.execute(params![conversation.0, id.0, joined_seq])?;
        period.execute(params![conversation.0, id.0, joined_seq])?;
    }
    Ok(())
}

pub(super) fn ids_of(conversation: &Conversation) -> Arc<[ExtensionId]> {
    conversation.participants.iter().map(|p| p.id).collect()
}

fn insert_conversation(
    conn: &Connection,
    org: OrgId,
    kind: ConversationKind,
    name: Option<&str>,
    direct_key: Option<&str>,
    creator: ExtensionId,
    now: Timestamp,
) -> Result<ConversationId> {
    conn.prepare_cached(
        "INSERT INTO conversations (org_id, kind, name, direct_key, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        org.0,
        kind.as_str(),
        name,
        direct_key,
        creator.0,
        now.0
    ])?;
    Ok(ConversationId(conn.last_insert_rowid()))
}

pub(super) fn loaded(conn: &Connection, id: ConversationId) -> Result<Conversation> {
    load(conn, id)?
        .map(|(c, _)| c)
        .ok_or(StoreError::NotFound("conversation"))
}

fn open_direct(conn: &Connection, open: &OpenDirect) -> Result<Committed<OpenedDirect>> {
    let &OpenDirect {
        org,
        me,
        other,
        now,
    } = open;
    let key = direct_key(me, other)?;
    require_extensions(conn, org, &[other])?;
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM conversations WHERE direct_key = ?1 AND org_id = ?2")?
        .query_row(params![key, org.0], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(Committed {
            value: OpenedDirect {
                conversation: loaded(conn, ConversationId(id))?,
                created: false,
            },
            events: Vec::new(),
        });
    }
    let id = insert_conversation(
        conn,
        org,
        ConversationKind::Direct,
        None,
        Some(&key),
        me,
        now,
    )?;
    add_participants(conn, id, &[me, other], next_seq(conn)?)?;
    let conversation = loaded(conn, id)?;
    let recipients = ids_of(&conversation);
    let event = record(
        conn,
        Event::ConversationCreated {
            conversation: conversation.clone(),
        },
        &recipients,
        now,
    )?;
    Ok(Committed {
        value: OpenedDirect {
            conversation,
            created: true,
        },
        events: vec![event],
    })
}

fn create_group(conn: &Connection, group: &NewGroup) -> Result<Committed<Conversation>> {
    let NewGroup {
        org,
        creator,
        name,
        members,
        now,
    } = group;
    let (org, creator, now) = (*org, *creator, *now);
    let members = group_members(creator, members)?;
    require_extensions(conn, org, &members)?;
    let id = insert_conversation(
        conn,
        org,
        ConversationKind::Group,
        Some(name.as_str()),
        None,
        creator,
        now,
    )?;
    add_participants(conn, id, &members, next_seq(conn)?)?;
    let created = loaded(conn, id)?;
    let recipients = ids_of(&created);
    let first = record(
        conn,
        Event::ConversationCreated {
            conversation: created,
        },
        &recipients,
        now,
    )?;
    let message = system_message(
        conn,
        id,
        SystemAction::Created {
            actor_id: creator,
            name: name.as_str().to_owned(),
        },
        now,
    )?;
    let second = record(conn, Event::MessageCreated { message }, &recipients, now)?;
    Ok(Committed {
        value: loaded(conn, id)?,
        events: vec![first, second],
    })
}

fn edit_group(conn: &Connection, edit: &EditGroup) -> Result<Committed<Conversation>> {
    let EditGroup {
        org,
        actor,
        conversation: id,
        change,
        now,
    } = edit;
    let (org, actor, id, now) = (*org, *actor, *id, *now);
    let Some((before, conversation_org)) = load(conn, id)? else {
        return Err(StoreError::NotFound("conversation"));
    };
    if conversation_org != org || !before.has_participant(actor) {
        return Err(StoreError::NotFound("conversation"));
    }
    let members: Vec<ExtensionId> = before.participants.iter().map(|p| p.id).collect();
    let affected = change.check(before.kind, actor, &members)?;
    let first_seq = next_seq(conn)?;

    let (action, leaving) = match change {
        GroupChange::Rename(name) => {
            conn.prepare_cached("UPDATE conversations SET name = ?2 WHERE id = ?1")?
                .execute(params![id.0, name.as_str()])?;
            (
                SystemAction::Renamed {
                    actor_id: actor,
                    name: name.as_str().to_owned(),
                },
                Vec::new(),
            )
        }
        GroupChange::Add(_) => {
            require_extensions(conn, org, &affected)?;
            add_participants(conn, id, &affected, first_seq)?;
            (
                SystemAction::Added {
                    actor_id: actor,
                    extension_ids: affected.clone(),
                },
                Vec::new(),
            )
        }
        GroupChange::Remove(_) => (
            SystemAction::Removed {
                actor_id: actor,
                extension_ids: affected.clone(),
            },
            affected.clone(),
        ),
        GroupChange::Leave => (SystemAction::Left { actor_id: actor }, vec![actor]),
    };

    let joining = match change {
        GroupChange::Add(_) => affected.as_slice(),
        _ => &[],
    };
    let recipients: Arc<[ExtensionId]> = group_change_audience(&members, joining).into();

    let message = system_message(conn, id, action, now)?;
    let mut events = vec![record(
        conn,
        Event::MessageCreated { message },
        &recipients,
        now,
    )?];

    let mut leave = conn.prepare_cached(
        "UPDATE participants SET left_seq = ?3 WHERE conversation_id = ?1 AND extension_id = ?2",
    )?;
    // The update event is recorded while the leavers still count as
    // participants for replay (left_seq is set to its cursor just after).
    let after = loaded_without(conn, id, &leaving)?;
    events.push(record(
        conn,
        Event::ConversationUpdated {
            conversation: after.clone(),
        },
        &recipients,
        now,
    )?);
    let last_seq = events.last().map_or(first_seq, |e| e.cursor.0);
    let mut end_period = conn.prepare_cached(
        "UPDATE memberships SET left_seq = ?3
         WHERE conversation_id = ?1 AND extension_id = ?2 AND left_seq IS NULL",
    )?;
    for gone in &leaving {
        leave.execute(params![id.0, gone.0, last_seq])?;
        end_period.execute(params![id.0, gone.0, last_seq])?;
    }
    Ok(Committed {
        value: after,
        events,
    })
}

/// The conversation as it will be once `leaving` are gone.
pub(super) fn loaded_without(
    conn: &Connection,
    id: ConversationId,
    leaving: &[ExtensionId],
) -> Result<Conversation> {
    let mut c = loaded(conn, id)?;
    c.participants.retain(|p| !leaving.contains(&p.id));
    Ok(c)
}

#[async_trait::async_trait]
impl Conversations for SqliteStore {
    async fn open_direct(&self, open: OpenDirect) -> Result<Committed<OpenedDirect>> {
        self.write(move |c| open_direct(c, &open)).await
    }

    async fn create_group(&self, group: NewGroup) -> Result<Committed<Conversation>> {
        self.write(move |c| create_group(c, &group)).await
    }

    async fn edit_group(&self, edit: EditGroup) -> Result<Committed<Conversation>> {
        self.write(move |c| edit_group(c, &edit)).await
    }

    async fn conversations_of(&self, me: ExtensionId) -> Result<Vec<ConversationSummary>> {
        self.read(move |c| conversations_of(c, me)).await
    }

    async fn conversation_for(
        &self,
        me: ExtensionId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        self.read(move |c| conversation_for(c, me, id)).await
    }

    async fn post_message(&self, message: NewMessage) -> Result<Committed<Posted>> {
        self.write_send(move |c, recent_sends| messages::post_message(c, recent_sends, &message))
            .await
    }

    async fn history(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
        page: HistoryPage,
    ) -> Result<(Vec<Message>, bool)> {
        self.read(move |c| messages::history(c, me, conversation, page))
            .await
    }

    async fn mark_read(&self, read: MarkRead) -> Result<Committed<u32>> {
        self.write(move |c| messages::mark_read(c, &read)).await
    }

    async fn receipts(
        &self,
        me: ExtensionId,
        conversation: ConversationId,
    ) -> Result<Vec<Receipt>> {
        self.read(move |c| messages::receipts(c, me, conversation))
            .await
    }
}
