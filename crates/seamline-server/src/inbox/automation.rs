//! What happens on its own when a customer writes: the team's greeting,
//! its chatbot (in hours) or out-of-hours reply, and the answer to a
//! satisfaction survey ([`csat`]).
//!
//! The bot has a conversation while it waits for the customer's answer and
//! nobody is assigned; routing leaves such a conversation alone ([`holds`]),
//! and so it does while the team is closed. The engine is the core's
//! ([`seamline_core::inbox::bot`]); this module stores its state, sends its
//! replies as bot messages on the customer's channel, passes what it
//! collected to identity resolution and records a hand-off on the timeline.
//! It runs only for a message stored now, never for a provider's retry.

pub mod csat;

use chrono::{DateTime, Utc};
use seamline_bus::Bus;
use seamline_core::inbox::bot::{
    advance, BotAction, BotContext, BotSetup, BotState, CollectField, Collected, Greeting,
};
use seamline_core::inbox::conversation::{AssignReason, StatusChange, SystemEvent};
use seamline_core::inbox::{Channel, Message, MessageKind, Status};
use seamline_core::{ConversationMessageId, TeamId, WorkspaceId};
use seamline_store::{
    AppendedMessage, AssignmentCause, Backend, ConversationUpdate, DeliveryStatus, NewMessage,
    StoreError, StoreResult, StoredConversation, Team,
};
use uuid::Uuid;

use super::live::{publish, LiveEvent};
use super::receive::{identify, Inbound, InboxError};
use super::route::team_of;
use crate::error::ApiError;
use crate::identity::policy_of;

/// The event a bot's collected contacts are resolved as.
const COLLECTED_EVENT: &str = "Bot Collected";

impl From<InboxError> for ApiError {
    fn from(error: InboxError) -> Self {
        match error {
            InboxError::Invalid(field) => field.into(),
            InboxError::Store(store) => store.into(),
        }
    }
}

/// The conversation after automation, and whether routing may assign it now.
#[derive(Debug)]
pub struct Automated {
    pub conversation: StoredConversation,
    pub route: bool,
}

/// The bot waits for this customer's answer, or the team is closed:
/// routing does not assign the conversation now.
pub fn holds(conversation: &StoredConversation, team: &Team, now: DateTime<Utc>) -> bool {
    matches!(conversation.bot, BotState::Waiting { .. }) || !is_open(team, now)
}

fn is_open(team: &Team, now: DateTime<Utc>) -> bool {
    team.hours.as_ref().is_none_or(|hours| hours.is_open(now))
}

/// "Bot handed off: name Olga, phone +79161234567": the hand-off as the
/// operator reads it on the timeline.
pub fn handoff_text(collected: &[Collected]) -> String {
    if collected.is_empty() {
        return "Bot handed off".to_owned();
    }
    let parts: Vec<String> = collected
        .iter()
        .map(|c| format!("{} {}", label(c.field), c.value))
        .collect();
    format!("Bot handed off: {}", parts.join(", "))
}

fn label(field: CollectField) -> &'static str {
    match field {
        CollectField::Name => "name",
        CollectField::Phone => "phone",
        CollectField::Email => "e-mail",
    }
}

/// Runs after `appended` (the customer's message) was stored: answers a
/// pending survey, else greets and runs the team's bot.
pub async fn on_inbound(
    store: &dyn Backend,
    bus: &dyn Bus,
    inbound: &Inbound,
    appended: &AppendedMessage,
) -> Result<Automated, InboxError> {
    let conversation = appended.conversation.clone();
    if !appended.new || inbound.customer.automatic {
        return Ok(Automated {
            conversation,
            route: false,
        });
    }
    let reopened = matches!(
        appended.reopened,
        Some(StatusChange {
            from: Status::Resolved,
            ..
        })
    );
    if reopened {
        if let Some(answered) = csat::answer(store, bus, inbound, &conversation).await? {
            return Ok(Automated {
                conversation: answered,
                route: false,
            });
        }
    }
    let ws = inbound.workspace;
    let teams = store.list_teams(ws).await?;
    let Some(team) = team_of(&teams, &conversation) else {
        return Ok(Automated {
            conversation,
            route: true,
        });
    };
    let open = is_open(team, inbound.at);
    // A reopened conversation is greeted again.
    let state = if reopened {
        BotState::NotStarted
    } else {
        conversation.bot.clone()
    };
    // An operator's conversation is only greeted; the bot stays out of it.
    let with_bot = conversation.conversation.assignee.is_none();
    if state.is_finished() || !(with_bot || state == BotState::NotStarted) {
        return Ok(Automated {
            conversation,
            route: open,
        });
    }
    let policy = policy_of(store, ws).await?;
    let ctx = BotContext {
        open,
        policy: &policy,
    };
    let (next, actions) = plan(&team.bots, &state, &inbound.body, &ctx, with_bot);
    let route = open && !matches!(next, BotState::Waiting { .. });
    let mut latest = rewrite(store, &conversation, inbound.at, |update| {
        let changed = update.bot != next;
        update.bot = next.clone();
        changed
    })
    .await?;
    let (mut collected, mut to_team) = (Vec::new(), None);
    for action in actions {
        let (kind, channel, body) = match action {
            BotAction::SendText { text } => (MessageKind::Bot, inbound.channel, text),
            BotAction::SendButtons { text, buttons } => {
                (MessageKind::Bot, inbound.channel, numbered(&text, &buttons))
            }
            BotAction::Collected { field, value } => {
                collected.push(Collected { field, value });
                continue;
            }
            BotAction::HandOff {
                collected, team, ..
            } => {
                let body = handoff_text(&collected);
                to_team = team.filter(|t| teams.iter().any(|known| known.id == *t));
                let event = SystemEvent::HandedOff { collected, team };
                let kind = MessageKind::Event { actor: None, event };
                (kind, Channel::Internal, body)
            }
            BotAction::End => continue,
        };
        latest = post(store, bus, &latest, kind, channel, body).await?;
    }
    if let Some(team) = to_team {
        latest = pass_to(store, &latest, team, inbound.at).await?;
    }
    if !collected.is_empty() {
        latest = resolve_collected(store, inbound, &collected).await?;
    }
    Ok(Automated {
        conversation: latest,
        route,
    })
}

