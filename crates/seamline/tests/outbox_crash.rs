//! Durability of the channel outbox: replies are queued through the API
//! while the provider (the fake VK API, hosted in this test process) is
//! down and answers 503; `seamline serve` is killed with SIGKILL while
//! the sender works through the queue, restarted, the provider comes
//! back, and the server is killed once more mid-send. Against the fake's
//! log: every reply the API acknowledged was delivered exactly once, and
//! nothing else was. VK is the one provider with an idempotency key
//! (`random_id`, channels.md §0 and §4): a reply sent but not yet recorded
//! when the server died (the fake holds its answer back, so the second
//! kill lands exactly there) is sent again after the restart with the same
//! `random_id`, and VK delivers it once.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seamline_fakes::vk::FakeVk;
use serde_json::{json, Value};
use support::{http, init, Server, Workspace};

const GROUP: i64 = 218_000_001;
const TOKEN: &str = "vk1.a.fakeCommunityToken0123456789abcdef";
const SECRET: &str = "s3cr3t-callback-key";
const CODE: &str = "a1b2c3d4";
const FIRST_USER: i64 = 1_234_567;
const CUSTOMERS: i64 = 6;
/// Replies acknowledged before the kill, across the customers.
const QUEUED: usize = 60;
/// Failed sends the provider must have seen before the first kill: the
/// sender is busy with the queue when it dies.
const REFUSED_BEFORE_KILL: usize = 20;
/// Long enough for a dead sender's lease (60 s) and the backoff after it.
const DELIVERY_AT_MOST: Duration = Duration::from_secs(240);

