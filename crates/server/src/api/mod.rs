//! The REST API under `/api/v1`. Handlers are thin: parse, authorize, call
//! the store, map the result. The OpenAPI document is collected from the
//! handlers' annotations as the routes are registered.

mod admin;
mod conversations;
mod me;
mod session;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A JSON body whose rejections use the API's error shape.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> ApiResult<Self> {
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|e: JsonRejection| ApiError::from(e))?;
        Ok(Self(value))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Chat, groups and (later) SMS for the extensions of a business phone system. \
                       Errors are always {\"error\":{\"code\",\"message\"}}. See docs/PROTOCOL.md for the WebSocket.",
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// The API routes and the OpenAPI document describing them.
pub fn router() -> (axum::Router<Arc<App>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::sign_in))
        .routes(routes!(session::sign_out))
        .routes(routes!(me::me))
        .routes(routes!(me::update_settings))
        .routes(routes!(me::change_password))
        .routes(routes!(me::directory))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::open_direct))
        .routes(routes!(conversations::create_group))
        .routes(routes!(conversations::get_one, conversations::rename))
        .routes(routes!(conversations::add_participants))
        .routes(routes!(conversations::remove_participant))
        .routes(routes!(conversations::leave))
        .routes(routes!(conversations::history, conversations::send))
        .routes(routes!(conversations::mark_read))
        .routes(routes!(conversations::receipts))
        .routes(routes!(admin::list_extensions, admin::create_extension))
        .routes(routes!(admin::update_extension))
        .routes(routes!(admin::reset_password))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(admin::import_extensions))
                .layer(axum::extract::DefaultBodyLimit::max(
                    admin::MAX_IMPORT_BYTES,
                )),
        )
        .routes(routes!(admin::organization, admin::update_organization))
        .split_for_parts()
}
