//! Organizations, extensions and sessions: the [`Directory`] capability.
//!
//! Changes that end sessions or make what servers cached of an extension
//! stale record an event for that extension in the same transaction, so
//! every node hears of them in order.

use super::SqliteStore;
use super::events::{database_now, record};
use crate::{
    Committed, Directory, Extension, ExtensionUpdate, NewExtension, NewPassword, NewSession, Org,
    Result, Session, StoreError, TokenHash,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Arc;
use switchboard_domain::phone::Country;
use switchboard_domain::{
    AlertTone, DisplayName, EndedSessions, Event, ExtensionId, ExtensionNumber, OrgId, OrgSlug,
    Role, SessionTag, Timestamp,
};

const ORG_COLUMNS: &str = "id, slug, name, alert_tone, default_country";
const EXTENSION_COLUMNS: &str = "id, org_id, number, name, role, disabled, alert_muted";

fn org_from_row(row: &Row<'_>) -> rusqlite::Result<Org> {
    let tone: String = row.get(3)?;
    Ok(Org {
        id: OrgId(row.get(0)?),
        slug: row.get(1)?,
        name: row.get(2)?,
        alert_tone: tone_from_column(&tone, 3)?,
        default_country: country_from_column(&row.get::<_, String>(4)?, 4)?,
    })
}

/// The stored country: only codes this store writes are countries.
fn country_from_column(code: &str, column: usize) -> rusqlite::Result<Country> {
    Country::parse(code).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown country {code:?}").into(),
        )
    })
}

/// The stored tone: only the spellings this store writes are tones.
fn tone_from_column(tone: &str, column: usize) -> rusqlite::Result<AlertTone> {
    AlertTone::parse(tone).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown alert tone {tone:?}").into(),
        )
    })
}

/// Reads an extension from `EXTENSION_COLUMNS` starting at column `at`.
fn extension_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Extension> {
    let role: String = row.get(at + 4)?;
    Ok(Extension {
        id: ExtensionId(row.get(at)?),
        org_id: OrgId(row.get(at + 1)?),
        number: row.get(at + 2)?,
        name: row.get(at + 3)?,
        role: Role::from_canonical(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                at + 4,
                rusqlite::types::Type::Text,
                format!("unknown role {role:?}").into(),
            )
        })?,
        disabled: row.get(at + 5)?,
        alert_muted: row.get(at + 6)?,
    })
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn create_org(conn: &Connection, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
    let inserted = conn.query_row(
        &format!(
            "INSERT INTO organizations (slug, name, created_at)
             VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000 AS INTEGER))
             RETURNING {ORG_COLUMNS}"
        ),
        params![slug.as_str(), name.as_str()],
        org_from_row,
    );
    match inserted {
        Ok(org) => Ok(org),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "an organization named {slug} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}

fn org_by_slug(conn: &Connection, slug: &OrgSlug) -> Result<Option<Org>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE slug = ?1"
        ))?
        .query_row([slug.as_str()], org_from_row)
        .optional()?)
}

fn list_orgs(conn: &Connection) -> Result<Vec<Org>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ORG_COLUMNS} FROM organizations ORDER BY slug"
    ))?;
    let rows = stmt.query_map([], org_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn set_alert_tone(conn: &Connection, org: OrgId, tone: AlertTone) -> Result<Org> {
    conn.query_row(
        &format!("UPDATE organizations SET alert_tone = ?2 WHERE id = ?1 RETURNING {ORG_COLUMNS}"),
        params![org.0, tone.as_str()],
        org_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("organization"))
}

fn set_default_country(conn: &Connection, org: OrgId, country: Country) -> Result<Org> {
    conn.query_row(
        &format!(
            "UPDATE organizations SET default_country = ?2 WHERE id = ?1 RETURNING {ORG_COLUMNS}"
        ),
        params![org.0, country.code()],
        org_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("organization"))
}

fn create_extensions(
    conn: &Connection,
    org: OrgId,
    new: &[NewExtension],
    now: Timestamp,
) -> Result<Vec<Extension>> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO extensions (org_id, number, name, role, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         RETURNING {EXTENSION_COLUMNS}"
    ))?;
    let mut created = Vec::with_capacity(new.len());
    for e in new {
        let row = stmt.query_row(
            params![
                org.0,
                e.number.as_str(),
                e.name.as_str(),
                e.role.as_str(),
                e.password_hash,
                now.0
            ],
            |r| extension_from_row(r, 0),
        );
        match row {
            Ok(ext) => created.push(ext),
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict(format!(
                    "extension {} already exists",
                    e.number
                )));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(created)
}

fn extension(conn: &Connection, org: OrgId, id: ExtensionId) -> Result<Option<Extension>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {EXTENSION_COLUMNS} FROM extensions WHERE id = ?1 AND org_id = ?2"
        ))?
        .query_row(params![id.0, org.0], |r| extension_from_row(r, 0))
        .optional()?)
}

