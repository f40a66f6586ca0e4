//! The built-in simulator carrier: a pretend phone network for the demo
//! and for trying SMS without a carrier account.
//!
//! Texts sent through a simulator connection land on the simulated phone
//! they are addressed to, and the simulator reports them sent and then
//! delivered, as a carrier's status callbacks would. People play the
//! customer on the simulator page (`http`), which texts business numbers
//! through the same inbound path a carrier's webhook takes. What the phones
//! hold lives in memory, bounded: it is a demo, not a record.

pub mod http;

use crate::clock::Clock;
use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_carriers::{
    Accepted, Carrier, FetchedMedia, MediaFetchError, OutboundText, SendError,
};
use switchboard_domain::phone::E164;
use switchboard_domain::{DeliveryStatus, Timestamp};
use switchboard_store::{StatusReport, Store};
use tokio::sync::{broadcast, mpsc};

/// Texts kept per simulated phone, and phones kept.
const TEXTS_PER_PHONE: usize = 200;
const PHONES: usize = 1_000;
/// Receipts waiting to be reported; beyond this the oldest are dropped
/// (their texts stay "queued", which the page shows).
const RECEIPT_QUEUE: usize = 1_024;

/// Which way a text went, seen from the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ToPhone,
    FromPhone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimMedia {
    pub url: String,
    pub content_type: String,
}

/// One text on a simulated phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimText {
    pub id: String,
    pub direction: Direction,
    pub business_number: E164,
    pub text: String,
    pub media: Vec<SimMedia>,
    pub status: DeliveryStatus,
    pub at: Timestamp,
}

/// What a phone's page hears live.
#[derive(Debug, Clone)]
pub enum SimEvent {
    Text {
        phone: E164,
        text: SimText,
    },
    Status {
        phone: E164,
        id: String,
        status: DeliveryStatus,
    },
}

impl SimEvent {
    pub fn phone(&self) -> &E164 {
        match self {
            Self::Text { phone, .. } | Self::Status { phone, .. } => phone,
        }
    }
}

struct Receipt {
    phone: E164,
    business_number: E164,
    id: String,
}

pub struct Simulator {
    clock: Arc<dyn Clock>,
    /// Pictures the simulated phones uploaded, which the page may show.
    uploads: Mutex<VecDeque<String>>,
    phones: Mutex<Phones>,
    live: broadcast::Sender<SimEvent>,
    next_id: AtomicU64,
    receipts: mpsc::Sender<Receipt>,
}

#[derive(Default)]
struct Phones {
    texts: HashMap<E164, VecDeque<SimText>>,
    /// Phones in the order they were first seen, to forget the oldest.
    order: VecDeque<E164>,
}

impl Phones {
    fn push(&mut self, phone: &E164, text: SimText) {
        if !self.texts.contains_key(phone) {
            if self.order.len() >= PHONES
                && let Some(oldest) = self.order.pop_front()
            {
                self.texts.remove(&oldest);
            }
            self.order.push_back(phone.clone());
        }
        let texts = self.texts.entry(phone.clone()).or_default();
        if texts.len() >= TEXTS_PER_PHONE {
            texts.pop_front();
        }
        texts.push_back(text);
    }

    fn set_status(&mut self, phone: &E164, id: &str, status: DeliveryStatus) {
        if let Some(t) = self
            .texts
            .get_mut(phone)
            .and_then(|texts| texts.iter_mut().find(|t| t.id == id))
        {
            t.status = status;
        }
    }
}