struct Api {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    fn new(server: &Server, workspace: &Workspace) -> Self {
        Self {
            client: http(),
            url: server.url.clone(),
            key: workspace.api_key.clone(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Connects the VK account to the fake and confirms its callback server.
async fn connect(api: &Api, vk: &FakeVk) {
    let (status, created) = api
        .post(
            "/api/v1/channels",
            &json!({"kind": "vk", "name": "Сообщество",
                    "settings": {"api_base": vk.base_url(), "group_id": GROUP.to_string()},
                    "secrets": {"access_token": TOKEN, "secret": SECRET}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("account id");
    let (status, tested) = api
        .post(&format!("/api/v1/channels/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["status"], "connected", "{tested}");
    let url = tested["webhook_url"].as_str().expect("webhook url");
    vk.confirm(GROUP, url, SECRET).await.expect("confirmed");
}

/// Each customer writes once; returns their conversations' ids.
async fn customers_write(api: &Api, vk: &FakeVk) -> Vec<String> {
    let mut conversations = Vec::new();
    for n in 0..CUSTOMERS {
        let user = FIRST_USER + n;
        let event = vk.message_new(GROUP, user, "Здравствуйте", None);
        vk.deliver(&event).await.expect("the server answers ok");
        let profile = api
            .get(&format!("/api/v1/profiles/lookup?type=vk&value={user}"))
            .await;
        let id = profile["id"].as_str().expect("profile id");
        let conversation = api
            .get(&format!("/api/v1/profiles/{id}/conversation"))
            .await;
        conversations.push(
            conversation["id"]
                .as_str()
                .expect("conversation")
                .to_owned(),
        );
    }
    conversations
}

/// What the clients saw: replies answered 201, and the ones whose request
/// failed because the server died (they may or may not be stored).
#[derive(Default)]
struct Log {
    acked: Vec<String>,
    unanswered: Vec<String>,
    unexpected: Vec<String>,
}

/// Writes reply `text` in conversation `cid` as `author`.
async fn write(api: &Api, cid: &str, author: &str, text: &str) -> Result<u16, reqwest::Error> {
    let response = api
        .client
        .post(format!("{}/api/v1/conversations/{cid}/messages", api.url))
        .bearer_auth(&api.key)
        .json(&json!({"body": text, "author_id": author}))
        .send()
        .await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok(status)
}

/// Keeps replying round the conversations until a request fails after the
/// kill.
async fn replier(
    api: Api,
    conversations: Vec<String>,
    author: String,
    killed: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
) {
    for n in 0.. {
        let cid = &conversations[n % conversations.len()];
        let text = format!("Ответ №{n}");
        let result = write(&api, cid, &author, &text).await;
        let stop = {
            let mut log = log.lock().expect("log");
            match result {
                Ok(201) => {
                    log.acked.push(text);
                    false
                }
                Ok(status) => {
                    log.unexpected.push(format!("{text}: HTTP {status}"));
                    true
                }
                Err(_) if killed.load(Ordering::SeqCst) => {
                    log.unanswered.push(text);
                    true
                }
                Err(error) => {
                    log.unexpected.push(format!("{text}: {error}"));
                    true
                }
            }
        };
        if stop {
            return;
        }
        // An operator's pace, not a flood: the queue stays a few seconds' work.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (bounded) until `done` holds, showing `what` otherwise.
async fn until(what: &str, server: &Server, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DELIVERY_AT_MOST,
            "{what} never happened\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_queue_delivers_every_acknowledged_reply_exactly_once() {
    let data = tempfile::tempdir().expect("temp dir");
    let workspace = init(data.path());
    let vk = FakeVk::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake VK");
    vk.add_group(GROUP, TOKEN, CODE);
    let mut server = Server::start(data.path(), &[]);
    let api = Api::new(&server, &workspace);
    connect(&api, &vk).await;
    let conversations = customers_write(&api, &vk).await;
    let members = api.get("/api/v1/members").await;
    let owner = members["data"][0]["id"].as_str().expect("owner").to_owned();

    // VK is down: replies are acknowledged and wait in the outbox.
    vk.set_down(true);
    let killed = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let writer = tokio::spawn(replier(
        Api::new(&server, &workspace),
        conversations.clone(),
        owner,
        killed.clone(),
        log.clone(),
    ));
    until("queueing under a down provider", &server, || {
        let acked = log.lock().expect("log").acked.len();
        let refused = vk.calls().iter().filter(|c| c.status == 503).count();
        acked >= QUEUED && refused >= REFUSED_BEFORE_KILL
    })
    .await;
    assert!(
        vk.delivered().is_empty(),
        "nothing goes out while VK is down"
    );
    // Replies are still being written and retried: SIGKILL mid-queue.
    killed.store(true, Ordering::SeqCst);
    server.kill();
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the writer notices the dead server")
        .expect("writer task");
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("the writer is done")
        .into_inner()
        .expect("log");
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
    let acked: HashSet<String> = log.acked.iter().cloned().collect();
    let sent: HashSet<String> = acked
        .union(&log.unanswered.iter().cloned().collect())
        .cloned()
        .collect();

    // Back up, VK too; once part of the queue went out, VK carries out a
    // send but holds its answer back, and the server dies waiting for it.
    let mut server = Server::start(data.path(), &[]);
    vk.set_down(false);
    let third = acked.len() / 3;
    until("a third delivered after the restart", &server, || {
        vk.delivered().len() >= third
    })
    .await;
    vk.hold_next_answer(Duration::from_secs(30));
    let before = vk.delivered().len();
    until("a send carried out but not answered", &server, || {
        vk.delivered().len() > before
    })
    .await;
    let unanswered_send = vk.delivered()[before].clone();
    server.kill();
    let server = Server::start(data.path(), &[]);
    until("every acknowledged reply delivered", &server, || {
        let delivered: HashSet<String> = vk.delivered().into_iter().map(|d| d.text).collect();
        acked.is_subset(&delivered)
    })
    .await;

    // Exactly once, as VK's log shows it, and nothing nobody wrote.
    let delivered = vk.delivered();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for message in &delivered {
        *times.entry(message.text.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let unknown: Vec<_> = times.keys().filter(|t| !sent.contains(**t)).collect();
    assert!(
        unknown.is_empty(),
        "delivered but never written: {unknown:?}"
    );
    // Every send carried the reply's own idempotency key: a resend after
    // a kill is the same random_id, which is what kept VK from sending twice.
    let calls = vk.calls();
    let resent = calls
        .iter()
        .filter(|c| c.status == 200 && c.params.get("message") == Some(&unanswered_send.text))
        .count();
    assert_eq!(
        resent, 2,
        "the unanswered send was carried out, then tried again after the restart"
    );
    let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
    for call in &calls {
        let random_id = call.params.get("random_id").cloned().unwrap_or_default();
        assert!(!matches!(random_id.as_str(), "" | "0"), "{call:?}");
        let text = call.params.get("message").cloned().unwrap_or_default();
        keys.entry(text).or_default().insert(random_id);
    }
    assert!(
        keys.values().all(|ids| ids.len() == 1),
        "one random_id per reply across retries and restarts"
    );
    eprintln!(
        "{} replies acknowledged ({} unanswered at the kill), {} delivered, {} send calls",
        acked.len(),
        log.unanswered.len(),
        delivered.len(),
        calls.len()
    );

    // The operator sees each acknowledged reply as sent.
    let api = Api::new(&server, &workspace);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut pending = Vec::new();
        for cid in &conversations {
            let page = api
                .get(&format!("/api/v1/conversations/{cid}/messages?limit=200"))
                .await;
            for message in page["data"].as_array().into_iter().flatten() {
                let text = message["body"].as_str().unwrap_or_default();
                if acked.contains(text) && message["delivery"] != "sent" {
                    pending.push(format!("{text}: {}", message["delivery"]));
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not shown as sent: {pending:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
