//! What an event says about who someone is: its identifiers (from
//! `anonymousId`, `userId`, alias `previousId`, `context.device.id`, the
//! `email`/`phone`/loyalty-card traits and `context.externalIds`) and traits.

use serde_json::{Map, Value};

use super::identifier::{Identifier, IdentifierKind, NotAnIdentifier};
use super::policy::IdentityPolicy;
use crate::tracking::{EventType, TrackedEvent};

/// The identity facts of one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Distinct, normalised identifiers, in the order they were found.
    pub identifiers: Vec<Identifier>,
    /// Raw values that were refused, kept for people to see but never linked.
    pub refused: Vec<(IdentifierKind, String, NotAnIdentifier)>,
    /// `traits` of identify calls and `context.traits` of any call.
    pub traits: Map<String, Value>,
}

impl Observation {
    fn add(&mut self, kind: IdentifierKind, raw: &str, policy: &IdentityPolicy) {
        match Identifier::parse(kind.clone(), raw, policy) {
            Ok(id) if !self.identifiers.contains(&id) => self.identifiers.push(id),
            Ok(_) => {}
            Err(reason) => self.refused.push((kind, raw.to_owned(), reason)),
        }
    }
}

const LOYALTY_TRAITS: [&str; 4] = [
    "loyalty_card",
    "loyaltyCard",
    "card_number",
    "discount_card",
];

impl Observation {
    /// The traits that belong to `profile` after resolution: a trait that is
    /// an identifier held by someone else (a refused link) is not theirs.
    pub fn traits_for(
        &self,
        owner_of: impl Fn(&Identifier) -> Option<uuid::Uuid>,
        profile: uuid::Uuid,
    ) -> Map<String, Value> {
        let mut traits = self.traits.clone();
        for id in &self.identifiers {
            if owner_of(id).is_some_and(|owner| owner != profile) {
                for key in trait_keys(&id.kind) {
                    traits.remove(*key);
                }
            }
        }
        traits
    }
}

/// The trait names an identifier kind is read from.
fn trait_keys(kind: &IdentifierKind) -> &'static [&'static str] {
    match kind {
        IdentifierKind::Email => &["email"],
        IdentifierKind::Phone => &["phone"],
        IdentifierKind::LoyaltyCard => &LOYALTY_TRAITS,
        _ => &[],
    }
}

pub fn observe(event: &TrackedEvent, policy: &IdentityPolicy) -> Observation {
    let mut obs = Observation::default();
    let payload = &event.payload;
    if let Some(user_id) = &event.user_id {
        obs.add(IdentifierKind::UserId, user_id, policy);
    }
    if let Some(anonymous_id) = &event.anonymous_id {
        obs.add(IdentifierKind::AnonymousId, anonymous_id, policy);
    }
    if event.event_type == EventType::Alias {
        if let Some(previous) = text(payload.get("previousId")) {
            obs.add(IdentifierKind::AnonymousId, &previous, policy);
        }
    }
    let context = payload.get("context").and_then(Value::as_object);
    if let Some(device) = context
        .and_then(|c| c.get("device"))
        .and_then(Value::as_object)
    {
        if let Some(id) = text(device.get("id")) {
            obs.add(IdentifierKind::DeviceId, &id, policy);
        }
    }
    if event.event_type == EventType::Identify {
        merge_traits(&mut obs.traits, payload.get("traits"));
    }
    merge_traits(&mut obs.traits, context.and_then(|c| c.get("traits")));
    let traits = obs.traits.clone();
    identifiers_in_traits(&mut obs, &traits, policy);
    if let Some(external) = context
        .and_then(|c| c.get("externalIds"))
        .and_then(Value::as_array)
    {
        for entry in external {
            let kind = text(entry.get("type")).and_then(|t| t.parse::<IdentifierKind>().ok());
            if let (Some(kind), Some(id)) = (kind, text(entry.get("id"))) {
                obs.add(kind, &id, policy);
            }
        }
    }
    obs
}

fn identifiers_in_traits(
    obs: &mut Observation,
    traits: &Map<String, Value>,
    policy: &IdentityPolicy,
) {
    if let Some(email) = text(traits.get("email")) {
        obs.add(IdentifierKind::Email, &email, policy);
    }
    if let Some(phone) = text(traits.get("phone")) {
        obs.add(IdentifierKind::Phone, &phone, policy);
    }
    if let Some(card) = LOYALTY_TRAITS.iter().find_map(|key| text(traits.get(*key))) {
        obs.add(IdentifierKind::LoyaltyCard, &card, policy);
    }
}

fn merge_traits(into: &mut Map<String, Value>, from: Option<&Value>) {
    if let Some(Value::Object(traits)) = from {
        for (key, value) in traits {
            into.insert(key.replace('\0', ""), without_nul(value));
        }
    }
}

/// Traits are stored as JSON that PostgreSQL must accept: no U+0000.
fn without_nul(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace('\0', ""), without_nul(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A string or number field as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::{parse_message, Envelope};
    use serde_json::json;

    fn observed(message: Value) -> Observation {
        let envelope = Envelope {
            received_at: chrono::Utc::now(),
            request_ip: None,
        };
        let event = parse_message(&message.to_string(), &envelope, &mut || "m".into())
            .expect("valid message");
        observe(&event, &IdentityPolicy::default())
    }

    fn kinds(obs: &Observation) -> Vec<String> {
        obs.identifiers.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn identify_traits_and_external_ids_become_identifiers() {
        let obs = observed(
            json!({"type": "identify", "userId": "olga", "anonymousId": "c1",
            "traits": {"email": " Olga@Example.RU ", "phone": "8 916 123-45-67", "name": "Ольга"},
            "context": {"device": {"id": "dev-1"}, "externalIds": [{"id": "2000 0001", "type": "loyalty_card"}, {"id": "x", "type": "crm_id"}]}}),
        );
        assert_eq!(
            kinds(&obs),
            [
                "user_id:olga",
                "anonymous_id:c1",
                "device_id:dev-1",
                "email:olga@example.ru",
                "phone:+79161234567",
                "loyalty_card:20000001",
                "custom:crm_id:x"
            ]
        );
        assert_eq!(obs.traits["name"], "Ольга");
    }

    #[test]
    fn refused_values_are_kept_apart() {
        let obs = observed(json!({"type": "track", "userId": "u", "event": "E",
            "context": {"traits": {"email": "test@test.com", "phone": "not a phone"}}}));
        assert_eq!(kinds(&obs), ["user_id:u"]);
        assert_eq!(obs.refused.len(), 2);
        assert_eq!(
            obs.traits["phone"], "not a phone",
            "the raw value stays a trait"
        );
    }

    #[test]
    fn nul_characters_never_reach_stored_traits() {
        let obs = observed(
            json!({"type": "identify", "userId": "u", "traits": {"name": "a\u{0}b", "tags": ["x\u{0}"]}}),
        );
        assert_eq!(obs.traits["name"], "ab");
        assert_eq!(obs.traits["tags"], json!(["x"]));
    }

    #[test]
    fn alias_links_the_previous_id() {
        let obs = observed(json!({"type": "alias", "previousId": "anon-9", "userId": "u9"}));
        assert_eq!(kinds(&obs), ["user_id:u9", "anonymous_id:anon-9"]);
    }
}
