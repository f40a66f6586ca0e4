//! What a text costs as SMS: its encoding and how many segments it takes,
//! and the opt-out keywords carriers and customers expect to work.
//!
//! A text made only of GSM 03.38 characters travels as GSM-7: 160 septets in
//! one segment, 153 per segment once it is split (the rest carries the
//! concatenation header); characters of the extension table (`€`, `[`, `{`,
//! …) take two septets and are never split from their escape. Any other
//! character makes the whole text UCS-2: 70 UTF-16 units in one segment, 67
//! per segment once split, never splitting a surrogate pair.

/// The GSM 03.38 basic character set, in table order (the escape itself,
/// 0x1B, is left out: nobody types it).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table: each takes an escape and itself.
const GSM_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The first character that rules GSM-7 out, and where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Offender {
    pub character: char,
    /// Its position in the text, counted in characters from zero.
    pub index: usize,
}

/// How a text goes out as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) the text takes.
    pub units: usize,
    pub segments: usize,
    /// Units a segment holds at this length: the single-segment size, or
    /// the concatenated one once the text is split.
    pub per_segment: usize,
    /// Units left before another segment is needed.
    pub remaining: usize,
    /// Why the text is UCS-2, when it is.
    pub offender: Option<Offender>,
}

fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segments needed when each item of `sizes` (a character's units) must not
/// be split across segments.
fn pack(sizes: impl Iterator<Item = usize>, per_part: usize) -> usize {
    let (mut parts, mut used) = (1, 0);
    for size in sizes {
        if used + size > per_part {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    parts
}

/// How `text` goes out as SMS. An empty text is one empty segment.
pub fn segments(text: &str) -> Segments {
    let offender = text
        .chars()
        .enumerate()
        .find(|(_, c)| gsm_septets(*c).is_none())
        .map(|(index, character)| Offender { character, index });
    let (encoding, single, part) = match offender {
        None => (Encoding::Gsm7, GSM7_SINGLE, GSM7_PART),
        Some(_) => (Encoding::Ucs2, UCS2_SINGLE, UCS2_PART),
    };
    let size = |c: char| match encoding {
        Encoding::Gsm7 => gsm_septets(c).unwrap_or(1),
        Encoding::Ucs2 => c.len_utf16(),
    };
    let units: usize = text.chars().map(size).sum();
    let (segments, per_segment) = if units <= single {
        (1, single)
    } else {
        (pack(text.chars().map(size), part), part)
    };
    Segments {
        encoding,
        units,
        segments,
        per_segment,
        remaining: (segments * per_segment).saturating_sub(units),
        offender,
    }
}

/// A keyword that changes whether a number may be texted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// Stop texting me.
    Stop,
    /// Texting me is fine again.
    Start,
    /// Who is this and how do I stop it.
    Help,
}

impl Keyword {
    /// The keyword a whole inbound text is, if it is one: the usual
    /// variants, in any case, with surrounding spaces and punctuation
    /// ignored. A sentence that merely contains "stop" is not one.
    pub fn of(text: &str) -> Option<Self> {
        let word = text
            .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
            .to_ascii_uppercase();
        match word.as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Self::Stop),
            "START" | "UNSTOP" | "YES" => Some(Self::Start),
            "HELP" | "INFO" => Some(Self::Help),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plain_text_is_gsm7_and_fits_160_septets_in_one_segment() {
        let s = segments(&"a".repeat(160));
        assert_eq!(
            (s.encoding, s.units, s.segments, s.remaining),
            (Encoding::Gsm7, 160, 1, 0)
        );
        let s = segments(&"a".repeat(161));
        assert_eq!((s.segments, s.per_segment, s.remaining), (2, 153, 145));
        assert_eq!(segments(&"a".repeat(306)).segments, 2);
        assert_eq!(segments(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_take_two_septets_and_stay_with_their_escape() {
        let s = segments("€");
        assert_eq!((s.encoding, s.units), (Encoding::Gsm7, 2));
        // 152 septets then a two-septet character: it moves whole to the
        // second segment.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(8));
        let s = segments(&text);
        assert_eq!((s.units, s.segments), (162, 2));
        let text = format!("{}€", "a".repeat(152));
        assert_eq!(segments(&text).units, 154);
        assert_eq!(segments(&format!("{}€", "a".repeat(305))).segments, 3);
    }

    #[test]
    fn one_emoji_makes_the_whole_text_ucs2_and_is_pointed_out() {
        let s = segments("Thanks! 👍 see you");
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(
            s.offender,
            Some(Offender {
                character: '👍',
                index: 8
            })
        );
        // The emoji is a surrogate pair: two units.
        assert_eq!(s.units, 18);
        assert_eq!(segments(&"ж".repeat(70)).segments, 1);
        assert_eq!(segments(&"ж".repeat(71)).segments, 2);
        assert_eq!(segments(&"ж".repeat(134)).segments, 2);
        assert_eq!(segments(&"ж".repeat(135)).segments, 3);
    }

    #[test]
    fn a_surrogate_pair_is_never_split_across_segments() {
        let text = format!("{}👍", "ж".repeat(66));
        let s = segments(&text);
        assert_eq!((s.units, s.segments), (68, 1));
        let text = format!("{}👍{}", "ж".repeat(66), "ж".repeat(3));
        // 66 + 2 would fill 68 of 67 units: the pair moves to segment two.
        assert_eq!(segments(&text).segments, 2);
    }

    #[test]
    fn smart_quotes_are_not_gsm() {
        assert_eq!(segments("it’s").encoding, Encoding::Ucs2);
        assert_eq!(segments("it's").encoding, Encoding::Gsm7);
    }

    #[test]
    fn opt_out_keywords_are_whole_texts_in_any_case() {
        for stop in [
            "STOP",
            "stop",
            " Stop. ",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
        ] {
            assert_eq!(Keyword::of(stop), Some(Keyword::Stop), "{stop}");
        }
        for start in ["START", "unstop", "Yes"] {
            assert_eq!(Keyword::of(start), Some(Keyword::Start), "{start}");
        }
        for help in ["HELP", "info?"] {
            assert_eq!(Keyword::of(help), Some(Keyword::Help), "{help}");
        }
        for other in ["please stop by at 5", "", "stopp", "STOP NOW"] {
            assert_eq!(Keyword::of(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn segments_always_hold_the_text(text in "\\PC{0,400}") {
            let s = segments(&text);
            prop_assert!(s.segments >= 1);
            prop_assert!(s.units <= s.segments * s.per_segment);
            prop_assert_eq!(s.remaining, s.segments * s.per_segment - s.units);
            prop_assert_eq!(s.offender.is_some(), s.encoding == Encoding::Ucs2);
        }
    }
}
