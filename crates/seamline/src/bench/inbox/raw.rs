//! The raw limits the product's path is held against, measured in the same run:
//!
//! - a relay on the same axum/tokio stack and the same bus: a visitor's
//!   frame is parsed, published, acknowledged, and streamed to the operator
//!   as a server-sent event; no identity, store, routing or stored-message
//!   JSON. One subscription per instance, as the product's live hub has;
//! - one message row inserted into a plain table (one transaction each)
//!   through a pool of the run's own database.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use seamline_bus::{Bus, Message, SubscriptionKind};
use serde_json::{json, Value};
use uuid::Uuid;

use super::shape::Running;

const SUBJECT: &str = "benchraw.messages";
/// Rows inserted for the raw insert latency.
pub const INSERTS: usize = 2000;

/// A relay on `bus`: `/socket` for visitors, `/stream` for the operator.
pub async fn relay(bus: Arc<dyn Bus>) -> anyhow::Result<Running> {
    let router = Router::new()
        .route("/socket", get(socket))
        .route("/stream", get(stream))
        .with_state(bus);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    Ok(Running::spawn(addr, |stopped| async move {
        axum::serve(seamline_server::without_nagle(listener), router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await?;
        Ok(())
    }))
}

async fn socket(State(bus): State<Arc<dyn Bus>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| relay_socket(bus, socket))
}

async fn relay_socket(bus: Arc<dyn Bus>, mut socket: WebSocket) {
    while let Some(Ok(frame)) = socket.recv().await {
        let Frame::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        let pushed = json!({"type": "message", "message": {"body": frame["body"]}});
        let message = Message {
            subject: SUBJECT.into(),
            id: Uuid::now_v7().to_string(),
            payload: Bytes::from(pushed.to_string()),
        };
        let answer = match bus.publish(message).await {
            Ok(()) => json!({"type": "ack", "id": frame["id"]}),
            Err(error) => json!({"type": "error", "message": error.to_string()}),
        };
        if socket
            .send(Frame::Text(answer.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn stream(
    State(bus): State<Arc<dyn Bus>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, axum::http::StatusCode> {
    let subscription = bus
        .subscribe("benchraw.>", SubscriptionKind::Broadcast)
        .await
        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
    let events = subscription.map(|delivery| {
        let data = String::from_utf8_lossy(&delivery.message.payload).into_owned();
        Ok(Event::default().event("message").data(data))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One message row per transaction into a plain SQLite table; each insert's latency.
pub async fn sqlite_inserts(pool: &sqlx::SqlitePool) -> anyhow::Result<Vec<Duration>> {
    sqlx::query(
        "CREATE TABLE raw_messages (id BLOB PRIMARY KEY, conversation_id BLOB NOT NULL, \
         kind TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let conversation = Uuid::now_v7();
    let mut latencies = Vec::with_capacity(INSERTS);
    for n in 0..INSERTS {
        let started = Instant::now();
        sqlx::query("INSERT INTO raw_messages VALUES (?, ?, 'inbound', 'web_chat', ?, ?)")
            .bind(Uuid::now_v7())
            .bind(conversation)
            .bind(super::visitors::body_of(n as u64))
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(pool)
            .await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

/// The same on PostgreSQL.
pub async fn postgres_inserts(pool: &sqlx::PgPool) -> anyhow::Result<Vec<Duration>> {
    sqlx::query(
        "CREATE TABLE raw_messages (id uuid PRIMARY KEY, conversation_id uuid NOT NULL, \
         kind text NOT NULL, channel text NOT NULL, body text NOT NULL, at timestamptz NOT NULL)",
    )
    .execute(pool)
    .await?;
    let conversation = Uuid::now_v7();
    let mut latencies = Vec::with_capacity(INSERTS);
    for n in 0..INSERTS {
        let started = Instant::now();
        sqlx::query("INSERT INTO raw_messages VALUES ($1, $2, 'inbound', 'web_chat', $3, $4)")
            .bind(Uuid::now_v7())
            .bind(conversation)
            .bind(super::visitors::body_of(n as u64))
            .bind(chrono::Utc::now())
            .execute(pool)
            .await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
