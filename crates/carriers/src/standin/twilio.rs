//! Twilio's Messages API, as documented: form-encoded create under Basic
//! auth, `201` with the message resource, errors as
//! `{"code","message","more_info","status"}`.

use super::{Core, CreatedMessage, Media, Misbehaviour, RecordedRequest, Server, controls, record};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_domain::phone::E164;

/// A local Twilio. Accepts the account SID with its auth token, or the API
/// key below, as Basic credentials.
pub struct TwilioStandin {
    server: Server,
    core: Arc<Core>,
    cdn: Server,
    cdn_core: Arc<Core>,
    media: Arc<Mutex<HashMap<String, Media>>>,
}

#[derive(Clone)]
struct Shared {
    core: Arc<Core>,
    media: Arc<Mutex<HashMap<String, Media>>>,
    cdn_base: String,
}

impl TwilioStandin {
    pub const ACCOUNT_SID: &'static str = "AC00000000000000000000000000standin";
    pub const AUTH_TOKEN: &'static str = "standin-auth-token";
    pub const API_KEY_SID: &'static str = "SK00000000000000000000000000standin";
    pub const API_KEY_SECRET: &'static str = "standin-api-key-secret";

    pub async fn start() -> std::io::Result<Self> {
        let media = Arc::new(Mutex::new(HashMap::new()));
        let cdn_core = Core::new();
        let cdn = Server::start(
            Router::new()
                .fallback(cdn_handle)
                .with_state((Arc::clone(&cdn_core), Arc::clone(&media))),
        )
        .await?;
        let core = Core::new();
        let shared = Shared {
            core: Arc::clone(&core),
            media: Arc::clone(&media),
            cdn_base: cdn.base_url(),
        };
        let server = Server::start(Router::new().fallback(handle).with_state(shared)).await?;
        Ok(Self {
            server,
            core,
            cdn,
            cdn_core,
            media,
        })
    }

    /// A client configuration for this stand-in, with the auth token.
    pub fn config(&self) -> crate::twilio::Config {
        crate::twilio::Config {
            base_url: self.base_url(),
            ..crate::twilio::Config::with_auth_token(Self::ACCOUNT_SID, Self::AUTH_TOKEN)
        }
    }

    /// Serves `bytes` as the media of an inbound MMS, at a URL on the API's
    /// host that wants the account's credentials and redirects to the CDN.
    pub fn media_url(&self, bytes: Vec<u8>, content_type: &str) -> String {
        self.add_media(bytes, content_type, false)
    }

    /// Like [`Self::media_url`], but the CDN sends the body in chunks
    /// without `Content-Length`.
    pub fn streamed_media_url(&self, bytes: Vec<u8>, content_type: &str) -> String {
        self.add_media(bytes, content_type, true)
    }

    fn add_media(&self, bytes: Vec<u8>, content_type: &str, streamed: bool) -> String {
        let n = self.core.next_id();
        let id = format!("ME{n:032x}");
        self.media.lock().insert(
            id.clone(),
            Media {
                bytes,
                content_type: content_type.to_owned(),
                streamed,
            },
        );
        format!(
            "{}/2010-04-01/Accounts/{}/Messages/MM{n:032x}/Media/{id}",
            self.base_url(),
            Self::ACCOUNT_SID
        )
    }

    /// Requests the CDN received (media downloads after the redirect).
    pub fn cdn_requests(&self) -> Vec<RecordedRequest> {
        self.cdn_core.requests.lock().clone()
    }

    /// The CDN's base URL: another origin than the API's.
    pub fn cdn_base_url(&self) -> String {
        self.cdn.base_url()
    }
}

controls!(TwilioStandin);

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

