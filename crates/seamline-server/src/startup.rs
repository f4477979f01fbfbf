//! Building and running the server: bind (port 0 allowed), start the
//! workers, serve until told to stop, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use axum::middleware;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use seamline_bus::Bus;
use seamline_store::Backend;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{Any, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use crate::{
    api, channels, identity, inbox, ingest, ops, outbox, tracking, ui, webhooks, AppState,
};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Mark cookies `Secure` (serve behind HTTPS).
    pub secure_cookies: bool,
    /// Ingest writer tasks: 1 for SQLite, a few for PostgreSQL.
    pub ingest_writers: usize,
    pub session_hours: i64,
    pub webhooks: webhooks::WebhookConfig,
    pub channels: channels::ChannelsConfig,
    /// Where attachments are kept (the data directory's `blobs`).
    pub blob_dir: std::path::PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secure_cookies: false,
            ingest_writers: 1,
            session_hours: 24 * 14,
            webhooks: webhooks::WebhookConfig::default(),
            channels: channels::ChannelsConfig::default(),
            blob_dir: std::env::temp_dir().join("seamline-blobs"),
        }
    }
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    stop: CancellationToken,
    workers: Vec<JoinHandle<()>>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Application {
    pub async fn build(
        config: ServerConfig,
        store: Arc<dyn Backend>,
        bus: Arc<dyn Bus>,
    ) -> anyhow::Result<Self> {
        ops::metrics_handle();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let (handoff, handed) = outbox::handoff();
        let ingest = ingest::Ingest::start(store.clone(), config.ingest_writers, handoff);
        let stop = CancellationToken::new();
        let relay = tokio::spawn(outbox::run(
            store.clone(),
            bus.clone(),
            handed,
            stop.clone(),
        ));
        let resolver = tokio::spawn(identity::worker::run(
            store.clone(),
            ingest.committed(),
            stop.clone(),
        ));
        let queue = tokio::spawn(inbox::queue::run(store.clone(), bus.clone(), stop.clone()));
        let live = inbox::LiveHub::start(bus.clone(), stop.clone())
            .await
            .context("subscribing to live inbox updates")?;
        let webhooks = webhooks::start(
            store.clone(),
            bus.clone(),
            config.webhooks.clone(),
            stop.clone(),
        )
        .await
        .context("subscribing to webhook events")?;
        let outbox = channels::sender::Outbox {
            connectors: channels::Connectors::standard(
                channels::http_client(config.channels.send_timeout)
                    .context("building the channels' HTTP client")?,
            ),
            wake: Arc::default(),
        };
        let sender = tokio::spawn(channels::sender::run(
            store.clone(),
            bus.clone(),
            outbox.clone(),
            config.channels.clone(),
            stop.clone(),
        ));
        let inbound = inbox::InboundWriter::start(store.clone(), bus.clone());
        let state = AppState {
            inbound,
            blobs: inbox::attachments::BlobStore::new(&config.blob_dir),
            store,
            bus,
            live,
            ingest,
            config: Arc::new(config),
            channels: outbox,
            login_throttle: Arc::default(),
        };
        let mail = tokio::spawn(channels::email::poller::run(state.clone(), stop.clone()));
        Ok(Self {
            listener,
            state,
            stop,
            workers: vec![relay, resolver, queue, webhooks, sender, mail],
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests
    /// and lets the outbox relay publish what was committed.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(without_nagle(self.listener), app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.stop.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        Ok(())
    }
}

pub fn router(state: AppState) -> Router {
    let tracking_routes = Router::new()
        .route("/v1/{call}", post(tracking::receive))
        .layer(RequestDecompressionLayer::new())
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::POST, Method::OPTIONS])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-write-key"),
                ])
                .max_age(Duration::from_secs(86_400)),
        );
    Router::new()
        .merge(tracking_routes)
        .merge(api::router())
        .merge(ui::router())
        .merge(crate::widget::router())
        .route(
            "/channels/{kind}/{token}",
            post(channels::webhook::receive).get(channels::webhook::challenge),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(middleware::from_fn(ops::track_http))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // No other site may frame our pages (clickjacking on erase, merge...).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Live frames are small writes in quick succession (a message, then its
/// conversation); with Nagle's algorithm the second waits for the
/// client's delayed ACK, up to 40 ms. Every accepted socket sends at once.
pub fn without_nagle(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, impl FnMut(&mut tokio::net::TcpStream) + Send + 'static> {
    listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
    })
}
