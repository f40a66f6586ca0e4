//! Telnyx's JSON webhooks: `{"data": {"id", "event_type", "payload"}}`.

use crate::{CarrierStatus, InboundMessage, MediaRef, ParseError, StatusReport, parse_number};
use serde_json::Value;

/// One webhook, typed. Each carries the event's own id (`data.id`), which
/// a retried delivery of the same webhook repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelnyxEvent {
    /// `message.received`: a text for one of our numbers.
    Received {
        event_id: String,
        message: InboundMessage,
    },
    /// `message.sent` or `message.finalized`: news of a text we sent.
    Status {
        event_id: String,
        /// `message.sent` or `message.finalized`.
        event_type: String,
        report: StatusReport,
    },
    /// Any other event: answered `200` and ignored.
    Other {
        event_id: String,
        event_type: String,
    },
}

impl TelnyxEvent {
    pub fn event_id(&self) -> &str {
        match self {
            Self::Received { event_id, .. }
            | Self::Status { event_id, .. }
            | Self::Other { event_id, .. } => event_id,
        }
    }
}

/// Parses a webhook's raw body.
pub fn parse_webhook(body: &[u8]) -> Result<TelnyxEvent, ParseError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|_| ParseError::new("body", "is not a JSON document"))?;
    let data = root
        .get("data")
        .ok_or_else(|| ParseError::missing("data"))?;
    let event_id = str_at(data, "id", "data")?.to_owned();
    let event_type = str_at(data, "event_type", "data")?.to_owned();
    let payload = data.get("payload");
    match event_type.as_str() {
        "message.received" => {
            let payload = payload.ok_or_else(|| ParseError::missing("data.payload"))?;
            Ok(TelnyxEvent::Received {
                event_id,
                message: inbound(payload)?,
            })
        }
        "message.sent" | "message.finalized" => {
            let payload = payload.ok_or_else(|| ParseError::missing("data.payload"))?;
            Ok(TelnyxEvent::Status {
                event_id,
                event_type,
                report: status(payload)?,
            })
        }
        _ => Ok(TelnyxEvent::Other {
            event_id,
            event_type,
        }),
    }
}

/// Reads `<path>` under `value` as a non-empty string; `parent` is where
/// `value` sits in the document, so errors name the field as Telnyx's
/// documentation does (`data.payload.to.0.phone_number`).
fn str_at<'a>(value: &'a Value, path: &str, parent: &str) -> Result<&'a str, ParseError> {
    let named = format!("{parent}.{path}");
    let mut at = value;
    for key in path.split('.') {
        at = match key.parse::<usize>() {
            Ok(i) => at.get(i),
            Err(_) => at.get(key),
        }
        .ok_or_else(|| ParseError::missing(&named))?;
    }
    match at {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::Null => Err(ParseError::missing(&named)),
        Value::String(_) => Err(ParseError::new(&named, "is empty")),
        _ => Err(ParseError::new(&named, "must be a string")),
    }
}

fn payload_str<'a>(payload: &'a Value, path: &str) -> Result<&'a str, ParseError> {
    str_at(payload, path, "data.payload")
}

fn inbound(payload: &Value) -> Result<InboundMessage, ParseError> {
    let id = payload_str(payload, "id")?;
    let from = parse_number(
        "data.payload.from.phone_number",
        payload_str(payload, "from.phone_number")?,
    )?;
    let to = parse_number(
        "data.payload.to.0.phone_number",
        payload_str(payload, "to.0.phone_number")?,
    )?;
    let text = match payload.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ParseError::new("data.payload.text", "must be a string")),
    };
    let media = match payload.get("media") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let url = str_at(item, "url", &format!("data.payload.media.{i}"))?;
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ParseError::new(
                        format!("data.payload.media.{i}.url"),
                        "is not an http(s) URL",
                    ));
                }
                Ok(MediaRef {
                    url: url.to_owned(),
                    content_type: item
                        .get("content_type")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ParseError::new("data.payload.media", "must be a list")),
    };
    Ok(InboundMessage {
        carrier_message_id: id.to_owned(),
        from,
        to,
        text,
        media,
    })
}

fn status(payload: &Value) -> Result<StatusReport, ParseError> {
    let id = payload_str(payload, "id")?;
    let raw = payload_str(payload, "to.0.status")?;
    let status = status_from(raw).ok_or_else(|| {
        ParseError::new(
            "data.payload.to.0.status",
            format!("{raw:?} is not a status Telnyx documents"),
        )
    })?;
    let errors = match payload.get("errors") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(errors)) => errors.as_slice(),
        Some(_) => return Err(ParseError::new("data.payload.errors", "must be a list")),
    };
    let error = errors.first().map(describe).or_else(|| {
        (status == CarrierStatus::Failed)
            .then(|| "The carrier could not deliver the text and gave no reason.".to_owned())
    });
    Ok(StatusReport {
        carrier_message_id: id.to_owned(),
        status,
        error,
    })
}

/// Telnyx's per-recipient statuses onto ours.
fn status_from(raw: &str) -> Option<CarrierStatus> {
    Some(match raw.trim() {
        "queued" | "sending" => CarrierStatus::Queued,
        "sent" | "delivery_unconfirmed" => CarrierStatus::Sent,
        "delivered" => CarrierStatus::Delivered,
        "sending_failed" | "delivery_failed" | "expired" => CarrierStatus::Failed,
        _ => return None,
    })
}

/// One entry of `payload.errors` in words, with Telnyx's code.
fn describe(error: &Value) -> String {
    let code = match error.get("code") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let words = ["detail", "title"]
        .iter()
        .find_map(|k| {
            error
                .get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(|w| w.trim_end_matches('.').to_owned());
    match (words, code) {
        (Some(words), Some(code)) => {
            format!("The carrier could not deliver the text: {words} (Telnyx error {code}).")
        }
        (Some(words), None) => format!("The carrier could not deliver the text: {words}."),
        (None, Some(code)) => {
            format!("The carrier could not deliver the text (Telnyx error {code}).")
        }
        (None, None) => "The carrier could not deliver the text and gave no reason.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_maps_and_others_are_refused() {
        for (raw, want) in [
            ("queued", CarrierStatus::Queued),
            ("sending", CarrierStatus::Queued),
            ("sent", CarrierStatus::Sent),
            ("delivery_unconfirmed", CarrierStatus::Sent),
            ("delivered", CarrierStatus::Delivered),
            ("sending_failed", CarrierStatus::Failed),
            ("delivery_failed", CarrierStatus::Failed),
            ("expired", CarrierStatus::Failed),
        ] {
            assert_eq!(status_from(raw), Some(want), "{raw}");
        }
        assert_eq!(status_from("webhook_delivered"), None);
    }
}
