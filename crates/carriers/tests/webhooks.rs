//! Webhook bodies as the vendors document them parse into typed values;
//! malformed ones are refused naming the field.

use switchboard_carriers::telnyx::{TelnyxEvent, parse_webhook};
use switchboard_carriers::twilio::{parse_inbound, parse_status};
use switchboard_carriers::{CarrierStatus, MediaRef};

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// An incoming MMS with two images, with every field Twilio documents for
/// the messaging webhook.
fn twilio_mms() -> Vec<(String, String)> {
    form(&[
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "MM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "2"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", ""),
        ("SmsSid", "MM0123456789abcdef0123456789abcdef"),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", "LONDON"),
        ("Body", "Here is the damage 📷"),
        ("FromCountry", "GB"),
        ("To", "+14155552671"),
        ("MessagingServiceSid", ""),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "MM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+442079460958"),
        ("ApiVersion", "2010-04-01"),
        ("MediaContentType0", "image/jpeg"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM0123456789abcdef0123456789abcdef/Media/ME00000000000000000000000000000000",
        ),
        ("MediaContentType1", "image/png"),
        (
            "MediaUrl1",
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM0123456789abcdef0123456789abcdef/Media/ME00000000000000000000000000000001",
        ),
    ])
}

#[test]
fn a_twilio_mms_parses_with_every_media_item() {
    let message = parse_inbound(&twilio_mms()).expect("parsed");
    assert_eq!(
        message.carrier_message_id,
        "MM0123456789abcdef0123456789abcdef"
    );
    assert_eq!(message.from.as_str(), "+442079460958");
    assert_eq!(message.to.as_str(), "+14155552671");
    assert_eq!(message.text, "Here is the damage 📷");
    assert_eq!(message.media.len(), 2);
    assert_eq!(
        message.media[1],
        MediaRef {
            url: "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM0123456789abcdef0123456789abcdef/Media/ME00000000000000000000000000000001".to_owned(),
            content_type: Some("image/png".to_owned()),
        }
    );
}

#[test]
fn a_twilio_sms_without_media_fields_parses() {
    let sms = form(&[
        ("MessageSid", "SM1"),
        ("From", "+442079460958"),
        ("To", "+14155552671"),
        ("Body", "STOP"),
        ("NumMedia", "0"),
    ]);
    let message = parse_inbound(&sms).expect("parsed");
    assert_eq!(message.text, "STOP");
    assert!(message.media.is_empty());
}

