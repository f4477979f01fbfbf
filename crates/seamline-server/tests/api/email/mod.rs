//! The e-mail connector against a real IMAP server (a throwaway Dovecot,
//! [`dovecot`]) and a real SMTP conversation ([`sink`]): mail lands in
//! the right profile, threads by reply address and `In-Reply-To`, is
//! stored once, survives a restart, shows HTML as text, is never answered
//! when a machine sent it, and replies leave once through 451s with their
//! threading headers; bounces and 550s fail them with the reason.
//! Without Dovecot the tests skip loudly (and fail under `CI=true`).

pub(crate) mod dovecot;
pub(crate) mod sink;

use std::time::Duration;

use reqwest::StatusCode;
use seamline_server::channels::ChannelsConfig;
use seamline_server::ServerConfig;
use serde_json::{json, Value};

use crate::support::{another_instance, spawn_app_configured, TestApp};
use dovecot::Dovecot;
use sink::Sink;

const REPLY_DOMAIN: &str = "reply.shop.example";

struct Rig {
    app: TestApp,
    imap: Dovecot,
    smtp: Sink,
    account: String,
}

/// A server that polls and retries quickly, Dovecot, the sink, and an
/// e-mail account connected to both (its "test connection" passed).
async fn rig() -> Option<Rig> {
    let imap = Dovecot::start()?;
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
    let account = connect(&app, &imap, &smtp).await;
    Some(Rig {
        app,
        imap,
        smtp,
        account,
    })
}

