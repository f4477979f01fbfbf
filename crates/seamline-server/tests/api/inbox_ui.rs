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
