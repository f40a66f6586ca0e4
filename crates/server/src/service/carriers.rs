//! Carrier connections and business numbers, as administrators manage them
//! from the portal, the API and the command line.
//!
//! A connection's credentials are sealed (`secrets`) before they are
//! stored and are never shown back: what may be shown (account id, public
//! key, base URL, the last characters of the secret) travels in its
//! settings.

use super::{ServiceError, ServiceResult};
use crate::secrets::{Sealer, hint};
use serde::{Deserialize, Serialize};
use switchboard_domain::phone::E164;
use switchboard_domain::{CarrierKind, ConnectionId, ExtensionId, InvalidValue, NumberId, OrgId};
use switchboard_store::{
    BusinessNumber, CarrierConnection, NewConnection, NewNumber, NumberUpdate, Store,
};

/// Longest connection name, in characters.
const MAX_CONNECTION_NAME: usize = 60;

/// What may be shown of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The last characters of the secret, so an administrator can tell
    /// which one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hint: Option<String>,
}

/// A connection as administrators see it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub kind: CarrierKind,
    pub name: String,
    #[serde(flatten)]
    pub settings: Settings,
    /// The URLs to paste into the carrier's console.
    pub webhook_urls: Vec<String>,
}

/// A connection as an administrator fills it in, not yet validated.
#[derive(Debug, Default)]
pub struct ConnectionDraft<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub account_sid: Option<&'a str>,
    /// Twilio's auth token (or API key secret), Telnyx's API key.
    pub secret: Option<&'a str>,
    pub public_key: Option<&'a str>,
    pub base_url: Option<&'a str>,
}

/// The webhook URLs of connection `id`, under the server's public URL.
pub fn webhook_urls(public_url: &str, kind: CarrierKind, id: ConnectionId) -> Vec<String> {
    let base = public_url.trim_end_matches('/');
    match kind {
        CarrierKind::Twilio => vec![
            format!("{base}/webhooks/twilio/{id}/messages"),
            format!("{base}/webhooks/twilio/{id}/status"),
        ],
        CarrierKind::Telnyx => vec![format!("{base}/webhooks/telnyx/{id}")],
        CarrierKind::Simulator => Vec::new(),
    }
}

pub fn view(connection: &CarrierConnection, public_url: &str) -> ConnectionView {
    let settings = serde_json::from_str(&connection.settings).unwrap_or_default();
    ConnectionView {
        id: connection.id,
        kind: connection.kind,
        name: connection.name.clone(),
        settings,
        webhook_urls: webhook_urls(public_url, connection.kind, connection.id),
    }
}

fn required<'a>(value: Option<&'a str>, field: &'static str, why: &str) -> ServiceResult<&'a str> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(InvalidValue::new(field, format!("is required {why}")).into()),
    }
}

fn base_url(value: Option<&str>) -> ServiceResult<Option<String>> {
    let Some(url) = value.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 300 {
        return Err(InvalidValue::new("base_url", "must be an http(s) URL").into());
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

/// Validates a connection, seals its secret and stores it.
pub async fn add_connection(
    store: &dyn Store,
    sealer: &Sealer,
    org: OrgId,
    draft: ConnectionDraft<'_>,
) -> ServiceResult<CarrierConnection> {
    let kind = CarrierKind::parse(draft.kind)?;
    let name = draft.name.trim();
    if name.is_empty() || name.chars().count() > MAX_CONNECTION_NAME {
        return Err(InvalidValue::new("name", "must be 1 to 60 characters").into());
    }
    let mut settings = Settings {
        base_url: base_url(draft.base_url)?,
        ..Settings::default()
    };
    let secret = match kind {
        CarrierKind::Twilio => {
            let sid = required(draft.account_sid, "account_sid", "for a Twilio connection")?;
            if !sid.starts_with("AC") || sid.len() > 64 {
                return Err(
                    InvalidValue::new("account_sid", "must be an account SID (AC…)").into(),
                );
            }
            settings.account_sid = Some(sid.to_owned());
            Some(required(draft.secret, "secret", "(the auth token)")?)
        }
        CarrierKind::Telnyx => {
            let key = required(draft.public_key, "public_key", "to check Telnyx's webhooks")?;
            switchboard_carriers::telnyx::PublicKey::parse(key).map_err(|_| {
                InvalidValue::new(
                    "public_key",
                    "must be the base64 Ed25519 key from Telnyx's portal",
                )
            })?;
            settings.public_key = Some(key.to_owned());
            Some(required(draft.secret, "secret", "(the API key)")?)
        }
        CarrierKind::Simulator => None,
    };
    let sealed_secret = match secret {
        Some(secret) => {
            settings.secret_hint = Some(hint(secret));
            sealer.seal(secret.as_bytes()).map_err(|e| {
                tracing::error!(error = %e, "cannot seal a carrier secret");
                ServiceError::Internal
            })?
        }
        None => Vec::new(),
    };
    let settings = serde_json::to_string(&settings).map_err(|e| {
        tracing::error!(error = %e, "cannot encode carrier settings");
        ServiceError::Internal
    })?;
    Ok(store
        .add_connection(NewConnection {
            org,
            kind,
            name: name.to_owned(),
            settings,
            sealed_secret,
        })
        .await?)
}

/// Adds a business number, given in E.164 form.
pub async fn add_number(
    store: &dyn Store,
    org: OrgId,
    number: &str,
    sms_enabled: bool,
    connection: Option<ConnectionId>,
) -> ServiceResult<BusinessNumber> {
    let number = E164::parse_strict(number.trim())?;
    Ok(store
        .add_number(NewNumber {
            org,
            number,
            sms_enabled,
            connection,
        })
        .await?)
}

pub async fn update_number(
    store: &dyn Store,
    org: OrgId,
    id: NumberId,
    update: NumberUpdate,
) -> ServiceResult<BusinessNumber> {
    Ok(store.update_number(org, id, update).await?)
}

/// Lets an extension text from a number, or takes the number away.
pub async fn set_assignment(
    store: &dyn Store,
    org: OrgId,
    number: NumberId,
    extension: ExtensionId,
    assigned: bool,
) -> ServiceResult<()> {
    if assigned {
        store.assign_number(org, number, extension).await?;
    } else {
        store.unassign_number(org, number, extension).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_the_documented_paths_under_the_public_url() {
        assert_eq!(
            webhook_urls(
                "https://pbx.example.com/",
                CarrierKind::Twilio,
                ConnectionId(4)
            ),
            [
                "https://pbx.example.com/webhooks/twilio/4/messages",
                "https://pbx.example.com/webhooks/twilio/4/status"
            ]
        );
        assert_eq!(
            webhook_urls(
                "https://pbx.example.com",
                CarrierKind::Telnyx,
                ConnectionId(9)
            ),
            ["https://pbx.example.com/webhooks/telnyx/9"]
        );
        assert!(webhook_urls("https://x", CarrierKind::Simulator, ConnectionId(1)).is_empty());
    }
}
