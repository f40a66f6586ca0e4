//! Business numbers, their assignments to extensions and the carrier
//! connections serving them: the [`Numbers`] capability.
//!
//! Several nodes may change the same number or extension at once, so the
//! rules that span rows hold under row locks, always taken in one order
//! (the business number, then its extensions by id): an extension has one
//! default number at most, and whoever gains or loses a number is let into
//! or out of every SMS conversation of that number, also one another node
//! is creating meanwhile, since creating one reads the number `FOR SHARE`
//! (see [`sync_holders`]).

use super::PgStore;
use super::directory::is_unique_violation;
use super::events::{database_now, record};
use crate::{
    Assignment, BusinessNumber, CarrierConnection, Committed, NewConnection, NewNumber,
    NumberUpdate, Numbers, OwnNumber, Recorded, Result, StoreError,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use switchboard_domain::phone::{Country, E164};
use switchboard_domain::{
    BusinessNumberRef, CarrierKind, ConnectionId, Conversation, ConversationId, ConversationKind,
    Event, ExtensionId, ExtensionRef, ExternalParticipant, NumberId, OrgId, Timestamp,
};

// Column lists as macros, so that statements are `concat!`ed into static
// strings (sqlx takes no SQL built at run time without an audit).
macro_rules! connection_columns {
    () => {
        "id, org_id, kind, name, settings, sealed_secret"
    };
}
macro_rules! number_columns {
    () => {
        "n.id, n.org_id, n.number, n.sms_enabled, n.connection_id"
    };
}
/// `number_columns!` for a `RETURNING` clause, which takes no table alias.
macro_rules! returned_number_columns {
    () => {
        "id, org_id, number, sms_enabled, connection_id"
    };
}

fn connection_from_row(row: &PgRow) -> Result<CarrierConnection> {
    let kind: String = row.try_get(2)?;
    Ok(CarrierConnection {
        id: ConnectionId(row.try_get(0)?),
        org_id: OrgId(row.try_get(1)?),
        kind: CarrierKind::parse(&kind)
            .map_err(|e| StoreError::Backend(format!("stored carrier kind {kind:?}: {e}")))?,
        name: row.try_get(3)?,
        settings: row.try_get(4)?,
        sealed_secret: row.try_get(5)?,
    })
}

fn e164(s: &str) -> Result<E164> {
    E164::parse_strict(s).map_err(|e| StoreError::Backend(format!("stored number {s:?}: {e}")))
}

fn number_from_row(row: &PgRow) -> Result<BusinessNumber> {
    let number: String = row.try_get(2)?;
    Ok(BusinessNumber {
        id: NumberId(row.try_get(0)?),
        org_id: OrgId(row.try_get(1)?),
        number: e164(&number)?,
        sms_enabled: row.try_get(3)?,
        connection_id: row.try_get::<Option<i64>, _>(4)?.map(ConnectionId),
    })
}

async fn add_connection(conn: &mut PgConnection, new: &NewConnection) -> Result<CarrierConnection> {
    let inserted = sqlx::query(concat!(
        "INSERT INTO carrier_connections (org_id, kind, name, settings, sealed_secret, created_at)
         VALUES ($1, $2, $3, $4, $5, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
         RETURNING ",
        connection_columns!()
    ))
    .bind(new.org.0)
    .bind(new.kind.as_str())
    .bind(&new.name)
    .bind(&new.settings)
    .bind(&new.sealed_secret)
    .fetch_one(&mut *conn)
    .await;
    match inserted {
        Ok(row) => connection_from_row(&row),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "a carrier connection named {:?} already exists",
            new.name
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn connections(store: &PgStore, org: OrgId) -> Result<Vec<CarrierConnection>> {
    // Byte order, as SQLite sorts text, whatever the database's locale.
    sqlx::query(concat!(
        "SELECT ",
        connection_columns!(),
        " FROM carrier_connections WHERE org_id = $1 ORDER BY name COLLATE \"C\""
    ))
    .bind(org.0)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(connection_from_row)
    .collect()
}

async fn connection(store: &PgStore, id: ConnectionId) -> Result<Option<CarrierConnection>> {
    sqlx::query(concat!(
        "SELECT ",
        connection_columns!(),
        " FROM carrier_connections WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(store.pool())
    .await?
    .map(|r| connection_from_row(&r))
    .transpose()
}

/// Checks that `connection` belongs to `org`.
async fn require_connection(
    conn: &mut PgConnection,
    org: OrgId,
    connection: ConnectionId,
) -> Result<()> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM carrier_connections WHERE id = $1 AND org_id = $2)",
    )
    .bind(connection.0)
    .bind(org.0)
    .fetch_one(&mut *conn)
    .await?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound("carrier connection"))
    }
}

async fn add_number(conn: &mut PgConnection, new: &NewNumber) -> Result<BusinessNumber> {
    if let Some(c) = new.connection {
        require_connection(conn, new.org, c).await?;
    }
    let inserted = sqlx::query(concat!(
        "INSERT INTO business_numbers (org_id, number, sms_enabled, connection_id, created_at)
         VALUES ($1, $2, $3, $4, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
         RETURNING ",
        returned_number_columns!()
    ))
    .bind(new.org.0)
    .bind(new.number.as_str())
    .bind(new.sms_enabled)
    .bind(new.connection.map(|c| c.0))
    .fetch_one(&mut *conn)
    .await;
    match inserted {
        Ok(row) => number_from_row(&row),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "{} is already a business number",
            new.number
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn numbers(store: &PgStore, org: OrgId) -> Result<Vec<BusinessNumber>> {
    sqlx::query(concat!(
        "SELECT ",
        number_columns!(),
        " FROM business_numbers n WHERE n.org_id = $1 ORDER BY n.number COLLATE \"C\""
    ))
    .bind(org.0)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(number_from_row)
    .collect()
}

async fn number(conn: &mut PgConnection, org: OrgId, id: NumberId) -> Result<BusinessNumber> {
    let row = sqlx::query(concat!(
        "SELECT ",
        number_columns!(),
        " FROM business_numbers n WHERE n.id = $1 AND n.org_id = $2"
    ))
    .bind(id.0)
    .bind(org.0)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("business number"))?;
    number_from_row(&row)
}

/// The number, locked until the transaction ends: changes to it and to who
/// holds it queue here, each seeing the one before committed. (No key
/// update: rows that only reference the number do not wait.)
async fn lock_number(conn: &mut PgConnection, org: OrgId, id: NumberId) -> Result<BusinessNumber> {
    let row = sqlx::query(concat!(
        "SELECT ",
        number_columns!(),
        " FROM business_numbers n WHERE n.id = $1 AND n.org_id = $2 FOR NO KEY UPDATE"
    ))
    .bind(id.0)
    .bind(org.0)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("business number"))?;
    number_from_row(&row)
}

async fn update_number(
    conn: &mut PgConnection,
    org: OrgId,
    id: NumberId,
    update: &NumberUpdate,
) -> Result<BusinessNumber> {
    let current = lock_number(conn, org, id).await?;
    if let Some(Some(c)) = update.connection {
        require_connection(conn, org, c).await?;
    }
    let sms_enabled = update.sms_enabled.unwrap_or(current.sms_enabled);
    let connection = update.connection.unwrap_or(current.connection_id);
    sqlx::query("UPDATE business_numbers SET sms_enabled = $2, connection_id = $3 WHERE id = $1")
        .bind(id.0)
        .bind(sms_enabled)
        .bind(connection.map(|c| c.0))
        .execute(&mut *conn)
        .await?;
    if !sms_enabled || sms_enabled != current.sms_enabled {
        // The defaults of the number's extensions change: lock those
        // extensions first, by id, as every change of a default does.
        let extensions: Vec<i64> = sqlx::query_scalar(
            "SELECT e.id FROM extensions e
             WHERE e.id IN (SELECT extension_id FROM number_assignments WHERE number_id = $1)
             ORDER BY e.id FOR NO KEY UPDATE",
        )
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
        if !sms_enabled {
            // A number that no longer texts is nobody's default.
            sqlx::query("UPDATE number_assignments SET is_default = false WHERE number_id = $1")
                .bind(id.0)
                .execute(&mut *conn)
                .await?;
        }
        if sms_enabled != current.sms_enabled {
            // Its extensions' defaults pass to another of their numbers, or
            // to this one where they had none.
            for extension in extensions {
                fill_default(conn, ExtensionId(extension)).await?;
            }
        }
    }
    number(conn, org, id).await
}

async fn number_by_e164(store: &PgStore, number: &E164) -> Result<Option<BusinessNumber>> {
    sqlx::query(concat!(
        "SELECT ",
        number_columns!(),
        " FROM business_numbers n WHERE n.number = $1"
    ))
    .bind(number.as_str())
    .fetch_optional(store.pool())
    .await?
    .map(|r| number_from_row(&r))
    .transpose()
}

/// Checks that `extension` is an extension of `org`, and locks it until
/// the transaction ends: its default number changes under this lock only.
async fn lock_extension(conn: &mut PgConnection, org: OrgId, extension: ExtensionId) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM extensions WHERE id = $1 AND org_id = $2 FOR NO KEY UPDATE",
    )
    .bind(extension.0)
    .bind(org.0)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound("extension")),
    }
}

