//! Expiring tokens that let a carrier fetch one stored file.
//!
//! A carrier fetches an MMS's media from a URL we hand it, without signing
//! in. The URL names the file's [`MediaId`] and carries a token: the expiry
//! time and an HMAC-SHA256, under the server's key, over the id and that
//! expiry. Whoever holds the URL may fetch that one file until it expires;
//! changing the id, the expiry or any byte of the token breaks the MAC.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::MediaId;

type HmacSha256 = Hmac<Sha256>;

/// Keeps the MAC of these tokens from ever matching one computed over the
/// same key for another purpose.
const CONTEXT: &[u8] = b"switchboard media url v1\0";
const EXPIRY_LEN: usize = 8;
const TAG_LEN: usize = 32;
/// Base64 without padding of the expiry and the tag.
const TOKEN_LEN: usize = (EXPIRY_LEN + TAG_LEN) * 4 / 3 + 1;

/// Why a media URL's token was refused. The request is refused the same way
/// whatever the reason; the reason is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the link is not well formed")]
    Malformed,
    #[error("the link does not match this file")]
    Mismatch,
    #[error("the link has expired")]
    Expired,
}

impl SignatureError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed => "media_link_malformed",
            SignatureError::Mismatch => "media_link_mismatch",
            SignatureError::Expired => "media_link_expired",
        }
    }
}

/// Signs and checks media URL tokens with a 32-byte secret key.
///
/// The key must be random and secret (the server keeps it with its other
/// secrets); `Debug` never shows it.
#[derive(Clone)]
pub struct UrlSigner {
    mac: HmacSha256,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UrlSigner { key: <redacted> }")
    }
}

impl UrlSigner {
    pub fn new(key: [u8; 32]) -> UrlSigner {
        let mac = match HmacSha256::new_from_slice(&key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length.
            Err(_) => unreachable!("HMAC accepts a 32-byte key"),
        };
        UrlSigner { mac }
    }

    /// A URL-safe token (base64url, 54 characters) for `id`, valid until
    /// `expires_at_unix` (seconds since the Unix epoch, exclusive).
    pub fn sign(&self, id: &MediaId, expires_at_unix: i64) -> String {
        let mut token = [0; EXPIRY_LEN + TAG_LEN];
        token[..EXPIRY_LEN].copy_from_slice(&expires_at_unix.to_be_bytes());
        token[EXPIRY_LEN..].copy_from_slice(&self.tag(id, expires_at_unix).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Checks that `token` was signed by this key for `id` and has not
    /// expired at `now_unix`. The MAC is compared in constant time, and
    /// checked before the expiry so a forged token learns nothing more.
    pub fn verify(&self, id: &MediaId, token: &str, now_unix: i64) -> Result<(), SignatureError> {
        if token.len() != TOKEN_LEN {
            return Err(SignatureError::Malformed);
        }
        let decoded = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| SignatureError::Malformed)?;
        let (expiry, tag) = decoded
            .split_first_chunk::<EXPIRY_LEN>()
            .ok_or(SignatureError::Malformed)?;
        let expires_at = i64::from_be_bytes(*expiry);
        self.tag(id, expires_at)
            .verify_slice(tag)
            .map_err(|_| SignatureError::Mismatch)?;
        if now_unix >= expires_at {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    fn tag(&self, id: &MediaId, expires_at: i64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(id.as_str().as_bytes());
        mac.update(&expires_at.to_be_bytes());
        mac
    }
}
