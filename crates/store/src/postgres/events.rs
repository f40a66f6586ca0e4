//! The event log on PostgreSQL: recording an event inside the change that
//! causes it, each organization's stream, and reading the log back.
//!
//! **Why cursors stay in commit order with several nodes.** Every write
//! transaction locks the stream rows (`org_streams`) of the organizations
//! its jobs named before it runs them, in id order (`writer.rs`), and holds
//! them until it ends; recording an event moves that row forward and only
//! then takes a cursor from the `event_cursors` sequence. A second
//! transaction of the same organization waits on the row until the first
//! has committed (or rolled back), so it takes a higher cursor *after* the
//! first is visible. Hence, within an organization, an event is visible
//! only once every event with a lower cursor is: a client (who belongs to
//! one organization) that was given cursor `c` never sees a later event
//! appear below `c`. Stream positions count up by one per event with no
//! holes, so a node that hears
//! position `n` knows exactly what it has missed.

use super::PgStore;
use crate::{
    CommitListener, EventLog, Recorded, Result, StoreError, StoredEvent, StreamPosition,
    StreamedEvent,
};
use sqlx::{PgConnection, PgPool, Row};
use std::sync::Arc;
use switchboard_domain::{Audience, Cursor, Event, EventKind, ExtensionId, OrgId, Timestamp};

/// Starts a new run of the log as a node opens the store: the next cursor is
/// at least the current time in microseconds, so no cursor handed out before
/// a restore from an older backup is handed out again (as on SQLite). The
/// sequence only moves forward: nodes already running are far below the
/// clock, since cursors grow by one per event.
pub(super) async fn begin_run(pool: &PgPool) -> Result<()> {
    sqlx::query(
        "SELECT setval('event_cursors', greatest(
             (SELECT last_value FROM event_cursors),
             (extract(epoch FROM clock_timestamp()) * 1000000)::bigint))",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Appends `event`, of organization `org`, to the log, to be heard live by
/// `recipients`. Takes the organization's stream lock until the transaction
/// ends (see the module's documentation): record a transaction's events
/// late, after the statements that may wait on other locks.
pub(super) async fn record(
    conn: &mut PgConnection,
    org: OrgId,
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
    let audience: Vec<i64> = recipients.iter().map(|e| e.0).collect();
    let row = sqlx::query(
        "WITH s AS (
             INSERT INTO org_streams (org_id, seq) VALUES ($1, 1)
             ON CONFLICT (org_id) DO UPDATE SET seq = org_streams.seq + 1
             RETURNING seq)
         INSERT INTO events (cursor, org_id, org_seq, conversation_id, target_extension_id,
                             kind, payload, recipients, created_at)
         SELECT nextval('event_cursors'), $1, s.seq, $2, $3, $4, $5, $6, $7 FROM s
         RETURNING cursor, org_seq",
    )
    .bind(org.0)
    .bind(conversation)
    .bind(target)
    .bind(event.kind().as_str())
    .bind(&payload)
    .bind(&audience)
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    let cursor: i64 = row.try_get(0)?;
    let seq: i64 = row.try_get(1)?;
    Ok(Recorded {
        cursor: Cursor(cursor),
        event: Arc::new(event),
        payload: payload.into(),
        recipients: Arc::clone(recipients),
        stream: Some(StreamPosition {
            org,
            seq: seq as u64,
        }),
    })
}

/// An event to record with [`record_many`].
pub(super) struct NewEvent {
    pub org: OrgId,
    pub event: Event,
    pub recipients: Arc<[ExtensionId]>,
    pub now: Timestamp,
}

/// Appends `events` to the log in their order, as [`record`] would one by
/// one, in two statements whatever their number: cursors are taken first
/// (and sorted, so they follow the given order), then each organization's
/// stream moves forward by its count of events. Callers hold the
/// organizations' stream locks (the writer takes them first).
pub(super) async fn record_many(
    conn: &mut PgConnection,
    events: Vec<NewEvent>,
) -> Result<Vec<Recorded>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(events.len())
        .map_err(|_| StoreError::Backend("too many events at once".into()))?;
    let mut cursors: Vec<i64> =
        sqlx::query_scalar("SELECT nextval('event_cursors') FROM generate_series(1, $1)")
            .bind(count)
            .fetch_all(&mut *conn)
            .await?;
    cursors.sort_unstable();
    if cursors.len() != events.len() {
        return Err(StoreError::Backend(
            "the database gave too few cursors".into(),
        ));
    }
    let mut orgs = Vec::with_capacity(events.len());
    let mut ranks = Vec::with_capacity(events.len());
    let mut conversations = Vec::with_capacity(events.len());
    let mut targets = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut audiences = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut per_org: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for new in &events {
        let payload = serde_json::to_string(&new.event)
            .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}")))?;
        let (conversation, target) = match new.event.audience() {
            Audience::Conversation(c) => (Some(c.0), None),
            Audience::Extension(e) => (None, Some(e.0)),
        };
        let rank = per_org.entry(new.org.0).or_insert(0);
        *rank += 1;
        orgs.push(new.org.0);
        ranks.push(*rank);
        conversations.push(conversation);
        targets.push(target);
        kinds.push(new.event.kind().as_str());
        payloads.push(payload);
        // Arrays of arrays must be rectangular: each audience goes as text.
        let ids: Vec<String> = new.recipients.iter().map(|e| e.0.to_string()).collect();
        audiences.push(format!("{{{}}}", ids.join(",")));
        times.push(new.now.0);
    }
    let rows = sqlx::query(
        "WITH e AS (
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                                  $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[])
                 AS e(cursor, org_id, rank, conversation_id, target_extension_id, kind, payload,
                      recipients, created_at)),
         counts AS (SELECT org_id, count(*) AS n FROM e GROUP BY org_id),
         s AS (
             INSERT INTO org_streams (org_id, seq) SELECT org_id, n FROM counts
             ON CONFLICT (org_id) DO UPDATE SET seq = org_streams.seq + excluded.seq
             RETURNING org_id, seq)
         INSERT INTO events (cursor, org_id, org_seq, conversation_id, target_extension_id,
                             kind, payload, recipients, created_at)
         SELECT e.cursor, e.org_id, s.seq - counts.n + e.rank, e.conversation_id,
                e.target_extension_id, e.kind, e.payload, e.recipients::bigint[], e.created_at
         FROM e JOIN s USING (org_id) JOIN counts USING (org_id)
         RETURNING cursor, org_seq",
    )
    .bind(&cursors)
    .bind(&orgs)
    .bind(&ranks)
    .bind(&conversations)
    .bind(&targets)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&audiences)
    .bind(&times)
    .fetch_all(&mut *conn)
    .await?;
    let mut seqs = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let cursor: i64 = row.try_get(0)?;
        let seq: i64 = row.try_get(1)?;
        seqs.insert(cursor, seq);
    }
    let mut recorded = Vec::with_capacity(events.len());
    for ((new, cursor), payload) in events.into_iter().zip(cursors).zip(payloads) {
        let seq = *seqs
            .get(&cursor)
            .ok_or_else(|| StoreError::Backend("an event was not recorded".into()))?;
        recorded.push(Recorded {
            cursor: Cursor(cursor),
            event: Arc::new(new.event),
            payload: payload.into(),
            recipients: new.recipients,
            stream: Some(StreamPosition {
                org: new.org,
                seq: seq as u64,
            }),
        });
    }
    Ok(recorded)
}

