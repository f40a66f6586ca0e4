//! Texting customers: opening SMS conversations and counting segments.

use super::conversations::ConversationBody;
use super::extract::Body;
use crate::app::App;
use crate::auth::Authed;
use crate::http::error::{ApiResult, ErrorBody};
use crate::service::sms;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_domain::NumberId;
use switchboard_domain::sms::Segments;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSms {
    /// The customer's number, in local form (read with the organization's
    /// country) or international form.
    pub(super) to: String,
    /// One of my SMS-enabled numbers; my default number when left out.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub(super) from_number_id: Option<NumberId>,
}

/// The SMS conversation between one of my numbers and a customer: 201 when
/// created, 200 when it existed.
#[utoipa::path(post, path = "/api/v1/conversations/sms", tag = "sms", request_body = OpenSms,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = ConversationBody, description = "Created"),
        (status = 200, body = ConversationBody, description = "It already existed"),
        (status = 404, body = ErrorBody, description = "`not_found`: `from_number_id` is not one of my numbers"),
        (status = 409, body = ErrorBody, description = "`no_sms_number`: I have no SMS-enabled number; or `number_cannot_text`: the number chosen has SMS off or no carrier"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: `to` cannot be a valid phone number, or the body is not right"),
    ))]
pub async fn open(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<OpenSms>,
) -> ApiResult<(StatusCode, Json<ConversationBody>)> {
    let session = &auth.session;
    let opened = sms::open(
        &app,
        &session.extension,
        &session.org,
        &req.to,
        req.from_number_id,
    )
    .await?
    .value;
    let status = if opened.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ConversationBody {
            conversation: opened.conversation,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentsRequest {
    pub(super) text: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SegmentsBody {
    #[schema(value_type = super::openapi::Segments)]
    segments: Segments,
}

/// How a text goes out as SMS: GSM-7 or UCS-2, how many segments, and the
/// character that forces UCS-2.
#[utoipa::path(post, path = "/api/v1/sms/segments", tag = "sms", request_body = SegmentsRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = SegmentsBody, description = "The count")))]
pub async fn segments(
    _auth: Authed,
    Body(req): Body<SegmentsRequest>,
) -> ApiResult<Json<SegmentsBody>> {
    Ok(Json(SegmentsBody {
        segments: sms::segments(&req.text),
    }))
}
