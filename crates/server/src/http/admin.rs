//! Administration of my organization: extensions, the alert tone and the
//! default country (business numbers and carriers are in `numbers`).
//! Every handler here requires the administrator role.

use super::extract::Body;
use super::extract::Params;
use crate::app::App;
use crate::auth::Authed;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::service::directory::{self, ExtensionChanges, ExtensionDraft, ImportRow};
use crate::workers::jobs::Job;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_domain::phone::Country;
use switchboard_domain::{AlertTone, ExtensionId, InvalidValue};
use switchboard_store::{Extension, Org};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExtensionList {
    #[schema(value_type = Vec<super::openapi::Extension>)]
    extensions: Vec<Extension>,
}

/// Every extension of my organization, disabled ones too.
#[utoipa::path(get, path = "/api/v1/admin/extensions", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ExtensionList, description = "Every extension"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
    ))]
pub async fn list_extensions(
    State(app): State<Arc<App>>,
    auth: Authed,
) -> ApiResult<Json<ExtensionList>> {
    auth.require_admin()?;
    let extensions = app.store.list_extensions(auth.session.org.id).await?;
    Ok(Json(ExtensionList { extensions }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExtension {
    pub(super) number: String,
    pub(super) name: String,
    pub(super) password: String,
    /// "member" (default) or "admin".
    pub(super) role: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExtensionBody {
    #[schema(value_type = super::openapi::Extension)]
    extension: Extension,
}

/// Creates an extension.
#[utoipa::path(post, path = "/api/v1/admin/extensions", tag = "admin", request_body = CreateExtension,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = ExtensionBody, description = "Created"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 409, body = ErrorBody, description = "`conflict`: the extension number is taken"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the number, name, password or role is refused, or the body is not right"),
    ))]
pub async fn create_extension(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<CreateExtension>,
) -> ApiResult<(StatusCode, Json<ExtensionBody>)> {
    auth.require_admin()?;
    let draft = ExtensionDraft::parse(&req.number, &req.name, &req.password, req.role.as_deref())?;
    let mut created = directory::create_extensions(&app, auth.session.org.id, vec![draft]).await?;
    let extension = created.pop().ok_or_else(ApiError::internal)?;
    tracing::info!(admin = %auth.session.extension.id, extension = %extension.id, "extension created");
    Ok((StatusCode::CREATED, Json(ExtensionBody { extension })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateExtension {
    pub(super) name: Option<String>,
    pub(super) role: Option<String>,
    pub(super) disabled: Option<bool>,
}

/// Renames, changes the role of, disables or enables an extension.
#[utoipa::path(patch, path = "/api/v1/admin/extensions/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The extension")), request_body = UpdateExtension,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ExtensionBody, description = "The extension as it now is"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such extension in my organization"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the name or role is refused, I would disable myself or give up my own administrator role, or the body is not right"),
    ))]
pub async fn update_extension(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<UpdateExtension>,
) -> ApiResult<Json<ExtensionBody>> {
    auth.require_admin()?;
    let changes = ExtensionChanges {
        name: req.name.as_deref(),
        role: req.role.as_deref(),
        disabled: req.disabled,
    };
    let extension =
        directory::update_extension(&app, &auth.session.extension, ExtensionId(id), changes)
            .await?;
    Ok(Json(ExtensionBody { extension }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    pub(super) password: String,
}

/// Sets a new password for an extension and signs it out everywhere.
#[utoipa::path(post, path = "/api/v1/admin/extensions/{id}/password", tag = "admin",
    params(("id" = i64, Path, description = "The extension")), request_body = ResetPassword,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Set; the extension is signed out everywhere"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such extension in my organization"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the password is refused, or the body is not right"),
    ))]
pub async fn reset_password(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<ResetPassword>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    directory::reset_password(&app, auth.session.org.id, ExtensionId(id), &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Largest CSV import accepted, in bytes.
pub const MAX_IMPORT_BYTES: usize = 2 * 1024 * 1024;
/// Most rows in one import: a large organization in one file. The work
/// runs as a job, so the size of a file no longer holds a request open.
const MAX_IMPORT_ROWS: usize = 20_000;

#[derive(Deserialize)]
struct CsvRow {
    number: String,
    name: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobBody {
    job: Job,
}

/// Imports extensions from CSV (`number,name,password[,role]` with that
/// header line) as a job. The file is checked at once (a malformed file or
/// an invalid row is refused with 422 naming its line); then the answer is
/// `202` with the job, which creates every extension or none: a number
/// already taken refuses the whole import, listing every such row.
/// Follow it at the `Location` given, or by `job.updated` frames on the
/// WebSocket.
#[utoipa::path(post, path = "/api/v1/admin/extensions/import", tag = "admin",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 202, description = "The import runs as this job", body = JobBody,
            headers(("Location" = String, description = "The job, to poll"))),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 409, description = "An import is already running for the organization", body = ErrorBody),
        (status = 413, description = "The file is larger than 2 MiB", body = ErrorBody),
        (status = 415, description = "Not sent as text/csv", body = ErrorBody),
        (status = 422, description = "A line of the file is not valid", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn import_extensions(
    State(app): State<Arc<App>>,
    auth: Authed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, [(header::HeaderName, String); 1], Json<JobBody>)> {
    auth.require_admin()?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the CSV with Content-Type: text/csv",
        ));
    }
    let rows = parse_import(&body)?;
    let job = directory::start_import(&app, &auth.session.extension, rows).await?;
    tracing::info!(admin = %auth.session.extension.id, job = %job.id, rows = job.total, "import started");
    let location = format!("/api/v1/admin/jobs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(JobBody { job }),
    ))
}

