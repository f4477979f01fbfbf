use super::*;
use proptest::prelude::*;

const SHOP: &str = r#"{
  "start": "greet",
  "handoff_keywords": ["operator", "человек*"],
  "steps": {
    "greet": {"type": "send", "text": "Hello! I am the shop's bot.", "next": "menu"},
    "menu": {"type": "buttons", "text": "How can we help?", "buttons": [
      {"label": "Delivery", "next": "faq"},
      {"label": "Order status", "next": "ask_name"},
      {"label": "Bye", "next": "bye"}]},
    "faq": {"type": "faq", "prompt": "Ask about delivery.",
      "answers": [{"keywords": ["how long", "доставк*"], "text": "Two days."}],
      "otherwise": "ask_name"},
    "ask_name": {"type": "ask", "field": "name", "prompt": "Your name?", "next": "ask_phone"},
    "ask_phone": {"type": "ask", "field": "phone", "prompt": "Your phone?",
      "retry": "Try like +7 916 123-45-67.", "next": "ask_email"},
    "ask_email": {"type": "ask", "field": "email", "prompt": "Your e-mail?", "next": "human"},
    "human": {"type": "hand_off", "text": "Connecting you.",
      "closed_text": "We are closed; we write back at 9:00."},
    "bye": {"type": "end", "text": "Bye!"}
  }
}"#;

fn shop() -> Flow {
    Flow::from_json(SHOP).unwrap()
}

struct Chat {
    flow: Flow,
    state: BotState,
    policy: IdentityPolicy,
    open: bool,
}

impl Chat {
    fn new(flow: Flow) -> Self {
        Self {
            flow,
            state: BotState::NotStarted,
            policy: IdentityPolicy::default(),
            open: true,
        }
    }

    fn say(&mut self, input: &str) -> Vec<BotAction> {
        let ctx = BotContext {
            open: self.open,
            policy: &self.policy,
        };
        let (state, actions) = advance(&self.flow, &self.state, input, &ctx);
        self.state = state;
        actions
    }

    fn waiting_at(&self) -> Option<&str> {
        match &self.state {
            BotState::Waiting { step, .. } => Some(step),
            _ => None,
        }
    }
}

fn text(t: &str) -> BotAction {
    BotAction::SendText { text: t.into() }
}

fn collected(field: CollectField, value: &str) -> Collected {
    Collected {
        field,
        value: value.into(),
    }
}

#[test]
fn the_first_message_starts_the_flow() {
    let mut chat = Chat::new(shop());
    assert_eq!(
        chat.say("hi"),
        [
            text("Hello! I am the shop's bot."),
            BotAction::SendButtons {
                text: "How can we help?".into(),
                buttons: vec!["Delivery".into(), "Order status".into(), "Bye".into()],
            }
        ]
    );
    assert_eq!(chat.waiting_at(), Some("menu"));
}

#[test]
fn collects_name_phone_and_email_then_hands_off_with_them() {
    let mut chat = Chat::new(shop());
    chat.say("hi");
    assert_eq!(chat.say("  order STATUS "), [text("Your name?")]);
    assert_eq!(
        chat.say("  Olga   Smirnova "),
        [
            BotAction::Collected {
                field: CollectField::Name,
                value: "Olga Smirnova".into()
            },
            text("Your phone?")
        ]
    );
    assert_eq!(chat.say("call me"), [text("Try like +7 916 123-45-67.")]);
    assert_eq!(
        chat.say("8 (111) 111-11-11"),
        [text("Try like +7 916 123-45-67.")]
    );
    assert_eq!(
        chat.say("8 916 123-45-67"),
        [
            BotAction::Collected {
                field: CollectField::Phone,
                value: "+79161234567".into()
            },
            text("Your e-mail?")
        ]
    );
    let everything = vec![
        collected(CollectField::Name, "Olga Smirnova"),
        collected(CollectField::Phone, "+79161234567"),
        collected(CollectField::Email, "olga@shop.ru"),
    ];
    assert_eq!(
        chat.say("Olga@Shop.RU"),
        [
            BotAction::Collected {
                field: CollectField::Email,
                value: "olga@shop.ru".into()
            },
            text("Connecting you."),
            BotAction::HandOff {
                collected: everything.clone(),
                team: None,
                reason: HandOffReason::Flow
            }
        ]
    );
    assert_eq!(
        chat.state,
        BotState::HandedOff {
            collected: everything
        }
    );
    assert!(chat.state.is_finished());
    assert_eq!(chat.say("hello?"), [], "a finished bot stays quiet");
}

