//! Files kept by the SHA-256 of their content in an S3-compatible bucket,
//! so that every node of a deployment reads and writes the same images.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

use crate::MediaId;

/// Bytes and the id they are stored under.
///
/// Hashing a large image takes a while, so [`Content::new`] is meant for a
/// blocking thread, next to the decoding; the bucket's async writes then
/// take the id as it is.
#[derive(Debug, Clone)]
pub struct Content {
    id: MediaId,
    bytes: Bytes,
}

impl Content {
    /// Names `bytes` by their SHA-256. CPU-bound: call it from a blocking
    /// thread for anything but small inputs.
    pub fn new(bytes: impl Into<Bytes>) -> Content {
        let bytes = bytes.into();
        Content {
            id: MediaId::of_content(&bytes),
            bytes,
        }
    }

    pub fn id(&self) -> &MediaId {
        &self.id
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// How the bucket is named in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Addressing {
    /// `https://bucket.endpoint/key`, what AWS expects.
    #[default]
    VirtualHosted,
    /// `https://endpoint/bucket/key`, what most self-hosted S3 servers
    /// (MinIO, Ceph, moto) expect, since they have no per-bucket DNS names.
    Path,
}

/// Where the bucket is and how to sign requests to it.
#[derive(Clone)]
pub struct BucketConfig {
    pub bucket: String,
    /// The S3 API's URL; AWS's own for the region when `None`. An `http://`
    /// URL is allowed, for servers on a private network.
    pub endpoint: Option<String>,
    pub region: String,
    /// An access key id and its secret; when `None`, the standard AWS
    /// environment variables (`AWS_ACCESS_KEY_ID`, a web identity token)
    /// or else the machine's role (instance metadata) give them.
    pub credentials: Option<(String, String)>,
    pub addressing: Addressing,
}

impl fmt::Debug for BucketConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketConfig")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.credentials.as_ref().map(|(key, _)| key),
            )
            .field("addressing", &self.addressing)
            .finish_non_exhaustive()
    }
}

/// Content-addressed files in a bucket: the file of id `abcd…` is the
/// object `media/abcd…`. An object appears whole or not at all (S3 writes
/// are atomic), so there is no temporary name to clean up.
///
/// Its methods do network I/O asynchronously and no CPU-heavy work: run
/// them on the async runtime, never on a blocking thread or a store's
/// writer.
#[derive(Debug, Clone)]
pub struct BucketStore {
    objects: Arc<AmazonS3>,
}

/// The prefix of every object this store writes, so the bucket may hold
/// other things too.
const PREFIX: &str = "media";

/// How long one request may take. An image is at most a few megabytes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long retries of one operation may go on: someone is waiting for an
/// upload or an image, so giving up is better than waiting minutes.
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

impl BucketStore {
    /// Prepares the client. Makes no request: a bucket that cannot be
    /// reached shows in the first read or write.
    pub fn open(config: &BucketConfig) -> io::Result<BucketStore> {
        install_crypto_provider();
        let allow_http = config
            .endpoint
            .as_deref()
            .is_some_and(|endpoint| endpoint.starts_with("http://"));
        let client = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout(REQUEST_TIMEOUT);
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        };
        // Without a key pair, the standard AWS variables (a key, a web
        // identity token) or else the machine's role give the credentials.
        let builder = match config.credentials {
            Some(_) => AmazonS3Builder::new(),
            None => AmazonS3Builder::from_env(),
        };
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(config.addressing == Addressing::VirtualHosted)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some((key, secret)) = &config.credentials {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        let objects = builder.build().map_err(io::Error::other)?;
        Ok(BucketStore {
            objects: Arc::new(objects),
        })
    }

    /// Stores `content` under its id. Content already there is not sent
    /// again; two nodes storing the same content at once both write the
    /// same bytes under the same key, which is harmless.
    pub async fn put(&self, content: &Content) -> io::Result<()> {
        if self.contains(content.id()).await? {
            return Ok(());
        }
        let payload = PutPayload::from_bytes(content.bytes().clone());
        self.objects.put(&key(content.id()), payload).await?;
        Ok(())
    }

    /// Reads the file of `id`; an unknown id is `io::ErrorKind::NotFound`.
    pub async fn read(&self, id: &MediaId) -> io::Result<Bytes> {
        let found = self.objects.get(&key(id)).await?;
        Ok(found.bytes().await?)
    }

    /// Whether a file of `id` is stored.
    pub async fn contains(&self, id: &MediaId) -> io::Result<bool> {
        match self.objects.head(&key(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// The object key of `id`, e.g. for an operator looking in the bucket.
    pub fn key(id: &MediaId) -> String {
        format!("{PREFIX}/{}", id.as_str())
    }
}

fn key(id: &MediaId) -> Path {
    Path::from(BucketStore::key(id))
}

/// Makes `ring` the process's rustls provider unless one is installed
/// already: the bucket's HTTPS client needs one, and this build has no
/// other.
fn install_crypto_provider() {
    // An error means a provider is installed already, which is all the
    // client needs.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
