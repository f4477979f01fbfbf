use super::*;
use chrono::TimeZone;
use serde_json::json;

fn envelope() -> Envelope {
    Envelope {
        received_at: Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .expect("valid time"),
        request_ip: Some("198.51.100.7".into()),
    }
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("generated-{n}")
    }
}

fn single(kind: EventType, body: Value) -> Result<Parsed, Rejected> {
    parse_single(
        kind,
        body.to_string().as_bytes(),
        &envelope(),
        &mut counter(),
    )
}

fn batch(body: Value) -> Result<Parsed, Rejected> {
    parse_batch(body.to_string().as_bytes(), &envelope(), &mut counter())
}

#[test]
fn a_track_call_is_parsed_with_its_name_ids_and_payload() {
    let parsed = single(
        EventType::Track,
        json!({"userId": "u1", "event": "Order Completed", "messageId": "m-1",
               "properties": {"revenue": 1250, "note": "Привет 👋"}, "writeKey": "wk"}),
    )
    .expect("valid");
    assert_eq!(parsed.body_write_key.as_deref(), Some("wk"));
    let event = &parsed.events[0];
    assert_eq!(event.event_type, EventType::Track);
    assert_eq!(event.event_name.as_deref(), Some("Order Completed"));
    assert_eq!(event.message_id, "m-1");
    assert_eq!(event.user_id.as_deref(), Some("u1"));
    assert!(
        !event.payload.contains_key("writeKey"),
        "the key is not stored"
    );
    assert_eq!(event.payload["properties"]["note"], "Привет 👋");
    assert_eq!(
        event.enrichment.attribution.ip.as_deref(),
        Some("198.51.100.7")
    );
}

#[test]
fn the_path_decides_the_type() {
    let parsed = single(
        EventType::Page,
        json!({"anonymousId": "a", "type": "track"}),
    )
    .expect("valid");
    assert_eq!(parsed.events[0].event_type, EventType::Page);
}

#[test]
fn missing_ids_are_refused_naming_the_field() {
    let rejected = single(EventType::Identify, json!({"traits": {}})).unwrap_err();
    assert_eq!(rejected.errors[0].field, "userId");
    assert_eq!(rejected.errors[0].code, "required");
}

#[test]
fn type_specific_fields_are_required() {
    let cases = [
        (EventType::Track, json!({"userId": "u"}), "event"),
        (EventType::Group, json!({"userId": "u"}), "groupId"),
        (EventType::Alias, json!({"userId": "u"}), "previousId"),
        (
            EventType::Alias,
            json!({"anonymousId": "a", "previousId": "p"}),
            "userId",
        ),
    ];
    for (kind, body, field) in cases {
        let rejected = single(kind, body).unwrap_err();
        assert_eq!(rejected.errors[0].field, field, "{kind:?}");
    }
}

#[test]
fn wrong_types_and_bad_json_are_refused() {
    let rejected = single(EventType::Track, json!({"userId": "u", "event": 5})).unwrap_err();
    assert_eq!(
        (rejected.errors[0].code, rejected.errors[0].field.as_str()),
        ("invalid_type", "event")
    );
    let rejected = single(
        EventType::Track,
        json!({"userId": "u", "event": "e", "properties": []}),
    )
    .unwrap_err();
    assert_eq!(rejected.errors[0].field, "properties");
    let rejected =
        parse_single(EventType::Track, b"{not json", &envelope(), &mut counter()).unwrap_err();
    assert_eq!(rejected.errors[0].code, "malformed_json");
    let rejected = single(
        EventType::Track,
        json!({"userId": "u", "event": "e", "timestamp": "yesterday"}),
    )
    .unwrap_err();
    assert_eq!(rejected.errors[0].field, "timestamp");
}

#[test]
fn nul_characters_are_refused_in_columns_and_dropped_from_attribution() {
    let rejected = single(EventType::Identify, json!({"userId": "a\u{0}b"})).unwrap_err();
    assert_eq!(
        (rejected.errors[0].code, rejected.errors[0].field.as_str()),
        ("invalid_character", "userId")
    );
    let parsed = single(
        EventType::Page,
        json!({"anonymousId": "a", "context": {"userAgent": "bot\u{0}x"}}),
    )
    .expect("valid");
    assert_eq!(
        parsed.events[0]
            .enrichment
            .attribution
            .user_agent
            .as_deref(),
        Some("botx")
    );
}

