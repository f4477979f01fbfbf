use chrono::TimeZone;
use serde_json::json;

use super::*;

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000 + s, 0)
        .single()
        .expect("time")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn number(n: u128, last_expiry: Option<i64>) -> PoolNumber {
    PoolNumber {
        id: id(n),
        number: format!("+7495111220{n}"),
        last_expiry: last_expiry.map(at),
    }
}

fn held(n: u128, visitor: &str, from: i64, until: i64) -> Reservation {
    Reservation {
        id: id(100 + n),
        number_id: id(n),
        number: format!("+7495111220{n}"),
        anonymous_id: visitor.into(),
        session_id: None,
        source: Attribution::default(),
        held_from: at(from),
        last_seen: at(from),
        expires_at: at(until),
    }
}

const TAIL: TimeDelta = TimeDelta::seconds(1800);

#[test]
fn a_visitor_keeps_the_number_they_hold_and_the_tail_moves_on() {
    let pool = Pool {
        numbers: vec![number(1, None), number(2, None)],
        active: vec![held(2, "anna", 0, 1800)],
    };
    assert_eq!(
        decide(&pool, "anna", at(600), TAIL),
        Decision::Extend {
            reservation: id(102),
            until: at(2400)
        }
    );
}

#[test]
fn a_new_visitor_gets_a_free_number_the_one_idle_longest() {
    let pool = Pool {
        numbers: vec![number(1, Some(500)), number(2, None), number(3, Some(100))],
        active: vec![],
    };
    assert_eq!(
        decide(&pool, "boris", at(600), TAIL),
        Decision::Take {
            number: id(2),
            until: at(2400)
        },
        "never held first"
    );
    let pool = Pool {
        numbers: vec![number(1, Some(500)), number(3, Some(100))],
        active: vec![],
    };
    assert_eq!(
        decide(&pool, "boris", at(600), TAIL),
        Decision::Take {
            number: id(3),
            until: at(2400)
        },
        "then the one free the longest"
    );
}

#[test]
fn two_visitors_never_share_a_pool_number_and_a_full_pool_is_a_miss() {
    let pool = Pool {
        numbers: vec![number(1, None), number(2, None)],
        active: vec![held(1, "anna", 0, 1800)],
    };
    assert_eq!(
        decide(&pool, "boris", at(10), TAIL),
        Decision::Take {
            number: id(2),
            until: at(1810)
        }
    );
    let full = Pool {
        active: vec![held(1, "anna", 0, 1800), held(2, "boris", 10, 1810)],
        ..pool
    };
    assert_eq!(decide(&full, "vera", at(20), TAIL), Decision::Miss);
    assert_eq!(
        decide(&Pool::default(), "vera", at(20), TAIL),
        Decision::Miss
    );
}

#[test]
fn a_lapsed_reservation_frees_its_number() {
    let pool = Pool {
        numbers: vec![number(1, Some(1800))],
        active: vec![held(1, "anna", 0, 1800)],
    };
    assert_eq!(decide(&pool, "boris", at(1799), TAIL), Decision::Miss);
    assert_eq!(
        decide(&pool, "boris", at(1800), TAIL),
        Decision::Take {
            number: id(1),
            until: at(3600)
        }
    );
    assert_eq!(
        decide(&pool, "anna", at(1800), TAIL),
        Decision::Take {
            number: id(1),
            until: at(3600)
        },
        "the former holder starts a new reservation"
    );
}

#[test]
fn a_number_added_again_is_still_held_by_its_visitor() {
    let readded = PoolNumber {
        id: id(9),
        ..number(1, None)
    };
    let pool = Pool {
        numbers: vec![readded],
        active: vec![held(1, "anna", 0, 1800)],
    };
    assert_eq!(decide(&pool, "boris", at(10), TAIL), Decision::Miss);
}

#[test]
fn a_number_removed_from_the_pool_is_not_extended() {
    let pool = Pool {
        numbers: vec![number(2, None)],
        active: vec![held(1, "anna", 0, 1800)],
    };
    assert_eq!(
        decide(&pool, "anna", at(10), TAIL),
        Decision::Take {
            number: id(2),
            until: at(1810)
        }
    );
}

#[test]
fn a_call_belongs_to_the_reservation_holding_the_number_when_it_started() {
    let history = vec![held(1, "anna", 0, 1800), held(1, "boris", 2000, 3800)];
    let who = |t| holder_at(&history, at(t)).map(|r| r.anonymous_id.as_str());
    assert_eq!(who(100), Some("anna"));
    assert_eq!(who(1900), None, "free between the two");
    assert_eq!(who(2500), Some("boris"));
    assert_eq!(who(3800), None, "lapsed");
    // The PBX stamps whole seconds: a call right after the reservation
    // may look a second older.
    assert_eq!(who(1999), Some("boris"));
    let back_to_back = vec![held(1, "anna", 0, 2000), held(1, "boris", 2000, 3800)];
    assert_eq!(
        holder_at(&back_to_back, at(1999)).map(|r| r.anonymous_id.as_str()),
        Some("boris"),
        "the newer holder wins the overlap"
    );
}