/// Reads the whole CSV before anything runs: the header, every row, and
/// numbers appearing twice; the first fault is refused naming its line.
fn parse_import(body: &[u8]) -> ApiResult<Vec<ImportRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::validation(format!("line 1: {e}")))?
        .clone();
    for required in ["number", "name", "password"] {
        if !headers.iter().any(|h| h == required) {
            return Err(ApiError::validation(format!(
                "line 1: the header must name the columns number,name,password[,role]; {required} is missing"
            )));
        }
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, row) in reader.deserialize::<CsvRow>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| ApiError::validation(format!("line {line}: {e}")))?;
        let draft =
            ExtensionDraft::parse(&row.number, &row.name, &row.password, row.role.as_deref())
                .map_err(|e| ApiError::validation(format!("line {line}: {e}")))?;
        if !seen.insert(draft.number.clone()) {
            return Err(ApiError::validation(format!(
                "line {line}: extension {} appears twice",
                draft.number
            )));
        }
        rows.push(ImportRow { line, draft });
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(ApiError::validation(format!(
                "at most {MAX_IMPORT_ROWS} rows per import"
            )));
        }
    }
    if rows.is_empty() {
        return Err(ApiError::validation("the CSV has no rows"));
    }
    Ok(rows)
}

/// A job of my organization: its state, progress and result, from any
/// server of the deployment. Jobs are kept for an hour after they finish;
/// a job its server stopped running (a restart, a crash) reads as failed,
/// saying so.
#[utoipa::path(get, path = "/api/v1/admin/jobs/{id}", tag = "admin",
    params(("id" = String, Path, description = "The job's id, as the import answered it")),
    responses(
        (status = 200, description = "The job", body = JobBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such job in my organization, or no longer kept", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn job(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<JobBody>> {
    auth.require_admin()?;
    let job = app
        .jobs
        .get(auth.session.org.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("the job"))?;
    Ok(Json(JobBody { job }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrganizationSettings {
    #[schema(value_type = super::openapi::Organization)]
    organization: Org,
    #[schema(value_type = super::openapi::AlertTone)]
    alert_tone: AlertTone,
    /// Every tone there is to choose from.
    #[schema(value_type = Vec<super::openapi::AlertTone>)]
    alert_tones: [AlertTone; 4],
    /// The ISO 3166 code of the country numbers typed without `+` belong
    /// to, e.g. "US".
    #[schema(value_type = String)]
    default_country: Country,
    /// Every country code there is to choose from, in alphabetical order.
    #[schema(value_type = Vec<String>)]
    countries: Vec<Country>,
}

fn org_settings(organization: Org) -> OrganizationSettings {
    OrganizationSettings {
        alert_tone: organization.alert_tone,
        default_country: organization.default_country,
        organization,
        alert_tones: AlertTone::ALL,
        countries: Country::all(),
    }
}

/// My organization's settings.
#[utoipa::path(get, path = "/api/v1/admin/organization", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = OrganizationSettings, description = "The organization's settings"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
    ))]
pub async fn organization(auth: Authed) -> ApiResult<Json<OrganizationSettings>> {
    auth.require_admin()?;
    Ok(Json(org_settings(auth.session.org)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// One of `alert_tones`.
    pub(super) alert_tone: Option<String>,
    /// One of `countries`, e.g. "GB".
    pub(super) default_country: Option<String>,
}

/// Sets the organization's alert tone, its default country, or both.
#[utoipa::path(patch, path = "/api/v1/admin/organization", tag = "admin", request_body = UpdateOrganization,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = OrganizationSettings, description = "The settings as they now are"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: no such alert tone or country, neither is given, or the body is not right"),
    ))]
pub async fn update_organization(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<UpdateOrganization>,
) -> ApiResult<Json<OrganizationSettings>> {
    auth.require_admin()?;
    let org = auth.session.org.id;
    // Both are checked before either is saved.
    if let Some(tone) = &req.alert_tone {
        AlertTone::parse(tone)?;
    }
    if let Some(code) = &req.default_country {
        Country::parse(code).map_err(|e| InvalidValue::new("default_country", e.reason))?;
    }
    let mut updated = None;
    if let Some(tone) = &req.alert_tone {
        updated = Some(directory::set_alert_tone(&app, org, tone).await?);
    }
    if let Some(code) = &req.default_country {
        updated = Some(directory::set_default_country(&app, org, code).await?);
    }
    let org =
        updated.ok_or_else(|| ApiError::validation("give alert_tone, default_country or both"))?;
    Ok(Json(org_settings(org)))
}
