//! The tracking API's messages (Segment HTTP Tracking API compatible), parsed
//! into validated [`TrackedEvent`]s.
//!
//! What is decided here, once for every entry point (HTTP, import, demo):
//! size limits, required fields per type, `messageId` (the dedupe key), clock-skew
//! correction and the attribution facts (UTM, click ids, referrer, IP, user agent)
//! that analytics needs later.

mod attribution;
mod clock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use attribution::Attribution;
pub use clock::Clock;

use crate::FieldError;

/// Largest accepted single message, also per item inside a batch.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest accepted batch request body.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Longest accepted `messageId`.
pub const MAX_MESSAGE_ID_CHARS: usize = 100;
/// Longest accepted `userId`, `anonymousId` and similar ids.
pub const MAX_ID_CHARS: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Identify,
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A validated tracking message, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedEvent {
    /// The client's dedupe key (or one generated for it when absent).
    pub message_id: String,
    pub event_type: EventType,
    /// `event` of a track call, `name` of a page or screen call.
    pub event_name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// When it happened, corrected for the device's clock skew.
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub enrichment: Enrichment,
    /// The message as the client sent it (batch-level context merged in,
    /// `writeKey` removed).
    pub payload: Map<String, Value>,
}

/// What we derive from a message at ingest and keep beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    pub clock: Clock,
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
}

/// Facts about the request that carried the messages.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub received_at: DateTime<Utc>,
    /// The peer address, used when the message has no `context.ip`.
    pub request_ip: Option<String>,
}

/// A parsed request: the write key found in the body (if any) and its messages.
#[derive(Debug)]
pub struct Parsed {
    pub body_write_key: Option<String>,
    pub events: Vec<TrackedEvent>,
}

/// Why a request was refused. Nothing of a refused request is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub errors: Vec<FieldError>,
}

impl Rejected {
    fn one(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// True when the request was refused for its size alone (HTTP 413).
    pub fn is_too_large(&self) -> bool {
        self.errors.iter().all(|e| e.code == "too_large")
    }
}

/// Parses one message sent to `/v1/<type>`; the path decides the type.
pub fn parse_single(
    event_type: EventType,
    body: &[u8],
    envelope: &Envelope,
    new_message_id: &mut dyn FnMut() -> String,
) -> Result<Parsed, Rejected> {
    check_size(body.len(), MAX_MESSAGE_BYTES, "body")?;
    let mut object = parse_object(body, "body")?;
    let body_write_key = take_write_key(&mut object);
    object.insert("type".into(), Value::String(event_type.as_str().into()));
    let event = validate(object, envelope, new_message_id).map_err(Rejected::one)?;
    Ok(Parsed {
        body_write_key,
        events: vec![event],
    })
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    context: Option<Value>,
    integrations: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
}

/// Parses a `/v1/batch` request. A batch with any invalid item is refused
/// whole, listing every invalid item with its index.
pub fn parse_batch(
    body: &[u8],
    envelope: &Envelope,
    new_message_id: &mut dyn FnMut() -> String,
) -> Result<Parsed, Rejected> {
    check_size(body.len(), MAX_BATCH_BYTES, "body")?;
    let parsed = batch_body(body)?;
    let Some(items) = parsed.batch else {
        return Err(Rejected::one(FieldError::new(
            "required",
            "batch",
            "a batch request needs a `batch` array of messages",
        )));
    };
    let shared = SharedFields::from_batch(&parsed.context, &parsed.integrations, &parsed.sent_at)
        .map_err(Rejected::one)?;
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, raw) in items.into_iter().enumerate() {
        match parse_batch_item(raw, &shared, envelope, new_message_id) {
            Ok(event) => events.push(event),
            Err(error) => errors.push(error.within(&format!("batch[{index}]"))),
        }
    }
    if !errors.is_empty() {
        return Err(Rejected { errors });
    }
    let body_write_key = parsed.write_key.and_then(|v| v.as_str().map(str::to_owned));
    Ok(Parsed {
        body_write_key,
        events,
    })
}

