//! Inbound MMS media: Twilio's URLs want the account's credentials and
//! redirect to a CDN that must not get them; Telnyx's are pre-signed; a
//! body above the limit is refused however it is sent.

use switchboard_carriers::standin::{TelnyxStandin, TwilioStandin};
use switchboard_carriers::{Carrier, MediaFetchError, telnyx, twilio};

fn picture(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn twilio_media_follows_the_redirect_with_credentials_on_twilios_host_only() {
    let standin = TwilioStandin::start().await.expect("stand-in");
    let carrier = twilio::Client::new(standin.config()).expect("a client");
    let bytes = picture(40_000);
    let url = standin.media_url(bytes.clone(), "image/jpeg");

    let media = carrier.fetch_media(&url, 1_000_000).await.expect("fetched");
    assert_eq!(media.bytes, bytes);
    assert_eq!(media.content_type.as_deref(), Some("image/jpeg"));

    let api = standin.requests();
    assert_eq!(api.len(), 1);
    assert_eq!(
        api[0].basic_auth(),
        Some((
            TwilioStandin::ACCOUNT_SID.to_owned(),
            TwilioStandin::AUTH_TOKEN.to_owned()
        ))
    );
    let cdn = standin.cdn_requests();
    assert_eq!(cdn.len(), 1);
    assert_eq!(cdn[0].header("authorization"), None);
}

#[tokio::test]
async fn twilio_credentials_never_go_to_another_host() {
    let standin = TwilioStandin::start().await.expect("stand-in");
    let carrier = twilio::Client::new(standin.config()).expect("a client");
    let url = standin.media_url(picture(10), "image/png");
    // The same media fetched straight from the CDN's origin.
    let direct = format!(
        "{}/media/{}",
        standin.cdn_base_url(),
        url.rsplit('/').next().expect("an id")
    );
    let media = carrier.fetch_media(&direct, 100).await.expect("fetched");
    assert_eq!(media.bytes.len(), 10);
    assert!(standin.requests().is_empty());
    assert_eq!(standin.cdn_requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn media_above_the_limit_is_refused_by_length_and_while_streaming() {
    let standin = TwilioStandin::start().await.expect("stand-in");
    let carrier = twilio::Client::new(standin.config()).expect("a client");
    let announced = standin.media_url(picture(200_000), "image/png");
    assert_eq!(
        carrier.fetch_media(&announced, 100_000).await,
        Err(MediaFetchError::TooLarge { limit: 100_000 })
    );
    let streamed = standin.streamed_media_url(picture(200_000), "image/png");
    assert_eq!(
        carrier.fetch_media(&streamed, 100_000).await,
        Err(MediaFetchError::TooLarge { limit: 100_000 })
    );
    // Exactly the limit is fine, announced or streamed.
    let exact = standin.streamed_media_url(picture(100_000), "image/png");
    let media = carrier.fetch_media(&exact, 100_000).await.expect("fits");
    assert_eq!(media.bytes.len(), 100_000);
}

#[tokio::test]
async fn telnyx_media_is_fetched_without_credentials() {
    let standin = TelnyxStandin::start().await.expect("stand-in");
    let carrier = telnyx::Client::new(standin.config()).expect("a client");
    let bytes = picture(5_000);
    let url = standin.media_url(bytes.clone(), "image/gif");
    let media = carrier.fetch_media(&url, 10_000).await.expect("fetched");
    assert_eq!(media.bytes, bytes);
    assert_eq!(media.content_type.as_deref(), Some("image/gif"));
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(
        requests[0].query.as_deref(),
        Some("X-Amz-Expires=3600&X-Amz-Signature=standin")
    );

    let streamed = standin.streamed_media_url(picture(20_000), "image/gif");
    assert_eq!(
        carrier.fetch_media(&streamed, 10_000).await,
        Err(MediaFetchError::TooLarge { limit: 10_000 })
    );
}

#[tokio::test]
async fn missing_media_and_bad_urls_are_errors_that_say_whether_to_retry() {
    let standin = TelnyxStandin::start().await.expect("stand-in");
    let carrier = telnyx::Client::new(standin.config()).expect("a client");
    let missing = carrier
        .fetch_media(&format!("{}/media/nothing", standin.base_url()), 10)
        .await
        .expect_err("missing");
    assert_eq!(missing, MediaFetchError::Status { status: 404 });
    assert!(!missing.is_retryable());
    assert_eq!(
        carrier.fetch_media("ftp://example.com/a.png", 10).await,
        Err(MediaFetchError::BadUrl)
    );

    standin.stop_listening().await;
    let unreachable = carrier
        .fetch_media(&format!("{}/media/nothing", standin.base_url()), 10)
        .await
        .expect_err("down");
    assert!(unreachable.is_retryable(), "{unreachable:?}");
}
