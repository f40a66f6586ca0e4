//! Images sent with messages: uploads, inbound MMS images, the copies made
//! for carriers, and the signed URLs carriers fetch those copies from.
//!
//! Files are content-addressed in the data directory (`switchboard_media`).
//! Everything that decodes, encodes or touches the disk runs on the blocking
//! pool, a few at a time: decoding is bounded in memory by the media crate,
//! and the permits bound how many such decodings run at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Attachment, AttachmentState, Timestamp};
use switchboard_media::{MediaError, MediaId, MediaStore, UrlSigner};
use tokio::sync::Semaphore;

/// Largest image accepted, uploaded or fetched from a carrier.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// Largest copy handed to carriers: what MMS gateways take.
pub const CARRIER_COPY_BYTES: usize = 600 * 1024;
/// How long a carrier may fetch a copy after the text was sent.
const SIGNED_URL_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Image conversions running at once.
const CONVERSIONS: usize = 2;

/// An image stored, with what clients and carriers need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: MediaId,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// The copy for carriers (the original itself when it fits).
    pub carrier_copy: MediaId,
}

impl Stored {
    /// The attachment as messages carry it.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            id: self.id.as_str().to_owned(),
            content_type: self.content_type.to_owned(),
            width: Some(self.width),
            height: Some(self.height),
            state: AttachmentState::Ready,
            url: Some(format!("/api/v1/media/{}", self.id.as_str())),
        }
    }
}

impl Stored {
    /// An image noted in the store, as messages carry it.
    pub fn from_record(record: &switchboard_store::MediaRecord) -> Option<Self> {
        let content_type = match record.content_type.as_str() {
            "image/jpeg" => "image/jpeg",
            "image/png" => "image/png",
            "image/gif" => "image/gif",
            _ => return None,
        };
        let id = MediaId::parse(&record.id).ok()?;
        let carrier_copy = record
            .carrier_copy
            .as_deref()
            .and_then(|c| MediaId::parse(c).ok())
            .unwrap_or_else(|| id.clone());
        Some(Self {
            id,
            content_type,
            width: record.width,
            height: record.height,
            size: record.size,
            carrier_copy,
        })
    }
}

/// Why an image was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreImageError {
    #[error(transparent)]
    Refused(#[from] MediaError),
    #[error("the image could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Media {
    files: MediaStore,
    signer: UrlSigner,
    public_url: String,
    conversions: Arc<Semaphore>,
}

impl Media {
    pub fn open(data_dir: &Path, signing_key: [u8; 32], public_url: &str) -> std::io::Result<Self> {
        Ok(Self {
            files: MediaStore::open(data_dir.join("media"))?,
            signer: UrlSigner::new(signing_key),
            public_url: public_url.trim_end_matches('/').to_owned(),
            conversions: Arc::new(Semaphore::new(CONVERSIONS)),
        })
    }

    /// Checks that `bytes` are a JPEG, PNG or GIF (by content) of a size that
    /// can be decoded safely, stores them and a copy for carriers.
    pub async fn store_image(&self, bytes: Vec<u8>) -> Result<Stored, StoreImageError> {
        let _permit = self
            .conversions
            .acquire()
            .await
            .map_err(|_| std::io::Error::other("the server is shutting down"))?;
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let info = switchboard_media::inspect(&bytes)?;
            let copy = switchboard_media::carrier_copy(&bytes, CARRIER_COPY_BYTES)?;
            let id = files.put(&bytes)?;
            let carrier_copy = files.put(&copy.bytes)?;
            Ok(Stored {
                id,
                content_type: info.kind.content_type(),
                width: info.width,
                height: info.height,
                size: bytes.len() as u64,
                carrier_copy,
            })
        })
        .await
        .map_err(|e| StoreImageError::Io(std::io::Error::other(e)))?
    }

    /// The bytes of a stored file and its type, by content.
    pub async fn read(&self, id: MediaId) -> std::io::Result<(Vec<u8>, &'static str)> {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = files.read(&id)?;
            let kind = switchboard_media::sniff(&bytes)
                .map_err(|_| std::io::Error::other("a stored file is not an image"))?;
            Ok((bytes, kind.content_type()))
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Signed URLs carriers fetch the copies `ids` from, valid for a day.
    pub fn carrier_urls(&self, ids: &[String], now: Timestamp) -> Vec<String> {
        let expires = now.saturating_add(SIGNED_URL_LIFETIME).unix_millis() / 1000;
        ids.iter()
            .filter_map(|id| MediaId::parse(id).ok())
            .map(|id| {
                format!(
                    "{}/media/{}?token={}",
                    self.public_url,
                    id.as_str(),
                    self.signer.sign(&id, expires)
                )
            })
            .collect()
    }

    /// Whether `token` lets its holder fetch `id` at `now`.
    pub fn token_allows(&self, id: &MediaId, token: &str, now: Timestamp) -> bool {
        self.signer
            .verify(id, token, now.unix_millis() / 1000)
            .is_ok()
    }
}
