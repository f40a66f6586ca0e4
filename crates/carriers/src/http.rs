//! What the carriers' clients share: building the HTTP client, reading
//! `Retry-After`, telling a failure before the request left from one after,
//! and downloading media within a size limit.

use crate::{ConfigError, FetchedMedia, MediaFetchError, SendError};
use reqwest::header::{DATE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::error::Error as _;
use std::time::{Duration, SystemTime};

/// Redirects followed when fetching media; Twilio uses one, to its CDN.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Parses a connection's base URL, without a trailing slash.
pub(crate) fn base_url(base: &str) -> Result<Url, ConfigError> {
    let bad = || ConfigError::BadBaseUrl(base.to_owned());
    let url = Url::parse(base.trim().trim_end_matches('/')).map_err(|_| bad())?;
    match url.scheme() {
        "http" => Ok(url),
        "https" if cfg!(feature = "tls") => Ok(url),
        "https" => Err(ConfigError::NoTls(base.to_owned())),
        _ => Err(bad()),
    }
}

/// One HTTP client per connection, reused for every call so connections
/// (and TLS sessions) are kept. Redirects are followed by hand where they
/// are wanted, so credentials never follow one by accident.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    #[cfg(feature = "tls")]
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        // A connect that times out is known not to have sent anything, so
        // it is reported apart from a timeout waiting for the answer.
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::Http(e.to_string()))
}

/// The path of `base` joined with `tail` (which starts with `/`), keeping
/// any path prefix the base URL has.
pub(crate) fn join(base: &Url, tail: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}{}", base.path().trim_end_matches('/'), tail);
    url.set_path(&path);
    url
}

/// What a transport failure means for the outbox: nothing was sent when the
/// connection could not be made; anything later is ambiguous.
pub(crate) fn send_failure(error: &reqwest::Error, timeout: Duration) -> SendError {
    if error.is_connect() {
        let why = match io_kind(error) {
            Some(std::io::ErrorKind::ConnectionRefused) => "the connection was refused",
            _ if error.is_timeout() => "connecting timed out",
            _ => "the connection failed",
        };
        SendError::retry(format!("Could not reach the carrier ({why})."), None)
    } else if error.is_timeout() {
        SendError::ambiguous(format!(
            "The carrier did not answer within {} seconds; it may have taken the text.",
            timeout.as_secs_f32()
        ))
    } else if error.is_builder() {
        SendError::rejected(
            "configuration",
            "The request to the carrier could not be built; check the connection's settings.",
        )
    } else {
        SendError::ambiguous(
            "The connection to the carrier broke before it answered; it may have taken the text.",
        )
    }
}

fn io_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source = error.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// `Retry-After` in either form HTTP allows: delay-seconds, or an HTTP-date
/// taken relative to the response's own `Date` (so the carrier's clock and
/// ours need not agree), else to now.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = headers
        .get(DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(SystemTime::now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a status means "try again later" for every carrier.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// A sentence for a status the carrier sent without a readable error body.
pub(crate) fn bare_status_reason(status: StatusCode) -> String {
    if status == StatusCode::TOO_MANY_REQUESTS {
        "The carrier asked us to slow down (HTTP 429).".to_owned()
    } else if status.is_server_error() {
        format!(
            "The carrier had a temporary problem (HTTP {}).",
            status.as_u16()
        )
    } else {
        format!("The carrier refused the text (HTTP {}).", status.as_u16())
    }
}

/// Downloads `url` within `limit` bytes, following redirects by hand.
/// `credentials` says, per URL, whether to send Basic auth there; it is
/// asked again after each redirect so a CDN never sees them.
pub(crate) async fn fetch_media<'c>(
    client: &reqwest::Client,
    url: &str,
    limit: usize,
    credentials: impl Fn(&Url) -> Option<(&'c str, &'c str)>,
) -> Result<FetchedMedia, MediaFetchError> {
    let mut url = Url::parse(url).map_err(|_| MediaFetchError::BadUrl)?;
    let mut redirects = 0;
    let mut response = loop {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(MediaFetchError::BadUrl);
        }
        let mut request = client.get(url.clone());
        if let Some((user, password)) = credentials(&url) {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(media_transport)?;
        if !response.status().is_redirection() {
            break response;
        }
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Err(MediaFetchError::TooManyRedirects { max: MAX_REDIRECTS });
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or(MediaFetchError::Status {
                status: response.status().as_u16(),
            })?;
        url = url.join(location).map_err(|_| MediaFetchError::BadUrl)?;
    };
    let status = response.status();
    if !status.is_success() {
        return Err(MediaFetchError::Status {
            status: status.as_u16(),
        });
    }
    let too_large = MediaFetchError::TooLarge { limit };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large);
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Vec::new();
    // A body without Content-Length (or a lying one) is read chunk by chunk
    // and abandoned as soon as it passes the limit.
    while let Some(chunk) = response.chunk().await.map_err(media_transport)? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(FetchedMedia {
        bytes,
        content_type,
    })
}

fn media_transport(error: reqwest::Error) -> MediaFetchError {
    let reason = if error.is_timeout() {
        "the server did not answer in time"
    } else if error.is_connect() {
        "the server could not be reached"
    } else {
        "the connection broke"
    };
    MediaFetchError::Transport {
        reason: reason.to_owned(),
    }
}

/// Whether two URLs share scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_takes_seconds_or_a_date_relative_to_the_response() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Fri, 04 Dec 2026 17:02:00 GMT"),
        );
        headers.insert(
            DATE,
            HeaderValue::from_static("Fri, 04 Dec 2026 17:00:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        // A date already past means "now".
        headers.insert(
            DATE,
            HeaderValue::from_static("Fri, 04 Dec 2026 18:00:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn base_urls_must_be_http_and_keep_their_path() {
        let base = base_url("http://127.0.0.1:9/prefix/").expect("a base URL");
        assert_eq!(
            join(&base, "/v2/messages").as_str(),
            "http://127.0.0.1:9/prefix/v2/messages"
        );
        assert!(base_url("ftp://example.com").is_err());
        assert!(base_url("not a url").is_err());
        let https = base_url("https://api.twilio.com");
        if cfg!(feature = "tls") {
            assert!(https.is_ok());
        } else {
            assert!(matches!(https, Err(ConfigError::NoTls(_))));
        }
    }
}
