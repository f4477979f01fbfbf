//! The site widget: its script, and the visitor's chat socket end to end.

use futures::{SinkExt, StreamExt};
use seamline_core::inbox::widget_identity::user_hash;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::support::{spawn_app, urlencode, TestApp};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn socket_url(app: &TestApp, query: &str) -> String {
    format!(
        "{}/widget/v1/socket?{query}",
        app.base.replacen("http", "ws", 1)
    )
}

pub(crate) async fn open(app: &TestApp, visitor: &str) -> Socket {
    let query = format!(
        "key={}&anonymousId={visitor}",
        urlencode(&app.workspace.write_key)
    );
    connect_async(socket_url(app, &query))
        .await
        .expect("connects")
        .0
}

pub(crate) async fn frame(socket: &mut Socket) -> Value {
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("a frame in time")
        .expect("open")
        .expect("a frame");
    match next {
        Frame::Text(text) => serde_json::from_str(&text).expect("JSON"),
        other => panic!("unexpected frame {other:?}"),
    }
}

/// The next frame that is not the visitor's own message pushed back (the
/// socket shows it to their other tabs too) nor the history the socket
/// sends again once it learns whose chat this is (to catch up on anything
/// written before it listened).
async fn answer(socket: &mut Socket) -> Value {
    loop {
        let next = frame(socket).await;
        let own = next["type"] == "message" && next["message"]["kind"] == "inbound";
        if !own && next["type"] != "history" {
            return next;
        }
    }
}

pub(crate) async fn say(socket: &mut Socket, id: &str, body: &str) -> Value {
    let sent = json!({"type": "message", "id": id, "body": body}).to_string();
    socket.send(Frame::Text(sent.into())).await.expect("send");
    answer(socket).await
}

#[tokio::test]
async fn the_script_is_small_self_contained_and_writes_text_only() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/widget.js"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/javascript"));
    let script = response.text().await.expect("text");
    assert!(script.len() < 30 * 1024, "under 30 KB even before gzip");
    assert!(script.contains("textContent") && !script.contains("innerHTML"));
    assert!(!script.contains("https://cdn"), "no third-party requests");
}

#[tokio::test]
async fn the_script_is_under_30_kb_gzipped() {
    use std::io::Write;
    let app = spawn_app().await;
    let script = app
        .http
        .get(app.url("/widget.js"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&script).expect("gzip");
    let size = gzip.finish().expect("gzip").len();
    assert!(size < 30 * 1024, "{size} bytes gzipped");
}

#[tokio::test]
async fn a_visitor_chats_gets_answers_live_and_sees_the_history_again() {
    let app = spawn_app().await;
    let mut socket = open(&app, "visitor-1").await;
    let ack = say(&mut socket, "c-1", "<script>alert(1)</script> Здравствуйте").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], "c-1");
    assert_eq!(
        ack["message"]["body"], "<script>alert(1)</script> Здравствуйте",
        "kept as text"
    );
    // A resend after a reconnect is the same message, stored once.
    let again = say(&mut socket, "c-1", "<script>alert(1)</script> Здравствуйте").await;
    assert_eq!(again["message"]["id"], ack["message"]["id"]);

    // An operator answers through the inbox API: the visitor sees it live.
    let profile = app.lookup("anonymous_id", "visitor-1").await;
    let (_, conversation) = app
        .api_get(&format!(
            "/api/v1/profiles/{}/conversation",
            profile["id"].as_str().unwrap_or("")
        ))
        .await;
    let (status, reply) = app
        .api_post(
            &format!(
                "/api/v1/conversations/{}/messages",
                conversation["id"].as_str().unwrap_or("")
            ),
            &json!({"body": "Добрый день! Чем помочь?", "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{reply}");
    assert_eq!(
        reply["channel"], "web_chat",
        "the answer goes back to the chat"
    );
    let pushed = answer(&mut socket).await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["kind"], "outbound");
    assert_eq!(pushed["message"]["body"], "Добрый день! Чем помочь?");

    // Reloading the page: the history, oldest first.
    drop(socket);
    let mut socket = open(&app, "visitor-1").await;
    let history = frame(&mut socket).await;
    assert_eq!(history["type"], "history");
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        [
            "<script>alert(1)</script> Здравствуйте",
            "Добрый день! Чем помочь?"
        ]
    );
}

