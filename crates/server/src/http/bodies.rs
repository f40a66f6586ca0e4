//! What the server does about request bodies on every route: how large they
//! may be, the error shape of a body refused for its size whatever refused
//! it, and keeping a connection usable when an answer is given before the
//! body was read.

use super::error::ApiError;
use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use switchboard_domain::values::{MAX_IDEMPOTENCY_KEY_LEN, MAX_MESSAGE_CHARS};

/// Largest request body accepted by the JSON API, sends excepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body of a message send. JSON encoders may write every character
/// as a `\u` escape, and a character outside the Basic Multilingual Plane
/// as an escaped surrogate pair of 12 bytes; the longest text written so,
/// with the longest key escaped too (6 bytes a character), must fit with
/// room to spare for field names and spacing.
pub const MAX_MESSAGE_BODY_BYTES: usize = 128 * 1024;

const _: () = assert!(
    MAX_MESSAGE_BODY_BYTES >= MAX_MESSAGE_CHARS * 12 + MAX_IDEMPOTENCY_KEY_LEN * 6 + 4096,
    "every valid send fits in the message body limit"
);

/// Gives a body refused for its size the API's error shape, whichever
/// extractor refused it (JSON, raw bytes, text, a form).
pub async fn payload_too_large_as_json(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::payload_too_large().into_response();
    }
    response
}

/// Says `Connection: close` on an answer given with the request's body
/// unread (a 401 before a large upload arrived, a 413 part-way through).
/// Unread bytes would otherwise be taken for the next request, so the
/// server closes such a connection; saying so lets the client open a new
/// one instead of writing its next request into a closing socket.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let watched = Body::new(Watched {
        inner: body,
        finished: Arc::clone(&finished),
    });
    let mut response = next.run(Request::from_parts(parts, watched)).await;
    // An upgrade hands the connection over; it is no longer HTTP's to close.
    if !finished.load(Ordering::Acquire) && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it has been read to its end.
struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
