//! The operator inbox page: the list, one conversation with its messages
//! escaped, a reply through the form, and analysts kept to reading.

use chrono::Utc;
use seamline_core::inbox::conversation::Channel;
use seamline_core::Role;
use seamline_server::inbox::{receive, Customer, Inbound};

use crate::support::{hidden_value, TestApp};

const SCRIPT: &str = "<script>alert(1)</script>";

/// A customer writes on Telegram; answers the conversation id.
async fn seeded(app: &TestApp) -> String {
    let received = receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: app.workspace.workspace.id,
            channel: Channel::Telegram,
            customer: Customer {
                channel_id: Some(("telegram".into(), "4242".into())),
                phone: Some("+79161234567".into()),
                name: Some("Ольга".into()),
                ..Customer::default()
            },
            body: SCRIPT.to_owned(),
            external_id: Some("tg-1".into()),
            at: Utc::now(),
        },
    )
    .await
    .expect("received");
    received.message.conversation.conversation.id.to_string()
}

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let response = client.get(app.url(path)).send().await.expect("get");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn an_operator_reads_and_answers_a_conversation() {
    let app = crate::support::spawn_app().await;
    let id = seeded(&app).await;
    let (client, _) = app.sign_in_as(Role::Operator).await;

    let (status, list) = page(&client, &app, "/inbox").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("data-conversation=\"{id}\"")),
        "the row is listed"
    );
    assert!(
        list.contains("+7 916 123-45-67"),
        "named by the profile's phone"
    );
    assert!(list.contains("telegram"));

    let (status, open) = page(&client, &app, &format!("/inbox?c={id}")).await;
    assert_eq!(status, 200);
    assert!(!open.contains(SCRIPT), "customer text is never raw HTML");
    assert!(open.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(open.contains("href=\"/profiles/"));

    let csrf = hidden_value(&open, "csrf_token").expect("csrf");
    let sent = client
        .post(app.url(&format!("/inbox/{id}/reply")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("body", "Здравствуйте, <b>Ольга</b>"),
            ("channel", "telegram"),
            ("kind", "reply"),
        ])
        .send()
        .await
        .expect("reply");
    assert!(sent.status().is_redirection() || sent.status().is_success());

    let (_, reloaded) = page(&client, &app, &format!("/inbox?c={id}")).await;
    assert!(
        reloaded.contains("msg outbound"),
        "the reply is on the timeline"
    );
    assert!(reloaded.contains("Здравствуйте, &lt;b&gt;Ольга&lt;/b&gt;"));

    // A blank reply is refused next to the form.
    let blank = client
        .post(app.url(&format!("/inbox/{id}/reply")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("body", " "),
            ("kind", "reply"),
        ])
        .send()
        .await
        .expect("blank");
    assert_eq!(blank.status().as_u16(), 400);
    assert!(blank.text().await.expect("body").contains("form-error"));

    let resolved = client
        .post(app.url(&format!("/inbox/{id}/status")))
        .form(&[("csrf_token", csrf.as_str()), ("status", "resolved")])
        .send()
        .await
        .expect("resolve");
    assert!(resolved.status().is_redirection() || resolved.status().is_success());
    let (_, after) = page(&client, &app, &format!("/inbox?c={id}")).await;
    assert!(after.contains(">Reopen<"));
}

#[tokio::test]
async fn an_analyst_reads_but_cannot_write() {
    let app = crate::support::spawn_app().await;
    let id = seeded(&app).await;
    let (client, csrf) = app.sign_in_as(Role::Analyst).await;

    let (status, open) = page(&client, &app, &format!("/inbox?c={id}")).await;
    assert_eq!(status, 200);
    assert!(!open.contains(">Send<"), "no reply form for an analyst");
    assert!(!open.contains("Assign to me"));

    for (path, fields) in [
        ("reply", vec![("body", "hi"), ("kind", "reply")]),
        ("status", vec![("status", "resolved")]),
        ("assign-me", vec![]),
    ] {
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend(fields);
        let response = client
            .post(app.url(&format!("/inbox/{id}/{path}")))
            .form(&form)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status().as_u16(), 403, "{path}");
    }
}

