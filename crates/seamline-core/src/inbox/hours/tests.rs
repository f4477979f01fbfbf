use super::*;
use proptest::prelude::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn span(day: Weekday, from: &str, to: &str) -> Span {
    Span {
        day,
        from: from.into(),
        to: to.into(),
    }
}

fn weekdays(from: &str, to: &str) -> Vec<Span> {
    use Weekday::*;
    [Mon, Tue, Wed, Thu, Fri]
        .into_iter()
        .map(|d| span(d, from, to))
        .collect()
}

fn hours(tz: &str, weekly: Vec<Span>, holidays: &[&str]) -> BusinessHours {
    BusinessHours::new(HoursConfig {
        time_zone: tz.into(),
        weekly,
        holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
    })
    .unwrap()
}

#[test]
fn moscow_office_hours() {
    let h = hours("Europe/Moscow", weekdays("09:00", "18:00"), &[]);
    // Monday 3 March 2025; Moscow is UTC+3 all year.
    assert!(!h.is_open(utc(2025, 3, 3, 5, 59)));
    assert!(h.is_open(utc(2025, 3, 3, 6, 0)));
    assert!(h.is_open(utc(2025, 3, 3, 14, 59)));
    assert!(!h.is_open(utc(2025, 3, 3, 15, 0)));
    assert_eq!(
        h.next_open(utc(2025, 3, 3, 10, 0)),
        Some(utc(2025, 3, 3, 10, 0))
    );
    assert_eq!(
        h.next_open(utc(2025, 3, 3, 15, 0)),
        Some(utc(2025, 3, 4, 6, 0))
    );
    // Friday evening: Monday morning.
    assert_eq!(
        h.next_open(utc(2025, 3, 7, 16, 0)),
        Some(utc(2025, 3, 10, 6, 0))
    );
    // Local midnight is 21:00 UTC the day before.
    assert_eq!(
        h.next_open(utc(2025, 3, 2, 21, 30)),
        Some(utc(2025, 3, 3, 6, 0))
    );
}

#[test]
fn the_new_year_holidays_close_whole_days() {
    let days = [
        "2025-01-01",
        "2025-01-02",
        "2025-01-03",
        "2025-01-06",
        "2025-01-07",
        "2025-01-08",
    ];
    let h = hours("Europe/Moscow", weekdays("09:00", "18:00"), &days);
    assert!(!h.is_open(utc(2025, 1, 6, 8, 0)));
    assert_eq!(
        h.next_open(utc(2024, 12, 31, 16, 0)),
        Some(utc(2025, 1, 9, 6, 0))
    );
}

#[test]
fn berlin_opens_an_hour_earlier_in_utc_after_the_spring_change() {
    let h = hours("Europe/Berlin", weekdays("09:00", "17:00"), &[]);
    // Friday 28 March 2025 is CET (UTC+1); Monday 31 March is CEST (UTC+2).
    assert!(h.is_open(utc(2025, 3, 28, 8, 0)));
    assert!(!h.is_open(utc(2025, 3, 28, 7, 30)));
    assert_eq!(
        h.next_open(utc(2025, 3, 28, 18, 0)),
        Some(utc(2025, 3, 31, 7, 0))
    );
    // And back in autumn: Monday 27 October 2025 is CET again.
    assert_eq!(
        h.next_open(utc(2025, 10, 24, 18, 0)),
        Some(utc(2025, 10, 27, 8, 0))
    );
}

#[test]
fn a_span_starting_in_the_skipped_hour_opens_when_the_clock_lands() {
    // Sunday 30 March 2025, Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    let h = hours(
        "Europe/Berlin",
        vec![span(Weekday::Sun, "02:30", "05:00")],
        &[],
    );
    assert_eq!(
        h.next_open(utc(2025, 3, 29, 23, 0)),
        Some(utc(2025, 3, 30, 1, 0))
    );
    assert!(!h.is_open(utc(2025, 3, 30, 0, 59)));
    assert!(h.is_open(utc(2025, 3, 30, 1, 0)));
    assert!(h.is_open(utc(2025, 3, 30, 2, 59)));
    assert!(!h.is_open(utc(2025, 3, 30, 3, 0)));
}

#[test]
fn a_span_wholly_in_the_skipped_hour_does_not_open_that_day() {
    let h = hours(
        "Europe/Berlin",
        vec![span(Weekday::Sun, "02:00", "03:00")],
        &[],
    );
    // The next Sunday, 6 April, 02:00 CEST.
    assert_eq!(
        h.next_open(utc(2025, 3, 29, 23, 0)),
        Some(utc(2025, 4, 6, 0, 0))
    );
}

#[test]
fn a_span_in_the_repeated_hour_opens_twice() {
    // Sunday 26 October 2025, Berlin: 03:00 CEST falls back to 02:00 CET.
    let h = hours(
        "Europe/Berlin",
        vec![span(Weekday::Sun, "02:00", "02:30")],
        &[],
    );
    let first = utc(2025, 10, 26, 0, 0); // 02:00 CEST
    let second = utc(2025, 10, 26, 1, 0); // 02:00 CET
    assert_eq!(h.next_open(utc(2025, 10, 25, 12, 0)), Some(first));
    assert!(h.is_open(utc(2025, 10, 26, 0, 15)));
    assert!(!h.is_open(utc(2025, 10, 26, 0, 45)));
    assert_eq!(h.next_open(utc(2025, 10, 26, 0, 45)), Some(second));
    assert!(h.is_open(utc(2025, 10, 26, 1, 10)));
}

