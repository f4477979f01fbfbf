//! Runs a flow: `advance(flow, state, message) -> (state, actions)`. Pure:
//! the caller stores the state with the conversation and carries out the
//! actions (send, record collected data, hand off).
//!
//! The customer's first message starts the flow. When the start step is a
//! keywords or FAQ step, that first message is what it reads ("how much is
//! delivery?" gets its answer at once); otherwise it only wakes the bot.
//! A customer the bot fails to understand [`MAX_ATTEMPTS`] times in a row
//! on one step is handed to a person, and so is one who types a hand-off
//! keyword at any point.

use serde::{Deserialize, Serialize};

use super::flow::{Button, Flow, Step};
use super::{CollectField, Collected};
use crate::identity::IdentityPolicy;
use crate::ids::TeamId;

/// Failed answers on one step before a person takes over.
pub const MAX_ATTEMPTS: u8 = 3;

/// What the engine needs to know about the world.
#[derive(Debug, Clone, Copy)]
pub struct BotContext<'a> {
    /// The team is within business hours.
    pub open: bool,
    pub policy: &'a IdentityPolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BotState {
    #[default]
    NotStarted,
    /// Waiting for the customer's answer to `step`.
    Waiting {
        step: String,
        /// Failed answers so far.
        attempts: u8,
        collected: Vec<Collected>,
    },
    HandedOff {
        collected: Vec<Collected>,
    },
    Ended {
        collected: Vec<Collected>,
    },
}

impl BotState {
    /// The bot is done with this conversation.
    pub fn is_finished(&self) -> bool {
        matches!(self, BotState::HandedOff { .. } | BotState::Ended { .. })
    }

