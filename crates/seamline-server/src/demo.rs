//! Demo data for `seamline serve --demo`: a coffee-shop chain whose
//! customers arrive from ads, browse on phones, buy on desktops and at the
//! counter with a loyalty card. Events go through the same parser and store
//! as live traffic.

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use seamline_core::calltracking::{NumberKind, SourceBinding};
use seamline_core::inbox::conversation::{Channel, Message, MessageKind};
use seamline_core::inbox::routing::{Presence, TeamRouting};
use seamline_core::tracking::{self, Envelope};
use seamline_core::{ConversationMessageId, MemberId, TeamId};
use seamline_core::{EventId, WorkspaceId};
use seamline_store::{Backend, NewEvent, NewMessage, Team, TrackingNumber};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::inbox::{receive, Customer, Inbound};
use crate::provision::{self, Provisioned};

pub const DEMO_EMAIL: &str = "demo@seamline.local";
pub const DEMO_PASSWORD: &str = "seamline-demo";

const SOURCES: [(&str, &str, &str); 6] = [
    ("yandex", "cpc", "yclid"),
    ("google", "cpc", "gclid"),
    ("vk", "social", "fbclid"),
    ("email", "newsletter", ""),
    ("2gis", "referral", ""),
    ("", "", ""),
];
const PAGES: [(&str, &str); 5] = [
    ("/", "Кофейня «Утро»"),
    ("/menu", "Меню"),
    ("/menu/business-lunch", "Бизнес-ланч"),
    ("/loyalty", "Карта лояльности"),
    ("/cart", "Корзина"),
];
const PRODUCTS: [(&str, &str, i64); 5] = [
    ("cappuccino", "Капучино", 19000),
    ("croissant", "Круассан", 15000),
    ("lunch", "Бизнес-ланч", 45000),
    ("borscht", "Борщ", 32000),
    ("cake", "Медовик", 27000),
];

/// Creates the demo workspace (if missing) and fills it. Returns `None`
/// when the demo login already exists.
pub async fn seed(store: &dyn Backend, visitors: usize) -> anyhow::Result<Option<Provisioned>> {
    if store.member_by_email(DEMO_EMAIL).await?.is_some() {
        return Ok(None);
    }
    let made =
        provision::create_workspace(store, "Кофейня «Утро» (demo)", DEMO_EMAIL, DEMO_PASSWORD)
            .await
            .map_err(|e| anyhow::anyhow!("creating the demo workspace: {e:?}"))?;
    let messages = messages(visitors, &mut StdRng::seed_from_u64(7));
    let events = parse(made.workspace.id, messages)?;
    for chunk in events.chunks(1000) {
        store.append_events(chunk).await?;
    }
    conversations(store, made.workspace.id, made.owner.id).await?;
    tracking_numbers(store, made.workspace.id).await?;
    Ok(Some(made))
}

/// Call tracking: a pool the site widget hands to visitors, and a static
/// number printed on a billboard.
async fn tracking_numbers(store: &dyn Backend, ws: WorkspaceId) -> anyhow::Result<()> {
    let billboard = SourceBinding {
        label: Some("Билборд на Тверской".into()),
        ..SourceBinding::default()
    };
    let numbers = [
        ("+74951112201", NumberKind::Pool, None),
        ("+74951112202", NumberKind::Pool, None),
        ("+74951112203", NumberKind::Pool, None),
        ("+74951112250", NumberKind::Static, Some(billboard)),
    ];
    for (number, kind, source) in numbers {
        let number = TrackingNumber {
            id: Uuid::now_v7(),
            workspace_id: ws,
            number: number.into(),
            kind,
            source,
            created_at: Utc::now(),
        };
        store.add_tracking_number(&number).await?;
    }
    Ok(())
}

