//! The web portal's static files, embedded in the binary at compile time.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web"]
#[exclude = "*.py"]
#[exclude = "README.md"]
struct Assets;

/// Serves `/` as `index.html` and every other path as the file of that name.
pub async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    file(path)
}

/// The embedded file at `path`, or `404`.
pub fn file(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return crate::http::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        )
        .into_response();
    };
    let mut response = file.data.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // The portal changes with the binary; revalidate rather than serve a
    // stale page after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
