//! The content-addressed store in an S3-compatible bucket, against a real
//! local S3 server (moto).

use std::io;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use switchboard_media::moto::Moto;
use switchboard_media::{BucketConfig, BucketStore, Content, MediaId};

// The SHA-256 of "hello", as `sha256sum` prints it.
const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// A client of the same bucket that bypasses the store, to look at and
/// tamper with the objects themselves.
fn raw(config: &BucketConfig) -> impl ObjectStore {
    let (key, secret) = config.credentials.clone().expect("moto's credentials");
    AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_endpoint(config.endpoint.clone().expect("moto's endpoint"))
        .with_allow_http(true)
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .build()
        .expect("a raw client")
}

async fn keys(objects: &impl ObjectStore) -> Vec<String> {
    let mut keys: Vec<String> = objects
        .list(None)
        .map(|meta| meta.expect("list the bucket").location.to_string())
        .collect()
        .await;
    keys.sort();
    keys
}

#[tokio::test]
async fn a_file_is_stored_under_the_sha256_of_its_content_and_read_back() {
    let moto = Moto::start();
    let config = moto.bucket("round-trip");
    let store = BucketStore::open(&config).expect("open the bucket");

    let content = Content::new(&b"hello"[..]);
    assert_eq!(content.id().as_str(), HELLO);
    assert_eq!(content.id(), &MediaId::of_content(b"hello"));
    store.put(&content).await.expect("put");

    assert_eq!(BucketStore::key(content.id()), format!("media/{HELLO}"));
    assert_eq!(keys(&raw(&config)).await, [format!("media/{HELLO}")]);
    let read = store.read(content.id()).await.expect("read");
    assert_eq!(&read[..], b"hello");
    assert!(store.contains(content.id()).await.expect("contains"));
}

#[tokio::test]
async fn storing_the_same_content_twice_is_one_object_written_once() {
    let moto = Moto::start();
    let config = moto.bucket("dedupe");
    let store = BucketStore::open(&config).expect("open the bucket");
    let picture = Content::new(&b"a picture"[..]);
    store.put(&picture).await.expect("put");

    // Change the object behind the store's back: a second put that wrote
    // would put the original bytes back.
    let raw = raw(&config);
    let location = Path::from(BucketStore::key(picture.id()));
    raw.put(&location, PutPayload::from_static(b"left alone"))
        .await
        .expect("overwrite");
    store.put(&picture).await.expect("put again");
    let read = store.read(picture.id()).await.expect("read");
    assert_eq!(
        &read[..],
        b"left alone",
        "content already there is not sent again"
    );
    assert_eq!(keys(&raw).await.len(), 1);

    let other = Content::new(&b"another picture"[..]);
    assert_ne!(other.id(), picture.id());
    store.put(&other).await.expect("put another");
    assert_eq!(keys(&raw).await.len(), 2);
    let read = store.read(other.id()).await.expect("read");
    assert_eq!(&read[..], b"another picture");
}

#[tokio::test]
async fn an_unknown_id_is_not_found() {
    let moto = Moto::start();
    let store = BucketStore::open(&moto.bucket("missing")).expect("open the bucket");
    let id = MediaId::of_content(b"never stored");
    let error = store.read(&id).await.expect_err("nothing stored");
    assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
    assert!(!store.contains(&id).await.expect("contains"));
}

#[tokio::test]
async fn every_node_sees_what_one_node_stored() {
    let moto = Moto::start();
    let config = moto.bucket("shared");
    let writer = BucketStore::open(&config).expect("open the bucket");
    let reader = BucketStore::open(&config).expect("open it again");
    let content = Content::new(vec![7_u8; 3 * 1024 * 1024]);
    writer.put(&content).await.expect("put");
    let read = reader.read(content.id()).await.expect("read elsewhere");
    assert_eq!(read, content.bytes());
}

#[tokio::test]
async fn a_bucket_that_cannot_be_reached_is_an_error_not_a_missing_file() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let config = BucketConfig {
        endpoint: Some(format!("http://{closed}")),
        ..Moto::start().bucket("unreachable")
    };
    let store = BucketStore::open(&config).expect("opening makes no request");
    let id = MediaId::of_content(b"anything");
    let error = store.read(&id).await.expect_err("nobody listens");
    assert_ne!(error.kind(), io::ErrorKind::NotFound, "{error}");
    assert!(store.contains(&id).await.is_err());
    assert!(store.put(&Content::new(&b"anything"[..])).await.is_err());
}
