//! The SMS/MMS carriers Switchboard speaks to.
//!
//! Carriers call us with webhooks and we call their REST APIs. This crate
//! holds both directions for each carrier ([`twilio`], [`telnyx`]):
//!
//! - **Webhooks in.** A webhook's signature is checked exactly as the
//!   carrier computes it before anything in it is believed; then the body is
//!   parsed into the typed values of this module ([`InboundMessage`],
//!   [`StatusReport`]), or refused with a [`ParseError`] naming the field.
//! - **Texts out.** Each carrier's `Client` implements [`Carrier`]: it sends
//!   an [`OutboundText`] and says, when that fails, whether a retry can help
//!   ([`SendError::Retry`]) or not ([`SendError::Rejected`]), and whether the
//!   carrier may have acted on the request anyway
//!   ([`SendError::is_ambiguous`]). It also fetches inbound MMS media with
//!   the connection's credentials where the carrier wants them.
//!
//! It knows nothing of the store, HTTP routing or the domain's rules (which
//! business number a text belongs to, who hears about it, whether a status
//! may move backwards): the server hands it raw request parts and decides
//! what to do with the verdict. It depends on the domain only for [`E164`].
//!
//! Behind the `standin` feature, the `standin` module runs local HTTP
//! servers that answer as the carriers document, so tests point the real
//! clients at them.
//!
//! HTTPS to a real carrier needs the `tls` feature (rustls with the `ring`
//! provider). It is off by default because enabling it gives every reqwest
//! client in the build a TLS stack without a default provider: a process
//! that builds other reqwest clients must call `install_crypto_provider`
//! first (this crate's clients do it themselves).

mod http;
pub mod telnyx;
pub mod twilio;

#[cfg(feature = "standin")]
pub mod standin;

use std::fmt;
use std::time::Duration;

pub use switchboard_domain::phone::E164;

/// How long a request to a carrier may take, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a webhook's signature was not accepted. The webhook is refused with
/// `403` whatever the reason; the reason is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature is not well formed")]
    Malformed,
    #[error("the signature does not match the request")]
    Mismatch,
    #[error("the timestamp is missing, malformed or too far from now")]
    Stale,
    #[error("the connection's key is not usable")]
    BadKey,
}

/// A carrier's REST API, as the outbox worker and the inbound-media fetcher
/// use it. One value per configured connection; it reuses its HTTP
/// connections across calls.
#[async_trait::async_trait]
pub trait Carrier: Send + Sync {
    /// Asks the carrier to send one text (SMS, or MMS when it has media).
    async fn send(&self, text: &OutboundText) -> Result<Accepted, SendError>;

    /// Downloads one item of an inbound MMS: follows redirects, sends the
    /// connection's credentials only where the carrier requires them, and
    /// refuses a body larger than `limit` bytes without reading it whole.
    async fn fetch_media(&self, url: &str, limit: usize) -> Result<FetchedMedia, MediaFetchError>;
}

/// One text to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundText {
    /// The business number it is sent from.
    pub from: E164,
    pub to: E164,
    /// May be empty when the text carries media.
    pub body: String,
    /// Public (signed) URLs the carrier downloads the MMS images from.
    pub media_urls: Vec<String>,
    /// Stable across every attempt to send this text. Sent as
    /// `Idempotency-Key` to carriers that honour one (Telnyx); Twilio has
    /// none, so a retry after an ambiguous failure may send twice there.
    pub idempotency_key: String,
    /// Where the carrier reports delivery status, if anywhere.
    pub status_callback: Option<String>,
}

/// The carrier took the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The carrier's id of the message; status callbacks name it.
    pub carrier_message_id: String,
}

/// Why a text was not accepted, and what the outbox should do about it.
/// Reasons are sentences a user can read under the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Sending again later may succeed: the carrier is down, overloaded or
    /// unreachable, or did not answer in time.
    #[error("{reason}")]
    Retry {
        reason: String,
        /// How long the carrier asked us to wait (`Retry-After`), if it did.
        after: Option<Duration>,
        /// The request may have reached the carrier and been acted on; see
        /// [`SendError::is_ambiguous`].
        ambiguous: bool,
    },
    /// Sending again cannot succeed: the carrier refused this text (invalid
    /// or opted-out recipient, a "from" number the account does not own,
    /// bad credentials, …).
    #[error("{reason}")]
    Rejected {
        /// The carrier's error code (`21211`, `40310`), or `http_<status>`
        /// when it gave none, or one of ours (`configuration`).
        code: String,
        reason: String,
    },
}

impl SendError {
    /// A failure before the carrier acted on the request.
    pub fn retry(reason: impl Into<String>, after: Option<Duration>) -> Self {
        Self::Retry {
            reason: reason.into(),
            after,
            ambiguous: false,
        }
    }

    /// A failure after the request may have reached the carrier.
    pub fn ambiguous(reason: impl Into<String>) -> Self {
        Self::Retry {
            reason: reason.into(),
            after: None,
            ambiguous: true,
        }
    }

