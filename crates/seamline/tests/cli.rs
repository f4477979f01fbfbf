//! The `seamline` commands as an operator meets them, driving the real
//! binary: `init`, `migrate`, `import`, `export`, configuration precedence,
//! the first-start login and the demo.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::{
    all_events, http, init, post_login, printed_key, printed_login, run, seamline, seamline_in,
    Output, Server, COMMAND_TIMEOUT, OWNER_EMAIL,
};

/// Seeding the demo workspace comes before the server listens.
const DEMO_START_TIMEOUT: Duration = Duration::from_secs(60);
/// What `serve` prints after the address comes right after it.
const PRINTED_TIMEOUT: Duration = Duration::from_secs(5);

fn database_in(dir: &Path) -> std::path::PathBuf {
    dir.join("seamline.db")
}

fn migrate(data_dir: &Path) -> Value {
    let mut command = seamline_in(data_dir);
    command.arg("migrate");
    run(command, COMMAND_TIMEOUT).success("migrate").json()
}

fn import(data_dir: &Path, file: &Path, extra: &[&str]) -> Output {
    let mut command = seamline_in(data_dir);
    command.arg("import").arg(file).args(extra);
    run(command, COMMAND_TIMEOUT).success("import")
}

/// `export --out FILE`, parsed: one JSON object per line.
fn export(data_dir: &Path) -> Vec<Value> {
    let out = data_dir.join("export.jsonl");
    let mut command = seamline_in(data_dir);
    command.arg("export").arg("--out").arg(&out);
    let done = run(command, COMMAND_TIMEOUT).success("export");
    assert!(
        done.stdout.is_empty(),
        "--out keeps stdout empty: {}",
        done.stdout
    );
    let text = std::fs::read_to_string(&out).expect("export wrote the file");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "lines end with a newline"
    );
    let events: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
        })
        .collect();
    assert!(
        done.stderr
            .contains(&format!("exported {} events", events.len())),
        "{}",
        done.stderr
    );
    events
}

/// Numbers of the lines `import` reported as bad on stderr (`line N: why`).
fn reported_lines(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("line "))
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.parse().expect("a line number"))
        .collect()
}

fn reason_for(stderr: &str, line: u64) -> &str {
    let prefix = format!("line {line}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no report for line {line}:\n{stderr}"))
}

#[test]
fn init_prints_the_workspace_and_its_keys_as_json() {
    let data = tempfile::tempdir().expect("temp dir");
    let made = init(data.path());
    uuid::Uuid::parse_str(&made.workspace_id).expect("workspace_id is a UUID");
    assert_ne!(made.write_key, made.api_key, "{}", made.raw);
    assert_eq!(made.raw["email"], OWNER_EMAIL);
    assert_eq!(made.raw["workspace"], "Test shop");
    assert!(
        database_in(data.path()).is_file(),
        "the database is in --data-dir"
    );
}

#[test]
fn migrate_is_idempotent() {
    let data = tempfile::tempdir().expect("temp dir");
    let expected = json!({"migrated": true, "backend": "sqlite"});
    assert_eq!(migrate(data.path()), expected);
    assert_eq!(
        migrate(data.path()),
        expected,
        "a second run changes nothing"
    );
    init(data.path());
    assert_eq!(migrate(data.path()), expected, "and keeps the data");
    let mut command = seamline_in(data.path());
    command.arg("export");
    let out = run(command, COMMAND_TIMEOUT).success("export after migrate");
    assert!(out.stderr.contains("exported 0 events"), "{}", out.stderr);
}

const JSONL: &[&str] = &[
    r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"imp-1","timestamp":"2024-03-01T10:00:00.000Z","properties":{"plan":"pro","seats":3}}"#,
    r#"{"type":"identify","userId":"u1","messageId":"imp-2","traits":{"name":"Пётр 🚀","phone":"+79161234567"}}"#,
    r#"{"type":"track","event":"Broken","userId":"u1""#,
    r#"{"type":"track","event":"Nobody","messageId":"imp-4"}"#,
    "",
    r#"{"type":"page","anonymousId":"a1","name":"Главная","properties":{"url":"https://shop.example/?utm_source=vk"}}"#,
    r#"{"type":"purchase","userId":"u1","messageId":"imp-7"}"#,
    r#"{"type":"alias","previousId":"a1","userId":"u1","messageId":"imp-8"}"#,
];
/// Line 9: not UTF-8.
const NOT_UTF8: &[u8] = b"{\"type\":\"track\",\"event\":\"\xff\xfe\",\"userId\":\"u1\"}\n";
const JSONL_BAD: [u64; 4] = [3, 4, 7, 9];

