//! Twilio and Twilio-compatible Messages APIs.
//!
//! - [`Client`] sends texts with a form-encoded `POST
//!   {base}/2010-04-01/Accounts/{AccountSid}/Messages.json` under Basic auth
//!   (account SID + auth token, or API key SID + secret). Twilio has no
//!   idempotency key on create, so a retry after an ambiguous failure may
//!   send a second text.
//! - [`parse_inbound`] and [`parse_status`] read the form-encoded webhooks
//!   for an incoming text and for a delivery status.
//! - [`verify`] checks `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with
//!   the auth token, over the full URL Twilio called followed by each form
//!   field's name and value, fields sorted by name (and a repeated field's
//!   values sorted). Twilio signs the URL as configured in its console, so
//!   the server checks against its public URL, with and without the scheme's
//!   default port, as Twilio's own validators do.

mod api;
mod webhook;

pub use api::{Client, Config, DEFAULT_BASE_URL};
pub use webhook::{parse_inbound, parse_status};

use crate::SignatureError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The signature Twilio sends for a form-encoded webhook to `url`.
pub fn signature(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    STANDARD.encode(mac_over(auth_token, url, fields).finalize().into_bytes())
}

fn mac_over(auth_token: &str, url: &str, fields: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Checks a form-encoded webhook's signature against the URL it was sent
/// to, in constant time.
pub fn verify(
    auth_token: &str,
    url: &str,
    fields: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let given = header.ok_or(SignatureError::Missing)?;
    let given = STANDARD
        .decode(given.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let matches = |candidate: &str| {
        mac_over(auth_token, candidate, fields)
            .verify_slice(&given)
            .is_ok()
    };
    if url_variants(url).iter().any(|u| matches(u)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The URL as given, and with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let with_port = format!(":{port}");
    // An IPv6 host is bracketed; only a colon after the bracket is a port.
    let has_port = match hostport.rfind(']') {
        Some(end) => hostport[end..].contains(':'),
        None => hostport.contains(':'),
    };
    if let Some(host) = hostport.strip_suffix(&with_port) {
        variants.push(format!("{scheme}://{userinfo}{host}{path}"));
    } else if !has_port {
        variants.push(format!("{scheme}://{userinfo}{hostport}{with_port}{path}"));
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(String, String)> {
        [
            ("To", "+14155550100"),
            ("From", "+14155552671"),
            ("Body", "Hello there"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    const URL: &str = "https://pbx.example.com/webhooks/twilio/3/messages";

    #[test]
    fn a_signature_made_over_the_same_url_and_fields_verifies() {
        let sig = signature("token", URL, &fields());
        assert_eq!(verify("token", URL, &fields(), Some(&sig)), Ok(()));
        let mut shuffled = fields();
        shuffled.reverse();
        assert_eq!(verify("token", URL, &shuffled, Some(&sig)), Ok(()));
    }

    #[test]
    fn a_tampered_url_field_token_or_signature_is_refused() {
        let sig = signature("token", URL, &fields());
        let other_url = "https://pbx.example.com/webhooks/twilio/4/messages";
        assert_eq!(
            verify("token", other_url, &fields(), Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = fields();
        tampered[2].1.push('!');
        assert_eq!(
            verify("token", URL, &tampered, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other token", URL, &fields(), Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("token", URL, &fields(), Some("not base64!")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("token", URL, &fields(), None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn the_default_port_may_be_given_or_left_out() {
        let with_port = "https://pbx.example.com:443/webhooks/twilio/3/messages";
        let sig = signature("token", with_port, &fields());
        assert_eq!(verify("token", URL, &fields(), Some(&sig)), Ok(()));
        let sig = signature("token", URL, &fields());
        assert_eq!(verify("token", with_port, &fields(), Some(&sig)), Ok(()));
    }
}