fn authenticated(request: &RecordedRequest) -> bool {
    matches!(
        request.basic_auth(),
        Some((user, password))
            if (user == TwilioStandin::ACCOUNT_SID && password == TwilioStandin::AUTH_TOKEN)
                || (user == TwilioStandin::API_KEY_SID && password == TwilioStandin::API_KEY_SECRET)
    )
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (request, connection) = record(&shared.core, request).await;
    let path = request.path.clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["2010-04-01", "Accounts", sid, "Messages.json"]) => {
            if let Some(fault) = shared.core.next_fault() {
                match fault {
                    Misbehaviour::ServerError => {
                        return error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            20500,
                            "Internal Server Error",
                        );
                    }
                    Misbehaviour::TooManyRequests { retry_after } => {
                        let mut response =
                            error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
                        if let Ok(value) = HeaderValue::from_str(&retry_after) {
                            response.headers_mut().insert(header::RETRY_AFTER, value);
                        }
                        return response;
                    }
                    Misbehaviour::DropConnection => {
                        if let Some(connection) = connection {
                            connection.cut();
                        }
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    Misbehaviour::Hold => {
                        let response = create(&shared.core, &request, sid);
                        shared.core.hold().await;
                        return response;
                    }
                }
            }
            create(&shared.core, &request, sid)
        }
        ("GET", ["2010-04-01", "Accounts", sid, "Messages", _, "Media", id]) => {
            if !authenticated(&request) {
                return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
            }
            if *sid != TwilioStandin::ACCOUNT_SID || !shared.media.lock().contains_key(*id) {
                return not_found(&path);
            }
            // Twilio answers a media URL with a redirect to its CDN.
            let location = format!("{}/media/{id}", shared.cdn_base);
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        _ => not_found(&path),
    }
}

fn not_found(path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

/// The Messages resource's create, with the checks Twilio makes first.
fn create(core: &Core, request: &RecordedRequest, sid: &str) -> Response {
    if !authenticated(request) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if sid != TwilioStandin::ACCOUNT_SID {
        return not_found(&request.path);
    }
    let first = |name: &str| request.form_values(name).into_iter().next();
    let bad = StatusCode::BAD_REQUEST;
    let Some(to) = first("To").filter(|t| !t.is_empty()) else {
        return error(bad, 21604, "A 'To' phone number is required.");
    };
    if E164::parse_strict(&to).is_err() || core.is_invalid(&to) {
        return error(bad, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    let Some(from) = first("From").filter(|f| !f.is_empty()) else {
        return error(bad, 21603, "A 'From' phone number is required.");
    };
    if !core.is_owned(&from) {
        return error(
            bad,
            21606,
            &format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
            ),
        );
    }
    let body = first("Body").unwrap_or_default();
    let media_urls = request.form_values("MediaUrl");
    if body.is_empty() && media_urls.is_empty() {
        return error(bad, 21602, "Message body is required.");
    }
    if core.is_opted_out(&to) {
        return error(bad, 21610, "Attempt to send to unsubscribed recipient");
    }
    if core.is_landline(&to) {
        return error(
            bad,
            21614,
            &format!("'To' number {to} is not a valid mobile number"),
        );
    }
    let message_sid = format!("SM{:032x}", core.next_id());
    core.create(CreatedMessage {
        id: message_sid.clone(),
        from: from.clone(),
        to: to.clone(),
        text: body.clone(),
        media_urls: media_urls.clone(),
        status_callback: first("StatusCallback"),
    });
    let uri = format!("/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json");
    (
        StatusCode::CREATED,
        Json(json!({
            "account_sid": sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": "Fri, 04 Dec 2026 17:00:00 +0000",
            "date_sent": null,
            "date_updated": "Fri, 04 Dec 2026 17:00:00 +0000",
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": from,
            "messaging_service_sid": null,
            "num_media": media_urls.len().to_string(),
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "queued",
            "subresource_uris": {"media": format!("/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media.json")},
            "to": to,
            "uri": uri,
        })),
    )
        .into_response()
}

type CdnState = (Arc<Core>, Arc<Mutex<HashMap<String, Media>>>);

async fn cdn_handle(State((core, media)): State<CdnState>, request: Request) -> Response {
    let (request, _) = record(&core, request).await;
    let item = request
        .path
        .strip_prefix("/media/")
        .and_then(|id| media.lock().get(id).cloned());
    match item {
        Some(item) if request.method == "GET" => super::media_response(&item),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
