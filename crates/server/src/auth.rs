//! Sign-in, sessions and the guards around them: Argon2id password hashes,
//! opaque session tokens stored only as SHA-256 hashes, CSRF protection for
//! cookie-authenticated changes, and the failed-sign-in limiter.

use crate::app::App;
use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_domain::{Password, Role};
use switchboard_store::{Session, TokenHash};

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_COOKIE: &str = "sb_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Hashes a password with Argon2id and a random salt. Slow and memory-hungry
/// on purpose (19 MiB per hash): call it through [`PasswordWorkers`].
pub fn hash_password(password: &Password) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// A hash of a password nobody knows, checked when the extension does not
/// exist so that a wrong number costs as long as a wrong password.
static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password(
        &Password::parse_attempt("decoy password that matches nothing")
            .unwrap_or_else(|_| unreachable!("the decoy password is within bounds")),
    )
    .unwrap_or_default()
});

/// True when `password` matches `stored` (a PHC string). Blocking.
pub fn verify_password(password: &Password, stored: Option<&str>) -> bool {
    let stored = stored.unwrap_or(DECOY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

type PasswordJob = Box<dyn FnOnce() + Send>;

/// A few dedicated threads that do all Argon2 work. Each hash needs a 19 MiB
/// block; on the shared blocking pool (with glibc's allocator, before
/// mimalloc) every thread's arena kept one, so memory grew with every
/// sign-in. A fixed set of threads bounds both the memory any allocator
/// keeps for those blocks and the CPU a burst of sign-ins can take.
#[derive(Clone)]
pub struct PasswordWorkers {
    jobs: std::sync::mpsc::SyncSender<PasswordJob>,
}

/// Sign-ins waiting for a worker; beyond this, callers wait their turn.
const PASSWORD_QUEUE: usize = 1024;

impl PasswordWorkers {
    pub fn start(threads: usize) -> anyhow::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<PasswordJob>(PASSWORD_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = rx.lock().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: PasswordJob = Box::new(move || {
            let _ = tx.send(f());
        });
        let jobs = self.jobs.clone();
        // The queue is bounded; waiting for room must not block the runtime.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|_| ApiError::internal())?;
        rx.await.map_err(|_| ApiError::internal())
    }

    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                ApiError::internal()
            })
    }

    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        self.run(move || verify_password(&password, stored.as_deref()))
            .await
    }
}

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
                app.sessions.insert(token_hash.clone(), session.clone());
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

/// Recently seen sessions, so that the message path does not read the
/// session table on every request. Every revocation made through this
/// server removes its entries at once; a change made behind the server's
/// back (the admin command line on the same database) takes effect within
/// [`SESSION_CACHE_TTL`].
pub struct SessionCache {
    entries: parking_lot::RwLock<HashMap<TokenHash, (Session, Instant)>>,
}

pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries kept at most; past it the cache starts over rather than grow.
const SESSION_CACHE_MAX: usize = 200_000;

impl SessionCache {
    pub fn new() -> Self {
        Self {
            entries: parking_lot::RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, token: &TokenHash, now: switchboard_domain::Timestamp) -> Option<Session> {
        let entries = self.entries.read();
        let (session, cached) = entries.get(token)?;
        (cached.elapsed() < SESSION_CACHE_TTL && session.expires_at > now).then(|| session.clone())
    }

    pub fn insert(&self, token: TokenHash, session: Session) {
        let mut entries = self.entries.write();
        if entries.len() >= SESSION_CACHE_MAX {
            entries.clear();
        }
        entries.insert(token, (session, Instant::now()));
    }

    pub fn forget_token(&self, token: &TokenHash) {
        self.entries.write().remove(token);
    }

    /// After any change to an extension (revocation, password, settings).
    pub fn forget_extension(&self, ext: switchboard_domain::ExtensionId) {
        self.entries
            .write()
            .retain(|_, (s, _)| s.extension.id != ext);
    }

    /// After a change to an organization, which every session carries.
    pub fn forget_all(&self) {
        self.entries.write().clear();
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Limits failed sign-ins per account and per client address. Successful
/// sign-ins clear the account's count. Kept in memory: a restart forgives,
/// which is acceptable for a brake on guessing.
pub struct SignInLimiter {
    window: Duration,
    per_account: u32,
    per_address: u32,
    failures: Mutex<HashMap<LimitKey, Window>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Entries kept before expired ones are swept, bounding memory under a flood
/// of distinct addresses.
const LIMITER_SWEEP_AT: usize = 10_000;

impl SignInLimiter {
    pub fn new(window: Duration, per_account: u32, per_address: u32) -> Self {
        Self {
            window,
            per_account,
            per_address,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: IpAddr) -> [(LimitKey, bool); 2] {
        [
            (LimitKey::Account(account.to_owned()), true),
            (LimitKey::Address(address), false),
        ]
    }

    /// `Err(seconds)` when either limit is reached.
    pub fn check(&self, account: &str, address: IpAddr, now: Instant) -> Result<(), u64> {
        let failures = self.failures.lock();
        for (key, is_account) in Self::keys(account, address) {
            let limit = if is_account {
                self.per_account
            } else {
                self.per_address
            };
            if let Some(w) = failures.get(&key) {
                let elapsed = now.saturating_duration_since(w.started);
                if elapsed < self.window && w.failures >= limit {
                    return Err((self.window - elapsed).as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, account: &str, address: IpAddr, now: Instant) {
        let mut failures = self.failures.lock();
        if failures.len() >= LIMITER_SWEEP_AT {
            let window = self.window;
            failures.retain(|_, w| now.saturating_duration_since(w.started) < window);
        }
        for (key, _) in Self::keys(account, address) {
            let w = failures.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.saturating_duration_since(w.started) >= self.window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures += 1;
        }
    }

    pub fn succeeded(&self, account: &str) {
        self.failures
            .lock()
            .remove(&LimitKey::Account(account.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let p = Password::parse_new("correct horse battery").expect("valid");
        let h = hash_password(&p).expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&p, Some(&h)));
        let wrong = Password::parse_attempt("wrong horse battery").expect("valid");
        assert!(!verify_password(&wrong, Some(&h)));
        assert!(!verify_password(&p, None));
        assert!(!verify_password(&p, Some("not a phc string")));
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_forgives_after_the_window() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 3, 10);
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("demo/101", ip, t0).is_ok());
            limiter.failed("demo/101", ip, t0);
        }
        let wait = limiter.check("demo/101", ip, t0).expect_err("blocked");
        assert_eq!(wait, 60);
        assert!(
            limiter.check("demo/102", ip, t0).is_ok(),
            "other accounts are not blocked"
        );
        assert!(
            limiter
                .check("demo/101", ip, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn limiter_blocks_an_address_trying_many_accounts() {
        let limiter = SignInLimiter::new(Duration::from_secs(60), 100, 5);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..5 {
            limiter.failed(&format!("demo/{i}"), ip, t0);
        }
        assert!(limiter.check("demo/999", ip, t0).is_err());
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        assert!(limiter.check("demo/999", other, t0).is_ok());
    }

    #[test]
    fn csrf_token_depends_on_the_session() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
