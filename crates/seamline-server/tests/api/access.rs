//! Who may do what: the role matrix on every API route, CSRF on sessions,
//! and workspaces that never see each other.

use reqwest::{Client, Method, StatusCode};
use seamline_core::Role;
use serde_json::{json, Value};

use crate::support::{read, spawn_app, TestApp};

/// One API route and the roles that may use it.
struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static [Role],
}

fn routes() -> Vec<Route> {
    use Role::*;
    let everyone: &'static [Role] = &[Owner, Admin, Supervisor, Operator, Analyst];
    let managers: &'static [Role] = &[Owner, Admin];
    let writers: &'static [Role] = &[Owner, Admin, Supervisor, Operator];
    let team_managers: &'static [Role] = &[Owner, Admin, Supervisor];
    let integration_readers: &'static [Role] = &[Owner, Admin, Supervisor];
    let conversation = |method: Method, path: &'static str, body: Option<Value>| Route {
        allowed: if method == Method::GET {
            everyone
        } else {
            writers
        },
        method,
        path,
        body,
    };
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/events",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/workspace",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/members",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/keys",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/keys",
            body: Some(json!({"kind": "write", "name": "site"})),
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/members",
            body: Some(json!({"email": "{unique}", "role": "operator", "password": "long enough"})),
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/members",
            body: Some(json!({"email": "{unique}", "role": "owner", "password": "long enough"})),
            allowed: &[Owner],
        },
        Route {
            method: Method::GET,
            path: "/api/v1/settings/identity",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/settings/identity",
            body: Some(json!({"default_region": "RU"})),
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/settings/widget",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/settings/widget",
            body: Some(json!({"title": "Ask us"})),
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/settings/widget/identity-secret",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/call-tracking/numbers",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/call-tracking/numbers",
            body: Some(json!({"number": "{phone}"})),
            allowed: managers,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/call-tracking/numbers/{tracking_number}",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/call-tracking/settings",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/call-tracking/settings",
            body: Some(json!({"tail_s": 1800})),
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/call-tracking/stats",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/profiles",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/conflicts",
            body: None,
            allowed: everyone,
        },
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/typing",
            None,
        ),
        Route {
            method: Method::GET,
            path: "/api/v1/operators",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/presence",
            body: Some(json!({"presence": "away"})),
            allowed: writers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/supervisor",
            body: None,
            allowed: team_managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/settings/inbox",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/settings/inbox",
            body: Some(json!({"private_teams": []})),
            allowed: team_managers,
        },
        conversation(Method::GET, "/api/v1/conversations", None),
        conversation(Method::GET, "/api/v1/conversations/{conversation}", None),
        conversation(
            Method::GET,
            "/api/v1/conversations/{conversation}/messages",
            None,
        ),
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/messages",
            Some(json!({"kind": "note", "body": "checked"})),
        ),
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/status",
            Some(json!({"status": "open"})),
        ),
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/assignment",
            Some(json!({"team_id": null})),
        ),
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/labels",
            Some(json!({"add": ["vip"]})),
        ),
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/priority",
            Some(json!({"priority": "high"})),
        ),
        conversation(
            Method::POST,
            "/api/v1/conversations/{conversation}/read",
            None,
        ),
        Route {
            method: Method::GET,
            path: "/api/v1/teams",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/teams",
            body: Some(json!({"name": "{token}"})),
            allowed: team_managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/teams/{team}",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::PATCH,
            path: "/api/v1/teams/{team}",
            body: Some(json!({"routing": {"rule": "least_loaded"}})),
            allowed: team_managers,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/teams/{fresh_team}",
            body: None,
            allowed: team_managers,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/teams/{team}/members/{member}",
            body: None,
            allowed: team_managers,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/teams/{team}/members/{member}",
            body: None,
            allowed: team_managers,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/operators/{member}/capacity",
            body: Some(json!({"capacity": 3})),
            allowed: team_managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/reports/csat",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/settings/csat",
            body: None,
            allowed: everyone,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/settings/csat",
            body: Some(json!({"survey": false})),
            allowed: team_managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/channels",
            body: None,
            allowed: integration_readers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/channels",
            body: Some(json!({"kind": "telegram", "secrets": {"bot_token": "1:{token}"}})),
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/channels/{channel}",
            body: None,
            allowed: integration_readers,
        },
        Route {
            method: Method::PATCH,
            path: "/api/v1/channels/{channel}",
            body: Some(json!({"name": "Shop bot"})),
            allowed: managers,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/channels/{channel}",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/channels/{channel}/test",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/webhooks",
            body: None,
            allowed: integration_readers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/webhooks",
            body: Some(json!({"url": "http://127.0.0.1:9/hook"})),
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/webhooks/{webhook}",
            body: None,
            allowed: integration_readers,
        },
        Route {
            method: Method::PATCH,
            path: "/api/v1/webhooks/{webhook}",
            body: Some(json!({"description": "CRM"})),
            allowed: managers,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/webhooks/{webhook}",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/webhooks/{webhook}/rotate-secret",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/webhooks/{webhook}/ping",
            body: None,
            allowed: managers,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/webhooks/{webhook}/deliveries",
            body: None,
            allowed: integration_readers,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/webhooks/deliveries/{delivery}/redeliver",
            body: None,
            allowed: managers,
        },
        conversation(Method::GET, "/api/v1/canned-responses", None),
        conversation(
            Method::POST,
            "/api/v1/canned-responses",
            Some(json!({"shortcut": "{token}", "body": "Hello {{first_name|there}}"})),
        ),
    ]
}