/// Makes the extension's first SMS-enabled number its default when it has
/// none. The caller holds the extension's lock.
async fn fill_default(conn: &mut PgConnection, extension: ExtensionId) -> Result<()> {
    sqlx::query(
        "UPDATE number_assignments SET is_default = true
         WHERE extension_id = $1
           AND NOT EXISTS (SELECT 1 FROM number_assignments
                           WHERE extension_id = $1 AND is_default)
           AND number_id = (
               SELECT a.number_id FROM number_assignments a
               JOIN business_numbers n ON n.id = a.number_id
               WHERE a.extension_id = $1 AND n.sms_enabled
               ORDER BY n.number COLLATE \"C\" LIMIT 1)",
    )
    .bind(extension.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn assign_number(
    conn: &mut PgConnection,
    org: OrgId,
    id: NumberId,
    to: ExtensionId,
) -> Result<Committed<()>> {
    lock_number(conn, org, id).await?;
    lock_extension(conn, org, to).await?;
    sqlx::query(
        "INSERT INTO number_assignments (number_id, extension_id, is_default)
         VALUES ($1, $2, false)
         ON CONFLICT DO NOTHING",
    )
    .bind(id.0)
    .bind(to.0)
    .execute(&mut *conn)
    .await?;
    fill_default(conn, to).await?;
    let now = database_now(conn).await?;
    let events = sync_holders(conn, org, id, to, Holds::Yes, now).await?;
    Ok(Committed { value: (), events })
}

async fn unassign_number(
    conn: &mut PgConnection,
    org: OrgId,
    id: NumberId,
    from: ExtensionId,
) -> Result<Committed<()>> {
    lock_number(conn, org, id).await?;
    lock_extension(conn, org, from).await?;
    sqlx::query("DELETE FROM number_assignments WHERE number_id = $1 AND extension_id = $2")
        .bind(id.0)
        .bind(from.0)
        .execute(&mut *conn)
        .await?;
    fill_default(conn, from).await?;
    let now = database_now(conn).await?;
    let events = sync_holders(conn, org, id, from, Holds::No, now).await?;
    Ok(Committed { value: (), events })
}

async fn assignments(store: &PgStore, org: OrgId) -> Result<Vec<Assignment>> {
    let rows = sqlx::query(
        "SELECT a.number_id, a.extension_id FROM number_assignments a
         JOIN business_numbers n ON n.id = a.number_id
         WHERE n.org_id = $1 ORDER BY n.number COLLATE \"C\", a.extension_id",
    )
    .bind(org.0)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Assignment {
                number: NumberId(r.try_get(0)?),
                extension: ExtensionId(r.try_get(1)?),
            })
        })
        .collect()
}

