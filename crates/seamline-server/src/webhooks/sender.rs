//! Sends due deliveries. Each instance runs one sender; they share the
//! queue through the store's lease, so an attempt is made by one of them,
//! and a sender that dies mid-attempt leaves the delivery to another once
//! its lease runs out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use seamline_store::{
    Backend, ClaimedDelivery, DeliveryAttempt, NextStep, WebhookDelivery, RESPONSE_EXCERPT_BYTES,
};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::sign::signature_header;
use super::target::{refused, GuardedResolver};
use super::WebhookConfig;

/// Deliveries leased per turn (sent concurrently).
const BATCH: u32 = 16;

pub async fn run(
    store: Arc<dyn Backend>,
    config: WebhookConfig,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let client = match client(&config) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook sender not started: no HTTP client");
            return;
        }
    };
    // A lease outlives the longest attempt, so no second sender takes it meanwhile.
    let lease = TimeDelta::from_std(config.timeout + Duration::from_secs(30))
        .unwrap_or(TimeDelta::minutes(1));
    while !stop.is_cancelled() {
        let now = Utc::now();
        let claimed = match store.claim_deliveries(BATCH, now, now + lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "webhook deliveries could not be leased");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH as usize;
        join_all(
            claimed
                .into_iter()
                .map(|c| deliver(store.as_ref(), &client, &config, c)),
        )
        .await;
        if !full {
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(config.poll) => {}
            }
        }
    }
}

fn client(config: &WebhookConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(config.timeout)
        // A redirect is an answer, not a 2xx: never follow it with the body.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver))
        .build()
}

/// The body receivers get: `{"id","type","created_at","workspace_id","data"}`.
pub fn body_of(delivery: &WebhookDelivery) -> String {
    json!({
        "id": delivery.id,
        "type": delivery.event.as_str(),
        "created_at": delivery.created_at,
        "workspace_id": delivery.workspace_id,
        "data": delivery.payload,
    })
    .to_string()
}

/// One attempt, logged with what follows it.
async fn deliver(
    store: &dyn Backend,
    client: &reqwest::Client,
    config: &WebhookConfig,
    claimed: ClaimedDelivery,
) {
    let delivery = &claimed.delivery;
    let attempted_at = Utc::now();
    let started = Instant::now();
    let (status_code, error, response_excerpt) = match refused_literal(&claimed.url) {
        Some(why) => (None, Some(why), String::new()),
        None => match post(client, &claimed).await {
            Ok((status, excerpt)) => (Some(status), None, excerpt),
            Err(error) => (None, Some(describe(&error)), String::new()),
        },
    };
    let ok = status_code.is_some_and(|s| (200..300).contains(&s));
    let next = next_step(config, delivery.attempts + 1, ok, attempted_at);
    let attempt = DeliveryAttempt {
        delivery_id: delivery.id,
        attempted_at,
        status_code,
        duration_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
        error,
        response_excerpt,
    };
    tracing::info!(
        delivery = %delivery.id,
        event = delivery.event.as_str(),
        status = ?status_code,
        next = ?next,
        "webhook attempt"
    );
    if let Err(error) = store
        .record_attempt(delivery.workspace_id, &attempt, next)
        .await
    {
        // The lease runs out and the delivery is tried again.
        tracing::warn!(%error, delivery = %delivery.id, "a webhook attempt was not recorded");
    }
}

/// Posts the delivery; the receiver's status and the start of its answer.
async fn post(
    client: &reqwest::Client,
    claimed: &ClaimedDelivery,
) -> reqwest::Result<(u16, String)> {
    let delivery = &claimed.delivery;
    let body = body_of(delivery);
    let signature = signature_header(claimed.secret.expose(), Utc::now().timestamp(), &body);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static("Seamline-Webhooks/1"));
    headers.insert(
        "x-seamline-event",
        HeaderValue::from_static(delivery.event.as_str()),
    );
    for (name, value) in [
        ("x-seamline-delivery", delivery.id.to_string()),
        ("x-seamline-signature", signature),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let mut response = client
        .post(&claimed.url)
        .headers(headers)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            // A body cut short still leaves the status, which decides.
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(RESPONSE_EXCERPT_BYTES);
    Ok((status, String::from_utf8_lossy(&kept).into_owned()))
}

/// Why a URL naming a refused IP address is not posted to (the resolver
/// sees only names).
fn refused_literal(url: &str) -> Option<String> {
    let ip = match url::Url::parse(url).ok()?.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    refused(ip).map(|why| format!("refused: {why}, where webhooks are not sent"))
}

/// What went wrong, without the URL (its query may hold a token).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// After attempt number `attempts`: done, a retry after the next wait
/// (with up to 20% jitter so failed receivers are not hit in lockstep),
/// or given up.
fn next_step(config: &WebhookConfig, attempts: u32, ok: bool, now: DateTime<Utc>) -> NextStep {
    if ok {
        return NextStep::Succeeded;
    }
    let Some(wait) = usize::try_from(attempts.saturating_sub(1))
        .ok()
        .and_then(|i| config.retry_delays.get(i))
    else {
        return NextStep::GiveUp;
    };
    let jitter = wait.mul_f64(rand::thread_rng().gen_range(0.0..0.2));
    let wait = TimeDelta::from_std(*wait + jitter).unwrap_or(TimeDelta::days(1));
    NextStep::RetryAt(now + wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_give_up() {
        let config = WebhookConfig::default();
        let now = Utc::now();
        assert_eq!(next_step(&config, 1, true, now), NextStep::Succeeded);
        let NextStep::RetryAt(first) = next_step(&config, 1, false, now) else {
            panic!("a first failure is retried")
        };
        assert!(first >= now + TimeDelta::seconds(30) && first <= now + TimeDelta::seconds(36));
        let NextStep::RetryAt(last) = next_step(&config, 7, false, now) else {
            panic!("the seventh failure is retried")
        };
        assert!(last >= now + TimeDelta::hours(24));
        assert_eq!(next_step(&config, 8, false, now), NextStep::GiveUp);
        assert_eq!(next_step(&config, 30, false, now), NextStep::GiveUp);
    }
}
