//! Texting customers: SMS conversations, the outbox towards the carriers'
//! real clients (pointed at local stand-ins that answer as the vendors
//! document), signed webhooks, delivery statuses, opt-outs and images.
//!
//! The server runs in-process on a manual clock, so retries are driven by
//! moving the clock; every wait ends on an event (a request reaching the
//! stand-in, a frame on a WebSocket), never on a sleep.

use crate::common::{Answer, Client, PATIENCE, Server, TINY_PNG, Ws, answer, assert_error, http};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_carriers::standin::{Misbehaviour, TelnyxStandin, TwilioStandin};

pub(crate) const BUSINESS: &str = "+14155550150";
pub(crate) const CUSTOMER: &str = "+14155552671";

/// The Telnyx connection's webhook key pair (fixed: the test signs).
fn telnyx_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// [`TINY_PNG`] made `extra` bytes larger by a comment chunk before its
/// image data: a valid PNG of any size.
pub(crate) fn padded_png(extra: usize) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    // Signature (8) and IHDR (25) first, then the comment, then the rest.
    let (head, tail) = TINY_PNG.split_at(33);
    let mut chunk = b"tEXt".to_vec();
    chunk.extend_from_slice(b"Comment\0");
    chunk.resize(4 + extra, b'x');
    let mut png = head.to_vec();
    png.extend_from_slice(&u32::try_from(extra).expect("size").to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png.extend_from_slice(tail);
    png
}

/// The connection id in an `add-carrier` output's webhook line.
fn connection_id(output: &str) -> i64 {
    output
        .lines()
        .find_map(|l| l.strip_prefix("webhook: "))
        .and_then(|url| url.split('/').find_map(|part| part.parse::<i64>().ok()))
        .unwrap_or_else(|| panic!("a webhook URL in {output:?}"))
}

/// Gives `BUSINESS` on `carrier` (by name) to extensions 101 and 102, in
/// place of the demo's simulated sales line, so it is their default.
pub(crate) fn business_number(server: &Server, carrier: &str) {
    server.admin(&[
        "add-number",
        "--org",
        "demo",
        "--number",
        BUSINESS,
        "--carrier",
        carrier,
    ]);
    for ext in ["101", "102"] {
        server.admin(&[
            "unassign-number",
            "--org",
            "demo",
            "--number",
            "+14155550100",
            "--extension",
            ext,
        ]);
        server.admin(&[
            "assign-number",
            "--org",
            "demo",
            "--number",
            BUSINESS,
            "--extension",
            ext,
        ]);
    }
}

/// Adds a Telnyx connection to the stand-in and gives it `BUSINESS`;
/// returns the connection's id.
pub(crate) fn telnyx_connection(server: &Server, standin: &TelnyxStandin) -> i64 {
    let public_key = STANDARD.encode(telnyx_key().verifying_key().to_bytes());
    let base_url = standin.base_url();
    let added = server.admin(&[
        "add-carrier",
        "--org",
        "demo",
        "--kind",
        "telnyx",
        "--name",
        "Telnyx",
        "--secret",
        TelnyxStandin::API_KEY,
        "--public-key",
        &public_key,
        "--base-url",
        &base_url,
    ]);
    business_number(server, "Telnyx");
    connection_id(&added)
}

/// A server whose number `BUSINESS` is served by a Telnyx stand-in.
async fn on_telnyx(timeout: Duration) -> (Server, TelnyxStandin, i64) {
    let standin = TelnyxStandin::start().await.expect("start the stand-in");
    let server = Server::in_process_with(|c| c.sms.request_timeout = timeout).await;
    let connection = telnyx_connection(&server, &standin);
    (server, standin, connection)
}

/// A server whose number `BUSINESS` is served by a Twilio stand-in.
async fn on_twilio(timeout: Duration) -> (Server, TwilioStandin, i64) {
    let standin = TwilioStandin::start().await.expect("start the stand-in");
    let server = Server::in_process_with(|c| c.sms.request_timeout = timeout).await;
    let added = server.admin(&[
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
        &standin.base_url(),
    ]);
    business_number(&server, "Twilio");
    (server, standin, connection_id(&added))
}

/// Opens the SMS conversation of `client`'s default number with `to`.
pub(crate) async fn open_sms(client: &Client, to: &str) -> Value {
    let opened = client
        .post("/api/v1/conversations/sms", json!({ "to": to }))
        .await;
    assert!(
        opened.status == 201 || opened.status == 200,
        "open: {}",
        opened.body
    );
    opened.body["conversation"].clone()
}