#[tokio::test]
async fn visitors_are_rate_limited_and_bad_frames_are_answered() {
    let app = spawn_app().await;
    let mut socket = open(&app, "visitor-2").await;
    let refused = say(&mut socket, "x", "").await;
    assert_eq!(refused["type"], "error", "an empty message: {refused}");
    socket
        .send(Frame::Text("not json".into()))
        .await
        .expect("send");
    assert_eq!(frame(&mut socket).await["type"], "error");
    for n in 0..12 {
        let sent = json!({"type": "message", "id": format!("m-{n}"), "body": "спам"}).to_string();
        socket.send(Frame::Text(sent.into())).await.expect("send");
    }
    // Acks, refusals and the visitor's own messages pushed back, in any mix.
    let (mut acks, mut refusals) = (0, 0);
    while let Ok(Some(Ok(Frame::Text(text)))) =
        tokio::time::timeout(std::time::Duration::from_millis(700), socket.next()).await
    {
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        acks += usize::from(answer["type"] == "ack");
        refusals += usize::from(answer["type"] == "error");
    }
    assert_eq!(
        acks, 9,
        "ten messages in ten seconds, the empty one counted"
    );
    assert_eq!(refusals, 3, "the rest are refused");
}

#[tokio::test]
async fn only_a_signed_user_id_is_believed() {
    let app = spawn_app().await;
    let ws = app.workspace.workspace.id;
    app.store
        .put_setting(
            ws,
            "widget",
            &json!({"identity_secret": "s3cret"}),
            chrono::Utc::now(),
        )
        .await
        .expect("secret");
    let key = urlencode(&app.workspace.write_key);
    let forged = format!(
        "key={key}&anonymousId=v3&userId=olga&userHash={}",
        "00".repeat(32)
    );
    match connect_async(socket_url(&app, &forged)).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("JSON");
            assert_eq!(body["errors"][0]["field"], "userHash", "{body}");
        }
        other => panic!("a forged identity must be refused, got {other:?}"),
    }
    let unknown_key = "key=wk_nope&anonymousId=v3";
    assert!(matches!(
        connect_async(socket_url(&app, unknown_key)).await,
        Err(tungstenite::Error::Http(r)) if r.status() == 401
    ));

    let hash = user_hash(b"s3cret", "olga").expect("hash");
    let signed = format!("key={key}&anonymousId=v3&userId=olga&userHash={hash}");
    let (mut socket, _) = connect_async(socket_url(&app, &signed))
        .await
        .expect("connects");
    assert_eq!(say(&mut socket, "s-1", "Я Ольга").await["type"], "ack");
    let olga = app.lookup("user_id", "olga").await;
    assert_eq!(
        olga["id"],
        app.lookup("anonymous_id", "v3").await["id"],
        "the chat joined her profile"
    );

    // Linking a cookie to her account through the public tracking API does
    // not open her chat: only her signed id does.
    app.send(vec![
        json!({"type": "identify", "userId": "olga", "anonymousId": "attacker"}),
    ])
    .await;
    app.eventually(
        "/api/v1/profiles/lookup?type=anonymous_id&value=attacker",
        |p| p["id"] == olga["id"],
    )
    .await;
    let mut intruder = open(&app, "attacker").await;
    let silent = tokio::time::timeout(std::time::Duration::from_millis(500), intruder.next()).await;
    assert!(
        silent.is_err(),
        "no history for an unverified cookie: {silent:?}"
    );
    let (mut again, _) = connect_async(socket_url(&app, &signed))
        .await
        .expect("connects");
    let history = frame(&mut again).await;
    assert_eq!(history["messages"][0]["body"], "Я Ольга", "{history}");
}
