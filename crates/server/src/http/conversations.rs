//! Conversations, messages, read positions.

use super::extract::{Body, Params, QueryParams};
use crate::app::App;
use crate::auth::Authed;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::service::messaging::{self, Draft};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_domain::GroupChange;
use switchboard_domain::{
    Conversation, ConversationId, ConversationName, ExtensionId, HistoryPage, Message, MessageId,
};
use switchboard_store::{self as store, ConversationSummary, Receipt};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConversationList {
    #[schema(value_type = Vec<super::openapi::ConversationSummary>)]
    conversations: Vec<ConversationSummary>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConversationBody {
    #[schema(value_type = super::openapi::Conversation)]
    pub(super) conversation: Conversation,
}

/// My conversations, most recent activity first, with last message and unread count.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = ConversationList, description = "My conversations")))]
pub async fn list(State(app): State<Arc<App>>, auth: Authed) -> ApiResult<Json<ConversationList>> {
    let conversations = app
        .store
        .conversations_of(auth.session.extension.id)
        .await?;
    Ok(Json(ConversationList { conversations }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDirect {
    #[schema(value_type = i64)]
    pub(super) extension_id: ExtensionId,
}

/// The direct chat with a colleague: 201 when created, 200 when it existed.
#[utoipa::path(post, path = "/api/v1/conversations/direct", tag = "conversations", request_body = OpenDirect,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = ConversationBody, description = "Created"),
        (status = 200, body = ConversationBody, description = "It already existed"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such colleague in my organization"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: a direct chat with myself, or the body is not right"),
    ))]
pub async fn open_direct(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<OpenDirect>,
) -> ApiResult<(StatusCode, Json<ConversationBody>)> {
    let me = &auth.session.extension;
    let opened = app
        .store
        .open_direct(store::OpenDirect {
            org: me.org_id,
            me: me.id,
            other: req.extension_id,
            now: app.clock.now(),
        })
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
pub struct CreateGroup {
    pub(super) name: String,
    #[schema(value_type = Vec<i64>)]
    pub(super) member_ids: Vec<ExtensionId>,
}

/// Creates a named group with me and the given members.
#[utoipa::path(post, path = "/api/v1/conversations/group", tag = "conversations", request_body = CreateGroup,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = ConversationBody, description = "Created"),
        (status = 404, body = ErrorBody, description = "`not_found`: a member is not a colleague in my organization"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the name or the number of members is refused, or the body is not right"),
    ))]
pub async fn create_group(
    State(app): State<Arc<App>>,
    auth: Authed,
    Body(req): Body<CreateGroup>,
) -> ApiResult<(StatusCode, Json<ConversationBody>)> {
    let me = &auth.session.extension;
    let name = ConversationName::parse(&req.name)?;
    let conversation = app
        .store
        .create_group(store::NewGroup {
            org: me.org_id,
            creator: me.id,
            name,
            members: req.member_ids,
            now: app.clock.now(),
        })
        .await?
        .value;
    Ok((StatusCode::CREATED, Json(ConversationBody { conversation })))
}

/// One of my conversations.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "The conversation")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ConversationBody, description = "The conversation"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
    ))]
pub async fn get_one(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
) -> ApiResult<Json<ConversationBody>> {
    let conversation = app
        .store
        .conversation_for(auth.session.extension.id, ConversationId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok(Json(ConversationBody { conversation }))
}

async fn edit(
    app: &App,
    auth: &Authed,
    id: i64,
    edit: GroupChange,
) -> ApiResult<Json<ConversationBody>> {
    let me = &auth.session.extension;
    let conversation = app
        .store
        .edit_group(store::EditGroup {
            org: me.org_id,
            actor: me.id,
            conversation: ConversationId(id),
            change: edit,
            now: app.clock.now(),
        })
        .await?
        .value;
    Ok(Json(ConversationBody { conversation }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub(super) name: String,
}

/// Renames a group.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "The group")), request_body = Rename,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ConversationBody, description = "Renamed"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: not a group, the name is refused, or the body is not right"),
    ))]
pub async fn rename(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<Rename>,
) -> ApiResult<Json<ConversationBody>> {
    let name = ConversationName::parse(&req.name)?;
    edit(&app, &auth, id, GroupChange::Rename(name)).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddParticipants {
    #[schema(value_type = Vec<i64>)]
    pub(super) extension_ids: Vec<ExtensionId>,
}

/// Adds colleagues to a group.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/participants", tag = "conversations",
    params(("id" = i64, Path, description = "The group")), request_body = AddParticipants,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ConversationBody, description = "The group with its participants"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine, or no such colleague"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: not a group, too many members, or the body is not right"),
    ))]
pub async fn add_participants(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<AddParticipants>,
) -> ApiResult<Json<ConversationBody>> {
    edit(&app, &auth, id, GroupChange::Add(req.extension_ids)).await
}

