//! Extractors whose rejections use the API's error shape.

use super::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// A JSON body whose rejections use the API's error shape.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> ApiResult<Self> {
        Self::answer(Json::<Object<T>>::from_request(req, state).await)
    }
}

impl<T: DeserializeOwned> Body<T> {
    /// The body a handler would get from these bytes, or the error the
    /// client would; the request around them (content type, size limit) is
    /// taken as fine. The `request_bodies` fuzz target reads bodies with it.
    pub fn from_bytes(bytes: &[u8]) -> ApiResult<Self> {
        Self::answer(Json::<Object<T>>::from_bytes(bytes))
    }

    fn answer(read: Result<Json<Object<T>>, JsonRejection>) -> ApiResult<Self> {
        read.map(|Json(Object(value))| Self(value))
            .map_err(ApiError::from)
    }
}

/// A value read only from a JSON object. Serde would also build a struct
/// from an array of its fields in order, which no client means and the
/// OpenAPI document does not describe.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectOnly(PhantomData))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rename {
        name: String,
    }

    #[test]
    fn a_body_is_read_from_a_json_object_only() {
        let read = Body::<Rename>::from_bytes(br#"{"name":"eh"}"#).map(|Body(r)| r);
        assert_eq!(read.ok(), Some(Rename { name: "eh".into() }));
        for not_an_object in [&br#"["eh"]"#[..], b"\"eh\"", b"3", b"null"] {
            let refused = Body::<Rename>::from_bytes(not_an_object)
                .err()
                .expect("refused");
            assert_eq!(refused.code, "validation_failed");
            assert!(
                refused.message.contains("a JSON object"),
                "{}",
                refused.message
            );
        }
        let unknown = Body::<Rename>::from_bytes(br#"{"name":"eh","x":1}"#).err();
        assert!(unknown.is_some(), "unknown fields are still refused");
    }
}
