//! The tracking API (Segment HTTP Tracking API compatible): `/v1/identify`,
//! `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias`, `/v1/batch`.

use std::net::SocketAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::Json;
use chrono::Utc;
use seamline_core::tracking::{self, Envelope, EventType, Parsed, Rejected, MAX_BATCH_BYTES};
use seamline_core::{EventId, FieldError, WorkspaceId};
use seamline_store::NewEvent;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::WriteKeyWorkspace;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub async fn receive(
    State(state): State<AppState>,
    Path(call): Path<String>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let kind = match call.as_str() {
        "batch" | "import" => None,
        other => Some(EventType::parse(other).ok_or(ApiError::NotFound("tracking call"))?),
    };
    let request_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    let envelope = Envelope {
        received_at: Utc::now(),
        request_ip,
    };
    let mut new_message_id = || format!("srv-{}", Uuid::now_v7());
    let parsed = match kind {
        Some(kind) => tracking::parse_single(kind, &body, &envelope, &mut new_message_id),
        None => tracking::parse_batch(&body, &envelope, &mut new_message_id),
    }
    .map_err(rejected)?;
    let workspace =
        WriteKeyWorkspace::resolve(&state, &parts.headers, parsed.body_write_key.as_deref())
            .await?;
    store(&state, workspace, parsed).await?;
    Ok(Json(json!({"success": true})))
}

/// Stores a parsed request's events; answers once they are committed.
async fn store(state: &AppState, workspace: WorkspaceId, parsed: Parsed) -> ApiResult<()> {
    let received = parsed.events.len();
    let events: Vec<NewEvent> = parsed
        .events
        .into_iter()
        .map(|event| NewEvent {
            id: EventId(Uuid::now_v7()),
            workspace_id: workspace,
            event,
        })
        .collect();
    let flags = state
        .ingest
        .append(events)
        .await
        .map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    let stored = flags.iter().filter(|new| **new).count();
    metrics::counter!("seamline_events_received_total").increment(received as u64);
    metrics::counter!("seamline_events_stored_total").increment(stored as u64);
    metrics::counter!("seamline_events_duplicate_total").increment((received - stored) as u64);
    Ok(())
}

async fn read_body(body: Body) -> ApiResult<bytes::Bytes> {
    to_bytes(body, MAX_BATCH_BYTES + 1).await.map_err(|_| {
        ApiError::TooLarge(vec![FieldError::new(
            "too_large",
            "body",
            format!("the request is over the limit of {MAX_BATCH_BYTES} bytes"),
        )])
    })
}

fn rejected(rejected: Rejected) -> ApiError {
    metrics::counter!("seamline_ingest_rejected_total").increment(1);
    if rejected.is_too_large() {
        ApiError::TooLarge(rejected.errors)
    } else {
        ApiError::Invalid(rejected.errors)
    }
}
