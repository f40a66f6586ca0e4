//! Changes to the directory: extensions, their passwords and settings, the
//! organization's alert tone. What a change to an extension means for
//! cached sessions and open WebSockets travels as the `extension.changed`
//! event the store records with it, so that every node reacts.

use super::{ServiceError, ServiceResult};
use crate::app::App;
use switchboard_domain::{
    AlertTone, DisplayName, ExtensionId, ExtensionNumber, InvalidValue, OrgId, Password, Role,
};
use switchboard_store::{Extension, ExtensionUpdate, NewExtension, NewPassword, Org};

/// An extension to create, validated but with its password not yet hashed.
pub struct ExtensionDraft {
    pub number: ExtensionNumber,
    pub name: DisplayName,
    pub role: Role,
    pub password: Password,
}

impl ExtensionDraft {
    /// `role` defaults to member.
    pub fn parse(
        number: &str,
        name: &str,
        password: &str,
        role: Option<&str>,
    ) -> Result<Self, InvalidValue> {
        Ok(Self {
            number: ExtensionNumber::parse(number)?,
            name: DisplayName::parse(name)?,
            role: Role::parse(role.unwrap_or("member"))?,
            password: Password::parse_new(password)?,
        })
    }
}

/// Creates every extension or none. The passwords are hashed first, all in
/// flight at once so every password thread is busy, outside any transaction.
pub async fn create_extensions(
    app: &App,
    org: OrgId,
    drafts: Vec<ExtensionDraft>,
) -> ServiceResult<Vec<Extension>> {
    let hashes = futures_util::future::try_join_all(
        drafts
            .iter()
            .map(|d| app.passwords.hash(d.password.clone())),
    )
    .await?;
    let new = drafts
        .into_iter()
        .zip(hashes)
        .map(|(d, password_hash)| NewExtension {
            number: d.number,
            name: d.name,
            role: d.role,
            password_hash,
        })
        .collect();
    Ok(app
        .store
        .create_extensions(org, new, app.clock.now())
        .await?)
}

/// What an administrator asks to change about an extension.
pub struct ExtensionChanges<'a> {
    pub name: Option<&'a str>,
    pub role: Option<&'a str>,
    pub disabled: Option<bool>,
}

/// An administrator changes an extension. Disabling it ends its sessions;
/// an administrator can neither disable themself nor give up their own
/// administrator role, so an organization always keeps one.
pub async fn update_extension(
    app: &App,
    admin: &Extension,
    id: ExtensionId,
    changes: ExtensionChanges<'_>,
) -> ServiceResult<Extension> {
    let update = ExtensionUpdate {
        name: changes.name.map(DisplayName::parse).transpose()?,
        role: changes.role.map(Role::parse).transpose()?,
        disabled: changes.disabled,
        alert_muted: None,
    };
    if id == admin.id && (update.disabled == Some(true) || update.role == Some(Role::Member)) {
        return Err(ServiceError::Refused(
            "you cannot disable yourself or remove your own administrator role",
        ));
    }
    Ok(app
        .store
        .update_extension(admin.org_id, id, update)
        .await?
        .value)
}

/// An administrator sets a new password; the extension is signed out
/// everywhere.
pub async fn reset_password(
    app: &App,
    org: OrgId,
    id: ExtensionId,
    password: &str,
) -> ServiceResult<()> {
    let password = Password::parse_new(password)?;
    let hash = app.passwords.hash(password).await?;
    app.store
        .set_password_hash(NewPassword {
            org,
            extension: id,
            hash,
            keep: None,
        })
        .await?;
    Ok(())
}

/// An extension changes its own settings.
pub async fn update_settings(
    app: &App,
    me: &Extension,
    alert_muted: Option<bool>,
) -> ServiceResult<Extension> {
    let updated = app
        .store
        .update_extension(
            me.org_id,
            me.id,
            ExtensionUpdate {
                alert_muted,
                ..ExtensionUpdate::default()
            },
        )
        .await?
        .value;
    Ok(updated)
}

/// Sets the organization's alert tone. Every cached session carries the
/// organization, so the cache starts over.
pub async fn set_alert_tone(app: &App, org: OrgId, tone: &str) -> ServiceResult<Org> {
    let tone = AlertTone::parse(tone)?;
    let org = app.store.set_alert_tone(org, tone).await?;
    app.sessions.forget_all();
    Ok(org)
}
