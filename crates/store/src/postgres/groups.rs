//! Groups on PostgreSQL: creating one and editing it (name, members),
//! each change with its system message and events. A group's edits are one
//! at a time by a lock on the group, with the participant rows they write
//! locked before any event is recorded.

use super::conversations::{
    add_participants, ids_of, load, loaded_without, remove_participants, usable_extensions,
};
use super::events::record;
use super::messages::system_message;
use crate::{Committed, EditGroup, NewGroup, Result, StoreError};
use sqlx::PgConnection;
use std::sync::Arc;
use switchboard_domain::conversation::group_members;
use switchboard_domain::delivery::group_change_audience;
use switchboard_domain::{
    Conversation, ConversationId, ConversationKind, Event, ExtensionId, GroupChange, SystemAction,
};

pub(super) async fn create_group(
    conn: &mut PgConnection,
    group: &NewGroup,
) -> Result<Committed<Conversation>> {
    let NewGroup {
        org,
        creator,
        name,
        members,
        now,
    } = group;
    let (org, creator, now) = (*org, *creator, *now);
    let members = group_members(creator, members)?;
    let participants = usable_extensions(conn, org, &members).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO conversations (org_id, kind, name, created_by, created_at)
         VALUES ($1, 'group', $2, $3, $4) RETURNING id",
    )
    .bind(org.0)
    .bind(name.as_str())
    .bind(creator.0)
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    let id = ConversationId(id);
    let message = system_message(
        conn,
        id,
        SystemAction::Created {
            actor_id: creator,
            name: name.as_str().to_owned(),
        },
        now,
    )
    .await?;
    let created = Conversation {
        id,
        kind: ConversationKind::Group,
        name: Some(name.as_str().to_owned()),
        participants,
        externals: Vec::new(),
        business_number: None,
        created_at: now,
        last_activity_at: now,
    };
    let recipients = ids_of(&created);
    let first = record(
        conn,
        org,
        Event::ConversationCreated {
            conversation: created.clone(),
        },
        &recipients,
        now,
    )
    .await?;
    let second = record(
        conn,
        org,
        Event::MessageCreated { message },
        &recipients,
        now,
    )
    .await?;
    add_participants(conn, id, &recipients, first.cursor.0).await?;
    Ok(Committed {
        value: created,
        events: vec![first, second],
    })
}

pub(super) async fn edit_group(
    conn: &mut PgConnection,
    edit: &EditGroup,
) -> Result<Committed<Conversation>> {
    let EditGroup {
        org,
        actor,
        conversation: id,
        change,
        now,
    } = edit;
    let (org, actor, id, now) = (*org, *actor, *id, *now);
    // Edits of one group, from any node, take their turn on its row. The
    // lock lets sends in (their foreign-key checks share the row) while
    // another edit or a rename waits.
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT org_id FROM conversations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
    if locked != Some(org.0) {
        return Err(StoreError::NotFound("conversation"));
    }
    let Some((before, _)) = load(conn, id).await? else {
        return Err(StoreError::NotFound("conversation"));
    };
    if !before.has_participant(actor) {
        return Err(StoreError::NotFound("conversation"));
    }
    let members: Vec<ExtensionId> = before.participants.iter().map(|p| p.id).collect();
    let affected = change.check(before.kind, actor, &members)?;

    let (action, leaving, joining) = match change {
        GroupChange::Rename(name) => {
            sqlx::query("UPDATE conversations SET name = $2 WHERE id = $1")
                .bind(id.0)
                .bind(name.as_str())
                .execute(&mut *conn)
                .await?;
            (
                SystemAction::Renamed {
                    actor_id: actor,
                    name: name.as_str().to_owned(),
                },
                Vec::new(),
                Vec::new(),
            )
        }
        GroupChange::Add(_) => {
            usable_extensions(conn, org, &affected).await?;
            (
                SystemAction::Added {
                    actor_id: actor,
                    extension_ids: affected.clone(),
                },
                Vec::new(),
                affected,
            )
        }
        GroupChange::Remove(_) => (
            SystemAction::Removed {
                actor_id: actor,
                extension_ids: affected.clone(),
            },
            affected,
            Vec::new(),
        ),
        GroupChange::Leave => (
            SystemAction::Left { actor_id: actor },
            vec![actor],
            Vec::new(),
        ),
    };
    // The participant rows this edit writes (those of leavers, and of
    // newcomers who were members before) are locked before any event is
    // recorded, so that the stream lock, once taken, never waits on them
    // (a read mark being committed on another node).
    let writes: Vec<i64> = leaving.iter().chain(&joining).map(|e| e.0).collect();
    if !writes.is_empty() {
        sqlx::query(
            "SELECT 1 FROM participants WHERE conversation_id = $1 AND extension_id = ANY($2)
             ORDER BY extension_id FOR NO KEY UPDATE",
        )
        .bind(id.0)
        .bind(&writes)
        .execute(&mut *conn)
        .await?;
    }
    let recipients: Arc<[ExtensionId]> = group_change_audience(&members, &joining).into();

    let message = system_message(conn, id, action, now).await?;
    let line = record(
        conn,
        org,
        Event::MessageCreated { message },
        &recipients,
        now,
    )
    .await?;
    // Newcomers' periods start with the line that adds them.
    if !joining.is_empty() {
        add_participants(conn, id, &joining, line.cursor.0).await?;
    }
    // The update event is recorded while the leavers still count as
    // participants for replay (their periods end at its cursor).
    let after = loaded_without(conn, id, &leaving).await?;
    let updated = record(
        conn,
        org,
        Event::ConversationUpdated {
            conversation: after.clone(),
        },
        &recipients,
        now,
    )
    .await?;
    remove_participants(conn, id, &leaving, updated.cursor.0).await?;
    Ok(Committed {
        value: after,
        events: vec![line, updated],
    })
}