#[test]
fn malformed_twilio_webhooks_are_refused_naming_the_field() {
    let without = |name: &str| -> Vec<(String, String)> {
        twilio_mms()
            .into_iter()
            .filter(|(k, _)| k != name)
            .collect()
    };
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        twilio_mms()
            .into_iter()
            .map(|(k, v)| {
                if k == name {
                    (k, value.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect()
    };
    for (fields, field) in [
        (without("MessageSid"), "MessageSid"),
        (without("From"), "From"),
        (with("To", "14155552671"), "To"),
        (with("From", "GOOGLE"), "From"),
        (with("NumMedia", "two"), "NumMedia"),
        (with("NumMedia", "11"), "NumMedia"),
        (without("MediaUrl1"), "MediaUrl1"),
        (with("MediaUrl0", "javascript:alert(1)"), "MediaUrl0"),
    ] {
        let error = parse_inbound(&fields).expect_err(field);
        assert_eq!(error.field, field);
        assert!(error.to_string().starts_with(field), "{error}");
    }
}

#[test]
fn twilio_status_callbacks_parse_with_the_reason_in_words() {
    let delivered = parse_status(&form(&[
        ("SmsSid", "SM0123456789abcdef0123456789abcdef"),
        ("SmsStatus", "delivered"),
        ("MessageStatus", "delivered"),
        ("To", "+442079460958"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155552671"),
        ("ApiVersion", "2010-04-01"),
    ]))
    .expect("parsed");
    assert_eq!(
        delivered.carrier_message_id,
        "SM0123456789abcdef0123456789abcdef"
    );
    assert_eq!(delivered.status, CarrierStatus::Delivered);
    assert_eq!(delivered.error, None);

    let undelivered = parse_status(&form(&[
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ]))
    .expect("parsed");
    assert_eq!(undelivered.status, CarrierStatus::Failed);
    assert_eq!(
        undelivered.error.as_deref(),
        Some(
            "The carrier could not deliver the text: the recipient's phone is switched off or out of reach (Twilio error 30003)."
        )
    );

    for (fields, field) in [
        (form(&[("MessageStatus", "sent")]), "MessageSid"),
        (form(&[("MessageSid", "SM1")]), "MessageStatus"),
        (
            form(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "failed"),
                ("ErrorCode", "3O003"),
            ]),
            "ErrorCode",
        ),
    ] {
        assert_eq!(parse_status(&fields).expect_err(field).field, field);
    }
}

/// Telnyx's documented `message.received` example, with media.
const TELNYX_RECEIVED: &str = r#"{
  "data": {
    "event_type": "message.received",
    "id": "b301ed3f-1490-491f-995f-6e64e69674d4",
    "occurred_at": "2019-12-09T20:16:07.588+00:00",
    "payload": {
      "cc": [],
      "completed_at": null,
      "cost": null,
      "direction": "inbound",
      "encoding": "GSM-7",
      "errors": [],
      "from": {"carrier": "T-Mobile USA", "line_type": "long_code", "phone_number": "+442079460958", "status": "webhook_delivered"},
      "id": "84cca175-9755-4859-b67f-4730d7f58aa3",
      "media": [
        {"content_type": "image/jpeg", "sha256": null, "size": 80250, "url": "https://media.telnyx.com/84cca175/a.jpg?X-Amz-Signature=abc"},
        {"content_type": "image/gif", "sha256": null, "size": 1024, "url": "https://media.telnyx.com/84cca175/b.gif?X-Amz-Signature=def"}
      ],
      "messaging_profile_id": "740572b6-099c-44a1-89b9-6c92163bc68d",
      "organization_id": "47a530f8-4362-4526-829b-bcee17fd9f7a",
      "parts": 1,
      "received_at": "2019-12-09T20:16:07.503+00:00",
      "record_type": "message",
      "sent_at": null,
      "tags": [],
      "text": "Hello from Telnyx!",
      "to": [{"carrier": "Telnyx", "line_type": "Wireless", "phone_number": "+14155552671", "status": "webhook_delivered"}],
      "type": "MMS",
      "valid_until": null,
      "webhook_failover_url": null,
      "webhook_url": "https://www.example.com/hooks"
    },
    "record_type": "event"
  },
  "meta": {"attempt": 1, "delivered_to": "https://www.example.com/hooks"}
}"#;

/// A `message.finalized` for a text that could not be delivered.
const TELNYX_FINALIZED_FAILED: &str = r#"{
  "data": {
    "event_type": "message.finalized",
    "id": "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be",
    "occurred_at": "2019-12-09T21:32:14.148+00:00",
    "payload": {
      "completed_at": "2019-12-09T21:32:14.148+00:00",
      "direction": "outbound",
      "errors": [{"code": "40008", "title": "Undeliverable", "detail": "The recipient carrier did not accept the message."}],
      "from": {"carrier": "Telnyx", "line_type": "Wireless", "phone_number": "+14155552671"},
      "id": "ac012cbf-5e03-4ea8-b183-4c2b1b20ec61",
      "record_type": "message",
      "text": "Hi",
      "to": [{"carrier": "T-MOBILE USA, INC.", "line_type": "Wireless", "phone_number": "+442079460958", "status": "delivery_failed"}],
      "type": "SMS"
    },
    "record_type": "event"
  },
  "meta": {"attempt": 1, "delivered_to": "https://www.example.com/hooks"}
}"#;

