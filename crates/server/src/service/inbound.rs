//! What carriers tell us: texts from customers and news of the texts we
//! sent. The webhook handlers (and the simulator) check where it came from
//! and parse it; this stores it, once, through the same commit-then-publish
//! path as a message from a colleague.

use super::ServiceResult;
use crate::app::App;
use switchboard_carriers::{CarrierStatus, InboundMessage, StatusReport as CarrierReport};
use switchboard_domain::{Attachment, AttachmentState, ConnectionId, DeliveryStatus};
use switchboard_store::{InboundOutcome, InboundText, StatusOutcome, StatusReport};

/// Stores a text a customer sent to one of our numbers. Its images are
/// fetched afterwards: the message appears at once with them pending.
pub async fn text_arrived(
    app: &App,
    connection: ConnectionId,
    event_key: String,
    message: InboundMessage,
    attachments: Vec<Attachment>,
) -> ServiceResult<InboundOutcome> {
    let pending: Vec<Attachment> = message
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| Attachment {
            id: format!("pending-{i}"),
            content_type: m
                .content_type
                .clone()
                .unwrap_or_else(|| "image/jpeg".into()),
            width: None,
            height: None,
            state: AttachmentState::Pending,
            url: None,
        })
        .collect();
    let fetch = !pending.is_empty();
    let committed = app
        .store
        .accept_inbound(InboundText {
            connection,
            event_key,
            from: message.from,
            to: message.to,
            text: message.text,
            attachments: if fetch { pending } else { attachments },
            now: app.clock.now(),
        })
        .await?;
    if let (true, InboundOutcome::Stored(stored)) = (fetch, &committed.value) {
        app.media_fetches
            .fetch(connection, stored.id, message.media.clone());
    }
    Ok(committed.value)
}

/// Applies a carrier's report on a text we sent.
pub async fn status_arrived(
    app: &App,
    connection: ConnectionId,
    event_key: String,
    report: CarrierReport,
) -> ServiceResult<StatusOutcome> {
    let status = match report.status {
        CarrierStatus::Queued => DeliveryStatus::Queued,
        CarrierStatus::Sent => DeliveryStatus::Sent,
        CarrierStatus::Delivered => DeliveryStatus::Delivered,
        CarrierStatus::Failed => DeliveryStatus::Failed,
    };
    Ok(app
        .store
        .record_status(StatusReport {
            connection,
            event_key,
            carrier_message_id: report.carrier_message_id,
            status,
            reason: report.error,
            now: app.clock.now(),
        })
        .await?
        .value)
}