/// The batch's top level, items left unparsed. A valid body is read once;
/// an invalid one is read again only to word the error precisely.
fn batch_body(body: &[u8]) -> Result<BatchBody<'_>, Rejected> {
    match serde_json::from_slice::<BatchBody>(body) {
        // A struct also deserializes from a JSON array: only an object counts.
        Ok(parsed) if first_token(body) == Some(b'{') => Ok(parsed),
        result => {
            parse_object(body, "body")?;
            result.map_err(|e| {
                Rejected::one(FieldError::new("invalid_type", "batch", format!("{e}")))
            })
        }
    }
}

fn first_token(body: &[u8]) -> Option<u8> {
    body.iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Batch-level fields that apply to every item unless the item has its own.
struct SharedFields<'a> {
    context: Option<&'a Map<String, Value>>,
    integrations: Option<&'a Value>,
    sent_at: Option<&'a Value>,
}

impl<'a> SharedFields<'a> {
    fn from_batch(
        context: &'a Option<Value>,
        integrations: &'a Option<Value>,
        sent_at: &'a Option<Value>,
    ) -> Result<Self, FieldError> {
        let context = match context {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                return Err(FieldError::new(
                    "invalid_type",
                    "context",
                    "must be an object",
                ))
            }
        };
        Ok(Self {
            context,
            integrations: integrations.as_ref(),
            sent_at: sent_at.as_ref(),
        })
    }

    fn apply(&self, item: &mut Map<String, Value>) {
        if let Some(shared) = self.context {
            let entry = item
                .entry("context")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(own) = entry {
                for (key, value) in shared {
                    own.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        if let Some(integrations) = self.integrations {
            item.entry("integrations")
                .or_insert_with(|| integrations.clone());
        }
        if let Some(sent_at) = self.sent_at {
            item.entry("sentAt").or_insert_with(|| sent_at.clone());
        }
    }
}

/// Parses one message whose own `type` field says what it is (a line of an
/// import file). The per-message size limit applies.
pub fn parse_message(
    text: &str,
    envelope: &Envelope,
    new_message_id: &mut dyn FnMut() -> String,
) -> Result<TrackedEvent, FieldError> {
    let raw: Box<RawValue> = serde_json::from_str(text)
        .map_err(|e| FieldError::new("malformed_json", "", format!("not valid JSON: {e}")))?;
    let shared = SharedFields {
        context: None,
        integrations: None,
        sent_at: None,
    };
    parse_batch_item(&raw, &shared, envelope, new_message_id)
}

fn parse_batch_item(
    raw: &RawValue,
    shared: &SharedFields<'_>,
    envelope: &Envelope,
    new_message_id: &mut dyn FnMut() -> String,
) -> Result<TrackedEvent, FieldError> {
    let text = raw.get();
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(too_large("", text.len(), MAX_MESSAGE_BYTES));
    }
    let mut item: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(FieldError::new(
                "invalid_type",
                "",
                "each batch item must be an object",
            ))
        }
    };
    take_write_key(&mut item);
    shared.apply(&mut item);
    validate(item, envelope, new_message_id)
}

fn check_size(len: usize, max: usize, field: &str) -> Result<(), Rejected> {
    if len > max {
        return Err(Rejected::one(too_large(field, len, max)));
    }
    Ok(())
}

fn too_large(field: &str, len: usize, max: usize) -> FieldError {
    FieldError::new(
        "too_large",
        field,
        format!("{len} bytes is over the limit of {max} bytes"),
    )
}

fn parse_object(body: &[u8], field: &str) -> Result<Map<String, Value>, Rejected> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Rejected::one(FieldError::new(
            "invalid_type",
            field,
            "the body must be a JSON object",
        ))),
        Err(e) => Err(Rejected::one(FieldError::new(
            "malformed_json",
            field,
            format!("not valid JSON: {e}"),
        ))),
    }
}

