//! The event log: recording an event inside the change that causes it, and
//! reading the log back for a resuming client.

use super::SqliteStore;
use crate::{
    CommitListener, EventLog, Recorded, Result, StoreError, StoredEvent, StreamPosition,
    StreamedEvent,
};
use rusqlite::{Connection, params};
use std::sync::Arc;
use switchboard_domain::{Audience, Cursor, Event, EventKind, ExtensionId, OrgId, Timestamp};

/// The cursor the next recorded event will get. Only the single writer
/// records events, so this is exact inside its transaction.
pub(super) fn next_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM events")?
        .query_row([], |r| r.get(0))?)
}

/// Starts a new run of the log as the store opens: the next cursor is at
/// least the current time in microseconds. Cursors grow by one per event,
/// far slower than the clock, so no cursor an earlier run handed out (even
/// one this database never saw, when it was restored from an older backup)
/// is ever handed out again, and [`holds`] recognises it as foreign. A row
/// with no audience marks the place; no client ever replays it.
pub(super) fn begin_run(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO events (seq, kind, payload, created_at)
         SELECT max(coalesce(max(seq), 0) + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
                'log.run', '{}', CAST(unixepoch('subsec') * 1000 AS INTEGER)
         FROM events",
        [],
    )?;
    Ok(())
}

/// Whether `cursor` is one this log handed out: the start, or a position it
/// holds (every cursor a client is given names a row of the log).
fn holds(conn: &Connection, cursor: Cursor) -> Result<bool> {
    if cursor == Cursor::START {
        return Ok(true);
    }
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE seq = ?1)")?
        .query_row([cursor.0], |r| r.get(0))?)
}

/// Appends `event` to the log, to be heard live by `recipients`.
pub(super) fn record(
    conn: &Connection,
    event: Event,
    recipients: &Arc<[ExtensionId]>,
    now: Timestamp,
) -> Result<Recorded> {
    let payload = serde_json::to_string(&event)
        .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}")))?;
    let (conversation, target) = match event.audience() {
        Audience::Conversation(c) => (Some(c.0), None),
        Audience::Extension(e) => (None, Some(e.0)),
    };
    conn.prepare_cached(
        "INSERT INTO events (conversation_id, target_extension_id, kind, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        conversation,
        target,
        event.kind().as_str(),
        payload,
        now.0
    ])?;
    Ok(Recorded {
        cursor: Cursor(conn.last_insert_rowid()),
        event: Arc::new(event),
        payload: payload.into(),
        recipients: Arc::clone(recipients),
        stream: None,
    })
}

/// The database's clock, for the events of writes whose callers pass no
/// `now` (as organizations get their creation time). An event's time is
/// kept for people reading the log, never used to order it.
pub(super) fn database_now(conn: &Connection) -> Result<Timestamp> {
    Ok(Timestamp(
        conn.prepare_cached("SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)")?
            .query_row([], |r| r.get(0))?,
    ))
}

fn events_after(
    conn: &Connection,
    me: ExtensionId,
    after: Cursor,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.seq, e.kind, e.payload FROM events e
         WHERE e.seq > ?1 AND (
            e.target_extension_id = ?2
            OR EXISTS (
                SELECT 1 FROM memberships p
                WHERE p.conversation_id = e.conversation_id AND p.extension_id = ?2
                  AND p.joined_seq <= e.seq AND (p.left_seq IS NULL OR e.seq <= p.left_seq)))
         ORDER BY e.seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![after.0, me.0, limit], |r| {
        Ok((
            Cursor(r.get(0)?),
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (cursor, kind, payload) = row?;
        let kind = EventKind::parse(&kind).ok_or_else(|| {
            StoreError::Backend(format!("event {cursor} has an unknown kind {kind:?}"))
        })?;
        events.push(StoredEvent {
            cursor,
            kind,
            payload,
        });
    }
    Ok(events)
}

fn latest_cursor(conn: &Connection) -> Result<Cursor> {
    Ok(Cursor(
        conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM events")?
            .query_row([], |r| r.get(0))?,
    ))
}

#[async_trait::async_trait]
impl EventLog for SqliteStore {
    fn on_commit(&self, listener: CommitListener) {
        self.listeners.write().push(listener);
    }

    async fn events_after(
        &self,
        me: ExtensionId,
        after: Cursor,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.read(move |c| events_after(c, me, after, limit)).await
    }

    /// One writer commits in cursor order, so the newest cursor of all is
    /// one every organization may be given.
    async fn latest_cursor(&self, _org: OrgId) -> Result<Cursor> {
        self.read(latest_cursor).await
    }

    async fn holds(&self, cursor: Cursor) -> Result<bool> {
        self.read(move |c| holds(c, cursor)).await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?))
            .await
    }

    async fn stream_after(&self, _: OrgId, _: u64, _: u32) -> Result<Vec<StreamedEvent>> {
        Err(single_node())
    }

    async fn stream_heads(&self, _: Vec<OrgId>) -> Result<Vec<StreamPosition>> {
        Err(single_node())
    }
}

fn single_node() -> StoreError {
    StoreError::Backend(
        "the SQLite store serves one node and keeps no organization streams; \
         several nodes need PostgreSQL"
            .into(),
    )
}