/// Removes a participant from a group.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/participants/{extension_id}", tag = "conversations",
    params(("id" = i64, Path, description = "The group"), ("extension_id" = i64, Path, description = "The participant to remove")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ConversationBody, description = "The group with its participants"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: not a group, or not a participant"),
    ))]
pub async fn remove_participant(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params((id, extension_id)): Params<(i64, i64)>,
) -> ApiResult<Json<ConversationBody>> {
    edit(
        &app,
        &auth,
        id,
        GroupChange::Remove(ExtensionId(extension_id)),
    )
    .await
}

/// Leaves a group.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/leave", tag = "conversations",
    params(("id" = i64, Path, description = "The group")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Left"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: not a group"),
    ))]
pub async fn leave(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
) -> ApiResult<StatusCode> {
    let _left = edit(&app, &auth, id, GroupChange::Leave).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages just before this id (newest page when neither is given).
    #[param(nullable = false)]
    pub(super) before: Option<i64>,
    /// Messages just after this id; not with `before`.
    #[param(nullable = false)]
    pub(super) after: Option<i64>,
    /// 1 to 200, default 50.
    #[param(nullable = false, minimum = 1, maximum = 200)]
    pub(super) limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryBody {
    /// Ascending by id.
    #[schema(value_type = Vec<super::openapi::Message>)]
    messages: Vec<Message>,
    /// More messages exist in the direction asked for.
    has_more: bool,
}

/// A page of a conversation's history.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "The conversation"), HistoryQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = HistoryBody, description = "A page of history"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the limit is out of range, or both before and after are given"),
    ))]
pub async fn history(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> ApiResult<Json<HistoryBody>> {
    let page = HistoryPage::parse(q.before, q.after, q.limit)?;
    let (messages, has_more) = app
        .store
        .history(auth.session.extension.id, ConversationId(id), page)
        .await?;
    Ok(Json(HistoryBody { messages, has_more }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// 1 to 10,000 characters; may be empty when images are attached.
    #[serde(default)]
    pub(super) text: String,
    /// Ids of images uploaded with `POST /api/v1/media`, at most 10.
    #[serde(default)]
    pub(super) attachments: Vec<String>,
    /// Chosen by the client, unique per message; a retry with the same key
    /// returns the original message.
    pub(super) idempotency_key: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageBody {
    #[schema(value_type = super::openapi::Message)]
    message: Message,
}

/// Sends a message. Answered only once the message is committed.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "The conversation")), request_body = SendMessage,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = MessageBody, description = "Stored"),
        (status = 200, body = MessageBody, description = "Replayed: the key was used before, and this is the original message"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
        (status = 409, body = ErrorBody, description = "`conflict`: the idempotency key was used for a message in another conversation"),
        (status = 413, body = ErrorBody, description = "`payload_too_large`: the body is larger than 64 KiB"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: the text or key is refused, or the body is not right"),
    ))]
pub async fn send(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<SendMessage>,
) -> ApiResult<(StatusCode, Json<MessageBody>)> {
    let draft = Draft {
        conversation_id: ConversationId(id),
        text: &req.text,
        idempotency_key: req.idempotency_key.as_deref(),
        attachments: &req.attachments,
    };
    let posted = messaging::post_message(&app, &auth.session.extension, draft)
        .await?
        .value;
    let status = if posted.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(MessageBody {
            message: posted.message,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    #[schema(value_type = i64)]
    pub(super) message_id: MessageId,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Unread {
    unread_count: u32,
}

/// Marks everything up to and including a message as read.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "messages",
    params(("id" = i64, Path, description = "The conversation")), request_body = MarkRead,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = Unread, description = "My unread count in this conversation now"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
    ))]
pub async fn mark_read(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
    Body(req): Body<MarkRead>,
) -> ApiResult<Json<Unread>> {
    let unread_count = messaging::mark_read(
        &app,
        auth.session.extension.id,
        ConversationId(id),
        req.message_id,
    )
    .await?;
    Ok(Json(Unread { unread_count }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Receipts {
    #[schema(value_type = Vec<super::openapi::Receipt>)]
    receipts: Vec<Receipt>,
}

/// Each participant's read position: a message of mine has been read by
/// those whose position is at or past its id.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/receipts", tag = "messages",
    params(("id" = i64, Path, description = "The conversation")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = Receipts, description = "Each participant's read position"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such conversation of mine"),
    ))]
pub async fn receipts(
    State(app): State<Arc<App>>,
    auth: Authed,
    Params(id): Params<i64>,
) -> ApiResult<Json<Receipts>> {
    let receipts = app
        .store
        .receipts(auth.session.extension.id, ConversationId(id))
        .await?;
    Ok(Json(Receipts { receipts }))
}
