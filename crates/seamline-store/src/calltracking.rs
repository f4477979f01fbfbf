//! Call tracking: a workspace's tracking numbers, the reservations of its
//! pool numbers by site visitors (kept as history: a call is attributed
//! by the one that held its number when it started), pool misses counted
//! per day, and the calls attributed.
//!
//! The pool's rule is the core's (`seamline_core::calltracking::decide`);
//! the store runs it inside one write transaction that also locks the
//! workspace's pool, so two visitors never get the same number at once,
//! on any number of instances.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use seamline_core::calltracking::{Decision, NumberKind, Pool, Reservation, SourceBinding};
use seamline_core::tracking::Attribution;
use seamline_core::WorkspaceId;
use uuid::Uuid;

use crate::StoreResult;

/// A tracking number of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingNumber {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    /// E.164; unique in the workspace.
    pub number: String,
    pub kind: NumberKind,
    /// The ad source of a static number; none for pool numbers.
    pub source: Option<SourceBinding>,
    pub created_at: DateTime<Utc>,
}

/// A visitor asking for a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    /// The id a new reservation takes.
    pub id: Uuid,
    pub anonymous_id: String,
    pub session_id: Option<String>,
    pub source: Attribution,
    pub now: DateTime<Utc>,
}

/// What a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// A pool number, new or kept (extended).
    Held(Box<Reservation>),
    /// Every pool number was held; the miss is counted.
    Missed,
}

/// A call to a tracking number, attributed once per PBX call id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedCall {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    /// The PBX's call id.
    pub call_id: String,
    /// The tracking number called (E.164).
    pub number: String,
    pub kind: NumberKind,
    /// The reservation that held a pool number at the call's start; none
    /// for a static number or a pool number nobody held.
    pub reservation_id: Option<Uuid>,
    /// The visitor that reservation was theirs.
    pub anonymous_id: Option<String>,
    pub source: Attribution,
    /// The source in words (`yandex / cpc · spring`), what stats group by.
    pub source_label: String,
    pub started_at: DateTime<Utc>,
}

/// Calls by source and pool misses over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTrackingStats {
    /// `(source label, calls)`, most calls first.
    pub calls_by_source: Vec<(String, u64)>,
    pub misses: u64,
}

/// The decision a reservation runs in its transaction.
pub type Decide<'a> = &'a (dyn Fn(&Pool) -> Decision + Send + Sync);

#[async_trait]
pub trait CallTrackingStore: Send + Sync + 'static {
    /// `Conflict` when the workspace has the number already.
    async fn add_tracking_number(&self, number: &TrackingNumber) -> StoreResult<()>;
    /// Pool numbers first, then static ones; each by number.
    async fn tracking_numbers(&self, workspace: WorkspaceId) -> StoreResult<Vec<TrackingNumber>>;
    /// Its reservations stay (history); `NotFound` when not the workspace's.
    async fn delete_tracking_number(&self, workspace: WorkspaceId, id: Uuid) -> StoreResult<()>;
    /// In one transaction holding the workspace's pool: reads the pool as
    /// of `request.now`, asks `decide`, and applies its answer (extend,
    /// take under `request.id`, or count a miss on `now`'s UTC day).
    async fn reserve_tracking_number(
        &self,
        workspace: WorkspaceId,
        request: &ReservationRequest,
        decide: Decide<'_>,
    ) -> StoreResult<Reserved>;
    /// Reservations not lapsed at `now`.
    async fn active_reservations(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Reservation>>;
    /// Reservations of `number` begun by `at + margin` and lapsing after
    /// `at - margin`: the candidates for a call at `at`.
    async fn reservations_around(
        &self,
        workspace: WorkspaceId,
        number: &str,
        at: DateTime<Utc>,
        margin: TimeDelta,
    ) -> StoreResult<Vec<Reservation>>;
    /// Stores `call` unless its call id is known; returns the stored one.
    async fn record_tracked_call(&self, call: &TrackedCall) -> StoreResult<TrackedCall>;
    /// Calls started in `[from, to)` by source; misses of the UTC days
    /// from `from`'s to `to`'s.
    async fn call_tracking_stats(
        &self,
        workspace: WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<CallTrackingStats>;
}
