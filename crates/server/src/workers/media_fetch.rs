//! Fetches the images of inbound MMS after their message is stored: the
//! message appears at once, each image as soon as it is fetched, checked
//! and stored (or marked failed). The queue is bounded; when it is full the
//! images are marked failed rather than the webhook kept waiting.

use crate::carriers::CarrierClients;
use crate::clock::Clock;
use crate::media::{MAX_IMAGE_BYTES, Media, StoreImageError};
use std::sync::Arc;
use std::time::Duration;
use switchboard_carriers::MediaRef;
use switchboard_domain::{Attachment, AttachmentState, ConnectionId, MessageId};
use switchboard_store::{MediaRecord, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Messages whose images wait to be fetched.
const QUEUE: usize = 1_024;
/// Attempts per image: carriers' media servers have bad moments too.
const ATTEMPTS: u32 = 3;

struct Fetch {
    connection: ConnectionId,
    message: MessageId,
    media: Vec<MediaRef>,
}

#[derive(Clone)]
pub struct MediaFetches {
    queue: mpsc::Sender<Fetch>,
    store: Arc<dyn Store>,
}

impl MediaFetches {
    /// Queues the images of a stored message.
    pub fn fetch(&self, connection: ConnectionId, message: MessageId, media: Vec<MediaRef>) {
        let count = media.len();
        if self
            .queue
            .try_send(Fetch {
                connection,
                message,
                media,
            })
            .is_err()
        {
            tracing::warn!(%message, "too many images waiting; these are marked failed");
            let store = Arc::clone(&self.store);
            tokio::spawn(async move {
                for i in 0..count {
                    let _ = store.update_attachment(message, i, failed(i)).await;
                }
            });
        }
    }
}

fn failed(index: usize) -> Attachment {
    Attachment {
        id: format!("failed-{index}"),
        content_type: "image/jpeg".into(),
        width: None,
        height: None,
        state: AttachmentState::Failed,
        url: None,
    }
}

pub fn spawn(
    store: Arc<dyn Store>,
    carriers: Arc<CarrierClients>,
    media: Arc<Media>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> MediaFetches {
    let (queue, mut rx) = mpsc::channel::<Fetch>(QUEUE);
    let handle = MediaFetches {
        queue,
        store: Arc::clone(&store),
    };
    tasks.spawn(async move {
        loop {
            let fetch = tokio::select! {
                () = shutdown.cancelled() => return,
                next = rx.recv() => match next {
                    Some(f) => f,
                    None => return,
                },
            };
            for (index, item) in fetch.media.iter().enumerate() {
                let parts = Parts {
                    store: &store,
                    carriers: &carriers,
                    media: &media,
                    clock: clock.as_ref(),
                };
                let attachment = fetch_one(&parts, &fetch, item, index).await;
                if let Err(e) = store
                    .update_attachment(fetch.message, index, attachment)
                    .await
                {
                    tracing::error!(error = %e, "cannot record a fetched image");
                }
            }
        }
    });
    handle
}

struct Parts<'a> {
    store: &'a Arc<dyn Store>,
    carriers: &'a CarrierClients,
    media: &'a Media,
    clock: &'a dyn Clock,
}

async fn fetch_one(parts: &Parts<'_>, fetch: &Fetch, item: &MediaRef, index: usize) -> Attachment {
    let Parts {
        store,
        carriers,
        media,
        clock,
    } = *parts;
    let Ok(connection) = carriers.get(fetch.connection).await else {
        return failed(index);
    };
    let mut attempt = 0;
    let bytes = loop {
        attempt += 1;
        match connection
            .client
            .fetch_media(&item.url, MAX_IMAGE_BYTES)
            .await
        {
            Ok(fetched) => break fetched.bytes,
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                let wait = Duration::from_secs(u64::from(attempt));
                clock.sleep_until(clock.now().saturating_add(wait)).await;
            }
            Err(e) => {
                tracing::warn!(message = %fetch.message, error = %e, "an inbound image could not be fetched");
                return failed(index);
            }
        }
    };
    match media.store_image(bytes).await {
        Ok(stored) => {
            let record = MediaRecord {
                org: connection.org,
                id: stored.id.as_str().to_owned(),
                uploaded_by: None,
                content_type: stored.content_type.to_owned(),
                width: stored.width,
                height: stored.height,
                size: stored.size,
                carrier_copy: Some(stored.carrier_copy.as_str().to_owned()),
            };
            if let Err(e) = store.add_media(record, clock.now()).await {
                tracing::error!(error = %e, "cannot note an inbound image");
            }
            stored.attachment()
        }
        Err(StoreImageError::Refused(e)) => {
            tracing::info!(message = %fetch.message, error = %e, "an inbound item is not an image we keep");
            failed(index)
        }
        Err(StoreImageError::Io(e)) => {
            tracing::error!(error = %e, "cannot store an inbound image");
            failed(index)
        }
    }
}
