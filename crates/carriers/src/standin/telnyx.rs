//! Telnyx's v2 Messages API, as documented: JSON create under a bearer
//! key, `200` with `{"data": message}`, errors as
//! `{"errors": [{"code","title","detail"}]}`, and `Idempotency-Key`
//! replay of successful answers.

use super::{Core, CreatedMessage, Media, Misbehaviour, RecordedRequest, Server, controls, record};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_domain::phone::E164;

/// A local Telnyx. Accepts [`TelnyxStandin::API_KEY`] as bearer token.
pub struct TelnyxStandin {
    server: Server,
    core: Arc<Core>,
    media: Arc<Mutex<HashMap<String, Media>>>,
}

/// A successful answer kept for replay, with the body that earned it.
struct Kept {
    body: Vec<u8>,
    answer: Value,
}

#[derive(Clone)]
struct Shared {
    core: Arc<Core>,
    media: Arc<Mutex<HashMap<String, Media>>>,
    kept: Arc<Mutex<HashMap<String, Kept>>>,
}

impl TelnyxStandin {
    pub const API_KEY: &'static str = "KEYstandin0123456789";

    pub async fn start() -> std::io::Result<Self> {
        let core = Core::new();
        let media = Arc::new(Mutex::new(HashMap::new()));
        let shared = Shared {
            core: Arc::clone(&core),
            media: Arc::clone(&media),
            kept: Arc::new(Mutex::new(HashMap::new())),
        };
        let server = Server::start(Router::new().fallback(handle).with_state(shared)).await?;
        Ok(Self {
            server,
            core,
            media,
        })
    }

    /// A client configuration for this stand-in.
    pub fn config(&self) -> crate::telnyx::Config {
        crate::telnyx::Config {
            base_url: self.base_url(),
            ..crate::telnyx::Config::new(Self::API_KEY)
        }
    }

    /// Serves `bytes` at a pre-signed URL, as Telnyx hands out for the
    /// media of an inbound MMS: no credentials wanted.
    pub fn media_url(&self, bytes: Vec<u8>, content_type: &str) -> String {
        self.add_media(bytes, content_type, false)
    }

    /// Like [`Self::media_url`], sent in chunks without `Content-Length`.
    pub fn streamed_media_url(&self, bytes: Vec<u8>, content_type: &str) -> String {
        self.add_media(bytes, content_type, true)
    }

    fn add_media(&self, bytes: Vec<u8>, content_type: &str, streamed: bool) -> String {
        let id = format!("{:016x}", self.core.next_id());
        self.media.lock().insert(
            id.clone(),
            Media {
                bytes,
                content_type: content_type.to_owned(),
                streamed,
            },
        );
        format!(
            "{}/media/{id}?X-Amz-Expires=3600&X-Amz-Signature=standin",
            self.base_url()
        )
    }
}

controls!(TelnyxStandin);

fn error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{
            "code": code,
            "title": title,
            "detail": detail,
            "meta": {"url": format!("https://developers.telnyx.com/docs/overview/errors/{code}")},
        }]})),
    )
        .into_response()
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (request, connection) = record(&shared.core, request).await;
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v2/messages") => match shared.core.next_fault() {
            Some(Misbehaviour::ServerError) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "10007",
                "Unexpected error",
                "An unexpected error occured.",
            ),
            Some(Misbehaviour::TooManyRequests { retry_after }) => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "10011",
                    "Too many requests",
                    "You have exceeded the maximum number of allowed requests.",
                );
                if let Ok(value) = HeaderValue::from_str(&retry_after) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Some(Misbehaviour::DropConnection) => {
                if let Some(connection) = connection {
                    connection.cut();
                }
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            Some(Misbehaviour::Hold) => {
                let response = create(&shared, &request);
                shared.core.hold().await;
                response
            }
            None => create(&shared, &request),
        },
        ("GET", path) => {
            let item = path
                .strip_prefix("/media/")
                .and_then(|id| shared.media.lock().get(id).cloned());
            match item {
                Some(item) => super::media_response(&item),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "10005",
        "Resource not found",
        "The requested resource or URL could not be found.",
    )
}

