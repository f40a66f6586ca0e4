//! Organizations, extensions and sessions: the [`Directory`] capability.
//!
//! Changes that end sessions or make what servers cached of an extension
//! stale record an event for that extension in the same transaction, so
//! every node hears of them in order. Sessions are rows: a session revoked
//! through one node is gone for every node at once.

use super::PgStore;
use super::events::{database_now, record};
use crate::{
    Committed, Directory, Extension, ExtensionUpdate, NewExtension, NewPassword, NewSession, Org,
    Recorded, Result, Session, StoreError, TokenHash,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_domain::phone::Country;
use switchboard_domain::{
    AlertTone, DisplayName, EndedSessions, Event, ExtensionId, ExtensionNumber, OrgId, OrgSlug,
    Role, SessionTag, Timestamp,
};

// Column lists as macros, so that statements are `concat!`ed into static
// strings (sqlx takes no SQL built at run time without an audit).
macro_rules! org_columns {
    () => {
        "id, slug, name, alert_tone, default_country"
    };
}
macro_rules! extension_columns {
    () => {
        "id, org_id, number, name, role, disabled, alert_muted"
    };
}

/// Reads an organization from `org_columns!()` starting at column `at`.
fn org_from_row(row: &PgRow, at: usize) -> Result<Org> {
    let tone: String = row.try_get(at + 3)?;
    let country: String = row.try_get(at + 4)?;
    Ok(Org {
        id: OrgId(row.try_get(at)?),
        slug: row.try_get(at + 1)?,
        name: row.try_get(at + 2)?,
        alert_tone: AlertTone::parse(&tone)
            .map_err(|_| StoreError::Backend(format!("unknown alert tone {tone:?}")))?,
        default_country: Country::parse(&country)
            .map_err(|_| StoreError::Backend(format!("unknown country {country:?}")))?,
    })
}

/// Reads an extension from `extension_columns!()` starting at column `at`.
pub(super) fn extension_from_row(row: &PgRow, at: usize) -> Result<Extension> {
    let role: String = row.try_get(at + 4)?;
    Ok(Extension {
        id: ExtensionId(row.try_get(at)?),
        org_id: OrgId(row.try_get(at + 1)?),
        number: row.try_get(at + 2)?,
        name: row.try_get(at + 3)?,
        role: Role::from_canonical(&role)
            .ok_or_else(|| StoreError::Backend(format!("unknown role {role:?}")))?,
        disabled: row.try_get(at + 5)?,
        alert_muted: row.try_get(at + 6)?,
    })
}

/// Whether a statement failed on a unique index or primary key.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

async fn create_org(conn: &mut PgConnection, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
    let inserted = sqlx::query(concat!(
        "INSERT INTO organizations (slug, name, created_at)
         VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
         RETURNING ",
        org_columns!()
    ))
    .bind(slug.as_str())
    .bind(name.as_str())
    .fetch_one(&mut *conn)
    .await;
    let org = match inserted {
        Ok(row) => org_from_row(&row, 0)?,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!(
                "an organization named {slug} already exists"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    // The stream row exists from the start, so recording an event only
    // ever updates it.
    sqlx::query("INSERT INTO org_streams (org_id, seq) VALUES ($1, 0)")
        .bind(org.id.0)
        .execute(&mut *conn)
        .await?;
    Ok(org)
}

async fn org_by_slug(store: &PgStore, slug: &OrgSlug) -> Result<Option<Org>> {
    sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM organizations WHERE slug = $1"
    ))
    .bind(slug.as_str())
    .fetch_optional(store.pool())
    .await?
    .map(|r| org_from_row(&r, 0))
    .transpose()
}

async fn list_orgs(store: &PgStore) -> Result<Vec<Org>> {
    // Byte order, as SQLite sorts text, whatever the database's locale.
    sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM organizations ORDER BY slug COLLATE \"C\""
    ))
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| org_from_row(r, 0))
    .collect()
}

async fn set_alert_tone(conn: &mut PgConnection, org: OrgId, tone: AlertTone) -> Result<Org> {
    let row = sqlx::query(concat!(
        "UPDATE organizations SET alert_tone = $2 WHERE id = $1 RETURNING ",
        org_columns!()
    ))
    .bind(org.0)
    .bind(tone.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("organization"))?;
    org_from_row(&row, 0)
}

