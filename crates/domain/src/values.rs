//! Validated values. Each is parsed once at the edge; code that holds one
//! knows it is well formed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused, naming the field so the client can say so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Longest message text, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Longest display or conversation name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest idempotency key, in bytes (keys are ASCII).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted; Argon2 would take more, but nobody types this.
pub const MAX_PASSWORD_CHARS: usize = 256;

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_value!(
    /// The short name of an organization used at sign-in: `acme`, `demo-co`.
    OrgSlug
);
string_value!(
    /// An extension number: 1 to 10 digits, e.g. `101`.
    ExtensionNumber
);
string_value!(
    /// A person's display name.
    DisplayName
);
string_value!(
    /// A group's name.
    ConversationName
);
string_value!(
    /// The text of a message a person sends.
    MessageText
);
string_value!(
    /// A client-chosen key that makes a send safe to retry.
    IdempotencyKey
);

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Characters that render as nothing besides white space: zero-width,
/// formatting, filler and selector characters, as inclusive ranges.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian selectors and vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, joiners, direction marks
    ('\u{202A}', '\u{202E}'),   // direction embeddings and overrides
    ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, isolates
    ('\u{2800}', '\u{2800}'),   // Braille pattern blank
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical format controls
    ('\u{E0000}', '\u{E007F}'), // tags
    ('\u{E0100}', '\u{E01EF}'), // variation selectors supplement
];

/// Whether a character leaves no mark of its own: a text made only of such
/// characters looks empty.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace() || INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether text would look empty: nothing in it but invisible characters.
pub fn shows_nothing(s: &str) -> bool {
    s.chars().all(is_invisible)
}

impl OrgSlug {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        let s = input.trim().to_ascii_lowercase();
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if s.is_empty() || s.len() > 63 || !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(InvalidValue::new(
                "organization",
                "must be 1 to 63 letters, digits or inner hyphens",
            ));
        }
        Ok(Self(s))
    }
}

impl ExtensionNumber {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        let s = input.trim();
        if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new("extension", "must be 1 to 10 digits"));
        }
        Ok(Self(s.to_owned()))
    }
}

fn parse_name(field: &'static str, input: &str) -> Result<String, InvalidValue> {
    let s = input.trim();
    if shows_nothing(s) {
        return Err(InvalidValue::new(
            field,
            "must not be empty or only invisible characters",
        ));
    }
    let chars = s.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(InvalidValue::new(
            field,
            format!("is {chars} characters; at most {MAX_NAME_CHARS} are allowed"),
        ));
    }
    if has_control(s) {
        return Err(InvalidValue::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        parse_name("name", input).map(Self)
    }
}

impl ConversationName {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        parse_name("name", input).map(Self)
    }
}

impl MessageText {
    /// Keeps the text as typed (leading spaces and line breaks matter in a
    /// message) but refuses text that shows nothing.
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        if shows_nothing(input) {
            return Err(InvalidValue::new(
                "text",
                "must not be empty or only invisible characters",
            ));
        }
        Self::caption(input)
    }

    /// The text of a message that carries images: it may show nothing (a
    /// picture alone); what it does hold follows the rules of a text.
    pub fn caption(input: &str) -> Result<Self, InvalidValue> {
        if shows_nothing(input) {
            return Ok(Self(String::new()));
        }
        let chars = input.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(InvalidValue::new(
                "text",
                format!("is {chars} characters; at most {MAX_MESSAGE_CHARS} are allowed"),
            ));
        }
        if input
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(InvalidValue::new(
                "text",
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        Ok(Self(input.to_owned()))
    }
}

impl IdempotencyKey {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        if input.is_empty() || input.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(InvalidValue::new(
                "idempotency_key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
            ));
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue::new(
                "idempotency_key",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(input.to_owned()))
    }
}

