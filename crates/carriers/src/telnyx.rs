//! Telnyx API v2 messaging.
//!
//! - [`Client`] sends texts with `POST {base}/v2/messages` (JSON, bearer
//!   API key) and an `Idempotency-Key`: Telnyx answers a retry carrying the
//!   same key and body with the first success again instead of sending a
//!   second text (for 24 hours), so retrying is always safe.
//! - [`parse_webhook`] reads the JSON webhooks `message.received`,
//!   `message.sent` and `message.finalized`, keeping the event id for
//!   deduplication; other events parse to [`TelnyxEvent::Other`].
//! - [`verify`] checks the webhook signature: Ed25519 over
//!   `"{telnyx-timestamp}|{raw body}"` with the account's key pair, sent
//!   base64-encoded in `telnyx-signature-ed25519`, the timestamp (Unix
//!   seconds) in `telnyx-timestamp`. A webhook signed more than five minutes
//!   from now is refused, so a captured one cannot be replayed later.

mod api;
mod webhook;

pub use api::{Client, Config, DEFAULT_BASE_URL};
pub use webhook::{TelnyxEvent, parse_webhook};

use crate::SignatureError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// How far a webhook's timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The public key of a Telnyx connection, as its portal shows it (base64
/// of the 32 key bytes).
#[derive(Clone)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(base64_key: &str) -> Result<Self, SignatureError> {
        let bytes = STANDARD
            .decode(base64_key.trim())
            .map_err(|_| SignatureError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::BadKey)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| SignatureError::BadKey)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(…)")
    }
}

/// Checks a webhook: its timestamp within [`TOLERANCE_SECS`] of `now_secs`
/// and its signature over that timestamp and the exact body received.
pub fn verify(
    key: &PublicKey,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let timestamp = timestamp.ok_or(SignatureError::Stale)?.trim();
    let at: i64 = timestamp.parse().map_err(|_| SignatureError::Stale)?;
    if (now_secs - at).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let bytes = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::Malformed)?;
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    key.0
        .verify_strict(&signed, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: i64 = 1_780_000_000;
    const BODY: &[u8] = br#"{"data":{"event_type":"message.received","id":"b3"}}"#;

    fn keys() -> (SigningKey, PublicKey) {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let public = STANDARD.encode(signing.verifying_key().as_bytes());
        (signing, PublicKey::parse(&public).expect("a key"))
    }

    fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
        let mut signed = format!("{timestamp}|").into_bytes();
        signed.extend_from_slice(body);
        STANDARD.encode(key.sign(&signed).to_bytes())
    }

    #[test]
    fn a_fresh_webhook_signed_with_the_key_verifies() {
        let (signing, public) = keys();
        let ts = NOW.to_string();
        let sig = sign(&signing, &ts, BODY);
        assert_eq!(verify(&public, Some(&ts), Some(&sig), BODY, NOW), Ok(()));
        let earlier = (NOW - 299).to_string();
        let sig = sign(&signing, &earlier, BODY);
        assert_eq!(
            verify(&public, Some(&earlier), Some(&sig), BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn stale_replayed_and_tampered_webhooks_are_refused() {
        let (signing, public) = keys();
        let old = (NOW - 301).to_string();
        let sig = sign(&signing, &old, BODY);
        assert_eq!(
            verify(&public, Some(&old), Some(&sig), BODY, NOW),
            Err(SignatureError::Stale)
        );
        // The old signature under a fresh timestamp does not match.
        let fresh = NOW.to_string();
        assert_eq!(
            verify(&public, Some(&fresh), Some(&sig), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        let sig = sign(&signing, &fresh, BODY);
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(&public, Some(&fresh), Some(&sig), &tampered, NOW),
            Err(SignatureError::Mismatch)
        );
        let other = SigningKey::from_bytes(&[9u8; 32]);
        let forged = sign(&other, &fresh, BODY);
        assert_eq!(
            verify(&public, Some(&fresh), Some(&forged), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&public, Some(&fresh), None, BODY, NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(&public, None, Some(&sig), BODY, NOW),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&public, Some(&fresh), Some("abc"), BODY, NOW),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn keys_that_are_not_32_bytes_of_base64_are_refused() {
        assert!(PublicKey::parse("not base64").is_err());
        assert!(PublicKey::parse(&STANDARD.encode([1u8; 31])).is_err());
    }
}
