//! Secrets at rest: carrier credentials are sealed with an authenticated
//! cipher (ChaCha20-Poly1305) before they reach the store, and opened only
//! where a carrier is called. The key lives in a file created in the data
//! directory on first use, readable by its owner only; several nodes will
//! share one key given in their configuration.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

/// Bound into every sealed value, so a value sealed for another purpose
/// (or by another version of this format) never opens as a credential.
const CONTEXT: &[u8] = b"switchboard sealed secret v1";
const NONCE_LEN: usize = 12;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the secret key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("cannot read or create the key file {path}: {cause}")]
    KeyFile { path: String, cause: String },
    #[error("no randomness available")]
    NoRandomness,
    #[error("a sealed secret does not open with this key (wrong key, or the value was altered)")]
    Unopenable,
}

#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    /// A key for signing media links, derived from the secret key so one
    /// key configures both.
    media_links: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

impl Sealer {
    /// A key given as base64.
    pub fn from_base64(key: &str) -> Result<Self, SecretsError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| SecretsError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, SecretsError> {
        if bytes.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        use sha2::{Digest, Sha256};
        let media_links = Sha256::new()
            .chain_update(b"switchboard media links v1")
            .chain_update(bytes)
            .finalize()
            .into();
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)),
            media_links,
        })
    }

    /// The key in `path`, created (readable by the owner only) when the file
    /// does not exist yet.
    pub fn from_key_file(path: &Path) -> Result<Self, SecretsError> {
        let failed = |cause: String| SecretsError::KeyFile {
            path: path.display().to_string(),
            cause,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|_| SecretsError::NoRandomness)?;
                write_private(path, STANDARD.encode(key).as_bytes())
                    .map_err(|e| failed(e.to_string()))?;
                Self::from_bytes(&key)
            }
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// The key media links are signed with.
    pub fn media_link_key(&self) -> [u8; 32] {
        self.media_links
    }

    /// A fresh nonce followed by the ciphertext and its tag.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SecretsError::NoRandomness)?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: CONTEXT,
                },
            )
            .map_err(|_| SecretsError::Unopenable)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretsError::Unopenable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: CONTEXT,
                },
            )
            .map_err(|_| SecretsError::Unopenable)
    }
}

/// What may be shown of a secret: its last four characters.
pub fn hint(secret: &str) -> String {
    let tail: Vec<char> = secret.chars().rev().take(4).collect();
    format!("…{}", tail.into_iter().rev().collect::<String>())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret.key");
        let sealer = Sealer::from_key_file(&path).expect("a new key");
        let sealed = sealer.seal(b"auth token 123").expect("seal");
        assert!(
            !sealed.windows(5).any(|w| w == b"token"),
            "the secret is not stored in the clear"
        );
        let again = Sealer::from_key_file(&path).expect("the same key");
        assert_eq!(again.open(&sealed).expect("open"), b"auth token 123");
        let other = Sealer::from_base64(&STANDARD.encode([9u8; 32])).expect("a key");
        assert!(matches!(other.open(&sealed), Err(SecretsError::Unopenable)));
        let mut altered = sealed.clone();
        altered[NONCE_LEN] ^= 1;
        assert!(matches!(
            again.open(&altered),
            Err(SecretsError::Unopenable)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret.key");
        Sealer::from_key_file(&path).expect("a new key");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused_and_never_printed() {
        assert!(matches!(
            Sealer::from_base64("c2hvcnQ="),
            Err(SecretsError::BadKey)
        ));
        let sealer = Sealer::from_base64(&STANDARD.encode([7u8; 32])).expect("a key");
        assert_eq!(format!("{sealer:?}"), "Sealer(<key redacted>)");
        assert_eq!(hint("sk_live_abcdef1234"), "…1234");
    }
}
