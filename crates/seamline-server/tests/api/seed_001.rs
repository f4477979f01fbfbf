//! Seed 001 end to end (issue 6's "Done when"): one customer, four
//! channels, one conversation with one operator.
//!
//! Day one she writes in the site's chat (the widget socket); the team's
//! bot asks for her phone and e-mail and hands her to operator A, who
//! answers in the chat and sends an offer by e-mail, then resolves the
//! conversation. The next day she writes on WhatsApp from that phone (a signed webhook from the fake Meta API),
//! calls (the fake PBX: started, answered, ended, recording ready) and
//! answers the offer by e-mail (a real Dovecot and SMTP sink). The
//! operator sees it all as the HTTP API shows it: one conversation, back
//! with A, the messages in order on four channels, the recording playable.
//!
//! "The next day" is the resolve in between: the widget and the e-mail
//! poller stamp messages when they arrive and the server has no clock to
//! move, so a WhatsApp or PBX timestamp a day ahead would sort after the
//! mail that follows it. The providers' own timestamps (whole seconds)
//! are checked to be what the thread shows.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use reqwest::StatusCode;
use seamline_core::MemberId;
use seamline_fakes::pbx::Script;
use seamline_server::channels::ChannelsConfig;
use seamline_server::ServerConfig;
use serde_json::{json, Value};

use crate::automation::{create_team, online_operator};
use crate::calls::{self, play, OUR_LINE};
use crate::channel_common::conversations;
use crate::channel_whatsapp::{self, NUMBER_ID};
use crate::email::dovecot::Dovecot;
use crate::email::sink::Sink;
use crate::email::{self, bracketless, header};
use crate::support::{spawn_app_configured, TestApp};
use crate::widget;

const VISITOR: &str = "visitor-seed-001";
/// Her phone as she types it to the bot, and as WhatsApp and the PBX say it.
const TYPED_PHONE: &str = "8 (916) 123-45-67";
const PHONE: &str = "+79161234567";
const WA_ID: &str = "79161234567";
const EMAIL: &str = "anna@example.com";

/// The bot asks for the phone and the e-mail, then passes her on.
fn contact_flow() -> Value {
    json!({
        "start": "phone",
        "steps": {
            "phone": {"type": "ask", "field": "phone", "prompt": "Your phone?", "next": "email"},
            "email": {"type": "ask", "field": "email", "prompt": "Your e-mail?", "next": "human"},
            "human": {"type": "hand_off", "text": "Connecting you to a person.",
                      "closed_text": "We open at 9."}
        }
    })
}