#[test]
fn numeric_user_ids_are_accepted_as_text() {
    let parsed = single(EventType::Identify, json!({"userId": 42})).expect("valid");
    assert_eq!(parsed.events[0].user_id.as_deref(), Some("42"));
}

#[test]
fn a_missing_message_id_is_generated() {
    let parsed = single(EventType::Identify, json!({"userId": "u"})).expect("valid");
    assert_eq!(parsed.events[0].message_id, "generated-1");
    let rejected = single(
        EventType::Identify,
        json!({"userId": "u", "messageId": "x".repeat(101)}),
    )
    .unwrap_err();
    assert_eq!(rejected.errors[0].field, "messageId");
}

#[test]
fn oversized_messages_and_batches_are_refused() {
    let big = "x".repeat(MAX_MESSAGE_BYTES);
    let rejected = single(EventType::Track, json!({"userId": "u", "event": big})).unwrap_err();
    assert!(rejected.is_too_large());

    let item = json!({"type": "track", "userId": "u", "event": "e", "properties": {"p": "y".repeat(MAX_MESSAGE_BYTES)}});
    let rejected =
        batch(json!({"batch": [{"type": "identify", "userId": "u"}, item]})).unwrap_err();
    assert_eq!(rejected.errors[0].field, "batch[1]");
    assert!(rejected.is_too_large());

    let many: Vec<Value> = (0..40)
        .map(|i| json!({"type": "track", "userId": "u", "event": format!("{i}"), "properties": {"p": "z".repeat(15_000)}}))
        .collect();
    let rejected = batch(json!({"batch": many})).unwrap_err();
    assert_eq!(rejected.errors[0].field, "body");
}

#[test]
fn a_batch_with_invalid_items_lists_each_with_its_index() {
    let rejected = batch(json!({"batch": [
        {"type": "identify", "userId": "ok"},
        {"type": "track", "userId": "u"},
        {"type": "wat", "userId": "u"},
        {"type": "page"}
    ]}))
    .unwrap_err();
    let fields: Vec<_> = rejected.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["batch[1].event", "batch[2].type", "batch[3].userId"]
    );
    assert!(!rejected.is_too_large());
}

#[test]
fn batch_level_context_and_sent_at_apply_to_items_that_lack_them() {
    let parsed = batch(json!({
        "batch": [
            {"type": "track", "userId": "u", "event": "a", "timestamp": "2024-05-01T11:00:00Z"},
            {"type": "track", "userId": "u", "event": "b", "context": {"ip": "1.1.1.1"}}
        ],
        "context": {"ip": "2.2.2.2", "userAgent": "ua"},
        "sentAt": "2024-05-01T11:59:00Z",
        "writeKey": "wk"
    }))
    .expect("valid");
    assert_eq!(parsed.body_write_key.as_deref(), Some("wk"));
    let [a, b] = &parsed.events[..] else {
        panic!("two events")
    };
    assert_eq!(a.enrichment.attribution.ip.as_deref(), Some("2.2.2.2"));
    assert_eq!(b.enrichment.attribution.ip.as_deref(), Some("1.1.1.1"));
    assert_eq!(b.enrichment.attribution.user_agent.as_deref(), Some("ua"));
    // Device clock one minute behind: 11:00 on the device is 11:01 for us.
    assert_eq!(
        a.timestamp,
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 1, 0)
            .single()
            .expect("time")
    );
}

#[test]
fn a_batch_needs_a_batch_array() {
    let rejected = batch(json!({"events": []})).unwrap_err();
    assert_eq!(rejected.errors[0].field, "batch");
    let rejected = batch(json!({"batch": "nope"})).unwrap_err();
    assert_eq!(rejected.errors[0].field, "batch");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_round_trips_exactly(text in "\\PC*") {
            let parsed = single(EventType::Track, json!({"userId": "u", "event": "e", "properties": {"t": text}}))
                .expect("valid");
            prop_assert_eq!(parsed.events[0].payload["properties"]["t"].as_str(), Some(text.as_str()));
        }

        #[test]
        fn parsing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_batch(&bytes, &envelope(), &mut counter());
            let _ = parse_single(EventType::Track, &bytes, &envelope(), &mut counter());
        }
    }
}
