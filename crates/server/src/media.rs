//! Images sent with messages: uploads, inbound MMS images, the copies made
//! for carriers, and the signed URLs carriers fetch those copies from.
//!
//! Files are content-addressed (`switchboard_media`), kept in the data
//! directory on a single node or in an S3-compatible bucket that every node
//! of a deployment shares (`Files`). Decoding, encoding and hashing run on
//! the blocking pool, a few at a time: decoding is bounded in memory by the
//! media crate, and the permits bound how many such decodings run at once.
//! Disk I/O runs on the blocking pool too; the bucket's network I/O is async,
//! on the runtime, and never inside a store's write.

use bytes::Bytes;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Attachment, AttachmentState, Timestamp};
use switchboard_media::{
    BucketConfig, BucketStore, Content, MediaError, MediaId, MediaStore, UrlSigner,
};
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
    /// The note the store keeps of it for an organization.
    pub fn record(
        &self,
        org: switchboard_domain::OrgId,
        uploaded_by: Option<switchboard_domain::ExtensionId>,
    ) -> switchboard_store::MediaRecord {
        switchboard_store::MediaRecord {
            org,
            id: self.id.as_str().to_owned(),
            uploaded_by,
            content_type: self.content_type.to_owned(),
            width: self.width,
            height: self.height,
            size: self.size,
            carrier_copy: Some(self.carrier_copy.as_str().to_owned()),
        }
    }

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
    Io(#[from] io::Error),
}

/// Where image files are written and read: the seam between a single node's
/// data directory and the bucket shared by several nodes. Both keep files by
/// their SHA-256, so an id means the same bytes wherever it is read.
#[derive(Debug, Clone)]
enum Files {
    /// `data/media`, written atomically on the blocking pool.
    Disk(MediaStore),
    /// An S3-compatible bucket, over async HTTP.
    Bucket(BucketStore),
}

impl Files {
    async fn put(&self, content: Content) -> io::Result<()> {
        match self {
            Files::Disk(disk) => {
                let disk = disk.clone();
                tokio::task::spawn_blocking(move || disk.put_content(&content))
                    .await
                    .map_err(io::Error::other)?
            }
            Files::Bucket(bucket) => bucket.put(&content).await,
        }
    }

    /// The bytes of `id`; an unknown id is `io::ErrorKind::NotFound`.
    async fn read(&self, id: MediaId) -> io::Result<Bytes> {
        match self {
            Files::Disk(disk) => {
                let disk = disk.clone();
                tokio::task::spawn_blocking(move || disk.read(&id).map(Bytes::from))
                    .await
                    .map_err(io::Error::other)?
            }
            Files::Bucket(bucket) => bucket.read(&id).await,
        }
    }
}

pub struct Media {
    files: Files,
    signer: UrlSigner,
    public_url: String,
    conversions: Arc<Semaphore>,
}

impl Media {
    /// Keeps images in `bucket` when given, else in the data directory.
    /// Makes no network request: a bucket that cannot be reached shows in
    /// the first upload or read.
    pub fn open(
        data_dir: &Path,
        bucket: Option<&BucketConfig>,
        signing_key: [u8; 32],
        public_url: &str,
    ) -> io::Result<Self> {
        let files = match bucket {
            Some(bucket) => {
                tracing::info!(
                    bucket = %bucket.bucket,
                    endpoint = bucket.endpoint.as_deref().unwrap_or("AWS"),
                    "images are kept in a bucket"
                );
                Files::Bucket(BucketStore::open(bucket)?)
            }
            None => Files::Disk(MediaStore::open(data_dir.join("media"))?),
        };
        Ok(Self {
            files,
            signer: UrlSigner::new(signing_key),
            public_url: public_url.trim_end_matches('/').to_owned(),
            conversions: Arc::new(Semaphore::new(CONVERSIONS)),
        })
    }

    /// Checks that `bytes` are a JPEG, PNG or GIF (by content) of a size that
    /// can be decoded safely, stores them and a copy for carriers.
    pub async fn store_image(&self, bytes: Vec<u8>) -> Result<Stored, StoreImageError> {
        // The permit covers the writes too: the bytes stay in memory until
        // they are stored.
        let _permit = self
            .conversions
            .acquire()
            .await
            .map_err(|_| io::Error::other("the server is shutting down"))?;
        let (info, original, copy) = tokio::task::spawn_blocking(move || {
            let info = switchboard_media::inspect(&bytes)?;
            let copy = switchboard_media::carrier_copy(&bytes, CARRIER_COPY_BYTES)?;
            // An image that fits is its own carrier copy.
            let copy = (copy.bytes != bytes).then(|| Content::new(copy.bytes));
            Ok::<_, MediaError>((info, Content::new(bytes), copy))
        })
        .await
        .map_err(|e| StoreImageError::Io(io::Error::other(e)))??;
        let size = original.bytes().len() as u64;
        let id = original.id().clone();
        let carrier_copy = match copy {
            Some(copy) => {
                let copy_id = copy.id().clone();
                tokio::try_join!(self.files.put(original), self.files.put(copy))?;
                copy_id
            }
            None => {
                self.files.put(original).await?;
                id.clone()
            }
        };
        Ok(Stored {
            id,
            content_type: info.kind.content_type(),
            width: info.width,
            height: info.height,
            size,
            carrier_copy,
        })
    }

    /// The bytes of a stored file and its type, by content.
    pub async fn read(&self, id: MediaId) -> io::Result<(Bytes, &'static str)> {
        let bytes = self.files.read(id).await?;
        let kind = switchboard_media::sniff(&bytes)
            .map_err(|_| io::Error::other("a stored file is not an image"))?;
        Ok((bytes, kind.content_type()))
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
