//! The engine: accepts sagas, drives each in its own task, and resumes unfinished ones after a
//! restart.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_adapters::port::ChainAdapter;
use baton_planner::ChainId;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span};

use crate::attester::Attester;
use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaId};
use crate::input::SagaInput;
use crate::log::SagaLog;
use crate::saga::Saga;
use crate::state::SagaState;
use crate::with_pool;

/// The engine's knobs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Pause between two looks at a saga.
    pub poll: Duration,
    /// A transaction pending this many blocks is replaced with higher fees (same nonce).
    pub replace_after_blocks: u64,
    /// Transactions signed for one step (first, replacements, re-sends) before it fails for good.
    pub max_attempts: u32,
    /// A chain whose RPC error rate is above this holds new steps.
    pub unhealthy_error_rate: f64,
    /// Stop every saga right after the engine's n-th appended event, as a crash would (tests).
    pub stop_after_events: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            replace_after_blocks: 3,
            max_attempts: 5,
            unhealthy_error_rate: 0.5,
            stop_after_events: None,
        }
    }
}

/// What every saga task shares.
pub(crate) struct Shared {
    pub(crate) log: SagaLog,
    pub(crate) chains: HashMap<ChainId, Arc<dyn ChainAdapter>>,
    pub(crate) attester: Arc<dyn Attester>,
    pub(crate) config: EngineConfig,
    pub(crate) appended: AtomicU64,
}

/// The engine.
pub struct Engine {
    shared: Arc<Shared>,
    tasks: Mutex<HashMap<SagaId, JoinHandle<Result<Outcome>>>>,
    reserving: tokio::sync::Mutex<()>,
}

impl Engine {
    /// An engine over `log`, reaching each chain through the solver's adapter on it.
    pub fn new(
        log: SagaLog,
        chains: Vec<Arc<dyn ChainAdapter>>,
        attester: Arc<dyn Attester>,
        config: EngineConfig,
    ) -> Self {
        let chains = chains.into_iter().map(|a| (a.chain_id(), a)).collect();
        Self {
            shared: Arc::new(Shared {
                log,
                chains,
                attester,
                config,
                appended: AtomicU64::new(0),
            }),
            tasks: Mutex::new(HashMap::new()),
            reserving: tokio::sync::Mutex::new(()),
        }
    }

    /// Plans `input`, stores it, and starts its saga. Submitting the same intent again returns
    /// the same saga.
    pub async fn submit(&self, input: SagaInput) -> Result<SagaId> {
        let planned = input.plan()?;
        for step in planned.plan.steps() {
            if !self.shared.chains.contains_key(&step.chain) {
                return Err(EngineError::NoAdapter(step.chain.0));
            }
        }
        let id = SagaId::from(planned.plan.intent().id());
        self.reserve(id, &planned).await?;
        let body =
            serde_json::to_string(&input).map_err(|e| EngineError::Corrupt(e.to_string()))?;
        with_pool!(self.shared.log.db(), pool => {
            sqlx::query(
                "INSERT INTO intents (id, body, created_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(body)
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        let events = self.shared.log.events(id).await?;
        let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        self.spawn(id, planned, state);
        Ok(id)
    }

    /// Resumes every unfinished saga in the log; returns their ids.
    pub async fn recover(&self) -> Result<Vec<SagaId>> {
        let reclaimed = crate::reserve::reclaim(self.shared.log.db(), now_ms()).await?;
        if reclaimed > 0 {
            info!(reclaimed, "released expired reservations");
        }
        let ids = self.shared.log.unfinished().await?;
        for id in &ids {
            let body: Option<String> = with_pool!(self.shared.log.db(), pool => {
                sqlx::query_scalar("SELECT body FROM intents WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await?
            });
            let body =
                body.ok_or_else(|| EngineError::Corrupt(format!("saga {id} has no intent")))?;
            let input: SagaInput = serde_json::from_str(&body)
                .map_err(|e| EngineError::Corrupt(format!("intent of saga {id}: {e}")))?;
            let planned = input.plan_stored()?;
            let events = self.shared.log.events(*id).await?;
            let started = events.iter().find_map(|e| match &e.event {
                crate::event::SagaEvent::Started { plan, .. } => Some(*plan),
                _ => None,
            });
            if started.is_some_and(|h| h != planned.hash) {
                return Err(EngineError::Corrupt(format!(
                    "saga {id}: re-planning gave another plan than the one it started with"
                )));
            }
            let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
            info!(saga = %id, events = events.len(), "resuming");
            self.spawn(*id, planned, state);
        }
        Ok(ids)
    }

    /// Reserves the plan's inventory against the solver's live balances, until the fill deadline
    /// plus an hour.
    async fn reserve(&self, id: SagaId, planned: &crate::input::Planned) -> Result<()> {
        let _one_at_a_time = self.reserving.lock().await;
        let mut available = std::collections::BTreeMap::new();
        for asset in planned.plan.inventory().keys() {
            let adapter = self
                .shared
                .chains
                .get(&asset.chain)
                .ok_or(EngineError::NoAdapter(asset.chain.0))?;
            let balance = adapter.balance(asset.token.0, adapter.account()).await?;
            available.insert(*asset, balance);
        }
        let expires = (i64::from(planned.plan.intent().fill_deadline()) + 3_600) * 1_000;
        crate::reserve::reserve(
            self.shared.log.db(),
            id,
            planned.plan.inventory(),
            &available,
            now_ms(),
            expires.max(now_ms() + 3_600_000),
        )
        .await
    }

    fn spawn(&self, id: SagaId, planned: crate::input::Planned, state: SagaState) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.get(&id).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let saga = Saga::new(self.shared.clone(), id, planned, state);
        let span = info_span!("saga", saga.id = %id);
        tasks.insert(id, tokio::spawn(saga.run().instrument(span)));
    }

    /// Waits for `saga`'s outcome (its task must have been started by this engine).
    pub async fn wait(&self, saga: SagaId) -> Result<Outcome> {
        let task = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&saga)
            .ok_or_else(|| EngineError::Corrupt(format!("saga {saga} is not running here")))?;
        task.await
            .map_err(|e| EngineError::Corrupt(format!("saga {saga} task: {e}")))?
    }

    /// The saga log.
    pub fn log(&self) -> &SagaLog {
        &self.shared.log
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
