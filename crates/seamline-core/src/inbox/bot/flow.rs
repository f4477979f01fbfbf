//! A bot flow: named steps and where each leads. Stored and edited as
//! JSON; a [`Flow`] is only ever a checked one: every step it names exists,
//! every step can be reached from the start, and no chain of messages loops
//! without waiting for the customer, so the engine always stops.
//!
//! ```json
//! {"start": "menu",
//!  "steps": {
//!    "menu": {"type": "buttons", "text": "How can we help?",
//!             "buttons": [{"label": "Delivery", "next": "faq"},
//!                         {"label": "A person", "next": "phone"}]},
//!    "faq": {"type": "faq", "answers": [{"keywords": ["when", "доставк*"],
//!            "text": "We deliver in 2 days."}], "otherwise": "phone"},
//!    "phone": {"type": "ask", "field": "phone", "prompt": "Your phone?", "next": "human"},
//!    "human": {"type": "hand_off", "text": "Connecting you…",
//!              "closed_text": "We open at 9; we will call you."}}}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::CollectField;
use crate::ids::TeamId;
use crate::FieldError;

pub const MAX_STEPS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 4096;
pub const MAX_BUTTONS: usize = 10;
pub const MAX_BUTTON_LABEL_CHARS: usize = 40;
const MAX_STEP_ID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDefinition {
    pub start: String,
    pub steps: BTreeMap<String, Step>,
    /// Words that take the customer to a person from any point ("operator",
    /// "человек").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handoff_keywords: Vec<String>,
}

/// One step. Steps that read the customer's message (buttons, keywords,
/// ask, faq) wait for it; the others run straight on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Send {
        text: String,
        next: String,
    },
    /// Matched by label (any case) or number; anything else goes to
    /// `otherwise`, or shows the buttons again.
    Buttons {
        text: String,
        buttons: Vec<Button>,
        #[serde(default)]
        otherwise: Option<String>,
    },
    /// The first branch with a keyword in the message wins.
    Keywords {
        #[serde(default)]
        prompt: Option<String>,
        branches: Vec<Branch>,
        otherwise: String,
    },
    /// Asks again (with `retry`, else `prompt`) until the answer is valid.
    Ask {
        field: CollectField,
        prompt: String,
        #[serde(default)]
        retry: Option<String>,
        next: String,
    },
    /// Answers questions by keyword; after an answer goes to `next`, or
    /// without one waits for the next question. No answer: `otherwise`.
    Faq {
        #[serde(default)]
        prompt: Option<String>,
        answers: Vec<Answer>,
        #[serde(default)]
        next: Option<String>,
        otherwise: String,
    },
    /// To a person (`team`, else the conversation's). Out of hours says
    /// `closed_text` instead of `text`.
    HandOff {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        closed_text: Option<String>,
        #[serde(default)]
        team: Option<TeamId>,
    },
    End {
        #[serde(default)]
        text: Option<String>,
    },
}

impl Step {
    /// Waits for the customer's message.
    pub fn reads_input(&self) -> bool {
        matches!(
            self,
            Step::Buttons { .. } | Step::Keywords { .. } | Step::Ask { .. } | Step::Faq { .. }
        )
    }

    /// Every step this one can lead to, with the field that names it.
    fn links(&self) -> Vec<(String, &str)> {
        let mut links: Vec<(String, &str)> = Vec::new();
        match self {
            Step::Send { next, .. } | Step::Ask { next, .. } => {
                links.push(("next".into(), next.as_str()))
            }
            Step::Buttons {
                buttons, otherwise, ..
            } => {
                for (i, b) in buttons.iter().enumerate() {
                    links.push((format!("buttons[{i}].next"), b.next.as_str()));
                }
                links.extend(otherwise.as_deref().map(|o| ("otherwise".into(), o)));
            }
            Step::Keywords {
                branches,
                otherwise,
                ..
            } => {
                for (i, b) in branches.iter().enumerate() {
                    links.push((format!("branches[{i}].next"), b.next.as_str()));
                }
                links.push(("otherwise".into(), otherwise.as_str()));
            }
            Step::Faq {
                next, otherwise, ..
            } => {
                links.extend(next.as_deref().map(|n| ("next".into(), n)));
                links.push(("otherwise".into(), otherwise.as_str()));
            }
            Step::HandOff { .. } | Step::End { .. } => {}
        }
        links
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    pub next: String,
}

/// `keywords` match whole words, any case; `доставк*` matches a word's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub keywords: Vec<String>,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub keywords: Vec<String>,
    pub text: String,
}