/// The inbox's seed story: Olga asks on Telegram, gets an answer, and comes
/// back on WhatsApp into the same conversation; more customers write, and
/// one waits in the delivery team's queue.
async fn conversations(
    store: &dyn Backend,
    ws: WorkspaceId,
    operator: MemberId,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let team = Team {
        id: TeamId(Uuid::now_v7()),
        workspace_id: ws,
        name: "Поддержка".into(),
        routing: TeamRouting::default(),
        hours: None,
        channels: Channel::ALL
            .into_iter()
            .filter(|c| c.is_customer_facing())
            .collect(),
        bots: Default::default(),
        created_at: now,
    };
    store.create_team(&team).await?;
    store.add_team_member(ws, team.id, operator).await?;
    store
        .set_presence(ws, operator, Presence::Online, now)
        .await?;
    let olga_tg = Customer {
        channel_id: Some(("telegram".into(), "5551001".into())),
        phone: Some("8 916 123-45-67".into()),
        name: Some("Ольга".into()),
        ..Customer::default()
    };
    let asked = say(
        store,
        ws,
        Channel::Telegram,
        olga_tg,
        "Добрый день! Можно забронировать столик на субботу?",
        now - Duration::minutes(50),
    )
    .await?;
    let answer = Message::new(
        ConversationMessageId(Uuid::now_v7()),
        asked,
        MessageKind::Outbound { operator },
        Channel::Telegram,
        "Здравствуйте, Ольга! Конечно. На сколько человек и к какому времени?".into(),
        now - Duration::minutes(45),
    )?;
    store
        .append_message(
            ws,
            &NewMessage {
                message: answer,
                sender: None,
                attachments: vec![],
                external_id: None,
                delivery: None,
            },
        )
        .await?;
    let olga_wa = Customer {
        channel_id: Some(("whatsapp".into(), "+79161234567".into())),
        phone: Some("+79161234567".into()),
        ..Customer::default()
    };
    say(
        store,
        ws,
        Channel::WhatsApp,
        olga_wa,
        "Это Ольга, пишу из WhatsApp: на четверых, к 12:00",
        now - Duration::minutes(10),
    )
    .await?;
    let visitor = Customer {
        anonymous_id: Some("anon-visitor-0".into()),
        ..Customer::default()
    };
    say(
        store,
        ws,
        Channel::WebChat,
        visitor,
        "Есть ли у вас безлактозное молоко?",
        now - Duration::minutes(4),
    )
    .await?;
    let sergey = Customer {
        channel_id: Some(("vk".into(), "771".into())),
        email: Some("sergey.petrov@example.ru".into()),
        name: Some("Сергей Петров".into()),
        ..Customer::default()
    };
    say(
        store,
        ws,
        Channel::Vk,
        sergey,
        "Заказывал подарочный сертификат, когда он придёт на почту?",
        now - Duration::minutes(2),
    )
    .await?;
    waiting_for_delivery(store, ws, now).await
}

/// A second team, bound to SMS, with nobody on shift: its customer waits
/// in the queue the supervisor page shows.
async fn waiting_for_delivery(
    store: &dyn Backend,
    ws: WorkspaceId,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let couriers = Team {
        id: TeamId(Uuid::now_v7()),
        workspace_id: ws,
        name: "Доставка".into(),
        routing: TeamRouting::default(),
        hours: None,
        channels: [Channel::Sms].into_iter().collect(),
        bots: Default::default(),
        created_at: now,
    };
    store.create_team(&couriers).await?;
    let anna = Customer {
        channel_id: Some(("sms".into(), "+79035551234".into())),
        phone: Some("+7 903 555-12-34".into()),
        name: Some("Анна".into()),
        ..Customer::default()
    };
    say(
        store,
        ws,
        Channel::Sms,
        anna,
        "Курьер опаздывает уже на 20 минут, заказ 4521",
        now - Duration::minutes(6),
    )
    .await?;
    Ok(())
}

