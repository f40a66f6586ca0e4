//! The server's integration tests: each starts the real `switchboard`
//! binary on port 0 with a temporary data directory and talks HTTP and
//! WebSocket to it as a client does. One binary, one module per topic, and
//! one `common` harness that every topic shares.

mod admin_numbers;
mod authorization;
mod common;
mod crash;
mod jobs;
mod live;
mod media;
mod nodes;
mod protocol;
mod sms;
mod validation;