/// Create with Telnyx's checks and idempotency: a kept success for the key
/// is replayed when the body is byte for byte the same, and a different
/// body under the same key is refused.
fn create(shared: &Shared, request: &RecordedRequest) -> Response {
    if request.bearer() != Some(TelnyxStandin::API_KEY) {
        return error(
            StatusCode::UNAUTHORIZED,
            "10009",
            "Authentication failed",
            "The required authentication headers were either invalid or not included in the request.",
        );
    }
    let key = request.header("idempotency-key").map(str::to_owned);
    if let Some(key) = &key
        && let Some(kept) = shared.kept.lock().get(key)
    {
        if kept.body == request.body {
            return (StatusCode::OK, Json(kept.answer.clone())).into_response();
        }
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10015",
            "Bad Request",
            "The Idempotency-Key was used before with a different request.",
        );
    }
    let answer = match validate_and_create(&shared.core, request) {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    if let Some(key) = key {
        shared.kept.lock().insert(
            key,
            Kept {
                body: request.body.clone(),
                answer: answer.clone(),
            },
        );
    }
    (StatusCode::OK, Json(answer)).into_response()
}

fn validate_and_create(core: &Core, request: &RecordedRequest) -> Result<Value, Box<Response>> {
    let bad = StatusCode::BAD_REQUEST;
    let Some(body) = request.json().filter(Value::is_object) else {
        return Err(Box::new(error(
            bad,
            "10015",
            "Bad Request",
            "The request failed because it was not well-formed.",
        )));
    };
    let text_of = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let missing = |name: &str| {
        Box::new(error(
            bad,
            "10004",
            "Missing required parameter",
            &format!("The '{name}' parameter is required."),
        ))
    };
    let to = text_of("to").ok_or_else(|| missing("to"))?;
    if E164::parse_strict(&to).is_err() || core.is_invalid(&to) {
        return Err(Box::new(error(
            bad,
            "40310",
            "Invalid 'to' address",
            "The 'to' address should be a single valid number.",
        )));
    }
    let from = text_of("from").ok_or_else(|| missing("from"))?;
    if !core.is_owned(&from) {
        return Err(Box::new(error(
            bad,
            "40305",
            "Invalid 'from' address",
            "The 'from' address should be a phone number or alphanumeric sender ID of your account.",
        )));
    }
    let text = text_of("text").unwrap_or_default();
    let media_urls: Vec<String> = body
        .get("media_urls")
        .and_then(Value::as_array)
        .map(|urls| {
            urls.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() && media_urls.is_empty() {
        return Err(missing("text"));
    }
    if core.is_opted_out(&to) {
        return Err(Box::new(error(
            bad,
            "40300",
            "Blocked due to STOP message",
            "Messages cannot be sent from 'from' to 'to' because 'to' replied with STOP.",
        )));
    }
    if core.is_landline(&to) {
        return Err(Box::new(error(
            bad,
            "40310",
            "Invalid 'to' address",
            "The 'to' address is a landline and cannot receive messages.",
        )));
    }
    let n = core.next_id();
    let id = format!("40385f64-5717-4562-b3fc-{n:012x}");
    let webhook_url = text_of("webhook_url");
    core.create(CreatedMessage {
        id: id.clone(),
        from: from.clone(),
        to: to.clone(),
        text: text.clone(),
        media_urls: media_urls.clone(),
        status_callback: webhook_url.clone(),
    });
    let kind = if media_urls.is_empty() { "SMS" } else { "MMS" };
    Ok(json!({"data": {
        "record_type": "message",
        "direction": "outbound",
        "id": id,
        "type": kind,
        "messaging_profile_id": "4000eba1-a0c0-4563-9925-b25e842a7cb6",
        "organization_id": "b448f9cc-a842-4784-98e9-03c1a5872950",
        "from": {"phone_number": from, "carrier": "TELNYX LLC", "line_type": "VoIP"},
        "to": [{"phone_number": to, "status": "queued", "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"}],
        "text": text,
        "media": media_urls.iter().map(|u| json!({"url": u, "content_type": null, "sha256": null, "size": null})).collect::<Vec<_>>(),
        "webhook_url": webhook_url,
        "encoding": "GSM-7",
        "parts": 1,
        "tags": [],
        "errors": [],
        "valid_until": null,
    }}))
}
