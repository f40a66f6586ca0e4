//! The SMS/MMS carriers Switchboard speaks to.
//!
//! Carriers call us with webhooks and we call their REST APIs. This crate
//! checks a webhook's signature exactly as each carrier computes it
//! ([`twilio`], [`telnyx`]) before anything in the webhook is believed. It
//! knows nothing of the store, HTTP routing or the domain's rules: the
//! server hands it the raw request parts and acts on the verdict.

pub mod telnyx;
pub mod twilio;

/// Why a webhook's signature was not accepted. The webhook is refused with
/// `403` whatever the reason; the reason is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature is not well formed")]
    Malformed,
    #[error("the signature does not match the request")]
    Mismatch,
    #[error("the timestamp is missing, malformed or too far from now")]
    Stale,
    #[error("the connection's key is not usable")]
    BadKey,
}
