use super::*;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap()
}

fn conversation() -> Conversation {
    Conversation::new(
        ConversationId(Uuid::from_u128(1)),
        ProfileId(Uuid::from_u128(2)),
        now(),
    )
}

fn in_status(status: Status) -> Conversation {
    let mut c = conversation();
    c.status = status;
    c
}

fn member(n: u128) -> MemberId {
    MemberId(Uuid::from_u128(n))
}

fn snoozed() -> Status {
    Status::Snoozed {
        until: now() + Duration::hours(1),
    }
}

#[test]
fn a_new_conversation_is_open_and_unassigned() {
    let c = conversation();
    assert_eq!(c.status, Status::Open);
    assert_eq!(
        (c.assignee, c.team, c.priority),
        (None, None, Priority::None)
    );
    assert_eq!(
        c.reply_channel(None),
        Err(ConversationError::NoReplyChannel)
    );
}

#[test]
fn an_inbound_message_reopens_anything_not_open() {
    for status in [Status::Pending, snoozed(), Status::Resolved] {
        let mut c = in_status(status);
        let change = c.receive(Channel::Telegram, now()).unwrap();
        assert_eq!(
            change,
            Some(StatusChange {
                from: status,
                to: Status::Open
            })
        );
        assert_eq!(c.status, Status::Open);
    }
    let mut open = conversation();
    assert_eq!(open.receive(Channel::Telegram, now()), Ok(None));
}

#[test]
fn the_default_reply_goes_to_the_channel_the_customer_last_used() {
    let mut c = conversation();
    c.receive(Channel::WebChat, now()).unwrap();
    c.receive(Channel::WhatsApp, now() + Duration::minutes(5))
        .unwrap();
    assert_eq!(c.reply_channel(None), Ok(Channel::WhatsApp));
    assert_eq!(c.reply_channel(Some(Channel::Email)), Ok(Channel::Email));
    assert_eq!(
        c.reply_channel(Some(Channel::Internal)),
        Err(ConversationError::NotACustomerChannel(Channel::Internal))
    );
    assert_eq!(
        c.receive(Channel::Internal, now()),
        Err(ConversationError::NotACustomerChannel(Channel::Internal))
    );
}

#[test]
fn waiting_runs_from_the_first_unanswered_message_to_a_reply() {
    let mut c = conversation();
    c.receive(Channel::Sms, now()).unwrap();
    c.receive(Channel::Sms, now() + Duration::minutes(2))
        .unwrap();
    assert_eq!(c.waiting_since, Some(now()));
    c.replied();
    assert_eq!(c.waiting_since, None);
    c.receive(Channel::Sms, now() + Duration::minutes(9))
        .unwrap();
    assert_eq!(c.waiting_since, Some(now() + Duration::minutes(9)));
    c.resolve().unwrap();
    assert_eq!(c.waiting_since, None);
}

#[test]
fn transitions_that_make_sense_succeed() {
    let mut c = conversation();
    assert_eq!(c.mark_pending().map(|s| s.to), Ok(Status::Pending));
    let until = now() + Duration::hours(2);
    let change = c.snooze(until, now()).unwrap();
    assert_eq!(change.from, Status::Pending);
    assert_eq!(
        change.event(),
        SystemEvent::StatusChanged {
            from: StatusName::Pending,
            to: StatusName::Snoozed,
            until: Some(until)
        }
    );
    let later = now() + Duration::hours(3);
    assert_eq!(
        c.snooze(later, now()).map(|s| s.to),
        Ok(Status::Snoozed { until: later })
    );
    assert_eq!(c.resolve().map(|s| s.to), Ok(Status::Resolved));
    assert_eq!(c.reopen().map(|s| s.to), Ok(Status::Open));
}

#[test]
fn transitions_that_make_no_sense_are_refused() {
    use ConversationError::*;
    let until = now() + Duration::hours(1);
    assert_eq!(conversation().reopen(), Err(Already(StatusName::Open)));
    assert_eq!(
        in_status(Status::Pending).mark_pending(),
        Err(Already(StatusName::Pending))
    );
    assert_eq!(
        in_status(Status::Resolved).resolve(),
        Err(Already(StatusName::Resolved))
    );
    assert_eq!(
        in_status(Status::Resolved).mark_pending(),
        Err(ReopenFirst(StatusName::Pending))
    );
    assert_eq!(
        in_status(Status::Resolved).snooze(until, now()),
        Err(ReopenFirst(StatusName::Snoozed))
    );
    assert_eq!(
        in_status(Status::Snoozed { until }).snooze(until, now()),
        Err(Already(StatusName::Snoozed))
    );
    assert_eq!(
        conversation().snooze(now(), now()),
        Err(SnoozeNotInFuture(now()))
    );
    let mut c = conversation();
    assert!(c.snooze(now() - Duration::seconds(1), now()).is_err());
    assert_eq!(c.status, Status::Open, "a refused change changes nothing");
}

