//! Images: uploads from the portal, the images of conversations for those
//! who may see them, and the carrier copies for holders of a signed URL.

use super::error::{ApiError, ApiResult, ErrorBody};
use crate::app::App;
use crate::auth::Authed;
use crate::media::StoreImageError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_media::{MediaError, MediaId};

/// The answer to an image that is refused or could not be stored.
pub fn refused(e: StoreImageError) -> ApiError {
    match e {
        StoreImageError::Refused(e @ MediaError::NotAnImage) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.code(), e.to_string())
        }
        StoreImageError::Refused(e @ MediaError::TooLarge(_)) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.code(), e.to_string())
        }
        StoreImageError::Refused(e) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        }
        StoreImageError::Io(e) => {
            tracing::error!(error = %e, "cannot store an image");
            ApiError::internal()
        }
    }
}

/// The bytes of a stored image, with its type by content. Images never
/// change (their id is their content), so clients may keep them.
pub async fn serve(app: &App, id: MediaId) -> ApiResult<Response> {
    let (bytes, content_type) = app.media.read(id).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ApiError::not_found("image")
        } else {
            tracing::error!(error = %e, "cannot read an image");
            ApiError::internal()
        }
    })?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// Send it in a message's `attachments`.
    id: String,
    content_type: String,
    width: u32,
    height: u32,
    /// Bytes.
    size: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadedBody {
    media: Uploaded,
}

/// Uploads an image to attach to a message: a JPEG, PNG or GIF (by its
/// content) of at most 10 MB, as the raw body.
#[utoipa::path(post, path = "/api/v1/media", tag = "sms",
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The image (image/png and image/gif too)"),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = UploadedBody, description = "Stored; attach it by id"),
        (status = 413, body = ErrorBody, description = "`payload_too_large` or `image_too_large`: over 10 MB, or too many pixels to handle"),
        (status = 415, body = ErrorBody, description = "`not_an_image`: only JPEG, PNG and GIF images can be attached"),
        (status = 422, body = ErrorBody, description = "`image_unreadable`: the image is damaged"),
    ))]
pub async fn upload_image(
    State(app): State<Arc<App>>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<UploadedBody>)> {
    let me = &auth.session.extension;
    let stored = app
        .media
        .store_image(body.to_vec())
        .await
        .map_err(refused)?;
    app.store
        .add_media(stored.record(me.org_id, Some(me.id)), app.clock.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadedBody {
            media: Uploaded {
                id: stored.id.as_str().to_owned(),
                content_type: stored.content_type.to_owned(),
                width: stored.width,
                height: stored.height,
                size: stored.size,
            },
        }),
    ))
}

/// An image of a conversation I am in, or one I uploaded.
#[utoipa::path(get, path = "/api/v1/media/{id}", tag = "sms",
    params(("id" = String, Path, description = "The image's id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>, description = "The image (its type by content)"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such image in a conversation of mine"),
    ))]
pub async fn image(
    State(app): State<Arc<App>>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let me = &auth.session.extension;
    let id = MediaId::parse(&id).map_err(|_| ApiError::not_found("image"))?;
    let mine = app
        .store
        .media_record(me.org_id, id.as_str().to_owned())
        .await?
        .is_some_and(|r| r.uploaded_by == Some(me.id));
    if !mine
        && !app
            .store
            .may_see_media(me.id, id.as_str().to_owned())
            .await?
    {
        return Err(ApiError::not_found("image"));
    }
    serve(&app, id).await
}

#[derive(Deserialize)]
pub struct Token {
    token: String,
}

/// `GET /media/{id}?token=…`: a carrier copy, for the carrier that was
/// given the signed URL, until it expires.
pub async fn signed(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(token): Query<Token>,
) -> ApiResult<Response> {
    let id = MediaId::parse(&id).map_err(|_| ApiError::not_found("image"))?;
    if !app.media.token_allows(&id, &token.token, app.clock.now()) {
        return Err(ApiError::not_found("image"));
    }
    serve(&app, id).await
}
