//! Posting messages: the one path every sent message takes, from the REST
//! API and from WebSocket `send` frames alike.

use super::ServiceResult;
use crate::app::App;
use crate::media::Stored;
use switchboard_domain::{
    Attachment, ConversationId, ExtensionId, IdempotencyKey, InvalidValue, MessageId, MessageText,
};
use switchboard_store::{Committed, Extension, MarkRead, NewMessage, Posted, StoreError};

/// A message as a client wrote it, not yet validated.
pub struct Draft<'a> {
    pub conversation_id: ConversationId,
    pub text: &'a str,
    pub idempotency_key: Option<&'a str>,
    /// Ids of images uploaded before (`POST /api/v1/media`).
    pub attachments: &'a [String],
}

/// Most images one message carries: what MMS carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// The text of a message as written: any text, even none, when images go
/// with it; else a text that shows something.
pub fn message_text(text: &str, attachments: &[String]) -> Result<MessageText, InvalidValue> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(InvalidValue::new(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} images go with one message"),
        ));
    }
    if attachments.is_empty() {
        MessageText::parse(text)
    } else {
        MessageText::caption(text)
    }
}

/// The images a message carries, and their copies for carriers. Each must
/// be one the sender uploaded or may see.
async fn attachments(
    app: &App,
    sender: &Extension,
    ids: &[String],
) -> ServiceResult<(Vec<Attachment>, Vec<String>)> {
    let mut shown = Vec::with_capacity(ids.len());
    let mut copies = Vec::with_capacity(ids.len());
    for id in ids {
        let unknown = || {
            InvalidValue::new(
                "attachments",
                "each image must be uploaded first (POST /api/v1/media)",
            )
        };
        let record = app
            .store
            .media_record(sender.org_id, id.clone())
            .await?
            .ok_or_else(unknown)?;
        let allowed = record.uploaded_by == Some(sender.id)
            || app.store.may_see_media(sender.id, id.clone()).await?;
        let stored = Stored::from_record(&record)
            .filter(|_| allowed)
            .ok_or_else(unknown)?;
        if shown.iter().any(|a: &Attachment| a.id == *id) {
            continue;
        }
        shown.push(stored.attachment());
        copies.push(stored.carrier_copy.as_str().to_owned());
    }
    Ok((shown, copies))
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
    let text = message_text(draft.text, draft.attachments)?;
    let (attachments, carrier_media) = attachments(app, sender, draft.attachments).await?;
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
            attachments,
            carrier_media,
            idempotency_key,
            now: app.clock.now(),
        })
        .await?;
    if !committed.value.replayed {
        app.typing.stopped(draft.conversation_id, sender.id);
        if !committed.value.message.deliveries.is_empty() {
            app.outbox.wake();
        }
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
pub async fn typing(app: &App, me: &Extension, conversation: ConversationId) -> ServiceResult<()> {
    let c = app
        .store
        .conversation_for(me.id, conversation)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    let recipients = c.participants.iter().map(|p| p.id).collect();
    app.typing
        .typing(me.org_id, conversation, me.id, recipients);
    Ok(())
}
