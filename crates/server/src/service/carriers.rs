//! Carrier connections and business numbers, as administrators manage them
//! from the portal, the API and the command line.
//!
//! A connection's credentials are sealed (`secrets`) before they are
//! stored and are never shown back: what may be shown (account id, API key
//! SID, public key, base URL, the last characters of each secret) travels
//! in its settings.
//!
//! How the credentials are sealed ([`Credentials`]): a connection with one
//! secret (Twilio's auth token alone, Telnyx's API key) seals that secret's
//! bytes as they are, as connections always have; a Twilio connection that
//! also has an API key seals a JSON object `{"secret": auth token,
//! "api_key_secret": …}`. An auth token or API key never starts with `{`,
//! so both forms open without a version mark and older rows stay readable.
//! The auth token is always kept: Twilio signs its webhooks with it, even
//! when the API is called with an API key.
use super::{ServiceError, ServiceResult};
use crate::config::PublicUrl;
use crate::secrets::{Sealer, hint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_domain::phone::{Country, E164};
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
    /// Twilio's API key SID (SK…), when the API is called with an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The last characters of the secret, so an administrator can tell
    /// which one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hint: Option<String>,
    /// The last characters of the API key's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_hint: Option<String>,
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
#[derive(Default)]
pub struct ConnectionDraft<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub account_sid: Option<&'a str>,
    /// Twilio's API key SID (SK…), to call the API with an API key.
    pub api_key_sid: Option<&'a str>,
    /// Twilio's auth token, Telnyx's API key.
    pub secret: Option<&'a str>,
    /// The secret of Twilio's API key.
    pub api_key_secret: Option<&'a str>,
    pub public_key: Option<&'a str>,
    pub base_url: Option<&'a str>,
}

/// A connection's credentials, opened.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Twilio's auth token (which signs its webhooks), Telnyx's API key;
    /// empty for the simulator.
    pub secret: String,
    /// The secret of Twilio's API key, when the connection has one (its SID
    /// is in the settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

impl Credentials {
    /// The bytes to seal: the secret alone when it is the only one (the
    /// form every connection had before API keys), else the JSON object;
    /// also when a lone secret starts with `{`, so it cannot be misread.
    fn to_plaintext(&self) -> ServiceResult<Vec<u8>> {
        if self.api_key_secret.is_none() && !self.secret.starts_with('{') {
            return Ok(self.secret.as_bytes().to_vec());
        }
        serde_json::to_vec(self).map_err(|e| {
            tracing::error!(error = %e, "cannot encode carrier credentials");
            ServiceError::Internal
        })
    }

    fn from_plaintext(plain: &[u8]) -> Option<Self> {
        if plain.first() == Some(&b'{') {
            return serde_json::from_slice(plain).ok();
        }
        Some(Self {
            secret: String::from_utf8(plain.to_vec()).ok()?,
            api_key_secret: None,
        })
    }

    /// Opens a connection's sealed credentials (empty for the simulator).
    pub fn open(sealer: &Sealer, connection: &CarrierConnection) -> ServiceResult<Self> {
        if connection.sealed_secret.is_empty() {
            return Ok(Self {
                secret: String::new(),
                api_key_secret: None,
            });
        }
        let plain = sealer.open(&connection.sealed_secret).map_err(|e| {
            tracing::error!(connection = %connection.id, error = %e, "cannot open carrier credentials");
            ServiceError::Internal
        })?;
        Self::from_plaintext(&plain).ok_or_else(|| {
            tracing::error!(connection = %connection.id, "carrier credentials are not well formed");
            ServiceError::Internal
        })
    }
}

/// The webhook URLs of connection `id`, under the server's public URL.
pub fn webhook_urls(public_url: &PublicUrl, kind: CarrierKind, id: ConnectionId) -> Vec<String> {
    let base = public_url.as_str();
    match kind {
        CarrierKind::Twilio => vec![
            format!("{base}/webhooks/twilio/{id}/messages"),
            format!("{base}/webhooks/twilio/{id}/status"),
        ],
        CarrierKind::Telnyx => vec![format!("{base}/webhooks/telnyx/{id}")],
        CarrierKind::Simulator => Vec::new(),
    }
}

