//! Posting messages: the one path every sent message takes, from the REST
//! API and from WebSocket `send` frames alike.

use super::ServiceResult;
use crate::app::App;
use switchboard_domain::{ConversationId, ExtensionId, IdempotencyKey, MessageId, MessageText};
use switchboard_store::{Committed, Extension, MarkRead, NewMessage, Posted, StoreError};

/// A message as a client wrote it, not yet validated.
pub struct Draft<'a> {
    pub conversation_id: ConversationId,
    pub text: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// Validates and stores a message from `sender`. It is committed (and its
/// event published) before this returns; a replayed idempotency key returns
/// the original message and announces nothing. Sending clears the sender's
/// typing indicator.
pub async fn post_message(
    app: &App,
    sender: &Extension,
    draft: Draft<'_>,
) -> ServiceResult<Committed<Posted>> {
    let text = MessageText::parse(draft.text)?;
    let idempotency_key = draft
        .idempotency_key
        .map(IdempotencyKey::parse)
        .transpose()?;
    let committed = app
        .store
        .post_message(NewMessage {
            conversation_id: draft.conversation_id,
            sender: sender.as_ref(),
            text,
            attachments: Vec::new(),
            carrier_media: Vec::new(),
            idempotency_key,
            now: app.clock.now(),
        })
        .await?;
    if !committed.value.replayed {
        app.typing.stopped(draft.conversation_id, sender.id);
    }
    Ok(committed)
}

/// Moves my read position forward to `up_to` (never back); returns my
/// unread count afterwards.
pub async fn mark_read(
    app: &App,
    me: ExtensionId,
    conversation: ConversationId,
    up_to: MessageId,
) -> ServiceResult<u32> {
    Ok(app
        .store
        .mark_read(MarkRead {
            me,
            conversation,
            up_to,
            now: app.clock.now(),
        })
        .await?
        .value)
}

/// I am typing in a conversation: the other participants are told, and told
/// again when I stop or the indicator expires.
pub async fn typing(app: &App, me: ExtensionId, conversation: ConversationId) -> ServiceResult<()> {
    let c = app
        .store
        .conversation_for(me, conversation)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    let recipients = c.participants.iter().map(|p| p.id).collect();
    app.typing.typing(conversation, me, recipients);
    Ok(())
}