#[test]
fn import_reports_bad_lines_by_number_imports_the_rest_and_never_twice() {
    let data = tempfile::tempdir().expect("temp dir");
    init(data.path());
    let file = data.path().join("events.jsonl");
    let mut content = JSONL.join("\n").into_bytes();
    content.push(b'\n');
    content.extend_from_slice(NOT_UTF8);
    std::fs::write(&file, content).expect("write the import file");

    let first = import(data.path(), &file, &[]);
    assert_eq!(
        first.json(),
        json!({"imported": 4, "duplicates": 0, "bad_lines": 4, "resumed_after_line": 0}),
        "stderr:\n{}",
        first.stderr
    );
    assert_eq!(reported_lines(&first.stderr), JSONL_BAD, "{}", first.stderr);
    assert!(
        reason_for(&first.stderr, 3).contains("JSON"),
        "{}",
        first.stderr
    );
    assert!(
        reason_for(&first.stderr, 4).contains("userId"),
        "{}",
        first.stderr
    );
    assert!(
        reason_for(&first.stderr, 7).contains("purchase"),
        "{}",
        first.stderr
    );
    assert!(
        reason_for(&first.stderr, 9).contains("UTF-8"),
        "{}",
        first.stderr
    );

    // The same file again: resumes after its last line, nothing new.
    let again = import(data.path(), &file, &[]);
    assert_eq!(
        again.json(),
        json!({"imported": 0, "duplicates": 0, "bad_lines": 0, "resumed_after_line": 9})
    );
    assert!(reported_lines(&again.stderr).is_empty(), "{}", again.stderr);

    // From the top: every good line is recognised as already there, even the
    // one without a messageId.
    let restarted = import(data.path(), &file, &["--restart"]);
    assert_eq!(
        restarted.json(),
        json!({"imported": 0, "duplicates": 4, "bad_lines": 4, "resumed_after_line": 0})
    );

    // The export holds each good line once, with its payload as written.
    let exported = export(data.path());
    assert_eq!(exported.len(), 4, "{exported:#?}");
    let originals: Vec<Value> = [0, 1, 5, 7]
        .iter()
        .map(|&i| serde_json::from_str(JSONL[i]).expect("a good line"))
        .collect();
    for original in &originals {
        let found = exported
            .iter()
            .find(|e| &e["payload"] == original)
            .unwrap_or_else(|| panic!("{original} is not exported as written: {exported:#?}"));
        assert_eq!(found["type"], original["type"]);
        match original["messageId"].as_str() {
            Some(id) => assert_eq!(found["messageId"], id),
            None => assert!(
                found["messageId"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("import-")),
                "a messageId derived from the file: {found}"
            ),
        }
    }
    let signed_up = exported
        .iter()
        .find(|e| e["messageId"] == "imp-1")
        .expect("imp-1");
    assert_eq!(signed_up["event"], "Signed Up");
    assert_eq!(signed_up["userId"], "u1");
    assert_eq!(signed_up["timestamp"], "2024-03-01T10:00:00Z");
    let page = exported.iter().find(|e| e["type"] == "page").expect("page");
    assert_eq!(page["name"], "Главная");
    assert_eq!(page["enrichment"]["attribution"]["utm_source"], "vk");
}

#[test]
fn a_log_imported_again_after_it_grew_adds_only_the_new_lines() {
    let data = tempfile::tempdir().expect("temp dir");
    init(data.path());
    let file = data.path().join("app.log.jsonl");
    let line =
        |event: &str| format!("{{\"type\":\"track\",\"event\":\"{event}\",\"userId\":\"u1\"}}\n");
    std::fs::write(&file, line("First") + &line("Second")).expect("write");
    let first = import(data.path(), &file, &[]);
    assert_eq!(first.json()["imported"], 2, "{}", first.stderr);

    let grown = line("First") + &line("Second") + &line("Third");
    std::fs::write(&file, grown).expect("append");
    let again = import(data.path(), &file, &[]);
    assert_eq!(
        again.json(),
        json!({"imported": 1, "duplicates": 2, "bad_lines": 0, "resumed_after_line": 0})
    );
    let names: Vec<String> = export(data.path())
        .iter()
        .map(|e| e["event"].as_str().expect("event").to_owned())
        .collect();
    assert_eq!(names, ["First", "Second", "Third"]);
}

