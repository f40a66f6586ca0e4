//! Twilio's form-encoded webhooks: an incoming message, and the status
//! callback of a message we sent.

use crate::{CarrierStatus, InboundMessage, MediaRef, ParseError, StatusReport, parse_number};

/// Twilio allows at most ten media items per message.
const MAX_MEDIA: usize = 10;

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, ParseError> {
    match field(form, name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ParseError::missing(name)),
    }
}

/// The webhook for an incoming SMS or MMS: `MessageSid`, `From`, `To`,
/// `Body`, `NumMedia` and, per item, `MediaUrl{i}` / `MediaContentType{i}`.
pub fn parse_inbound(form: &[(String, String)]) -> Result<InboundMessage, ParseError> {
    let sid = required(form, "MessageSid")?;
    let from = parse_number("From", required(form, "From")?)?;
    let to = parse_number("To", required(form, "To")?)?;
    let text = field(form, "Body").unwrap_or_default().to_owned();
    let count = match field(form, "NumMedia") {
        None => 0,
        Some(n) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_MEDIA)
            .ok_or_else(|| {
                ParseError::new(
                    "NumMedia",
                    format!("must be a number from 0 to {MAX_MEDIA}"),
                )
            })?,
    };
    let media = (0..count)
        .map(|i| {
            let url = required(form, &format!("MediaUrl{i}"))?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ParseError::new(
                    format!("MediaUrl{i}"),
                    "is not an http(s) URL",
                ));
            }
            Ok(MediaRef {
                url: url.to_owned(),
                content_type: field(form, &format!("MediaContentType{i}"))
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InboundMessage {
        carrier_message_id: sid.to_owned(),
        from,
        to,
        text,
        media,
    })
}

/// The status callback of a message we sent: `MessageSid`, `MessageStatus`
/// and, when it failed, `ErrorCode` (and sometimes `ErrorMessage`).
pub fn parse_status(form: &[(String, String)]) -> Result<StatusReport, ParseError> {
    let sid = required(form, "MessageSid")?;
    let raw = required(form, "MessageStatus")?;
    let status = status_from(raw).ok_or_else(|| {
        ParseError::new(
            "MessageStatus",
            format!("{raw:?} is not a status Twilio documents"),
        )
    })?;
    let code = field(form, "ErrorCode")
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if let Some(code) = code
        && !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ParseError::new("ErrorCode", "must be a number"));
    }
    let message = field(form, "ErrorMessage")
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let error = match (code, message) {
        (Some(code), message) => Some(delivery_error(code, message)),
        (None, Some(message)) => Some(format!(
            "The carrier could not deliver the text: {message}."
        )),
        (None, None) if status == CarrierStatus::Failed => {
            Some("The carrier could not deliver the text and gave no reason.".to_owned())
        }
        (None, None) => None,
    };
    Ok(StatusReport {
        carrier_message_id: sid.to_owned(),
        status,
        error,
    })
}

/// Twilio's message statuses onto ours.
fn status_from(raw: &str) -> Option<CarrierStatus> {
    Some(match raw.trim() {
        "accepted" | "scheduled" | "queued" | "sending" => CarrierStatus::Queued,
        "sent" | "delivery_unknown" => CarrierStatus::Sent,
        "delivered" | "read" => CarrierStatus::Delivered,
        "undelivered" | "failed" | "canceled" => CarrierStatus::Failed,
        _ => return None,
    })
}

/// A delivery error in words, with Twilio's code.
fn delivery_error(code: &str, message: Option<&str>) -> String {
    let words = match code {
        "30001" => "the carrier's queue was full",
        "30002" => "the carrier account is suspended",
        "30003" => "the recipient's phone is switched off or out of reach",
        "30004" => "the recipient's carrier blocked the message",
        "30005" => "the number is unknown or no longer in service",
        "30006" => "the number is a landline or its carrier cannot receive texts",
        "30007" => "the recipient's carrier filtered the message",
        "30008" => "the carrier reported an unknown error",
        "30009" => "a part of the message went missing",
        "30010" => "the message price exceeded the account's limit",
        "21610" => "the recipient has opted out by replying STOP",
        "21614" => "the number is not a mobile number",
        _ => {
            return match message {
                Some(message) => {
                    format!(
                        "The carrier could not deliver the text: {message} (Twilio error {code})."
                    )
                }
                None => format!("The carrier could not deliver the text (Twilio error {code})."),
            };
        }
    };
    format!("The carrier could not deliver the text: {words} (Twilio error {code}).")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_documented_status_maps_and_others_are_refused() {
        for (raw, want) in [
            ("accepted", CarrierStatus::Queued),
            ("scheduled", CarrierStatus::Queued),
            ("queued", CarrierStatus::Queued),
            ("sending", CarrierStatus::Queued),
            ("sent", CarrierStatus::Sent),
            ("delivery_unknown", CarrierStatus::Sent),
            ("delivered", CarrierStatus::Delivered),
            ("read", CarrierStatus::Delivered),
            ("undelivered", CarrierStatus::Failed),
            ("failed", CarrierStatus::Failed),
            ("canceled", CarrierStatus::Failed),
        ] {
            let report =
                parse_status(&form(&[("MessageSid", "SM1"), ("MessageStatus", raw)])).expect(raw);
            assert_eq!(report.status, want, "{raw}");
        }
        let err = parse_status(&form(&[("MessageSid", "SM1"), ("MessageStatus", "lost")]))
            .expect_err("unknown status");
        assert_eq!(err.field, "MessageStatus");
    }
}
