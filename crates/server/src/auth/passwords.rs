//! Argon2id password hashes, computed on a few dedicated threads so that a
//! burst of sign-ins can neither starve the message path of CPU nor grow
//! memory without bound.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use parking_lot::Mutex;
use std::sync::Arc;
use switchboard_domain::Password;

/// The password threads are gone (the server is stopping) or a hash could
/// not be made; the cause is logged where it happens.
#[derive(Debug, thiserror::Error)]
#[error("password hashing is unavailable")]
pub struct PasswordError;

/// Hashes a password with Argon2id and a random salt. Slow and memory-hungry
/// on purpose: call it through [`PasswordWorkers`].
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

/// A few dedicated threads that do all Argon2 work. Each hash needs a large
/// memory block; a fixed set of threads bounds both the memory allocators
/// keep for those blocks and the CPU a burst of sign-ins can take.
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
    ) -> Result<T, PasswordError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: PasswordJob = Box::new(move || {
            let _ = tx.send(f());
        });
        let jobs = self.jobs.clone();
        // The queue is bounded; waiting for room must not block the runtime.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(|_| PasswordError)?
            .map_err(|_| PasswordError)?;
        rx.await.map_err(|_| PasswordError)
    }

    pub async fn hash(&self, password: Password) -> Result<String, PasswordError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                PasswordError
            })
    }

    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move || verify_password(&password, stored.as_deref()))
            .await
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
}
