//! Reply addresses: `reply+<token>@<reply domain>` names a conversation.
//! The token is the conversation id and an HMAC of it under the account's
//! generated `thread_key`, so nobody can write into a conversation whose
//! address they were not given.

use seamline_core::ConversationId;
use uuid::Uuid;

use crate::channels::same_secret;

/// Bytes of the HMAC kept in the token: 64 bits, beyond guessing by
/// sending mail, and the local part stays within its 64 characters.
const TAG: usize = 8;

fn tag(key: &str, conversation: ConversationId) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    let signed = ring::hmac::sign(&key, conversation.0.as_bytes());
    signed.as_ref()[..TAG].to_vec()
}

pub fn reply_address(key: &str, domain: &str, conversation: ConversationId) -> String {
    let token = format!(
        "{}{}",
        conversation.0.simple(),
        hex::encode(tag(key, conversation))
    );
    format!("reply+{token}@{domain}")
}

/// The conversation `address` names, when it is one of our reply
/// addresses with a genuine token.
pub fn conversation_of(key: &str, domain: &str, address: &str) -> Option<ConversationId> {
    let (local, host) = address.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let token = local.strip_prefix("reply+")?;
    let (id, given) = (token.get(..32)?, token.get(32..)?);
    let conversation = ConversationId(Uuid::parse_str(id).ok()?);
    let given = hex::decode(given).ok()?;
    same_secret(&given, &tag(key, conversation)).then_some(conversation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_address_names_its_conversation_and_a_forged_one_nothing() {
        let id = ConversationId(Uuid::now_v7());
        let address = reply_address("k", "reply.example", id);
        assert_eq!(conversation_of("k", "REPLY.example", &address), Some(id));
        assert_eq!(conversation_of("other", "reply.example", &address), None);
        let other = ConversationId(Uuid::now_v7());
        let forged = address.replace(&id.0.simple().to_string(), &other.0.simple().to_string());
        assert_eq!(conversation_of("k", "reply.example", &forged), None);
        assert_eq!(
            conversation_of("k", "reply.example", "reply+zz@reply.example"),
            None
        );
    }
}