async fn conversation(app: &TestApp, cid: &str) -> Value {
    let (status, body) = app.api_get(&format!("/api/v1/conversations/{cid}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn messages(app: &TestApp, cid: &str) -> Vec<Value> {
    let (status, page) = app
        .api_get(&format!(
            "/api/v1/conversations/{cid}/messages?limit=200&order=oldest"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().cloned().unwrap_or_default()
}

/// The thread once `done` holds for it (bounded wait).
async fn messages_when(app: &TestApp, cid: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let thread = messages(app, cid).await;
        if done(&thread) {
            return thread;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never there: {thread:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Operator `who` answers in `cid` (on `channel`, or the customer's latest).
async fn answer(
    app: &TestApp,
    cid: &str,
    who: MemberId,
    channel: Option<&str>,
    text: &str,
) -> Value {
    let mut body = json!({"body": text, "author_id": who});
    if let Some(channel) = channel {
        body["channel"] = json!(channel);
    }
    let (status, written) = app
        .api_post(&format!("/api/v1/conversations/{cid}/messages"), &body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    written
}

/// The next whole second, once it has come: providers stamp their events
/// in whole seconds, and a stamp ahead of the messages the server stamps
/// on arrival would sort out of turn.
async fn next_second() -> DateTime<Utc> {
    let now = Utc::now();
    let next = now.with_nanosecond(0).unwrap_or(now) + TimeDelta::seconds(1);
    let wait = (next - now).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    next
}

fn profile_id(profile: &Value) -> String {
    profile["id"].as_str().expect("profile id").to_owned()
}

#[tokio::test]
async fn seed_001_web_chat_then_whatsapp_a_call_and_an_email_are_one_conversation_with_operator_a()
{
    let Some(imap) = Dovecot::start() else { return };
    let smtp = Sink::start().await;
    let app = spawn_app_configured(ServerConfig {
        channels: ChannelsConfig {
            poll: Duration::from_millis(50),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..ChannelsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let whatsapp = channel_whatsapp::fake().await;
    channel_whatsapp::setup(&app, &whatsapp).await;
    let pbx = calls::fake().await;
    let pbx_url = calls::connect(&app, &pbx).await;
    email::connect(&app, &imap, &smtp).await;
    let team = create_team(
        &app,
        json!({"channels": ["web_chat", "whatsapp", "phone", "email"],
               "bots": {"flow": contact_flow()}}),
    )
    .await;
    let first = online_operator(&app, &team).await;
    let second = online_operator(&app, &team).await;

    // Day one: the site's chat. The bot collects her phone and e-mail.
    let mut socket = widget::open(&app, VISITOR).await;
    let dialogue = [
        ("Здравствуйте! Хочу заказать диван", "Your phone?"),
        (TYPED_PHONE, "Your e-mail?"),
        (EMAIL, "Connecting you to a person."),
    ];
    for (n, (text, bot)) in dialogue.into_iter().enumerate() {
        let id = format!("c-{n}");
        let (mut acked, mut asked) = (false, false);
        let mut next = widget::say(&mut socket, &id, text).await;
        loop {
            acked |= next["type"] == "ack" && next["id"] == id.as_str();
            // Live, or in the history the socket sends once it knows her.
            let shown = match next["type"].as_str() {
                Some("message") => vec![next["message"].clone()],
                Some("history") => next["messages"].as_array().cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            asked |= shown.iter().any(|m| m["kind"] == "bot" && m["body"] == bot);
            if acked && asked {
                break;
            }
            next = widget::frame(&mut socket).await;
        }
    }
    let visitor = app.lookup("anonymous_id", VISITOR).await;
    let (_, opened) = app
        .api_get(&format!(
            "/api/v1/profiles/{}/conversation",
            profile_id(&visitor)
        ))
        .await;
    let cid = opened["id"].as_str().expect("conversation").to_owned();
    let handed = conversation(&app, &cid).await;
    let assignee = handed["assignee_id"].as_str().expect("handed to a person");
    let operator_a = [first, second]
        .into_iter()
        .find(|m| m.to_string() == assignee)
        .expect("one of the team's operators");

    // Operator A answers in the chat; she sees it live on the socket.
    answer(
        &app,
        &cid,
        operator_a,
        None,
        "Добрый день! Какой диван вам нравится?",
    )
    .await;
    loop {
        let frame = widget::frame(&mut socket).await;
        if frame["type"] == "message" && frame["message"]["kind"] == "outbound" {
            assert_eq!(
                frame["message"]["body"],
                "Добрый день! Какой диван вам нравится?"
            );
            break;
        }
    }
    // And sends the offer by e-mail, which leaves through SMTP once.
    let offer = answer(
        &app,
        &cid,
        operator_a,
        Some("email"),
        "Наше предложение во вложении.",
    )
    .await;
    let offer_id = offer["id"].as_str().expect("id").to_owned();
    messages_when(&app, &cid, |thread| {
        thread
            .iter()
            .any(|m| m["id"] == offer_id.as_str() && m["delivery"] == "sent")
    })
    .await;
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "one offer mail");
    assert!(header(&mails[0], "To").unwrap_or_default().contains(EMAIL));
    let offer_message_id = bracketless(&header(&mails[0], "Message-ID").expect("Message-ID"));
    let (status, resolved) = app
        .api_post(
            &format!("/api/v1/conversations/{cid}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");

    // The next day: WhatsApp from the phone she gave the bot.
    let next_day = next_second().await;
    let hello = whatsapp.text_message(
        NUMBER_ID,
        WA_ID,
        "Анна",
        "Это снова я, по поводу дивана",
        next_day,
    );
    assert_eq!(whatsapp.deliver(&hello).await.expect("delivered"), 200);
    let by_whatsapp = app.lookup("whatsapp", WA_ID).await;
    assert_eq!(by_whatsapp["id"], visitor["id"], "the same profile");
    assert_eq!(app.lookup("phone", PHONE).await["id"], visitor["id"]);
    assert_eq!(app.lookup("email", EMAIL).await["id"], visitor["id"]);
    let back = conversation(&app, &cid).await;
    assert_eq!(back["status"], "open", "her message reopened it: {back}");
    assert_eq!(
        back["assignee_id"], assignee,
        "back with operator A: {back}"
    );

    // Then she calls: the call and its recording join the conversation.
    let script = Script {
        answered_by: Some("101".into()),
        talk_s: 95,
        ivr: vec![],
    };
    let call_at = next_second().await;
    let events: Vec<Value> = pbx
        .inbound_call(WA_ID, OUR_LINE, &script)
        .into_iter()
        .map(|mut event| {
            event["at"] = json!(call_at.timestamp());
            event
        })
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        names,
        [
            "call.started",
            "call.answered",
            "call.ended",
            "call.recording_ready"
        ]
    );
    play(&pbx, &pbx_url, &events).await;

    // And answers the offer mail: it threads in by its Message-ID.
    imap.deliver(&format!(
        "From: Anna <{EMAIL}>\nTo: Shop <support@shop.example>\nSubject: Re: offer\n\
         Message-ID: <answer-001@example.com>\nIn-Reply-To: <{offer_message_id}>\n\
         References: <{offer_message_id}>\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\nБеру серый, спасибо!\n"
    ));
    let thread = messages_when(&app, &cid, |thread| {
        thread
            .iter()
            .any(|m| m["channel"] == "email" && m["kind"] == "inbound")
    })
    .await;
    let at_of = |channel: &str| {
        thread
            .iter()
            .find(|m| m["channel"] == channel && m["kind"] == "inbound")
            .and_then(|m| m["at"].as_str())
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.timestamp())
    };
    assert_eq!(
        at_of("whatsapp"),
        Some(next_day.timestamp()),
        "WhatsApp's time"
    );
    assert_eq!(at_of("phone"), Some(call_at.timestamp()), "the PBX's time");

    // What operator A sees: one conversation, hers, the story in order.
    assert_eq!(conversations(&app).await, 1, "one conversation");
    assert_eq!(conversation(&app, &cid).await["assignee_id"], assignee);
    let customer_facing: Vec<(String, String, String)> = thread
        .iter()
        .filter(|m| matches!(m["kind"].as_str(), Some("inbound" | "outbound")))
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (text("kind"), text("channel"), text("body"))
        })
        .collect();
    let expected = [
        ("inbound", "web_chat", "Здравствуйте! Хочу заказать диван"),
        ("inbound", "web_chat", TYPED_PHONE),
        ("inbound", "web_chat", EMAIL),
        (
            "outbound",
            "web_chat",
            "Добрый день! Какой диван вам нравится?",
        ),
        ("outbound", "email", "Наше предложение во вложении."),
        ("inbound", "whatsapp", "Это снова я, по поводу дивана"),
        (
            "inbound",
            "phone",
            "Incoming call from +79161234567 to +74951112233, answered by 101, talk 1:35 of 1:50",
        ),
        ("inbound", "phone", "Call recording (1:35)"),
        ("inbound", "email", "Беру серый, спасибо!"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(k, c, b)| ((*k).to_owned(), (*c).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(customer_facing, expected, "{thread:#?}");
    let times: Vec<&str> = thread.iter().filter_map(|m| m["at"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "shown in time order");
    let outbound_authors: Vec<&Value> = thread
        .iter()
        .filter(|m| m["kind"] == "outbound")
        .map(|m| &m["author_id"])
        .collect();
    assert!(outbound_authors.iter().all(|a| **a == json!(assignee)));

    // The recording plays from the conversation.
    let recording = thread
        .iter()
        .find(|m| m["body"] == "Call recording (1:35)")
        .expect("recording");
    let file = &recording["attachments"][0];
    let key = file["key"].as_str().expect("key");
    let audio = app
        .http
        .get(app.url(&format!("/api/v1/attachments/{key}")))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("download");
    assert_eq!(audio.status(), StatusCode::OK);
    let bytes = audio.bytes().await.expect("bytes");
    assert_eq!(bytes.as_ref(), seamline_fakes::pbx::wav().as_slice());
}
