//! Business numbers, their assignments to extensions and the carrier
//! connections serving them: the [`Numbers`] capability.

use super::SqliteStore;
use super::directory::is_unique_violation;
use super::events::database_now;
use super::sms;
use crate::{
    Assignment, BusinessNumber, CarrierConnection, Committed, NewConnection, NewNumber,
    NumberUpdate, Numbers, OwnNumber, Result, StoreError,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use switchboard_domain::phone::E164;
use switchboard_domain::{CarrierKind, ConnectionId, ExtensionId, NumberId, OrgId};

const CONNECTION_COLUMNS: &str = "id, org_id, kind, name, settings, sealed_secret";
const NUMBER_COLUMNS: &str = "n.id, n.org_id, n.number, n.sms_enabled, n.connection_id";
/// [`NUMBER_COLUMNS`] for a `RETURNING` clause, which takes no table alias.
const RETURNED_NUMBER_COLUMNS: &str = "id, org_id, number, sms_enabled, connection_id";

fn connection_from_row(row: &Row<'_>) -> rusqlite::Result<CarrierConnection> {
    let kind: String = row.get(2)?;
    Ok(CarrierConnection {
        id: ConnectionId(row.get(0)?),
        org_id: OrgId(row.get(1)?),
        kind: CarrierKind::parse(&kind).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        name: row.get(3)?,
        settings: row.get(4)?,
        sealed_secret: row.get(5)?,
    })
}

fn number_from_row(row: &Row<'_>) -> rusqlite::Result<BusinessNumber> {
    let number: String = row.get(2)?;
    Ok(BusinessNumber {
        id: NumberId(row.get(0)?),
        org_id: OrgId(row.get(1)?),
        number: E164::parse_strict(&number).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        sms_enabled: row.get(3)?,
        connection_id: row.get::<_, Option<i64>>(4)?.map(ConnectionId),
    })
}

fn add_connection(conn: &Connection, new: &NewConnection) -> Result<CarrierConnection> {
    let inserted = conn.query_row(
        &format!(
            "INSERT INTO carrier_connections (org_id, kind, name, settings, sealed_secret, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, CAST(unixepoch('subsec') * 1000 AS INTEGER))
             RETURNING {CONNECTION_COLUMNS}"
        ),
        params![
            new.org.0,
            new.kind.as_str(),
            new.name,
            new.settings,
            new.sealed_secret
        ],
        connection_from_row,
    );
    match inserted {
        Ok(c) => Ok(c),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "a carrier connection named {:?} already exists",
            new.name
        ))),
        Err(e) => Err(e.into()),
    }
}

fn connections(conn: &Connection, org: OrgId) -> Result<Vec<CarrierConnection>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM carrier_connections WHERE org_id = ?1 ORDER BY name"
    ))?;
    let rows = stmt.query_map([org.0], connection_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn connection(conn: &Connection, id: ConnectionId) -> Result<Option<CarrierConnection>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM carrier_connections WHERE id = ?1"
        ))?
        .query_row([id.0], connection_from_row)
        .optional()?)
}

/// Checks that `connection` belongs to `org`.
fn require_connection(conn: &Connection, org: OrgId, connection: ConnectionId) -> Result<()> {
    let found: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM carrier_connections WHERE id = ?1 AND org_id = ?2)",
        )?
        .query_row(params![connection.0, org.0], |r| r.get(0))?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound("carrier connection"))
    }
}

fn add_number(conn: &Connection, new: &NewNumber) -> Result<BusinessNumber> {
    if let Some(c) = new.connection {
        require_connection(conn, new.org, c)?;
    }
    let inserted = conn.query_row(
        &format!(
            "INSERT INTO business_numbers (org_id, number, sms_enabled, connection_id, created_at)
             VALUES (?1, ?2, ?3, ?4, CAST(unixepoch('subsec') * 1000 AS INTEGER))
             RETURNING {RETURNED_NUMBER_COLUMNS}"
        ),
        params![
            new.org.0,
            new.number.as_str(),
            new.sms_enabled,
            new.connection.map(|c| c.0)
        ],
        number_from_row,
    );
    match inserted {
        Ok(n) => Ok(n),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "{} is already a business number",
            new.number
        ))),
        Err(e) => Err(e.into()),
    }
}