/// A customer's message into the inbox; returns its conversation.
async fn say(
    store: &dyn Backend,
    ws: WorkspaceId,
    channel: Channel,
    customer: Customer,
    body: &str,
    at: chrono::DateTime<Utc>,
) -> anyhow::Result<seamline_core::ConversationId> {
    // Seeded before the server starts: no screen is watching yet.
    let quiet = seamline_bus::InProcessBus::new(Default::default());
    let received = receive(
        store,
        &quiet,
        Inbound {
            workspace: ws,
            channel,
            customer,
            body: body.into(),
            external_id: None,
            at,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("demo message: {e}"))?;
    Ok(received.message.conversation.conversation.id)
}

fn parse(workspace: WorkspaceId, messages: Vec<Value>) -> anyhow::Result<Vec<NewEvent>> {
    let body = serde_json::to_vec(&json!({ "batch": messages }))?;
    let envelope = Envelope {
        received_at: Utc::now(),
        request_ip: None,
    };
    let mut new_id = || format!("demo-{}", Uuid::now_v7());
    // The demo is larger than one request may be: parse with the item rules
    // but without the request-size limit by splitting into batches.
    let parsed: Vec<_> = serde_json::from_slice::<Value>(&body)?["batch"]
        .as_array()
        .map(|items| items.chunks(200).map(|c| json!({ "batch": c })).collect())
        .unwrap_or_else(Vec::new);
    let mut events = Vec::new();
    for batch in parsed {
        let bytes = serde_json::to_vec(&batch)?;
        let ok = tracking::parse_batch(&bytes, &envelope, &mut new_id)
            .map_err(|r| anyhow::anyhow!("demo data is invalid: {:?}", r.errors))?;
        events.extend(ok.events.into_iter().map(|event| NewEvent {
            id: EventId(Uuid::now_v7()),
            workspace_id: workspace,
            event,
        }));
    }
    Ok(events)
}

/// The seed stories first, then `visitors` ordinary visitors.
fn messages(visitors: usize, rng: &mut StdRng) -> Vec<Value> {
    let now = Utc::now();
    let mut out = Vec::new();
    // Browses on the phone from a Yandex ad, buys on the desktop after logging in.
    let phone = "anon-phone-olga";
    let desktop = "anon-desktop-olga";
    let ad = "https://utro.example/menu?utm_source=yandex&utm_medium=cpc&utm_campaign=morning-coffee&yclid=5512";
    out.push(page(
        phone,
        None,
        ad,
        "Меню",
        now - Duration::days(2),
        "Mozilla/5.0 (iPhone)",
    ));
    out.push(track(
        phone,
        None,
        "Product Added",
        json!({"product_id": "cappuccino", "price": 190.0, "currency": "RUB"}),
        now - Duration::days(2),
    ));
    // She leaves her e-mail for the newsletter on the phone: the desktop
    // login with the same e-mail merges the two devices into one profile.
    out.push(json!({"type": "identify", "anonymousId": phone,
        "traits": {"email": "Olga@Example.ru"},
        "timestamp": (now - Duration::days(2) + Duration::minutes(3)).to_rfc3339()}));
    out.push(page(
        desktop,
        None,
        "https://utro.example/cart",
        "Корзина",
        now - Duration::days(1) - Duration::minutes(2),
        "Mozilla/5.0 (Windows NT 10.0)",
    ));
    out.push(json!({"type": "identify", "anonymousId": desktop, "userId": "olga-1987",
        "traits": {"name": "Ольга Смирнова", "email": "olga@example.ru", "phone": "8 916 123-45-67"},
        "timestamp": (now - Duration::days(1)).to_rfc3339()}));
    out.push(order(
        desktop,
        Some("olga-1987"),
        "web-1001",
        34000,
        now - Duration::days(1),
    ));
    // A loyalty-card purchase at the counter joins the online profile.
    out.push(json!({"type": "track", "userId": "olga-1987", "event": "Order Completed",
        "properties": {"order_id": "pos-77", "revenue": 420.0, "currency": "RUB", "channel": "pos", "store": "Тверская, 8"},
        "context": {"externalIds": [{"id": "2000-0001-4455", "type": "loyalty_card", "collection": "users", "encoding": "none"}]},
        "timestamp": (now - Duration::hours(20)).to_rfc3339()}));
    // A shared family tablet: two people log in on one device.
    for (user, name) in [("ivan-k", "Иван"), ("maria-k", "Мария")] {
        out.push(
            json!({"type": "identify", "anonymousId": "anon-family-tablet", "userId": user,
            "traits": {"name": name}, "timestamp": (now - Duration::hours(5)).to_rfc3339()}),
        );
    }
    // A gift order: a form with his e-mail and his wife's phone links two
    // customers with their own logins. They are kept apart, for review.
    for (user, name, traits) in [
        (
            "sergey-p",
            "Сергей Петров",
            json!({"email": "sergey.petrov@example.ru"}),
        ),
        (
            "anna-p",
            "Анна Петрова",
            json!({"phone": "+7 903 555-01-01"}),
        ),
    ] {
        let mut traits = traits;
        traits["name"] = json!(name);
        out.push(json!({"type": "identify", "userId": user, "traits": traits,
            "timestamp": (now - Duration::days(3)).to_rfc3339()}));
    }
    out.push(json!({"type": "identify", "anonymousId": "anon-gift-form",
        "traits": {"email": "sergey.petrov@example.ru", "phone": "89035550101"},
        "timestamp": (now - Duration::hours(3)).to_rfc3339()}));
    for n in 0..visitors {
        out.extend(visitor(n, rng, now));
    }
    out
}

fn visitor(n: usize, rng: &mut StdRng, now: chrono::DateTime<Utc>) -> Vec<Value> {
    let anon = format!("anon-{n:04}");
    let (source, medium, click) = *SOURCES.choose(rng).unwrap_or(&SOURCES[0]);
    let started = now - Duration::minutes(rng.gen_range(5..60 * 24 * 14));
    let mut url = "https://utro.example/".to_owned();
    if !source.is_empty() {
        url = format!("{url}?utm_source={source}&utm_medium={medium}&utm_campaign=autumn");
        if !click.is_empty() {
            url = format!("{url}&{click}={}", rng.gen_range(10_000..99_999));
        }
    }
    let ua = if rng.gen_bool(0.6) {
        "Mozilla/5.0 (Linux; Android 14)"
    } else {
        "Mozilla/5.0 (Windows NT 10.0)"
    };
    let mut out = vec![page(&anon, None, &url, "Кофейня «Утро»", started, ua)];
    for step in 1..rng.gen_range(1..5) {
        let (path, title) = *PAGES.choose(rng).unwrap_or(&PAGES[0]);
        out.push(page(
            &anon,
            None,
            &format!("https://utro.example{path}"),
            title,
            started + Duration::minutes(step),
            ua,
        ));
    }
    if rng.gen_bool(0.3) {
        let user = format!("customer-{n:04}");
        out.push(json!({"type": "identify", "anonymousId": anon, "userId": user,
            "traits": {"email": format!("guest{n}@example.ru")}, "timestamp": (started + Duration::minutes(6)).to_rfc3339()}));
        let (_, _, price) = *PRODUCTS.choose(rng).unwrap_or(&PRODUCTS[0]);
        out.push(order(
            &anon,
            Some(&user),
            &format!("web-{n}"),
            price * rng.gen_range(1..4),
            started + Duration::minutes(8),
        ));
    }
    out
}

fn page(
    anon: &str,
    user: Option<&str>,
    url: &str,
    title: &str,
    at: chrono::DateTime<Utc>,
    ua: &str,
) -> Value {
    json!({"type": "page", "anonymousId": anon, "userId": user, "name": title,
        "properties": {"url": url, "title": title},
        "context": {"page": {"url": url, "title": title}, "userAgent": ua},
        "timestamp": at.to_rfc3339()})
}

fn track(
    anon: &str,
    user: Option<&str>,
    event: &str,
    properties: Value,
    at: chrono::DateTime<Utc>,
) -> Value {
    json!({"type": "track", "anonymousId": anon, "userId": user, "event": event,
        "properties": properties, "timestamp": at.to_rfc3339()})
}

fn order(
    anon: &str,
    user: Option<&str>,
    order_id: &str,
    minor: i64,
    at: chrono::DateTime<Utc>,
) -> Value {
    let major = minor as f64 / 100.0;
    track(
        anon,
        user,
        "Order Completed",
        json!({"order_id": order_id, "revenue": major, "total": major, "currency": "RUB"}),
        at,
    )
}