async fn numbers_of(store: &PgStore, extension: ExtensionId) -> Result<Vec<OwnNumber>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        number_columns!(),
        ", a.is_default FROM number_assignments a
         JOIN business_numbers n ON n.id = a.number_id
         WHERE a.extension_id = $1 ORDER BY n.number COLLATE \"C\""
    ))
    .bind(extension.0)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OwnNumber {
                number: number_from_row(r)?,
                default: r.try_get(5)?,
            })
        })
        .collect()
}

async fn set_default_number(
    conn: &mut PgConnection,
    extension: ExtensionId,
    id: NumberId,
) -> Result<()> {
    // The extension's lock: a default chosen here and one filled in by a
    // change of its numbers on another node never both stand.
    sqlx::query("SELECT 1 FROM extensions WHERE id = $1 FOR NO KEY UPDATE")
        .bind(extension.0)
        .execute(&mut *conn)
        .await?;
    let usable: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM number_assignments a
                        JOIN business_numbers n ON n.id = a.number_id
                        WHERE a.extension_id = $1 AND a.number_id = $2 AND n.sms_enabled)",
    )
    .bind(extension.0)
    .bind(id.0)
    .fetch_one(&mut *conn)
    .await?;
    if !usable {
        return Err(StoreError::NotFound("SMS-enabled number of yours"));
    }
    sqlx::query(
        "UPDATE number_assignments SET is_default = (number_id = $2) WHERE extension_id = $1",
    )
    .bind(extension.0)
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Holders of a number in its SMS conversations.

