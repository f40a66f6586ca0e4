//! The signed-in extension: profile, settings, password, directory.

use super::Body;
use crate::app::App;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_domain::Password;
use switchboard_store::{Extension, ExtensionUpdate, Org};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Settings {
    alert_muted: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    #[schema(value_type = Object)]
    extension: Extension,
    #[schema(value_type = Object)]
    organization: Org,
    settings: Settings,
}

/// My extension, organization and settings.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(auth: Authed) -> Json<Me> {
    let settings = Settings {
        alert_muted: auth.session.extension.alert_muted,
    };
    Json(Me {
        extension: auth.session.extension,
        organization: auth.session.org,
        settings,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    alert_muted: Option<bool>,
}

/// Changes my settings.
#[utoipa::path(patch, path = "/api/v1/me/settings", tag = "me", request_body = SettingsUpdate,
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_settings(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<SettingsUpdate>,
) -> ApiResult<Json<Settings>> {
    let ext = &auth.session.extension;
    let updated = app
        .store
        .update_extension(
            ext.org_id,
            ext.id,
            ExtensionUpdate {
                alert_muted: req.alert_muted,
                ..ExtensionUpdate::default()
            },
        )
        .await?;
    app.extension_changed(ext.id, false, None);
    Ok(Json(Settings {
        alert_muted: updated.alert_muted,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes my password; my other sessions are signed out.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    let ext = &auth.session.extension;
    let new = Password::parse_new(&req.new_password)?;
    let current = Password::parse_attempt(&req.current_password)
        .map_err(|_| ApiError::forbidden("the current password is not right"))?;
    let number = switchboard_domain::ExtensionNumber::parse(&ext.number)?;
    let stored = app
        .store
        .extension_for_sign_in(ext.org_id, &number)
        .await?
        .map(|(_, h)| h);
    let ok = app.passwords.verify(current, stored).await?;
    if !ok {
        return Err(ApiError::forbidden("the current password is not right"));
    }
    let hash = app.passwords.hash(new).await?;
    app.store
        .set_password_hash(ext.org_id, ext.id, hash, Some(auth.token_hash.clone()))
        .await?;
    app.extension_changed(ext.id, true, Some(&auth.token_hash));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Directory {
    #[schema(value_type = Vec<Object>)]
    extensions: Vec<Extension>,
}

/// The enabled extensions of my organization.
#[utoipa::path(get, path = "/api/v1/extensions", tag = "directory",
    responses((status = 200, body = Directory), (status = 401, body = ErrorBody)))]
pub async fn directory(State(app): State<Arc<App>>, auth: Authed) -> ApiResult<Json<Directory>> {
    let mut extensions = app.store.list_extensions(auth.session.org.id).await?;
    extensions.retain(|e| !e.disabled);
    Ok(Json(Directory { extensions }))
}
