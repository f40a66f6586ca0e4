//! Carrier webhooks: texts from customers and status reports on the texts
//! we sent. Each is believed only once its signature checks out against
//! the connection named in its URL; then it is parsed and handed to
//! `service::inbound`, which stores it once however often the carrier
//! retries it.
//!
//! Answers: `403` for a missing, wrong or stale signature; `404` for an
//! unknown connection, or a text to a number the connection does not serve;
//! `400` for a body that is not what the carrier documents; `200` once
//! stored (or found stored before). Nothing is written on any error.

use super::error::{ApiError, ApiResult};
use crate::app::App;
use crate::carriers::{Connection, ConnectionError, WebhookCheck};
use crate::service::{ServiceError, inbound};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;
use switchboard_carriers::telnyx::TelnyxEvent;
use switchboard_carriers::{ParseError, SignatureError, telnyx, twilio};
use switchboard_domain::{CarrierKind, ConnectionId};
use switchboard_store::StoreError;

fn forbidden(why: SignatureError) -> ApiError {
    tracing::info!(reason = %why, "a webhook's signature was refused");
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_signature",
        "the webhook's signature is missing, wrong or stale: check the connection's auth token \
         (Twilio) or public key (Telnyx), and that the server's public_url is the address the \
         carrier calls",
    )
}

fn malformed(e: ParseError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ParseError::CODE, e.to_string())
}

fn unknown_connection() -> ApiError {
    ApiError::not_found("carrier connection")
}

/// The connection named in the URL, if it is of `kind`.
async fn connection(app: &App, id: i64, kind: CarrierKind) -> ApiResult<Connection> {
    match app.carriers.get(ConnectionId(id)).await {
        Ok(c) if c.kind == kind => Ok(c),
        Ok(_) | Err(ConnectionError::Unknown) => Err(unknown_connection()),
        Err(ConnectionError::Unusable(why)) => {
            tracing::warn!(connection = id, %why, "a webhook came for an unusable connection");
            Err(unknown_connection())
        }
        Err(ConnectionError::Store(e)) => Err(e.into()),
    }
}

/// A stored-before or unknown outcome becomes the webhook's answer; a
/// number the connection does not serve is `404`.
fn stored(result: Result<(), ServiceError>, ok: Response) -> ApiResult<Response> {
    match result {
        Ok(()) => Ok(ok),
        Err(ServiceError::Store(StoreError::NotFound(what))) => Err(ApiError::not_found(what)),
        Err(e) => Err(e.into()),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the carrier signed: the URL it called, as the public URL names it.
fn called_url(app: &App, uri: &axum::http::Uri) -> String {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    format!("{}{}", app.config.public_url().as_str(), path_and_query)
}

/// The form fields of a Twilio webhook, once its signature is checked.
fn twilio_form(
    app: &App,
    connection: &Connection,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Vec<(String, String)>> {
    // A body that is no form cannot carry a valid signature.
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| forbidden(SignatureError::Mismatch))?;
    let WebhookCheck::Twilio { auth_token } = &connection.webhooks else {
        return Err(unknown_connection());
    };
    twilio::verify(
        auth_token,
        &called_url(app, uri),
        &fields,
        header_str(headers, "x-twilio-signature"),
    )
    .map_err(forbidden)?;
    Ok(fields)
}

/// Twilio expects TwiML back; an empty response sends no reply.
fn twiml_ok() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    )
        .into_response()
}

/// `POST /webhooks/twilio/{connection}/messages`: a text to one of our
/// numbers.
pub async fn twilio_message(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let connection = connection(&app, id, CarrierKind::Twilio).await?;
    let fields = twilio_form(&app, &connection, &uri, &headers, &body)?;
    let message = twilio::parse_inbound(&fields).map_err(malformed)?;
    let key = format!("message:{}", message.carrier_message_id);
    let result = inbound::text_arrived(&app, connection.id, key, message, Vec::new())
        .await
        .map(drop);
    stored(result, twiml_ok())
}

/// `POST /webhooks/twilio/{connection}/status`: news of a text we sent.
pub async fn twilio_status(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let connection = connection(&app, id, CarrierKind::Twilio).await?;
    let fields = twilio_form(&app, &connection, &uri, &headers, &body)?;
    let report = twilio::parse_status(&fields).map_err(malformed)?;
    // Twilio sends one callback per status of a message.
    let key = format!(
        "status:{}:{}",
        report.carrier_message_id,
        report.status.as_str()
    );
    let result = inbound::status_arrived(&app, connection.id, key, report)
        .await
        .map(drop);
    stored(result, StatusCode::OK.into_response())
}

/// `POST /webhooks/telnyx/{connection}`: every Telnyx messaging event.
pub async fn telnyx_event(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let connection = connection(&app, id, CarrierKind::Telnyx).await?;
    let WebhookCheck::Telnyx { key } = &connection.webhooks else {
        return Err(unknown_connection());
    };
    telnyx::verify(
        key,
        header_str(&headers, "telnyx-timestamp"),
        header_str(&headers, "telnyx-signature-ed25519"),
        &body,
        app.clock.now().unix_millis() / 1000,
    )
    .map_err(forbidden)?;
    let event = telnyx::parse_webhook(&body).map_err(malformed)?;
    let ok = StatusCode::OK.into_response();
    let result = match event {
        TelnyxEvent::Received { message, .. } => {
            // Keyed by the message, whichever delivery of its event this is.
            let key = format!("message:{}", message.carrier_message_id);
            inbound::text_arrived(&app, connection.id, key, message, Vec::new())
                .await
                .map(drop)
        }
        TelnyxEvent::Status {
            event_id, report, ..
        } => inbound::status_arrived(&app, connection.id, event_id, report)
            .await
            .map(drop),
        TelnyxEvent::Other { .. } => Ok(()),
    };
    stored(result, ok)
}
