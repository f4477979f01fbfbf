//! Identity verification for the site widget. A site that knows who is
//! logged in signs the user's id with the workspace's widget secret on its
//! own server, `user_hash = hex(HMAC-SHA256(secret, user_id))`, and passes
//! both to the widget. Only then do the visitor's chats join that
//! customer's profile: without the secret nobody can claim to be someone
//! else. The check compares in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WidgetIdentityError {
    #[error("the workspace has no widget identity secret")]
    NoSecret,
    #[error("the user id is empty")]
    NoUserId,
    #[error("user_hash is not a hex HMAC-SHA256")]
    Malformed,
    #[error("user_hash does not match the user id")]
    Mismatch,
}

/// The hash a site computes for `user_id` (shown in the widget's setup
/// instructions, and used by tests).
pub fn user_hash(secret: &[u8], user_id: &str) -> Result<String, WidgetIdentityError> {
    Ok(hex::encode(mac(secret, user_id)?.finalize().into_bytes()))
}

/// Accepts `user_hash` only if it is the HMAC of exactly `user_id` under
/// `secret`. Hex in either case.
pub fn verify(secret: &[u8], user_id: &str, user_hash: &str) -> Result<(), WidgetIdentityError> {
    let mac = mac(secret, user_id)?;
    let claimed = hex::decode(user_hash.trim()).map_err(|_| WidgetIdentityError::Malformed)?;
    if claimed.len() != 32 {
        return Err(WidgetIdentityError::Malformed);
    }
    mac.verify_slice(&claimed)
        .map_err(|_| WidgetIdentityError::Mismatch)
}

fn mac(secret: &[u8], user_id: &str) -> Result<HmacSha256, WidgetIdentityError> {
    if secret.is_empty() {
        return Err(WidgetIdentityError::NoSecret);
    }
    if user_id.trim().is_empty() {
        return Err(WidgetIdentityError::NoUserId);
    }
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).map_err(|_| WidgetIdentityError::NoSecret)?;
    mac.update(user_id.as_bytes());
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"w1dget-s3cret";

    #[test]
    fn matches_the_published_hmac_sha256_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            user_hash(b"Jefe", "what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_right_hash_is_accepted_in_either_case() {
        let hash = user_hash(SECRET, "user-42").unwrap();
        assert_eq!(verify(SECRET, "user-42", &hash), Ok(()));
        assert_eq!(verify(SECRET, "user-42", &hash.to_uppercase()), Ok(()));
        assert_eq!(verify(SECRET, "user-42", &format!(" {hash}\n")), Ok(()));
    }

    #[test]
    fn forgeries_are_refused() {
        let hash = user_hash(SECRET, "user-42").unwrap();
        use WidgetIdentityError::*;
        assert_eq!(verify(SECRET, "user-43", &hash), Err(Mismatch));
        assert_eq!(verify(b"other secret", "user-42", &hash), Err(Mismatch));
        assert_eq!(verify(SECRET, "user-42 ", &hash), Err(Mismatch));
        let mut flipped = hash.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(verify(SECRET, "user-42", &flipped), Err(Mismatch));
        assert_eq!(verify(SECRET, "user-42", &hash[..62]), Err(Malformed));
        assert_eq!(verify(SECRET, "user-42", "zz"), Err(Malformed));
        assert_eq!(verify(SECRET, "user-42", ""), Err(Malformed));
        assert_eq!(verify(b"", "user-42", &hash), Err(NoSecret));
        assert_eq!(verify(SECRET, "  ", &hash), Err(NoUserId));
    }

    proptest! {
        #[test]
        fn only_the_signed_id_verifies(a in "\\PC{1,40}", b in "\\PC{1,40}") {
            prop_assume!(!a.trim().is_empty() && !b.trim().is_empty());
            let hash = user_hash(SECRET, &a).unwrap();
            prop_assert_eq!(verify(SECRET, &b, &hash).is_ok(), a == b);
        }
    }
}
