//! The Messages API client.

use crate::http::{self, is_transient};
use crate::{
    Accepted, Carrier, ConfigError, FetchedMedia, MediaFetchError, OutboundText, SendError,
};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// One Twilio(-compatible) connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the API lives; tests point it at a stand-in.
    pub base_url: String,
    /// The account whose Messages resource texts are created in (`AC…`).
    pub account_sid: String,
    /// The Basic-auth user: the account SID, or an API key SID (`SK…`).
    pub username: String,
    /// The auth token, or the API key's secret.
    pub password: String,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Config {
    /// Authenticates with the account SID and its auth token.
    pub fn with_auth_token(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        let account_sid = account_sid.into();
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            username: account_sid.clone(),
            account_sid,
            password: auth_token.into(),
            timeout: crate::DEFAULT_TIMEOUT,
        }
    }

    /// Authenticates with an API key (SID and secret) of the account.
    pub fn with_api_key(
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        key_secret: impl Into<String>,
    ) -> Self {
        Self {
            username: key_sid.into(),
            password: key_secret.into(),
            ..Self::with_auth_token(account_sid, "")
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("password", &"…")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends texts through one connection and fetches its inbound media.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    messages: Url,
    username: String,
    password: String,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("twilio::Client")
            .field("messages", &self.messages.as_str())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let base = http::base_url(&config.base_url)?;
        let sid = &config.account_sid;
        if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::BadAccountSid(sid.clone()));
        }
        let messages = http::join(&base, &format!("/2010-04-01/Accounts/{sid}/Messages.json"));
        Ok(Self {
            http: http::client(config.timeout)?,
            base,
            messages,
            username: config.username,
            password: config.password,
            timeout: config.timeout,
        })
    }
}

/// Twilio's documented error body.
#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<u32>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

#[async_trait::async_trait]
impl Carrier for Client {
    async fn send(&self, text: &OutboundText) -> Result<Accepted, SendError> {
        let mut form: Vec<(&str, &str)> =
            vec![("To", text.to.as_str()), ("From", text.from.as_str())];
        if !text.body.is_empty() {
            form.push(("Body", &text.body));
        }
        for url in &text.media_urls {
            form.push(("MediaUrl", url));
        }
        if let Some(callback) = &text.status_callback {
            form.push(("StatusCallback", callback));
        }
        let response = self
            .http
            .post(self.messages.clone())
            .basic_auth(&self.username, Some(&self.password))
            .form(&form)
            .send()
            .await
            .map_err(|e| http::send_failure(&e, self.timeout))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await;
        if status.is_success() {
            // Twilio has created the message: an unreadable answer leaves us
            // without its id, not without the text sent.
            return body
                .ok()
                .and_then(|b| serde_json::from_slice::<Created>(&b).ok())
                .map(|created| Accepted {
                    carrier_message_id: created.sid,
                })
                .ok_or_else(|| {
                    SendError::ambiguous(
                        "The carrier took the text but its answer could not be read.",
                    )
                });
        }
        let error = body
            .ok()
            .and_then(|b| serde_json::from_slice::<ApiError>(&b).ok());
        Err(refusal(status, &headers, error, text))
    }

    async fn fetch_media(&self, url: &str, limit: usize) -> Result<FetchedMedia, MediaFetchError> {
        // Twilio's media URLs live on the API host and want the account's
        // credentials; they redirect to a CDN that must not see them.
        http::fetch_media(&self.http, url, limit, |at| {
            http::same_origin(at, &self.base)
                .then_some((self.username.as_str(), self.password.as_str()))
        })
        .await
    }
}

fn refusal(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    error: Option<ApiError>,
    text: &OutboundText,
) -> SendError {
    let code = error.as_ref().and_then(|e| e.code);
    let message = error.and_then(|e| e.message).filter(|m| !m.is_empty());
    if is_transient(status) || code == Some(20429) {
        let reason = match (code, message) {
            (Some(20429), _) => {
                "The carrier asked us to slow down (Twilio error 20429).".to_owned()
            }
            (Some(code), Some(message)) if status.is_server_error() => {
                format!("The carrier had a temporary problem: {message} (Twilio error {code}).")
            }
            _ => http::bare_status_reason(status),
        };
        return SendError::retry(reason, http::retry_after(headers));
    }
    let to = text.to.as_str();
    let from = text.from.as_str();
    let reason = match code {
        Some(21211) => {
            format!("The carrier says the number {to} is not a valid phone number (Twilio error 21211).")
        }
        Some(21614) => format!(
            "The carrier says the number {to} is not a valid mobile number (Twilio error 21614)."
        ),
        Some(21606) => format!(
            "The carrier says {from} is not a number of this account that can send texts (Twilio error 21606)."
        ),
        Some(21610) => format!(
            "{to} has opted out of texts from {from} by replying STOP (Twilio error 21610)."
        ),
        Some(21408) => format!(
            "The account may not send texts to the region of {to} (Twilio error 21408)."
        ),
        Some(21602) => "The text has neither words nor images (Twilio error 21602).".to_owned(),
        Some(20003) => "The carrier refused the connection's credentials; check the account SID and the auth token or API key (Twilio error 20003).".to_owned(),
        Some(20404) => "The carrier does not know this account; check the account SID (Twilio error 20404).".to_owned(),
        Some(code) => match message {
            Some(message) => format!("The carrier refused the text: {message} (Twilio error {code})."),
            None => format!("The carrier refused the text (Twilio error {code})."),
        },
        None if status == StatusCode::UNAUTHORIZED => {
            "The carrier refused the connection's credentials (HTTP 401).".to_owned()
        }
        None => http::bare_status_reason(status),
    };
    let code = code.map_or_else(|| format!("http_{}", status.as_u16()), |c| c.to_string());
    SendError::rejected(code, reason)
}
