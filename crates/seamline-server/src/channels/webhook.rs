//! `POST /channels/{kind}/{path_token}`: a provider's webhook. Not behind a
//! login: the unguessable token finds the account and the connector checks
//! the provider's proof; a forged request gets 401 before anything is read
//! into the inbox. A 200 means every message in it is stored (providers
//! re-send otherwise, and the provider's id makes the re-send a no-op).
//! `GET` on the same URL is the provider's handshake where it has one
//! (WhatsApp's verify token).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use seamline_core::inbox::conversation::Channel;
use seamline_core::WorkspaceId;
use seamline_store::{Backend, DeliveryStatus, ParkedDelivery, StoreResult, StoredMessage};

use super::sender::push;
use super::{accounts, Account, Connector, Parsed};
use crate::error::ApiError;
use crate::inbox::{self, Inbound, InboxError};
use crate::widget::tracking::vouched;
use crate::AppState;

/// The connector and the active account a webhook URL names.
async fn account_of(
    state: &AppState,
    kind: &str,
    token: &str,
) -> Result<(std::sync::Arc<dyn Connector>, Account), ApiError> {
    let channel: Channel = kind.parse().map_err(|_| ApiError::NotFound("channel"))?;
    let connector = state
        .channels
        .connectors
        .get(channel)
        .ok_or(ApiError::NotFound("channel"))?
        .clone();
    let stored = state
        .store
        .channel_account_by_token(channel, token)
        .await?
        .filter(|a| a.active)
        .ok_or(ApiError::NotFound("channel account"))?;
    let account = accounts::open(&state.config.channels.secret_key, &stored).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("opening channel secrets"))
    })?;
    Ok((connector, account))
}

