//! Signing in and out, and changing one's own password.

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::auth::{self, Authed};
use std::net::IpAddr;
use switchboard_domain::{ExtensionNumber, OrgSlug, Password, Timestamp};
use switchboard_store::{Extension, NewPassword, NewSession, Org};

/// What someone typed on the sign-in form.
pub struct Credentials<'a> {
    pub organization: &'a str,
    pub extension: &'a str,
    pub password: &'a str,
}

pub struct SignedIn {
    pub token: String,
    pub expires_at: Timestamp,
    pub extension: Extension,
    pub org: Org,
}

/// Checks the credentials under the failed-sign-in limit and opens a
/// session. A wrong organization, number or password all fail alike, and
/// take as long. The attempt is counted before the password is checked, so
/// concurrent guesses cannot outrun the limit.
pub async fn sign_in(
    app: &App,
    credentials: Credentials<'_>,
    address: IpAddr,
) -> ServiceResult<SignedIn> {
    let invalid = |_| ServiceError::InvalidCredentials;
    let slug = OrgSlug::parse(credentials.organization).map_err(invalid)?;
    let number = ExtensionNumber::parse(credentials.extension).map_err(invalid)?;
    let password = Password::parse_attempt(credentials.password).map_err(invalid)?;
    let account = format!("{slug}/{number}");
    let attempt = app
        .limiter
        .attempt(&account, address, app.clock.now())
        .await?
        .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;

    let (org, extension) = match verify(app, &slug, &number, password).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            // The attempt stays counted as a failure.
            drop(attempt);
            tracing::info!(%account, %address, "failed sign-in");
            return Err(ServiceError::InvalidCredentials);
        }
        Err(e) => {
            app.limiter.undecided(attempt).await;
            return Err(e);
        }
    };
    if extension.disabled {
        drop(attempt);
        return Err(ServiceError::Forbidden(
            "this extension is disabled; ask an administrator",
        ));
    }
    app.limiter.succeeded(attempt).await;

    let token = auth::new_token().map_err(|e| {
        tracing::error!(error = %e, "cannot make a session token");
        ServiceError::Internal
    })?;
    let now = app.clock.now();
    let expires_at = now.saturating_add(app.config.session_ttl);
    app.store
        .create_session(NewSession {
            token: auth::token_hash(&token),
            extension: extension.id,
            now,
            expires_at,
        })
        .await?;
    tracing::info!(extension = %extension.id, org = %org.id, "signed in");
    Ok(SignedIn {
        token,
        expires_at,
        extension,
        org,
    })
}

/// The organization and extension if the password is theirs.
async fn verify(
    app: &App,
    slug: &OrgSlug,
    number: &ExtensionNumber,
    password: Password,
) -> ServiceResult<Option<(Org, Extension)>> {
    let org = app.store.org_by_slug(slug).await?;
    let found = match &org {
        Some(org) => app.store.extension_for_sign_in(org.id, number).await?,
        None => None,
    };
    let stored = found.as_ref().map(|(_, hash)| hash.clone());
    let verified = app.passwords.verify(password, stored).await?;
    Ok(match (org, found, verified) {
        (Some(org), Some((extension, _)), true) => Some((org, extension)),
        _ => None,
    })
}

/// Ends this session. Its cached entry goes and its WebSockets close when
/// the `session.ended` event is heard, on every node.
pub async fn sign_out(app: &App, auth: &Authed) -> ServiceResult<()> {
    app.store.revoke_session(&auth.token_hash).await?;
    Ok(())
}

/// Changes my password after checking the current one; my other sessions
/// end (through the `extension.changed` event), this one stays.
pub async fn change_password(
    app: &App,
    auth: &Authed,
    current: &str,
    new: &str,
) -> ServiceResult<()> {
    let ext = &auth.session.extension;
    let new = Password::parse_new(new)?;
    let wrong = ServiceError::Forbidden("the current password is not right");
    let Ok(current) = Password::parse_attempt(current) else {
        return Err(wrong);
    };
    let number = ExtensionNumber::parse(&ext.number)?;
    let stored = app
        .store
        .extension_for_sign_in(ext.org_id, &number)
        .await?
        .map(|(_, h)| h);
    if !app.passwords.verify(current, stored).await? {
        return Err(wrong);
    }
    let hash = app.passwords.hash(new).await?;
    app.store
        .set_password_hash(NewPassword {
            org: ext.org_id,
            extension: ext.id,
            hash,
            keep: Some(auth.token_hash.clone()),
        })
        .await?;
    Ok(())
}
