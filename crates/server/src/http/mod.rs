//! The HTTP surface: the REST API under `/api/v1` with its OpenAPI
//! document, the WebSocket upgrade, health and metrics, and the embedded
//! portal. Handlers are thin: parse, authorize, call a service (or a store
//! read), map the result. The OpenAPI document is collected from the
//! handlers' annotations as the routes are registered.

mod admin;
pub mod bodies;
mod conversations;
pub mod error;
pub mod extract;
mod me;
pub mod media;
mod numbers;
pub mod openapi;
pub mod request_bodies;
mod session;
mod sms;
pub mod web;
mod webhooks;

use crate::app::App;
use crate::metrics;
use crate::ws;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use std::sync::Arc;
use std::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Chat, groups and (later) SMS for the extensions of a business phone system. \
                       Errors are always {\"error\":{\"code\",\"message\"}}. See docs/PROTOCOL.md for the WebSocket.",
    ),
    components(schemas(crate::http::error::ErrorBody, crate::http::error::ErrorDetail)),
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
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The `token` that sign-in answers, for API clients"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session cookie that sign-in sets, for browsers; a change made with it \
                 also needs the X-CSRF-Token header",
            ))),
        );
    }
}

/// The API routes and the OpenAPI document describing them.
fn api_router() -> (axum::Router<Arc<App>>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::sign_in))
        .routes(routes!(session::sign_out))
        .routes(routes!(me::me))
        .routes(routes!(me::update_settings))
        .routes(routes!(me::change_password))
        .routes(routes!(me::directory))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::open_direct))
        .routes(routes!(conversations::create_group))
        .routes(routes!(sms::open))
        .routes(routes!(sms::segments))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(media::upload_image))
                .layer(DefaultBodyLimit::max(crate::media::MAX_IMAGE_BYTES)),
        )
        .routes(routes!(media::image))
        .routes(routes!(conversations::get_one, conversations::rename))
        .routes(routes!(conversations::add_participants))
        .routes(routes!(conversations::remove_participant))
        .routes(routes!(conversations::leave))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(conversations::history, conversations::send))
                .layer(DefaultBodyLimit::max(bodies::MAX_MESSAGE_BODY_BYTES)),
        )
        .routes(routes!(conversations::mark_read))
        .routes(routes!(conversations::receipts))
        .routes(routes!(admin::list_extensions, admin::create_extension))
        .routes(routes!(admin::update_extension))
        .routes(routes!(admin::reset_password))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(admin::import_extensions))
                .layer(DefaultBodyLimit::max(admin::MAX_IMPORT_BYTES)),
        )
        .routes(routes!(admin::job))
        .routes(routes!(admin::organization, admin::update_organization))
        .routes(routes!(
            numbers::list_connections,
            numbers::create_connection
        ))
        .routes(routes!(numbers::list_numbers, numbers::create_number))
        .routes(routes!(numbers::update_number))
        .routes(routes!(numbers::assign_number, numbers::unassign_number))
        .routes(routes!(numbers::my_numbers))
        .routes(routes!(numbers::set_default_number))
        .split_for_parts();
    // After the routes: it completes the operations they brought.
    utoipa::Modify::modify(&openapi::ExtractorAnswers, &mut doc);
    (router, doc)
}

pub use bodies::MAX_BODY_BYTES;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; \
    media-src 'self' blob:; style-src 'self'; script-src 'self'; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The whole HTTP surface.
pub fn router(app: Arc<App>) -> Router {
    let (api, openapi) = api_router();
    let openapi = Arc::new(openapi.to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render the OpenAPI document");
        "{}".to_owned()
    }));
    Router::new()
        .merge(api)
        .route("/api/v1/ws", get(ws::upgrade))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = Arc::clone(&openapi);
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .route("/media/{id}", get(media::signed))
        .route(
            "/webhooks/twilio/{id}/messages",
            post(webhooks::twilio_message),
        )
        .route(
            "/webhooks/twilio/{id}/status",
            post(webhooks::twilio_status),
        )
        .route("/webhooks/telnyx/{id}", post(webhooks::telnyx_event))
        .merge(crate::simulator::http::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(web::asset))
        .route("/{*path}", get(web::asset).fallback(not_found))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(bodies::payload_too_large_as_json))
        .layer(middleware::from_fn(bodies::close_if_body_unread))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API is described at /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; /api/v1/openapi.json lists the methods it does",
    )
}

/// Ready when the database answers and the server is not shutting down.
/// The bus is reported but does not decide: nodes serve correctly without
/// NATS (clients catch up from the database), and taking every node out of
/// the balancer when NATS is down would stop the service.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let database = app.store.ping().await;
    if let Err(e) = &database {
        tracing::error!(error = %e, "readiness check failed: the database does not answer");
    }
    let bus = if app.bus.is_connected() {
        "connected"
    } else {
        "disconnected"
    };
    let (status, state) = match (&database, app.shutdown.is_cancelled()) {
        (Ok(()), false) => (StatusCode::OK, "ready"),
        (Ok(()), true) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        (Err(_), _) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    };
    let body = serde_json::json!({
        "status": state,
        "database": if database.is_ok() { "ok" } else { "unavailable" },
        "bus": bus,
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// Records the latency of every request by route, and logs it at debug
/// level (never at info: the message path must not log per message).
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics
        .request_seconds
        .get_or_create(&metrics::RouteLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .observe(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, status, micros = elapsed.as_micros() as u64, "request");
    response
}
