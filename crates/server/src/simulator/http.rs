//! The simulator page's API: the simulated phones' texts, live, and texting
//! a business number from one. Served only when the simulator is on
//! (`simulator` in the configuration; on with `--demo`), without sign-in:
//! the page plays a customer, who has no account.

use super::{SimEvent, SimMedia, SimText};
use crate::app::App;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::Body;
use crate::service::inbound;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use switchboard_carriers::InboundMessage;
use switchboard_domain::phone::E164;
use switchboard_domain::{CarrierKind, ConnectionId};
use switchboard_media::MediaId;
use switchboard_store::InboundOutcome;
use tokio::sync::broadcast;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/simulator", get(page))
        .route("/simulator/api/numbers", get(numbers))
        .route(
            "/simulator/api/phones/{phone}/messages",
            get(texts).post(send),
        )
        .route("/simulator/api/phones/{phone}/events", get(events))
        .route(
            "/simulator/api/media",
            post(upload).layer(DefaultBodyLimit::max(crate::media::MAX_IMAGE_BYTES)),
        )
        .route("/simulator/api/media/{id}", get(picture))
}

fn off() -> ApiError {
    ApiError::not_found("simulator")
}

fn require_on(app: &App) -> ApiResult<()> {
    if app.config.simulator_enabled() {
        Ok(())
    } else {
        Err(off())
    }
}

async fn page(State(app): State<Arc<App>>) -> Response {
    if require_on(&app).is_err() {
        return off().into_response();
    }
    crate::http::web::file("simulator/index.html")
}

fn phone(raw: &str) -> ApiResult<E164> {
    E164::parse_strict(raw.trim()).map_err(|_| {
        ApiError::validation("phone: must be a phone number in E.164 form, such as +14155552671")
    })
}

#[derive(Serialize)]
struct SimNumber {
    number: E164,
    display: String,
    organization: String,
}

/// The business numbers served by simulator connections, in every
/// organization.
async fn numbers(State(app): State<Arc<App>>) -> ApiResult<Json<serde_json::Value>> {
    require_on(&app)?;
    let mut out = Vec::new();
    for org in app.store.list_orgs().await? {
        let simulated: Vec<ConnectionId> = app
            .store
            .connections(org.id)
            .await?
            .into_iter()
            .filter(|c| c.kind == CarrierKind::Simulator)
            .map(|c| c.id)
            .collect();
        if simulated.is_empty() {
            continue;
        }
        for n in app.store.numbers(org.id).await? {
            if n.sms_enabled && n.connection_id.is_some_and(|c| simulated.contains(&c)) {
                out.push(SimNumber {
                    display: n.number.display(org.default_country),
                    number: n.number,
                    organization: org.name.clone(),
                });
            }
        }
    }
    Ok(Json(serde_json::json!({ "numbers": out })))
}

async fn texts(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require_on(&app)?;
    let phone = phone(&raw)?;
    Ok(Json(
        serde_json::json!({ "messages": app.simulator.texts_of(&phone) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    to: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    media: Vec<String>,
}

/// The phone texts a business number: taken exactly as a carrier's webhook
/// would be.
async fn send(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
    Body(req): Body<Send>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require_on(&app)?;
    let from = phone(&raw)?;
    let to = E164::parse_strict(req.to.trim())
        .map_err(|_| ApiError::validation("to: must be a business number in E.164 form"))?;
    if req.text.trim().is_empty() && req.media.is_empty() {
        return Err(ApiError::validation(
            "text: write something or attach a picture",
        ));
    }
    if req.text.chars().count() > 1_600 || req.media.len() > 10 {
        return Err(ApiError::validation(
            "text: at most 1,600 characters and 10 pictures",
        ));
    }
    let number = app
        .store
        .number_by_e164(&to)
        .await?
        .ok_or_else(|| ApiError::not_found("business number"))?;
    let connection = match number.connection_id {
        Some(c) => app.carriers.get(c).await.ok(),
        None => None,
    }
    .filter(|c| c.kind == CarrierKind::Simulator)
    .ok_or_else(|| ApiError::not_found("business number"))?;
    let mut attachments = Vec::new();
    let mut media = Vec::new();
    for id in &req.media {
        let record = app
            .store
            .media_record(number.org_id, id.clone())
            .await?
            .ok_or_else(|| ApiError::validation("media: upload each picture first"))?;
        let stored = crate::media::Stored::from_record(&record)
            .ok_or_else(|| ApiError::validation("media: upload each picture first"))?;
        media.push(SimMedia {
            url: format!("/simulator/api/media/{}", stored.id.as_str()),
            content_type: record.content_type.clone(),
        });
        attachments.push(stored.attachment());
    }
    let key = format!(
        "simulator:{}",
        crate::auth::new_token().map_err(|_| ApiError::internal())?
    );
    let outcome = inbound::text_arrived(
        &app,
        connection.id,
        key,
        InboundMessage {
            carrier_message_id: String::new(),
            from: from.clone(),
            to: to.clone(),
            text: req.text.clone(),
            media: Vec::new(),
        },
        attachments,
    )
    .await?;
    if !matches!(outcome, InboundOutcome::Stored(_)) {
        return Err(ApiError::internal());
    }
    let sent: SimText = app.simulator.phone_sent(&from, &to, &req.text, media);
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "message": sent })),
    ))
}

/// A picture the phone is about to send: checked and stored like an
/// upload from the portal, and noted for every organization with a
/// simulator connection (the phone has picked no number yet).
async fn upload(State(app): State<Arc<App>>, body: Bytes) -> ApiResult<Response> {
    require_on(&app)?;
    let stored = app
        .media
        .store_image(body.to_vec())
        .await
        .map_err(crate::http::media::refused)?;
    app.simulator.note_upload(stored.id.as_str());
    for org in app.store.list_orgs().await? {
        let simulated = app
            .store
            .connections(org.id)
            .await?
            .iter()
            .any(|c| c.kind == CarrierKind::Simulator);
        if !simulated {
            continue;
        }
        app.store
            .add_media(stored.record(org.id, None), app.clock.now())
            .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "media": {
            "id": stored.id.as_str(),
            "content_type": stored.content_type,
        }})),
    )
        .into_response())
}

/// A picture a simulated phone sent.
async fn picture(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Response> {
    require_on(&app)?;
    let id = MediaId::parse(&id).map_err(|_| ApiError::not_found("picture"))?;
    if !app.simulator.uploaded(id.as_str()) {
        return Err(ApiError::not_found("picture"));
    }
    crate::http::media::serve(&app, id).await
}

fn to_sse(event: &SimEvent) -> Option<Event> {
    match event {
        SimEvent::Text { text, .. } => Event::default().event("message").json_data(text),
        SimEvent::Status { id, status, .. } => Event::default()
            .event("status")
            .json_data(serde_json::json!({ "id": id, "status": status })),
    }
    .ok()
}

/// What one phone hears, as it happens.
async fn events(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    require_on(&app)?;
    let phone = phone(&raw)?;
    let rx = app.simulator.subscribe();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let phone = phone.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) if event.phone() == &phone => {
                        if let Some(sse) = to_sse(&event) {
                            return Some((Ok(sse), rx));
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
