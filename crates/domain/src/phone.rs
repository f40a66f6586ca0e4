//! Phone numbers outside the phone system: stored and compared as E.164,
//! typed by people in whatever local format they use, shown formatted for
//! the organization's country. Parsing and validity follow libphonenumber's
//! metadata (the `phonenumber` crate), not rules of our own.

use crate::InvalidValue;
use phonenumber::Mode;
use phonenumber::country::Id;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A country, as the ISO 3166 two-letter code an organization's numbers
/// default to when typed without `+`. Only the countries libphonenumber's
/// metadata knows are countries here, so every one of them can parse and
/// format numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(Id);

impl Default for Country {
    /// The country of a new organization.
    fn default() -> Self {
        Self::US
    }
}

impl Country {
    pub const US: Self = Self(Id::US);

    /// Every country there is to choose from, by code. The metadata has no
    /// list of its own, so every pair of capital letters is tried once.
    pub fn all() -> Vec<Self> {
        let mut all = Vec::new();
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                let code = [first, second];
                if let Ok(code) = std::str::from_utf8(&code)
                    && let Ok(id) = Id::from_str(code)
                {
                    all.push(Self(id));
                }
            }
        }
        all
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Id::from_str(&code.trim().to_ascii_uppercase())
            .map(Self)
            .map_err(|_| {
                InvalidValue::new(
                    "country",
                    "must be a two-letter ISO 3166 country code such as US or GB",
                )
            })
    }

    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.reason))
    }
}

/// A valid phone number in E.164 form (`+` and up to 15 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// A number as someone typed it: international (`+44 20 …`, `0044 …`) or
    /// local to `home` (`(415) 555-0100`). Refused when it cannot be a
    /// number in service anywhere.
    pub fn parse(input: &str, home: Country) -> Result<Self, InvalidValue> {
        let invalid = || {
            InvalidValue::new(
                "phone_number",
                "is not a valid phone number; include the country code (+…) for numbers abroad",
            )
        };
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 40 {
            return Err(invalid());
        }
        let number = phonenumber::parse(Some(home.0), trimmed).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        // What is stored must read back as the same valid number, typed
        // again here or given in E.164: stray punctuation can make the
        // lenient reading find a number that its own E.164 form is not.
        let e164 = number.format().mode(Mode::E164).to_string();
        let again = phonenumber::parse(Some(home.0), &e164)
            .ok()
            .filter(phonenumber::is_valid)
            .map(|n| n.format().mode(Mode::E164).to_string());
        if again.as_deref() != Some(e164.as_str()) {
            return Err(invalid());
        }
        Self::parse_strict(&e164).map_err(|_| invalid())
    }

    /// A number already in E.164 form (from the database, a carrier's
    /// webhook or the API): `+` and digits, valid for its country.
    pub fn parse_strict(input: &str) -> Result<Self, InvalidValue> {
        let invalid = || {
            InvalidValue::new(
                "phone_number",
                "must be in E.164 form: + then the country code and number, digits only",
            )
        };
        let digits = input.strip_prefix('+').ok_or_else(invalid)?;
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let number = phonenumber::parse(None, input).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as people of `home` write it: national form for a number
    /// of that country, international form otherwise.
    pub fn display(&self, home: Country) -> String {
        let Ok(number) = phonenumber::parse(None, &self.0) else {
            return self.0.clone();
        };
        let mode = if number.country().id() == Some(home.0) {
            Mode::National
        } else {
            Mode::International
        };
        number.format().mode(mode).to_string()
    }

    /// The last digits only, for logs: a full number is personal data.
    pub fn redacted(&self) -> String {
        let tail: String = self.0.chars().rev().take(2).collect();
        format!("…{}", tail.chars().rev().collect::<String>())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_strict(&s).map_err(|e| serde::de::Error::custom(e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Country {
        Country::parse("us").expect("a country")
    }

    #[test]
    fn local_formats_normalize_to_e164_with_the_home_country() {
        for typed in [
            "(415) 555-2671",
            "415.555.2671",
            "4155552671",
            "+1 415 555 2671",
            "1-415-555-2671",
        ] {
            assert_eq!(
                E164::parse(typed, us()).expect(typed).as_str(),
                "+14155552671",
                "{typed}"
            );
        }
        let gb = Country::parse("GB").expect("a country");
        assert_eq!(
            E164::parse("020 7946 0958", gb).expect("London").as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("+44 20 7946 0958", us())
                .expect("abroad")
                .as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn numbers_that_cannot_be_valid_are_refused_with_a_reason() {
        for typed in [
            "",
            "   ",
            "12",
            "555-0100-555-0100-555",
            "hello",
            "+1 000 000 0000",
            "+78)515 252671",
            ",+46) 1111111155~-2671",
        ] {
            let err = E164::parse(typed, us()).expect_err(typed);
            assert_eq!(err.field, "phone_number");
        }
    }

    #[test]
    fn strict_parsing_takes_only_e164() {
        assert!(E164::parse_strict("+14155552671").is_ok());
        for bad in [
            "14155552671",
            "+1 415 555 2671",
            "+",
            "+1415555267100000",
            "+1000",
        ] {
            assert!(E164::parse_strict(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_show_nationally_at_home_and_internationally_abroad() {
        let n = E164::parse_strict("+14155552671").expect("valid");
        assert_eq!(n.display(us()), "(415) 555-2671");
        let gb = Country::parse("GB").expect("a country");
        assert_eq!(n.display(gb), "+1 415-555-2671");
        assert_eq!(n.redacted(), "…71");
    }

    #[test]
    fn unknown_countries_are_refused() {
        for bad in ["XX", "", "U", "USA", "001", "u s"] {
            let err = Country::parse(bad).expect_err(bad);
            assert_eq!(err.field, "country", "{bad:?}");
        }
        assert_eq!(us().code(), "US");
        assert_eq!(Country::default(), us());
    }

    #[test]
    fn every_listed_country_parses_back_and_formats_numbers() {
        let all = Country::all();
        assert!(all.len() > 200, "{} countries", all.len());
        assert!(all.windows(2).all(|w| w[0].code() < w[1].code()), "by code");
        for country in &all {
            assert_eq!(Country::parse(country.code()).as_ref(), Ok(country));
            assert_eq!(country.code().len(), 2, "{country}");
        }
        for code in ["US", "GB", "FR", "DE", "CA", "AU", "JP"] {
            assert!(all.iter().any(|c| c.code() == code), "{code}");
        }
        let round = serde_json::to_string(&Country::parse("gb").expect("GB")).expect("json");
        assert_eq!(round, "\"GB\"");
        assert!(serde_json::from_str::<Country>("\"ZZ\"").is_err());
    }

    proptest::proptest! {
        /// What a person may type is taken only as a number that reads
        /// back the same, typed again or given in E.164.
        #[test]
        fn what_is_taken_reads_back_the_same(typed in "[+0-9 ()\\-.,~]{0,24}") {
            if let Ok(number) = E164::parse(&typed, us()) {
                proptest::prop_assert_eq!(E164::parse(number.as_str(), us()), Ok(number.clone()));
                proptest::prop_assert_eq!(E164::parse_strict(number.as_str()), Ok(number));
            }
        }
    }
}