/// Whether an extension now holds the number [`sync_holders`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holds {
    Yes,
    No,
}

/// Lets an extension that gained (`Holds::Yes`) or lost (`Holds::No`)
/// business number `number` of `org` into or out of the number's SMS
/// conversations, with the events that tell their participants and it.
///
/// The caller holds the number's row lock (taken `FOR NO KEY UPDATE`, as
/// assigning does), so that who holds the number cannot change meanwhile.
/// Whoever creates an SMS conversation of a number and lets its holders in
/// must read the number `FOR SHARE` first: a conversation being created on
/// another node is then either seen here or sees this change.
///
/// Each conversation's participant row is locked before any event is
/// recorded, so that the stream lock, once taken, never waits on it.
pub(super) async fn sync_holders(
    conn: &mut PgConnection,
    org: OrgId,
    number: NumberId,
    extension: ExtensionId,
    holds: Holds,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM conversations WHERE business_number_id = $1 AND kind = 'sms' ORDER BY id",
    )
    .bind(number.0)
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "SELECT 1 FROM participants
         WHERE conversation_id = ANY($1) AND extension_id = $2
         ORDER BY conversation_id FOR UPDATE",
    )
    .bind(&ids)
    .bind(extension.0)
    .execute(&mut *conn)
    .await?;
    let joining = match holds {
        Holds::Yes => Some(extension_ref(conn, extension).await?),
        Holds::No => None,
    };
    let mut events = Vec::new();
    for id in ids.into_iter().map(ConversationId) {
        let Some(before) = sms_conversation(conn, id).await? else {
            continue;
        };
        if before.has_participant(extension) == (holds == Holds::Yes) {
            continue;
        }
        let mut audience: Vec<ExtensionId> = before.participants.iter().map(|p| p.id).collect();
        let mut after = before;
        match &joining {
            Some(newcomer) => {
                audience.push(extension);
                after.participants.push(newcomer.clone());
                after
                    .participants
                    .sort_by(|a, b| by_extension_number(&a.number, &b.number));
            }
            None => after.participants.retain(|p| p.id != extension),
        }
        let event = record(
            conn,
            org,
            Event::ConversationUpdated {
                conversation: after,
            },
            &Arc::from(audience),
            now,
        )
        .await?;
        // Membership periods are counted in cursors: the period opens or
        // closes with the event that tells of it.
        let cursor = event.cursor.0;
        match holds {
            Holds::Yes => {
                // A returning member starts a new membership period.
                sqlx::query(
                    "INSERT INTO participants (conversation_id, extension_id, joined_seq)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (conversation_id, extension_id)
                     DO UPDATE SET joined_seq = excluded.joined_seq, left_seq = NULL",
                )
                .bind(id.0)
                .bind(extension.0)
                .bind(cursor)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO memberships (conversation_id, extension_id, joined_seq)
                     VALUES ($1, $2, $3)",
                )
                .bind(id.0)
                .bind(extension.0)
                .bind(cursor)
                .execute(&mut *conn)
                .await?;
            }
            Holds::No => {
                sqlx::query(
                    "UPDATE participants SET left_seq = $3
                     WHERE conversation_id = $1 AND extension_id = $2",
                )
                .bind(id.0)
                .bind(extension.0)
                .bind(cursor)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE memberships SET left_seq = $3
                     WHERE conversation_id = $1 AND extension_id = $2 AND left_seq IS NULL",
                )
                .bind(id.0)
                .bind(extension.0)
                .bind(cursor)
                .execute(&mut *conn)
                .await?;
            }
        }
        events.push(event);
    }
    Ok(events)
}

/// The order of participants in a conversation: by extension number,
/// shorter numbers first, as `ORDER BY length(number), number` sorts them.
fn by_extension_number(a: &str, b: &str) -> std::cmp::Ordering {
    a.chars()
        .count()
        .cmp(&b.chars().count())
        .then_with(|| a.cmp(b))
}