fn extension_for_sign_in(
    conn: &Connection,
    org: OrgId,
    number: &ExtensionNumber,
) -> Result<Option<(Extension, String)>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {EXTENSION_COLUMNS}, password_hash FROM extensions
             WHERE org_id = ?1 AND number = ?2"
        ))?
        .query_row(params![org.0, number.as_str()], |r| {
            Ok((extension_from_row(r, 0)?, r.get(7)?))
        })
        .optional()?)
}

fn list_extensions(conn: &Connection, org: OrgId) -> Result<Vec<Extension>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EXTENSION_COLUMNS} FROM extensions WHERE org_id = ?1
         ORDER BY length(number), number"
    ))?;
    let rows = stmt.query_map([org.0], |r| extension_from_row(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn update_extension(
    conn: &Connection,
    org: OrgId,
    id: ExtensionId,
    update: &ExtensionUpdate,
) -> Result<Committed<Extension>> {
    let was_enabled_admin: Option<bool> = conn
        .prepare_cached(
            "SELECT role = ?3 AND disabled = 0 FROM extensions WHERE id = ?1 AND org_id = ?2",
        )?
        .query_row(params![id.0, org.0, Role::Admin.as_str()], |r| r.get(0))
        .optional()?;
    let ext = conn
        .query_row(
            &format!(
                "UPDATE extensions SET
                    name = coalesce(?3, name),
                    role = coalesce(?4, role),
                    disabled = coalesce(?5, disabled),
                    alert_muted = coalesce(?6, alert_muted)
                 WHERE id = ?1 AND org_id = ?2
                 RETURNING {EXTENSION_COLUMNS}"
            ),
            params![
                id.0,
                org.0,
                update.name.as_ref().map(DisplayName::as_str),
                update.role.map(Role::as_str),
                update.disabled,
                update.alert_muted,
            ],
            |r| extension_from_row(r, 0),
        )
        .optional()?
        .ok_or(StoreError::NotFound("extension"))?;
    // Checked after the change, in its transaction: two administrators
    // demoting each other at once cannot both succeed.
    let took_away_admin =
        was_enabled_admin == Some(true) && (ext.role != Role::Admin || ext.disabled);
    if took_away_admin && !has_enabled_admin(conn, org)? {
        return Err(StoreError::Conflict(
            "an organization must keep an enabled administrator; make another one first".into(),
        ));
    }
    // A disabled extension keeps no session.
    let sessions_ended = if ext.disabled {
        conn.execute("DELETE FROM sessions WHERE extension_id = ?1", [id.0])?;
        EndedSessions::AllExcept(None)
    } else {
        EndedSessions::None
    };
    let event = extension_changed(conn, id, sessions_ended)?;
    Ok(Committed {
        value: ext,
        events: vec![event],
    })
}

fn has_enabled_admin(conn: &Connection, org: OrgId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM extensions
                            WHERE org_id = ?1 AND role = ?2 AND disabled = 0)",
        )?
        .query_row(params![org.0, Role::Admin.as_str()], |r| r.get(0))?)
}

/// Records that extension `id` changed, for its own servers' eyes.
fn extension_changed(
    conn: &Connection,
    id: ExtensionId,
    sessions_ended: EndedSessions,
) -> Result<crate::Recorded> {
    record(
        conn,
        Event::ExtensionChanged {
            extension_id: id,
            sessions_ended,
        },
        &Arc::from([id]),
        database_now(conn)?,
    )
}

fn set_password_hash(conn: &Connection, change: &NewPassword) -> Result<Committed<()>> {
    let NewPassword {
        org,
        extension,
        hash,
        keep,
    } = change;
    let changed = conn.execute(
        "UPDATE extensions SET password_hash = ?3 WHERE id = ?1 AND org_id = ?2",
        params![extension.0, org.0, hash],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("extension"));
    }
    conn.execute(
        "DELETE FROM sessions WHERE extension_id = ?1 AND token_hash IS NOT ?2",
        params![extension.0, keep.as_ref().map(|k| k.0.to_vec())],
    )?;
    let ended = EndedSessions::AllExcept(keep.as_ref().map(TokenHash::tag));
    Ok(Committed {
        value: (),
        events: vec![extension_changed(conn, *extension, ended)?],
    })
}

fn create_session(conn: &Connection, new: &NewSession) -> Result<()> {
    let NewSession {
        token,
        extension,
        now,
        expires_at,
    } = new;
    conn.prepare_cached(
        "INSERT INTO sessions (token_hash, extension_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&token.0[..], extension.0, now.0, expires_at.0])?;
    // Expired sessions of this extension are of no use to anyone.
    conn.prepare_cached("DELETE FROM sessions WHERE extension_id = ?1 AND expires_at <= ?2")?
        .execute(params![extension.0, now.0])?;
    Ok(())
}

fn session(conn: &Connection, token: &TokenHash, now: Timestamp) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT s.expires_at, {ext}, {org}
         FROM sessions s
         JOIN extensions e ON e.id = s.extension_id
         JOIN organizations o ON o.id = e.org_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND e.disabled = 0",
        ext = "e.id, e.org_id, e.number, e.name, e.role, e.disabled, e.alert_muted",
        org = "o.id, o.slug, o.name, o.alert_tone, o.default_country",
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![&token.0[..], now.0], |r| {
            let tone: String = r.get(11)?;
            Ok(Session {
                expires_at: Timestamp(r.get(0)?),
                extension: extension_from_row(r, 1)?,
                org: Org {
                    id: OrgId(r.get(8)?),
                    slug: r.get(9)?,
                    name: r.get(10)?,
                    alert_tone: tone_from_column(&tone, 11)?,
                    default_country: country_from_column(&r.get::<_, String>(12)?, 12)?,
                },
            })
        })
        .optional()?)
}