#[test]
fn a_night_shift_runs_into_the_next_day() {
    let h = hours(
        "Europe/Moscow",
        vec![span(Weekday::Fri, "22:00", "02:00")],
        &[],
    );
    // Friday 7 March 2025 23:00 and Saturday 01:00 MSK are open.
    assert!(h.is_open(utc(2025, 3, 7, 20, 0)));
    assert!(h.is_open(utc(2025, 3, 7, 22, 0)));
    assert!(!h.is_open(utc(2025, 3, 7, 23, 0)));
    assert_eq!(
        h.next_open(utc(2025, 3, 8, 0, 0)),
        Some(utc(2025, 3, 14, 19, 0))
    );
}

#[test]
fn touching_spans_merge_and_a_day_can_be_open_all_day() {
    let h = hours(
        "Europe/Moscow",
        vec![
            span(Weekday::Sat, "00:00", "24:00"),
            span(Weekday::Sun, "00:00", "12:00"),
            span(Weekday::Sun, "12:00", "13:00"),
        ],
        &[],
    );
    assert_eq!(h.day(Weekday::Sun), [(0, 780)]);
    assert!(h.is_open(utc(2025, 3, 8, 20, 59))); // Saturday 23:59 MSK
    assert!(h.is_open(utc(2025, 3, 8, 21, 0))); // Sunday 00:00 MSK
}

#[test]
fn closed_for_good_has_no_next_opening() {
    let h = hours("UTC", vec![], &[]);
    assert!(!h.is_open(utc(2025, 3, 3, 12, 0)));
    assert_eq!(h.next_open(utc(2025, 3, 3, 12, 0)), None);
}

#[test]
fn bad_schedules_are_refused_naming_the_field() {
    let config = |tz: &str, weekly: Vec<Span>| HoursConfig {
        time_zone: tz.into(),
        weekly,
        holidays: vec![],
    };
    let cases = [
        (
            config("Mars/Olympus", vec![]),
            "time_zone",
            "invalid_time_zone",
        ),
        (
            config("UTC", vec![span(Weekday::Mon, "9", "18:00")]),
            "weekly[0].from",
            "invalid_time",
        ),
        (
            config("UTC", vec![span(Weekday::Mon, "24:00", "18:00")]),
            "weekly[0].from",
            "invalid_time",
        ),
        (
            config("UTC", vec![span(Weekday::Mon, "09:00", "18:60")]),
            "weekly[0].to",
            "invalid_time",
        ),
        (
            config("UTC", vec![span(Weekday::Mon, "09:00", "09:00")]),
            "weekly[0].to",
            "empty_span",
        ),
        (
            config(
                "UTC",
                vec![
                    span(Weekday::Mon, "09:00", "13:00"),
                    span(Weekday::Tue, "09:00", "13:00"),
                    span(Weekday::Mon, "12:00", "18:00"),
                ],
            ),
            "weekly[2]",
            "overlap",
        ),
        (
            config(
                "UTC",
                vec![
                    span(Weekday::Tue, "01:00", "05:00"),
                    span(Weekday::Mon, "22:00", "02:00"),
                ],
            ),
            "weekly[1]",
            "overlap",
        ),
    ];
    for (config, field, code) in cases {
        let err = BusinessHours::new(config.clone()).unwrap_err();
        assert_eq!((err.field.as_str(), err.code), (field, code), "{config:?}");
    }
}

#[test]
fn hours_round_trip_through_json() {
    let json = r#"{"time_zone":"Europe/Moscow",
        "weekly":[{"day":"mon","from":"09:00","to":"18:00"}],
        "holidays":["2025-01-01"]}"#;
    let h: BusinessHours = serde_json::from_str(json).unwrap();
    assert!(h.is_open(utc(2025, 3, 3, 7, 0)));
    assert_eq!(h.time_zone(), Tz::Europe__Moscow);
    let again: BusinessHours = serde_json::from_value(serde_json::to_value(&h).unwrap()).unwrap();
    assert_eq!(again, h);
    let bad = r#"{"time_zone":"Nowhere","weekly":[]}"#;
    assert!(serde_json::from_str::<BusinessHours>(bad).is_err());
}

proptest! {
    /// `next_open` is open, never in the past, and nothing before it is.
    #[test]
    fn next_open_is_the_first_open_minute(
        minutes in 0i64..(60 * 24 * 35),
        from in 0u16..1440,
        len in 1u16..600,
        berlin in any::<bool>(),
        sunday in any::<bool>(),
    ) {
        let to = (from + len) % 1440;
        prop_assume!(to != from);
        let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let tz = if berlin { "Europe/Berlin" } else { "Europe/Moscow" };
        let day = if sunday { Weekday::Sun } else { Weekday::Wed };
        let h = hours(tz, vec![span(day, &hhmm(from), &hhmm(to))], &[]);
        // Five weeks from 1 March 2025 cover the spring change (30 March).
        let now = utc(2025, 3, 1, 0, 0) + chrono::Duration::minutes(minutes);
        let next = h.next_open(now).ok_or_else(|| TestCaseError::fail("never opens"))?;
        prop_assert!(next >= now);
        prop_assert!(h.is_open(next));
        let mut t = now;
        while t < next {
            prop_assert!(!h.is_open(t), "open at {} before {}", t, next);
            t += chrono::Duration::minutes(1);
        }
    }
}