/// Calls `route`, its `{conversation}` being `conversation`.
async fn call(
    client: &Client,
    app: &TestApp,
    route: &Route,
    csrf: Option<&str>,
    conversation: &str,
) -> StatusCode {
    let mut path = route.path.replace("{conversation}", conversation);
    if path.contains("{fresh_team}") {
        path = path.replace("{fresh_team}", &team_of(app).await);
    }
    if path.contains("{team}") || path.contains("{member}") {
        let team = team_of(app).await;
        let member = app.workspace.owner.id.to_string();
        path = path.replace("{team}", &team).replace("{member}", &member);
    }
    if path.contains("{webhook}") || path.contains("{delivery}") {
        let (webhook, delivery) = webhook_of(app).await;
        path = path
            .replace("{webhook}", &webhook)
            .replace("{delivery}", &delivery);
    }
    if path.contains("{channel}") {
        path = path.replace("{channel}", &channel_of(app).await);
    }
    if path.contains("{tracking_number}") {
        path = path.replace("{tracking_number}", &tracking_number_of(app).await);
    }
    let mut request = client.request(route.method.clone(), app.url(&path));
    if let Some(token) = csrf {
        request = request.header("x-csrf-token", token);
    }
    if let Some(body) = &route.body {
        let text = body
            .to_string()
            .replace(
                "{unique}",
                &format!("m-{}@example.test", uuid::Uuid::now_v7()),
            )
            .replace("{token}", &uuid::Uuid::now_v7().simple().to_string())
            .replace("{phone}", &unique_phone());
        request = request
            .header("content-type", "application/json")
            .body(text);
    }
    request.send().await.expect("send").status()
}

/// A new webhook endpoint (to a closed port) with one queued ping, made
/// with the owner's key; their ids.
async fn webhook_of(app: &TestApp) -> (String, String) {
    let (_, webhook) = app
        .api_post(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    let id = webhook["id"].as_str().unwrap_or_default().to_owned();
    let (_, ping) = app
        .api_post(&format!("/api/v1/webhooks/{id}/ping"), &json!({}))
        .await;
    (id, ping["id"].as_str().unwrap_or_default().to_owned())
}

/// A new Telegram account (its Bot API at a closed port), made with the
/// owner's key; its id.
async fn channel_of(app: &TestApp) -> String {
    let (_, account) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "telegram", "settings": {"api_base": "http://127.0.0.1:9"},
                    "secrets": {"bot_token": "1:secret"}}),
        )
        .await;
    account["id"].as_str().unwrap_or_default().to_owned()
}