#[test]
fn a_telnyx_message_received_parses_with_its_event_id_and_media() {
    let event = parse_webhook(TELNYX_RECEIVED.as_bytes()).expect("parsed");
    assert_eq!(event.event_id(), "b301ed3f-1490-491f-995f-6e64e69674d4");
    let TelnyxEvent::Received { message, .. } = event else {
        panic!("a received message")
    };
    assert_eq!(
        message.carrier_message_id,
        "84cca175-9755-4859-b67f-4730d7f58aa3"
    );
    assert_eq!(message.from.as_str(), "+442079460958");
    assert_eq!(message.to.as_str(), "+14155552671");
    assert_eq!(message.text, "Hello from Telnyx!");
    assert_eq!(
        message.media,
        vec![
            MediaRef {
                url: "https://media.telnyx.com/84cca175/a.jpg?X-Amz-Signature=abc".to_owned(),
                content_type: Some("image/jpeg".to_owned()),
            },
            MediaRef {
                url: "https://media.telnyx.com/84cca175/b.gif?X-Amz-Signature=def".to_owned(),
                content_type: Some("image/gif".to_owned()),
            },
        ]
    );
}

#[test]
fn telnyx_status_events_parse_with_the_reason_in_words() {
    let event = parse_webhook(TELNYX_FINALIZED_FAILED.as_bytes()).expect("parsed");
    assert_eq!(event.event_id(), "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be");
    let TelnyxEvent::Status {
        event_type, report, ..
    } = event
    else {
        panic!("a status")
    };
    assert_eq!(event_type, "message.finalized");
    assert_eq!(
        report.carrier_message_id,
        "ac012cbf-5e03-4ea8-b183-4c2b1b20ec61"
    );
    assert_eq!(report.status, CarrierStatus::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some(
            "The carrier could not deliver the text: The recipient carrier did not accept the message (Telnyx error 40008)."
        )
    );

    let sent = TELNYX_FINALIZED_FAILED
        .replace("message.finalized", "message.sent")
        .replace("delivery_failed", "sent")
        .replace(
            r#"[{"code": "40008", "title": "Undeliverable", "detail": "The recipient carrier did not accept the message."}]"#,
            "[]",
        );
    let TelnyxEvent::Status { report, .. } = parse_webhook(sent.as_bytes()).expect("parsed") else {
        panic!("a status")
    };
    assert_eq!(report.status, CarrierStatus::Sent);
    assert_eq!(report.error, None);
}

#[test]
fn other_telnyx_events_parse_to_other() {
    let body = br#"{"data":{"event_type":"number_order.complete","id":"e1","payload":{"id":"x"},"record_type":"event"}}"#;
    assert_eq!(
        parse_webhook(body).expect("parsed"),
        TelnyxEvent::Other {
            event_id: "e1".to_owned(),
            event_type: "number_order.complete".to_owned(),
        }
    );
}

#[test]
fn malformed_telnyx_webhooks_are_refused_naming_the_field() {
    let broken = |from: &str, to: &str| TELNYX_RECEIVED.replacen(from, to, 1);
    for (body, field) in [
        ("not json".to_owned(), "body"),
        (r#"{"meta":{}}"#.to_owned(), "data"),
        (
            broken(r#""id": "b301ed3f"#, r#""xid": "b301ed3f"#),
            "data.id",
        ),
        (
            broken(r#""event_type": "message.received""#, r#""event_type": 7"#),
            "data.event_type",
        ),
        (
            broken(r#""id": "84cca175-"#, r#""xid": "84cca175-"#),
            "data.payload.id",
        ),
        (
            broken(
                r#""phone_number": "+442079460958""#,
                r#""phone_number": "0207 946 0958""#,
            ),
            "data.payload.from.phone_number",
        ),
        (
            broken(r#""to": [{"#, r#""to": [], "x": [{"#),
            "data.payload.to.0.phone_number",
        ),
        (
            broken(
                r#""url": "https://media.telnyx.com/84cca175/b.gif"#,
                r#""url": "file:///etc/b.gif"#,
            ),
            "data.payload.media.1.url",
        ),
    ] {
        let error = parse_webhook(body.as_bytes()).expect_err(field);
        assert_eq!(error.field, field, "{body}");
    }
    let unknown_status = TELNYX_FINALIZED_FAILED.replace("delivery_failed", "lost");
    assert_eq!(
        parse_webhook(unknown_status.as_bytes())
            .expect_err("unknown status")
            .field,
        "data.payload.to.0.status"
    );
}
