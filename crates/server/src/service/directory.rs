//! Changes to the directory: extensions, their passwords and settings, the
//! organization's alert tone. What a change to an extension means for
//! cached sessions and open WebSockets travels as the `extension.changed`
//! event the store records with it, so that every node reacts.

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::workers::jobs::{Job, JobKind, JobOutcome, JobProgress, RefusedRow};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use switchboard_domain::phone::Country;
use switchboard_domain::{
    AlertTone, DisplayName, ExtensionId, ExtensionNumber, InvalidValue, OrgId, Password, Role,
};
use switchboard_store::{Extension, ExtensionUpdate, NewExtension, NewPassword, Org, StoreError};

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

/// A row of a CSV import, validated, with the line it came from.
pub struct ImportRow {
    /// The line of the CSV, counting the header as line 1.
    pub line: usize,
    pub draft: ExtensionDraft,
}

/// Passwords one import has on the password threads at once: enough to keep
/// them busy, few enough that a sign-in waits behind only a few import
/// hashes instead of the whole file.
const IMPORT_HASHES_IN_FLIGHT: usize = 4;

const IMPORT_INTERRUPTED: &str =
    "the server shut down before the import finished; nothing was created, import the file again";

/// Starts importing `rows` (validated, with distinct numbers) into the
/// administrator's organization as a job, and answers it as it starts.
///
/// The outcome is all or nothing: numbers already taken are checked before
/// any password is hashed, and when a row is refused the job fails listing
/// every refused row and creates none; otherwise the passwords are hashed
/// and every extension is created in one transaction. A failure part-way
/// (shutdown, the store) creates nothing and says so.
pub async fn start_import(
    app: &Arc<App>,
    admin: &Extension,
    rows: Vec<ImportRow>,
) -> ServiceResult<Job> {
    let org = admin.org_id;
    let admin_id = admin.id;
    let worker = Arc::clone(app);
    app.jobs
        .start(
            org,
            admin_id,
            JobKind::ExtensionImport,
            rows.len(),
            move |progress| async move {
                let outcome = import(&worker, org, rows, progress).await;
                match &outcome {
                    JobOutcome::Succeeded { created } => {
                        tracing::info!(admin = %admin_id, created, "extensions imported");
                    }
                    JobOutcome::Refused(rows) => {
                        tracing::info!(admin = %admin_id, refused = rows.len(), "import refused");
                    }
                    JobOutcome::Failed(reason) => {
                        tracing::warn!(admin = %admin_id, %reason, "import failed");
                    }
                }
                outcome
            },
        )
        .await?
        .map_err(|busy| ServiceError::JobRunning { job: busy.running })
}

async fn import(
    app: &App,
    org: OrgId,
    rows: Vec<ImportRow>,
    mut progress: JobProgress,
) -> JobOutcome {
    match taken_rows(app, org, &rows).await {
        Ok(refused) if !refused.is_empty() => return JobOutcome::Refused(refused),
        Ok(_) => {}
        Err(outcome) => return outcome,
    }

    let mut hashes = Vec::with_capacity(rows.len());
    let passwords: Vec<Password> = rows.iter().map(|r| r.draft.password.clone()).collect();
    let workers = app.passwords.clone();
    let mut hashing = futures_util::stream::iter(passwords)
        .map(move |password| {
            let workers = workers.clone();
            async move { workers.hash(password).await }
        })
        .buffered(IMPORT_HASHES_IN_FLIGHT);
    let stopping = progress.stopping();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            biased;
            () = &mut stopping => return JobOutcome::Failed(IMPORT_INTERRUPTED.to_owned()),
            next = hashing.next() => match next {
                Some(Ok(hash)) => {
                    hashes.push(hash);
                    progress.advance(hashes.len());
                }
                Some(Err(_)) => {
                    return JobOutcome::Failed(
                        "the passwords could not be hashed; nothing was created".to_owned(),
                    );
                }
                None => break,
            }
        }
    }
    drop(hashing);
    // Past this point the transaction is not abandoned: once queued it may
    // commit, and the job must not claim otherwise.
    if progress.is_stopping() {
        return JobOutcome::Failed(IMPORT_INTERRUPTED.to_owned());
    }

    let new = rows
        .iter()
        .zip(hashes)
        .map(|(row, password_hash)| NewExtension {
            number: row.draft.number.clone(),
            name: row.draft.name.clone(),
            role: row.draft.role,
            password_hash,
        })
        .collect();
    match app.store.create_extensions(org, new, app.clock.now()).await {
        Ok(created) => JobOutcome::Succeeded {
            created: created.len(),
        },
        // Someone took a number while the passwords were hashed.
        Err(StoreError::Conflict(message)) => match taken_rows(app, org, &rows).await {
            Ok(refused) if !refused.is_empty() => JobOutcome::Refused(refused),
            Ok(_) => JobOutcome::Failed(format!("{message}; nothing was created")),
            Err(outcome) => outcome,
        },
        Err(e) => store_failure(&e),
    }
}

/// The rows whose number is already taken in the organization.
async fn taken_rows(
    app: &App,
    org: OrgId,
    rows: &[ImportRow],
) -> Result<Vec<RefusedRow>, JobOutcome> {
    let existing = app
        .store
        .list_extensions(org)
        .await
        .map_err(|e| store_failure(&e))?;
    let taken: HashSet<&str> = existing.iter().map(|e| e.number.as_str()).collect();
    Ok(rows
        .iter()
        .filter(|row| taken.contains(row.draft.number.as_str()))
        .map(|row| RefusedRow {
            line: row.line,
            number: row.draft.number.as_str().to_owned(),
            reason: format!("extension {} already exists", row.draft.number),
        })
        .collect())
}

fn store_failure(e: &StoreError) -> JobOutcome {
    if matches!(e, StoreError::Closed) {
        return JobOutcome::Failed(IMPORT_INTERRUPTED.to_owned());
    }
    tracing::error!(error = %e, "import: store failure");
    JobOutcome::Failed(
        "the extensions could not be stored; nothing was created. Try again, and tell your \
         administrator if it keeps happening"
            .to_owned(),
    )
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

/// Sets the country of numbers typed without `+`. Cached sessions carry
/// the organization, so the cache starts over.
pub async fn set_default_country(app: &App, org: OrgId, code: &str) -> ServiceResult<Org> {
    let country =
        Country::parse(code).map_err(|e| InvalidValue::new("default_country", e.reason))?;
    let org = app.store.set_default_country(org, country).await?;
    app.sessions.forget_all();
    Ok(org)
}