/// `GET /channels/{kind}/{path_token}`: the provider checks the URL is ours.
pub async fn challenge(
    State(state): State<AppState>,
    Path((kind, token)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let (connector, account) = account_of(&state, &kind, &token).await?;
    match connector.challenge(&account, &query) {
        Some(Ok(answer)) => Ok(answer.into_response()),
        Some(Err(_)) => Ok(StatusCode::FORBIDDEN.into_response()),
        None => Err(ApiError::NotFound("handshake")),
    }
}

pub async fn receive(
    State(state): State<AppState>,
    Path((kind, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (connector, account) = account_of(&state, &kind, &token).await?;
    let stored = &account.stored;
    let channel = stored.kind;
    if connector.verify(&account, &headers, &body).is_err() {
        tracing::warn!(channel = %channel, account = %stored.id, "webhook refused: not signed by the provider");
        return Err(ApiError::Unauthenticated(
            "the webhook is not signed by the provider",
        ));
    }
    let mut answer = connector.acknowledgement().to_owned();
    for item in connector.parse(&account, &body)? {
        match item {
            Parsed::Message(message) => deliver(&state, message).await?,
            Parsed::Consent { message, granted } => {
                super::opt_out::record(&state, channel, message, granted).await?;
            }
            Parsed::Call(call) => super::calls::record(&state, &account, *call).await?,
            Parsed::CallStarted(start) => {
                crate::calltracking::attribute::attribute(&state, &start).await?;
            }
            Parsed::Arrived(customer) => arrived(&state, customer).await?,
            Parsed::Answer(text) => answer = text,
            Parsed::Status {
                external_id,
                status,
                reason,
            } => {
                let ws = account.stored.workspace_id;
                let store = state.store.as_ref();
                let moved =
                    report_or_park(store, ws, channel, &external_id, status, reason).await?;
                if let Some(message) = moved {
                    let (bus, profile) = (state.bus.as_ref(), message.profile_id);
                    if let Err(error) = push(store, bus, ws, profile, message.message.id).await {
                        tracing::warn!(%error, "a delivery status was saved but not pushed live");
                    }
                }
            }
            Parsed::Ignored => {}
        }
    }
    Ok((StatusCode::OK, answer).into_response())
}

/// A tracking code is kept only when it vouches for the sender (a
/// forwarded link never glues two people).
async fn check_code(state: &AppState, message: &mut Inbound) -> Result<(), ApiError> {
    if let (Some(code), Some((kind, id))) = (
        message.customer.tracking_code.take(),
        message.customer.channel_id.as_ref(),
    ) {
        let store = state.store.as_ref();
        if vouched(store, message.workspace, &code, (kind, id)).await? {
            message.customer.tracking_code = Some(code);
        }
    }
    Ok(())
}

fn inbox_error(error: InboxError) -> ApiError {
    match error {
        InboxError::Invalid(error) => error.into(),
        InboxError::Store(error) => error.into(),
    }
}

/// Into the inbox.
async fn deliver(state: &AppState, mut message: Inbound) -> Result<(), ApiError> {
    check_code(state, &mut message).await?;
    state.inbound.accept(message).await.map_err(inbox_error)
}

/// Onto the profile only: the customer's messenger id (and the visitor a
/// vouched code names) without a message.
async fn arrived(state: &AppState, mut customer: Inbound) -> Result<(), ApiError> {
    check_code(state, &mut customer).await?;
    inbox::identify(state.store.as_ref(), &customer, "Conversation Started")
        .await
        .map(drop)
        .map_err(inbox_error)
}

/// A delivery report: statuses only move forward (sent < delivered <
/// read; failed is final), whatever order they arrive in. Returns the
/// message when its status moved.
pub(crate) async fn report(
    store: &dyn Backend,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
    status: DeliveryStatus,
    reason: Option<String>,
) -> StoreResult<Option<StoredMessage>> {
    let Some(message) = store
        .message_by_external_id(ws, channel, external_id)
        .await?
    else {
        return Ok(None);
    };
    if rank(status) <= message.delivery.map(rank).unwrap_or(0) {
        return Ok(None);
    }
    store
        .set_delivery(ws, message.message.id, status, reason.as_deref())
        .await?;
    Ok(Some(message))
}

/// [`report`], or, when no message has the provider's id yet (the report
/// beat the answer to our send, channels.md §0), parked until the sender
/// records the id and calls [`apply_parked`]. Returns the message when its
/// status moved.
async fn report_or_park(
    store: &dyn Backend,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
    status: DeliveryStatus,
    reason: Option<String>,
) -> StoreResult<Option<StoredMessage>> {
    let known = store
        .message_by_external_id(ws, channel, external_id)
        .await?;
    if known.is_some() {
        return report(store, ws, channel, external_id, status, reason).await;
    }
    let parked = ParkedDelivery {
        status,
        reason,
        received_at: Utc::now(),
    };
    store
        .park_delivery(ws, channel, external_id, &parked)
        .await?;
    // The sender may have recorded the id meanwhile, after it looked for
    // parked reports: look again, so none is left behind.
    apply_parked(store, ws, channel, external_id).await
}

/// Applies the reports parked for `external_id` once a message has that
/// provider id, in the order they came (statuses only move forward, so
/// applying one twice changes nothing), and forgets each applied one.
/// Returns the message when its status moved.
pub(crate) async fn apply_parked(
    store: &dyn Backend,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Option<StoredMessage>> {
    let parked = store.parked_deliveries(ws, channel, external_id).await?;
    if parked.is_empty()
        || store
            .message_by_external_id(ws, channel, external_id)
            .await?
            .is_none()
    {
        return Ok(None);
    }
    let mut moved = None;
    for early in parked {
        let status = early.status;
        if let Some(message) = report(store, ws, channel, external_id, status, early.reason).await?
        {
            moved = Some(message);
        }
        store
            .drop_parked_delivery(ws, channel, external_id, status)
            .await?;
    }
    Ok(moved)
}

fn rank(status: DeliveryStatus) -> u8 {
    match status {
        DeliveryStatus::Pending => 1,
        // Any report settles a send whose outcome was not known.
        DeliveryStatus::Unknown => 2,
        DeliveryStatus::Sent => 3,
        DeliveryStatus::Delivered => 4,
        DeliveryStatus::Read => 5,
        DeliveryStatus::Failed => 6,
    }
}