/// A checked flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FlowDefinition", into = "FlowDefinition")]
pub struct Flow(FlowDefinition);

impl Flow {
    pub fn new(definition: FlowDefinition) -> Result<Self, FieldError> {
        check(&definition)?;
        Ok(Self(definition))
    }

    /// Parses and checks a flow; a JSON error is reported on `flow`.
    pub fn from_json(json: &str) -> Result<Self, FieldError> {
        let definition: FlowDefinition = serde_json::from_str(json)
            .map_err(|e| FieldError::new("invalid_json", "flow", e.to_string()))?;
        Self::new(definition)
    }

    pub fn definition(&self) -> &FlowDefinition {
        &self.0
    }

    pub fn start(&self) -> &str {
        &self.0.start
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.0.steps.get(id)
    }

    pub fn handoff_keywords(&self) -> &[String] {
        &self.0.handoff_keywords
    }
}

impl TryFrom<FlowDefinition> for Flow {
    type Error = FieldError;
    fn try_from(definition: FlowDefinition) -> Result<Self, FieldError> {
        Flow::new(definition)
    }
}

impl From<Flow> for FlowDefinition {
    fn from(flow: Flow) -> Self {
        flow.0
    }
}

fn check(flow: &FlowDefinition) -> Result<(), FieldError> {
    if flow.steps.is_empty() || flow.steps.len() > MAX_STEPS {
        return Err(FieldError::new(
            "invalid_steps",
            "steps",
            format!("a flow has 1 to {MAX_STEPS} steps"),
        ));
    }
    for (i, word) in flow.handoff_keywords.iter().enumerate() {
        keyword(word, &format!("handoff_keywords[{i}]"))?;
    }
    for (id, step) in &flow.steps {
        let at = format!("steps.{id}");
        let valid_id = id.chars().count() <= MAX_STEP_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_id {
            return Err(FieldError::new(
                "invalid_step_id",
                at,
                "step names are up to 64 of a-z, A-Z, 0-9, '_' and '-'",
            ));
        }
        check_step(step, &at)?;
        for (field, target) in step.links() {
            exists(flow, target, &format!("{at}.{field}"))?;
        }
    }
    exists(flow, &flow.start, "start")?;
    check_loops(flow)?;
    check_reachable(flow)
}