pub fn view(connection: &CarrierConnection, public_url: &PublicUrl) -> ConnectionView {
    let settings = serde_json::from_str(&connection.settings).unwrap_or_default();
    ConnectionView {
        id: connection.id,
        kind: connection.kind,
        name: connection.name.clone(),
        settings,
        webhook_urls: webhook_urls(public_url, connection.kind, connection.id),
    }
}

fn required<'a>(
    value: Option<&'a str>,
    field: &'static str,
    why: &str,
) -> Result<&'a str, InvalidValue> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(InvalidValue::new(field, format!("is required {why}"))),
    }
}

fn base_url(value: Option<&str>) -> Result<Option<String>, InvalidValue> {
    let Some(url) = value.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 300 {
        return Err(InvalidValue::new("base_url", "must be an http(s) URL"));
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

impl std::fmt::Debug for ConnectionDraft<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionDraft")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .field("public_key", &self.public_key)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// A connection checked and ready to be sealed and stored: what may be
/// shown (with the hints of its secrets) and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidConnection {
    pub kind: CarrierKind,
    pub name: String,
    pub settings: Settings,
    /// None for the simulator.
    pub credentials: Option<Credentials>,
}

impl ConnectionDraft<'_> {
    /// Checks what the kind needs: Twilio an account SID and the auth token
    /// (an API key SID and its secret only together), Telnyx its API key
    /// and webhook public key; fields a kind does not use are ignored.
    pub fn validate(&self) -> Result<ValidConnection, InvalidValue> {
        let kind = CarrierKind::parse(self.kind)?;
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_CONNECTION_NAME {
            return Err(InvalidValue::new("name", "must be 1 to 60 characters"));
        }
        let mut settings = Settings {
            base_url: base_url(self.base_url)?,
            ..Settings::default()
        };
        let credentials = match kind {
            CarrierKind::Twilio => {
                let sid = required(self.account_sid, "account_sid", "for a Twilio connection")?;
                if !sid.starts_with("AC") || sid.len() > 64 {
                    return Err(InvalidValue::new(
                        "account_sid",
                        "must be an account SID (AC…)",
                    ));
                }
                settings.account_sid = Some(sid.to_owned());
                let secret = required(
                    self.secret,
                    "secret",
                    "(the auth token: Twilio signs its webhooks with it)",
                )?;
                let key_sid = self.api_key_sid.map(str::trim).filter(|k| !k.is_empty());
                let api_key_secret = match key_sid {
                    Some(key) => {
                        if !key.starts_with("SK") || key.len() > 64 {
                            return Err(InvalidValue::new(
                                "api_key_sid",
                                "must be an API key SID (SK…)",
                            ));
                        }
                        let key_secret =
                            required(self.api_key_secret, "api_key_secret", "with an API key SID")?;
                        settings.api_key_sid = Some(key.to_owned());
                        settings.api_key_secret_hint = Some(hint(key_secret));
                        Some(key_secret.to_owned())
                    }
                    None if self.api_key_secret.is_some_and(|s| !s.trim().is_empty()) => {
                        return Err(InvalidValue::new(
                            "api_key_sid",
                            "is required with an API key secret",
                        ));
                    }
                    None => None,
                };
                Some(Credentials {
                    secret: secret.to_owned(),
                    api_key_secret,
                })
            }
            CarrierKind::Telnyx => {
                let key = required(self.public_key, "public_key", "to check Telnyx's webhooks")?;
                switchboard_carriers::telnyx::PublicKey::parse(key).map_err(|_| {
                    InvalidValue::new(
                        "public_key",
                        "must be the base64 Ed25519 key from Telnyx's portal",
                    )
                })?;
                settings.public_key = Some(key.to_owned());
                Some(Credentials {
                    secret: required(self.secret, "secret", "(the API key)")?.to_owned(),
                    api_key_secret: None,
                })
            }
            CarrierKind::Simulator => None,
        };
        if let Some(credentials) = &credentials {
            settings.secret_hint = Some(hint(&credentials.secret));
        }
        Ok(ValidConnection {
            kind,
            name: name.to_owned(),
            settings,
            credentials,
        })
    }
}