#[test]
fn out_of_hours_the_hand_off_says_so() {
    let mut chat = Chat::new(shop());
    chat.open = false;
    chat.say("hi");
    let actions = chat.say("I want a человека please");
    assert!(matches!(
        actions.as_slice(),
        [BotAction::HandOff {
            reason: HandOffReason::Asked,
            ..
        }]
    ));
    let mut chat = Chat::new(shop());
    chat.open = false;
    chat.say("hi");
    chat.say("2");
    chat.say("Olga");
    chat.say("+79161234567");
    let actions = chat.say("olga@shop.ru");
    assert!(actions.contains(&text("We are closed; we write back at 9:00.")));
    assert!(!actions.contains(&text("Connecting you.")));
}

#[test]
fn buttons_answer_to_their_number() {
    let mut chat = Chat::new(shop());
    chat.say("hi");
    assert_eq!(chat.say("3."), [text("Bye!"), BotAction::End]);
    assert!(matches!(chat.state, BotState::Ended { .. }));
}

#[test]
fn a_customer_not_understood_three_times_gets_a_person() {
    let mut chat = Chat::new(shop());
    chat.say("hi");
    for _ in 0..2 {
        let again = chat.say("what?");
        assert!(matches!(again.as_slice(), [BotAction::SendButtons { .. }]));
    }
    let actions = chat.say("what??");
    assert!(matches!(
        actions.as_slice(),
        [BotAction::HandOff {
            reason: HandOffReason::NotUnderstood,
            ..
        }]
    ));
}

#[test]
fn a_hand_off_keyword_works_at_any_point_and_keeps_what_was_collected() {
    let mut chat = Chat::new(shop());
    chat.say("hi");
    chat.say("order status");
    chat.say("Olga");
    let actions = chat.say("just give me an OPERATOR");
    assert_eq!(
        actions,
        [BotAction::HandOff {
            collected: vec![collected(CollectField::Name, "Olga")],
            team: None,
            reason: HandOffReason::Asked
        }]
    );
    // "operators" is not the keyword "operator".
    let mut chat = Chat::new(shop());
    chat.say("hi");
    chat.say("1");
    assert_eq!(chat.waiting_at(), Some("faq"));
    chat.say("are your operators nice?");
    assert_eq!(chat.waiting_at(), Some("ask_name"));
}

#[test]
fn faq_answers_until_it_does_not_know() {
    let mut chat = Chat::new(shop());
    chat.say("hi");
    assert_eq!(chat.say("Delivery"), [text("Ask about delivery.")]);
    assert_eq!(chat.say("How long does it take?"), [text("Two days.")]);
    assert_eq!(chat.say("А доставка в Казань?"), [text("Two days.")]);
    assert_eq!(chat.waiting_at(), Some("faq"));
    assert_eq!(chat.say("can I pay by card?"), [text("Your name?")]);
}

#[test]
fn a_flow_starting_with_keywords_reads_the_first_message() {
    let flow = Flow::from_json(
        r#"{"start": "route", "steps": {
            "route": {"type": "keywords", "prompt": "What about?",
              "branches": [{"keywords": ["price", "cost*"], "next": "prices"}],
              "otherwise": "human"},
            "prices": {"type": "end", "text": "See /prices."},
            "human": {"type": "hand_off", "team": "0195f3a0-0000-7000-8000-000000000001"}}}"#,
    )
    .unwrap();
    let mut chat = Chat::new(flow.clone());
    assert_eq!(
        chat.say("What does it COST?"),
        [text("See /prices."), BotAction::End]
    );
    let mut chat = Chat::new(flow);
    let actions = chat.say("hello");
    assert!(matches!(
        actions.as_slice(),
        [BotAction::HandOff {
            team: Some(_),
            reason: HandOffReason::Flow,
            ..
        }]
    ));
}

#[test]
fn start_greets_without_a_message() {
    let policy = IdentityPolicy::default();
    let ctx = BotContext {
        open: true,
        policy: &policy,
    };
    let (state, actions) = start(&shop(), &ctx);
    assert_eq!(actions.len(), 2);
    assert!(matches!(state, BotState::Waiting { ref step, attempts: 0, .. } if step == "menu"));
}

