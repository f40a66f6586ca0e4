//! The signed-in extension: profile, settings, password, directory.

use super::extract::Body;
use crate::app::App;
use crate::auth::Authed;
use crate::http::error::{ApiResult, ErrorBody};
use crate::service::{directory, sessions};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_store::{Extension, Org};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Settings {
    alert_muted: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    #[schema(value_type = super::openapi::Extension)]
    extension: Extension,
    #[schema(value_type = super::openapi::Organization)]
    organization: Org,
    settings: Settings,
    /// Where the phone simulator is, when the server serves it (demo mode):
    /// the portal links to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    simulator_url: Option<String>,
}

/// My extension, organization and settings.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Me, description = "My extension, organization and settings")))]
pub async fn me(State(app): State<Arc<App>>, auth: Authed) -> Json<Me> {
    let settings = Settings {
        alert_muted: auth.session.extension.alert_muted,
    };
    Json(Me {
        extension: auth.session.extension,
        organization: auth.session.org,
        settings,
        simulator_url: app
            .config
            .simulator_enabled()
            .then(|| "/simulator".to_owned()),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub(super) alert_muted: Option<bool>,
}

/// Changes my settings.
#[utoipa::path(patch, path = "/api/v1/me/settings", tag = "me", request_body = SettingsUpdate,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Settings, description = "The settings as they now are")))]
pub async fn update_settings(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<SettingsUpdate>,
) -> ApiResult<Json<Settings>> {
    let updated =
        directory::update_settings(&app, &auth.session.extension, req.alert_muted).await?;
    Ok(Json(Settings {
        alert_muted: updated.alert_muted,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub(super) current_password: String,
    pub(super) new_password: String,
}

/// Changes my password; my other sessions are signed out.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordChange,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Changed; my other sessions are signed out"),
        (status = 403, body = ErrorBody, description = "`forbidden`: the current password is not right"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the new password is refused (too short or too long), or the body is not right"),
    ))]
pub async fn change_password(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    sessions::change_password(&app, &auth, &req.current_password, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Directory {
    #[schema(value_type = Vec<super::openapi::Extension>)]
    extensions: Vec<Extension>,
}

/// The enabled extensions of my organization.
#[utoipa::path(get, path = "/api/v1/extensions", tag = "directory",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Directory, description = "The enabled extensions")))]
pub async fn directory(State(app): State<Arc<App>>, auth: Authed) -> ApiResult<Json<Directory>> {
    let mut extensions = app.store.list_extensions(auth.session.org.id).await?;
    extensions.retain(|e| !e.disabled);
    Ok(Json(Directory { extensions }))
}
