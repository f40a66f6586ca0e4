//! The Twilio client against the stand-in: the documented request, every
//! documented refusal mapped to Rejected, transient failures to Retry, and
//! the one duplicate window Twilio's lack of idempotency leaves.

use std::time::Duration;
use switchboard_carriers::standin::{Misbehaviour, TwilioStandin};
use switchboard_carriers::twilio::{Client, Config};
use switchboard_carriers::{Carrier, E164, OutboundText, SendError};

const FROM: &str = "+14155552671";
const TO: &str = "+442079460958";

fn number(n: &str) -> E164 {
    E164::parse_strict(n).expect("a valid number")
}

fn text(body: &str) -> OutboundText {
    OutboundText {
        from: number(FROM),
        to: number(TO),
        body: body.to_owned(),
        media_urls: Vec::new(),
        idempotency_key: "outbox-1".to_owned(),
        status_callback: None,
    }
}

fn client(config: Config) -> Client {
    Client::new(config).expect("a client")
}

#[tokio::test]
async fn a_text_is_sent_as_the_documented_form_with_basic_auth() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    let carrier = client(twilio.config());
    let mms = OutboundText {
        media_urls: vec![
            "https://pbx.example.com/media/a.jpg?sig=1".to_owned(),
            "https://pbx.example.com/media/b.png?sig=2".to_owned(),
        ],
        status_callback: Some("https://pbx.example.com/webhooks/twilio/3/status".to_owned()),
        ..text("Your table is ready & waiting")
    };
    let accepted = carrier.send(&mms).await.expect("accepted");

    let created = twilio.messages_created();
    assert_eq!(created.len(), 1);
    assert_eq!(accepted.carrier_message_id, created[0].id);
    assert!(accepted.carrier_message_id.starts_with("SM"));

    let requests = twilio.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            TwilioStandin::ACCOUNT_SID
        )
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.basic_auth(),
        Some((
            TwilioStandin::ACCOUNT_SID.to_owned(),
            TwilioStandin::AUTH_TOKEN.to_owned()
        ))
    );
    let fields: Vec<(String, String)> = [
        ("To", TO),
        ("From", FROM),
        ("Body", "Your table is ready & waiting"),
        ("MediaUrl", "https://pbx.example.com/media/a.jpg?sig=1"),
        ("MediaUrl", "https://pbx.example.com/media/b.png?sig=2"),
        (
            "StatusCallback",
            "https://pbx.example.com/webhooks/twilio/3/status",
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(request.form(), fields);
    // Twilio has no idempotency key on create: none is sent.
    assert_eq!(request.header("idempotency-key"), None);
    assert_eq!(request.header("i-twilio-idempotency-token"), None);
}

#[tokio::test]
async fn a_plain_sms_sends_no_media_or_callback_fields() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    client(twilio.config())
        .send(&text("Hi"))
        .await
        .expect("accepted");
    let request = &twilio.requests()[0];
    let names: Vec<String> = request.form().into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["To", "From", "Body"]);
}

#[tokio::test]
async fn an_api_key_authenticates_with_its_sid_and_secret() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    let config = Config {
        base_url: twilio.base_url(),
        ..Config::with_api_key(
            TwilioStandin::ACCOUNT_SID,
            TwilioStandin::API_KEY_SID,
            TwilioStandin::API_KEY_SECRET,
        )
    };
    client(config).send(&text("Hi")).await.expect("accepted");
    let request = &twilio.requests()[0];
    assert_eq!(
        request.basic_auth(),
        Some((
            TwilioStandin::API_KEY_SID.to_owned(),
            TwilioStandin::API_KEY_SECRET.to_owned()
        ))
    );
    assert!(
        request
            .path
            .contains(&format!("/Accounts/{}/", TwilioStandin::ACCOUNT_SID))
    );
}

