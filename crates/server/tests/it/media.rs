//! Images in an S3-compatible bucket shared by several nodes, against a
//! real local S3 server (moto): what one node stores, another serves.

use crate::common::{PATIENCE, Server, answer, http};
use crate::sms::{BUSINESS, CUSTOMER, business_number, open_sms, padded_png, send};
use object_store::ObjectStoreExt;
use serde_json::json;
use switchboard::config::secret_key_path;
use switchboard_carriers::standin::TwilioStandin;
use switchboard_media::moto::Moto;
use switchboard_media::{BucketConfig, BucketStore, MediaId};

/// The variables that point a server at `bucket`.
fn bucket_env(bucket: &BucketConfig) -> Vec<(String, String)> {
    let (key, secret) = bucket.credentials.clone().expect("moto's credentials");
    [
        ("BUCKET", bucket.bucket.clone()),
        (
            "ENDPOINT",
            bucket.endpoint.clone().expect("moto's endpoint"),
        ),
        ("REGION", bucket.region.clone()),
        ("ACCESS_KEY_ID", key),
        ("SECRET_ACCESS_KEY", secret),
        ("PATH_STYLE", "true".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (format!("SWITCHBOARD_MEDIA__{name}"), value))
    .collect()
}

#[tokio::test]
async fn an_image_uploaded_on_one_node_is_served_by_another_from_the_shared_bucket() {
    let moto = Moto::start();
    let bucket = moto.bucket("shared-images");
    let env = bucket_env(&bucket);
    let twilio = TwilioStandin::start().await.expect("start the stand-in");

    let first_dir = tempfile::tempdir().expect("temp dir");
    let first = Server::start_with(first_dir.path(), "127.0.0.1:0", &env);
    // The nodes of a deployment share their keys (and their database, which
    // the second node does not need here): a copy of the key stands for it.
    let second_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        secret_key_path(first_dir.path()),
        secret_key_path(second_dir.path()),
    )
    .expect("share the key");
    let second = Server::start_with(second_dir.path(), "127.0.0.1:0", &env);

    first.admin(&[
        "add-carrier",
        "--org",
        "demo",
        "--kind",
        "twilio",
        "--name",
        "Twilio",
        "--account-sid",
        TwilioStandin::ACCOUNT_SID,
        "--secret",
        TwilioStandin::AUTH_TOKEN,
        "--base-url",
        &twilio.base_url(),
    ]);
    business_number(&first, "Twilio");

    // A photo too large for MMS, so that carriers get a smaller copy.
    let photo = padded_png(700 * 1024);
    let alice = first.sign_in("101").await;
    let uploaded = answer(
        alice
            .http
            .post(format!("{}/api/v1/media", alice.base))
            .bearer_auth(&alice.token)
            .header("content-type", "image/png")
            .body(photo.clone())
            .send()
            .await
            .expect("upload"),
    )
    .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let id = uploaded.body["media"]["id"].as_str().expect("an id");
    let id = MediaId::parse(id).expect("a media id");

    // The first node kept nothing on its disk: the image is in the bucket.
    assert!(
        !first_dir.path().join("media").exists(),
        "no files in the data directory"
    );
    let objects = BucketStore::open(&bucket).expect("open the bucket");
    let stored = objects.read(&id).await.expect("the upload in the bucket");
    assert_eq!(stored, photo);

    // Its owner reads it back from the first node, which has it only there.
    let mine = alice
        .http
        .get(format!("{}/api/v1/media/{id}", alice.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .expect("fetch");
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.bytes().await.expect("bytes"), photo);

    // The text goes out from the first node with a signed link to the
    // carrier copy; the load balancer may send the carrier's fetch to the
    // second node, which never saw the upload.
    let conversation = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    let sent = send(
        &alice,
        conversation,
        json!({"text": "", "attachments": [id.as_str()]}),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    tokio::time::timeout(PATIENCE, twilio.wait_for_requests(1))
        .await
        .expect("sent");
    let request = &twilio.requests()[0];
    assert_eq!(request.form_values("From"), [BUSINESS]);
    let links = request.form_values("MediaUrl");
    assert_eq!(links.len(), 1);
    let link = links[0]
        .strip_prefix(&first.base)
        .expect("a link to the first node");
    let copy = link
        .strip_prefix("/media/")
        .and_then(|rest| rest.split('?').next())
        .and_then(|copy| MediaId::parse(copy).ok())
        .expect("the copy's id in the link");
    assert_ne!(copy, id, "the photo was too large to send as it is");

    let fetched = http()
        .get(format!("{}{link}", second.base))
        .send()
        .await
        .expect("fetch from the second node");
    assert_eq!(fetched.status(), 200);
    let bytes = fetched.bytes().await.expect("bytes");
    assert!(bytes.len() <= 600 * 1024);
    assert_eq!(
        bytes,
        objects.read(&copy).await.expect("the copy in the bucket")
    );
    assert!(!second_dir.path().join("media").exists());

    // An object gone from the bucket is an image not found, not an error.
    let location = object_store::path::Path::from(BucketStore::key(&copy));
    raw_client(&bucket)
        .delete(&location)
        .await
        .expect("delete the copy");
    let gone = http()
        .get(format!("{}{link}", second.base))
        .send()
        .await
        .expect("fetch");
    assert_eq!(gone.status(), 404);
}

/// A client of the bucket that bypasses the server's store.
fn raw_client(bucket: &BucketConfig) -> impl ObjectStoreExt {
    let (key, secret) = bucket.credentials.clone().expect("moto's credentials");
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket.bucket)
        .with_region(&bucket.region)
        .with_endpoint(bucket.endpoint.clone().expect("moto's endpoint"))
        .with_allow_http(true)
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .build()
        .expect("a raw client")
}