fn numbers(conn: &Connection, org: OrgId) -> Result<Vec<BusinessNumber>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {NUMBER_COLUMNS} FROM business_numbers n WHERE n.org_id = ?1 ORDER BY n.number"
    ))?;
    let rows = stmt.query_map([org.0], number_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn number(conn: &Connection, org: OrgId, id: NumberId) -> Result<BusinessNumber> {
    conn.prepare_cached(&format!(
        "SELECT {NUMBER_COLUMNS} FROM business_numbers n WHERE n.id = ?1 AND n.org_id = ?2"
    ))?
    .query_row(params![id.0, org.0], number_from_row)
    .optional()?
    .ok_or(StoreError::NotFound("business number"))
}

fn update_number(
    conn: &Connection,
    org: OrgId,
    id: NumberId,
    update: &NumberUpdate,
) -> Result<BusinessNumber> {
    let current = number(conn, org, id)?;
    if let Some(Some(c)) = update.connection {
        require_connection(conn, org, c)?;
    }
    let sms_enabled = update.sms_enabled.unwrap_or(current.sms_enabled);
    let connection = update.connection.unwrap_or(current.connection_id);
    conn.prepare_cached(
        "UPDATE business_numbers SET sms_enabled = ?2, connection_id = ?3 WHERE id = ?1",
    )?
    .execute(params![id.0, sms_enabled, connection.map(|c| c.0)])?;
    if !sms_enabled {
        // A number that no longer texts is nobody's default.
        conn.prepare_cached("UPDATE number_assignments SET is_default = 0 WHERE number_id = ?1")?
            .execute([id.0])?;
    }
    if sms_enabled != current.sms_enabled {
        // Its extensions' defaults pass to another of their numbers, or to
        // this one where they had none.
        let extensions: Vec<i64> = conn
            .prepare_cached("SELECT extension_id FROM number_assignments WHERE number_id = ?1")?
            .query_map([id.0], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for extension in extensions {
            fill_default(conn, ExtensionId(extension))?;
        }
    }
    number(conn, org, id)
}

fn number_by_e164(conn: &Connection, number: &E164) -> Result<Option<BusinessNumber>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {NUMBER_COLUMNS} FROM business_numbers n WHERE n.number = ?1"
        ))?
        .query_row([number.as_str()], number_from_row)
        .optional()?)
}

/// Checks that `extension` is an extension of `org`.
fn require_extension(conn: &Connection, org: OrgId, extension: ExtensionId) -> Result<()> {
    let found: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM extensions WHERE id = ?1 AND org_id = ?2)")?
        .query_row(params![extension.0, org.0], |r| r.get(0))?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound("extension"))
    }
}

fn has_default(conn: &Connection, extension: ExtensionId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM number_assignments
                            WHERE extension_id = ?1 AND is_default = 1)",
        )?
        .query_row([extension.0], |r| r.get(0))?)
}

/// Makes the extension's first SMS-enabled number its default when it has
/// none.
fn fill_default(conn: &Connection, extension: ExtensionId) -> Result<()> {
    if has_default(conn, extension)? {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE number_assignments SET is_default = 1
         WHERE extension_id = ?1 AND number_id = (
             SELECT a.number_id FROM number_assignments a
             JOIN business_numbers n ON n.id = a.number_id
             WHERE a.extension_id = ?1 AND n.sms_enabled = 1
             ORDER BY n.number LIMIT 1)",
    )?
    .execute([extension.0])?;
    Ok(())
}

