//! Opaque pagination cursors. Lists are keyed by a store sequence number;
//! clients see only an opaque token so the key can change later.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::FieldError;

/// Position after which the next page starts (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub i64);

impl Cursor {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("s{}", self.0))
    }

    pub fn decode(token: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "invalid_cursor",
                "cursor",
                "not a cursor issued by this API",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        text.strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .map(Cursor)
            .ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip(n in any::<i64>()) {
            prop_assert_eq!(Cursor::decode(&Cursor(n).encode()), Ok(Cursor(n)));
        }
    }

    #[test]
    fn garbage_is_rejected_naming_the_field() {
        let err = Cursor::decode("!!nope").unwrap_err();
        assert_eq!(err.field, "cursor");
    }
}