/// Connects an e-mail account at `imap` and `smtp` and presses "test";
/// returns its id.
pub(crate) async fn connect(app: &TestApp, imap: &Dovecot, smtp: &Sink) -> String {
    let settings = json!({
        "imap_host": "127.0.0.1", "imap_port": imap.port.to_string(), "imap_tls": "none",
        "imap_user": dovecot::USER,
        "smtp_host": "127.0.0.1", "smtp_port": smtp.addr.port().to_string(), "smtp_tls": "none",
        "from_address": "support@shop.example", "from_name": "Shop",
        "reply_domain": REPLY_DOMAIN,
    });
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "email", "name": "Support mail", "settings": settings,
                    "secrets": {"imap_password": dovecot::PASSWORD, "smtp_password": "unused"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let account = created["id"].as_str().expect("id").to_owned();
    let (status, tested) = app
        .api_post(&format!("/api/v1/channels/{account}/test"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "connected", "{tested}: {}", imap.log());
    assert!(!tested.to_string().contains(dovecot::PASSWORD), "{tested}");
    account
}

/// A mail as a customer's client writes it.
fn mail(from: &str, id: &str, headers: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: Shop <support@shop.example>\nSubject: Order 1042\n\
         Date: Tue, 24 Nov 2026 06:00:00 +0000\nMessage-ID: <{id}>\n{headers}\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

/// The conversation id and messages (oldest first) of the profile with
/// e-mail `address`, once it has at least `n` messages.
async fn thread(app: &TestApp, address: &str, n: usize) -> (String, Vec<Value>) {
    let profile = app.lookup("email", address).await;
    let id = profile["id"].as_str().expect("profile id").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, conversation) = app
            .api_get(&format!("/api/v1/profiles/{id}/conversation"))
            .await;
        let cid = conversation["id"].as_str().unwrap_or_default().to_owned();
        let (_, page) = app
            .api_get(&format!(
                "/api/v1/conversations/{cid}/messages?limit=100&order=oldest"
            ))
            .await;
        let messages = page["data"].as_array().cloned().unwrap_or_default();
        if messages.len() >= n {
            return (cid, messages);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{address} never had {n} messages: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages.iter().filter_map(|m| m["body"].as_str()).collect()
}

/// The operator answers in conversation `cid`; returns the reply's id.
async fn reply(app: &TestApp, cid: &str, text: &str) -> String {
    let (status, written) = app
        .api_post(
            &format!("/api/v1/conversations/{cid}/messages"),
            &json!({"body": text, "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    written["id"].as_str().expect("id").to_owned()
}

/// Message `id` of conversation `cid` once it is no longer pending.
async fn delivered(app: &TestApp, cid: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = app
            .api_get(&format!(
                "/api/v1/conversations/{cid}/messages?limit=100&order=oldest"
            ))
            .await;
        let messages = page["data"].as_array().cloned().unwrap_or_default();
        let mine = messages
            .into_iter()
            .find(|m| m["id"] == id)
            .expect("the reply");
        if mine["delivery"] != "pending" {
            return mine;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of `name` in a raw mail's header (unfolded).
pub(crate) fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n ", " ");
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
}

pub(crate) fn bracketless(id: &str) -> String {
    id.trim_matches(['<', '>']).to_owned()
}

#[tokio::test]
async fn a_customer_mail_lands_in_their_profile_and_replies_thread_into_it() {
    let Some(rig) = rig().await else { return };
    let app = &rig.app;
    rig.imap.deliver(&mail(
        "Anna Petrova <Anna@Example.com>",
        "first@client.example",
        "",
        "Where is my order?",
    ));
    let (cid, messages) = thread(app, "anna@example.com", 1).await;
    assert_eq!(bodies(&messages), ["Where is my order?"]);
    assert_eq!(messages[0]["channel"], "email");

    // The operator answers: one mail at the sink, threaded on the customer's.
    let answer = reply(app, &cid, "It left the warehouse today.").await;
    let sent = delivered(app, &cid, &answer).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let sent = rig.smtp.received();
    assert_eq!(sent.len(), 1);
    let ours = bracketless(&header(&sent[0], "Message-ID").expect("Message-ID"));
    assert_eq!(
        header(&sent[0], "In-Reply-To").as_deref(),
        Some("<first@client.example>")
    );
    assert_eq!(
        header(&sent[0], "References").as_deref(),
        Some("<first@client.example>")
    );
    let reply_to = header(&sent[0], "Reply-To").expect("Reply-To");
    assert!(
        reply_to.contains(&format!("@{REPLY_DOMAIN}")) && reply_to.contains("reply+"),
        "{reply_to}"
    );
    assert!(
        header(&sent[0], "Auto-Submitted").is_none(),
        "an operator's reply is not automatic"
    );
    assert!(sent[0].contains("It left the warehouse today."));

    // She answers from her work address to the reply address: same
    // conversation (a client that dropped the thread headers).
    let reply_address = bracketless(reply_to.rsplit('<').next().unwrap_or(&reply_to));
    rig.imap.deliver(&format!(
        "From: anna@work.example\nTo: {reply_address}\nSubject: Re: your message\n\
         Message-ID: <second@work.example>\n\nThank you!\n"
    ));
    let (same, messages) = thread(app, "anna@example.com", 3).await;
    assert_eq!(same, cid);
    assert_eq!(bodies(&messages)[2], "Thank you!");

    // A colleague answers our mail by its Message-ID only: same conversation.
    rig.imap.deliver(&mail(
        "boris@other.example",
        "third@other.example",
        &format!("In-Reply-To: <{ours}>\nReferences: <first@client.example> <{ours}>\n"),
        "I can collect it instead.",
    ));
    let (same, messages) = thread(app, "anna@example.com", 4).await;
    assert_eq!(same, cid);
    assert_eq!(bodies(&messages)[3], "I can collect it instead.");

    // A forged reply address opens nothing of hers.
    let (local, domain) = reply_address.split_once('@').expect("an address");
    let flipped = if local.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}@{domain}", &local[..local.len() - 1]);
    rig.imap.deliver(&format!(
        "From: mallory@evil.example\nTo: {forged}\nMessage-ID: <forged@evil.example>\n\nlet me in\n"
    ));
    let (other, _) = thread(app, "mallory@evil.example", 1).await;
    assert_ne!(other, cid);
}

#[tokio::test]
async fn a_mail_is_stored_once_and_a_restart_resumes_after_the_last_uid() {
    let Some(mut rig) = rig().await else { return };
    let raw = mail("olga@example.com", "once@example.com", "", "Hello once");
    rig.imap.deliver(&raw);
    rig.imap.deliver(&raw);
    rig.imap
        .deliver(&mail("olga@example.com", "later@example.com", "", "Second"));
    let (cid, messages) = thread(&rig.app, "olga@example.com", 2).await;
    let ws = rig.app.workspace.workspace.id;
    let cursor = |app: &TestApp| {
        let (store, account) = (app.store.clone(), rig.account.clone());
        async move {
            let accounts = store.list_channel_accounts(ws).await.expect("accounts");
            let mine = accounts
                .into_iter()
                .find(|a| a.id.to_string() == account)
                .expect("account");
            mine.settings["imap_state"]["last_uid"].as_u64()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cursor(&rig.app).await != Some(3) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cursor never reached UID 3"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        bodies(&messages),
        ["Hello once", "Second"],
        "the copy is stored once"
    );

    rig.app.stop_server();
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.imap.deliver(&mail(
        "olga@example.com",
        "while-down@example.com",
        "",
        "While you were away",
    ));
    let second = another_instance(&rig.app, rig.app.bus.clone()).await;
    let (same, messages) = thread(&second, "olga@example.com", 3).await;
    assert_eq!(same, cid);
    assert_eq!(
        bodies(&messages),
        ["Hello once", "Second", "While you were away"]
    );
    assert_eq!(cursor(&second).await, Some(4));
}

#[tokio::test]
async fn html_mail_is_shown_as_text_without_its_script() {
    let Some(rig) = rig().await else { return };
    rig.imap.deliver(
        "From: ivan@example.com\nTo: support@shop.example\nMessage-ID: <html@example.com>\n\
         MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n\
         <html><body><p>Hi &amp; hello</p><script>alert('pwned')</script>\
         <p>See <a href=\"https://shop.example/o/7\">order 7</a></p></body></html>\n",
    );
    let (_, messages) = thread(&rig.app, "ivan@example.com", 1).await;
    let body = messages[0]["body"].as_str().unwrap_or_default();
    assert_eq!(body, "Hi & hello\n\nSee order 7 (https://shop.example/o/7)");
}

#[tokio::test]
async fn an_auto_reply_is_never_greeted_and_our_greeting_says_it_is_automatic() {
    let Some(rig) = rig().await else { return };
    let app = &rig.app;
    let (status, team) = app
        .api_post(
            "/api/v1/teams",
            &json!({"name": "Mail", "channels": ["email"], "bots": {"greeting": "Hello! We answer in minutes."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    rig.imap.deliver(&mail(
        "away@example.com",
        "ooo@example.com",
        "Auto-Submitted: auto-replied\nX-Autoreply: yes\n",
        "I am out of office until Monday.",
    ));
    thread(app, "away@example.com", 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, messages) = thread(app, "away@example.com", 1).await;
    assert_eq!(
        bodies(&messages),
        ["I am out of office until Monday."],
        "no greeting for an autoresponder"
    );
    assert!(rig.smtp.received().is_empty(), "nothing mailed back");

    // A person gets the greeting by mail, marked automatic (RFC 3834) so
    // their own autoresponder leaves it alone.
    rig.imap.deliver(&mail(
        "human@example.com",
        "human@example.com",
        "",
        "Hi there",
    ));
    let (_, messages) = thread(app, "human@example.com", 2).await;
    assert_eq!(bodies(&messages)[1], "Hello! We answer in minutes.");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rig.smtp.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the greeting never left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = rig.smtp.received();
    assert_eq!(sent.len(), 1, "only the person was greeted");
    assert!(sent[0].contains("Hello! We answer in minutes."));
    assert_eq!(header(&sent[0], "To").as_deref(), Some("human@example.com"));
    assert_eq!(
        header(&sent[0], "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(&sent[0], "In-Reply-To").as_deref(),
        Some("<human@example.com>")
    );
}

#[tokio::test]
async fn attachments_are_kept_after_the_check_and_refused_ones_named_in_the_text() {
    let Some(rig) = rig().await else { return };
    rig.imap.deliver(
        "From: lena@example.com\nTo: support@shop.example\nMessage-ID: <files@example.com>\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"F\"\n\n\
         --F\nContent-Type: text/plain\n\nThe photo of the damage.\n\
         --F\nContent-Type: image/png; name=\"damage.png\"\n\
         Content-Disposition: attachment; filename=\"damage.png\"\nContent-Transfer-Encoding: base64\n\n\
         iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC\n\
         --F\nContent-Type: text/html; name=\"invoice.html\"\n\
         Content-Disposition: attachment; filename=\"invoice.html\"\n\n\
         <script>alert(1)</script>\n--F--\n",
    );
    let (_, messages) = thread(&rig.app, "lena@example.com", 1).await;
    let message = &messages[0];
    assert_eq!(
        message["body"], "The photo of the damage.\n\n[attachment invoice.html not accepted]",
        "{message}"
    );
    let files = message["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{message}");
    assert_eq!(files[0]["name"], "damage.png");
    assert_eq!(files[0]["content_type"], "image/png");
}

/// A DSN as Postfix writes it for `original` (our Message-ID).
fn bounce(original: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.client.example (Mail Delivery System)\nTo: support@shop.example\n\
         Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-1@mx.client.example>\n\
         Auto-Submitted: auto-replied\nMIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
         --B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n\
         --B\nContent-Type: message/delivery-status\n\n\
         Reporting-MTA: dns; mx.client.example\n\n\
         Final-Recipient: rfc822; gone@client.example\nAction: failed\nStatus: 5.1.1\n\
         Diagnostic-Code: smtp; 550 5.1.1 <gone@client.example>: User unknown\n\n\
         --B\nContent-Type: text/rfc822-headers\n\n\
         From: support@shop.example\nTo: gone@client.example\nMessage-ID: <{original}>\n\n--B--\n"
    )
}

#[tokio::test]
async fn a_bounce_fails_the_message_it_returns() {
    let Some(rig) = rig().await else { return };
    let app = &rig.app;
    rig.imap.deliver(&mail(
        "gone@client.example",
        "q@client.example",
        "",
        "A question",
    ));
    let (cid, _) = thread(app, "gone@client.example", 1).await;
    let answer = reply(app, &cid, "An answer that will bounce").await;
    let sent = delivered(app, &cid, &answer).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let ours = bracketless(&header(&rig.smtp.received()[0], "Message-ID").expect("id"));
    rig.imap.deliver(&bounce(&ours));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, messages) = thread(app, "gone@client.example", 2).await;
        let mine = messages
            .iter()
            .find(|m| m["id"] == answer.as_str())
            .expect("reply");
        if mine["delivery"] == "failed" {
            let reason = mine["delivery_reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("5.1.1") && reason.contains("User unknown"),
                "{mine}"
            );
            assert_eq!(
                messages.len(),
                2,
                "the report itself is not a customer message"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never failed: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_reply_goes_out_once_through_a_451_and_a_550_fails_it_with_the_reason() {
    let Some(rig) = rig().await else { return };
    let app = &rig.app;
    rig.imap.deliver(&mail(
        "pavel@example.com",
        "p1@example.com",
        "",
        "Is it in stock?",
    ));
    let (cid, _) = thread(app, "pavel@example.com", 1).await;
    rig.smtp.fail_next(451);
    let answer = reply(app, &cid, "Yes, three left.").await;
    let sent = delivered(app, &cid, &answer).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    assert_eq!(rig.smtp.answers(), [451, 250], "tried again after the 451");
    let sent = rig.smtp.received();
    assert_eq!(sent.len(), 1, "accepted once");
    assert_eq!(
        header(&sent[0], "In-Reply-To").as_deref(),
        Some("<p1@example.com>")
    );
    assert!(header(&sent[0], "Reply-To").is_some_and(|r| r.contains("reply+")));

    rig.smtp.fail_next(550);
    let refused = reply(app, &cid, "And a discount code.").await;
    let failed = delivered(app, &cid, &refused).await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    let reason = failed["delivery_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("550") || reason.contains("User unknown"),
        "{failed}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.smtp.answers(), [451, 250, 550], "a 5xx is not retried");
}