impl Simulator {
    /// The simulator, and the task that reports its receipts to the store
    /// (to be spawned on the app's tracker).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> (Arc<Self>, impl std::future::Future<Output = ()> + Send) {
        let (live, _) = broadcast::channel(256);
        let (receipts, rx) = mpsc::channel(RECEIPT_QUEUE);
        let simulator = Arc::new(Self {
            clock,
            uploads: Mutex::new(VecDeque::new()),
            phones: Mutex::new(Phones::default()),
            live,
            next_id: AtomicU64::new(1),
            receipts,
        });
        let reporter = report_receipts(Arc::clone(&simulator), store, rx);
        (simulator, reporter)
    }

    fn next_id(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{:x}{n:06}", self.clock.now().0)
    }

    /// What the phone holds, oldest first.
    pub fn texts_of(&self, phone: &E164) -> Vec<SimText> {
        self.phones
            .lock()
            .texts
            .get(phone)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn note_upload(&self, id: &str) {
        let mut uploads = self.uploads.lock();
        if uploads.len() >= PHONES {
            uploads.pop_front();
        }
        uploads.push_back(id.to_owned());
    }

    pub fn uploaded(&self, id: &str) -> bool {
        self.uploads.lock().iter().any(|u| u == id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.live.subscribe()
    }

    fn keep(&self, phone: &E164, text: SimText) {
        self.phones.lock().push(phone, text.clone());
        let _ = self.live.send(SimEvent::Text {
            phone: phone.clone(),
            text,
        });
    }

    /// Records a text the phone sent to a business number, once the server
    /// has taken it.
    pub fn phone_sent(
        &self,
        phone: &E164,
        business_number: &E164,
        text: &str,
        media: Vec<SimMedia>,
    ) -> SimText {
        let sent = SimText {
            id: self.next_id("SIMIN"),
            direction: Direction::FromPhone,
            business_number: business_number.clone(),
            text: text.to_owned(),
            media,
            status: DeliveryStatus::Delivered,
            at: self.clock.now(),
        };
        self.keep(phone, sent.clone());
        sent
    }

    fn status(&self, phone: &E164, id: &str, status: DeliveryStatus) {
        self.phones.lock().set_status(phone, id, status);
        let _ = self.live.send(SimEvent::Status {
            phone: phone.clone(),
            id: id.to_owned(),
            status,
        });
    }
}

#[async_trait]
impl Carrier for Simulator {
    async fn send(&self, text: &OutboundText) -> Result<Accepted, SendError> {
        let id = self.next_id("SIM");
        let media = text
            .media_urls
            .iter()
            .map(|url| SimMedia {
                url: url.clone(),
                content_type: "image/*".into(),
            })
            .collect();
        self.keep(
            &text.to,
            SimText {
                id: id.clone(),
                direction: Direction::ToPhone,
                business_number: text.from.clone(),
                text: text.body.clone(),
                media,
                status: DeliveryStatus::Queued,
                at: self.clock.now(),
            },
        );
        // A full queue loses the receipt, never the text.
        let _ = self.receipts.try_send(Receipt {
            phone: text.to.clone(),
            business_number: text.from.clone(),
            id: id.clone(),
        });
        Ok(Accepted {
            carrier_message_id: id,
        })
    }

    async fn fetch_media(
        &self,
        _url: &str,
        _limit: usize,
    ) -> Result<FetchedMedia, MediaFetchError> {
        // Images from simulated phones are stored when they are sent.
        Err(MediaFetchError::BadUrl)
    }
}

/// Reports each text the simulator took as sent, then delivered, through
/// the store's status path, as a carrier's callbacks would.
async fn report_receipts(
    simulator: Arc<Simulator>,
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Receipt>,
) {
    while let Some(receipt) = rx.recv().await {
        let connection = match store.number_by_e164(&receipt.business_number).await {
            Ok(Some(n)) => n.connection_id,
            _ => None,
        };
        let Some(connection) = connection else {
            continue;
        };
        for status in [DeliveryStatus::Sent, DeliveryStatus::Delivered] {
            // The phone shows the receipt as sent before the business hears
            // of it, so whoever sees the business's status finds the phone
            // at least as far.
            simulator.status(&receipt.phone, &receipt.id, status);
            let reported = store
                .record_status(StatusReport {
                    connection,
                    event_key: format!("{}:{}", receipt.id, status.as_str()),
                    carrier_message_id: receipt.id.clone(),
                    status,
                    reason: None,
                    now: simulator.clock.now(),
                })
                .await;
            if let Err(e) = reported {
                tracing::warn!(error = %e, "the simulator could not report a receipt");
                break;
            }
        }
    }
}