async fn set_default_country(conn: &mut PgConnection, org: OrgId, country: Country) -> Result<Org> {
    let row = sqlx::query(concat!(
        "UPDATE organizations SET default_country = $2 WHERE id = $1 RETURNING ",
        org_columns!()
    ))
    .bind(org.0)
    .bind(country.code())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("organization"))?;
    org_from_row(&row, 0)
}

/// Inserts the whole batch in one statement (bulk provisioning creates
/// thousands at once). Numbers already taken are skipped by the insert and
/// found missing here: the first of them, in the caller's order, is the
/// conflict, and the writer's savepoint undoes the rest.
async fn create_extensions(
    conn: &mut PgConnection,
    org: OrgId,
    new: &[NewExtension],
    now: Timestamp,
) -> Result<Vec<Extension>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let numbers: Vec<String> = new.iter().map(|e| e.number.as_str().to_owned()).collect();
    let names: Vec<String> = new.iter().map(|e| e.name.as_str().to_owned()).collect();
    let roles: Vec<String> = new.iter().map(|e| e.role.as_str().to_owned()).collect();
    let hashes: Vec<String> = new.iter().map(|e| e.password_hash.clone()).collect();
    let rows = sqlx::query(concat!(
        "INSERT INTO extensions (org_id, number, name, role, password_hash, created_at)
         SELECT $1, n.number, n.name, n.role, n.hash, $6
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
              WITH ORDINALITY AS n(number, name, role, hash, position)
         ORDER BY n.position
         ON CONFLICT (org_id, number) DO NOTHING
         RETURNING ",
        extension_columns!()
    ))
    .bind(org.0)
    .bind(&numbers)
    .bind(&names)
    .bind(&roles)
    .bind(&hashes)
    .bind(now.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut inserted: HashMap<String, Extension> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let ext = extension_from_row(row, 0)?;
        inserted.insert(ext.number.clone(), ext);
    }
    let mut created = Vec::with_capacity(new.len());
    for e in new {
        match inserted.remove(e.number.as_str()) {
            Some(ext) => created.push(ext),
            None => {
                return Err(StoreError::Conflict(format!(
                    "extension {} already exists",
                    e.number
                )));
            }
        }
    }
    Ok(created)
}

async fn extension(store: &PgStore, org: OrgId, id: ExtensionId) -> Result<Option<Extension>> {
    sqlx::query(concat!(
        "SELECT ",
        extension_columns!(),
        " FROM extensions WHERE id = $1 AND org_id = $2"
    ))
    .bind(id.0)
    .bind(org.0)
    .fetch_optional(store.pool())
    .await?
    .map(|r| extension_from_row(&r, 0))
    .transpose()
}

async fn extension_for_sign_in(
    store: &PgStore,
    org: OrgId,
    number: &ExtensionNumber,
) -> Result<Option<(Extension, String)>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        extension_columns!(),
        ", password_hash FROM extensions
         WHERE org_id = $1 AND number = $2"
    ))
    .bind(org.0)
    .bind(number.as_str())
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((extension_from_row(&row, 0)?, row.try_get(7)?)))
}

async fn list_extensions(store: &PgStore, org: OrgId) -> Result<Vec<Extension>> {
    sqlx::query(concat!(
        "SELECT ",
        extension_columns!(),
        " FROM extensions WHERE org_id = $1
         ORDER BY length(number), number COLLATE \"C\""
    ))
    .bind(org.0)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| extension_from_row(r, 0))
    .collect()
}