#[test]
fn a_customer_waiting_on_a_step_that_is_gone_goes_to_a_person() {
    let mut chat = Chat::new(shop());
    chat.state = BotState::Waiting {
        step: "removed".into(),
        attempts: 0,
        collected: vec![collected(CollectField::Name, "Olga")],
    };
    let actions = chat.say("hello");
    assert_eq!(
        actions,
        [BotAction::HandOff {
            collected: vec![collected(CollectField::Name, "Olga")],
            team: None,
            reason: HandOffReason::FlowChanged
        }]
    );
    chat.state = BotState::Waiting {
        step: "greet".into(),
        attempts: 0,
        collected: vec![],
    };
    assert!(matches!(
        chat.say("hi").as_slice(),
        [BotAction::HandOff {
            reason: HandOffReason::FlowChanged,
            ..
        }]
    ));
}

#[test]
fn names_are_plausible_or_asked_again() {
    let policy = IdentityPolicy::default();
    assert_eq!(
        CollectField::Name
            .accept(" Анна  Мария ", &policy)
            .as_deref(),
        Some("Анна Мария")
    );
    for bad in ["", "123", "a@b.ru", &"x".repeat(101)] {
        assert_eq!(CollectField::Name.accept(bad, &policy), None, "{bad:?}");
    }
    assert_eq!(CollectField::Email.accept("test@test.com", &policy), None);
    assert_eq!(CollectField::Email.as_str(), "email");
}

fn refusal(json: &str) -> (String, &'static str) {
    let err = Flow::from_json(json).unwrap_err();
    (err.field, err.code)
}

#[test]
fn bad_flows_are_refused_naming_the_field() {
    let cases = [
        (
            r#"{"start": "a", "steps": {"a": {"type": "send", "text": "x", "next": "b"}}}"#,
            "steps.a.next",
            "unknown_step",
        ),
        (
            r#"{"start": "z", "steps": {"a": {"type": "end"}}}"#,
            "start",
            "unknown_step",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "end"}, "orphan": {"type": "end"}}}"#,
            "steps.orphan",
            "unreachable",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "send", "text": "x", "next": "b"},
               "b": {"type": "send", "text": "y", "next": "a"}}}"#,
            "steps.a.next",
            "loop_without_input",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "buttons", "text": "x", "buttons": [
               {"label": "Yes", "next": "a"}, {"label": " yes ", "next": "a"}]}}}"#,
            "steps.a.buttons[1].label",
            "duplicate",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "buttons", "text": "x", "buttons": []}}}"#,
            "steps.a.buttons",
            "invalid_buttons",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "send", "text": " ", "next": "b"},
               "b": {"type": "end"}}}"#,
            "steps.a.text",
            "required",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "keywords", "otherwise": "a",
               "branches": [{"keywords": ["ok", "!!"], "next": "a"}]}}}"#,
            "steps.a.branches[0].keywords[1]",
            "invalid_keyword",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "faq", "otherwise": "a", "answers": []}}}"#,
            "steps.a.answers",
            "required",
        ),
        (
            r#"{"start": "a b", "steps": {"a b": {"type": "end"}}}"#,
            "steps.a b",
            "invalid_step_id",
        ),
        (r#"{"start": "a", "steps": {}}"#, "steps", "invalid_steps"),
        (
            r#"{"start": "a", "handoff_keywords": [""], "steps": {"a": {"type": "end"}}}"#,
            "handoff_keywords[0]",
            "invalid_keyword",
        ),
        (
            r#"{"start": "a", "steps": {"a": {"type": "end", "txt": "typo"}}}"#,
            "flow",
            "invalid_json",
        ),
        (r#"{"start": "a""#, "flow", "invalid_json"),
    ];
    for (json, field, code) in cases {
        assert_eq!(refusal(json), (field.to_owned(), code), "{json}");
    }
}