/// What the bot does with one customer message: the greeting first (in
/// hours, once per conversation or reopen), then (`with_bot`) the flow or
/// the out-of-hours reply. A greeting or reply alone finishes its part.
fn plan(
    setup: &BotSetup,
    state: &BotState,
    input: &str,
    ctx: &BotContext<'_>,
    with_bot: bool,
) -> (BotState, Vec<BotAction>) {
    let fresh = *state == BotState::NotStarted;
    let mut actions: Vec<BotAction> = setup
        .greeting
        .iter()
        .filter(|text| ctx.open && fresh && !text.trim().is_empty())
        .map(|text| BotAction::SendText { text: text.clone() })
        .collect();
    let greeted = !actions.is_empty();
    let finished = BotState::Ended {
        collected: Vec::new(),
    };
    let pick = if with_bot {
        setup.pick(ctx.open)
    } else {
        Greeting::Nothing
    };
    let next = match pick {
        Greeting::Flow(flow) => {
            let (next, more) = advance(flow, state, input, ctx);
            actions.extend(more);
            next
        }
        Greeting::Message(text) if fresh => {
            actions.push(BotAction::SendText { text: text.into() });
            finished
        }
        Greeting::Nothing if greeted => finished,
        Greeting::Message(_) | Greeting::Nothing => state.clone(),
    };
    (next, actions)
}

/// Buttons as numbered lines: every channel can show them, and the engine
/// reads a number as the button's choice.
fn numbered(text: &str, buttons: &[String]) -> String {
    let lines: Vec<String> = buttons
        .iter()
        .enumerate()
        .map(|(i, label)| format!("{}. {label}", i + 1))
        .collect();
    format!("{text}\n{}", lines.join("\n"))
}

/// A hand-off step named the team that takes over: routing then picks
/// among its operators.
async fn pass_to(
    store: &dyn Backend,
    conversation: &StoredConversation,
    team: TeamId,
    at: DateTime<Utc>,
) -> StoreResult<StoredConversation> {
    rewrite(store, conversation, at, |update| {
        update.assignment = Some(AssignmentCause {
            reason: AssignReason::Transfer,
            actor: None,
            note: None,
        });
        update
            .conversation
            .assign(None, Some(team), AssignReason::Transfer)
            .is_some()
    })
    .await
}

/// Applies `change` and writes the conversation over the version read; a
/// conversation written meanwhile is reloaded and changed once more.
/// `change` says whether there is anything to write.
async fn rewrite(
    store: &dyn Backend,
    conversation: &StoredConversation,
    at: DateTime<Utc>,
    change: impl Fn(&mut ConversationUpdate) -> bool,
) -> StoreResult<StoredConversation> {
    let ws = conversation.workspace_id;
    let mut current = conversation.clone();
    for retry in [false, true] {
        let mut update = current.update(at);
        if !change(&mut update) {
            return Ok(current);
        }
        match store.update_conversation(ws, &update).await {
            Err(StoreError::Conflict(_)) if !retry => current = reload(store, ws, &current).await?,
            other => return other,
        }
    }
    Ok(current)
}

async fn reload(
    store: &dyn Backend,
    ws: WorkspaceId,
    conversation: &StoredConversation,
) -> StoreResult<StoredConversation> {
    store
        .conversation(ws, conversation.conversation.id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))
}