#[test]
fn csv_import_nests_dotted_columns() {
    let data = tempfile::tempdir().expect("temp dir");
    init(data.path());
    let file = data.path().join("orders.csv");
    std::fs::write(
        &file,
        "type,userId,event,properties.revenue,properties.currency,properties.note,context.campaign.source,timestamp\n\
         track,u1,Order Completed,12.5,RUB,\"борщ, с хлебом\",yandex,2024-03-01T10:00:00Z\n\
         track,u2,Order Completed,7,USD,,google,2024-03-02T10:00:00Z\n\
         track,,Order Completed,1,RUB,,,\n\
         track,u3,Order Completed,99.9,EUR,\"two\nlines\",,\n\
         refund,u3,Order Refunded,1,EUR,,,\n\
         identify,007,,,,,,\n",
    )
    .expect("write the CSV");

    let out = import(data.path(), &file, &[]);
    assert_eq!(
        out.json(),
        json!({"imported": 4, "duplicates": 0, "bad_lines": 2, "resumed_after_line": 0}),
        "stderr:\n{}",
        out.stderr
    );
    // Line numbers are the file's: the quoted field spans lines 5 and 6.
    assert_eq!(reported_lines(&out.stderr), [4, 7], "{}", out.stderr);
    assert!(
        reason_for(&out.stderr, 4).contains("userId"),
        "{}",
        out.stderr
    );
    assert!(
        reason_for(&out.stderr, 7).contains("refund"),
        "{}",
        out.stderr
    );

    let exported = export(data.path());
    let by_user: HashMap<&str, &Value> = exported
        .iter()
        .map(|e| (e["userId"].as_str().expect("userId"), e))
        .collect();
    assert_eq!(by_user.len(), 4, "{exported:#?}");
    assert_eq!(
        by_user["u1"]["payload"],
        json!({"type": "track", "userId": "u1", "event": "Order Completed",
               "properties": {"revenue": 12.5, "currency": "RUB", "note": "борщ, с хлебом"},
               "context": {"campaign": {"source": "yandex"}},
               "timestamp": "2024-03-01T10:00:00Z"})
    );
    assert_eq!(
        by_user["u1"]["enrichment"]["attribution"]["utm_source"],
        "yandex"
    );
    assert_eq!(by_user["u2"]["payload"]["properties"]["revenue"], 7);
    assert_eq!(by_user["u3"]["payload"]["properties"]["note"], "two\nlines");
    assert_eq!(by_user["007"]["type"], "identify", "ids stay text");
}

#[test]
fn files_saved_on_windows_import_with_their_line_numbers() {
    let data = tempfile::tempdir().expect("temp dir");
    init(data.path());
    // A byte-order mark and CRLF line ends, as Excel and Notepad write them.
    let jsonl = data.path().join("windows.jsonl");
    std::fs::write(
        &jsonl,
        "\u{feff}{\"type\":\"track\",\"event\":\"A\",\"userId\":\"w1\"}\r\n\
         {\"type\":\"track\",\"event\":\"B\"}\r\n\
         {\"type\":\"track\",\"event\":\"C\",\"userId\":\"w1\"}\r\n",
    )
    .expect("write JSONL");
    let out = import(data.path(), &jsonl, &[]);
    assert_eq!(out.json()["imported"], 2, "stderr:\n{}", out.stderr);
    assert_eq!(reported_lines(&out.stderr), [2], "{}", out.stderr);

    let csv = data.path().join("windows.csv");
    std::fs::write(
        &csv,
        "\u{feff}type,userId,event,properties.note\r\n\
         track,w2,D,\"one\r\ntwo\"\r\n\
         track,,E,\r\n\
         track,w2,F,\r\n\
         track,,G,\r\n",
    )
    .expect("write CSV");
    let out = import(data.path(), &csv, &[]);
    assert_eq!(out.json()["imported"], 2, "stderr:\n{}", out.stderr);
    assert_eq!(reported_lines(&out.stderr), [4, 6], "{}", out.stderr);
    let exported = export(data.path());
    let names: Vec<&str> = exported
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(names, ["A", "C", "D", "F"]);
    assert_eq!(exported[2]["payload"]["properties"]["note"], "one\ntwo");
}

