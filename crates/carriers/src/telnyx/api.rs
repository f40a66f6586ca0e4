//! The v2 Messages API client.

use crate::http::{self, is_transient};
use crate::{
    Accepted, Carrier, ConfigError, FetchedMedia, MediaFetchError, OutboundText, SendError,
};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com";

/// The header Telnyx replays a successful create by.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// One Telnyx connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the API lives; tests point it at a stand-in.
    pub base_url: String,
    /// The API key, sent as a bearer token.
    pub api_key: String,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Config {
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: api_key.into(),
            timeout: crate::DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("api_key", &"…")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends texts through one connection and fetches inbound media.
pub struct Client {
    http: reqwest::Client,
    messages: Url,
    api_key: String,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("telnyx::Client")
            .field("messages", &self.messages.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let base = http::base_url(&config.base_url)?;
        Ok(Self {
            http: http::client(config.timeout)?,
            messages: http::join(&base, "/v2/messages"),
            api_key: config.api_key,
            timeout: config.timeout,
        })
    }
}

#[derive(Serialize)]
struct NewMessage<'a> {
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    text: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    media_urls: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<&'a str>,
}

#[derive(Deserialize)]
struct Created {
    data: CreatedData,
}

#[derive(Deserialize)]
struct CreatedData {
    id: String,
}

/// Telnyx's documented error body.
#[derive(Debug, Default, Deserialize)]
struct ApiErrors {
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    /// A string in the documentation; tolerated as a number too.
    code: Option<serde_json::Value>,
    title: Option<String>,
    detail: Option<String>,
}

/// Telnyx's rule for keys: 1 to 255 letters, digits, `_`, `:` or `-`.
fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
}

#[async_trait::async_trait]
impl Carrier for Client {
    async fn send(&self, text: &OutboundText) -> Result<Accepted, SendError> {
        if !valid_key(&text.idempotency_key) {
            return Err(SendError::rejected(
                "bad_idempotency_key",
                "The text's idempotency key is not one Telnyx accepts (1 to 255 letters, digits, _, : or -).",
            ));
        }
        let body = NewMessage {
            from: text.from.as_str(),
            to: text.to.as_str(),
            text: &text.body,
            media_urls: &text.media_urls,
            webhook_url: text.status_callback.as_deref(),
        };
        let response = self
            .http
            .post(self.messages.clone())
            .bearer_auth(&self.api_key)
            .header(IDEMPOTENCY_HEADER, &text.idempotency_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| http::send_failure(&e, self.timeout))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await;
        if status.is_success() {
            // The text is created; a retry with the same key gets this
            // answer again, so an unreadable one is safe to retry.
            return bytes
                .ok()
                .and_then(|b| serde_json::from_slice::<Created>(&b).ok())
                .map(|created| Accepted {
                    carrier_message_id: created.data.id,
                })
                .ok_or_else(|| {
                    SendError::ambiguous(
                        "The carrier took the text but its answer could not be read.",
                    )
                });
        }
        let errors = bytes
            .ok()
            .and_then(|b| serde_json::from_slice::<ApiErrors>(&b).ok())
            .unwrap_or_default();
        Err(refusal(status, &headers, errors, text))
    }

    async fn fetch_media(&self, url: &str, limit: usize) -> Result<FetchedMedia, MediaFetchError> {
        // Telnyx's media URLs are pre-signed: no credentials go with them.
        http::fetch_media(&self.http, url, limit, |_| None).await
    }
}

fn code_of(error: &ApiError) -> Option<String> {
    match error.code.as_ref()? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn refusal(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    errors: ApiErrors,
    text: &OutboundText,
) -> SendError {
    let first = errors.errors.into_iter().next();
    let code = first.as_ref().and_then(code_of);
    let words = first.and_then(|e| {
        e.detail
            .filter(|d| !d.is_empty())
            .or(e.title.filter(|t| !t.is_empty()))
    });
    if status == StatusCode::CONFLICT {
        // An earlier attempt with this key is still being processed.
        return SendError::Retry {
            reason: "The carrier is still processing an earlier attempt to send this text."
                .to_owned(),
            after: http::retry_after(headers),
            ambiguous: true,
        };
    }
    if is_transient(status) {
        let reason = match (code.as_deref(), words) {
            (Some(code), _) if status == StatusCode::TOO_MANY_REQUESTS => {
                format!("The carrier asked us to slow down (Telnyx error {code}).")
            }
            (Some(code), Some(words)) if status.is_server_error() => format!(
                "The carrier had a temporary problem: {} (Telnyx error {code}).",
                words.trim_end_matches('.')
            ),
            _ => http::bare_status_reason(status),
        };
        return SendError::retry(reason, http::retry_after(headers));
    }
    let to = text.to.as_str();
    let from = text.from.as_str();
    let reason = match code.as_deref() {
        Some("40300") => {
            format!(
                "{to} has opted out of texts from {from} by replying STOP (Telnyx error 40300)."
            )
        }
        Some(c @ ("40310" | "10002" | "10016")) => {
            format!(
                "The carrier says the number {to} is not a valid destination for texts (Telnyx error {c})."
            )
        }
        Some("40305") => format!(
            "The carrier says {from} is not a number of this account that can send texts (Telnyx error 40305)."
        ),
        Some(c @ ("10009" | "10010")) => format!(
            "The carrier refused the connection's API key; check it in the connection's settings (Telnyx error {c})."
        ),
        Some(code) => match &words {
            Some(words) => format!(
                "The carrier refused the text: {} (Telnyx error {code}).",
                words.trim_end_matches('.')
            ),
            None => format!("The carrier refused the text (Telnyx error {code})."),
        },
        None if status == StatusCode::UNAUTHORIZED => {
            "The carrier refused the connection's API key (HTTP 401).".to_owned()
        }
        None => http::bare_status_reason(status),
    };
    let code = code.unwrap_or_else(|| format!("http_{}", status.as_u16()));
    SendError::rejected(code, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_telnyx_rules() {
        assert!(valid_key("8e03978e-40d5-43e8-bc93-6894a57f9326"));
        assert!(valid_key("outbox:42_a"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
    }
}
