//! Recently read copies of rows that rarely change but are read for every
//! customer message (a workspace's teams, webhook endpoints, settings), so
//! that a busy inbox does not ask the database the same question hundreds
//! of times a second.
//!
//! A backend forgets a key whenever it writes it, so its own instance reads
//! its writes at once; what another instance on the same database writes
//! shows within the time to live. A load that raced a write is not kept
//! (each forget starts a new generation), so a stale copy never outlives
//! its time to live either.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use seamline_core::WorkspaceId;
use serde_json::Value;

use crate::{StoreResult, Team, WebhookEndpoint};

/// How long a copy is trusted: the longest another instance's change to
/// teams, webhook endpoints or settings takes to show on this one.
pub const MEMO_TTL: Duration = Duration::from_secs(1);

/// The copies one store keeps.
#[derive(Default)]
pub struct Memos {
    pub teams: Memo<WorkspaceId, Vec<Team>>,
    pub webhooks: Memo<WorkspaceId, Vec<WebhookEndpoint>>,
    pub settings: Memo<(WorkspaceId, String), Option<Value>>,
}

pub struct Memo<K, V> {
    ttl: Duration,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    generation: u64,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Memo<K, V> {
    fn default() -> Self {
        Self::new(MEMO_TTL)
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The copy of `key` if it is fresh, else what `load` reads (kept for
    /// next time unless a write forgot something meanwhile).
    pub async fn get_or_load<F, Fut>(&self, key: &K, load: F) -> StoreResult<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<V>>,
    {
        let generation = {
            let state = self.lock();
            if let Some((at, value)) = state.entries.get(key) {
                if at.elapsed() < self.ttl {
                    return Ok(value.clone());
                }
            }
            state.generation
        };
        let value = load().await?;
        let mut state = self.lock();
        if state.generation == generation {
            state
                .entries
                .insert(key.clone(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// After a write of `key`.
    pub fn forget(&self, key: &K) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        // A panic elsewhere while holding the lock leaves a plain map.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_is_kept_until_forgotten_or_stale() {
        let memo: Memo<u8, u32> = Memo::new(Duration::from_millis(50));
        let load = |v: u32| move || async move { Ok(v) };
        assert_eq!(memo.get_or_load(&1, load(10)).await.ok(), Some(10));
        assert_eq!(memo.get_or_load(&1, load(11)).await.ok(), Some(10), "kept");
        memo.forget(&1);
        assert_eq!(
            memo.get_or_load(&1, load(12)).await.ok(),
            Some(12),
            "forgotten"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(memo.get_or_load(&1, load(13)).await.ok(), Some(13), "stale");
    }

    #[tokio::test]
    async fn a_load_that_raced_a_write_is_not_kept() {
        let memo: Memo<u8, u32> = Memo::new(Duration::from_secs(60));
        let raced = memo
            .get_or_load(&1, || async {
                memo.forget(&1); // the write lands while the old value is read
                Ok(1)
            })
            .await;
        assert_eq!(raced.ok(), Some(1));
        let next = memo.get_or_load(&1, || async { Ok(2) }).await;
        assert_eq!(next.ok(), Some(2), "the raced read was not kept");
    }
}