fn take_write_key(object: &mut Map<String, Value>) -> Option<String> {
    match object.shift_remove("writeKey") {
        Some(Value::String(key)) => Some(key),
        _ => None,
    }
}

/// Checks one message object and turns it into a [`TrackedEvent`].
fn validate(
    payload: Map<String, Value>,
    envelope: &Envelope,
    new_message_id: &mut dyn FnMut() -> String,
) -> Result<TrackedEvent, FieldError> {
    let event_type = match payload.get("type") {
        Some(Value::String(t)) => EventType::parse(t).ok_or_else(|| {
            FieldError::new(
                "invalid_value",
                "type",
                format!(
                    "unknown type {t:?}; expected identify, track, page, screen, group or alias"
                ),
            )
        })?,
        None => {
            return Err(FieldError::new(
                "required",
                "type",
                "every message needs a type",
            ))
        }
        Some(_) => return Err(FieldError::new("invalid_type", "type", "must be a string")),
    };
    let user_id = optional_id(&payload, "userId")?;
    let anonymous_id = optional_id(&payload, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(FieldError::new(
            "required",
            "userId",
            "either userId or anonymousId is required",
        ));
    }
    for object_field in ["context", "traits", "properties", "integrations"] {
        if !matches!(
            payload.get(object_field),
            None | Some(Value::Null | Value::Object(_))
        ) {
            return Err(FieldError::new(
                "invalid_type",
                object_field,
                "must be an object",
            ));
        }
    }
    let event_name = type_specific(event_type, &payload)?;
    let message_id = match optional_string(&payload, "messageId", MAX_MESSAGE_ID_CHARS)? {
        Some(id) => id,
        None => new_message_id(),
    };
    let clock = Clock::from_payload(&payload, envelope.received_at)?;
    let attribution = Attribution::from_payload(&payload, envelope.request_ip.as_deref());
    Ok(TrackedEvent {
        message_id,
        event_type,
        event_name,
        user_id,
        anonymous_id,
        timestamp: clock.timestamp,
        received_at: envelope.received_at,
        enrichment: Enrichment { clock, attribution },
        payload,
    })
}

/// Checks the fields a type requires; returns the event's name, if it has one.
fn type_specific(
    event_type: EventType,
    payload: &Map<String, Value>,
) -> Result<Option<String>, FieldError> {
    match event_type {
        EventType::Track => match optional_string(payload, "event", MAX_ID_CHARS)? {
            Some(name) => Ok(Some(name)),
            None => Err(FieldError::new(
                "required",
                "event",
                "a track call needs an event name",
            )),
        },
        EventType::Page | EventType::Screen => optional_string(payload, "name", MAX_ID_CHARS),
        EventType::Group => {
            optional_id(payload, "groupId")?.ok_or_else(|| {
                FieldError::new("required", "groupId", "a group call needs a groupId")
            })?;
            Ok(None)
        }
        EventType::Alias => {
            optional_id(payload, "previousId")?.ok_or_else(|| {
                FieldError::new("required", "previousId", "an alias call needs a previousId")
            })?;
            if payload.get("userId").is_none() {
                return Err(FieldError::new(
                    "required",
                    "userId",
                    "an alias call needs a userId",
                ));
            }
            Ok(None)
        }
        EventType::Identify => Ok(None),
    }
}

/// An id field: a non-empty string or a number (some clients send numbers).
fn optional_id(payload: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match payload.get(field) {
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        _ => optional_string(payload, field, MAX_ID_CHARS),
    }
}

fn optional_string(
    payload: &Map<String, Value>,
    field: &str,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        // PostgreSQL text cannot hold U+0000; refuse it in every column value.
        Some(Value::String(s)) if s.contains('\0') => Err(FieldError::new(
            "invalid_character",
            field,
            "must not contain the NUL character (U+0000)",
        )),
        Some(Value::String(s)) if s.chars().count() > max_chars => Err(FieldError::new(
            "too_long",
            field,
            format!("must be at most {max_chars} characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new("invalid_type", field, "must be a string")),
    }
}

#[cfg(test)]
mod tests;
