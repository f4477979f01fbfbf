//! `POST /widget/v1/message`: a message sent with the visitor's contact
//! details, from the pre-chat form (their first chat message) or the
//! offline form (nobody is online to chat).
//!
//! The details go into the customer's name, e-mail and phone, so identity
//! resolution links the visitor's cookie to them. An offline message is
//! received on the channel its answer will take: e-mail if the visitor gave
//! one, else a text message, and the widget tells the visitor which.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use seamline_core::identity::{Identifier, IdentifierKind, IdentityPolicy};
use seamline_core::inbox::conversation::Channel;
use serde::Deserialize;
use serde_json::json;

use super::live::VisitorMessage;
use super::settings::{self, Ask};
use super::visitor::{too_many, SiteVisitor};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::identity::policy_of;
use crate::inbox::{receive, Customer, Inbound, InboxError};
use crate::AppState;

const MAX_NAME_CHARS: usize = 100;
const MAX_BODY_CHARS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    Prechat,
    Offline,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormBody {
    key: String,
    anonymous_id: String,
    /// The widget's id for this message: a retry sends the same one.
    request_id: String,
    form: Form,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    body: String,
}

/// The contact details as given, checked and normalised.
struct Contact {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

impl Contact {
    fn parse(body: &FormBody, policy: &IdentityPolicy) -> ApiResult<Self> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let name = given(&body.name);
        if name
            .as_deref()
            .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
        {
            return Err(ApiError::field(
                "too_long",
                "name",
                "at most 100 characters",
            ));
        }
        let identifier = |kind: IdentifierKind, raw: Option<String>, field: &str, hint: &str| {
            raw.map(|raw| {
                Identifier::parse(kind, &raw, policy)
                    .map(|id| id.value)
                    .map_err(|_| ApiError::field("invalid_value", field, hint))
            })
            .transpose()
        };
        Ok(Self {
            name,
            email: identifier(
                IdentifierKind::Email,
                given(&body.email),
                "email",
                "an e-mail address such as olga@example.com",
            )?,
            phone: identifier(
                IdentifierKind::Phone,
                given(&body.phone),
                "phone",
                "a phone number with its country code, such as +7 916 123-45-67",
            )?,
        })
    }

    /// Refuses a form without what the workspace (pre-chat) or an answer
    /// (offline: a name and a way to reach them) needs.
    fn complete(&self, form: Form, asked: &settings::PreChat) -> ApiResult<()> {
        let missing = |field: &str, message: &str| Err(ApiError::field("required", field, message));
        match form {
            Form::Prechat => {
                let fields = [
                    ("name", asked.name, self.name.is_some()),
                    ("email", asked.email, self.email.is_some()),
                    ("phone", asked.phone, self.phone.is_some()),
                ];
                match fields
                    .iter()
                    .find(|(_, ask, given)| *ask == Ask::Required && !given)
                {
                    Some((field, _, _)) => missing(field, "this field is required"),
                    None => Ok(()),
                }
            }
            Form::Offline if self.name.is_none() => missing("name", "your name, please"),
            Form::Offline if self.email.is_none() && self.phone.is_none() => missing(
                "email",
                "an e-mail or a phone number, so that we can answer",
            ),
            Form::Offline => Ok(()),
        }
    }

    /// The channel an answer takes, and how the widget says so.
    fn answer_by(&self, form: Form) -> (Channel, String) {
        match (form, &self.email, &self.phone) {
            (Form::Prechat, _, _) => (Channel::WebChat, String::new()),
            (Form::Offline, Some(email), _) => (
                Channel::Email,
                format!("Thank you! We will answer by e-mail to {email}."),
            ),
            (Form::Offline, None, phone) => (
                Channel::Sms,
                format!(
                    "Thank you! We will answer by text message to {}.",
                    phone.as_deref().unwrap_or_default()
                ),
            ),
        }
    }
}

pub async fn message(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FormBody>,
) -> ApiResult<Response> {
    let visitor = SiteVisitor::check(&state, &headers, &body.key, &body.anonymous_id).await?;
    let request_id = body.request_id.trim();
    if request_id.is_empty() || request_id.chars().count() > 100 {
        return Err(ApiError::field(
            "invalid_value",
            "requestId",
            "an id of 1 to 100 characters, the same on a retry",
        ));
    }
    let text = body.body.trim();
    if text.is_empty() || text.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::field(
            "invalid_value",
            "body",
            "a message of 1 to 5000 characters",
        ));
    }
    let store = state.store.as_ref();
    let policy = policy_of(store, visitor.workspace).await?;
    let contact = Contact::parse(&body, &policy)?;
    let asked = settings::load(store, visitor.workspace).await?.prechat;
    contact.complete(body.form, &asked)?;
    if !visitor.throttle() {
        return Ok(too_many());
    }
    let (channel, answer) = contact.answer_by(body.form);
    let inbound = Inbound {
        workspace: visitor.workspace,
        channel,
        customer: Customer {
            anonymous_id: Some(visitor.anonymous_id.clone()),
            email: contact.email,
            phone: contact.phone,
            name: contact.name,
            ..Customer::default()
        },
        body: text.to_owned(),
        external_id: Some(format!("form:{}:{request_id}", visitor.anonymous_id)),
        at: Utc::now(),
    };
    let received = match receive(store, state.bus.as_ref(), inbound).await {
        Ok(received) => received,
        Err(InboxError::Invalid(e)) => return Err(e.into()),
        Err(InboxError::Store(e)) => return Err(e.into()),
    };
    let status = if received.message.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let shown = VisitorMessage::of(&received.message.message);
    let reply = json!({"requestId": request_id, "message": shown, "answer": answer});
    Ok((status, Json(reply)).into_response())
}