pub(crate) async fn send(client: &Client, conversation: i64, body: Value) -> Answer {
    client
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            body,
        )
        .await
}

/// Posts a Telnyx webhook signed with the connection's key at `at`
/// (seconds).
pub(crate) async fn telnyx_webhook(
    server: &Server,
    connection: i64,
    body: &str,
    at: i64,
) -> Answer {
    let signature = telnyx_key().sign(format!("{at}|{body}").as_bytes());
    let res = http()
        .post(format!("{}/webhooks/telnyx/{connection}", server.base))
        .header("telnyx-timestamp", at.to_string())
        .header(
            "telnyx-signature-ed25519",
            STANDARD.encode(signature.to_bytes()),
        )
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("webhook");
    answer(res).await
}

fn now_secs(server: &Server) -> i64 {
    use switchboard::clock::Clock;
    server.clock().now().unix_millis() / 1000
}

pub(crate) fn telnyx_status(message_id: &str, event_id: &str, status: &str) -> String {
    json!({"data": {
        "event_type": if status == "sent" { "message.sent" } else { "message.finalized" },
        "id": event_id,
        "payload": {
            "id": message_id,
            "direction": "outbound",
            "errors": [],
            "to": [{"phone_number": CUSTOMER, "status": status}],
            "type": "SMS"
        },
        "record_type": "event"
    }})
    .to_string()
}

/// Posts a Twilio webhook to `path` signed over the server's public URL
/// with `token`.
async fn twilio_webhook(
    server: &Server,
    path: &str,
    fields: &[(&str, &str)],
    token: &str,
) -> Answer {
    let url = format!("{}{path}", server.base);
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature = switchboard_carriers::twilio::signature(token, &url, &owned);
    let res = http()
        .post(&url)
        .header("x-twilio-signature", signature)
        .form(&owned)
        .send()
        .await
        .expect("webhook");
    answer(res).await
}

fn inbound_fields<'a>(sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MessageSid", sid),
        ("AccountSid", TwilioStandin::ACCOUNT_SID),
        ("From", from),
        ("To", BUSINESS),
        ("Body", body),
        ("NumMedia", "0"),
    ]
}

/// The next `delivery.updated` frame for `message`.
async fn next_delivery(ws: &mut Ws, message: i64) -> Value {
    loop {
        let frame = ws.next_of("delivery.updated").await;
        if frame["data"]["message_id"] == message {
            return frame["data"].clone();
        }
    }
}

/// Moves the clock past any backoff and waits for the stand-in to get its
/// `count`-th request.
async fn retry_until_requests(server: &Server, wait: impl std::future::Future<Output = ()>) {
    server.clock().advance(Duration::from_secs(600));
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the outbox tried again");
}

#[tokio::test]
async fn a_text_to_a_customer_reaches_telnyx_once_with_its_key_and_its_delivery_comes_back_live() {
    let (server, telnyx, connection) = on_telnyx(Duration::from_secs(15)).await;
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let mut bob_ws = bob.ws(None).await;

    let conversation = open_sms(&alice, "(415) 555-2671").await;
    assert_eq!(conversation["kind"], "sms");
    assert_eq!(conversation["externals"][0]["number"], CUSTOMER);
    assert_eq!(conversation["externals"][0]["display"], "(415) 555-2671");
    assert_eq!(conversation["business_number"]["number"], BUSINESS);
    let id = conversation["id"].as_i64().expect("id");
    let created = bob_ws.next_of("conversation.created").await;
    assert_eq!(
        created["data"]["conversation"]["id"], id,
        "shared by the holders"
    );

    let sent = send(&alice, id, json!({"text": "Your order shipped"})).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let message = &sent.body["message"];
    assert_eq!(message["deliveries"][0]["to"], CUSTOMER);
    assert_eq!(message["deliveries"][0]["status"], "queued");
    let message_id = message["id"].as_i64().expect("id");

    tokio::time::timeout(PATIENCE, telnyx.wait_for_requests(1))
        .await
        .expect("the text reached Telnyx");
    let request = &telnyx.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v2/messages")
    );
    assert_eq!(request.bearer(), Some(TelnyxStandin::API_KEY));
    let key = request
        .header("idempotency-key")
        .expect("an idempotency key");
    assert_eq!(key.len(), 36, "a UUID: {key}");
    let body = request.json().expect("JSON");
    assert_eq!(body["from"], BUSINESS);
    assert_eq!(body["to"], CUSTOMER);
    assert_eq!(body["text"], "Your order shipped");
    assert_eq!(
        body["webhook_url"],
        format!("{}/webhooks/telnyx/{connection}", server.base)
    );
    let carrier_id = telnyx.messages_created()[0].id.clone();

    // Telnyx reports back; a retried webhook changes nothing more.
    let at = now_secs(&server);
    let delivered = telnyx_status(&carrier_id, "ev-1", "delivered");
    let answer = telnyx_webhook(&server, connection, &delivered, at).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let update = next_delivery(&mut bob_ws, message_id).await;
    assert_eq!(update["status"], "delivered");
    assert_eq!(update["to"], CUSTOMER);
    assert_eq!(
        telnyx_webhook(&server, connection, &delivered, at)
            .await
            .status,
        200
    );
    // A late "sent" never moves it back.
    let late = telnyx_status(&carrier_id, "ev-0", "sent");
    assert_eq!(
        telnyx_webhook(&server, connection, &late, at).await.status,
        200
    );
    let history = alice.whole_history(id).await;
    let last = history.last().expect("the message");
    assert_eq!(last["deliveries"][0]["status"], "delivered");
    assert_eq!(telnyx.messages_created().len(), 1);
}