/// A password as typed. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// A new password being set: it must be long enough to be worth having.
    pub fn parse_new(input: &str) -> Result<Self, InvalidValue> {
        let chars = input.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(InvalidValue::new(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(InvalidValue::new(
                "password",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// A password offered at sign-in: checked against the stored hash, so only
    /// its size is bounded here.
    pub fn parse_attempt(input: &str) -> Result<Self, InvalidValue> {
        if input.is_empty() || input.chars().count() > MAX_PASSWORD_CHARS {
            return Err(InvalidValue::new("password", "is missing or too long"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What an extension may do beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// The role as written by [`Role::as_str`] and nothing else: for
    /// values this system wrote itself (a database column).
    pub fn from_canonical(s: &str) -> Option<Self> {
        [Role::Member, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// A role as a client wrote it, in any case and with spaces around;
    /// decisions are made on the result, never on the spelling.
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        match input.trim().to_ascii_lowercase().as_str() {
            "member" | "" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            _ => Err(InvalidValue::new("role", "must be \"member\" or \"admin\"")),
        }
    }
}

/// The sound played when a message arrives. The files ship with the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertTone {
    Chime,
    Marimba,
    Pop,
    Bell,
}

impl AlertTone {
    pub const ALL: [AlertTone; 4] = [
        AlertTone::Chime,
        AlertTone::Marimba,
        AlertTone::Pop,
        AlertTone::Bell,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertTone::Chime => "chime",
            AlertTone::Marimba => "marimba",
            AlertTone::Pop => "pop",
            AlertTone::Bell => "bell",
        }
    }

    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == input)
            .ok_or_else(|| {
                InvalidValue::new("alert_tone", "must be one of chime, marimba, pop, bell")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn message_text_limits() {
        assert!(MessageText::parse("hi").is_ok());
        assert!(MessageText::parse("  \n ").is_err());
        assert!(MessageText::parse(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        let err = MessageText::parse(&"a".repeat(MAX_MESSAGE_CHARS + 1)).unwrap_err();
        assert_eq!(err.field, "text");
        assert!(err.reason.contains("10000"));
        assert!(MessageText::parse("line one\nline two\ttab").is_ok());
        assert!(MessageText::parse("bell\u{7}").is_err());
    }

    /// Characters that render as nothing, white space among them.
    fn invisible_char() -> impl Strategy<Value = char> {
        proptest::sample::select(vec![
            ' ',
            '\n',
            '\t',
            '\u{A0}',
            '\u{3000}',
            '\u{AD}',
            '\u{34F}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202E}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{2066}',
            '\u{2800}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{FEFF}',
            '\u{E0001}',
            '\u{E0020}',
            '\u{E0100}',
        ])
    }

    #[test]
    fn text_that_shows_nothing_is_refused() {
        for blank in [
            "\u{200B}",
            "\u{FEFF}\u{200D}",
            " \u{2060} \n",
            "\u{AD}",
            "\u{FE0F}",
        ] {
            assert!(MessageText::parse(blank).is_err(), "{blank:?}");
            assert!(DisplayName::parse(blank).is_err(), "{blank:?}");
            assert!(ConversationName::parse(blank).is_err(), "{blank:?}");
        }
        // Joiners inside visible text are kept: they shape emoji and scripts.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(
            MessageText::parse(family).expect("visible").as_str(),
            family
        );
        assert!(MessageText::parse("\u{2764}\u{FE0F}").is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Alice  ").unwrap().as_str(), "Alice");
        assert!(ConversationName::parse(&"x".repeat(100)).is_ok());
        assert!(ConversationName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("tab\there").is_err());
    }

    #[test]
    fn every_spelling_of_a_role_is_that_role() {
        for member in ["member", " Member", "MEMBER", "mEmBeR\t"] {
            assert_eq!(Role::parse(member), Ok(Role::Member), "{member:?}");
        }
        for admin in ["admin", "Admin ", "ADMIN"] {
            assert_eq!(Role::parse(admin), Ok(Role::Admin), "{admin:?}");
        }
        assert!(Role::parse("administrator").is_err());
        assert_eq!(Role::from_canonical("admin"), Some(Role::Admin));
        assert_eq!(Role::from_canonical("Admin"), None);
    }

    #[test]
    fn slugs_and_numbers() {
        assert_eq!(OrgSlug::parse(" Demo ").unwrap().as_str(), "demo");
        assert!(OrgSlug::parse("-x").is_err());
        assert!(OrgSlug::parse("a b").is_err());
        assert!(ExtensionNumber::parse("101").is_ok());
        assert!(ExtensionNumber::parse("10a").is_err());
        assert!(ExtensionNumber::parse("12345678901").is_err());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse_new("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        assert!(Password::parse_new("short").is_err());
    }

    proptest! {
        #[test]
        fn any_nonblank_text_within_limit_is_kept_verbatim(s in "[a-zA-Z0-9 ,.!?\n]{1,500}") {
            prop_assume!(!s.trim().is_empty());
            let parsed = MessageText::parse(&s).unwrap();
            prop_assert_eq!(parsed.as_str(), s.as_str());
        }

        #[test]
        fn text_of_only_invisible_characters_is_refused_like_empty_text(
            invisible in proptest::collection::vec(invisible_char(), 0..40),
            visible in proptest::char::range('!', '~'),
            at in any::<proptest::sample::Index>(),
        ) {
            let blank: String = invisible.iter().collect();
            for refused in [
                MessageText::parse(&blank).map(|_| ()),
                DisplayName::parse(&blank).map(|_| ()),
                ConversationName::parse(&blank).map(|_| ()),
            ] {
                let e = refused.expect_err("shows nothing");
                prop_assert!(e.reason.contains("empty"), "{}", e.reason);
            }
            // One visible character among them is a text.
            let mut shown = invisible.clone();
            shown.insert(at.index(invisible.len() + 1), visible);
            let shown: String = shown.into_iter().collect();
            prop_assert!(MessageText::parse(&shown).is_ok(), "{:?}", shown);
            if !shown.chars().any(char::is_control) {
                prop_assert!(ConversationName::parse(&shown).is_ok(), "{:?}", shown);
            }
        }

        #[test]
        fn idempotency_keys_are_printable_ascii(s in "\\PC{0,200}") {
            let ok = !s.is_empty() && s.len() <= MAX_IDEMPOTENCY_KEY_LEN && s.bytes().all(|b| b.is_ascii_graphic());
            prop_assert_eq!(IdempotencyKey::parse(&s).is_ok(), ok);
        }
    }
}