    pub fn rejected(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Rejected {
            code: code.into(),
            reason: reason.into(),
        }
    }

    /// Whether the carrier may have received and acted on the request
    /// although we have no answer: a timeout, or a connection that broke
    /// after the request was written. Retrying then is safe with an
    /// idempotency key (Telnyx) and may send a duplicate without one
    /// (Twilio): the one duplicate window the outbox documents.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::Retry {
                ambiguous: true,
                ..
            }
        )
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }

    /// Whether the carrier refused because the recipient opted out of texts
    /// from that number (texted STOP to the carrier): Twilio's 21610,
    /// Telnyx's 40300. The sender should stop texting them too.
    pub fn is_opt_out(&self) -> bool {
        matches!(self, Self::Rejected { code, .. } if code == "21610" || code == "40300")
    }

    /// The wait the carrier asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retry { after, .. } => *after,
            Self::Rejected { .. } => None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Retry { reason, .. } | Self::Rejected { reason, .. } => reason,
        }
    }
}

/// One downloaded media item.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedMedia {
    pub bytes: Vec<u8>,
    /// The `Content-Type` the final server sent, if any. Not to be trusted
    /// as the file's type: the server sniffs the content.
    pub content_type: Option<String>,
}

impl fmt::Debug for FetchedMedia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedMedia")
            .field("bytes", &self.bytes.len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// Why an inbound media item could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaFetchError {
    #[error("the media is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the media server answered HTTP {status}")]
    Status { status: u16 },
    #[error("the media URL is not a valid http(s) URL")]
    BadUrl,
    #[error("the media URL redirected more than {max} times")]
    TooManyRedirects { max: usize },
    #[error("the media could not be downloaded: {reason}")]
    Transport { reason: String },
}

impl MediaFetchError {
    /// Whether fetching again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status } => *status == 429 || *status >= 500,
            Self::Transport { .. } => true,
            Self::TooLarge { .. } | Self::BadUrl | Self::TooManyRedirects { .. } => false,
        }
    }
}

/// A client could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("base_url {0:?} is not an http(s) URL")]
    BadBaseUrl(String),
    #[error("base_url {0:?} needs HTTPS, and this build has no TLS support (feature `tls`)")]
    NoTls(String),
    #[error("account_sid {0:?} must be letters and digits only")]
    BadAccountSid(String),
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
}

/// A text that arrived for a business number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub carrier_message_id: String,
    /// The external number that sent it.
    pub from: E164,
    /// The business number it was sent to.
    pub to: E164,
    /// May be empty for an MMS with only media.
    pub text: String,
    pub media: Vec<MediaRef>,
}

/// Where an inbound MMS item can be fetched (with [`Carrier::fetch_media`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub url: String,
    /// What the carrier says it is; checked against the content later.
    pub content_type: Option<String>,
}

/// A carrier's report on a text we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub carrier_message_id: String,
    pub status: CarrierStatus,
    /// Why it failed, in words, with the carrier's code.
    pub error: Option<String>,
}

/// The delivery states every carrier's statuses map onto, listed in the
/// order a text passes through them; `Delivered` and `Failed` are both
/// final. Whether a report may replace the status already recorded (they
/// arrive out of order) is the domain's rule, not this crate's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CarrierStatus {
    Queued,
    Sent,
    Delivered,
    Failed,
}

impl CarrierStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Whether no later status can follow.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed)
    }
}

/// A webhook whose body is not what the carrier documents. Answered `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ParseError {
    /// The field as the carrier names it (`MessageSid`, `data.payload.id`).
    pub field: String,
    /// What is wrong with it, as the rest of a sentence ("is missing").
    pub problem: String,
}

impl ParseError {
    pub const CODE: &'static str = "malformed_webhook";

    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        Self::new(field, "is missing")
    }
}

/// Parses a webhook's phone number, which carriers send in E.164.
pub(crate) fn parse_number(field: &str, value: &str) -> Result<E164, ParseError> {
    E164::parse_strict(value.trim())
        .map_err(|_| ParseError::new(field, "is not a phone number in E.164 form"))
}

/// Makes `ring` this process's default rustls provider, which every reqwest
/// client needs once the `tls` feature is on. Does nothing when a provider
/// is already installed; calling it again is cheap.
#[cfg(feature = "tls")]
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider is installed already, which is
        // all reqwest needs.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod opt_out_tests {
    use super::SendError;

    #[test]
    fn the_carriers_opt_out_refusals_are_known_as_such() {
        assert!(SendError::rejected("21610", "unsubscribed").is_opt_out());
        assert!(SendError::rejected("40300", "blocked by STOP").is_opt_out());
        assert!(!SendError::rejected("21614", "not a mobile").is_opt_out());
        assert!(!SendError::retry("500", None).is_opt_out());
    }
}
