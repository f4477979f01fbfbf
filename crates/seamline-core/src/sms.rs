//! SMS rules that do not depend on a provider (channels.md §6): how many
//! segments a text is billed as, and what an opt-out keyword is.

use serde::Serialize;

/// How an SMS text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// The GSM 03.38 default alphabet: 160 septets alone, 153 per part.
    Gsm7,
    /// Anything else (Cyrillic, most emoji): 70 UTF-16 units alone, 67 per part.
    Ucs2,
}

/// A text's encoding and the number of segments it is sent (and billed) as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) the text takes.
    pub units: usize,
    pub count: usize,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Reached through the escape code, so each counts as two septets.
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// Septets `c` takes in GSM-7, or none when GSM-7 cannot carry it.
fn septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segments of `text`: GSM-7 when every character fits (160 single, 153 per
/// concatenated part), else UCS-2 for the whole message (70 single, 67 per
/// part; a character outside the BMP takes two units). An empty text is one
/// segment.
pub fn segments(text: &str) -> Segments {
    let gsm: Option<usize> = text.chars().map(septets).sum();
    let (encoding, units, single, part) = match gsm {
        Some(units) => (Encoding::Gsm7, units, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let count = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    Segments {
        encoding,
        units,
        count,
    }
}

/// What a whole inbound message asks for, as a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop all marketing texts.
    OptOut,
    /// Allow them again.
    OptIn,
}

const OPT_OUT: [&str; 10] = [
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "стоп",
    "отписаться",
];
const OPT_IN: [&str; 3] = ["start", "yes", "unstop"];

/// The keyword the whole message is (case-insensitive, surrounding blanks
/// and a final full stop ignored); a keyword inside a sentence is none.
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().trim_end_matches(['.', '!']).to_lowercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gsm7_fits_160_then_153_per_part() {
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
        assert_eq!(segments("").count, 1);
        assert_eq!(segments("Hello").encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_twice() {
        let s = segments(&"€".repeat(80));
        assert_eq!((s.encoding, s.units, s.count), (Encoding::Gsm7, 160, 1));
        assert_eq!(segments(&"[".repeat(81)).count, 2);
    }

    #[test]
    fn cyrillic_and_emoji_switch_the_whole_text_to_ucs2() {
        let s = segments("Здравствуйте");
        assert_eq!((s.encoding, s.units, s.count), (Encoding::Ucs2, 12, 1));
        assert_eq!(segments(&"я".repeat(70)).count, 1);
        assert_eq!(segments(&"я".repeat(71)).count, 2);
        assert_eq!(segments(&"я".repeat(134)).count, 2);
        assert_eq!(segments(&"я".repeat(135)).count, 3);
        // One emoji outside the BMP is two units and turns Latin text UCS-2.
        let s = segments(&format!("{}😀", "a".repeat(68)));
        assert_eq!((s.encoding, s.units, s.count), (Encoding::Ucs2, 70, 1));
    }

    #[test]
    fn keywords_are_whole_messages() {
        assert_eq!(keyword("STOP"), Some(Keyword::OptOut));
        assert_eq!(keyword(" стоп "), Some(Keyword::OptOut));
        assert_eq!(keyword("СТОП"), Some(Keyword::OptOut));
        assert_eq!(keyword("Start"), Some(Keyword::OptIn));
        assert_eq!(keyword("please stop calling"), None);
        assert_eq!(keyword("stopper"), None);
    }

    proptest! {
        #[test]
        fn gsm7_segments_hold_every_septet(n in 0usize..2000) {
            let s = segments(&"x".repeat(n));
            prop_assert_eq!(s.encoding, Encoding::Gsm7);
            if n <= 160 { prop_assert_eq!(s.count, 1) } else {
                prop_assert!(s.count * 153 >= n && (s.count - 1) * 153 < n);
            }
        }

        #[test]
        fn any_text_fits_its_segments(text in "\\PC{0,400}") {
            let s = segments(&text);
            let (single, part) = match s.encoding {
                Encoding::Gsm7 => (160, 153),
                Encoding::Ucs2 => (70, 67),
            };
            prop_assert!(s.units <= single || s.units <= s.count * part);
            prop_assert!(s.count >= 1);
            if s.encoding == Encoding::Ucs2 {
                prop_assert_eq!(s.units, text.encode_utf16().count());
            }
        }
    }
}