#[test]
fn static_numbers_match_their_source_the_narrowest_first() {
    let yandex = SourceBinding::parse(&json!({"utm_source": "yandex"}), "source").expect("ok");
    let yandex_cpc = SourceBinding::parse(
        &json!({"utm_source": "Yandex", "utm_medium": "cpc"}),
        "source",
    )
    .expect("ok");
    let billboard =
        SourceBinding::parse(&json!({"label": "Billboard on Tverskaya"}), "source").expect("ok");
    let numbers = vec![("A", yandex), ("B", yandex_cpc), ("C", billboard)];
    let visit = |source: &str, medium: Option<&str>| Attribution {
        utm_source: Some(source.into()),
        utm_medium: medium.map(Into::into),
        ..Attribution::default()
    };
    assert_eq!(
        static_for(&numbers, &visit("yandex", Some("cpc"))),
        Some(&"B")
    );
    assert_eq!(
        static_for(&numbers, &visit("yandex", Some("email"))),
        Some(&"A")
    );
    assert_eq!(static_for(&numbers, &visit("google", None)), None);
    assert_eq!(static_for(&numbers, &Attribution::default()), None);
    assert_eq!(numbers[2].1.describe(), "Billboard on Tverskaya");
    assert_eq!(numbers[1].1.describe(), "Yandex / cpc");
}

#[test]
fn a_static_binding_needs_a_source_and_names_the_bad_field() {
    let err = SourceBinding::parse(&json!({}), "source").expect_err("empty");
    assert_eq!(err.field, "source.utm_source");
    let err = SourceBinding::parse(&json!({"utm_medium": "cpc"}), "source").expect_err("no source");
    assert_eq!(err.field, "source.utm_source");
    let err = SourceBinding::parse(&json!({"label": 5}), "source").expect_err("type");
    assert_eq!(err.field, "source.label");
    let long = "x".repeat(501);
    let err = SourceBinding::parse(&json!({"utm_source": long}), "source").expect_err("long");
    assert_eq!(err.field, "source.utm_source");
}

#[test]
fn a_source_is_described_by_utm_click_id_referrer_or_direct() {
    let source = |v: Value| visitor_source(&v, "source").expect("source");
    assert_eq!(
        describe_source(&source(
            json!({"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring"})
        )),
        "yandex / cpc · spring"
    );
    assert_eq!(
        describe_source(&source(json!({"gclid": "G1"}))),
        "google / cpc"
    );
    assert_eq!(
        describe_source(&source(json!({"referrer": "https://www.example.org/page"}))),
        "example.org / referral"
    );
    assert_eq!(describe_source(&source(Value::Null)), "direct");
    assert_eq!(
        visitor_source(&json!({"utm_source": 1}), "source")
            .expect_err("type")
            .field,
        "source.utm_source"
    );
}

#[test]
fn settings_take_defaults_and_refuse_bad_values_by_name() {
    let policy = IdentityPolicy::default();
    let settings = Settings::parse(&json!({}), &policy).expect("defaults");
    assert_eq!(settings, Settings::default());
    assert_eq!(settings.heartbeat_s(), 60);
    let settings = Settings::parse(
        &json!({"tail_s": 6, "selector": ".phone", "site_phone": "8 (495) 000-11-22",
                "default_number": "+7 495 111-22-99"}),
        &policy,
    )
    .expect("settings");
    assert_eq!(settings.site_phone.as_deref(), Some("+74950001122"));
    assert_eq!(settings.default_number.as_deref(), Some("+74951112299"));
    assert_eq!(settings.heartbeat_s(), 2, "a short tail beats faster");
    for (body, field) in [
        (json!({"tail_s": 1}), "tail_s"),
        (json!({"tail_s": "10"}), "tail_s"),
        (json!({"selector": "a{color:red}"}), "selector"),
        (json!({"default_number": "call us"}), "default_number"),
        (json!({"site_phone": "12"}), "site_phone"),
    ] {
        let err = Settings::parse(&body, &policy).expect_err("refused");
        assert_eq!(err.field, field, "{body}");
    }
}

#[test]
fn numbers_are_e164_and_shown_the_russian_way() {
    let policy = IdentityPolicy::default();
    assert_eq!(
        tracking_number("8 (495) 111-22-33", &policy, "number").as_deref(),
        Ok("+74951112233")
    );
    assert_eq!(
        tracking_number("not a phone", &policy, "number")
            .expect_err("bad")
            .field,
        "number"
    );
    assert_eq!(display("+74951112233"), "+7 (495) 111-22-33");
    assert_eq!(display("+442071234567"), "+442071234567");
}
