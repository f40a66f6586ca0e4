//! Organizations, extensions and sessions.

use crate::{
    Extension, ExtensionUpdate, NewExtension, Org, Result, Session, StoreError, TokenHash,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use switchboard_domain::{
    AlertTone, DisplayName, ExtensionId, ExtensionNumber, OrgId, OrgSlug, Role, Timestamp,
};

const ORG_COLUMNS: &str = "id, slug, name, alert_tone";
const EXTENSION_COLUMNS: &str = "id, org_id, number, name, role, disabled, alert_muted";

fn org_from_row(row: &Row<'_>) -> rusqlite::Result<Org> {
    let tone: String = row.get(3)?;
    Ok(Org {
        id: OrgId(row.get(0)?),
        slug: row.get(1)?,
        name: row.get(2)?,
        alert_tone: AlertTone::parse(&tone).unwrap_or(AlertTone::Chime),
    })
}

/// Reads an extension from `EXTENSION_COLUMNS` starting at column `at`.
pub(super) fn extension_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Extension> {
    let role: String = row.get(at + 4)?;
    Ok(Extension {
        id: ExtensionId(row.get(at)?),
        org_id: OrgId(row.get(at + 1)?),
        number: row.get(at + 2)?,
        name: row.get(at + 3)?,
        role: if role == "admin" {
            Role::Admin
        } else {
            Role::Member
        },
        disabled: row.get(at + 5)?,
        alert_muted: row.get(at + 6)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

pub(super) fn create_org(conn: &Connection, slug: &OrgSlug, name: &DisplayName) -> Result<Org> {
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

pub(super) fn org_by_slug(conn: &Connection, slug: &OrgSlug) -> Result<Option<Org>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE slug = ?1"
        ))?
        .query_row([slug.as_str()], org_from_row)
        .optional()?)
}

pub(super) fn list_orgs(conn: &Connection) -> Result<Vec<Org>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ORG_COLUMNS} FROM organizations ORDER BY slug"
    ))?;
    let rows = stmt.query_map([], org_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn set_alert_tone(conn: &Connection, org: OrgId, tone: AlertTone) -> Result<Org> {
    conn.query_row(
        &format!("UPDATE organizations SET alert_tone = ?2 WHERE id = ?1 RETURNING {ORG_COLUMNS}"),
        params![org.0, tone.as_str()],
        org_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("organization"))
}

pub(super) fn create_extensions(
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

pub(super) fn extension(
    conn: &Connection,
    org: OrgId,
    id: ExtensionId,
) -> Result<Option<Extension>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {EXTENSION_COLUMNS} FROM extensions WHERE id = ?1 AND org_id = ?2"
        ))?
        .query_row(params![id.0, org.0], |r| extension_from_row(r, 0))
        .optional()?)
}

pub(super) fn extension_for_sign_in(
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

pub(super) fn list_extensions(conn: &Connection, org: OrgId) -> Result<Vec<Extension>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EXTENSION_COLUMNS} FROM extensions WHERE org_id = ?1
         ORDER BY length(number), number"
    ))?;
    let rows = stmt.query_map([org.0], |r| extension_from_row(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn update_extension(
    conn: &Connection,
    org: OrgId,
    id: ExtensionId,
    update: &ExtensionUpdate,
) -> Result<Extension> {
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
    if ext.disabled {
        conn.execute("DELETE FROM sessions WHERE extension_id = ?1", [id.0])?;
    }
    Ok(ext)
}

pub(super) fn set_password_hash(
    conn: &Connection,
    org: OrgId,
    id: ExtensionId,
    hash: &str,
    keep: Option<&TokenHash>,
) -> Result<()> {
    let changed = conn.execute(
        "UPDATE extensions SET password_hash = ?3 WHERE id = ?1 AND org_id = ?2",
        params![id.0, org.0, hash],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("extension"));
    }
    conn.execute(
        "DELETE FROM sessions WHERE extension_id = ?1 AND token_hash IS NOT ?2",
        params![id.0, keep.map(|k| k.0.to_vec())],
    )?;
    Ok(())
}

pub(super) fn create_session(
    conn: &Connection,
    token: &TokenHash,
    extension: ExtensionId,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
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

pub(super) fn session(
    conn: &Connection,
    token: &TokenHash,
    now: Timestamp,
) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT s.expires_at, {ext}, {org}
         FROM sessions s
         JOIN extensions e ON e.id = s.extension_id
         JOIN organizations o ON o.id = e.org_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND e.disabled = 0",
        ext = "e.id, e.org_id, e.number, e.name, e.role, e.disabled, e.alert_muted",
        org = "o.id, o.slug, o.name, o.alert_tone",
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
                    alert_tone: AlertTone::parse(&tone).unwrap_or(AlertTone::Chime),
                },
            })
        })
        .optional()?)
}

pub(super) fn revoke_session(conn: &Connection, token: &TokenHash) -> Result<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
        .execute([&token.0[..]])?;
    Ok(())
}