async fn extension_ref(conn: &mut PgConnection, id: ExtensionId) -> Result<ExtensionRef> {
    let row = sqlx::query("SELECT number, name FROM extensions WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("extension"))?;
    Ok(ExtensionRef {
        id,
        number: row.try_get(0)?,
        name: row.try_get(1)?,
    })
}

/// An SMS conversation as its events show it: current participants by
/// extension number, current outside numbers in the order they joined with
/// their opt-outs, and its business number, shown for its organization's
/// country.
async fn sms_conversation(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    let Some(row) = sqlx::query(
        "SELECT c.kind, c.name, c.created_at,
                coalesce((SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id
                          ORDER BY m.id DESC LIMIT 1), c.created_at),
                c.business_number_id, o.default_country, n.number
         FROM conversations c
         JOIN organizations o ON o.id = c.org_id
         LEFT JOIN business_numbers n ON n.id = c.business_number_id
         WHERE c.id = $1",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let kind: String = row.try_get(0)?;
    let kind = ConversationKind::parse(&kind)
        .ok_or_else(|| StoreError::Backend(format!("unknown conversation kind {kind}")))?;
    // A stored code that no longer parses (it was checked when stored)
    // reads as the United States rather than failing every read.
    let country = Country::parse(&row.try_get::<String, _>(5)?).unwrap_or(Country::US);
    let number_id: Option<i64> = row.try_get(4)?;
    let number: Option<String> = row.try_get(6)?;
    let business_number = match (number_id, number) {
        (Some(id), Some(n)) => {
            let number = e164(&n)?;
            Some(BusinessNumberRef {
                id: NumberId(id),
                display: number.display(country),
                number,
            })
        }
        _ => None,
    };
    let participants = sqlx::query(
        "SELECT e.id, e.number, e.name FROM participants p
         JOIN extensions e ON e.id = p.extension_id
         WHERE p.conversation_id = $1 AND p.left_seq IS NULL
         ORDER BY length(e.number), e.number COLLATE \"C\"",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ExtensionRef {
            id: ExtensionId(r.try_get(0)?),
            number: r.try_get(1)?,
            name: r.try_get(2)?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let externals = sqlx::query(
        "SELECT x.number, EXISTS (SELECT 1 FROM opt_outs o
                                  WHERE o.business_number_id = $2 AND o.number = x.number)
         FROM external_participants x
         WHERE x.conversation_id = $1 AND x.left_seq IS NULL
         ORDER BY x.joined_seq, x.number COLLATE \"C\"",
    )
    .bind(id.0)
    .bind(number_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let number = e164(&r.try_get::<String, _>(0)?)?;
        Ok(ExternalParticipant {
            display: number.display(country),
            number,
            opted_out: r.try_get(1)?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(Conversation {
        id,
        kind,
        name: row.try_get(1)?,
        participants,
        externals,
        business_number,
        created_at: Timestamp(row.try_get(2)?),
        last_activity_at: Timestamp(row.try_get(3)?),
    }))
}

#[async_trait::async_trait]
impl Numbers for PgStore {
    async fn add_connection(&self, new: NewConnection) -> Result<CarrierConnection> {
        self.write(move |c| Box::pin(async move { add_connection(c, &new).await }))
            .await
    }

    async fn connections(&self, org: OrgId) -> Result<Vec<CarrierConnection>> {
        connections(self, org).await
    }

    async fn connection(&self, id: ConnectionId) -> Result<Option<CarrierConnection>> {
        connection(self, id).await
    }

    async fn add_number(&self, new: NewNumber) -> Result<BusinessNumber> {
        self.write(move |c| Box::pin(async move { add_number(c, &new).await }))
            .await
    }

    async fn numbers(&self, org: OrgId) -> Result<Vec<BusinessNumber>> {
        numbers(self, org).await
    }

    async fn update_number(
        &self,
        org: OrgId,
        id: NumberId,
        update: NumberUpdate,
    ) -> Result<BusinessNumber> {
        self.write(move |c| Box::pin(async move { update_number(c, org, id, &update).await }))
            .await
    }

    async fn number_by_e164(&self, number: &E164) -> Result<Option<BusinessNumber>> {
        number_by_e164(self, number).await
    }

    async fn assign_number(
        &self,
        org: OrgId,
        number: NumberId,
        to: ExtensionId,
    ) -> Result<Committed<()>> {
        self.write(move |c| Box::pin(async move { assign_number(c, org, number, to).await }))
            .await
    }

    async fn unassign_number(
        &self,
        org: OrgId,
        number: NumberId,
        from: ExtensionId,
    ) -> Result<Committed<()>> {
        self.write(move |c| Box::pin(async move { unassign_number(c, org, number, from).await }))
            .await
    }

    async fn assignments(&self, org: OrgId) -> Result<Vec<Assignment>> {
        assignments(self, org).await
    }

    async fn numbers_of(&self, extension: ExtensionId) -> Result<Vec<OwnNumber>> {
        numbers_of(self, extension).await
    }

    async fn set_default_number(&self, extension: ExtensionId, number: NumberId) -> Result<()> {
        self.write(move |c| Box::pin(async move { set_default_number(c, extension, number).await }))
            .await
    }
}
