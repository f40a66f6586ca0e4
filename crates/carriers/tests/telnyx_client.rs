//! The Telnyx client against the stand-in: the documented request with its
//! Idempotency-Key, refusals and transient failures mapped, and exactly one
//! text per key through timeouts, cuts, errors and outages.

use std::time::Duration;
use switchboard_carriers::standin::{Misbehaviour, TelnyxStandin};
use switchboard_carriers::telnyx::{Client, Config};
use switchboard_carriers::{Accepted, Carrier, E164, OutboundText, SendError};

const FROM: &str = "+14155552671";
const TO: &str = "+442079460958";

fn number(n: &str) -> E164 {
    E164::parse_strict(n).expect("a valid number")
}

fn text(key: &str, body: &str) -> OutboundText {
    OutboundText {
        from: number(FROM),
        to: number(TO),
        body: body.to_owned(),
        media_urls: Vec::new(),
        idempotency_key: key.to_owned(),
        status_callback: None,
    }
}

fn client(config: Config) -> Client {
    Client::new(config).expect("a client")
}

#[tokio::test]
async fn a_text_is_sent_as_the_documented_json_with_bearer_and_idempotency_key() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    let mms = OutboundText {
        media_urls: vec![
            "https://pbx.example.com/media/a.jpg?sig=1".to_owned(),
            "https://pbx.example.com/media/b.gif?sig=2".to_owned(),
        ],
        status_callback: Some("https://pbx.example.com/webhooks/telnyx/4".to_owned()),
        ..text("0190e7a1-4b7e-7c3a-9f00-000000000001", "Your order shipped")
    };
    let accepted = client(telnyx.config()).send(&mms).await.expect("accepted");

    let created = telnyx.messages_created();
    assert_eq!(created.len(), 1);
    assert_eq!(accepted.carrier_message_id, created[0].id);

    let requests = telnyx.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2/messages");
    assert_eq!(request.bearer(), Some(TelnyxStandin::API_KEY));
    assert_eq!(
        request.header("idempotency-key"),
        Some("0190e7a1-4b7e-7c3a-9f00-000000000001")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        Some(serde_json::json!({
            "from": FROM,
            "to": TO,
            "text": "Your order shipped",
            "media_urls": [
                "https://pbx.example.com/media/a.jpg?sig=1",
                "https://pbx.example.com/media/b.gif?sig=2",
            ],
            "webhook_url": "https://pbx.example.com/webhooks/telnyx/4",
        }))
    );
}

#[tokio::test]
async fn a_plain_sms_sends_only_from_to_and_text() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    client(telnyx.config())
        .send(&text("k1", "Hi"))
        .await
        .expect("accepted");
    assert_eq!(
        telnyx.requests()[0].json(),
        Some(serde_json::json!({"from": FROM, "to": TO, "text": "Hi"}))
    );
}

