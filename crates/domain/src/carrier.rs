//! The kinds of carrier a business number can be served by.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    /// A Twilio-compatible Messages API with `X-Twilio-Signature` webhooks.
    Twilio,
    /// Telnyx API v2 with Ed25519-signed webhooks.
    Telnyx,
    /// The built-in simulator: a customer's phone in a browser page.
    Simulator,
}

impl CarrierKind {
    pub const ALL: [Self; 3] = [Self::Twilio, Self::Telnyx, Self::Simulator];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Telnyx => "telnyx",
            Self::Simulator => "simulator",
        }
    }

    pub fn parse(s: &str) -> Result<Self, crate::InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                crate::InvalidValue::new("kind", "must be \"twilio\", \"telnyx\" or \"simulator\"")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names_in_any_case() {
        for kind in CarrierKind::ALL {
            assert_eq!(CarrierKind::parse(kind.as_str()), Ok(kind));
            assert_eq!(CarrierKind::parse(&kind.as_str().to_uppercase()), Ok(kind));
        }
        assert!(CarrierKind::parse("bandwidth").is_err());
    }
}
