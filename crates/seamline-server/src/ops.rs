//! Operations: `/healthz` (the process is up), `/readyz` (database and bus
//! answer), `/metrics` (Prometheus text) and the HTTP metrics middleware.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::AppState;

/// The process-wide metrics recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Only one recorder per process; a second app in the same process
        // (tests) shares it.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store.ping().await.map_err(|e| e.to_string());
    let bus = state.bus.ping().await.map_err(|e| e.to_string());
    let ready = database.is_ok() && bus.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let check = |result: Result<(), String>, kind: &str| match result {
        Ok(()) => json!({"ok": true, "kind": kind}),
        Err(error) => json!({"ok": false, "kind": kind, "error": error}),
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": check(database, state.store.backend()),
        "bus": check(bus, state.bus.kind()),
    });
    (status, Json(body)).into_response()
}

pub async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics_handle().render(),
    )
}

/// Counts requests and their latency per route and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("seamline_http_requests_total", &labels).increment(1);
    metrics::histogram!("seamline_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
