//! What the fakes of WhatsApp, Viber and VK share: signing bodies and
//! posting a webhook the way providers do (re-sent on a non-2xx answer or
//! no answer), logging every attempt.

use std::time::Duration;

/// Lowercase hex HMAC-SHA256 of `body` under `key` (Meta's and Viber's
/// webhook signatures).
pub fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    hex::encode(ring::hmac::sign(&key, body).as_ref())
}

/// One webhook request a fake made.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAttempt {
    /// The provider's id of the event (wamid, message_token, event_id).
    pub event: String,
    /// The receiver's status; none when it did not answer.
    pub status: Option<u16>,
    /// The receiver's answer body (VK wants `ok`).
    pub answer: String,
}

/// Why a webhook could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("no webhook is set")]
    NoWebhook,
    #[error("the webhook kept failing: last status {0:?}")]
    GaveUp(Option<u16>),
}

/// How a fake re-sends.
#[derive(Debug, Clone)]
pub struct Retry {
    pub tries: u32,
    pub pause: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            tries: 5,
            pause: Duration::from_millis(200),
        }
    }
}

/// A webhook request to make.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The provider's id of the event, for the log.
    pub event: String,
}

/// Posts `out` until `accepted` says the answer is a success or the tries
/// run out; every attempt goes to `log`. Returns the accepted answer's body.
pub async fn post(
    http: &reqwest::Client,
    retry: &Retry,
    out: &Outgoing,
    accepted: impl Fn(u16, &str) -> bool,
    log: impl Fn(WebhookAttempt),
) -> Result<String, DeliverError> {
    let mut last = None;
    for attempt in 0..retry.tries {
        if attempt > 0 {
            tokio::time::sleep(retry.pause).await;
        }
        let mut request = http
            .post(&out.url)
            .header("content-type", "application/json")
            .body(out.body.clone());
        for (name, value) in &out.headers {
            request = request.header(*name, value);
        }
        let (status, answer) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (Some(status), response.text().await.unwrap_or_default())
            }
            Err(_) => (None, String::new()),
        };
        log(WebhookAttempt {
            event: out.event.clone(),
            status,
            answer: answer.clone(),
        });
        last = status;
        if status.is_some_and(|s| accepted(s, &answer)) {
            return Ok(answer);
        }
    }
    Err(DeliverError::GaveUp(last))
}