/// The database's clock, for the events of writes whose callers pass no
/// `now`. An event's time is kept for people reading the log, never used to
/// order it.
pub(super) async fn database_now(conn: &mut PgConnection) -> Result<Timestamp> {
    let ms: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(&mut *conn)
            .await?;
    Ok(Timestamp(ms))
}

fn kind_of(cursor: i64, kind: &str) -> Result<EventKind> {
    EventKind::parse(kind)
        .ok_or_else(|| StoreError::Backend(format!("event {cursor} has an unknown kind {kind:?}")))
}

#[async_trait::async_trait]
impl EventLog for PgStore {
    fn on_commit(&self, listener: CommitListener) {
        self.listeners.write().push(listener);
    }

    async fn events_after(
        &self,
        me: ExtensionId,
        after: Cursor,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT e.cursor, e.kind, e.payload FROM events e
             WHERE e.org_id = (SELECT org_id FROM extensions WHERE id = $2)
               AND e.cursor > $1 AND (
                 e.target_extension_id = $2
                 OR EXISTS (
                     SELECT 1 FROM memberships p
                     WHERE p.conversation_id = e.conversation_id AND p.extension_id = $2
                       AND p.joined_seq <= e.cursor
                       AND (p.left_seq IS NULL OR e.cursor <= p.left_seq)))
             ORDER BY e.cursor LIMIT $3",
        )
        .bind(after.0)
        .bind(me.0)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let cursor: i64 = r.try_get(0)?;
                let kind: String = r.try_get(1)?;
                Ok(StoredEvent {
                    cursor: Cursor(cursor),
                    kind: kind_of(cursor, &kind)?,
                    payload: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn latest_cursor(&self, org: OrgId) -> Result<Cursor> {
        let latest: i64 =
            sqlx::query_scalar("SELECT coalesce(max(cursor), 0) FROM events WHERE org_id = $1")
                .bind(org.0)
                .fetch_one(self.pool())
                .await?;
        Ok(Cursor(latest))
    }

    async fn holds(&self, cursor: Cursor) -> Result<bool> {
        if cursor == Cursor::START {
            return Ok(true);
        }
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE cursor = $1)")
                .bind(cursor.0)
                .fetch_one(self.pool())
                .await?,
        )
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn stream_after(&self, org: OrgId, after: u64, limit: u32) -> Result<Vec<StreamedEvent>> {
        let rows = sqlx::query(
            "SELECT org_seq, cursor, kind, payload, recipients FROM events
             WHERE org_id = $1 AND org_seq > $2 ORDER BY org_seq LIMIT $3",
        )
        .bind(org.0)
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.try_get(0)?;
                let cursor: i64 = r.try_get(1)?;
                let kind: String = r.try_get(2)?;
                let recipients: Vec<i64> = r.try_get(4)?;
                Ok(StreamedEvent {
                    seq: seq as u64,
                    cursor: Cursor(cursor),
                    kind: kind_of(cursor, &kind)?,
                    payload: r.try_get(3)?,
                    recipients: recipients.into_iter().map(ExtensionId).collect(),
                })
            })
            .collect()
    }

    async fn stream_heads(&self, orgs: Vec<OrgId>) -> Result<Vec<StreamPosition>> {
        let ids: Vec<i64> = orgs.iter().map(|o| o.0).collect();
        let rows = sqlx::query("SELECT org_id, seq FROM org_streams WHERE org_id = ANY($1)")
            .bind(&ids)
            .fetch_all(self.pool())
            .await?;
        let mut heads: Vec<StreamPosition> = orgs
            .iter()
            .map(|&org| StreamPosition { org, seq: 0 })
            .collect();
        for r in rows {
            let org = OrgId(r.try_get(0)?);
            let seq: i64 = r.try_get(1)?;
            if let Some(h) = heads.iter_mut().find(|h| h.org == org) {
                h.seq = seq as u64;
            }
        }
        Ok(heads)
    }
}
