//! Sessions as the rest of the system may name them.
//!
//! A session's token is a credential and never leaves the server that issued
//! it. Events that end sessions travel on the bus to every node and are kept
//! in the event log, so they name a session by a tag instead: enough to pick
//! out one session, useless for signing in.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Names one session without being a credential: the first 16 bytes of the
/// SHA-256 of its token (the store derives it from its token hash).
/// Serialized as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTag([u8; 16]);

impl SessionTag {
    pub const fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(32);
        for b in self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        out
    }

    /// Parses the 32 hex digits of [`Self::to_hex`] (either case).
    pub fn parse_hex(s: &str) -> Option<Self> {
        let digits = s.as_bytes();
        if digits.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            *byte = u8::try_from(hi << 4 | lo).ok()?;
        }
        Some(Self(bytes))
    }
}

/// Shows the first bytes only: enough to tell tags apart in a log.
impl fmt::Debug for SessionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "SessionTag({}…)", &hex[..8])
    }
}

impl Serialize for SessionTag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SessionTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("a session tag is 32 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_tag_is_written_as_hex_and_debugged_in_part() {
        let tag = SessionTag::new([0xab; 16]);
        assert_eq!(tag.to_hex(), "ab".repeat(16));
        assert_eq!(
            serde_json::to_string(&tag).expect("json"),
            format!("\"{}\"", "ab".repeat(16))
        );
        assert_eq!(format!("{tag:?}"), "SessionTag(abababab…)");
    }

    #[test]
    fn only_32_hex_digits_are_a_tag() {
        for bad in [
            "",
            "ab",
            &"zz".repeat(16),
            &"ab".repeat(17),
            &"é".repeat(16),
        ] {
            assert_eq!(SessionTag::parse_hex(bad), None, "{bad:?}");
        }
        assert_eq!(
            SessionTag::parse_hex(&"AB".repeat(16)),
            Some(SessionTag::new([0xab; 16]))
        );
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::array::uniform16(any::<u8>())) {
            let tag = SessionTag::new(bytes);
            prop_assert_eq!(SessionTag::parse_hex(&tag.to_hex()), Some(tag));
            let json = serde_json::to_string(&tag).expect("json");
            prop_assert_eq!(serde_json::from_str::<SessionTag>(&json).expect("parse"), tag);
        }
    }
}