fn check_step(step: &Step, at: &str) -> Result<(), FieldError> {
    match step {
        Step::Send { text, .. } => text_field(text, &format!("{at}.text")),
        Step::Buttons { text, buttons, .. } => {
            text_field(text, &format!("{at}.text"))?;
            if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
                return Err(FieldError::new(
                    "invalid_buttons",
                    format!("{at}.buttons"),
                    format!("1 to {MAX_BUTTONS} buttons"),
                ));
            }
            let mut seen = BTreeSet::new();
            for (i, button) in buttons.iter().enumerate() {
                let field = format!("{at}.buttons[{i}].label");
                let label = button.label.trim();
                if label.is_empty() || label.chars().count() > MAX_BUTTON_LABEL_CHARS {
                    return Err(FieldError::new(
                        "invalid_label",
                        field,
                        format!("1 to {MAX_BUTTON_LABEL_CHARS} characters"),
                    ));
                }
                if !seen.insert(label.to_lowercase()) {
                    return Err(FieldError::new("duplicate", field, "two buttons say this"));
                }
            }
            Ok(())
        }
        Step::Keywords {
            prompt, branches, ..
        } => {
            optional_text(prompt.as_deref(), &format!("{at}.prompt"))?;
            non_empty(branches.len(), &format!("{at}.branches"))?;
            for (i, branch) in branches.iter().enumerate() {
                keywords(&branch.keywords, &format!("{at}.branches[{i}].keywords"))?;
            }
            Ok(())
        }
        Step::Ask { prompt, retry, .. } => {
            text_field(prompt, &format!("{at}.prompt"))?;
            optional_text(retry.as_deref(), &format!("{at}.retry"))
        }
        Step::Faq {
            prompt, answers, ..
        } => {
            optional_text(prompt.as_deref(), &format!("{at}.prompt"))?;
            non_empty(answers.len(), &format!("{at}.answers"))?;
            for (i, answer) in answers.iter().enumerate() {
                keywords(&answer.keywords, &format!("{at}.answers[{i}].keywords"))?;
                text_field(&answer.text, &format!("{at}.answers[{i}].text"))?;
            }
            Ok(())
        }
        Step::HandOff {
            text, closed_text, ..
        } => {
            optional_text(text.as_deref(), &format!("{at}.text"))?;
            optional_text(closed_text.as_deref(), &format!("{at}.closed_text"))
        }
        Step::End { text } => optional_text(text.as_deref(), &format!("{at}.text")),
    }
}

fn text_field(text: &str, field: &str) -> Result<(), FieldError> {
    if text.trim().is_empty() {
        return Err(FieldError::new("required", field, "text is required"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(FieldError::new(
            "too_long",
            field,
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

fn optional_text(text: Option<&str>, field: &str) -> Result<(), FieldError> {
    text.map_or(Ok(()), |t| text_field(t, field))
}

fn non_empty(len: usize, field: &str) -> Result<(), FieldError> {
    if len == 0 {
        return Err(FieldError::new(
            "required",
            field,
            "at least one is required",
        ));
    }
    Ok(())
}

fn keywords(words: &[String], field: &str) -> Result<(), FieldError> {
    non_empty(words.len(), field)?;
    for (i, word) in words.iter().enumerate() {
        keyword(word, &format!("{field}[{i}]"))?;
    }
    Ok(())
}

fn keyword(word: &str, field: &str) -> Result<(), FieldError> {
    if !word.chars().any(char::is_alphanumeric) {
        return Err(FieldError::new(
            "invalid_keyword",
            field,
            "a keyword needs a letter or digit",
        ));
    }
    Ok(())
}

fn exists(flow: &FlowDefinition, target: &str, field: &str) -> Result<(), FieldError> {
    if flow.steps.contains_key(target) {
        return Ok(());
    }
    Err(FieldError::new(
        "unknown_step",
        field,
        format!("no step named {target:?}"),
    ))
}

/// Messages that lead back to themselves would never wait for the customer.
fn check_loops(flow: &FlowDefinition) -> Result<(), FieldError> {
    for (id, step) in &flow.steps {
        let mut current = step;
        let mut hops = 0;
        while let Step::Send { next, .. } = current {
            if hops == flow.steps.len() {
                return Err(FieldError::new(
                    "loop_without_input",
                    format!("steps.{id}.next"),
                    "these messages lead back to themselves without waiting for the customer",
                ));
            }
            let Some(step) = flow.steps.get(next) else {
                break;
            };
            current = step;
            hops += 1;
        }
    }
    Ok(())
}

fn check_reachable(flow: &FlowDefinition) -> Result<(), FieldError> {
    let mut seen: BTreeSet<&str> = BTreeSet::from([flow.start.as_str()]);
    let mut todo = vec![flow.start.as_str()];
    while let Some(id) = todo.pop() {
        let Some(step) = flow.steps.get(id) else {
            continue;
        };
        for (_, target) in step.links() {
            if seen.insert(target) {
                todo.push(target);
            }
        }
    }
    match flow.steps.keys().find(|id| !seen.contains(id.as_str())) {
        Some(id) => Err(FieldError::new(
            "unreachable",
            format!("steps.{id}"),
            "no path from the start leads here",
        )),
        None => Ok(()),
    }
}