#[test]
fn flows_and_states_round_trip_through_json() {
    let flow = shop();
    let json = serde_json::to_string(&flow).unwrap();
    assert_eq!(serde_json::from_str::<Flow>(&json).unwrap(), flow);
    assert!(serde_json::from_str::<Flow>(r#"{"start": "x", "steps": {}}"#).is_err());
    let mut chat = Chat::new(flow);
    chat.say("hi");
    chat.say("2");
    chat.say("Olga");
    let state = serde_json::to_value(&chat.state).unwrap();
    assert_eq!(state["state"], "waiting");
    assert_eq!(state["collected"][0]["field"], "name");
    assert_eq!(
        serde_json::from_value::<BotState>(state).unwrap(),
        chat.state
    );
}

#[test]
fn out_of_hours_setup_picks_what_greets() {
    let flow = shop();
    let night =
        Flow::from_json(r#"{"start": "a", "steps": {"a": {"type": "end", "text": "Night."}}}"#)
            .unwrap();
    let message = |text: &str| OutOfHours::Message { text: text.into() };
    let setup = |flow: Option<Flow>, out: Option<OutOfHours>| BotSetup {
        greeting: None,
        flow,
        out_of_hours: out,
    };
    let s = setup(
        Some(flow.clone()),
        Some(OutOfHours::Flow {
            flow: night.clone(),
        }),
    );
    assert_eq!(s.pick(true), Greeting::Flow(&flow));
    assert_eq!(s.pick(false), Greeting::Flow(&night));
    let s = setup(None, Some(message("Back at 9.")));
    assert_eq!(s.pick(true), Greeting::Nothing);
    assert_eq!(s.pick(false), Greeting::Message("Back at 9."));
    let s = setup(Some(flow.clone()), Some(message(" ")));
    assert_eq!(s.pick(false), Greeting::Flow(&flow));
    assert_eq!(BotSetup::default().pick(false), Greeting::Nothing);
    let json = r#"{"out_of_hours": {"type": "message", "text": "Back at 9."}}"#;
    let parsed: BotSetup = serde_json::from_str(json).unwrap();
    assert_eq!(parsed.pick(false), Greeting::Message("Back at 9."));
}

/// Random small flows: step `i` of each kind, linking to random steps.
fn any_step(n: usize) -> impl Strategy<Value = Step> {
    let to = move || (0..n).prop_map(|i| format!("s{i}"));
    prop_oneof![
        to().prop_map(|next| Step::Send {
            text: "m".into(),
            next
        }),
        (
            proptest::collection::vec(to(), 1..4),
            proptest::option::of(to())
        )
            .prop_map(|(targets, otherwise)| Step::Buttons {
                text: "b".into(),
                buttons: targets
                    .into_iter()
                    .enumerate()
                    .map(|(i, next)| Button {
                        label: format!("b{i}"),
                        next
                    })
                    .collect(),
                otherwise,
            }),
        (to(), to()).prop_map(|(next, otherwise)| Step::Keywords {
            prompt: None,
            branches: vec![Branch {
                keywords: vec!["yes".into()],
                next
            }],
            otherwise,
        }),
        to().prop_map(|next| Step::Ask {
            field: CollectField::Phone,
            prompt: "p".into(),
            retry: None,
            next,
        }),
        (proptest::option::of(to()), to()).prop_map(|(next, otherwise)| Step::Faq {
            prompt: Some("q".into()),
            answers: vec![Answer {
                keywords: vec!["price".into()],
                text: "a".into()
            }],
            next,
            otherwise,
        }),
        Just(Step::HandOff {
            text: None,
            closed_text: None,
            team: None
        }),
        Just(Step::End { text: None }),
    ]
}

fn any_flow() -> impl Strategy<Value = FlowDefinition> {
    (1usize..7).prop_flat_map(|n| {
        proptest::collection::vec(any_step(n), n).prop_map(|steps| FlowDefinition {
            start: "s0".into(),
            steps: steps
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("s{i}"), s))
                .collect(),
            handoff_keywords: vec![],
        })
    })
}

proptest! {
    /// A flow that passes the checks never runs away: every message ends
    /// waiting on a step that reads input, or finished.
    #[test]
    fn checked_flows_always_stop(
        definition in any_flow(),
        inputs in proptest::collection::vec(
            prop_oneof![Just("yes".to_owned()), Just("1".to_owned()), Just("price".to_owned()),
                        Just("+79161234567".to_owned()), "\\PC{0,12}"],
            1..12),
    ) {
        let steps = definition.steps.len();
        let flow = Flow::new(definition);
        prop_assume!(flow.is_ok());
        let Ok(flow) = flow else { return Ok(()) };
        let mut chat = Chat::new(flow);
        for input in inputs {
            let actions = chat.say(&input);
            prop_assert!(actions.len() <= steps * 2 + 2);
            match &chat.state {
                BotState::Waiting { step, attempts, .. } => {
                    prop_assert!(chat.flow.step(step).is_some_and(Step::reads_input));
                    prop_assert!(*attempts < MAX_ATTEMPTS);
                }
                BotState::NotStarted => prop_assert!(false, "a message always starts the bot"),
                _ => {}
            }
        }
    }
}