#[tokio::test]
async fn telnyx_webhooks_with_a_bad_stale_or_missing_signature_are_refused() {
    let (server, _telnyx, connection) = on_telnyx(Duration::from_secs(15)).await;
    let at = now_secs(&server);
    let body = telnyx_status("unknown", "ev-x", "delivered");
    let stale = telnyx_webhook(&server, connection, &body, at - 6 * 60).await;
    assert_error(
        &stale,
        403,
        "invalid_signature",
        "a signature older than 5 minutes",
    );
    // A signature made for another timestamp, replayed with a fresh one.
    let signature = telnyx_key().sign(format!("{}|{body}", at - 6 * 60).as_bytes());
    let replayed = http()
        .post(format!("{}/webhooks/telnyx/{connection}", server.base))
        .header("telnyx-timestamp", at.to_string())
        .header(
            "telnyx-signature-ed25519",
            STANDARD.encode(signature.to_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer(replayed).await.status, 403);
    let missing = http()
        .post(format!("{}/webhooks/telnyx/{connection}", server.base))
        .body(body.clone())
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer(missing).await.status, 403);
    let unknown = telnyx_webhook(&server, 999, &body, at).await;
    assert_error(&unknown, 404, "not_found", "an unknown connection");
    let malformed = telnyx_webhook(&server, connection, r#"{"data": {}}"#, at).await;
    assert_error(
        &malformed,
        400,
        "malformed_webhook",
        "a body Telnyx never sends",
    );
}

#[tokio::test]
async fn a_carrier_that_fails_for_a_while_gets_every_text_exactly_once_after_recovery() {
    let (server, telnyx, _) = on_telnyx(Duration::from_millis(400)).await;
    let alice = server.sign_in("101").await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");

    // 500, then 429 with Retry-After, then an answer held past the timeout
    // (the carrier did create that text), then nothing listening at all.
    telnyx.misbehave(Misbehaviour::ServerError, 1);
    telnyx.misbehave(
        Misbehaviour::TooManyRequests {
            retry_after: "30".into(),
        },
        1,
    );
    telnyx.misbehave(Misbehaviour::Hold, 1);
    let texts = ["one", "two", "three"];
    for text in texts {
        assert_eq!(send(&alice, id, json!({ "text": text })).await.status, 201);
    }
    let mut seen = 0;
    loop {
        let created: Vec<String> = telnyx
            .messages_created()
            .into_iter()
            .map(|m| m.text)
            .collect();
        if texts.iter().all(|t| created.iter().any(|c| c == t)) {
            break;
        }
        seen = telnyx.requests().len().max(seen + 1);
        retry_until_requests(&server, telnyx.wait_for_requests(seen)).await;
    }
    telnyx.release_held();
    let mut created: Vec<String> = telnyx
        .messages_created()
        .into_iter()
        .map(|m| m.text)
        .collect();
    created.sort();
    assert_eq!(created, ["one", "three", "two"], "each exactly once");

    // A carrier that cannot be reached at all gets the text once it is back.
    telnyx.stop_listening().await;
    let requests = telnyx.requests().len();
    assert_eq!(send(&alice, id, json!({"text": "four"})).await.status, 201);
    telnyx.resume_listening().await;
    retry_until_requests(&server, telnyx.wait_for_requests(requests + 1)).await;
    let fours = telnyx
        .messages_created()
        .into_iter()
        .filter(|m| m.text == "four")
        .count();
    assert_eq!(fours, 1);
}

#[tokio::test]
async fn towards_twilio_a_send_whose_answer_was_lost_is_the_one_duplicate_window() {
    let (server, twilio, _) = on_twilio(Duration::from_millis(400)).await;
    let alice = server.sign_in("101").await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");

    // Failures that say the carrier did nothing are retried without risk.
    twilio.misbehave(Misbehaviour::ServerError, 1);
    twilio.misbehave(
        Misbehaviour::TooManyRequests {
            retry_after: "5".into(),
        },
        1,
    );
    assert_eq!(send(&alice, id, json!({"text": "safe"})).await.status, 201);
    let mut seen = 1;
    tokio::time::timeout(PATIENCE, twilio.wait_for_requests(1))
        .await
        .expect("first attempt");
    while !twilio.messages_created().iter().any(|m| m.text == "safe") {
        seen += 1;
        retry_until_requests(&server, twilio.wait_for_requests(seen)).await;
    }
    let request = &twilio.requests()[0];
    assert_eq!(
        request.path,
        format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            TwilioStandin::ACCOUNT_SID
        )
    );
    assert_eq!(
        request.basic_auth(),
        Some((
            TwilioStandin::ACCOUNT_SID.to_owned(),
            TwilioStandin::AUTH_TOKEN.to_owned()
        ))
    );
    assert_eq!(request.form_values("To"), [CUSTOMER]);
    assert_eq!(request.form_values("From"), [BUSINESS]);
    assert_eq!(request.form_values("Body"), ["safe"]);
    assert!(
        request.header("idempotency-key").is_none(),
        "Twilio has none"
    );

    // An answer lost to a timeout: the carrier did send it, and the retry
    // sends it again. At most one duplicate per attempt whose answer was
    // lost, which is the window the outbox documents.
    twilio.misbehave(Misbehaviour::Hold, 1);
    let before = twilio.requests().len();
    assert_eq!(
        send(&alice, id, json!({"text": "lost answer"}))
            .await
            .status,
        201
    );
    tokio::time::timeout(PATIENCE, twilio.wait_for_held(1))
        .await
        .expect("held");
    retry_until_requests(&server, twilio.wait_for_requests(before + 2)).await;
    twilio.release_held();
    let copies = twilio
        .messages_created()
        .iter()
        .filter(|m| m.text == "lost answer")
        .count();
    assert_eq!(copies, 2, "one attempt with a lost answer, one duplicate");
    assert_eq!(
        twilio
            .messages_created()
            .iter()
            .filter(|m| m.text == "safe")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_text_the_carrier_refuses_for_good_fails_at_once_with_its_reason() {
    let (server, twilio, _) = on_twilio(Duration::from_secs(15)).await;
    twilio.make_landline(CUSTOMER);
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    let sent = send(&alice, id, json!({"text": "hello"})).await;
    let message = sent.body["message"]["id"].as_i64().expect("id");
    let update = tokio::time::timeout(PATIENCE, next_delivery(&mut ws, message))
        .await
        .expect("the failure is told");
    assert_eq!(update["status"], "failed");
    let reason = update["reason"].as_str().expect("a reason");
    assert!(reason.contains("21614"), "the carrier's reason: {reason}");
    assert_eq!(twilio.requests().len(), 1, "never retried");
}

#[tokio::test]
async fn a_customer_the_carrier_says_opted_out_is_opted_out_here_too() {
    let (server, twilio, _) = on_twilio(Duration::from_secs(15)).await;
    twilio.opt_out(CUSTOMER);
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    let sent = send(&alice, id, json!({"text": "Sale today"})).await;
    let message = sent.body["message"]["id"].as_i64().expect("id");
    let update = tokio::time::timeout(PATIENCE, next_delivery(&mut ws, message))
        .await
        .expect("the refusal is told");
    assert_eq!(update["status"], "failed");
    assert!(
        update["reason"]
            .as_str()
            .is_some_and(|r| r.contains("21610")),
        "{update}"
    );
    let updated = ws.next_of("conversation.updated").await;
    assert_eq!(
        updated["data"]["conversation"]["externals"][0]["opted_out"],
        true
    );
    let again = send(&alice, id, json!({"text": "Last chance"})).await;
    assert_error(
        &again,
        409,
        "recipient_opted_out",
        "after the carrier's refusal",
    );
    assert_eq!(twilio.requests().len(), 1, "the carrier was asked once");
}

#[tokio::test]
async fn an_inbound_text_is_stored_once_and_reaches_every_holder_live() {
    let (server, _twilio, connection) = on_twilio(Duration::from_secs(15)).await;
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let carol = server.sign_in("103").await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;
    let path = format!("/webhooks/twilio/{connection}/messages");
    let fields = inbound_fields("SM0001", CUSTOMER, "Is my order ready?");

    let taken = twilio_webhook(&server, &path, &fields, TwilioStandin::AUTH_TOKEN).await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_message("Is my order ready?").await;
        let message = &frame["data"]["message"];
        assert!(message["sender"].is_null());
        assert_eq!(message["external_sender"]["number"], CUSTOMER);
    }
    let again = twilio_webhook(&server, &path, &fields, TwilioStandin::AUTH_TOKEN).await;
    assert_eq!(again.status, 200, "a retried webhook is answered");
    let list = alice.get("/api/v1/conversations").await;
    let sms: Vec<&Value> = list.body["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|c| c["kind"] == "sms")
        .collect();
    assert_eq!(sms.len(), 1);
    let id = sms[0]["id"].as_i64().expect("id");
    assert_eq!(sms[0]["unread_count"], 1, "one message for two webhooks");
    assert_eq!(alice.whole_history(id).await.len(), 1);
    assert_eq!(
        carol
            .get(&format!("/api/v1/conversations/{id}/messages"))
            .await
            .status,
        404,
        "an extension without the number sees nothing"
    );

    // Refused, and nothing written: a tampered body, URL or signature, a
    // missing one, an unknown number, a body Twilio never sends.
    let url = format!("{}{path}", server.base);
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature =
        switchboard_carriers::twilio::signature(TwilioStandin::AUTH_TOKEN, &url, &owned);
    let mut tampered = owned.clone();
    tampered[4].1 = "Send me a refund".into();
    tampered[0].1 = "SM0002".into();
    let forged = http()
        .post(&url)
        .header("x-twilio-signature", &signature)
        .form(&tampered)
        .send()
        .await
        .expect("webhook");
    assert_error(
        &answer(forged).await,
        403,
        "invalid_signature",
        "a tampered body",
    );
    let elsewhere = http()
        .post(format!(
            "{}/webhooks/twilio/{connection}/messages?x=1",
            server.base
        ))
        .header("x-twilio-signature", &signature)
        .form(&owned)
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer(elsewhere).await.status, 403, "a tampered URL");
    let unsigned = http()
        .post(&url)
        .form(&owned)
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer(unsigned).await.status, 403, "no signature");
    let wrong = twilio_webhook(
        &server,
        &path,
        &inbound_fields("SM0003", CUSTOMER, "x"),
        "not-the-token",
    )
    .await;
    assert_eq!(wrong.status, 403, "another token");
    let mut stranger = inbound_fields("SM0004", CUSTOMER, "hi");
    stranger[3].1 = "+14155550177";
    let unknown = twilio_webhook(&server, &path, &stranger, TwilioStandin::AUTH_TOKEN).await;
    assert_error(&unknown, 404, "not_found", "a number nobody has");
    let malformed = twilio_webhook(
        &server,
        &path,
        &[("MessageSid", "SM0005"), ("To", BUSINESS)],
        TwilioStandin::AUTH_TOKEN,
    )
    .await;
    assert_error(&malformed, 400, "malformed_webhook", "no From");
    assert_eq!(
        alice.whole_history(id).await.len(),
        1,
        "nothing half-written"
    );
}