/// Validates a connection, seals its secret and stores it.
pub async fn add_connection(
    store: &dyn Store,
    sealer: &Sealer,
    org: OrgId,
    draft: ConnectionDraft<'_>,
) -> ServiceResult<CarrierConnection> {
    let valid = draft.validate()?;
    let sealed_secret = match &valid.credentials {
        Some(credentials) => sealer.seal(&credentials.to_plaintext()?).map_err(|e| {
            tracing::error!(error = %e, "cannot seal a carrier secret");
            ServiceError::Internal
        })?,
        None => Vec::new(),
    };
    let settings = serde_json::to_string(&valid.settings).map_err(|e| {
        tracing::error!(error = %e, "cannot encode carrier settings");
        ServiceError::Internal
    })?;
    Ok(store
        .add_connection(NewConnection {
            org,
            kind: valid.kind,
            name: valid.name,
            settings,
            sealed_secret,
        })
        .await?)
}

/// Reads a business number as an administrator typed it: in E.164 form,
/// or as dialled in the organization's country.
pub fn parse_number(input: &str, home: Country) -> Result<E164, InvalidValue> {
    E164::parse(input, home).map_err(|_| {
        InvalidValue::new(
            "number",
            format!(
                "is not a valid phone number: type it as dialled in {home} or in E.164 form, \
                 + then the country code and number (e.g. +14155550100)"
            ),
        )
    })
}

/// Adds a business number, typed in E.164 form or as dialled in `home`.
pub async fn add_number(
    store: &dyn Store,
    org: OrgId,
    home: Country,
    number: &str,
    sms_enabled: bool,
    connection: Option<ConnectionId>,
) -> ServiceResult<BusinessNumber> {
    let number = parse_number(number, home)?;
    Ok(store
        .add_number(NewNumber {
            org,
            number,
            sms_enabled,
            connection,
        })
        .await?)
}

/// A business number as administrators see it: shown in the
/// organization's form, with the extensions that text from it.
#[derive(Debug, Clone, Serialize)]
pub struct NumberView {
    #[serde(flatten)]
    pub number: BusinessNumber,
    /// The number as people of the organization's country write it.
    pub display: String,
    pub extension_ids: Vec<ExtensionId>,
}

/// Every business number of the organization, by number.
pub async fn number_views(
    store: &dyn Store,
    org: OrgId,
    home: Country,
) -> ServiceResult<Vec<NumberView>> {
    let numbers = store.numbers(org).await?;
    let mut assigned: BTreeMap<NumberId, Vec<ExtensionId>> = BTreeMap::new();
    for a in store.assignments(org).await? {
        assigned.entry(a.number).or_default().push(a.extension);
    }
    Ok(numbers
        .into_iter()
        .map(|number| NumberView {
            display: number.number.display(home),
            extension_ids: assigned.remove(&number.id).unwrap_or_default(),
            number,
        })
        .collect())
}

/// One business number of the organization, as administrators see it.
pub async fn number_view(
    store: &dyn Store,
    org: OrgId,
    home: Country,
    id: NumberId,
) -> ServiceResult<NumberView> {
    number_views(store, org, home)
        .await?
        .into_iter()
        .find(|n| n.number.id == id)
        .ok_or(ServiceError::Store(
            switchboard_store::StoreError::NotFound("business number"),
        ))
}

/// A number an extension may text from, as it sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OwnNumberView {
    pub id: NumberId,
    pub number: E164,
    pub display: String,
    pub sms_enabled: bool,
    /// New texts go out from this one unless another is picked.
    pub default: bool,
}