fn live_sessions(
    conn: &Connection,
    tags: &[SessionTag],
    now: Timestamp,
) -> Result<Vec<SessionTag>> {
    let tags_json = serde_json::to_string(tags)
        .map_err(|e| StoreError::Backend(format!("cannot list session tags: {e}")))?;
    // A tag is the first half of a token hash: every hash that starts with
    // it lies between the tag and the tag followed by sixteen 0xff bytes,
    // a range the primary key answers.
    let mut statement = conn.prepare_cached(
        "SELECT t.value FROM json_each(?1) t
         WHERE EXISTS (
             SELECT 1 FROM sessions s JOIN extensions e ON e.id = s.extension_id
             WHERE s.token_hash BETWEEN unhex(t.value)
                   AND unhex(t.value || 'ffffffffffffffffffffffffffffffff')
               AND s.expires_at > ?2 AND e.disabled = 0)",
    )?;
    let live = statement
        .query_map(params![tags_json, now.0], |r| r.get::<_, String>(0))?
        .filter_map(|hex| match hex {
            Ok(hex) => SessionTag::parse_hex(&hex).map(Ok),
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(live)
}

fn revoke_session(conn: &Connection, token: &TokenHash) -> Result<Committed<()>> {
    let ended: Option<i64> = conn
        .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 RETURNING extension_id")?
        .query_row([&token.0[..]], |r| r.get(0))
        .optional()?;
    let Some(extension_id) = ended.map(ExtensionId) else {
        return Ok(Committed {
            value: (),
            events: Vec::new(),
        });
    };
    let event = record(
        conn,
        Event::SessionEnded {
            extension_id,
            session: token.tag(),
        },
        &Arc::from([extension_id]),
        database_now(conn)?,
    )?;
    Ok(Committed {
        value: (),
        events: vec![event],
    })
}

/// Readers see the writer's last commit; every method picks the side it needs.
#[async_trait::async_trait]
impl Directory for SqliteStore {
    async fn create_org(&self, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
        let (slug, name) = (slug.clone(), name.clone());
        self.write(move |c| create_org(c, &slug, &name)).await
    }

    async fn org_by_slug(&self, slug: &OrgSlug) -> Result<Option<Org>> {
        let slug = slug.clone();
        self.read(move |c| org_by_slug(c, &slug)).await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        self.read(list_orgs).await
    }

    async fn set_alert_tone(&self, org: OrgId, tone: AlertTone) -> Result<Org> {
        self.write(move |c| set_alert_tone(c, org, tone)).await
    }

    async fn set_default_country(&self, org: OrgId, country: Country) -> Result<Org> {
        self.write(move |c| set_default_country(c, org, country))
            .await
    }

    async fn create_extensions(
        &self,
        org: OrgId,
        new: Vec<NewExtension>,
        now: Timestamp,
    ) -> Result<Vec<Extension>> {
        self.write(move |c| create_extensions(c, org, &new, now))
            .await
    }

    async fn extension(&self, org: OrgId, id: ExtensionId) -> Result<Option<Extension>> {
        self.read(move |c| extension(c, org, id)).await
    }

    async fn extension_for_sign_in(
        &self,
        org: OrgId,
        number: &ExtensionNumber,
    ) -> Result<Option<(Extension, String)>> {
        let number = number.clone();
        self.read(move |c| extension_for_sign_in(c, org, &number))
            .await
    }

    async fn list_extensions(&self, org: OrgId) -> Result<Vec<Extension>> {
        self.read(move |c| list_extensions(c, org)).await
    }

    async fn update_extension(
        &self,
        org: OrgId,
        id: ExtensionId,
        update: ExtensionUpdate,
    ) -> Result<Committed<Extension>> {
        self.write(move |c| update_extension(c, org, id, &update))
            .await
    }

    async fn set_password_hash(&self, change: NewPassword) -> Result<Committed<()>> {
        self.write(move |c| set_password_hash(c, &change)).await
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.write(move |c| create_session(c, &session)).await
    }

    async fn session(&self, token: &TokenHash, now: Timestamp) -> Result<Option<Session>> {
        let token = token.clone();
        self.read(move |c| session(c, &token, now)).await
    }

    async fn live_sessions(
        &self,
        tags: Vec<SessionTag>,
        now: Timestamp,
    ) -> Result<Vec<SessionTag>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |c| live_sessions(c, &tags, now)).await
    }

    async fn revoke_session(&self, token: &TokenHash) -> Result<Committed<()>> {
        let token = token.clone();
        self.write(move |c| revoke_session(c, &token)).await
    }
}
