//! Read queries: a saga as the API shows it, and the list of sagas.

use std::collections::HashMap;

use baton_adapters::port::Conditions;

use super::Engine;
use crate::error::Result;
use crate::event::SagaId;
use crate::log::{SagaFilter, SagaSummary, StoredEvent};
use crate::outcomes;
use crate::saga::input::SagaInput;
use crate::saga::state::SagaState;
use crate::view::SagaView;

impl Engine {
    /// The input `saga` runs, its events and its state folded from them; `None` when it is not in
    /// the log.
    pub(super) async fn stored(
        &self,
        saga: SagaId,
    ) -> Result<Option<(SagaInput, Vec<StoredEvent>, SagaState)>> {
        crate::saga::input::stored(&self.shared.log, saga).await
    }

    /// Saga `saga` as it stands (status, outcome, every step with its chain's confirmations), or
    /// `None` when it is not in the log.
    pub async fn view(&self, saga: SagaId) -> Result<Option<SagaView>> {
        let Some((input, events, state)) = self.stored(saga).await? else {
            return Ok(None);
        };
        let planned = input.plan_stored()?;
        let mut heads = HashMap::new();
        for step in planned.plan.steps() {
            if heads.contains_key(&step.chain) {
                continue;
            }
            if let Some(adapter) = self
                .shared
                .chains_for(planned.config_version)
                .get(&step.chain)
                && let Ok(head) = adapter.head().await
            {
                heads.insert(step.chain, head.number);
            }
        }
        let times = (
            events.first().map_or(0, |e| e.at_ms),
            events.last().map_or(0, |e| e.at_ms),
        );
        Ok(Some(crate::view::build(
            saga,
            &planned.plan,
            &state,
            times,
            &heads,
        )))
    }

    /// Each chain's conditions as the saga drivers last read them (no RPC call; a chain no saga
    /// has waited on yet is absent).
    pub async fn last_conditions(&self) -> Vec<(baton_planner::ChainId, Conditions)> {
        self.shared.conditions.last().await
    }

    /// Each followed chain's follower: its block and how its reads were answered. From memory.
    pub fn follow_stats(
        &self,
    ) -> Vec<(baton_planner::ChainId, baton_adapters::follow::FollowStats)> {
        let mut out: Vec<_> = self
            .shared
            .chains()
            .iter()
            .filter_map(|(chain, adapter)| Some((*chain, adapter.follow_stats()?)))
            .collect();
        out.sort_by_key(|(chain, _)| *chain);
        out
    }

    /// The JSON-RPC requests the solver's adapters sent, by chain and method (each retry counts;
    /// none for adapters without RPC, as the sim's). Read from memory: no call to a chain.
    pub fn rpc_calls_by_method(&self) -> Vec<(baton_planner::ChainId, String, u64)> {
        let mut out: Vec<_> = self
            .shared
            .chains()
            .iter()
            .flat_map(|(chain, adapter)| {
                adapter
                    .rpc_calls_by_method()
                    .into_iter()
                    .map(move |(method, n)| (*chain, method, n))
            })
            .collect();
        out.sort();
        out
    }

    /// `chain`'s RPC error rate over the engine's recent window
    /// ([`EngineConfig::health_window`](crate::EngineConfig::health_window)), once its drivers
    /// have looked at the chain twice.
    pub fn rpc_error_rate(&self, chain: baton_planner::ChainId) -> Option<f64> {
        self.shared.conditions.health(chain).map(|h| h.error_rate)
    }

    /// Whether `chain`'s RPC failed too often over the recent window to start new steps on it.
    pub fn unhealthy(&self, chain: baton_planner::ChainId) -> bool {
        self.shared.unhealthy(chain)
    }

    /// The sagas `filter` selects, newest first.
    pub async fn sagas(&self, filter: &SagaFilter) -> Result<Vec<SagaSummary>> {
        self.shared.log.summaries(filter).await
    }

    /// Outcomes decided from `since_ms` to now in intervals of `bucket_ms`, with each route's
    /// times to outcome; counted over at most the first 100,000 decisions of the window.
    pub async fn outcomes(&self, since_ms: i64, bucket_ms: i64) -> Result<outcomes::Series> {
        let start = since_ms.div_euclid(bucket_ms.max(1)) * bucket_ms.max(1);
        let decided = self.shared.log.decided_since(start, 100_000).await?;
        Ok(outcomes::series(
            &decided,
            since_ms,
            crate::now_ms(),
            bucket_ms,
        ))
    }
}
