//! Who is asking: opaque session tokens stored only as SHA-256 hashes, the
//! [`Authed`] extractor with CSRF protection for cookie-authenticated
//! changes, and the pieces it relies on ([`passwords`], [`session_cache`],
//! [`limiter`]).

pub mod limiter;
pub mod passwords;
pub mod session_cache;

pub use limiter::SignInLimiter;
pub use passwords::{PasswordError, PasswordWorkers};
pub use session_cache::SessionCache;

use crate::app::App;
use crate::http::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use switchboard_domain::Role;
use switchboard_store::{Session, TokenHash};

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_COOKIE: &str = "sb_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh session token: 32 random bytes, URL-safe base64.
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

/// The CSRF token that goes with a session token. Derived, not stored: only
/// someone who can read the session token (or the `sb_csrf` cookie, which
/// only our own origin can) knows it.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"switchboard csrf v1:");
    h.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How the request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Cookie,
    Bearer,
}

/// A signed-in extension. Extracting it refuses unauthenticated requests and
/// cookie-authenticated changes without a valid CSRF token.
#[derive(Debug, Clone)]
pub struct Authed {
    pub session: Session,
    pub token_hash: TokenHash,
    pub credential: Credential,
}

impl Authed {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.session.extension.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("only administrators may do this"))
        }
    }
}

pub fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session token and how it came.
pub fn presented_token(parts: &Parts) -> Option<(&str, Credential)> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        return Some((token, Credential::Bearer));
    }
    cookie_value(parts, SESSION_COOKIE).map(|t| (t, Credential::Cookie))
}

impl FromRequestParts<Arc<App>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let (token, credential) = presented_token(parts).ok_or_else(ApiError::unauthenticated)?;
        if token.is_empty() || token.len() > 128 {
            return Err(ApiError::unauthenticated());
        }
        let state_changing = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if credential == Credential::Cookie && state_changing {
            let expected = csrf_token(token);
            let given = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "this change needs the X-CSRF-Token header from sign-in",
                ));
            }
        }
        let token_hash = token_hash(token);
        let now = app.clock.now();
        let session = match app.sessions.get(&token_hash, now) {
            Some(session) => session,
            None => {
                let session = app
                    .store
                    .session(&token_hash, now)
                    .await?
                    .ok_or_else(ApiError::unauthenticated)?;
                app.sessions
                    .insert(token_hash.clone(), session.clone(), now);
                session
            }
        };
        Ok(Self {
            session,
            token_hash,
            credential,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_token_depends_on_the_session() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