#[test]
fn a_snooze_wakes_when_due_and_not_before() {
    let until = now() + Duration::minutes(30);
    let mut c = in_status(Status::Snoozed { until });
    assert!(!c.wake_due(now()));
    assert_eq!(c.wake(now()), None);
    assert!(c.wake_due(until));
    assert_eq!(
        c.wake(until + Duration::seconds(1)).map(|s| s.to),
        Some(Status::Open)
    );
    assert!(!c.wake_due(until));
    assert!(!in_status(Status::Resolved).wake_due(until));
}

#[test]
fn assignment_reports_only_changes() {
    let mut c = conversation();
    let team = Some(TeamId(Uuid::from_u128(5)));
    assert_eq!(
        c.assign(Some(member(3)), team, AssignReason::RoundRobin),
        Some(SystemEvent::Assigned {
            operator: Some(member(3)),
            team,
            reason: AssignReason::RoundRobin
        })
    );
    assert_eq!(c.assign(Some(member(3)), team, AssignReason::Manual), None);
    // A transfer to the team: back to its queue, no operator.
    assert!(c.assign(None, team, AssignReason::Transfer).is_some());
    assert_eq!((c.assignee, c.team), (None, team));
}

#[test]
fn priority_and_labels_report_only_changes() {
    let mut c = conversation();
    assert_eq!(
        c.set_priority(Priority::Urgent),
        Some(SystemEvent::PriorityChanged {
            from: Priority::None,
            to: Priority::Urgent
        })
    );
    assert_eq!(c.set_priority(Priority::Urgent), None);
    let vip = Label::parse("VIP").unwrap();
    assert!(c.add_label(vip.clone()).is_some());
    assert_eq!(c.add_label(Label::parse(" vip ").unwrap()), None);
    assert_eq!(c.labels.len(), 1);
    assert!(c.remove_label(&vip).is_some());
    assert_eq!(c.remove_label(&vip), None);
}

#[test]
fn status_names_parse_and_conversations_serialise_flat() {
    for name in StatusName::ALL {
        assert_eq!(name.as_str().parse::<StatusName>(), Ok(name));
    }
    assert_eq!("closed".parse::<StatusName>().unwrap_err().field, "status");
    let c = in_status(snoozed());
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["status"], "snoozed");
    assert!(json["until"].is_string());
    assert_eq!(serde_json::from_value::<Conversation>(json).unwrap(), c);
}

fn any_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Open),
        Just(Status::Pending),
        (1i64..100).prop_map(|m| Status::Snoozed {
            until: now() + Duration::minutes(m)
        }),
        Just(Status::Resolved),
    ]
}

proptest! {
    /// Whatever happened before, the customer's message leaves it open.
    #[test]
    fn after_an_inbound_message_it_is_always_open(
        start in any_status(),
        ops in proptest::collection::vec(0u8..5, 0..12),
    ) {
        let mut c = in_status(start);
        for op in ops {
            let _ = match op {
                0 => c.reopen(),
                1 => c.mark_pending(),
                2 => c.snooze(now() + Duration::minutes(5), now()),
                3 => c.resolve(),
                _ => c.wake(now() + Duration::days(1)).ok_or(ConversationError::NoReplyChannel),
            };
        }
        c.receive(Channel::Vk, now()).unwrap();
        prop_assert_eq!(c.status, Status::Open);
        prop_assert_eq!(c.reply_channel(None), Ok(Channel::Vk));
    }

    /// A refused transition leaves the state as it was.
    #[test]
    fn refusals_change_nothing(start in any_status(), op in 0u8..4) {
        let mut c = in_status(start);
        let before = c.clone();
        let result = match op {
            0 => c.reopen(),
            1 => c.mark_pending(),
            2 => c.snooze(now(), now()),
            _ => c.resolve(),
        };
        if result.is_err() {
            prop_assert_eq!(c, before);
        }
    }
}