fn rejected(result: Result<Accepted, SendError>) -> (String, String) {
    match result {
        Err(SendError::Rejected { code, reason }) => (code, reason),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn each_documented_refusal_is_rejected_with_the_carriers_reason() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    let carrier = client(telnyx.config());

    telnyx.make_invalid(TO);
    let (code, reason) = rejected(carrier.send(&text("k1", "Hi")).await);
    assert_eq!(code, "40310");
    assert_eq!(
        reason,
        "The carrier says the number +442079460958 is not a valid destination for texts (Telnyx error 40310)."
    );

    let opted_out = "+442079460959";
    telnyx.opt_out(opted_out);
    let to_opted_out = OutboundText {
        to: number(opted_out),
        ..text("k2", "Hi")
    };
    let (code, reason) = rejected(carrier.send(&to_opted_out).await);
    assert_eq!(code, "40300");
    assert!(reason.contains("opted out") && reason.contains(opted_out));

    telnyx.own_numbers(&["+14155552670"]);
    let (code, reason) = rejected(carrier.send(&to_opted_out).await);
    assert_eq!(code, "40305");
    assert!(reason.contains(FROM), "{reason}");

    let wrong_key = client(Config {
        base_url: telnyx.base_url(),
        ..Config::new("KEYnotthisone")
    });
    let (code, reason) = rejected(wrong_key.send(&text("k3", "Hi")).await);
    assert_eq!(code, "10009");
    assert!(reason.contains("API key"), "{reason}");

    // A key Telnyx would refuse never leaves.
    let (code, _) = rejected(carrier.send(&text("not a key", "Hi")).await);
    assert_eq!(code, "bad_idempotency_key");

    assert!(telnyx.messages_created().is_empty());
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    let carrier = client(telnyx.config());
    carrier.send(&text("k1", "Hi")).await.expect("accepted");
    let (code, _) = rejected(carrier.send(&text("k1", "Hello")).await);
    assert_eq!(code, "10015");
    assert_eq!(telnyx.messages_created().len(), 1);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_honouring_retry_after() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    let carrier = client(telnyx.config());

    telnyx.misbehave(Misbehaviour::ServerError, 1);
    let error = carrier.send(&text("k1", "Hi")).await.expect_err("a 500");
    assert!(error.is_retryable() && !error.is_ambiguous(), "{error:?}");
    assert!(error.reason().contains("10007"), "{error}");

    telnyx.misbehave(
        Misbehaviour::TooManyRequests {
            retry_after: "3".to_owned(),
        },
        1,
    );
    let error = carrier.send(&text("k1", "Hi")).await.expect_err("a 429");
    assert!(error.is_retryable() && !error.is_ambiguous());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    assert!(error.reason().contains("slow down"), "{error}");

    carrier.send(&text("k1", "Hi")).await.expect("accepted");
    assert_eq!(telnyx.messages_created().len(), 1);
}

#[tokio::test]
async fn a_retry_after_a_held_answer_gets_the_first_answer_and_creates_one_text() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    let carrier = client(Config {
        timeout: Duration::from_millis(300),
        ..telnyx.config()
    });
    telnyx.misbehave(Misbehaviour::Hold, 1);
    let error = carrier
        .send(&text("k1", "Hi"))
        .await
        .expect_err("timed out");
    assert!(error.is_retryable() && error.is_ambiguous(), "{error:?}");
    assert_eq!(telnyx.messages_created().len(), 1);

    // The first answer is still held while the retry is replayed.
    let accepted = client(telnyx.config())
        .send(&text("k1", "Hi"))
        .await
        .expect("replayed");
    let created = telnyx.messages_created();
    assert_eq!(created.len(), 1);
    assert_eq!(accepted.carrier_message_id, created[0].id);
    telnyx.release_held();
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_not_ambiguous() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    telnyx.stop_listening().await;
    let carrier = client(telnyx.config());
    let error = carrier.send(&text("k1", "Hi")).await.expect_err("refused");
    assert!(error.is_retryable() && !error.is_ambiguous(), "{error:?}");
    telnyx.resume_listening().await;
    carrier.send(&text("k1", "Hi")).await.expect("back");
    assert_eq!(telnyx.messages_created().len(), 1);
}

/// Retries each text as an outbox would, with its one key, until the
/// carrier takes it or refuses it for good.
async fn send_until_taken(carrier: &Client, text: &OutboundText) -> Accepted {
    loop {
        match carrier.send(text).await {
            Ok(accepted) => return accepted,
            Err(SendError::Retry { .. }) => continue,
            Err(rejected) => panic!("refused for good: {rejected:?}"),
        }
    }
}

#[tokio::test]
async fn every_text_is_created_exactly_once_through_errors_cuts_and_timeouts() {
    let telnyx = TelnyxStandin::start().await.expect("stand-in");
    let carrier = client(Config {
        timeout: Duration::from_millis(300),
        ..telnyx.config()
    });
    telnyx.misbehave(Misbehaviour::ServerError, 1);
    telnyx.misbehave(
        Misbehaviour::TooManyRequests {
            retry_after: "0".to_owned(),
        },
        1,
    );
    telnyx.misbehave(Misbehaviour::Hold, 2);
    telnyx.misbehave(Misbehaviour::DropConnection, 2);
    telnyx.misbehave(Misbehaviour::ServerError, 1);

    let texts: Vec<OutboundText> = (1..=4)
        .map(|i| text(&format!("outbox-{i}"), &format!("text {i}")))
        .collect();
    let mut ids = Vec::new();
    for text in &texts {
        ids.push(send_until_taken(&carrier, text).await.carrier_message_id);
    }
    telnyx.release_held();

    let created = telnyx.messages_created();
    let bodies: Vec<&str> = created.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(bodies, ["text 1", "text 2", "text 3", "text 4"]);
    let created_ids: Vec<String> = created.into_iter().map(|m| m.id).collect();
    assert_eq!(ids, created_ids);
    // Every misbehaviour was met (a slow machine may add timeouts of its
    // own, which the keys make harmless too).
    assert!(telnyx.requests().len() >= 4 + 7);
}