/// The numbers an extension may text from, by number.
pub async fn own_numbers(
    store: &dyn Store,
    extension: ExtensionId,
    home: Country,
) -> ServiceResult<Vec<OwnNumberView>> {
    Ok(store
        .numbers_of(extension)
        .await?
        .into_iter()
        .map(|own| OwnNumberView {
            id: own.number.id,
            display: own.number.number.display(home),
            number: own.number.number,
            sms_enabled: own.number.sms_enabled,
            default: own.default,
        })
        .collect())
}

/// An extension picks the number its new texts go out from.
pub async fn set_default_number(
    store: &dyn Store,
    extension: ExtensionId,
    number: NumberId,
) -> ServiceResult<()> {
    match store.set_default_number(extension, number).await {
        Err(switchboard_store::StoreError::NotFound(_)) => Err(ServiceError::Store(
            switchboard_store::StoreError::NotFound("SMS-enabled number of yours"),
        )),
        other => Ok(other?),
    }
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

    fn url(s: &str) -> PublicUrl {
        s.parse().expect("a public URL")
    }

    #[test]
    fn webhook_urls_are_the_documented_paths_under_the_public_url() {
        assert_eq!(
            webhook_urls(
                &url("https://pbx.example.com/"),
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
                &url("https://pbx.example.com"),
                CarrierKind::Telnyx,
                ConnectionId(9)
            ),
            ["https://pbx.example.com/webhooks/telnyx/9"]
        );
        assert!(
            webhook_urls(&url("https://x"), CarrierKind::Simulator, ConnectionId(1)).is_empty()
        );
    }

    fn sealer() -> Sealer {
        Sealer::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("a key")
    }

    fn sealed(sealer: &Sealer, plain: &[u8]) -> CarrierConnection {
        CarrierConnection {
            id: ConnectionId(1),
            org_id: OrgId(1),
            kind: CarrierKind::Twilio,
            name: "main".into(),
            settings: "{}".into(),
            sealed_secret: sealer.seal(plain).expect("seal"),
        }
    }

    #[test]
    fn credentials_sealed_before_api_keys_still_open() {
        let sealer = sealer();
        let legacy = sealed(&sealer, b"0123456789abcdef0123456789abcdef");
        let opened = Credentials::open(&sealer, &legacy).expect("open");
        assert_eq!(opened.secret, "0123456789abcdef0123456789abcdef");
        assert_eq!(opened.api_key_secret, None);

        let one = Credentials {
            secret: "auth-token".into(),
            api_key_secret: None,
        };
        assert_eq!(
            one.to_plaintext().expect("plain"),
            b"auth-token",
            "a lone secret is sealed as it always was"
        );
        let both = Credentials {
            secret: "auth-token".into(),
            api_key_secret: Some("key-secret".into()),
        };
        let connection = sealed(&sealer, &both.to_plaintext().expect("plain"));
        assert_eq!(Credentials::open(&sealer, &connection).expect("open"), both);
        assert!(!format!("{both:?}").contains("auth-token"));

        let simulator = CarrierConnection {
            sealed_secret: Vec::new(),
            ..legacy
        };
        assert_eq!(
            Credentials::open(&sealer, &simulator).expect("open").secret,
            ""
        );
    }

    #[test]
    fn a_number_is_read_with_the_home_country_or_refused_naming_the_field() {
        let us = Country::US;
        let gb = Country::parse("GB").expect("GB");
        assert_eq!(
            parse_number("(415) 555-2671", us).expect("local").as_str(),
            "+14155552671"
        );
        assert_eq!(
            parse_number("020 7946 0958", gb).expect("local").as_str(),
            "+442079460958"
        );
        let refused = parse_number("555", us).expect_err("too short");
        assert_eq!(refused.field, "number");
        assert!(
            refused.reason.contains("+14155550100"),
            "{}",
            refused.reason
        );
    }
}