fn assign_number(
    conn: &Connection,
    org: OrgId,
    id: NumberId,
    to: ExtensionId,
) -> Result<Committed<()>> {
    number(conn, org, id)?;
    require_extension(conn, org, to)?;
    conn.prepare_cached(
        "INSERT INTO number_assignments (number_id, extension_id, is_default) VALUES (?1, ?2, 0)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![id.0, to.0])?;
    fill_default(conn, to)?;
    let events = sms::sync_holders(conn, id, to, true, database_now(conn)?)?;
    Ok(Committed { value: (), events })
}

fn unassign_number(
    conn: &Connection,
    org: OrgId,
    id: NumberId,
    from: ExtensionId,
) -> Result<Committed<()>> {
    number(conn, org, id)?;
    require_extension(conn, org, from)?;
    conn.prepare_cached(
        "DELETE FROM number_assignments WHERE number_id = ?1 AND extension_id = ?2",
    )?
    .execute(params![id.0, from.0])?;
    fill_default(conn, from)?;
    let events = sms::sync_holders(conn, id, from, false, database_now(conn)?)?;
    Ok(Committed { value: (), events })
}

fn assignments(conn: &Connection, org: OrgId) -> Result<Vec<Assignment>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.number_id, a.extension_id FROM number_assignments a
         JOIN business_numbers n ON n.id = a.number_id
         WHERE n.org_id = ?1 ORDER BY n.number, a.extension_id",
    )?;
    let rows = stmt.query_map([org.0], |r| {
        Ok(Assignment {
            number: NumberId(r.get(0)?),
            extension: ExtensionId(r.get(1)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn numbers_of(conn: &Connection, extension: ExtensionId) -> Result<Vec<OwnNumber>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {NUMBER_COLUMNS}, a.is_default FROM number_assignments a
         JOIN business_numbers n ON n.id = a.number_id
         WHERE a.extension_id = ?1 ORDER BY n.number"
    ))?;
    let rows = stmt.query_map([extension.0], |r| {
        Ok(OwnNumber {
            number: number_from_row(r)?,
            default: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn set_default_number(conn: &Connection, extension: ExtensionId, id: NumberId) -> Result<()> {
    let usable: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM number_assignments a
                            JOIN business_numbers n ON n.id = a.number_id
                            WHERE a.extension_id = ?1 AND a.number_id = ?2 AND n.sms_enabled = 1)",
        )?
        .query_row(params![extension.0, id.0], |r| r.get(0))?;
    if !usable {
        return Err(StoreError::NotFound("SMS-enabled number of yours"));
    }
    conn.prepare_cached(
        "UPDATE number_assignments SET is_default = (number_id = ?2) WHERE extension_id = ?1",
    )?
    .execute(params![extension.0, id.0])?;
    Ok(())
}

#[async_trait::async_trait]
impl Numbers for SqliteStore {
    async fn add_connection(&self, new: NewConnection) -> Result<CarrierConnection> {
        self.write(move |c| add_connection(c, &new)).await
    }

    async fn connections(&self, org: OrgId) -> Result<Vec<CarrierConnection>> {
        self.read(move |c| connections(c, org)).await
    }

    async fn connection(&self, id: ConnectionId) -> Result<Option<CarrierConnection>> {
        self.read(move |c| connection(c, id)).await
    }

    async fn add_number(&self, new: NewNumber) -> Result<BusinessNumber> {
        self.write(move |c| add_number(c, &new)).await
    }

    async fn numbers(&self, org: OrgId) -> Result<Vec<BusinessNumber>> {
        self.read(move |c| numbers(c, org)).await
    }

    async fn update_number(
        &self,
        org: OrgId,
        id: NumberId,
        update: NumberUpdate,
    ) -> Result<BusinessNumber> {
        self.write(move |c| update_number(c, org, id, &update))
            .await
    }

    async fn number_by_e164(&self, number: &E164) -> Result<Option<BusinessNumber>> {
        let number = number.clone();
        self.read(move |c| number_by_e164(c, &number)).await
    }

    async fn assign_number(
        &self,
        org: OrgId,
        number: NumberId,
        to: ExtensionId,
    ) -> Result<Committed<()>> {
        self.write(move |c| assign_number(c, org, number, to)).await
    }

    async fn unassign_number(
        &self,
        org: OrgId,
        number: NumberId,
        from: ExtensionId,
    ) -> Result<Committed<()>> {
        self.write(move |c| unassign_number(c, org, number, from))
            .await
    }

    async fn assignments(&self, org: OrgId) -> Result<Vec<Assignment>> {
        self.read(move |c| assignments(c, org)).await
    }

    async fn numbers_of(&self, extension: ExtensionId) -> Result<Vec<OwnNumber>> {
        self.read(move |c| numbers_of(c, extension)).await
    }

    async fn set_default_number(&self, extension: ExtensionId, number: NumberId) -> Result<()> {
        self.write(move |c| set_default_number(c, extension, number))
            .await
    }
}
