//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use switchboard_domain::EventKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub ws_connections: Gauge,
    pub messages_stored: Counter,
    pub frames_delivered: Counter,
    pub slow_clients_disconnected: Counter,
    pub request_seconds: Family<RouteLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let ws_connections = Gauge::default();
        let messages_stored = Counter::default();
        let frames_delivered = Counter::default();
        let slow_clients_disconnected = Counter::default();
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "websocket_connections",
            "Open WebSocket connections",
            ws_connections.clone(),
        );
        registry.register(
            "messages_stored",
            "Messages committed to the store",
            messages_stored.clone(),
        );
        registry.register(
            "frames_delivered",
            "Event frames queued to WebSocket connections",
            frames_delivered.clone(),
        );
        registry.register(
            "slow_clients_disconnected",
            "WebSocket connections cut because they did not keep up",
            slow_clients_disconnected.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            request_seconds.clone(),
        );
        Self {
            registry,
            ws_connections,
            messages_stored,
            frames_delivered,
            slow_clients_disconnected,
            request_seconds,
        }
    }

    /// Counts what a commit stored.
    pub fn count_committed(&self, event: &switchboard_store::Recorded) {
        if event.kind() == EventKind::MessageCreated {
            self.messages_stored.inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