/// Appends an automatic message to the conversation and pushes it live;
/// returns the conversation after it.
async fn post(
    store: &dyn Backend,
    bus: &dyn Bus,
    conversation: &StoredConversation,
    kind: MessageKind,
    channel: Channel,
    body: String,
) -> Result<StoredConversation, InboxError> {
    let message = Message::new(
        ConversationMessageId(Uuid::now_v7()),
        conversation.conversation.id,
        kind,
        channel,
        body,
        Utc::now(),
    )?;
    let appended = store
        .append_message(
            conversation.workspace_id,
            &NewMessage {
                message,
                sender: None,
                attachments: Vec::new(),
                external_id: None,
                delivery: awaits_connector(channel),
            },
        )
        .await?;
    publish(bus, LiveEvent::Message(&appended.message)).await;
    Ok(appended.conversation)
}

/// A bot's message on a messenger, SMS or e-mail waits for that channel's
/// connector to send it (the outbox's sweep queues it), as an operator's
/// reply does; the site widget's socket delivers web chat itself.
fn awaits_connector(channel: Channel) -> Option<DeliveryStatus> {
    (channel != Channel::WebChat && channel.is_customer_facing()).then_some(DeliveryStatus::Pending)
}

/// The phone and e-mail the bot collected, resolved like any identify
/// call of this customer: the profile gets them, and merges where the
/// rules say (the conversation then is the survivor's).
async fn resolve_collected(
    store: &dyn Backend,
    inbound: &Inbound,
    collected: &[Collected],
) -> Result<StoredConversation, InboxError> {
    let mut customer = inbound.customer.clone();
    for c in collected {
        match c.field {
            CollectField::Phone => customer.phone = Some(c.value.clone()),
            CollectField::Email => customer.email = Some(c.value.clone()),
            CollectField::Name => {}
        }
    }
    let with_contacts = Inbound {
        customer,
        ..inbound.clone()
    };
    let profile = identify(store, &with_contacts, COLLECTED_EVENT).await?;
    Ok(store
        .conversation_for_profile(inbound.workspace, profile, inbound.at)
        .await?
        .0)
}

#[cfg(test)]
mod tests {
    use seamline_core::identity::IdentityPolicy;
    use seamline_core::inbox::bot::{Flow, OutOfHours};

    use super::*;

    fn flow() -> Flow {
        Flow::from_json(
            r#"{"start": "phone", "steps": {
                "phone": {"type": "ask", "field": "phone", "prompt": "Your phone?", "next": "human"},
                "human": {"type": "hand_off", "text": "Connecting you"}}}"#,
        )
        .expect("flow")
    }

    fn texts(actions: &[BotAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                BotAction::SendText { text } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_greeting_comes_once_then_the_flow() {
        let policy = IdentityPolicy::default();
        let ctx = BotContext {
            open: true,
            policy: &policy,
        };
        let setup = BotSetup {
            greeting: Some("Hello!".into()),
            flow: Some(flow()),
            out_of_hours: None,
        };
        let (state, actions) = plan(&setup, &BotState::NotStarted, "hi", &ctx, true);
        assert_eq!(texts(&actions), ["Hello!", "Your phone?"]);
        let (state, actions) = plan(&setup, &state, "+7 916 123-45-67", &ctx, true);
        assert_eq!(texts(&actions), ["Connecting you"]);
        assert!(state.is_finished());
    }

    #[test]
    fn an_operators_conversation_is_only_greeted() {
        let policy = IdentityPolicy::default();
        let ctx = BotContext {
            open: true,
            policy: &policy,
        };
        let setup = BotSetup {
            greeting: Some("Hello!".into()),
            flow: Some(flow()),
            out_of_hours: None,
        };
        let (state, actions) = plan(&setup, &BotState::NotStarted, "hi", &ctx, false);
        assert_eq!(texts(&actions), ["Hello!"]);
        assert!(state.is_finished());
    }

    #[test]
    fn out_of_hours_the_reply_is_sent_once_and_nobody_is_greeted() {
        let policy = IdentityPolicy::default();
        let ctx = BotContext {
            open: false,
            policy: &policy,
        };
        let setup = BotSetup {
            greeting: Some("Hello!".into()),
            flow: None,
            out_of_hours: Some(OutOfHours::Message {
                text: "We open at 9.".into(),
            }),
        };
        let (state, actions) = plan(&setup, &BotState::NotStarted, "hi", &ctx, true);
        assert_eq!(texts(&actions), ["We open at 9."]);
        let (_, again) = plan(&setup, &state, "hello?", &ctx, true);
        assert!(again.is_empty());
    }

    #[test]
    fn a_handoff_names_what_was_collected() {
        let collected = [
            Collected {
                field: CollectField::Name,
                value: "Olga".into(),
            },
            Collected {
                field: CollectField::Phone,
                value: "+79161234567".into(),
            },
        ];
        assert_eq!(
            handoff_text(&collected),
            "Bot handed off: name Olga, phone +79161234567"
        );
        assert_eq!(handoff_text(&[]), "Bot handed off");
    }

    #[test]
    fn buttons_are_numbered() {
        let body = numbered("Pick", &["Delivery".into(), "A person".into()]);
        assert_eq!(body, "Pick\n1. Delivery\n2. A person");
    }
}