    pub fn collected(&self) -> &[Collected] {
        match self {
            BotState::NotStarted => &[],
            BotState::Waiting { collected, .. }
            | BotState::HandedOff { collected }
            | BotState::Ended { collected } => collected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BotAction {
    SendText {
        text: String,
    },
    /// Text with reply buttons (channels without buttons number them).
    SendButtons {
        text: String,
        buttons: Vec<String>,
    },
    /// A valid answer, normalised: record it on the profile.
    Collected {
        field: CollectField,
        value: String,
    },
    /// To a person, with everything collected; `team` none: the
    /// conversation's own.
    HandOff {
        collected: Vec<Collected>,
        team: Option<TeamId>,
        reason: HandOffReason,
    },
    /// The flow ended without a person.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandOffReason {
    /// A hand-off step.
    Flow,
    /// The customer asked for a person.
    Asked,
    /// The bot failed to understand the customer.
    NotUnderstood,
    /// The flow changed under a waiting customer.
    FlowChanged,
}

/// Runs the flow from its start without a message (a widget greeting as
/// the chat opens).
pub fn start(flow: &Flow, ctx: &BotContext<'_>) -> (BotState, Vec<BotAction>) {
    let mut run = Run::new(flow, ctx, Vec::new());
    let state = run.enter(flow.start());
    (state, run.actions)
}

/// Feeds one customer message to the bot.
pub fn advance(
    flow: &Flow,
    state: &BotState,
    input: &str,
    ctx: &BotContext<'_>,
) -> (BotState, Vec<BotAction>) {
    if state.is_finished() {
        return (state.clone(), Vec::new());
    }
    let mut run = Run::new(flow, ctx, state.collected().to_vec());
    let words = words(input);
    let next = if flow
        .handoff_keywords()
        .iter()
        .any(|k| has_keyword(&words, k))
    {
        run.hand_off(None, HandOffReason::Asked)
    } else {
        match state {
            BotState::Waiting { step, attempts, .. } => run.answer(step, *attempts, input),
            _ => match flow.step(flow.start()) {
                Some(Step::Keywords { .. } | Step::Faq { .. }) => {
                    run.answer(flow.start(), 0, input)
                }
                _ => run.enter(flow.start()),
            },
        }
    };
    (next, run.actions)
}

struct Run<'a> {
    flow: &'a Flow,
    ctx: &'a BotContext<'a>,
    collected: Vec<Collected>,
    actions: Vec<BotAction>,
}

impl<'a> Run<'a> {
    fn new(flow: &'a Flow, ctx: &'a BotContext<'a>, collected: Vec<Collected>) -> Self {
        Self {
            flow,
            ctx,
            collected,
            actions: Vec::new(),
        }
    }

    /// Runs from `id` until a step waits for the customer or the flow ends.
    /// Stops: a checked flow has no loop of steps that do not wait.
    fn enter(&mut self, id: &str) -> BotState {
        let flow = self.flow;
        let mut id = id;
        loop {
            let Some(step) = flow.step(id) else {
                return self.hand_off(None, HandOffReason::FlowChanged);
            };
            match step {
                Step::Send { text, next } => {
                    self.say(text);
                    id = next;
                }
                Step::Buttons { text, buttons, .. } => {
                    self.show_buttons(text, buttons);
                    return self.wait(id, 0);
                }
                Step::Keywords { prompt, .. } | Step::Faq { prompt, .. } => {
                    if let Some(prompt) = prompt {
                        self.say(prompt);
                    }
                    return self.wait(id, 0);
                }
                Step::Ask { prompt, .. } => {
                    self.say(prompt);
                    return self.wait(id, 0);
                }
                Step::HandOff {
                    text,
                    closed_text,
                    team,
                } => {
                    let text = match (self.ctx.open, closed_text) {
                        (false, Some(closed)) => Some(closed),
                        _ => text.as_ref(),
                    };
                    if let Some(text) = text {
                        self.say(text);
                    }
                    return self.hand_off(*team, HandOffReason::Flow);
                }
                Step::End { text } => {
                    if let Some(text) = text {
                        self.say(text);
                    }
                    self.actions.push(BotAction::End);
                    return BotState::Ended {
                        collected: std::mem::take(&mut self.collected),
                    };
                }
            }
        }
    }

    /// The customer answered step `id`.
    fn answer(&mut self, id: &str, attempts: u8, input: &str) -> BotState {
        let flow = self.flow;
        match flow.step(id) {
            Some(Step::Buttons {
                text,
                buttons,
                otherwise,
            }) => match (pick(buttons, input), otherwise) {
                (Some(button), _) => self.enter(&button.next),
                (None, Some(otherwise)) => self.enter(otherwise),
                (None, None) => self.retry(id, attempts, |run| run.show_buttons(text, buttons)),
            },
            Some(Step::Keywords {
                branches,
                otherwise,
                ..
            }) => {
                let words = words(input);
                let branch = branches
                    .iter()
                    .find(|b| b.keywords.iter().any(|k| has_keyword(&words, k)));
                self.enter(branch.map_or(otherwise, |b| &b.next))
            }
            Some(Step::Ask {
                field,
                prompt,
                retry,
                next,
            }) => match field.accept(input, self.ctx.policy) {
                Some(value) => {
                    self.collect(*field, value);
                    self.enter(next)
                }
                None => self.retry(id, attempts, |run| {
                    run.say(retry.as_ref().unwrap_or(prompt));
                }),
            },
            Some(Step::Faq {
                answers,
                next,
                otherwise,
                ..
            }) => {
                let words = words(input);
                let answer = answers
                    .iter()
                    .find(|a| a.keywords.iter().any(|k| has_keyword(&words, k)));
                match (answer, next) {
                    (Some(answer), Some(next)) => {
                        self.say(&answer.text);
                        self.enter(next)
                    }
                    (Some(answer), None) => {
                        self.say(&answer.text);
                        self.wait(id, 0)
                    }
                    (None, _) => self.enter(otherwise),
                }
            }
            // Never waited on: the flow changed under the customer.
            Some(Step::Send { .. } | Step::HandOff { .. } | Step::End { .. }) | None => {
                self.hand_off(None, HandOffReason::FlowChanged)
            }
        }
    }

    fn retry(&mut self, id: &str, attempts: u8, ask_again: impl FnOnce(&mut Self)) -> BotState {
        let attempts = attempts.saturating_add(1);
        if attempts >= MAX_ATTEMPTS {
            return self.hand_off(None, HandOffReason::NotUnderstood);
        }
        ask_again(self);
        self.wait(id, attempts)
    }

    fn say(&mut self, text: &str) {
        self.actions.push(BotAction::SendText { text: text.into() });
    }

    fn show_buttons(&mut self, text: &str, buttons: &[Button]) {
        self.actions.push(BotAction::SendButtons {
            text: text.into(),
            buttons: buttons.iter().map(|b| b.label.trim().to_owned()).collect(),
        });
    }

    fn collect(&mut self, field: CollectField, value: String) {
        self.collected.retain(|c| c.field != field);
        self.collected.push(Collected {
            field,
            value: value.clone(),
        });
        self.actions.push(BotAction::Collected { field, value });
    }

    fn wait(&mut self, step: &str, attempts: u8) -> BotState {
        BotState::Waiting {
            step: step.into(),
            attempts,
            collected: std::mem::take(&mut self.collected),
        }
    }

    fn hand_off(&mut self, team: Option<TeamId>, reason: HandOffReason) -> BotState {
        let collected = std::mem::take(&mut self.collected);
        self.actions.push(BotAction::HandOff {
            collected: collected.clone(),
            team,
            reason,
        });
        BotState::HandedOff { collected }
    }
}

/// The button the customer chose: by label (any case, spacing aside) or by
/// its number.
fn pick<'b>(buttons: &'b [Button], input: &str) -> Option<&'b Button> {
    let said = normalise(input);
    buttons
        .iter()
        .find(|b| normalise(&b.label) == said)
        .or_else(|| {
            let n: usize = said.trim_end_matches(['.', ')']).parse().ok()?;
            buttons.get(n.checked_sub(1)?)
        })
}

fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The message's words, lower-case.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `keyword`'s words appear in a row in `words`; a word ending in `*`
/// matches any word it starts.
fn has_keyword(words: &[String], keyword: &str) -> bool {
    let wanted: Vec<String> = keyword
        .split(|c: char| !(c.is_alphanumeric() || c == '*'))
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(str::to_lowercase)
        .collect();
    !wanted.is_empty()
        && words.windows(wanted.len()).any(|window| {
            window
                .iter()
                .zip(&wanted)
                .all(|(word, want)| match want.strip_suffix('*') {
                    Some(prefix) => word.starts_with(prefix.trim_end_matches('*')),
                    None => word == want,
                })
        })
}