fn rejected(result: Result<switchboard_carriers::Accepted, SendError>) -> (String, String) {
    match result {
        Err(SendError::Rejected { code, reason }) => (code, reason),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn each_documented_refusal_is_rejected_with_the_carriers_reason() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    let carrier = client(twilio.config());

    twilio.make_landline(TO);
    let (code, reason) = rejected(carrier.send(&text("Hi")).await);
    assert_eq!(code, "21614");
    assert_eq!(
        reason,
        "The carrier says the number +442079460958 is not a valid mobile number (Twilio error 21614)."
    );

    let other = "+14155552672";
    twilio.make_invalid(other);
    let to_invalid = OutboundText {
        to: number(other),
        ..text("Hi")
    };
    let (code, reason) = rejected(carrier.send(&to_invalid).await);
    assert_eq!(code, "21211");
    assert!(reason.contains(other) && reason.contains("not a valid phone number"));

    let opted_out = "+442079460959";
    twilio.opt_out(opted_out);
    let to_opted_out = OutboundText {
        to: number(opted_out),
        ..text("Hi")
    };
    let (code, reason) = rejected(carrier.send(&to_opted_out).await);
    assert_eq!(code, "21610");
    assert!(reason.contains("opted out") && reason.contains(opted_out));

    twilio.own_numbers(&["+14155552670"]);
    let (code, reason) = rejected(carrier.send(&to_opted_out).await);
    assert_eq!(code, "21606");
    assert!(reason.contains(FROM), "{reason}");

    let wrong_token = client(Config {
        base_url: twilio.base_url(),
        ..Config::with_auth_token(TwilioStandin::ACCOUNT_SID, "not the token")
    });
    let (code, reason) = rejected(wrong_token.send(&text("Hi")).await);
    assert_eq!(code, "20003");
    assert!(reason.contains("credentials"), "{reason}");

    let wrong_account = client(Config {
        base_url: twilio.base_url(),
        ..Config::with_api_key(
            "AC0000000000000000000000000000other",
            TwilioStandin::API_KEY_SID,
            TwilioStandin::API_KEY_SECRET,
        )
    });
    let (code, _) = rejected(wrong_account.send(&text("Hi")).await);
    assert_eq!(code, "20404");

    assert!(twilio.messages_created().is_empty());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_honouring_retry_after() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    let carrier = client(twilio.config());

    twilio.misbehave(Misbehaviour::ServerError, 1);
    let error = carrier.send(&text("Hi")).await.expect_err("a 500");
    assert!(error.is_retryable() && !error.is_ambiguous(), "{error:?}");
    assert_eq!(error.retry_after(), None);
    assert!(error.reason().contains("temporary problem"), "{error}");

    twilio.misbehave(
        Misbehaviour::TooManyRequests {
            retry_after: "7".to_owned(),
        },
        1,
    );
    let error = carrier.send(&text("Hi")).await.expect_err("a 429");
    assert!(error.is_retryable() && !error.is_ambiguous());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(error.reason().contains("20429"), "{error}");

    // An HTTP-date an hour ahead of the response's own Date header.
    let in_an_hour =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    twilio.misbehave(
        Misbehaviour::TooManyRequests {
            retry_after: in_an_hour,
        },
        1,
    );
    let error = carrier.send(&text("Hi")).await.expect_err("a 429");
    let after = error.retry_after().expect("a wait");
    // Both dates have whole seconds only; the stand-in's Date may be the
    // next second.
    assert!((3598..=3600).contains(&after.as_secs()), "{after:?}");

    assert!(twilio.messages_created().is_empty());
    carrier.send(&text("Hi")).await.expect("recovered");
    assert_eq!(twilio.messages_created().len(), 1);
}

#[tokio::test]
async fn a_timeout_is_ambiguous_and_a_retry_may_send_twice_on_twilio() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    let carrier = client(Config {
        timeout: Duration::from_millis(300),
        ..twilio.config()
    });
    twilio.misbehave(Misbehaviour::Hold, 1);
    let error = carrier.send(&text("Hi")).await.expect_err("timed out");
    assert!(error.is_retryable() && error.is_ambiguous(), "{error:?}");
    assert!(
        error.reason().contains("may have taken the text"),
        "{error}"
    );
    // The carrier did its work although we never heard back.
    assert_eq!(twilio.messages_created().len(), 1);
    twilio.release_held();

    // With no idempotency key, the retry is a second text: the duplicate
    // window the outbox documents for Twilio. (The retry goes through a
    // client with the usual timeout, so a slow machine cannot fail it.)
    client(twilio.config())
        .send(&text("Hi"))
        .await
        .expect("accepted");
    assert_eq!(twilio.messages_created().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_not_ambiguous() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    twilio.stop_listening().await;
    let carrier = client(twilio.config());
    let error = carrier.send(&text("Hi")).await.expect_err("refused");
    assert!(error.is_retryable() && !error.is_ambiguous(), "{error:?}");
    assert!(error.reason().contains("refused"), "{error}");

    twilio.resume_listening().await;
    carrier.send(&text("Hi")).await.expect("back");
    assert_eq!(twilio.messages_created().len(), 1);
}

#[tokio::test]
async fn a_connection_cut_before_the_answer_is_retried_and_ambiguous() {
    let twilio = TwilioStandin::start().await.expect("stand-in");
    let carrier = client(twilio.config());
    twilio.misbehave(Misbehaviour::DropConnection, 1);
    let error = carrier.send(&text("Hi")).await.expect_err("cut");
    assert!(error.is_retryable() && error.is_ambiguous(), "{error:?}");
    assert_eq!(twilio.requests().len(), 1);
    carrier.send(&text("Hi")).await.expect("accepted");
    assert_eq!(twilio.messages_created().len(), 1);
}

#[test]
fn configs_never_show_their_secrets() {
    let config = Config::with_auth_token("AC1", "secret-token");
    assert!(!format!("{config:?}").contains("secret-token"));
    assert!(Client::new(Config::with_auth_token("AC/../x", "t")).is_err());
}

#[test]
fn clients_serve_behind_one_shared_trait_object() {
    let carriers: Vec<std::sync::Arc<dyn Carrier>> = vec![
        std::sync::Arc::new(
            Client::new(Config {
                base_url: "http://127.0.0.1:9".to_owned(),
                ..Config::with_auth_token("AC1", "t")
            })
            .expect("a client"),
        ),
        std::sync::Arc::new(
            switchboard_carriers::telnyx::Client::new(switchboard_carriers::telnyx::Config {
                base_url: "http://127.0.0.1:9".to_owned(),
                ..switchboard_carriers::telnyx::Config::new("k")
            })
            .expect("a client"),
        ),
    ];
    assert_eq!(carriers.len(), 2);
}

/// With the `tls` feature, clients for the real carriers' HTTPS endpoints
/// build on rustls with ring; without it they are refused at once, never
/// at the first send.
#[test]
fn https_base_urls_need_the_tls_feature() {
    let real = Client::new(Config::with_auth_token("AC1", "t"));
    let telnyx =
        switchboard_carriers::telnyx::Client::new(switchboard_carriers::telnyx::Config::new("k"));
    if cfg!(feature = "tls") {
        assert!(real.is_ok() && telnyx.is_ok());
    } else {
        assert!(matches!(
            real,
            Err(switchboard_carriers::ConfigError::NoTls(_))
        ));
        assert!(telnyx.is_err());
    }
}
