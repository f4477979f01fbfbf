//! Keyset cursors: an opaque token meaning "after (time, id)", shared by
//! every list ordered by a time and an id.

use std::fmt::Display;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The token for the position `(at, id)`; `at` in the list's own unit.
pub(crate) fn encode(at: i64, id: impl Display) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

/// The position a token names; none for anything this API did not issue.
pub(crate) fn decode<T: FromStr>(token: &str) -> Option<(i64, T)> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_and_anything_else_is_refused() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            decode::<uuid::Uuid>(&encode(1_700_000_000_123, id)),
            Some((1_700_000_000_123, id))
        );
        for bad in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("12"),
            &URL_SAFE_NO_PAD.encode("x:y"),
        ] {
            assert_eq!(decode::<uuid::Uuid>(bad), None, "{bad}");
        }
    }
}