/// A Moscow number no other call of the test has used.
fn unique_phone() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1_000_000);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("+7495{n:07}")
}

/// A new pool tracking number, added with the owner's key; its id.
async fn tracking_number_of(app: &TestApp) -> String {
    let (_, number) = app
        .api_post(
            "/api/v1/call-tracking/numbers",
            &json!({"number": unique_phone()}),
        )
        .await;
    number["id"].as_str().unwrap_or_default().to_owned()
}

/// A new team, made with the owner's key; its id.
async fn team_of(app: &TestApp) -> String {
    let name = uuid::Uuid::now_v7().simple().to_string();
    let (_, team) = app.api_post("/api/v1/teams", &json!({"name": name})).await;
    team["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_role_gets_exactly_its_rights_on_every_route() {
    let app = spawn_app().await;
    app.track("identify", &json!({"userId": "olga"})).await;
    let profile = app.lookup("user_id", "olga").await;
    let path = format!("/api/v1/profiles/{}/conversation", profile["id"]);
    let conversation = app.api_get(&path.replace('"', "")).await.1["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for role in Role::ALL {
        let (client, csrf) = app.sign_in_as(role).await;
        for route in routes() {
            let status = call(&client, &app, &route, Some(&csrf), &conversation).await;
            let expected_ok = route.allowed.contains(&role);
            assert_eq!(
                status.is_success(),
                expected_ok,
                "{role} {} {} {:?} answered {status}",
                route.method,
                route.path,
                route.body
            );
            if !expected_ok {
                assert_eq!(status, StatusCode::FORBIDDEN);
            }
        }
    }
}

#[tokio::test]
async fn session_writes_need_the_csrf_token() {
    let app = spawn_app().await;
    let (client, csrf) = app.sign_in_as(Role::Owner).await;
    let create = Route {
        method: Method::POST,
        path: "/api/v1/keys",
        body: Some(json!({"kind": "secret"})),
        allowed: &[],
    };
    assert_eq!(
        call(&client, &app, &create, None, "").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&client, &app, &create, Some("forged"), "").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&client, &app, &create, Some(&csrf), "").await,
        StatusCode::CREATED
    );

    // HTML forms carry the token as a field.
    let form = client.post(app.url("/settings/keys")).form(&[
        ("kind", "write"),
        ("name", "x"),
        ("csrf_token", "forged"),
    ]);
    assert_eq!(
        form.send().await.expect("send").status(),
        StatusCode::FORBIDDEN
    );
    let form = client.post(app.url("/settings/keys")).form(&[
        ("kind", "write"),
        ("name", "x"),
        ("csrf_token", &csrf),
    ]);
    assert_eq!(form.send().await.expect("send").status(), StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    let (client, csrf) = app.sign_in_as(Role::Operator).await;
    assert_eq!(
        client
            .get(app.url("/api/v1/events"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    let out = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        client
            .get(app.url("/api/v1/events"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let page = client.get(app.url("/events")).send().await.expect("get");
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "pages send you to the login"
    );
}

#[tokio::test]
async fn a_wrong_password_does_not_sign_in() {
    let app = spawn_app().await;
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = crate::support::hidden_value(&page, "csrf_token").expect("csrf");
    let email = app.workspace.owner.email.clone();
    let response = client
        .post(app.url("/login"))
        .form(&[
            ("email", email.as_str()),
            ("password", "not the password"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response
        .text()
        .await
        .expect("html")
        .contains("Wrong e-mail or password"));
    let forged = client
        .post(app.url("/login"))
        .form(&[
            ("email", email.as_str()),
            ("password", crate::support::PASSWORD),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(
        forged.status(),
        StatusCode::FORBIDDEN,
        "login CSRF is refused"
    );
}

#[tokio::test]
async fn workspaces_never_see_or_change_each_other() {
    let a = spawn_app().await;
    let b = crate::support::spawn_with(
        a.store.clone(),
        std::sync::Arc::new(seamline_bus::InProcessBus::new(Default::default())),
        1,
    )
    .await;
    assert_eq!(
        a.track("track", &json!({"userId": "only-in-a", "event": "Secret"}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        b.track("track", &json!({"userId": "only-in-b", "event": "Other"}))
            .await
            .0,
        StatusCode::OK
    );

    let seen_by_b = b.events("limit=1000").await;
    assert_eq!(seen_by_b.len(), 1);
    assert_eq!(seen_by_b[0]["userId"], "only-in-b");
    assert!(b.events("user_id=only-in-a").await.is_empty());

    // B's key cannot revoke A's keys, nor manage A's members.
    let a_keys = a.api_get("/api/v1/keys").await.1;
    for key in a_keys["data"].as_array().cloned().unwrap_or_default() {
        let id = key["id"].as_str().unwrap_or_default();
        let response = b
            .http
            .delete(b.url(&format!("/api/v1/keys/{id}")))
            .bearer_auth(&b.workspace.api_key)
            .send()
            .await
            .expect("delete");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let a_owner = a.workspace.owner.id;
    let response = b
        .http
        .delete(b.url(&format!("/api/v1/members/{a_owner}")))
        .bearer_auth(&b.workspace.api_key)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let b_members = read(
        b.http
            .get(b.url("/api/v1/members"))
            .bearer_auth(&b.workspace.api_key)
            .send()
            .await
            .expect("get"),
    )
    .await
    .1;
    assert!(b_members["data"].as_array().is_some_and(|m| m
        .iter()
        .all(|m| m["workspace_id"] == json!(b.workspace.workspace.id))));
    // Everything of A is still there.
    assert_eq!(a.count().await, 1);
    assert!(a.api_get("/api/v1/keys").await.1["data"]
        .as_array()
        .is_some_and(|k| k.iter().all(|k| k["revoked_at"].is_null())));
}

#[tokio::test]
async fn the_last_owner_stays_and_admins_cannot_touch_owners() {
    let app = spawn_app().await;
    let owner = app.workspace.owner.id;
    let (admin, admin_csrf) = app.sign_in_as(Role::Admin).await;
    let demote = admin
        .patch(app.url(&format!("/api/v1/members/{owner}")))
        .header("x-csrf-token", &admin_csrf)
        .json(&json!({"role": "operator"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(demote.status(), StatusCode::FORBIDDEN);
    let demote_self = app
        .http
        .patch(app.url(&format!("/api/v1/members/{owner}")))
        .bearer_auth(&app.workspace.api_key)
        .json(&json!({"role": "operator"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(
        demote_self.status(),
        StatusCode::FORBIDDEN,
        "an API key acts as an admin"
    );
    let bad_role = app
        .http
        .post(app.url("/api/v1/members"))
        .bearer_auth(&app.workspace.api_key)
        .json(&json!({"email": "x@example.test", "role": "root", "password": "long enough"}))
        .send()
        .await
        .expect("post");
    let (status, body) = read(bad_role).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "role");
}

#[tokio::test]
async fn guessing_passwords_is_throttled() {
    let app = spawn_app().await;
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = crate::support::hidden_value(&page, "csrf_token").expect("csrf");
    let email = app.workspace.owner.email.clone();
    let attempt = |password: &'static str| {
        client
            .post(app.url("/login"))
            .form(&[
                ("email", email.as_str()),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
    };
    for _ in 0..10 {
        assert_eq!(
            attempt("wrong guess").await.expect("post").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = attempt(crate::support::PASSWORD).await.expect("post");
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits now"
    );
    assert!(locked
        .text()
        .await
        .expect("html")
        .contains("Too many wrong passwords"));
}
