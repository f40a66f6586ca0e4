//! What every topic shares: the real server on a loopback port with a
//! temporary data directory (`server`), a signed-in client and its WebSocket
//! (`client`, `ws`), requests with any credential (`request`) and the
//! catalogue of endpoints the authorization tests walk (`catalogue`), and
//! several server processes on one PostgreSQL database and one NATS server
//! (`cluster`).

mod catalogue;
mod client;
mod cluster;
mod request;
mod server;
mod ws;

pub use catalogue::{
    PUBLIC_ROUTES, UNKNOWN_JOB, admin_endpoints, admin_endpoints_by_id, admin_number_endpoints,
    conversation_endpoints, every_endpoint, own_endpoints,
};
pub use client::{Answer, Client, answer, assert_error, uuid_like};
pub use cluster::Cluster;
pub use request::{Cred, Endpoint, Payload, TINY_PNG, bearer};
pub use server::{Server, copy_database};
pub use ws::Ws;

use std::time::Duration;

pub const PASSWORD: &str = "test-password";

/// An HTTP client for the tests. The build's reqwest speaks TLS through
/// rustls (the server's carriers need it), which needs its crypto provider
/// installed before a client is made.
pub fn http() -> reqwest::Client {
    switchboard_carriers::install_crypto_provider();
    reqwest::Client::new()
}
/// How long a test waits for something that should happen; generous, since
/// CI machines are slow. Never a synchronization sleep: waits end as soon
/// as the event arrives.
pub const PATIENCE: Duration = Duration::from_secs(20);
