//! The SMS outbox worker: sends the texts the store queued with their
//! messages, through each text's carrier connection.
//!
//! Each step ([`Outbox::run_once`]) claims the texts due now, sends them
//! concurrently, and records what each carrier answered: taken (the
//! carrier's id is kept for its status reports), refused for good (the
//! delivery fails at once with the carrier's reason), or not taken this
//! time (tried again after an exponential backoff with jitter, never sooner
//! than a `Retry-After` asks, within a budget of attempts; then it fails
//! visibly). A claim runs out, so a text whose sending died with its server
//! is sent again, with the same idempotency key.
//!
//! Duplicates. Towards Telnyx the key makes every attempt of a text the
//! same request: a crash or a timeout between the carrier taking the text
//! and us recording it is answered, on the next attempt, with the text
//! already created. Twilio's Messages API has no such key, so there the
//! one window where a customer can get a text twice is an attempt whose
//! outcome we never learnt — the request timed out or its connection broke
//! after it was written (`SendError::is_ambiguous`), or the server died
//! between the carrier's answer and our commit of it. The worker keeps that
//! window as narrow as it can: the claim is committed before the request
//! leaves, the answer is committed the moment it arrives, nothing else runs
//! between the two, and answers that say the carrier did not act (a
//! refused connection, 429, 5xx) are retried without risk.

use crate::carriers::{CarrierClients, ConnectionError};
use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::media::Media;
use std::sync::Arc;
use std::time::Duration;
use switchboard_carriers::{OutboundText, SendError};
use switchboard_domain::delivery::RetryPolicy;
use switchboard_domain::{CarrierKind, Timestamp};
use switchboard_store::{OutboxText, Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Texts claimed per step.
const BATCH: u32 = 64;
/// How often the worker looks when nothing is due (other nodes may queue
/// texts this one is not told about, or die holding claims on some).
pub const IDLE_LOOK: Duration = Duration::from_secs(30);

pub struct Outbox {
    pub store: Arc<dyn Store>,
    pub carriers: Arc<CarrierClients>,
    pub media: Arc<Media>,
    pub public_url: PublicUrl,
    pub policy: RetryPolicy,
    /// How long a claim on a text holds: a send still running when it
    /// runs out would be taken for a dead one.
    claim: Duration,
    wake: Notify,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        carriers: Arc<CarrierClients>,
        media: Arc<Media>,
        public_url: PublicUrl,
        claim: Duration,
    ) -> Self {
        Self {
            store,
            carriers,
            media,
            public_url,
            policy: RetryPolicy::default(),
            claim,
            wake: Notify::new(),
        }
    }

    /// New texts were queued: look now rather than at the next due time.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends every text due at `now`; returns how many were tried.
    pub async fn run_once(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut tried = 0;
        loop {
            let texts = self
                .store
                .claim_texts(now, now.saturating_add(self.claim), BATCH)
                .await?;
            if texts.is_empty() {
                return Ok(tried);
            }
            tried += texts.len();
            let sends = texts.into_iter().map(|text| self.send_one(text, now));
            for outcome in futures_util::future::join_all(sends).await {
                outcome?;
            }
        }
    }

    async fn send_one(&self, text: OutboxText, now: Timestamp) -> Result<(), StoreError> {
        let connection = match self.carriers.get(text.connection).await {
            Ok(c) => c,
            Err(ConnectionError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(connection = %text.connection, error = %e, "a text cannot be sent");
                self.store
                    .text_failed(
                        text.id,
                        format!("Not sent: {e}. Ask an administrator to check it."),
                        now,
                    )
                    .await?;
                return Ok(());
            }
        };
        let status_callback = match connection.kind {
            CarrierKind::Twilio => Some(format!(
                "{}/webhooks/twilio/{}/status",
                self.public_url.as_str(),
                text.connection
            )),
            CarrierKind::Telnyx => Some(format!(
                "{}/webhooks/telnyx/{}",
                self.public_url.as_str(),
                text.connection
            )),
            CarrierKind::Simulator => None,
        };
        let outbound = OutboundText {
            from: text.from.clone(),
            to: text.to.clone(),
            body: text.body.clone(),
            media_urls: self.media.carrier_urls(&text.media, now),
            idempotency_key: text.idempotency_key.clone(),
            status_callback,
        };
        match connection.client.send(&outbound).await {
            Ok(accepted) => {
                self.store
                    .text_accepted(text.id, accepted.carrier_message_id, now)
                    .await?;
            }
            Err(e @ SendError::Rejected { .. }) if e.is_opt_out() => {
                tracing::info!(to = %text.to.redacted(), "the carrier says the customer opted out");
                self.store
                    .text_opted_out(text.id, e.reason().to_owned(), now)
                    .await?;
            }
            Err(SendError::Rejected { code, reason }) => {
                tracing::info!(%code, to = %text.to.redacted(), "the carrier refused a text");
                self.store.text_failed(text.id, reason, now).await?;
            }
            Err(e) => {
                if e.is_ambiguous() {
                    tracing::warn!(
                        to = %text.to.redacted(),
                        attempt = text.attempts,
                        "a carrier request ended without an answer; it is sent again"
                    );
                }
                let jitter = random_fraction();
                match self
                    .policy
                    .next_delay(text.attempts, e.retry_after(), jitter)
                {
                    Some(delay) => {
                        self.store
                            .text_retry(text.id, now.saturating_add(delay), e.reason().to_owned())
                            .await?;
                    }
                    None => {
                        let reason =
                            format!("Not sent after {} attempts: {}", text.attempts, e.reason());
                        self.store.text_failed(text.id, reason, now).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A number in `[0, 1)` to spread retries.
fn random_fraction() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Runs the worker until shutdown: every claim left by a run that died is
/// released at start (one server per database, see ARCHITECTURE.md), then
/// it sends what is due, and sleeps until the next text is due, new texts
/// are queued, or a while has passed.
pub fn spawn(
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    tasks.spawn(async move {
        if let Err(e) = outbox.store.release_claims(clock.now()).await {
            tracing::error!(error = %e, "cannot release the outbox's claims");
        }
        loop {
            let now = clock.now();
            if let Err(e) = outbox.run_once(now).await {
                tracing::error!(error = %e, "the outbox could not send");
            }
            let next = match outbox.store.next_text_due().await {
                Ok(Some(due)) => due.max(now.saturating_add(Duration::from_millis(1))),
                _ => now.saturating_add(IDLE_LOOK),
            }
            .min(now.saturating_add(IDLE_LOOK));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = outbox.wake.notified() => {}
                () = clock.sleep_until(next) => {}
            }
        }
    });
}