#[test]
fn data_dir_comes_from_the_flag_then_the_environment_then_the_config_file() {
    let root = tempfile::tempdir().expect("temp dir");
    let [flag, env, file, cwd] = ["flag", "env", "file", "cwd"].map(|d| root.path().join(d));
    std::fs::create_dir(&cwd).expect("mkdir");
    let config = root.path().join("seamline.toml");
    std::fs::write(&config, format!("data_dir = {}\n", toml_string(&file)))
        .expect("write the config file");
    let migrate_with = |data_dir_flag: bool, data_dir_env: bool, config_file: bool| {
        let mut command = seamline();
        command.current_dir(&cwd);
        if config_file {
            command.arg("--config").arg(&config);
        }
        if data_dir_flag {
            command.arg("--data-dir").arg(&flag);
        }
        if data_dir_env {
            command.env("SEAMLINE_DATA_DIR", &env);
        }
        command.arg("migrate");
        run(command, COMMAND_TIMEOUT).success("migrate");
    };
    let created =
        || [&flag, &env, &file, &cwd.join("seamline-data")].map(|dir| database_in(dir).is_file());

    migrate_with(true, true, true);
    assert_eq!(created(), [true, false, false, false], "the flag wins");
    migrate_with(false, true, true);
    assert_eq!(
        created(),
        [true, true, false, false],
        "then the environment"
    );
    migrate_with(false, false, true);
    assert_eq!(created(), [true, true, true, false], "then the file");
    migrate_with(false, false, false);
    assert_eq!(created(), [true, true, true, true], "then ./seamline-data");
}

fn toml_string(path: &Path) -> String {
    let text = path.to_str().expect("a UTF-8 temp path");
    assert!(!text.contains(['"', '\\']), "{text}");
    format!("\"{text}\"")
}

#[tokio::test]
async fn the_first_start_prints_a_login_that_works() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(data.path(), &[]);
    let (email, password) = printed_login(&server.wait_for_stdout("sign in as", PRINTED_TIMEOUT));
    assert!(
        email.contains('@') && password.len() >= 16,
        "{email} / {password}"
    );
    let api_key = printed_key(
        &server.wait_for_stdout("API key:", PRINTED_TIMEOUT),
        "API key:",
    );
    let client = http();

    let wrong = post_login(&client, &server, &email, "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(support::set_cookie(&wrong, "seamline_session").is_none());

    let forged = client
        .post(server.at("/login"))
        .header(reqwest::header::COOKIE, "seamline_login_csrf=one")
        .form(&[
            ("email", email.as_str()),
            ("password", password.as_str()),
            ("csrf_token", "two"),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(
        forged.status(),
        403,
        "a CSRF token that does not match is refused"
    );

    let session = signed_in_session(&client, &server, &email, &password).await;
    let events_page = client
        .get(server.at("/events"))
        .header(
            reqwest::header::COOKIE,
            format!("seamline_session={session}"),
        )
        .send()
        .await
        .expect("GET /events");
    assert_eq!(events_page.status(), 200, "the session opens the UI");

    let events = all_events(&client, &server.url, &api_key).await;
    assert!(events.is_empty(), "the printed API key works: {events:?}");
}

#[tokio::test]
async fn a_first_start_that_cannot_listen_keeps_the_login_for_the_next() {
    let data = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("local address").port();
    let mut command = seamline_in(data.path());
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    let failed = run(command, COMMAND_TIMEOUT);
    assert!(!failed.status.success(), "{failed:?}");
    assert!(failed.stderr.contains("binding"), "{}", failed.stderr);
    assert!(!failed.stdout.contains("sign in as"), "{}", failed.stdout);
    drop(taken);

    let mut server = Server::start(data.path(), &[]);
    let (email, password) = printed_login(&server.wait_for_stdout("sign in as", PRINTED_TIMEOUT));
    signed_in_session(&http(), &server, &email, &password).await;
}

/// Signs in and returns the session cookie's value.
async fn signed_in_session(
    client: &reqwest::Client,
    server: &Server,
    email: &str,
    password: &str,
) -> String {
    let response = post_login(client, server, email, password).await;
    assert_eq!(
        response.status(),
        303,
        "sign-in redirects\n{}",
        server.output()
    );
    assert_eq!(response.headers()[reqwest::header::LOCATION], "/events");
    support::set_cookie(&response, "seamline_session").expect("a session cookie")
}

#[tokio::test]
async fn the_demo_prints_its_login_and_has_several_hundred_events() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_with(seamline_in(data.path()), &["--demo"], DEMO_START_TIMEOUT);
    let (email, password) = printed_login(&server.wait_for_stdout("sign in as", PRINTED_TIMEOUT));
    assert_eq!(
        (email.as_str(), password.as_str()),
        ("demo@seamline.local", "seamline-demo")
    );
    let api_key = printed_key(
        &server.wait_for_stdout("API key:", PRINTED_TIMEOUT),
        "API key:",
    );
    let client = http();
    signed_in_session(&client, &server, &email, &password).await;

    let events = all_events(&client, &server.url, &api_key).await;
    assert!(events.len() >= 300, "only {} demo events", events.len());
    support::unique_message_ids(&events);
    let types: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in ["identify", "track", "page"] {
        assert!(types.contains(expected), "no {expected} events: {types:?}");
    }
}