#[tokio::test]
async fn status_callbacks_out_of_order_keep_the_final_status() {
    let (server, twilio, connection) = on_twilio(Duration::from_secs(15)).await;
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    let sent = send(&alice, id, json!({"text": "hello"})).await;
    let message = sent.body["message"]["id"].as_i64().expect("id");
    tokio::time::timeout(PATIENCE, twilio.wait_for_requests(1))
        .await
        .expect("sent");
    let sid = twilio.messages_created()[0].id.clone();
    let path = format!("/webhooks/twilio/{connection}/status");
    for status in ["delivered", "sent", "queued"] {
        let fields = [
            ("MessageSid", sid.as_str()),
            ("AccountSid", TwilioStandin::ACCOUNT_SID),
            ("MessageStatus", status),
            ("To", CUSTOMER),
            ("From", BUSINESS),
        ];
        let answer = twilio_webhook(&server, &path, &fields, TwilioStandin::AUTH_TOKEN).await;
        assert_eq!(answer.status, 200, "{status}: {:?}", answer.body);
    }
    let update = next_delivery(&mut ws, message).await;
    assert_eq!(update["status"], "delivered");
    let history = alice.whole_history(id).await;
    assert_eq!(history[0]["deliveries"][0]["status"], "delivered");
}

#[tokio::test]
async fn stop_from_a_customer_blocks_texts_to_them_until_start() {
    let (server, twilio, connection) = on_twilio(Duration::from_secs(15)).await;
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    let path = format!("/webhooks/twilio/{connection}/messages");
    let stop = twilio_webhook(
        &server,
        &path,
        &inbound_fields("SM1", CUSTOMER, "STOP"),
        TwilioStandin::AUTH_TOKEN,
    )
    .await;
    assert_eq!(stop.status, 200);
    let updated = ws.next_of("conversation.updated").await;
    assert_eq!(
        updated["data"]["conversation"]["externals"][0]["opted_out"],
        true
    );
    let refused = send(&alice, id, json!({"text": "Sale today!"})).await;
    assert_error(
        &refused,
        409,
        "recipient_opted_out",
        "texting an opted-out number",
    );
    let history = alice.whole_history(id).await;
    assert_eq!(history.last().expect("a note")["kind"], "system");
    assert_eq!(twilio.requests().len(), 0, "nothing reached the carrier");
    let start = twilio_webhook(
        &server,
        &path,
        &inbound_fields("SM2", CUSTOMER, "start"),
        TwilioStandin::AUTH_TOKEN,
    )
    .await;
    assert_eq!(start.status, 200);
    assert_eq!(
        send(&alice, id, json!({"text": "Welcome back"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn images_go_to_carriers_as_signed_links_and_inbound_images_arrive_after_their_message() {
    let (server, twilio, connection) = on_twilio(Duration::from_secs(15)).await;
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");

    let upload = |bytes: Vec<u8>, content_type: &'static str| {
        let alice = &alice;
        async move {
            let res = alice
                .http
                .post(format!("{}/api/v1/media", alice.base))
                .bearer_auth(&alice.token)
                .header("content-type", content_type)
                .body(bytes)
                .send()
                .await
                .expect("upload");
            answer(res).await
        }
    };
    let text_file = upload(b"just some words, named photo.png".to_vec(), "image/png").await;
    assert_error(&text_file, 415, "not_an_image", "a renamed text file");
    // A photo-sized upload (3 MB, past the API's usual body limit) is taken.
    let large = upload(padded_png(3 * 1024 * 1024), "image/png").await;
    assert_eq!(large.status, 201, "{}", large.body);
    assert_eq!(
        large.body["media"]["size"],
        3 * 1024 * 1024 + TINY_PNG.len() + 12
    );
    let uploaded = upload(TINY_PNG.to_vec(), "image/png").await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let media = uploaded.body["media"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let sent = send(&alice, id, json!({"text": "", "attachments": [media]})).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["message"]["attachments"][0]["state"], "ready");
    tokio::time::timeout(PATIENCE, twilio.wait_for_requests(1))
        .await
        .expect("sent");
    let links = twilio.requests()[0].form_values("MediaUrl");
    assert_eq!(links.len(), 1);
    let fetched = http().get(&links[0]).send().await.expect("fetch");
    assert_eq!(fetched.status(), 200);
    assert_eq!(
        fetched
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let bytes = fetched.bytes().await.expect("bytes");
    assert!(bytes.len() <= 600 * 1024);
    let forged = links[0].replace("token=", "token=A");
    assert_eq!(
        http().get(&forged).send().await.expect("fetch").status(),
        404
    );

    // A picture from the customer: the message first, its image once fetched.
    let media_url = twilio.media_url(TINY_PNG.to_vec(), "image/png");
    let path = format!("/webhooks/twilio/{connection}/messages");
    let fields = [
        ("MessageSid", "MM0001"),
        ("AccountSid", TwilioStandin::ACCOUNT_SID),
        ("From", CUSTOMER),
        ("To", BUSINESS),
        ("Body", "Here it is"),
        ("NumMedia", "1"),
        ("MediaUrl0", media_url.as_str()),
        ("MediaContentType0", "image/png"),
    ];
    let taken = twilio_webhook(&server, &path, &fields, TwilioStandin::AUTH_TOKEN).await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    let created = ws.next_message("Here it is").await;
    assert_eq!(
        created["data"]["message"]["attachments"][0]["state"],
        "pending"
    );
    let updated = ws.next_of("message.updated").await;
    let attachment = &updated["data"]["message"]["attachments"][0];
    assert_eq!(attachment["state"], "ready");
    let url = attachment["url"].as_str().expect("a URL");
    assert_eq!(alice.get(url).await.status, 200);

    // Nobody else may fetch it: an extension without the number, or no
    // session.
    let carol = server.sign_in("103").await;
    assert_eq!(
        carol.get(url).await.status,
        404,
        "not a holder of the number"
    );
    server.admin(&["create-org", "--slug", "other", "--name", "Other Inc."]);
    server.admin(&[
        "create-extension",
        "--org",
        "other",
        "--number",
        "201",
        "--name",
        "Olga Other",
        "--password",
        "other-password",
        "--admin",
    ]);
    let olga = server.sign_in_to("other", "201", "other-password").await;
    assert_eq!(olga.get(url).await.status, 404, "another organization");
    let history = olga
        .get(&format!("/api/v1/conversations/{id}/messages"))
        .await;
    assert_eq!(history.status, 404, "nor its delivery statuses");
    let anonymous = http()
        .get(format!("{}{url}", server.base))
        .send()
        .await
        .expect("fetch");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_composer_counts_segments_with_the_server_s_rule() {
    let server = Server::in_process().await;
    let alice = server.sign_in("101").await;
    let gsm = alice
        .post("/api/v1/sms/segments", json!({"text": "a".repeat(161)}))
        .await;
    assert_eq!(gsm.body["segments"]["encoding"], "gsm7");
    assert_eq!(gsm.body["segments"]["segments"], 2);
    assert!(gsm.body["segments"]["offender"].is_null());
    let ucs = alice
        .post("/api/v1/sms/segments", json!({"text": "Thanks 😀"}))
        .await;
    assert_eq!(ucs.body["segments"]["encoding"], "ucs2");
    assert_eq!(ucs.body["segments"]["offender"]["character"], "😀");
    assert_eq!(ucs.body["segments"]["offender"]["index"], 7);
}

#[tokio::test]
async fn numbers_are_read_with_the_organization_s_country_and_extensions_without_one_are_told() {
    let server = Server::in_process().await;
    let alice = server.sign_in("101").await;
    let bad = alice
        .post("/api/v1/conversations/sms", json!({"to": "12"}))
        .await;
    assert_error(
        &bad,
        422,
        "validation_failed",
        "a number that cannot be valid",
    );
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("to:")),
        "{}",
        bad.body
    );
    let local = open_sms(&alice, "415.555.2671").await;
    assert_eq!(local["externals"][0]["number"], CUSTOMER);
    // Erin has no number: a plain refusal, not a failure on send.
    let erin = server.sign_in("105").await;
    let none = erin
        .post("/api/v1/conversations/sms", json!({"to": CUSTOMER}))
        .await;
    assert_error(&none, 409, "no_sms_number", "an extension without a number");
    // Dan has another number: he cannot text from the sales line.
    let dan = server.sign_in("104").await;
    let sales_line = local["business_number"]["id"].as_i64().expect("id");
    let not_his = dan
        .post(
            "/api/v1/conversations/sms",
            json!({"to": CUSTOMER, "from_number_id": sales_line}),
        )
        .await;
    assert_error(&not_his, 404, "not_found", "another extension's number");
    let conversation = local["id"].as_i64().expect("id");
    let intrude = send(&dan, conversation, json!({"text": "hi"})).await;
    assert_eq!(intrude.status, 404);
}

#[tokio::test]
async fn the_simulator_phone_gets_texts_with_receipts_and_texts_back() {
    let server = Server::in_process().await;
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let phone = "+14155559876";
    let id = open_sms(&alice, phone).await["id"].as_i64().expect("id");
    let sent = send(&alice, id, json!({"text": "Your table is ready"})).await;
    let message = sent.body["message"]["id"].as_i64().expect("id");
    loop {
        let update = next_delivery(&mut ws, message).await;
        if update["status"] == "delivered" {
            break;
        }
    }
    let encoded = phone.replace('+', "%2B");
    let texts = http()
        .get(format!(
            "{}/simulator/api/phones/{encoded}/messages",
            server.base
        ))
        .send()
        .await
        .expect("texts");
    let texts = answer(texts).await;
    let got = &texts.body["messages"][0];
    assert_eq!(got["direction"], "to_phone");
    assert_eq!(got["text"], "Your table is ready");
    assert_eq!(got["status"], "delivered");

    let reply = http()
        .post(format!(
            "{}/simulator/api/phones/{encoded}/messages",
            server.base
        ))
        .json(&json!({"to": "+14155550100", "text": "On my way"}))
        .send()
        .await
        .expect("reply");
    assert_eq!(answer(reply).await.status, 201);
    let frame = ws.next_message("On my way").await;
    assert_eq!(frame["data"]["message"]["external_sender"]["number"], phone);
    assert_eq!(frame["data"]["message"]["conversation_id"], id);
}

#[tokio::test]
async fn a_server_killed_while_sending_sends_that_text_once_after_restart() {
    let telnyx = TelnyxStandin::start().await.expect("start the stand-in");
    let mut first = Server::start();
    telnyx_connection(&first, &telnyx);
    let alice = first.sign_in("101").await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    // The carrier takes the text but the server dies before hearing so.
    telnyx.misbehave(Misbehaviour::Hold, 1);
    assert_eq!(send(&alice, id, json!({"text": "one"})).await.status, 201);
    tokio::time::timeout(PATIENCE, telnyx.wait_for_held(1))
        .await
        .expect("the send reached the carrier");
    first.kill();

    let data_dir = first.data_dir.clone();
    let _second = Server::start_on(&data_dir, "127.0.0.1:0");
    tokio::time::timeout(PATIENCE, telnyx.wait_for_requests(2))
        .await
        .expect("the restarted server sends it again");
    telnyx.release_held();
    let requests = telnyx.requests();
    assert_eq!(
        requests[0].header("idempotency-key"),
        requests[1].header("idempotency-key"),
        "the same key on every attempt"
    );
    assert_eq!(
        telnyx.messages_created().len(),
        1,
        "one text for the customer"
    );
}

#[tokio::test]
async fn a_twilio_connection_with_an_api_key_calls_the_api_with_it() {
    let standin = TwilioStandin::start().await.expect("start the stand-in");
    let server = Server::in_process().await;
    let base_url = standin.base_url();
    server.admin(&[
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
        "--api-key-sid",
        TwilioStandin::API_KEY_SID,
        "--api-key-secret",
        TwilioStandin::API_KEY_SECRET,
        "--base-url",
        &base_url,
    ]);
    business_number(&server, "Twilio");
    let alice = server.sign_in("101").await;
    let id = open_sms(&alice, CUSTOMER).await["id"].as_i64().expect("id");
    assert_eq!(send(&alice, id, json!({"text": "hello"})).await.status, 201);
    tokio::time::timeout(PATIENCE, standin.wait_for_requests(1))
        .await
        .expect("sent");
    let request = &standin.requests()[0];
    assert_eq!(
        request.basic_auth(),
        Some((
            TwilioStandin::API_KEY_SID.to_owned(),
            TwilioStandin::API_KEY_SECRET.to_owned()
        )),
        "the API key, not the auth token"
    );
    assert_eq!(
        request.path,
        format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            TwilioStandin::ACCOUNT_SID
        ),
        "in the account's Messages"
    );
}

#[tokio::test]
async fn a_telnyx_text_from_a_customer_is_stored_once_whichever_delivery_of_it_comes() {
    let (server, _telnyx, connection) = on_telnyx(Duration::from_secs(15)).await;
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let received = |event_id: &str| {
        json!({"data": {
            "event_type": "message.received",
            "id": event_id,
            "payload": {
                "id": "84cca175-9755-4859-b67f-4730d7f58aa3",
                "direction": "inbound",
                "from": {"phone_number": CUSTOMER},
                "to": [{"phone_number": BUSINESS}],
                "text": "Do you open on Sundays?",
                "media": [],
                "type": "SMS"
            },
            "record_type": "event"
        }})
        .to_string()
    };
    let at = now_secs(&server);
    let first = telnyx_webhook(&server, connection, &received("ev-1"), at).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let frame = ws.next_message("Do you open on Sundays?").await;
    assert_eq!(
        frame["data"]["message"]["external_sender"]["number"],
        CUSTOMER
    );
    let conversation = frame["data"]["message"]["conversation_id"]
        .as_i64()
        .expect("id");
    // Telnyx delivers the same message again, even as another event.
    for event in ["ev-1", "ev-2"] {
        let again = telnyx_webhook(&server, connection, &received(event), at).await;
        assert_eq!(again.status, 200);
    }
    assert_eq!(alice.whole_history(conversation).await.len(), 1);
}
