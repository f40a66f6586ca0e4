//! Background work owned by the app: each worker is a task on the app's
//! tracker that stops with the app's shutdown and takes its time from the
//! app's clock. Workers that act on durable state (the SMS outbox, queue
//! timeouts) expose a `run_once(now)` step so tests can drive them.

pub mod jobs;
pub mod media_fetch;
pub mod outbox;
pub mod sessions;
pub mod typing;