/// Posts a form on the open conversation; answers the page it leads to.
async fn act(
    client: &reqwest::Client,
    app: &TestApp,
    id: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> String {
    let (_, open) = page(client, app, &format!("/inbox?c={id}")).await;
    let csrf = hidden_value(&open, "csrf_token").expect("csrf");
    let mut form = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(fields);
    let sent = client
        .post(app.url(&format!("/inbox/{id}/{path}")))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert!(sent.status().is_redirection(), "{path}: {}", sent.status());
    page(client, app, &format!("/inbox?c={id}")).await.1
}

#[tokio::test]
async fn an_operator_labels_prioritises_snoozes_and_transfers_from_the_page() {
    let app = crate::support::spawn_app().await;
    let id = seeded(&app).await;
    let (client, _) = app.sign_in_as(Role::Operator).await;
    let colleague = app.add_member(Role::Operator).await;
    let colleague = app
        .store
        .member_by_email(&colleague)
        .await
        .expect("read")
        .expect("member")
        .id;
    let ws = app.workspace.workspace.id;
    let conversation: seamline_core::ConversationId = id.parse().expect("id");
    let stored = || async {
        app.store
            .conversation(ws, conversation)
            .await
            .expect("read")
            .expect("there")
    };

    let shown = act(&client, &app, &id, "labels", &[("add", "доставка")]).await;
    assert!(shown.contains("доставка"));
    assert_eq!(stored().await.conversation.labels.len(), 1);
    act(&client, &app, &id, "labels", &[("remove", "доставка")]).await;
    assert!(stored().await.conversation.labels.is_empty());

    act(&client, &app, &id, "priority", &[("priority", "urgent")]).await;
    assert_eq!(stored().await.conversation.priority.as_str(), "urgent");

    act(
        &client,
        &app,
        &id,
        "status",
        &[("status", "snoozed"), ("snooze", "tomorrow")],
    )
    .await;
    match stored().await.conversation.status {
        seamline_core::inbox::Status::Snoozed { until } => {
            assert!(until > chrono::Utc::now() + chrono::Duration::hours(1));
        }
        other => panic!("not snoozed: {other:?}"),
    }

    let to = format!("operator:{colleague}");
    act(
        &client,
        &app,
        &id,
        "transfer",
        &[("to", to.as_str()), ("note", "Она про столик")],
    )
    .await;
    assert_eq!(stored().await.conversation.assignee, Some(colleague));
    let history = app
        .store
        .assignment_history(ws, conversation)
        .await
        .expect("audit");
    let last = history.last().expect("a record");
    assert_eq!(last.note.as_deref(), Some("Она про столик"));
    assert_eq!(
        last.reason,
        Some(seamline_core::inbox::conversation::AssignReason::Transfer)
    );
}

#[tokio::test]
async fn a_note_that_mentions_an_operator_shows_under_their_mentions() {
    let app = crate::support::spawn_app().await;
    let id = seeded(&app).await;
    let anna = app.add_member(Role::Operator).await;
    let handle = anna.split('@').next().expect("local part").to_owned();
    let (writer, _) = app.sign_in_as(Role::Operator).await;
    let note = format!("@{handle} взгляни, клиентка ждёт");
    act(
        &writer,
        &app,
        &id,
        "reply",
        &[("body", note.as_str()), ("kind", "note")],
    )
    .await;

    let anna_client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    crate::support::login(&anna_client, &app.base, &anna, crate::support::PASSWORD).await;
    let (_, mentions) = page(&anna_client, &app, "/inbox?who=mentions").await;
    assert!(
        mentions.contains(&format!("data-conversation=\"{id}\"")),
        "Anna sees the conversation she was mentioned in"
    );
    let (_, theirs) = page(&writer, &app, "/inbox?who=mentions").await;
    assert!(
        !theirs.contains(&format!("data-conversation=\"{id}\"")),
        "the writer was not mentioned"
    );
    assert!(theirs.contains("No note has mentioned you lately."));
}
