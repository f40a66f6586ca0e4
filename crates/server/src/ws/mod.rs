//! The WebSocket gateway: the upgrade at `/api/v1/ws`, one task per
//! connection ([`connection`]), the replay that catches a client up
//! ([`replay`]), the registry and bus sink of this node's connections
//! ([`hub`]) and every frame on the wire ([`frames`]).

mod connection;
pub mod frames;
mod hub;
mod replay;

pub use hub::{Gateway, OUTGOING_QUEUE};

use crate::app::App;
use crate::auth::{Authed, Credential};
use crate::http::error::ApiError;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use switchboard_domain::Cursor;
use switchboard_domain::values::{MAX_IDEMPOTENCY_KEY_LEN, MAX_MESSAGE_CHARS};

/// Close code when the session was signed out, its password changed or its
/// extension disabled: the client should go back to sign-in, not reconnect.
pub const SESSION_ENDED: u16 = 4401;

#[derive(Deserialize)]
pub struct WsParams {
    cursor: Option<String>,
}

/// Largest client frame accepted: room for a `send` of the longest text and
/// key even when every character is written as a `\u` escape, twelve bytes
/// for a character outside the Basic Multilingual Plane (a surrogate pair),
/// as many JSON encoders do; the rest of the frame, whose fields are short,
/// gets a generous allowance.
const MAX_CLIENT_FRAME: usize =
    (MAX_MESSAGE_CHARS + MAX_IDEMPOTENCY_KEY_LEN) * ESCAPED_CHAR + FRAME_ALLOWANCE;
/// The longest JSON form of one character: `\uD83D\uDE00`.
const ESCAPED_CHAR: usize = 12;
/// The type, conversation id and field names of a frame, escaped too, and
/// whitespace between them.
const FRAME_ALLOWANCE: usize = 4 * 1024;
/// Read in small chunks: most client frames are tiny, and an idle
/// connection should cost little.
const READ_BUFFER: usize = 4096;
/// Frames ready together are written at once; a batch larger than this many
/// bytes is written in parts as it is gathered.
const WRITE_BATCH: usize = 16 * 1024;

/// `GET /api/v1/ws`: upgrades an authenticated request to the event stream.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    auth: Authed,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // A cookie rides along on cross-site WebSocket requests too; only our own
    // pages may use it.
    if auth.credential == Credential::Cookie && !same_origin(&headers) {
        return Err(ApiError::forbidden(
            "WebSocket connections with a session cookie must come from this site",
        ));
    }
    let from = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            Some(Cursor::parse(c).ok_or_else(|| ApiError::bad_request("cursor must be a number"))?)
        }
    };
    let tasks = app.tasks.clone();
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        // Frames are written in batches and flushed at the end of each.
        .write_buffer_size(WRITE_BATCH)
        // Client frames are tiny; the default 128 KiB read buffer would be
        // most of an idle connection's memory.
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| tasks.track_future(connection::run(app, auth, from, socket))))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser: a browser always sends Origin on WebSocket requests.
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}
