//! Business numbers and carrier connections: administrators manage them
//! under `/api/v1/admin`, and each extension sees the numbers it may text
//! from and picks its default under `/api/v1/me/numbers`. The rules live in
//! `service::carriers`.

use super::extract::{Body, Params};
use crate::app::App;
use crate::auth::Authed;
use crate::http::error::{ApiResult, ErrorBody};
use crate::service::carriers::{self, ConnectionDraft, ConnectionView, NumberView, OwnNumberView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use switchboard_domain::{ConnectionId, ExtensionId, NumberId};
use switchboard_store::NumberUpdate;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    #[schema(value_type = Vec<super::openapi::CarrierConnection>)]
    connections: Vec<ConnectionView>,
}

/// The carrier connections of my organization, by name, with the webhook
/// URLs to paste into each carrier's console. Secrets are never shown, only
/// their last characters.
#[utoipa::path(get, path = "/api/v1/admin/carriers", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ConnectionList, description = "Every connection"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
    ))]
pub async fn list_connections(
    State(app): State<Arc<App>>,
    auth: Authed,
) -> ApiResult<Json<ConnectionList>> {
    auth.require_admin()?;
    let public_url = app.config.public_url();
    let connections = app
        .store
        .connections(auth.session.org.id)
        .await?
        .iter()
        .map(|c| carriers::view(c, &public_url))
        .collect();
    Ok(Json(ConnectionList { connections }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// "twilio", "telnyx" or "simulator".
    pub(super) kind: String,
    /// Unique in the organization, 1 to 60 characters.
    pub(super) name: String,
    /// Twilio: the account SID (AC…). Required for Twilio.
    pub(super) account_sid: Option<String>,
    /// Twilio: an API key SID (SK…) to call the API with instead of the
    /// auth token; needs `api_key_secret`.
    pub(super) api_key_sid: Option<String>,
    /// Twilio: the auth token (required: it signs Twilio's webhooks).
    /// Telnyx: the API key. Not used by the simulator.
    pub(super) secret: Option<String>,
    /// Twilio: the secret of the API key.
    pub(super) api_key_secret: Option<String>,
    /// Telnyx: the base64 Ed25519 public key its webhooks are checked
    /// with. Required for Telnyx.
    pub(super) public_key: Option<String>,
    /// The carrier's API base URL, when not the carrier's own.
    pub(super) base_url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionBody {
    #[schema(value_type = super::openapi::CarrierConnection)]
    connection: ConnectionView,
}

/// Adds a carrier connection. Its secrets are stored encrypted and never
/// shown back.
#[utoipa::path(post, path = "/api/v1/admin/carriers", tag = "admin", request_body = CreateConnection,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = ConnectionBody, description = "Created"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 409, body = ErrorBody, description = "`conflict`: a connection of my organization has that name"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the kind, name, a credential the kind needs (account SID, auth token, API key and its secret, public key) or the base URL is missing or refused, or the body is not right"),
    ))]
pub async fn create_connection(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<CreateConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionBody>)> {
    auth.require_admin()?;
    let draft = ConnectionDraft {
        kind: &req.kind,
        name: &req.name,
        account_sid: req.account_sid.as_deref(),
        api_key_sid: req.api_key_sid.as_deref(),
        secret: req.secret.as_deref(),
        api_key_secret: req.api_key_secret.as_deref(),
        public_key: req.public_key.as_deref(),
        base_url: req.base_url.as_deref(),
    };
    let added =
        carriers::add_connection(app.store.as_ref(), &app.sealer, auth.session.org.id, draft)
            .await?;
    tracing::info!(admin = %auth.session.extension.id, connection = %added.id, kind = added.kind.as_str(), "carrier connection added");
    let connection = carriers::view(&added, &app.config.public_url());
    Ok((StatusCode::CREATED, Json(ConnectionBody { connection })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NumberList {
    #[schema(value_type = Vec<super::openapi::BusinessNumber>)]
    numbers: Vec<NumberView>,
}

/// The business numbers of my organization, by number, with the
/// extensions that text from each.
#[utoipa::path(get, path = "/api/v1/admin/numbers", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = NumberList, description = "Every business number"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
    ))]
pub async fn list_numbers(
    State(app): State<Arc<App>>,
    auth: Authed,
) -> ApiResult<Json<NumberList>> {
    auth.require_admin()?;
    let org = &auth.session.org;
    let numbers = carriers::number_views(app.store.as_ref(), org.id, org.default_country).await?;
    Ok(Json(NumberList { numbers }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNumber {
    /// In E.164 form (+14155550100) or as dialled in the organization's
    /// default country ((415) 555-0100).
    pub(super) number: String,
    /// Whether it sends and receives texts (default true).
    pub(super) sms_enabled: Option<bool>,
    /// The carrier connection that serves it (default none).
    #[schema(value_type = Option<i64>)]
    pub(super) connection_id: Option<ConnectionId>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NumberBody {
    #[schema(value_type = super::openapi::BusinessNumber)]
    number: NumberView,
}

/// Adds a business number, normalized to E.164 with the organization's
/// default country.
#[utoipa::path(post, path = "/api/v1/admin/numbers", tag = "admin", request_body = CreateNumber,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = NumberBody, description = "Created"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such carrier connection in my organization"),
        (status = 409, body = ErrorBody, description = "`conflict`: the number is already a business number, of this or another organization"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: `number` is not a valid phone number, or the body is not right"),
    ))]
pub async fn create_number(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<CreateNumber>,
) -> ApiResult<(StatusCode, Json<NumberBody>)> {
    auth.require_admin()?;
    let org = &auth.session.org;
    let added = carriers::add_number(
        app.store.as_ref(),
        org.id,
        org.default_country,
        &req.number,
        req.sms_enabled.unwrap_or(true),
        req.connection_id,
    )
    .await?;
    tracing::info!(admin = %auth.session.extension.id, number = %added.id, "business number added");
    let number =
        carriers::number_view(app.store.as_ref(), org.id, org.default_country, added.id).await?;
    Ok((StatusCode::CREATED, Json(NumberBody { number })))
}

/// A field that may be absent (keep), `null` (clear) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNumber {
    pub(super) sms_enabled: Option<bool>,
    /// The carrier connection that serves it; `null` takes it off any.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub(super) connection_id: Option<Option<ConnectionId>>,
}

/// Turns texting on or off for a business number, or changes the carrier
/// connection that serves it. A number that stops texting is no longer
/// anyone's default; its extensions' defaults pass to another of their
/// texting numbers.
#[utoipa::path(patch, path = "/api/v1/admin/numbers/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The business number")), request_body = UpdateNumber,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = NumberBody, description = "The number as it now is"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such business number or carrier connection in my organization"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the body is not right"),
    ))]