async fn update_extension(
    conn: &mut PgConnection,
    org: OrgId,
    id: ExtensionId,
    update: &ExtensionUpdate,
) -> Result<Committed<Extension>> {
    if update.role.is_some() || update.disabled.is_some() {
        // Changes that may take an administrator away queue on their
        // organization's row, so that the check below sees every earlier
        // one committed: two administrators on two nodes demoting each
        // other at once cannot both succeed. (No key update: creating
        // extensions, which only references the row, does not wait.)
        sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(org.0)
            .execute(&mut *conn)
            .await?;
    }
    let was_enabled_admin: Option<bool> = sqlx::query_scalar(
        "SELECT role = $3 AND NOT disabled FROM extensions WHERE id = $1 AND org_id = $2",
    )
    .bind(id.0)
    .bind(org.0)
    .bind(Role::Admin.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let row = sqlx::query(concat!(
        "UPDATE extensions SET
            name = coalesce($3, name),
            role = coalesce($4, role),
            disabled = coalesce($5, disabled),
            alert_muted = coalesce($6, alert_muted)
         WHERE id = $1 AND org_id = $2
         RETURNING ",
        extension_columns!()
    ))
    .bind(id.0)
    .bind(org.0)
    .bind(update.name.as_ref().map(DisplayName::as_str))
    .bind(update.role.map(Role::as_str))
    .bind(update.disabled)
    .bind(update.alert_muted)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("extension"))?;
    let ext = extension_from_row(&row, 0)?;
    // Checked after the change, in its transaction and under the
    // organization's lock taken above.
    let took_away_admin =
        was_enabled_admin == Some(true) && (ext.role != Role::Admin || ext.disabled);
    if took_away_admin && !has_enabled_admin(conn, org).await? {
        return Err(StoreError::Conflict(
            "an organization must keep an enabled administrator; make another one first".into(),
        ));
    }
    // A disabled extension keeps no session.
    let sessions_ended = if ext.disabled {
        sqlx::query("DELETE FROM sessions WHERE extension_id = $1")
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
        EndedSessions::AllExcept(None)
    } else {
        EndedSessions::None
    };
    let event = extension_changed(conn, org, id, sessions_ended).await?;
    Ok(Committed {
        value: ext,
        events: vec![event],
    })
}

async fn has_enabled_admin(conn: &mut PgConnection, org: OrgId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM extensions
                        WHERE org_id = $1 AND role = $2 AND NOT disabled)",
    )
    .bind(org.0)
    .bind(Role::Admin.as_str())
    .fetch_one(&mut *conn)
    .await?)
}

/// Records that extension `id` changed, for its own servers' eyes.
async fn extension_changed(
    conn: &mut PgConnection,
    org: OrgId,
    id: ExtensionId,
    sessions_ended: EndedSessions,
) -> Result<Recorded> {
    let now = database_now(conn).await?;
    record(
        conn,
        org,
        Event::ExtensionChanged {
            extension_id: id,
            sessions_ended,
        },
        &Arc::from([id]),
        now,
    )
    .await
}

async fn set_password_hash(conn: &mut PgConnection, change: &NewPassword) -> Result<Committed<()>> {
    let NewPassword {
        org,
        extension,
        hash,
        keep,
    } = change;
    let changed =
        sqlx::query("UPDATE extensions SET password_hash = $3 WHERE id = $1 AND org_id = $2")
            .bind(extension.0)
            .bind(org.0)
            .bind(hash)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound("extension"));
    }
    sqlx::query("DELETE FROM sessions WHERE extension_id = $1 AND token_hash IS DISTINCT FROM $2")
        .bind(extension.0)
        .bind(keep.as_ref().map(|k| k.0.to_vec()))
        .execute(&mut *conn)
        .await?;
    let ended = EndedSessions::AllExcept(keep.as_ref().map(TokenHash::tag));
    Ok(Committed {
        value: (),
        events: vec![extension_changed(conn, *org, *extension, ended).await?],
    })
}

async fn create_session(conn: &mut PgConnection, new: &NewSession) -> Result<()> {
    let NewSession {
        token,
        extension,
        now,
        expires_at,
    } = new;
    sqlx::query(
        "INSERT INTO sessions (token_hash, extension_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&token.0[..])
    .bind(extension.0)
    .bind(now.0)
    .bind(expires_at.0)
    .execute(&mut *conn)
    .await?;
    // Expired sessions of this extension are of no use to anyone.
    sqlx::query("DELETE FROM sessions WHERE extension_id = $1 AND expires_at <= $2")
        .bind(extension.0)
        .bind(now.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn session(store: &PgStore, token: &TokenHash, now: Timestamp) -> Result<Option<Session>> {
    let Some(row) = sqlx::query(
        "SELECT s.expires_at, e.id, e.org_id, e.number, e.name, e.role, e.disabled, e.alert_muted,
                o.id, o.slug, o.name, o.alert_tone, o.default_country
         FROM sessions s
         JOIN extensions e ON e.id = s.extension_id
         JOIN organizations o ON o.id = e.org_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT e.disabled",
    )
    .bind(&token.0[..])
    .bind(now.0)
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Session {
        expires_at: Timestamp(row.try_get(0)?),
        extension: extension_from_row(&row, 1)?,
        org: org_from_row(&row, 8)?,
    }))
}

async fn live_sessions(
    store: &PgStore,
    tags: &[SessionTag],
    now: Timestamp,
) -> Result<Vec<SessionTag>> {
    let tags: Vec<Vec<u8>> = tags.iter().map(|t| t.as_bytes().to_vec()).collect();
    // A tag is the first half of a token hash: every hash that starts with
    // it lies between the tag and the tag followed by sixteen 0xff bytes,
    // a range the primary key answers (bytea compares byte by byte).
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT t.tag FROM unnest($1::bytea[]) WITH ORDINALITY AS t(tag, position)
         WHERE EXISTS (
             SELECT 1 FROM sessions s JOIN extensions e ON e.id = s.extension_id
             WHERE s.token_hash BETWEEN t.tag
                   AND t.tag || '\\xffffffffffffffffffffffffffffffff'::bytea
               AND s.expires_at > $2 AND NOT e.disabled)
         ORDER BY t.position",
    )
    .bind(&tags)
    .bind(now.0)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok())
        .map(SessionTag::new)
        .collect())
}

