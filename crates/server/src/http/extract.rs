//! Extractors whose rejections use the API's error shape.

use super::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body whose rejections use the API's error shape.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> ApiResult<Self> {
        Self::answer(Json::<T>::from_request(req, state).await)
    }
}

impl<T: DeserializeOwned> Body<T> {
    /// The body a handler would get from these bytes, or the error the
    /// client would; the request around them (content type, size limit) is
    /// taken as fine. The `request_bodies` fuzz target reads bodies with it.
    pub fn from_bytes(bytes: &[u8]) -> ApiResult<Self> {
        Self::answer(Json::<T>::from_bytes(bytes))
    }

    fn answer(read: Result<Json<T>, JsonRejection>) -> ApiResult<Self> {
        read.map(|Json(value)| Self(value)).map_err(ApiError::from)
    }
}

/// Path parameters whose rejections use the API's error shape.
pub struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
    }
}

/// A query string whose rejections use the API's error shape.
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        Self::answer(Query::<T>::from_request_parts(parts, state).await)
    }
}

impl<T: DeserializeOwned> QueryParams<T> {
    /// The parameters a handler would get from a request to `uri`, or the
    /// error the client would.
    pub fn from_uri(uri: &Uri) -> ApiResult<Self> {
        Self::answer(Query::<T>::try_from_uri(uri))
    }

    fn answer(read: Result<Query<T>, QueryRejection>) -> ApiResult<Self> {
        read.map(|Query(v)| Self(v)).map_err(ApiError::from)
    }
}