pub async fn update_number(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<UpdateNumber>,
) -> ApiResult<Json<NumberBody>> {
    auth.require_admin()?;
    let org = &auth.session.org;
    let update = NumberUpdate {
        sms_enabled: req.sms_enabled,
        connection: req.connection_id,
    };
    carriers::update_number(app.store.as_ref(), org.id, NumberId(id), update).await?;
    let number = carriers::number_view(
        app.store.as_ref(),
        org.id,
        org.default_country,
        NumberId(id),
    )
    .await?;
    Ok(Json(NumberBody { number }))
}

async fn set_assignment(
    app: &App,
    auth: &Authed,
    number: i64,
    extension: i64,
    assigned: bool,
) -> ApiResult<Json<NumberBody>> {
    auth.require_admin()?;
    let org = &auth.session.org;
    let (number, extension) = (NumberId(number), ExtensionId(extension));
    carriers::set_assignment(app.store.as_ref(), org.id, number, extension, assigned).await?;
    tracing::info!(admin = %auth.session.extension.id, %number, %extension, assigned, "number assignment changed");
    let number =
        carriers::number_view(app.store.as_ref(), org.id, org.default_country, number).await?;
    Ok(Json(NumberBody { number }))
}

/// Lets an extension text from a business number (and call from it). Its
/// first texting number becomes its default. Assigning twice changes
/// nothing.
#[utoipa::path(put, path = "/api/v1/admin/numbers/{id}/extensions/{extension_id}", tag = "admin",
    params(
        ("id" = i64, Path, description = "The business number"),
        ("extension_id" = i64, Path, description = "The extension"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = NumberBody, description = "The number with the extensions now assigned"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such business number or extension in my organization"),
    ))]
pub async fn assign_number(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params((id, extension_id)): Params<(i64, i64)>,
) -> ApiResult<Json<NumberBody>> {
    set_assignment(&app, &auth, id, extension_id, true).await
}

/// Takes a business number away from an extension; its default passes to
/// another of its texting numbers. Taking away a number it does not have
/// changes nothing.
#[utoipa::path(delete, path = "/api/v1/admin/numbers/{id}/extensions/{extension_id}", tag = "admin",
    params(
        ("id" = i64, Path, description = "The business number"),
        ("extension_id" = i64, Path, description = "The extension"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = NumberBody, description = "The number with the extensions still assigned"),
        (status = 403, body = ErrorBody, description = "`forbidden`: only administrators may do this"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such business number or extension in my organization"),
    ))]
pub async fn unassign_number(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params((id, extension_id)): Params<(i64, i64)>,
) -> ApiResult<Json<NumberBody>> {
    set_assignment(&app, &auth, id, extension_id, false).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OwnNumberList {
    #[schema(value_type = Vec<super::openapi::OwnNumber>)]
    numbers: Vec<OwnNumberView>,
}

async fn own_numbers(app: &App, auth: &Authed) -> ApiResult<Json<OwnNumberList>> {
    let numbers = carriers::own_numbers(
        app.store.as_ref(),
        auth.session.extension.id,
        auth.session.org.default_country,
    )
    .await?;
    Ok(Json(OwnNumberList { numbers }))
}

/// The business numbers I may text from, by number, and which one new
/// texts go out from.
#[utoipa::path(get, path = "/api/v1/me/numbers", tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OwnNumberList, description = "My numbers")))]
pub async fn my_numbers(
    State(app): State<Arc<App>>,
    auth: Authed,
) -> ApiResult<Json<OwnNumberList>> {
    own_numbers(&app, &auth).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultNumber {
    /// One of my numbers that texts.
    #[schema(value_type = i64)]
    pub(super) number_id: NumberId,
}

/// Picks the number my new texts go out from.
#[utoipa::path(put, path = "/api/v1/me/numbers/default", tag = "me", request_body = DefaultNumber,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = OwnNumberList, description = "My numbers, the new default marked"),
        (status = 404, body = ErrorBody, description = "`not_found`: the number is not one of mine that texts"),
    ))]
pub async fn set_default_number(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<DefaultNumber>,
) -> ApiResult<Json<OwnNumberList>> {
    carriers::set_default_number(app.store.as_ref(), auth.session.extension.id, req.number_id)
        .await?;
    own_numbers(&app, &auth).await
}