async fn revoke_session(conn: &mut PgConnection, token: &TokenHash) -> Result<Committed<()>> {
    let ended = sqlx::query(
        "DELETE FROM sessions s USING extensions e
         WHERE s.token_hash = $1 AND e.id = s.extension_id
         RETURNING s.extension_id, e.org_id",
    )
    .bind(&token.0[..])
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = ended else {
        return Ok(Committed {
            value: (),
            events: Vec::new(),
        });
    };
    let extension_id = ExtensionId(row.try_get(0)?);
    let org = OrgId(row.try_get(1)?);
    let now = database_now(conn).await?;
    let event = record(
        conn,
        org,
        Event::SessionEnded {
            extension_id,
            session: token.tag(),
        },
        &Arc::from([extension_id]),
        now,
    )
    .await?;
    Ok(Committed {
        value: (),
        events: vec![event],
    })
}

/// Reads run on the pool and see every commit, this node's or another's.
#[async_trait::async_trait]
impl Directory for PgStore {
    async fn create_org(&self, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
        let (slug, name) = (slug.clone(), name.clone());
        self.write(move |c| Box::pin(async move { create_org(c, &slug, &name).await }))
            .await
    }

    async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<Org>> {
        org_by_slug(self, slug).await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        list_orgs(self).await
    }

    async fn set_alert_tone(&self, org: OrgId, tone: AlertTone) -> Result<Org> {
        self.write(move |c| Box::pin(async move { set_alert_tone(c, org, tone).await }))
            .await
    }

    async fn set_default_country(&self, org: OrgId, country: Country) -> Result<Org> {
        self.write(move |c| Box::pin(async move { set_default_country(c, org, country).await }))
            .await
    }

    async fn create_extensions(
        &self,
        org: OrgId,
        new: Vec<NewExtension>,
        now: Timestamp,
    ) -> Result<Vec<Extension>> {
        self.write(move |c| Box::pin(async move { create_extensions(c, org, &new, now).await }))
            .await
    }

    async fn extension(&self, org: OrgId, id: ExtensionId) -> Result<Option<Extension>> {
        extension(self, org, id).await
    }

    async fn extension_for_sign_in(
        &self,
        org: OrgId,
        number: &ExtensionNumber,
    ) -> Result<Option<(Extension, String)>> {
        extension_for_sign_in(self, org, number).await
    }

    async fn list_extensions(&self, org: OrgId) -> Result<Vec<Extension>> {
        list_extensions(self, org).await
    }

    async fn update_extension(
        &self,
        org: OrgId,
        id: ExtensionId,
        update: ExtensionUpdate,
    ) -> Result<Committed<Extension>> {
        self.write(move |c| Box::pin(async move { update_extension(c, org, id, &update).await }))
            .await
    }

    async fn set_password_hash(&self, change: NewPassword) -> Result<Committed<()>> {
        self.write(move |c| Box::pin(async move { set_password_hash(c, &change).await }))
            .await
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.write(move |c| Box::pin(async move { create_session(c, &session).await }))
            .await
    }

    async fn session(&self, token: &TokenHash, now: Timestamp) -> Result<Option<Session>> {
        session(self, token, now).await
    }

    async fn live_sessions(
        &self,
        tags: Vec<SessionTag>,
        now: Timestamp,
    ) -> Result<Vec<SessionTag>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        live_sessions(self, &tags, now).await
    }

    async fn revoke_session(&self, token: &TokenHash) -> Result<Committed<()>> {
        let token = token.clone();
        self.write(move |c| Box::pin(async move { revoke_session(c, &token).await }))
            .await
    }
}
